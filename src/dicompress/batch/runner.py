"""The batch driver: walks the sources, keeps the journal, hands files to workers
(processes on this machine, or a Dask cluster), and reports results as they come.

::

    sources (lazy walk) -> journal: skip done / duplicate -> start row (pending)
        -> pool: run_tasks in a worker (transcode, verify, fsync, atomic rename),
           a few small files to a task (one round trip to the worker for several files)
        -> journal: finish row -> progress, summary

At most a few files per worker are in flight, so memory does not grow with the
archive: the walk is lazy, the journal is on disk, and results are not kept.
"""

from __future__ import annotations

from concurrent.futures.process import BrokenProcessPool
import os
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from dicompress.batch import journal as J
from dicompress.batch.destinations import Destinations, NoDestination
from dicompress.batch.journal import Journal, JournalFull, Row
from dicompress.batch.options import BatchOptions
from dicompress.batch.pools import make_pool, preload
from dicompress.batch.resume import (copies_unchanged, default_journal, finished_earlier,
                                     open_journal, remove_temporaries, remove_temporaries_in,
                                     remove_temporaries_of, replaced_by_interrupted_run)
from dicompress.batch.sources import Source
from dicompress.batch.summary import Summary
from dicompress.batch.worker import Outcome, Task, codec_config
from dicompress.codecs import Codec, get_codec
from dicompress.digests import DEFAULT_HASH, HASHES, file_digest
from dicompress.errors import UsageError


#: A task carries several files while they are small: at most this many, and no more bytes
#: than CHUNK_BYTES together (a single larger file goes alone). Per task the driver pays a
#: round trip to the worker (pickling, pipes, a thread hop and the GIL handed back and
#: forth): on 2 cores that CPU is taken from the workers, so tasks are made long enough
#: for it not to matter (BENCHMARKS.md, "Scaling from --jobs 1 to --jobs 2"). A worker
#: that dies takes its task's files with it: each is then tried again alone (see
#: _retry_alone), so a file that kills its worker costs that file only.
CHUNK_FILES, CHUNK_BYTES = 16, 8 << 20
#: ... and as many as take a worker about TASK_SECONDS by the mean so far (RLE's 3 ms
#: slices go 16 at a time, J2K's 40 ms one by one): at the end of a run a worker idles at
#: most that long while another finishes its last task.
TASK_SECONDS = 0.05


# -- the driver -----------------------------------------------------------------------------
def _lost(task: Task, why: str) -> Outcome:
    """A file whose worker died. It may have been finished (replaced, in place) before the
    death: the journal keeps it pending, so that --resume looks at it again (and records
    it done when it was), while this run counts it failed."""
    return Outcome(path=task.path, status=J.FAILED, lost=True, reason=(
        f"{task.path}: {why} (--resume takes it again)"))


def _death(pool) -> str:
    """How the worker that broke `pool` ended ("SIGABRT", "exit code 1"), where it says."""
    return pool.death() if hasattr(pool, "death") else "killed"


