"""From a constraint to a concrete choice: what fits a size budget, or a link's rate
and deadline, at the best quality, measured on the data itself.

::

    sources -> totals (pixel bytes, header bytes, frames) from the headers
            -> capacity (budget, or rate x deadline less protocol overhead)
            -> candidates measured on a sample: transforms of the encoded frames where
               the files are in a syntax they take (jpegxl-jpeg from JPEG baseline: no
               new loss); lossless targets; J2K and HTJ2K lossy at
               the ratio the capacity needs (their rate control makes size predictable;
               a choice that comes out larger is asked again for the ratio that fits);
               JPEG-LS near-lossless at NEAR 1..8; JPEG at qualities 95..50
            -> with --lossless-only and several series: the smallest lossless option of
               each series, and their sum as one more option ("per series")
            -> the best quality that fits (lossless first, then the highest worst-slice
               PSNR at or above --min-psnr), with the command that makes it (one a
               series for a per-series choice)

Predicted size = header bytes of the files + their pixel bytes / the ratio measured on
the sample. A budget `as_sent` counts every output file as one e-mail attachment (base64
and MIME headers, `export.budget.sent_total`); the files then have about 73 % of it. A
lossy option no smaller than the smallest lossless one is not listed: it would lose
information for nothing. A prediction for lossy J2K/HTJ2K is within a few per cent of what
`transcode` then writes (their encoders meet the asked ratio frame by frame).
"""

from __future__ import annotations

import math
import re
import shlex
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from dicompress.batch.sources import iter_sources, unique
from dicompress.codecs import available_codecs
from dicompress.codecs.registry import BUDGET_RATIO
from dicompress.compare.choices import Choice, _choice, offered_transforms
from dicompress.compare.run import compare
from dicompress.errors import (DicompressError, NotAnImage, NotDicom, PlanError,
                               with_context)
from dicompress.export.budget import raw_total_limit, sent_total
from dicompress.layout import FrameLayout
from dicompress.pipeline.read import read_header, transfer_syntax_of

#: DICOM PDUs and TCP/IP headers take a few per cent of a link: plan for 95 % of it.
LINK_EFFICIENCY = 0.95
#: Lossy ratios are asked this much above what the capacity needs, for headroom.
RATIO_MARGIN = 1.03
#: The largest ratio the lossy J2K/HTJ2K codecs accept.
MAX_RATIO = 10000.0

