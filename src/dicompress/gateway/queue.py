"""The durable queue: every received instance, from the moment it is safe on disk
until the destination has acknowledged it.

A row is committed (synchronous=FULL: on disk) before the sender is told the
instance was stored; it leaves the `queued` state only when the destination's
C-STORE response says success. After a crash everything still queued is sent again;
the destination sees at most a duplicate (the same SOP Instance UID), never a loss.

States: `queued` (to send), `sent`, `held` (the route's fallback is "hold" and its
target could not be sent; the file stays in in/), `failed` (set aside in failed/
after breaking the encoder or the network library repeatedly), `dropped` (an
operator's `serve --drop`). Every row keeps the syntax it was meant to go in
(`target`) and the one it went in (`syntax_out`), and why they differ (`fallback`).
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

from dicompress.errors import Status

# The outcome words of dicompress.errors.Status, as the queue stores them.
QUEUED, SENT, FAILED, HELD, DROPPED = (s.value for s in (
    Status.QUEUED, Status.SENT, Status.FAILED, Status.HELD, Status.DROPPED))

#: Columns added after the first release (queues made before them get them on open).
_ADDED_COLUMNS = ("errors INTEGER NOT NULL DEFAULT 0", "target TEXT", "fallback TEXT",
                  "encode_ms REAL", "send_ms REAL")

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
CREATE TABLE IF NOT EXISTS audit (time REAL, action TEXT, sop_instance TEXT, route TEXT,
                                  detail TEXT);
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
            have = {row[1] for row in self.db.execute("PRAGMA table_info(instances)")}
            for column in _ADDED_COLUMNS:
                if column.split()[0] not in have:
                    try:
                        self.db.execute(f"ALTER TABLE instances ADD COLUMN {column}")
                    except sqlite3.OperationalError:
                        pass  # another connection added it meanwhile

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

    def sent(self, item_id: int, size_out: int, syntax_out: str, *, target: str | None = None,
             fallback: str | None = None, encode_ms: float | None = None,
             send_ms: float | None = None) -> None:
        """Acknowledged by the destination, in `syntax_out`; `fallback` says why that is
        not the route's `target` (None: it is, or the instance has no pixels)."""
        self.db.execute("UPDATE instances SET status = ?, sent = ?, size_out = ?, syntax_out = ?,"
                        " target = ?, fallback = ?, encode_ms = ?, send_ms = ?, error = NULL"
                        " WHERE id = ?",
                        (SENT, time.time(), size_out, syntax_out, target,
                         fallback[:500] if fallback else None, encode_ms, send_ms, item_id))

    def hold(self, item_id: int, target: str | None, reason: str) -> None:
        """Held by the route's policy (fallback = "hold"): listed, requeued by an operator."""
        self.db.execute("UPDATE instances SET status = ?, target = ?, error = ? WHERE id = ?"
                        " AND status = ?", (HELD, target, reason[:500], item_id, QUEUED))

    def retry(self, item_id: int, error: str, delay: float) -> None:
        self.db.execute("UPDATE instances SET attempts = attempts + 1, next_try = ?, error = ?"
                        " WHERE id = ? AND status = ?",
                        (time.time() + delay, error[:500], item_id, QUEUED))

    def fail(self, item_id: int, error: str, path: str) -> None:
        """Set aside: this instance cannot be sent in any form (it breaks the encoder or
        the network library); its file is kept, listed in the status, `--requeue` retries."""
        self.db.execute("UPDATE instances SET status = ?, error = ?, path = ? WHERE id = ?",
                        (FAILED, error[:500], path, item_id))

    def requeue(self, item_id: int, path: str) -> None:
        """A held or failed instance queued again (its file at `path`)."""
        self.db.execute("UPDATE instances SET status = ?, path = ?, attempts = 0, errors = 0,"
                        " next_try = 0 WHERE id = ?", (QUEUED, path, item_id))

    def set_aside(self) -> list[tuple[int, str, str, str]]:
        """(id, SOP Instance UID, route, path) of the held and failed instances."""
        return self.db.execute("SELECT id, sop_instance, route, path FROM instances"
                               " WHERE status IN (?, ?) ORDER BY id", (HELD, FAILED)).fetchall()

    def find(self, sop_instance: str) -> list[tuple[int, str, str, str]]:
        """(id, route, status, path) of the rows of that SOP Instance UID not yet sent."""
        return self.db.execute("SELECT id, route, status, path FROM instances"
                               " WHERE sop_instance = ? AND status NOT IN (?, ?) ORDER BY id",
                               (sop_instance, SENT, DROPPED)).fetchall()

    def drop(self, item_id: int, reason: str) -> None:
        self.db.execute("UPDATE instances SET status = ?, error = ? WHERE id = ?",
                        (DROPPED, reason[:500], item_id))

    def reroute(self, item_id: int, route: str, path: str) -> None:
        self.db.execute("UPDATE instances SET route = ?, path = ?, status = ?, attempts = 0,"
                        " errors = 0, next_try = 0 WHERE id = ?", (route, path, QUEUED, item_id))

    def audit(self, action: str, sop_instance: str, route: str, detail: str) -> None:
        """An operator's action, kept (who did what to which instance)."""
        self.db.execute("INSERT INTO audit VALUES (?, ?, ?, ?, ?)",
                        (time.time(), action, sop_instance, route, detail))

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
        """Forget instances sent (or dropped) more than `older_than` seconds ago (the queue
        stays small; the audit table keeps the operators' actions)."""
        cutoff = time.time() - older_than
        cur = self.db.execute("DELETE FROM instances WHERE (status = ? AND sent < ?)"
                              " OR (status = ? AND received < ?)",
                              (SENT, cutoff, DROPPED, cutoff))
        self.db.execute("DELETE FROM plans WHERE study NOT IN (SELECT study FROM instances)")
        self.db.execute("DELETE FROM notes WHERE time < ?", (cutoff,))
        return cur.rowcount

    def note(self, route: str, study: str, text: str) -> None:
        self.db.execute("INSERT INTO notes VALUES (?, ?, ?, ?)", (time.time(), route, study, text))

    def spool_bytes(self) -> int:
        """Bytes of the files the spool keeps (sent and dropped files are gone)."""
        return int(self.db.execute("SELECT COALESCE(SUM(size_in), 0) FROM instances"
                                   " WHERE status IN (?, ?, ?)",
                                   (QUEUED, HELD, FAILED)).fetchone()[0])

    def depth(self) -> dict[str, tuple[int, float | None]]:
        """Per route: instances queued and the arrival time of the oldest."""
        return {r: (n, oldest) for r, n, oldest in self.db.execute(
            "SELECT route, COUNT(*), MIN(received) FROM instances WHERE status = ?"
            " GROUP BY route", (QUEUED,))}

    def status(self, routes: list[str] = ()) -> dict:
        """Totals, throughput of the last minute, and per route: the queue, what was sent
        in which syntax, what was sent other than the target and why, what is held or
        failed. `routes` are listed even when they have nothing."""
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
        per_route: dict[str, dict] = {}

        def route(name: str) -> dict:
            return per_route.setdefault(name, {"queued": 0, "oldest_seconds": None,
                                               "max_attempts": 0, "sent": 0, "held": 0,
                                               "failed": 0, "sent_other_than_target": 0,
                                               "sent_syntaxes": {}})

        for name in routes:
            route(name)
        for r, n, oldest, attempts in self.db.execute(
                "SELECT route, COUNT(*), MIN(received), MAX(attempts) FROM instances"
                " WHERE status = ? GROUP BY route", (QUEUED,)):
            route(r).update(queued=n, oldest_seconds=round(now - oldest, 1),
                            max_attempts=attempts)
        for r, state, n in self.db.execute("SELECT route, status, COUNT(*) FROM instances"
                                           " WHERE status IN (?, ?) GROUP BY route, status",
                                           (HELD, FAILED)):
            route(r)[state] = n
        for r, syntax, other, n in self.db.execute(
                "SELECT route, syntax_out, fallback IS NOT NULL, COUNT(*) FROM instances"
                " WHERE status = ? GROUP BY route, syntax_out, fallback IS NOT NULL", (SENT,)):
            entry = route(r)
            entry["sent"] += n
            entry["sent_syntaxes"][syntax] = entry["sent_syntaxes"].get(syntax, 0) + n
            entry["sent_other_than_target"] += n if other else 0
        failures = self.db.execute(
            "SELECT sop_instance, route, error FROM instances WHERE status = ? AND attempts > 0"
            " ORDER BY id DESC LIMIT 20", (QUEUED,)).fetchall()

        def listed(state: str) -> list[dict]:
            return [{"sop_instance": s, "route": r, "reason": e} for s, r, e in self.db.execute(
                "SELECT sop_instance, route, error FROM instances WHERE status = ?"
                " ORDER BY id DESC LIMIT 100", (state,))]

        return {
            "queued": counts.get(QUEUED, 0), "sent": counts.get(SENT, 0),
            "held": counts.get(HELD, 0), "failed": counts.get(FAILED, 0),
            "dropped": counts.get(DROPPED, 0),
            # of the instances sent (and still listed): their size as received, as sent
            "bytes_in": sent_in, "bytes_out": sent_out, "bytes_saved": sent_in - sent_out,
            "ratio": round(sent_in / sent_out, 3) if sent_out else None,
            "last_minute": {"received": received[0], "received_mb": round(received[1] / 1e6, 2),
                            "sent": recent[0], "sent_mb": round(recent[1] / 1e6, 2)},
            "routes": per_route,
            "problems": [{"sop_instance": s, "route": r, "error": e} for s, r, e in failures],
            "held_instances": listed(HELD),
            "failed_instances": listed(FAILED),
            "notes": [{"route": r, "study": st, "note": t, "age_seconds": round(now - at, 1)}
                      for at, r, st, t in self.db.execute(
                          "SELECT time, route, study, text FROM notes ORDER BY time DESC"
                          " LIMIT 20")],
        }
