"""The fast path's header source: the files most of an archive is made of, parsed without
pydicom.

A CT or MR slice is a few hundred kilobytes; a transcode of it through pydicom spends
more time parsing and writing the header (about 2 ms) than our RLE codec spends on
the pixels. Files of the common shape are parsed here instead:

* Part 10 with File Meta Information, Explicit VR Little Endian or Implicit VR Little
  Endian (each element then given its VR from `dictionary`, as pydicom gives it, and
  written with an Explicit VR header);
* one sample per pixel, 8 or 16 bits allocated, native Pixel Data of defined length;
* a lossless encapsulated target (RLE, JPEG 2000, HTJ2K, JPEG-LS lossless) that
  changes no Image Pixel attribute, so the output's dataset is the input's elements
  byte for byte (Implicit VR: the values byte for byte, under new headers), with new
  File Meta Information and the encapsulated Pixel Data.

The whole file is read (up to `MAX_BYTES`) and its top-level elements located by a
bounds-checked walk (sequences are skipped item by item, never decoded). The output's
header is then those byte ranges (Implicit VR: the elements under new headers) as a
`pipeline.write.BytesHeader`, and the frames are read straight from the same bytes: both
go through the one writer and the one verifier like every other file. Anything the walk
does not expect (another syntax, an undefined length outside a sequence, elements out of
order or repeated, attributes of another shape, a value the general path would write
otherwise: pydicom re-encodes every value read from Implicit VR, so a value it would trim,
pad or re-spell is left to it) makes `transcode` return None: the caller takes the general
pydicom path, which knows every case and gives the error messages. The two paths give
equal datasets and fragments (`tests/test_direct.py` reads both with pydicom over the
corpus), and for Implicit VR sources the same bytes.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Callable
from pathlib import Path

from dicompress import dictionary, uids
from dicompress.codecs import Codec
from dicompress.digests import bytes_digest
from dicompress.layout import FrameLayout
from dicompress.pipeline.write import BytesHeader, file_meta_group

#: Files larger than this take the general path (which streams frame by frame).
MAX_BYTES = 64 << 20

EXPLICIT_VR_LITTLE_ENDIAN = uids.ExplicitVRLittleEndian
IMPLICIT_VR_LITTLE_ENDIAN = uids.ImplicitVRLittleEndian

# PS3.5 Table 7.1-1: VRs with a reserved field and a 4-byte length.
_LONG_VRS = frozenset(
    b"OB OD OF OL OV OW SQ SV UC UN UR UT UV".split()
)
_SHORT_VRS = frozenset(
    b"AE AS AT CS DA DS DT FL FD IS LO LT PN SH SL SS ST TM UI UL US".split()
)
_UNDEFINED = 0xFFFFFFFF
_ITEM_HEADER = b"\xfe\xff\x00\xe0"
_SEQUENCE_END_BYTES = b"\xfe\xff\xdd\xe0\0\0\0\0"
_ITEM, _ITEM_END, _SEQUENCE_END = 0xFFFEE000, 0xFFFEE00D, 0xFFFEE0DD
_PIXEL_DATA = 0x7FE00010
_MAX_DEPTH = 16

_TAG = struct.Struct("<HH")
_U16 = struct.Struct("<H")
_U32 = struct.Struct("<I")
_SHORT_HEADER = struct.Struct("<HH2sH")  # tag, VR and (for the short VRs) length
_LONG_HEADER = struct.Struct("<HH2s2xI")  # tag, VR, reserved, length
_IMPLICIT_HEADER = struct.Struct("<HHI")  # tag, length (PS3.5 7.1.3)

# Attributes the walk reads the values of (top level only).
_ROWS, _COLUMNS = 0x00280010, 0x00280011
_SAMPLES, _PHOTOMETRIC, _FRAMES, _PLANAR = 0x00280002, 0x00280004, 0x00280008, 0x00280006
_BITS_ALLOCATED, _BITS_STORED, _HIGH_BIT, _SIGNED = 0x00280100, 0x00280101, 0x00280102, 0x00280103
_SOP_CLASS, _SOP_INSTANCE, _MODALITY = 0x00080016, 0x00080018, 0x00080060
_LOSSY = 0x00282110
_READ = frozenset({_ROWS, _COLUMNS, _SAMPLES, _PHOTOMETRIC, _FRAMES, _PLANAR, _BITS_ALLOCATED,
                   _BITS_STORED, _HIGH_BIT, _SIGNED, _SOP_CLASS, _SOP_INSTANCE, _MODALITY,
                   _LOSSY})
# Values the general path sets again (pydicom then writes them in its own encoding), with
# their padding: copied only when already written that way, so both paths give the same
# bytes. The SOP UIDs also go into the File Meta Information.
_CANONICAL = {_PHOTOMETRIC: b" ", _FRAMES: b" ", _LOSSY: b" ", _SOP_CLASS: b"\0",
              _SOP_INSTANCE: b"\0"}

# File Meta Information elements we write (PS3.10 7.1).
_META_VERSION, _MEDIA_CLASS, _MEDIA_INSTANCE = 0x00020001, 0x00020002, 0x00020003
_META_SYNTAX, _IMPL_CLASS, _IMPL_VERSION = 0x00020010, 0x00020012, 0x00020013


class NotDirect(Exception):
    """The file is not of the shape the direct path handles (the general path will)."""


def _tag(buf: memoryview, pos: int) -> int:
    group, element = _TAG.unpack_from(buf, pos)
    return group << 16 | element


class Element:
    """One element as found in the bytes: where its header starts, its value, its end."""

    __slots__ = ("tag", "vr", "start", "value_at", "length", "end")

    def __init__(self, tag: int, vr: bytes, start: int, value_at: int, length: int,
                 end: int) -> None:
        self.tag, self.vr, self.start = tag, vr, start
        self.value_at, self.length, self.end = value_at, length, end


def read_element(buf: memoryview, pos: int, end: int, depth: int = 0) -> Element:
    """The Explicit VR Little Endian element at `pos`; an undefined-length sequence is
    walked to its delimiter. Raises NotDirect for anything else."""
    if pos + 8 > end:
        raise NotDirect("an element header runs past the end")
    tag = _tag(buf, pos)
    vr = bytes(buf[pos + 4:pos + 6])
    if vr in _SHORT_VRS:
        length = _U16.unpack_from(buf, pos + 6)[0]
        value_at = pos + 8
    elif vr in _LONG_VRS:
        if pos + 12 > end or buf[pos + 6] or buf[pos + 7]:
            raise NotDirect("a long-VR header is cut short or its reserved bytes are set")
        length = _U32.unpack_from(buf, pos + 8)[0]
        value_at = pos + 12
    else:
        raise NotDirect(f"unexpected VR {vr!r}")
    if length == _UNDEFINED:
        if vr != b"SQ":  # e.g. UN of undefined length holds Implicit VR inside
            raise NotDirect("undefined length outside a sequence")
        stop = _skip_items(buf, value_at, end, depth + 1)
        return Element(tag, vr, pos, value_at, length, stop)
    if value_at + length > end:
        raise NotDirect("a value runs past the end")
    if vr == b"SQ":
        _check_items(buf, value_at, value_at + length, depth + 1)
    return Element(tag, vr, pos, value_at, length, value_at + length)


def _item_header(buf: memoryview, pos: int, end: int) -> tuple[int, int]:
    if pos + 8 > end:
        raise NotDirect("an item header runs past the end")
    return _tag(buf, pos), _U32.unpack_from(buf, pos + 4)[0]


def _skip_items(buf: memoryview, pos: int, end: int, depth: int) -> int:
    """Walk the items of an undefined-length sequence; the position after its delimiter."""
    if depth > _MAX_DEPTH:
        raise NotDirect("sequences nested too deep")
    while True:
        tag, length = _item_header(buf, pos, end)
        if tag == _SEQUENCE_END:
            if length:
                raise NotDirect("a sequence delimiter with a length")
            return pos + 8
        pos = _item(buf, pos, end, tag, length, depth)


def _check_items(buf: memoryview, pos: int, end: int, depth: int) -> None:
    """Walk the items of a defined-length sequence: they must fill it exactly."""
    if depth > _MAX_DEPTH:
        raise NotDirect("sequences nested too deep")
    while pos < end:
        tag, length = _item_header(buf, pos, end)
        pos = _item(buf, pos, end, tag, length, depth)
    if pos != end:
        raise NotDirect("sequence items do not fill the sequence")


def _item(buf: memoryview, pos: int, end: int, tag: int, length: int, depth: int) -> int:
    """Walk one item starting at `pos`; the position after it."""
    if tag != _ITEM:
        raise NotDirect(f"expected an item, found ({tag >> 16:04X},{tag & 0xFFFF:04X})")
    pos += 8
    if length != _UNDEFINED:
        if pos + length > end:
            raise NotDirect("an item runs past its sequence")
        stop = pos + length
        while pos < stop:
            pos = read_element(buf, pos, stop, depth).end
        if pos != stop:
            raise NotDirect("an item's elements do not fill it")
        return pos
    while True:
        if pos + 8 > end:
            raise NotDirect("an item has no delimiter")
        if _tag(buf, pos) == _ITEM_END:
            if _U32.unpack_from(buf, pos + 4)[0]:
                raise NotDirect("an item delimiter with a length")
            return pos + 8
        pos = read_element(buf, pos, end, depth).end


class Parsed:
    """A Part 10 file as the direct path sees it."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        buf = memoryview(data)
        self.buf = buf
        if len(data) < 132 or data[128:132] != b"DICM":
            raise NotDirect("no preamble and DICM prefix")
        pos, end = 132, len(data)
        #: File Meta Information elements other than the group length, as read.
        self.meta: list[Element] = []
        while pos + 8 <= end and _TAG.unpack_from(buf, pos)[0] == 0x0002:
            elem = read_element(buf, pos, end)
            if elem.length == _UNDEFINED:
                raise NotDirect("a sequence in the File Meta Information")
            if elem.tag != 0x00020000:
                self.meta.append(elem)
            pos = elem.end
        self.body_start = pos
        syntax = self.meta_value(_META_SYNTAX)
        #: The source's transfer syntax.
        self.transfer_syntax = self.text(syntax) if syntax is not None else ""
        #: The top-level elements before Pixel Data that `layout` and the File Meta
        #: Information read, by tag; Pixel Data.
        self.elements: dict[int, Element] = {}
        self.pixel_data: Element | None = None
        #: The dataset before and after Pixel Data (e.g. Data Set Trailing Padding) as
        #: the output holds it, group lengths left out as pydicom leaves them out:
        #: byte ranges of the source (Explicit VR), or its elements under Explicit VR
        #: headers (Implicit VR).
        self.before: list[memoryview] = []
        self.after: list[memoryview] = []
        if self.transfer_syntax == EXPLICIT_VR_LITTLE_ENDIAN:
            self._walk_explicit(pos, end)
        elif self.transfer_syntax == IMPLICIT_VR_LITTLE_ENDIAN:
            _Implicit(self).walk(pos, end)
        else:
            raise NotDirect("not Explicit or Implicit VR Little Endian")
        if self.pixel_data is None:
            raise NotDirect("no Pixel Data")
        for tag, pad in _CANONICAL.items():
            elem = self.elements.get(tag)
            if elem is not None:
                raw = self.raw(elem)
                text = raw.decode("ascii", "replace").strip(" \0")
                if not text or len(text) > 64 or raw != _padded(text, pad):
                    raise NotDirect(f"({tag >> 16:04X},{tag & 0xFFFF:04X}) is empty, or padded "
                                    "or spaced otherwise than the general path writes it")

    def _walk_explicit(self, pos: int, end: int) -> None:
        """Locate the top-level elements; the dataset is copied as byte ranges."""
        buf = self.buf
        head: list[tuple[int, int]] = []
        tail: list[tuple[int, int]] = []
        spans, start, previous = head, pos, 0x00020000
        while pos < end:
            # Most elements are short-VR values: read inline (this loop is most of
            # the walk's time); the rest through read_element.
            if pos + 8 > end:
                raise NotDirect("an element header runs past the end")
            group, number, vr, length = _SHORT_HEADER.unpack_from(buf, pos)
            tag = group << 16 | number
            if vr in _SHORT_VRS:
                elem, stop = None, pos + 8 + length
                if stop > end:
                    raise NotDirect("a value runs past the end")
            else:
                elem = read_element(buf, pos, end)
                stop = elem.end
            if tag <= previous:
                raise NotDirect("elements out of order or repeated")
            if 0x7FE00000 < tag < _PIXEL_DATA:  # e.g. an Extended Offset Table
                raise NotDirect("Pixel Data's group holds other elements")
            previous = tag
            if tag == _PIXEL_DATA or not tag & 0xFFFF:  # group lengths are not copied
                if pos > start:
                    spans.append((start, pos))
                start = stop
                if tag == _PIXEL_DATA:
                    if elem is None or elem.length == _UNDEFINED or vr not in (b"OB", b"OW"):
                        raise NotDirect("Pixel Data is not native")
                    self.pixel_data, spans = elem, tail
            elif tag in _READ and self.pixel_data is None:
                self.elements[tag] = elem or Element(tag, vr, pos, pos + 8, length, stop)
            pos = stop
        if pos > start:
            spans.append((start, pos))
        self.before = [buf[a:b] for a, b in head]
        self.after = [buf[a:b] for a, b in tail]

    # -- values -------------------------------------------------------------------
    def meta_value(self, tag: int) -> Element | None:
        return next((e for e in self.meta if e.tag == tag), None)

    def raw(self, elem: Element) -> bytes:
        return bytes(self.buf[elem.value_at:elem.value_at + elem.length])

    def text(self, elem: Element) -> str:
        return self.raw(elem).decode("ascii", "replace").strip(" \0")

    def string(self, tag: int) -> str | None:
        elem = self.elements.get(tag)
        return None if elem is None else self.text(elem)

    def us(self, tag: int) -> int | None:
        elem = self.elements.get(tag)
        if elem is None:
            return None
        if elem.vr != b"US" or elem.length != 2:
            raise NotDirect(f"({tag >> 16:04X},{tag & 0xFFFF:04X}) is not one US value")
        return _U16.unpack_from(self.buf, elem.value_at)[0]

    def layout(self) -> FrameLayout:
        """The Image Pixel attributes, when they are of the shape handled here."""
        rows, columns = self.us(_ROWS), self.us(_COLUMNS)
        samples, allocated = self.us(_SAMPLES), self.us(_BITS_ALLOCATED)
        stored, high_bit, signed = self.us(_BITS_STORED), self.us(_HIGH_BIT), self.us(_SIGNED)
        photometric = self.string(_PHOTOMETRIC)
        if not rows or not columns or samples != 1 or allocated not in (8, 16):
            raise NotDirect("not one sample of 8 or 16 bits")
        if stored is None or not 1 <= stored <= allocated or high_bit != stored - 1:
            raise NotDirect("Bits Stored / High Bit not as expected")
        if signed not in (0, 1) or photometric not in ("MONOCHROME1", "MONOCHROME2"):
            raise NotDirect("pixel representation or photometric interpretation")
        if _PLANAR in self.elements:
            raise NotDirect("Planar Configuration with one sample (the general path drops it)")
        frames = 1
        if _FRAMES in self.elements:
            text = self.string(_FRAMES)
            if not text or not text.isdigit() or text.startswith("0"):  # canonical too
                raise NotDirect("Number of Frames is not a positive integer")
            frames = int(text)
        return FrameLayout(rows=rows, columns=columns, samples_per_pixel=1,
                           bits_allocated=allocated, bits_stored=stored,
                           pixel_representation=signed, photometric_interpretation=photometric,
                           number_of_frames=frames)


