"""What each subcommand prints; the work itself lives in the library."""

from __future__ import annotations

import json
import sys
import time
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from dicompress import uids
from dicompress.batch import iter_sources, transcode_many
from dicompress.batch import journal as J
from dicompress.cli.render import human_size, one_line, table
from dicompress.codecs import get_codec
from dicompress.errors import DicompressError, UsageError
from dicompress.layout import FrameLayout
from dicompress.samples import sample_dirs
from dicompress.pipeline.read import read_header

if TYPE_CHECKING:  # the batch driver is imported by the commands that run it
    from dicompress.batch.options import BatchOptions
    from dicompress.batch.summary import Summary
    from dicompress.transcode import TranscodeResult


def _syntax_name(uid: str) -> str:
    from pydicom.uid import UID

    return UID(uid).name if uid else "(none)"


def _syntax_keyword(uid: str) -> str:
    from pydicom.uid import UID

    return (UID(uid).keyword or uid) if uid else "-"


def info(files: list[Path]) -> int:
    rows, failed = [], 0
    for path in files:
        try:
            if path.is_dir():
                raise DicompressError(f"{path}: a folder (info reads files: give {path}/*)")
            if not path.exists():
                raise DicompressError(f"{path}: no such file")
            ds = read_header(path, convert=("Modality",))  # and FrameLayout's own
            syntax = _syntax_name(str(ds.file_meta.get("TransferSyntaxUID", "")))
            row = [one_line(path), syntax, ds.get("Modality", ""), human_size(path.stat().st_size)]
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
            print(f"error: {one_line(msg)}", file=sys.stderr)
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


_STATUS_LABELS = {
    J.OK: "transcoded", J.ALREADY: "already in the target syntax (skipped)",
    J.NOT_IMAGE: "without pixel data (skipped)", J.NOT_DICOM: "not DICOM (skipped)",
    J.FAILED: "failed",
}


def summary_table(summary: Summary, done: str = "transcoded") -> str:
    labels = {**_STATUS_LABELS, J.OK: done}
    rows = []
    for status, label in labels.items():
        copied = summary.copied.get(status, 0)
        if copied:  # -o: skipped by the codec, copied to the output as they are
            rows.append([label.replace("(skipped)", "(copied unchanged)"), copied])
        rows.append([label, summary.counts.get(status, 0) - copied])
    if summary.done_before:
        rows.append(["done by an earlier run (resume)", summary.done_before])
    if summary.duplicates:
        rows.append(["named twice (ignored)", summary.duplicates])
    if summary.own_outputs:
        rows.append(["inside the output folder (ignored)", summary.own_outputs])
    ratio = f"{summary.bytes_in / summary.bytes_out:.2f}:1" if summary.bytes_out else "-"
    done = summary.counts.get(J.OK, 0)
    rate = (f"{done / summary.seconds:.1f} files/s, {summary.bytes_in / 1e6 / summary.seconds:.1f} MB/s"
            if summary.seconds else "-")
    rows += [["bytes before -> after", f"{human_size(summary.bytes_in)} -> "
              f"{human_size(summary.bytes_out)} ({ratio})"],
             ["time", f"{summary.seconds:.1f} s ({rate})"], ["journal", summary.journal]]
    text = table(["files", ""], rows, "<>")
    if summary.stopped:
        text += f"\nSTOPPED early: {summary.stopped}; files not reached are untouched."
    if summary.interrupted:
        text += "\nINTERRUPTED: run again with --resume to finish."
    return text


def transcode(args, codec_options: dict, deid=None) -> int:
    from dicompress.batch.options import BatchOptions

    options = BatchOptions(
        target=get_codec(args.to, **codec_options), output=args.output, in_place=args.in_place,
        verify=not args.no_verify, decode_check=args.verify == "full", force=args.force,
        jobs=args.jobs, scheduler=args.scheduler, journal=args.journal, resume=args.resume, retry_failed=args.retry_failed,
        extended_offsets=args.extended_offsets, threads=args.threads, deid=deid, hash=args.hash,
        follow_links=args.follow_links, only_images=args.only_images,
    )
    return _batch(args, options, "transcoded" + (" and de-identified" if deid else ""))


def deid(args, config) -> int:
    from dicompress.batch.options import BatchOptions

    options = BatchOptions(
        target=None, output=args.output, in_place=args.in_place, verify=not args.no_verify,
        jobs=args.jobs, journal=args.journal, resume=args.resume,
        retry_failed=args.retry_failed, deid=config, rename=args.rename, hash=args.hash,
        follow_links=args.follow_links,
    )
    return _batch(args, options, "de-identified")


def _batch(args, options: BatchOptions, done: str) -> int:
    from dicompress.batch.runner import BatchRun
    from dicompress.cli import progress

    if options.jobs is not None and options.jobs < 1:
        raise UsageError("--jobs must be at least 1")

    def sources():
        return iter_sources(args.sources, args.from_list)

    shown: list[progress.Reporter] = []

    def ready() -> None:  # the workers are up: threads may start now
        counter = progress.Counter(None if args.from_list == "-" or args.json else sources)  # JSON shows no count
        if sys.stderr.isatty() and not args.json and not args.quiet:
            shown.append(progress.RichReporter(counter))
        else:
            shown.append(progress.LogReporter(counter, quiet=args.quiet, json_mode=args.json))

    first = Path(args.sources[0]) if args.sources else None
    run = BatchRun(sources(), options, journal_hint=first, on_ready=ready,
                   on_result=lambda outcome, summary: shown[0].result(outcome, summary))
    try:
        summary = run.run()
    finally:
        for reporter in shown:
            reporter.close(run.summary)
    if args.json:
        print(json.dumps(summary.as_dict(), indent=2))
    else:
        print(summary_table(summary, done))
    return summary.exit_code


