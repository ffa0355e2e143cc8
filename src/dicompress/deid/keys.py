"""Everything derived from the secret key: replacement UIDs, pseudonyms, date shifts.

All are HMAC-SHA256 of the original value under the run's key, so the same original
gives the same replacement in every file, process and run that uses the same key,
and nobody without the key can go back (or test a guess).
"""

from __future__ import annotations

import base64
import csv
import hashlib
import hmac
import os
from dataclasses import dataclass
from pathlib import Path

from dicompress.errors import DeidError
from dicompress.uids import uid_from_digest

#: Date shifts move every date of a patient back by 1 to 10 years, in whole days.
SHIFT_MIN_DAYS, SHIFT_SPAN_DAYS = 365, 3288
PSEUDONYM_PREFIX = "ANON"


def new_key() -> bytes:
    return os.urandom(32)


def load_key(text: str | None = None, path: str | Path | None = None) -> bytes:
    """The key from `--key TEXT` or a key file (its first line); at least 16 characters."""
    if path is not None:
        try:
            text = Path(path).read_text(encoding="utf-8").splitlines()[0].strip()
        except (OSError, IndexError, UnicodeDecodeError) as exc:
            raise DeidError(f"{path}: cannot read a key from it ({exc})") from exc
    if text is None:
        raise DeidError("no key given")
    if len(text) < 16:
        raise DeidError("the de-identification key must have at least 16 characters")
    return text.encode("utf-8")


def _mac(key: bytes, purpose: str, value: str) -> bytes:
    return hmac.new(key, f"{purpose}\0{value}".encode("utf-8", "surrogateescape"),
                    hashlib.sha256).digest()


def fingerprint(key: bytes) -> str:
    """Names the key in a journal without revealing it."""
    return _mac(key, "fingerprint", "").hex()[:16]


def replacement_uid(key: bytes, uid: str) -> str:
    """A UID under 2.25 (PS3.5 B.2) from a UUID of version 8 (RFC 9562) made of the MAC."""
    return uid_from_digest(_mac(key, "uid", uid.strip().rstrip("\0")))


def pseudonym(key: bytes, purpose: str, value: str) -> str:
    """ANON + 12 base-32 characters (60 bits): short enough for any VR, never colliding
    in practice."""
    text = base64.b32encode(_mac(key, purpose, value)).decode("ascii")[:12]
    return PSEUDONYM_PREFIX + text


def date_shift_days(key: bytes, patient: str) -> int:
    """Days to add to every date of `patient` (negative)."""
    n = int.from_bytes(_mac(key, "date-shift", patient)[:8], "big")
    return -(SHIFT_MIN_DAYS + n % SHIFT_SPAN_DAYS)


@dataclass(frozen=True)
class Mapped:
    patient_id: str
    patient_name: str | None = None
    date_shift: int | None = None


def load_mapping(path: str | Path) -> dict[str, Mapped]:
    """The user's pseudonyms: a CSV with a header naming the columns
    ``patient_id,new_patient_id`` and optionally ``new_patient_name``, ``date_shift_days``."""
    path = Path(path)
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            missing = {"patient_id", "new_patient_id"} - set(reader.fieldnames or ())
            if missing:
                raise DeidError(f"{path}: the mapping needs the columns patient_id and "
                                      f"new_patient_id (missing {', '.join(sorted(missing))})")
            mapping: dict[str, Mapped] = {}
            for line, row in enumerate(reader, 2):
                original = (row.get("patient_id") or "").strip()
                new = (row.get("new_patient_id") or "").strip()
                if not original or not new:
                    raise DeidError(f"{path}:{line}: patient_id and new_patient_id "
                                          "must both be given")
                if original in mapping:
                    raise DeidError(f"{path}:{line}: patient_id given twice")
                shift = (row.get("date_shift_days") or "").strip()
                try:
                    days = int(shift) if shift else None
                except ValueError:
                    raise DeidError(f"{path}:{line}: date_shift_days {shift!r} "
                                          "is not a whole number") from None
                mapping[original] = Mapped(new, (row.get("new_patient_name") or "").strip() or None,
                                           days)
    except OSError as exc:
        raise DeidError(f"{path}: {exc.strerror or exc}") from exc
    except (UnicodeDecodeError, csv.Error) as exc:
        raise DeidError(f"{path}: not a UTF-8 CSV file ({exc})") from exc
    return mapping
