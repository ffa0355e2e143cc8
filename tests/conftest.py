"""Shared fixtures: the real corpus (pydicom's test files and pydicom-data), and the corpus
transcoded once per target for the whole run, whichever worker asks first
(`transcoded_corpus`)."""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import os
import pickle
import shutil
import warnings
from functools import lru_cache
from pathlib import Path

import numpy as np
import pydicom
import pytest

import dicompress  # noqa: F401  (registers the pydicom plugins)
from common import frames_of  # noqa: F401  (imported from here by the test modules)
from dicompress.samples import find_sample, sample_files

warnings.filterwarnings("ignore", module="pydicom")


# -- make test: pytest-xdist, a test file per worker (--dist loadfile) ---------------------
#: Files started first, longest first: a file runs on one worker, so the last long file to
#: start bounds the run. Those that mostly wait (servers and subprocess runs started and
#: killed: gateway, batch, the benchmark run) alternate with those that keep a core busy.
#: The rest follow in name order. Times: tools/suite_times.py (BENCHMARKS.md, "Test suite").
LONGEST_FIRST = (
    "test_hostile.py", "test_gateway.py", "test_interop_targets.py", "test_batch.py",
    "test_direct.py", "test_benchmarks_quick.py", "test_codecs.py", "test_gateway_stow.py",
    "test_api.py", "test_gateway_memory.py", "test_deid.py", "test_gateway_fallback.py",
    "test_plugins.py", "test_compare.py", "test_export.py", "test_jpegxl.py",
)


def pytest_configure(config):
    # xdist would order the files by their number of tests (its --loadscope-reorder):
    # the few-test files that wait longest then ran last, each worker waiting alone
    if hasattr(config.option, "loadscopereorder"):
        config.option.loadscopereorder = False


def pytest_collection_modifyitems(config, items):
    rank = {name: n for n, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: files stay whole


@pytest.hookimpl(optionalhook=True)  # a hook of pytest-xdist: unknown without it
def pytest_xdist_auto_num_workers(config):
    """``-n auto`` (make test): one worker more than the cores this process may use. A
    third of the suite's time is spent waiting on servers and subprocesses (the
    gateway's peers, Orthanc, kill -9 and restart): the extra worker runs in those
    waits. PYTEST_XDIST_AUTO_NUM_WORKERS still decides when set."""
    if os.environ.get("PYTEST_XDIST_AUTO_NUM_WORKERS"):
        return None
    return len(os.sched_getaffinity(0)) + 1


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
                # must decode; as stored (raw): converting YBR to RGB decides nothing
                # and was half of this walk (every test process makes it)
                pydicom.pixels.pixel_array(ds, raw=True)
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


#: US Image and US Multi-frame Image Storage (PS3.4 B.5).
_US_IMAGE = ("1.2.840.10008.5.1.4.1.1.6.1", "1.2.840.10008.5.1.4.1.1.3.1")


def as_transcoded(source, output, arr: np.ndarray) -> np.ndarray:
    """A source frame (decoded raw) as a transcode writes it: a US image's JPEG YCbCr goes
    out as RGB (J2K then codes it with its colour transform, YBR_RCT/ICT, which decoders
    undo) unless the output keeps YBR_FULL by plane (PS3.3 C.8.5.6.1.16;
    tests/test_quality.py), converted by pydicom; any other frame as it is. `source`,
    `output`: their headers."""
    if converts_us_colour(source, output):
        return pydicom.pixels.convert_color_space(arr, "YBR_FULL", "RGB")
    return arr


def converts_us_colour(source, output) -> bool:
    """Whether a transcode from `source` to `output` (headers) coded a US image's JPEG
    YCbCr as RGB (as_transcoded)."""
    return (str(source.get("SOPClassUID", "")) in _US_IMAGE
            and source.get("PhotometricInterpretation") == "YBR_FULL_422"
            and output.get("PhotometricInterpretation") in ("RGB", "YBR_RCT", "YBR_ICT"))


def transcoded_view(source_path: Path, output_path: Path):
    """For assert_same_frames(source_as=...): None where a transcode keeps the frames as
    decoded, else the conversion (as_transcoded)."""
    source = pydicom.dcmread(source_path, stop_before_pixels=True)
    output = pydicom.dcmread(output_path, stop_before_pixels=True)
    if not converts_us_colour(source, output):
        return None
    return lambda arr: as_transcoded(source, output, arr)


def require_tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.skip(f"{name} is not installed (make system-deps)")
    return path


@pytest.fixture(scope="session")
def rg1() -> Path:
    return find_sample("RG1_UNCR.dcm")


@contextlib.contextmanager
def _locked(path: Path):
    """`path` locked (flock) while the block runs: one test process at a time."""
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@pytest.fixture(scope="session")
def transcoded_corpus(tmp_path_factory):
    """``transcoded_corpus(target, images=None)``: {source path: TranscodeResult} for
    `images` (default: every corpus image, `corpus_images`; else some of them)
    transcoded to `target` (a codec name) with verification, each file once per run:
    whichever test process (xdist worker) asks first transcodes it, the others wait for
    it and read its results (a folder of the run's base temporary directory, locked
    while it is written). The outputs are shared: copy one before changing it.
    `error` is not kept (the results pass between processes); `status` and `reason`
    say what happened."""
    from dicompress.batch import Source, transcode_many

    shared = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):  # .../pytest-N/popen-gwK: the run's folder
        shared = shared.parent
    everything = corpus_images()
    number = {path: n for n, path in enumerate(everything)}
    known: dict[str, dict[Path, object]] = {}

    def transcoded(target: str, images=None) -> dict[Path, object]:
        images = everything if images is None else tuple(images)
        have = known.setdefault(target, {})
        if any(path not in have for path in images):
            folder, store = shared / f"corpus-{target}", shared / f"corpus-{target}.pickle"
            with _locked(shared / f"corpus-{target}.lock"):
                done = pickle.loads(store.read_bytes()) if store.exists() else {}
                todo = [path for path in images if path not in done]
                if todo:
                    sources = [Source(path, Path(f"{number[path]:03d}_{path.name}"))
                               for path in todo]
                    for result in transcode_many(sources, folder, target):
                        done[result.source] = dataclasses.replace(result, error=None)
                    store.with_suffix(".tmp").write_bytes(pickle.dumps(done))
                    store.with_suffix(".tmp").replace(store)
            have.update(done)
        return {path: have[path] for path in images}

    return transcoded
