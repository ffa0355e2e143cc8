"""Which frames `compare` measures: each series ordered along its normal, then sampled
(N spread evenly, ends included), made as they are iterated; and loading them, decoded
as stored, with the stored fragment where a transform of encoded frames wants it."""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from dicompress.batch.pools import Isolated
from dicompress.batch.sources import iter_sources, unique
from dicompress.errors import (CorruptPixelData, DicompressError, NotAnImage, NotDicom,
                               refused_by_a_library, with_context)
from dicompress.export.select import SeriesFrames, group_series
from dicompress.layout import FrameLayout, header_number
from dicompress.pipeline.encode import FrameView, frame_views
from dicompress.pipeline.decoded import us_colour
from dicompress.pipeline.frames import frames_at
from dicompress.pipeline.stored import encoded_frames
from dicompress.pipeline.read import foreign_error, read_header, transfer_syntax_of

if TYPE_CHECKING:
    from pydicom.dataset import Dataset


@dataclass(frozen=True)
class FrameRef:
    series: str  # label
    path: Path
    index: int  # 0-based frame within the file
    slice: int  # 1-based position within the series
    #: How the frame is read: modality transform and display window.
    view: FrameView | None = field(default=None, compare=False, hash=False, repr=False)
    #: The transfer syntax the file stores it in.
    transfer_syntax: str = field(default="", compare=False, hash=False)
    #: A US image's YCbCr (pipeline.decoded.us_colour): coded as RGB by the targets that
    #: transcode codes it so for.
    us_colour: str | None = field(default=None, compare=False, hash=False, repr=False)


@dataclass(frozen=True)
class StoredFrame:
    """A frame as the source file stores it (an encapsulated fragment), for the codecs
    that transform encoded frames without decoding them (`Codec.from_encoded`)."""

    transfer_syntax: str
    #: The layout the file declares (the decoded layout may differ: YBR_FULL_422 -> YBR_FULL).
    layout: FrameLayout
    fragment: bytes


