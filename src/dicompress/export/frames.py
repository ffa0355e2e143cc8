"""Display values of one frame: windowed grayscale, RGB colour, or raw 16-bit stored values."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import dataclasses

import numpy as np

from dicompress import uids, voi
from dicompress.errors import (CorruptPixelData, DicompressError, InvalidDicomFile,
                               UnsupportedLayout, reason_of, refused_by_a_library)
from dicompress.layout import FrameLayout, header_number
from dicompress.pipeline.frames import decoders_reason, native_frames, reads_natively
from dicompress.pipeline.stored import check_stored_frame

if TYPE_CHECKING:
    from pydicom.dataset import Dataset

    from dicompress.batch.pools import Isolated

#: XYB: JPEG XL colour, which decoders give as RGB (PS3.3 C.7.6.3.1.2).
COLOUR = {"RGB", "YBR_FULL", "YBR_FULL_422", "YBR_ICT", "YBR_RCT", "PALETTE COLOR", "XYB"}


def photometric(ds: Dataset) -> str:
    return str(ds.get("PhotometricInterpretation", "MONOCHROME2")).upper()


@dataclasses.dataclass(frozen=True)
class NativePixels:
    """Where a file's native Pixel Data starts on disk: its frames are read straight from
    the file (pipeline/frames.py), without pydicom parsing the file again for each."""

    layout: FrameLayout  # of one frame
    offset: int  # of the Pixel Data value in the file


def native_pixels(ds: Dataset, layout: FrameLayout) -> NativePixels | None:
    """A header read with its Pixel Data left on disk (read_header), and the `layout` its
    attributes give: where the frames are, when they are little-endian native
    single-sample frames; None for anything else (pydicom decodes those, and says what is
    wrong with a damaged one)."""
    syntax = ds.file_meta.get("TransferSyntaxUID") if hasattr(ds, "file_meta") else None
    if syntax not in (uids.ExplicitVRLittleEndian, uids.ImplicitVRLittleEndian) or getattr(
            ds, "preamble", None) is None:
        return None
    try:
        elem = ds.get_item(0x7FE00010, keep_deferred=True)
    except (DicompressError, ValueError, TypeError):
        return None
    if (not reads_natively(layout) or elem is None or isinstance(elem.value, (bytes, bytearray))
            or elem.value_tell is None or elem.length in (None, 0xFFFFFFFF)
            or elem.length < layout.frame_bytes * layout.number_of_frames):
        return None
    return NativePixels(dataclasses.replace(layout, number_of_frames=1), elem.value_tell)


def read_native(path: Path, index: int, native: NativePixels) -> np.ndarray:
    """Frame `index` (0-based) of a file whose native frames start at `native.offset`."""
    start = native.offset + index * native.layout.frame_bytes
    return next(native_frames(native.layout, start, path=path))


def read_frame(path: Path, index: int, ds: Dataset, decoder: Isolated | None = None
               ) -> np.ndarray:
    """One frame as pydicom decodes it; YBR is converted to RGB (as_rgb). With `decoder`,
    decoded in its process (a decoder's abort costs this file); only the path and what
    the decoding needs of the header travel there."""
    frames = header_number(ds, "NumberOfFrames", 0, 2**31 - 1, default=1) or 1
    which = index if frames > 1 else None
    syntax = ds.file_meta.get("TransferSyntaxUID")
    syntax = None if syntax is None else str(syntax)
    # deflated data cannot be read frame by frame from the file, nor a file without
    # File Meta Information (its transfer syntax is the one the header was read in)
    whole = syntax == uids.DeflatedExplicitVRLittleEndian or getattr(ds, "preamble", None) is None
    if not whole:
        try:
            check_stored_frame(path, ds, which)  # before any native decoder sees the frame
        except OSError as exc:
            raise CorruptPixelData(f"pixel data cannot be read: {exc.strerror or exc}") from exc
    if decoder is not None:
        return decoder.call(_decoded, path, which, syntax, whole)
    return _decoded(path, which, syntax, whole)


def _decoded(path: Path, which: int | None, syntax: str | None, whole: bool) -> np.ndarray:
    from pydicom import dcmread  # only for frames a decoder must read
    from pydicom.pixels import pixel_array

    try:  # pydicom's decoders: their errors are the pixel data's, said here once
        if whole:
            dataset = dcmread(path, force=True)
            dataset.file_meta.TransferSyntaxUID = syntax
            check_stored_frame(path, dataset, which)
            return pixel_array(dataset, index=which, as_rgb=True)
        return pixel_array(path, index=which, as_rgb=True)
    except DicompressError:
        raise
    except BaseException as exc:
        if not refused_by_a_library(exc):
            raise
        raise CorruptPixelData(f"pixel data cannot be decoded: {decoders_reason(exc)}") from exc


#: The most entries a segmented palette table may expand to here (PS3.3 C.7.9: a
#: descriptor allows 65536), and the most segments its indirect ones may visit: pydicom
#: expands a table into a list of ints, and 2000 linear segments of 65535 entries (16 kB)
#: took 10.8 GB; an indirect segment copying itself recursed until RecursionError.
SEGMENTED_ENTRIES = 1 << 20
_SEGMENTS_VISITED = 1 << 18  # a valid table visits about as many segments as it has entries
_INDIRECT_DEPTH = 32


def segmented_entries(words, *, little: bool = True, start: int = 0,
                      segments: int | None = None, depth: int = 0,
                      visits: list[int] | None = None, eight: bool | None = None) -> int:
    """How many entries the segmented table `words` (a numpy array of its 8- or 16-bit
    values, in order) expands to, counted as pydicom's `_expand_segmented_lut` expands it
    (an indirect segment's byte offset taken as an index into the words from `start`, its
    four bytes of an 8-bit table in the data set's byte order, `little`), without
    expanding it: the count stops past SEGMENTED_ENTRIES; ValueError for indirect
    segments nested deeper than _INDIRECT_DEPTH or visiting more than _SEGMENTS_VISITED
    segments (a table that copies itself; both bounds are ours: pydicom recursed until
    RecursionError)."""
    if eight is None:  # the first call: plain ints index several times faster
        eight, words = words.dtype.itemsize == 1, words.tolist()
    visits = visits if visits is not None else [0]
    order = (3, 2, 1, 0) if little else (2, 3, 0, 1)  # pydicom's indirect_ii
    size, total, pos, read = len(words), 0, start, 0
    while pos + 1 < size and total <= SEGMENTED_ENTRIES:
        opcode, length = words[pos], words[pos + 1]
        pos += 2
        visits[0] += 1
        if visits[0] > _SEGMENTS_VISITED:
            raise ValueError("its indirect segments visit more than "
                             f"{_SEGMENTS_VISITED:,} segments")
        if opcode == 0:  # as many values as there are (pydicom's slice)
            total, pos = total + max(0, min(length, size - pos)), pos + length
        elif opcode == 1:
            total, pos = total + length, pos + 1
        elif opcode == 2:
            if depth >= _INDIRECT_DEPTH:
                raise ValueError(f"indirect segments nested deeper than {_INDIRECT_DEPTH}")
            if eight:  # the byte offset's four bytes, as pydicom orders them
                if pos + 3 >= size:
                    break
                a, b, c, d = (words[pos + i] for i in order)
                offset, pos = (a << 8 | b) << 16 | (c << 8 | d), pos + 4
            else:
                if pos + 1 >= size:
                    break
                offset, pos = words[pos + 1] << 16 | words[pos], pos + 2
            # pydicom expands data[offset:] of the data it was given: offsets of nested
            # indirect segments are from the start of their own slice
            total += segmented_entries(words, little=little, start=start + offset,
                                       segments=length, depth=depth + 1, visits=visits,
                                       eight=eight)
        else:
            break  # pydicom refuses the table, naming the segment type
        read += 1
        if read == segments:
            break
    return total


def _check_segmented(ds: Dataset) -> None:
    """Refuse segmented palette tables pydicom would expand past SEGMENTED_ENTRIES (read
    as `apply_color_lut` reads them: only without plain tables, the Red descriptor's
    bits, the data set's byte order)."""
    if ("SegmentedRedPaletteColorLookupTableData" not in ds
            or "RedPaletteColorLookupTableData" in ds):
        return
    bits = int(ds.RedPaletteColorLookupTableDescriptor[2])
    meta = getattr(ds, "file_meta", None)
    little = (meta._tsyntax_encoding[1] if meta is not None
              else getattr(ds, "original_encoding", (None, True))[1]) is not False
    dtype = np.dtype("u1" if bits // 8 == 1 else ("<u2" if little else ">u2"))
    for colour in ("Red", "Green", "Blue", "Alpha"):
        data = ds.get(f"Segmented{colour}PaletteColorLookupTableData")
        if not data:
            continue
        if not isinstance(data, (bytes, bytearray)):  # as pydicom refuses it
            raise TypeError(f"Segmented {colour} Palette Color Lookup Table Data is "
                            f"{type(data).__name__}, not bytes")
        words = np.frombuffer(data[:len(data) // dtype.itemsize * dtype.itemsize], dtype)
        try:
            entries = segmented_entries(words, little=little)
        except ValueError as exc:
            raise InvalidDicomFile(f"the segmented {colour.lower()} palette table cannot be "
                                   f"expanded: {exc} (PS3.3 C.7.9.2)") from None
        if entries > SEGMENTED_ENTRIES:
            raise InvalidDicomFile(
                f"the segmented {colour.lower()} palette table expands past "
                f"{SEGMENTED_ENTRIES:,} entries (a descriptor allows 65,536; PS3.3 C.7.9)")


def to_rgb8(ds: Dataset, arr: np.ndarray) -> np.ndarray:
    """Colour frames as 8-bit RGB: palette through its LUTs, deeper samples scaled."""
    kind = photometric(ds)
    if kind == "PALETTE COLOR":
        from pydicom.pixels import apply_color_lut

        try:  # pydicom checks the three tables and their descriptors against each other
            _check_segmented(ds)
            arr = apply_color_lut(arr, ds)
            bits = int(ds.RedPaletteColorLookupTableDescriptor[2])
        except (ValueError, TypeError, IndexError, KeyError, AttributeError, ArithmeticError,
                RecursionError) as exc:  # e.g. a linear segment of length 0: ZeroDivisionError
            raise InvalidDicomFile("the palette colour lookup tables cannot be applied "
                                   f"({type(exc).__name__}: {reason_of(exc)})") from exc
    else:
        bits = int(ds.get("BitsStored", arr.dtype.itemsize * 8) or 8)
    if arr.dtype == np.uint8 and bits <= 8:
        return arr
    shift = max(0, min(bits, arr.dtype.itemsize * 8) - 8)
    return (arr.astype(np.uint32) >> shift).clip(0, 255).astype(np.uint8)


def raw16(ds: Dataset, arr: np.ndarray) -> tuple[np.ndarray, int]:
    """Stored values as uint16, signed values offset so they stay in range; returns the offset."""
    if arr.dtype.kind == "i":
        offset = 1 << (min(arr.dtype.itemsize * 8, 16) - 1)
        return (arr.astype(np.int32) + offset).clip(0, 65535).astype(np.uint16), offset
    return arr.clip(0, 65535).astype(np.uint16), 0


def display(ds: Dataset, arr: np.ndarray, window, *, function=None, invert=None,
            bits: int = 8, threads: int | None = None) -> tuple[np.ndarray, dict]:
    """(image, notes) for one decoded frame; notes say what was done (window, offset)."""
    kind = photometric(ds)
    if kind in COLOUR:
        if bits == 16:
            raise UnsupportedLayout("--bits 16 exports grayscale stored values; this image is colour")
        return to_rgb8(ds, arr), {"colour": kind}
    if not kind.startswith("MONOCHROME"):
        raise UnsupportedLayout(f"cannot display Photometric Interpretation {kind}")
    if arr.ndim != 2:
        raise UnsupportedLayout(f"unexpected grayscale frame shape {arr.shape}")
    if bits == 16:
        image, offset = raw16(ds, arr)
        return image, {"stored values": "raw", "offset": offset}
    if invert:  # --invert flips whatever the file asks for (MONOCHROME1 shows un-inverted)
        invert = not voi.default_invert(ds)
    image = voi.render(ds, window=window, function=function, invert=invert, arr=arr,
                       threads=threads)
    return image, {"window": str(window) if window is not None else "none"}


def series_window(ds: Dataset, choice, sample: np.ndarray):
    """Resolve the window once per series (so an animation does not flicker)."""
    if not photometric(ds).startswith("MONOCHROME"):
        return None
    return voi.resolve_window(ds, choice, lambda: voi.modality_values(ds, sample))
