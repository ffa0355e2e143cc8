"""Transcoding many files: `transcode_many` in this process (a library call, threads),
and `runner.BatchRun` for archives (worker processes or Dask, a journal, resume).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from dicompress.batch.sources import Source, iter_sources, unique
from dicompress.errors import DicompressError, status_of

if TYPE_CHECKING:
    from dicompress.codecs import Codec
    from dicompress.transcode import TranscodeResult


def transcode_many(
    sources: Iterable[Source],
    output_dir: str | Path,
    target: str | Codec,
    *,
    verify: bool = True,
    threads: int | None = None,
    files_at_once: int | None = None,
    extended_offsets: bool | None = None,
) -> Iterator[TranscodeResult]:
    """Transcode each source under `output_dir`; yield one result per file (in input
    order), never raise for one file.

    `files_at_once` files are worked on together (default: the number of cores), so
    a series of single-frame files keeps every core busy; each file may use
    `threads` threads for its frames.
    """
    # imported here, not with the package: `export` and the CLI use its modules
    # (sources, pools) without the transcoding pipeline
    from dicompress.codecs import Codec, get_codec
    from dicompress.pipeline.frames import bounded_map
    from dicompress.transcode import TranscodeResult, transcode_file

    codec = target if isinstance(target, Codec) else get_codec(target)
    output_dir = Path(output_dir)
    at_once = files_at_once or os.cpu_count() or 1

    def one(source: Source) -> TranscodeResult:
        destination = output_dir / source.relative
        try:
            if not source.path.is_file():
                raise DicompressError(f"{source.path}: no such file")
            if destination.resolve() == source.path.resolve():
                raise DicompressError(
                    f"{source.path}: the output would replace the original; choose another -o"
                )
            return transcode_file(source.path, destination, codec, verify=verify,
                                  threads=threads, extended_offsets=extended_offsets)
        except DicompressError as exc:  # not DICOM or no pixels: skipped; else failed
            return TranscodeResult(source=source.path, status=status_of(exc).value,
                                   reason=str(exc), error=exc, size_in=_size(source.path))

    yield from bounded_map(one, unique(sources), at_once)


__all__ = ["Source", "iter_sources", "transcode_many"]


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0
