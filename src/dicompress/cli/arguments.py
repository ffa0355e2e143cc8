"""The ``dicompress`` command line: its parser (every subcommand, the codec table's
options as flags, the de-identification options of PS3.15 E.3) and what the parsed
arguments ask of the library (codec options, a de-identification configuration)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import dicompress
from dicompress.batch.journal import JOURNAL_NAME
from dicompress.digests import DEFAULT_HASH, HASHES
from dicompress.codecs.registry import available_codecs, compare_defaults, option_specs
from dicompress.errors import UsageError


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The command line's parser. With `command`, the codec table (every codec module,
    30-45 ms at each start) is read only if that command lists codecs (transcode,
    compare); the other subcommands are then incomplete, which is harmless: only
    `command` parses."""
    codecs = command in (None, "transcode", "compare")
    parser = argparse.ArgumentParser(
        prog="dicompress", description="DICOM compression and transcoding."
    )
    parser.add_argument("--version", action="version", version=dicompress.__version__)
    sub = parser.add_subparsers(dest="command", required=True)

    info = sub.add_parser("info", help="show the transfer syntax and pixel layout of files")
    info.add_argument("files", nargs="+", type=Path, metavar="FILE")

    targets = available_codecs() if codecs else []
    width = max((len(c.name) for c in targets), default=0) + 2
    tc = sub.add_parser(
        "transcode", help="transcode files and trees to another transfer syntax",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="targets (--to NAME, or the transfer syntax UID):\n" + "\n".join(
            f"  {c.name:<{width}}{c.description}" for c in targets))
    tc.add_argument("sources", nargs="*", metavar="SRC",
                    help="files, folders (walked) or glob patterns ('**' recurses)")
    tc.add_argument("--from-list", metavar="FILE", help="also the paths in FILE, one a line (- for stdin)")
    tc.add_argument("--to", required=True, metavar="TARGET",
                    help="target transfer syntax by name or UID: "
                         + ", ".join(c.name for c in targets))
    if codecs:
        _codec_arguments(tc.add_argument_group(
            "lossy and codec options (each target takes the ones it has)"))
    tc.add_argument("--extended-offsets", action="store_true", default=None,
                    help="write the Extended Offset Table (automatic past 4 GiB)")
    where = tc.add_mutually_exclusive_group(required=True)
    where.add_argument("-o", "--output", type=Path, metavar="OUTDIR",
                       help="output folder; mirrors the input tree")
    where.add_argument("--in-place", action="store_true",
                       help="replace each original by its result, atomically, once verified")
    checks = tc.add_mutually_exclusive_group()
    checks.add_argument("--verify", choices=("full", "file"), default="full",
                        help="full (default): every lossless frame decoded again and compared "
                             "with the source, and the file read back; file: the file read "
                             "back only (its structure, every fragment's length and hash), "
                             "trusting the codec: J2K at nearly twice the rate")
    checks.add_argument("--no-verify", action="store_true",
                        help="skip decoding and reading back each output (not recommended)")
    tc.add_argument("--force", action="store_true",
                    help="transcode files already in the target syntax too")
    tc.add_argument("--only-images", action="store_true",
                    help="with -o: leave out files already in the target syntax and objects "
                         "without pixel data (SR, KO, PR); by default they are copied "
                         "unchanged, so that OUTDIR holds the whole study")
    run = tc.add_argument_group("running at scale")
    run.add_argument("-j", "--jobs", type=int, default=None,
                     help="worker processes (default: all cores; 1: one worker, so that a "
                          "decoder's crash costs a file, not the run)")
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
    _follow_links_argument(run)
    _hash_argument(run)
    tc.add_argument("--json", action="store_true", help="print the summary as JSON on stdout")
    tc.add_argument("-q", "--quiet", action="store_true", help="print only failures and the summary")
    tc.add_argument("--deid", action="store_true",
                    help="de-identify every output as well (PS3.15 E.1; see `dicompress deid -h`)")
    _deid_arguments(tc)

    de = sub.add_parser(
        "deid", help="de-identify files and trees (PS3.15 E.1 Basic Application Level "
                     "Confidentiality Profile); pixel data copied as it is",
        description="De-identify DICOM files by the PS3.15 Annex E Basic Application Level "
                    "Confidentiality Profile and the chosen options. UIDs and pseudonyms are "
                    "derived from a secret key: the same key gives the same replacements in "
                    "every run, so later studies of a patient link up. Pixel data is copied "
                    "unchanged unless --blank is given.")
    de.add_argument("sources", nargs="*", metavar="SRC",
                    help="files, folders (walked) or glob patterns ('**' recurses)")
    de.add_argument("--from-list", metavar="FILE", help="also the paths in FILE, one a line (- for stdin)")
    where = de.add_mutually_exclusive_group(required=True)
    where.add_argument("-o", "--output", type=Path, metavar="OUTDIR",
                       help="output folder; mirrors the input tree (see --rename)")
    where.add_argument("--in-place", action="store_true",
                       help="replace each original by its de-identified copy, once verified")
    de.add_argument("--no-verify", action="store_true", help="skip reading back each output")
    de.add_argument("-j", "--jobs", type=int, default=None,
                    help="worker processes (default: all cores; 1: one worker, so that a "
                         "decoder's crash costs a file, not the run)")
    _follow_links_argument(de)
    de.add_argument("--journal", type=Path, metavar="PATH",
                    help="SQLite journal of the run (default: beside the output folder, "
                         "not in it: it names the originals)")
    de.add_argument("--resume", action="store_true", help="continue the run recorded in the journal")
    de.add_argument("--retry-failed", action="store_true", help="with --resume: retry failed files")
    _hash_argument(de)
    de.add_argument("--json", action="store_true", help="print the summary as JSON on stdout")
    de.add_argument("-q", "--quiet", action="store_true", help="print only failures and the summary")
    _deid_arguments(de)

    cp = sub.add_parser("compare", help="measure size, speed and quality of codec choices on files")
    cp.add_argument("sources", nargs="+", metavar="SRC", help="files, folders or glob patterns")
    cp.add_argument("--codecs", metavar="LIST",
                    help="targets separated by commas; a lossy one takes values of its ratio, "
                         "NEAR or quality after a colon, e.g. NAME:10,20 "
                         f"(default: {compare_defaults() if codecs else ''}; and, where the files are in a "
                         "syntax they take, the targets that transform encoded frames as "
                         "they are, such as jpegxl-jpeg from JPEG baseline)")
    cp.add_argument("--sample", type=int, metavar="N",
                    help="N frames per series, spread evenly along it (default: all frames)")
    cp.add_argument("--json", type=Path, metavar="FILE", help="every number as JSON")
    cp.add_argument("--csv", type=Path, metavar="FILE", help="every number as CSV (overall, then per series)")
    cp.add_argument("--html", type=Path, metavar="FILE",
                    help="a report: table, rate-distortion plots, worst slices beside their differences")
    cp.add_argument("--threads", type=int, help="frames and codecs measured at once (default: all cores)")
    cp.add_argument("--window", metavar="W",
                    help="display errors and SSIM at this window: a preset (brain, lung, bone, "
                         "...), C,W, file[:N] or auto (default: each file's first window, else "
                         "its VOI LUT, else auto); see docs/compare.md")

    pl = sub.add_parser("plan", help="pick the best quality that fits a size budget or a link's deadline")
    pl.add_argument("sources", nargs="+", metavar="SRC", help="files, folders or glob patterns")
    goal = pl.add_mutually_exclusive_group(required=True)
    goal.add_argument("--budget", metavar="SIZE",
                      help="total size as sent by e-mail, each file one attachment (base64 and "
                           "MIME headers: files get about 73 %%), e.g. 25MB; kB/MB/GB are "
                           "decimal, KiB/MiB/GiB binary; see --raw-size")
    goal.add_argument("--link", metavar="RATE", help="link rate, e.g. 2Mbit, 10Mbps, 1.5MB/s (with --deadline)")
    pl.add_argument("--deadline", metavar="DURATION", help="e.g. 5min, 90s, 1h30m")
    pl.add_argument("--min-psnr", type=float, metavar="DB", help="quality floor for lossy choices (worst slice)")
    pl.add_argument("--lossless-only", action="store_true", help="consider lossless targets only; with several series, "
                    "also the smallest of each series")
    pl.add_argument("--sample", type=int, default=10, metavar="N",
                    help="frames per series measured (default 10)")
    pl.add_argument("-o", "--output", default="OUTDIR", help="output folder for the suggested command")
    pl.add_argument("--json", type=Path, metavar="FILE", help="the plan and every option as JSON")
    pl.add_argument("--raw-size", action="store_true",
                    help="--budget counts the files' own bytes (a disk, a DVD), not as e-mailed")

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
                    help="budget per file and per archive as an e-mail attachment (base64 and "
                         "MIME headers counted: 10MB holds files of 7.3 MB), e.g. 10MB or 25MB "
                         "(Gmail); kB/MB/GB are decimal, KiB/MiB/GiB binary; see --raw-size")
    ex.add_argument("--raw-size", action="store_true",
                    help="--max-size counts the files' own bytes, not as e-mailed")
    ex.add_argument("--zip", metavar="NAME.zip", help="bundle the images with an index.html")
    ex.add_argument("--keep-identifiers", action="store_true",
                    help="write patient identity into the images' text (off by default)")
    ex.add_argument("-j", "--jobs", type=int, default=None,
                    help="worker processes writing images (default: all cores); 1 works in "
                         "this process, with frames that need a decoder decoded in a process "
                         "of their own")

    sv = sub.add_parser("serve", help="run the DICOM gateway: receive, compress by policy, forward",
                        description="A Storage SCP that spools every received instance durably, "
                                    "then forwards it to the route's destination in the route's "
                                    "transfer syntax (see the README for the TOML policy).")
    sv.add_argument("--config", required=True, type=Path, metavar="TOML")
    sv.add_argument("--status", action="store_true",
                    help="print the queue of a gateway (running or not) as JSON and exit")
    sv.add_argument("--requeue", action="store_true",
                    help="put the instances held or set aside (failed) back into the queue "
                         "and exit")
    sv.add_argument("--drop", metavar="UID",
                    help="forget the instance of that SOP Instance UID (audited) and exit")
    sv.add_argument("--reroute", nargs=2, metavar=("UID", "ROUTE"),
                    help="send the instance of that SOP Instance UID on another route "
                         "(audited) and exit")
    sv.add_argument("--log-format", choices=("text", "json"), default="text",
                    help="json: one object a line, for log shippers (default text)")
    sv.add_argument("-v", "--verbose", action="store_true",
                    help="also pynetdicom's lines, and tracebacks of unexpected errors")

    demo = sub.add_parser("demo", help="transcode the installed sample files to RLE and show a table")
    demo.add_argument("-o", "--output", type=Path, default=Path("demo-output"), metavar="OUTDIR")
    return parser


