"""The grayscale display pipeline (PS3.3 C.11): modality -> VOI -> presentation.

Everything ends in one lookup table over the stored values, applied by the
native gather kernel (GIL released, rows split over threads for big frames).
For 8- and 16-bit samples the table covers every value the sample type can
hold; it is computed for the stored range (Bits Stored, Pixel Representation)
and holds its end values outside it, so stored values that break the
attributes' promises clamp to the ends instead of indexing out of range.

`window` applies one window to an array; `render` runs the whole pipeline of a
dataset (Rescale or Modality LUT Sequence, the chosen VOI, MONOCHROME1 and
Presentation LUT Shape).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from dicompress import _lut
from dicompress.errors import DisplayError, UnsupportedLayout

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

_PARALLEL_MIN = 1 << 20  # elements; below this one thread is faster
_TABLE_SPAN_MAX = 1 << 22  # 32-bit input: widest value span done with a table


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


# -- tables -----------------------------------------------------------------------------------

def _type_range(dtype: np.dtype) -> tuple[int, int]:
    info = np.iinfo(dtype)
    return int(info.min), int(info.max)


@lru_cache(maxsize=64)
def _table(first: int, length: int, stored_lo: int, stored_hi: int, voi: tuple,
           modality: tuple, invert: bool, bits: int) -> np.ndarray:
    """A table over first..first+length-1, computed for stored_lo..stored_hi, ends held."""
    kwargs = dict(voi)
    kind = modality[0]
    if kind == "rescale":
        kwargs.update(slope=modality[1], intercept=modality[2])
    else:
        kwargs.update(modality_table=np.frombuffer(modality[1], np.float64),
                      modality_first=modality[2])
    if "voi_table" in kwargs:
        kwargs["voi_table"] = np.frombuffer(kwargs["voi_table"], np.float64)
    try:
        core = _lut.build(stored_lo, stored_hi - stored_lo + 1, out_bits=bits, invert=invert,
                          **kwargs)
    except ValueError as exc:
        raise DisplayError(str(exc)) from exc
    if stored_lo == first and stored_hi - stored_lo + 1 == length:
        table = core
    else:
        table = np.empty(length, dtype=core.dtype)
        below, above = stored_lo - first, first + length - 1 - stored_hi
        table[:below] = core[0]
        table[below: below + core.size] = core
        table[length - above:] = core[-1]
    table.flags.writeable = False
    return table


def _apply(arr: np.ndarray, stored: tuple[int, int] | None, voi: tuple, modality: tuple,
           invert: bool, bits: int, threads: int | None) -> np.ndarray:
    arr = np.ascontiguousarray(arr)
    if arr.dtype.byteorder == ">":
        arr = arr.astype(arr.dtype.newbyteorder("="))
    if arr.dtype.kind not in "uif":
        raise UnsupportedLayout(f"display LUTs take integer or float samples, not {arr.dtype}")
    out = np.empty(arr.shape, dtype=np.uint8 if bits == 8 else np.uint16)
    if arr.size == 0:
        return out
    if arr.dtype.kind == "f" or arr.dtype.itemsize > 4:
        return _apply_direct(arr, voi, modality, invert, bits, out)
    if arr.dtype.itemsize <= 2:
        first, last = _type_range(arr.dtype)
        lo, hi = stored if stored else (first, last)
        lo, hi = max(lo, first), min(hi, last)
        if lo > hi:  # attributes that describe no value this type holds
            lo, hi = first, last
    else:
        # 32-bit: a table over the values present, when that is small enough
        first, last = int(arr.min()), int(arr.max())
        if last - first + 1 > _TABLE_SPAN_MAX:
            return _apply_direct(arr, voi, modality, invert, bits, out)
        lo, hi = first, last
    table = _table(first, last - first + 1, lo, hi, voi, modality, invert, bits)
    _gather(arr, table, first, out, threads)
    return out


_POOL: ThreadPoolExecutor | None = None


def _pool() -> ThreadPoolExecutor:
    """One pool for the process: starting threads per frame costs more than the gather."""
    global _POOL
    if _POOL is None:
        _POOL = ThreadPoolExecutor(os.cpu_count() or 1, thread_name_prefix="dicompress-lut")
    return _POOL


def _gather(arr, table, first, out, threads):
    workers = min(threads if threads is not None else (os.cpu_count() or 1), os.cpu_count() or 1)
    if workers <= 1 or arr.size < _PARALLEL_MIN:
        _lut.apply(arr, table, first, out)
        return
    flat_in, flat_out = arr.reshape(-1), out.reshape(-1)
    bounds = np.linspace(0, arr.size, workers + 1).astype(int)
    jobs = [_pool().submit(_lut.apply, flat_in[bounds[k]:bounds[k + 1]], table, first,
                           flat_out[bounds[k]:bounds[k + 1]]) for k in range(workers)]
    for job in jobs:
        job.result()


def _apply_direct(arr, voi, modality, invert, bits, out):
    """The slow path (float, 64-bit, or 32-bit data of very wide range): the formulas per pixel."""
    x = arr.astype(np.float64)
    if modality[0] == "rescale":
        x = x * modality[1] + modality[2]
    else:
        table = np.frombuffer(modality[1], np.float64)
        x = table[np.clip(np.floor(x + 0.5) - modality[2], 0, table.size - 1).astype(np.int64)]
    y = _voi_formula(x, dict(voi))
    if invert:
        y = 1.0 - y
    top = 255 if bits == 8 else 65535
    out[...] = np.floor(y * top + 0.5)
    return out


def _voi_formula(x: np.ndarray, voi: dict) -> np.ndarray:
    function, c, w = voi["function"], voi.get("center", 0.0), voi.get("width", 1.0)
    with np.errstate(over="ignore"):
        if function == "linear":
            y = np.where(x <= c - 0.5 - (w - 1) / 2, 0.0,
                         np.where(x > c - 0.5 + (w - 1) / 2, 1.0, (x - (c - 0.5)) / (w - 1) + 0.5))
        elif function == "linear_exact":
            y = np.where(x <= c - w / 2, 0.0, np.where(x > c + w / 2, 1.0, (x - c) / w + 0.5))
        elif function == "sigmoid":
            y = 1.0 / (1.0 + np.exp(-4.0 * (x - c) / w))
        elif function == "table":
            table = np.frombuffer(voi["voi_table"], np.float64)
            k = np.clip(np.floor(x + 0.5) - voi["voi_first"], 0, table.size - 1).astype(np.int64)
            y = table[k] / voi["voi_max"]
        else:
            y = (x - voi["range_min"]) / (voi["range_max"] - voi["range_min"])
    return np.clip(y, 0.0, 1.0)


def _voi_key(win: Window) -> tuple:
    function = win.function.lower()
    if function not in FUNCTIONS:
        raise DisplayError(f"VOI LUT Function {win.function!r}: expected one of {', '.join(FUNCTIONS)}")
    if function == "linear" and win.width < 1:
        raise DisplayError(f"window width {win.width:g} < 1 (PS3.3 C.11.2.1.2)")
    if win.width <= 0:
        raise DisplayError(f"window width {win.width:g} must be positive")
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
    return _apply(np.asarray(arr), None, voi, ("rescale", 1.0, 0.0), bool(invert), bits, threads)


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
        index = int(text.split(":", 1)[1]) - 1 if ":" in text else 0
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


def stored_range(ds, dtype: np.dtype) -> tuple[int, int]:
    """The values Bits Stored and Pixel Representation allow (clipped to the sample type)."""
    first, last = _type_range(dtype)
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
        entries, first_mapped, lut_bits = _descriptor(item)
        top = float(max(int(data.max()), (1 << lut_bits) - 1 if lut_bits <= 16 else 1))
        voi = (("function", "table"), ("voi_table", data.astype(np.float64).tobytes()),
               ("voi_first", first_mapped), ("voi_max", top))
    else:
        if function:
            choice = Window(choice.center, choice.width, function.lower(), choice.explanation)
        voi = _voi_key(choice)
    flip = default_invert(ds) if invert is None else bool(invert)
    return _apply(arr, stored, voi, modality, flip, bits, threads)
