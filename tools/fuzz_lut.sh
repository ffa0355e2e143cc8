#!/usr/bin/env bash
# Build and run the libFuzzer target for the native display LUTs.
#
# Usage: tools/fuzz_lut.sh [extra libFuzzer arguments]
#   FUZZ_SECONDS=600 tools/fuzz_lut.sh          # run for ten minutes (default 60 s)
#   tools/fuzz_lut.sh tools/fuzz/build/crash-*  # replay a crash (no fuzzing)
#
# Builds native/fuzz/fuzz_lut.c + native/lut.c with clang
# (-fsanitize=fuzzer,address,undefined) into tools/fuzz/build/ (gitignored),
# seeds tools/fuzz/build/corpus_lut with a few display pipelines written in the
# harness's input format (see its header), runs one fuzzing process for
# FUZZ_SECONDS and exits non-zero if libFuzzer finds a crash, a leak,
# undefined behaviour or a failed check. Crash inputs are written to
# tools/fuzz/build/ as crash-<sha1>. Works from any directory.
#
# Environment: CC (default clang), FUZZ_SECONDS (60), FUZZ_MAX_LEN (4096),
# PYTHON (default .venv/bin/python, else python3; used only to seed an empty corpus).
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"

build=tools/fuzz/build
corpus=$build/corpus_lut
target=$build/fuzz_lut
mkdir -p "$build" "$corpus"

"${CC:-clang}" -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
    -std=c99 -Wall -Wextra -Inative \
    native/fuzz/fuzz_lut.c native/lut.c -lm -o "$target"

# Replay mode: arguments that are files are run once each.
if [ "$#" -gt 0 ] && [ -f "$1" ]; then
    exec "$target" "$@"
fi

# Seeds: typical pipelines (CT window over rescaled int16, 16-bit MR, sigmoid,
# Modality + VOI LUT tables, range, full 8-bit tables for the fast gather)
# and a few the build must refuse, each followed by a gather and samples.
if [ -z "$(ls -A "$corpus")" ]; then
    python="${PYTHON:-$repo/.venv/bin/python}"
    [ -x "$python" ] || python=python3
    "$python" - "$corpus" <<'EOF'
import random
import struct
import sys
from pathlib import Path

corpus = Path(sys.argv[1])
rng = random.Random(20240601)

# Field encodings of native/fuzz/fuzz_lut.c: a selector byte, then the value.
def i16(v): return bytes([0]) + struct.pack("<h", v)        # int64 / double: int16
def u16(v): return bytes([7]) + struct.pack("<H", v)        # int64: 0..65535
def frac(v): return bytes([2]) + struct.pack("<h", round(v * 256))  # double: int16 / 256
def raw(v): return bytes([5]) + struct.pack("<d", v)        # double: any bits
def awkward(k): return bytes([6, k])                        # NaN, inf, INT64_MIN, ...

OUT = {8: 0, 16: 1, 7: 3}
LENGTH = {"byte": 0, "u24": 1, 256: 2, 65536: 3}
FUNCTION = {"linear": 0, "linear_exact": 1, "sigmoid": 2, "table": 3, "range": 4, "bad": 5}
KIND = {"u8": 0, "i8": 1, "u16": 2, "i16": 3, "u32": 4, "i32": 5}
FMT = {"u8": "B", "i8": "b", "u16": "H", "i16": "h", "u32": "I", "i32": "i"}


def table(values, fmt):
    return struct.pack("<H", len(values) - 1) + struct.pack(f"<{len(values)}{fmt}", *values) + b"\0\0"


