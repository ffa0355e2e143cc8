"""The run journal: one SQLite row per input file, so a run can be resumed and audited.

The journal is written only by the process that drives the run (the CLI or the Dask
client); workers return results to it. A row is inserted as ``pending`` before the
file is handed to a worker, and completed with the result. After a crash, a
``pending`` row means "look at the file again": it is either still the original or,
for in-place runs, already the verified result (the rename is atomic).

Schema (one table per concept, plain SQL so any SQLite client can read it)::

    run(key, value)          the settings the journal belongs to (target, options, mode),
                             the run count, the schema version
    files(path, ...)         one row per input file: see COLUMNS

Schema versions: 1 (no ``schema`` key) had no loss columns; 2 adds, for lossy outputs,
``psnr``, ``max_error``, ``max_abs_error_modality``, ``max_display_error`` and
``display_window`` (transcode's lossy report, docs/compare.md "Quality measures"). A journal
of version 1 opened to resume is migrated in place (the columns are added, empty for the
files it already holds); one opened read-only (``report``) is read as it is, its missing
columns read as empty.
"""

from __future__ import annotations

import fcntl
import json
import os
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from dicompress.errors import JournalError, JournalFull, Status
from dicompress.pipeline.result import Loss

JOURNAL_NAME = ".dicompress-journal.sqlite"

#: Final statuses; ``pending`` marks a file handed to a worker without a result yet.
OK, ALREADY, NOT_DICOM, NOT_IMAGE, FAILED, PENDING = (s.value for s in (
    Status.OK, Status.ALREADY, Status.NOT_DICOM, Status.NOT_IMAGE, Status.FAILED, Status.PENDING))
FINAL = (OK, ALREADY, NOT_DICOM, NOT_IMAGE, FAILED)

#: A file's columns: what `Row` holds, then a lossy output's `Loss` (schema 2).
_ROW_COLUMNS = ("path", "run", "destination", "size_in", "mtime_in", "hash_in", "size_out",
                "mtime_out", "hash_out", "syntax_in", "syntax_out", "status", "reason", "frames",
                "seconds", "updated")
COLUMNS = _ROW_COLUMNS + Loss.COLUMNS

SCHEMA_VERSION = 2
#: The columns each schema version added to ``files``, with their SQL types.
_ADDED = {2: (("psnr", "REAL"), ("max_error", "REAL"), ("max_abs_error_modality", "REAL"),
              ("max_display_error", "REAL"), ("display_window", "TEXT"))}

_SCHEMA = """
CREATE TABLE IF NOT EXISTS run (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS files (
    path        TEXT PRIMARY KEY,   -- the input, resolved
    run         INTEGER,            -- which run (1, 2, ... one per start or resume) took it
    destination TEXT UNIQUE,        -- where the result goes (the path itself in place)
    size_in     INTEGER,
    mtime_in    INTEGER,            -- st_mtime_ns of the input when it was taken
    hash_in     TEXT,               -- digest of the input file's bytes (settings: hash)
    size_out    INTEGER,
    mtime_out   INTEGER,            -- st_mtime_ns of the result when it was written
    hash_out    TEXT,               -- digest of the output file's bytes (settings: hash)
    syntax_in   TEXT,
    syntax_out  TEXT,
    status      TEXT NOT NULL,
    reason      TEXT,
    frames      INTEGER,
    seconds     REAL,
    updated     REAL,
    psnr        REAL,               -- lossy outputs: the worst frame's PSNR (dB, finite)
    max_error   REAL,               -- lossy: the worst error in stored values
    max_abs_error_modality REAL,    -- lossy: the worst error in the modality's units (HU)
    max_display_error REAL,         -- lossy: the worst error in 8-bit display levels
    display_window TEXT             -- lossy: the window the display error was taken at
);
CREATE INDEX IF NOT EXISTS files_status ON files(status);
"""


def _present_columns(db: sqlite3.Connection) -> set[str]:
    return {row[1] for row in db.execute("PRAGMA table_info(files)")}


def _migrate(db: sqlite3.Connection) -> None:
    """Bring a journal of an older schema to SCHEMA_VERSION (columns added, empty)."""
    present = _present_columns(db)
    for version in sorted(_ADDED):
        for name, kind in _ADDED[version]:
            if name not in present:
                db.execute(f"ALTER TABLE files ADD COLUMN {name} {kind}")
    db.execute("INSERT OR REPLACE INTO run VALUES ('schema', ?)", (str(SCHEMA_VERSION),))




