"""What a batch run is asked (`BatchOptions`): the target, where the outputs go, checks,
workers, the journal, de-identification."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dicompress.codecs import Codec
    from dicompress.deid import DeidConfig


@dataclass
class BatchOptions:
    target: str | Codec | None  # None: keep each file's syntax (de-identification only)
    output: Path | None = None  # mirror the tree here ...
    in_place: bool = False  # ... or replace each original once its result is verified
    verify: bool = True
    #: with verify: lossless frames decoded again (False: the file read back only)
    decode_check: bool = True
    force: bool = False  # transcode files already in the target syntax too
    jobs: int | None = None  # worker processes (default: all cores)
    scheduler: str | None = None  # "local" or a dask.distributed address
    journal: Path | None = None
    resume: bool = False
    retry_failed: bool = False
    extended_offsets: bool | None = None
    threads: int | None = None  # per file, for multi-frame files
    deid: DeidConfig | None = None  # de-identify every output (PS3.15 E.1)
    rename: bool = False  # with deid and -o: OUT/study/series/instance.dcm by the new UIDs
    hash: str | None = None  # the journal's content hash (None: the journal's, or blake3)
    follow_links: bool = False  # in place: rewrite files that links in a tree point to
    #: -o: skip files already in the target syntax and objects without pixel data, instead
    #: of copying them unchanged (the output then holds only the transcoded images)
    only_images: bool = False
