"""Independent reference computations for the RLE tests (slow, exact)."""

from __future__ import annotations


def optimal_row_cost(row: bytes) -> int:
    """Fewest bytes any valid PS3.5 G.3 packet sequence can code `row` in.

    Exhaustive dynamic programme over every packet boundary: a literal packet
    of 1..128 bytes costs len + 1, a replicate packet of 2..128 equal bytes
    costs 2.
    """
    n = len(row)
    inf = float("inf")
    best = [0] + [inf] * n
    for i in range(1, n + 1):
        for k in range(1, min(128, i) + 1):  # literal of k bytes ending at i
            c = best[i - k] + k + 1
            if c < best[i]:
                best[i] = c
        k = 1
        while k < min(128, i) and row[i - 1 - k] == row[i - 1]:
            k += 1  # row[i-k : i] all equal
            c = best[i - k] + 2
            if c < best[i]:
                best[i] = c
    return int(best[n])


def decode_segment(seg: bytes, length: int) -> bytes:
    """Plain reading of PS3.5 G.3.2, for cross-checking."""
    out = bytearray()
    pos = 0
    while len(out) < length:
        h = seg[pos]
        pos += 1
        if h < 128:
            out += seg[pos : pos + h + 1]
            pos += h + 1
        elif h > 128:
            out += bytes([seg[pos]]) * (257 - h)
            pos += 1
    return bytes(out)


def check_packets(seg: bytes, row_length: int, rows: int) -> None:
    """Assert the G.3 rules on an encoded segment: rows coded separately,
    no -128 code, runs of three or more identical bytes never inside a literal,
    even length."""
    assert len(seg) % 2 == 0, "segment of odd length"
    pos = 0
    for _ in range(rows):
        produced = 0
        while produced < row_length:
            h = seg[pos]
            pos += 1
            assert h != 128, "-128 code used"
            if h < 128:
                lit = seg[pos : pos + h + 1]
                for a in range(len(lit) - 2):
                    assert not (lit[a] == lit[a + 1] == lit[a + 2]), "3-byte repeat in a literal"
                pos += h + 1
                produced += h + 1
            else:
                pos += 1
                produced += 257 - h
            assert produced <= row_length, "packet crosses a row boundary"
    assert len(seg) - pos <= 1, "data after the last row"
