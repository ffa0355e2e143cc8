"""The stills of a run: each rendered, encoded within the budget and written, by worker
processes (forked after the headers are read, so that they inherit them) or here; and
the animated GIFs."""

from __future__ import annotations

import dataclasses
import itertools
import multiprocessing
import os
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from dicompress.batch.pools import Isolated, ProcessPool
from dicompress.batch.processes import init_worker
from dicompress.errors import DicompressError
from dicompress.export import budget as budgets
from dicompress.export import frames as framing
from dicompress.export import page, select, writers
from dicompress.export.text import frame_duration, number, study_date
from dicompress.fileio import atomic_output

if TYPE_CHECKING:
    from dicompress.export.job import ExportOptions, ExportResult


#: Stills a worker process takes at a time: few enough that both cores stay busy to the
#: end, enough that the round trip (about 0.3 ms) is small beside a slice's 5-10 ms.
STILLS_PER_TASK = 4


@dataclass
class Work:
    """What every still of a run needs; worker processes inherit it (fork), tasks name
    stills by (series, frame)."""

    series: list[select.SeriesFrames]
    windows: list
    notes: list[str]  # the window used, per series
    texts: list[dict[str, str]]  # the pictures' text, per series (descriptors tested once)
    native: dict[Path, framing.NativePixels]
    options: ExportOptions
    fmt: str
    dest: Path
    #: Where this process decodes frames that need a decoder (None in a worker process,
    #: which is itself the isolation): an abort there fails the file, not the export.
    decoder: Isolated | None = None
    #: Threads that render a still (None: every core; 1 where worker processes share them).
    render_threads: int | None = None


_WORK: Work | None = None


@dataclass
class _Written:
    """One still's outcome, sent back to the parent."""

    series: int
    frame: int
    name: str
    path: Path
    caption: page.Still | None  # for the zip's page (None: no zip)
    actions: list[str] = field(default_factory=list)
    failed: str = ""  # why not written
    file: Path | None = None  # the DICOM file that failed (its other frames are skipped)


def _described(work: Work, s: int, name: str, k: int | None, frames: int | None = None
                ) -> page.Still:
    """What the zip's page says about still `k` of series `s` (None: an animation): the
    same filtered text the picture carries, and where the slice lies."""
    series = work.series[s]
    text = work.texts[s]
    position = None
    if k is not None:
        path = series.frames[k][0]
        if len(series.frames) == len(series.headers):  # single-frame files: a position each
            position = select.slice_position(series.headers[path])
    return page.Still(
        name=name, series=series.label, description=text.get("Series", ""),
        modality=text.get("Modality", ""), study=text.get("Study", ""),
        study_date=study_date(series.header, work.options.keep_identifiers),
        frame=None if k is None else k + 1,
        frames=frames if frames is not None else len(series.frames), position=position,
        thickness=number(text.get("Slice thickness (mm)", "")), window=work.notes[s])


def source_frame(work: Work, series: select.SeriesFrames, k: int) -> np.ndarray:
    path, index = series.frames[k]
    where = work.native.get(path)
    if where is not None:  # read straight from the file: no decoder involved
        return framing.read_native(path, index, where)
    return framing.read_frame(path, index, series.headers[path], work.decoder)


def _render(work: Work, s: int, k: int) -> tuple[np.ndarray, dict]:
    series = work.series[s]
    header = series.headers[series.frames[k][0]]
    return framing.display(header, source_frame(work, series, k), work.windows[s],
                           function=work.options.function, invert=work.options.invert,
                           bits=work.options.bits, threads=work.render_threads)


