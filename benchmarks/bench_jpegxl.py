"""JPEG XL lossless (efforts 1, 2, 3, 7) against its lossless peers JPEG-LS, JPEG 2000 and
HTJ2K, frame encoding through the same codec interface, one group per image (CT, MR, two
CR, US); and jpegxl-jpeg's saving on pydicom's JPEG baseline samples. Each row carries the
compression ratio (frame bytes as stored / encoded bytes) and MB/s of stored bytes in
``extra_info``. Rows in BENCHMARKS.md ("JPEG XL")."""

from __future__ import annotations

import numpy as np
import pydicom
import pytest
from pydicom.encaps import generate_frames

from conftest import QUICK
from dicompress.codecs import get_codec
from dicompress.layout import FrameLayout
from dicompress.samples import find_sample
from dicompress.pipeline.frames import iter_frames

# (group, file): unsigned images (JPEG XL codes no signed samples).
IMAGES = (
    ("CT", "eCT_Supplemental.dcm"),  # 512 x 512, 16 bits stored
    ("MR", "MR2_UNCR.dcm"),  # 1024 x 1024, 12 bits
    ("CR", "RG1_UNCR.dcm"),  # 1955 x 1841, 15 bits
    ("CR-10bit", "RG3_UNCR.dcm"),  # 1760 x 1760, 10 bits
    ("US", "US1_UNCR.dcm"),  # 480 x 640 RGB
)
SYNTHETIC = (("CT", 48, 61, 16), ("MR", 64, 64, 12))
CODECS = (
    ("jpegxl-e1", "jpegxl", {"effort": 1}),
    ("jpegxl-e2", "jpegxl", {"effort": 2}),
    ("jpegxl-e3", "jpegxl", {"effort": 3}),
    ("jpegxl-e7", "jpegxl", {"effort": 7}),
    ("jpegls", "jpegls", {}),
    ("j2k", "j2k", {}),
    ("htj2k", "htj2k", {}),
)
JPEG_BASELINE = ("SC_rgb_jpeg_dcmtk.dcm", "SC_rgb_dcmtk_+eb+cy+np.dcm", "SC_rgb_jpeg_lossy_gdcm.dcm",
                 "SC_jpeg_no_color_transform.dcm", "examples_ybr_color.dcm",
                 "color3d_jpeg_baseline.dcm")


def _images():
    if QUICK:
        rng = np.random.default_rng(0)
        for group, rows, columns, bits in SYNTHETIC:
            arr = rng.integers(0, 1 << bits, (rows, columns)).astype(np.uint16)
            yield group, arr, FrameLayout(rows=rows, columns=columns, bits_allocated=16,
                                          bits_stored=bits)
        return
    for group, name in IMAGES:
        layout, frames = iter_frames(find_sample(name))
        yield group, next(frames), layout


_PREPARED = list(_images())


@pytest.mark.parametrize(("label", "name", "options"), CODECS, ids=[c[0] for c in CODECS])
@pytest.mark.parametrize("image", range(len(_PREPARED)),
                         ids=[f"{p[0]}" for p in _PREPARED])
def bench_lossless_encode(benchmark, image, label, name, options):
    group, arr, layout = _PREPARED[image]
    benchmark.group = f"jpegxl-lossless-{group}"
    codec = get_codec(name, **options)
    codec.check_layout(layout)
    data = benchmark.pedantic(codec.encode_frame, args=(arr, layout, 1),
                              rounds=1 if QUICK else 3, iterations=1)
    np.testing.assert_array_equal(codec.decode_frame(data, layout), arr)
    seconds = benchmark.stats.stats.mean
    benchmark.extra_info.update(
        codec=label, ratio=round(arr.nbytes / len(data), 2),
        mb_per_s=round(arr.nbytes / 1e6 / seconds, 1), bytes_in=arr.nbytes, bytes_out=len(data),
    )


@pytest.mark.benchmark(group="jpegxl-jpeg")
@pytest.mark.parametrize("name", JPEG_BASELINE[:1] if QUICK else JPEG_BASELINE)
def bench_jpeg_recompression(benchmark, name):
    """Every frame of a JPEG baseline sample recompressed; the saving in extra_info."""
    ds = pydicom.dcmread(find_sample(name))
    fragments = list(generate_frames(ds.PixelData, number_of_frames=int(ds.get("NumberOfFrames", 1))))
    codec = get_codec("jpegxl-jpeg")
    layout = FrameLayout.from_dataset(ds)
    syntax = str(ds.file_meta.TransferSyntaxUID)

    def run():
        return [codec.from_encoded(f, syntax, layout) for f in fragments]

    out = benchmark.pedantic(run, rounds=1, iterations=1)
    before, after = sum(len(f) for f in fragments), sum(len(d) for d in out)
    benchmark.extra_info.update(frames=len(fragments), bytes_in=before, bytes_out=after,
                                saving_percent=round(100 * (1 - after / before), 1))


@pytest.mark.parametrize(("label", "name", "options"), CODECS, ids=[c[0] for c in CODECS])
@pytest.mark.parametrize("image", range(len(_PREPARED)),
                         ids=[f"{p[0]}" for p in _PREPARED])
def bench_lossless_decode(benchmark, image, label, name, options):
    group, arr, layout = _PREPARED[image]
    benchmark.group = f"jpegxl-lossless-decode-{group}"
    codec = get_codec(name, **options)
    data = codec.encode_frame(arr, layout, 1)
    back = benchmark.pedantic(codec.decode_frame, args=(data, layout),
                              rounds=1 if QUICK else 3, iterations=1)
    np.testing.assert_array_equal(back, arr)
    benchmark.extra_info.update(codec=label,
                                mb_per_s=round(arr.nbytes / 1e6 / benchmark.stats.stats.mean, 1))
