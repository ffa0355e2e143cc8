"""`dicompress compare`: metrics against hand-computed values, sizes against what
`transcode` writes, lossless checked, sampling, the CLI's outputs."""

from __future__ import annotations

import csv
import dataclasses
import json
import math
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pydicom
import pytest
from PIL import Image
from pydicom.encaps import generate_frames

from conftest import require_tool
from dicompress.cli import main
from dicompress.codecs import get_codec
from dicompress.compare import Choice, compare, parse_codecs, quality, ssim
from dicompress.compare.metrics import psnr_from_mse
from dicompress.batch.pools import Isolated
from dicompress.compare.measure import measure
from dicompress.compare.selection import load_frames, select_frames, spread
from dicompress.errors import UnsupportedTransferSyntax
from dicompress.pipeline.frames import iter_frames
from dicompress.samples import find_sample
from dicompress.transcode import transcode_file

sys.path.insert(0, str(Path(__file__).parent.parent / "tools"))
from make_series import make_series  # noqa: E402


# -- metrics ----------------------------------------------------------------------------------
def test_error_metrics_on_a_known_array():
    ref = np.zeros((4, 4), np.uint16)
    ref[3, 3] = 1000  # the frame's dynamic range: 1000, the PSNR peak
    dec = ref.copy()
    dec[1, 2] = 10  # one sample off by 10: SSE 100 over 16 samples
    q = quality(ref, dec, bits_stored=12)
    assert q.max_error == 10 and q.samples == 16 and q.squared_error == 100.0
    assert q.mse == 6.25 and q.rmse == 2.5 and q.peak == 1000.0
    # 20 log10(1000) - 10 log10(6.25) = 60 - 7.95880 (not the Bits Stored peak 4095)
    assert q.psnr == pytest.approx(52.04120, abs=1e-4)
    assert psnr_from_mse(q.mse, 1000.0) == pytest.approx(52.04120, abs=1e-4)
    assert q.max_abs_error_modality == 10.0  # no header: the values are their own units
    signed = quality(np.array([[-5, 7]], np.int16), np.array([[-8, 7]], np.int16), 16)
    assert signed.max_error == 3 and signed.squared_error == 9.0
    assert psnr_from_mse(0.0, 12) == math.inf
    assert quality(ref, ref, 12).ssim == 1.0


def test_ssim_of_flat_images_is_the_luminance_term():
    # Two flat images a, b: variances and covariance vanish, so
    # SSIM = (2ab + C1) / (a^2 + b^2 + C1), C1 = (0.01 L)^2; with L = 1000: C1 = 100.
    a, b, L = 100.0, 110.0, 1000.0
    expected = (2 * a * b + 100.0) / (a * a + b * b + 100.0)  # = 22100 / 22200
    assert expected == pytest.approx(0.995495, abs=1e-6)
    for shape in ((6, 6), (32, 40)):  # global (smaller than the window) and windowed
        assert ssim(np.full(shape, a), np.full(shape, b), L) == pytest.approx(expected, abs=1e-9)


def _ssim_brute_force(x: np.ndarray, y: np.ndarray, L: float) -> float:
    """Wang et al.'s definition, window by window (no separable filtering)."""
    t = np.arange(-5, 6)
    g = np.exp(-(t[:, None] ** 2 + t[None, :] ** 2) / (2 * 1.5 ** 2))
    g /= g.sum()
    c1, c2 = (0.01 * L) ** 2, (0.03 * L) ** 2
    values = []
    for i in range(x.shape[0] - 10):
        for j in range(x.shape[1] - 10):
            wx, wy = x[i:i + 11, j:j + 11], y[i:i + 11, j:j + 11]
            mx, my = (g * wx).sum(), (g * wy).sum()
            vx, vy = (g * wx * wx).sum() - mx * mx, (g * wy * wy).sum() - my * my
            cov = (g * wx * wy).sum() - mx * my
            values.append((2 * mx * my + c1) * (2 * cov + c2) / ((mx * mx + my * my + c1) * (vx + vy + c2)))
    return float(np.mean(values))


def test_ssim_matches_the_definition_window_by_window():
    rng = np.random.default_rng(3)
    x = rng.integers(0, 4096, (24, 30)).astype(np.float64)
    y = x + rng.normal(0, 80, x.shape)
    assert ssim(x, y, 4095.0) == pytest.approx(_ssim_brute_force(x, y, 4095.0), abs=1e-10)
    assert 0.0 < ssim(x, y, 4095.0) < 1.0