# -- Implicit VR Little Endian (PS3.5 A.1) ------------------------------------------
# pydicom writes an element read from Implicit VR with the VR its dictionary gives and a
# value it decoded and encodes again. The checks below say, per VR, when that gives the
# value's bytes back; anything else goes to the general path.
_LATIN1, _UTF8, _ASCII = 0, 1, 2  # what a text value may hold, by Specific Character Set
_CHARSETS = {b"": _LATIN1, b"ISO_IR 6": _LATIN1, b"ISO_IR 100": _LATIN1,
             b"ISO_IR 192": _UTF8}  # pydicom decodes these with latin_1 / iso8859, UTF-8


def _even(text: bytes, pad: bytes) -> bytes:
    """`text` padded to even length, as pydicom writes a string (PS3.5 6.2)."""
    return text + pad if len(text) & 1 else text


def _decodes(value: bytes, charset: int) -> bool:
    """Whether pydicom decodes and encodes `value` back to the same bytes."""
    if b"\x1b" in value:  # ISO 2022 escapes: pydicom re-encodes them its own way
        return False
    if value.isascii() or charset == _LATIN1:
        return True
    if charset == _UTF8:
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
_VALUES: dict[bytes, tuple[bool, Callable[[bytes, int], bool]]] = {
    **{vr: (False, _string) for vr in (b"AS", b"CS", b"DA", b"DT", b"TM")},
    **{vr: (vr in _LONG_VRS, _text) for vr in (b"LT", b"ST", b"UT")},
    **{vr: (vr in _LONG_VRS, _texts) for vr in (b"LO", b"SH", b"UC")},
    b"PN": (False, _person_name), b"AE": (False, _application_entity), b"UR": (True, _uri),
    b"UI": (False, _uid), b"DS": (False, _decimal), b"IS": (False, _integer),
    b"FL": (False, _float), b"UN": (True, _words(1)),
    **{vr: (False, _words(2)) for vr in (b"US", b"SS")},
    **{vr: (False, _words(4)) for vr in (b"UL", b"SL", b"AT")},
    **{vr: (vr in _LONG_VRS, _words(8)) for vr in (b"FD", b"SV", b"UV")},
    **{vr: (True, _words(2)) for vr in (b"OB", b"OD", b"OF", b"OL", b"OV", b"OW")},
}
_PIXEL_REPRESENTATION, _LUT_DESCRIPTOR = 0x00280103, 0x00283002
_CHARACTER_SET = 0x00080005
_ITEM_END_BYTES = b"\xfe\xff\x0d\xe0\0\0\0\0"
_UNDEFINED_BYTES = b"\xff\xff\xff\xff"