@dataclass(frozen=True)
class Row:
    path: str
    run: int | None
    destination: str | None
    size_in: int | None
    mtime_in: int | None
    hash_in: str | None
    size_out: int | None
    mtime_out: int | None
    hash_out: str | None
    syntax_in: str | None
    syntax_out: str | None
    status: str
    reason: str | None
    frames: int | None
    seconds: float | None
    updated: float | None
    #: A lossy output's loss (None: none recorded).
    loss: Loss | None = None

    @classmethod
    def from_columns(cls, values: tuple) -> Row:
        """A row read in COLUMNS order."""
        count = len(_ROW_COLUMNS)
        return cls(*values[:count], loss=Loss.from_columns(values[count:]))


class Journal:
    """An open journal, locked against a second run using it at the same time.

    Commits are grouped (every `commit_every` results, and before any file is
    handed out) so a journal of millions of rows costs little; a result lost in a
    crash only means that file is looked at again on resume.
    """

    def __init__(self, path: str | Path, *, commit_every: int = 64) -> None:
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._lock_fd = os.open(f"{self.path}.lock", os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise JournalError(f"{self.path}: cannot be created ({exc.strerror or exc})") from exc
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self._lock_fd)
            raise JournalError(f"{self.path}: another dicompress run is using this journal") from None
        try:
            self.db = sqlite3.connect(self.path, isolation_level=None)
            self.db.execute("PRAGMA journal_mode=WAL")
            # WAL + NORMAL: a commit survives the process being killed; a power cut may
            # lose the last few, which only means those files are looked at again.
            self.db.execute("PRAGMA synchronous=NORMAL")
            self.db.executescript(_SCHEMA)
            _migrate(self.db)
        except sqlite3.DatabaseError as exc:
            self._unlock()
            raise JournalError(f"{self.path}: not a usable journal ({exc})") from exc
        self.commit_every = commit_every
        self.run = 0
        self._uncommitted = 0
        self.db.execute("BEGIN")

    # -- settings ------------------------------------------------------------------------
    def settings(self) -> dict | None:
        row = self._sql("SELECT value FROM run WHERE key = 'settings'").fetchone()
        return json.loads(row[0]) if row else None

    def set_settings(self, settings: dict) -> None:
        self._sql("INSERT OR REPLACE INTO run VALUES ('settings', ?)",
                        (json.dumps(settings, sort_keys=True),))
        self.commit()

    def begin_run(self) -> int:
        """Count a new run (a start or a resume); rows it takes carry its number."""
        row = self._sql("SELECT value FROM run WHERE key = 'runs'").fetchone()
        self.run = (int(row[0]) if row else 0) + 1
        self._sql("INSERT OR REPLACE INTO run VALUES ('runs', ?)", (str(self.run),))
        self.commit()
        return self.run

    def is_empty(self) -> bool:
        return self._sql("SELECT 1 FROM files LIMIT 1").fetchone() is None

    # -- rows ----------------------------------------------------------------------------
    def get(self, path: str) -> Row | None:
        row = self._sql(f"SELECT {', '.join(COLUMNS)} FROM files WHERE path = ?",
                              (path,)).fetchone()
        return Row.from_columns(row) if row else None

    def destination_owner(self, destination: str) -> str | None:
        row = self._sql("SELECT path FROM files WHERE destination = ?",
                              (destination,)).fetchone()
        return row[0] if row else None

    def start(self, path: str, destination: str | None, size_in: int, mtime_in: int) -> None:
        """Record that `path` is being handed to a worker (kept by a later `finish`)."""
        self._sql(
            "INSERT INTO files (path, run, destination, size_in, mtime_in, status, updated) "
            "VALUES (?, ?, ?, ?, ?, 'pending', ?) ON CONFLICT(path) DO UPDATE SET "
            "run = excluded.run, destination = excluded.destination, "
            "size_in = excluded.size_in, mtime_in = excluded.mtime_in, status = 'pending', "
            "reason = NULL, updated = excluded.updated",
            (path, self.run, destination, size_in, mtime_in, time.time()))
        self._uncommitted += 1

    def finish(self, path: str, **values) -> None:
        values["updated"] = time.time()
        unknown = set(values) - set(COLUMNS)
        if unknown:
            raise ValueError(f"unknown journal columns {sorted(unknown)}")
        keys = sorted(values)
        self._sql(
            f"UPDATE files SET {', '.join(f'{k} = ?' for k in keys)} WHERE path = ?",
            [values[k] for k in keys] + [path])
        self._uncommitted += 1
        if self._uncommitted >= self.commit_every:
            self.commit()

    def record(self, path: str, **values) -> None:
        """Insert or complete a row without a pending phase (skips found by the driver)."""
        self._sql("INSERT INTO files (path, run, status) VALUES (?, ?, 'pending') "
                        "ON CONFLICT(path) DO UPDATE SET run = excluded.run", (path, self.run))
        self.finish(path, **values)

    def commit(self) -> None:
        self._sql("COMMIT")
        self._sql("BEGIN")
        self._uncommitted = 0

    def _sql(self, statement: str, parameters=()) -> sqlite3.Cursor:
        try:
            return self.db.execute(statement, parameters)
        except sqlite3.OperationalError as exc:
            if "full" in str(exc):
                raise JournalFull(f"{self.path}: the journal's filesystem is full; the run "
                                  "stopped, --resume continues it once there is room") from exc
            raise JournalError(f"{self.path}: {exc}") from exc

    def close(self) -> None:
        """Commit what can be committed, and let go of the journal whatever happens."""
        try:
            if self.db.in_transaction:
                try:
                    self.db.execute("COMMIT")
                except sqlite3.Error:  # e.g. the disk is full: keep what was committed
                    self.db.rollback()
            self.db.close()
        finally:
            self._unlock()

    def _unlock(self) -> None:
        if self._lock_fd is not None:
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
            os.close(self._lock_fd)
            self._lock_fd = None

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def open_read_only(path: str | Path) -> sqlite3.Connection:
    """The journal for reporting, without taking the run lock (a running job may hold it)."""
    path = Path(path)
    if not path.is_file():
        raise JournalError(f"{path}: no such journal")
    try:
        db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
        db.execute("SELECT 1 FROM files LIMIT 1")
    except sqlite3.DatabaseError as exc:
        raise JournalError(f"{path}: not a dicompress journal ({exc})") from exc
    return db


