"""The grayscale display pipeline (PS3.3 C.11): modality -> VOI -> presentation.

Everything ends in one lookup table over the stored values, applied by the
native gather kernel (GIL released, rows split over threads for big frames;
`dicompress.lut` builds and applies the tables).
For 8- and 16-bit samples the table covers every value the sample type can
hold; it is computed for the stored range (Bits Stored, Pixel Representation)
and holds its end values outside it, so stored values that break the
attributes' promises clamp to the ends instead of indexing out of range.

`window` applies one window to an array; `render` runs the whole pipeline of a
dataset (Rescale or Modality LUT Sequence, the chosen VOI, MONOCHROME1 and
Presentation LUT Shape).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from dicompress.errors import DisplayError, UnsupportedLayout
from dicompress.lut import apply_table, type_range

__all__ = ["Window", "PRESETS", "window", "render", "file_windows", "auto_window",
           "resolve_window", "FUNCTIONS"]

FUNCTIONS = ("linear", "linear_exact", "sigmoid")

# Center, width in Hounsfield units: the usual CT reading windows.
PRESETS: dict[str, tuple[float, float]] = {
    "brain": (40, 80),
    "subdural": (75, 215),
    "stroke": (40, 40),
    "lung": (-600, 1500),
    "mediastinum": (50, 350),
    "abdomen": (60, 400),
    "liver": (30, 150),
    "bone": (400, 1800),
    "soft_tissue": (40, 350),
}


@dataclass(frozen=True)
class Window:
    """A VOI window: center and width in modality units, and its function."""

    center: float
    width: float
    function: str = "linear"
    explanation: str = ""

    def __str__(self) -> str:
        name = f" {self.explanation}" if self.explanation else ""
        return f"C{self.center:g}/W{self.width:g}{name} ({self.function})"


def check_window(win: Window) -> str:
    """`win`'s VOI LUT Function in lower case, when the window can be applied (PS3.3
    C.11.2.1.2: a width of at least 1 for LINEAR, positive for the others; finite
    numbers); DisplayError otherwise."""
    function = win.function.lower()
    if function not in FUNCTIONS:
        raise DisplayError(f"VOI LUT Function {win.function!r}: expected one of {', '.join(FUNCTIONS)}")
    if not (math.isfinite(win.center) and math.isfinite(win.width)):
        raise DisplayError(f"window C{win.center:g}/W{win.width:g}: not finite numbers")
    if function == "linear" and win.width < 1:
        raise DisplayError(f"window width {win.width:g} < 1 (PS3.3 C.11.2.1.2)")
    if win.width <= 0:
        raise DisplayError(f"window width {win.width:g} must be positive")
    return function


def _voi_key(win: Window) -> tuple:
    function = check_window(win)
    return (("function", function), ("center", float(win.center)), ("width", float(win.width)))


# -- public API -------------------------------------------------------------------------------

def window(arr: np.ndarray, center: float, width: float, function: str = "linear",
           bits: int = 8, invert: bool = False, *, threads: int | None = None) -> np.ndarray:
    """Apply a VOI window to `arr` (values already in modality units).

    Returns uint8 (``bits=8``) or uint16 (``bits=16``) display values following
    PS3.3 C.11.2.1.2 (LINEAR), C.11.2.1.3.2 (LINEAR_EXACT) or C.11.2.1.3.1
    (SIGMOID); ``invert`` flips the output as MONOCHROME1 does.
    """
    if bits not in (8, 16):
        raise ValueError("bits must be 8 or 16")
    voi = _voi_key(Window(center, width, function))
    return apply_table(np.asarray(arr), None, voi, ("rescale", 1.0, 0.0), bool(invert), bits, threads)


def _float(value, default=None):
    try:
        return float(value)
    except (TypeError, ValueError):
        return default


def _multi(value) -> list:
    if value is None:
        return []
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        return [value]
    return list(value)


def file_windows(ds) -> list[Window]:
    """Every window the file carries (Window Center/Width with their explanations)."""
    centers, widths = _multi(ds.get("WindowCenter")), _multi(ds.get("WindowWidth"))
    explanations = _multi(ds.get("WindowCenterWidthExplanation"))
    function = str(ds.get("VOILUTFunction", "LINEAR") or "LINEAR").lower()
    if function not in FUNCTIONS:
        function = "linear"
    out = []
    for i, (c, w) in enumerate(zip(centers, widths)):
        c, w = _float(c), _float(w)
        if c is None or w is None or w <= 0:
            continue
        text = str(explanations[i]) if i < len(explanations) else ""
        out.append(Window(c, w, function, text))
    return out


def auto_window(values: np.ndarray, low: float = 0.5, high: float = 99.5) -> Window:
    """A window spanning the `low`..`high` percentiles of `values` (modality units)."""
    values = np.asarray(values)
    if values.size == 0:
        raise DisplayError("no pixels to choose a window from")
    lo, hi = np.percentile(values, [low, high])
    if hi <= lo:
        hi = lo + 1
    return Window((lo + hi) / 2, hi - lo, "linear_exact", f"auto p{low:g}-p{high:g}")


def _modality(ds) -> tuple:
    """('rescale', slope, intercept) or ('table', float64 bytes, first mapped)."""
    seq = ds.get("ModalityLUTSequence")
    if seq:
        item = seq[0]
        table = _lut_data(item)
        if table is not None:
            return ("table", table.astype(np.float64).tobytes(), _descriptor(item)[1])
    slope = _float(ds.get("RescaleSlope"), 1.0) or 1.0
    intercept = _float(ds.get("RescaleIntercept"), 0.0)
    return ("rescale", slope, intercept)


def _descriptor(item) -> tuple[int, int, int]:
    """LUT Descriptor: (entries, first mapped value, bits); 0 entries means 65536."""
    desc = [int(v) for v in _multi(item.get("LUTDescriptor"))]
    if len(desc) != 3:
        raise DisplayError("LUT Descriptor must have 3 values")
    entries = desc[0] or 65536
    return entries, desc[1], desc[2]


def _lut_data(item) -> np.ndarray | None:
    """The values of a Modality/VOI LUT item, as pydicom reads them (US/SS/OW)."""
    if "LUTData" not in item:
        return None
    entries, _, bits = _descriptor(item)
    elem = item["LUTData"]
    value = elem.value
    if isinstance(value, (bytes, bytearray)):
        dtype = "<u1" if bits <= 8 and len(value) == entries else "<u2"
        data = np.frombuffer(value[: len(value) // np.dtype(dtype).itemsize * np.dtype(dtype).itemsize], dtype)
    else:
        data = np.asarray(_multi(value))
    if data.size == 0:
        raise DisplayError("empty LUT Data")
    return data[:entries] if data.size >= entries else data


def resolve_window(ds, choice=None, values=None) -> Window | tuple:
    """What `choice` means for `ds`.

    None: the file's first window, else its VOI LUT Sequence, else auto.
    "file" / "file:N": the file's (N-th, from 1) window. "voi-lut": the VOI LUT
    Sequence. A preset name, "auto", a (center, width) pair, a "C,W" string or a
    `Window` are taken as they are. `values` (modality values, or a callable
    returning them) is needed only for "auto". Returns a Window, or
    ("table", item) for a VOI LUT Sequence.
    """
    if isinstance(choice, Window):
        return choice
    if isinstance(choice, tuple) and len(choice) == 2 and choice[0] == "table":
        return choice  # already resolved to a VOI LUT Sequence item
    if isinstance(choice, (tuple, list)) and len(choice) == 2:
        return Window(float(choice[0]), float(choice[1]))
    windows = file_windows(ds)
    voi_seq = ds.get("VOILUTSequence")
    if choice is None:
        if windows:
            return windows[0]
        if voi_seq:
            return ("table", voi_seq[0])
        choice = "auto"
    text = str(choice).strip().lower()
    if text in PRESETS:
        c, w = PRESETS[text]
        return Window(c, w, "linear", text)
    if text == "auto":
        if values is None:
            raise DisplayError("auto window needs the pixel values")
        return auto_window(values() if callable(values) else values)
    if text == "voi-lut":
        if not voi_seq:
            raise DisplayError("the file has no VOI LUT Sequence")
        return ("table", voi_seq[0])
    if text.startswith("file"):
        index = file_window_index(text)
        if windows and 0 <= index < len(windows):
            return windows[index]
        if not windows and voi_seq and index == 0:
            return ("table", voi_seq[0])
        raise DisplayError(f"the file has {len(windows)} windows; {choice!r} is not one of them")
    if "," in text:
        c, w = (float(v) for v in text.split(",", 1))
        return Window(c, w)
    raise DisplayError(f"unknown window {choice!r}: a preset ({', '.join(PRESETS)}), auto, "
                       "file[:N], voi-lut or C,W")


def file_window_index(choice: str) -> int:
    """Which of a file's windows "file" or "file:N" names (N from 1), from 0."""
    match = re.fullmatch(r"file(?:\s*:\s*([0-9]+))?", choice.strip().lower())
    if match is None or match.group(1) is not None and int(match.group(1)) < 1:
        raise DisplayError("a file's window is named file, or file:N for its N-th (from 1)")
    return int(match.group(1)) - 1 if match.group(1) else 0


