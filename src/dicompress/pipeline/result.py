"""What a transcode is asked (`TranscodeOptions`) and what became of it (`TranscodeResult`):
the types both paths (`dicompress.direct`, `dicompress.transcode`) share."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from dicompress.errors import DicompressError
from dicompress.layout import FrameLayout

if TYPE_CHECKING:
    from pydicom.dataset import Dataset


@dataclass
class TranscodeResult:
    """What happened to one file."""

    source: Path
    destination: Path | None = None
    status: str = "ok"  # a dicompress.errors.Status value
    reason: str = ""
    modality: str = ""
    transfer_syntax_in: str = ""
    transfer_syntax_out: str = ""
    size_in: int = 0
    size_out: int = 0
    frames: int = 0
    verified: bool = False
    lossy: bool = False
    #: Stored pixel bytes / encoded pixel bytes (the Lossy Image Compression Ratio).
    ratio_pixels: float = 0.0
    #: Lossy results, verified (docs/compare.md): the worst frame's PSNR (peak = the
    #: frame's dynamic range), the worst error on the stored values, in the modality's
    #: units (HU for CT) and in 8-bit display levels at `display_window` (the file's
    #: default window).
    psnr: float | None = None
    max_error: int | None = None
    max_abs_error_modality: float | None = None
    max_display_error: float | None = None
    display_window: str | None = None
    #: With `digest`: the content hashes of the input as read and of the output as
    #: written (dicompress.digests).
    digest_in: str | None = None
    digest_out: str | None = None
    error: DicompressError | None = field(default=None, repr=False)

    @property
    def ratio(self) -> float:
        return self.size_in / self.size_out if self.size_out else 0.0


@dataclass(frozen=True)
class TranscodeOptions:
    """How one file is transcoded (everything but where from, where to and what to).

    Attributes
    ----------
    verify
        Decode every encoded frame again and read the written file back (default).
    decode_check
        With `verify`: decode every frame of a lossless target again and compare it with
        the source's values (default). False leaves the read-back only (the file's
        structure, and every fragment's length and BLAKE3 as encoded): for a codec whose
        decode costs as much as its encode (JPEG 2000), nearly twice the throughput, with
        the codec itself trusted. A lossy frame is always decoded again, for its loss.
    threads
        Frames of a multi-frame file coded in parallel (default: all cores).
    codec_threads
        Threads inside the codec for a single-frame file (default: `threads`).
    extended_offsets
        Write the Extended Offset Table; None: when offsets may pass 4 GiB.
    skip_same_syntax
        Raise `AlreadyInTarget` for a file already in the target syntax.
    before_replace
        ``before_replace(tmp)`` runs on the complete, verified, fsynced output just before
        it is renamed into place, and may veto it by raising.
    prepare
        ``prepare(header, layout)`` may change the source's header (de-identification)
        before the output's is made from it, and return a function applied to every
        decoded frame before it is encoded (blanking); lossless results are verified
        against its output.
    digest
        A name of `dicompress.digests.HASHES`: the result carries the content hashes of the
        input and the output.
    """

    verify: bool = True
    decode_check: bool = True
    threads: int | None = None
    codec_threads: int | None = None
    extended_offsets: bool | None = None
    skip_same_syntax: bool = False
    before_replace: Callable[[Path], None] | None = None
    prepare: Callable[[Dataset, FrameLayout], Callable[[np.ndarray], np.ndarray] | None] \
        | None = None
    digest: str | None = None
