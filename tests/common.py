"""Shared checks (as numcodecs' tests/common.py): one place for the comparisons that many
test modules make, so that each does it the same way.

`assert_same_frames` is the bit-exact check of a lossless output: the output's frames,
decoded by pydicom (a reader that shares no code with our writer), equal the source's.
A source's frames are decoded once per session and kept as digests (the corpus is read
by eight modules against a dozen targets); an output whose digests differ is compared
value by value with numpy, which says where it differs (and, as before, passes where only
the sample type differs).
"""

from __future__ import annotations

import hashlib
from functools import lru_cache
from pathlib import Path

import numpy as np


def frames_of(path: Path) -> list[np.ndarray]:
    """Every frame as stored (no colour conversion), samples last."""
    import pydicom

    try:
        return list(pydicom.pixels.iter_pixels(path, raw=True))
    except (ValueError, AttributeError):
        # deflated files cannot be read frame by frame from the path, and
        # pydicom 3.0 iter_pixels cannot sign-correct J2K in place (read-only array)
        arr = pydicom.pixels.pixel_array(pydicom.dcmread(path), raw=True)
        frames = int(pydicom.dcmread(path, stop_before_pixels=True).get("NumberOfFrames", 1) or 1)
        return list(arr) if frames > 1 else [arr]


def _digest(frame: np.ndarray) -> tuple:
    frame = np.ascontiguousarray(frame)
    return frame.shape, frame.dtype.str, hashlib.sha256(frame.data).hexdigest()


def frame_digests(path: Path) -> tuple[tuple, ...]:
    """(shape, sample type, SHA-256) of each frame of `path` as `frames_of` decodes it;
    decoded once per session while the file stays as it is."""
    stat = Path(path).stat()
    return _frame_digests(Path(path), stat.st_ino, stat.st_size, stat.st_mtime_ns)


@lru_cache(maxsize=None)
def _frame_digests(path: Path, *version) -> tuple[tuple, ...]:
    return tuple(_digest(frame) for frame in frames_of(path))


def assert_same_frames(source: Path, output: Path, label: str = "",
                       output_frames: list[np.ndarray] | None = None,
                       source_as=None) -> None:
    """`output`'s frames (or `output_frames`, decoded by the caller) equal `source`'s
    (each passed through `source_as` first, when given: e.g. conftest.as_transcoded),
    frame for frame, as many of them."""
    decoded = frames_of(output) if output_frames is None else output_frames
    if source_as is None and tuple(_digest(frame) for frame in decoded) == frame_digests(source):
        return
    label = label or f"{source.name} -> {output.name}"
    for k, (a, b) in enumerate(zip(frames_of(source), decoded, strict=True), 1):
        a = a if source_as is None else source_as(a)
        np.testing.assert_array_equal(a, b, err_msg=f"{label}, frame {k}")
