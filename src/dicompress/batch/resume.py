"""A run's journal as a run sees it: where it lives, the settings it belongs to, whether
an earlier run finished a file, and the temporaries an interrupted run left."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from dicompress.batch import journal as J
from dicompress.batch.journal import Journal, Row
from dicompress.batch.worker import COPIED_UNCHANGED
from dicompress.digests import DEFAULT_HASH
from dicompress.errors import UsageError
from dicompress.fileio import TEMP_SUFFIX

if TYPE_CHECKING:
    from dicompress.batch.runner import BatchOptions
    from dicompress.codecs import Codec


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


def settings_of_run(options: BatchOptions, codec: Codec | None, hash_name: str) -> dict:
    settings = {"codec": codec.get_config() if codec else {"name": "(kept)"},
                "in_place": options.in_place,
                "output": str(options.output.resolve()) if options.output else None,
                "verify": options.verify, "force": options.force, "hash": hash_name}
    if options.verify and not options.decode_check:  # absent from journals of runs that
        # decoded (and from older ones)
        settings["decode_check"] = False
    if options.only_images:  # absent from journals of runs that copied (and from older ones)
        settings["only_images"] = True
    if options.deid is not None:
        settings["deid"] = {**options.deid.settings(), "rename": options.rename}
    return settings


def open_journal(options: BatchOptions, codec: Codec | None,
                  path: Path) -> tuple[Journal, str]:
    """The journal of this run, checked against an earlier run's settings, and the content
    hash the run records (`--hash`, else the journal's on resume, else the default)."""
    if options.resume and not path.is_file():
        raise UsageError(f"{path}: nothing to resume (no journal of an earlier run)")
    journal = Journal(path)
    try:
        previous = journal.settings()
        if previous is not None:
            previous.setdefault("hash", "sha256")  # journals from before --hash
        hash_name = options.hash or (previous["hash"] if options.resume and previous
                                     else DEFAULT_HASH)
        settings = settings_of_run(options, codec, hash_name)
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
    return journal, hash_name


def finished_earlier(row: Row, in_place: bool, retry_failed: bool) -> bool:
    """Whether `row` (from an earlier run) still describes the file as it is now."""
    if row.status not in J.FINAL or (row.status == J.FAILED and retry_failed):
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
