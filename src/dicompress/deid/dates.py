"""Shifting DA and DT values by whole days (Retain Longitudinal Temporal Information
with Modified Dates): intervals between a patient's dates are kept exactly."""

from __future__ import annotations

import datetime as dt
import re

_DATE = re.compile(r"(\d{4})(?:\.?(\d{2})(?:\.?(\d{2}))?)?")  # YYYY[MM[DD]]; ACR-NEMA dots


def _shift_day(text: str, days: int) -> str | None:
    """`text` = YYYY, YYYYMM or YYYYMMDD: shifted, same precision; None if not a date.
    A year or a month is shifted by its middle day, so that it moves as its days do."""
    m = _DATE.fullmatch(text)
    if not m:
        return None
    year, month, day = int(m[1]), int(m[2] or 7), int(m[3] or (15 if m[2] else 1))
    try:
        moved = dt.date(year, month, day) + dt.timedelta(days=days)
    except (ValueError, OverflowError):
        return None
    if m[3]:
        return moved.strftime("%Y%m%d")
    if m[2]:
        return moved.strftime("%Y%m")
    return f"{moved.year:04d}"


def shift_da(value: str, days: int) -> str | None:
    """A DA value (a date or a range A-B, either side open) shifted; None if unparseable."""
    value = value.strip()
    if not value:
        return value
    parts = value.split("-")
    if len(parts) > 2:
        return None
    out = []
    for part in parts:
        if not part.strip():
            out.append("")
            continue
        shifted = _shift_day(part.strip(), days)
        if shifted is None:
            return None
        out.append(shifted)
    return "-".join(out)


# YYYY[MM[DD]] [HH[MM[SS[.F]]]] [&ZZXX]: an offset is -1200 to +1400 (PS3.5 6.2), so that
# the "-2021" of a range 2020-2021 is not taken for one
_DT = re.compile(r"(\d{4}(?:\d{2}(?:\d{2})?)?)(\d{2}(?:\d{2}(?:\d{2}(?:\.\d{1,6})?)?)?)?"
                 r"([+-](?:0\d|1[0-4])[0-5]\d)?")


def shift_dt(value: str, days: int) -> str | None:
    """A DT value (YYYY[MM[DD[HH[MM[SS[.F]]]]]][&ZZXX], or a range) shifted by whole days."""
    value = value.strip()
    if not value:
        return value
    # one DT (a "-" may start its UTC offset), else a range A-B: split at the "-" after
    # which a whole DT follows and before which one ends (either side may be open)
    candidates = [[value]]
    for k in [i for i, c in enumerate(value) if c == "-"]:
        left, right = value[:k], value[k + 1:]
        if (not left or _DT.fullmatch(left)) and (not right or _DT.fullmatch(right)):
            candidates.append([left, right])
    for parts in candidates:
        out = []
        for part in parts:
            if not part:
                out.append("")
                continue
            m = _DT.fullmatch(part)
            if not m:
                break
            day = _shift_day(m[1], days)
            if day is None:
                break
            out.append(day + (m[2] or "") + (m[3] or ""))
        else:
            return "-".join(out)
    return None
