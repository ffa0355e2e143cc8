"""What `dicompress plan` prints: the options measured against the budget or the link's
deadline, the choice, and the command to run."""

from __future__ import annotations

import json
import shlex
import sys

from dicompress.cli.render import human_size, one_line, table
from dicompress.errors import DicompressError, UsageError


def plan(args) -> int:
    from dicompress.cli import progress
    from dicompress.compare import plan as planning
    from dicompress.export.budget import parse_size, size_unit

    if args.link and not args.deadline:
        raise UsageError("--link needs --deadline")
    if args.budget and args.deadline:
        raise UsageError("--deadline goes with --link, not --budget")
    if args.sample is not None and args.sample < 1:
        raise UsageError("--sample must be at least 1")
    unit = None
    if args.budget:
        try:
            capacity = parse_size(args.budget, "--budget")
        except DicompressError as exc:
            raise UsageError(str(exc)) from None
        unit = size_unit(args.budget)
        rate = None
    else:
        try:
            rate = planning.parse_rate(args.link)
            seconds = planning.parse_duration(args.deadline)
        except planning.PlanError as exc:
            raise UsageError(str(exc)) from None
        capacity = int(rate * seconds * planning.LINK_EFFICIENCY / 8)
    as_sent = bool(args.budget) and not args.raw_size
    with progress.StageReporter("plan") as reporter:
        result = planning.plan(args.sources, capacity, min_psnr=args.min_psnr,
                               lossless_only=args.lossless_only, sample=args.sample,
                               link_bits_per_s=rate, output=args.output, as_sent=as_sent,
                               progress=reporter.update)
    if args.json:
        args.json.write_text(json.dumps(result.as_dict(), indent=1) + "\n", encoding="utf-8")
    for _, reason in result.failed:
        print(f"FAILED   {one_line(reason)} (not measured)", file=sys.stderr)
    found = result.totals
    if not found.files:
        print("no images found", file=sys.stderr)
        return 1

    def size(n: int) -> str:
        return human_size(n, unit)

    if as_sent:
        goal = (f"budget {args.budget} ({capacity:,} bytes) as sent by e-mail, each file one "
                "attachment (base64 and MIME headers)")
    elif args.budget:
        goal = f"budget {args.budget} ({capacity:,} bytes) of files"
    else:
        goal = (f"{args.link} for {args.deadline}: {size(capacity)} at "
                f"{planning.LINK_EFFICIENCY:.0%} of the link")
    print(f"{found.files} files, {found.frames} frames, {size(found.stored_bytes)} now "
          f"({size(found.pixel_bytes)} of pixels); {goal}")

    def cells(o):
        if o.reason:
            return [o.label, "-", "-", "-", "-", "-", "-", f"n/a: {o.reason[:50]}"]
        psnr = "lossless" if o.lossless else f"{o.psnr_worst:.1f} / {o.psnr_mean:.1f}"
        error = "0" if o.lossless else f"{o.max_abs_error_modality:.4g}"
        when = result.transfer_seconds(o.predicted_bytes)
        return [o.label, size(o.predicted_bytes),
                size(o.sent_bytes) if o.sent_bytes is not None else "-", f"{o.ratio:.2f}",
                psnr, error, f"{when:.0f} s" if when is not None else "-",
                "fits" if o.fits else ""]

    ranked, refused = [], set()
    for o in sorted(result.options, key=lambda o: (bool(o.reason), o.predicted_bytes)):
        family = o.label.split(":")[0]
        if o.reason and family in refused:
            continue  # one line says why a codec cannot code these images
        refused.add(family) if o.reason else None
        ranked.append(o)
    print(table(["option", "predicted files", "as sent", "ratio", "PSNR worst / mean dB",
                 "max err", "transfer", ""],
                [cells(o) for o in ranked], "<>>>>>><"))
    print("PSNR peak = each frame's dynamic range; max err in the modality's units (HU for "
          "CT); see docs/compare.md")
    if result.choice is None:
        floor = f" with a worst slice of at least {args.min_psnr:g} dB" if args.min_psnr else ""
        closest = [o for o in ranked if not o.reason][:3]
        if not closest:  # no option could code the files: why, not a budget to relax
            reasons = sorted({o.reason for o in ranked if o.reason})
            print(f"\nNo option can code these files: {'; '.join(reasons)}.")
            return 1
        print(f"\nNothing fits {goal}{floor}. Closest: " + "; ".join(
            f"{o.label} {size(o.counted_bytes)}"
            + ("" if o.lossless else f", worst slice {o.psnr_worst:.1f} dB") for o in closest)
            + ". Relax the budget, the deadline or --min-psnr.")
        return 1
    c = result.choice
    quality_text = "lossless" if c.lossless else (
        f"worst slice PSNR {c.psnr_worst:.1f} dB, mean {c.psnr_mean:.1f} dB, max error "
        f"{c.max_abs_error_modality:.4g} in the modality's units")
    counted = (f"{size(c.sent_bytes)} as sent ({size(c.predicted_bytes)} of files)"
               if c.sent_bytes is not None else size(c.predicted_bytes))
    print(f"\nChoice: {c.label}, predicted {counted}: {c.counted_bytes / capacity:.0%} of "
          f"{args.budget or size(capacity)}; {quality_text}")
    if result.per_series:
        same = len({s.option.label for s in result.per_series}) == 1
        print("The smallest lossless option of each series"
              + (f" is {result.per_series[0].option.label} for every one:" if same else ":"))
        for s in result.per_series:
            print(f"  {s.series}: {s.option.label}, {s.files} file{'s' * (s.files != 1)}, ratio "
                  f"{s.option.ratio:.2f}, predicted {size(s.option.predicted_bytes)}")
        if result.failed:
            print(f"  (not in these commands: the {len(result.failed)} file"
                  f"{'s' * (len(result.failed) != 1)} that failed above)")
    for command in ([s.option.command for s in c.per_series] or [c.command]):
        print("Run:    " + shlex.join(command))
    return 1 if result.failed else 0  # files that could not be measured are a failure
