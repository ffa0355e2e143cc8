"""Export's header source without pydicom: the attributes a picture needs, read by the
direct path's walk (`Parsed`) from the head of the file.

Exporting a CT series to pictures spends less time on each picture than an interpreter
spends importing pydicom (0.25 s) and parsing 200 headers with it (0.15 s): for the
files most series are made of, `header_view` reads the header from the first `HEAD`
bytes here instead, and an
export of such files never imports pydicom (the frames are read straight from the file,
`export.frames.read_native`). It takes the files the walk takes (Part 10, Explicit or
Implicit VR Little Endian, native grayscale Pixel Data of one sample, 8 or 16 bits) whose
display needs nothing read from a sequence (no Modality or VOI LUT Sequence), whose
text is in the default repertoire, Latin-1 or UTF-8, and which end with their Pixel Data;
every other file, and every file the walk finds damaged, gets None: pydicom reads it, and
says what is wrong.

A `HeaderView` answers ``get``, ``in`` and attribute access for the keywords of
`HEADER_VALUES` with the values pydicom gives (``tests/test_direct_view.py`` compares them
over the corpus), and gives every text value at any depth (`text_elements`) for the
Clean Descriptors test of captions (`deid.identifiers`).
"""

from __future__ import annotations

import dataclasses
import os
import stat
import struct
from collections.abc import Iterator
from pathlib import Path

from dicompress import dictionary
from dicompress.direct import Parsed, syntax_may_be_direct
from dicompress.direct.elements import (CHARACTER_SET, EXPLICIT_VR_LITTLE_ENDIAN, ITEM_END,
                                        ITEM_HEADER, SHORT_HEADER, SHORT_VRS, U32, UNDEFINED,
                                        Element, NotDirect, item_header, read_element, tag_at)
from dicompress.direct.values import ASCII, CHARSETS, LATIN1, UTF8
from dicompress.layout import FrameLayout

#: The attributes export reads of a header, by keyword (PS3.6 Table 6-1).
ATTRIBUTES = {
    "SpecificCharacterSet": 0x00080005, "SOPClassUID": 0x00080016, "StudyDate": 0x00080020,
    "AccessionNumber": 0x00080050, "Modality": 0x00080060, "InstitutionName": 0x00080080,
    "ReferringPhysicianName": 0x00080090, "StudyDescription": 0x00081030,
    "SeriesDescription": 0x0008103E, "RecommendedDisplayFrameRate": 0x00082144,
    "PatientName": 0x00100010, "PatientID": 0x00100020, "PatientBirthDate": 0x00100030,
    "BodyPartExamined": 0x00180015, "CineRate": 0x00180040, "SliceThickness": 0x00180050,
    "FrameTime": 0x00181063, "SeriesInstanceUID": 0x0020000E, "SeriesNumber": 0x00200011,
    "InstanceNumber": 0x00200013, "ImagePositionPatient": 0x00200032,
    "ImageOrientationPatient": 0x00200037, "SamplesPerPixel": 0x00280002,
    "PhotometricInterpretation": 0x00280004, "PlanarConfiguration": 0x00280006,
    "NumberOfFrames": 0x00280008, "Rows": 0x00280010, "Columns": 0x00280011,
    "PixelSpacing": 0x00280030, "BitsAllocated": 0x00280100, "BitsStored": 0x00280101,
    "HighBit": 0x00280102, "PixelRepresentation": 0x00280103, "WindowCenter": 0x00281050,
    "WindowWidth": 0x00281051, "RescaleIntercept": 0x00281052, "RescaleSlope": 0x00281053,
    "WindowCenterWidthExplanation": 0x00281055, "VOILUTFunction": 0x00281056,
    "ModalityLUTSequence": 0x00283000, "VOILUTSequence": 0x00283010,
    "PresentationLUTShape": 0x20500020, "PixelData": 0x7FE00010,
}
#: The values export reads of a header (Pixel Data aside): those a HeaderView holds, and
#: `pipeline.read.read_header` converts at once for export (the identifiers too: one
#: that cannot be read cannot be looked for in a caption either).
HEADER_VALUES = tuple(keyword for keyword in ATTRIBUTES if keyword != "PixelData")
#: Their VRs (PS3.6), one each.
_VRS = {ATTRIBUTES[keyword]: dictionary.VRS[ATTRIBUTES[keyword]] for keyword in HEADER_VALUES}
#: Sequences export would read: a file holding one is left to pydicom.
_SEQUENCES_READ = (ATTRIBUTES["ModalityLUTSequence"], ATTRIBUTES["VOILUTSequence"])
#: How pydicom decodes the text of the character sets the direct path takes
#: (direct.values.CHARSETS; PS3.3 C.12.1.1.2); others are left to pydicom.
_ENCODINGS = {LATIN1: "latin-1", UTF8: "utf-8"}
#: The bytes a header must lie in: a CT or MR header is a few kilobytes (a longer one,
#: large private blocks, an enhanced multi-frame header, is left to pydicom: reading the
#: whole of every file the view refuses to find out would cost more than it saves).
HEAD = 128 << 10

