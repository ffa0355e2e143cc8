"""Fitting exports into a size budget, and zip bundles that respect it too."""

from __future__ import annotations

import re
import zipfile
from collections.abc import Callable
from pathlib import Path

from dicompress.errors import BudgetError, DicompressError
from dicompress.export.page import index_html as _index_html
from dicompress.fileio import atomic_output

_UNITS = {"": 1, "b": 1, "kb": 1000, "k": 1000, "mb": 1000**2, "m": 1000**2, "gb": 1000**3,
          "kib": 1024, "mib": 1024**2, "gib": 1024**3}

JPEG_QUALITIES = (85, 75, 65, 55, 45, 35, 25)
SCALES = (0.85, 0.7, 0.5, 0.35, 0.25, 0.18, 0.125, 0.08)


def parse_size(text: str) -> int:
    """'10MB', '500kB', '25 MiB' -> bytes (kB and MB are decimal, as mail servers count)."""
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([a-zA-Z]*)\s*", text)
    if not m or m.group(2).lower() not in _UNITS:
        raise DicompressError(f"--max-size {text!r}: expected a number with kB, MB or GB")
    size = int(float(m.group(1)) * _UNITS[m.group(2).lower()])
    if size < 1024:
        raise DicompressError(f"--max-size {text!r} is too small for any image")
    return size


def fit(encode: Callable[[int, float], bytes], budget: int | None, *, quality: int,
        lossy_quality: bool) -> tuple[bytes, list[str]]:
    """Encode, then lower JPEG quality, then downscale, until the result fits `budget`."""
    data = encode(quality, 1.0)
    if budget is None or len(data) <= budget:
        return data, []
    tried = []
    if lossy_quality:
        for q in (q for q in JPEG_QUALITIES if q < quality):
            data = encode(q, 1.0)
            tried.append(f"quality {q}")
            if len(data) <= budget:
                return data, [f"JPEG quality lowered to {q} to fit {budget:,} bytes"]
        quality = min(quality, JPEG_QUALITIES[-1]) if lossy_quality else quality
    for scale in SCALES:
        data = encode(quality, scale)
        if len(data) <= budget:
            what = f"quality {quality}, " if lossy_quality else ""
            return data, [f"{what}downscaled to {scale:.0%} to fit {budget:,} bytes"]
    raise BudgetError(f"cannot fit in {budget:,} bytes even at {SCALES[-1]:.0%} size")


def _entry_cost(name: str, size: int) -> int:
    # local header + central directory entry + name twice, stored data
    return 30 + 46 + 2 * len(name.encode()) + size + 64


def write_zips(target: Path, files: list[tuple[str, Path]], captions: dict[str, str],
               budget: int | None) -> list[Path]:
    """Bundle `files` (archive name, path) with an index.html; split to fit `budget`."""
    groups: list[list[tuple[str, Path]]] = [[]]
    used = 0
    reserve = 2048  # index.html head; each image adds its own line (counted in cost)
    for name, path in files:
        cost = _entry_cost(name, path.stat().st_size) + 300 + len(name) * 2  # + index line
        if budget and cost + reserve + 22 > budget:
            raise BudgetError(f"{name} alone does not fit a {budget:,}-byte archive")
        if budget and groups[-1] and used + cost + reserve + 22 > budget:
            groups.append([])
            used = 0
        groups[-1].append((name, path))
        used += cost
    written = []
    stem = target.name[:-4] if target.name.lower().endswith(".zip") else target.name
    for i, group in enumerate(groups, start=1):
        name = f"{stem}.zip" if len(groups) == 1 else f"{stem}-{i}.zip"
        path = target.with_name(name)
        title = stem if len(groups) == 1 else f"{stem} (part {i} of {len(groups)})"
        with atomic_output(path) as tmp:
            with zipfile.ZipFile(tmp, "w") as zf:
                zf.writestr("index.html", _index_html(title, [n for n, _ in group], captions),
                            compress_type=zipfile.ZIP_DEFLATED)
                for arcname, src in group:
                    zf.write(src, arcname, compress_type=zipfile.ZIP_STORED)
            if budget and tmp.stat().st_size > budget:
                raise BudgetError(f"{name} came out at {tmp.stat().st_size:,} bytes, over {budget:,}")
        written.append(path)
    return written
