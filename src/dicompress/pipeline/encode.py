"""Encoding frames: the target codec on each frame, and (when verifying) the frame decoded
again: bit-exact for lossless codecs, else its loss measured."""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from dicompress.codecs import Codec
from dicompress.codecs.search import psnr, psnr_peak
from dicompress.errors import CorruptPixelData, DisplayError, VerificationFailed
from dicompress.layout import FrameLayout


#: A display error above this many levels of an 8-bit display is flagged "visible":
#: one level is the smallest step such a display can show, and on a display calibrated
#: to the Grayscale Standard Display Function (PS3.14) the 256 levels of an 8-bit path
#: span several hundred just-noticeable differences, so more than one level is more than
#: one JND (docs/compare.md works the numbers).
VISIBLE_LEVELS = 1.0

# What of a header the display pipeline reads (copied, with the functional groups'
# values of an Enhanced multi-frame object put where voi.py looks for them).
_DISPLAY_KEYWORDS = ("PhotometricInterpretation", "SamplesPerPixel", "BitsStored",
                     "PixelRepresentation", "RescaleSlope", "RescaleIntercept",
                     "ModalityLUTSequence", "WindowCenter", "WindowWidth",
                     "WindowCenterWidthExplanation", "VOILUTFunction", "VOILUTSequence")


class FrameView:
    """How one frame's stored values are read: the modality transform (Rescale Slope and
    Intercept, or the Modality LUT) and the display window, as `dicompress.voi` applies
    them.

    Parameters
    ----------
    ds : Dataset
        The source's header (read from; nothing is kept of it but what display needs).
    frame : int
        0-based frame: an Enhanced multi-frame object's Pixel Value Transformation and
        Frame VOI LUT come from its Shared, then its Per-Frame Functional Groups.
    window : optional
        A preset name, "C,W", "auto", "file[:N]" (`voi.resolve_window`); None: the file's
        first window, else its VOI LUT Sequence, else auto (0.5-99.5 percentiles).
    """

    def __init__(self, ds, frame: int = 0, window=None) -> None:
        from pydicom.dataset import Dataset

        header = Dataset()
        for keyword in _DISPLAY_KEYWORDS:
            if keyword in ds:
                setattr(header, keyword, ds[keyword].value)
        for group in _functional_groups(ds, frame):
            for sequence in ("PixelValueTransformationSequence", "FrameVOILUTSequence"):
                for item in group.get(sequence, [])[:1]:
                    for keyword in _DISPLAY_KEYWORDS:
                        if keyword in item:
                            setattr(header, keyword, item[keyword].value)
        self.header = header
        self.window = window
        photometric = str(header.get("PhotometricInterpretation", "MONOCHROME2")).upper()
        self.grayscale = photometric.startswith("MONOCHROME")

    def resolve(self, reference: np.ndarray):
        """The window of this frame (resolved on the source frame for "auto")."""
        from dicompress import voi

        return voi.resolve_window(self.header, self.window,
                                  lambda: voi.modality_values(self.header, reference))

    def modality(self, arr: np.ndarray) -> np.ndarray:
        """Values in the modality's units (HU for CT); colour samples as stored."""
        from dicompress import voi

        if not self.grayscale:
            return arr.astype(np.float64)
        return voi.modality_values(self.header, arr)

    def display(self, arr: np.ndarray, window, bits_stored: int) -> np.ndarray:
        """Display levels 0..255 (float, to 1/257 of a level) at `window`; colour
        samples scaled from Bits Stored to 8 bits."""
        from dicompress import voi

        if not self.grayscale:
            return arr.astype(np.float64) * (255.0 / max(1, 2**bits_stored - 1))
        return voi.render(self.header, window=window, bits=16, arr=arr,
                          invert=False).astype(np.float64) / 257.0


def frame_views(ds, window=None) -> list[FrameView]:
    """How each frame of `ds` is read: one view for all frames, or one per frame when an
    Enhanced object's Per-Frame Functional Groups carry their own rescale or window."""
    per_frame = ds.get("PerFrameFunctionalGroupsSequence", [])
    if any("PixelValueTransformationSequence" in group or "FrameVOILUTSequence" in group
           for group in per_frame):
        return [FrameView(ds, n, window) for n in range(len(per_frame))]
    return [FrameView(ds, 0, window)]


def window_label(window) -> str:
    """A window as a reader names it: ``C40/W400``, with its explanation or preset."""
    if window is None:
        return "stored range"
    if isinstance(window, tuple):
        return "VOI LUT"
    if window.explanation.startswith("auto"):  # one per frame: named once for all
        return "auto (p0.5-p99.5 of each frame)"
    name = f" {window.explanation}" if window.explanation else ""
    return f"C{window.center:g}/W{window.width:g}{name}"


def _functional_groups(ds, frame: int) -> list:
    """The Shared, then this frame's Per-Frame Functional Groups item (PS3.3 C.7.6.16)."""
    groups = list(ds.get("SharedFunctionalGroupsSequence", []))[:1]
    per_frame = ds.get("PerFrameFunctionalGroupsSequence", [])
    if 0 <= frame < len(per_frame):
        groups.append(per_frame[frame])
    return groups


