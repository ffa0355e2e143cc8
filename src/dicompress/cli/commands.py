"""What each subcommand prints; the work itself lives in the library."""

from __future__ import annotations

import sys
import time
from collections import Counter
from pathlib import Path

from pydicom.uid import UID

from dicompress.batch import iter_sources, transcode_many
from dicompress.cli.render import human_size, table
from dicompress.codecs import get_codec
from dicompress.errors import DicompressError
from dicompress.layout import FrameLayout
from dicompress.samples import sample_dirs
from dicompress.transcode import TranscodeResult, read_header


def _syntax_name(uid: str) -> str:
    return UID(uid).name if uid else "(none)"


def _syntax_keyword(uid: str) -> str:
    return (UID(uid).keyword or uid) if uid else "-"


def info(files: list[Path]) -> int:
    rows, failed = [], 0
    for path in files:
        try:
            if not path.is_file():
                raise DicompressError(f"{path}: no such file")
            ds = read_header(path)
            syntax = _syntax_name(str(ds.file_meta.get("TransferSyntaxUID", "")))
            row = [path, syntax, ds.get("Modality", ""), human_size(path.stat().st_size)]
            if "PixelData" in ds:
                layout = FrameLayout.from_dataset(ds)
                row += [layout.number_of_frames, f"{layout.rows}x{layout.columns}",
                        layout.samples_per_pixel,
                        f"{layout.bits_allocated}/{layout.bits_stored}"
                        f"{'s' if layout.pixel_representation else 'u'}",
                        layout.photometric_interpretation]
            else:
                row += ["-", "(no pixel data)", "", "", ""]
            rows.append(row)
        except DicompressError as exc:
            msg = str(exc) if str(exc).startswith(str(path)) else f"{path}: {exc}"
            print(f"error: {msg}", file=sys.stderr)
            failed += 1
    if rows:
        print(table(["file", "transfer syntax", "modality", "size", "frames", "rows x cols",
                     "samples", "bits alloc/stored", "photometric"], rows, "<<<>>>><<"))
    return 1 if failed else 0


def _summary(results: list[TranscodeResult], seconds: float) -> str:
    counts = Counter(r.status for r in results)
    done = [r for r in results if r.status == "ok"]
    before = sum(r.size_in for r in done)
    after = sum(r.size_out for r in done)
    ratio = f"{before / after:.2f}:1" if after else "-"
    parts = [f"{counts.get('ok', 0)} transcoded", f"{counts.get('failed', 0)} failed",
             f"{counts.get('not-image', 0)} without pixel data skipped",
             f"{counts.get('not-dicom', 0)} non-DICOM skipped"]
    return (f"{', '.join(parts)}; {human_size(before)} -> {human_size(after)} ({ratio}) "
            f"in {seconds:.1f} s")


def transcode(sources: list[Path], target: str, output: Path, *, verify: bool = True,
              threads: int | None = None, quiet: bool = False, options: dict | None = None,
              extended_offsets: bool | None = None) -> int:
    codec = get_codec(target, **(options or {}))
    start = time.perf_counter()
    results = []
    for r in transcode_many(iter_sources(sources), output, codec, verify=verify, threads=threads,
                            extended_offsets=extended_offsets):
        results.append(r)
        if r.status == "ok" and not quiet:
            loss = ""
            if r.lossy and r.psnr is not None:
                loss = (f", lossy {r.ratio_pixels:.1f}:1 on pixels, worst frame PSNR "
                        f"{r.psnr:.1f} dB, max error {r.max_error}")
            print(f"ok       {r.source} -> {r.destination}  {human_size(r.size_in)} -> "
                  f"{human_size(r.size_out)} ({r.ratio:.2f}:1)"
                  f"{', verified' if r.verified else ''}{loss}")
        elif r.status == "failed":
            print(f"FAILED   {r.reason}", file=sys.stderr)
        elif not quiet:
            print(f"skipped  {r.reason}")
    print(_summary(results, time.perf_counter() - start))
    return 1 if any(r.status == "failed" for r in results) else 0


def demo(output: Path) -> int:
    """Transcode the installed sample files (pydicom, pydicom-data) to RLE."""
    dirs = sample_dirs()
    if not dirs:
        print("no sample files found: pip install pydicom-data", file=sys.stderr)
        return 1
    print(f"Transcoding the sample files in {', '.join(map(str, dirs))} to RLE Lossless -> {output}/\n")
    start = time.perf_counter()
    results = list(transcode_many(iter_sources(dirs), output, get_codec("rle")))
    rows = []
    for r in results:
        if r.status == "ok":
            rows.append([r.source.name, r.modality or "-", _syntax_keyword(r.transfer_syntax_in),
                         human_size(r.size_in), human_size(r.size_out), f"{r.ratio:.2f}",
                         "yes" if r.verified else "no"])
        elif r.status == "failed":
            reason = r.reason.split(": ", 1)[-1]
            rows.append([r.source.name, "-", "", human_size(r.size_in), "-", "-",
                         f"FAILED: {reason[:70]}"])
    print(table(["file", "modality", "stored as", "before", "after", "ratio", "verified"],
                rows, "<<<>>><"))
    print()
    print(_summary(results, time.perf_counter() - start))
    native = [r for r in results if r.status == "ok" and not UID(r.transfer_syntax_in).is_compressed]
    if native:
        before, after = sum(r.size_in for r in native), sum(r.size_out for r in native)
        print(f"Uncompressed sources alone: {human_size(before)} -> {human_size(after)} "
              f"({before / after:.2f}:1); already-compressed sources grow, as RLE is simpler.")
    failed = [r for r in results if r.status == "failed"]
    if failed:
        print(f"({len(failed)} sample files are deliberately broken or use layouts RLE cannot "
              "carry; each is listed with its reason)")
    return 0


def export(args) -> int:
    from dicompress.export import ExportOptions, export as run_export
    from dicompress.export.budget import parse_size

    try:
        options = ExportOptions(
            format=args.format, window=args.window, function=args.function, invert=args.invert,
            frames=args.frames, every=args.every, series=args.series, bits=args.bits,
            quality=args.quality, fps=args.fps,
            max_size=parse_size(args.max_size) if args.max_size else None,
            zip=args.zip, keep_identifiers=args.keep_identifiers,
        )
        result = run_export(args.sources, args.output, options)
    except DicompressError as exc:
        print(f"dicompress: {exc}", file=sys.stderr)
        return 2
    for path, reason in result.skipped:
        print(f"skipped  {path}: {reason}")
    for note in result.notes:
        print(f"note     {note}")
    for path, reason in result.failed:
        print(f"FAILED   {reason if str(path) in reason else f'{path}: {reason}'}", file=sys.stderr)
    total = sum(p.stat().st_size for p in result.outputs if p.exists())
    print(f"{len(result.outputs)} files written to {args.output} ({human_size(total)}), "
          f"{len(result.skipped)} skipped, {len(result.failed)} failed")
    return 1 if result.failed else 0
