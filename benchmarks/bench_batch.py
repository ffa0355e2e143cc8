"""Archive-scale transcoding, whole commands: a 300-file 512 x 512 16-bit CT series
(tools/make_series.py) to RLE and to J2K lossless.

Side by side in one run:
- ``dicompress transcode --jobs 1`` and ``--jobs 2`` (verification on, journal on);
- shell loops of ``gdcmconv --rle|--j2k`` and DCMTK's ``dcmcrle``, one process per file,
  also spread with ``xargs -P2``;
- pydicom + a 2-process pool (``benchmarks/pydicom_pool.py``) with the pylibjpeg and
  gdcm encoding plugins;
- the same series saved in Explicit and in Implicit VR Little Endian, ``--to rle --jobs 2``
  (group batch-rle-vr: both take the direct path, Implicit VR written out as Explicit).
Each row is one whole command (interpreter start included), so files/s is what an
archive admin sees. Rows in BENCHMARKS.md ("Batch").
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import QUICK, require_tool

sys.path.insert(0, str(Path(__file__).parent.parent / "tools"))
from make_series import make_series  # noqa: E402

# DICOMPRESS_BENCH_FILES=1200 for the --jobs scaling rows (start-up weighs less).
FILES, SIZE = (6, 64) if QUICK else (int(os.environ.get("DICOMPRESS_BENCH_FILES", "300")), 512)
# One round by default; DICOMPRESS_BENCH_ROUNDS=3 for the table in BENCHMARKS.md.
ROUNDS = 1 if QUICK else int(os.environ.get("DICOMPRESS_BENCH_ROUNDS", "1"))
HERE = Path(__file__).parent
POOL = HERE / "pydicom_pool.py"


@pytest.fixture(scope="module")
def series(tmp_path_factory) -> Path:
    return make_series(tmp_path_factory.mktemp("batch") / "in", FILES, SIZE)[0].parent


def _timed(benchmark, series: Path, out: Path, command: list[str], *, shell: bool = False) -> dict:
    """Time `command` once on a fresh output folder; return the --json summary if any."""
    benchmark.extra_info["files"] = FILES
    benchmark.extra_info["megabytes"] = sum(p.stat().st_size for p in series.iterdir()) / 1e6
    captured: dict = {}

    def setup():
        shutil.rmtree(out, ignore_errors=True)
        out.mkdir(parents=True)

    def run():
        proc = subprocess.run(command if not shell else " ".join(command), shell=shell,
                              capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr[-2000:]
        captured["stdout"] = proc.stdout

    benchmark.pedantic(run, setup=setup, rounds=ROUNDS, iterations=1)
    written = [p for p in out.rglob("*.dcm")]
    assert len(written) == FILES, f"{len(written)} of {FILES} files written"
    try:
        summary = json.loads(captured.get("stdout") or "null")
    except json.JSONDecodeError:
        summary = None
    if summary:
        benchmark.extra_info["peak_worker_rss_mb"] = summary["peak_worker_rss_mb"]
    return summary or {}


def _dicompress(benchmark, series, tmp_path, target, jobs):
    """`jobs` is 1, 2, "2-no-verify" or "2-verify-file" (to show what verification costs;
    peers verify nothing)."""
    out = tmp_path / "out"
    extra = (["--no-verify"] if str(jobs).endswith("no-verify") else
             ["--verify", "file"] if str(jobs).endswith("verify-file") else [])
    summary = _timed(benchmark, series, out, [
        sys.executable, "-m", "dicompress", "transcode", str(series), "--to", target, "-o", str(out),
        "--jobs", str(jobs)[0], "--json", *extra])
    assert summary["files"] == {"ok": FILES}


def _loop(series: Path, out: Path, per_file: str) -> list[str]:
    """A shell loop running `per_file` (with {in} and {out}) once per file."""
    body = per_file.format(inp='"$f"', out=f'"{out}/$(basename "$f")"')
    return [f'for f in "{series}"/*.dcm; do {body} || exit 1; done']


def _xargs(series: Path, out: Path, per_file: str) -> list[str]:
    """The same, two processes at a time (xargs -P2)."""
    body = per_file.format(inp=f'"{series}/$1"', out=f'"{out}/$1"')
    return [f"cd '{series}' && ls | xargs -P2 -I@ sh -c '{body}' _ @"]


def _pool(series, out, plugin, syntax) -> list[str]:
    return [sys.executable, str(POOL), plugin, syntax, str(series), str(out), "2"]


# -- RLE --------------------------------------------------------------------------------------
@pytest.mark.benchmark(group="batch-rle")
@pytest.mark.parametrize("jobs", ["1", "2", "2-no-verify"])
def bench_dicompress_rle(benchmark, series, tmp_path, jobs):
    _dicompress(benchmark, series, tmp_path, "rle", jobs)


@pytest.mark.benchmark(group="batch-rle")
def bench_dicompress_rle_two_separate_runs(benchmark, series, tmp_path):
    """The machine's ceiling for 2 jobs: two independent `--jobs 1` runs on halves of the
    series at the same time (no shared driver, no pool)."""
    halves = [tmp_path / "h0", tmp_path / "h1"]
    for n, half in enumerate(halves):
        half.mkdir()
        for k, path in enumerate(sorted(series.iterdir())):
            if k % 2 == n:
                (half / path.name).symlink_to(path)
    runs = " & ".join(
        f"{sys.executable} -m dicompress transcode {half} --to rle -o {tmp_path / 'out' / half.name}"
        f" --jobs 1 -q --journal {tmp_path / half.name}.sqlite > /dev/null" for half in halves)
    _timed(benchmark, series, tmp_path / "out",
           [f"rm -f {tmp_path}/h?.sqlite*; ({runs}; wait)"], shell=True)


@pytest.mark.benchmark(group="batch-rle")
@pytest.mark.parametrize("spread", ["loop", "xargs-P2"])
def bench_gdcmconv_rle(benchmark, series, tmp_path, spread):
    require_tool("gdcmconv")
    make = _loop if spread == "loop" else _xargs
    _timed(benchmark, series, tmp_path / "out",
           make(series, tmp_path / "out", "gdcmconv --rle {inp} {out}"), shell=True)


@pytest.mark.benchmark(group="batch-rle")
@pytest.mark.parametrize("spread", ["loop", "xargs-P2"])
def bench_dcmcrle(benchmark, series, tmp_path, spread):
    require_tool("dcmcrle")
    make = _loop if spread == "loop" else _xargs
    _timed(benchmark, series, tmp_path / "out",
           make(series, tmp_path / "out", "dcmcrle {inp} {out}"), shell=True)


@pytest.mark.benchmark(group="batch-rle")
@pytest.mark.parametrize("encoder", ["pylibjpeg", "gdcm"])
def bench_pydicom_pool2_rle(benchmark, series, tmp_path, encoder):
    _timed(benchmark, series, tmp_path / "out", _pool(series, tmp_path / "out", encoder, "rle"))


@pytest.fixture(scope="module")
def implicit_series(series, tmp_path_factory) -> Path:
    """The same series saved by pydicom as Implicit VR Little Endian."""
    import pydicom
    from pydicom.uid import ImplicitVRLittleEndian

    out = tmp_path_factory.mktemp("batch-implicit")
    for path in sorted(series.iterdir()):
        ds = pydicom.dcmread(path)
        ds.file_meta.TransferSyntaxUID = ImplicitVRLittleEndian
        ds.save_as(out / path.name, implicit_vr=True, little_endian=True)
    return out


@pytest.mark.benchmark(group="batch-rle-vr")
@pytest.mark.parametrize("encoding", ["explicit", "implicit"])
def bench_dicompress_rle_by_vr_encoding(benchmark, series, implicit_series, tmp_path, encoding):
    _dicompress(benchmark, implicit_series if encoding == "implicit" else series, tmp_path,
                "rle", "2")


# -- J2K lossless -----------------------------------------------------------------------------
@pytest.mark.benchmark(group="batch-j2k")
@pytest.mark.parametrize("jobs", ["1", "2", "2-verify-file", "2-no-verify"])
def bench_dicompress_j2k(benchmark, series, tmp_path, jobs):
    _dicompress(benchmark, series, tmp_path, "j2k", jobs)


@pytest.mark.benchmark(group="batch-j2k")
@pytest.mark.parametrize("spread", ["loop", "xargs-P2"])
def bench_gdcmconv_j2k(benchmark, series, tmp_path, spread):
    require_tool("gdcmconv")
    make = _loop if spread == "loop" else _xargs
    _timed(benchmark, series, tmp_path / "out",
           make(series, tmp_path / "out", "gdcmconv --j2k {inp} {out}"), shell=True)


@pytest.mark.benchmark(group="batch-j2k")
def bench_pydicom_pool2_j2k(benchmark, series, tmp_path):
    _timed(benchmark, series, tmp_path / "out",
           _pool(series, tmp_path / "out", "pylibjpeg", "j2k"))
