"""The display pipeline: the formulas of PS3.3 C.11 for every 16-bit input, pydicom on the corpus,
and the clamping that keeps hostile attributes inside the tables."""

from __future__ import annotations

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset
from pydicom.pixels import apply_modality_lut, apply_voi_lut

from conftest import corpus_images
from dicompress import voi
from dicompress.samples import find_sample


def reference(x: np.ndarray, c: float, w: float, function: str) -> np.ndarray:
    """PS3.3 C.11.2.1.2.1 / C.11.2.1.3.1 / C.11.2.1.3.2, output normalised to 0..1."""
    x = x.astype(np.float64)
    if function == "linear":
        y = ((x - (c - 0.5)) / (w - 1) + 0.5)
        y[x <= c - 0.5 - (w - 1) / 2] = 0.0
        y[x > c - 0.5 + (w - 1) / 2] = 1.0
    elif function == "linear_exact":
        y = (x - c) / w + 0.5
        y[x <= c - w / 2] = 0.0
        y[x > c + w / 2] = 1.0
    else:
        y = 1.0 / (1.0 + np.exp(-4.0 * (x - c) / w))
    return np.clip(y, 0.0, 1.0)


WINDOWS = [(40, 80), (-600, 1500), (1000.5, 2000), (0, 1), (12.25, 2.5), (30000, 10), (-32768, 65536)]


@pytest.mark.parametrize("function", voi.FUNCTIONS)
@pytest.mark.parametrize("dtype", [np.uint16, np.int16])
@pytest.mark.parametrize("bits", [8, 16])
def test_every_16bit_input_within_one_level(function, dtype, bits):
    info = np.iinfo(dtype)
    x = np.arange(info.min, info.max + 1, dtype=np.int64).astype(dtype)
    top = (1 << bits) - 1
    for c, w in WINDOWS:
        if function != "linear" and w < 1:
            continue
        out = voi.window(x, c, w, function, bits=bits)
        assert out.dtype == (np.uint8 if bits == 8 else np.uint16)
        expected = reference(x, c, w, function) * top
        diff = np.abs(out.astype(np.float64) - expected)
        assert diff.max() <= 1.0, (c, w, diff.max())
        inverted = voi.window(x, c, w, function, bits=bits, invert=True)
        assert np.abs(inverted.astype(np.float64) - (top - expected)).max() <= 1.0


def test_8bit_and_32bit_inputs():
    x8 = np.arange(-128, 128, dtype=np.int8)
    np.testing.assert_allclose(voi.window(x8, 0, 100).astype(float),
                               reference(x8, 0, 100, "linear") * 255, atol=1)
    narrow = np.arange(-70000, 70000, 7, dtype=np.int32)  # table path over the values present
    wide = np.array([-2**31, -5, 0, 5, 2**31 - 1], dtype=np.int32)  # direct path
    for x in (narrow, wide):
        np.testing.assert_allclose(voi.window(x, 10, 5000).astype(float),
                                   reference(x, 10, 5000, "linear") * 255, atol=1)
    assert voi.window(np.array([2**32 - 1], np.uint32), 0, 10)[0] == 255


def test_threads_give_the_same_result():
    rng = np.random.default_rng(1)
    x = rng.integers(0, 4096, size=(1500, 1500), dtype=np.uint16)
    one = voi.window(x, 1000, 2000, threads=1)
    np.testing.assert_array_equal(voi.window(x, 1000, 2000, threads=2), one)
    np.testing.assert_array_equal(voi.window(x[:, ::3], 1000, 2000), one[:, ::3])


@pytest.mark.parametrize("bad", [dict(width=0), dict(width=-5), dict(function="gamma"),
                                 dict(width=0.5, function="linear")])
def test_invalid_windows_are_refused(bad):
    args = dict(center=40, width=80, function="linear") | bad
    with pytest.raises(voi.DisplayError):
        voi.window(np.zeros(4, np.uint16), **args)


# -- pydicom on the corpus ------------------------------------------------------------------