# -- choices and sampling ---------------------------------------------------------------------
def test_codec_lists_parse_like_the_issue_says():
    labels = [c.label for c in parse_codecs("rle,j2k,htj2k,jpegls,j2k-lossy:10,20,jpegls-near:2,jpeg:85")]
    assert labels == ["rle", "j2k", "htj2k", "jpegls", "j2k-lossy:10", "j2k-lossy:20",
                      "jpegls-near:2", "jpeg:85"]
    chosen = {c.label: c for c in parse_codecs("j2k-lossy:10,20,jpegls-near:2,jpeg:85")}
    assert chosen["j2k-lossy:20"].codec.option("ratio") == 20
    assert chosen["jpegls-near:2"].codec.option("near") == 2
    assert chosen["jpeg:85"].codec.option("quality") == 85
    default = [c.label for c in parse_codecs(None)]
    assert len(default) == 6 + 4 + 4 + 3 + 2 + 2 and "htj2k-lossy:40" in default and "jpeg:75" in default
    assert {"jpegxl:1", "jpegxl:7"} <= set(default)  # issue 19: JPEG XL at two efforts
    assert {"explicit", "rle", "j2k", "htj2k", "htj2k-rpcl", "jpegls"} <= set(default)
    for bad in ("10,rle", "rle,rle", "deflate", "rle:3", "zip"):
        with pytest.raises(UnsupportedTransferSyntax):
            parse_codecs(bad)


def test_spread_is_even_and_keeps_the_ends():
    assert spread(200, 20)[0] == 0 and spread(200, 20)[-1] == 199 and len(spread(200, 20)) == 20
    gaps = np.diff(spread(200, 20))
    assert gaps.min() >= 10 and gaps.max() <= 11
    assert list(spread(5, 20)) == [0, 1, 2, 3, 4] and list(spread(5, None)) == [0, 1, 2, 3, 4]
    assert spread(9, 1) == [4]
    assert len(spread(2**31 - 1, None)) == 2**31 - 1  # a range: nothing listed


# -- measuring --------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def series(tmp_path_factory) -> Path:
    return make_series(tmp_path_factory.mktemp("cmp") / "ct", 8, 128)[0].parent


def _stored_fragment_bytes(path: Path) -> int:
    ds = pydicom.dcmread(path)
    count = int(ds.get("NumberOfFrames", 1) or 1)
    return sum(len(f) for f in generate_frames(ds.PixelData, number_of_frames=count))


def test_sizes_equal_what_transcode_writes(series, tmp_path):
    files = sorted(series.glob("*.dcm"))[:3] + [Path(find_sample("emri_small.dcm"))]
    choices = parse_codecs("rle,j2k,htj2k,jpegls,j2k-lossy:10,htj2k-lossy:8,jpegls-near:2")
    result = compare(files, choices)
    assert result.frames == 3 + 10
    for choice in choices:
        written = 0
        for n, f in enumerate(files):
            out = tmp_path / choice.label.replace(":", "_") / f"{n}.dcm"
            transcode_file(f, out, choice.codec)
            written += _stored_fragment_bytes(out)
        assert result.overall[choice.label].stored_bytes == written, choice.label


def test_lossless_is_checked_and_lossy_is_measured(series):
    result = compare([series], parse_codecs("rle,jpegls,jpegls-near:3,j2k-lossy:20"))
    for label in ("rle", "jpegls"):
        row = result.overall[label]
        assert row.max_error == 0 and math.isinf(row.psnr) and row.ssim == 1.0
        assert not row.lossless_violated and row.worst is None
    near = result.overall["jpegls-near:3"]
    assert 1 <= near.max_error <= 3  # NEAR bounds every sample
    lossy = result.overall["j2k-lossy:20"]
    assert lossy.ratio == pytest.approx(20, rel=0.1) and lossy.max_error > 0
    # the worst slice is the frame with the lowest PSNR, measured again frame by frame
    choice = parse_codecs("j2k-lossy:20")[0]
    again = {}
    with Isolated() as decoder:
        for ref, layout, arr, _ in load_frames(select_frames([series], None, []), [], decoder):
            again[(str(ref.path), ref.index + 1)] = measure(choice, ref, layout, arr).psnr
    worst_key = min(again, key=again.get)
    assert lossy.worst[:2] == worst_key and lossy.worst[3] == pytest.approx(again[worst_key])
    assert lossy.psnr >= lossy.worst[3] and 0 < lossy.ssim_min <= lossy.ssim < 1
    assert result.series and result.per_series[("rle", result.series[0])].frames == 8


def test_a_lossless_codec_that_changes_values_is_caught(series):
    rle = get_codec("rle")

    class Broken(type(rle)):
        def decode_frame(self, data, layout):
            arr = super().decode_frame(data, layout).copy()
            arr.flat[5] ^= 1
            return arr

    broken = Broken(**{f.name: getattr(rle, f.name) for f in dataclasses.fields(rle)})
    result = compare([series], [Choice("rle", broken)])
    assert [r.choice for r in result.violations] == ["rle"]
    assert result.overall["rle"].max_error == 1


