"""One frame through one choice (`measure`: encode and decode timed alone, quality on the
stored values), and the rows that add measures up over a scope (a series, or all frames).

Sizes are the encoded frames as `transcode` stores them (each fragment padded to even
length; 1-bit native packed); speeds are per core (see `dicompress.compare.run`)."""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from dicompress.compare.choices import Choice
from dicompress.compare.metrics import Quality, quality, visible
from dicompress.compare.selection import FrameRef, StoredFrame
from dicompress.layout import FrameLayout
from dicompress.pipeline.decoded import as_rgb, us_colour_as_rgb


@dataclass(frozen=True)
class Measure:
    """One frame through one choice."""

    choice: str
    ref: FrameRef
    raw_bytes: int
    stored_bytes: int
    encode_s: float
    decode_s: float
    quality: Quality
    bits_stored: int

    @property
    def psnr(self) -> float:
        return self.quality.psnr


#: Encoding and decoding are timed one at a time: a codec timed while another thread
#: codes would be measured at the speed of a shared core. Quality metrics (SSIM is the
#: heavy part) run outside the lock, on the other cores.
_TIMING = threading.Lock()


def measure(choice: Choice, ref: FrameRef, layout: FrameLayout, arr: np.ndarray) -> Measure:
    if us_colour_as_rgb(ref.us_colour, layout, choice.codec):
        layout, _, arr, _ = as_rgb(layout, {}, arr, iter(()))  # as transcode codes it
    with _TIMING:
        start = time.perf_counter()
        data = choice.codec.encode_frame(arr, layout, 1)
        encoded = time.perf_counter()
        back = choice.codec.decode_frame(data, layout)
        decoded = time.perf_counter()
    if layout.bits_allocated == 1 and not choice.codec.encapsulated:
        stored = -(-arr.size // 8)  # native 1-bit is packed, 8 pixels a byte
    else:
        stored = len(data) + (len(data) & 1)
    return Measure(choice.label, ref, -(-arr.size // 8) if layout.bits_allocated == 1
                   else arr.nbytes, stored,
                   encoded - start, decoded - encoded,
                   quality(arr, back, layout.bits_stored, ref.view), layout.bits_stored)


def measure_transformed(choice: Choice, ref: FrameRef, layout: FrameLayout, arr: np.ndarray,
                        source: StoredFrame) -> Measure:
    """One frame through a codec that transforms the stored frame as it is encoded
    (`Codec.from_encoded`, as `transcode` does): its size, the time of the transform
    and of decoding its output, and the added error against the source's decoded
    pixels `arr` (none, for a transform that keeps the JPEG bitstream)."""
    codec = choice.codec
    with _TIMING:
        start = time.perf_counter()
        data = codec.from_encoded(source.fragment, source.transfer_syntax, source.layout)
        encoded = time.perf_counter()
        back = codec.decode_frame(data, source.layout)
        decoded = time.perf_counter()
    return Measure(choice.label, ref, arr.nbytes, len(data) + (len(data) & 1),
                   encoded - start, decoded - encoded,
                   quality(arr, back, layout.bits_stored, ref.view), layout.bits_stored)


@dataclass
class Row:
    """One choice over a scope (a series, or all frames)."""

    choice: str
    lossless: bool
    scope: str
    frames: int = 0
    raw_bytes: int = 0
    stored_bytes: int = 0
    encode_s: float = 0.0
    decode_s: float = 0.0
    samples: int = 0
    squared_error: float = 0.0
    max_error: int = 0
    max_abs_error_modality: float = 0.0
    max_display_error: float = 0.0
    windows: dict[str, float] = field(default_factory=dict)  # window -> worst display error
    ssim_sum: float = 0.0
    ssim_min: float = 1.0
    psnr_scaled: float = 0.0  # sum of MSE / peak^2 (each frame's own peak)
    worst: tuple[str, int, int, float] | None = None  # path, frame (1-based), slice, PSNR
    not_applicable: str = ""  # why the codec cannot code these frames

    def add(self, m: Measure) -> None:
        self.frames += 1
        self.raw_bytes += m.raw_bytes
        self.stored_bytes += m.stored_bytes
        self.encode_s += m.encode_s
        self.decode_s += m.decode_s
        self.samples += m.quality.samples
        self.squared_error += m.quality.squared_error
        self.max_error = max(self.max_error, m.quality.max_error)
        self.max_abs_error_modality = max(self.max_abs_error_modality,
                                          m.quality.max_abs_error_modality)
        self.max_display_error = max(self.max_display_error, m.quality.max_display_error)
        window = m.quality.window
        self.windows[window] = max(self.windows.get(window, 0.0), m.quality.max_display_error)
        self.ssim_sum += m.quality.ssim
        self.ssim_min = min(self.ssim_min, m.quality.ssim)
        self.psnr_scaled += m.quality.mse / (m.quality.peak * m.quality.peak)
        value = m.psnr
        if not math.isinf(value) and (self.worst is None or value < self.worst[3]):
            self.worst = (str(m.ref.path), m.ref.index + 1, m.ref.slice, value)

    # -- derived ---------------------------------------------------------------------
    @property
    def ratio(self) -> float:
        return self.raw_bytes / self.stored_bytes if self.stored_bytes else 0.0

    @property
    def encode_mb_s(self) -> float:
        return self.raw_bytes / 1e6 / self.encode_s if self.encode_s else 0.0

    @property
    def decode_mb_s(self) -> float:
        return self.raw_bytes / 1e6 / self.decode_s if self.decode_s else 0.0

    @property
    def rmse(self) -> float:
        return math.sqrt(self.squared_error / self.samples) if self.samples else 0.0

    @property
    def psnr(self) -> float:
        """PSNR of the mean (range-normalised) squared error over the frames."""
        if not self.frames:
            return 0.0
        mean = self.psnr_scaled / self.frames
        return math.inf if mean <= 0 else -10.0 * math.log10(mean)

    @property
    def ssim(self) -> float:
        return self.ssim_sum / self.frames if self.frames else 0.0

    @property
    def visible_at(self) -> list[str]:
        """The windows at which the worst display error is flagged visible."""
        return [w for w, error in self.windows.items() if visible(error)]

    @property
    def partial(self) -> bool:
        """Some frames could not be coded (not_applicable says why)."""
        return bool(self.not_applicable) and self.frames > 0

    @property
    def lossless_violated(self) -> bool:
        return self.lossless and self.max_error > 0

    def as_dict(self) -> dict:
        finite = (lambda v: None if v is None or math.isinf(v) else round(v, 4))
        return {
            "codec": self.choice, "lossless": self.lossless, "scope": self.scope,
            "frames": self.frames, "raw_bytes": self.raw_bytes, "bytes": self.stored_bytes,
            "ratio": round(self.ratio, 4), "encode_mb_s": round(self.encode_mb_s, 2),
            "decode_mb_s": round(self.decode_mb_s, 2), "max_error": self.max_error,
            "max_abs_error_modality": round(self.max_abs_error_modality, 4),
            "max_display_error": round(self.max_display_error, 3),
            "windows": sorted(self.windows), "visible_at": self.visible_at,
            "rmse": round(self.rmse, 4), "psnr_db": finite(self.psnr),
            "ssim": round(self.ssim, 6), "ssim_min": round(self.ssim_min, 6),
            "worst": None if self.worst is None else {
                "path": self.worst[0], "frame": self.worst[1], "slice": self.worst[2],
                "psnr_db": finite(self.worst[3])},
            "not_applicable": self.not_applicable or None, "partial": self.partial,
            "lossless_violated": self.lossless_violated,
        }


@dataclass
class Comparison:
    choices: list[Choice]
    overall: dict[str, Row] = field(default_factory=dict)
    per_series: dict[tuple[str, str], Row] = field(default_factory=dict)
    frames: int = 0
    series: list[str] = field(default_factory=list)
    #: Every file of each series (label -> paths), sampled or not.
    series_files: dict[str, list[Path]] = field(default_factory=dict)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    seconds: float = 0.0
    #: The window display errors were measured at (None: each file's default).
    window: str | None = None

    @property
    def violations(self) -> list[Row]:
        return [r for r in self.overall.values() if r.lossless_violated]

    def as_dict(self) -> dict:
        return {
            "frames": self.frames, "series": self.series, "seconds": round(self.seconds, 3),
            "codecs": [self.overall[c.label].as_dict() for c in self.choices],
            "per_series": [row.as_dict() for row in self.per_series.values()],
            "skipped": [{"path": p, "reason": r} for p, r in self.skipped],
            "failed": [{"path": p, "reason": r} for p, r in self.failed],
        }
