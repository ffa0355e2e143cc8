"""Implicit VR Little Endian on the fast path (PS3.5 A.1): each element given the VR
pydicom gives it (the data dictionary, the ambiguous-VR rules of PS3.5 Annex A, private
dictionaries) and written under an Explicit VR header."""

from __future__ import annotations


from typing import TYPE_CHECKING

from dicompress import dictionary
from dicompress.direct.elements import (
    CHARACTER_SET, IMPLICIT_HEADER, ITEM, ITEM_END, ITEM_HEADER, LONG_HEADER, MAX_DEPTH,
    PIXEL_DATA, READ, SEQUENCE_END, SEQUENCE_END_BYTES, SHORT_HEADER, U16, U32, UNDEFINED,
    Element, NotDirect, item_header, tag_at)
from dicompress.direct.values import ASCII, CHARSETS, LATIN1, VALUES

if TYPE_CHECKING:
    from dicompress.direct import Parsed

_PIXEL_REPRESENTATION, _LUT_DESCRIPTOR = 0x00280103, 0x00283002
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


class ImplicitWalker:
    """The dataset of an Implicit VR Little Endian file written out as Explicit VR Little
    Endian, as pydicom writes it (pydicom.filewriter.write_dataset after
    correct_ambiguous_vr), into `parsed.before` and `parsed.after`."""

    def __init__(self, parsed: Parsed) -> None:
        self.parsed = parsed
        self.data, self.buf = parsed.data, parsed.buf
        self.out = bytearray()
        self.charset = LATIN1
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
        vrs, values, read, elements = dictionary.VRS.get, VALUES.get, READ, parsed.elements
        unpack, short, long = IMPLICIT_HEADER.unpack_from, SHORT_HEADER.pack, LONG_HEADER.pack
        previous, split = 0x00020000, None
        while pos < end:
            if pos + 8 > end:
                raise NotDirect("an element header runs past the end")
            group, number, length = unpack(buf, pos)
            tag = group << 16 | number
            if tag <= previous:
                raise NotDirect("elements out of order or repeated")
            if 0x7FE00000 < tag < PIXEL_DATA:  # e.g. an Extended Offset Table
                raise NotDirect("Pixel Data's group holds other elements")
            previous = tag
            value_at = pos + 8
            stop = value_at + length
            vr = vrs(tag) if not group & 1 else _private_vr(top, group, number)
            entry = values(vr)
            if entry is None or length == UNDEFINED or tag == CHARACTER_SET:
                if tag == PIXEL_DATA:
                    if length == UNDEFINED or stop > parsed.size:
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
                    top.pixel_representation = U16.unpack_from(buf, value_at)[0]
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
        group, number, length = IMPLICIT_HEADER.unpack_from(self.buf, pos)
        value_at = pos + 8
        if group == 0xFFFE or (depth and group <= 0x0006):
            raise NotDirect(f"({group:04X},{number:04X}) in a dataset")
        if number == 0 and length != UNDEFINED:  # group lengths are not copied (PS3.5 7.2)
            if value_at + length > end:
                raise NotDirect("a value runs past the end")
            return value_at + length
        if length == UNDEFINED:
            # pydicom looks the tag up in its data dictionary only, else looks ahead for
            # an item (filereader.data_element_generator)
            vr = dictionary.VRS.get(tag) or (None if group & 1 else _repeated_vr(tag))
            if vr is None and value_at + 4 <= end and tag_at(self.buf, value_at) == ITEM:
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
        if tag == CHARACTER_SET:
            if depth:
                raise NotDirect("Specific Character Set in a sequence item")
            self.charset = CHARSETS.get(value.rstrip(b" \0"), ASCII)
        elif tag == PIXEL_DATA:  # an icon's
            dataset.pixel_data, vr = True, b"OW"
        elif tag == _PIXEL_REPRESENTATION:
            if length != 2:
                raise NotDirect("Pixel Representation is not one value")
            dataset.pixel_representation = U16.unpack_from(self.buf, value_at)[0]
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
        entry = VALUES.get(vr)
        if entry is None:
            raise NotDirect(f"({group:04X},{number:04X}) has VR {vr!r}, which the general path "
                            "does not write as read")
        if not entry[0] and length > 0xFFFF:
            raise NotDirect("a value too long for its VR's 2-byte length")
        if not entry[1](value, self.charset):
            raise NotDirect(f"({group:04X},{number:04X}) {vr.decode()} is written otherwise "
                            "by the general path")
        self.out += (LONG_HEADER if entry[0] else SHORT_HEADER).pack(group, number, vr, length)
        self.out += value
        return stop

    def sequence(self, dataset: _Dataset, tag: int, pos: int, end: int, undefined: bool,
                 depth: int) -> int:
        """Write the sequence whose items start at `pos` (and fill it to `end`, or end
        at its delimiter); the position after it. Items inherit the Pixel Representation
        when pydicom hands it down (Dataset._set_pixel_representation): from a sequence
        it converts from raw bytes (a defined length), or one set into the top level
        after Pixel Representation."""
        if depth >= MAX_DEPTH:
            raise NotDirect("sequences nested too deep")
        private = tag >> 16 & 1 and (tag >> 16) << 8 | (tag & 0xFFFF) >> 8 in dataset.creators
        if dataset.parent is None and depth == 0:
            hands_down = tag > _PIXEL_REPRESENTATION or not (undefined or private)
        else:
            hands_down = not undefined
        parent = dataset if hands_down else None
        out = self.out
        out += LONG_HEADER.pack(tag >> 16, tag & 0xFFFF, b"SQ",
                                 UNDEFINED if undefined else 0)
        length_at = len(out) - 4
        buf = self.buf
        while True:
            if not undefined and pos >= end:
                break
            tag_found, length = item_header(buf, pos, end)
            if undefined and tag_found == SEQUENCE_END:
                if length:
                    raise NotDirect("a sequence delimiter with a length")
                out += SEQUENCE_END_BYTES
                return pos + 8
            if tag_found != ITEM:
                raise NotDirect(f"expected an item, found ({tag_found >> 16:04X},"
                                f"{tag_found & 0xFFFF:04X})")
            pos += 8
            item = _Dataset(parent)
            out += ITEM_HEADER
            if length == UNDEFINED:
                out += _UNDEFINED_BYTES
                pos = self.dataset(item, pos, end, None, depth + 1)
                out += _ITEM_END_BYTES
            else:
                if pos + length > end:
                    raise NotDirect("an item runs past its sequence")
                item_at = len(out)
                out += b"\0\0\0\0"
                pos = self.dataset(item, pos, pos + length, length, depth + 1)
                U32.pack_into(out, item_at, len(out) - item_at - 4)
        if pos != end:
            raise NotDirect("sequence items do not fill the sequence")
        U32.pack_into(out, length_at, len(out) - length_at - 4)
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
            tag = tag_at(buf, pos)
            if tag == ITEM_END and length is None:
                if U32.unpack_from(buf, pos + 4)[0]:
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


