#!/usr/bin/env python3
"""Print a Markdown table from a pytest-benchmark JSON file of ``benchmarks/``.

Usage::

    python tools/bench_table.py /tmp/bench.json

One row per file, operation and implementation: throughput in MB/s
(uncompressed bytes / mean time, 1 MB = 10^6 bytes), the speed of that row
relative to pylibjpeg-rle and to GDCM on the same file and operation (for the
dicompress rows this is "dicompress MB/s / peer MB/s"), the compressed size
and the compression ratio (uncompressed / compressed). A second table checks
the project's speed targets for dicompress.

When the run includes ``benchmarks/bench_voi.py``, two more tables follow for
window/level (VOI): one row per file and implementation, MB/s of 16-bit input
(input bytes / mean time), milliseconds per frame, and the row's speed
relative to pydicom (``apply_voi_lut`` + cast to uint8) and to ``np.take``
with a precomputed table; then the VOI targets, checked on the
"dicompress window, 1 thread" row (``voi.window(..., threads=1)``, table cache
warm). The other dicompress rows (all cores, bare kernel, table built per
call, render) are shown but do not count for the targets.

Only the standard library is used, so the script runs outside the venv too.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

OURS = "dicompress"
PEERS = ("pylibjpeg-rle", "GDCM")
ORDER = {"dicompress": 0, "pylibjpeg-rle": 1, "GDCM": 2, "pydicom": 3}

# Speed targets from the project issue: (operation, peer, minimum dicompress/peer).
TARGETS = (
    ("encode", "pylibjpeg-rle", 5.0),
    ("encode", "GDCM", 2.0),
    ("decode", "pylibjpeg-rle", 2.0),
)


def load_rows(path: Path) -> list[dict]:
    """One dict per benchmark: file, operation, implementation, sizes, MB/s."""
    data = json.loads(path.read_text())
    rows = []
    for bench in data.get("benchmarks", []):
        info = bench.get("extra_info", {})
        stats = bench.get("stats") or {}
        if info.get("operation") not in ("encode", "decode") or not stats.get("mean"):
            continue  # not an RLE benchmark, or run with --benchmark-disable
        rows.append(
            {
                "file": info["file"],
                "operation": info["operation"],
                "implementation": info["implementation"],
                "mb_per_s": info["uncompressed_bytes"] / stats["mean"] / 1e6,
                "rounds": stats.get("rounds", 0),
                "uncompressed_bytes": info["uncompressed_bytes"],
                "compressed_bytes": info["compressed_bytes"],
            }
        )
    return rows


def speed_of(rows: list[dict]) -> dict[tuple[str, str, str], float]:
    return {(r["file"], r["operation"], r["implementation"]): r["mb_per_s"] for r in rows}


def _ratio(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}×"


def results_table(rows: list[dict]) -> str:
    speed = speed_of(rows)
    files = list(dict.fromkeys(r["file"] for r in rows))  # run order
    rows = sorted(
        rows,
        key=lambda r: (
            files.index(r["file"]),
            r["operation"] != "encode",
            ORDER.get(r["implementation"], 99),
        ),
    )
    lines = [
        "| File | Operation | Implementation | MB/s | vs pylibjpeg-rle | vs GDCM "
        "| Compressed bytes | Compression ratio | Rounds |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        vs = []
        for peer in PEERS:
            other = speed.get((r["file"], r["operation"], peer))
            vs.append(_ratio(r["mb_per_s"] / other if other else None))
        name = f"**{r['implementation']}**" if r["implementation"] == OURS else r["implementation"]
        lines.append(
            f"| {r['file']} | {r['operation']} | {name} | {r['mb_per_s']:.1f} "
            f"| {vs[0]} | {vs[1]} | {r['compressed_bytes']:,} "
            f"| {r['uncompressed_bytes'] / r['compressed_bytes']:.3f} | {r['rounds']} |"
        )
    return "\n".join(lines)


def targets_table(rows: list[dict]) -> str:
    speed = speed_of(rows)
    files = list(dict.fromkeys(r["file"] for r in rows))
    lines = [
        "| Target | " + " | ".join(files) + " | Met |",
        "|---|" + "---:|" * len(files) + "---|",
    ]
    for operation, peer, minimum in TARGETS:
        cells, met = [], True
        for f in files:
            ours, theirs = speed.get((f, operation, OURS)), speed.get((f, operation, peer))
            if ours is None or theirs is None:
                cells.append("–")
                met = False
                continue
            ratio = ours / theirs
            met &= ratio >= minimum
            cells.append(_ratio(ratio))
        verdict = "yes" if met else "**no**"
        lines.append(
            f"| {operation} ≥ {minimum:g}× {peer} | " + " | ".join(cells) + f" | {verdict} |"
        )
    return "\n".join(lines)


# -- window/level (VOI) -------------------------------------------------------------------------

# bench_voi.py parameter ids: the two peers, and the row the targets are checked on.
VOI_PEERS = (("pydicom", "pydicom"), ("numpy-take", "numpy take"))
VOI_TARGET_ROW = "dicompress-1t"
VOI_ORDER = ("dicompress-1t", "dicompress-all-cores", "lut-apply-bare", "dicompress-cold-table",
             "render-1t", "numpy-take", "pydicom")

# (peer parameter id, peer name in the table, minimum dicompress/peer).
VOI_TARGETS = (
    ("pydicom", "pydicom apply_voi_lut + cast", 10.0),
    ("numpy-take", "np.take", 3.0),
)


def load_voi_rows(path: Path) -> list[dict]:
    """One dict per VOI benchmark: file, variant, implementation, MB/s, ms per frame."""
    data = json.loads(path.read_text())
    rows = []
    for bench in data.get("benchmarks", []):
        info = bench.get("extra_info", {})
        stats = bench.get("stats") or {}
        if info.get("operation") != "window" or not stats.get("mean"):
            continue
        rows.append(
            {
                "file": info["file"],
                "variant": info["variant"],
                "implementation": info["implementation"],
                "mb_per_s": info["input_bytes"] / stats["mean"] / 1e6,
                "ms": stats["mean"] * 1e3,
                "rounds": stats.get("rounds", 0),
            }
        )
    return rows


def _voi_speed(rows: list[dict]) -> dict[tuple[str, str], float]:
    return {(r["file"], r["variant"]): r["mb_per_s"] for r in rows}


def voi_results_table(rows: list[dict]) -> str:
    speed = _voi_speed(rows)
    files = list(dict.fromkeys(r["file"] for r in rows))
    order = {v: i for i, v in enumerate(VOI_ORDER)}
    rows = sorted(rows, key=lambda r: (files.index(r["file"]), order.get(r["variant"], 99)))
    lines = [
        "| File | Implementation | MB/s | ms per frame | vs pydicom | vs numpy take | Rounds |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        vs = []
        for peer, _ in VOI_PEERS:
            other = speed.get((r["file"], peer))
            vs.append(_ratio(r["mb_per_s"] / other if other else None))
        name = r["implementation"]
        if r["variant"] == VOI_TARGET_ROW:
            name = f"**{name}**"
        lines.append(
            f"| {r['file']} | {name} | {r['mb_per_s']:.1f} | {r['ms']:.3f} "
            f"| {vs[0]} | {vs[1]} | {r['rounds']} |"
        )
    return "\n".join(lines)


def voi_targets_table(rows: list[dict]) -> str:
    speed = _voi_speed(rows)
    files = list(dict.fromkeys(r["file"] for r in rows))
    lines = [
        "| Target (dicompress window, 1 thread, warm table) | " + " | ".join(files) + " | Met |",
        "|---|" + "---:|" * len(files) + "---|",
    ]
    for peer, peer_name, minimum in VOI_TARGETS:
        cells, met = [], True
        for f in files:
            ours, theirs = speed.get((f, VOI_TARGET_ROW)), speed.get((f, peer))
            if ours is None or theirs is None:
                cells.append("–")
                met = False
                continue
            ratio = ours / theirs
            met &= ratio >= minimum
            cells.append(_ratio(ratio))
        verdict = "yes" if met else "**no**"
        lines.append(f"| ≥ {minimum:g}× {peer_name} | " + " | ".join(cells) + f" | {verdict} |")
    return "\n".join(lines)


def _timed(path: Path, prefix: str) -> list[tuple[str, str, dict, float]]:
    """(group without `prefix`, name, extra_info, mean seconds) of the timed benchmarks
    whose group starts with `prefix`."""
    out = []
    for bench in json.loads(path.read_text()).get("benchmarks", []):
        stats = bench.get("stats") or {}
        if str(bench.get("group", "")).startswith(prefix) and stats.get("mean"):
            out.append((bench["group"].removeprefix(prefix), bench["name"].removeprefix("bench_"),
                        bench.get("extra_info", {}), stats["mean"]))
    return out


def series_table(path: Path) -> str:
    """Series throughput (benchmarks/bench_series.py): MB/s and files/s per row, and
    each row's speed relative to the pydicom row of its group."""
    rows = [(group, name, info["megabytes"] / mean, info["files"] / mean)
            for group, name, info, mean in _timed(path, "series-")]
    if not rows:
        return ""
    lines = ["| target | implementation | MB/s | files/s | vs pydicom |", "|---|---|---:|---:|---:|"]
    for group, name, mbs, fps in sorted(rows):
        peer = [m for g, n, m, _ in rows if g == group and n.startswith("pydicom")]
        ratio = f"{mbs / peer[0]:.2f}x" if peer else "-"
        lines.append(f"| {group} | {name} | {mbs:.1f} | {fps:.1f} | {ratio} |")
    return "\n".join(lines)


