"""The ``dicompress`` command: argument parsing and rendering only."""

from __future__ import annotations

import argparse
import warnings
import sys
from pathlib import Path

import dicompress
from dicompress.batch.journal import JOURNAL_NAME, JournalError
from dicompress.batch.runner import UsageError
from dicompress.cli import commands

EXIT_OK, EXIT_FAILURES, EXIT_USAGE = 0, 1, 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dicompress", description="DICOM compression and transcoding."
    )
    parser.add_argument("--version", action="version", version=dicompress.__version__)
    sub = parser.add_subparsers(dest="command", required=True)

    info = sub.add_parser("info", help="show the transfer syntax and pixel layout of files")
    info.add_argument("files", nargs="+", type=Path, metavar="FILE")

    tc = sub.add_parser("transcode", help="transcode files and trees to another transfer syntax")
    tc.add_argument("sources", nargs="*", metavar="SRC",
                    help="files, folders (walked) or glob patterns ('**' recurses)")
    tc.add_argument("--from-list", metavar="FILE", help="also the paths in FILE, one a line (- for stdin)")
    tc.add_argument("--to", required=True, metavar="TARGET",
                    help="target transfer syntax by name or UID: explicit, implicit, deflate, rle, "
                         "j2k, j2k-lossy, htj2k, htj2k-rpcl, htj2k-lossy, jpegls, jpegls-near, jpeg")
    lossy = tc.add_argument_group("lossy and codec options (each target takes the ones it has)")
    lossy.add_argument("--ratio", type=float, help="target compression ratio (j2k-lossy, htj2k-lossy)")
    lossy.add_argument("--psnr", type=float, metavar="DB",
                       help="target PSNR on the Bits Stored range, searched per frame "
                            "(j2k-lossy, htj2k-lossy, jpeg)")
    lossy.add_argument("--near", type=int, help="JPEG-LS NEAR, the largest error per sample")
    lossy.add_argument("--quality", type=int, help="JPEG quality 1-100 (default 90)")
    lossy.add_argument("--layers", type=int, help="J2K quality layers, each doubling the quality")
    lossy.add_argument("--progression", choices=["LRCP", "RLCP", "RPCL", "PCRL", "CPRL"],
                       help="J2K progression order")
    lossy.add_argument("--tile", metavar="ROWSxCOLS", help="J2K tile size, e.g. 256x256")
    lossy.add_argument("--resolutions", type=int, help="J2K/HTJ2K resolution levels")
    tc.add_argument("--extended-offsets", action="store_true", default=None,
                    help="write the Extended Offset Table (automatic past 4 GiB)")
    where = tc.add_mutually_exclusive_group(required=True)
    where.add_argument("-o", "--output", type=Path, metavar="OUTDIR",
                       help="output folder; mirrors the input tree")
    where.add_argument("--in-place", action="store_true",
                       help="replace each original by its result, atomically, once verified")
    tc.add_argument("--no-verify", action="store_true",
                    help="skip decoding and reading back each output (not recommended)")
    tc.add_argument("--force", action="store_true",
                    help="transcode files already in the target syntax too")
    run = tc.add_argument_group("running at scale")
    run.add_argument("-j", "--jobs", type=int, default=None,
                     help="worker processes (default: all cores); 1 works in this process")
    run.add_argument("--scheduler", metavar="ADDRESS",
                     help="run on a dask.distributed cluster: tcp://HOST:PORT, or 'local' "
                          "for a LocalCluster of --jobs workers")
    run.add_argument("--journal", type=Path, metavar="PATH",
                     help=f"SQLite journal of the run (default: {JOURNAL_NAME} in the output "
                          "folder, or in the first source's folder in place)")
    run.add_argument("--resume", action="store_true",
                     help="continue the run recorded in the journal; finished files are skipped")
    run.add_argument("--retry-failed", action="store_true",
                     help="with --resume: try files that failed before again")
    run.add_argument("--threads", type=int, default=None,
                     help="threads per multi-frame file, frames in parallel (default: all cores)")
    tc.add_argument("--json", action="store_true", help="print the summary as JSON on stdout")
    tc.add_argument("-q", "--quiet", action="store_true", help="print only failures and the summary")

    cp = sub.add_parser("compare", help="measure size, speed and quality of codec choices on files")
    cp.add_argument("sources", nargs="+", metavar="SRC", help="files, folders or glob patterns")
    cp.add_argument("--codecs", metavar="LIST",
                    help="e.g. rle,j2k,htj2k,jpegls,j2k-lossy:10,20,jpegls-near:2,jpeg:85 "
                         "(default: every lossless target, J2K/HTJ2K lossy at 5,10,20,40, "
                         "JPEG-LS NEAR 1,2,4, JPEG quality 90,75)")
    cp.add_argument("--sample", type=int, metavar="N",
                    help="N frames per series, spread evenly along it (default: all frames)")
    cp.add_argument("--json", type=Path, metavar="FILE", help="every number as JSON")
    cp.add_argument("--csv", type=Path, metavar="FILE", help="every number as CSV (overall, then per series)")
    cp.add_argument("--html", type=Path, metavar="FILE",
                    help="a report: table, rate-distortion plots, worst slices beside their differences")
    cp.add_argument("--threads", type=int, help="frames and codecs measured at once (default: all cores)")

    pl = sub.add_parser("plan", help="pick the best quality that fits a size budget or a link's deadline")
    pl.add_argument("sources", nargs="+", metavar="SRC", help="files, folders or glob patterns")
    goal = pl.add_mutually_exclusive_group(required=True)
    goal.add_argument("--budget", metavar="SIZE", help="total size, e.g. 25MB, 4.7GB")
    goal.add_argument("--link", metavar="RATE", help="link rate, e.g. 2Mbit, 10Mbps, 1.5MB/s (with --deadline)")
    pl.add_argument("--deadline", metavar="DURATION", help="e.g. 5min, 90s, 1h30m")
    pl.add_argument("--min-psnr", type=float, metavar="DB", help="quality floor for lossy choices (worst slice)")
    pl.add_argument("--lossless-only", action="store_true", help="consider lossless targets only")
    pl.add_argument("--sample", type=int, default=10, metavar="N",
                    help="frames per series measured (default 10)")
    pl.add_argument("-o", "--output", default="OUTDIR", help="output folder for the suggested command")
    pl.add_argument("--json", type=Path, metavar="FILE", help="the plan and every option as JSON")

    rp = sub.add_parser("report", help="export a transcode journal: summary, CSV or JSON")
    rp.add_argument("journal", type=Path, metavar="JOURNAL")
    fmt = rp.add_mutually_exclusive_group()
    fmt.add_argument("--json", action="store_true", help="every file as JSON")
    fmt.add_argument("--csv", action="store_true", help="every file as CSV")
    rp.add_argument("-o", "--output", type=Path, metavar="FILE", help="write to FILE, not stdout")

    ex = sub.add_parser("export", help="export images as PNG, JPEG, TIFF or animated GIF")
    ex.add_argument("sources", nargs="+", type=Path, metavar="SRC", help="files or folders")
    ex.add_argument("--format", required=True, choices=["png", "jpeg", "tiff", "gif"])
    ex.add_argument("-o", "--output", required=True, type=Path, metavar="OUT")
    ex.add_argument("--window", metavar="W",
                    help="preset (brain, lung, bone, ...), auto, file[:N], voi-lut or C,W "
                         "(default: the file's first window, else its VOI LUT, else auto)")
    ex.add_argument("--function", choices=["linear", "linear_exact", "sigmoid"],
                    help="VOI LUT function (default: the file's, else linear)")
    ex.add_argument("--invert", action="store_true", default=None,
                    help="flip grayscale from what the file asks for (MONOCHROME1 is shown inverted by default)")
    ex.add_argument("--frames", metavar="LIST", help="1-based frames/slices, e.g. 1,5,10-20")
    ex.add_argument("--every", type=int, metavar="N", help="every N-th of the selected frames")
    ex.add_argument("--series", metavar="UID", help="only this Series Instance UID")
    ex.add_argument("--bits", type=int, choices=[8, 16], default=8,
                    help="16: raw stored values (PNG, TIFF)")
    ex.add_argument("--quality", type=int, default=90, help="JPEG quality (default 90)")
    ex.add_argument("--fps", type=float, help="GIF frame rate (default: Frame Time / Cine Rate)")
    ex.add_argument("--max-size", metavar="SIZE",
                    help="budget per file and per archive, e.g. 10MB (mail servers) or 25MB (Gmail)")
    ex.add_argument("--zip", metavar="NAME.zip", help="bundle the images with an index.html")
    ex.add_argument("--keep-identifiers", action="store_true",
                    help="write patient identity into the images' text (off by default)")

    demo = sub.add_parser("demo", help="transcode the installed sample files to RLE and show a table")
    demo.add_argument("-o", "--output", type=Path, default=Path("demo-output"), metavar="OUTDIR")
    return parser