def spread(n: int, k: int | None) -> Sequence[int]:
    """`k` indices spread evenly over range(n), ends included (all, a range, when k is
    None or >= n)."""
    if k is None or k >= n:
        return range(n)
    if k <= 1:
        return [n // 2] if k == 1 else []
    return sorted({round(i * (n - 1) / (k - 1)) for i in range(k)})


class Selection:
    """The frames to measure, each series' frames in order: made as they are iterated, so
    memory holds the headers, never a reference per frame whatever Number of Frames says."""

    def __init__(self, series: list[SeriesFrames], sample: int | None, window,
                 headers: dict[Path, Dataset]) -> None:
        self._series = [(one, spread(len(one.frames), sample)) for one in series]
        self._window, self._headers = window, headers

    @property
    def series(self) -> list[str]:
        """The labels of the series with a frame to measure."""
        return [one.label for one, chosen in self._series if len(chosen)]

    def __len__(self) -> int:
        return sum(len(chosen) for _, chosen in self._series)

    def __iter__(self) -> Iterator[FrameRef]:
        for one, chosen in self._series:
            for slice_index in chosen:
                path, index = one.frames[slice_index]
                ds = self._headers[path]
                yield FrameRef(one.label, path, index, slice_index + 1,
                               FrameView(ds, index, self._window), transfer_syntax_of(ds),
                               us_colour(ds))

    def transfer_syntaxes(self) -> list[str]:
        """The transfer syntaxes of the files with a frame to measure."""
        return list(dict.fromkeys(transfer_syntax_of(self._headers[one.frames[k][0]])
                                  for one, chosen in self._series for k in chosen))


#: The values compare reads of a header (series, order, display, the US colour rule; the
#: Image Pixel attributes are checked by FrameLayout): converted as the header is read.
COMPARED = ("Modality", "SOPClassUID", "SeriesInstanceUID", "SeriesNumber",
            "SeriesDescription", "InstanceNumber", "ImagePositionPatient",
            "ImageOrientationPatient", "RescaleSlope", "RescaleIntercept",
            "ModalityLUTSequence", "WindowCenter", "WindowWidth",
            "WindowCenterWidthExplanation", "VOILUTFunction", "VOILUTSequence",
            "PresentationLUTShape")


def _read_in_groups(ds, window) -> None:
    """What each frame's view reads (an Enhanced object's functional groups: values in
    sequence items, which reading the header does not convert), read now: a damaged value
    there fails this file here, not the run where its frames are measured."""
    try:
        frame_views(ds, window)
    except Exception as exc:
        damage = foreign_error(exc)
        if damage is None:
            raise  # a bug of ours
        raise damage from exc


def select_frames(sources: Iterable[str | Path], sample: int | None,
                  skipped: list[tuple[str, str]], window=None,
                  failed: list[tuple[str, str]] | None = None,
                  series_files: dict[str, list[Path]] | None = None) -> Selection:
    """The frames to measure: each series ordered along its normal, then sampled;
    `window` (a preset, "C,W", ...) or each file's default window for display errors.

    What is not DICOM or not an image goes to `skipped`; a damaged image (or one the OS
    would not let be read) to `failed` (with `skipped` when `failed` is not given).
    `series_files`, when given, gets every file of each series (label -> paths)."""
    headers = []
    for source in unique(iter_sources(sources)):
        try:
            ds = read_header(source.path, convert=COMPARED)
            if "PixelData" not in ds:
                raise NotAnImage("no Pixel Data (not an image)")
            FrameLayout.from_dataset(ds)  # Rows, Columns, Number of Frames must make sense
            header_number(ds, "NumberOfFrames", 0, 2**31 - 1, default=1) or 1
            _read_in_groups(ds, window)
            headers.append((source.path, ds))
        except (NotDicom, NotAnImage) as exc:
            skipped.append((str(source.path), str(exc)))
        except DicompressError as exc:
            if failed is None:
                skipped.append((str(source.path), str(exc)))
            else:
                failed.append((str(source.path), str(with_context(exc, source.path))))
        except (ValueError, TypeError) as exc:  # e.g. Number of Frames "1A"
            skipped.append((str(source.path), f"unusable image attributes: {exc}"))
    series = group_series(headers)
    if series_files is not None:
        for one in series:
            series_files[one.label] = one.frames.files()
    return Selection(series, sample, window, dict(headers))


def load_frames(refs: Iterable[FrameRef], failed: list[tuple[str, str]], decoder: Isolated,
                stored: Callable[[str], bool] = lambda syntax: False
                ) -> Iterator[tuple[FrameRef, FrameLayout, np.ndarray, StoredFrame | None]]:
    """The selected frames decoded as stored, file by file (one file open at a time; the
    refs of a file come together); with each, the frame as the file stores it where
    `stored(transfer_syntax)` says so (else None). Frames that need a decoder are decoded
    in `decoder`'s process: a decoder's abort fails that file, and the others are
    measured."""
    for path, wanted in itertools.groupby(refs, key=lambda ref: ref.path):
        asked: deque[FrameRef] = deque()  # a frame or two: frames_at takes the indices lazily

        def indices(wanted=wanted, asked=asked) -> Iterator[int]:
            for ref in wanted:  # a file's refs come in frame order
                asked.append(ref)
                yield ref.index

        try:
            fragments, at = None, 0  # the file's stored frames, and the next one's index
            for layout, arr in frames_at(path, indices(), decoder):
                ref = asked.popleft()  # frames_at yields in the order asked
                if at == 0 and fragments is None:
                    fragments = _stored_frames(path, ref.transfer_syntax, stored)
                fragment = None
                if fragments is not None:  # on to this frame's (refs come in frame order)
                    for _ in range(ref.index - at):
                        next(fragments, None)
                    fragment, at = next(fragments, None), ref.index + 1
                    if fragment is None:
                        raise CorruptPixelData(f"frame {ref.index + 1}: no stored fragment")
                yield ref, layout, arr, fragment
        except DicompressError as exc:
            failed.append((str(path), str(with_context(exc, path))))
        except BaseException as exc:  # a decoder's own error on a damaged file
            if not refused_by_a_library(exc):
                raise
            failed.append((str(path), f"{path}: {type(exc).__name__}: {exc}"))


def _stored_frames(path: Path, syntax: str, wanted: Callable[[str], bool]
                   ) -> Iterator[StoredFrame] | None:
    if not wanted(syntax):
        return None
    ds = read_header(path)
    declared = FrameLayout.from_dataset(ds)
    return (StoredFrame(syntax, declared, fragment)
            for fragment in encoded_frames(path, ds, declared.number_of_frames))
