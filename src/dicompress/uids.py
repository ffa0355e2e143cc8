"""Transfer Syntax UIDs (PS3.6 Table A-1) as plain strings, under the names pydicom.uid
gives them: modules on the CLI's start-up path use these instead of importing pydicom,
which takes 0.25 s (tests/test_direct.py checks they equal pydicom's)."""

ImplicitVRLittleEndian = "1.2.840.10008.1.2"
ExplicitVRLittleEndian = "1.2.840.10008.1.2.1"
DeflatedExplicitVRLittleEndian = "1.2.840.10008.1.2.1.99"
ExplicitVRBigEndian = "1.2.840.10008.1.2.2"
JPEGBaseline8Bit = "1.2.840.10008.1.2.4.50"
JPEGExtended12Bit = "1.2.840.10008.1.2.4.51"
JPEGLossless = "1.2.840.10008.1.2.4.57"
JPEGLosslessSV1 = "1.2.840.10008.1.2.4.70"
JPEGLSLossless = "1.2.840.10008.1.2.4.80"
JPEGLSNearLossless = "1.2.840.10008.1.2.4.81"
JPEG2000Lossless = "1.2.840.10008.1.2.4.90"
JPEG2000 = "1.2.840.10008.1.2.4.91"
JPEG2000MC = "1.2.840.10008.1.2.4.93"
HTJ2KLossless = "1.2.840.10008.1.2.4.201"
HTJ2KLosslessRPCL = "1.2.840.10008.1.2.4.202"
HTJ2K = "1.2.840.10008.1.2.4.203"
RLELossless = "1.2.840.10008.1.2.5"
# Since pydicom 3.1 (dicompress.plugins._new_syntaxes teaches them to pydicom 3.0):
JPEGXLLossless = "1.2.840.10008.1.2.4.110"
JPEGXLJPEGRecompression = "1.2.840.10008.1.2.4.111"
JPEGXL = "1.2.840.10008.1.2.4.112"
DeflatedImageFrameCompression = "1.2.840.10008.1.2.8.1"


def uid_from_digest(digest: bytes) -> str:
    """2.25.<a UUID of version 8 (custom, RFC 9562) made of the first 16 bytes>."""
    b = bytearray(digest[:16])
    b[6] = (b[6] & 0x0F) | 0x80  # version 8
    b[8] = (b[8] & 0x3F) | 0x80  # RFC variant
    return f"2.25.{int.from_bytes(b, 'big')}"