class _Dataset:
    """What pydicom's ambiguous-VR rules read of one dataset (the top level or an item)."""

    __slots__ = ("pixel_representation", "parent", "creators", "lut_descriptor",
                 "pixel_data")

    def __init__(self, parent: "_Dataset | None") -> None:
        #: Its own Pixel Representation; the dataset whose value it inherits
        #: (pydicom's Dataset._pixel_rep), if any.
        self.pixel_representation: int | None = None
        self.parent = parent
        #: Private creators by group << 8 | block (None: one pydicom does not look up).
        self.creators: dict[int, str | None] = {}
        self.lut_descriptor: bytes | None = None
        self.pixel_data = False

    def inherited(self) -> int | None:
        parent = self.parent
        while parent is not None:
            if parent.pixel_representation is not None:
                return parent.pixel_representation
            parent = parent.parent
        return None


class _Implicit:
    """The dataset of an Implicit VR Little Endian file written out as Explicit VR Little
    Endian, as pydicom writes it (pydicom.filewriter.write_dataset after
    correct_ambiguous_vr), into `parsed.before` and `parsed.after`."""

    def __init__(self, parsed: Parsed) -> None:
        self.parsed = parsed
        self.data, self.buf = parsed.data, parsed.buf
        self.out = bytearray()
        self.charset = _LATIN1
        #: US or SS elements to resolve once every dataset is read: where their VR is
        #: written, their dataset, tag and value.
        self.ambiguous: list[tuple[int, _Dataset, int, bytes]] = []

    # -- the top level: the loop most of the time goes to ---------------------------
    def walk(self, pos: int, end: int) -> None:
        """Walk the top-level dataset from `pos`: elements of a VR the table gives and a
        defined length inline (one unpack, one or two dict look-ups each), the rest
        (sequences, ambiguous VRs, Specific Character Set, Pixel Data) through
        `element`."""
        parsed, data, buf, out = self.parsed, self.data, self.buf, self.out
        if pos + 6 <= end and 0x40 < buf[pos + 4] < 0x5B and 0x40 < buf[pos + 5] < 0x5B:
            # pydicom reads the dataset as explicit VR when the first length looks like
            # a VR (filereader._is_implicit_vr)
            raise NotDirect("the first element's length reads as a VR")
        top = _Dataset(None)
        vrs, values, read, elements = dictionary.VRS.get, _VALUES.get, _READ, parsed.elements
        unpack, short, long = _IMPLICIT_HEADER.unpack_from, _SHORT_HEADER.pack, _LONG_HEADER.pack
        previous, split = 0x00020000, None
        while pos < end:
            if pos + 8 > end:
                raise NotDirect("an element header runs past the end")
            group, number, length = unpack(buf, pos)
            tag = group << 16 | number
            if tag <= previous:
                raise NotDirect("elements out of order or repeated")
            if 0x7FE00000 < tag < _PIXEL_DATA:  # e.g. an Extended Offset Table
                raise NotDirect("Pixel Data's group holds other elements")
            previous = tag
            value_at = pos + 8
            stop = value_at + length
            vr = vrs(tag) if not group & 1 else _private_vr(top, group, number)
            entry = values(vr)
            if entry is None or length == _UNDEFINED or tag == _CHARACTER_SET:
                if tag == _PIXEL_DATA:
                    if length == _UNDEFINED or stop > end:
                        raise NotDirect("Pixel Data is not native")
                    parsed.pixel_data = Element(tag, b"OW", pos, value_at, length, stop)
                    split = len(out)
                    pos = stop
                    continue
                pos = self.element(top, tag, pos, end, 0)
                continue
            if stop > end:
                raise NotDirect("a value runs past the end")
            if not number:  # group lengths are not copied
                pos = stop
                continue
            if entry[0]:
                out += long(group, number, vr, length)
            elif length > 0xFFFF:
                raise NotDirect("a value too long for its VR's 2-byte length")
            else:
                out += short(group, number, vr, length)
            value = data[value_at:stop]
            if not entry[1](value, self.charset):
                raise NotDirect(f"({group:04X},{number:04X}) {vr.decode()} is written "
                                "otherwise by the general path")
            out += value
            if group & 1 and 0x10 <= number <= 0xFF:
                top.creators[group << 8 | number] = _creator(value)
            elif tag in read and split is None:
                elements[tag] = Element(tag, vr, pos, value_at, length, stop)
                if tag == _PIXEL_REPRESENTATION and length == 2:
                    top.pixel_representation = _U16.unpack_from(buf, value_at)[0]
            pos = stop
        self.resolve()
        view = memoryview(out)
        if split is not None:
            parsed.before, parsed.after = [view[:split]], [view[split:]]

    def resolve(self) -> None:
        """US or SS by the Pixel Representation of the element's dataset, else the one
        it inherits, else US (pydicom.filewriter._correct_ambiguous_vr_element)."""
        for at, dataset, tag, value in self.ambiguous:
            pixel_representation = dataset.pixel_representation
            if pixel_representation is None:
                pixel_representation = dataset.inherited()
            if pixel_representation is None:
                if dataset.pixel_data:  # pydicom fails to resolve it
                    raise NotDirect("a US or SS element beside Pixel Data without Pixel "
                                    "Representation")
                pixel_representation = 0
            if pixel_representation:
                if tag in dictionary.LUT_DESCRIPTORS and len(value) > 2 and value[1] & 0x80:
                    # pydicom reads the first value signed and fails to write it unsigned
                    raise NotDirect("a LUT Descriptor's first value past 32767, signed")
                self.out[at:at + 2] = b"SS"

    # -- everything else ------------------------------------------------------------
    def element(self, dataset: _Dataset, tag: int, pos: int, end: int, depth: int) -> int:
        """Write the element at `pos` of `dataset`; the position after it."""
        group, number, length = _IMPLICIT_HEADER.unpack_from(self.buf, pos)
        value_at = pos + 8
        if group == 0xFFFE or (depth and group <= 0x0006):
            raise NotDirect(f"({group:04X},{number:04X}) in a dataset")
        if number == 0 and length != _UNDEFINED:  # group lengths are not copied (PS3.5 7.2)
            if value_at + length > end:
                raise NotDirect("a value runs past the end")
            return value_at + length
        if length == _UNDEFINED:
            # pydicom looks the tag up in its data dictionary only, else looks ahead for
            # an item (filereader.data_element_generator)
            vr = dictionary.VRS.get(tag) or (None if group & 1 else _repeated_vr(tag))
            if vr is None and value_at + 4 <= end and _tag(self.buf, value_at) == _ITEM:
                vr = b"SQ"
            if vr != b"SQ":
                raise NotDirect("an undefined length outside a sequence")
            return self.sequence(dataset, tag, value_at, end, True, depth)
        if group & 1:
            vr = _private_vr(dataset, group, number)
        else:
            vr = dictionary.VRS.get(tag) or _repeated_vr(tag) or (b"UN" if number else b"UL")
        stop = value_at + length
        if stop > end:
            raise NotDirect("a value runs past the end")
        if vr == b"SQ":
            return self.sequence(dataset, tag, value_at, stop, False, depth)
        value = self.data[value_at:stop]
        if tag == _CHARACTER_SET:
            if depth:
                raise NotDirect("Specific Character Set in a sequence item")
            self.charset = _CHARSETS.get(value.rstrip(b" \0"), _ASCII)
        elif tag == _PIXEL_DATA:  # an icon's
            dataset.pixel_data, vr = True, b"OW"
        elif tag == _PIXEL_REPRESENTATION:
            if length != 2:
                raise NotDirect("Pixel Representation is not one value")
            dataset.pixel_representation = _U16.unpack_from(self.buf, value_at)[0]
        elif group & 1 and 0x10 <= number <= 0xFF:
            dataset.creators[group << 8 | number] = _creator(value)
        if vr == b"US or SS" and tag in dictionary.US_OR_SS:
            if length & 1:
                raise NotDirect("a US or SS value of odd length")
            if tag == _LUT_DESCRIPTOR:
                dataset.lut_descriptor = value
            self.ambiguous.append((len(self.out) + 4, dataset, tag, value))
            vr = b"US"
        elif vr == b"US or OW" and tag == dictionary.LUT_DATA:
            descriptor = dataset.lut_descriptor
            if descriptor is None or len(descriptor) < 4:
                raise NotDirect("LUT Data without a LUT Descriptor of three values")
            vr = b"US" if descriptor[:2] == b"\1\0" else b"OW"
        elif vr == b"OB or OW" and (tag in dictionary.WAVEFORM_OB_OR_OW
                                    or tag in dictionary.OVERLAY_DATA):
            vr = b"OW"
        entry = _VALUES.get(vr)
        if entry is None:
            raise NotDirect(f"({group:04X},{number:04X}) has VR {vr!r}, which the general path "
                            "does not write as read")
        if not entry[0] and length > 0xFFFF:
            raise NotDirect("a value too long for its VR's 2-byte length")
        if not entry[1](value, self.charset):
            raise NotDirect(f"({group:04X},{number:04X}) {vr.decode()} is written otherwise "
                            "by the general path")
        self.out += (_LONG_HEADER if entry[0] else _SHORT_HEADER).pack(group, number, vr, length)
        self.out += value
        return stop

    def sequence(self, dataset: _Dataset, tag: int, pos: int, end: int, undefined: bool,
                 depth: int) -> int:
        """Write the sequence whose items start at `pos` (and fill it to `end`, or end
        at its delimiter); the position after it. Items inherit the Pixel Representation
        when pydicom hands it down (Dataset._set_pixel_representation): from a sequence
        it converts from raw bytes (a defined length), or one set into the top level
        after Pixel Representation."""
        if depth >= _MAX_DEPTH:
            raise NotDirect("sequences nested too deep")
        private = tag >> 16 & 1 and (tag >> 16) << 8 | (tag & 0xFFFF) >> 8 in dataset.creators
        if dataset.parent is None and depth == 0:
            hands_down = tag > _PIXEL_REPRESENTATION or not (undefined or private)
        else:
            hands_down = not undefined
        parent = dataset if hands_down else None
        out = self.out
        out += _LONG_HEADER.pack(tag >> 16, tag & 0xFFFF, b"SQ",
                                 _UNDEFINED if undefined else 0)
        length_at = len(out) - 4
        buf = self.buf
        while True:
            if not undefined and pos >= end:
                break
            tag_found, length = _item_header(buf, pos, end)
            if undefined and tag_found == _SEQUENCE_END:
                if length:
                    raise NotDirect("a sequence delimiter with a length")
                out += _SEQUENCE_END_BYTES
                return pos + 8
            if tag_found != _ITEM:
                raise NotDirect(f"expected an item, found ({tag_found >> 16:04X},"
                                f"{tag_found & 0xFFFF:04X})")
            pos += 8
            item = _Dataset(parent)
            out += _ITEM_HEADER
            if length == _UNDEFINED:
                out += _UNDEFINED_BYTES
                pos = self.dataset(item, pos, end, None, depth + 1)
                out += _ITEM_END_BYTES
            else:
                if pos + length > end:
                    raise NotDirect("an item runs past its sequence")
                item_at = len(out)
                out += b"\0\0\0\0"
                pos = self.dataset(item, pos, pos + length, length, depth + 1)
                _U32.pack_into(out, item_at, len(out) - item_at - 4)
        if pos != end:
            raise NotDirect("sequence items do not fill the sequence")
        _U32.pack_into(out, length_at, len(out) - length_at - 4)
        return pos

    def dataset(self, dataset: _Dataset, pos: int, end: int, length: int | None,
                depth: int) -> int:
        """Write the elements of an item (of `length`, or up to its delimiter)."""
        buf, previous = self.buf, -1
        while True:
            if length is not None and pos >= end:
                if pos != end:
                    raise NotDirect("an item's elements do not fill it")
                return pos
            if pos + 8 > end:
                raise NotDirect("an item has no delimiter" if length is None
                                else "an element header runs past the end")
            tag = _tag(buf, pos)
            if tag == _ITEM_END and length is None:
                if _U32.unpack_from(buf, pos + 4)[0]:
                    raise NotDirect("an item delimiter with a length")
                return pos + 8
            if tag <= previous:
                raise NotDirect("elements out of order or repeated")
            previous = tag
            pos = self.element(dataset, tag, pos, end, depth)