def test_sampling_per_series(series, tmp_path):
    other = make_series(tmp_path / "mr", 6, 64, seed=5)[0].parent  # a second series
    result = compare([series, other], parse_codecs("rle"), sample=3)
    assert result.frames == 6 and len(result.series) == 2
    slices = sorted(r.frames for r in result.per_series.values())
    assert slices == [3, 3]


# -- the command ------------------------------------------------------------------------------
def test_cli_table_json_csv(series, tmp_path, capsys):
    js, cs = tmp_path / "c.json", tmp_path / "c.csv"
    code = main(["compare", str(series), "--codecs", "rle,htj2k,jpeg:90,j2k-lossy:10",
                 "--sample", "4", "--json", str(js), "--csv", str(cs)])
    assert code == 0
    out = capsys.readouterr().out
    assert "htj2k" in out and "n/a: JPEG codes unsigned samples only" in out
    data = json.loads(js.read_text())
    assert data["frames"] == 4 and [c["codec"] for c in data["codecs"]] == [
        "rle", "htj2k", "jpeg:90", "j2k-lossy:10"]
    by = {c["codec"]: c for c in data["codecs"]}
    assert by["rle"]["max_error"] == 0 and by["rle"]["psnr_db"] is None  # infinite
    assert by["jpeg:90"]["frames"] == 0 and by["jpeg:90"]["not_applicable"]
    assert by["j2k-lossy:10"]["bytes"] * 9 < by["j2k-lossy:10"]["raw_bytes"] * 1.1
    rows = list(csv.DictReader(cs.open()))
    assert len(rows) == 4 * 2 and {r["scope"] for r in rows} == {"all", data["series"][0]}
    assert main(["compare", str(series), "--codecs", "rle,10"]) == 2


# -- plan -------------------------------------------------------------------------------------
from dicompress.batch.runner import BatchOptions, BatchRun  # noqa: E402
from dicompress.batch.sources import iter_sources  # noqa: E402
from dicompress.compare.plan import (  # noqa: E402
    LINK_EFFICIENCY, PlanError, parse_duration, parse_rate, plan, totals)


def test_rates_and_durations():
    assert parse_rate("2Mbit") == 2e6 and parse_rate("10 Mbps") == 1e7
    assert parse_rate("512kbit") == 512e3 and parse_rate("1.5MB/s") == 12e6
    assert parse_duration("5min") == 300 and parse_duration("1h30m") == 5400
    assert parse_duration("90s") == 90 and parse_duration("300") == 300
    for bad_rate in ("fast", "2 parsecs", ""):
        with pytest.raises(PlanError):
            parse_rate(bad_rate)
    for bad_duration in ("soon", "5 fortnights", "0s"):
        with pytest.raises(PlanError):
            parse_duration(bad_duration)


@pytest.fixture(scope="module")
def big_series(tmp_path_factory) -> Path:
    return make_series(tmp_path_factory.mktemp("plan") / "ct", 12, 256, seed=7)[0].parent


