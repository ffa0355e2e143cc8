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
from dicompress.export.select import FrameList, choose, group_series, parse_frames
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
    assert list(choose(3, None, None)) == [0, 1, 2]
    assert list(choose(10, None, 4)) == [0, 4, 8]
    assert len(choose(2**31 - 1, None, None)) == 2**31 - 1  # a range: nothing listed
    with pytest.raises(Exception, match="1-based"):
        parse_frames("0-3")


def test_a_series_frame_list_holds_a_file_not_a_frame():
    """Frames are found by bisection over the files' counts: nothing per frame is held."""
    frames = FrameList()
    frames.add(Path("a.dcm"), 3)
    frames.add(Path("b.dcm"), 2**31 - 1)
    assert len(frames) == 3 + 2**31 - 1
    assert frames[0] == (Path("a.dcm"), 0) and frames[2] == (Path("a.dcm"), 2)
    assert frames[3] == (Path("b.dcm"), 0) and frames[-1] == (Path("b.dcm"), 2**31 - 2)
    with pytest.raises(IndexError):
        frames[len(frames)]


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


# -- speed paths: worker processes, native frames, the PNG writer -------------------------
import io  # noqa: E402
import re  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402

from conftest import require_tool  # noqa: E402
from dicompress.export.writers import encode_jpeg, encode_png, encode_tiff  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent.parent / "tools"))
from make_series import make_series  # noqa: E402


@pytest.fixture
def ct_series(tmp_path) -> Path:
    """12 CT slices (256 x 256, signed, native: frames read straight from the files), given
    a study description, a study date and a description that names the patient."""
    paths = make_series(tmp_path / "series", 12, 256)
    for path in paths:
        ds = pydicom.dcmread(path)
        ds.PatientName, ds.PatientID = "Doe^Jane", "PID77431"  # (the CQ500 ID holds "CT")
        ds.StudyDescription = "CT HEAD WITHOUT CONTRAST"
        ds.StudyDate = "20240517"
        ds.SeriesDescription = f"Axial {ds.PatientID}"  # identifies: left out
        ds.SliceThickness = "5.000000"
        ds.save_as(path, enforce_file_format=True)
    return paths[0].parent


@pytest.mark.parametrize("fmt", ["png", "tiff", "jpeg"])
def test_jobs_write_what_one_process_writes(ct_series, tmp_path, fmt):
    """Worker processes (native frames read straight from the file) write the same
    pictures as one process would, and the 8-bit pictures equal the display kernel."""
    one = export([ct_series], tmp_path / "one", ExportOptions(format=fmt, jobs=1))
    two = export([ct_series], tmp_path / "two", ExportOptions(format=fmt, jobs=2))
    assert not one.failed and not two.failed and len(one.outputs) == len(two.outputs) == 12
    for a, b in zip(one.outputs, two.outputs):
        assert a.relative_to(tmp_path / "one") == b.relative_to(tmp_path / "two")
        assert a.read_bytes() == b.read_bytes()
    if fmt != "jpeg":
        for path, out in zip(sorted(ct_series.glob("*.dcm")), one.outputs):
            np.testing.assert_array_equal(np.asarray(Image.open(out)),
                                          voi.render(pydicom.dcmread(path)))


@pytest.mark.parametrize("shape,dtype", [((37, 23), np.uint8), ((5, 9, 3), np.uint8),
                                         ((17, 31), np.uint16), ((1, 1), np.uint8)])
def test_png_writer_reads_back_in_pillow_and_libpng(shape, dtype):
    """The PNG writer shares no code with either reader (Pillow; libpng by imagecodecs)."""
    import imagecodecs

    rng = np.random.default_rng(1)
    arr = rng.integers(0, np.iinfo(dtype).max, shape, dtype=dtype, endpoint=True)
    text = {"Window": "C40/W400", "Study": "Schädel ✓"}  # Latin-1 (tEXt) and not (iTXt)
    data = encode_png(arr, text)
    img = Image.open(io.BytesIO(data))
    img.load()  # checks every chunk's CRC
    np.testing.assert_array_equal(np.asarray(img).astype(dtype), arr)
    assert img.text == text
    np.testing.assert_array_equal(imagecodecs.png_decode(data), arr)
    with pytest.raises(ValueError, match="PNG export takes"):
        encode_png(arr.astype(np.float32))


@pytest.mark.parametrize("shape,dtype", [((37, 23), np.uint8), ((5, 9, 3), np.uint8),
                                         ((17, 31), np.uint16), ((1, 1), np.uint8)])