def _repeated_vr(tag: int) -> bytes | None:
    """The VR of a tag of a repeating group (pydicom.datadict.mask_match), if any."""
    for value, mask, vr in dictionary.REPEATERS:
        if not (tag ^ value) & mask:
            return vr
    return None


#: (private creator, tag) -> VR, for the private elements seen lately.
_PRIVATE_VRS: dict[tuple[str, int], bytes] = {}


def _private_vr(dataset: _Dataset, group: int, number: int) -> bytes:
    """The VR pydicom gives a private element of `dataset` (PS3.5 7.8.1;
    pydicom.hooks._private_vr_for_tag): LO for a private creator, the private
    dictionary's VR for its creator, else UN."""
    if number <= 0xFF:
        return b"LO" if number >= 0x10 else b"UN"
    creator = dataset.creators.get(group << 8 | number >> 8)
    if not creator:
        return b"UN"
    key = (creator, group << 16 | number)
    vr = _PRIVATE_VRS.get(key)
    if vr is None:
        vrs, low = dictionary.private_vrs(creator), number & 0xFF
        vr = vrs and (vrs.get(key[1]) or vrs.get(1 << 32 | group << 16 | low)
                      or vrs.get(2 << 32 | (group >> 8) << 24 | low)) or b"UN"
        if len(_PRIVATE_VRS) > 8192:  # hostile files name creators without end
            _PRIVATE_VRS.clear()
        _PRIVATE_VRS[key] = vr
    return vr


