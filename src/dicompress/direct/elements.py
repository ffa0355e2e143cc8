"""The bounds-checked walk of Explicit VR Little Endian elements the fast path is built on:
one element's header and extent, sequences skipped item by item (PS3.5 7.1, 7.5)."""

from __future__ import annotations

import struct

from dicompress import uids

EXPLICIT_VR_LITTLE_ENDIAN = uids.ExplicitVRLittleEndian
IMPLICIT_VR_LITTLE_ENDIAN = uids.ImplicitVRLittleEndian

# PS3.5 Table 7.1-1: VRs with a reserved field and a 4-byte length.
LONG_VRS = frozenset(
    b"OB OD OF OL OV OW SQ SV UC UN UR UT UV".split()
)
SHORT_VRS = frozenset(
    b"AE AS AT CS DA DS DT FL FD IS LO LT PN SH SL SS ST TM UI UL US".split()
)
UNDEFINED = 0xFFFFFFFF
ITEM_HEADER = b"\xfe\xff\x00\xe0"
SEQUENCE_END_BYTES = b"\xfe\xff\xdd\xe0\0\0\0\0"
ITEM, ITEM_END, SEQUENCE_END = 0xFFFEE000, 0xFFFEE00D, 0xFFFEE0DD
PIXEL_DATA = 0x7FE00010
MAX_DEPTH = 16

TAG = struct.Struct("<HH")
U16 = struct.Struct("<H")
U32 = struct.Struct("<I")
SHORT_HEADER = struct.Struct("<HH2sH")  # tag, VR and (for the short VRs) length
LONG_HEADER = struct.Struct("<HH2s2xI")  # tag, VR, reserved, length
IMPLICIT_HEADER = struct.Struct("<HHI")  # tag, length (PS3.5 7.1.3)

# Attributes the walk reads the values of (top level only).
ROWS, COLUMNS = 0x00280010, 0x00280011
SAMPLES, PHOTOMETRIC, FRAMES, PLANAR = 0x00280002, 0x00280004, 0x00280008, 0x00280006
BITS_ALLOCATED, BITS_STORED, HIGH_BIT, SIGNED = 0x00280100, 0x00280101, 0x00280102, 0x00280103
SOP_CLASS, SOP_INSTANCE, MODALITY = 0x00080016, 0x00080018, 0x00080060
CHARACTER_SET = 0x00080005
_LOSSY = 0x00282110
# Their VRs (PS3.6): an element of another VR written in an Explicit VR file is one
# pydicom reads by that VR, otherwise than the walk would (e.g. Number of Frames as SS).
READ_VRS = {ROWS: b"US", COLUMNS: b"US", SAMPLES: b"US", PHOTOMETRIC: b"CS", FRAMES: b"IS",
            PLANAR: b"US", BITS_ALLOCATED: b"US", BITS_STORED: b"US", HIGH_BIT: b"US",
            SIGNED: b"US", SOP_CLASS: b"UI", SOP_INSTANCE: b"UI", MODALITY: b"CS",
            _LOSSY: b"CS"}
READ = frozenset(READ_VRS)
# Values the general path sets again (pydicom then writes them in its own encoding), with
# their padding: copied only when already written that way, so both paths give the same
# bytes. The SOP UIDs also go into the File Meta Information.
CANONICAL = {PHOTOMETRIC: b" ", FRAMES: b" ", _LOSSY: b" ", SOP_CLASS: b"\0",
              SOP_INSTANCE: b"\0"}

# File Meta Information elements we write (PS3.10 7.1).
META_VERSION, MEDIA_CLASS, MEDIA_INSTANCE = 0x00020001, 0x00020002, 0x00020003
META_SYNTAX, IMPL_CLASS, IMPL_VERSION = 0x00020010, 0x00020012, 0x00020013


class NotDirect(Exception):
    """The file is not of the shape the direct path handles (the general path will)."""


def tag_at(buf: memoryview, pos: int) -> int:
    group, element = TAG.unpack_from(buf, pos)
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
    tag = tag_at(buf, pos)
    vr = bytes(buf[pos + 4:pos + 6])
    if vr in SHORT_VRS:
        length = U16.unpack_from(buf, pos + 6)[0]
        value_at = pos + 8
    elif vr in LONG_VRS:
        if pos + 12 > end or buf[pos + 6] or buf[pos + 7]:
            raise NotDirect("a long-VR header is cut short or its reserved bytes are set")
        length = U32.unpack_from(buf, pos + 8)[0]
        value_at = pos + 12
    else:
        raise NotDirect(f"unexpected VR {vr!r}")
    if length == UNDEFINED:
        if vr != b"SQ":  # e.g. UN of undefined length holds Implicit VR inside
            raise NotDirect("undefined length outside a sequence")
        stop = _skip_items(buf, value_at, end, depth + 1)
        return Element(tag, vr, pos, value_at, length, stop)
    if value_at + length > end:
        raise NotDirect("a value runs past the end")
    if vr == b"SQ":
        _check_items(buf, value_at, value_at + length, depth + 1)
    return Element(tag, vr, pos, value_at, length, value_at + length)


def item_header(buf: memoryview, pos: int, end: int) -> tuple[int, int]:
    if pos + 8 > end:
        raise NotDirect("an item header runs past the end")
    return tag_at(buf, pos), U32.unpack_from(buf, pos + 4)[0]


def _skip_items(buf: memoryview, pos: int, end: int, depth: int) -> int:
    """Walk the items of an undefined-length sequence; the position after its delimiter."""
    if depth > MAX_DEPTH:
        raise NotDirect("sequences nested too deep")
    while True:
        tag, length = item_header(buf, pos, end)
        if tag == SEQUENCE_END:
            if length:
                raise NotDirect("a sequence delimiter with a length")
            return pos + 8
        pos = _item(buf, pos, end, tag, length, depth)


def _check_items(buf: memoryview, pos: int, end: int, depth: int) -> None:
    """Walk the items of a defined-length sequence: they must fill it exactly."""
    if depth > MAX_DEPTH:
        raise NotDirect("sequences nested too deep")
    while pos < end:
        tag, length = item_header(buf, pos, end)
        pos = _item(buf, pos, end, tag, length, depth)
    if pos != end:
        raise NotDirect("sequence items do not fill the sequence")


def _item(buf: memoryview, pos: int, end: int, tag: int, length: int, depth: int) -> int:
    """Walk one item starting at `pos`; the position after it."""
    if tag != ITEM:
        raise NotDirect(f"expected an item, found ({tag >> 16:04X},{tag & 0xFFFF:04X})")
    pos, previous = pos + 8, -1
    if length != UNDEFINED:
        if pos + length > end:
            raise NotDirect("an item runs past its sequence")
        stop = pos + length
        while pos < stop:
            pos, previous = _in_order(read_element(buf, pos, stop, depth), previous)
        if pos != stop:
            raise NotDirect("an item's elements do not fill it")
        return pos
    while True:
        if pos + 8 > end:
            raise NotDirect("an item has no delimiter")
        if tag_at(buf, pos) == ITEM_END:
            if U32.unpack_from(buf, pos + 4)[0]:
                raise NotDirect("an item delimiter with a length")
            return pos + 8
        pos, previous = _in_order(read_element(buf, pos, end, depth), previous)


def _in_order(elem: Element, previous: int) -> tuple[int, int]:
    """(where the next element starts, its tag) after `elem`, which must follow the
    element before it: pydicom keeps the last of a repeated tag and writes an item's
    elements in order, and the view and the byte copy would see another dataset."""
    if elem.tag <= previous:
        raise NotDirect("an item's elements out of order or repeated")
    return elem.end, elem.tag