class BatchRun:
    """One run of `transcode` over `sources`; `on_result(outcome, summary)` sees each file."""

    def __init__(self, sources: Iterable[Source], options: BatchOptions, *,
                 journal_hint: Path | None = None,
                 on_result: Callable[[Outcome, Summary], None] | None = None,
                 on_ready: Callable[[], None] | None = None) -> None:
        """`on_ready()` runs once the workers are up: start threads (progress) there."""
        if options.in_place == (options.output is not None):
            raise UsageError("give either an output folder (-o) or --in-place")
        if options.hash is not None and options.hash not in HASHES:
            raise UsageError(f"--hash {options.hash}: one of {', '.join(HASHES)}")
        if options.rename and (options.deid is None or options.in_place):
            raise UsageError("--rename names de-identified outputs in an output folder (-o)")
        self.options = options
        if options.target is None and options.deid is None:
            raise UsageError("give a target syntax, or de-identification")
        self.codec = (options.target if isinstance(options.target, Codec) or options.target is None
                      else get_codec(options.target))
        self.sources = sources
        self.journal_path = options.journal or default_journal(options, journal_hint)
        self.on_result = on_result or (lambda outcome, summary: None)
        self.on_ready = on_ready or (lambda: None)
        self.summary = Summary(journal=str(self.journal_path))
        self._cleaned: set[Path] = set()
        self._roots: dict[Path, Path] = {}  # a source root -> its real path
        self._worked, self._work_seconds = 0, 0.0  # files done by workers, and their time
        self.hash = options.hash or DEFAULT_HASH  # the journal's on resume: set by run()
        self._destinations = Destinations(options)
        self.pool = None
        self._retrying = None  # the future of a file tried again alone (_retry_alone)
        self._copy_unchanged = copies_unchanged(options)  # -o holds the complete study
        self._recopy = False  # an earlier run's uncopied skips are copied now (resume)

    def run(self) -> Summary:
        options, summary = self.options, self.summary
        start = time.perf_counter()
        preload(options, self.codec)  # imported once, before the workers fork
        self.pool = make_pool(options)  # first: workers fork before journal and threads exist
        in_flight: dict = {}
        try:
            journal, self.hash, self._recopy = open_journal(options, self.codec,
                                                             self.journal_path)
        except BaseException:
            self.pool.close(cancel=True)
            raise
        try:
            self.on_ready()
            if options.resume and options.output is not None:
                remove_temporaries(options.output)
            config = codec_config(self.codec) if self.codec else ""
            threads = options.threads or os.cpu_count() or 1
            codec_threads = max(1, (os.cpu_count() or 1) // self.pool.size)
            chunk: list[Task] = []
            chunk_bytes = 0
            # In place, a de-identification or a lossy transcode must never be done twice
            # to one file; a file a dead worker had finished is recognised as replaced
            # (_retry_alone), and their files still go one per task, so that only the file
            # being written is at stake when a worker dies.
            chunking = self.pool.chunk and not self._once_only
            for source in self.sources:
                while len(in_flight) >= self.pool.window:
                    self._collect(journal, in_flight)
                if summary.stopped:
                    break
                admitted = self._admit(journal, source, config, threads, codec_threads)
                if admitted is None:
                    continue
                task, size = admitted
                if chunk and chunk_bytes + size > CHUNK_BYTES:
                    self._send(chunk, journal, in_flight)
                    chunk, chunk_bytes = [], 0
                chunk.append(task)
                chunk_bytes += size
                # While workers are idle (the start), files go out one by one.
                if (not chunking or len(chunk) >= self._files_per_task()
                        or len(in_flight) < self.pool.size):
                    self._send(chunk, journal, in_flight)
                    chunk, chunk_bytes = [], 0
            if chunk:
                self._send(chunk, journal, in_flight)
            while in_flight:
                self._collect(journal, in_flight)
            journal.commit()
        except KeyboardInterrupt:
            summary.interrupted = True
        except JournalFull as exc:
            summary.stopped = str(exc)
        finally:
            self.pool.close(cancel=bool(in_flight) or self._retrying is not None)
            journal.close()
            summary.seconds = time.perf_counter() - start
        return summary

    @property
    def _once_only(self) -> bool:
        """In place, a de-identification or a lossy transcode must never be done twice to
        one file (the original is gone once it is replaced)."""
        options = self.options
        return options.in_place and (
            options.deid is not None or (self.codec is not None and not self.codec.lossless))

    def _files_per_task(self) -> int:
        """As many files as take a worker about TASK_SECONDS (1 until some are done)."""
        if not self._worked:
            return 1
        mean = self._work_seconds / self._worked
        return max(1, min(CHUNK_FILES, int(TASK_SECONDS / max(mean, 1e-6))))

    def _send(self, tasks: list[Task], journal: Journal, in_flight: dict) -> None:
        """Hand `tasks` to a worker once there is room; their files are pending on disk
        (committed) before any worker may touch them."""
        while len(in_flight) >= self.pool.window:
            self._collect(journal, in_flight)
        journal.commit()
        if self.summary.stopped:  # admitted, then the run stopped: pending, for --resume
            return
        try:
            future = self.pool.submit(tasks)
        except BrokenProcessPool:
            self._rebuild_pool(journal, in_flight, [])
            if self.summary.stopped:  # a retry found the disk full: pending, for --resume
                return
            future = self.pool.submit(tasks)
        in_flight[future] = tasks

    def _rebuild_pool(self, journal: Journal, in_flight: dict, lost: list[Task]) -> None:
        """A worker died (killed, out of memory, a native abort): the pool is unusable and
        every task still in flight went down with it. Settle each (its future holds the
        pool's error, or the result if it finished first), start another pool once every
        old worker has exited, and try the lost files again one by one."""
        for future, tasks in list(in_flight.items()):
            try:
                outcomes = future.result(timeout=60)
            except Exception:  # BrokenProcessPool, or cancelled / lost with the pool
                outcomes = []
                lost.extend(tasks)
            del in_flight[future]
            for outcome in outcomes:
                self._finish(journal, outcome)
        how = _death(self.pool)
        self.pool.close()  # joins the old workers: none of them writes any more
        self.pool = make_pool(self.options, fork=False)
        self._retry_alone(journal, lost, f"a worker process died ({how})", joined=True)

    def _retry_alone(self, journal: Journal, lost: list[Task], why: str, *,
                     joined: bool) -> None:
        """The files a dead worker took with it, each tried again alone with nothing else
        in flight: a file that kills its worker again is the one that does (failed, and
        kept pending for --resume); the others are done as if nothing had happened.
        What the dead worker was writing is removed first (its temporaries). In place, a
        file the dead worker had already replaced (the rename is atomic and comes after
        verification) is recorded done, not done again: nothing is de-identified or
        lossy-coded twice. Once the run has stopped (disk full) the files stay pending,
        and --resume looks at each.

        `joined`: the old workers are known to have exited (a local pool, closed). A
        Dask worker the scheduler gave up on may still be running somewhere: then its
        temporaries are left (--resume removes them), and in place a de-identification or
        a lossy transcode is not tried again (it could be finished by that worker after
        the check): pending, for --resume."""
        for task in lost:
            if joined:
                remove_temporaries_of(task.destination)
            if self.summary.stopped or (self._once_only and not joined):
                self._finish(journal, _lost(task, f"{why} while this file was in flight"))
                continue
            if self.options.in_place and self._replaced_before_death(journal, task.path):
                continue
            # kept while it runs: a Ctrl-C meanwhile cancels it (run's finally)
            self._retrying = future = self.pool.submit([task])
            try:
                outcomes = future.result()
            except BrokenProcessPool:  # (how the second one ended is told less reliably
                # by a forkserver's worker: the first death's words are kept)
                remove_temporaries_of(task.destination)  # its pool is broken: all gone
                self.pool.close()
                self.pool = make_pool(self.options, fork=False)
                outcomes = [_lost(task, f"{why}, and again with this file alone (a decoder "
                                        "crashed on its data, or the process was killed or "
                                        "ran out of memory)")]
            except Exception as exc:  # e.g. a Dask worker lost again (KilledWorker)
                outcomes = [_lost(task, f"{why}, and again with this file alone "
                                        f"({type(exc).__name__}: {exc})")]
            self._retrying = None
            for outcome in outcomes:
                self._finish(journal, outcome)

    # -- one source in ----------------------------------------------------------------
    def _admit(self, journal: Journal, source: Source, config: str, threads: int,
               codec_threads: int) -> tuple[Task, int] | None:
        options, summary = self.options, self.summary
        try:
            real = source.path.resolve()
            st = os.stat(real)
        except OSError as exc:
            outcome = Outcome(path=str(source.path), status=J.FAILED,
                              reason=f"{source.path}: {exc.strerror or exc}")
            return self._refuse(journal, str(source.path.absolute()), outcome)
        if (options.in_place and not options.follow_links and source.root is not None
                and not real.is_relative_to(self._real_root(source.root))):
            outcome = Outcome(path=str(source.path), status=J.FAILED, reason=(
                f"{source.path}: a link to {real}, outside {source.root}: not rewritten in "
                "place (--follow-links to rewrite what links point to)"))
            return self._refuse(journal, str(source.path.absolute()), outcome)
        if options.in_place and options.resume:
            self._clean_beside(real)  # temporaries sit beside the real file, not a link
        key = str(real)
        row = journal.get(key)
        if row is not None:
            if row.run == journal.run:
                summary.duplicates += 1  # named twice, or reached through a symlink
                return None
            if options.resume and finished_earlier(row, options.in_place, options.retry_failed,
                                                   self._recopy):
                summary.done_before += 1
                return None
            if options.in_place and self._replaced_by_interrupted_run(journal, key, st, row):
                return None
        try:
            destination = self._destinations.of(source, real, st, journal)
        except NoDestination as exc:
            return self._refuse(journal, key, Outcome(path=key, status=exc.status,
                                                      reason=exc.reason))
        if destination is None:
            summary.own_outputs += 1
            return None
        journal.start(key, destination, st.st_size, st.st_mtime_ns)
        return Task(path=key, destination=destination, codec=config, verify=options.verify,
                    decode_check=options.decode_check,
                    force=options.force, extended_offsets=options.extended_offsets,
                    threads=threads, codec_threads=codec_threads,
                    deid=options.deid, hash=self.hash,
                    copy_unchanged=self._copy_unchanged), st.st_size

    def _refuse(self, journal: Journal, key: str, outcome: Outcome) -> None:
        """A source not handed to a worker: recorded with its reason, and counted."""
        journal.record(key, **outcome.journal_values())
        self._count(outcome)

    def _real_root(self, root: Path) -> Path:
        real = self._roots.get(root)
        if real is None:
            real = self._roots[root] = root.resolve()
        return real

    def _replaced_before_death(self, journal: Journal, key: str) -> bool:
        """In place: whether the dead worker had replaced `key` already (recorded done)."""
        row = journal.get(key)
        try:
            st = os.stat(key)
        except OSError:
            return False
        return row is not None and self._replaced_by_interrupted_run(
            journal, key, st, row, reason="completed before its worker process died")

    def _replaced_by_interrupted_run(self, journal: Journal, key: str, st: os.stat_result,
                                     row: Row, *,
                                     reason: str = "completed by the interrupted run") -> bool:
        """In place: a file an earlier run of this journal took that is now that run's
        output (`resume.replaced_by_interrupted_run`): recorded done. Checked here, not in
        a worker, so that --force does not encode it twice."""
        syntax = replaced_by_interrupted_run(key, st, row, self.codec, self.options.deid)
        if syntax is None:
            return False
        outcome = Outcome(path=key, status=J.OK, reason=reason,
                          size_in=row.size_in, mtime_in=row.mtime_in, hash_in=row.hash_in,
                          size_out=st.st_size, mtime_out=st.st_mtime_ns,
                          hash_out=file_digest(key, self.hash), syntax_in=row.syntax_in,
                          syntax_out=syntax)
        journal.record(key, **outcome.journal_values())
        self._count(outcome)
        return True

    def _clean_beside(self, path: Path) -> None:
        """In place, on resume: temporaries of the interrupted run sit beside the inputs.

        Each folder is cleaned once, when its first file is admitted: before any
        worker of this run writes there (the walk visits a folder's files together).
        """
        folder = path.parent
        if folder in self._cleaned:
            return
        self._cleaned.add(folder)
        try:
            remove_temporaries_in(folder, os.listdir(folder))
        except OSError:
            pass

    # -- results out ------------------------------------------------------------------
    def _collect(self, journal: Journal, in_flight: dict) -> None:
        lost: list[Task] = []
        for future in self.pool.wait(in_flight):
            tasks = in_flight.pop(future)
            try:
                outcomes = future.result()
            except BrokenProcessPool:  # a worker died (killed, out of memory, an abort)
                lost.extend(tasks)
                continue
            except Exception as exc:  # e.g. a Dask worker lost (KilledWorker)
                if hasattr(self.pool, "death"):  # a local pool: rebuilt, as for a death
                    lost.extend(tasks)
                    continue
                self._retry_alone(journal, tasks,
                                  f"the worker stopped ({type(exc).__name__}: {exc})",
                                  joined=False)
                continue
            for outcome in outcomes:
                self._finish(journal, outcome)
        if lost:
            self._rebuild_pool(journal, in_flight, lost)

    def _finish(self, journal: Journal, outcome: Outcome) -> None:
        values = outcome.journal_values()
        if outcome.lost:  # the row keeps the size and mtime start recorded: resume compares
            values = {"status": J.PENDING, "reason": outcome.reason}
        if outcome.disk_full:
            values["status"] = J.PENDING  # not this file's fault: --resume takes it again
        if outcome.disk_full and not self.summary.stopped:
            self.summary.stopped = "the output's filesystem is full"
        journal.finish(outcome.path, **values)
        if outcome.status == J.OK:  # what a worker took, for the size of tasks
            self._worked += 1
            self._work_seconds += outcome.seconds
        self._count(outcome)

    def _count(self, outcome: Outcome) -> None:
        summary = self.summary
        summary.counts[outcome.status] += 1
        if outcome.copied:
            summary.copied[outcome.status] += 1
        summary.peak_worker_rss_kb = max(summary.peak_worker_rss_kb, outcome.peak_rss_kb)
        if outcome.status == J.OK:
            summary.bytes_in += outcome.size_in or 0
            summary.bytes_out += outcome.size_out or 0
        elif outcome.status == J.FAILED and len(summary.failures) < 1000:
            summary.failures.append((outcome.path, outcome.reason))
        if outcome.internal:
            summary.internal_errors += 1
            sys.stderr.write(f"dicompress: internal error on {outcome.path}:\n{outcome.traceback}")
        self.on_result(outcome, summary)