def _deid_arguments(parser: argparse.ArgumentParser) -> None:
    from dicompress.deid import OPTIONS

    key = parser.add_argument_group(
        "de-identification: key and pseudonyms",
        "Replacement UIDs, pseudonyms and date shifts are keyed hashes of the originals. "
        "Without a key, a random one is used and nothing links up with other runs.")
    key.add_argument("--key-file", type=Path, metavar="FILE",
                     help="the secret key: the first line of FILE (16 characters or more)")
    key.add_argument("--key", metavar="TEXT",
                     help="the secret key itself (visible to other users in the process list; "
                          "prefer --key-file or DICOMPRESS_DEID_KEY)")
    key.add_argument("--mapping", type=Path, metavar="CSV",
                     help="pseudonyms chosen by you: columns patient_id,new_patient_id and "
                          "optionally new_patient_name,date_shift_days; unlisted patients fail")
    opts = parser.add_argument_group("de-identification: profile options (PS3.15 E.3)")
    helps = {
        "retain-full-dates": "keep dates and times as they are",
        "retain-modified-dates": "shift every date of a patient by the same whole number of days "
                                 "(1-10 years back, from the key), so intervals stay exact",
        "retain-patient-chars": "keep age, sex, size, weight and similar",
        "retain-device-id": "keep device serial numbers, station names and similar",
        "retain-institution-id": "keep institution name, address and department",
        "retain-uids": "keep the original UIDs",
        "clean-descriptors": "keep descriptions and comments that contain no identifier "
                             "(names, IDs, dates, numbers found anywhere in the file)",
        "retain-safe-private": "keep the private attributes of our documented safe list "
                               "(diffusion b-values and directions)",
        "clean-structured-content": "keep structured content (reports' trees) with the text "
                                    "that passes the descriptors test; names replaced",
        "clean-graphics": "keep graphic annotations with the text that passes the descriptors "
                          "test (overlay and curve bitmaps are still removed)",
    }
    for name in OPTIONS:
        opts.add_argument(f"--{name}", action="store_true", help=helps[name])
    pix = parser.add_argument_group("de-identification: burned-in text")
    pix.add_argument("--allow-burned-in", action="store_true",
                     help="accept files that say (or whose kind suggests) they have burned-in text")
    pix.add_argument("--blank", action="append", default=[], metavar="X,Y,W,H",
                     help="blank this rectangle (pixels from the top left) of every frame; "
                          "repeatable; the frames are encoded again in the same syntax")
    if parser.prog.endswith("deid"):
        pix.add_argument("--rename", action="store_true",
                         help="name outputs by their new UIDs (OUT/study/series/instance.dcm) so "
                              "no original folder or file name leaves")


