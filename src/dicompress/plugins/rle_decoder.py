"""pydicom decoding plugin: RLE Lossless with dicompress's native decoder."""

from __future__ import annotations

import numpy as np

from dicompress import _rle
from dicompress.uids import RLELossless  # not pydicom's: its import registers this module

DECODER_DEPENDENCIES = {RLELossless: ("numpy",)}


def is_available(uid: str) -> bool:
    return uid == RLELossless


def _decode_frame(src: bytes, runner) -> np.ndarray:
    """Return the frame as little-endian samples in planar configuration 1 (a uint8 array).

    RLE segments are planes already, so planar output is the cheap order;
    pydicom reorders when it builds the array.
    """
    if runner.get_option("rle_segment_order", ">") != ">":
        raise ValueError("only the standard segment order (most significant first) is supported")
    rows, columns = runner.rows, runner.columns
    samples, bits = runner.samples_per_pixel, runner.bits_allocated
    if bits % 8:
        raise ValueError(f"RLE cannot carry {bits} bits allocated")
    # Every byte is written by the decoder (or it raises): no need to zero-fill.
    out = np.empty(rows * columns * samples * (bits // 8), dtype=np.uint8)
    _rle.decode(src, out, rows, columns, samples, bits // 8, samples > 1)
    runner.set_option("planar_configuration", 1)
    return out
