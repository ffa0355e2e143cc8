"""DICOM RLE Lossless (PS3.5 Annex G): the public surface of the native codec.

`encode_frame` and `decode_frame` work on one frame; the C code releases the GIL,
so frames of a multi-frame image can be coded in parallel on threads
(`encode_frames`, `decode_frames`).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from collections.abc import Iterable, Sequence
import os

import numpy as np

from dicompress import _rle
from dicompress.errors import CorruptPixelData, UnsupportedLayout

__all__ = ["encode_frame", "decode_frame", "encode_frames", "decode_frames", "CorruptPixelData"]

_MAX_SEGMENTS = 15


def _as_little_endian(arr: np.ndarray) -> np.ndarray:
    if arr.dtype.byteorder == ">" or (arr.dtype.byteorder == "=" and np.little_endian is False):
        arr = arr.astype(arr.dtype.newbyteorder("<"))
    return np.ascontiguousarray(arr)


def encode_frame(arr: np.ndarray, *, planar_configuration: int | None = None) -> bytes:
    """Return one frame of pixels as a DICOM RLE fragment.

    Parameters
    ----------
    arr : numpy.ndarray
        ``(rows, columns)`` for one sample per pixel; ``(rows, columns, samples)``
        for colour (pixel-interleaved), or ``(samples, rows, columns)`` with
        ``planar_configuration=1``. Integer samples of 8, 16, 32 or 64 bits,
        signed or unsigned, any byte order.
    planar_configuration : int, optional
        Only for 3-D input: 0 (default) for samples last, 1 for samples first.

    Returns
    -------
    bytes
        The 64-byte RLE header followed by the segments, most significant
        byte first, sample by sample (PS3.5 G.2), each padded to even length.
    """
    arr = np.asarray(arr)
    if arr.dtype == np.bool_:
        raise UnsupportedLayout(
            "1-bit pixel data cannot be RLE encoded: DICOM RLE codes whole bytes "
            "(Bits Allocated 8, 16 or 32)"
        )
    if arr.dtype.kind not in "ui":
        raise UnsupportedLayout(f"RLE encodes integer samples, not {arr.dtype}")
    planar = False
    if arr.ndim == 2:
        rows, columns = arr.shape
        samples = 1
    elif arr.ndim == 3:
        if planar_configuration == 1:
            samples, rows, columns = arr.shape
            planar = True
        else:
            rows, columns, samples = arr.shape
    else:
        raise UnsupportedLayout(f"expected a 2-D or 3-D frame, got shape {arr.shape}")
    nseg = samples * arr.dtype.itemsize
    if nseg > _MAX_SEGMENTS:
        raise UnsupportedLayout(
            f"{samples} samples of {arr.dtype.itemsize * 8} bits need {nseg} RLE segments; "
            "PS3.5 G.2 allows at most 15"
        )
    if rows == 0 or columns == 0:
        raise UnsupportedLayout("cannot encode an empty frame")
    data = _as_little_endian(arr).reshape(-1).view(np.uint8)
    return _rle.encode(data, rows, columns, samples, arr.dtype.itemsize, planar)


def decode_frame(
    data: bytes | bytearray | memoryview,
    rows: int,
    columns: int,
    samples_per_pixel: int,
    bits_allocated: int,
    pixel_representation: int = 0,
    *,
    planar_configuration: int = 0,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """Decode one RLE fragment to an array.

    Returns shape ``(rows, columns)`` for one sample per pixel, else
    ``(rows, columns, samples)`` (or ``(samples, rows, columns)`` with
    ``planar_configuration=1``), in native byte order.

    Raises
    ------
    dicompress.errors.CorruptPixelData
        If the header or a segment disagrees with itself or with the layout.
    """
    if bits_allocated == 1:
        raise UnsupportedLayout("RLE cannot carry 1-bit pixel data")
    if bits_allocated not in (8, 16, 32, 64):
        raise UnsupportedLayout(f"RLE decodes 8, 16, 32 or 64 bits allocated, not {bits_allocated}")
    itemsize = bits_allocated // 8
    dtype = np.dtype(f"<{'i' if pixel_representation else 'u'}{itemsize}")
    planar = planar_configuration == 1 and samples_per_pixel > 1
    if samples_per_pixel == 1:
        shape: tuple[int, ...] = (rows, columns)
    elif planar:
        shape = (samples_per_pixel, rows, columns)
    else:
        shape = (rows, columns, samples_per_pixel)
    if out is None:
        out = np.empty(shape, dtype=dtype)
    elif out.shape != shape or out.dtype != dtype or not out.flags.c_contiguous:
        raise ValueError(f"out must be a C-contiguous {dtype} array of shape {shape}")
    _rle.decode(
        memoryview(data).cast("B"), out.reshape(-1).view(np.uint8), rows, columns,
        samples_per_pixel, itemsize, planar,
    )
    return out


def _workers(threads: int | None) -> int:
    return max(1, threads or os.cpu_count() or 1)


def encode_frames(frames: Iterable[np.ndarray], *, threads: int | None = None) -> list[bytes]:
    """Encode frames in parallel on threads (the C encoder releases the GIL)."""
    frames = list(frames)
    if len(frames) < 2 or _workers(threads) == 1:
        return [encode_frame(f) for f in frames]
    with ThreadPoolExecutor(_workers(threads)) as pool:
        return list(pool.map(encode_frame, frames))


def decode_frames(
    fragments: Sequence[bytes], rows: int, columns: int, samples_per_pixel: int,
    bits_allocated: int, pixel_representation: int = 0, *, threads: int | None = None,
) -> np.ndarray:
    """Decode fragments into one ``(frames, rows, columns[, samples])`` array, on threads."""
    itemsize = bits_allocated // 8
    dtype = np.dtype(f"<{'i' if pixel_representation else 'u'}{itemsize}")
    shape = (rows, columns) if samples_per_pixel == 1 else (rows, columns, samples_per_pixel)
    out = np.empty((len(fragments), *shape), dtype=dtype)

    def one(i: int) -> None:
        decode_frame(fragments[i], rows, columns, samples_per_pixel, bits_allocated,
                     pixel_representation, out=out[i])

    if len(fragments) < 2 or _workers(threads) == 1:
        for i in range(len(fragments)):
            one(i)
    else:
        with ThreadPoolExecutor(_workers(threads)) as pool:
            list(pool.map(one, range(len(fragments))))
    return out
