"""What a transcode is asked (`TranscodeOptions`) and what became of it (`TranscodeResult`,
with what a lossy output lost: `Loss`): the types both paths (`dicompress.direct`,
`dicompress.transcode`) share, and that the batch outcome and its journal hold."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from dicompress.errors import DicompressError

if TYPE_CHECKING:  # annotations only: the journal reads `Loss` without numpy
    import numpy as np
    from pydicom.dataset import Dataset

    from dicompress.layout import FrameLayout


@dataclass(frozen=True)
class Loss:
    """What a lossy output lost, measured on every frame as it was verified
    (docs/compare.md, "Quality measures").

    The one declaration of these measures: `TranscodeResult`, the batch's `Outcome` and
    the journal's `Row` each hold a `Loss` (None: lossless, or not measured).

    Attributes
    ----------
    psnr
        The worst frame's PSNR in dB, its peak the frame's dynamic range (infinite for an
        output equal to its source).
    max_error
        The worst absolute error on the stored values.
    max_abs_error_modality
        The worst absolute error in the modality's units (HU for CT).
    max_display_error
        The worst error in levels of an 8-bit display at `display_window`.
    display_window
        The window the display error was taken at (the file's default window).
    """

    psnr: float | None = None
    max_error: int | None = None
    max_abs_error_modality: float | None = None
    max_display_error: float | None = None
    display_window: str | None = None

    #: The journal's columns that hold a Loss (schema 2), named as the fields.
    COLUMNS: ClassVar[tuple[str, ...]] = ("psnr", "max_error", "max_abs_error_modality",
                                          "max_display_error", "display_window")

    def journal_values(self) -> dict[str, float | int | str | None]:
        """The journal's columns: an infinite PSNR is recorded as empty, the maximum error
        of 0 saying why (JSON has no infinity)."""
        values = {name: getattr(self, name) for name in self.COLUMNS}
        if values["psnr"] is not None and not math.isfinite(values["psnr"]):
            values["psnr"] = None
        return values

    @classmethod
    def from_columns(cls, values: Sequence) -> Loss | None:
        """The Loss of a journal's row (`values` in COLUMNS order); None where none was
        recorded (a lossless output, or a journal of schema 1)."""
        if all(value is None for value in values):
            return None
        return cls(*values)


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
    #: A lossy output, verified: what it lost (None: lossless, or not verified).
    loss: Loss | None = None
    #: With `digest`: the content hashes of the input as read and of the output as
    #: written (dicompress.digests).
    digest_in: str | None = None
    digest_out: str | None = None
    error: DicompressError | None = field(default=None, repr=False)

    @property
    def ratio(self) -> float:
        return self.size_in / self.size_out if self.size_out else 0.0

    # the measures of `loss`, read as the result's own (None without one)
    @property
    def psnr(self) -> float | None:
        return self.loss.psnr if self.loss else None

    @property
    def max_error(self) -> int | None:
        return self.loss.max_error if self.loss else None

    @property
    def max_abs_error_modality(self) -> float | None:
        return self.loss.max_abs_error_modality if self.loss else None

    @property
    def max_display_error(self) -> float | None:
        return self.loss.max_display_error if self.loss else None

    @property
    def display_window(self) -> str | None:
        return self.loss.display_window if self.loss else None


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
