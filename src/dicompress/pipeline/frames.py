"""Frame sources: the frames of a file, one at a time, as the codecs take them.

Native little-endian single-sample frames (the bulk of an archive) are read straight from
the file's bytes; everything else is decoded by pydicom's decoders (ours registered
among them), each frame checked first (`pipeline.codestream`: its codestream header
against the DICOM header, the most its bytes can decode to) so that no native decoder
sees a frame that disagrees with the header. Either way a frame comes out as pydicom
gives it: native byte order, unused bits above Bits Stored replaced by the sign (or
zero) extension of the stored value (PS3.5 8.1.1).
"""

from __future__ import annotations

import contextlib
import itertools
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from dicompress import uids
from dicompress.errors import (CorruptPixelData, DicompressError, NotAnImage,
                               reason_of, refused_by_a_library)
from dicompress.layout import FrameLayout
from dicompress.pipeline.decoded import decoded_layout
from dicompress.pipeline.read import read_header, transfer_syntax_of
from dicompress.pipeline.stored import encoded_frames, stored_frame_checks

if TYPE_CHECKING:
    from pydicom.dataset import Dataset

    from dicompress.batch.pools import Isolated


def bounded_map(fn: Callable, items: Iterable, threads: int) -> Iterator:
    """Like ``pool.map`` but keeps at most 2 x `threads` items in flight (bounded memory)."""
    if threads <= 1:
        for item in items:
            yield fn(item)
        return
    with ThreadPoolExecutor(threads) as pool:
        pending: deque = deque()
        for item in items:
            pending.append(pool.submit(fn, item))
            if len(pending) >= 2 * threads:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


# -- native frames ----------------------------------------------------------------------
def reads_natively(layout: FrameLayout) -> bool:
    """Whether frames of `layout` are read straight from native little-endian bytes here."""
    return (layout.samples_per_pixel == 1 and layout.bits_allocated in (8, 16, 32)
            and (layout.bits_stored or 0) <= layout.bits_allocated
            and layout.rows * layout.columns > 0)


def native_frames(layout: FrameLayout, offset: int, *, data: bytes | memoryview | None = None,
                  path: Path | None = None, indices: Iterable[int] | None = None
                  ) -> Iterator[np.ndarray]:
    """The frames of native little-endian Pixel Data whose value starts at `offset` of
    `data` (held in memory) or of the file `path` (read a frame at a time): all, or
    those of `indices` (0-based), each read where it lies."""
    dtype, shape = layout.dtype, (layout.rows, layout.columns)
    frame_bytes, count = layout.frame_bytes, layout.frame_pixels
    shift = layout.bits_allocated - (layout.bits_stored or layout.bits_allocated)
    with contextlib.ExitStack() as stack:
        fp = stack.enter_context(open(path, "rb")) if data is None else None
        for k in range(layout.number_of_frames) if indices is None else indices:
            if not 0 <= k < layout.number_of_frames:
                raise CorruptPixelData(f"frame {k + 1} was asked for; the image has "
                                       f"{layout.number_of_frames}")
            start = offset + k * frame_bytes
            if fp is None:
                arr = np.frombuffer(data, dtype, count, start)
                if shift:
                    arr = (arr << shift) >> shift  # a new array: the source stays as read
                elif not arr.flags.aligned:
                    arr = arr.copy()
            else:
                buffer = bytearray(frame_bytes)
                fp.seek(start)
                if fp.readinto(buffer) != frame_bytes:
                    raise CorruptPixelData(f"frame {k + 1} is cut short")
                arr = np.frombuffer(buffer, dtype)
                if shift:
                    np.left_shift(arr, shift, out=arr)
                    np.right_shift(arr, shift, out=arr)
            yield arr.reshape(shape)


_PLAIN_NATIVE = (uids.ExplicitVRLittleEndian, uids.ImplicitVRLittleEndian)


