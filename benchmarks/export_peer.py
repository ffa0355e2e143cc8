"""The peer for export benchmarks: pydicom + Pillow in a process pool, as a user would
write it in ten lines (read, modality LUT, VOI LUT, scale to 8 bits, ``Image.save``).

    python benchmarks/export_peer.py FORMAT (png|jpeg|tiff) INDIR OUTDIR PROCESSES
"""

from __future__ import annotations

import sys
from multiprocessing import Pool
from pathlib import Path

import numpy as np
import pydicom
from PIL import Image
from pydicom.pixels import apply_modality_lut, apply_voi_lut

SAVE = {"png": ({"format": "PNG"}, ".png"), "jpeg": ({"format": "JPEG", "quality": 90}, ".jpg"),
        "tiff": ({"format": "TIFF", "compression": "tiff_adobe_deflate"}, ".tif")}


def one(job: tuple[str, str, str]) -> None:
    path, out, fmt = job
    ds = pydicom.dcmread(path)
    values = apply_voi_lut(apply_modality_lut(ds.pixel_array, ds), ds)
    # apply_voi_lut used the file's first window: scale its output range to 8 bits
    lo, hi = float(values.min()), float(values.max())
    image = ((values - lo) / max(hi - lo, 1e-6) * 255 + 0.5).astype(np.uint8)
    Image.fromarray(image).save(out, **SAVE[fmt][0])


def run(fmt: str, indir: Path, outdir: Path, processes: int) -> None:
    """Every file of `indir` exported into `outdir` by `processes` processes."""
    Path(outdir).mkdir(parents=True, exist_ok=True)
    jobs = [(str(p), str(Path(outdir) / (p.stem + SAVE[fmt][1])), fmt)
            for p in sorted(Path(indir).glob("*.dcm"))]
    with Pool(processes) as pool:
        for _ in pool.imap_unordered(one, jobs, chunksize=4):
            pass


def main() -> None:
    fmt, indir, outdir, processes = sys.argv[1:5]
    run(fmt, Path(indir), Path(outdir), int(processes))


if __name__ == "__main__":
    main()
