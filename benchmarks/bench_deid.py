"""De-identifying a 200-file 512 x 512 16-bit CT series (tools/make_series.py), whole commands.

Side by side in one run:
- ``dicompress deid --jobs 1`` and ``--jobs 2`` (basic profile, outputs read back and
  their pixel data compared with the originals', journal on);
- GDCM's ``gdcmanon`` (PS3.15 E.1.1 basic profile, one process over the folder; it also
  encrypts the originals into an Encrypted Attributes Sequence, with a test certificate).
Rows in BENCHMARKS.md ("De-identification").
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pydicom
import pytest

from conftest import QUICK, require_tool

sys.path.insert(0, str(Path(__file__).parent.parent / "tools"))
from make_series import make_series  # noqa: E402

FILES, SIZE = (6, 64) if QUICK else (200, 512)
ROUNDS = 1 if QUICK else int(os.environ.get("DICOMPRESS_BENCH_ROUNDS", "1"))


@pytest.fixture(scope="module")
def series(tmp_path_factory) -> Path:
    paths = make_series(tmp_path_factory.mktemp("deid") / "in", FILES, SIZE)
    for path in paths:  # the source slices were de-identified once; gdcmanon refuses files
        ds = pydicom.dcmread(path)  # that say so: make them look like a modality's again
        for keyword in ("EncryptedAttributesSequence", "PatientIdentityRemoved",
                        "DeidentificationMethod", "DeidentificationMethodCodeSequence"):
            if keyword in ds:
                delattr(ds, keyword)
        ds.save_as(path)
    return paths[0].parent


def _timed(benchmark, series: Path, out: Path, command: list[str]) -> None:
    benchmark.extra_info["files"] = FILES
    benchmark.extra_info["megabytes"] = sum(p.stat().st_size for p in series.iterdir()) / 1e6

    def setup():
        shutil.rmtree(out, ignore_errors=True)
        for journal in out.parent.glob(f".{out.name}*"):
            journal.unlink()
        out.mkdir(parents=True)

    def run():
        proc = subprocess.run(command, capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr[-2000:]

    benchmark.pedantic(run, setup=setup, rounds=ROUNDS, iterations=1)
    assert len(list(out.rglob("*.dcm"))) == FILES


@pytest.mark.benchmark(group="deid")
@pytest.mark.parametrize("jobs", ["1", "2"])
def bench_dicompress_deid(benchmark, series, tmp_path, jobs):
    _timed(benchmark, series, tmp_path / "out",
           [sys.executable, "-m", "dicompress", "deid", str(series), "-o", str(tmp_path / "out"),
            "--key", "benchmark-key-0123456789", "--jobs", jobs, "-q"])


@pytest.mark.benchmark(group="deid")
def bench_gdcmanon(benchmark, series, tmp_path):
    openssl = require_tool("openssl")
    cert = tmp_path / "cert.pem"
    subprocess.run([openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout",
                    str(tmp_path / "key.pem"), "-out", str(cert), "-days", "2", "-subj", "/CN=b"],
                   check=True, capture_output=True)
    _timed(benchmark, series, tmp_path / "out",
           [require_tool("gdcmanon"), "-e", "-c", str(cert), "-i", str(series), "-o",
            str(tmp_path / "out"), "-r", "--continue"])