def _native_frames_of(path: Path, ds: Dataset, indices: Iterable[int] | None = None
                      ) -> Iterator[np.ndarray] | None:
    """Frames (all, or those of `indices`) of a little-endian native single-sample image
    read straight from the file; None for anything else (pydicom decodes those)."""
    if transfer_syntax_of(ds) not in _PLAIN_NATIVE or getattr(ds, "preamble", None) is None:
        return None
    try:
        layout = FrameLayout.from_dataset(ds)
        elem = ds.get_item(0x7FE00010, keep_deferred=True)
    except DicompressError:
        return None
    if (not reads_natively(layout) or elem is None or elem.length in (None, 0xFFFFFFFF)
            or elem.length < layout.frame_bytes * layout.number_of_frames):
        return None  # pydicom says what is wrong with it
    if isinstance(elem.value, (bytes, bytearray)):
        if len(elem.value) < layout.frame_bytes * layout.number_of_frames:
            raise CorruptPixelData(f"the Pixel Data holds {len(elem.value)} bytes; the image "
                                   f"needs {layout.frame_bytes * layout.number_of_frames}")
        return native_frames(layout, 0, data=elem.value, indices=indices)
    if elem.value_tell is None:
        return None
    return native_frames(layout, elem.value_tell, path=path, indices=indices)


# -- decoded frames -----------------------------------------------------------------------
def _decoded_frames(path: Path, ds: Dataset, meta: Dataset,
                    declared: FrameLayout) -> Iterator[np.ndarray]:
    """Decoded frames of `path` as stored (no colour conversion).

    From the path, pydicom reads one frame at a time; deflated files (whose bytes cannot
    be seeked) and files without file meta go through the dataset. Each frame's
    codestream is checked before pydicom is asked for it.
    """
    from pydicom.pixels import iter_pixels

    from dicompress.plugins import decoding_plugin

    native = _native_frames_of(path, ds)
    if native is not None:
        yield from native
        return
    ours = _frames_decoded_by_the_table(path, ds)
    if ours is not None:
        yield from ours
        return
    seekable = (getattr(ds, "preamble", None) is not None
                and transfer_syntax_of(ds) != uids.DeflatedExplicitVRLittleEndian)
    checks = stored_frame_checks(path, ds, declared)
    try:
        decoded = iter_pixels(path if seekable else ds, ds_out=meta, raw=True,
                              decoding_plugin=decoding_plugin(transfer_syntax_of(ds)))
        if checks is not None:
            # frame k is checked, then decoded (iter_pixels decodes when asked): the
            # check's error stops the run before pydicom reads that frame
            decoded = (arr for _, arr in zip(checks, decoded))
        for arr in decoded:
            # codecs take native byte order (big-endian sources decode to '>' arrays)
            yield arr if arr.dtype.isnative else arr.astype(arr.dtype.newbyteorder("="))
    except DicompressError:
        raise
    except BaseException as exc:  # pydicom's decoders: the pixel data, not our code
        if not refused_by_a_library(exc):
            raise
        raise CorruptPixelData(f"pixel data cannot be decoded: {decoders_reason(exc)}") from exc


_ALL_FAILED = "Unable to decode as exceptions were raised by all available plugins:"


def decoders_reason(exc: BaseException) -> str:
    """pydicom's "all plugins failed" message on one line: the reason once where every
    decoder gave the same one (the codestream check in front of each: `register(check=True)`), else each
    decoder's reason after its name."""
    text = str(exc)
    if not isinstance(exc, Exception):  # a Rust decoder's panic (`refused_by_a_library`)
        return f"the decoder panicked: {' '.join(text.split())}"
    if not text.startswith(_ALL_FAILED):
        return reason_of(exc)
    reasons = [line.strip().split(": ", 1) for line in text[len(_ALL_FAILED):].splitlines()
               if line.strip()]
    # a decoder whose error had no message (a MemoryError, often) says so
    reasons = [reason if len(reason) == 2 and reason[1].strip()
               else [reason[0].rstrip(":"), "no reason given (out of memory?)"]
               for reason in reasons]
    distinct = {reason[-1] for reason in reasons}
    if len(distinct) == 1:
        return distinct.pop()
    return "; ".join(": ".join(reason) for reason in reasons)


