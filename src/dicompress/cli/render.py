"""Plain-text tables and sizes for the terminal."""

from __future__ import annotations

from collections.abc import Sequence


#: Control characters (C0, DEL, C1) as escapes: a file name holding a newline must not
#: start a line of its own (a forged "FAILED" line), nor a terminal escape run.
_CONTROL = {c: (f"\\x{c:02x}" if c not in (9, 10, 13) else {9: "\\t", 10: "\\n", 13: "\\r"}[c])
            for c in [*range(32), *range(127, 160)]}


def one_line(text: object) -> str:
    """`text` (a message, a path) as one printable line: control characters escaped."""
    return str(text).translate(_CONTROL)


#: Bytes per unit: kB, MB and GB are decimal (SI, as disks and mail servers count),
#: KiB, MiB and GiB binary (IEC); a size is never printed in one labelled as the other.
UNITS = {"B": 1, "kB": 1000, "MB": 1000**2, "GB": 1000**3,
         "KiB": 1024, "MiB": 1024**2, "GiB": 1024**3}


def human_size(n: float, unit: str | None = None) -> str:
    """`n` bytes in `unit` (one of `UNITS`: the user's, when they typed one), else in
    the decimal unit that suits it; three significant digits."""
    if unit is None:
        unit = next((u for u in ("GB", "MB", "kB") if abs(n) >= UNITS[u]), "B")
    if unit == "B":
        return f"{n:,.0f} B"
    value = n / UNITS[unit]
    digits = 2 if abs(value) < 10 else 1 if abs(value) < 100 else 0
    return f"{value:,.{digits}f} {unit}"


def table(headers: Sequence[str], rows: Sequence[Sequence[object]], align: str = "") -> str:
    """A table with a header rule; `align` has one of '<' '>' per column (default '<')."""
    cells = [[str(c) for c in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    align = align.ljust(len(headers), "<")

    def line(row):
        return "  ".join(f"{c:{a}{w}}" for c, a, w in zip(row, align, widths)).rstrip()

    out = [line(cells[0]), "  ".join("-" * w for w in widths)]
    out.extend(line(r) for r in cells[1:])
    return "\n".join(out)