def _creator(value: bytes) -> str | None:
    """A private creator as pydicom looks it up (LO, one value, trailing spaces gone)."""
    if not value.isascii():
        raise NotDirect("a private creator that is not ASCII")
    if b"\\" in value:  # pydicom cannot look a multi-valued creator up: UN
        return None
    return value.rstrip(b"\0 ").decode("ascii")


# -- the output's header --------------------------------------------------------------------
def _padded(text: str, pad: bytes) -> bytes:
    raw = text.encode("ascii", "replace")
    return raw + pad if len(raw) % 2 else raw


def file_meta(parsed: Parsed, transfer_syntax: str) -> bytes:
    """File Meta Information (PS3.10 7.1) for the output: the source's elements, with the
    group length, version, media storage UIDs, transfer syntax and implementation set
    as `pipeline.mark.complete_file_meta` sets them."""
    from dicompress.pipeline.mark import IMPLEMENTATION_CLASS_UID, IMPLEMENTATION_VERSION_NAME

    elements = {e.tag: (e.vr.decode("ascii"), parsed.raw(e)) for e in parsed.meta}
    elements.setdefault(_META_VERSION, ("OB", b"\0\x01"))
    for meta_tag, data_tag in ((_MEDIA_CLASS, _SOP_CLASS), (_MEDIA_INSTANCE, _SOP_INSTANCE)):
        uid = parsed.string(data_tag)
        if uid:
            elements[meta_tag] = ("UI", _padded(uid, b"\0"))
        elif meta_tag not in elements or not parsed.text(parsed.meta_value(meta_tag)):
            raise NotDirect("no SOP Class / Instance UID for the File Meta Information")
    elements[_META_SYNTAX] = ("UI", _padded(transfer_syntax, b"\0"))
    elements[_IMPL_CLASS] = ("UI", _padded(IMPLEMENTATION_CLASS_UID, b"\0"))
    elements[_IMPL_VERSION] = ("SH", _padded(IMPLEMENTATION_VERSION_NAME, b" "))
    return file_meta_group(elements)


