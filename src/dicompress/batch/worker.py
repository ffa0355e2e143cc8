"""One file's work, as run in a worker process (or a Dask worker): everything it needs
travels in a `Task`, everything it found comes back in an `Outcome`. No journal here;
the driver keeps that.
"""

from __future__ import annotations

import errno
import os
import resource
import shutil
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from dicompress.batch import journal as J
# codec_config is imported from here by the runner and the gateway
from dicompress.codecs.registry import codec_config, codec_from_config  # noqa: F401
from dicompress.digests import DEFAULT_HASH, file_digest
from dicompress.errors import (AlreadyInTarget, DicompressError, Status, VerificationFailed,
                               status_of, with_context)
from dicompress.fileio import atomic_output
from dicompress.pipeline.read import check_regular
from dicompress.pipeline.result import Loss
from dicompress.transcode import TranscodeResult, transcode_file

if TYPE_CHECKING:
    from dicompress.deid import DeidConfig

_DISK_FULL = (errno.ENOSPC, errno.EDQUOT)
#: The journal reason of a file copied to the output as it is (`report` shows it; resume
#: checks that the copy is still there).
COPIED_UNCHANGED = "copied unchanged"
#: Skips that -o copies to the output, so that it holds the whole study.
COPIED_STATUSES = (Status.ALREADY.value, Status.NOT_IMAGE.value)


@dataclass(frozen=True)
class Task:
    path: str
    destination: str
    codec: str  # the codec's configuration as JSON (get_codec(**config) rebuilds it)
    verify: bool = True
    decode_check: bool = True  # with verify: lossless frames decoded again (TranscodeOptions)
    force: bool = False
    extended_offsets: bool | None = None
    threads: int | None = None  # frames of a multi-frame file in parallel
    codec_threads: int | None = None  # inside the codec, for a single frame
    deid: DeidConfig | None = None  # de-identify too ("" codec: keep the file's syntax)
    hash: str = DEFAULT_HASH  # the journal's content hash (HASHES)
    #: -o: a file already in the target syntax, or without pixel data, is copied to the
    #: output as it is (the output is the complete study); False: skipped (--only-images)
    copy_unchanged: bool = False


@dataclass
class Outcome:
    path: str
    status: str
    reason: str = ""
    size_in: int | None = None
    mtime_in: int | None = None
    hash_in: str | None = None
    size_out: int | None = None
    mtime_out: int | None = None
    hash_out: str | None = None
    syntax_in: str | None = None
    syntax_out: str | None = None
    frames: int | None = None
    seconds: float = 0.0
    lossy: bool = False
    ratio_pixels: float | None = None
    #: A lossy output's loss, as transcode measured it (recorded in the journal).
    loss: Loss | None = None
    #: The file failed because the output's filesystem is full: the run stops.
    disk_full: bool = False
    #: Peak resident memory of the process that did the work, in KiB (ru_maxrss).
    peak_rss_kb: int = 0
    #: The worker died with the file in flight (it may have been finished or not).
    lost: bool = False
    #: A bug of ours stopped the file (not the file's fault): its traceback.
    internal: bool = False
    traceback: str = ""
    #: Skipped by the codec (already in the target syntax, no pixel data) and copied to the
    #: output byte for byte: the journal keeps the status, the reason says "copied unchanged".
    copied: bool = False

    def journal_values(self) -> dict:
        values = {k: getattr(self, k) for k in
                  ("status", "reason", "size_in", "mtime_in", "hash_in", "size_out", "mtime_out",
                   "hash_out", "syntax_in", "syntax_out", "frames", "seconds")}
        if self.lossy and self.loss is not None:
            values.update(self.loss.journal_values())
        return values


