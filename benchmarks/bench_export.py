"""Export, whole commands: a 200-slice 512 x 512 16-bit CT series (tools/make_series.py)
to PNG, JPEG and TIFF, 8-bit at the file's window.

Side by side in one run (group export-FORMAT):
- ``dicompress export --jobs 2`` (and ``--jobs 1``);
- pydicom + Pillow in a 2-process pool (``benchmarks/export_peer.py``: read, modality
  LUT, VOI LUT, ``Image.save`` at Pillow's defaults), the ten-line script a user writes.
Each row is one whole command (interpreter start included). extra_info holds the total
bytes written, to check the issue-18 target: >= 2x the peer's speed at <= 5 % larger
output.

Before the whole-command rows, dicompress' own modules are compiled to bytecode, as pip
does when it installs a wheel (the peer's libraries were compiled when they were
installed; with PYTHONDONTWRITEBYTECODE set, an editable install would otherwise compile
its modules at every start).

Group png-encoders: the PNG encoders export could use, on the same 200 slices windowed
to 8 bits (encoding only): Pillow at its default level and with optimize=True,
imagecodecs' libpng and spng at their defaults, and dicompress' own ("Up" filter,
libdeflate at writers.PNG_LEVEL); group png-levels: ours at levels 1 and 6. Group jpeg-encoders: Pillow and libjpeg-turbo
(imagecodecs) at quality 90, with and without optimised Huffman tables. Group
tiff-levels: dicompress' TIFF (Predictor 2) at libdeflate levels 1 and 6, and Pillow's
Adobe Deflate TIFF. extra_info["bytes"] is their total output.
"""

from __future__ import annotations

import compileall
import io
import shutil
import subprocess
import sys
from pathlib import Path

import imagecodecs
import numpy as np
import pydicom
import pytest
from PIL import Image

from conftest import QUICK
import dicompress
from dicompress import voi
from dicompress.export import writers
from dicompress.export.writers import encode_jpeg, encode_png, encode_tiff

sys.path.insert(0, str(Path(__file__).parent.parent / "tools"))
from make_series import make_series  # noqa: E402

FILES, SIZE = (6, 64) if QUICK else (200, 512)
HERE = Path(__file__).parent
PEER = HERE / "export_peer.py"
SUFFIX = {"png": ".png", "jpeg": ".jpg", "tiff": ".tif"}


@pytest.fixture(scope="module")
def series(tmp_path_factory) -> Path:
    # as installed from a wheel: our modules compiled once, not at every start
    compileall.compile_dir(Path(dicompress.__file__).parent, quiet=1)
    return make_series(tmp_path_factory.mktemp("export") / "in", FILES, SIZE)[0].parent


def _timed(benchmark, out: Path, command: list[str], suffix: str) -> None:
    def setup():
        shutil.rmtree(out, ignore_errors=True)
        out.mkdir(parents=True)

    def run():
        proc = subprocess.run(command, capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr[-2000:]

    benchmark.pedantic(run, setup=setup, rounds=1, iterations=1)
    written = list(out.rglob(f"*{suffix}"))
    assert len(written) == FILES, f"{len(written)} of {FILES} files written"
    benchmark.extra_info["files"] = FILES
    benchmark.extra_info["bytes"] = sum(p.stat().st_size for p in written)


@pytest.mark.parametrize("fmt", ["png", "jpeg", "tiff"])
@pytest.mark.parametrize("jobs", [2, 1])
def bench_dicompress_export(benchmark, series, tmp_path, fmt, jobs):
    benchmark.group = f"export-{fmt}"
    out = tmp_path / "out"
    _timed(benchmark, out, [sys.executable, "-m", "dicompress", "export", str(series),
                            "--format", fmt, "-o", str(out), "--jobs", str(jobs)], SUFFIX[fmt])


@pytest.mark.parametrize("fmt", ["png", "jpeg", "tiff"])
def bench_pydicom_pillow_pool(benchmark, series, tmp_path, fmt):
    benchmark.group = f"export-{fmt}"
    out = tmp_path / "out"
    _timed(benchmark, out, [sys.executable, str(PEER), fmt, str(series), str(out), "2"],
           SUFFIX[fmt])


@pytest.fixture(scope="module")
def windowed(series) -> list[np.ndarray]:
    """The slices at their file's window, 8-bit (what export encodes)."""
    out = []
    for path in sorted(series.glob("*.dcm")):
        ds = pydicom.dcmread(path)
        out.append(voi.render(ds))
    return out


def _pillow(arr: np.ndarray, **kwargs) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG", **kwargs)
    return buf.getvalue()


ENCODERS = {
    "pillow-default": _pillow,
    "pillow-optimize": lambda arr: _pillow(arr, optimize=True),
    "imagecodecs-libpng": lambda arr: bytes(imagecodecs.png_encode(arr)),
    "imagecodecs-spng": lambda arr: bytes(imagecodecs.spng_encode(arr)),
    "dicompress-up-libdeflate": encode_png,
}


@pytest.mark.parametrize("encoder", list(ENCODERS))
def bench_png_encoder(benchmark, windowed, encoder):
    benchmark.group = "png-encoders"
    encode = ENCODERS[encoder]
    sizes = benchmark.pedantic(lambda: [len(encode(arr)) for arr in windowed],
                               rounds=1 if QUICK else 3, iterations=1)
    benchmark.extra_info["bytes"] = sum(sizes)
    # every encoder's output decodes to the same pixels (Pillow reads them all)
    first = np.asarray(Image.open(io.BytesIO(encode(windowed[0]))))
    np.testing.assert_array_equal(first, windowed[0])


def _pillow_save(arr: np.ndarray, **kwargs) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, **kwargs)
    return buf.getvalue()


def _at(level: int, name: str, encode_still):
    """`encode_still` with writers.`name` (a libdeflate level) set to `level`."""
    def encode(arr: np.ndarray) -> bytes:
        saved = getattr(writers, name)
        setattr(writers, name, level)
        try:
            return encode_still(arr)
        finally:
            setattr(writers, name, saved)
    return encode


STILL_ENCODERS = {
    "jpeg-encoders": {
        "pillow-q90": lambda arr: _pillow_save(arr, format="JPEG", quality=90),
        "pillow-q90-optimize": lambda arr: _pillow_save(arr, format="JPEG", quality=90,
                                                        optimize=True),
        "libjpeg-turbo-q90-optimize": lambda arr: bytes(imagecodecs.jpeg8_encode(
            arr, level=90, optimize=True)),
        "dicompress-libjpeg-turbo-q90": encode_jpeg,
    },
    "tiff-levels": {
        "pillow-adobe-deflate": lambda arr: _pillow_save(arr, format="TIFF",
                                                         compression="tiff_adobe_deflate"),
        "dicompress-predictor-level6": _at(6, "TIFF_LEVEL", encode_tiff),
        "dicompress-predictor-level1": _at(1, "TIFF_LEVEL", encode_tiff),
    },
    "png-levels": {
        "dicompress-up-level6": _at(6, "PNG_LEVEL", encode_png),
        "dicompress-up-level1": _at(1, "PNG_LEVEL", encode_png),
    },
}


@pytest.mark.parametrize(("group", "encoder"), [(g, e) for g, encoders in STILL_ENCODERS.items()
                                                for e in encoders])
def bench_still_encoder(benchmark, windowed, group, encoder):
    benchmark.group = group
    encode = STILL_ENCODERS[group][encoder]
    sizes = benchmark.pedantic(lambda: [len(encode(arr)) for arr in windowed],
                               rounds=1 if QUICK else 3, iterations=1)
    benchmark.extra_info["bytes"] = sum(sizes)