def header(parsed: Parsed, transfer_syntax: str, layout: FrameLayout) -> BytesHeader:
    """The output's header as byte ranges of the source: the fast path's header source."""
    frames = parsed.string(_FRAMES)
    return BytesHeader(
        preamble=parsed.data[:128], transfer_syntax=transfer_syntax,
        meta=file_meta(parsed, transfer_syntax),
        head_parts=parsed.before, tail_parts=parsed.after,
        checked_values={"Rows": layout.rows, "Columns": layout.columns,
                        "BitsAllocated": layout.bits_allocated, "SamplesPerPixel": 1,
                        "PhotometricInterpretation": layout.photometric_interpretation,
                        "NumberOfFrames": frames, "SOPInstanceUID": parsed.string(_SOP_INSTANCE)},
    )


def _syntax_may_be_direct(start: bytes) -> bool:
    """False when the first bytes of a file already show a transfer syntax the walk does
    not take (so that an archive of compressed files is not read twice); True otherwise,
    the walk then decides."""
    at = start.find(b"\x02\x00\x10\x00UI", 132)
    if start[128:132] != b"DICM" or at < 0 or at + 8 > len(start):
        return True
    length = int.from_bytes(start[at + 6:at + 8], "little")
    value = start[at + 8:at + 8 + length].decode("ascii", "replace").strip("\0 ")
    return value in (uids.ExplicitVRLittleEndian, uids.ImplicitVRLittleEndian)