# -- reading a journal (report) ---------------------------------------------------------------
def settings_of(db: sqlite3.Connection) -> dict | None:
    row = db.execute("SELECT value FROM run WHERE key = 'settings'").fetchone()
    return json.loads(row[0]) if row else None


def file_rows(db: sqlite3.Connection) -> Iterator[tuple]:
    """Every file's row, in COLUMNS order, by path; a column an older journal does not
    have reads as empty (None)."""
    present = _present_columns(db)
    chosen = ", ".join(c if c in present else f"NULL AS {c}" for c in COLUMNS)
    yield from db.execute(f"SELECT {chosen} FROM files ORDER BY path")


@dataclass(frozen=True)
class LossSummary:
    """The lossy outputs of a journal, and their worst errors."""

    files: int
    psnr: float | None  # the lowest
    max_abs_error_modality: float | None
    max_display_error: float | None
    worst_display_path: str | None  # the file of the worst display error
    window: str | None  # the window it was taken at


def loss_summary(db: sqlite3.Connection) -> LossSummary:
    """The files transcoded lossy (with a loss recorded) and their worst errors; none for a
    journal of schema 1 (no loss columns)."""
    if "max_display_error" not in _present_columns(db):
        return LossSummary(0, None, None, None, None, None)
    files, psnr, modality = db.execute(
        "SELECT COUNT(*), MIN(psnr), MAX(max_abs_error_modality) FROM files "
        "WHERE status = 'ok' AND max_error IS NOT NULL").fetchone()
    worst = db.execute(
        "SELECT path, max_display_error, display_window FROM files WHERE status = 'ok' "
        "AND max_display_error IS NOT NULL ORDER BY max_display_error DESC, path LIMIT 1"
    ).fetchone()
    path, display, window = worst or (None, None, None)
    return LossSummary(int(files), psnr, modality, display, path, window)


def status_counts(db: sqlite3.Connection) -> dict[str, int]:
    return dict(db.execute("SELECT status, COUNT(*) FROM files GROUP BY status"))


def bytes_transcoded(db: sqlite3.Connection) -> tuple[int, int]:
    """Bytes in and out of the files transcoded (status ok)."""
    row = db.execute("SELECT COALESCE(SUM(size_in), 0), COALESCE(SUM(size_out), 0) "
                     "FROM files WHERE status = 'ok'").fetchone()
    return int(row[0]), int(row[1])


def failures(db: sqlite3.Connection, limit: int) -> list[tuple[str, str]]:
    return db.execute("SELECT path, reason FROM files WHERE status = 'failed' ORDER BY path "
                      "LIMIT ?", (limit,)).fetchall()
