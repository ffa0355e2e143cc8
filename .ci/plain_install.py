"""Run in a virtualenv made by a plain ``pip install .`` (no extras): every target of the
codec table is written from pydicom's own sample files, and no GPL package came along.

A target passes when at least one sample is transcoded (and verified); a sample the
target refuses for its layout (signed samples for JPEG, ...) is skipped; anything else
fails the run. Exit status: 0 all targets written, 1 otherwise.
"""

from __future__ import annotations

import importlib.metadata
import sys
import tempfile
import time
from pathlib import Path

from dicompress.codecs import available_codecs
from dicompress.errors import UnsupportedLayout
from dicompress.samples import find_sample
from dicompress.transcode import transcode_file

# In pydicom's wheel: a signed CT slice, MR, RGB, and JPEG sources (12-bit extended,
# lossless RGB, baseline YCbCr) that need a JPEG decoder without pylibjpeg-libjpeg.
SAMPLES = ("CT_small.dcm", "MR_small.dcm", "SC_rgb_small_odd.dcm", "JPGExtended.dcm",
           "SC_rgb_jpeg_gdcm.dcm", "SC_rgb_dcmtk_+eb+cy+s2.dcm")


def gpl_packages() -> list[str]:
    found = []
    for dist in importlib.metadata.distributions():
        meta = dist.metadata
        text = " ".join([meta.get("License", "") or "", meta.get("License-Expression", "") or "",
                         *(meta.get_all("Classifier") or [])])
        if "GPL" in text.replace("LGPL", ""):
            found.append(f"{meta['Name']} ({text.strip()[:60]})")
    return found


def main() -> int:
    failed = 0
    gpl = gpl_packages()
    if gpl:
        print("GPL packages installed:", ", ".join(gpl))
        failed += 1
    with tempfile.TemporaryDirectory() as folder:
        for codec in available_codecs():
            started, written, refused = time.perf_counter(), [], []
            for name in SAMPLES:
                out = Path(folder) / f"{codec.name}-{name}"
                try:
                    transcode_file(find_sample(name), out, codec.name)
                    written.append(name)
                except UnsupportedLayout:
                    refused.append(name)
                except Exception as exc:  # noqa: BLE001 - reported, and the run fails
                    print(f"FAIL {codec.name}: {name}: {type(exc).__name__}: {exc}")
                    failed += 1
            if not written:
                print(f"FAIL {codec.name}: no sample could be written (refused: {refused})")
                failed += 1
            else:
                print(f"ok   {codec.name:26s} {len(written)} samples "
                      f"({time.perf_counter() - started:.2f} s)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
