#!/usr/bin/env bash
# Build and run the libFuzzer target for the native RLE codec.
#
# Usage: tools/fuzz_rle.sh [extra libFuzzer arguments]
#   FUZZ_SECONDS=600 tools/fuzz_rle.sh          # run for ten minutes (default 60 s)
#   tools/fuzz_rle.sh tools/fuzz/build/crash-*  # replay a crash (no fuzzing)
#
# Builds native/fuzz/fuzz_rle_decode.c + native/rle.c with clang
# (-fsanitize=fuzzer,address,undefined) into tools/fuzz/build/ (gitignored),
# seeds tools/fuzz/build/corpus with valid fragments from dicompress.rle, runs
# one fuzzing process for FUZZ_SECONDS and exits non-zero if libFuzzer finds a
# crash, a leak, undefined behaviour or a failed round-trip check. Crash inputs
# are written to tools/fuzz/build/ as crash-<sha1>. Works from any directory.
#
# Environment: CC (default clang), FUZZ_SECONDS (60), FUZZ_MAX_LEN (16384),
# PYTHON (default .venv/bin/python, used only to seed an empty corpus).
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"

build=tools/fuzz/build
corpus=$build/corpus
target=$build/fuzz_rle_decode
mkdir -p "$build" "$corpus"

"${CC:-clang}" -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
    -std=c99 -Wall -Wextra -Inative \
    native/fuzz/fuzz_rle_decode.c native/rle.c -o "$target"

# Replay mode: arguments that are files are run once each.
if [ "$#" -gt 0 ] && [ -f "$1" ]; then
    exec "$target" "$@"
fi

# Seeds: valid fragments for every layout class the harness can express, with
# the three layout bytes it expects in front (see the harness header). Raw-mode
# seeds (bit 0 set) carry a short pixel pattern the harness repeats.
if [ -z "$(ls -A "$corpus")" ]; then
    "${PYTHON:-$repo/.venv/bin/python}" - "$corpus" <<'EOF'
import sys
from pathlib import Path

import numpy as np

from dicompress import rle

corpus = Path(sys.argv[1])
rng = np.random.default_rng(20240601)
dtypes = {1: np.uint8, 2: np.uint16, 4: np.uint32, 8: np.uint64}
code = {1: 0, 2: 1, 4: 2, 8: 3}


def layout_bytes(mode, rows, columns, samples, itemsize, planar):
    wide = columns > 64  # 257..512 columns, at most 4096 pixels
    flags = mode | code[itemsize] << 1 | (samples == 3) << 3 | planar << 4 | wide << 5
    return bytes([flags, rows - 1, (columns - 257) if wide else (columns - 1)])


def pixels(shape, dtype, kind):
    info = np.iinfo(dtype)
    if kind == "flat":
        return np.full(shape, 7, dtype)
    if kind == "noise":
        return rng.integers(0, info.max, size=shape, dtype=dtype, endpoint=True)
    # runs of 1..200 equal values: exercises pairs, 128/129-byte runs, row ends
    flat = np.repeat(rng.integers(0, 4, size=shape, dtype=dtype).reshape(-1),
                     rng.integers(1, 200, size=int(np.prod(shape))))
    return flat[: int(np.prod(shape))].reshape(shape)


n = 0
for itemsize, samples, planar in [(1, 1, 0), (2, 1, 0), (4, 1, 0), (8, 1, 0),
                                  (1, 3, 0), (1, 3, 1), (2, 3, 0), (2, 3, 1), (4, 3, 1)]:
    for rows, columns, kind in [(1, 1, "noise"), (3, 5, "noise"), (8, 8, "runs"),
                                (16, 64, "runs"), (64, 64, "flat"), (2, 64, "noise"),
                                (4, 400, "runs"), (1, 512, "noise")]:
        if samples == 1:
            shape = (rows, columns)
        elif planar:
            shape = (samples, rows, columns)
        else:
            shape = (rows, columns, samples)
        arr = pixels(shape, dtypes[itemsize], kind)
        fragment = rle.encode_frame(arr, planar_configuration=planar if samples > 1 else None)
        head = layout_bytes(0, rows, columns, samples, itemsize, planar)
        (corpus / f"seed-{n:03d}").write_bytes(head + fragment)
        n += 1
    raw = layout_bytes(1, 32, 64, samples, itemsize, planar)
    (corpus / f"seed-{n:03d}").write_bytes(raw + bytes(range(40)) + b"\x00" * 130)
    raw = layout_bytes(1, 8, 300, samples, itemsize, planar)
    (corpus / f"seed-{n + 1:03d}").write_bytes(raw + bytes(range(128)) + b"\x07" * 129)
    n += 2
print(f"seeded {n} inputs into {corpus}")
EOF
fi

# Crash artifacts go to $build/; libFuzzer exits non-zero on any finding.
"$target" "$corpus" \
    -max_total_time="${FUZZ_SECONDS:-60}" \
    -max_len="${FUZZ_MAX_LEN:-16384}" \
    -artifact_prefix="$build/" \
    -print_final_stats=1 \
    "$@"
