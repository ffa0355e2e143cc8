"""The benchmark suite runs (quick mode: small synthetic images, one round); no time is asserted."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_benchmarks_run_in_quick_mode(tmp_path):
    report = tmp_path / "bench.json"
    # not as an xdist worker (pytest-benchmark then turns itself off): a run of its own
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    env["DICOMPRESS_BENCH_QUICK"] = "1"
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "benchmarks", "-x", "-q", "-p", "no:cacheprovider",
         "-o", "addopts=", "--benchmark-enable", f"--benchmark-json={report}"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    data = json.loads(report.read_text())
    names = {b["name"] for b in data["benchmarks"]}
    assert any("dicompress" in n for n in names) and any("pylibjpeg" in n for n in names)
    table = subprocess.run([sys.executable, "tools/bench_table.py", str(report)], cwd=ROOT,
                           capture_output=True, text=True)
    assert table.returncode == 0 and "decode" in table.stdout