def stored_range(ds, dtype: np.dtype) -> tuple[int, int]:
    """The values Bits Stored and Pixel Representation allow (clipped to the sample type)."""
    first, last = type_range(dtype)
    bits = int(ds.get("BitsStored", dtype.itemsize * 8) or dtype.itemsize * 8)
    bits = max(1, min(bits, dtype.itemsize * 8))
    if dtype.kind == "i":
        lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    else:
        lo, hi = 0, (1 << bits) - 1
    return max(lo, first), min(hi, last)


def modality_values(ds, arr: np.ndarray) -> np.ndarray:
    """The modality LUT applied to `arr` (float64), for choosing auto windows."""
    kind = _modality(ds)
    if kind[0] == "rescale":
        return arr.astype(np.float64) * kind[1] + kind[2]
    table = np.frombuffer(kind[1], np.float64)
    return table[np.clip(arr.astype(np.int64) - kind[2], 0, table.size - 1)]


def default_invert(ds) -> bool:
    """MONOCHROME1, or Presentation LUT Shape INVERSE (PS3.3 C.11.6), shows inverted."""
    photometric = str(ds.get("PhotometricInterpretation", "")).upper()
    shape = str(ds.get("PresentationLUTShape", "") or "").upper()
    return photometric == "MONOCHROME1" or shape == "INVERSE"


