"""Image quality as a reader sees it: the worst error in the modality's units and in
display levels, PSNR on the image's own dynamic range, SSIM at the display window.

The definitions are `dicompress.pipeline.encode.frame_loss` (transcode's lossy report
uses the same) and docs/compare.md:

- ``max_error``: the worst absolute error on the stored values;
- ``max_abs_error_modality``: the same after Rescale Slope/Intercept or the Modality LUT
  (HU for CT), as `dicompress.voi` applies them;
- ``max_display_error``: the worst error in levels of an 8-bit display at the frame's
  default window (the file's first, else its VOI LUT, else auto) or a named one;
- PSNR: the peak is the source frame's dynamic range (max - min of its stored values;
  the same in modality units, as the rescale is linear), `codecs.search.psnr_peak`;
- SSIM: on the display levels (0..255) at that window, L = 255.
"""

from __future__ import annotations

import math

import numpy as np

from dicompress.pipeline.encode import VISIBLE_LEVELS, FrameLoss, FrameView, frame_loss

#: One frame's loss (`pipeline.encode.FrameLoss`).
Quality = FrameLoss

# SSIM as Wang et al. (2004): an 11-tap Gaussian window, sigma 1.5, K1 0.01, K2 0.03,
# means over the window positions that fit inside the image ("valid").
SSIM_SIGMA = 1.5
SSIM_RADIUS = 5
SSIM_K1, SSIM_K2 = 0.01, 0.03


def psnr_from_mse(mse: float, peak: float) -> float:
    """PSNR in dB for a mean squared error and a peak (`codecs.search.psnr_peak`)."""
    if mse <= 0.0:
        return math.inf
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


def display_ssim(reference: np.ndarray, decoded: np.ndarray) -> float:
    """SSIM of two display renderings (levels 0..255; colour: the channels' mean)."""
    if reference.ndim == 3:
        return float(np.mean([ssim(reference[..., c], decoded[..., c], 255.0)
                              for c in range(reference.shape[2])]))
    return ssim(reference, decoded, 255.0)


def quality(reference: np.ndarray, decoded: np.ndarray, bits_stored: int,
            view: FrameView | None = None) -> Quality:
    """The loss of `decoded` against `reference`, both (rows, cols[, samples]) as stored.

    `view` says how the frame is read (modality transform, window); without one the
    values are their own modality units, shown at an auto window (colour: as stored).
    """
    if reference.shape != decoded.shape:
        raise ValueError(f"decoded shape {decoded.shape} differs from the source's {reference.shape}")
    if view is None:
        from pydicom.dataset import Dataset

        header = Dataset()
        header.PhotometricInterpretation = "RGB" if reference.ndim == 3 else "MONOCHROME2"
        view = FrameView(header)
    return frame_loss(reference, decoded, view, bits_stored, similarity=display_ssim)


def visible(max_display_error: float) -> bool:
    """Whether a display error is flagged visible (more than `VISIBLE_LEVELS` levels)."""
    return max_display_error > VISIBLE_LEVELS