@dataclass(frozen=True)
class FrameLoss:
    """The loss of one decoded frame against its source (docs/compare.md).

    Attributes
    ----------
    samples, max_error, squared_error
        Sample count, the worst absolute error and the sum of squared errors, on the
        stored values.
    peak
        The PSNR peak: the source frame's dynamic range (`codecs.search.psnr_peak`).
    max_abs_error_modality
        The worst absolute error in the modality's units (HU for CT).
    max_display_error
        The worst error in levels of an 8-bit display at `window`.
    window
        The label of the window the display error was taken at.
    ssim
        SSIM on the display levels, when `frame_loss` was given a similarity.
    """

    samples: int
    max_error: int
    squared_error: float
    peak: float
    max_abs_error_modality: float
    max_display_error: float
    window: str
    #: SSIM on the display levels (1.0 when not asked or identical).
    ssim: float = 1.0

    @property
    def mse(self) -> float:
        return self.squared_error / self.samples if self.samples else 0.0

    @property
    def rmse(self) -> float:
        return math.sqrt(self.mse)

    @property
    def psnr(self) -> float:
        mse = self.mse
        return math.inf if mse <= 0 else 10.0 * math.log10(self.peak * self.peak / mse)


def frame_loss(reference: np.ndarray, decoded: np.ndarray, view: FrameView, bits_stored: int,
               *, similarity: Callable[[np.ndarray, np.ndarray], float] | None = None
               ) -> FrameLoss:
    """The loss of `decoded` against `reference` (both as stored) under `view`;
    `similarity(source levels, decoded levels)` (SSIM) is taken on the display levels."""
    diff = reference.astype(np.int64) - decoded.astype(np.int64)
    flat = diff.ravel().astype(np.float64)
    max_error = int(np.abs(diff).max(initial=0))
    modality_error = display_error = 0.0
    similar = 1.0
    window, label = _window(view, reference)
    if max_error:
        modality_error = float(np.abs(view.modality(reference) - view.modality(decoded)).max())
        try:
            shown = view.display(reference, window, bits_stored)
            shown_decoded = view.display(decoded, window, bits_stored)
        except DisplayError as exc:  # a window the display pipeline refuses (width < 1)
            window, label = _auto(view, reference, exc)
            shown = view.display(reference, window, bits_stored)
            shown_decoded = view.display(decoded, window, bits_stored)
        display_error = float(np.abs(shown - shown_decoded).max())
        if similarity is not None:
            similar = similarity(shown, shown_decoded)
    return FrameLoss(diff.size, max_error, float(np.dot(flat, flat)), psnr_peak(reference),
                     modality_error, display_error, label, similar)


def _window(view: FrameView, reference: np.ndarray) -> tuple:
    """The frame's window and its label; a window the file cannot give (``file:3`` of a
    file with one) falls back to auto, and the label says so."""
    if not view.grayscale:
        return None, window_label(None)
    try:
        window = view.resolve(reference)
    except DisplayError as exc:
        return _auto(view, reference, exc)
    return window, window_label(window)


def _auto(view: FrameView, reference: np.ndarray, why: Exception) -> tuple:
    from dicompress import voi

    window = voi.auto_window(view.modality(reference))
    asked = view.window or "the file's window"
    return window, f"auto ({asked} unusable: {str(why)[:60]})"


class LossStats:
    """Worst-case loss over the frames of one lossy file (`frame_loss` of each, frame n
    read through `views[n]`, or the only view)."""

    def __init__(self, views: list[FrameView] | None = None) -> None:
        self.count = 0
        self.max_error = 0
        self.max_abs_error_modality = 0.0
        self.max_display_error = 0.0
        self.window = ""
        self.psnr = math.inf
        self.views = views or []
        self._lock = threading.Lock()

    def add(self, source: np.ndarray, decoded: np.ndarray, bits_stored: int,
            index: int = 0) -> None:
        if not self.views:  # no header: stored values, no display window
            loss = FrameLoss(source.size,
                             int(np.abs(source.astype(np.int64) - decoded.astype(np.int64))
                                 .max(initial=0)), 0.0, 1.0, 0.0, 0.0, "")
            value = psnr(source, decoded)
            error = float(loss.max_error)
        else:
            view = self.views[index] if index < len(self.views) else self.views[0]
            loss = frame_loss(source, decoded, view, bits_stored)
            value, error = loss.psnr, loss.max_abs_error_modality
        with self._lock:
            self.count += 1
            self.max_error = max(self.max_error, loss.max_error)
            self.max_abs_error_modality = max(self.max_abs_error_modality, error)
            self.max_display_error = max(self.max_display_error, loss.max_display_error)
            self.window = self.window or loss.window
            self.psnr = min(self.psnr, value)


def frame_encoder(codec: Codec, layout: FrameLayout, shape: tuple[int, ...], dtype: np.dtype,
                  *, verify: bool, codec_threads: int,
                  frame_filter: Callable[[np.ndarray], np.ndarray] | None = None,
                  stats: LossStats | None = None) -> Callable[[np.ndarray], bytes]:
    """The function that encodes one frame (of `shape` and `dtype`, as frame 1 decoded)
    and, with `verify`, decodes it again: bit-exact for lossless codecs, else the loss
    goes to `stats` (`index`: the frame's 0-based number, for its view)."""
    def encode(arr: np.ndarray, index: int = 0) -> bytes:
        if arr.shape != shape or arr.dtype != dtype:
            raise CorruptPixelData(f"frame decodes to {arr.shape} {arr.dtype}, "
                                   f"frame 1 to {shape} {dtype}")
        if frame_filter is not None:
            arr = frame_filter(arr)
        data = codec.encode_frame(arr, layout, codec_threads)
        if verify:
            back = codec.decode_frame(data, layout)
            if codec.lossless:
                if not np.array_equal(back, arr):
                    raise VerificationFailed("an encoded frame does not decode to the source values")
            else:
                if back.shape != arr.shape:
                    raise VerificationFailed(f"a lossy frame decodes to {back.shape}, not {arr.shape}")
                if stats is not None:
                    stats.add(arr, back, layout.bits_stored, index)
        return data

    return encode
