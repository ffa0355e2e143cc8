"""Shifting DA and DT values by whole days (Retain Longitudinal Temporal Information
with Modified Dates): intervals between a patient's dates are kept exactly."""

from __future__ import annotations

import datetime as dt
import re

_DATE = re.compile(r"(\d{4})(?:\.?(\d{2})(?:\.?(\d{2}))?)?")  # YYYY[MM[DD]]; ACR-NEMA dots


def _shift_day(text: str, days: int) -> str | None:
    """`text` = YYYY, YYYYMM or YYYYMMDD: shifted, same precision; None if not a date."""
    m = _DATE.fullmatch(text)
    if not m:
        return None
    year, month, day = int(m[1]), int(m[2] or 1), int(m[3] or 1)
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


_DT = re.compile(r"(\d{4}(?:\d{2}(?:\d{2})?)?)(\d{2}(?:\d{2}(?:\d{2}(?:\.\d{1,6})?)?)?)?([+-]\d{4})?")


def shift_dt(value: str, days: int) -> str | None:
    """A DT value (YYYY[MM[DD[HH[MM[SS[.F]]]]]][&ZZXX], or a range) shifted by whole days."""
    value = value.strip()
    if not value:
        return value
    # one DT (a "-" may start its UTC offset), else a range A-B split where a date starts
    candidates = [[value]]
    if "-" in value:
        candidates.append(re.split(r"-(?=\d{4})", value))
    for parts in candidates:
        out = []
        for part in parts:
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
