"""The ``dicompress`` command: argument parsing and rendering only."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import dicompress
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
    tc.add_argument("sources", nargs="+", type=Path, metavar="SRC", help="files or folders")
    tc.add_argument("--to", required=True, metavar="TARGET",
                    help="target transfer syntax, by name (rle) or UID")
    tc.add_argument("-o", "--output", required=True, type=Path, metavar="OUTDIR",
                    help="output folder; mirrors the input tree")
    tc.add_argument("--no-verify", action="store_true",
                    help="skip reading each lossless output back (not recommended)")
    tc.add_argument("--threads", type=int, default=None,
                    help="threads per file for frame-parallel coding (default: all cores)")
    tc.add_argument("-q", "--quiet", action="store_true", help="print only failures and the summary")

    demo = sub.add_parser("demo", help="transcode the installed sample files to RLE and show a table")
    demo.add_argument("-o", "--output", type=Path, default=Path("demo-output"), metavar="OUTDIR")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "info":
            return commands.info(args.files)
        if args.command == "transcode":
            return commands.transcode(
                args.sources, args.to, args.output, verify=not args.no_verify,
                threads=args.threads, quiet=args.quiet,
            )
        if args.command == "demo":
            return commands.demo(args.output)
    except dicompress.UnsupportedTransferSyntax as exc:
        print(f"dicompress: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("dicompress: interrupted", file=sys.stderr)
        return 130
    return EXIT_USAGE  # pragma: no cover - argparse requires a command


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
