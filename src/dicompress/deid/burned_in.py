"""Burned-in text: files that may show identity in their pixels, and blanking it out.

The profile cleans attributes; text drawn into the pixels (names on ultrasound and
secondary-capture screens) needs its own decision. A file is refused when it says it
has burned-in annotation, or says nothing and is of a kind that typically has it,
unless the user accepts it (--allow-burned-in) or gives the rectangles to blank.
"""

from __future__ import annotations

import numpy as np
from pydicom.dataset import Dataset

from dicompress.errors import DeidError
from dicompress.layout import FrameLayout

#: Modalities whose images usually carry burned-in text when they do not say otherwise.
LIKELY_MODALITIES = {"US": "ultrasound", "SC": "secondary capture", "OT": "other",
                     "XC": "external camera", "ES": "endoscopy", "GM": "general microscopy",
                     "DOC": "document"}
#: Secondary Capture storage SOP classes (PS3.4 B.5), screenshots by nature.
_SECONDARY_CAPTURE = "1.2.840.10008.5.1.4.1.1.7"


def burned_in_reason(ds: Dataset) -> str | None:
    """Why `ds`'s pixels may show identity, or None."""
    flag = str(ds.get("BurnedInAnnotation", "") or "").strip().upper()
    if flag == "YES":
        return "Burned In Annotation is YES"
    if flag == "NO":
        return None
    modality = str(ds.get("Modality", "") or "").strip().upper()
    if modality in LIKELY_MODALITIES:
        return (f"{LIKELY_MODALITIES[modality]} ({modality}) images usually carry burned-in "
                "text, and this file does not say it has none")
    if str(ds.get("SOPClassUID", "")).startswith(_SECONDARY_CAPTURE):
        return "a secondary capture, which usually carries burned-in text"
    return None


def parse_rectangle(text: str) -> tuple[int, int, int, int]:
    """'x,y,w,h' in pixels (columns, rows from the top left)."""
    try:
        x, y, w, h = (int(v) for v in text.split(","))
    except ValueError:
        raise DeidError(f"--blank {text!r}: give x,y,width,height in pixels") from None
    if x < 0 or y < 0 or w < 1 or h < 1:
        raise DeidError(f"--blank {text!r}: x and y from 0, width and height from 1")
    return x, y, w, h


def blank_value(layout: FrameLayout) -> tuple[int, ...]:
    """What blank looks like: black (the darkest value the photometric interpretation
    displays), per sample."""
    bits = layout.bits_stored or layout.bits_allocated
    signed = layout.pixel_representation == 1
    low = -(1 << (bits - 1)) if signed else 0
    high = (1 << (bits - 1)) - 1 if signed else (1 << bits) - 1
    photometric = layout.photometric_interpretation.upper()
    if photometric == "MONOCHROME1":
        return (high,)
    if photometric.startswith("YBR"):
        return (0, 1 << (bits - 1), 1 << (bits - 1))  # Y black, no colour
    return (low,) * layout.samples_per_pixel


class Blanker:
    """Sets the rectangles of every frame to black."""

    def __init__(self, rectangles, layout: FrameLayout) -> None:
        self.rectangles = list(rectangles)
        self.value = blank_value(layout)
        for x, y, w, h in self.rectangles:
            if x >= layout.columns or y >= layout.rows:
                raise DeidError(f"--blank {x},{y},{w},{h} lies outside the "
                                      f"{layout.columns}x{layout.rows} image")

    def __call__(self, frame: np.ndarray) -> np.ndarray:
        frame = np.array(frame, copy=True)
        for x, y, w, h in self.rectangles:
            region = frame[y:y + h, x:x + w]
            if frame.ndim == 3:
                region[...] = np.asarray(self.value, dtype=frame.dtype)
            else:
                region[...] = self.value[0]
        return frame
