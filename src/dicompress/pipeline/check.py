"""What a file's bytes can hold, decided before anything is allocated or decoded.

A header is a claim: Rows, Columns and Number of Frames say how much memory the image
takes, and nothing but the bytes present can say whether that is true. A 27 KB file that
says 65535 x 65535 would have a decoder allocate 8 GiB; a 38 KB file that says 2^31 - 1
frames would have every frame listed; a 1 MB deflated file can inflate to 1 GiB. These
checks refuse what cannot be true, from the bytes present, so memory stays bounded by a
few frames whatever a header claims.

`check_pixel_data` runs on every header that `pipeline.read.read_header` reads (every
command); `check_inflated` before pydicom inflates a deflated file; the gateway calls both
on a received file.
"""

from __future__ import annotations

import os
import struct
import zlib
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from dicompress import uids
from dicompress.errors import CorruptPixelData, DicompressError, InvalidDicomFile
from dicompress.layout import FrameLayout

if TYPE_CHECKING:
    from pydicom.dataset import Dataset

PIXEL_DATA = 0x7FE00010

#: The most a stored byte can decode to, per encapsulated transfer syntax, where the
#: coding bounds it. RLE (PS3.5 G.3.1): a replicate run is 2 bytes for at most 128, 64x.
#: Deflate (RFC 1951): a 258-byte match costs at least 2 bits, about 1032x. JPEG lossless
#: (process 14, ITU-T T.81 H.1): a difference costs at least 1 bit, 16 bytes of 16-bit
#: samples per stored byte. JPEG DCT (T.81 F.1.2): a block of 64 samples costs at least
#: its DC code and EOB, 2 bits, so 256 samples (512 bytes at 12 bits) per stored byte.
#: JPEG-LS, JPEG 2000 and JPEG XL code a flat image in almost nothing: their codestream
#: headers are checked instead (`dicompress.pipeline.codestream`).
MAX_EXPANSION = {
    uids.RLELossless: 64,
    uids.DeflatedImageFrameCompression: 1032,
    "1.2.840.10008.1.2.4.57": 16, "1.2.840.10008.1.2.4.70": 16,  # JPEG lossless
    # colour subsampled 4:2:0 and decoded to RGB: 6 blocks (1.5 bytes at their least) give
    # 768 samples, so 512 per byte; twice that at 12 bits; with room for both
    uids.JPEGBaseline8Bit: 1024, uids.JPEGExtended12Bit: 2048,
}

#: The most pydicom may inflate of a deflated data set (PS3.5 A.5): it holds all of it in
#: memory, pixel data included, before anything else can be checked.
MAX_INFLATED = 1 << 30

_NATIVE = {uids.ImplicitVRLittleEndian, uids.ExplicitVRLittleEndian,
           uids.DeflatedExplicitVRLittleEndian, uids.ExplicitVRBigEndian}


def native_bytes(layout: FrameLayout) -> int:
    """Bytes native Pixel Data of `layout` takes (PS3.5 8.1.1: 1-bit samples packed;
    YBR_FULL_422 holds two samples a pixel)."""
    samples = layout.samples_per_pixel
    if layout.photometric_interpretation == "YBR_FULL_422":
        samples = 2
    values = layout.rows * layout.columns * samples * layout.number_of_frames
    if layout.bits_allocated == 1:
        return (values + 7) // 8
    return values * layout.bytes_per_sample


def check_pixel_data(path: Path, ds: Dataset, size: int) -> None:
    """Refuse Pixel Data that cannot hold what the header of `ds` says, from its length
    (native) or its fragments (encapsulated: how many, and how much they can decode to).

    Only the items' headers are read. A header too damaged to give a layout is left to the
    stages that need it.

    Raises
    ------
    CorruptPixelData
        The bytes present cannot be the image the header describes.
    """
    elem = ds.get_item(PIXEL_DATA, keep_deferred=True)
    if elem is None or getattr(elem, "value_tell", None) is None:
        return  # set in memory, not read from a file
    try:
        layout = FrameLayout.from_dataset_header(ds)
    except DicompressError:
        return
    if _raw_number(ds, "BitsStored") == 0:  # read as Bits Allocated, it was kept in outputs
        raise CorruptPixelData("Bits Stored is 0 (PS3.3 C.7.6.3.1.3: at least 1, at most "
                               "Bits Allocated)")
    syntax = str(ds.file_meta.get("TransferSyntaxUID", ""))
    tell, length = elem.value_tell, elem.length
    if length != 0xFFFFFFFF:
        if syntax not in _NATIVE:
            return  # an encapsulated syntax with a native value: the decoders refuse it
        needed = native_bytes(layout)
        held = length if syntax == uids.DeflatedExplicitVRLittleEndian else min(length, size - tell)
        if held < needed:
            raise CorruptPixelData(f"the Pixel Data holds {held} bytes; the image needs {needed} "
                                   f"({_claim(layout)})")
        return
    _check_extended_offsets(ds, layout, size)
    fragments, stored, _ = encapsulated_items(path, tell, size)
    if layout.number_of_frames > max(fragments, 1):
        # PS3.5 A.4: a fragment holds data of one frame only, so each frame has one at least
        raise CorruptPixelData(
            f"Number of Frames is {layout.number_of_frames} but the encapsulated Pixel Data "
            f"holds {fragments} fragment{'s' if fragments != 1 else ''}")
    expansion = MAX_EXPANSION.get(syntax)
    decoded = layout.pixel_data_bytes  # 1-bit frames packed (deflated image frames)
    if expansion is not None and decoded > expansion * stored:
        raise CorruptPixelData(
            f"the header says {_claim(layout)}, {decoded} bytes, but its {stored} encoded "
            f"bytes can decode to {expansion * stored} at most")