def _grayscale_with_voi():
    out = []
    for p in corpus_images():
        ds = pydicom.dcmread(p, stop_before_pixels=True)
        if (str(ds.get("PhotometricInterpretation", "")).startswith("MONOCHROME")
                and ds.BitsAllocated <= 16
                and ("WindowCenter" in ds or "VOILUTSequence" in ds)):
            out.append(p)
    return out


def _pydicom_8bit(ds, arr):
    """pydicom's modality + VOI pipeline, rescaled from its output range to 0..255."""
    modality = apply_modality_lut(arr, ds)
    shown = apply_voi_lut(modality, ds, index=0, prefer_lut=True)
    if "VOILUTSequence" in ds:
        lo, hi = 0.0, float((1 << int(ds.VOILUTSequence[0].LUTDescriptor[2])) - 1)
    else:
        bits = ds.BitsStored
        lo, hi = (0.0, 2.0**bits - 1) if ds.PixelRepresentation == 0 else (-(2.0**(bits - 1)), 2.0**(bits - 1) - 1)
        if "RescaleSlope" in ds and "ModalityLUTSequence" not in ds:
            lo, hi = lo * ds.RescaleSlope + ds.RescaleIntercept, hi * ds.RescaleSlope + ds.RescaleIntercept
    return (shown.astype(np.float64) - lo) / (hi - lo) * 255


@pytest.mark.parametrize("path", _grayscale_with_voi(), ids=lambda p: p.name)
def test_equal_to_pydicom_pipeline(path):
    ds = pydicom.dcmread(path)
    arr = ds.pixel_array
    arr = arr[0] if arr.ndim == 3 else arr
    choice = "voi-lut" if "VOILUTSequence" in ds else "file"
    ours = voi.render(ds, window=choice, invert=False, arr=arr)
    theirs = _pydicom_8bit(ds, arr)
    assert np.abs(ours.astype(np.float64) - theirs).max() <= 1.0


def test_vlut_04_uses_its_voi_lut():
    ds = pydicom.dcmread(find_sample("vlut_04.dcm"))
    out = voi.render(ds)  # no window in the file: its VOI LUT Sequence
    np.testing.assert_array_equal(out, voi.render(ds, window="voi-lut"))
    assert np.abs(out.astype(float) - _pydicom_8bit(ds, ds.pixel_array)).max() <= 1


def test_mlut_18_modality_lut_sequence():
    ds = pydicom.dcmread(find_sample("mlut_18.dcm"))
    arr = ds.pixel_array
    modality = apply_modality_lut(arr, ds)  # pydicom: the table's values
    for c, w in [(2000, 4000), (500, 1000)]:
        ours = voi.render(ds, window=(c, w))
        np.testing.assert_array_equal(ours, voi.window(modality.astype(np.int32), c, w))


def test_rescale_slope_intercept_matches_formula():
    ds = pydicom.dcmread(find_sample("MR2_UNCR.dcm"))
    arr = ds.pixel_array
    ours = voi.render(ds, window=(1000, 2000), invert=False)
    expected = reference(arr * float(ds.RescaleSlope) + float(ds.RescaleIntercept), 1000, 2000, "linear") * 255
    assert np.abs(ours - expected).max() <= 1


def test_monochrome1_is_inverted():
    ds = pydicom.dcmread(find_sample("RG1_UNCR.dcm"))
    assert ds.PhotometricInterpretation == "MONOCHROME1"
    shown, raw = voi.render(ds), voi.render(ds, invert=False)
    assert np.abs(shown.astype(int) - (255 - raw.astype(int))).max() <= 1


