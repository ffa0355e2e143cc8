"""Fitting exports into a size budget, and zip bundles that respect it too.

A budget is counted as the file travels by e-mail unless asked otherwise: a MIME part
with its headers and the file in base64 (4 characters for 3 bytes) in lines of 76
characters ending CRLF (RFC 2045 6.8). A 10 MB limit thus holds files of about 7.3 MB
(`raw_limit`); docs/compare.md has the arithmetic.
"""

from __future__ import annotations

import math
import re
import zipfile
from collections.abc import Callable
from pathlib import Path

from dicompress.errors import BudgetError, DicompressError
from dicompress.export.page import index_html as _index_html
from dicompress.fileio import atomic_output

_UNITS = {"": 1, "b": 1, "kb": 1000, "k": 1000, "mb": 1000**2, "m": 1000**2, "gb": 1000**3,
          "kib": 1024, "mib": 1024**2, "gib": 1024**3}
#: How a unit is printed back (the user's own, spelled the usual way).
UNIT_NAMES = {"": "B", "b": "B", "kb": "kB", "k": "kB", "mb": "MB", "m": "MB", "gb": "GB",
              "kib": "KiB", "mib": "MiB", "gib": "GiB"}

#: Base64 in lines of 76 characters, each ended by CRLF (RFC 2045 6.8; SMTP's line end).
BASE64_LINE = 76
#: Bytes kept for an attachment's MIME headers when its name is not known yet: the
#: email package writes about 150 for a short name (Content-Type, Content-Transfer-
#: Encoding, Content-Disposition with the file name); mail clients add a size, dates or a
#: Content-ID. 1 kB covers names of several hundred characters as well.
HEADER_RESERVE = 1024

_SIZE = re.compile(r"\s*([0-9]*\.?[0-9]+)\s*([a-zA-Z]*)\s*")

JPEG_QUALITIES = (85, 75, 65, 55, 45, 35, 25)
SCALES = (0.85, 0.7, 0.5, 0.35, 0.25, 0.18, 0.125, 0.08)


def parse_size(text: str, option: str = "--max-size") -> int:
    """'10MB', '500kB', '25 MiB' -> bytes (kB and MB are decimal, as mail servers count;
    KiB and MiB binary); a bare number is bytes."""
    m = _SIZE.fullmatch(text)
    if not m or m.group(2).lower() not in _UNITS:
        raise DicompressError(f"{option} {text!r}: expected a number with kB, MB or GB "
                              "(decimal) or KiB, MiB, GiB")
    size = int(float(m.group(1)) * _UNITS[m.group(2).lower()])
    if size < 1024:
        hint = f"; did you mean {m.group(1)}MB?" if not m.group(2) else ""
        raise DicompressError(f"{option} {text!r} is {size} bytes, too small for any "
                              f"image{hint}")
    return size


def size_unit(text: str) -> str:
    """The unit `text` was written in, as sizes are printed back ("MB", "MiB", "B")."""
    m = _SIZE.fullmatch(text)
    return UNIT_NAMES.get(m.group(2).lower(), "B") if m else "B"


def base64_size(size: int) -> int:
    """Bytes of `size` bytes in base64, in lines of 76 characters ending CRLF."""
    characters = 4 * math.ceil(size / 3)
    return characters + 2 * math.ceil(characters / BASE64_LINE)


def attachment_headers(filename: str, content_type: str = "application/octet-stream") -> int:
    """Bytes of the MIME headers the email package writes for an attachment called
    `filename` (with the blank line that ends them)."""
    from email import policy
    from email.message import EmailMessage

    part = EmailMessage(policy=policy.SMTP)
    maintype, subtype = content_type.split("/", 1)
    part.set_content(b"", maintype=maintype, subtype=subtype, filename=filename)
    head, _, _ = part.as_bytes().partition(b"\r\n\r\n")
    return len(head) + 4


def attachment_size(size: int, filename: str,
                    content_type: str = "application/octet-stream") -> int:
    """Bytes a file of `size` bytes takes as an e-mail attachment: MIME headers and
    base64 body (what a mail server counts against its limit)."""
    return attachment_headers(filename, content_type) + base64_size(size)