def render(ds, frame: int | None = None, window=None, *, function: str | None = None,
           invert: bool | None = None, bits: int = 8, arr: np.ndarray | None = None,
           threads: int | None = None) -> np.ndarray:
    """The whole grayscale display pipeline of `ds` (or of `arr`, frames of `ds`).

    Parameters
    ----------
    frame : int, optional
        0-based frame to render; None renders every frame.
    window : see `resolve_window`.
    function : str, optional
        Overrides the window's VOI LUT Function.
    invert : bool, optional
        True/False forces; None inverts for MONOCHROME1 or Presentation LUT
        Shape INVERSE (PS3.3 C.11.6).
    """
    photometric = str(ds.get("PhotometricInterpretation", "MONOCHROME2")).upper()
    if not photometric.startswith("MONOCHROME"):
        raise UnsupportedLayout(f"render takes grayscale images, not {photometric}")
    if arr is None:
        from pydicom.pixels import pixel_array

        from dicompress.pipeline.stored import check_stored_frame

        check_stored_frame(None, ds, frame)  # before any native decoder sees the frames
        arr = pixel_array(ds, index=frame, raw=True) if frame is not None else ds.pixel_array
    modality = _modality(ds)
    stored = stored_range(ds, arr.dtype) if arr.dtype.itemsize <= 2 else None
    choice = resolve_window(ds, window, lambda: modality_values(ds, arr))
    if isinstance(choice, tuple):  # VOI LUT Sequence
        item = choice[1]
        data = _lut_data(item)
        if data is None:  # Type 1 in a VOI LUT Sequence item (PS3.3 C.11.2)
            raise DisplayError("the VOI LUT Sequence item has no LUT Data")
        entries, first_mapped, lut_bits = _descriptor(item)
        top = float(max(int(data.max()), (1 << lut_bits) - 1 if lut_bits <= 16 else 1))
        voi = (("function", "table"), ("voi_table", data.astype(np.float64).tobytes()),
               ("voi_first", first_mapped), ("voi_max", top))
    else:
        if function:
            choice = Window(choice.center, choice.width, function.lower(), choice.explanation)
        voi = _voi_key(choice)
    flip = default_invert(ds) if invert is None else bool(invert)
    return apply_table(arr, stored, voi, modality, flip, bits, threads)
