"""Mutation fuzzer for the checks that run before any decoder (issue 16): the codestream
headers (dicompress.pipeline.codestream) and a file's declared sizes against its bytes
(dicompress.pipeline.read.read_header with dicompress.pipeline.check).

The checks are Python, so there is nothing for ASan or UBSan to watch: what is fuzzed
is that they end in one of our exceptions (a DicompressError) or pass, never anything
else (an IndexError, a struct.error, a MemoryError under a 2 GiB address space), and
never take long. Seeds are real corpus files (pydicom's and pydicom-data's).

Usage: python tools/fuzz_checks.py codestream|file [SECONDS]   (default 60)
Findings are written to tools/fuzz/build/checks-<target>-<sha1> and the run exits 1.
"""

from __future__ import annotations

import hashlib
import random
import resource
import sys
import tempfile
import time
import traceback
import warnings
from pathlib import Path

import pydicom
from pydicom.encaps import generate_frames

from dicompress.errors import DicompressError
from dicompress.pipeline.codestream import CHECKED_SYNTAXES, check_frame
from dicompress.pipeline.read import read_header
from dicompress.samples import sample_files

BUILD = Path(__file__).resolve().parent / "fuzz" / "build"
INTERESTING = [0, 1, 0x7F, 0x80, 0xFF, 0xFFFF, 0xFFFFFFFF, 0xFFFFFFF0, 0x10000, 3, 8, 16, 255]


def mutate(data: bytes, rng: random.Random) -> bytes:
    out = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        kind = rng.randrange(6)
        at = rng.randrange(max(1, len(out)))
        if kind == 0 and out:  # flip a bit
            out[at] ^= 1 << rng.randrange(8)
        elif kind == 1 and out:  # an interesting value, 1, 2 or 4 bytes, either order
            size = rng.choice((1, 2, 4))
            value = rng.choice(INTERESTING) & ((1 << 8 * size) - 1)
            out[at:at + size] = value.to_bytes(size, rng.choice(("little", "big")))
        elif kind == 2:  # cut
            del out[at:]
        elif kind == 3:  # duplicate a run
            run = out[at:at + rng.randint(1, 64)]
            out[at:at] = run
        elif kind == 4 and out:  # delete a run
            del out[at:at + rng.randint(1, 64)]
        else:  # random bytes
            out[at:at + 4] = rng.randbytes(4)
    return bytes(out)


def codestream_seeds() -> list[tuple[bytes, str, dict]]:
    seeds = []
    for path in sample_files():
        try:
            ds = pydicom.dcmread(path)
            syntax = str(ds.file_meta.TransferSyntaxUID)
            if syntax not in CHECKED_SYNTAXES or path.stat().st_size > 2 << 20:
                continue
            frame = next(generate_frames(ds.PixelData, number_of_frames=1))
            header = dict(rows=int(ds.Rows), columns=int(ds.Columns),
                          samples_per_pixel=int(ds.SamplesPerPixel),
                          bits_allocated=int(ds.BitsAllocated))
        except Exception:  # noqa: BLE001 - a corpus file that is not a usable seed
            continue
        seeds.append((frame[:8192], syntax, header))
    return seeds


def file_seeds() -> list[bytes]:
    return [p.read_bytes() for p in sample_files()
            if p.stat().st_size < 64 << 10 and p.suffix in (".dcm", "")][:80]


def main() -> int:
    target = sys.argv[1]
    seconds = float(sys.argv[2]) if len(sys.argv) > 2 else 60.0
    resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))
    warnings.simplefilter("ignore")
    BUILD.mkdir(parents=True, exist_ok=True)
    rng = random.Random(int(time.time()))
    runs = refused = findings = 0
    slowest = 0.0
    end = time.monotonic() + seconds
    if target == "codestream":
        seeds = codestream_seeds()
    else:
        seeds = file_seeds()
        scratch = Path(tempfile.mkdtemp()) / "fuzz.dcm"
    print(f"{target}: {len(seeds)} seeds, {seconds:.0f} s")
    while time.monotonic() < end:
        start = time.perf_counter()
        if target == "codestream":
            frame, syntax, header = rng.choice(seeds)
            data = mutate(frame, rng)
            if rng.random() < 0.3:  # the DICOM header lies instead
                header = dict(header, **{rng.choice(list(header)): rng.choice(INTERESTING)})
            call = lambda: check_frame(data, syntax, **header)  # noqa: E731
        else:
            data = mutate(rng.choice(seeds), rng)
            scratch.write_bytes(data)
            call = lambda: read_header(scratch, any_object=True)  # noqa: E731
        try:
            call()
        except DicompressError:
            refused += 1
        except Exception:  # noqa: BLE001 - what the fuzzer is looking for
            findings += 1
            name = BUILD / f"checks-{target}-{hashlib.sha1(data).hexdigest()}"
            name.write_bytes(data)
            print(f"FINDING {name}\n{traceback.format_exc()}", file=sys.stderr)
        slowest = max(slowest, time.perf_counter() - start)
        runs += 1
    print(f"{target}: {runs} runs, {refused} refused, {findings} findings, "
          f"slowest {slowest * 1000:.1f} ms")
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main())
