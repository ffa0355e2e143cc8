"""Shared fixtures: the real corpus (pydicom's test files and pydicom-data)."""

from __future__ import annotations

import shutil
import warnings
from functools import lru_cache
from pathlib import Path

import numpy as np
import pydicom
import pytest

import dicompress  # noqa: F401  (registers the pydicom plugins)
from dicompress.samples import find_sample, sample_files

warnings.filterwarnings("ignore", module="pydicom")


# Sample files no target can be written from: damaged on purpose, 1-bit (only the
# native targets carry it), or beyond pydicom 3.0's decoders (J2K_pixelrep_mismatch:
# its sign correction writes to a read-only array).
KNOWN_UNTRANSCODABLE = {
    "J2K_pixelrep_mismatch.dcm", "JPEG-lossy.dcm", "JPEG2000-embedded-sequence-delimiter.dcm",
    "MR_truncated.dcm", "SC_rgb_jpeg.dcm", "liver.dcm", "liver_1frame.dcm", "liver_expb.dcm",
    "liver_expb_1frame.dcm", "meta_missing_tsyntax.dcm", "nested_priv_SQ.dcm",
    "badVR.dcm",
    # damaged: a value runs past the end of the file; no Sequence Delimitation Item
    "rtplan_truncated.dcm", "emri_small_jpeg_2k_lossless_too_short.dcm",
}


@lru_cache(maxsize=None)
def corpus_images() -> tuple[Path, ...]:
    """Sample files that are images pydicom can decode, with whole-byte samples."""
    found = []
    for path in sample_files():
        try:
            ds = pydicom.dcmread(path)
            if "PixelData" not in ds or ds.BitsAllocated not in (8, 16, 32):
                continue
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                ds.pixel_array  # noqa: B018  (must decode)
        except Exception:
            continue
        found.append(path)
    return tuple(found)


def uncompressed_images() -> list[Path]:
    out = []
    for path in corpus_images():
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        if not pydicom.uid.UID(ds.file_meta.TransferSyntaxUID).is_compressed:
            out.append(path)
    return out


def frames_of(path: Path) -> list[np.ndarray]:
    """Every frame as stored (no colour conversion), samples last."""
    try:
        return list(pydicom.pixels.iter_pixels(path, raw=True))
    except (ValueError, AttributeError):
        # deflated files cannot be read frame by frame from the path, and
        # pydicom 3.0 iter_pixels cannot sign-correct J2K in place (read-only array)
        arr = pydicom.pixels.pixel_array(pydicom.dcmread(path), raw=True)
        frames = int(pydicom.dcmread(path, stop_before_pixels=True).get("NumberOfFrames", 1) or 1)
        return list(arr) if frames > 1 else [arr]


def require_tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.skip(f"{name} is not installed (make system-deps)")
    return path


@pytest.fixture(scope="session")
def rg1() -> Path:
    return find_sample("RG1_UNCR.dcm")
