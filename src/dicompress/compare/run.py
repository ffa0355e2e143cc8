"""Measure codec choices on the user's own frames: size, speed and quality.

::

    sources -> headers -> series (ordered along the slice normal) -> frames (all, or N
    spread evenly over each series) -> for each frame and each choice, in threads:
    encode (timed) -> decode (timed) -> quality on the stored values -> aggregate

Sizes are the encoded frames as `transcode` stores them (each fragment padded to even
length; 1-bit native packed), so `compare` and `transcode` agree to the byte on the
fragments; the item headers and offset table (12 bytes a frame) are not counted.
Speeds are per core: every encode and decode runs on one thread and is timed alone
(one at a time), while decoding sources and computing metrics run on the other cores.
Quality is measured as `compare.metrics` defines it (docs/compare.md): the worst error in
the modality's units and in display levels at each series' default window (or the one
asked for), PSNR on each frame's dynamic range, SSIM at the display window.
"""

from __future__ import annotations

import itertools
import json
import math
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from dicompress.batch.pools import Isolated
from dicompress.batch.sources import iter_sources, unique
from dicompress.codecs import Codec, available_codecs, get_codec
from dicompress.codecs.registry import compare_defaults
from dicompress.compare.metrics import Quality, quality, visible
from dicompress.errors import (CorruptPixelData, DicompressError, NotAnImage, NotDicom,
                               UnsupportedTransferSyntax, with_context)
from dicompress.export.select import SeriesFrames, group_series
from dicompress.layout import FrameLayout, header_number
from dicompress.pipeline.encode import FrameView
from dicompress.pipeline.frames import (as_rgb, bounded_map, encoded_frames, frames_at, us_colour,
                                        us_colour_as_rgb)
from dicompress.pipeline.read import read_header, transfer_syntax_of

if TYPE_CHECKING:
    from pydicom.dataset import Dataset


def __getattr__(name: str):
    # DEFAULT_CODECS: what compare measures when not told (today every lossless target
    # that codes frames, J2K and HTJ2K lossy at four ratios, JPEG-LS near-lossless at three
    # NEARs, JPEG at two qualities), read off the codec table when asked: codecs may
    # register after import
    if name == "DEFAULT_CODECS":
        return compare_defaults()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@dataclass(frozen=True)
class Choice:
    """A codec with its settings, as the user named it (``j2k-lossy:10``)."""

    label: str
    codec: Codec

    @property
    def lossless(self) -> bool:
        return self.codec.lossless


def parse_codecs(text: str | None) -> list[Choice]:
    """``rle,j2k,j2k-lossy:10,20,jpegls-near:2,jpeg:85`` -> choices; a bare number
    adds another value for the codec before it."""
    choices: list[Choice] = []
    current: str | None = None
    for token in (text or compare_defaults()).split(","):
        token = token.strip()
        if not token:
            continue
        if ":" in token:
            current, value = (part.strip() for part in token.split(":", 1))
        elif _is_number(token):
            if current is None:
                raise UnsupportedTransferSyntax(f"--codecs: {token!r} follows no codec")
            value = token
        else:
            current, value = token, None
        choices.append(_choice(current, value))
    configs = [json.dumps(c.codec.get_config(), sort_keys=True) for c in choices]
    if len(set(configs)) != len(configs):
        raise UnsupportedTransferSyntax(f"--codecs names the same choice twice: {text}")
    return choices


