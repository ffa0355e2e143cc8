"""Write a CT series of N single-frame 512 x 512 16-bit files built from real slices.

Each slice is a real CT slice from pydicom-data (693_UNCR, eCT_Supplemental), shifted
a little and given a little noise per slice, so that slices differ as in a real
series while keeping real anatomy and real noise statistics. New UIDs throughout.

    python tools/make_series.py OUTDIR [--slices 200] [--size 512]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pydicom
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from dicompress.samples import find_sample


def make_series(out: Path, slices: int = 200, size: int = 512, seed: int = 0) -> list[Path]:
    base_ds = pydicom.dcmread(find_sample("693_UNCR.dcm"))
    bases = [base_ds.pixel_array.astype(np.int32)]
    extra = pydicom.dcmread(find_sample("eCT_Supplemental.dcm")).pixel_array
    bases += [f.astype(np.int32) for f in extra]
    rng = np.random.default_rng(seed)
    out.mkdir(parents=True, exist_ok=True)
    study, series = generate_uid(), generate_uid()
    paths = []
    for k in range(slices):
        arr = bases[k % len(bases)]
        arr = np.roll(arr, (k % 7 - 3, k % 5 - 2), axis=(0, 1))
        if size != arr.shape[0]:
            reps = -(-size // arr.shape[0])
            arr = np.tile(arr, (reps, reps))[:size, :size]
        arr = arr + rng.normal(0, 4, arr.shape).round().astype(np.int32)
        ds = base_ds.copy()
        ds.file_meta = base_ds.file_meta.copy()
        ds.Rows = ds.Columns = size
        ds.BitsAllocated, ds.BitsStored, ds.HighBit = 16, 16, 15
        ds.PixelRepresentation = 1
        ds.PixelData = np.clip(arr, -32768, 32767).astype("<i2").tobytes()
        ds.StudyInstanceUID, ds.SeriesInstanceUID = study, series
        ds.SOPInstanceUID = generate_uid()
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.InstanceNumber = k + 1
        ds.ImagePositionPatient = [0, 0, float(k)]
        path = out / f"slice{k:04d}.dcm"
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--slices", type=int, default=200)
    parser.add_argument("--size", type=int, default=512)
    args = parser.parse_args()
    make_series(args.out, args.slices, args.size)


if __name__ == "__main__":
    main()
