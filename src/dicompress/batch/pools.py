"""Where a batch's tasks run: in this process (``--jobs 1``), a pool of worker processes,
or a Dask cluster. Each has the same small surface: `submit(tasks)`, `wait(futures)`,
`close(cancel)`, and its `size` (workers) and `window` (tasks in flight at most)."""

from __future__ import annotations

import concurrent.futures as cf
import multiprocessing
import os
from typing import TYPE_CHECKING

from dicompress import direct
from dicompress.batch.worker import RUN_PID, Task, init_worker, run_tasks
from dicompress.errors import UsageError

if TYPE_CHECKING:
    from dicompress.batch.runner import BatchOptions
    from dicompress.codecs import Codec


class InlinePool:
    """``--jobs 1``: the work runs in this process, one file at a time."""

    size = window = 1
    chunk = False  # one file at a time: each is journalled done before the next starts

    def submit(self, tasks: list[Task]) -> cf.Future:
        future: cf.Future = cf.Future()
        future.set_result(run_tasks(tasks))
        return future

    def wait(self, futures):
        return set(futures)

    def close(self, cancel: bool = False) -> None:
        pass


class ProcessPool:
    chunk = True

    def __init__(self, jobs: int, *, fork: bool = True) -> None:
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
            # the forkserver dies with this process, and its workers with it
            context.set_forkserver_preload(["dicompress.batch.worker",
                                            "dicompress.batch._forkserver"])
        self.pool = cf.ProcessPoolExecutor(jobs, mp_context=context, initializer=init_worker)
        for started in [self.pool.submit(os.getpid) for _ in range(jobs)]:
            started.result()

    def submit(self, tasks: list[Task]):
        return self.pool.submit(run_tasks, tasks)

    def wait(self, futures):
        done, _ = cf.wait(futures, timeout=1.0, return_when=cf.FIRST_COMPLETED)
        # a future cancelled by a pool shut down is never "completed": count it done
        return done | {f for f in futures if f.cancelled()}

    def close(self, cancel: bool = False) -> None:
        self.pool.shutdown(wait=not cancel, cancel_futures=cancel)


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
            # tries): its files are recorded lost (pending) and --resume looks at them, so a
            # file replaced in place just before the death is not de-identified twice.
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


def preload(options: BatchOptions, codec: Codec | None) -> None:
    """Import what the workers will need before they fork, so that it is imported once:
    pydicom (0.25 s) and the de-identification unless every file may take the direct
    path (a lossless encapsulated target). Otherwise a worker imports pydicom itself, the
    first time a file needs the general path."""
    if options.deid is not None:
        import dicompress.deid.deidentify  # noqa: F401
        import dicompress.deid.files  # noqa: F401
    if options.deid is not None or not direct.may_take(codec) or options.extended_offsets:
        import pydicom  # noqa: F401


def make_pool(options: BatchOptions, *, fork: bool = True):
    jobs = options.jobs or os.cpu_count() or 1
    if options.scheduler:
        return DaskPool(options.scheduler, jobs)
    return InlinePool() if jobs == 1 else ProcessPool(jobs, fork=fork)
