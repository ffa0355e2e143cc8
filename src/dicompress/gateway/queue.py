"""The durable queue: every received instance, from the moment it is safe on disk
until the destination has acknowledged it.

A row is committed (synchronous=FULL: on disk) before the sender is told the
instance was stored; it leaves the `queued` state only when the destination's
C-STORE response says success. After a crash everything still queued is sent again;
the destination sees at most a duplicate (the same SOP Instance UID), never a loss.
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

QUEUED, SENT, FAILED = "queued", "sent", "failed"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS instances (
    id INTEGER PRIMARY KEY,
    route TEXT NOT NULL,
    calling_ae TEXT NOT NULL,
    sop_class TEXT NOT NULL,
    sop_instance TEXT NOT NULL,
    study TEXT NOT NULL,
    syntax_in TEXT NOT NULL,
    path TEXT NOT NULL,
    size_in INTEGER NOT NULL,
    received REAL NOT NULL,
    status TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_try REAL NOT NULL DEFAULT 0,
    sent REAL,
    size_out INTEGER,
    syntax_out TEXT,
    error TEXT
);
CREATE INDEX IF NOT EXISTS due ON instances (route, status, next_try);
CREATE INDEX IF NOT EXISTS by_study ON instances (study);
CREATE INDEX IF NOT EXISTS by_status ON instances (status);
CREATE INDEX IF NOT EXISTS by_arrival ON instances (route, received);
CREATE TABLE IF NOT EXISTS notes (time REAL, route TEXT, study TEXT, text TEXT);
CREATE TABLE IF NOT EXISTS plans (route TEXT, study TEXT, codec TEXT, PRIMARY KEY (route, study));
"""


@dataclass
class Item:
    id: int
    route: str
    sop_class: str
    sop_instance: str
    study: str
    syntax_in: str
    path: str
    size_in: int
    attempts: int