def batch_table(path: Path) -> str:
    """Batch runs (benchmarks/bench_batch.py), whole commands: files/s and MB/s per row,
    each row against the fastest peer of its group, and dicompress's 1 -> 2 jobs scaling."""
    rows = [(group, name, info["files"] / mean, info["megabytes"] / mean,
             info.get("peak_worker_rss_mb")) for group, name, info, mean in _timed(path, "batch-")]
    if not rows:
        return ""
    lines = ["| target | command | files/s | MB/s | vs fastest peer | peak MB per worker |",
             "|---|---|---:|---:|---:|---:|"]
    notes = []
    for group in sorted({r[0] for r in rows}):
        mine = [r for r in rows if r[0] == group]
        peers = [r[2] for r in mine if not r[1].startswith("dicompress")]  # ours are not peers
        fastest = max(peers) if peers else None
        for _, name, fps, mbs, rss in sorted(mine, key=lambda r: -r[2]):
            ratio = f"{fps / fastest:.2f}x" if fastest else "-"
            lines.append(f"| {group} | {name} | {fps:.1f} | {mbs:.1f} | {ratio} | "
                         f"{rss if rss is not None else '-'} |")
        speeds = {name: fps for _, name, fps, _, _ in mine}
        one, two = speeds.get(f"dicompress_{group}[1]"), speeds.get(f"dicompress_{group}[2]")
        if one and two:
            notes.append(f"{group}: --jobs 2 is {two / one:.2f}x --jobs 1")
    return "\n".join(lines + [""] + notes)


