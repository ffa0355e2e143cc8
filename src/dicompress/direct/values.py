"""Which values read from Implicit VR Little Endian pydicom writes back byte for byte, by VR
(PS3.5 6.2): a value it would trim, pad or re-spell sends the file to the general path."""

from __future__ import annotations

import re
import struct
from collections.abc import Callable

from dicompress.direct.elements import (LONG_VRS)

# -- Implicit VR Little Endian (PS3.5 A.1) ------------------------------------------
# pydicom writes an element read from Implicit VR with the VR its dictionary gives and a
# value it decoded and encodes again. The checks below say, per VR, when that gives the
# value's bytes back; anything else goes to the general path.
LATIN1, UTF8, ASCII = 0, 1, 2  # what a text value may hold, by Specific Character Set
CHARSETS = {b"": LATIN1, b"ISO_IR 6": LATIN1, b"ISO_IR 100": LATIN1,
             b"ISO_IR 192": UTF8}  # pydicom decodes these with latin_1 / iso8859, UTF-8


def _even(text: bytes, pad: bytes) -> bytes:
    """`text` padded to even length, as pydicom writes a string (PS3.5 6.2)."""
    return text + pad if len(text) & 1 else text


def _decodes(value: bytes, charset: int) -> bool:
    """Whether pydicom decodes and encodes `value` back to the same bytes."""
    if b"\x1b" in value:  # ISO 2022 escapes: pydicom re-encodes them its own way
        return False
    if value.isascii() or charset == LATIN1:
        return True
    if charset == UTF8:
        try:
            value.decode("utf-8")
            return True
        except UnicodeDecodeError:
            return False
    return False


def _string(value: bytes, charset: int) -> bool:
    # AS, CS, DA, DT, TM (pydicom.values.convert_string): trailing spaces and NULs go
    return value == _even(value.rstrip(b" \0"), b" ")


def _text(value: bytes, charset: int) -> bool:
    # LT, ST, UT (convert_single_string): one value, trailing spaces and NULs go
    return _decodes(value, charset) and value == _even(value.rstrip(b" \0"), b" ")


def _texts(value: bytes, charset: int) -> bool:
    # LO, SH, UC (convert_text): each value loses its trailing spaces and NULs
    if not _decodes(value, charset):
        return False
    if b"\\" not in value:
        return value == _even(value.rstrip(b" \0"), b" ")
    return value == _even(b"\\".join(v.rstrip(b" \0") for v in value.split(b"\\")), b" ")


def _person_name(value: bytes, charset: int) -> bool:
    # PN (convert_PN, valuerep.PersonName): trailing spaces and NULs of the whole value
    # go, and empty component groups at the end of a name ("Doe^J=")
    text = value.rstrip(b"\0 ")
    return (_decodes(value, charset) and value == _even(text, b" ")
            and not any(name.endswith(b"=") for name in text.split(b"\\")))


def _application_entity(value: bytes, charset: int) -> bool:
    # AE (convert_AE_string): each value loses leading and trailing white space
    text = value.decode("latin-1")
    return value == _even("\\".join(v.strip() for v in text.split("\\")).encode("latin-1"), b" ")


def _uri(value: bytes, charset: int) -> bool:
    # UR (convert_UR_string): trailing white space goes
    return value == _even(value.decode("latin-1").rstrip().encode("latin-1"), b" ")


def _uid(value: bytes, charset: int) -> bool:
    # UI (convert_UI, uid.UID): trailing NULs and spaces, then each value's white space
    text = value.decode("latin-1").rstrip("\0 ")
    if "\\" in text or text != text.strip():
        text = "\\".join(v.strip() for v in text.split("\\"))
    return value == _even(text.encode("latin-1"), b"\0")


def _decimal(value: bytes, charset: int) -> bool:
    # DS (convert_DS_string, valuerep.DSfloat): white space around the whole value and
    # around each number goes; each number must parse (else pydicom fails to read it)
    numbers = value.decode("latin-1").strip().rstrip(" \0").split("\\")
    for number in numbers:
        if number.strip():
            try:
                float(number)
            except ValueError:
                return False
            if number != number.strip():
                return False
    return value == _even("\\".join(numbers).encode("latin-1"), b" ")


def _integer(value: bytes, charset: int) -> bool:
    # IS (convert_IS_string, valuerep.IS): each number kept as written when it is a plain
    # integer (others are left to pydicom's float and range rules)
    numbers = value.decode("latin-1").rstrip(" \0").split("\\")
    for number in numbers:
        if number.strip() and not (len(number) <= 16 and _PLAIN_INTEGER.fullmatch(number)):
            return False
    return value == _even("\\".join(numbers).encode("latin-1"), b" ")


def _float(value: bytes, charset: int) -> bool:
    # FL: pydicom unpacks to Python floats and packs again (a signalling NaN comes
    # back quiet)
    count = len(value) // 4
    return (not len(value) % 4
            and struct.pack(f"<{count}f", *struct.unpack(f"<{count}f", value)) == value)


def _words(size: int) -> Callable[[bytes, int], bool]:
    def whole(value: bytes, charset: int) -> bool:
        # numbers (convert_numbers): a length that is not a multiple of the size fails;
        # OB/OW/...: an odd length is padded
        return not len(value) % size
    return whole


_PLAIN_INTEGER = re.compile(r"[+-]?[0-9]+")
#: VR -> (has a 4-byte length, does pydicom write the value's bytes back).
VALUES: dict[bytes, tuple[bool, Callable[[bytes, int], bool]]] = {
    **{vr: (False, _string) for vr in (b"AS", b"CS", b"DA", b"DT", b"TM")},
    **{vr: (vr in LONG_VRS, _text) for vr in (b"LT", b"ST", b"UT")},
    **{vr: (vr in LONG_VRS, _texts) for vr in (b"LO", b"SH", b"UC")},
    b"PN": (False, _person_name), b"AE": (False, _application_entity), b"UR": (True, _uri),
    b"UI": (False, _uid), b"DS": (False, _decimal), b"IS": (False, _integer),
    b"FL": (False, _float), b"UN": (True, _words(1)),
    **{vr: (False, _words(2)) for vr in (b"US", b"SS")},
    **{vr: (False, _words(4)) for vr in (b"UL", b"SL", b"AT")},
    **{vr: (vr in LONG_VRS, _words(8)) for vr in (b"FD", b"SV", b"UV")},
    **{vr: (True, _words(2)) for vr in (b"OB", b"OD", b"OF", b"OL", b"OV", b"OW")},
}
