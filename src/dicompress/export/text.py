"""What a picture and the zip's page say: the non-identifying context of a series (the
pictures' text chunks), the study's date as shown, an animation's frame time."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from dicompress.deid import descriptor_identifies

if TYPE_CHECKING:
    from dicompress.export.job import ExportOptions

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


def picture_text(ds, window_note: str, keep_identifiers: bool) -> dict[str, str]:
    text = {"Software": "dicompress"}
    for keyword, label in CONTEXT.items():
        value = ds.get(keyword)
        if value not in (None, ""):
            value = _text(value)
            if not keep_identifiers and keyword in DESCRIPTORS and descriptor_identifies(ds, value):
                continue  # a description naming the patient, a date, an ID: not shown
            text[label] = value
    if window_note:
        text["Window"] = window_note
    if keep_identifiers:
        for keyword, label in IDENTIFIERS.items():
            value = ds.get(keyword)
            if value not in (None, ""):
                text[label] = _text(value)
    return text


def _text(value) -> str:
    """A value as the file writes it: several joined by backslashes."""
    several = isinstance(value, Sequence) and not isinstance(value, (str, bytes))
    return "\\".join(map(str, value)) if several else str(value)


def frame_duration(ds, options: ExportOptions) -> int:
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


def study_date(ds, keep_identifiers: bool) -> str:
    """The study's year (HIPAA Safe Harbor keeps a date's year; PS3.15 removes the date):
    enough to tell this study from others, not the day. The whole date with
    --keep-identifiers."""
    value = str(ds.get("StudyDate", "") or "").strip()
    if len(value) < 4 or not value[:4].isdigit():
        return ""
    if keep_identifiers and len(value) == 8 and value.isdigit():
        return f"study of {value[:4]}-{value[4:6]}-{value[6:]}"
    return f"study of {value[:4]}"


def number(text: str) -> str:
    """A decimal string as people write it ('5.000000' -> '5')."""
    try:
        return f"{float(text):g}"
    except ValueError:
        return text