_NUMBERS = {b"US": "H", b"SS": "h", b"UL": "L", b"SL": "l", b"FL": "f", b"FD": "d",
            b"SV": "q", b"UV": "Q"}
_BYTES = frozenset(b"OB OD OF OL OV OW UN AT".split())
_NONE_WHEN_EMPTY = _BYTES | frozenset(_NUMBERS) | {b"DS", b"IS"}
_SINGLE_TEXT = frozenset((b"LT", b"ST", b"UT"))
_TEXT = frozenset((b"LO", b"SH", b"UC"))  # in the character set, several values
#: The VRs pydicom decodes in the file's character set (DS and IS too, read as text when
#: they are no numbers), where it also acts on ISO 2022 escapes.
_DECODED = frozenset(b"LO SH UC LT ST UT PN DS IS".split())


def vouches(vr: bytes, raw: bytes) -> bool:
    """Whether `value_of` gives pydicom's value of an element, for the VRs it decodes in
    the character set (always for others): not for ISO 2022 escape sequences (pydicom
    decodes them whatever the character set says) or a person name whose last component
    group is empty ("Doe^John=", which pydicom's PersonName drops)."""
    if vr not in _DECODED:
        return True
    if b"\x1b" in raw:
        return False
    return vr != b"PN" or not any(name.rstrip(b"\0 ").endswith(b"=")
                                  for name in raw.split(b"\\"))


def _vouched(vr: bytes, raw: bytes) -> None:
    if not vouches(vr, raw):
        raise NotDirect("text pydicom decodes otherwise (an ISO 2022 escape, an empty name "
                        "group)")


class _AsWritten:
    """A number that prints as the file writes it (pydicom's DSfloat and IS do too)."""

    text: str

    def __str__(self) -> str:
        return self.text

    __repr__ = __str__

    def __reduce__(self):  # made again from its text (a pool started without fork)
        return type(self), (self.text,)


class Decimal(_AsWritten, float):
    """A DS value (pydicom's DSfloat)."""

    def __new__(cls, text: str) -> "Decimal":
        value = super().__new__(cls, text)
        value.text = text.strip()
        return value


class Integer(_AsWritten, int):
    """An IS value (pydicom's IS)."""

    def __new__(cls, text: str) -> "Integer | float":
        try:  # as pydicom's IS: "inf" overflows, "nan" is no number
            whole = int(text)
        except ValueError:
            whole = int(float(text))
        if whole != float(text):  # pydicom's ISfloat: a float, printed as one
            return float(text)
        value = super().__new__(cls, whole)
        value.text = text.strip()
        return value


def value_of(vr: bytes, raw: bytes, encoding: str):
    """An element's value as pydicom converts it (pydicom.values): numbers, text
    stripped of its padding, several values as a list; a DS or IS that is no number as
    text, as pydicom gives it; ValueError for binary numbers of a length no number has.
    An empty value is pydicom's empty value of its VR (None for numbers, DS, IS, AT and
    binary VRs, "" for text: pydicom.dataelem.empty_value_for_VR)."""
    if not raw and vr in _NONE_WHEN_EMPTY:
        return None
    if vr in _NUMBERS:
        size = struct.calcsize("<" + _NUMBERS[vr])  # standard sizes (native "L" is 8)
        if len(raw) % size:
            raise ValueError(f"{len(raw)} bytes of {vr.decode()}, not a multiple of {size}")
        values = struct.unpack(f"<{len(raw) // size}{_NUMBERS[vr]}", raw)
        return None if not values else values[0] if len(values) == 1 else list(values)
    if vr in _BYTES:
        return raw
    if vr == b"SQ":
        raise TypeError("a sequence is not read from a HeaderView")
    if vr == b"UR":  # pydicom decodes a URI in the default repertoire, whatever the charset
        return raw.decode("latin-1").rstrip()
    if vr in _SINGLE_TEXT:
        return raw.decode(encoding, "replace").rstrip("\0 ")
    if vr == b"PN":
        parts = raw.rstrip(b"\0 ").decode(encoding, "replace").split("\\")
    elif vr in _TEXT:
        parts = [part.rstrip("\0 ") for part in raw.decode(encoding, "replace").split("\\")]
    elif vr == b"AE":
        parts = [part.strip() for part in raw.decode("latin-1").split("\\")]
    elif vr in (b"DS", b"IS"):
        text = raw.decode("latin-1")
        text = (text.strip() if vr == b"DS" else text).rstrip(" \0")
        if not text:
            return ""
        kind = Decimal if vr == b"DS" else Integer
        try:
            # a blank value among several stays as written (pydicom's DS and IS)
            parts = [kind(part) if part.strip() else part for part in text.split("\\")]
        except ValueError:  # pydicom then reads the value as SH (values.convert_value)
            return value_of(b"SH", raw, encoding)
    else:  # AS CS DA DT TM UI: the default repertoire
        parts = raw.decode("latin-1").rstrip(" \0").split("\\")
        if vr == b"UI":  # pydicom's UID strips each value
            parts = [part.strip() for part in parts]
    return parts[0] if len(parts) == 1 else parts