def _written(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*.dcm"))


def test_plan_for_a_budget_predicts_the_real_size(big_series, tmp_path):
    found = totals([big_series])
    assert found.files == 12 and found.pixel_bytes == 12 * 256 * 256 * 2
    budget = found.header_bytes + found.pixel_bytes // 7  # beyond every lossless codec here
    result = plan([big_series], budget, sample=4)
    choice = result.choice
    assert choice is not None and not choice.lossless
    assert choice.label.split(":")[0] in ("j2k-lossy", "htj2k-lossy", "jpegls-near")
    # run exactly what the plan says, and weigh the result
    codec = parse_codecs(choice.label)[0].codec
    out = tmp_path / "out"
    summary = BatchRun(iter_sources([big_series]),
                       BatchOptions(target=codec, output=out, jobs=1)).run()
    assert summary.counts == {"ok": 12}
    real = _written(out)
    assert abs(real - choice.predicted_bytes) <= 0.10 * real
    assert real <= budget * 1.02
    # every better-quality option that fits is not better than the choice
    for o in result.options:
        if o.fits and not o.lossless:
            assert o.psnr_worst <= choice.psnr_worst


def test_plan_prefers_lossless_when_it_fits(big_series):
    result = plan([big_series], 10**9, sample=3)
    assert result.choice.lossless
    lossless = [o for o in result.options if o.lossless and not o.reason]
    assert result.choice.predicted_bytes == min(o.predicted_bytes for o in lossless)
    assert all(o.fits for o in lossless)


def test_plan_cli_link_and_nothing_fits(big_series, tmp_path, capsys):
    js = tmp_path / "plan.json"
    assert main(["plan", str(big_series), "--link", "2Mbit", "--deadline", "5min",
                 "--sample", "3", "--json", str(js)]) == 0
    out = capsys.readouterr().out
    data = json.loads(js.read_text())
    assert data["capacity_bytes"] == int(2e6 * 300 * LINK_EFFICIENCY / 8)
    assert data["choice"]["lossless"] and "Run:    dicompress transcode" in out
    # a floor no lossy choice reaches and a budget no lossless choice fits
    assert main(["plan", str(big_series), "--budget", "100kB", "--min-psnr", "150",
                 "--sample", "2"]) == 1
    assert "Nothing fits" in capsys.readouterr().out
    assert main(["plan", str(big_series), "--link", "2Mbit"]) == 2
    assert main(["plan", str(big_series), "--link", "2Mbit", "--deadline", "soon"]) == 2


# -- the HTML report in a real browser --------------------------------------------------------
def _chromium(*args: str) -> subprocess.CompletedProcess:
    exe = require_tool("chromium")
    return subprocess.run([exe, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                           "--enable-logging=stderr", "--v=0", *args],
                          capture_output=True, text=True, timeout=120)


def test_html_report_opens_in_chromium_with_its_plots(series, tmp_path):
    report = tmp_path / "report.html"
    codecs = "rle,htj2k,j2k-lossy:10,40,jpegls-near:3"
    assert main(["compare", str(series), "--codecs", codecs, "--sample", "3",
                 "--html", str(report)]) == 0
    url = report.as_uri()
    dom = _chromium("--dump-dom", url)
    assert dom.returncode == 0, dom.stderr[-2000:]
    body = re.search(r"<body([^>]*)>", dom.stdout).group(1)
    counts = dict(re.findall(r'data-(\w+)="(\d+)"', body))
    # two plots: size-PSNR has the 3 lossy choices, size-speed all 5
    assert counts == {"plots": "2", "points": str(3 + 5), "images": str(3 * 3)}
    labels = dict(re.findall(r'data-(label-overlaps|labels-outside)="(\d+)"', body))
    assert labels == {"label-overlaps": "0", "labels-outside": "0"}  # as Chromium drew them
    assert "Uncaught" not in dom.stderr and "CONSOLE" not in dom.stderr
    shot = tmp_path / "shot.png"
    snap = _chromium("--window-size=1200,1400", f"--screenshot={shot}", url)
    assert snap.returncode == 0 and shot.is_file(), snap.stderr[-2000:]
    pixels = np.asarray(Image.open(shot).convert("RGB")).astype(int)
    assert pixels.std() > 20  # not a blank page
    # the plots' points are there: J2K blue (#1f77b4) and HTJ2K green (#2ca02c) pixels
    for colour in ((0x1F, 0x77, 0xB4), (0x2C, 0xA0, 0x2C)):
        assert (np.abs(pixels - colour).sum(axis=2) < 30).sum() > 20, colour


def test_plot_labels_do_not_overlap_as_chromium_draws_them(tmp_path):
    """A crowded plot (twelve choices within a few pixels, as J2K, HTJ2K and JPEG-LS at
    nearby ratios fall): Chromium's own boxes of the drawn labels meet no other label and
    no point, and stay inside the plot. Beside their points, the labels would overlap."""
    from dicompress.compare.html import _COUNT_SCRIPT, _label_box, _overlaps, scatter

    points = [(4.0 + 0.01 * k, 60.0 + 0.05 * (k % 4), label) for k, label in enumerate(
        ["j2k-lossy:5", "j2k-lossy:10", "j2k-lossy:20", "j2k-lossy:40", "htj2k-lossy:5",
         "htj2k-lossy:10", "htj2k-lossy:20", "htj2k-lossy:40", "jpegls-near:1",
         "jpegls-near:2", "jpegls-near:4", "jpeg:90"])]
    points.append((9.0, 40.0, "explicit"))
    page = tmp_path / "plot.html"
    page.write_text("<!DOCTYPE html><html><head><meta charset='utf-8'></head><body>"
                    + scatter(points, "size (MB)", "PSNR (dB)") + _COUNT_SCRIPT
                    + "</body></html>", encoding="utf-8")
    dom = _chromium("--dump-dom", page.as_uri())
    assert dom.returncode == 0, dom.stderr[-2000:]
    body = re.search(r"<body([^>]*)>", dom.stdout).group(1)
    labels = dict(re.findall(r'data-(label-overlaps|labels-outside|points)="(\d+)"', body))
    assert labels == {"points": "13", "label-overlaps": "0", "labels-outside": "0"}
    # the test can fail: every label beside its point (x + 7, y - 6) would overlap
    naive = [_label_box(float(x) + 7, float(y) - 6, label) for x, y, label in
             re.findall(r'<circle class="point" cx="([\d.]+)" cy="([\d.]+)".*?<title>([^<]+)',
                        dom.stdout)]
    assert sum(_overlaps(a, b) for i, a in enumerate(naive) for b in naive[i + 1:]) > 10


def test_plan_lossless_only(big_series, capsys):
    result = plan([big_series], 10**9, lossless_only=True, sample=2)
    assert result.choice.lossless and all(o.lossless for o in result.options)
    assert main(["plan", str(big_series), "--budget", "100kB", "--lossless-only",
                 "--sample", "2"]) == 1
    out = capsys.readouterr().out
    assert "Nothing fits" in out and "lossy" not in out.split("Nothing fits")[0]


# -- from the review of compare and plan ------------------------------------------------------
def test_rate_units_tell_bits_from_bytes():
    assert parse_rate("10Mb/s") == 10e6 and parse_rate("10 Mbit/s") == 10e6
    assert parse_rate("1.5MBps") == 12e6 and parse_rate("1.5MB/s") == 12e6
    assert parse_rate("1 Gbit/s") == 1e9 and parse_rate("64kbps") == 64e3
    with pytest.raises(PlanError):
        parse_rate("10 furlongs")
    with pytest.raises(PlanError):
        parse_duration("1h30")  # 30 what?
    with pytest.raises(PlanError):
        parse_duration("1" * 40 + "!")  # refused at once (no catastrophic backtracking)


def test_codec_values_are_checked():
    for bad in ("jpeg:", "jpeg:abc", "jpegls-near:2.5", "jpegls-near:2,2.0"):
        with pytest.raises(UnsupportedTransferSyntax):
            parse_codecs(bad)
    assert [c.label for c in parse_codecs("jpeg : 90, j2k-lossy:7.5")] == ["jpeg:90", "j2k-lossy:7.5"]


def test_ssim_and_display_error_are_taken_at_the_window():
    from pydicom.dataset import Dataset

    from dicompress.pipeline.encode import FrameView

    ref = np.arange(2000, 2100, dtype=np.uint16).reshape(10, 10)
    dec = ref.copy()
    dec[3, 3] += 7
    header = Dataset()
    header.PhotometricInterpretation, header.BitsStored, header.PixelRepresentation = \
        "MONOCHROME2", 12, 0
    header.RescaleSlope, header.RescaleIntercept = 2, -1024
    header.WindowCenter, header.WindowWidth = 3126, 200  # stored 2050 +- 50
    q = quality(ref, dec, 12, FrameView(header))
    # PS3.3 C.11.2.1.2 LINEAR: one modality unit is 1 / (W - 1) of the output range
    assert q.max_abs_error_modality == 14.0
    assert q.max_display_error == pytest.approx(14 * 255 / 199, abs=0.01)
    assert q.window == "C3126/W200"

    def levels(a):  # the window by hand, on modality values
        x = a.astype(np.float64) * 2 - 1024
        return np.clip((x - 3125.5) / 199 + 0.5, 0, 1) * 255

    assert q.ssim == pytest.approx(ssim(levels(ref), levels(dec), 255.0), abs=1e-3)


def test_odd_files_do_not_stop_a_comparison():
    files = [find_sample("SC_rgb_rle_2frame.dcm"), find_sample("CT_small.dcm")]
    result = compare(files, parse_codecs("rle,jpeg:90,j2k-lossy:10"))
    assert result.frames == 3 and result.overall["rle"].frames == 3
    jpeg = result.overall["jpeg:90"]
    assert jpeg.not_applicable  # signed CT (and whatever the RGB frame gave) is said why


def test_plan_only_offers_choices_every_file_can_take(tmp_path):
    folder = tmp_path / "mixed"
    folder.mkdir()
    for name in ("CT_small.dcm", "OBXXXX1A.dcm"):  # signed CT and an 8-bit palette image
        (folder / name).write_bytes(Path(find_sample(name)).read_bytes())
    result = plan([folder], 40_000, min_psnr=30, sample=2)
    for o in result.options:
        if o.label.split(":")[0] in ("j2k-lossy", "htj2k-lossy", "jpegls-near", "jpeg"):
            assert not o.fits and o.reason  # palette indices cannot be coded lossy
    big = plan([folder], 10**8, sample=2)
    codec = parse_codecs(big.choice.label)[0].codec
    summary = BatchRun(iter_sources([folder]),
                       BatchOptions(target=codec, output=tmp_path / "o", jobs=1)).run()
    assert summary.counts == {"ok": 2}


# -- budgets as sent, sizes in the user's units -----------------------------------------------
def test_plan_budget_counts_the_files_as_sent_and_says_so_honestly(big_series, tmp_path, capsys):
    from dicompress.export.budget import sent_total

    js = tmp_path / "plan.json"
    found = totals([big_series])
    budget = 2 * found.stored_bytes  # lossless fits as files; as sent it is tighter
    assert main(["plan", str(big_series), "--budget", f"{budget / 1e6:.3f}MB", "--sample", "2",
                 "--json", str(js)]) == 0
    out = capsys.readouterr().out
    data = json.loads(js.read_text())
    assert data["counted"] == "sent"
    choice = data["choice"]
    assert choice["predicted_sent_bytes"] == sent_total(choice["predicted_bytes"], found.files)
    assert choice["predicted_sent_bytes"] <= data["capacity_bytes"]
    share = choice["predicted_sent_bytes"] / data["capacity_bytes"]
    assert f"{share:.0%} of {budget / 1e6:.3f}MB" in out  # the share of what was typed
    assert "MiB" not in out and " KB" not in out  # decimal units, as typed
    assert main(["plan", str(big_series), "--budget", f"{budget / 1e6:.3f}MB", "--raw-size",
                 "--sample", "2", "--json", str(js)]) == 0
    assert json.loads(js.read_text())["counted"] == "raw"


def test_plan_lists_no_lossy_option_that_is_not_smaller_than_lossless(big_series):
    result = plan([big_series], 10**9, sample=2)
    smallest = min(o.predicted_bytes for o in result.options if o.lossless and not o.reason)
    lossy = [o for o in result.options if not o.lossless and not o.reason]
    assert lossy and all(o.predicted_bytes < smallest for o in lossy)


def test_a_budget_without_a_unit_suggests_megabytes(big_series, capsys):
    assert main(["plan", str(big_series), "--budget", "25"]) == 2
    assert "did you mean 25MB?" in capsys.readouterr().err


# -- frames transformed as they are encoded (jpegxl-jpeg from JPEG baseline, issue 19) --------
#: pydicom's JPEG baseline samples whose photometric interpretation PS3.5 Table 8.2.15-1
#: lets JPEG XL JPEG Recompression carry (YBR_FULL_422 and RGB).
JPEG_BASELINE = ("SC_rgb_dcmtk_+eb+cy+np.dcm", "examples_ybr_color.dcm",
                 "SC_jpeg_no_color_transform.dcm")


@pytest.fixture(scope="module")
def jpeg_folder(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("jpeg")
    for name in JPEG_BASELINE:
        (folder / name).write_bytes(Path(find_sample(name)).read_bytes())
    return folder


def test_jpegxl_jpeg_is_offered_on_jpeg_baseline_and_measured_on_the_stored_frames(
        jpeg_folder, series, tmp_path):
    result = compare([jpeg_folder], parse_codecs("rle,jpegls"), offer_transforms=True)
    row = result.overall["jpegxl-jpeg"]
    assert row.frames == result.frames == 32 and not row.not_applicable  # 1 + 30 + 1
    # no error added to the source's decoded pixels (pydicom decoded them; the output's
    # JPEG, rebuilt by libjxl, is decoded by libjpeg-turbo)
    assert row.max_error == 0 and not row.lossless_violated and math.isinf(row.psnr)
    # its size is what transcode writes, and smaller than the JPEG fragments themselves
    written = stored = 0
    for name in JPEG_BASELINE:
        out = tmp_path / name
        transcode_file(jpeg_folder / name, out, get_codec("jpegxl-jpeg"))
        written += sum(len(f) + (len(f) & 1) for f in _fragments(out))
        stored += sum(len(f) for f in _fragments(jpeg_folder / name))
    assert row.stored_bytes == written < stored
    assert row.ratio == pytest.approx(row.raw_bytes / written)
    assert row.ratio > result.overall["jpegls"].ratio  # re-encoding the pixels costs more
    # where the sources are not JPEG baseline it is not offered; named, it says why not
    ct = compare([series], parse_codecs("rle"), sample=1, offer_transforms=True)
    assert list(ct.overall) == ["rle"]
    named = compare([series], parse_codecs("rle,jpegxl-jpeg"), sample=1).overall["jpegxl-jpeg"]
    assert named.frames == 0 and "8-bit JPEG baseline" in named.not_applicable


def _fragments(path: Path) -> list[bytes]:
    ds = pydicom.dcmread(path)
    return list(generate_frames(ds.PixelData, number_of_frames=int(ds.get("NumberOfFrames", 1))))


def test_a_transform_that_changes_the_pixels_is_caught(jpeg_folder):
    codec = get_codec("jpegxl-jpeg")

    class Shifted(type(codec)):
        def decode_frame(self, data, layout):
            arr = super().decode_frame(data, layout).copy()
            arr.flat[5] ^= 1
            return arr

    broken = Shifted(**{f.name: getattr(codec, f.name) for f in dataclasses.fields(codec)})
    row = compare([jpeg_folder], [Choice("jpegxl-jpeg", broken)]).overall["jpegxl-jpeg"]
    assert row.frames == 32 and row.max_error == 1 and row.lossless_violated


def test_plan_chooses_jpegxl_jpeg_for_jpeg_baseline_and_its_prediction_holds(jpeg_folder, tmp_path):
    result = plan([jpeg_folder], 10**9, lossless_only=True, sample=None)  # every frame
    assert result.choice.label == "jpegxl-jpeg" and result.choice.lossless
    assert result.choice.command[3:] == ["--to", "jpegxl-jpeg", "-o", "OUTDIR"]
    others = [o for o in result.options if o.lossless and not o.reason and o is not result.choice]
    assert others and all(o.predicted_bytes > result.choice.predicted_bytes for o in others)
    summary = BatchRun(iter_sources([jpeg_folder]),
                       BatchOptions(target=get_codec("jpegxl-jpeg"), output=tmp_path / "o",
                                    jobs=1)).run()
    assert summary.counts == {"ok": 3}
    real = _written(tmp_path / "o")
    assert abs(real - result.choice.predicted_bytes) <= 0.01 * real  # item headers, BOT


# -- plan --lossless-only chooses per series (issue 19) -------------------------------------
def _write_series(folder: Path, frames: list[np.ndarray], bits: int, modality: str,
                  number: int) -> None:
    """Single-frame unsigned MONOCHROME2 files of one series (a test input)."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    folder.mkdir(parents=True)
    sop_class = {"CT": "1.2.840.10008.5.1.4.1.1.2", "MR": "1.2.840.10008.5.1.4.1.1.4"}[modality]
    series, study = generate_uid(), generate_uid()
    for k, arr in enumerate(frames):
        ds = Dataset()
        ds.file_meta = FileMetaDataset()
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.SOPClassUID, ds.SOPInstanceUID = sop_class, generate_uid()
        ds.file_meta.MediaStorageSOPClassUID = sop_class
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.StudyInstanceUID, ds.SeriesInstanceUID = study, series
        ds.Modality, ds.SeriesNumber, ds.InstanceNumber = modality, number, k + 1
        ds.ImagePositionPatient, ds.ImageOrientationPatient = [0, 0, float(k)], [1, 0, 0, 0, 1, 0]
        ds.Rows, ds.Columns = arr.shape
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, bits, bits - 1, 0
        ds.PixelData = arr.astype("<u2").tobytes()
        ds.save_as(folder / f"{modality}{k:02d}.dcm", enforce_file_format=True)


@pytest.fixture(scope="module")
def two_series(tmp_path_factory) -> Path:
    """A CT series of real (unsigned) CT slices, where JPEG XL codes smallest, and a
    smooth 12-bit MR-like series, where JPEG 2000's wavelets do."""
    folder = tmp_path_factory.mktemp("two")
    ct = next(iter_frames(find_sample("eCT_Supplemental.dcm"))[1])[128:384, 128:384]
    _write_series(folder / "ct", [np.roll(ct, k, axis=1) for k in range(3)], 16, "CT", 1)
    y, x = np.mgrid[0:256, 0:256]
    _write_series(folder / "mr", [(2000 + 800 * np.sin(x / (23.0 + k)) * np.cos(y / 31.0)).round()
                                  for k in range(3)], 12, "MR", 2)
    return folder


def test_plan_lossless_only_chooses_per_series_and_says_so(two_series, tmp_path, capsys):
    result = plan([two_series], 10**9, lossless_only=True, sample=None)
    chosen = {c.series.split("_")[0]: c for c in result.per_series}
    assert sorted(chosen) == ["CT", "MR"]
    assert chosen["CT"].option.label.startswith("jpegxl") and chosen["MR"].option.label == "j2k"
    # each series' choice is the smallest lossless option measured on that series alone
    labels = [o.label for o in result.options if o.lossless and o.label != "per series"]
    for modality, folder in (("CT", two_series / "ct"), ("MR", two_series / "mr")):
        alone = compare([folder], parse_codecs(",".join(labels)))
        coded = [r for r in alone.overall.values() if r.frames == 3 and not r.not_applicable]
        assert min(coded, key=lambda r: r.stored_bytes).choice == chosen[modality].option.label
    # the plan is their sum, smaller than any one codec for both
    assert result.choice.label == "per series" and result.choice.per_series == result.per_series
    assert result.choice.predicted_bytes == sum(c.option.predicted_bytes for c in result.per_series)
    singles = [o for o in result.options if o.lossless and not o.reason and not o.per_series]
    assert singles and all(o.predicted_bytes > result.choice.predicted_bytes for o in singles)
    # run exactly the commands it prints, and weigh what they write
    assert main(["plan", str(two_series), "--budget", "1GB", "--raw-size", "--lossless-only",
                 "--sample", "3"]) == 0
    out = capsys.readouterr().out
    runs = [line.split("Run:", 1)[1].split() for line in out.splitlines() if line.startswith("Run:")]
    assert len(runs) == 2 and "The smallest lossless option of each series:" in out
    assert re.search(r"CT_1\S*: jpegxl:\d, 3 files", out) and re.search(r"MR_2\S*: j2k, 3 files", out)
    for run in runs:
        assert run[:2] == ["dicompress", "transcode"]
        assert main([a.replace("OUTDIR", str(tmp_path / "out")) for a in run[1:]]) == 0
    real = _written(tmp_path / "out")
    assert abs(real - result.choice.predicted_bytes) <= 0.01 * real


# -- progress -----------------------------------------------------------------------------------
def _stage_lines(stderr: str, command: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith(f"{command}: ")]


def test_compare_progress_is_a_line_per_stage_when_piped(series):
    proc = subprocess.run([sys.executable, "-m", "dicompress", "compare", str(series),
                           "--codecs", "rle,j2k-lossy:10", "--sample", "4"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    stages = _stage_lines(proc.stderr, "compare")
    assert stages[0] == "compare: reading headers"
    assert re.fullmatch(r"compare: reading headers: [0-9.]+ s", stages[1])
    assert stages[2] == "compare: measuring (8 to do)"  # 4 frames x 2 choices
    assert re.fullmatch(r"compare: measuring: 8 done, [0-9.]+ s", stages[3])
    assert len(stages) == 4 and stages == proc.stderr.splitlines()  # nothing per frame


def test_plan_progress_is_a_line_per_stage_when_piped(big_series):
    proc = subprocess.run([sys.executable, "-m", "dicompress", "plan", str(big_series),
                           "--budget", "100MB", "--sample", "2", "--lossless-only"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    stages = _stage_lines(proc.stderr, "plan")
    assert [s.split(":")[1].split(" (")[0].strip() for s in stages[::2]] == [
        "counting files", "reading headers", "measuring"]
    assert re.fullmatch(r"plan: measuring: [0-9]+ done, [0-9.]+ s", stages[-1])
    assert stages == proc.stderr.splitlines()


def test_compare_progress_bar_on_a_terminal(series):
    """On a terminal, a bar per stage (rich); the measuring bar counts frames x choices
    to the end."""
    import io

    from dicompress.cli.progress import StageReporter

    stream, seen = io.StringIO(), []
    with StageReporter("compare", stream=stream, live=True) as reporter:
        def tell(stage, done, total):
            seen.append((stage, done, total))
            reporter.update(stage, done, total)

        compare([series], parse_codecs("rle,htj2k"), sample=3, progress=tell)
        task = reporter.progress.tasks[-1]
        assert (task.description, task.completed, task.total) == ("measuring", 6, 6)
    assert seen[0] == ("reading headers", 0, None) and seen[-1] == ("measuring", 6, 6)


def test_plan_names_damaged_files_even_when_no_image_is_left(tmp_path, capsys):
    """Every file damaged: plan said only "no images found"; each is named, exit 1. And
    files no option can code say why, not "Nothing fits ... Closest: ."."""
    folder = tmp_path / "damaged"
    folder.mkdir()
    data = find_sample("MR_small_RLE.dcm").read_bytes()
    (folder / "cut.dcm").write_bytes(data[:-200])  # its sequence delimiter gone
    report = tmp_path / "plan.json"
    assert main(["plan", str(folder), "--budget", "1MB", "--json", str(report)]) == 1
    err = capsys.readouterr().err
    assert "FAILED" in err and "cut.dcm" in err and "no images found" in err
    [failed] = json.loads(report.read_text())["failed"]
    assert failed["path"].endswith("cut.dcm") and "cannot be read" in failed["reason"]

    ds = pydicom.dcmread(find_sample("CT_small.dcm"))
    item = pydicom.Dataset()
    item.LUTDescriptor = [2, 0, 16, 4]  # three values (PS3.3 C.11.1.1)
    item.add_new(0x00283006, "US", [0, 1])  # LUT Data
    ds.ModalityLUTSequence = [item]
    path = tmp_path / "lut.dcm"
    ds.save_as(path)
    assert main(["plan", str(path), "--budget", "1MB"]) == 1
    out = capsys.readouterr().out
    last = out.strip().splitlines()[-1]
    assert last.startswith("No option can code these files: ")
    assert "LUT Descriptor must have 3 values" in last
    assert "Closest: ." not in out
