"""One exception hierarchy, one set of outcomes and one set of exit codes.

Whose fault it is decides the class:

* the input: `NotDicom` (skipped: not ours to judge), `NotAnImage`, `InvalidDicomFile`
  (DICOM, but too damaged to parse), `CorruptPixelData`;
* the request: `UnsupportedLayout`, `UnsupportedTransferSyntax`, `UsageError`,
  `ConfigError`, `DeidError`;
* the output: `VerificationFailed` (what was written does not read back);
* the machine: `StorageError` (an OS error while reading or writing: disk full, permissions);
* ourselves: anything that is not a `DicompressError` is a bug. It is never reworded as a
  bad file: it keeps its traceback, and the CLI reports it as an internal error with its
  own exit code (`EXIT_INTERNAL`).

Exceptions of foreign code are translated only where that code is called (pydicom's
parser and decoders, the OS); see `dicompress.pipeline.read`.
"""

from __future__ import annotations

import enum


class DicompressError(Exception):
    """Base class of every dicompress error."""


# -- the input ---------------------------------------------------------------------------
class NotDicom(DicompressError):
    """The file is not DICOM at all (batch runs skip it and say so)."""


class InvalidDicomFile(DicompressError):
    """The file is DICOM but too damaged to be parsed."""


class NotAnImage(DicompressError):
    """The file is DICOM but carries no pixel data."""


class CorruptPixelData(DicompressError, ValueError):
    """Encoded pixel data disagrees with itself or with the image's attributes."""


class AlreadyInTarget(DicompressError):
    """The file is already in the target transfer syntax (batch runs skip it)."""


# -- the request ---------------------------------------------------------------------------
class UnsupportedLayout(DicompressError, ValueError):
    """The pixel layout cannot be coded by the chosen codec (e.g. 1-bit for RLE)."""


class UnsupportedTransferSyntax(DicompressError, ValueError):
    """The transfer syntax cannot be decoded or is not a known target."""


class UsageError(DicompressError):
    """A run cannot start as asked (a bad combination of options, a journal mismatch)."""


class DeidError(DicompressError):
    """A file cannot be de-identified as asked (refused, unmapped patient, bad key, ...)."""


class BurnedInRefused(DeidError):
    """The file may show identity in its pixels and the user did not say what to do."""


class BudgetError(UsageError):
    """An output cannot be made to fit the size budget, or the budget cannot be read."""


class PlanError(UsageError):
    """A plan's constraint (link rate, deadline) cannot be read."""


class DisplayError(DicompressError, ValueError):
    """The display attributes cannot be applied (e.g. a window of width 0)."""


class ConfigError(DicompressError):
    """The gateway configuration cannot be used; the message says where and why."""


# -- the output and the machine ------------------------------------------------------------
class WorkerDied(DicompressError):
    """The worker process working on a file died (a native decoder's abort on its data, a
    signal, the kernel's OOM killer): that file failed; the run goes on."""


class VerificationFailed(DicompressError):
    """What was written does not read back as what was meant (pixels, header, layout)."""


class StorageError(DicompressError):
    """The OS refused a read or a write (disk full, permissions, a vanished file)."""

    def __init__(self, message: str, errno: int | None = None) -> None:
        super().__init__(message)
        self.errno = errno


class JournalError(DicompressError):
    """The journal cannot be used for this run (locked, other settings, damaged)."""


class JournalFull(JournalError):
    """The journal's filesystem is full: the run stops (what was recorded stays)."""


# -- outcomes and exit codes -----------------------------------------------------------------
class Status(str, enum.Enum):
    """What became of one file or instance: the batch journal, `report`, the CLI and the
    gateway all use these words."""

    OK = "ok"
    ALREADY = "already"  # already in the target syntax
    NOT_DICOM = "not-dicom"
    NOT_IMAGE = "not-image"
    FAILED = "failed"
    PENDING = "pending"  # handed to a worker, no result yet
    # the gateway's queue: an instance received and not yet sent, sent, or held back
    QUEUED = "queued"
    SENT = "sent"
    HELD = "held"
    DROPPED = "dropped"  # by an operator (serve --drop), recorded in the audit log

    def __str__(self) -> str:
        return self.value


#: Exit codes of every command: done; some files failed; the command line or configuration
#: cannot be used; the run stopped early (disk full, or a path it needs cannot be written);
#: a bug of ours; interrupted (Ctrl-C).
EXIT_OK, EXIT_FAILURES, EXIT_USAGE, EXIT_STOPPED, EXIT_INTERNAL, EXIT_INTERRUPTED = (
    0, 1, 2, 3, 70, 130)


def status_of(exc: DicompressError) -> Status:
    """The outcome a file has when `exc` stopped it."""
    if isinstance(exc, AlreadyInTarget):
        return Status.ALREADY
    if isinstance(exc, NotDicom):
        return Status.NOT_DICOM
    if isinstance(exc, NotAnImage):
        return Status.NOT_IMAGE
    return Status.FAILED


def with_context(exc: DicompressError, path: object) -> DicompressError:
    """`exc` with the file's path in front of its message (once), of the same class."""
    if str(exc).startswith(f"{path}:"):
        return exc
    try:
        named = type(exc)(f"{path}: {exc}")
    except TypeError:  # a subclass with another signature: keep it as it is
        return exc
    if isinstance(exc, StorageError):
        named.errno = exc.errno
    return named


def reason_of(exc: BaseException) -> str:
    """A foreign exception's message, on one line and never empty: a MemoryError (often
    without one) says the memory ran out, another without a message gives its class."""
    lines = str(exc).strip().splitlines()
    text = " ".join(lines[0].split()) if lines else ""
    if isinstance(exc, MemoryError):
        return f"out of memory{f' ({text})' if text else ''}: the file asks for more than " \
               "this machine gives"
    return text or f"{type(exc).__name__}, without a message"


def refused_by_a_library(exc: BaseException) -> bool:
    """Whether `exc`, raised inside a codec library or pydicom's decoders, is that code
    refusing the data: an Exception, or the panic of a Rust extension built with PyO3
    (pylibjpeg-rle's decoder panics on RLE segments longer than the image), whose
    ``pyo3_runtime.PanicException`` derives from BaseException so that ``except
    Exception`` lets it through, and which cannot be pickled back from a decoding
    process. KeyboardInterrupt, SystemExit and GeneratorExit are never the data's."""
    if isinstance(exc, Exception):
        return True
    kind = type(exc)
    return kind.__name__ == "PanicException" and kind.__module__ == "pyo3_runtime"