def serve(args) -> int:
    from dicompress.gateway import Gateway, load_config, status
    from dicompress.gateway.logs import configure
    from dicompress.gateway.service import drop, requeue, reroute

    config = load_config(args.config)
    if args.requeue or args.drop or args.reroute:
        configure(args.log_format, args.verbose)  # the audit line
        if args.requeue:
            print(f"{requeue(config)} instance(s) queued again")
        elif args.drop:
            print(f"{drop(config, args.drop)} instance(s) dropped")
        else:
            print(f"{reroute(config, *args.reroute)} instance(s) now on route "
                  f"{args.reroute[1]!r}")
        return 0
    if args.status:
        print(json.dumps(status(config), indent=2))
        return 0
    configure(args.log_format, args.verbose)
    Gateway(config).serve_forever()
    return 0


def _check_window(window: str, function: str | None = None) -> None:
    """--window names a preset, C,W, auto or file[:N] (file windows are checked per file);
    a C,W the user typed must be one that can be applied (with export's --function):
    a usage error now, not every file failing on it."""
    import dataclasses

    from dicompress import voi
    from dicompress.errors import DisplayError

    text = window.strip().lower()
    try:
        if text.startswith("file"):  # each file's own: which one, checked here
            voi.file_window_index(text)
            return
        if text == "voi-lut":
            return
        # an empty mapping as the header: no file windows, no VOI LUT Sequence
        chosen = voi.resolve_window({}, window, np.zeros(1))
        if isinstance(chosen, voi.Window):  # a C,W is LINEAR unless --function says
            voi.check_window(dataclasses.replace(chosen, function=function or chosen.function))
    except (DisplayError, ValueError) as exc:
        raise UsageError(f"--window {window!r}: {exc}") from None


def compare(args) -> int:
    from dicompress.compare import compare as run_compare, parse_codecs
    from dicompress.compare import report as compare_report

    from dicompress.cli import progress

    choices = parse_codecs(args.codecs)
    if args.sample is not None and args.sample < 1:
        raise UsageError("--sample must be at least 1")
    if args.window is not None:
        _check_window(args.window)
    with progress.StageReporter("compare") as reporter:
        result = run_compare(args.sources, choices, sample=args.sample, threads=args.threads,
                             window=args.window, offer_transforms=args.codecs is None,
                             progress=reporter.update)
    for path, reason in result.skipped:
        print(f"skipped  {one_line(path)}: {one_line(reason)}", file=sys.stderr)
    for _, reason in result.failed:
        print(f"FAILED   {one_line(reason)}", file=sys.stderr)
    print(compare_report.terminal_table(result))
    if args.json:
        compare_report.write_json(result, args.json)
    if args.csv:
        compare_report.write_csv(result, args.csv)
    if args.html:
        from dicompress.compare.html import write_html

        write_html(result, args.html)
    for row in result.violations:
        print(f"ERROR    {row.choice} is lossless but changed values (max error {row.max_error})",
              file=sys.stderr)
    if not result.frames:
        print("no frames to compare", file=sys.stderr)
        return 1
    return 1 if result.violations or result.failed else 0


def demo(output: Path) -> int:
    """Transcode the installed sample files (pydicom, pydicom-data) to RLE."""
    dirs = sample_dirs()
    if not dirs:
        print("no sample files found: pip install pydicom-data", file=sys.stderr)
        return 1
    print(f"Transcoding the sample files in {', '.join(map(str, dirs))} to RLE Lossless -> {output}/\n")
    start = time.perf_counter()
    results = list(transcode_many(iter_sources(dirs), output, get_codec(uids.RLELossless)))
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
    from pydicom.uid import UID

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
    from dicompress.cli import progress
    from dicompress.export import ExportOptions, export as run_export
    from dicompress.export.budget import parse_size, raw_limit, size_unit

    unit = size_unit(args.max_size) if args.max_size else None
    if args.window is not None:
        _check_window(args.window, args.function)
    try:
        max_size = None
        if args.max_size:
            limit = parse_size(args.max_size)
            max_size = limit if args.raw_size else raw_limit(limit)
            if not args.raw_size:
                print(f"note     --max-size {args.max_size} as an e-mail attachment (base64 "
                      f"and MIME headers): files and archives up to {max_size:,} bytes "
                      f"({human_size(max_size, unit)}) each; --raw-size counts the files' "
                      "own bytes")
        options = ExportOptions(
            format=args.format, window=args.window, function=args.function, invert=args.invert,
            frames=args.frames, every=args.every, series=args.series, bits=args.bits,
            quality=args.quality, fps=args.fps, max_size=max_size,
            zip=args.zip, keep_identifiers=args.keep_identifiers, jobs=args.jobs,
        )
        with progress.StageReporter("export") as reporter:
            result = run_export(args.sources, args.output, options, progress=reporter.update)
    except DicompressError as exc:
        print(f"dicompress: {exc}", file=sys.stderr)
        return 2
    for path, reason in result.skipped:
        print(f"skipped  {one_line(path)}: {one_line(reason)}")
    for note in result.notes:
        print(f"note     {one_line(note)}")
    for path, reason in result.failed:
        print(f"FAILED   {one_line(reason if str(path) in reason else f'{path}: {reason}')}",
              file=sys.stderr)
    total = sum(p.stat().st_size for p in result.outputs if p.exists())
    count = len(result.outputs)
    print(f"{count} file{'' if count == 1 else 's'} written to {args.output} "
          f"({human_size(total, unit)}), "
          f"{len(result.skipped)} skipped, {len(result.failed)} failed")
    return 1 if result.failed else 0
