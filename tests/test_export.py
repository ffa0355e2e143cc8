"""`dicompress export`: real CT, MR, CR, US files to PNG/JPEG/TIFF/GIF, opened with Pillow."""

from __future__ import annotations

import shutil
import zipfile
from pathlib import Path

import numpy as np
import pydicom
import pytest
from PIL import Image

from dicompress import voi
from dicompress.cli import main
from dicompress.export import ExportOptions, export
from dicompress.export.budget import parse_size
from dicompress.export.select import choose, group_series, parse_frames
from dicompress.samples import find_sample


def only(out: Path, pattern: str) -> Path:
    hits = sorted(out.rglob(pattern))
    assert len(hits) == 1, hits
    return hits[0]


def test_ct_png_equals_the_kernel_and_carries_context(tmp_path):
    src = find_sample("CT_small.dcm")
    result = export([src], tmp_path, ExportOptions(format="png", window="lung"))
    assert not result.failed
    img = Image.open(only(tmp_path, "*.png"))
    assert img.mode == "L" and img.size == (128, 128)
    ds = pydicom.dcmread(src)
    np.testing.assert_array_equal(np.asarray(img), voi.render(ds, window="lung"))
    assert img.text["Modality"] == "CT"
    assert img.text["Window"].startswith("C-600/W1500")
    assert img.text["Pixel spacing (mm)"] == "0.661468\\0.661468"


def test_cr_monochrome1_is_inverted_in_png(tmp_path):
    src = find_sample("RG1_UNCR.dcm")
    export([src], tmp_path, ExportOptions(format="png"))
    img = np.asarray(Image.open(only(tmp_path, "*.png")))
    ds = pydicom.dcmread(src)
    np.testing.assert_array_equal(img, voi.render(ds))
    assert img.shape == (ds.Rows, ds.Columns)
    # lungs (dark in the display) vs mediastinum: MONOCHROME1 shown as a radiologist expects
    assert img[900, 500] < img[900, 920]
    export([src], tmp_path / "inv", ExportOptions(format="png", invert=True))
    flipped = np.asarray(Image.open(only(tmp_path / "inv", "*.png")))
    np.testing.assert_array_equal(flipped, voi.render(ds, invert=False))


@pytest.mark.parametrize("name,mode", [("examples_palette.dcm", "RGB"), ("examples_rgb_color.dcm", "RGB"),
                                       ("SC_ybr_full_422_uncompressed.dcm", "RGB")])
def test_colour_to_rgb(name, mode, tmp_path):
    src = find_sample(name)
    export([src], tmp_path, ExportOptions(format="png"))
    img = Image.open(only(tmp_path, "*.png"))
    ds = pydicom.dcmread(src)
    assert img.mode == mode and img.size == (ds.Columns, ds.Rows)
    rgb = pydicom.pixels.apply_color_lut(ds.pixel_array, ds) if name == "examples_palette.dcm" else ds.pixel_array
    if rgb.dtype != np.uint8:
        rgb = (rgb >> 8).astype(np.uint8)
    np.testing.assert_array_equal(np.asarray(img), rgb)


def test_multiframe_us_to_animated_gif(tmp_path):
    src = find_sample("examples_ybr_color.dcm")
    ds = pydicom.dcmread(src, stop_before_pixels=True)
    export([src], tmp_path, ExportOptions(format="gif", every=3))
    gif = Image.open(only(tmp_path, "*.gif"))
    assert gif.n_frames == len(range(0, int(ds.NumberOfFrames), 3))
    assert gif.size == (ds.Columns, ds.Rows)
    assert gif.info["duration"] == round(float(ds.FrameTime) * 3)