def test_tiff_writer_reads_back_in_pillow_and_libtiff(shape, dtype):
    """The TIFF writer shares no code with either reader (Pillow; libtiff by imagecodecs)."""
    import imagecodecs

    rng = np.random.default_rng(2)
    arr = rng.integers(0, np.iinfo(dtype).max, shape, dtype=dtype, endpoint=True)
    data = encode_tiff(arr)
    img = Image.open(io.BytesIO(data))
    assert img.info["compression"] == "tiff_adobe_deflate"
    np.testing.assert_array_equal(np.asarray(img).astype(dtype), arr)
    np.testing.assert_array_equal(imagecodecs.tiff_decode(data), arr)
    with pytest.raises(ValueError, match="TIFF export takes"):
        encode_tiff(arr.astype(np.int32))


@pytest.mark.parametrize("shape", [(37, 23), (40, 52, 3), (1, 1)])
def test_jpeg_writer_is_pillows_jpeg_at_the_same_quality(shape):
    """libjpeg-turbo (imagecodecs) without an optimize pass writes the stream Pillow writes
    at the same quality (so export's pictures are the size a Pillow script's are); Pillow
    reads it back close to the original."""
    rng = np.random.default_rng(3)
    rows, columns = np.mgrid[:shape[0], :shape[1]]
    smooth = (rows * 3 + columns * 2)[..., None] if len(shape) == 3 else rows * 3 + columns * 2
    arr = (np.broadcast_to(smooth, shape) + rng.normal(60, 4, shape)).clip(0, 255).astype(np.uint8)
    for quality in (90, 50):
        data = encode_jpeg(arr, quality)
        buf = io.BytesIO()
        Image.fromarray(arr).save(buf, format="JPEG", quality=quality)
        assert data == buf.getvalue()
    back = np.asarray(Image.open(io.BytesIO(encode_jpeg(arr, 95)))).astype(int)
    assert back.shape == arr.shape and np.abs(back - arr).mean() < 8
    with pytest.raises(ValueError, match="JPEG export takes"):
        encode_jpeg(arr.astype(np.uint16))


# -- the zip's page, in a real browser ------------------------------------------------------
def _chromium(*args: str) -> subprocess.CompletedProcess:
    exe = require_tool("chromium")
    return subprocess.run([exe, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                           "--allow-file-access-from-files", *args],
                          capture_output=True, text=True, timeout=120)