def _disk_full(exc: BaseException | None) -> bool:
    """Whether an ENOSPC/EDQUOT is anywhere in the chain of causes of `exc`."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:  # chains can loop
        seen.add(id(exc))
        if isinstance(exc, OSError) and exc.errno in _DISK_FULL:
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def _run(task: Task, path: Path, before_replace) -> TranscodeResult:
    destination = Path(task.destination)
    if task.deid is not None:
        from dicompress.deid import deidentify_file, preparer
    if task.deid is not None and not task.codec:
        return deidentify_file(path, destination, task.deid, verify=task.verify,
                               before_replace=before_replace)
    codec = codec_from_config(task.codec)
    try:
        return transcode_file(
            path, destination, codec, verify=task.verify, decode_check=task.decode_check,
            threads=task.threads, codec_threads=task.codec_threads,
            extended_offsets=task.extended_offsets, skip_same_syntax=not task.force,
            before_replace=before_replace,
            prepare=preparer(task.deid) if task.deid is not None else None, digest=task.hash,
        )
    except AlreadyInTarget:
        if task.deid is None:
            raise
        # already in the target syntax: de-identified, the frames copied as they are
        return deidentify_file(path, destination, task.deid, verify=task.verify, target=codec,
                               before_replace=before_replace)


def stamp(st: os.stat_result) -> tuple[int, ...]:
    """What says a file is the one that was read: which file (device, inode) and its
    last change. The status change time cannot be set back (utime sets it too), so a
    same-size rewrite that restores the modification time (rsync --inplace -t, coarse
    timestamps) still shows."""
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


#: A source that changes while it is being transcoded is read and done again, at most this
#: many times more; then it is left as it is (another program keeps writing it).
CHANGE_RETRIES = 2


class _SourceChanged(DicompressError):
    """The source is not the file that was read any more (checked just before the rename)."""


def run_task(task: Task) -> Outcome:
    """Transcode one file; never raises for a problem with that file."""
    start = time.perf_counter()
    out = Outcome(path=task.path, status=J.FAILED)
    path = Path(task.path)
    try:
        check_regular(path)  # a FIFO is named and skipped, never opened
        for attempt in range(CHANGE_RETRIES + 1):
            # what is read now is what must still be there at the rename
            st = os.stat(path)
            out.size_in, out.mtime_in = st.st_size, st.st_mtime_ns
            out.hash_in = out.hash_out = None
            if task.deid is not None:  # de-identifying writers do not hash: done here
                out.hash_in = file_digest(path, task.hash)

            def before_replace(tmp: Path, st=st) -> None:
                # the last word before the rename: the source must be the file that was read
                try:
                    now = os.stat(path)
                except FileNotFoundError:
                    raise DicompressError(f"{path}: vanished while being transcoded") from None
                if stamp(now) != stamp(st) or (
                        out.hash_in is not None and file_digest(path, task.hash) != out.hash_in):
                    raise _SourceChanged(f"{path}: changed while being transcoded")
                if task.deid is not None:
                    out.hash_out = file_digest(tmp, task.hash)

            try:
                result = _run(task, path, before_replace)
                break
            except _SourceChanged:  # nothing was written: read the new content, and again
                if attempt == CHANGE_RETRIES:
                    raise DicompressError(
                        f"{path}: changed while being transcoded, {CHANGE_RETRIES + 1} times "
                        "(another program keeps writing it); left as it is") from None
        # transcode_file hashes what it read and wrote (the direct path in memory)
        out.hash_in = result.digest_in or out.hash_in
        out.hash_out = result.digest_out or out.hash_out
        done = os.stat(task.destination)
        out.status = J.OK
        out.size_out, out.mtime_out = done.st_size, done.st_mtime_ns
        out.syntax_in, out.syntax_out = result.transfer_syntax_in, result.transfer_syntax_out
        out.frames, out.lossy = result.frames, result.lossy
        out.ratio_pixels, out.loss = result.ratio_pixels, result.loss
    except DicompressError as exc:
        # not DICOM, no pixel data, already in the target: skips; the rest are failures
        out.status, out.reason = status_of(exc).value, str(with_context(exc, path))
        out.disk_full = _disk_full(exc)
        if task.copy_unchanged and out.status in COPIED_STATUSES:
            _copy_unchanged(task, path, st, out)
    except OSError as exc:
        out.reason = f"{path}: {exc.strerror or exc}"
        out.disk_full = _disk_full(exc)
    except Exception as exc:  # a bug of ours: said as one, with its traceback
        out.internal = True
        out.reason = (f"{path}: internal error (a bug in dicompress, please report it): "
                      f"{type(exc).__name__}: {exc}")
        out.traceback = traceback.format_exc()
    if out.status != J.OK and out.hash_in is None:  # skipped or failed: as it is now
        try:
            out.hash_in = file_digest(path, task.hash)
        except OSError:
            pass
    if out.disk_full:
        out.reason = f"{out.reason} (disk full: the run stops, originals are intact)"
    out.seconds = time.perf_counter() - start
    out.peak_rss_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return out


def _copy_unchanged(task: Task, path: Path, st: os.stat_result, out: Outcome) -> None:
    """Copy a skipped file (already in the target syntax, or no pixel data: an SR, a KO,
    a PR) to its destination byte for byte, so that the output folder holds the study's
    every instance. The copy is read back and its digest compared with the original's
    before it takes the destination's name; the original must not have changed
    meanwhile. A failure to copy fails the file (the study would be incomplete)."""
    why = out.reason.removeprefix(f"{path}: ")
    try:
        digest_in = file_digest(path, task.hash)

        def check(tmp: Path) -> None:
            now = os.stat(path)
            if (now.st_size, now.st_mtime_ns) != (st.st_size, st.st_mtime_ns):
                raise DicompressError(f"{path}: changed while being copied; left as it is")
            copied = file_digest(tmp, task.hash)  # read back from the file system
            if copied != digest_in:
                raise VerificationFailed(f"{path}: the copy at {task.destination} reads back "
                                         f"different bytes ({task.hash} {copied} != {digest_in})")
            out.hash_out = copied

        with atomic_output(Path(task.destination), check) as tmp:
            with open(path, "rb") as src, open(tmp, "wb") as dst:
                shutil.copyfileobj(src, dst, 1 << 20)
        done = os.stat(task.destination)
    except (DicompressError, OSError) as exc:
        out.status = Status.FAILED.value
        out.reason = (str(exc) if isinstance(exc, DicompressError)
                      else f"{path}: copying it unchanged to {task.destination}: "
                           f"{exc.strerror or exc}")
        out.disk_full = _disk_full(exc)
        out.hash_out = None
        return
    out.copied = True
    out.hash_in = digest_in
    out.reason = f"{path}: {COPIED_UNCHANGED} ({why})"
    out.size_out, out.mtime_out = done.st_size, done.st_mtime_ns


def run_tasks(tasks: list[Task]) -> list[Outcome]:
    """Several files, one after the other (a worker's unit of work). Once the output's
    filesystem is full the rest are not started: no outcome (their journal rows stay
    pending, for --resume), as the run stops taking files."""
    outcomes = []
    for task in tasks:
        outcomes.append(run_task(task))
        if outcomes[-1].disk_full:
            break
    return outcomes
