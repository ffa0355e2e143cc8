"""The one verifier: what was written is read back and must be what was meant.

It shares no code with the writer (`write.py`) nor with the fast path's parser
(`dicompress.direct`): a reader of its own walks the whole output, from the preamble to
the last byte, with every length bounded by the file:

* the File Meta Information: its group length must match its elements, its Transfer
  Syntax UID must be the one meant;
* the dataset (Explicit or Implicit VR, little or big endian, inflated first when
  deflated): element after element in ascending order, sequences and items walked to
  their delimiters, nothing left over at the end;
* the attributes `CHECKED` must read back as meant;
* the Pixel Data: encapsulated, every fragment found where the Basic (or Extended)
  Offset Table says, of the length and BLAKE3 of what the encoder produced, then the
  sequence delimiter; native or copied, its value hashing the same as what was written.

The whole file is mapped, not read: memory stays small whatever its size.
"""

from __future__ import annotations

import mmap
import struct
import tempfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import blake3

from dicompress import uids
from dicompress.digests import _hasher
from dicompress.errors import VerificationFailed

#: Attributes whose values are read back and compared (keyword -> tag, kind).
CHECKED = {
    "Rows": (0x00280010, "US"), "Columns": (0x00280011, "US"),
    "BitsAllocated": (0x00280100, "US"), "SamplesPerPixel": (0x00280002, "US"),
    "PhotometricInterpretation": (0x00280004, "text"), "NumberOfFrames": (0x00280008, "text"),
    "SOPInstanceUID": (0x00080018, "text"), "PatientID": (0x00100020, "text"),
    "PatientIdentityRemoved": (0x00120062, "text"),
}
_TAGS = {tag: (keyword, kind) for keyword, (tag, kind) in CHECKED.items()}

_PIXEL_DATA, _EOT, _EOT_LENGTHS = 0x7FE00010, 0x7FE00001, 0x7FE00002
_ITEM, _ITEM_END, _SEQUENCE_END = 0xFFFEE000, 0xFFFEE00D, 0xFFFEE0DD
_UNDEFINED = 0xFFFFFFFF
_MAX_DEPTH = 64
# PS3.5 Table 7.1-1 (and 7.1-2): VRs with a reserved field and a 32-bit length.
_LONG = frozenset(b"OB OD OF OL OV OW SQ SV UC UN UR UT UV".split())
_SHORT = frozenset(b"AE AS AT CS DA DS DT FL FD IS LO LT PN SH SL SS ST TM UI UL US".split())


@dataclass(frozen=True)
class Fragments:
    """Encapsulated frames: one fragment each, `digests` as the writer produced them."""

    digests: tuple[str, ...]
    extended: bool = False


@dataclass(frozen=True)
class CopiedFragments:
    """Encapsulated Pixel Data copied as it was: hash and length of its whole value
    (items and delimiter)."""

    digest: str
    length: int


@dataclass(frozen=True)
class Value:
    """A Pixel Data value of defined length: its 128-bit BLAKE3 and length."""

    digest: str
    length: int


@dataclass(frozen=True)
class Expected:
    transfer_syntax: str
    #: keyword -> value meant (None: absent); only the keywords of CHECKED.
    values: dict
    pixel_data: Fragments | CopiedFragments | Value | None
    #: Length and 128-bit BLAKE3 of the dataset's bytes before the first element the writer
    #: adds (Extended Offset Table, Pixel Data), and of those after Pixel Data to the end:
    #: every header value written is read back, not only the attributes of CHECKED.
    head: tuple[int, str] | None = None
    tail: tuple[int, str] | None = None
    #: Length and 128-bit BLAKE3 of the preamble, "DICM" and the File Meta Information
    #: as written: its UIDs are read back too, not only its group length and syntax.
    front: tuple[int, str] | None = None


def verify(path: Path, expected: Expected, *, digest: str | None = None) -> str | None:
    """Raise VerificationFailed unless `path` holds what `expected` says; with `digest`,
    the content hash of the file's bytes (they are read here anyway)."""
    error = result = None
    with open(path, "rb") as fp:
        if fp.seek(0, 2) == 0:
            raise VerificationFailed("the output is empty")
        mapped = mmap.mmap(fp.fileno(), 0, access=mmap.ACCESS_READ)
        data = memoryview(mapped)
        try:
            try:
                _check(data, expected)
                if digest is not None:
                    h = _hasher(digest)
                    h.update(data)
                    result = h.hexdigest()
            except VerificationFailed as exc:
                error = str(exc)
            except (struct.error, IndexError, UnicodeDecodeError, zlib.error) as exc:
                error = f"the output does not read back ({type(exc).__name__}: {exc})"
        finally:
            # any exception (and the views of the mapping its frames held) is gone here,
            # unless one we did not expect is on its way out: then let go as we can
            data.release()
            try:
                mapped.close()
            except BufferError:  # pragma: no cover - views held by a traceback
                pass
    if error is not None:
        raise VerificationFailed(error)
    return result


