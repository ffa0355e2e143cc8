"""Deflated Image Frame Compression (1.2.840.10008.1.2.8.1): each frame raw-deflated alone,
checked with Python's zlib against the source frames packed here (no code of the codec)."""

from __future__ import annotations

import zlib
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.encaps import generate_frames

from conftest import frames_of, uncompressed_images
from dicompress import uids
from dicompress.codecs import get_codec
from dicompress.errors import CorruptPixelData
from dicompress.layout import FrameLayout
from dicompress.samples import find_sample
from dicompress.transcode import transcode_file

SEGMENTATIONS = ["liver.dcm", "liver_1frame.dcm"]


def _expected_native(frame: np.ndarray, bits_allocated: int) -> bytes:
    """A frame's native bytes: 1-bit pixels packed from a byte boundary, LSB first."""
    if bits_allocated == 1:
        return np.packbits(frame.reshape(-1), bitorder="little").tobytes()
    return frame.astype(frame.dtype.newbyteorder("<")).tobytes()


def _check(path: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.dcm"
    transcode_file(path, out, "deflate-frames")
    ds = pydicom.dcmread(out)
    assert ds.file_meta.TransferSyntaxUID == uids.DeflatedImageFrameCompression
    source = frames_of(path)
    fragments = list(generate_frames(ds.PixelData, number_of_frames=len(source)))
    assert len(fragments) == len(source)
    for fragment, frame in zip(fragments, source, strict=True):
        # RFC 1951 raw deflate: no zlib (RFC 1950) header, so zlib's own format refuses it
        with pytest.raises(zlib.error):
            zlib.decompress(fragment)
        inflater = zlib.decompressobj(-15)
        assert inflater.decompress(fragment) == _expected_native(frame, ds.BitsAllocated)
        assert inflater.eof and inflater.unused_data in (b"", b"\0")
    for a, b in zip(source, frames_of(out), strict=True):  # pydicom, through our plugin
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("name", SEGMENTATIONS)
def test_one_bit_segmentations(name, tmp_path):
    _check(find_sample(name), tmp_path)


@pytest.mark.parametrize("path", uncompressed_images(), ids=lambda p: p.name)
def test_every_uncompressed_corpus_image(path, tmp_path):
    _check(path, tmp_path)


def test_one_bit_frames_start_on_a_byte_boundary():
    """3 x 3 pixels: 9 bits, so each frame is 2 bytes with 7 zero pad bits."""
    layout = FrameLayout(rows=3, columns=3, bits_allocated=1, bits_stored=1)
    codec = get_codec("deflate-frames")
    frame = np.ones((3, 3), np.uint8)
    data = codec.encode_frame(frame, layout)
    assert zlib.decompress(data, -15) == b"\xff\x01"
    np.testing.assert_array_equal(codec.decode_frame(data, layout), frame)


@pytest.fixture
def frame():
    layout = FrameLayout(rows=64, columns=64, bits_allocated=16, bits_stored=16)
    arr = (np.arange(64 * 64, dtype=np.uint16) % 300).reshape(64, 64)
    return get_codec("deflate-frames").encode_frame(arr, layout), layout


def test_cut_frame_is_refused(frame):
    data, layout = frame
    with pytest.raises(CorruptPixelData, match="cut short|cannot be inflated"):
        get_codec("deflate-frames").decode_frame(data[: len(data) // 2], layout)


def test_frame_inflating_to_more_than_a_frame_is_refused(frame):
    _, layout = frame
    bomb = zlib.compressobj(9, zlib.DEFLATED, -15)
    data = bomb.compress(b"\0" * (1 << 24)) + bomb.flush()
    with pytest.raises(CorruptPixelData, match="more than the 8192 bytes"):
        get_codec("deflate-frames").decode_frame(data, layout)


def test_frame_of_another_size_is_refused(frame):
    _, layout = frame
    short = zlib.compressobj(9, zlib.DEFLATED, -15)
    data = short.compress(b"\0" * 100) + short.flush()
    with pytest.raises(CorruptPixelData, match="holds 100 bytes; a frame is 8192"):
        get_codec("deflate-frames").decode_frame(data, layout)


def test_data_after_the_stream_is_refused(frame):
    data, layout = frame
    with pytest.raises(CorruptPixelData, match="after the end"):
        get_codec("deflate-frames").decode_frame(data + b"junk", layout)
    get_codec("deflate-frames").decode_frame(data + b"\0", layout)  # the pad byte is fine
