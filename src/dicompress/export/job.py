"""One export run: read headers, group and order series, render, write, budget, bundle."""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pydicom

from dicompress.batch.sources import iter_sources, unique
from dicompress.deid import descriptor_identifies
from dicompress.errors import DicompressError, NotDicom
from dicompress.export import budget as budgets
from dicompress.export import frames as framing
from dicompress.export import select, writers
from dicompress.fileio import atomic_output
from dicompress.layout import FrameLayout
from dicompress.pipeline.frames import decoders_reason
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


def _headers(sources, result: ExportResult):
    for source in unique(iter_sources(sources)):
        try:
            ds = read_header(source.path)
        except NotDicom as exc:
            result.skipped.append((source.path, str(exc)))
            continue
        except DicompressError as exc:
            result.failed.append((source.path, str(exc)))
            continue
        if "PixelData" not in ds:
            kind = str(ds.get("Modality", "") or ds.get("SOPClassUID", "")) or "object"
            result.skipped.append((source.path, f"not an image ({kind})"))
            continue
        del ds["PixelData"]
        try:
            FrameLayout.from_dataset_header(ds)
        except (DicompressError, ValueError, TypeError) as exc:
            result.failed.append((source.path, f"unusable image attributes: {exc}"))
            continue
        yield source.path, ds


def export(sources, out_dir: str | Path, options: ExportOptions) -> ExportResult:
    """Export every image under `sources` to `out_dir`; never raises for one file."""
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
    result = ExportResult()
    wanted = select.parse_frames(options.frames)
    headers = list(_headers(sources, result))
    series_list = select.group_series(headers, options.series,
                                      identifying_names=options.keep_identifiers)
    if options.series and not series_list:
        result.notes.append(f"no series {options.series} among the inputs")

    staging = Path(tempfile.mkdtemp(prefix=".dicompress-export-", dir=_ensure(out_dir))) if options.zip else None
    written: list[tuple[str, Path]] = []
    captions: dict[str, str] = {}
    try:
        dest = staging or out_dir
        for series in series_list:
            _export_series(series, wanted, options, fmt, dest, result, written, captions)
        if options.zip:
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


def _export_series(series, wanted, options, fmt, dest, result, written, captions):
    chosen = select.choose(len(series.frames), wanted, options.every)
    if not chosen:
        result.notes.append(f"{series.label}: no frame selected of {len(series.frames)}")
        return
    bad_files: set[Path] = set()
    window = None
    images: list[tuple[int, np.ndarray, dict]] = []

    def frame_image(k: int):
        nonlocal window
        path, index = series.frames[k]
        header = series.headers[path]
        arr = framing.read_frame(path, index, header)
        if window is None and options.bits == 8:
            window = framing.series_window(header, options.window, arr)
        return framing.display(header, arr, window, function=options.function,
                               invert=options.invert, bits=options.bits)

    window_note = ""
    for k in chosen:
        path = series.frames[k][0]
        if path in bad_files:
            continue
        try:
            image, notes = frame_image(k)
        except DicompressError as exc:
            bad_files.add(path)
            result.failed.append((path, str(exc)))
            continue
        except Exception as exc:  # a decoder's own error on damaged pixel data
            bad_files.add(path)
            result.failed.append((path, f"pixel data cannot be decoded: {decoders_reason(exc)}"))
            continue
        window_note = notes.get("window", "") if not window_note else window_note
        if fmt == "gif":
            images.append((k, image, notes))
            continue
        text = _text(series.header, window_note, options.keep_identifiers)
        if notes.get("offset"):
            text["Stored value offset"] = str(notes["offset"])
        name = (f"{series.label}{writers.FORMATS[fmt]}" if len(series.frames) == 1
                else f"{series.label}/{k + 1:04d}{writers.FORMATS[fmt]}")
        _write(dest / name, name, lambda q, s, img=image, t=text: writers.encode_still(
            img, fmt, text=t, quality=q, scale=s), options, fmt, result, written, captions,
            caption=f"{series.label} frame {k + 1} {window_note}".strip())
    if fmt == "gif" and images:
        duration = _frame_duration(series.header, options)
        name = f"{series.label}.gif"
        frames_only = [img for _, img, _ in images]
        _write(dest / name, name, lambda q, s: writers.encode_gif(
            frames_only, duration_ms=duration, scale=s), options, fmt, result, written, captions,
            caption=f"{series.label}: {len(frames_only)} frames, {duration} ms each")


def _write(path: Path, name: str, encode, options, fmt, result, written, captions, caption=""):
    try:
        data, actions = budgets.fit(encode, options.max_size, quality=options.quality,
                                    lossy_quality=fmt == "jpeg")
    except (DicompressError, ValueError, OSError) as exc:
        result.failed.append((path, f"cannot write {name}: {exc}"))
        return
    for action in actions:
        result.notes.append(f"{name}: {action}")
    with atomic_output(path) as tmp:
        tmp.write_bytes(data)
    result.outputs.append(path)
    written.append((name, path))
    captions[name] = caption