def _check(data: memoryview, expected: Expected) -> None:
    if len(data) < 132 or bytes(data[128:132]) != b"DICM":
        raise VerificationFailed("the output has no DICM prefix")
    reader = _Reader(data, "<", implicit=False)
    syntax, body = reader.file_meta(132)
    if syntax != expected.transfer_syntax:
        raise VerificationFailed(f"the transfer syntax reads back as {syntax!r}, "
                                 f"not {expected.transfer_syntax}")
    if expected.front is not None and (
            body != expected.front[0]
            or blake3.blake3(data[:body], max_threads=1).hexdigest(16) != expected.front[1]):
        raise VerificationFailed("the preamble or File Meta Information reads back different "
                                 "from what was written")
    if syntax == uids.DeflatedExplicitVRLittleEndian:
        with tempfile.TemporaryFile() as spill:
            inflater = zlib.decompressobj(-zlib.MAX_WBITS)
            for start in range(body, len(data), 1 << 20):
                spill.write(inflater.decompress(data[start:start + (1 << 20)]))
            spill.write(inflater.flush())
            spill.flush()
            if not inflater.eof:
                raise VerificationFailed("the deflated dataset is cut short")
            if inflater.unused_data not in (b"", b"\0"):  # one NULL pads it to even length
                raise VerificationFailed("bytes follow the deflated dataset")
            if spill.tell() == 0:
                raise VerificationFailed("the deflated dataset is empty")
            with mmap.mmap(spill.fileno(), 0, access=mmap.ACCESS_READ) as inflated:
                view = memoryview(inflated)
                try:
                    _check_dataset(_Reader(view, "<", implicit=False), 0, expected)
                finally:
                    view.release()
        return
    reader = _Reader(data, ">" if syntax == uids.ExplicitVRBigEndian else "<",
                     implicit=syntax == uids.ImplicitVRLittleEndian)
    _check_dataset(reader, body, expected)


def _check_dataset(reader: _Reader, pos: int, expected: Expected) -> None:
    found = reader.dataset(pos)
    end = len(reader.data)
    for what, span, start in (("header before the Pixel Data", expected.head, pos),
                              ("dataset after the Pixel Data", expected.tail,
                               end - (expected.tail or (0,))[0])):
        if span is None:
            continue
        length, digest = span
        if start < pos or start + length > end or blake3.blake3(
                reader.data[start:start + length], max_threads=1).hexdigest(16) != digest:
            raise VerificationFailed(f"the {what} reads back different from what was written")
    if found.eot is not None and not (isinstance(expected.pixel_data, Fragments)
                                      and expected.pixel_data.extended) \
            and not isinstance(expected.pixel_data, CopiedFragments):
        raise VerificationFailed("the output has an Extended Offset Table it should not have")
    for keyword, meant in expected.values.items():
        if keyword not in CHECKED:
            continue
        got = found.values.get(keyword)
        got = None if got == "" else got
        meant = None if meant is None or meant == "" else meant
        if isinstance(got, str) and (not got.isascii() or "\x1b" in got):
            continue  # text in the file's character set (ISO 2022 too): not decoded here
        if meant is not None and not isinstance(meant, (str, bytes, int, float)) \
                and hasattr(meant, "__iter__"):  # pydicom's MultiValue: as it is written
            meant = "\\".join(str(v) for v in meant)
        if isinstance(meant, int) or got is None or meant is None:
            same = got == meant
        else:
            same = got == str(meant).strip(" \0")
        if not same:
            raise VerificationFailed(f"{keyword} reads back as {got!r}, not {meant!r}")
    pixel = expected.pixel_data
    if pixel is None:
        if found.pixel is not None:
            raise VerificationFailed("the output has Pixel Data it should not have")
        return
    if found.pixel is None:
        raise VerificationFailed("the output has no Pixel Data")
    if isinstance(pixel, Value):
        if found.pixel.fragments is not None:
            raise VerificationFailed("the Pixel Data reads back encapsulated, not native")
        _same_value(reader, found.pixel, pixel.digest, pixel.length)
    elif isinstance(pixel, CopiedFragments):
        if found.pixel.fragments is None:
            raise VerificationFailed("the Pixel Data reads back native, not encapsulated")
        _same_value(reader, found.pixel, pixel.digest, pixel.length)
    else:
        _same_fragments(reader, found, pixel)