def test_gif_fps_and_series_ordering(tmp_path):
    """Slices shuffled on disk come out ordered along the normal."""
    src = find_sample("CT_small.dcm")
    inputs = tmp_path / "in"
    inputs.mkdir()
    base = pydicom.dcmread(src)
    for i, z in enumerate([30.0, 10.0, 20.0]):
        ds = base.copy()
        ds.ImagePositionPatient = [0, 0, z]
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        ds.InstanceNumber = 10 - i  # disagrees with the position on purpose
        ds.SOPInstanceUID = pydicom.uid.generate_uid()
        arr = ds.pixel_array.copy()
        arr[:] = int(z)  # the slice's position is its value
        ds.PixelData = arr.tobytes()
        ds.save_as(inputs / f"s{i}.dcm")
    out = tmp_path / "out"
    export([inputs], out, ExportOptions(format="png", window="0,100", function="linear_exact"))
    values = [int(np.asarray(Image.open(p))[0, 0]) for p in sorted(out.rglob("*.png"))]
    assert values == sorted(values) and len(values) == 3
    export([inputs], out, ExportOptions(format="gif", fps=4, frames="2-3"))
    gif = Image.open(only(out, "*.gif"))
    assert gif.n_frames == 2 and gif.info["duration"] == 250


def test_frames_selection_helpers():
    assert parse_frames("1,5,10-12") == [0, 4, 9, 10, 11]
    assert choose(11, parse_frames("1,5,10-12"), 2) == [0, 9]
    assert choose(3, None, None) == [0, 1, 2]
    with pytest.raises(Exception, match="1-based"):
        parse_frames("0-3")


def test_png_16bit_raw_stored_values(tmp_path):
    src = find_sample("MR_small.dcm")  # signed 16-bit
    export([src], tmp_path, ExportOptions(format="png", bits=16))
    img = Image.open(only(tmp_path, "*.png"))
    ds = pydicom.dcmread(src)
    offset = int(img.text["Stored value offset"])
    assert offset == 32768
    np.testing.assert_array_equal(np.asarray(img).astype(np.int32) - offset, ds.pixel_array)


def test_tiff_16bit_lossless(tmp_path):
    src = find_sample("MR2_UNCR.dcm")
    export([src], tmp_path, ExportOptions(format="tiff", bits=16))
    img = Image.open(only(tmp_path, "*.tif"))
    assert img.info["compression"] == "tiff_adobe_deflate"
    np.testing.assert_array_equal(np.asarray(img), pydicom.dcmread(src).pixel_array)


def test_budget_lowers_quality_then_downscales(tmp_path):
    src = find_sample("RG1_UNCR.dcm")
    result = export([src], tmp_path / "a", ExportOptions(format="jpeg", window="auto", max_size=300_000))
    path = only(tmp_path / "a", "*.jpg")
    assert path.stat().st_size <= 300_000
    assert any("quality lowered" in n for n in result.notes)
    result = export([src], tmp_path / "b", ExportOptions(format="png", max_size=200_000))
    path = only(tmp_path / "b", "*.png")
    assert path.stat().st_size <= 200_000
    assert Image.open(path).size[0] < 1841
    assert any("downscaled" in n for n in result.notes)


def test_zip_bundles_with_index_and_splits(tmp_path):
    src = find_sample("examples_ybr_color.dcm")
    result = export([src], tmp_path, ExportOptions(format="png", zip="us.zip", max_size=parse_size("600kB")))
    zips = sorted(tmp_path.glob("us*.zip"))
    assert len(zips) >= 2 and result.outputs == zips
    total = 0
    for z in zips:
        assert z.stat().st_size <= 600_000
        with zipfile.ZipFile(z) as zf:
            names = zf.namelist()
            assert "index.html" in names
            index = zf.read("index.html").decode()
            images = [n for n in names if n.endswith(".png")]
            assert all(n in index for n in images)
            total += len(images)
    assert total == 30
    assert not list(tmp_path.glob(".dicompress-export-*"))  # staging removed


IDENTIFYING = ("PatientName", "PatientID", "PatientBirthDate", "InstitutionName",
               "ReferringPhysicianName", "AccessionNumber", "StudyDate", "PatientAddress")


