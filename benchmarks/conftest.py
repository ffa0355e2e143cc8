"""Shared data for the benchmarks: the images, prepared once, and their RLE twins.

Every implementation is driven through the same pydicom plugin path
(``Encoder.encode(ds, encoding_plugin=...)`` and
``Decoder.as_array(ds, decoding_plugin=...)``), so the numbers compare codecs
as a pydicom user meets them, with pydicom's own per-call overhead included
for all of them alike.

``DICOMPRESS_BENCH_QUICK=1`` swaps the real files for small synthetic images
and one round per benchmark, so that a test can prove the suite runs.
"""

from __future__ import annotations

import copy
import os
import shutil
from dataclasses import dataclass

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.pixels import get_decoder, get_encoder
from pydicom.uid import ExplicitVRLittleEndian, RLELossless, generate_uid

import dicompress  # noqa: F401  (registers the "dicompress" pydicom plugins)

QUICK = os.environ.get("DICOMPRESS_BENCH_QUICK", "") not in ("", "0")


def require_tool(name: str) -> str:
    """The path of a peer's command-line tool; the benchmark is skipped without it."""
    path = shutil.which(name)
    if path is None:
        pytest.skip(f"{name} is not installed (make system-deps)")
    return path

# Real files from pydicom-data: a 7 MB CR, a 2 MB MR and a signed 0.5 MB CT-like image.
CORPUS_FILES = ("RG1_UNCR.dcm", "MR2_UNCR.dcm", "693_UNCR.dcm")

# pydicom plugin name -> the name used in tables.
IMPLEMENTATIONS = {
    "dicompress": "dicompress",
    "pylibjpeg": "pylibjpeg-rle",
    "gdcm": "GDCM",
    "pydicom": "pydicom",
}

# (name, rows, columns, bits_stored, pixel_representation): shaped like the corpus files.
SYNTHETIC = (
    ("synthetic-cr-96x80", 96, 80, 15, 0),
    ("synthetic-mr-64x64", 64, 64, 12, 0),
    ("synthetic-ct-48x61", 48, 61, 14, 1),
)


def _register_gdcm_decoder() -> None:
    """Give pydicom's RLE decoder a "gdcm" plugin for the duration of the benchmarks.

    pydicom 3 ships a GDCM frame decoder but lists only the JPEG family in its
    ``DECODER_DEPENDENCIES``, so GDCM is never offered for RLE Lossless. The
    frame function itself is codec-agnostic (it hands GDCM the fragment and the
    transfer syntax), so it is added here, unchanged, to compare like with like.
    """
    try:
        from pydicom.pixels.decoders import gdcm as pydicom_gdcm
    except ImportError:  # pragma: no cover - pydicom always has the module
        return
    if not pydicom_gdcm.HAVE_GDCM:
        return
    decoder = get_decoder(RLELossless)
    decoder._available.setdefault("gdcm", pydicom_gdcm._decode_frame)


_register_gdcm_decoder()


@dataclass(frozen=True)
class Case:
    """One image, ready for every implementation; the benchmarks time its first frame."""

    name: str
    dataset: Dataset  # uncompressed
    rle_dataset: Dataset  # the same pixels as RLE Lossless, encoded by dicompress
    pixels: np.ndarray  # the first frame, decoded, for checking outputs
    uncompressed_bytes: int  # of the first frame
    rle_bytes: int  # of dicompress's RLE fragment for the first frame

    def with_fragments(self, fragments: list[bytes]) -> Dataset:
        """The dataset with `fragments` as its RLE Pixel Data (to check an encoder's output)."""
        return rle_dataset(self.dataset, fragments)


def rle_dataset(ds: Dataset, fragments: list[bytes]) -> Dataset:
    """A copy of `ds` whose Pixel Data is the encapsulated RLE `fragments`."""
    out = copy.deepcopy(ds)
    out.file_meta.TransferSyntaxUID = RLELossless
    out.PixelData = encapsulate(fragments)
    out["PixelData"].VR = "OB"
    out["PixelData"].is_undefined_length = True
    return out