def _same_value(reader: _Reader, pixel: _Pixel, digest: str, length: int) -> None:
    if pixel.end - pixel.start != length:
        raise VerificationFailed(f"the Pixel Data reads back {pixel.end - pixel.start} bytes "
                                 f"long, not {length}")
    h = blake3.blake3(max_threads=1)
    for start in range(pixel.start, pixel.end, 1 << 22):
        h.update(reader.data[start:min(pixel.end, start + (1 << 22))])
    if h.hexdigest(16) != digest:
        raise VerificationFailed("the pixel data reads back different from what was written")


def _same_fragments(reader: _Reader, found: _Dataset, pixel: Fragments) -> None:
    fragments = found.pixel.fragments  # (offset from the first item after the table, length)
    table = found.pixel.table
    if len(fragments) != len(pixel.digests):
        raise VerificationFailed(f"the output has {len(fragments)} fragments, "
                                 f"{len(pixel.digests)} frames were written")
    if pixel.extended:
        if table or found.eot is None:
            raise VerificationFailed("the Extended Offset Table is missing, or the Basic one "
                                     "is not empty")
        offsets, lengths = found.eot
        if list(lengths) != [length for _, length in fragments]:
            raise VerificationFailed("the Extended Offset Table Lengths do not match the fragments")
    else:
        offsets = table
    if list(offsets) != [offset for offset, _ in fragments]:
        raise VerificationFailed("the frames are not where the offset table says")
    first = found.pixel.first_item
    for n, ((offset, length), meant) in enumerate(zip(fragments, pixel.digests), 1):
        value = reader.data[first + offset + 8:first + offset + 8 + length]
        # the writer's digest of each fragment (`write.fragment_digest`): length and
        # 128-bit BLAKE3
        if f"{len(value)}:{blake3.blake3(value, max_threads=1).hexdigest(16)}" != meant:
            raise VerificationFailed(f"frame {n} of the output differs from what was encoded")


@dataclass
class _Pixel:
    start: int  # the value: from here
    end: int  # to here (encapsulated: the end of the sequence delimiter)
    fragments: list[tuple[int, int]] | None = None
    table: tuple[int, ...] = ()
    first_item: int = 0


@dataclass
class _Dataset:
    values: dict
    pixel: _Pixel | None
    eot: tuple[tuple[int, ...], tuple[int, ...]] | None


