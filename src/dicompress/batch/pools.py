"""Where work that may crash runs: worker processes that are replaced when one dies.

A native decoder (GDCM, OpenJPEG, libjxl, CharLS ...) may abort the process on a
codestream the header and codestream checks cannot foresee; run in a worker, the abort
costs the file it was decoding, never the run. Two shapes of the same pool:

- `ProcessPool` (or `DaskPool`): a batch's tasks (`transcode`, `deid`, ``--jobs 1``
  included). Each has the same small surface: `submit(tasks)`, `wait(futures)`,
  `close(cancel)`, and its `size` (workers) and `window` (tasks in flight at most).
- `Isolated`: one worker that runs one call at a time for a command that otherwise works
  in its own process (`export`, `compare`, `plan` decode their frames there); a death
  raises `WorkerDied` naming the signal, and the next call gets a new worker.
"""

from __future__ import annotations

import atexit
import concurrent.futures as cf
import functools
import multiprocessing
import os
import signal
import threading
from concurrent.futures.process import BrokenProcessPool
from typing import TYPE_CHECKING

from dicompress.batch.processes import RUN_PID, init_worker
from dicompress.errors import UsageError, WorkerDied

if TYPE_CHECKING:
    from dicompress.batch.options import BatchOptions
    from dicompress.batch.worker import Task
    from dicompress.codecs import Codec


class ProcessPool:
    """`jobs` worker processes, each set up by `initializer(*initargs)` (default: the
    batch's `init_worker`)."""

    chunk = True

    def __init__(self, jobs: int, *, fork: bool = True, initializer=init_worker,
                 initargs: tuple = ()) -> None:
        self.size, self.window = jobs, 2 * jobs
        # fork: workers start at once with everything imported (a forkserver would
        # import it all again: 0.3 s per run). They are launched here, before the
        # driver opens its journal or starts any thread (progress), because fork
        # copies only the calling thread and a lock another thread held would stay
        # locked in the children. Where fork is not available, forkserver.
        # A pool rebuilt after a worker died uses forkserver: threads exist by then.
        os.environ[RUN_PID] = str(os.getpid())  # workers and forkserver end with the run
        if fork and "fork" in multiprocessing.get_all_start_methods():
            context = multiprocessing.get_context("fork")
        else:
            context = multiprocessing.get_context("forkserver")
            _end_forkserver_at_exit()
            # the forkserver dies with this process, and its workers with it
            context.set_forkserver_preload(["dicompress.batch.worker",
                                            "dicompress.batch._forkserver"])
        # A worker killed while the pool starts (a test, the OOM killer) breaks it: one
        # more start, then the run says so (not a bug of ours: exit 1, not 70).
        for attempt in (1, 2):
            self.pool = cf.ProcessPoolExecutor(jobs, mp_context=context,
                                               initializer=initializer, initargs=initargs)
            try:
                for started in [self.pool.submit(os.getpid) for _ in range(jobs)]:
                    started.result()
                break
            except BrokenProcessPool:
                self.pool.shutdown(wait=True, cancel_futures=True)
                if attempt == 2:
                    raise WorkerDied("the worker processes died while starting (killed, or "
                                     "out of memory)") from None
        # the executor's own table of its processes: after a death, it tells how it ended
        self._workers = getattr(self.pool, "_processes", {})

    def submit(self, tasks: list[Task]):
        from dicompress.batch.worker import run_tasks  # a batch's pool: imported already

        return self.pool.submit(run_tasks, tasks)

    def call(self, fn, *args) -> cf.Future:
        """`fn(*args)` in a worker (`fn` importable by name, its arguments picklable)."""
        return self.pool.submit(fn, *args)

    def death(self) -> str:
        """How the worker that broke the pool ended, in words ("SIGABRT", "exit code 1");
        the others are terminated by the pool after it (SIGTERM)."""
        for process in list(self._workers.values()):
            process.join(timeout=2)  # the pool's thread may be reaping it right now
            code = process.exitcode
            if code is None or code == -signal.SIGTERM:
                continue
            if code < 0:
                try:
                    return signal.Signals(-code).name
                except ValueError:
                    return f"signal {-code}"
            return f"exit code {code}"
        return "killed"

    def wait(self, futures):
        done, _ = cf.wait(futures, timeout=1.0, return_when=cf.FIRST_COMPLETED)
        # a future cancelled by a pool shut down is never "completed": count it done
        return done | {f for f in futures if f.cancelled()}

    def close(self, cancel: bool = False, wait: bool | None = None) -> None:
        """Stop the workers once their work is done; with `cancel`, drop what they have
        not started, and do not wait for them unless `wait`. (A command about to exit
        waits: CPython 3.11 wakes the pool's thread at exit without its lock, and a pool
        still closing then fails with EBADF.)"""
        self.pool.shutdown(wait=not cancel if wait is None else wait, cancel_futures=cancel)


