"""Window/level (VOI, PS3.3 C.11.2): a 16-bit frame to 8-bit display values.

One group per file ("voi RG1_UNCR.dcm"), so pytest-benchmark prints the
implementations side by side. Every row turns the same uint16 frame
(``ds.pixel_array``, loaded once) into uint8 with the file's first window
(Window Center / Window Width, first value):

- ``pydicom``: ``pydicom.pixels.apply_voi_lut(arr, ds)`` (float64 out, in
  pydicom's output range y_min..y_max), then the cast a viewer needs: scaled
  to 0..255, rounded and ``astype(np.uint8)``. The cast is part of the work.
- ``numpy-take``: ``np.take(lut, arr)`` with a 65536-entry uint8 table made
  outside the timing (pydicom's result for every 16-bit value, cast the same).
- ``dicompress-1t``: ``voi.window(arr, c, w, threads=1)``, table cache warm,
  as it runs frame after frame. The speed targets use this row.
- ``dicompress-all-cores``: the same with ``threads=None`` (every core for
  arrays of 1M elements or more).
- ``lut-apply-bare``: ``dicompress._lut.apply`` alone, with the table and the
  output buffer made beforehand; one thread. The kernel's ceiling.
- ``dicompress-cold-table``: ``voi.window(..., threads=1)`` with the table
  cache cleared inside every call, so each call also builds the table.
- ``render-1t``: ``voi.render(ds, arr=arr, invert=False, threads=1)``, the
  whole dataset pipeline (attributes parsed per call). It applies Rescale
  Slope/Intercept before the window, as PS3.3 C.11 orders; pydicom's
  ``apply_voi_lut`` does not, so on a file with a rescale (MR2) its image
  differs from the other rows while its work (one table gather) is the same.

Outputs are checked once per benchmark, outside the timing: numpy-take equals
pydicom exactly, the dicompress rows equal each other exactly and are within
one display level of pydicom. No time is ever asserted.
``DICOMPRESS_BENCH_QUICK=1`` uses two small synthetic frames and one round.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.pixels import apply_voi_lut

from conftest import QUICK, synthetic_dataset
from dicompress import _lut, lut, voi

CORPUS_FILES = ("RG1_UNCR.dcm", "MR2_UNCR.dcm")

# (name, rows, columns, bits_stored, window center, window width): small and unsigned,
# shaped like the two files (15-bit CR, 12-bit MR).
SYNTHETIC = (
    ("synthetic-cr-96x80", 96, 80, 15, 15000, 30000),
    ("synthetic-mr-64x64", 64, 64, 12, 1000, 2000),
)

# parameter id -> name in tables.
IMPLEMENTATIONS = {
    "pydicom": "pydicom apply_voi_lut + cast",
    "numpy-take": "numpy take (65536-entry LUT)",
    "dicompress-1t": "dicompress window, 1 thread",
    "dicompress-all-cores": "dicompress window, all cores",
    "lut-apply-bare": "dicompress _lut.apply (bare), 1 thread",
    "dicompress-cold-table": "dicompress window, table built per call",
    "render-1t": "dicompress render, 1 thread",
}

@dataclass(frozen=True)
class VoiCase:
    """One frame and its window, with every implementation's inputs prepared."""

    name: str
    dataset: Dataset
    pixels: np.ndarray  # uint16, C-contiguous
    window_center: float
    window_width: float
    output_range: tuple[float, float]  # pydicom's y_min, y_max for this dataset
    numpy_table: np.ndarray  # 65536 uint8: pydicom + cast for every 16-bit value
    expected: np.ndarray  # pydicom + cast on the frame

    @property
    def input_bytes(self) -> int:
        return self.pixels.nbytes


def _first(value) -> float:
    return float(value[0] if isinstance(value, MultiValue) else value)


def pydicom_output_range(ds: Dataset) -> tuple[float, float]:
    """y_min, y_max of ``pydicom.pixels.apply_windowing`` (its own rule, restated)."""
    if ds.get("ModalityLUTSequence"):
        y_min, y_max = 0.0, float(2 ** ds.ModalityLUTSequence[0].LUTDescriptor[2] - 1)
    elif ds.PixelRepresentation == 0:
        y_min, y_max = 0.0, float(2**ds.BitsStored - 1)
    else:
        y_min, y_max = float(-(2 ** (ds.BitsStored - 1))), float(2 ** (ds.BitsStored - 1) - 1)
    slope, intercept = ds.get("RescaleSlope"), ds.get("RescaleIntercept")
    if slope is not None and intercept is not None:
        slope, intercept = float(slope), float(intercept)
        y_min, y_max = y_min * slope + intercept, y_max * slope + intercept
    return y_min, y_max


def to_uint8(values: np.ndarray, output_range: tuple[float, float]) -> np.ndarray:
    """pydicom's float output to 0..255, rounded half up (as dicompress rounds)."""
    y_min, y_max = output_range
    return ((values - y_min) * (255.0 / (y_max - y_min)) + 0.5).astype(np.uint8)


