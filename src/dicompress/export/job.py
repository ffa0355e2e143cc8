"""One export run: read headers, group and order series, render, write, budget, bundle."""

from __future__ import annotations

import dataclasses
import itertools
import multiprocessing
import os
import shutil
import tempfile
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pydicom

from dicompress.batch.pools import Isolated, ProcessPool
from dicompress.batch.resume import remove_temporaries
from dicompress.batch.sources import iter_sources, unique
from dicompress.batch.worker import init_worker
from dicompress.deid import descriptor_identifies
from dicompress.errors import DicompressError, NotDicom
from dicompress.export import budget as budgets
from dicompress.export import frames as framing
from dicompress.export import page, select, writers
from dicompress.fileio import atomic_output
from dicompress.layout import FrameLayout
from dicompress.pipeline.read import read_header

# The non-identifying context a reader of the picture needs (PNG text chunks).
CONTEXT = {
    "Modality": "Modality", "BodyPartExamined": "Body part", "StudyDescription": "Study",
    "SeriesDescription": "Series", "PixelSpacing": "Pixel spacing (mm)",
    "SliceThickness": "Slice thickness (mm)",
}
# The profile removes these unless they pass the Clean Descriptors test.
DESCRIPTORS = {"StudyDescription", "SeriesDescription"}
# Written only with --keep-identifiers.
IDENTIFIERS = {
    "PatientName": "Patient name", "PatientID": "Patient ID", "PatientBirthDate": "Birth date",
    "StudyDate": "Study date", "AccessionNumber": "Accession number",
    "InstitutionName": "Institution", "ReferringPhysicianName": "Referring physician",
}


@dataclass
class ExportOptions:
    format: str = "png"
    window: str | None = None
    function: str | None = None
    invert: bool | None = None
    frames: str | None = None
    every: int | None = None
    series: str | None = None
    bits: int = 8
    quality: int = 90
    fps: float | None = None
    max_size: int | None = None
    zip: str | None = None
    keep_identifiers: bool = False
    jobs: int | None = None  # worker processes writing stills (default: all cores)