def gateway_table(path: Path) -> str:
    """The gateway under load (benchmarks/bench_gateway.py), end to end: instances/s and
    MB/s received, MB on the outbound link, against the DCMTK relay."""
    rows = [(name, info["files"] / mean, info["megabytes"] / mean, info["megabytes"],
             info.get("outbound_megabytes")) for _, name, info, mean in _timed(path, "gateway")]
    if not rows:
        return ""
    relay = [fps for name, fps, *_ in rows if name.startswith("dcmtk")]
    lines = ["| relay | instances/s | MB/s in | MB in -> MB out (link) | vs DCMTK relay |",
             "|---|---:|---:|---:|---:|"]
    for name, fps, mbs, mb_in, mb_out in sorted(rows, key=lambda r: -r[1]):
        ratio = f"{fps / relay[0]:.2f}x" if relay else "-"
        out = f"{mb_out:.1f}" if mb_out is not None else "-"
        lines.append(f"| {name} | {fps:.1f} | {mbs:.1f} | {mb_in:.1f} -> {out} | {ratio} |")
    return "\n".join(lines)


def deid_table(path: Path) -> str:
    """De-identification (benchmarks/bench_deid.py), whole commands: files/s and MB/s."""
    rows = [(name, info["files"] / mean, info["megabytes"] / mean)
            for _, name, info, mean in _timed(path, "deid")]
    if not rows:
        return ""
    peer = [fps for name, fps, _ in rows if name.startswith("gdcmanon")]
    lines = ["| command | files/s | MB/s | vs gdcmanon |", "|---|---:|---:|---:|"]
    for name, fps, mbs in sorted(rows, key=lambda r: -r[1]):
        lines.append(f"| {name} | {fps:.1f} | {mbs:.1f} | "
                     f"{f'{fps / peer[0]:.2f}x' if peer else '-'} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("json", type=Path, help="output of pytest --benchmark-json=FILE")
    parser.add_argument(
        "--no-targets", action="store_true", help="print only the results table"
    )
    args = parser.parse_args(argv)
    if not args.json.is_file():
        parser.error(f"{args.json}: no such file (run pytest with --benchmark-json={args.json})")
    rows, voi_rows = load_rows(args.json), load_voi_rows(args.json)
    series = series_table(args.json)
    batch = batch_table(args.json)
    gateway = gateway_table(args.json)
    deid = deid_table(args.json)
    if not rows and not voi_rows and not series and not batch and not gateway and not deid:
        print(f"{args.json}: no timed benchmarks (was the run made with --benchmark-disable?)",
              file=sys.stderr)
        return 1
    tables = []
    if rows:
        tables.append(results_table(rows))
        if not args.no_targets:
            tables.append(targets_table(rows))
    if voi_rows:
        tables.append(voi_results_table(voi_rows))
        if not args.no_targets:
            tables.append(voi_targets_table(voi_rows))
    if series:
        tables.append(series)
    if batch:
        tables.append(batch)
    if gateway:
        tables.append(gateway)
    if deid:
        tables.append(deid)
    print("\n\n".join(tables))
    return 0


if __name__ == "__main__":
    sys.exit(main())
