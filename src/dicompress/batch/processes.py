"""A worker process's set-up, for every pool (the batch's, export's): it dies with the
run, leaves Ctrl-C to the driver, keeps pydicom's warnings off the terminal and the
memory it frees. Kept apart from `worker` (one file's transcoding) so that a pool of
another command starts without importing the transcoding pipeline.
"""

from __future__ import annotations

import ctypes
import os
import signal
import warnings


# glibc's mallopt parameters (malloc.h).
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3


def keep_freed_memory() -> None:
    """Let this process reuse the memory it frees instead of faulting it in again.

    glibc maps every block over 128 KB afresh and unmaps it when freed, and gives the
    heap's top back to the kernel past twice that: a file's buffers (the file read, the
    decoded frame, the encoded output: about 1.3 MB for a 512 x 512 slice) were
    page-faulted in for every file. Measured: 94,792 minor faults over 300 slices, and
    6,358 with blocks up to 32 MB kept in the heap and 64 MB of free top kept; 4-5 % off
    a run (interleaved A/B, --jobs 1 and 2). Memory stays bounded: a worker holds a few frames at a time, and what it
    keeps is what it used at its peak: for slices peak RSS is unchanged (41 MB); after a
    multi-frame file coded on 16 threads, each thread's arena keeps its free memory (a
    reviewer measured 84 -> 185 MB left in use after a 120-frame RLE file). Only in the
    processes that do the work: pool workers (--jobs 1 included). Linux/glibc only.
    """
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (AttributeError, OSError):  # pragma: no cover - another C library
        return
    mallopt(_M_MMAP_THRESHOLD, 32 << 20)
    mallopt(_M_TRIM_THRESHOLD, 64 << 20)


def init_worker(keep_memory: bool = True) -> None:
    """Worker process set-up: die with the parent, leave Ctrl-C to the driver, and keep
    pydicom's warnings about real-world files off the terminal."""
    try:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    except ValueError:  # not the main thread (a Dask worker's task thread)
        pass
    warnings.filterwarnings("ignore", module=r"pydicom\.")
    if keep_memory:
        keep_freed_memory()
    die_with_parent()  # a killed run leaves no worker writing on


#: The environment variable naming the process of the run (set by the pool).
RUN_PID = "DICOMPRESS_RUN_PID"


def die_with_parent() -> None:
    """Linux: PR_SET_PDEATHSIG, SIGKILL when the parent (the thread that started this
    process) ends; elsewhere nothing. A run that died before this was set (between the
    fork and now) is looked for too: then this process ends at once."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)
    except (AttributeError, OSError):  # pragma: no cover - other platforms
        return
    run = os.environ.get(RUN_PID, "")
    if run.isdigit():
        try:
            os.kill(int(run), 0)
        except ProcessLookupError:
            os._exit(1)
        except PermissionError:  # pragma: no cover - a pid reused by another user
            os._exit(1)