def _is_number(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False


def _choice(name: str, value: str | None) -> Choice:
    codec = get_codec(name)
    if not codec.per_frame:
        raise UnsupportedTransferSyntax(
            f"--codecs {name}: {name} compresses the whole file, not frames; compare it with "
            "`dicompress transcode` sizes")
    if value is None:
        return Choice(codec.name, codec)
    option = codec.value_option
    if option is None:
        raise UnsupportedTransferSyntax(f"--codecs {name}:{value}: {name} takes no value")
    if not _is_number(value):
        raise UnsupportedTransferSyntax(f"--codecs {name}:{value}: the {option} must be a number")
    number = float(value)
    if codec.spec(option).type is int:
        if number != int(number):
            raise UnsupportedTransferSyntax(f"--codecs {name}:{value}: the {option} is a whole number")
        number = int(number)
    configured = codec.configure(**{option: number})
    return Choice(f"{codec.name}:{number:g}", configured)


def offered_transforms(transfer_syntaxes: Iterable[str], *, planning: bool = False
                       ) -> list[Choice]:
    """The table's codecs that take frames only as they are encoded (``encodes_pixels``
    False: jpegxl-jpeg, from JPEG baseline) and take some of `transfer_syntaxes`: compare
    (their `compare_values` set) and plan (their `plan_rank` set) offer them where the
    sources are in such a syntax, and nowhere else."""
    syntaxes = set(transfer_syntaxes)
    offered = []
    for codec in available_codecs():
        listed = codec.plan_rank if planning else codec.compare_values
        if (not codec.encodes_pixels and listed is not None
                and any(codec.takes_encoded(s) for s in syntaxes)):
            offered.append(Choice(codec.name, codec))
    return offered


# -- which frames ----------------------------------------------------------------------------
@dataclass(frozen=True)
class FrameRef:
    series: str  # label
    path: Path
    index: int  # 0-based frame within the file
    slice: int  # 1-based position within the series
    #: How the frame is read: modality transform and display window.
    view: FrameView | None = field(default=None, compare=False, hash=False, repr=False)
    #: The transfer syntax the file stores it in.
    transfer_syntax: str = field(default="", compare=False, hash=False)
    #: A US image's YCbCr (pipeline.frames.us_colour): coded as RGB by the targets that
    #: transcode codes it so for.
    us_colour: str | None = field(default=None, compare=False, hash=False, repr=False)


@dataclass(frozen=True)
class StoredFrame:
    """A frame as the source file stores it (an encapsulated fragment), for the codecs
    that transform encoded frames without decoding them (`Codec.from_encoded`)."""

    transfer_syntax: str
    #: The layout the file declares (the decoded layout may differ: YBR_FULL_422 -> YBR_FULL).
    layout: FrameLayout
    fragment: bytes


def spread(n: int, k: int | None) -> Sequence[int]:
    """`k` indices spread evenly over range(n), ends included (all, a range, when k is
    None or >= n)."""
    if k is None or k >= n:
        return range(n)
    if k <= 1:
        return [n // 2] if k == 1 else []
    return sorted({round(i * (n - 1) / (k - 1)) for i in range(k)})


class Selection:
    """The frames to measure, each series' frames in order: made as they are iterated, so
    memory holds the headers, never a reference per frame whatever Number of Frames says."""

    def __init__(self, series: list[SeriesFrames], sample: int | None, window,
                 headers: dict[Path, Dataset]) -> None:
        self._series = [(one, spread(len(one.frames), sample)) for one in series]
        self._window, self._headers = window, headers

    @property
    def series(self) -> list[str]:
        """The labels of the series with a frame to measure."""
        return [one.label for one, chosen in self._series if len(chosen)]

    def __len__(self) -> int:
        return sum(len(chosen) for _, chosen in self._series)

    def __iter__(self) -> Iterator[FrameRef]:
        for one, chosen in self._series:
            for slice_index in chosen:
                path, index = one.frames[slice_index]
                ds = self._headers[path]
                yield FrameRef(one.label, path, index, slice_index + 1,
                               FrameView(ds, index, self._window), transfer_syntax_of(ds),
                               us_colour(ds))

    def transfer_syntaxes(self) -> list[str]:
        """The transfer syntaxes of the files with a frame to measure."""
        return list(dict.fromkeys(transfer_syntax_of(self._headers[one.frames[k][0]])
                                  for one, chosen in self._series for k in chosen))


def select_frames(sources: Iterable[str | Path], sample: int | None,
                  skipped: list[tuple[str, str]], window=None,
                  failed: list[tuple[str, str]] | None = None,
                  series_files: dict[str, list[Path]] | None = None) -> Selection:
    """The frames to measure: each series ordered along its normal, then sampled;
    `window` (a preset, "C,W", ...) or each file's default window for display errors.

    What is not DICOM or not an image goes to `skipped`; a damaged image (or one the OS
    would not let be read) to `failed` (with `skipped` when `failed` is not given).
    `series_files`, when given, gets every file of each series (label -> paths)."""
    headers = []
    for source in unique(iter_sources(sources)):
        try:
            ds = read_header(source.path)
            if "PixelData" not in ds:
                raise NotAnImage("no Pixel Data (not an image)")
            FrameLayout.from_dataset(ds)  # Rows, Columns, Number of Frames must make sense
            header_number(ds, "NumberOfFrames", 0, 2**31 - 1, default=1) or 1
            headers.append((source.path, ds))
        except (NotDicom, NotAnImage) as exc:
            skipped.append((str(source.path), str(exc)))
        except DicompressError as exc:
            if failed is None:
                skipped.append((str(source.path), str(exc)))
            else:
                failed.append((str(source.path), str(with_context(exc, source.path))))
        except (ValueError, TypeError) as exc:  # e.g. Number of Frames "1A"
            skipped.append((str(source.path), f"unusable image attributes: {exc}"))
    series = group_series(headers)
    if series_files is not None:
        for one in series:
            series_files[one.label] = one.frames.files()
    return Selection(series, sample, window, dict(headers))


def load_frames(refs: Iterable[FrameRef], failed: list[tuple[str, str]], decoder: Isolated,
                stored: Callable[[str], bool] = lambda syntax: False
                ) -> Iterator[tuple[FrameRef, FrameLayout, np.ndarray, StoredFrame | None]]:
    """The selected frames decoded as stored, file by file (one file open at a time; the
    refs of a file come together); with each, the frame as the file stores it where
    `stored(transfer_syntax)` says so (else None). Frames that need a decoder are decoded
    in `decoder`'s process: a decoder's abort fails that file, and the others are
    measured."""
    for path, wanted in itertools.groupby(refs, key=lambda ref: ref.path):
        asked: deque[FrameRef] = deque()  # a frame or two: frames_at takes the indices lazily

        def indices(wanted=wanted, asked=asked) -> Iterator[int]:
            for ref in wanted:  # a file's refs come in frame order
                asked.append(ref)
                yield ref.index

        try:
            fragments, at = None, 0  # the file's stored frames, and the next one's index
            for layout, arr in frames_at(path, indices(), decoder):
                ref = asked.popleft()  # frames_at yields in the order asked
                if at == 0 and fragments is None:
                    fragments = _stored_frames(path, ref.transfer_syntax, stored)
                fragment = None
                if fragments is not None:  # on to this frame's (refs come in frame order)
                    for _ in range(ref.index - at):
                        next(fragments, None)
                    fragment, at = next(fragments, None), ref.index + 1
                    if fragment is None:
                        raise CorruptPixelData(f"frame {ref.index + 1}: no stored fragment")
                yield ref, layout, arr, fragment
        except DicompressError as exc:
            failed.append((str(path), str(with_context(exc, path))))
        except Exception as exc:  # a decoder's own error on a damaged file
            failed.append((str(path), f"{path}: {type(exc).__name__}: {exc}"))


def _stored_frames(path: Path, syntax: str, wanted: Callable[[str], bool]
                   ) -> Iterator[StoredFrame] | None:
    if not wanted(syntax):
        return None
    ds = read_header(path)
    declared = FrameLayout.from_dataset(ds)
    return (StoredFrame(syntax, declared, fragment)
            for fragment in encoded_frames(path, ds, declared.number_of_frames))


# -- measuring -------------------------------------------------------------------------------
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


def compare(sources: Iterable[str | Path], choices: list[Choice], *, sample: int | None = None,
            threads: int | None = None, window=None,
            progress: Callable[[str, int, int | None], None] | None = None,
            offer_transforms: bool = False, stage: str = "measuring") -> Comparison:
    """Measure every choice on the frames of `sources` (all, or `sample` per series);
    display errors at `window` (a preset, "C,W", "auto") or each file's default.

    A codec that transforms encoded frames (`Codec.from_encoded`; jpegxl-jpeg from JPEG
    baseline) is measured on the stored frames where it takes their syntax, as
    `transcode` would write it; `offer_transforms` adds such codecs of the table
    (`offered_transforms`) wherever the sources are in a syntax they take.

    `progress(stage, done, total)` hears of each stage ("reading headers", then `stage`,
    counted in frames x choices) and of each frame measured.
    """
    tell = progress or (lambda stage, done, total: None)
    start = time.perf_counter()
    skipped: list[tuple[str, str]] = []
    failed: list[tuple[str, str]] = []
    series_files: dict[str, list[Path]] = {}
    tell("reading headers", 0, None)
    refs = select_frames(sources, sample, skipped, window, failed=failed,
                         series_files=series_files)
    if offer_transforms:
        labels = {c.label for c in choices}
        choices = choices + [c for c in offered_transforms(refs.transfer_syntaxes())
                             if c.label not in labels]
    result = Comparison(choices, window=window, skipped=skipped, failed=failed,
                        series_files=series_files)
    result.series = refs.series
    for choice in choices:
        result.overall[choice.label] = Row(choice.label, choice.lossless, "all")
        for series in result.series:
            result.per_series[(choice.label, series)] = Row(choice.label, choice.lossless, series)
    total = len(refs) * len(choices)
    done = 0
    tell(stage, 0, total)

    transforms = [c.codec for c in choices if not c.codec.encodes_pixels]

    def transformed(syntax: str) -> bool:
        return any(codec.takes_encoded(syntax) for codec in transforms)

    # started before the measuring threads: forked, with everything imported
    decoder = Isolated().start() if len(refs) else Isolated()

    def tasks() -> Iterator[tuple[Choice, FrameRef, FrameLayout, np.ndarray, StoredFrame | None]]:
        for ref, layout, arr, stored in load_frames(refs, result.failed, decoder, transformed):
            result.frames += 1
            for choice in choices:
                yield choice, ref, layout, arr, stored

    def run(task) -> Measure | tuple[Choice, FrameRef, str]:
        choice, ref, layout, arr, stored = task
        try:
            if stored is not None and choice.codec in transforms \
                    and choice.codec.takes_encoded(stored.transfer_syntax):
                choice.codec.check_layout(stored.layout)
                return measure_transformed(choice, ref, layout, arr, stored)
            choice.codec.check_layout(layout)
            return measure(choice, ref, layout, arr)
        except DicompressError as exc:
            return choice, ref, str(exc)
        except Exception as exc:  # a codec library's own error on an odd frame
            return choice, ref, f"{ref.path.name}: {type(exc).__name__}: {exc}"

    with decoder:
        for outcome in bounded_map(run, tasks(), threads or os.cpu_count() or 1):
            done += 1
            if isinstance(outcome, Measure):
                result.overall[outcome.choice].add(outcome)
                result.per_series[(outcome.choice, outcome.ref.series)].add(outcome)
            else:
                choice, ref, reason = outcome
                for row in (result.overall[choice.label],
                            result.per_series[(choice.label, ref.series)]):
                    row.not_applicable = row.not_applicable or reason
            tell(stage, done, total)
    result.seconds = time.perf_counter() - start
    return result