def seed(out_bits=8, invert=0, function="linear", length=4096, first=i16(0), slope=i16(1),
         intercept=i16(0), modality=None, modality_first=i16(0), center=i16(40), width=i16(400),
         voi=None, voi_first=i16(0), voi_max=i16(1), range_min=i16(0), range_max=i16(1),
         kind="i16", lut_length=None, gather_first=None, samples=()):
    mode = LENGTH.get(length, LENGTH["u24"] if isinstance(length, int) and length > 256 else 0)
    flags = OUT[out_bits] | invert << 2 | (modality is not None) << 3 | (voi is not None) << 4
    flags |= mode << 5 | (gather_first is None) << 7
    b = bytes([flags, FUNCTION[function]])
    if mode == 0:
        b += bytes([length - 1])
    elif mode == 1:
        b += (length - 1).to_bytes(3, "little")
    b += first + slope + intercept
    if modality is not None:
        b += table(modality, "h")
    b += modality_first + center + width
    if voi is not None:
        b += table(voi, "H")
    b += voi_first + voi_max + range_min + range_max
    n = lut_length if lut_length is not None else (length if isinstance(length, int) else 1)
    b += bytes([KIND[kind]]) + (n - 1).to_bytes(3, "little")
    if gather_first is not None:
        b += gather_first
    return b + struct.pack(f"<{len(samples)}{FMT[kind]}", *samples)


def rand(kind, lo, hi, n=64):
    return [rng.randint(lo, hi) for _ in range(n)]


seeds = [
    # CT: stored int16 from -1024, rescale -1024, soft-tissue window
    seed(first=i16(-1024), intercept=i16(-1024), length=4096, kind="i16",
         samples=rand("i16", -2000, 5000)),
    # MR 16-bit, LINEAR_EXACT, MONOCHROME1, full 65536 table at 0 (fast u16 gather)
    seed(out_bits=16, invert=1, function="linear_exact", length=65536, center=u16(2048),
         width=u16(4096), kind="u16", samples=rand("u16", 0, 65535)),
    # sigmoid on u8 with the full 256 table (fast u8 gather), fractional slope
    seed(function="sigmoid", length=256, slope=frac(0.5), center=i16(64), width=i16(50),
         kind="u8", samples=rand("u8", 0, 255)),
    # Modality LUT table then VOI LUT table, 16-bit out
    seed(out_bits=16, function="table", length=300, first=i16(-10),
         modality=[v * 3 - 100 for v in range(200)], modality_first=i16(-5),
         voi=[v * 100 for v in range(256)], voi_first=i16(-100), voi_max=u16(25500),
         kind="i16", samples=rand("i16", -400, 400)),
    # range mapping on i8, full 256 table at -128
    seed(function="range", length=256, first=i16(-128), range_min=i16(-128), range_max=i16(127),
         kind="i8", samples=rand("i8", -128, 127)),
    # u32 / i32 samples against a table far from them
    seed(length=1000, first=awkward(4), kind="i32", lut_length=700, gather_first=awkward(5),
         samples=rand("i32", -2**31, 2**31 - 1)),
    seed(out_bits=16, length=70000, first=u16(60000), kind="u32",
         samples=rand("u32", 0, 2**32 - 1)),
    # what the build must refuse: function 5, out_bits 7, NaN width, zero voi_max
    seed(function="bad", kind="u16", samples=rand("u16", 0, 4000)),
    seed(out_bits=7, kind="u8", samples=rand("u8", 0, 255)),
    seed(width=awkward(0), kind="i16", samples=rand("i16", -100, 100)),
    seed(function="table", voi=[1, 2, 3], voi_max=i16(0), kind="u8", samples=rand("u8", 0, 9)),
    # huge slope and width
    seed(function="linear_exact", slope=raw(1e300), width=awkward(1), length=100, kind="i8",
         samples=rand("i8", -128, 127)),
]
for n, data in enumerate(seeds):
    (corpus / f"seed-{n:03d}").write_bytes(data)
print(f"seeded {len(seeds)} inputs into {corpus}")
EOF
fi

# Crash artifacts go to $build/; libFuzzer exits non-zero on any finding.
"$target" "$corpus" \
    -max_total_time="${FUZZ_SECONDS:-60}" \
    -max_len="${FUZZ_MAX_LEN:-4096}" \
    -artifact_prefix="$build/" \
    -print_final_stats=1 \
    "$@"
