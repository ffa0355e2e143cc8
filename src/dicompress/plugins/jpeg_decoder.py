"""pydicom decoding plugin: JPEG (PS3.5 A.4.1) through libjpeg-turbo (imagecodecs).

Baseline (.50), Extended 12-bit (.51) and the lossless processes (.57, .70, 2 to 16
bits): libjpeg-turbo 3 decodes them all with one call, so the GPL-licensed
pylibjpeg-libjpeg is not needed; pydicom uses that one first when it is installed (it
and GDCM come before this plugin in pydicom's order).

The components come out as they are coded, without colour conversion (pydicom's ``raw``
contract: it converts YBR to RGB itself when asked), interleaved, in the smallest
container of the JPEG precision. Lossy frames decode bit-exact with GDCM's and DCMTK's
IJG decoders (tests/test_plugins.py); pylibjpeg-libjpeg's own IDCT differs by 1 here
and there.
"""

from __future__ import annotations

from dicompress import uids

_SYNTAXES = (uids.JPEGBaseline8Bit, uids.JPEGExtended12Bit, uids.JPEGLossless,
             uids.JPEGLosslessSV1)
DECODER_DEPENDENCIES = {uid: ("numpy", "imagecodecs>=2024.1.1") for uid in _SYNTAXES}


def is_available(uid: str) -> bool:
    if uid not in DECODER_DEPENDENCIES:
        return False
    try:
        import imagecodecs

        return bool(imagecodecs.JPEG8.available)
    except ImportError:
        return False


def _decode_frame(src: bytes, runner) -> bytes:
    """One frame's samples as coded (colour-by-pixel), 8- or 16-bit containers."""
    import imagecodecs

    # The same colour space in and out: libjpeg-turbo converts nothing.
    space = "YCbCr" if runner.samples_per_pixel == 3 else None
    frame = imagecodecs.jpeg8_decode(src, colorspace=space, outcolorspace=space)
    runner.set_option("bits_allocated", frame.dtype.itemsize * 8)
    if runner.samples_per_pixel > 1:
        runner.set_option("planar_configuration", 0)
    return frame.tobytes()
