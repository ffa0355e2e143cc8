"""`dicompress compare` on a 200-slice 512 x 512 16-bit CT series (tools/make_series.py):
six choices, ``--sample 20``, the whole command as a user runs it. Row in BENCHMARKS.md
("Compare")."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from conftest import QUICK

sys.path.insert(0, str(Path(__file__).parent.parent / "tools"))
from make_series import make_series  # noqa: E402

SLICES, SIZE = (6, 64) if QUICK else (200, 512)
CODECS = "rle,j2k,htj2k,jpegls,j2k-lossy:10,jpegls-near:2"


@pytest.fixture(scope="module")
def series(tmp_path_factory) -> Path:
    return make_series(tmp_path_factory.mktemp("compare") / "ct", SLICES, SIZE)[0].parent


@pytest.mark.benchmark(group="compare")
def bench_compare_six_codecs_sample_20(benchmark, series, tmp_path):
    benchmark.extra_info.update(slices=SLICES, codecs=CODECS, sample=20)

    def run():
        proc = subprocess.run([sys.executable, "-m", "dicompress", "compare", str(series),
                               "--codecs", CODECS, "--sample", "20",
                               "--json", str(tmp_path / "c.json")], capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr[-2000:]

    benchmark.pedantic(run, rounds=1 if QUICK else 3, iterations=1)
