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


def human_size(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if abs(n) < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GB"  # pragma: no cover


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