def _check_extended_offsets(ds: Dataset, layout: FrameLayout, size: int) -> None:
    """PS3.3 C.7.6.3.1.8: the Extended Offset Table and its Lengths come together, one
    8-byte value per frame each, and point inside the file (pydicom reads a frame of the
    length the table gives: 2^50 bytes was a MemoryError with no message)."""
    tables = {keyword: ds.get_item(keyword, keep_deferred=True)
              for keyword in ("ExtendedOffsetTable", "ExtendedOffsetTableLengths")}
    present = [keyword for keyword, elem in tables.items() if elem is not None]
    if len(present) == 1:
        other = ({*tables} - {*present}).pop()
        raise CorruptPixelData(f"{present[0]} without {other} (PS3.3 C.7.6.3.1.8)")
    lengths = {getattr(elem, "length", None) for elem in tables.values() if elem is not None}
    if present and None not in lengths and lengths != {8 * layout.number_of_frames}:
        raise CorruptPixelData(
            f"the Extended Offset Table holds {' and '.join(map(str, sorted(lengths)))} bytes; "
            f"{layout.number_of_frames} frames need {8 * layout.number_of_frames} each")
    if present:
        for keyword in tables:
            try:
                value = ds[keyword].value
            except Exception as exc:  # pydicom's conversion of a damaged value
                raise CorruptPixelData(f"the {keyword} cannot be read ({exc})") from None
            if not isinstance(value, (bytes, bytearray)) or len(value) % 8:
                raise CorruptPixelData(f"the {keyword} is not 8-byte values (its VR is "
                                       f"{ds[keyword].VR}; PS3.3 C.7.6.3.1.8)")
            values = np.frombuffer(value, "<u8")
            if values.size and int(values.max()) > size:
                raise CorruptPixelData(
                    f"the {keyword} holds {int(values.max()):,}, past the end of the file "
                    f"({size:,} bytes; PS3.3 C.7.6.3.1.8)")


def _raw_number(ds: Dataset, keyword: str) -> int | None:
    try:
        value = ds.get(keyword)
        return None if value is None or value == "" else int(value)
    except (TypeError, ValueError):
        return None


def _claim(layout: FrameLayout) -> str:
    frames = "" if layout.number_of_frames == 1 else f" x {layout.number_of_frames} frames"
    return (f"{layout.rows} x {layout.columns} x {layout.samples_per_pixel} samples of "
            f"{layout.bits_allocated} bits{frames}")


def encapsulated_items(path: Path, tell: int, size: int) -> tuple[int, int, int]:
    """The fragments of the encapsulated Pixel Data whose value starts at `tell` of `path`
    (`size` bytes): how many (the Basic Offset Table item not counted), their bytes, and
    where the Sequence Delimitation Item ends. Item headers only (PS3.5 A.4)."""
    count = stored = 0
    with open(path, "rb") as fp:
        pos, first = tell, True
        while True:
            fp.seek(pos)
            header = fp.read(8)
            if len(header) < 8:
                raise CorruptPixelData("the encapsulated Pixel Data ends before its "
                                       "Sequence Delimitation Item")
            group, element, length = struct.unpack("<HHI", header)
            if (group, element) == (0xFFFE, 0xE0DD):
                return count, stored, pos + 8
            if (group, element) != (0xFFFE, 0xE000) or length == 0xFFFFFFFF:
                raise CorruptPixelData(f"({group:04X},{element:04X}) where an item of the "
                                       "encapsulated Pixel Data should be")
            pos += 8 + length
            if pos > size:
                raise CorruptPixelData("a fragment of the Pixel Data runs past the end of "
                                       "the file")
            if not first:
                count, stored = count + 1, stored + length
            first = False


def check_inflated(path: Path, data_set_start: int, limit: int = MAX_INFLATED) -> None:
    """Refuse a deflated file (PS3.5 A.5) whose data set, which starts deflated at byte
    `data_set_start`, inflates to more than `limit` bytes; inflated a chunk at a time
    with a bounded buffer, nothing kept.

    Raises
    ------
    InvalidDicomFile
        It inflates to more than `limit`, or is not a deflate stream.
    """
    inflater = zlib.decompressobj(-zlib.MAX_WBITS)
    total = 0
    with open(path, "rb") as fp:
        fp.seek(data_set_start)
        while chunk := fp.read(1 << 16):
            try:
                while chunk and not inflater.eof:
                    total += len(inflater.decompress(chunk, 1 << 20))
                    chunk = inflater.unconsumed_tail
                    if total > limit:
                        stored = os.path.getsize(path)
                        raise InvalidDicomFile(
                            f"the deflated data set inflates to more than {limit >> 20} MiB "
                            f"({total // max(1, stored)} times the file's {stored} bytes): refused")
            except zlib.error as exc:
                raise InvalidDicomFile(f"the deflated data set cannot be inflated ({exc})") from exc
            if inflater.eof:
                return