@dataclass
class ExportResult:
    outputs: list[Path] = field(default_factory=list)
    skipped: list[tuple[Path, str]] = field(default_factory=list)
    failed: list[tuple[Path, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _text(ds, window_note: str, keep_identifiers: bool) -> dict[str, str]:
    text = {"Software": "dicompress"}
    for keyword, label in CONTEXT.items():
        value = ds.get(keyword)
        if value not in (None, ""):
            value = "\\".join(map(str, value)) if isinstance(value, (list, pydicom.multival.MultiValue)) else str(value)
            if not keep_identifiers and keyword in DESCRIPTORS and descriptor_identifies(ds, value):
                continue  # a description naming the patient, a date, an ID: not shown
            text[label] = value
    if window_note:
        text["Window"] = window_note
    if keep_identifiers:
        for keyword, label in IDENTIFIERS.items():
            value = ds.get(keyword)
            if value not in (None, ""):
                text[label] = str(value)
    return text


def _frame_duration(ds, options: ExportOptions) -> int:
    """Milliseconds per GIF frame: --fps, else Frame Time, Cine Rate, Recommended Display Frame Rate."""
    if options.fps:
        ms = 1000.0 / options.fps
    else:
        ms = 100.0
        for keyword, to_ms in (("FrameTime", lambda v: v), ("CineRate", lambda v: 1000.0 / v),
                               ("RecommendedDisplayFrameRate", lambda v: 1000.0 / v)):
            try:
                value = float(ds.get(keyword))
            except (TypeError, ValueError):
                continue
            if value > 0:
                ms = to_ms(value)
                break
    return int(round(ms * max(1, options.every or 1)))


def _header(path: Path) -> tuple[str, Path, object, framing.NativePixels | None]:
    """(outcome, path, header or reason, where its native frames are) for one file; the
    outcome is "image", "skipped" (not DICOM, not an image) or "failed"."""
    try:
        ds = read_header(path)
    except NotDicom as exc:
        return "skipped", path, str(exc), None
    except DicompressError as exc:
        return "failed", path, str(exc), None
    if "PixelData" not in ds:
        kind = str(ds.get("Modality", "") or ds.get("SOPClassUID", "")) or "object"
        return "skipped", path, f"not an image ({kind})", None
    where = framing.native_pixels(ds)
    del ds["PixelData"]
    try:
        FrameLayout.from_dataset_header(ds)
    except (DicompressError, ValueError, TypeError) as exc:
        return "failed", path, f"unusable image attributes: {exc}", None
    return "image", path, ds, where


def _headers(sources, result: ExportResult, native: dict[Path, framing.NativePixels]):
    """(path, header) of every image under `sources`, in the sources' order.

    Read here, one after the other: reading them in the worker processes was measured
    slower for a 200-slice CT (0.70 s against 0.53 s for the whole export, 2 workers: the
    headers' pickled return and a second pool cost more than the reads they share).
    """
    for source in unique(iter_sources(sources)):
        outcome, path, value, where = _header(source.path)
        if outcome == "skipped":
            result.skipped.append((path, value))
        elif outcome == "failed":
            result.failed.append((path, value))
        else:
            if where is not None:
                native[path] = where
            yield path, value


#: Stills a worker process takes at a time: few enough that both cores stay busy to the
#: end, enough that the round trip (about 0.3 ms) is small beside a slice's 5-10 ms.
STILLS_PER_TASK = 4


@dataclass
class _Work:
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


_WORK: _Work | None = None


@dataclass
class _Written:
    """One still's outcome, sent back to the parent."""

    series: int
    frame: int
    name: str
    path: Path
    caption: page.Still
    actions: list[str] = field(default_factory=list)
    failed: str = ""  # why not written
    file: Path | None = None  # the DICOM file that failed (its other frames are skipped)


def _study_date(ds, keep_identifiers: bool) -> str:
    """The study's year (HIPAA Safe Harbor keeps a date's year; PS3.15 removes the date):
    enough to tell this study from others, not the day. The whole date with
    --keep-identifiers."""
    value = str(ds.get("StudyDate", "") or "").strip()
    if len(value) < 4 or not value[:4].isdigit():
        return ""
    if keep_identifiers and len(value) == 8 and value.isdigit():
        return f"study of {value[:4]}-{value[4:6]}-{value[6:]}"
    return f"study of {value[:4]}"


def _described(work: _Work, s: int, name: str, k: int | None, frames: int | None = None
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
        study_date=_study_date(series.header, work.options.keep_identifiers),
        frame=None if k is None else k + 1,
        frames=frames if frames is not None else len(series.frames), position=position,
        thickness=_number(text.get("Slice thickness (mm)", "")), window=work.notes[s])


def _number(text: str) -> str:
    """A decimal string as people write it ('5.000000' -> '5')."""
    try:
        return f"{float(text):g}"
    except ValueError:
        return text


def _frame(work: _Work, series: select.SeriesFrames, k: int) -> np.ndarray:
    path, index = series.frames[k]
    where = work.native.get(path)
    if where is not None:  # read straight from the file: no decoder involved
        return framing.read_native(path, index, where)
    return framing.read_frame(path, index, series.headers[path], work.decoder)


def _render(work: _Work, s: int, k: int) -> tuple[np.ndarray, dict]:
    series = work.series[s]
    header = series.headers[series.frames[k][0]]
    return framing.display(header, _frame(work, series, k), work.windows[s],
                           function=work.options.function, invert=work.options.invert,
                           bits=work.options.bits, threads=work.render_threads)


def _still(work: _Work, s: int, k: int) -> _Written:
    """Render, encode (within the budget) and write one still."""
    series, options, fmt = work.series[s], work.options, work.fmt
    name = (f"{series.label}{writers.FORMATS[fmt]}" if len(series.frames) == 1
            else f"{series.label}/{k + 1:04d}{writers.FORMATS[fmt]}")
    done = _Written(s, k, name, work.dest / name, caption=_described(work, s, name, k))
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


def _init_stills(work: _Work) -> None:
    global _WORK
    init_worker()
    _WORK = dataclasses.replace(work, decoder=None)  # this worker decodes itself


def _stills(tasks: list[tuple[int, int]]) -> list[_Written]:
    """A worker's unit of work: a few stills, in order."""
    assert _WORK is not None
    return [_still(_WORK, s, k) for s, k in tasks]


def export(sources, out_dir: str | Path, options: ExportOptions,
           progress: Callable[[str, int, int | None], None] | None = None) -> ExportResult:
    """Export every image under `sources` to `out_dir`; never raises for one file.

    `progress(stage, done, total)` hears of each stage ("reading headers", "writing
    images", "bundling") and of each still written.
    """
    out_dir = Path(out_dir)
    fmt = options.format.lower()
    if fmt not in writers.FORMATS:
        raise DicompressError(f"unknown format {options.format!r}: png, jpeg, tiff or gif")
    if options.bits == 16 and fmt not in ("png", "tiff"):
        raise DicompressError("--bits 16 is for PNG and TIFF")
    if options.zip is not None and (Path(options.zip).name != options.zip
                                    or options.zip in ("", ".", "..")):
        # the archive goes in the output folder: a path could put it anywhere
        raise DicompressError(f"--zip {options.zip!r}: give a file name; the archive is "
                              "written in the output folder (-o)")
    if options.jobs is not None and options.jobs < 1:
        raise DicompressError("--jobs must be at least 1")
    tell = progress or (lambda stage, done, total: None)
    result = ExportResult()
    wanted = select.parse_frames(options.frames)
    native: dict[Path, framing.NativePixels] = {}
    tell("reading headers", 0, None)
    headers = list(_headers(sources, result, native))
    series_list = select.group_series(headers, options.series,
                                      identifying_names=options.keep_identifiers)
    if options.series and not series_list:
        result.notes.append(f"no series {options.series} among the inputs")

    staging = Path(tempfile.mkdtemp(prefix=".dicompress-export-", dir=_ensure(out_dir))) if options.zip else None
    written: list[tuple[str, Path]] = []
    captions: dict[str, page.Still] = {}  # the zip's page describes each picture
    try:
        dest = staging or out_dir
        with Isolated() as decoder:
            work = _Work(series_list, [], [], [], native, options, fmt, dest, decoder)
            tasks = _plan(work, wanted, result, written, captions)
            _write_stills(work, tasks, result, written, captions, tell)
        if options.zip:
            tell("bundling", 0, None)
            zips = budgets.write_zips(out_dir / options.zip, written, captions, options.max_size)
            if len(zips) > 1:
                result.notes.append(f"split into {len(zips)} archives to fit {options.max_size:,} bytes each")
            result.outputs = zips
    except DicompressError as exc:
        result.failed.append((out_dir / (options.zip or ""), str(exc)))
    finally:
        if staging:
            shutil.rmtree(staging, ignore_errors=True)
    return result


def _ensure(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


@dataclass
class _Stills:
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


def _plan(work: _Work, wanted, result: ExportResult, written, captions) -> _Stills:
    """Resolve each series' window (once, from its first readable frame, so that slices and
    animations do not flicker) and choose the stills to write; GIFs are written here."""
    options, fmt = work.options, work.fmt
    tasks = _Stills()
    for s, series in enumerate(work.series):
        work.windows.append(None)
        work.notes.append("")
        work.texts.append({})
        chosen = select.choose(len(series.frames), wanted, options.every)
        if not chosen:
            result.notes.append(f"{series.label}: no frame selected of {len(series.frames)}")
            continue
        gray = framing.photometric(series.header).startswith("MONOCHROME")
        bad: set[Path] = set()
        sample = None
        for k in chosen:  # the first frame that reads gives the window
            path = series.frames[k][0]
            if path in bad:
                if len(bad) == len(series.headers):
                    break  # no file of the series reads
                continue
            try:
                sample = _frame(work, series, k)
                break
            except DicompressError as exc:
                bad.add(path)
                result.failed.append((path, str(exc)))
        if sample is None:
            continue
        if gray and options.bits == 8:
            try:
                work.windows[s] = framing.series_window(series.header, options.window, sample)
            except DicompressError as exc:
                result.failed.append((series.frames[chosen[0]][0], str(exc)))
                continue
            work.notes[s] = str(work.windows[s])
        work.texts[s] = _text(series.header, work.notes[s], options.keep_identifiers)
        if fmt == "gif":
            chosen = [k for k in chosen if series.frames[k][0] not in bad]
            _write_gif(work, s, chosen, result, written, captions)
        else:
            tasks.chosen.append((s, chosen))
            tasks.failed |= bad
    return tasks


def _write_stills(work: _Work, tasks: _Stills, result: ExportResult, written, captions,
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
                    remove_temporaries(work.dest)  # of the stills the pool's end cut short
                    pool = start(False)
                    here(orphans)
            tell("writing images", done, total)
    finally:
        if pool is not None:
            pool.close(cancel=True, wait=True)


def _write_gif(work: _Work, s: int, chosen: list[int], result, written, captions) -> None:
    series, options = work.series[s], work.options
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
    duration = _frame_duration(series.header, options)
    name = f"{series.label}.gif"
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
