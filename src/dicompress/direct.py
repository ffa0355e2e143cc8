"""The fast path's header source: the files most of an archive is made of, parsed without
pydicom.

A CT or MR slice is a few hundred kilobytes; a transcode of it through pydicom spends
more time parsing and writing the header (about 2 ms) than our RLE codec spends on
the pixels. Files of the common shape are parsed here instead:

* Part 10 with File Meta Information, Explicit VR Little Endian;
* one sample per pixel, 8 or 16 bits allocated, native Pixel Data of defined length;
* a lossless encapsulated target (RLE, JPEG 2000, HTJ2K, JPEG-LS lossless) that
  changes no Image Pixel attribute, so the output's dataset is the input's elements
  byte for byte, with new File Meta Information and the encapsulated Pixel Data.

The whole file is read (up to `MAX_BYTES`) and its top-level elements located by a
bounds-checked walk (sequences are skipped item by item, never decoded). The output's
header is then those byte ranges (`header`, a `pipeline.write.BytesHeader`), and the
frames are read straight from the same bytes: both go through the one writer and the one
verifier like every other file. Anything the walk does not expect (another syntax, an
undefined length outside a sequence, elements out of order or repeated, attributes of
another shape, a value the general path would write otherwise) makes `transcode` return
None: the caller takes the general pydicom path, which knows every case and gives the
error messages. The two paths give equal datasets and fragments (`tests/test_direct.py`
reads both with pydicom over the corpus).
"""

from __future__ import annotations

import struct
from pathlib import Path

from dicompress import uids
from dicompress.codecs import Codec
from dicompress.digests import bytes_digest
from dicompress.layout import FrameLayout
from dicompress.pipeline.write import BytesHeader, file_meta_group

#: Files larger than this take the general path (which streams frame by frame).
MAX_BYTES = 64 << 20

EXPLICIT_VR_LITTLE_ENDIAN = uids.ExplicitVRLittleEndian

# PS3.5 Table 7.1-1: VRs with a reserved field and a 4-byte length.
_LONG_VRS = frozenset(
    b"OB OD OF OL OV OW SQ SV UC UN UR UT UV".split()
)
_SHORT_VRS = frozenset(
    b"AE AS AT CS DA DS DT FL FD IS LO LT PN SH SL SS ST TM UI UL US".split()
)
_UNDEFINED = 0xFFFFFFFF
_ITEM, _ITEM_END, _SEQUENCE_END = 0xFFFEE000, 0xFFFEE00D, 0xFFFEE0DD
_PIXEL_DATA = 0x7FE00010
_MAX_DEPTH = 16

_TAG = struct.Struct("<HH")
_U16 = struct.Struct("<H")
_U32 = struct.Struct("<I")
_SHORT_HEADER = struct.Struct("<HH2sH")  # tag, VR and (for the short VRs) length

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
        if syntax is None or self.text(syntax) != EXPLICIT_VR_LITTLE_ENDIAN:
            raise NotDirect("not Explicit VR Little Endian")
        #: The top-level elements before Pixel Data that `layout` and the File Meta
        #: Information read, by tag; Pixel Data.
        self.elements: dict[int, Element] = {}
        self.pixel_data: Element | None = None
        #: Byte ranges of the dataset before and after Pixel Data (e.g. Data Set Trailing
        #: Padding), group lengths left out as pydicom leaves them out.
        self.spans: list[tuple[int, int]] = []
        self.tail: list[tuple[int, int]] = []
        spans, start, previous = self.spans, pos, 0x00020000
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
                    self.pixel_data, spans = elem, self.tail
            elif tag in _READ and self.pixel_data is None:
                self.elements[tag] = elem or Element(tag, vr, pos, pos + 8, length, stop)
            pos = stop
        if self.pixel_data is None:
            raise NotDirect("no Pixel Data")
        if pos > start:
            spans.append((start, pos))
        for tag, pad in _CANONICAL.items():
            elem = self.elements.get(tag)
            if elem is not None:
                raw = self.raw(elem)
                text = raw.decode("ascii", "replace").strip(" \0")
                if not text or len(text) > 64 or raw != _padded(text, pad):
                    raise NotDirect(f"({tag >> 16:04X},{tag & 0xFFFF:04X}) is empty, or padded "
                                    "or spaced otherwise than the general path writes it")

    def copied(self, spans: list[tuple[int, int]]) -> list[memoryview]:
        return [self.buf[start:stop] for start, stop in spans]

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
        head_parts=parsed.copied(parsed.spans), tail_parts=parsed.copied(parsed.tail),
        checked_values={"Rows": layout.rows, "Columns": layout.columns,
                        "BitsAllocated": layout.bits_allocated, "SamplesPerPixel": 1,
                        "PhotometricInterpretation": layout.photometric_interpretation,
                        "NumberOfFrames": frames, "SOPInstanceUID": parsed.string(_SOP_INSTANCE)},
    )


def may_take(codec: Codec | None) -> bool:
    """Whether files going to `codec` may take the direct path (the files decide then)."""
    return (codec is not None and codec.encapsulated and codec.lossless
            and not codec.searches_quality)


def transcode(source: Path, destination: Path, codec: Codec, *, size: int, options, threads: int):
    """Transcode `source` on the direct path: a TranscodeResult, or None when the file
    is not of the shape handled here (nothing has been written then). With
    `options.digest`, the content hash of the bytes read is computed in memory."""
    from dicompress.pipeline.encode import frame_encoder
    from dicompress.pipeline.frames import bounded_map, native_frames
    from dicompress.pipeline.write import output_file
    from dicompress.transcode import TranscodeResult

    if not may_take(codec) or size > MAX_BYTES:
        return None
    data = source.read_bytes()
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
        transfer_syntax_in=EXPLICIT_VR_LITTLE_ENDIAN, transfer_syntax_out=syntax,
        size_in=size, size_out=written.size, frames=writer.frames, verified=written.verified,
        lossy=False,
        ratio_pixels=layout.frame_bytes * layout.number_of_frames / max(1, writer.encoded_bytes),
        digest_in=bytes_digest(data, options.digest) if options.digest else None,
        digest_out=written.digest,
    )
