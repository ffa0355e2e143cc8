"""A run's journal as a run sees it: where it lives, the settings it belongs to, whether
an earlier run finished a file, and what an interrupted run or a dead worker left (its
temporaries; in place, a file it had already replaced by its verified output)."""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from dicompress.batch import journal as J
from dicompress.batch.journal import Journal, Row
from dicompress.batch.worker import COPIED_STATUSES, COPIED_UNCHANGED
from dicompress.digests import DEFAULT_HASH
from dicompress.errors import DicompressError, UsageError
from dicompress.fileio import TEMP_SUFFIX

if TYPE_CHECKING:
    from dicompress.batch.options import BatchOptions
    from dicompress.codecs import Codec
    from dicompress.deid import DeidConfig


def default_journal(options: BatchOptions, first_source: Path | None) -> Path:
    """Beside the output: in the output folder, or (in place) in the first source's folder."""
    if options.output is not None:
        if options.deid is not None:  # not inside what leaves the hospital: it names originals
            out = options.output.absolute()
            return out.parent / f".{out.name}{J.JOURNAL_NAME}"
        return options.output / J.JOURNAL_NAME
    if first_source is None:
        raise UsageError("in place without a source folder: give --journal")
    base = first_source
    while not base.is_dir() and base != base.parent:  # a file, or a glob pattern
        base = base.parent
    if options.deid is not None:  # not inside the tree being de-identified: it names originals
        base = base.absolute()
        return base.parent / f".{base.name}{J.JOURNAL_NAME}"
    return base / J.JOURNAL_NAME


def copies_unchanged(options: BatchOptions) -> bool:
    """Whether the run copies the files it does not code (already in the target syntax,
    no pixel data) into -o, so that -o holds the complete study: never with
    de-identification (a copy would carry the identifiers out), never in place (the
    original is already where it belongs), not with --only-images."""
    return options.output is not None and not options.only_images and options.deid is None


def settings_of_run(options: BatchOptions, codec: Codec | None, hash_name: str) -> dict:
    settings = {"codec": codec.get_config() if codec else {"name": "(kept)"},
                "in_place": options.in_place,
                "output": str(options.output.resolve()) if options.output else None,
                "verify": options.verify, "force": options.force, "hash": hash_name,
                "copy_unchanged": copies_unchanged(options)}
    if options.verify and not options.decode_check:  # absent from journals of runs that
        # decoded (and from older ones)
        settings["decode_check"] = False
    if options.deid is not None:
        settings["deid"] = {**options.deid.settings(), "rename": options.rename}
    return settings


def _as_recorded(previous: dict, settings: dict) -> tuple[dict, bool]:
    """An earlier run's settings in today's terms, and whether its skipped files must be
    looked at again to be copied.

    Journals before ``copy_unchanged`` was recorded come in two kinds that their settings
    cannot tell apart: runs of a version that never copied, and runs that copied unless
    ``only_images`` was set. A resume that copies takes such a journal as its own and looks
    again at every skip the journal holds without a copy (its reason does not say
    "copied unchanged"), so that -o ends complete; a resume with --only-images takes it as
    it is. A journal whose run had ``only_images`` set did not copy: a resume that would
    copy has other settings.
    """
    previous = dict(previous)
    previous.setdefault("hash", "sha256")  # journals from before --hash
    if "copy_unchanged" in previous:
        return previous, False
    if previous.pop("only_images", False):
        previous["copy_unchanged"] = False
        return previous, False
    previous["copy_unchanged"] = settings["copy_unchanged"]
    return previous, settings["copy_unchanged"]


def open_journal(options: BatchOptions, codec: Codec | None,
                  path: Path) -> tuple[Journal, str, bool]:
    """The journal of this run, checked against an earlier run's settings; the content
    hash the run records (`--hash`, else the journal's on resume, else the default); and
    whether the skips of an earlier run that did not record its copies are to be copied
    now (`_as_recorded`)."""
    if options.resume and not path.is_file():
        raise UsageError(f"{path}: nothing to resume (no journal of an earlier run)")
    journal = Journal(path)
    recopy = False
    try:
        previous = journal.settings()
        hash_name = options.hash or ((previous or {}).get("hash", "sha256")
                                     if options.resume and previous else DEFAULT_HASH)
        settings = settings_of_run(options, codec, hash_name)
        if previous is not None:
            previous, recopy = _as_recorded(previous, settings)
        if options.resume:
            if previous is None:
                raise UsageError(f"{path}: nothing to resume (no journal of an earlier run)")
            if previous != settings:
                differ = ", ".join(k for k in sorted(set(previous) | set(settings))
                                   if previous.get(k) != settings.get(k))
                raise UsageError(f"{path}: the journal belongs to a run with other settings "
                                 f"({differ} differ: it ran {previous['codec']['name']}, "
                                 f"{'in place' if previous['in_place'] else previous['output']}, "
                                 f"hash {previous['hash']}); give the same target, options, "
                                 "output and hash, or another --journal")
        elif previous is not None and not journal.is_empty():
            raise UsageError(f"{path}: a journal of an earlier run is here; add --resume to "
                             "continue it, or give another --journal")
        journal.set_settings(settings)
        journal.begin_run()
    except BaseException:
        journal.close()
        raise
    return journal, hash_name, recopy and options.resume