class HeaderView:
    """A file's attributes as export reads them (see the module's text).

    ``view.get(keyword, default)``, ``keyword in view`` and ``view.Keyword`` answer for
    the keywords of `HEADER_VALUES` (another keyword is a programming error: KeyError);
    `frame_layout`, `frames` and `pixel_offset` say where the frames are on disk."""

    def __init__(self, parsed: Parsed, layout: FrameLayout, after: bytes) -> None:
        """The view of a walked file's head, and the first bytes `after` its Pixel Data;
        NotDirect when export needs pydicom's reading of it: a Modality or VOI LUT
        Sequence, another character set (or one in an item), a standard element of VR UN
        (pydicom gives it its dictionary VR), elements after Pixel Data other than Data
        Set Trailing Padding, a value export reads that converts to no value of its VR."""
        _check_after(parsed, after)
        # the dataset before Pixel Data as Explicit VR bytes (a copy: the file's bytes go)
        self._data = data = b"".join(parsed.before)
        #: tag -> (VR, where its value starts, where it ends) in `_data`
        self._top: dict[int, tuple[bytes, int, int]] = {}
        buf, pos, end = memoryview(data), 0, len(data)
        top, unpack = self._top, SHORT_HEADER.unpack_from
        while pos < end:  # the walk checked these bytes: short VRs read inline
            group, number, vr, length = unpack(buf, pos)
            if vr in SHORT_VRS:
                stop = pos + 8 + length
                if vr in _DECODED:
                    _vouched(vr, data[pos + 8:stop])
                top[group << 16 | number] = (vr, pos + 8, stop)
            else:
                elem = read_element(buf, pos, end)
                _check_element(elem, 0, data)
                if elem.vr == b"SQ":
                    for inner in _items(buf, elem, 1):
                        _check_element(inner, 1, data)
                stop = elem.end
                top[elem.tag] = (vr, elem.value_at, stop)
            pos = stop
        charset = top.get(CHARACTER_SET)
        charset = b"" if charset is None else data[charset[1]:charset[2]]
        encoding = _ENCODINGS.get(CHARSETS.get(charset.rstrip(b" \0"), ASCII))
        if encoding is None:
            raise NotDirect("a character set the view does not decode")
        self._encoding = encoding
        self._values = {}
        for keyword in HEADER_VALUES:  # every value export reads converts (or pydicom's turn)
            tag = ATTRIBUTES[keyword]
            if tag in top:
                vr, start, stop = top[tag]
                if vr != _VRS[tag]:  # pydicom converts it by the VR written: its types
                    raise NotDirect(f"{keyword} written as {vr!r}")
                try:
                    self._values[tag] = value_of(vr, data[start:stop], encoding)
                except (ValueError, OverflowError, TypeError) as exc:
                    raise NotDirect(f"{keyword}: {exc}") from exc
        #: The layout of one frame, how many frames, and where the first one starts.
        self.frame_layout = dataclasses.replace(layout, number_of_frames=1)
        self.frames = layout.number_of_frames
        self.pixel_offset = parsed.pixel_data.value_at

    def get(self, keyword: str, default=None):
        if keyword not in HEADER_VALUES:
            raise KeyError(f"{keyword}: not among the attributes a HeaderView reads "
                           "(direct.view.HEADER_VALUES)")
        return self._values.get(ATTRIBUTES[keyword], default)

    def __contains__(self, keyword: str) -> bool:
        return self.get(keyword, _ABSENT) is not _ABSENT

    def __getattr__(self, keyword: str):
        if keyword.startswith("_") or keyword not in HEADER_VALUES:
            raise AttributeError(keyword)
        value = self.get(keyword, _ABSENT)
        if value is _ABSENT:
            raise AttributeError(f"the file has no {keyword}")
        return value

    def text_elements(self) -> Iterator[tuple[int, str, list[str]]]:
        """(tag, VR, values as text) of every text element at any depth, File Meta
        Information and Pixel Data aside: the values pydicom's walk of the same file
        gives (`deid.identifiers`)."""
        from dicompress.deid.identifiers import TEXT_VRS

        buf = memoryview(self._data)
        for elem in _elements(buf, 0, len(buf), 0):
            vr = elem.vr.decode("latin-1")
            if vr not in TEXT_VRS or elem.tag >> 16 == 0x0002:  # as deid's walk, at any depth
                continue
            try:
                value = value_of(elem.vr, self._data[elem.value_at:elem.end], self._encoding)
            except (ValueError, OverflowError):  # an IS of "inf": pydicom's walk skips it
                continue
            if value is None or value == "":
                continue
            values = value if isinstance(value, list) else [value]
            yield elem.tag, vr, [str(v) for v in values]