def _still(work: Work, s: int, k: int) -> _Written:
    """Render, encode (within the budget) and write one still."""
    series, options, fmt = work.series[s], work.options, work.fmt
    name = (f"{series.label}{writers.FORMATS[fmt]}" if len(series.frames) == 1
            else f"{series.label}/{k + 1:04d}{writers.FORMATS[fmt]}")
    caption = _described(work, s, name, k) if options.zip else None
    done = _Written(s, k, name, work.dest / name, caption=caption)
    try:
        image, notes = _render(work, s, k)
    except DicompressError as exc:
        done.failed, done.file = str(exc), series.frames[k][0]
        return done
    text = dict(work.texts[s])
    if notes.get("offset"):
        text["Stored value offset"] = str(notes["offset"])
    try:
        data, done.actions = budgets.fit(
            lambda q, scale: writers.encode_still(image, fmt, text=text, quality=q, scale=scale),
            options.max_size, quality=options.quality, lossy_quality=fmt == "jpeg")
    except (DicompressError, ValueError, OSError) as exc:
        done.failed = f"cannot write {name}: {exc}"
        return done
    # not fsynced: a picture can be exported again (a zip's stills are staged only)
    with atomic_output(done.path, durable=False) as tmp:
        tmp.write_bytes(data)
    return done


def _init_stills(work: Work) -> None:
    global _WORK
    init_worker()
    _WORK = dataclasses.replace(work, decoder=None)  # this worker decodes itself


def _stills(tasks: list[tuple[int, int]]) -> list[_Written]:
    """A worker's unit of work: a few stills, in order."""
    assert _WORK is not None
    return [_still(_WORK, s, k) for s, k in tasks]


@dataclass
class Stills:
    """The stills to write: per series, the frames chosen (a range, or the --frames
    list: never a list of every frame), and the files that failed already (their stills
    are skipped)."""

    chosen: list[tuple[int, Sequence[int]]] = field(default_factory=list)
    failed: set[Path] = field(default_factory=set)

    def __len__(self) -> int:
        return sum(len(chosen) for _, chosen in self.chosen)

    def chunks(self, size: int) -> Iterator[list[tuple[int, int]]]:
        """(series, frame) pairs, `size` at a time, made as they are asked for."""
        stills = ((s, k) for s, chosen in self.chosen for k in chosen)
        while chunk := list(itertools.islice(stills, size)):
            yield chunk


