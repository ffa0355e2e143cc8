"""Series throughput: a 200-slice 512 x 512 16-bit CT series (tools/make_series.py),
file in, file out, for each target, dicompress beside pydicom with its encoder plugins.

dicompress runs the whole `transcode` path (batch runner, a worker process per
core: read, encode, write, read back, journal) with and without verification; pydicom runs
``ds.compress`` + ``save_as`` in a pool of as many processes (benchmarks/pydicom_pool.py),
so that both use every core. Rows in BENCHMARKS.md ("Series").
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

from conftest import QUICK
from dicompress.batch import iter_sources
from dicompress.batch.runner import BatchOptions, BatchRun

sys.path.insert(0, str(Path(__file__).parent.parent / "tools"))
from make_series import make_series  # noqa: E402

import pydicom_pool  # noqa: E402  (benchmarks/, beside this file)

SLICES, SIZE = (4, 64) if QUICK else (200, 512)
# One round by default (a full run takes minutes); DICOMPRESS_BENCH_ROUNDS=3 for the table.
ROUNDS = 1 if QUICK else int(os.environ.get("DICOMPRESS_BENCH_ROUNDS", "1"))


@pytest.fixture(scope="module")
def series(tmp_path_factory) -> Path:
    return make_series(tmp_path_factory.mktemp("series") / "in", SLICES, SIZE)[0].parent


def _fresh(tmp_path: Path) -> Path:
    out = tmp_path / "out"
    shutil.rmtree(out, ignore_errors=True)
    return out


def _dicompress(series: Path, out: Path, target: str, verify: bool) -> None:
    """The batch runner as `dicompress transcode` drives it: one worker process per core,
    each file's frame coded in its worker, journal kept."""
    options = BatchOptions(target=target, output=out, verify=verify,
                           journal=out.parent / f"journal-{out.name}.sqlite")
    options.journal.unlink(missing_ok=True)
    summary = BatchRun(iter_sources([series]), options).run()
    assert summary.counts == {"ok": SLICES}, summary.failures


def _pydicom(series: Path, out: Path, syntax: str, plugin: str) -> None:
    """pydicom with `plugin` in a pool of one process per core, as dicompress has."""
    out.mkdir(parents=True, exist_ok=True)
    pydicom_pool.run(plugin, syntax, series, out, os.cpu_count() or 1)


def _run(benchmark, fn, *args):
    benchmark.extra_info["megabytes"] = SLICES * SIZE * SIZE * 2 / 1e6
    benchmark.extra_info["files"] = SLICES
    benchmark.pedantic(fn, args=args, rounds=ROUNDS, iterations=1)


@pytest.mark.benchmark(group="series-j2k")
@pytest.mark.parametrize("verify", [False, True], ids=["encode", "verified"])
def bench_dicompress_j2k(benchmark, series, tmp_path, verify):
    _run(benchmark, lambda: _dicompress(series, _fresh(tmp_path), "j2k", verify))


@pytest.mark.benchmark(group="series-j2k")
def bench_pydicom_pylibjpeg_openjpeg_j2k(benchmark, series, tmp_path):
    _run(benchmark, lambda: _pydicom(series, _fresh(tmp_path), "j2k", "pylibjpeg"))


@pytest.mark.benchmark(group="series-htj2k")
@pytest.mark.parametrize("verify", [False, True], ids=["encode", "verified"])
def bench_dicompress_htj2k(benchmark, series, tmp_path, verify):
    _run(benchmark, lambda: _dicompress(series, _fresh(tmp_path), "htj2k", verify))


@pytest.mark.benchmark(group="series-jpegls")
@pytest.mark.parametrize("verify", [False, True], ids=["encode", "verified"])
def bench_dicompress_jpegls(benchmark, series, tmp_path, verify):
    _run(benchmark, lambda: _dicompress(series, _fresh(tmp_path), "jpegls", verify))


@pytest.mark.benchmark(group="series-jpegls")
def bench_pydicom_pyjpegls_jpegls(benchmark, series, tmp_path):
    _run(benchmark, lambda: _pydicom(series, _fresh(tmp_path), "jpegls", "pyjpegls"))