class Queue:
    """One connection per thread (sqlite3 objects are not shared between threads)."""

    def __init__(self, path: Path, *, read_only: bool = False) -> None:
        self.path = Path(path)
        if read_only:
            self.db = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=30)
        else:
            self.db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=FULL")  # a success status means on disk
            self.db.executescript(_SCHEMA)
            try:  # queues made before the column existed
                self.db.execute("ALTER TABLE instances ADD COLUMN errors INTEGER NOT NULL DEFAULT 0")
            except sqlite3.OperationalError:
                pass

    def close(self) -> None:
        self.db.close()

    def add(self, route: str, calling_ae: str, sop_class: str, sop_instance: str, study: str,
            syntax_in: str, path: str, size_in: int) -> int:
        cur = self.db.execute(
            "INSERT INTO instances (route, calling_ae, sop_class, sop_instance, study, syntax_in,"
            " path, size_in, received, status) VALUES (?,?,?,?,?,?,?,?,?,?)",
            (route, calling_ae, sop_class, sop_instance, study, syntax_in, path, size_in,
             time.time(), QUEUED))
        return int(cur.lastrowid)

    def due(self, route: str, limit: int, settle: float = 0.0) -> list[Item]:
        """Queued instances of `route` whose time has come: the oldest study first, all of
        that study's due instances together (one association per study). With `settle`,
        a study is due once none of its instances came in the last `settle` seconds."""
        now = time.time()
        rows = self.db.execute(
            "SELECT id, route, sop_class, sop_instance, study, syntax_in, path, size_in, attempts"
            " FROM instances WHERE route = ? AND status = ? AND next_try <= ?"
            " AND study NOT IN (SELECT study FROM instances WHERE route = ? AND received > ?)"
            " ORDER BY id LIMIT ?",
            (route, QUEUED, now, route, now - settle if settle else now + 1, limit * 4)).fetchall()
        if not rows:
            return []
        study = rows[0][4]
        return [Item(*r) for r in rows if r[4] == study][:limit]

    def sent(self, item_id: int, size_out: int, syntax_out: str) -> None:
        self.db.execute("UPDATE instances SET status = ?, sent = ?, size_out = ?, syntax_out = ?,"
                        " error = NULL WHERE id = ?",
                        (SENT, time.time(), size_out, syntax_out, item_id))

    def retry(self, item_id: int, error: str, delay: float) -> None:
        self.db.execute("UPDATE instances SET attempts = attempts + 1, next_try = ?, error = ?"
                        " WHERE id = ? AND status = ?",
                        (time.time() + delay, error[:500], item_id, QUEUED))

    def fail(self, item_id: int, error: str, path: str) -> None:
        """Set aside: this instance cannot be sent in any form (it breaks the encoder or
        the network library); its file is kept, listed in the status, `--requeue` retries."""
        self.db.execute("UPDATE instances SET status = ?, error = ?, path = ? WHERE id = ?",
                        (FAILED, error[:500], path, item_id))

    def requeue_failed(self) -> int:
        cur = self.db.execute("UPDATE instances SET status = ?, attempts = 0, errors = 0,"
                              " next_try = 0 WHERE status = ?", (QUEUED, FAILED))
        return cur.rowcount

    def bump_errors(self, item_id: int) -> int:
        """One more failure of this instance itself (not of the link): their count."""
        self.db.execute("UPDATE instances SET errors = errors + 1 WHERE id = ?", (item_id,))
        return int(self.db.execute("SELECT errors FROM instances WHERE id = ?",
                                   (item_id,)).fetchone()[0])

    def study_items(self, route: str, study: str) -> list[Item]:
        """The instances of a study still to send (for its budget)."""
        rows = self.db.execute(
            "SELECT id, route, sop_class, sop_instance, study, syntax_in, path, size_in, attempts"
            " FROM instances WHERE route = ? AND study = ? AND status = ?",
            (route, study, QUEUED)).fetchall()
        return [Item(*r) for r in rows]

    def study_sent_bytes(self, route: str, study: str) -> int:
        return int(self.db.execute(
            "SELECT COALESCE(SUM(size_out), 0) FROM instances WHERE route = ? AND study = ?"
            " AND status = ?", (route, study, SENT)).fetchone()[0])

    def plan(self, route: str, study: str) -> str | None:
        row = self.db.execute("SELECT codec FROM plans WHERE route = ? AND study = ?",
                              (route, study)).fetchone()
        return row[0] if row else None

    def set_plan(self, route: str, study: str, codec: str) -> None:
        """A study's codec settings, kept: a restart mid-study goes on with the same ones
        (and the same derived UIDs)."""
        self.db.execute("INSERT OR REPLACE INTO plans VALUES (?, ?, ?)", (route, study, codec))

    def prune(self, older_than: float) -> int:
        """Forget instances sent more than `older_than` seconds ago (the queue stays small)."""
        cur = self.db.execute("DELETE FROM instances WHERE status = ? AND sent < ?",
                              (SENT, time.time() - older_than))
        self.db.execute("DELETE FROM plans WHERE study NOT IN (SELECT study FROM instances)")
        self.db.execute("DELETE FROM notes WHERE time < ?", (time.time() - older_than,))
        return cur.rowcount

    def note(self, route: str, study: str, text: str) -> None:
        self.db.execute("INSERT INTO notes VALUES (?, ?, ?, ?)", (time.time(), route, study, text))

    def spool_bytes(self) -> int:
        return int(self.db.execute("SELECT COALESCE(SUM(size_in), 0) FROM instances"
                                   " WHERE status != ?", (SENT,)).fetchone()[0])

    def status(self) -> dict:
        """Queue depth, totals, throughput of the last minute, bytes saved, failures."""
        counts = dict(self.db.execute("SELECT status, COUNT(*) FROM instances GROUP BY status"))
        sent_in, sent_out = self.db.execute(
            "SELECT COALESCE(SUM(size_in), 0), COALESCE(SUM(size_out), 0) FROM instances"
            " WHERE status = ?", (SENT,)).fetchone()
        now = time.time()
        recent = self.db.execute(
            "SELECT COUNT(*), COALESCE(SUM(size_out), 0) FROM instances WHERE sent >= ?",
            (now - 60,)).fetchone()
        received = self.db.execute(
            "SELECT COUNT(*), COALESCE(SUM(size_in), 0) FROM instances WHERE received >= ?",
            (now - 60,)).fetchone()
        waiting = self.db.execute(
            "SELECT route, COUNT(*), MIN(received), MAX(attempts) FROM instances"
            " WHERE status = ? GROUP BY route", (QUEUED,)).fetchall()
        failures = self.db.execute(
            "SELECT sop_instance, route, error FROM instances WHERE status = ?"
            " OR (status = ? AND attempts > 0) ORDER BY id DESC LIMIT 20",
            (FAILED, QUEUED)).fetchall()
        return {
            "queued": counts.get(QUEUED, 0), "sent": counts.get(SENT, 0),
            "failed": counts.get(FAILED, 0),
            "bytes_received_sent": sent_in, "bytes_forwarded": sent_out,
            "bytes_saved": sent_in - sent_out,
            "ratio": round(sent_in / sent_out, 3) if sent_out else None,
            "last_minute": {"received": received[0], "received_mb": round(received[1] / 1e6, 2),
                            "sent": recent[0], "sent_mb": round(recent[1] / 1e6, 2)},
            "routes": {r: {"queued": n, "oldest_seconds": round(now - oldest, 1),
                           "max_attempts": attempts} for r, n, oldest, attempts in waiting},
            "problems": [{"sop_instance": s, "route": r, "error": e} for s, r, e in failures],
            "notes": [{"route": r, "study": st, "note": t} for r, st, t in self.db.execute(
                "SELECT route, study, text FROM notes ORDER BY time DESC LIMIT 20")],
        }
