"""The RLE codec on the real corpus, cross-checked with pydicom, pylibjpeg-rle and GDCM."""

from __future__ import annotations

import struct

import numpy as np
import pydicom
import pytest
from pydicom.encaps import generate_frames
from pydicom.uid import RLELossless

from conftest import corpus_images, frames_of, uncompressed_images
from dicompress import rle

CORPUS = corpus_images()
UNCOMPRESSED = uncompressed_images()


def _id(path):
    return path.name


def test_corpus_is_there():
    # pydicom's files plus pydicom-data's: a thin corpus would make the tests below weak
    assert len(CORPUS) > 100
    assert any(p.name == "RG1_UNCR.dcm" for p in CORPUS)


@pytest.mark.parametrize("path", CORPUS, ids=_id)
def test_round_trip_every_corpus_image(path):
    ds = pydicom.dcmread(path, stop_before_pixels=True)
    for arr in frames_of(path):
        enc = rle.encode_frame(arr)
        samples = arr.shape[2] if arr.ndim == 3 else 1
        dec = rle.decode_frame(enc, arr.shape[0], arr.shape[1], samples, arr.dtype.itemsize * 8,
                               int(arr.dtype.kind == "i"))
        assert dec.tobytes() == np.ascontiguousarray(arr.astype(arr.dtype.newbyteorder("<"))).tobytes()
    assert ds.Rows == arr.shape[0]


def _padded_size(fragments: list[bytes]) -> int:
    """Encoded size with every segment counted at even length (PS3.5 G.5).

    GDCM writes odd-length segments unpadded, which saves it a byte per odd
    segment while breaking G.5; comparing it as if it had padded keeps the
    comparison to conforming output."""
    total = 0
    for f in fragments:
        count = struct.unpack("<I", f[:4])[0]
        offsets = list(struct.unpack("<15I", f[4:64]))[:count] + [len(f)]
        total += 64 + sum((offsets[i + 1] - offsets[i] + 1) // 2 * 2 for i in range(count))
    return total


def _encoded_fragments(path, plugin):
    ds = pydicom.dcmread(path)
    ds.compress(RLELossless, encoding_plugin=plugin)
    n = int(ds.get("NumberOfFrames", 1) or 1)
    return ds, list(generate_frames(ds.PixelData, number_of_frames=n))


def _peer_plugins(ds) -> list[str]:
    peers = ["pydicom", "pylibjpeg"]
    # GDCM aborts the whole process (a C++ exception) on odd-sized colour images
    if ds.get("SamplesPerPixel", 1) == 1 or (ds.Rows * ds.Columns) % 2 == 0:
        peers.append("gdcm")
    return peers


def _encodable_by_pydicom(path) -> bool:
    """Sources pydicom's ``compress`` encodes correctly with every plugin.

    Not: 32-bit (refused by pydicom's RLE profile), planar colour (pydicom
    passes the planes as if interleaved), big endian (it passes the raw
    big-endian bytes as little endian) and YBR_FULL_422 (subsampled bytes).
    Our own transcode path handles all of those; tests in test_transcode.py."""
    ds = pydicom.dcmread(path, stop_before_pixels=True)
    return (
        ds.BitsAllocated in (8, 16)
        and ds.get("PlanarConfiguration", 0) == 0
        and ds.file_meta.TransferSyntaxUID != pydicom.uid.ExplicitVRBigEndian
        and ds.get("PhotometricInterpretation") != "YBR_FULL_422"
    )


@pytest.mark.peers
@pytest.mark.parametrize("path", [p for p in UNCOMPRESSED if _encodable_by_pydicom(p)], ids=_id)
def test_never_larger_than_any_peer_and_peers_decode_us(path):
    ours_ds, ours = _encoded_fragments(path, "dicompress")
    ours_size = sum(len(f) for f in ours)
    reference = pydicom.dcmread(path).pixel_array
    for peer in _peer_plugins(ours_ds):
        _, theirs = _encoded_fragments(path, peer)
        assert ours_size <= _padded_size(theirs), f"{peer} is smaller"
        # and we decode their output
        n = len(theirs)
        ds = pydicom.dcmread(path)
        ds.compress(RLELossless, encoding_plugin=peer)
        ds.pixel_array_options(decoding_plugin="dicompress")
        np.testing.assert_array_equal(ds.pixel_array, reference, err_msg=f"decoding {peer}'s output")
        assert n == len(ours)
    # pylibjpeg-rle and pydicom's own decoder read our output
    for decoder in ("pylibjpeg", "pydicom"):
        ours_ds.pixel_array_options(decoding_plugin=decoder)
        np.testing.assert_array_equal(ours_ds.pixel_array, reference, err_msg=decoder)


def test_issue_figures_for_pylibjpeg_overhead():
    """pylibjpeg-rle replicates every pair: 2.7% larger on RG1_UNCR, 6.8% on 693_UNCR."""
    from dicompress.samples import find_sample

    for name, low in (("RG1_UNCR.dcm", 1.02), ("693_UNCR.dcm", 1.06)):
        path = find_sample(name)
        _, ours = _encoded_fragments(path, "dicompress")
        _, theirs = _encoded_fragments(path, "pylibjpeg")
        assert sum(map(len, theirs)) / sum(map(len, ours)) > low


@pytest.mark.parametrize(
    "path", [p for p in CORPUS if pydicom.dcmread(p, stop_before_pixels=True).file_meta.TransferSyntaxUID == RLELossless],
    ids=_id,
)
def test_decode_rle_files_of_other_encoders_like_pydicom(path):
    ours = pydicom.dcmread(path)
    ours.pixel_array_options(decoding_plugin="dicompress")
    theirs = pydicom.dcmread(path)
    theirs.pixel_array_options(decoding_plugin="pydicom")
    np.testing.assert_array_equal(ours.pixel_array, theirs.pixel_array)


def test_plugins_are_registered_after_pydicoms():
    """Appended (pydicom's choice when no plugin is named stays its own: issue 17);
    tests/test_plugins.py checks every syntax."""
    from pydicom.pixels.decoders.base import RLELosslessDecoder
    from pydicom.pixels.encoders.base import RLELosslessEncoder

    assert "dicompress" in RLELosslessDecoder.available_plugins
    assert "dicompress" in RLELosslessEncoder.available_plugins


def test_compress_with_the_dicompress_plugin(rg1):
    ds = pydicom.dcmread(rg1)
    original = ds.pixel_array.copy()
    ds.compress(RLELossless, encoding_plugin="dicompress")
    assert ds.file_meta.TransferSyntaxUID == RLELossless
    ds.pixel_array_options(decoding_plugin="dicompress")
    np.testing.assert_array_equal(ds.pixel_array, original)


def test_plugin_widens_narrow_samples():
    # Bits Stored 8 in Bits Allocated 16: pydicom hands over one byte per sample
    from pydicom.dataset import Dataset, FileMetaDataset

    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = pydicom.uid.ExplicitVRLittleEndian
    ds.Rows, ds.Columns, ds.SamplesPerPixel = 4, 6, 1
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 8, 7, 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    arr = np.arange(-12, 12, dtype=np.int16).reshape(4, 6)
    ds.PixelData = arr.tobytes()
    ds.compress(RLELossless, encoding_plugin="dicompress")
    np.testing.assert_array_equal(ds.pixel_array, arr)