def raw_limit(limit: int, reserve: int = HEADER_RESERVE) -> int:
    """The largest file that travels as an attachment of at most `limit` bytes, with
    `reserve` bytes for its headers."""
    room = limit - reserve
    if room <= 0:
        return 0
    # base64_size grows by 4 characters per 3 bytes plus CRLF per 57 bytes: start from
    # the continuous estimate and step to the exact edge
    size = int(room * 3 * BASE64_LINE / (4 * (BASE64_LINE + 2)))
    while base64_size(size + 1) <= room:
        size += 1
    while size > 0 and base64_size(size) > room:
        size -= 1
    return size


def sent_total(raw_total: int, files: int, reserve: int = HEADER_RESERVE) -> int:
    """At most how many bytes `files` files of `raw_total` bytes in all take as one
    attachment each (base64 rounds each file up to 3 bytes and its last line)."""
    if files <= 0:
        return 0
    per_byte = 4 / 3 * (BASE64_LINE + 2) / BASE64_LINE
    return math.ceil((raw_total + 2 * files) * per_byte + files * (2 + reserve))


def raw_total_limit(limit: int, files: int, reserve: int = HEADER_RESERVE) -> int:
    """The most bytes `files` files may hold in all to travel as attachments (one each)
    within `limit` bytes: the inverse of `sent_total`."""
    if files <= 0:
        return limit
    per_byte = 4 / 3 * (BASE64_LINE + 2) / BASE64_LINE
    return max(0, math.floor((limit - files * (2 + reserve)) / per_byte) - 2 * files)


def fit(encode: Callable[[int, float], bytes], budget: int | None, *, quality: int,
        lossy_quality: bool) -> tuple[bytes, list[str]]:
    """Encode, then lower JPEG quality, then downscale, until the result fits `budget`."""
    data = encode(quality, 1.0)
    if budget is None or len(data) <= budget:
        return data, []
    tried = []
    if lossy_quality:
        for q in (q for q in JPEG_QUALITIES if q < quality):
            data = encode(q, 1.0)
            tried.append(f"quality {q}")
            if len(data) <= budget:
                return data, [f"JPEG quality lowered to {q} to fit {budget:,} bytes"]
        quality = min(quality, JPEG_QUALITIES[-1]) if lossy_quality else quality
    for scale in SCALES:
        data = encode(quality, scale)
        if len(data) <= budget:
            what = f"quality {quality}, " if lossy_quality else ""
            return data, [f"{what}downscaled to {scale:.0%} to fit {budget:,} bytes"]
    raise BudgetError(f"cannot fit in {budget:,} bytes even at {SCALES[-1]:.0%} size")


def _entry_cost(name: str, size: int) -> int:
    # local header + central directory entry + name twice, stored data
    return 30 + 46 + 2 * len(name.encode()) + size + 64


def write_zips(target: Path, files: list[tuple[str, Path]], captions: dict[str, str],
               budget: int | None) -> list[Path]:
    """Bundle `files` (archive name, path) with an index.html; split to fit `budget`."""
    groups: list[list[tuple[str, Path]]] = [[]]
    used = 0
    reserve = 2048  # index.html head; each image adds its own line (counted in cost)
    for name, path in files:
        cost = _entry_cost(name, path.stat().st_size) + 300 + len(name) * 2  # + index line
        if budget and cost + reserve + 22 > budget:
            raise BudgetError(f"{name} alone does not fit a {budget:,}-byte archive")
        if budget and groups[-1] and used + cost + reserve + 22 > budget:
            groups.append([])
            used = 0
        groups[-1].append((name, path))
        used += cost
    written = []
    stem = target.name[:-4] if target.name.lower().endswith(".zip") else target.name
    for i, group in enumerate(groups, start=1):
        name = f"{stem}.zip" if len(groups) == 1 else f"{stem}-{i}.zip"
        path = target.with_name(name)
        title = stem if len(groups) == 1 else f"{stem} (part {i} of {len(groups)})"
        with atomic_output(path) as tmp:
            with zipfile.ZipFile(tmp, "w") as zf:
                zf.writestr("index.html", _index_html(title, [n for n, _ in group], captions),
                            compress_type=zipfile.ZIP_DEFLATED)
                for arcname, src in group:
                    zf.write(src, arcname, compress_type=zipfile.ZIP_STORED)
            if budget and tmp.stat().st_size > budget:
                raise BudgetError(f"{name} came out at {tmp.stat().st_size:,} bytes, over {budget:,}")
        written.append(path)
    return written
