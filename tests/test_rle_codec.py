"""The native RLE codec on synthetic frames: layouts, segment order, optimal parse, G.3 rules."""

from __future__ import annotations

import struct

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from dicompress import rle
from dicompress.errors import UnsupportedLayout
from rle_reference import check_packets, decode_segment, optimal_row_cost


def segments(fragment: bytes) -> list[bytes]:
    count = struct.unpack("<I", fragment[:4])[0]
    offsets = list(struct.unpack("<15I", fragment[4:64]))[:count] + [len(fragment)]
    assert offsets[0] == 64
    return [fragment[offsets[i]: offsets[i + 1]] for i in range(count)]


LAYOUTS = [
    # (shape, dtype)
    ((1, 1), np.uint8), ((1, 1), np.uint16), ((1, 1, 3), np.uint8),
    ((7, 5), np.uint8), ((7, 5), np.int16), ((3, 129), np.uint16), ((129, 3), np.int32),
    ((64, 64), np.uint32), ((17, 31, 3), np.uint8), ((17, 31, 3), np.uint16),
    ((5, 300), np.int8), ((2, 2, 3), np.int32), ((4, 4, 3), np.uint32),
]


@pytest.mark.parametrize("shape,dtype", LAYOUTS, ids=[f"{s}-{np.dtype(d).name}" for s, d in LAYOUTS])
@pytest.mark.parametrize("kind", ["noise", "flat", "smooth"])
def test_round_trip_layouts(shape, dtype, kind):
    rng = np.random.default_rng(abs(hash((shape, kind))) % 2**32)
    info = np.iinfo(dtype)
    if kind == "noise":
        arr = rng.integers(info.min, info.max, size=shape, dtype=dtype, endpoint=True)
    elif kind == "flat":
        arr = np.full(shape, info.max, dtype=dtype)
    else:
        arr = (np.cumsum(rng.integers(-1, 2, size=shape), axis=1) % 50).astype(dtype)
    encoded = rle.encode_frame(arr)
    samples = shape[2] if len(shape) == 3 else 1
    assert len(segments(encoded)) == samples * np.dtype(dtype).itemsize
    decoded = rle.decode_frame(encoded, shape[0], shape[1], samples, np.dtype(dtype).itemsize * 8,
                               int(np.dtype(dtype).kind == "i"))
    assert decoded.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(decoded, arr)


def test_segment_order_is_most_significant_byte_first_sample_by_sample():
    # PS3.5 G.2: for 16-bit RGB the segments are R hi, R lo, G hi, G lo, B hi, B lo.
    arr = np.zeros((2, 3, 3), dtype=np.uint16)
    arr[..., 0], arr[..., 1], arr[..., 2] = 0x1122, 0x3344, 0x5566
    segs = segments(rle.encode_frame(arr))
    planes = [decode_segment(s, 6) for s in segs]
    assert planes == [bytes([b]) * 6 for b in (0x11, 0x22, 0x33, 0x44, 0x55, 0x66)]


def test_header_offsets_and_even_padding():
    arr = np.array([[1, 2, 3]], dtype=np.uint16)
    enc = rle.encode_frame(arr)
    count, *offsets = struct.unpack("<16I", enc[:64])
    assert count == 2
    # high bytes 00 00 00: one replicate packet (2 bytes); low bytes: literal(3) = 4 bytes
    assert offsets[0] == 64 and offsets[1] == 64 + 2 and len(enc) == 64 + 2 + 4
    assert enc[64:] == bytes([254, 0, 2, 1, 2, 3])
    assert offsets[2:] == [0] * 13
    arr8 = np.array([[1, 2]], dtype=np.uint8)  # literal(2) = 3 bytes -> padded to 4
    enc8 = rle.encode_frame(arr8)
    assert len(enc8) == 64 + 4 and enc8[-1] == 0


def test_planar_input_equals_interleaved_input():
    rng = np.random.default_rng(3)
    arr = rng.integers(0, 4, size=(9, 11, 3), dtype=np.uint8)
    planar = np.ascontiguousarray(arr.transpose(2, 0, 1))
    assert rle.encode_frame(planar, planar_configuration=1) == rle.encode_frame(arr)
    out = rle.decode_frame(rle.encode_frame(arr), 9, 11, 3, 8, planar_configuration=1)
    np.testing.assert_array_equal(out, planar)