def _codec_options(args) -> dict:
    tile = None
    if args.tile:
        try:
            tile = tuple(int(v) for v in args.tile.lower().split("x"))
        except ValueError:
            raise dicompress.UnsupportedTransferSyntax(f"--tile {args.tile!r}: give ROWSxCOLS") from None
    return {"ratio": args.ratio, "psnr": args.psnr, "near": args.near, "quality": args.quality,
            "layers": args.layers, "progression": args.progression, "tile": tile,
            "resolutions": args.resolutions}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # pydicom warns about every oddity of real-world files; our own messages say
    # what matters for each file, so its warnings are not shown on the terminal.
    warnings.filterwarnings("ignore", module=r"pydicom\.")
    try:
        if args.command == "info":
            return commands.info(args.files)
        if args.command == "transcode":
            if not args.sources and args.from_list is None:
                print("dicompress transcode: give sources or --from-list", file=sys.stderr)
                return EXIT_USAGE
            return commands.transcode(args, _codec_options(args))
        if args.command == "compare":
            return commands.compare(args)
        if args.command == "plan":
            return commands.plan(args)
        if args.command == "report":
            return commands.report(args)
        if args.command == "export":
            return commands.export(args)
        if args.command == "demo":
            return commands.demo(args.output)
    except (dicompress.UnsupportedTransferSyntax, UsageError, JournalError) as exc:
        print(f"dicompress: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("dicompress: interrupted", file=sys.stderr)
        return 130

    return EXIT_USAGE  # pragma: no cover - argparse requires a command


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
