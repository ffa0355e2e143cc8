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

import os
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import numpy as np

from dicompress.batch.pools import Isolated
from dicompress.compare.choices import Choice, offered_transforms
from dicompress.compare.measure import Comparison, Measure, Row, measure, measure_transformed
from dicompress.compare.selection import FrameRef, StoredFrame, load_frames, select_frames
from dicompress.errors import DicompressError
from dicompress.layout import FrameLayout
from dicompress.pipeline.frames import bounded_map


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
