"""Progress of a batch run: a live bar on a terminal (rich), plain log lines otherwise.

The total is counted by a background walk of the same sources, so work starts at
once and the ETA appears when the count is known.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from dicompress.batch import journal as J
from dicompress.cli.render import human_size, one_line

if TYPE_CHECKING:
    from dicompress.batch.summary import Summary
    from dicompress.batch.worker import Outcome


class Counter:
    """Counts files and bytes of `sources` in a daemon thread."""

    def __init__(self, make_sources: Callable[[], Iterable] | None) -> None:
        self.files = 0
        self.bytes = 0
        self.done = False
        if make_sources is None:
            return
        threading.Thread(target=self._count, args=(make_sources,), daemon=True).start()

    def _count(self, make_sources) -> None:
        for source in make_sources():
            self.files += 1
            try:
                self.bytes += source.path.stat().st_size
            except OSError:
                pass
        self.done = True


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


class Reporter:
    """Base: keeps the rates; subclasses show them."""

    def __init__(self, counter: Counter) -> None:
        self.counter = counter
        self.start = time.perf_counter()
        self.processed = 0
        self.bytes_read = 0

    def rates(self, summary: Summary) -> tuple[float, float, str]:
        elapsed = max(1e-6, time.perf_counter() - self.start)
        per_file = self.processed / elapsed
        eta = "?"
        if self.counter.done and per_file > 0:
            left = self.counter.files - self.processed - summary.done_before - summary.duplicates
            eta = _duration(max(0, left) / per_file)
        return per_file, self.bytes_read / 1e6 / elapsed, eta

    def result(self, outcome: Outcome, summary: Summary) -> None:
        self.processed += 1
        self.bytes_read += outcome.size_in or 0

    def close(self, summary: Summary) -> None:
        pass


class LogReporter(Reporter):
    """Lines for files (unless quiet) and a progress line every `every` seconds."""

    def __init__(self, counter: Counter, *, quiet: bool, json_mode: bool, every: float = 10.0) -> None:
        super().__init__(counter)
        self.quiet, self.json_mode, self.every = quiet, json_mode, every
        self.last = self.start

    def result(self, outcome: Outcome, summary: Summary) -> None:
        super().result(outcome, summary)
        if outcome.status == J.FAILED:
            print(f"FAILED   {one_line(outcome.reason)}", file=sys.stderr, flush=True)
        elif not (self.quiet or self.json_mode):
            print(file_line(outcome), flush=True)
        now = time.perf_counter()
        if now - self.last >= self.every and not self.json_mode:
            self.last = now
            per_file, mb, eta = self.rates(summary)
            total = f"/{self.counter.files}" if self.counter.done else ""
            print(f"progress {self.processed}{total} files, {per_file:.1f} files/s, {mb:.1f} MB/s, "
                  f"saved {human_size(summary.bytes_in - summary.bytes_out)}, ETA {eta}",
                  file=sys.stderr, flush=True)


class RichReporter(Reporter):
    def __init__(self, counter: Counter) -> None:
        super().__init__(counter)
        from rich.console import Console
        from rich.progress import BarColumn, Progress, TextColumn

        self.console = Console(stderr=True)
        self.progress = Progress(TextColumn("[bold]transcoding"), BarColumn(),
                                 TextColumn("{task.fields[line]}"), console=self.console,
                                 transient=True)
        self.task = self.progress.add_task("", total=None, line="starting")
        self.progress.start()

    def result(self, outcome: Outcome, summary: Summary) -> None:
        super().result(outcome, summary)
        if outcome.status == J.FAILED:
            from rich.markup import escape

            self.console.print(f"[red]FAILED[/red]   {escape(one_line(outcome.reason))}", markup=True,
                               highlight=False)
        per_file, mb, eta = self.rates(summary)
        total = (self.counter.files - summary.done_before - summary.duplicates
                 if self.counter.done else None)
        line = (f"{self.processed}{f'/{total}' if total else ''} files  {per_file:.1f} files/s  "
                f"{mb:.1f} MB/s  saved {human_size(summary.bytes_in - summary.bytes_out)}  "
                f"ETA {eta}")
        self.progress.update(self.task, completed=self.processed, total=total, line=line)

    def close(self, summary: Summary) -> None:
        self.progress.stop()


def file_line(outcome: Outcome) -> str:
    if outcome.status == J.OK:
        ratio = (outcome.size_in or 0) / outcome.size_out if outcome.size_out else 0
        loss = ""
        if outcome.lossy and outcome.loss is not None and outcome.loss.psnr is not None:
            loss = (f", lossy {outcome.ratio_pixels:.1f}:1 on pixels, worst frame PSNR "
                    f"{outcome.loss.psnr:.1f} dB, max error {outcome.loss.max_error}")
        return (f"ok       {one_line(outcome.path)}  {human_size(outcome.size_in or 0)} -> "
                f"{human_size(outcome.size_out or 0)} ({ratio:.2f}:1){loss}")
    if outcome.copied:  # the reason says "copied unchanged (why)"
        return f"copied   {one_line(outcome.reason)}"
    return f"skipped  {one_line(outcome.reason or outcome.path)}"


class StageReporter:
    """Progress of a command that goes through stages (export: reading headers, writing
    images, bundling): a rich bar on a terminal, else one line on stderr as each stage
    starts and when it ends (a pipe or a log gets no bar and no per-file noise).

    Used as a context manager; `update(stage, done, total)` is the command's callback.
    """

    def __init__(self, command: str, *, stream=None, live: bool | None = None) -> None:
        self.command = command
        self.stream = stream or sys.stderr
        self.live = self.stream.isatty() if live is None else live
        self.stage: str | None = None
        self.started = time.perf_counter()
        self.stage_started = self.started
        self.done, self.total = 0, None
        self.progress = None

    def __enter__(self) -> StageReporter:
        if self.live:
            from rich.console import Console
            from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                                       TimeRemainingColumn)

            self.progress = Progress(TextColumn(f"[bold]{self.command}[/bold] {{task.description}}"),
                                     BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                                     console=Console(file=self.stream), transient=True)
            self.task = self.progress.add_task("", total=None)
            self.progress.start()
        return self

    def update(self, stage: str, done: int, total: int | None) -> None:
        if stage != self.stage:
            self._end_stage()
            self.stage, self.stage_started = stage, time.perf_counter()
            if not self.live:
                what = f" ({total} to do)" if total else ""
                print(f"{self.command}: {stage}{what}", file=self.stream, flush=True)
            elif self.progress is not None:  # a new bar: a stage without a count pulses
                self.progress.remove_task(self.task)  # (update and reset keep a total)
                self.task = self.progress.add_task(stage, total=total)
        self.done, self.total = done, total
        if self.progress is not None:
            self.progress.update(self.task, completed=done)

    def _end_stage(self) -> None:
        if self.stage is None or self.live:
            return
        seconds = time.perf_counter() - self.stage_started
        count = f"{self.done} done, " if self.total else ""
        print(f"{self.command}: {self.stage}: {count}{seconds:.1f} s", file=self.stream, flush=True)

    def __exit__(self, *exc) -> None:
        self._end_stage()
        if self.progress is not None:
            self.progress.stop()