def test_big_endian_and_non_contiguous_input():
    arr = np.arange(600, dtype=">u2").reshape(20, 30)
    view = np.arange(1200, dtype=np.uint16).reshape(20, 60)[:, ::2]
    for a in (arr, view):
        dec = rle.decode_frame(rle.encode_frame(a), 20, 30, 1, 16)
        np.testing.assert_array_equal(dec, a)


def test_one_bit_and_too_many_segments_are_refused():
    with pytest.raises(UnsupportedLayout, match="1-bit"):
        rle.encode_frame(np.zeros((4, 4), dtype=bool))
    with pytest.raises(UnsupportedLayout, match="at most 15"):
        rle.encode_frame(np.zeros((4, 4, 4), dtype=np.uint32))  # 16 segments
    with pytest.raises(UnsupportedLayout):
        rle.decode_frame(b"", 4, 4, 1, 1)
    with pytest.raises(UnsupportedLayout, match="integer"):
        rle.encode_frame(np.zeros((4, 4), dtype=np.float32))


def test_multi_frame_helpers_match_single_frame():
    rng = np.random.default_rng(5)
    frames = [rng.integers(0, 3, size=(33, 17), dtype=np.uint16) for _ in range(6)]
    encoded = rle.encode_frames(frames, threads=2)
    assert encoded == [rle.encode_frame(f) for f in frames]
    decoded = rle.decode_frames(encoded, 33, 17, 1, 16, threads=2)
    np.testing.assert_array_equal(decoded, np.stack(frames))


# -- optimal parse ---------------------------------------------------------------------------

def _edge_rows(rng: np.random.Generator, n: int) -> np.ndarray:
    parts, total = [], 0
    while total < n:
        length = int(rng.choice([1, 1, 1, 2, 2, 3, 126, 127, 128, 129, 130, 255, 256, 257]))
        parts.append(np.full(length, rng.integers(0, 4), dtype=np.uint8))
        total += length
    return np.concatenate(parts)[:n]


@pytest.mark.parametrize("seed", range(6))
def test_encoder_is_optimal_and_follows_g3(seed):
    rng = np.random.default_rng(seed)
    for trial in range(60):
        n = int(rng.integers(1, 600))
        row = _edge_rows(rng, n) if trial % 2 else rng.integers(0, 3, n, dtype=np.uint8)
        enc = rle.encode_frame(row.reshape(1, -1))
        (seg,) = segments(enc)
        best = optimal_row_cost(row.tobytes())
        assert len(seg) == best + (best & 1), f"row of {n}: {len(seg)} vs optimum {best}"
        check_packets(seg, n, 1)


def test_rows_are_coded_separately():
    # A run spanning rows must be split at the row boundary (PS3.5 G.3.1).
    arr = np.full((3, 100), 7, dtype=np.uint8)
    (seg,) = segments(rle.encode_frame(arr))
    assert seg == bytes([257 - 100, 7]) * 3 + b""
    check_packets(seg, 100, 3)


# -- properties around run and literal edges ----------------------------------------------

edge_lengths = st.sampled_from([1, 2, 3, 127, 128, 129, 130, 131, 255, 256, 257])


@st.composite
def run_rows(draw):
    pieces = draw(st.lists(st.tuples(edge_lengths, st.booleans(), st.integers(0, 255)),
                           min_size=1, max_size=8))
    row = bytearray()
    for length, literal, value in pieces:
        if literal:
            row += bytes((value + i * 7 + 1) % 256 for i in range(length))  # no equal neighbours
        else:
            row += bytes([value]) * length
    return bytes(row)


@settings(max_examples=300, deadline=None)
@given(row=run_rows(), rows=st.integers(1, 3), dtype=st.sampled_from(["u1", "u2", "i2", "u4"]))
def test_property_round_trip_and_rules(row, rows, dtype):
    item = np.dtype(dtype).itemsize
    usable = len(row) // item * item or item
    data = (row * item)[:usable]
    line = np.frombuffer(data, dtype=dtype)
    arr = np.tile(line, (rows, 1))
    enc = rle.encode_frame(arr)
    for seg in segments(enc):
        check_packets(seg, arr.shape[1], rows)
    dec = rle.decode_frame(enc, rows, arr.shape[1], 1, item * 8, int(dtype[0] == "i"))
    np.testing.assert_array_equal(dec, arr)


@settings(max_examples=200, deadline=None)
@given(row=run_rows())
def test_property_optimal_on_edge_rows(row):
    (seg,) = segments(rle.encode_frame(np.frombuffer(row, np.uint8).reshape(1, -1)))
    best = optimal_row_cost(row)
    assert len(seg) == best + (best & 1)