def load_voi_case(name: str) -> VoiCase:
    if QUICK:
        _, rows, columns, bits_stored, center, width = next(s for s in SYNTHETIC if s[0] == name)
        ds = synthetic_dataset(rows, columns, bits_stored, 0)
        ds.WindowCenter, ds.WindowWidth = center, width
    else:
        from dicompress.samples import find_sample

        try:
            ds = pydicom.dcmread(find_sample(name))
        except FileNotFoundError as exc:
            pytest.skip(str(exc))
    pixels = np.ascontiguousarray(ds.pixel_array)
    if pixels.dtype != np.uint16:
        raise ValueError(f"{name}: expected uint16 pixels, got {pixels.dtype}")
    output_range = pydicom_output_range(ds)
    every_value = np.arange(65536, dtype=np.uint16)
    return VoiCase(
        name=name,
        dataset=ds,
        pixels=pixels,
        window_center=_first(ds.WindowCenter),
        window_width=_first(ds.WindowWidth),
        output_range=output_range,
        numpy_table=to_uint8(apply_voi_lut(every_value, ds), output_range),
        expected=to_uint8(apply_voi_lut(pixels, ds), output_range),
    )


@pytest.fixture(scope="module", params=[s[0] for s in SYNTHETIC] if QUICK else CORPUS_FILES)
def voi_case(request) -> VoiCase:
    """One prepared frame per file (module scope: each is read once)."""
    return load_voi_case(request.param)


def timed_call(case: VoiCase, implementation: str):
    """The function to time for `implementation`; everything it needs is made here."""
    arr, ds = case.pixels, case.dataset
    center, width = case.window_center, case.window_width
    if implementation == "pydicom":
        return lambda: to_uint8(apply_voi_lut(arr, ds), case.output_range)
    if implementation == "numpy-take":
        table = case.numpy_table
        return lambda: np.take(table, arr)
    if implementation == "dicompress-1t":
        voi.window(arr, center, width, threads=1)  # warm the table cache
        return lambda: voi.window(arr, center, width, threads=1)
    if implementation == "dicompress-all-cores":
        voi.window(arr, center, width)
        return lambda: voi.window(arr, center, width, threads=None)
    if implementation == "lut-apply-bare":
        # The table window() gathers from: 16-bit unsigned input, identity rescale, 8 bits.
        key = voi._voi_key(voi.Window(center, width))
        table = lut.build_table(0, 65536, 0, 65535, key, ("rescale", 1.0, 0.0), False, 8)
        out = np.empty(arr.shape, np.uint8)
        return lambda: _lut.apply(arr, table, 0, out)
    if implementation == "dicompress-cold-table":
        def window_cold() -> np.ndarray:
            lut.build_table.cache_clear()
            return voi.window(arr, center, width, threads=1)

        return window_cold
    if implementation == "render-1t":
        voi.render(ds, arr=arr, invert=False, threads=1)
        return lambda: voi.render(ds, arr=arr, invert=False, threads=1)
    raise ValueError(implementation)


def check_output(case: VoiCase, implementation: str, out: np.ndarray) -> None:
    assert out.dtype == np.uint8 and out.shape == case.pixels.shape
    if implementation in ("pydicom", "numpy-take"):
        np.testing.assert_array_equal(out, case.expected)
        return
    if implementation == "render-1t":
        # render rescales first: compare with the window on modality values (formula path).
        modality = voi.modality_values(case.dataset, case.pixels)
        reference = voi.window(modality, case.window_center, case.window_width)
    else:
        np.testing.assert_array_equal(
            out, voi.window(case.pixels, case.window_center, case.window_width, threads=1))
        reference = case.expected
    diff = np.abs(out.astype(np.int16) - reference.astype(np.int16))
    assert diff.max() <= 1, f"{case.name} {implementation}: off by {diff.max()} levels"


@pytest.mark.parametrize("implementation", list(IMPLEMENTATIONS))
def bench_voi_window(benchmark, measure, voi_case, implementation):
    benchmark.group = f"voi {voi_case.name}"
    out = measure(timed_call(voi_case, implementation))
    if implementation == "lut-apply-bare":
        out = out.copy()
    check_output(voi_case, implementation, out)

    info = benchmark.extra_info
    info["file"] = voi_case.name
    info["operation"] = "window"
    info["implementation"] = IMPLEMENTATIONS[implementation]
    info["variant"] = implementation
    info["rows"], info["columns"] = (int(n) for n in voi_case.pixels.shape)
    info["bits_stored"] = int(voi_case.dataset.BitsStored)
    info["window_center"] = voi_case.window_center
    info["window_width"] = voi_case.window_width
    info["input_bytes"] = voi_case.input_bytes  # 16-bit input; MB/s is of these bytes
    stats = getattr(benchmark, "stats", None)  # None when benchmarks are disabled
    if stats is not None:
        info["mb_per_s"] = round(voi_case.input_bytes / stats.stats.mean / 1e6, 3)