def write_stills(work: Work, tasks: Stills, result: ExportResult, written, captions,
                 tell) -> None:
    """Every still, by worker processes (--jobs; forked, so they inherit `work`) or, for
    --jobs 1 over native frames only, here.

    A worker that dies (a decoder's abort) breaks the pool: the stills it held are done
    again here, one by one, where a second abort costs only the file that caused it; the
    pool is started again for the rest, and a file's remaining stills are skipped once it
    has failed."""
    total = len(tasks)
    jobs = min(work.options.jobs or os.cpu_count() or 1, total // STILLS_PER_TASK + 1)
    tell("writing images", 0, total)
    chunks = tasks.chunks(STILLS_PER_TASK)
    failed_files = tasks.failed  # stills of these are skipped (counted done)
    done = 0

    def start(fork: bool) -> ProcessPool:
        # forked: `work` (headers, windows) reaches each worker without being pickled
        return ProcessPool(jobs, fork=fork, initializer=_init_stills, initargs=(work,))

    def failed(s: int, k: int) -> bool:
        return work.series[s].frames[k][0] in failed_files

    def record(still: _Written | None) -> None:
        nonlocal done
        done += 1
        if still is None:  # a still of a file that failed already
            pass
        elif still.failed:
            if still.file is None:
                result.failed.append((still.path, still.failed))
            elif still.file not in failed_files:  # once per damaged file
                failed_files.add(still.file)
                result.failed.append((still.file, still.failed))
        else:
            result.notes.extend(f"{still.name}: {action}" for action in still.actions)
            result.outputs.append(still.path)
            written.append((still.name, still.path))
            captions[still.name] = still.caption

    def here(chunk) -> None:
        for s, k in chunk:  # each still's decode in work.decoder's process
            record(None if failed(s, k) else _still(work, s, k))

    # A still whose frame needs a decoder is written in a worker process, --jobs 1 too
    # (four stills a round trip cost less than sending each decoded frame back here); a
    # run of native frames only, read straight from the files, works here with --jobs 1.
    decoding = any(path not in work.native for one in work.series for path in one.headers)
    pool = None
    if (jobs > 1 or decoding) and "fork" in multiprocessing.get_all_start_methods():
        work.render_threads = 1 if jobs > 1 else None  # before the workers fork
        pool = start(True)
    in_flight: deque = deque()
    try:
        while True:
            if pool is None:
                chunk = next(chunks, None)
                if chunk is None:
                    break
                here(chunk)
            else:
                unsent = None  # stills a broken pool did not take or did not finish
                while (unsent is None and len(in_flight) < 2 * jobs
                       and (chunk := next(chunks, None)) is not None):
                    kept = [(s, k) for s, k in chunk if not failed(s, k)]
                    done += len(chunk) - len(kept)
                    if kept:
                        try:
                            in_flight.append((pool.call(_stills, kept), kept))
                        except BrokenProcessPool:  # a worker died meanwhile
                            unsent = kept
                if unsent is None:
                    if not in_flight:
                        break
                    future, chunk = in_flight.popleft()
                    try:
                        stills = future.result()
                    except BrokenProcessPool:
                        unsent = chunk
                    else:
                        for still in stills:
                            record(still)
                if unsent is not None:  # a worker died: what the pool held is done here
                    orphans = unsent
                    for future, held in in_flight:
                        if future.done() and future.exception() is None:
                            for still in future.result():
                                record(still)
                        else:
                            orphans += held
                    in_flight.clear()
                    pool.close()  # waits for the pool's workers to be gone
                    from dicompress.batch.resume import remove_temporaries  # seldom needed

                    remove_temporaries(work.dest)  # of the stills the pool's end cut short
                    pool = start(False)
                    here(orphans)
            tell("writing images", done, total)
    finally:
        if pool is not None:
            pool.close(cancel=True, wait=True)


#: The most an animation's rendered frames may hold: a GIF is encoded from all its frames
#: at once (Pillow keeps each), so a series whose frames would hold more is refused,
#: naming what would fit, before any is rendered (a 60 kB file of 300 flat 4096 x 4096
#: JPEG 2000 frames took 2.5 GB, then failed). An echo loop of 600 frames of 800 x 600 in
#: colour holds 864 MB.
GIF_FRAME_BYTES = 1 << 30


def _gif_too_large(series, chosen: list[int]) -> str | None:
    """Why the frames `chosen` of `series` are too many to animate, or None."""
    header = series.headers[series.frames[chosen[0]][0]]
    try:
        rows, columns = int(header.get("Rows") or 0), int(header.get("Columns") or 0)
    except (TypeError, ValueError):
        return None  # the frames' own reading says what is wrong
    grey = str(header.get("PhotometricInterpretation", "")).startswith("MONOCHROME")
    each = rows * columns * (1 if grey else 3)
    if each * len(chosen) <= GIF_FRAME_BYTES:
        return None
    fits = max(1, GIF_FRAME_BYTES // max(1, each))
    return (f"an animation of {len(chosen)} frames of {rows} x {columns} would hold "
            f"{each * len(chosen) / 1e6:,.0f} MB of frames (at most "
            f"{GIF_FRAME_BYTES / 1e6:,.0f} MB: {fits} such frames); choose fewer with "
            "--frames or --every, or export PNG")


def write_gif(work: Work, s: int, chosen: list[int], result, written, captions) -> None:
    series, options = work.series[s], work.options
    name = f"{series.label}.gif"
    too_large = _gif_too_large(series, chosen) if chosen else None
    if too_large:
        result.failed.append((series.frames[chosen[0]][0], f"cannot write {name}: {too_large}"))
        return
    frames = []
    bad: set[Path] = set()
    for k in chosen:
        path = series.frames[k][0]
        if path in bad:
            continue
        try:
            frames.append(_render(work, s, k)[0])
        except DicompressError as exc:
            bad.add(path)
            result.failed.append((path, str(exc)))
    if not frames:
        return
    duration = frame_duration(series.header, options)
    path = work.dest / name
    try:
        data, actions = budgets.fit(lambda q, scale: writers.encode_gif(
            frames, duration_ms=duration, scale=scale), options.max_size,
            quality=options.quality, lossy_quality=False)
    except (DicompressError, ValueError, OSError) as exc:
        result.failed.append((path, f"cannot write {name}: {exc}"))
        return
    result.notes.extend(f"{name}: {action}" for action in actions)
    with atomic_output(path) as tmp:
        tmp.write_bytes(data)
    result.outputs.append(path)
    written.append((name, path))
    captions[name] = _described(work, s, name, None, frames=len(frames))