# Rates: "b"/"bit" are bits, "B" is bytes (case matters: 10Mb/s is 8x 10MB/s).
_PREFIX = {"": 1.0, "k": 1e3, "K": 1e3, "M": 1e6, "G": 1e9}
_RATE = re.compile(r"\s*([0-9]*\.?[0-9]+)\s*([kKMG]?)(bit/s|bits/s|bit|bps|b/s|B/s|Bps)\s*")
_DURATION_UNITS = {"s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "hr": 3600}


def parse_rate(text: str) -> float:
    """'2Mbit', '10 Mbps', '10Mbit/s', '512kbit', '1.5MB/s' -> bits per second."""
    m = _RATE.fullmatch(text)
    if not m:
        raise PlanError(f"--link {text!r}: expected e.g. 2Mbit, 10Mbps, 10Mbit/s, 512kbit or "
                        "1.5MB/s (b = bits, B = bytes)")
    bits = float(m.group(1)) * _PREFIX[m.group(2)]
    return bits * 8 if m.group(3) in ("B/s", "Bps") else bits


def parse_duration(text: str) -> float:
    """'5min', '90s', '1h30m', '2h', '300' -> seconds (a bare number is seconds, alone)."""
    parts, pos = [], 0
    token = re.compile(r"\s*([0-9]*\.?[0-9]+)\s*([a-zA-Z]*)\s*")
    while pos < len(text):
        m = token.match(text, pos)
        if not m or m.end() == pos:
            raise PlanError(f"--deadline {text!r}: expected e.g. 5min, 90s, 1h30m")
        parts.append((float(m.group(1)), m.group(2).lower()))
        pos = m.end()
    if not parts:
        raise PlanError(f"--deadline {text!r}: expected e.g. 5min, 90s, 1h30m")
    if len(parts) > 1 and any(unit == "" for _, unit in parts):
        raise PlanError(f"--deadline {text!r}: give every part a unit (1h30m, not 1h30)")
    total = 0.0
    for number, unit in parts:
        if unit and unit not in _DURATION_UNITS:
            raise PlanError(f"--deadline {text!r}: unknown unit {unit!r} (s, min, h)")
        total += number * _DURATION_UNITS.get(unit, 1)
    if total <= 0:
        raise PlanError(f"--deadline {text!r} must be positive")
    return total


@dataclass
class Totals:
    files: int = 0
    frames: int = 0
    pixel_bytes: int = 0  # native, as decoded
    header_bytes: int = 0  # everything in the files but the pixel data
    stored_bytes: int = 0  # the files as they are now
    #: The transfer syntaxes the files are in.
    transfer_syntaxes: set[str] = field(default_factory=set)
    #: Each file's pixel bytes and header bytes.
    by_file: dict[Path, tuple[int, int]] = field(default_factory=dict)
    #: (path, reason) of the images whose headers cannot be read: named, never dropped
    #: (a run whose every file was damaged said only "no images found").
    failed: list[tuple[str, str]] = field(default_factory=list)


def totals(sources) -> Totals:
    out = Totals()
    for source in unique(iter_sources(sources)):
        try:
            ds = read_header(source.path)
            layout = FrameLayout.from_dataset(ds)
            pixel = ds.get_item(0x7FE00010, keep_deferred=True)
        except (NotDicom, NotAnImage):
            continue  # not ours to plan: an SR, a DICOMDIR, a text file
        except DicompressError as exc:
            out.failed.append((str(source.path), str(with_context(exc, source.path))))
            continue
        size = source.path.stat().st_size
        out.files += 1
        out.frames += layout.number_of_frames
        out.pixel_bytes += layout.frame_bytes * layout.number_of_frames
        out.stored_bytes += size
        header = pixel.value_tell if pixel.value_tell else 0
        out.header_bytes += header
        out.transfer_syntaxes.add(transfer_syntax_of(ds))
        out.by_file[source.path] = (layout.frame_bytes * layout.number_of_frames, header)
    return out


@dataclass
class Option:
    """A candidate measured on the sample, and what it predicts for all the files."""

    label: str
    command: list[str]
    lossless: bool
    ratio: float  # pixel bytes / stored pixel bytes, on the sample
    predicted_bytes: int
    psnr_worst: float
    psnr_mean: float
    max_error: int
    fits: bool = False
    reason: str = ""  # why it is not applicable
    #: The predicted files as e-mail attachments (a budget counted as sent), else None.
    sent_bytes: int | None = None
    max_abs_error_modality: float = 0.0
    max_display_error: float = 0.0
    #: A different codec for each series (`plan --lossless-only`): its choices, and
    #: this option their sum (its `command` is empty: each series has its own).
    per_series: list["SeriesChoice"] = field(default_factory=list)

    @property
    def counted_bytes(self) -> int:
        """What the budget counts: the files as sent, or as stored."""
        return self.predicted_bytes if self.sent_bytes is None else self.sent_bytes

    def as_dict(self) -> dict:
        finite = (lambda v: None if math.isinf(v) else round(v, 3))
        return {"choice": self.label, "lossless": self.lossless, "ratio": round(self.ratio, 3),
                "predicted_bytes": self.predicted_bytes, "predicted_sent_bytes": self.sent_bytes,
                "psnr_worst_db": finite(self.psnr_worst),
                "psnr_mean_db": finite(self.psnr_mean), "max_error": self.max_error,
                "max_abs_error_modality": round(self.max_abs_error_modality, 4),
                "max_display_error": round(self.max_display_error, 3),
                "fits": self.fits, "command": shlex.join(self.command),
                "not_applicable": self.reason or None,
                **({"per_series": [c.as_dict() for c in self.per_series]}
                   if self.per_series else {})}


@dataclass
class SeriesChoice:
    """The smallest lossless option for one series, predicted for its files alone."""

    series: str
    files: int
    option: Option

    def as_dict(self) -> dict:
        return {"series": self.series, "files": self.files, **self.option.as_dict()}


@dataclass
class Plan:
    capacity: int
    totals: Totals
    options: list[Option] = field(default_factory=list)
    choice: Option | None = None
    failed: list[tuple[str, str]] = field(default_factory=list)  # files that did not decode
    min_psnr: float | None = None
    link_bits_per_s: float | None = None
    #: The capacity counts the files as e-mail attachments (base64, MIME headers).
    as_sent: bool = False
    #: With `lossless_only` and several series: the smallest lossless option of each.
    per_series: list[SeriesChoice] = field(default_factory=list)

    def transfer_seconds(self, size: int) -> float | None:
        if not self.link_bits_per_s:
            return None
        return size * 8 / (self.link_bits_per_s * LINK_EFFICIENCY)

    def as_dict(self) -> dict:
        return {"capacity_bytes": self.capacity, "counted": "sent" if self.as_sent else "raw",
                "files": self.totals.files,
                "frames": self.totals.frames, "pixel_bytes": self.totals.pixel_bytes,
                "header_bytes": self.totals.header_bytes, "stored_bytes": self.totals.stored_bytes,
                "min_psnr_db": self.min_psnr,
                "choice": self.choice.as_dict() if self.choice else None,
                "per_series": [c.as_dict() for c in self.per_series],
                "options": [o.as_dict() for o in self.options],
                "failed": [{"path": path, "reason": reason} for path, reason in self.failed]}


def _candidates(needed_ratio: float, lossless_only: bool) -> list[Choice]:
    """The table's plan candidates in its order: rate-controlled codecs at the ratio the
    budget needs (with a margin), the others at their listed values."""
    ratio = f"{min(MAX_RATIO, max(1.05, needed_ratio * RATIO_MARGIN)):.3g}"
    choices = []
    ranked = sorted((c for c in available_codecs()
                     if c.plan_rank is not None and c.encodes_pixels),
                    key=lambda c: c.plan_rank)
    for codec in ranked:
        if lossless_only and not codec.lossless:
            continue
        if codec.plan_values == BUDGET_RATIO:
            choices.append(_choice(codec.name, ratio))
        elif codec.plan_values:
            choices += [_choice(codec.name, f"{v:g}") for v in codec.plan_values]
        else:
            choices.append(_choice(codec.name, None))
    return choices


def _command(choice: Choice, sources, output: str) -> list[str]:
    """The transcode command that makes `choice` (shlex.join it to print)."""
    codec = choice.codec
    cmd = ["dicompress", "transcode", *map(str, sources), "--to", codec.name]
    for spec in codec.specs:
        if spec.name in codec.options:
            cmd += [spec.flag, spec.to_text(codec.options[spec.name])]
    return cmd + ["-o", output]


def _series_sources(files: list[Path], series_files: dict[str, list[Path]]) -> list[Path]:
    """What names a series' files on a command line: their folder, when they are all in
    one folder that holds no file of another series; else the files."""
    folders = {p.parent for p in files}
    if len(folders) == 1:
        folder = folders.pop()
        others = {p for paths in series_files.values() for p in paths} - set(files)
        if not any(p.parent == folder for p in others):
            return [folder]
    return files


def _per_series(measured, choices: list[Choice], found: Totals,
                output: str) -> list[SeriesChoice]:
    """The smallest lossless option of each series, measured on its own frames and
    predicted for its own files; [] when some series has none that codes all its
    measured frames. A file that failed (its decoder refused or died part way) is in no
    series' command, and a series of only such files gets no choice: its frames measured
    before the failure say nothing of a file that cannot be transcoded."""
    failed = {str(path) for path, _ in measured.failed}
    chosen = []
    for series in measured.series:
        files = [p for p in measured.series_files.get(series, [])
                 if p in found.by_file and str(p) not in failed]
        if not files:
            continue
        pixel_bytes = sum(found.by_file[p][0] for p in files)
        header_bytes = sum(found.by_file[p][1] for p in files)
        rows = {c.label: measured.per_series[(c.label, series)] for c in choices}
        frames = max(row.frames for row in rows.values())
        best = None
        for choice in choices:
            row = rows[choice.label]
            if not choice.lossless or not frames or row.frames < frames or row.not_applicable:
                continue
            predicted = header_bytes + math.ceil(pixel_bytes / row.ratio)
            if best is None or predicted < best.predicted_bytes:
                sources = _series_sources(files, measured.series_files)
                best = Option(choice.label, _command(choice, sources, f"{output}/{series}"),
                              True, row.ratio, predicted, math.inf, math.inf, 0)
        if best is None:
            return []
        chosen.append(SeriesChoice(series, len(files), best))
    return chosen


def plan(sources, capacity: int, *, min_psnr: float | None = None, lossless_only: bool = False,
         sample: int | None = 10, link_bits_per_s: float | None = None,
         output: str = "OUTDIR", threads: int | None = None, as_sent: bool = False,
         progress: Callable[[str, int, int | None], None] | None = None) -> Plan:
    """The best-quality choice whose predicted total size fits `capacity` bytes (with
    `as_sent`, the files as e-mail attachments, one each).

    `progress(stage, done, total)` hears of each stage ("counting files", then compare's
    "reading headers" and "measuring", "measuring again" for the rate search) and of
    each frame measured.
    """
    tell = progress or (lambda stage, done, total: None)
    sources = list(sources)
    tell("counting files", 0, None)
    found = totals(sources)
    result = Plan(capacity, found, min_psnr=min_psnr, link_bits_per_s=link_bits_per_s,
                  as_sent=as_sent)
    result.failed = list(found.failed)
    if not found.files:
        return result
    files_capacity = raw_total_limit(capacity, found.files) if as_sent else capacity
    room = files_capacity - found.header_bytes
    needed = found.pixel_bytes / room if room > 0 else math.inf
    # transforms of the encoded frames first (jpegxl-jpeg where the files are JPEG
    # baseline: smaller than any re-encoding, and no new loss)
    choices = [*offered_transforms(found.transfer_syntaxes, planning=True),
               *_candidates(needed if math.isfinite(needed) else 1000.0, lossless_only)]
    measured = compare(sources, choices, sample=sample, threads=threads, progress=tell)
    rows = {c.label: measured.overall[c.label] for c in choices}
    # The rate search: a J2K/HTJ2K choice that came out larger than the room is asked
    # again for the ratio that closes the gap (twice at most).
    for _ in range(2):
        retry = []
        for n, choice in enumerate(choices):
            asked = choice.codec.options.get("ratio")
            row = rows[choice.label]
            if asked is None or not row.frames or room <= 0:
                continue
            achieved_pixels = found.pixel_bytes / row.ratio
            if achieved_pixels > room and asked < MAX_RATIO:
                better = _choice(choice.codec.name,
                                 f"{min(MAX_RATIO, asked * achieved_pixels / room * 1.01):.4g}")
                retry.append((n, better))
        if not retry:
            break
        again = compare(sources, [c for _, c in retry], sample=sample, threads=threads,
                        progress=tell, stage="measuring again (rate search)")
        for n, better in retry:
            choices[n] = better
            rows[better.label] = again.overall[better.label]
    named = {path for path, _ in result.failed}
    result.failed += [(path, why) for path, why in measured.failed if path not in named]
    for choice in choices:
        row = rows[choice.label]
        if not row.frames or row.not_applicable or row.frames < measured.frames:
            # a choice that cannot code every measured frame cannot be the plan
            reason = row.not_applicable or "no frame could be measured"
            if row.frames:
                reason = f"codes {row.frames} of {measured.frames} frames: {reason}"
            result.options.append(Option(choice.label, [], choice.lossless, 0.0, 0, 0.0, 0.0, 0,
                                         reason=reason))
            continue
        predicted = found.header_bytes + math.ceil(found.pixel_bytes / row.ratio)
        worst = row.worst[3] if row.worst else math.inf
        option = Option(choice.label, _command(choice, sources, output), choice.lossless,
                        row.ratio, predicted, worst, row.psnr, row.max_error,
                        sent_bytes=sent_total(predicted, found.files) if as_sent else None,
                        max_abs_error_modality=row.max_abs_error_modality,
                        max_display_error=row.max_display_error)
        option.fits = option.counted_bytes <= capacity and (
            choice.lossless or min_psnr is None or worst >= min_psnr)
        result.options.append(option)
    if lossless_only and len(measured.series) > 1:
        result.per_series = _per_series(measured, choices, found, output)
        if len({c.option.label for c in result.per_series}) > 1:
            # the series are best served by different codecs: one option, their sum
            total = sum(c.option.predicted_bytes for c in result.per_series)
            pixel_part = max(1, total - found.header_bytes)
            combined = Option("per series", [], True, found.pixel_bytes / pixel_part, total,
                              math.inf, math.inf, 0,
                              sent_bytes=sent_total(total, found.files) if as_sent else None,
                              per_series=result.per_series)
            combined.fits = combined.counted_bytes <= capacity
            result.options.append(combined)
    lossless_sizes = [o.predicted_bytes for o in result.options if o.lossless and not o.reason]
    if lossless_sizes:  # a lossy option no smaller than lossless loses for nothing
        smallest = min(lossless_sizes)
        result.options = [o for o in result.options
                          if o.lossless or o.reason or o.predicted_bytes < smallest]
    fitting = [o for o in result.options if o.fits]
    if fitting:
        # lossless first (smallest wins among them), then the best worst slice
        result.choice = min(fitting, key=lambda o: (not o.lossless, -o.psnr_worst,
                                                     o.predicted_bytes))
    return result
