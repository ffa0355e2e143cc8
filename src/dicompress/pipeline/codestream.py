"""What a JPEG, JPEG-LS or JPEG 2000 frame says of its image, checked against the DICOM
header before any native decoder sees the frame.

Native decoders trust the codestream and the caller's buffer to agree: GDCM asserts
that the J2K components equal Samples per Pixel and aborts the process (a C++ exception
through C) when they do not; others write past a buffer sized from the header. The
frame header is read here in Python, bounds-checked, and a frame whose size, components
or precision disagree with the header is refused with a message. dicompress's own
reading runs this on every frame before pydicom decodes it (`pipeline.frames`), so every
command and `dicompress.compress` get it; a plain ``ds.pixel_array`` gets it after
``dicompress.plugins.register(check=True)``, which puts it in front of pydicom's
decoders. JPEG XL's check is `dicompress.codecs._jxl_header`.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from dicompress import uids
from dicompress.errors import CorruptPixelData
from dicompress.pipeline.check import MAX_EXPANSION

JPEG_SYNTAXES = frozenset({uids.JPEGBaseline8Bit, uids.JPEGExtended12Bit,
                           "1.2.840.10008.1.2.4.57", "1.2.840.10008.1.2.4.70"})
JPEG_LS_SYNTAXES = frozenset({uids.JPEGLSLossless, uids.JPEGLSNearLossless})
J2K_SYNTAXES = frozenset({uids.JPEG2000Lossless, uids.JPEG2000, uids.JPEG2000MC,
                          uids.HTJ2KLossless, uids.HTJ2KLosslessRPCL, uids.HTJ2K})
#: Frames checked here: a codestream header, or a bounded expansion (RLE, deflate).
CHECKED_SYNTAXES = JPEG_SYNTAXES | JPEG_LS_SYNTAXES | J2K_SYNTAXES | frozenset(MAX_EXPANSION)

#: ITU-T T.81 B.1.1.3: the start-of-frame markers (C4 DHT, C8 JPG and CC DAC are not);
#: T.87 (JPEG-LS) adds SOF55, F7.
_SOF = frozenset({0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF})
_SOF55 = 0xF7
#: T.81 B.1.1.2: markers that stand alone, without a length.
_STANDALONE = frozenset({0x01, *range(0xD0, 0xD9)})
_J2K_SOC_SIZ = b"\xff\x4f\xff\x51"


@dataclass(frozen=True)
class FrameHeader:
    """What a codestream says of its image."""

    rows: int
    columns: int
    components: int
    precision: int  # bits per sample, the largest of the components


def frame_header(data: bytes, transfer_syntax: str) -> FrameHeader | None:
    """The image header of the frame `data` coded in `transfer_syntax`; None for a syntax
    not checked here.

    Raises
    ------
    CorruptPixelData
        The codestream has no header where one must be, or it is cut short.
    """
    if transfer_syntax in J2K_SYNTAXES:
        return _siz(data)
    if transfer_syntax in JPEG_SYNTAXES:
        return _sof(data, _SOF, "JPEG")
    if transfer_syntax in JPEG_LS_SYNTAXES:
        return _sof(data, {_SOF55}, "JPEG-LS")
    return None


def check_frame(data: bytes, transfer_syntax: str, *, rows: int, columns: int,
                samples_per_pixel: int, bits_allocated: int) -> None:
    """Refuse a frame whose codestream disagrees with the DICOM header: its size, its
    number of components (Samples per Pixel), or a precision above Bits Allocated; or,
    where the coding bounds it (RLE, JPEG, deflate), a frame larger than its bytes can
    decode to (`check.MAX_EXPANSION`).

    Raises
    ------
    CorruptPixelData
        With what the codestream says and what the header says.
    """
    expansion = MAX_EXPANSION.get(transfer_syntax)
    samples = rows * columns * samples_per_pixel
    decoded = (samples + 7) // 8 if bits_allocated == 1 else samples * ((bits_allocated + 7) // 8)
    if expansion is not None and decoded > expansion * len(data):
        raise CorruptPixelData(f"a frame of {rows} x {columns} x {samples_per_pixel} samples of "
                               f"{bits_allocated} bits is {decoded} bytes; its {len(data)} "
                               f"encoded bytes can decode to {expansion * len(data)} at most")
    header = frame_header(data, transfer_syntax)  # markers walked by their lengths
    if header is None:
        return
    wrong = []
    if header.rows not in (rows, 0):  # T.81 B.2.2: 0 rows, given later by a DNL marker
        wrong.append(f"{header.rows} rows (the header: {rows})")
    if header.columns != columns:
        wrong.append(f"{header.columns} columns (the header: {columns})")
    if header.components != samples_per_pixel:
        wrong.append(f"{header.components} components (Samples per Pixel: {samples_per_pixel})")
    if header.precision > bits_allocated:
        wrong.append(f"{header.precision}-bit samples (Bits Allocated: {bits_allocated})")
    if wrong:
        raise CorruptPixelData("the frame's codestream says " + ", ".join(wrong))


def _sof(data: bytes, markers, name: str) -> FrameHeader:
    """T.81 B.2.2 (T.87 C.2.2 for SOF55): P, Y, X, Nf after the marker and its length."""
    if data[:2] != b"\xff\xd8":
        raise CorruptPixelData(f"the {name} frame does not start with SOI (FFD8)")
    pos = 2
    while pos + 4 <= len(data):
        if data[pos] != 0xFF:
            raise CorruptPixelData(f"the {name} frame has no marker at byte {pos} before its "
                                   "frame header")
        marker = data[pos + 1]
        if marker == 0xFF:  # fill bytes (T.81 B.1.1.2)
            pos += 1
            continue
        if marker in _STANDALONE:
            pos += 2
            continue
        (length,) = struct.unpack_from(">H", data, pos + 2)
        if marker in markers:
            if pos + 10 > len(data) or length < 8:
                break
            precision, rows, columns, components = struct.unpack_from(">BHHB", data, pos + 4)
            return FrameHeader(rows, columns, components, precision)
        if marker == 0xDA:  # a scan before any frame header
            break
        pos += 2 + length
    raise CorruptPixelData(f"the {name} frame has no frame header (SOF) before its data")


def _siz(data: bytes) -> FrameHeader:
    """ITU-T T.800 A.5.1: SOC then SIZ; a JP2 file (T.800 I.5) holds the codestream in
    its jp2c box, found by the same two markers."""
    pos = 0 if data[:4] == _J2K_SOC_SIZ else data.find(_J2K_SOC_SIZ)
    if pos < 0:
        raise CorruptPixelData("the JPEG 2000 frame has no SIZ marker segment after SOC")
    fields = data[pos + 4:pos + 42]
    if len(fields) < 38:
        raise CorruptPixelData("the JPEG 2000 frame ends inside its SIZ marker segment")
    (_, _, xsiz, ysiz, xosiz, yosiz, _, _, _, _, components) = struct.unpack(">HHIIIIIIIIH", fields)
    depths = data[pos + 42:pos + 42 + 3 * components:3]
    if len(depths) < components or components == 0:
        raise CorruptPixelData(f"the JPEG 2000 SIZ says {components} components and does not "
                               "hold them")
    precision = max((d & 0x7F) + 1 for d in depths)  # Ssiz: bit 7 is the sign
    if xosiz > xsiz or yosiz > ysiz:
        raise CorruptPixelData("the JPEG 2000 SIZ puts the image offset past its size")
    return FrameHeader(ysiz - yosiz, xsiz - xosiz, components, precision)