def synthetic_dataset(rows: int, columns: int, bits_stored: int, signed: int) -> Dataset:
    """A single-frame MONOCHROME2 image with smooth areas, edges and noise.

    The mixture gives the encoders both replicate runs and literal stretches,
    like a radiograph with collimated borders.
    """
    rng = np.random.default_rng(rows * 1000 + columns)
    y, x = np.mgrid[0:rows, 0:columns]
    top = (1 << (bits_stored - 1)) - 1 if signed else (1 << bits_stored) - 1
    bottom = -(1 << (bits_stored - 1)) if signed else 0
    image = bottom + (x * 7 + y * 3) % (top - bottom + 1)
    image = image + rng.integers(-3, 4, size=image.shape)
    image[:, : columns // 6] = bottom  # a flat border: long replicate runs
    image = np.clip(image, bottom, top).astype("<i2" if signed else "<u2")

    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.7"
    ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID
    ds.Rows, ds.Columns = rows, columns
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = 16
    ds.BitsStored = bits_stored
    ds.HighBit = bits_stored - 1
    ds.PixelRepresentation = signed
    ds.PixelData = image.tobytes()
    return ds


def case_names() -> list[str]:
    return [name for name, *_ in SYNTHETIC] if QUICK else list(CORPUS_FILES)


def load_case(name: str) -> Case:
    if QUICK:
        _, rows, columns, bits_stored, signed = next(s for s in SYNTHETIC if s[0] == name)
        ds = synthetic_dataset(rows, columns, bits_stored, signed)
    else:
        from dicompress.samples import find_sample

        try:
            path = find_sample(name)
        except FileNotFoundError as exc:
            pytest.skip(str(exc))
        ds = pydicom.dcmread(path)
    if ds.file_meta.TransferSyntaxUID.is_compressed:
        raise ValueError(f"{name}: benchmark input must be uncompressed")
    frames = int(getattr(ds, "NumberOfFrames", 1) or 1)
    fragments = [
        get_encoder(RLELossless).encode(ds, index=i, encoding_plugin="dicompress")
        for i in range(frames)
    ]
    return Case(
        name=name,
        dataset=ds,
        rle_dataset=rle_dataset(ds, fragments),
        pixels=pydicom.pixels.pixel_array(ds, index=0),
        uncompressed_bytes=ds.Rows * ds.Columns * ds.SamplesPerPixel * (ds.BitsAllocated // 8),
        rle_bytes=len(fragments[0]),
    )


def pytest_generate_tests(metafunc):
    """Every benchmark taking `plugin` runs once per implementation."""
    if "plugin" in metafunc.fixturenames:
        metafunc.parametrize("plugin", list(IMPLEMENTATIONS))


@pytest.fixture(scope="module", params=case_names())
def case(request) -> Case:
    """One prepared image per module (pytest orders the tests so each is built once)."""
    return load_case(request.param)


@pytest.fixture
def measure(benchmark):
    """Time a call with pytest-benchmark and return its result.

    ``measure(func)`` lets pytest-benchmark calibrate the rounds;
    ``measure(func, rounds=n)`` runs exactly `n` (for the slow pure-Python
    peer); quick mode always runs one.
    """

    def run(func, rounds: int | None = None):
        if QUICK:
            return benchmark.pedantic(func, rounds=1, iterations=1)
        if rounds is not None:
            return benchmark.pedantic(func, rounds=rounds, iterations=1)
        return benchmark(func)

    return run


@pytest.fixture
def record(benchmark):
    """``record(case, operation, plugin, compressed_bytes)``: fill the JSON record."""

    def store(case: Case, operation: str, plugin: str, compressed_bytes: int) -> None:
        _record(benchmark, case, operation, plugin, compressed_bytes)

    return store


def _record(benchmark, case: Case, operation: str, plugin: str, compressed_bytes: int) -> None:
    """Store what the table needs in the benchmark's JSON record."""
    info = benchmark.extra_info
    info["file"] = case.name
    info["operation"] = operation
    info["implementation"] = IMPLEMENTATIONS.get(plugin, plugin)
    info["plugin"] = plugin
    info["rows"] = int(case.dataset.Rows)
    info["columns"] = int(case.dataset.Columns)
    info["bits_allocated"] = int(case.dataset.BitsAllocated)
    info["bits_stored"] = int(case.dataset.BitsStored)
    info["uncompressed_bytes"] = case.uncompressed_bytes
    info["compressed_bytes"] = compressed_bytes
    info["compression_ratio"] = round(case.uncompressed_bytes / compressed_bytes, 4)
    stats = getattr(benchmark, "stats", None)  # None when benchmarks are disabled
    if stats is not None:
        info["mb_per_s"] = round(case.uncompressed_bytes / stats.stats.mean / 1e6, 3)