_ABSENT = object()
_TRAILING_PADDING = 0xFFFCFFFC


def _check_after(parsed: Parsed, after: bytes) -> None:
    """The file ends with its Pixel Data, or with Data Set Trailing Padding (PS3.10 7.2)
    filling the rest exactly: nothing else after Pixel Data (the walk of a head does not
    see it, and pydicom would read and check it)."""
    rest = parsed.size - parsed.pixel_data.end
    if not rest:
        return
    explicit = parsed.transfer_syntax == EXPLICIT_VR_LITTLE_ENDIAN
    header = 12 if explicit else 8
    if len(after) < header or tag_at(memoryview(after), 0) != _TRAILING_PADDING:
        raise NotDirect("elements after Pixel Data")
    if explicit and after[4:8] != b"OB\0\0":
        raise NotDirect("Data Set Trailing Padding that is not OB")
    if header + U32.unpack_from(after, header - 4)[0] != rest:
        raise NotDirect("Data Set Trailing Padding that does not end the file")


def _check_element(elem: Element, depth: int, data: bytes) -> None:
    """NotDirect for what only pydicom reads as export needs it (see HeaderView)."""
    if elem.vr in _DECODED:
        _vouched(elem.vr, data[elem.value_at:elem.end])
    if elem.tag in _SEQUENCES_READ:
        raise NotDirect("a Modality or VOI LUT Sequence")
    if elem.vr == b"UN" and (not elem.tag >> 16 & 1
                             or data[elem.value_at:elem.value_at + 4] == ITEM_HEADER):
        # pydicom reads a standard one by its dictionary VR, and a private one by its
        # creator's (a sequence whose items can name the patient): the walk sees bytes
        raise NotDirect("an element of VR UN pydicom may read as another VR")
    if depth and elem.tag == CHARACTER_SET:
        raise NotDirect("Specific Character Set in a sequence item")


def _elements(buf: memoryview, pos: int, end: int, depth: int) -> Iterator[Element]:
    """The elements from `pos` to `end` and, after each sequence, those of its items (the
    walk checked their structure when the file was read)."""
    while pos < end:
        elem = read_element(buf, pos, end, depth)
        yield elem
        if elem.vr == b"SQ":
            yield from _items(buf, elem, depth + 1)
        pos = elem.end


def _items(buf: memoryview, seq: Element, depth: int) -> Iterator[Element]:
    """The elements of the items of sequence `seq`, at any depth."""
    pos = seq.value_at
    end = seq.end - 8 if seq.length == UNDEFINED else seq.end  # before its delimiter
    while pos < end:
        _, length = item_header(buf, pos, end)
        pos += 8
        if length != UNDEFINED:
            yield from _elements(buf, pos, pos + length, depth)
            pos += length
            continue
        while tag_at(buf, pos) != ITEM_END:
            elem = read_element(buf, pos, end, depth)
            yield elem
            if elem.vr == b"SQ":
                yield from _items(buf, elem, depth + 1)
            pos = elem.end
        pos += 8


def header_view(path: Path) -> HeaderView | None:
    """The header of `path` when it is of the shape the view reads (see the module's
    text) and lies in its first `HEAD` bytes, else None: pydicom reads it then (and
    reports what is wrong with it). Reads `HEAD` bytes at most, and the 12 after Pixel
    Data when the file goes on after it."""
    try:
        st = os.stat(path)  # before opening: opening a FIFO or a device does things
    except OSError:
        return None
    if not stat.S_ISREG(st.st_mode):
        return None  # the general path refuses it
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError:
        return None
    try:
        size = os.fstat(fd).st_size
        head = os.pread(fd, HEAD, 0)
        if head[128:132] != b"DICM" or not syntax_may_be_direct(head):
            return None
        return _view(head, size, fd)
    except (NotDirect, OSError):
        return None
    finally:
        os.close(fd)


def _view(data: bytes, size: int, fd: int) -> HeaderView:
    try:
        parsed = Parsed(data, size)
        layout = parsed.layout()
        if parsed.pixel_data.length < layout.frame_bytes * layout.number_of_frames:
            raise NotDirect("Pixel Data shorter than its frames")
        after = os.pread(fd, 12, parsed.pixel_data.end) if parsed.pixel_data.end < size else b""
        return HeaderView(parsed, layout, after)
    except struct.error as exc:  # as direct.transcode: damage the general path reports
        raise NotDirect(str(exc)) from exc
