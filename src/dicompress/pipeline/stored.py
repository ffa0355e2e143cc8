"""Stored frames: the encapsulated frames of a file as it stores them (a frame's fragments
joined), found through its offset tables as pydicom finds them (PS3.5 A.4), and each
checked by `codestream.check_frame` against the header before a decoder sees it."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING


from dicompress.errors import CorruptPixelData, DicompressError
from dicompress.layout import FrameLayout
from dicompress.pipeline.codestream import CHECKED_SYNTAXES, check_frame
from dicompress.pipeline.read import read_header, transfer_syntax_of

if TYPE_CHECKING:
    from pydicom.dataset import Dataset


def stored_frame_checks(path: Path | None, ds: Dataset,
                        layout: FrameLayout) -> Iterator[bytes] | None:
    """The stored frames of `ds` (`layout` is its header's), each yielded once
    `codestream.check_frame` passed on it; None where the transfer syntax has no such
    check (native, or a codec that checks its own frames: JPEG XL).

    pydicom's decoders are native code that trusts the header and the codestream to
    agree; dicompress runs this in front of them itself, so that importing dicompress
    changes none of pydicom's decoders (`plugins.register(check=True)` puts the same
    check in front of them, for a user's own ``ds.pixel_array``).
    """
    syntax = transfer_syntax_of(ds)
    if syntax not in CHECKED_SYNTAXES:
        return None
    return checked_frames(encoded_frames(path, ds, layout.number_of_frames), syntax, layout)


def checked_frames(frames: Iterable[bytes], syntax: str, layout: FrameLayout,
                   first: int = 0) -> Iterator[bytes]:
    """Each of `frames` (stored in `syntax`; the first is frame `first`, 0-based) once
    `codestream.check_frame` passed on it against `layout`, the header's; a frame of a
    multi-frame image that fails is named. Syntaxes without a check pass as they are."""
    for index, frame in enumerate(frames, first):
        try:
            check_frame(frame, syntax, rows=layout.rows, columns=layout.columns,
                        samples_per_pixel=layout.samples_per_pixel,
                        bits_allocated=layout.bits_allocated)
        except CorruptPixelData as exc:
            if layout.number_of_frames == 1:
                raise
            raise CorruptPixelData(f"frame {index + 1}: {exc}") from None
        yield frame


def check_stored_frame(path: Path | None, ds: Dataset, index: int | None = None) -> None:
    """Run `codestream.check_frame` on frame `index` (0-based; None: every frame) of
    `ds` stored in `path` (None: `ds`'s own value or file), before pydicom decodes it
    (`stored_frame_checks`)."""
    meta = getattr(ds, "file_meta", None)
    syntax = str(meta.get("TransferSyntaxUID", "")) if meta is not None else ""
    if syntax not in CHECKED_SYNTAXES:
        return
    if "PixelData" not in ds:  # a header kept without it (export): where are the frames
        if path is None:
            return
        ds = read_header(path)
    layout = FrameLayout.from_dataset(ds)
    if index is None or layout.number_of_frames == 1:
        frames, first = encoded_frames(path, ds, layout.number_of_frames), 0
    else:
        frames, first = [_stored_frame(path, ds, index, layout.number_of_frames)], index
    for _ in checked_frames(frames, syntax, layout, first):
        pass

def _offset_tables(path: Path | None, ds: Dataset):
    """(the Pixel Data value in memory or None, where it starts in `path`, the Extended
    Offset Table and its lengths or None)."""
    elem = ds.get_item(0x7FE00010, keep_deferred=True)
    extended = None
    if "ExtendedOffsetTable" in ds:
        extended = (ds.ExtendedOffsetTable, ds.ExtendedOffsetTableLengths)
    in_memory = elem.value if isinstance(elem.value, (bytes, bytearray)) else None
    if in_memory is None and path is None:
        path = getattr(ds, "filename", None)
    return path, in_memory, elem.value_tell, extended


def encoded_frames(path: Path | None, ds: Dataset, count: int) -> Iterator[bytes]:
    """The encapsulated frames of `path` (None: `ds`'s own file, or its value held in
    memory) as they are stored, one at a time (a frame's fragments joined), found through
    its offset tables as pydicom finds them. What is needed of `ds` is taken now: the
    caller may make the output's header of it next."""
    path, in_memory, offset, extended = _offset_tables(path, ds)
    return _stored_frames(path, in_memory, offset, count, extended)


def _stored_frames(path: Path, in_memory: bytes | None, offset: int | None, count: int,
                   extended) -> Iterator[bytes]:
    from pydicom.encaps import generate_frames

    try:
        if in_memory is not None:
            yield from generate_frames(in_memory, number_of_frames=count,
                                       extended_offsets=extended)
            return
        with open(path, "rb") as fp:
            fp.seek(offset)
            yield from generate_frames(fp, number_of_frames=count, extended_offsets=extended)
    except DicompressError:
        raise
    except Exception as exc:  # pydicom's fragment walk: the pixel data, not our code
        raise CorruptPixelData(f"the encapsulated Pixel Data cannot be read: {exc}") from exc


def _stored_frame(path: Path | None, ds: Dataset, index: int, count: int) -> bytes:
    """Stored frame `index` (0-based) alone, found as pydicom finds it to decode it (its
    offset tables, else a walk of the fragments)."""
    from pydicom.encaps import get_frame

    path, in_memory, offset, extended = _offset_tables(path, ds)
    try:
        if in_memory is not None:
            return get_frame(in_memory, index, extended_offsets=extended,
                             number_of_frames=count)
        with open(path, "rb") as fp:
            fp.seek(offset)
            return get_frame(fp, index, extended_offsets=extended, number_of_frames=count)
    except DicompressError:
        raise
    except Exception as exc:  # pydicom's fragment walk: the pixel data, not our code
        raise CorruptPixelData(f"the encapsulated Pixel Data cannot be read: {exc}") from exc
