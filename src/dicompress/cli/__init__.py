"""The ``dicompress`` command: argument parsing and rendering only."""

from __future__ import annotations

import errno
import gc
import os
import sys
import warnings

import dicompress
from dicompress.batch.journal import JournalError
from dicompress.cli import commands, plan, report
from dicompress.cli.arguments import build_parser, codec_options, deid_config
from dicompress.errors import (EXIT_FAILURES, EXIT_INTERNAL, EXIT_INTERRUPTED, EXIT_OK,
                               EXIT_STOPPED, EXIT_USAGE, ConfigError, DeidError, StorageError,
                               UsageError, WorkerDied)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    # the first word that is not an option names the command (None: -h, --version)
    command = next((word for word in argv if not word.startswith("-")), None)
    args = build_parser(command).parse_args(argv)
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
            return commands.transcode(args, codec_options(args), deid_config(args))
        if args.command == "deid":
            if not args.sources and args.from_list is None:
                print("dicompress deid: give sources or --from-list", file=sys.stderr)
                return EXIT_USAGE
            return commands.deid(args, deid_config(args))
        if args.command == "compare":
            return commands.compare(args)
        if args.command == "plan":
            return plan.plan(args)
        if args.command == "report":
            return report.report(args)
        if args.command == "export":
            return commands.export(args)
        if args.command == "serve":
            return commands.serve(args)
        if args.command == "demo":
            return commands.demo(args.output)
    except (dicompress.UnsupportedTransferSyntax, UsageError, JournalError, DeidError,
            ConfigError) as exc:
        print(f"dicompress: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except WorkerDied as exc:  # the machine's processes, not the input nor a bug of ours
        print(f"dicompress: {exc}", file=sys.stderr)
        return EXIT_FAILURES
    except KeyboardInterrupt:
        print("dicompress: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # `dicompress ... | head`: the reader has enough
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    except (StorageError, OSError) as exc:
        # the machine, not the input: a full disk stops every command the same way, and
        # so does a path the command itself needs (-o, --json) that cannot be written
        full = getattr(exc, "errno", None) in (errno.ENOSPC, errno.EDQUOT)
        if not full and not getattr(exc, "filename", None):
            return _internal_error()  # an OS error without a path: ours to explain
        where = f"{exc.filename}: " if getattr(exc, "filename", None) else ""
        why = (" (disk full: the run stops; what was written before is complete, originals "
               "are intact)" if full else " (the run stops; originals are intact)")
        print(f"dicompress: {where}{getattr(exc, 'strerror', None) or exc}{why}",
              file=sys.stderr)
        return EXIT_STOPPED
    except Exception:  # a bug of ours: never reported as a bad file
        return _internal_error()

    return EXIT_USAGE  # pragma: no cover - argparse requires a command


def _internal_error() -> int:
    """The exception being handled is a bug of ours: its traceback, and exit 70."""
    import traceback

    traceback.print_exc()
    print("dicompress: internal error (a bug in dicompress, please report it with the "
          "traceback above)", file=sys.stderr)
    return EXIT_INTERNAL


def run() -> None:
    """The ``dicompress`` command (and ``python -m dicompress``): `main`, then exit.

    What the command made is frozen first (`gc.freeze`): the collection the interpreter
    runs as it exits would walk every object still held (an export's headers, a batch's
    results) to free memory the OS takes back anyway; measured 55-130 ms of an
    export's exit on the loaded machine, 25-37 ms frozen (BENCHMARKS.md). Not in
    `main`, which a program may call more than once."""
    code = main()
    gc.freeze()
    sys.exit(code)


if __name__ == "__main__":  # pragma: no cover
    run()
