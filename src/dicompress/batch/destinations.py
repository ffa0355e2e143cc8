"""Where each source's output goes: the source itself (in place), or its place mirrored
(or, de-identified with --rename, its new name) under the output folder; and the
sources that cannot have one there."""

from __future__ import annotations

import os
from pathlib import Path

from dicompress.batch import journal as J
from dicompress.batch.journal import Journal
from dicompress.batch.options import BatchOptions
from dicompress.batch.sources import Source
from dicompress.errors import DicompressError, status_of


class NoDestination(Exception):
    """A source that gets no output: its journal status and the reason, naming it."""

    def __init__(self, status: str, reason: str) -> None:
        super().__init__(reason)
        self.status, self.reason = status, reason


class Destinations:
    """The output path of each source of one run (`of`)."""

    def __init__(self, options: BatchOptions) -> None:
        self.options = options
        self.root = options.output.resolve() if options.output is not None else None
        self.prefix = str(self.root) + os.sep if self.root else ""  # string paths: per file

    def of(self, source: Source, real: Path, st: os.stat_result, journal: Journal
           ) -> str | None:
        """The output path of `source` (found at `real`, `st`); None for one of this
        run's own outputs met by the walk (-o inside a source tree). Raises NoDestination
        when the output would be written outside the output folder, would be another
        source's, or would replace the original."""
        options, key = self.options, str(real)
        if options.in_place:
            return key
        mirrored = os.path.normpath(os.path.join(self.prefix, source.relative))
        if (key + os.sep).startswith(self.prefix) and (options.rename or mirrored != key):
            # -o inside a source tree: what the walk finds there is ours, not input
            # (a file whose output would be itself is refused below instead)
            return None
        destination = mirrored
        if options.rename:
            try:
                from dicompress.deid import renamed

                destination = str(self.root / renamed(real, options.deid))
            except DicompressError as exc:
                raise NoDestination(status_of(exc).value, f"{source.path}: {exc}") from None
        if not (destination + os.sep).startswith(self.prefix):
            raise NoDestination(J.FAILED, (
                f"{source.path}: would be written outside the output folder "
                f"({destination}); list it by a path without '..'"))
        owner = journal.destination_owner(destination)
        if owner is not None and owner != key:
            raise NoDestination(J.FAILED, f"{source.path}: maps to the same output as {owner}")
        try:
            there = os.stat(destination)
        except OSError:
            there = None
        if there is not None and (there.st_dev, there.st_ino) == (st.st_dev, st.st_ino):
            raise NoDestination(J.FAILED, (
                f"{source.path}: the output would replace the original; "
                "choose another -o or use --in-place"))
        return destination
