"""The peer for batch benchmarks: pydicom with an encoding plugin in a process pool,
as a pydicom user would write it (read, ``ds.compress``, ``save_as``).

    python benchmarks/pydicom_pool.py PLUGIN (rle|j2k) INDIR OUTDIR PROCESSES
"""

from __future__ import annotations

import sys
from multiprocessing import Pool
from pathlib import Path

import pydicom
from pydicom.uid import JPEG2000Lossless, JPEGLSLossless, RLELossless

SYNTAX = {"rle": RLELossless, "j2k": JPEG2000Lossless, "jpegls": JPEGLSLossless}


def one(job: tuple[str, str, str, str]) -> None:
    path, out, plugin, syntax = job
    ds = pydicom.dcmread(path)
    ds.compress(SYNTAX[syntax], encoding_plugin=plugin)
    ds.save_as(out)


def run(plugin: str, syntax: str, indir: Path, outdir: Path, processes: int) -> None:
    """Every file of `indir` compressed into `outdir` by `processes` processes."""
    jobs = [(str(p), str(Path(outdir) / p.name), plugin, syntax)
            for p in sorted(Path(indir).glob("*.dcm"))]
    with Pool(processes) as pool:
        for _ in pool.imap_unordered(one, jobs, chunksize=4):
            pass


def main() -> None:
    plugin, syntax, indir, outdir, processes = sys.argv[1:6]
    run(plugin, syntax, Path(indir), Path(outdir), int(processes))


if __name__ == "__main__":
    main()