class _Reader:
    """Element headers of one encoding over a buffer; every read bounded by it."""

    def __init__(self, data: memoryview, endian: str, implicit: bool) -> None:
        self.data, self.endian, self.implicit = data, endian, implicit
        self.u16, self.u32 = struct.Struct(endian + "H"), struct.Struct(endian + "I")
        self.tag_struct = struct.Struct(endian + "HH")

    def tag(self, pos: int) -> int:
        group, element = self.tag_struct.unpack_from(self.data, pos)
        return group << 16 | element

    def header(self, pos: int, end: int, implicit: bool) -> tuple[int, bytes, int, int]:
        """(tag, VR, value position, length) of the element at `pos`."""
        if pos + 8 > end:
            raise VerificationFailed(f"an element header runs past the end at byte {pos}")
        tag = self.tag(pos)
        if implicit or tag >> 16 == 0xFFFE:
            return tag, b"", pos + 8, self.u32.unpack_from(self.data, pos + 4)[0]
        vr = bytes(self.data[pos + 4:pos + 6])
        if vr in _LONG:
            if pos + 12 > end:
                raise VerificationFailed(f"an element header runs past the end at byte {pos}")
            return tag, vr, pos + 12, self.u32.unpack_from(self.data, pos + 8)[0]
        if vr not in _SHORT:
            raise VerificationFailed(f"no VR where one should be at byte {pos}")
        return tag, vr, pos + 8, self.u16.unpack_from(self.data, pos + 6)[0]

    def file_meta(self, pos: int) -> tuple[str, int]:
        """The Transfer Syntax UID and where the dataset starts."""
        tag, vr, at, length = self.header(pos, len(self.data), False)
        if tag != 0x00020000 or vr != b"UL" or length != 4:
            raise VerificationFailed("the File Meta Information has no group length")
        end = at + 4 + struct.unpack_from("<I", self.data, at)[0]
        if end > len(self.data):
            raise VerificationFailed("the File Meta Information runs past the end")
        pos, syntax = at + 4, None
        while pos < end:
            tag, vr, at, length = self.header(pos, end, False)
            if tag >> 16 != 0x0002 or at + length > end:
                raise VerificationFailed("the File Meta Information group length is wrong")
            if tag == 0x00020010:
                syntax = bytes(self.data[at:at + length]).decode("ascii").strip("\0 ")
            pos = at + length
        if syntax is None:
            raise VerificationFailed("the File Meta Information has no Transfer Syntax UID")
        return syntax, end

    def dataset(self, pos: int) -> _Dataset:
        data, end, implicit = self.data, len(self.data), self.implicit
        found = _Dataset({}, None, None)
        previous = -1
        short = struct.Struct(self.endian + "HH2sH")  # most elements: one unpack each
        while pos < end:
            if implicit or pos + 8 > end:
                tag, vr, at, length = self.header(pos, end, implicit)
            else:
                group, element, vr, length = short.unpack_from(data, pos)
                tag, at = group << 16 | element, pos + 8
                if vr in _LONG:
                    tag, vr, at, length = self.header(pos, end, False)
                elif vr not in _SHORT:
                    raise VerificationFailed(f"no VR where one should be at byte {pos}")
            if tag <= previous:
                raise VerificationFailed(f"elements out of order at byte {pos}")
            previous = tag
            if tag == _PIXEL_DATA:
                if length == _UNDEFINED:
                    found.pixel = self._encapsulated(at, end)
                    pos = found.pixel.end
                    continue
                found.pixel = _Pixel(at, at + length)
            elif length == _UNDEFINED:
                if not (implicit or vr in (b"SQ", b"UN")):
                    raise VerificationFailed(f"an undefined length on a {vr!r} element")
                pos = self._sequence(at, end, 1, implicit or vr == b"UN")
                continue
            if at + length > end:
                raise VerificationFailed(f"({tag >> 16:04X},{tag & 0xFFFF:04X}) runs past the end")
            if tag in _TAGS:
                keyword, kind = _TAGS[tag]
                raw = bytes(data[at:at + length])
                found.values[keyword] = (self.u16.unpack_from(raw)[0] if kind == "US" and length == 2
                                         else raw.decode("latin-1").strip(" \0"))
            elif tag in (_EOT, _EOT_LENGTHS):
                count = length // 8
                values = struct.unpack_from(f"{self.endian}{count}Q", data, at)
                offsets, lengths = found.eot or ((), ())
                found.eot = (values, lengths) if tag == _EOT else (offsets, values)
            pos = at + length
        return found

    def _sequence(self, pos: int, end: int, depth: int, implicit: bool) -> int:
        """Walk an undefined-length sequence's items to its delimiter; the position after."""
        if depth > _MAX_DEPTH:
            raise VerificationFailed("sequences nested too deep")
        while True:
            tag, _, at, length = self.header(pos, end, True)
            if tag == _SEQUENCE_END:
                return at
            if tag != _ITEM:
                raise VerificationFailed(f"no item where one should be at byte {pos}")
            if length != _UNDEFINED:
                if at + length > end:
                    raise VerificationFailed("an item runs past the end")
                pos = at + length
                continue
            pos = at
            while True:
                tag, vr, at, length = self.header(pos, end, implicit)
                if tag == _ITEM_END:
                    pos = at
                    break
                if length == _UNDEFINED:
                    pos = self._sequence(at, end, depth + 1, implicit or vr == b"UN")
                elif at + length > end:
                    raise VerificationFailed("an element runs past the end of its item")
                else:
                    pos = at + length

    def _encapsulated(self, pos: int, end: int) -> _Pixel:
        """Encapsulated Pixel Data (PS3.5 A.4): the offset table, the fragments, the
        delimiter."""
        tag, _, at, length = self.header(pos, end, True)
        if tag != _ITEM or at + length > end or length % 4:
            raise VerificationFailed("the encapsulated Pixel Data has no Basic Offset Table item")
        table = struct.unpack_from(f"{self.endian}{length // 4}I", self.data, at)
        first = at + length
        fragments, pos = [], first
        while True:
            tag, _, at, length = self.header(pos, end, True)
            if tag == _SEQUENCE_END:
                return _Pixel(start=first - 8 - len(table) * 4, end=at, fragments=fragments,
                              table=table, first_item=first)
            if tag != _ITEM or length == _UNDEFINED or at + length > end:
                raise VerificationFailed("a fragment of the Pixel Data is damaged")
            fragments.append((pos - first, length))
            pos = at + length