class DaskPool:
    """A dask.distributed cluster: ``local`` (a LocalCluster here) or a scheduler address.

    Workers must see the same paths (shared storage) and have dicompress installed.
    """

    chunk = True

    def __init__(self, scheduler: str, jobs: int) -> None:
        try:
            from distributed import Client, LocalCluster
        except ImportError:  # pragma: no cover - optional dependency
            raise UsageError("--scheduler needs dask.distributed: pip install 'dicompress[cluster]'") \
                from None
        self.cluster = None
        if scheduler == "local":
            # A task whose worker dies is not run again elsewhere (Dask's default is 3
            # tries): the driver decides (runner._retry_alone: tried again alone, or, in
            # place when de-identifying or lossy, pending for --resume), so a file replaced
            # in place just before the death is not de-identified twice.
            import dask

            dask.config.set({"distributed.scheduler.allowed-failures": 0})
            self.cluster = LocalCluster(n_workers=jobs, threads_per_worker=1, processes=True,
                                        dashboard_address=None)
            self.client = Client(self.cluster)
        else:
            self.client = Client(scheduler)
        self.client.run(init_worker, False)  # shared workers keep their own allocator
        self.size = max(1, sum(w.get("nthreads", 1) for w in
                               self.client.scheduler_info()["workers"].values()))
        self.window = 2 * self.size

    def submit(self, tasks: list[Task]):
        from dicompress.batch.worker import run_tasks

        return self.client.submit(run_tasks, tasks, pure=False)

    def wait(self, futures):
        from distributed import wait

        try:
            done, _ = wait(list(futures), timeout=1.0, return_when="FIRST_COMPLETED")
        except TimeoutError:
            return set()
        return done

    def close(self, cancel: bool = False) -> None:
        self.client.close()
        if self.cluster is not None:
            self.cluster.close()


@functools.cache  # once a run
def _end_forkserver_at_exit() -> None:
    """Once a forkserver pool is used, end the forkserver and the resource tracker it
    started before this process exits, and wait for them: left to themselves they end
    only after it (each when its pipe closes), and a caller that waits for the command
    would see them still running. (`_stop` is what CPython's own tests use.)"""

    def end() -> None:
        from multiprocessing import forkserver, resource_tracker

        for helper in (forkserver._forkserver, resource_tracker._resource_tracker):
            try:
                helper._stop()
            except Exception:  # pragma: no cover - not running, or another Python
                pass

    atexit.register(end)


class Isolated:
    """One replaceable worker process for the calls that may abort the process (a native
    decoder on a hostile file): `call(fn, *args)` returns what `fn` returns, raises what
    it raises, or raises `WorkerDied` when the worker died; the next call starts another.

    Forked while this process has no other thread (everything imported is inherited);
    otherwise, and after a death, from the forkserver, as the batch's rebuilt pools are
    (fork copies only the calling thread, and a lock another thread held would stay
    locked in the child).
    """

    def __init__(self) -> None:
        self.pool: ProcessPool | None = None
        self.deaths = 0

    def start(self) -> Isolated:
        if self.pool is None:
            self.pool = ProcessPool(1, fork=self.deaths == 0 and threading.active_count() == 1)
        return self

    def call(self, fn, *args):
        pool = self.start().pool
        try:
            return pool.call(fn, *args).result()
        except BrokenProcessPool:
            how = pool.death()
            self.deaths += 1
            self.close()
            raise WorkerDied(f"the process decoding it died ({how}): a decoder crashed on "
                             "this file's data, or the process was killed") from None

    def close(self) -> None:
        if self.pool is not None:
            self.pool.close(cancel=True, wait=True)
            self.pool = None

    def __reduce__(self):  # sent to another process: a worker of its own there
        return (Isolated, ())

    def __enter__(self) -> Isolated:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


def preload(options: BatchOptions, codec: Codec | None) -> None:
    """Import what the workers will need before they fork, so that it is imported once:
    pydicom (0.25 s) and the de-identification unless every file may take the direct
    path (a lossless encapsulated target). Otherwise a worker imports pydicom itself, the
    first time a file needs the general path."""
    from dicompress import direct

    if options.deid is not None:
        import dicompress.deid.deidentify  # noqa: F401
        import dicompress.deid.files  # noqa: F401
    if options.deid is not None or not direct.may_take(codec) or options.extended_offsets:
        import pydicom  # noqa: F401


def make_pool(options: BatchOptions, *, fork: bool = True):
    jobs = options.jobs or os.cpu_count() or 1
    if options.scheduler:
        return DaskPool(options.scheduler, jobs)
    # --jobs 1 too: one worker, so that a decoder's abort costs a file, not the run
    return ProcessPool(jobs, fork=fork)
