"""A comparison as a terminal table, CSV and JSON."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

from dicompress.cli.render import human_size, table
from dicompress.compare.measure import Comparison, Row
from dicompress.pipeline.encode import VISIBLE_LEVELS

CSV_COLUMNS = ("codec", "lossless", "scope", "frames", "raw_bytes", "bytes", "ratio",
               "encode_mb_s", "decode_mb_s", "max_error", "max_abs_error_modality",
               "max_display_error", "visible_at", "rmse", "psnr_db", "ssim", "ssim_min",
               "worst_path", "worst_frame", "worst_slice", "worst_psnr_db", "not_applicable",
               "lossless_violated")

#: What the quality columns mean, said under every table (docs/compare.md).
QUALITY_NOTE = ("max err = worst error in the modality's units (HU for CT, after Rescale "
                "Slope/Intercept); disp err = worst error in 8-bit display levels at the "
                "window shown; \"visible at\" when it exceeds "
                f"{VISIBLE_LEVELS:g} level; PSNR peak = each frame's dynamic range (max - min), "
                "not the Bits Stored range; SSIM on the display levels at that window")


def _db(value: float) -> str:
    return "inf" if math.isinf(value) else f"{value:.2f}"


def _number(value: float) -> str:
    return f"{value:.0f}" if value == int(value) else f"{value:.3g}"


def visibility(row: Row) -> str:
    """``visible at C40/W400`` for a choice whose display error is flagged, else ''."""
    return ("visible at " + ", ".join(row.visible_at)) if row.visible_at else ""


def _cells(row: Row) -> list:
    if not row.frames:
        return [row.choice, "-", "-", "-", "-", "-", "-", "-", "-", "-", "-", "-",
                f"n/a: {row.not_applicable[:60]}"]
    worst = "-"
    if row.worst is not None and not math.isinf(row.worst[3]):
        path, frame, slice_number, value = row.worst
        worst = f"slice {slice_number}: {Path(path).name}#{frame} ({_db(value)} dB)"
    flag = "  LOSSLESS VIOLATED" if row.lossless_violated else ""
    if row.partial:
        flag += f"  (only some frames: {row.not_applicable[:50]})"
    windows = ", ".join(sorted(row.windows)) or "-"
    return [row.choice, row.frames, human_size(row.stored_bytes), f"{row.ratio:.2f}",
            f"{row.encode_mb_s:.1f}", f"{row.decode_mb_s:.1f}",
            _number(row.max_abs_error_modality), f"{row.max_display_error:.2f} @ {windows}",
            visibility(row) or "-", f"{row.rmse:.3f}", _db(row.psnr), f"{row.ssim:.5f}",
            worst + flag]


def terminal_table(result: Comparison) -> str:
    headers = ["codec", "frames", "size", "ratio", "enc MB/s", "dec MB/s", "max err",
               "disp err", "flag", "RMSE", "PSNR dB", "SSIM", "worst slice"]
    rows = [_cells(result.overall[c.label]) for c in result.choices]
    text = table(headers, rows, "<>>>>>>><>>><")
    raw = next((r.raw_bytes for r in result.overall.values() if r.frames), 0)
    text += (f"\n{result.frames} frames from {len(result.series)} series ({human_size(raw)} "
             f"of pixels), {len(result.choices)} choices, {result.seconds:.1f} s. Sizes are the "
             "encoded frames as transcode stores them; MB/s per core; the worst slice has the "
             f"lowest PSNR.\n{QUALITY_NOTE}.")
    return text


def _csv_row(row: Row) -> list:
    d = row.as_dict()
    worst = d["worst"] or {}
    return [d["codec"], d["lossless"], d["scope"], d["frames"], d["raw_bytes"], d["bytes"],
            d["ratio"], d["encode_mb_s"], d["decode_mb_s"], d["max_error"],
            d["max_abs_error_modality"], d["max_display_error"], ";".join(d["visible_at"]),
            d["rmse"],
            d["psnr_db"], d["ssim"], d["ssim_min"], worst.get("path"), worst.get("frame"),
            worst.get("slice"), worst.get("psnr_db"), d["not_applicable"], d["lossless_violated"]]


def write_csv(result: Comparison, path: Path) -> None:
    with open(path, "w", newline="", encoding="utf-8") as fp:
        writer = csv.writer(fp)
        writer.writerow(CSV_COLUMNS)
        for choice in result.choices:
            writer.writerow(_csv_row(result.overall[choice.label]))
        for row in result.per_series.values():
            writer.writerow(_csv_row(row))


def write_json(result: Comparison, path: Path) -> None:
    Path(path).write_text(json.dumps(result.as_dict(), indent=1) + "\n", encoding="utf-8")
