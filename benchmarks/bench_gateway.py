"""The gateway under load: a 200-instance 512 x 512 16-bit CT series sent by 4 concurrent
DCMTK storescu associations on loopback, forwarded to a Storage SCP (pynetdicom, writing what it receives).

Side by side in one run:
- ``dicompress serve`` (target htj2k, and j2k) between them;
- a DCMTK relay: storescp receiving and running storescu on each received file
  (``--exec-on-reception``), forwarding uncompressed, as sites build relays from DCMTK.
Each round times from the first byte sent to the last instance stored at the
destination (end to end), so instances/s is what the reading site sees. Outbound and
inbound bytes per row tell what crosses the link. Rows in BENCHMARKS.md ("Gateway").
"""

from __future__ import annotations

import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import QUICK, require_tool

sys.path.insert(0, str(Path(__file__).parent.parent / "tools"))
from make_series import make_series  # noqa: E402

FILES, SIZE = (8, 64) if QUICK else (200, 512)
SENDERS = 4
ROUNDS = 1 if QUICK else int(os.environ.get("DICOMPRESS_BENCH_ROUNDS", "1"))


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _listening(port: int, limit: float = 30) -> None:
    end = time.monotonic() + limit
    while time.monotonic() < end:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(port)


@pytest.fixture(scope="module")
def series(tmp_path_factory) -> list[Path]:
    return make_series(tmp_path_factory.mktemp("gateway") / "in", FILES, SIZE)


def _send_and_wait(series: list[Path], port: int, dest: Path) -> None:
    """4 storescu at once, each a quarter of the series; then wait for all at `dest`."""
    senders = [subprocess.Popen([require_tool("storescu"), "-aet", "CT1", "-aec", "DICOMPRESS",
                                 "127.0.0.1", str(port), *map(str, series[n::SENDERS])],
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
               for n in range(SENDERS)]
    for proc in senders:
        assert proc.wait(timeout=600) == 0, proc.stderr.read()[-1000:]
    end = time.monotonic() + 600
    while len([p for p in dest.iterdir() if not p.name.startswith(".")]) < len(series):
        assert time.monotonic() < end, "not everything arrived"
        time.sleep(0.02)


def _destination(folder: Path) -> tuple[subprocess.Popen, int]:
    """The reading site: a pynetdicom Storage SCP (benchmarks/storage_scp.py) taking every
    syntax, the same for every row (DCMTK 3.6.7's storescp does not know HTJ2K)."""
    port = _port()
    proc = subprocess.Popen([sys.executable, str(Path(__file__).parent / "storage_scp.py"),
                             str(port), str(folder)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    _listening(port)
    return proc, port


def _round(benchmark, series, tmp_path, start_relay) -> dict:
    """Time rounds of: fresh destination and relay, send, wait for everything to arrive."""
    megabytes = sum(p.stat().st_size for p in series) / 1e6
    benchmark.extra_info.update(files=FILES, megabytes=megabytes, senders=SENDERS)
    state: dict = {}

    def setup():
        for name in ("dest", "relay"):
            shutil.rmtree(tmp_path / name, ignore_errors=True)
            (tmp_path / name).mkdir()
        dest, dest_port = _destination(tmp_path / "dest")
        relay, port = start_relay(tmp_path / "relay", dest_port)
        state.update(dest=dest, relay=relay, port=port)
        return (), {}

    def run():
        _send_and_wait(series, state["port"], tmp_path / "dest")

    def teardown(*_):
        state["out_bytes"] = sum(p.stat().st_size for p in (tmp_path / "dest").iterdir())
        for proc in (state["relay"], state["dest"]):
            proc.terminate()
            proc.wait(timeout=60)

    benchmark.pedantic(run, setup=setup, teardown=teardown, rounds=ROUNDS, iterations=1)
    benchmark.extra_info["outbound_megabytes"] = state["out_bytes"] / 1e6
    return state


def _gateway(target: str):
    def start(folder: Path, dest_port: int):
        port = _port()
        config = folder / "gateway.toml"
        config.write_text(
            f'[gateway]\nae_title = "DICOMPRESS"\nport = {port}\nhost = "127.0.0.1"\n'
            f'spool = "{folder / "spool"}"\nmax_associations = {SENDERS + 2}\n\n'
            f'[[route]]\nname = "site"\ncalling = ["CT1"]\ntarget = "{target}"\n'
            f'destination = {{ ae_title = "READ", host = "127.0.0.1", port = {dest_port} }}\n')
        proc = subprocess.Popen([sys.executable, "-m", "dicompress", "serve", "--config",
                                 str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _listening(port)
        return proc, port
    return start


def _dcmtk_relay(folder: Path, dest_port: int):
    port = _port()
    forward = (f"{require_tool('storescu')} -aet RELAY -aec READ 127.0.0.1 {dest_port} #p/#f")
    proc = subprocess.Popen([require_tool("storescp"), "-aet", "DICOMPRESS", "+xa", "-od", str(folder),
                             "--exec-on-reception", forward, str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _listening(port)
    return proc, port


@pytest.mark.benchmark(group="gateway")
@pytest.mark.parametrize("target", ["htj2k", "j2k", "explicit"])
def bench_dicompress_gateway(benchmark, series, tmp_path, target):
    _round(benchmark, series, tmp_path, _gateway(target))
    with sqlite3.connect(tmp_path / "relay" / "spool" / "queue.sqlite") as db:
        sent = db.execute("SELECT COUNT(*) FROM instances WHERE status = 'sent'").fetchone()[0]
    assert sent == FILES


@pytest.mark.benchmark(group="gateway")
def bench_dcmtk_storescp_storescu_relay(benchmark, series, tmp_path):
    _round(benchmark, series, tmp_path, _dcmtk_relay)