def _frames_decoded_by_the_table(path: Path, ds: Dataset) -> Iterator[np.ndarray] | None:
    """Frames of an encapsulated syntax pydicom has no decoder for but the codec table
    has a codec for (Encapsulated Uncompressed with pydicom 3.0): decoded by that codec;
    None otherwise (pydicom decodes, or says why it cannot)."""
    from pydicom.pixels import get_decoder

    from dicompress.codecs import get_codec
    from dicompress.errors import UnsupportedTransferSyntax

    syntax = transfer_syntax_of(ds)
    try:
        get_decoder(syntax)
        return None
    except NotImplementedError:
        pass
    try:
        codec = get_codec(syntax)
    except UnsupportedTransferSyntax:
        return None
    if not codec.encapsulated:
        return None
    layout = FrameLayout.from_dataset(ds)
    return (codec.decode_frame(frame, layout)
            for frame in encoded_frames(path, ds, layout.number_of_frames))


def start_decoding(path: Path, ds: Dataset, declared: FrameLayout
                   ) -> tuple[FrameLayout, dict[str, Any], np.ndarray, Iterator[np.ndarray]]:
    """Decode frame 1 (it tells the layout of all): layout, attributes, frame 1, the rest."""
    from pydicom.dataset import Dataset

    meta = Dataset()
    frames = _decoded_frames(path, ds, meta, declared)
    first = next(frames, None)
    if first is None:
        raise CorruptPixelData("Pixel Data holds no frames")
    layout, attrs = decoded_layout(ds, declared, meta, first)
    return layout, attrs, first, frames


def iter_frames(path: Path | str) -> tuple[FrameLayout, Iterator[np.ndarray]]:
    """The layout of `path`'s frames as decoded, and the frames (one at a time)."""
    path = Path(path)
    ds = read_header(path)
    if "PixelData" not in ds:
        raise NotAnImage("no Pixel Data (not an image)")
    layout, _, first, frames = start_decoding(path, ds, FrameLayout.from_dataset(ds))
    return layout, itertools.chain([first], frames)


def frames_at(path: Path | str, indices: Iterable[int], decoder: Isolated
              ) -> Iterator[tuple[FrameLayout, np.ndarray]]:
    """Frames `indices` (ascending, 0-based, taken as they are needed) of `path` as
    decoded, each with the layout of the frames, in the order asked.

    Native frames are read straight from the file here, each where it lies; frames that
    need a decoder are decoded in `decoder`'s process, one frame a call, so that a native
    decoder's abort costs this file (`WorkerDied`), not the command. Memory holds a frame
    or two whatever Number of Frames says.
    """
    from pydicom.dataset import Dataset

    path = Path(path)
    ds = read_header(path)
    if "PixelData" not in ds:
        raise NotAnImage("no Pixel Data (not an image)")
    native = _native_frames_of(path, ds, indices)
    if native is not None:
        layout = None
        for arr in native:
            if layout is None:  # as start_decoding says it
                layout = decoded_layout(ds, FrameLayout.from_dataset(ds), Dataset(), arr)[0]
            yield layout, arr
        return
    for index in indices:
        yield decoder.call(_decoded_frame, path, index)


#: In a decoder process (`frames_at`): the file being decoded, its layout, its frames
#: left, and the index of the next one; a call for a later frame of the same file goes on
#: from there (frames are asked for in order), any other starts the file again.
_decoding: list = []


def _decoded_frame(path: Path, index: int) -> tuple[FrameLayout, np.ndarray]:
    """Frame `index` of `path` and the layout of its frames as decoded (runs in the
    decoder process)."""
    if not _decoding or _decoding[0] != path or _decoding[3] > index:
        _decoding[:] = [path, *iter_frames(path), 0]
    _, layout, frames, n = _decoding
    try:
        for arr in frames:
            n += 1
            if n - 1 == index:
                _decoding[3] = n
                return layout, arr
    except BaseException:
        _decoding.clear()
        raise
    _decoding.clear()
    raise CorruptPixelData(f"frame {index + 1} was asked for; the Pixel Data holds {n}")