def _page_text(dom: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", dom))


def test_zip_page_is_a_contact_sheet_without_identifiers(ct_series, tmp_path):
    result = export([ct_series], tmp_path, ExportOptions(
        format="png", zip="ct.zip", max_size=parse_size("150kB")))
    assert not result.failed and len(result.outputs) >= 2  # split into parts
    source = pydicom.dcmread(next(ct_series.glob("*.dcm")), stop_before_pixels=True)
    secrets = ["Doe", "Jane", str(source.PatientID), "20240517", "2024-05-17"]
    held = []
    for n, part in enumerate(result.outputs, start=1):
        folder = tmp_path / f"part{n}"
        with zipfile.ZipFile(part) as zf:
            zf.extractall(folder)
            pictures = sorted(name for name in zf.namelist() if name.endswith(".png"))
        dom = _chromium("--dump-dom", (folder / "index.html").as_uri())
        assert dom.returncode == 0, dom.stderr[-2000:]
        text = _page_text(dom.stdout)
        for secret in secrets:
            assert secret not in dom.stdout, secret
        assert "CT HEAD WITHOUT CONTRAST" in text and "study of 2024" in text
        assert f"{len(pictures)} images" in text or (len(pictures) == 1 and "1 image," in text)
        assert "C40/W100" in text  # the file's window, said once per series
        # which slices this part holds, and each picture's slice, position and thickness
        numbers = [int(re.search(r"/(\d+)\.png$", p).group(1)) for p in pictures]
        held += numbers
        first, last = numbers[0], numbers[-1]
        span = f"slice {first} of 12" if first == last else f"slices {first}-{last} of 12"
        assert span in text, (span, text[:500])
        assert f"slice {first} of 12, at {first - 1:.1f} mm, 5 mm thick" in text
        assert dom.stdout.count("<figure>") == len(pictures)
        assert all(f'src="{p}"' in dom.stdout for p in pictures)
    assert sorted(held) == list(range(1, 13))

    # what a doctor sees: a grid of pictures; a click on the third shows it full size
    shot, enlarged = tmp_path / "sheet.png", tmp_path / "enlarged.png"
    url = (tmp_path / "part1" / "index.html").as_uri()
    assert _chromium("--window-size=1200,900", f"--screenshot={shot}", url).returncode == 0
    assert _chromium("--window-size=1200,900", f"--screenshot={enlarged}", url + "#v2").returncode == 0
    sheet = np.asarray(Image.open(shot).convert("L")).astype(int)
    big = np.asarray(Image.open(enlarged).convert("L")).astype(int)
    assert sheet.std() > 20 and big.std() > 20
    # the grid: several pictures side by side across the first row of thumbnails
    row = sheet[300]
    assert (np.diff((row > 40).astype(int)) == 1).sum() >= 3
    assert np.abs(sheet - big).mean() > 10  # the enlarged view covers the sheet


def test_zip_page_says_one_image(tmp_path):
    result = export([find_sample("CT_small.dcm")], tmp_path, ExportOptions(format="png", zip="one.zip"))
    with zipfile.ZipFile(result.outputs[0]) as zf:
        page = zf.read("index.html").decode()
    assert "1 image," in page and "1 images" not in page
    ds = pydicom.dcmread(find_sample("CT_small.dcm"), stop_before_pixels=True)
    for secret in (str(ds.PatientName), str(ds.PatientID), str(ds.StudyDate)):
        assert secret not in page


def test_export_progress_is_a_line_per_stage_when_piped(ct_series, tmp_path):
    proc = subprocess.run([sys.executable, "-m", "dicompress", "export", str(ct_series),
                           "--format", "png", "-o", str(tmp_path / "out"), "--zip", "ct.zip"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stderr.splitlines()
    stages = [line for line in lines if line.startswith("export: ")]
    assert stages[0] == "export: reading headers"
    assert "export: writing images (12 to do)" in stages
    assert any(re.fullmatch(r"export: writing images: 12 done, [0-9.]+ s", s) for s in stages)
    assert any(s.startswith("export: bundling: ") for s in stages)
    assert len(lines) == len(stages)  # nothing per file


def test_export_progress_bar_on_a_terminal(ct_series, tmp_path):
    """On a terminal, a bar per stage (rich), removed when done; the counts reach the end."""
    from dicompress.cli.progress import StageReporter

    stream = io.StringIO()
    with StageReporter("export", stream=stream, live=True) as reporter:
        seen = []

        def tell(stage, done, total):
            seen.append((stage, done, total))
            reporter.update(stage, done, total)

        export([ct_series], tmp_path / "out", ExportOptions(format="png", zip="a.zip"),
               progress=tell)
        task = reporter.progress.tasks[-1]
        assert task.description == "bundling" and task.total is None  # pulses: no count
    stages = [stage for stage, _, _ in seen]
    assert stages[0] == "reading headers" and stages[-1] == "bundling"
    assert ("writing images", 12, 12) in seen


# -- budgets as sent by e-mail ----------------------------------------------------------------
def _as_attachment(path: Path) -> int:
    """Bytes of `path` as one attachment of a real message (the stdlib's MIME writer)."""
    from email import policy
    from email.message import EmailMessage

    message = EmailMessage(policy=policy.SMTP)
    message.add_attachment(path.read_bytes(), maintype="application", subtype="octet-stream",
                           filename=path.name)
    return len(message.get_payload()[0].as_bytes())


@pytest.mark.parametrize("name", ["a.zip", "CT 0001.png", "Thorax_Übersicht_" + "x" * 120 + ".zip"])
def test_attachment_size_is_what_the_mime_writer_makes(name, tmp_path):
    from dicompress.export.budget import attachment_size

    for size in (0, 1, 2, 3, 56, 57, 58, 113, 114, 115, 4096, 100_001):
        path = tmp_path / "f"
        path.write_bytes(np.random.default_rng(size).bytes(size))
        path = path.rename(tmp_path / name)
        assert attachment_size(size, name) == _as_attachment(path), (name, size)


def test_raw_limit_is_the_exact_edge():
    from dicompress.export.budget import HEADER_RESERVE, base64_size, raw_limit

    for limit in (10_000_000, 25_000_000, 600_000, 4099):
        n = raw_limit(limit)
        assert base64_size(n) + HEADER_RESERVE <= limit < base64_size(n + 1) + HEADER_RESERVE
    assert raw_limit(10_000_000) == 7_306_944


def test_every_file_max_size_10mb_writes_fits_a_10mb_attachment(tmp_path, capsys):
    import sys

    sys.path.insert(0, str(Path(__file__).parent.parent / "tools"))
    from make_series import make_series

    series = make_series(tmp_path / "ct", 40, 512, seed=3)[0].parent
    out = tmp_path / "out"
    assert main(["export", str(series), "--format", "png", "--bits", "16", "-o", str(out),
                 "--zip", "ct.zip", "--max-size", "10MB"]) == 0
    printed = capsys.readouterr().out
    zips = sorted(out.glob("ct*.zip"))
    assert len(zips) >= 2  # the images are more than one attachment's worth
    raw = sum(z.stat().st_size for z in zips)
    assert raw > 10_000_000 * 3 / 4  # one archive of them would bounce as sent
    for z in zips:
        assert _as_attachment(z) <= 10_000_000, z.name
    assert "MiB" not in printed and " MB)" in printed  # printed in the unit typed


def test_sizes_are_printed_in_the_unit_typed():
    from dicompress.cli.render import human_size

    assert human_size(9_915_297) == "9.92 MB"
    assert human_size(9_915_297, "MiB") == "9.46 MiB"
    assert human_size(1_900_000, "MB") == "1.90 MB"
    assert human_size(512) == "512 B" and human_size(2_048) == "2.05 kB"
    with pytest.raises(Exception, match="did you mean 25MB"):
        parse_size("25")
    assert parse_size("25MiB") == 25 * 2**20 and parse_size("10MB") == 10**7


_USER_WINDOWS = [("40,-5", None, "< 1 (PS3.3 C.11.2.1.2)"), ("nan,nan", None, "not finite"),
                 ("40,0.5", "linear", "< 1 (PS3.3 C.11.2.1.2)"),
                 ("40,0.5", None, "< 1 (PS3.3 C.11.2.1.2)"), ("bogus", None, "unknown window"),
                 ("file:x", None, "file:N"), ("file:0", None, "file:N"),
                 ("voi-lutx", None, "unknown window")]


@pytest.mark.parametrize("command,window,function,reason", [
    *(("export", *case) for case in _USER_WINDOWS),
    *(("compare", w, None, r) for w, f, r in _USER_WINDOWS if f is None),
])
def test_a_window_the_user_typed_that_cannot_apply_is_a_usage_error(
        command, window, function, reason, tmp_path, capsys):
    """One line and exit 2 before any file is read: not every file failing on it."""
    src = str(find_sample("CT_small.dcm"))
    if command == "export":
        args = ["export", src, "-o", str(tmp_path / "out"), "--format", "png"]
        args += ["--function", function] if function else []
    else:
        args = ["compare", src, "--codecs", "rle"]
    assert main([*args, "--window", window]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and reason in err[0] and repr(window) in err[0], err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("window,sample", [
    ("voi-lut", "vlut_04.dcm"), ("file:1", "MR_small.dcm"), ("file", "MR_small.dcm"),
    (" 40 , 400 ", "CT_small.dcm"), ("4e1,4e2", "CT_small.dcm"), ("brain", "CT_small.dcm"),
    ("40,400", "CT_small.dcm"), ("auto", "CT_small.dcm")])
def test_windows_chosen_per_file_pass_the_command_line_check(window, sample, tmp_path):
    """voi-lut and file[:N] are read from each file: no file is needed to accept them
    (compare refused voi-lut whatever the files held)."""
    src = str(find_sample(sample))
    assert main(["compare", src, "--codecs", "rle", "--window", window]) == 0
    assert main(["export", src, "-o", str(tmp_path / "out"), "--format", "png",
                 "--window", window]) == 0


def test_an_animation_whose_frames_would_not_fit_in_memory_fails_before_rendering(
        tmp_path, monkeypatch):
    """A GIF is encoded from all its frames at once: frames that would hold more than
    GIF_FRAME_BYTES are refused by name before any is rendered (a 60 kB file of 300 flat
    4096 x 4096 frames took 2.5 GB, then died with exit 70), saying how many would fit."""
    from dicompress.export import stills

    folder = tmp_path / "series"
    make_series(folder, 6, 64)  # 6 frames of 64 x 64 grey: 24,576 bytes
    rendered = []
    real = stills._render
    monkeypatch.setattr(stills, "_render", lambda *a: rendered.append(a) or real(*a))
    monkeypatch.setattr(stills, "GIF_FRAME_BYTES", 4 * 64 * 64)
    result = export([folder], tmp_path / "out", ExportOptions(format="gif"))
    assert not result.outputs and not rendered and len(result.failed) == 1
    reason = result.failed[0][1]
    assert "6 frames of 64 x 64" in reason and "4 such frames" in reason and "--every" in reason
    monkeypatch.setattr(stills, "GIF_FRAME_BYTES", 6 * 64 * 64)  # exactly fits
    result = export([folder], tmp_path / "out2", ExportOptions(format="gif"))
    assert len(result.outputs) == 1 and not result.failed and len(rendered) == 6
