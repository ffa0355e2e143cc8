"""Which frames to export, in which order: series, slice position, frame lists."""

from __future__ import annotations

import bisect
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from dicompress.deid import descriptor_identifies
from dicompress.errors import DicompressError
from dicompress.layout import header_number

if TYPE_CHECKING:
    from pydicom.dataset import Dataset

    from dicompress.direct.view import HeaderView

    Header = Dataset | HeaderView  # a file's header: pydicom's, or direct.view's


class FrameList(Sequence):
    """The frames of a series in display order, each (file, frame index within the file),
    held as one entry per file: memory grows with the files, never with what Number of
    Frames says; a frame is found by bisection."""

    def __init__(self) -> None:
        self._paths: list[Path] = []
        self._ends: list[int] = []  # frames up to and including each file

    def add(self, path: Path, frames: int) -> None:
        """`frames` frames of `path`, after those held."""
        self._paths.append(path)
        self._ends.append(len(self) + frames)

    def __len__(self) -> int:
        return self._ends[-1] if self._ends else 0

    def files(self) -> list[Path]:
        """The files, in the order of their frames."""
        return list(dict.fromkeys(self._paths))

    def __getitem__(self, k: int) -> tuple[Path, int]:
        if isinstance(k, slice):
            raise TypeError("a FrameList is indexed by frame, not sliced")
        if k < 0:
            k += len(self)
        if not 0 <= k < len(self):
            raise IndexError(k)
        n = bisect.bisect_right(self._ends, k)
        return self._paths[n], k - (self._ends[n - 1] if n else 0)


@dataclass
class SeriesFrames:
    """The frames of one series in display order: (file, frame index within the file)."""

    uid: str
    label: str
    header: Header  # of the first file, for attributes common to the series
    frames: FrameList = field(default_factory=FrameList)
    headers: dict[Path, Header] = field(default_factory=dict)


def parse_frames(spec: str | None) -> list[int] | None:
    """'1,5,10-20' -> 0-based indices [0, 4, 9, ..., 19]; None -> None (all)."""
    if not spec:
        return None
    out: list[int] = []
    for part in spec.split(","):
        part = part.strip()
        m = re.fullmatch(r"(\d+)(?:-(\d+))?", part)
        if not m:
            raise DicompressError(f"--frames: {part!r} is not N or N-M (1-based)")
        a = int(m.group(1))
        b = int(m.group(2) or a)
        if a < 1 or b < a:
            raise DicompressError(f"--frames: {part!r} is not a valid 1-based range")
        out.extend(range(a - 1, b))
    return sorted(set(out))


def choose(n: int, frames: list[int] | None, every: int | None) -> Sequence[int]:
    """Indices of `n` ordered frames chosen by --frames and --every (a range, not a list,
    when every frame is a candidate)."""
    chosen = range(n) if frames is None else [i for i in frames if i < n]
    if every and every > 1:
        chosen = chosen[::every]
    return chosen


def slice_position(ds: Header) -> float | None:
    """Distance along the slice normal (Image Position/Orientation Patient)."""
    try:
        row = [float(v) for v in ds.ImageOrientationPatient]
        position = [float(v) for v in ds.ImagePositionPatient]
    except (AttributeError, TypeError, ValueError):
        return None
    if len(row) != 6 or len(position) != 3:
        return None
    (rx, ry, rz), (cx, cy, cz) = row[:3], row[3:]
    # the normal is row x column; plain floats: numpy's call overhead on 3-vectors is
    # most of this function's time, and it runs for every picture exported
    normal = (ry * cz - rz * cy, rz * cx - rx * cz, rx * cy - ry * cx)
    return position[0] * normal[0] + position[1] * normal[1] + position[2] * normal[2]


def _safe(text: str) -> str:
    cleaned = re.sub(r"[^A-Za-z0-9._-]+|\.{2,}", "_", text).strip("._")
    return cleaned[:60] or "series"


def group_series(headers: list[tuple[Path, Header]], series_filter: str | None = None,
                 identifying_names: bool = True) -> list[SeriesFrames]:
    """Group image headers into series and order each by slice position, then Instance Number.

    Labels (which name exported files) come from the modality, series number and
    description and the file's name; without `identifying_names`, a description that
    may identify (PS3.15 Clean Descriptors test) and file names (which often hold a
    patient's name or ID) are left out."""
    groups: dict[str, list[tuple[Path, Header]]] = {}
    for path, ds in headers:
        uid = str(ds.get("SeriesInstanceUID", "")) or f"file:{path}"
        if series_filter and uid != series_filter:
            continue
        groups.setdefault(uid, []).append((path, ds))
    out = []
    for n, (uid, members) in enumerate(groups.items(), start=1):
        positions = [slice_position(ds) for _, ds in members]
        if len(members) > 1 and all(p is not None for p in positions):
            members = [m for _, m in sorted(zip(positions, members), key=lambda t: (t[0], str(t[1][0])))]
        else:
            members = sorted(members, key=lambda m: (_instance(m[1]), str(m[0])))
        first = members[0][1]
        description = str(first.get("SeriesDescription", "") or "")
        if not identifying_names and description and descriptor_identifies(first, description):
            description = ""
        parts = [str(first.get("Modality", "") or ""), str(first.get("SeriesNumber", "") or ""),
                 description]
        label = _safe("_".join(p for p in parts if p)) if any(parts) else f"series_{n}"
        stem = members[0][0].stem if identifying_names else f"image_{n}"
        if len(members) == 1 and not uid.startswith("file:"):
            label = _safe(f"{label}_{stem}")
        elif uid.startswith("file:"):
            label = _safe(stem)
        series = SeriesFrames(uid=uid, label=label, header=first)
        for path, ds in members:
            series.headers[path] = ds
            frames = header_number(ds, "NumberOfFrames", 0, 2**31 - 1, default=1) or 1
            series.frames.add(path, frames)
        out.append(series)
    # unique labels
    seen: dict[str, int] = {}
    for s in out:
        if s.label in seen:
            seen[s.label] += 1
            s.label = f"{s.label}_{seen[s.label]}"
        else:
            seen[s.label] = 1
    return out


def _instance(ds: Header) -> float:
    try:
        return float(ds.get("InstanceNumber"))
    except (TypeError, ValueError):
        return float("inf")

