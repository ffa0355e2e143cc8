"""Shared fixtures: the real corpus (pydicom's test files and pydicom-data), and the corpus
transcoded once per target for the whole session (`transcoded_corpus`)."""

from __future__ import annotations

import shutil
import warnings
from functools import lru_cache
from pathlib import Path

import pydicom
import pytest

import dicompress  # noqa: F401  (registers the pydicom plugins)
from common import frames_of  # noqa: F401  (imported from here by the test modules)
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


@lru_cache(maxsize=None)
def uncompressed_images() -> tuple[Path, ...]:
    """The corpus images in a native (uncompressed) transfer syntax."""
    out = []
    for path in corpus_images():
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        if not pydicom.uid.UID(ds.file_meta.TransferSyntaxUID).is_compressed:
            out.append(path)
    return tuple(out)


def require_tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.skip(f"{name} is not installed (make system-deps)")
    return path


@pytest.fixture(scope="session")
def rg1() -> Path:
    return find_sample("RG1_UNCR.dcm")


@pytest.fixture(scope="session")
def transcoded_corpus(tmp_path_factory):
    """``transcoded_corpus(target, images=None)``: {source path: TranscodeResult} for
    `images` (default: every corpus image, `corpus_images`) transcoded to `target` (a
    codec name) with verification, once per target for the session, whichever module
    asks first; a subset is taken from the whole corpus when that was done. The
    outputs are shared: copy one before changing it."""
    from dicompress.batch import Source, transcode_many

    done: dict[tuple[str, tuple[Path, ...]], dict[Path, object]] = {}

    def transcoded(target: str, images=None) -> dict[Path, object]:
        everything = corpus_images()
        images = everything if images is None else tuple(images)
        if (target, everything) in done:
            whole = done[target, everything]
            return {path: whole[path] for path in images}
        if (target, images) not in done:
            out = tmp_path_factory.mktemp(f"corpus-{target}")
            sources = [Source(p, Path(f"{i:03d}_{p.name}")) for i, p in enumerate(images)]
            done[target, images] = {r.source: r for r in transcode_many(sources, out, target)}
        return done[target, images]

    return transcoded
