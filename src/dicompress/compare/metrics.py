"""Image quality on the stored values: maximum error, RMSE, PSNR and SSIM.

Everything is computed on the pixel values as stored (Bits Stored deep, signed or
not), never on an 8-bit rendering: a 12-bit CT's error of 40 is 40 HU, not 40/16
of a grey level. The peak of PSNR is the Bits Stored range, ``2**bits_stored - 1``,
the convention of DICOM's Lossy Image Compression literature and of
`dicompress.codecs.search.psnr`. SSIM's dynamic range L is the source frame's own
value range (max - min, at least 1): against the nominal range of 16 bits the SSIM
constants would swamp a CT's real contrast and every frame would score 1.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

# SSIM as Wang et al. (2004): an 11-tap Gaussian window, sigma 1.5, K1 0.01, K2 0.03,
# means over the window positions that fit inside the image ("valid").
SSIM_SIGMA = 1.5
SSIM_RADIUS = 5
SSIM_K1, SSIM_K2 = 0.01, 0.03


@dataclass(frozen=True)
class Quality:
    """Error of one decoded frame against its source."""

    samples: int
    max_error: int
    #: Sum of squared errors (kept so that RMSE/PSNR over many frames are exact).
    squared_error: float
    ssim: float

    @property
    def mse(self) -> float:
        return self.squared_error / self.samples if self.samples else 0.0

    @property
    def rmse(self) -> float:
        return math.sqrt(self.mse)


def psnr_from_mse(mse: float, bits_stored: int) -> float:
    """PSNR in dB for a mean squared error; the peak is the Bits Stored range."""
    if mse <= 0.0:
        return math.inf
    peak = float(2**bits_stored - 1)
    return 10.0 * math.log10(peak * peak / mse)


def _gaussian() -> np.ndarray:
    x = np.arange(-SSIM_RADIUS, SSIM_RADIUS + 1, dtype=np.float64)
    w = np.exp(-(x * x) / (2 * SSIM_SIGMA * SSIM_SIGMA))
    return w / w.sum()


_WINDOW = _gaussian()


def _filter(img: np.ndarray) -> np.ndarray:
    """Separable Gaussian filter, valid region only: (h - 10, w - 10)."""
    taps = len(_WINDOW)
    rows = sum(_WINDOW[k] * img[k:img.shape[0] - taps + 1 + k, :] for k in range(taps))
    return sum(_WINDOW[k] * rows[:, k:rows.shape[1] - taps + 1 + k] for k in range(taps))


def ssim(reference: np.ndarray, decoded: np.ndarray, data_range: float) -> float:
    """Mean structural similarity of two single-channel images (1.0 when identical).

    Images smaller than the 11 x 11 window are compared as one window (global SSIM).
    """
    x = reference.astype(np.float64)
    y = decoded.astype(np.float64)
    c1 = (SSIM_K1 * data_range) ** 2
    c2 = (SSIM_K2 * data_range) ** 2
    if min(x.shape) < len(_WINDOW):
        mx, my = x.mean(), y.mean()
        vx, vy = x.var(), y.var()
        cov = ((x - mx) * (y - my)).mean()
        return float(((2 * mx * my + c1) * (2 * cov + c2)) /
                     ((mx * mx + my * my + c1) * (vx + vy + c2)))
    mx, my = _filter(x), _filter(y)
    vx = _filter(x * x) - mx * mx
    vy = _filter(y * y) - my * my
    cov = _filter(x * y) - mx * my
    value = ((2 * mx * my + c1) * (2 * cov + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))
    return float(value.mean())


def quality(reference: np.ndarray, decoded: np.ndarray, bits_stored: int) -> Quality:
    """The error of `decoded` against `reference`, both (rows, cols[, samples])."""
    if reference.shape != decoded.shape:
        raise ValueError(f"decoded shape {decoded.shape} differs from the source's {reference.shape}")
    diff = reference.astype(np.int64) - decoded.astype(np.int64)
    squared = float(np.dot(diff.ravel().astype(np.float64), diff.ravel().astype(np.float64)))
    max_error = int(np.abs(diff).max(initial=0))
    data_range = float(max(1, int(reference.max()) - int(reference.min()))) if reference.size else 1.0
    if max_error == 0:
        value = 1.0
    elif reference.ndim == 3:  # colour: the mean of the channels' SSIM
        value = float(np.mean([ssim(reference[..., c], decoded[..., c], data_range)
                               for c in range(reference.shape[2])]))
    else:
        value = ssim(reference, decoded, data_range)
    return Quality(samples=diff.size, max_error=max_error, squared_error=squared, ssim=value)