def finished_earlier(row: Row, in_place: bool, retry_failed: bool,
                     recopy: bool = False) -> bool:
    """Whether `row` (from an earlier run) still describes the file as it is now; with
    `recopy`, a skip that was not copied to the output is not finished (open_journal)."""
    if row.status not in J.FINAL or (row.status == J.FAILED and retry_failed):
        return False
    if recopy and row.status in COPIED_STATUSES and COPIED_UNCHANGED not in (row.reason or ""):
        return False
    try:
        st = os.stat(row.path)
    except OSError:
        return row.status == J.FAILED  # still missing: still failed
    if row.status == J.OK and in_place:
        return (st.st_size, st.st_mtime_ns) == (row.size_out, row.mtime_out)
    if (st.st_size, st.st_mtime_ns) != (row.size_in, row.mtime_in):
        return False
    # a transcoded file, or a skip copied unchanged to the output (worker.COPIED_UNCHANGED):
    # done while its output is still there
    wrote = row.status == J.OK or (not in_place and COPIED_UNCHANGED in (row.reason or ""))
    return not wrote or (row.destination is not None and os.path.exists(row.destination))


def remove_temporaries_in(folder: str | Path, names: Iterable[str]) -> int:
    removed = 0
    for name in names:
        if name.endswith(TEMP_SUFFIX):
            try:
                os.unlink(os.path.join(folder, name))
                removed += 1
            except OSError:
                pass
    return removed


def remove_temporaries(root: Path) -> int:
    """Delete the temporaries of interrupted atomic writes under `root` (used on resume)."""
    return sum(remove_temporaries_in(dirpath, filenames)
               for dirpath, _, filenames in os.walk(root))


def remove_temporaries_of(destination: str) -> None:
    """Remove what a dead worker left half-written for `destination` (fileio's names)."""
    folder, name = os.path.split(destination)
    mine = re.compile(rf"\.{re.escape(name)}\.[a-z0-9_]{{8}}{re.escape(TEMP_SUFFIX)}")
    try:
        names = [n for n in os.listdir(folder or ".") if mine.fullmatch(n)]
    except OSError:
        return
    remove_temporaries_in(folder, names)


def replaced_by_interrupted_run(key: str, st: os.stat_result, row: Row, codec: Codec | None,
                                deid: DeidConfig | None) -> str | None:
    """In place: whether a file an earlier run of this journal took (`row`: pending, or
    failed when its worker died) that has changed since (`st`) is now in the target
    syntax, that is replaced by that run (the rename is atomic and comes after
    verification): the syntax it is in, or None. A de-identified file must be marked as
    ours too (a vendor's own "YES" is not enough)."""
    from dicompress.layout import FrameLayout
    from dicompress.pipeline.read import read_header

    if row.status not in (J.PENDING, J.FAILED) or (st.st_size, st.st_mtime_ns) == (
            row.size_in, row.mtime_in):
        return None
    if deid is not None and row.status != J.PENDING:
        return None  # a de-identification that failed (refused) did not replace it
    try:
        ds = read_header(Path(key), any_object=deid is not None)
        syntax = str(ds.file_meta.get("TransferSyntaxUID", ""))
        if codec and syntax != codec.transfer_syntax_for(FrameLayout.from_dataset(ds)):
            return None
        if deid is not None:
            method = ds.get("DeidentificationMethod") or []
            from pydicom.multival import MultiValue

            from dicompress.deid import Profile

            method = [str(v) for v in method] if isinstance(method, MultiValue) else [str(method)]
            if (ds.get("PatientIdentityRemoved") != "YES"
                    or method != Profile(deid.options).method()):
                return None  # not marked as ours (a vendor's own "YES" is not enough)
    except DicompressError:
        return None
    return syntax