def may_take(codec: Codec | None) -> bool:
    """Whether files going to `codec` may take the direct path (the files decide then)."""
    return (codec is not None and codec.encapsulated and codec.lossless
            and codec.encodes_pixels and not codec.searches_quality)


def transcode(source: Path, destination: Path, codec: Codec, *, size: int, options, threads: int):
    """Transcode `source` on the direct path: a TranscodeResult, or None when the file
    is not of the shape handled here (nothing has been written then). With
    `options.digest`, the content hash of the bytes read is computed in memory."""
    from dicompress.pipeline.encode import frame_encoder
    from dicompress.pipeline.frames import bounded_map, native_frames
    from dicompress.pipeline.write import output_file
    from dicompress.pipeline.result import TranscodeResult

    if not may_take(codec) or size > MAX_BYTES:
        return None
    with open(source, "rb") as fp:
        start = fp.read(8192)
        if not _syntax_may_be_direct(start):  # a compressed or big-endian file: not read whole
            return None
        data = start + fp.read()
    try:
        parsed = Parsed(data)
        layout = parsed.layout()
        if parsed.pixel_data.length < layout.frame_bytes * layout.number_of_frames:
            return None  # the general path says what is wrong
        codec.check_layout(layout)
        if codec.output_attributes(layout):
            return None
        syntax = codec.transfer_syntax_for(layout)
        output_header = header(parsed, syntax, layout)
    except NotDirect:
        return None
    except (struct.error, ValueError):  # a damaged value: the general path reports it
        return None

    many = layout.number_of_frames > 1
    encode = frame_encoder(codec, layout, (layout.rows, layout.columns), layout.dtype,
                           verify=options.verify,
                           codec_threads=1 if many else (options.codec_threads or threads))
    frames = native_frames(layout, parsed.pixel_data.value_at, data=data)
    with output_file(destination, output_header, layout, pixels="encapsulated",
                     verify=options.verify, before_replace=options.before_replace,
                     digest=options.digest) as (writer, written):
        for fragment in bounded_map(encode, frames, threads if many else 1):
            writer.add(fragment)
        writer.finish()
    return TranscodeResult(
        source=source, destination=destination, status="ok",
        modality=parsed.string(_MODALITY) or "",
        transfer_syntax_in=parsed.transfer_syntax, transfer_syntax_out=syntax,
        size_in=size, size_out=written.size, frames=writer.frames, verified=written.verified,
        lossy=False,
        ratio_pixels=layout.frame_bytes * layout.number_of_frames / max(1, writer.encoded_bytes),
        digest_in=bytes_digest(data, options.digest) if options.digest else None,
        digest_out=written.digest,
    )
