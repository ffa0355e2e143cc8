"""What `dicompress report` prints of a run's journal: a summary (counts, bytes, the worst
loss of lossy outputs, failures), or every file as CSV or JSON."""

from __future__ import annotations

import contextlib
import csv
import json
import os
import sys

from dicompress.batch import journal as J
from dicompress.batch.journal import open_read_only
from dicompress.cli.render import human_size, table


def report(args) -> int:
    try:
        return _report(args)
    except BrokenPipeError:  # `dicompress report J --csv | head`: the reader has enough
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


def _report(args) -> int:
    db = open_read_only(args.journal)
    with (open(args.output, "w", newline="", encoding="utf-8") if args.output
          else contextlib.nullcontext(sys.stdout)) as out:
        if args.csv:
            writer = csv.writer(out)
            writer.writerow(J.COLUMNS)
            writer.writerows(J.file_rows(db))
        elif args.json:
            json.dump({"settings": J.settings_of(db),
                       "files": [dict(zip(J.COLUMNS, row)) for row in J.file_rows(db)]},
                      out, indent=1)
            out.write("\n")
        else:
            before, after = J.bytes_transcoded(db)
            lines = [[status, n] for status, n in sorted(J.status_counts(db).items())]
            lines.append(["bytes before -> after", f"{human_size(before)} -> {human_size(after)}"
                          + (f" ({before / after:.2f}:1)" if after else "")])
            out.write(table(["status", "files"], lines, "<>") + "\n")
            loss = J.loss_summary(db)
            if loss.files:
                psnr = f"{loss.psnr:.1f} dB" if loss.psnr is not None else "infinite"
                out.write(f"lossy    {loss.files} files; worst frame PSNR {psnr}; worst error "
                          f"{_number(loss.max_abs_error_modality)} in the modality's units\n")
                if loss.max_display_error is not None:
                    out.write(f"lossy    worst display error {_number(loss.max_display_error)} "
                              f"levels of 255 at {loss.window or 'the default window'} "
                              f"({loss.worst_display_path})\n")
            for path, reason in J.failures(db, 50):
                out.write(f"FAILED   {reason or path}\n")
    db.close()
    return 0


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"
