"""Hostile RLE fragments: each class of damage gets its own exact error (PS3.5 G.4/G.5)."""

from __future__ import annotations

import struct

import numpy as np
import pytest

from dicompress import rle
from dicompress.errors import CorruptPixelData

ROWS, COLS = 4, 5
GOOD_ARR = (np.arange(ROWS * COLS, dtype=np.uint16) * 257).reshape(ROWS, COLS)


def good() -> bytearray:
    return bytearray(rle.encode_frame(GOOD_ARR))


def decode(data, rows=ROWS, cols=COLS, samples=1, bits=16):
    return rle.decode_frame(bytes(data), rows, cols, samples, bits)


def with_header(count: int, offsets: list[int], body: bytes) -> bytes:
    head = struct.pack("<I", count) + struct.pack(f"<{len(offsets)}I", *offsets)
    return head.ljust(64, b"\0") + body


def test_valid_fragment_decodes():
    np.testing.assert_array_equal(decode(good()), GOOD_ARR)


def test_corrupt_pixel_data_is_a_value_error():
    assert issubclass(CorruptPixelData, ValueError)


@pytest.mark.parametrize("length", [0, 1, 63])
def test_header_truncated(length):
    with pytest.raises(CorruptPixelData, match=f"fragment is {length} bytes, shorter than the 64-byte RLE header"):
        decode(good()[:length])


@pytest.mark.parametrize("count", [0, 16, 0xFFFFFFFF])
def test_segment_count_out_of_range(count):
    data = good()
    data[:4] = struct.pack("<I", count)
    with pytest.raises(CorruptPixelData, match=f"header says {count} segments; PS3.5 G.5 allows 1 to 15"):
        decode(data)


def test_segment_count_disagrees_with_layout():
    with pytest.raises(CorruptPixelData, match="header says 2 segments but the image needs 1"):
        decode(good(), bits=8)
    with pytest.raises(CorruptPixelData, match="header says 2 segments but the image needs 6"):
        decode(good(), samples=3)


def test_first_offset_not_64():
    data = good()
    data[4:8] = struct.pack("<I", 60)
    with pytest.raises(CorruptPixelData, match="segment 1 starts at offset 60; it must start at 64"):
        decode(data)


def test_offsets_not_increasing():
    data = good()
    data[8:12] = struct.pack("<I", 64)
    with pytest.raises(CorruptPixelData, match="segment 2 offset 64 is not after the previous segment"):
        decode(data)


def test_offset_past_the_end():
    data = good()
    data[8:12] = struct.pack("<I", len(data) + 10)
    with pytest.raises(CorruptPixelData, match=f"segment 2 offset {len(data) + 10} .* inside the fragment"):
        decode(data)


def test_offset_beyond_32_bits_of_a_short_fragment():
    data = good()
    data[8:12] = struct.pack("<I", 0xFFFFFFF0)
    with pytest.raises(CorruptPixelData, match="segment 2 offset"):
        decode(data)


def test_segment_truncated_in_a_literal():
    # one 8-bit segment: literal header says 20 bytes, only 5 follow
    data = with_header(1, [64], bytes([19]) + bytes(5))
    with pytest.raises(CorruptPixelData, match="segment 1 of 1 ends after 5 bytes; the image needs 20"):
        decode(data, bits=8)


def test_segment_truncated_after_a_replicate_header():
    data = with_header(1, [64], bytes([0xFB]))  # replicate header, value byte missing
    with pytest.raises(CorruptPixelData, match="segment 1 of 1 ends after 0 bytes; the image needs 20"):
        decode(data, bits=8)


def test_segment_decodes_short():
    data = with_header(1, [64], bytes([257 - 10, 7]))  # 10 of 20 bytes
    with pytest.raises(CorruptPixelData, match="ends after 10 bytes; the image needs 20"):
        decode(data, bits=8)


def test_empty_segment():
    data = with_header(2, [64, 64 + 2], bytes([257 - 20, 1]))  # second segment has no bytes
    with pytest.raises(CorruptPixelData, match="offset .* inside the fragment"):
        decode(data)


def test_replicate_past_the_plane_is_long():
    data = with_header(1, [64], bytes([257 - 20, 1, 257 - 2, 9]))  # 22 bytes for 20
    with pytest.raises(CorruptPixelData, match="segment 1 of 1 holds more data than the 20 bytes"):
        decode(data, bits=8)


def test_literal_past_the_plane_is_long():
    data = with_header(1, [64], bytes([257 - 18, 1, 3]) + bytes(4))  # 18 + 4 bytes for 20
    with pytest.raises(CorruptPixelData, match="holds more data than the 20 bytes"):
        decode(data, bits=8)


def test_trailing_pixel_data_after_the_plane_is_long():
    data = with_header(1, [64], bytes([257 - 20, 1, 0x00, 5, 0x00, 0x00]))
    with pytest.raises(CorruptPixelData, match="holds more data"):
        decode(data, bits=8)


def test_one_padding_byte_and_noop_codes_are_accepted():
    for tail in (b"\x00", b"\x80\x80", b"\x80\x80\x00"):
        data = with_header(1, [64], bytes([0x80, 257 - 20, 1]) + tail)  # -128 is a no-op
        np.testing.assert_array_equal(decode(data, bits=8), np.ones((ROWS, COLS), np.uint8))


def test_every_truncation_of_a_real_fragment_raises_cleanly():
    data = bytes(good())
    for n in range(len(data) - 1):
        try:
            decode(data[:n])
        except CorruptPixelData:
            continue
        # a cut inside the final padding may still decode; then it must be exact
        np.testing.assert_array_equal(decode(data[:n]), GOOD_ARR)


def test_random_garbage_never_crashes():
    rng = np.random.default_rng(0)
    base = bytes(good())
    for _ in range(3000):
        data = bytearray(base)
        for _ in range(int(rng.integers(1, 6))):
            data[int(rng.integers(0, len(data)))] = int(rng.integers(0, 256))
        try:
            out = decode(data)
        except CorruptPixelData:
            continue
        assert out.shape == (ROWS, COLS)


def test_output_buffer_is_checked():
    with pytest.raises(ValueError, match="out must be"):
        rle.decode_frame(bytes(good()), ROWS, COLS, 1, 16, out=np.empty((2, 2), np.uint16))
