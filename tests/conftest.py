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


#: US Image and US Multi-frame Image Storage (PS3.4 B.5).
_US_IMAGE = ("1.2.840.10008.5.1.4.1.1.6.1", "1.2.840.10008.5.1.4.1.1.3.1")


def as_transcoded(source, output, arr: np.ndarray) -> np.ndarray:
    """A source frame (decoded raw) as a transcode writes it: a US image's JPEG YCbCr goes
    out as RGB (J2K then codes it with its colour transform, YBR_RCT/ICT, which decoders
    undo) unless the output keeps YBR_FULL by plane (PS3.3 C.8.5.6.1.16;
    tests/test_quality.py), converted by pydicom; any other frame as it is. `source`,
    `output`: their headers."""
    if (str(source.get("SOPClassUID", "")) in _US_IMAGE
            and source.get("PhotometricInterpretation") == "YBR_FULL_422"
            and output.get("PhotometricInterpretation") in ("RGB", "YBR_RCT", "YBR_ICT")):
        return pydicom.pixels.convert_color_space(arr, "YBR_FULL", "RGB")
    return arr


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
