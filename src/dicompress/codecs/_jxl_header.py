"""The image header of a JPEG XL frame, read before libjxl sees the data.

A JPEG XL frame in DICOM is a bare codestream (ISO/IEC 18181-1), or the same
codestream in the box container of ISO/IEC 18181-2 (libjxl writes one when the
codestream needs the level box ``jxll`` (more than 12 bits per sample) or when it
carries JPEG reconstruction data ``jbrd``). This module reads just enough of it to
refuse, with a clear message, a frame whose size, bit depth or channels disagree
with the DICOM attributes: the codestream's SizeHeader and the start of its
ImageMetadata (18181-1 A.4 and A.6), read with its own bit reader.

Bits are read least significant first (18181-1 A.3.1); ``U32`` fields are a 2-bit
selector followed by one of four distributions (A.3.2).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from dicompress.errors import CorruptPixelData

CODESTREAM_SIGNATURE = b"\xff\x0a"
CONTAINER_SIGNATURE = b"\x00\x00\x00\x0cJXL \r\n\x87\n"

# 18181-1 Table A.2: the width of a SizeHeader with a fixed aspect ratio.
_RATIOS = {1: (1, 1), 2: (12, 10), 3: (4, 3), 4: (3, 2), 5: (16, 9), 6: (5, 4), 7: (2, 1)}
_COLOUR_SPACES = {0: "RGB", 1: "Grey", 2: "XYB", 3: "Unknown"}


@dataclass(frozen=True)
class JXLHeader:
    """What the codestream says about its image."""

    width: int
    height: int
    bits_per_sample: int
    float_sample: bool
    #: Colour channels: 1 (Grey) or 3 (RGB, XYB); extra channels are refused.
    channels: int
    xyb_encoded: bool
    #: The codestream came in the 18181-2 container.
    container: bool = False
    #: The container holds JPEG bitstream reconstruction data (``jbrd``).
    jpeg_reconstruction: bool = False
    #: Bytes of the frame up to the end of its last box (the codestream: all of it).
    length: int = 0


class _Bits:
    def __init__(self, data: bytes) -> None:
        self.data, self.position = data, 0

    def read(self, count: int) -> int:
        value = 0
        for k in range(count):
            byte, bit = divmod(self.position, 8)
            if byte >= len(self.data):
                raise CorruptPixelData("JPEG XL codestream ends inside its image header")
            value |= ((self.data[byte] >> bit) & 1) << k
            self.position += 1
        return value

    def flag(self) -> bool:
        return bool(self.read(1))

    def u32(self, *distributions: tuple[int, int]) -> int:
        """A U32 field; each distribution is (bits, offset): bits 0 is a constant."""
        bits, offset = distributions[self.read(2)]
        return offset + (self.read(bits) if bits else 0)


_SIZE = ((9, 1), (13, 1), (18, 1), (30, 1))
_ENUM = ((0, 0), (0, 1), (4, 2), (6, 18))


def _size_header(bits: _Bits) -> tuple[int, int]:
    """(width, height) of a SizeHeader (18181-1 A.4.2)."""
    small = bits.flag()
    height = (bits.read(5) + 1) * 8 if small else bits.u32(*_SIZE)
    ratio = bits.read(3)
    if ratio:
        numerator, denominator = _RATIOS[ratio]
        width = height * numerator // denominator
    else:
        width = (bits.read(5) + 1) * 8 if small else bits.u32(*_SIZE)
    return width, height


def codestream_of(data: bytes) -> tuple[bytes, bool, int]:
    """The codestream in `data` (bare or boxed), whether a ``jbrd`` box came with it, and
    where the boxes end (padding after them is not the container's)."""
    if data[:2] == CODESTREAM_SIGNATURE:
        return data, False, len(data)
    if data[:12] != CONTAINER_SIGNATURE:
        raise CorruptPixelData("not a JPEG XL codestream (no FF 0A signature, no JXL container)")
    at, parts, whole, jbrd = 12, [], None, False
    while at < len(data):
        if not data[at:].strip(b"\0") and len(data) - at < 8:
            break  # the NULL that pads an odd fragment (PS3.5 A.4)
        if at + 8 > len(data):
            raise CorruptPixelData("JPEG XL container ends inside a box header")
        size, kind = struct.unpack_from(">I4s", data, at)
        head = 8
        if size == 1:
            if at + 16 > len(data):
                raise CorruptPixelData("JPEG XL container ends inside a box header")
            size, head = struct.unpack_from(">Q", data, at + 8)[0], 16
        elif size == 0:
            size = len(data) - at
        if size < head or at + size > len(data):
            raise CorruptPixelData(f"JPEG XL box {kind!r} says {size} bytes; "
                                   f"{len(data) - at} are left")
        payload = data[at + head:at + size]
        if kind == b"jxlc":
            whole = payload
        elif kind == b"jxlp":
            parts.append(payload[4:])  # a 4-byte index, then the partial codestream
        elif kind == b"jbrd":
            jbrd = True
        at += size
    if whole is not None and parts:
        raise CorruptPixelData("JPEG XL container has both jxlc and jxlp boxes")
    codestream = whole if whole is not None else b"".join(parts)
    if codestream[:2] != CODESTREAM_SIGNATURE:
        raise CorruptPixelData("JPEG XL container holds no codestream")
    return codestream, jbrd, at


def read_header(data: bytes) -> JXLHeader:
    """The image header of one JPEG XL frame (a codestream, or its container).

    Raises
    ------
    CorruptPixelData
        The data is not JPEG XL, is cut short, or carries what a DICOM frame cannot
        (extra channels, an animation, a preview, a rotated orientation).
    """
    data = bytes(data)
    codestream, jbrd, length = codestream_of(data)
    bits = _Bits(codestream[2:])
    width, height = _size_header(bits)

    # ImageMetadata (18181-1 A.6); all_default means 8-bit sRGB, XYB encoded.
    if bits.flag():
        return JXLHeader(width, height, 8, False, 3, True, codestream is not data, jbrd, length)
    if bits.flag():  # extra_fields
        orientation = bits.read(3) + 1
        if orientation != 1:
            raise CorruptPixelData(f"JPEG XL frame has orientation {orientation}; "
                                   "DICOM frames are stored upright (1)")
        if bits.flag():  # have_intrinsic_size
            _size_header(bits)
        if bits.flag():
            raise CorruptPixelData("JPEG XL frame carries a preview image")
        if bits.flag():
            raise CorruptPixelData("JPEG XL frame is an animation")
    float_sample = bits.flag()
    if float_sample:
        bits_per_sample = bits.u32((0, 32), (0, 16), (0, 24), (6, 1))
        bits.read(4)  # exponent bits
    else:
        bits_per_sample = bits.u32((0, 8), (0, 10), (0, 12), (6, 1))
    bits.flag()  # modular_16_bit_buffers
    extra_channels = bits.u32((0, 0), (0, 1), (4, 2), (12, 1))
    if extra_channels:
        raise CorruptPixelData(f"JPEG XL frame has {extra_channels} extra channel(s) "
                               "(alpha, depth, ...); DICOM samples are colour channels only")
    xyb_encoded = bits.flag()
    colour_space = "RGB"  # ColourEncoding all_default: sRGB
    if not bits.flag():
        bits.flag()  # want_icc
        colour_space = _COLOUR_SPACES.get(bits.u32(*_ENUM), "invalid")
    if colour_space in ("Unknown", "invalid"):
        raise CorruptPixelData(f"JPEG XL frame has colour space {colour_space}")
    channels = 1 if colour_space == "Grey" else 3
    return JXLHeader(width, height, bits_per_sample, float_sample, channels, xyb_encoded,
                     codestream is not data, jbrd, length)