def _identifiers(ds) -> list[str]:
    values = []
    for keyword in IDENTIFYING:
        value = str(ds.get(keyword, "") or "").strip()
        if len(value) >= 4:
            values.append(value)
    return values


@pytest.mark.parametrize("fmt", ["png", "jpeg", "tiff", "gif"])
def test_no_identifier_in_any_exported_byte(fmt, tmp_path):
    sources = [find_sample(n) for n in ("CT_small.dcm", "MR_small.dcm", "RG1_UNCR.dcm",
                                        "examples_palette.dcm", "US1_UNCR.dcm")]
    export(sources, tmp_path, ExportOptions(format=fmt, zip="all.zip"))
    secrets = {v for s in sources for v in _identifiers(pydicom.dcmread(s, stop_before_pixels=True))}
    assert len(secrets) >= 5
    blobs = []
    for z in tmp_path.glob("*.zip"):
        with zipfile.ZipFile(z) as zf:
            blobs += [zf.read(n) for n in zf.namelist()] + [n.encode() for n in zf.namelist()]
    assert blobs
    for blob in blobs:
        for secret in secrets:
            for enc in (secret.encode(), secret.encode("utf-16-le")):
                assert enc not in blob, secret


def test_keep_identifiers_writes_them(tmp_path):
    src = find_sample("CT_small.dcm")
    export([src], tmp_path, ExportOptions(format="png", keep_identifiers=True))
    img = Image.open(only(tmp_path, "*.png"))
    assert img.text["Patient name"] == str(pydicom.dcmread(src).PatientName)


def test_cli_skips_non_images_and_reports_failures(tmp_path, capsys):
    inputs = tmp_path / "in"
    inputs.mkdir()
    shutil.copy(find_sample("rtplan.dcm"), inputs)
    shutil.copy(find_sample("CT_small.dcm"), inputs)
    shutil.copy(find_sample("MR_truncated.dcm"), inputs)
    (inputs / "readme.txt").write_text("hello")
    code = main(["export", str(inputs), "--format", "png", "-o", str(tmp_path / "out")])
    captured = capsys.readouterr()
    assert code == 1
    assert "rtplan.dcm: not an image (RTPLAN)" in captured.out
    assert "readme.txt: not a DICOM file" in captured.out
    assert "MR_truncated.dcm" in captured.err
    assert len(list((tmp_path / "out").rglob("*.png"))) == 1
    assert main(["export", str(find_sample("CT_small.dcm")), "--format", "jpeg", "--bits", "16",
                 "-o", str(tmp_path / "x")]) == 2


def test_series_grouping_labels_are_safe():
    ds = pydicom.dcmread(find_sample("CT_small.dcm"), stop_before_pixels=True)
    ds.SeriesDescription = "../../etc/passwd"
    (series,) = group_series([(Path("a.dcm"), ds)])
    assert "/" not in series.label and ".." not in series.label


def test_whole_corpus_exports_but_the_known_bad(tmp_path):
    from dicompress.samples import sample_dirs

    result = export(sample_dirs(), tmp_path, ExportOptions(format="jpeg", every=4))
    failed = {Path(p).name for p, _ in result.failed}
    assert failed <= {"badVR.dcm", "meta_missing_tsyntax.dcm", "nested_priv_SQ.dcm",
                      "JPEG2000-embedded-sequence-delimiter.dcm", "JPEG-lossy.dcm",
                      "MR_truncated.dcm", "SC_rgb_jpeg.dcm", "rtplan_truncated.dcm",
                      "emri_small_jpeg_2k_lossless_too_short.dcm"}, failed
    assert len(result.outputs) > 120
    assert any("not an image (RTPLAN)" in reason for _, reason in result.skipped)
    for path in result.outputs[::10]:
        Image.open(path).verify()
