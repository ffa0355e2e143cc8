"""Searching a lossy codec's knob (ratio, quantisation step, quality) for a target.

Lossy codecs expose one monotone knob; a target PSNR (or, for coders without
rate control, a target ratio) is met by bisection on it, frame by frame.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from dicompress.codecs.registry import Option

#: A target PSNR: the option of every lossy codec that searches its knob for one.
PSNR_TARGET = Option("psnr", float, None, low=10.0, high=200.0, metavar="DB",
                     help="target PSNR, peak = the frame's own value range (max - min), "
                          "searched per frame (docs/compare.md)")


def psnr_peak(reference: np.ndarray) -> float:
    """The PSNR peak of a source frame: its actual dynamic range, max - min (at least 1).

    Not the Bits Stored range: a CT stored in 16 bits whose values span 4,000 HU would
    gain 24 dB against 65,535 without being any closer to the source (docs/compare.md).
    """
    if reference.size == 0:
        return 1.0
    return float(max(1, int(reference.max()) - int(reference.min())))


def psnr(reference: np.ndarray, decoded: np.ndarray, bits_stored: int | None = None) -> float:
    """PSNR in dB of `decoded` against `reference`; the peak is `psnr_peak(reference)`.

    `bits_stored` is not used (the peak does not depend on it); it is accepted so that
    callers written for the former Bits Stored peak keep working.
    """
    diff = reference.astype(np.float64) - decoded.astype(np.float64)
    mse = float(np.mean(diff * diff))
    if mse == 0.0:
        return math.inf
    peak = psnr_peak(reference)
    return 10.0 * math.log10(peak * peak / mse)


def bisect_knob(
    encode: Callable[[float], bytes],
    acceptable: Callable[[bytes], bool],
    low: float,
    high: float,
    *,
    steps: int = 9,
    geometric: bool = True,
) -> bytes:
    """The encoding at the knob value closest to `high` that is still `acceptable`.

    `acceptable` must hold at `low` and turn false somewhere towards `high`
    (for example: knob = compression ratio, acceptable = PSNR >= target). If it
    does not hold even at `low`, that encoding is returned (the best there is);
    if it holds at `high`, the `high` encoding is returned.
    """
    best = encode(low)
    if not acceptable(best):
        return best
    top = encode(high)
    if acceptable(top):
        return top
    for _ in range(steps):
        mid = math.sqrt(low * high) if geometric else (low + high) / 2
        data = encode(mid)
        if acceptable(data):
            low, best = mid, data
        else:
            high = mid
    return best