def deid_config(args):
    """The de-identification asked for, or None."""
    import os

    from dicompress.deid import OPTIONS

    if args.command == "transcode" and not args.deid:
        given = [f"--{n}" for n in OPTIONS if getattr(args, n.replace("-", "_"))]
        given += ["--key"] * bool(args.key) + ["--key-file"] * bool(args.key_file)
        given += ["--mapping"] * bool(args.mapping) + ["--blank"] * bool(args.blank)
        given += ["--allow-burned-in"] * args.allow_burned_in
        if given:
            raise UsageError(f"{', '.join(given)} without --deid")
        return None
    from dicompress.deid import DeidConfig, keys
    from dicompress.deid.burned_in import parse_rectangle

    if args.key and args.key_file:
        raise UsageError("give --key or --key-file, not both")
    if args.key_file or args.key:
        key = keys.load_key(args.key, args.key_file)
    elif os.environ.get("DICOMPRESS_DEID_KEY"):
        key = keys.load_key(os.environ["DICOMPRESS_DEID_KEY"])
    else:
        if getattr(args, "resume", False):
            raise UsageError("--resume needs the key of the run it continues (--key-file)")
        print("dicompress: no --key-file: a random key is used, so replacement UIDs and "
              "pseudonyms will not match those of any other run", file=sys.stderr)
        key = keys.new_key()
    options = frozenset(n for n in OPTIONS if getattr(args, n.replace("-", "_")))
    if args.mapping:
        keys.load_mapping(args.mapping)  # its mistakes found now, not once per file
    try:
        return DeidConfig(options=options, key=key,
                          mapping=str(args.mapping) if args.mapping else None,
                          allow_burned_in=args.allow_burned_in,
                          blank=tuple(parse_rectangle(b) for b in args.blank))
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def _codec_arguments(group) -> None:
    """A flag for every option of the codec table, saying which targets take it."""
    for spec, codecs in option_specs().values():
        defaults = {c.defaults[spec.name] for c in codecs}
        default = (f"; default {spec.to_text(defaults.pop())}"
                   if len(defaults) == 1 and None not in defaults else "")
        help_text = f"{spec.help} ({', '.join(c.name for c in codecs)}{default})"
        kwargs = {"dest": f"codec_{spec.name}", "help": help_text,
                  "metavar": spec.metavar or spec.name.upper()}
        if spec.choices:
            kwargs["choices"] = list(spec.choices)
        elif spec.parse is None:  # parsed later, so that its error reads as ours
            kwargs["type"] = spec.type
        group.add_argument(spec.flag, **kwargs)


def codec_options(args) -> dict:
    """The codec options given on the command line (None: not given)."""
    options = {}
    for name, (spec, _) in option_specs().items():
        value = getattr(args, f"codec_{name}")
        options[name] = spec.parse(value) if value is not None and spec.parse else value
    return options


def _follow_links_argument(parser) -> None:
    parser.add_argument("--follow-links", action="store_true",
                        help="in place: also rewrite files that symbolic links in a folder "
                             "point to outside it (by default they are reported, not touched)")


def _hash_argument(parser) -> None:
    parser.add_argument("--hash", choices=HASHES, default=None,
                        help="content hash the journal records of every input and output "
                             f"(default: {DEFAULT_HASH}, as b3sum prints it, or on --resume the "
                             "journal's; sha256 as sha256sum prints it)")