def test_windows_presets_and_auto():
    ds = pydicom.dcmread(find_sample("MR-SIEMENS-DICOM-WithOverlays.dcm"))
    windows = voi.file_windows(ds)
    assert [(w.center, w.width, w.explanation) for w in windows] == [
        (450, 790, "WINDOW1"), (200, 443, "WINDOW2")]
    assert voi.resolve_window(ds, "file:2") == windows[1]
    assert voi.resolve_window(ds, None) == windows[0]
    assert voi.resolve_window(ds, "lung") == voi.Window(-600, 1500, "linear", "lung")
    assert voi.resolve_window(ds, "40,400") == voi.Window(40, 400)
    for name in ("brain", "subdural", "stroke", "lung", "mediastinum", "abdomen", "liver",
                 "bone", "soft_tissue"):
        assert name in voi.PRESETS
    with pytest.raises(voi.DisplayError, match="has 2 windows"):
        voi.resolve_window(ds, "file:3")
    with pytest.raises(voi.DisplayError, match="unknown window"):
        voi.resolve_window(ds, "pancreas")
    values = np.arange(1000.0)
    auto = voi.auto_window(values)
    assert auto.function == "linear_exact"
    assert auto.center - auto.width / 2 == pytest.approx(np.percentile(values, 0.5))
    assert voi.render(ds, window="auto").std() > 20


# -- hostile attributes ------------------------------------------------------------------------

def _mono(arr: np.ndarray, **attrs) -> Dataset:
    ds = Dataset()
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows, ds.Columns = arr.shape
    ds.BitsAllocated = arr.dtype.itemsize * 8
    ds.BitsStored = ds.BitsAllocated
    ds.PixelRepresentation = int(arr.dtype.kind == "i")
    for k, v in attrs.items():
        setattr(ds, k, v)
    return ds


def _lut_item(first: int, values, bits=16) -> Dataset:
    item = Dataset()
    item.LUTDescriptor = [len(values), first, bits]
    item.LUTData = list(values)
    return item


def test_modality_lut_shorter_than_the_pixel_range_clamps():
    arr = np.array([[0, 99, 100, 105, 109, 110, 65535]], dtype=np.uint16)
    ds = _mono(arr, ModalityLUTSequence=[_lut_item(100, [0, 100, 200, 300, 400, 500, 600, 700, 800, 900])])
    out = voi.render(ds, window=(450, 900), arr=arr)
    below, top = voi.window(np.array([0]), 450, 900)[0], voi.window(np.array([900]), 450, 900)[0]
    assert out[0, 0] == out[0, 1] == out[0, 2] == below
    assert out[0, 4] == out[0, 5] == out[0, 6] == top
    assert out[0, 3] == voi.window(np.array([500]), 450, 900)[0]


def test_values_beyond_bits_stored_clamp_to_the_ends():
    arr = np.array([[0, 4095, 4096, 65535]], dtype=np.uint16)
    out = voi.render(_mono(arr, BitsStored=12), window=(2048, 4096), arr=arr)
    assert out[0, 2] == out[0, 3] == out[0, 1]


@pytest.mark.parametrize("attrs", [
    dict(BitsStored=20),  # more than allocated
    dict(BitsStored=0),
    dict(PixelRepresentation=1),  # says signed, data unsigned
    dict(BitsStored=12, PixelRepresentation=1),
])
def test_inconsistent_attributes_stay_in_range(attrs):
    arr = np.array([[0, 1, 2047, 2048, 4095, 40000, 65535]], dtype=np.uint16)
    out = voi.render(_mono(arr, **attrs), window=(1000, 2000), arr=arr)
    assert out.shape == arr.shape and out.dtype == np.uint8


def test_flipped_sign_signed_data_declared_unsigned():
    arr = np.array([[-32768, -1, 0, 1, 32767]], dtype=np.int16)
    ds = _mono(arr, PixelRepresentation=0, BitsStored=16)
    out = voi.render(ds, window=(0, 100), arr=arr)
    np.testing.assert_array_equal(out, voi.window(arr, 0, 100))


def test_voi_lut_with_short_table_and_negative_first():
    arr = np.array([[-50, -10, -9, 0, 1000]], dtype=np.int16)
    item = _lut_item(-10, [0, 1000, 2000, 4095], bits=12)
    out = voi.render(_mono(arr, VOILUTSequence=[item]), arr=arr)
    assert out.tolist() == [[0, 0, 62, 255, 255]]
