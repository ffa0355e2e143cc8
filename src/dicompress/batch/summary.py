"""What became of a batch run (`Summary`): the files by status, bytes, time, why it
stopped, and the exit code every command shares."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from dicompress.batch import journal as J
from dicompress.errors import EXIT_FAILURES, EXIT_INTERNAL, EXIT_INTERRUPTED, EXIT_OK, EXIT_STOPPED


@dataclass
class Summary:
    counts: Counter = field(default_factory=Counter)  # this run's statuses
    #: of counts' skips (already, not-image), those copied to the output unchanged, by status
    copied: Counter = field(default_factory=Counter)
    done_before: int = 0  # finished by an earlier run of this journal (resume)
    duplicates: int = 0
    own_outputs: int = 0  # files found inside the output folder (-o inside a source tree)
    bytes_in: int = 0  # of the files transcoded in this run
    bytes_out: int = 0
    seconds: float = 0.0
    stopped: str | None = None  # why new work stopped early (disk full)
    interrupted: bool = False
    failures: list[tuple[str, str]] = field(default_factory=list)
    journal: str = ""
    peak_worker_rss_kb: int = 0  # the largest peak resident memory a worker reported
    internal_errors: int = 0  # files stopped by a bug of ours (their tracebacks on stderr)

    @property
    def exit_code(self) -> int:
        if self.interrupted:
            return EXIT_INTERRUPTED
        if self.stopped:
            return EXIT_STOPPED
        if self.internal_errors:
            return EXIT_INTERNAL
        return EXIT_FAILURES if self.counts.get(J.FAILED) else EXIT_OK

    def as_dict(self) -> dict:
        mb = self.bytes_in / 1e6
        files = self.counts.get(J.OK, 0)
        return {
            "files": dict(self.counts), "copied_unchanged": dict(self.copied),
            "done_before": self.done_before,
            "duplicates": self.duplicates, "own_outputs": self.own_outputs, "bytes_in": self.bytes_in, "bytes_out": self.bytes_out,
            "ratio": round(self.bytes_in / self.bytes_out, 4) if self.bytes_out else None,
            "seconds": round(self.seconds, 3),
            "files_per_second": round(files / self.seconds, 2) if self.seconds else None,
            "mb_per_second": round(mb / self.seconds, 2) if self.seconds else None,
            "stopped": self.stopped, "interrupted": self.interrupted,
            "failures": [{"path": p, "reason": r} for p, r in self.failures],
            "journal": self.journal, "exit_code": self.exit_code,
            "peak_worker_rss_mb": round(self.peak_worker_rss_kb / 1024, 1),
            "internal_errors": self.internal_errors,
        }
