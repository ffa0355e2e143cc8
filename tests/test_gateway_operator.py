"""What the last review left open: the crash windows of setting aside and requeueing,
and an operator's drop and reroute of an instance (recorded in the queue and the audit
log)."""

from __future__ import annotations

import json
import sqlite3
import subprocess
from pathlib import Path

import pydicom

from dicompress.gateway import Gateway, load_config
from test_gateway import (CLI, PynetdicomSCP, _wait_until, free_port, make_series, storescu,
                          write_config)


def queue_rows(config: Path) -> list[tuple]:
    with sqlite3.connect(load_config(config).database) as db:
        return db.execute("SELECT id, sop_instance, route, status, path FROM instances"
                          " ORDER BY id").fetchall()


def received_while_down(tmp_path: Path, dest_port: int, n: int, extra_route: str = ""
                        ) -> tuple[Path, list[Path]]:
    """A gateway that took `n` instances while its destination was down, then stopped."""
    config, port = write_config(tmp_path, dest_port, target="explicit")
    config.write_text(config.read_text() + extra_route)
    series = make_series(tmp_path / "series", n, 32)
    gateway = Gateway(load_config(config))
    gateway.start()
    try:
        assert storescu(port, series).returncode == 0
    finally:
        gateway.stop()
    return config, series


def test_a_crash_between_moving_a_file_and_updating_its_row_loses_nothing(tmp_path):
    dest_port = free_port()
    config, series = received_while_down(tmp_path, dest_port, 2)
    spool = tmp_path / "spool"
    (first, _, _, _, path1), (second, _, _, _, path2) = queue_rows(config)
    # 1. set aside: the file was moved to failed/, the row (still queued) not updated
    (spool / "failed").mkdir(exist_ok=True)
    (spool / path1).replace(spool / "failed" / Path(path1).name)
    # 2. requeued: the row says failed/ and queued, the file is back in in/requeued/
    (spool / "in" / "requeued").mkdir()
    (spool / path2).replace(spool / "in" / "requeued" / Path(path2).name)
    with sqlite3.connect(load_config(config).database) as db:
        db.execute("UPDATE instances SET path = ? WHERE id = ?",
                   (f"failed/{Path(path2).name}", second))
    dest = PynetdicomSCP(dest_port)
    gateway = Gateway(load_config(config))
    gateway.start()
    try:
        _wait_until(lambda: len(dest.received) == 2, limit=30, what="both sent")
    finally:
        gateway.stop()
        dest.stop()
    assert sorted(ds.SOPInstanceUID for ds in dest.received) == sorted(
        pydicom.dcmread(p).SOPInstanceUID for p in series)
    assert [r[3] for r in queue_rows(config)] == ["sent", "sent"]


def test_drop_and_reroute_are_done_recorded_and_audited(tmp_path):
    dest_port, other_port = free_port(), free_port()
    other = (f'\n[[route]]\nname = "second opinion"\ncalling = ["CT9"]\n'
             f'destination = {{ ae_title = "OTHER", host = "127.0.0.1", port = {other_port} }}\n'
             f'target = "explicit"\n')
    config, series = received_while_down(tmp_path, dest_port, 3, other)
    uids = [pydicom.dcmread(p).SOPInstanceUID for p in series]

    def serve(*args) -> subprocess.CompletedProcess:
        return subprocess.run(CLI + ["serve", "--config", str(config), *args],
                              capture_output=True, text=True, timeout=60)

    dropped = serve("--drop", uids[0])
    assert dropped.returncode == 0 and "1 instance(s) dropped" in dropped.stdout
    moved = serve("--reroute", uids[1], "second opinion")
    assert moved.returncode == 0, moved.stderr
    unknown = serve("--drop", "1.2.3.4.5")
    assert unknown.returncode != 0 and "1.2.3.4.5: no instance" in unknown.stderr
    bad_route = serve("--reroute", uids[2], "nowhere")
    assert bad_route.returncode != 0 and "no route 'nowhere'" in bad_route.stderr
    rows = {uid: (route, state, path) for _, uid, route, state, path in queue_rows(config)}
    assert rows[uids[0]][1] == "dropped"
    assert not (tmp_path / "spool" / rows[uids[0]][2]).exists()  # its file is gone
    assert rows[uids[1]][:2] == ("second opinion", "queued")
    audit = [json.loads(line) for line in
             (tmp_path / "spool" / "audit.log").read_text().splitlines()]
    assert [(a["action"], a["sop_instance"], a["route"]) for a in audit] == [
        ("drop", uids[0], "reading site"), ("reroute", uids[1], "reading site")]
    with sqlite3.connect(load_config(config).database) as db:
        assert db.execute("SELECT action, sop_instance FROM audit ORDER BY time").fetchall() == [
            ("drop", uids[0]), ("reroute", uids[1])]
    # both destinations come up: each instance goes where it was sent, none twice
    dest, second = PynetdicomSCP(dest_port), PynetdicomSCP(other_port)
    gateway = Gateway(load_config(config))
    gateway.start()
    try:
        _wait_until(lambda: len(dest.received) == 1 and len(second.received) == 1, limit=30,
                    what="sent on their routes")
    finally:
        gateway.stop()
        dest.stop()
        second.stop()
    assert dest.received[0].SOPInstanceUID == uids[2]
    assert second.received[0].SOPInstanceUID == uids[1]
