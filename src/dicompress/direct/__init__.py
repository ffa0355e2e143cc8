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
`pipeline.header.BytesHeader`, and the frames are read straight from the same bytes: both
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

import struct
from pathlib import Path

from typing import TYPE_CHECKING

from dicompress import uids
from dicompress.layout import FrameLayout
from dicompress.direct.elements import (
    BITS_ALLOCATED, BITS_STORED, CANONICAL, COLUMNS, EXPLICIT_VR_LITTLE_ENDIAN, FRAMES, HIGH_BIT,
    IMPLICIT_VR_LITTLE_ENDIAN, IMPL_CLASS, IMPL_VERSION, MEDIA_CLASS, MEDIA_INSTANCE, META_SYNTAX,
    META_VERSION, MODALITY, PHOTOMETRIC, PIXEL_DATA, PLANAR, READ, READ_VRS, ROWS, SAMPLES,
    SHORT_HEADER, SHORT_VRS, SIGNED, SOP_CLASS, SOP_INSTANCE, TAG, U16, U32, UNDEFINED, Element,
    NotDirect, read_element)
from dicompress.direct.implicit import ImplicitWalker

if TYPE_CHECKING:  # the transcoding side, imported where a file is transcoded
    from dicompress.codecs import Codec
    from dicompress.pipeline.header import BytesHeader

#: Files larger than this take the general path (which streams frame by frame).
MAX_BYTES = 64 << 20


class Parsed:
    """A Part 10 file as the direct path sees it."""

    def __init__(self, data: bytes, size: int | None = None) -> None:
        """`data`: the whole file; or, with `size` (the file's size), its first bytes up to
        at least Pixel Data's header: the walk then ends at Pixel Data, whose value is left
        on disk and must end within `size` (export's headers, `direct.view`)."""
        self.data = data
        buf = memoryview(data)
        self.buf = buf
        if len(data) < 132 or data[128:132] != b"DICM":
            raise NotDirect("no preamble and DICM prefix")
        pos, end = 132, len(data)
        #: Where Pixel Data's value may end: the file's end.
        self.size = max(size or end, end)
        #: File Meta Information elements other than the group length, as read.
        self.meta: list[Element] = []
        previous = -1
        while pos + 8 <= end and TAG.unpack_from(buf, pos)[0] == 0x0002:
            elem = read_element(buf, pos, end)
            if elem.length == UNDEFINED:
                raise NotDirect("a sequence in the File Meta Information")
            if elem.tag <= previous:  # pydicom takes the last of a repeated one
                raise NotDirect("File Meta Information elements out of order or repeated")
            previous = elem.tag
            if elem.tag != 0x00020000:
                self.meta.append(elem)
            pos = elem.end
        self.body_start = pos
        syntax = self.meta_value(META_SYNTAX)
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
            ImplicitWalker(self).walk(pos, end)
        else:
            raise NotDirect("not Explicit or Implicit VR Little Endian")
        if self.pixel_data is None:
            raise NotDirect("no Pixel Data")
        for tag, pad in CANONICAL.items():
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
            group, number, vr, length = SHORT_HEADER.unpack_from(buf, pos)
            tag = group << 16 | number
            if vr in SHORT_VRS:
                elem, stop = None, pos + 8 + length
                if stop > end:
                    raise NotDirect("a value runs past the end")
            elif tag == PIXEL_DATA and self.size > end:  # a head: the value stays on disk
                elem = _pixel_data_header(buf, pos, end, self.size)
                stop = elem.end
            else:
                elem = read_element(buf, pos, end)
                stop = elem.end
            if tag <= previous:
                raise NotDirect("elements out of order or repeated")
            if 0x7FE00000 < tag < PIXEL_DATA:  # e.g. an Extended Offset Table
                raise NotDirect("Pixel Data's group holds other elements")
            previous = tag
            if not tag & 0xFFFF and (vr != b"UL" or length != 4):
                # pydicom reads it by the VR written: text the view's walk would miss
                raise NotDirect("a group length that is not one UL value")
            if tag == PIXEL_DATA or not tag & 0xFFFF:  # group lengths are not copied
                if pos > start:
                    spans.append((start, pos))
                start = stop
                if tag == PIXEL_DATA:
                    if elem is None or elem.length == UNDEFINED or vr not in (b"OB", b"OW"):
                        raise NotDirect("Pixel Data is not native")
                    self.pixel_data, spans = elem, tail
            elif tag in READ and self.pixel_data is None:
                if vr != READ_VRS[tag]:
                    raise NotDirect(f"({group:04X},{number:04X}) written as {vr!r}")
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
        return U16.unpack_from(self.buf, elem.value_at)[0]

    def layout(self) -> FrameLayout:
        """The Image Pixel attributes, when they are of the shape handled here."""
        rows, columns = self.us(ROWS), self.us(COLUMNS)
        samples, allocated = self.us(SAMPLES), self.us(BITS_ALLOCATED)
        stored, high_bit, signed = self.us(BITS_STORED), self.us(HIGH_BIT), self.us(SIGNED)
        photometric = self.string(PHOTOMETRIC)
        if not rows or not columns or samples != 1 or allocated not in (8, 16):
            raise NotDirect("not one sample of 8 or 16 bits")
        if stored is None or not 1 <= stored <= allocated or high_bit != stored - 1:
            raise NotDirect("Bits Stored / High Bit not as expected")
        if signed not in (0, 1) or photometric not in ("MONOCHROME1", "MONOCHROME2"):
            raise NotDirect("pixel representation or photometric interpretation")
        if PLANAR in self.elements:
            raise NotDirect("Planar Configuration with one sample (the general path drops it)")
        frames = 1
        if FRAMES in self.elements:
            text = self.string(FRAMES)
            if not text or not text.isdigit() or text.startswith("0"):  # canonical too
                raise NotDirect("Number of Frames is not a positive integer")
            frames = int(text)
        return FrameLayout(rows=rows, columns=columns, samples_per_pixel=1,
                           bits_allocated=allocated, bits_stored=stored,
                           pixel_representation=signed, photometric_interpretation=photometric,
                           number_of_frames=frames)


def _pixel_data_header(buf: memoryview, pos: int, end: int, size: int) -> Element:
    """Native Pixel Data's header at `pos` of a file's head, its value ending by `size`."""
    if pos + 12 > end or bytes(buf[pos + 4:pos + 6]) not in (b"OB", b"OW") or buf[pos + 6] \
            or buf[pos + 7]:
        raise NotDirect("Pixel Data is not native, or its header is cut short")
    length = U32.unpack_from(buf, pos + 8)[0]
    if length == UNDEFINED or pos + 12 + length > size:
        raise NotDirect("Pixel Data is not native, or runs past the end")
    return Element(PIXEL_DATA, bytes(buf[pos + 4:pos + 6]), pos, pos + 12, length,
                   pos + 12 + length)


# -- the output's header --------------------------------------------------------------------
def _padded(text: str, pad: bytes) -> bytes:
    raw = text.encode("ascii", "replace")
    return raw + pad if len(raw) % 2 else raw


def file_meta(parsed: Parsed, transfer_syntax: str) -> bytes:
    """File Meta Information (PS3.10 7.1) for the output: the source's elements, with the
    group length, version, media storage UIDs, transfer syntax and implementation set
    as `pipeline.mark.complete_file_meta` sets them."""
    from dicompress.pipeline.header import file_meta_group
    from dicompress.pipeline.mark import IMPLEMENTATION_CLASS_UID, IMPLEMENTATION_VERSION_NAME

    elements = {e.tag: (e.vr.decode("ascii"), parsed.raw(e)) for e in parsed.meta}
    elements.setdefault(META_VERSION, ("OB", b"\0\x01"))
    for meta_tag, data_tag in ((MEDIA_CLASS, SOP_CLASS), (MEDIA_INSTANCE, SOP_INSTANCE)):
        uid = parsed.string(data_tag)
        if uid:
            elements[meta_tag] = ("UI", _padded(uid, b"\0"))
        elif meta_tag not in elements or not parsed.text(parsed.meta_value(meta_tag)):
            raise NotDirect("no SOP Class / Instance UID for the File Meta Information")
    elements[META_SYNTAX] = ("UI", _padded(transfer_syntax, b"\0"))
    elements[IMPL_CLASS] = ("UI", _padded(IMPLEMENTATION_CLASS_UID, b"\0"))
    elements[IMPL_VERSION] = ("SH", _padded(IMPLEMENTATION_VERSION_NAME, b" "))
    return file_meta_group(elements)


def header(parsed: Parsed, transfer_syntax: str, layout: FrameLayout) -> BytesHeader:
    """The output's header as byte ranges of the source: the fast path's header source."""
    from dicompress.pipeline.header import BytesHeader

    if parsed.size != len(parsed.data):
        raise ValueError("a file's head (Parsed with its size) holds no output's header")

    frames = parsed.string(FRAMES)
    return BytesHeader(
        preamble=parsed.data[:128], transfer_syntax=transfer_syntax,
        meta=file_meta(parsed, transfer_syntax),
        head_parts=parsed.before, tail_parts=parsed.after,
        checked_values={"Rows": layout.rows, "Columns": layout.columns,
                        "BitsAllocated": layout.bits_allocated, "SamplesPerPixel": 1,
                        "PhotometricInterpretation": layout.photometric_interpretation,
                        "NumberOfFrames": frames, "SOPInstanceUID": parsed.string(SOP_INSTANCE)},
    )


def syntax_may_be_direct(start: bytes) -> bool:
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
    from dicompress.digests import bytes_digest
    from dicompress.pipeline.encode import frame_encoder
    from dicompress.pipeline.frames import bounded_map, native_frames
    from dicompress.pipeline.write import output_file
    from dicompress.pipeline.result import TranscodeResult

    if not may_take(codec) or size > MAX_BYTES:
        return None
    with open(source, "rb") as fp:
        start = fp.read(8192)
        if not syntax_may_be_direct(start):  # a compressed or big-endian file: not read whole
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
                           verify=options.verify and options.decode_check,
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
        modality=parsed.string(MODALITY) or "",
        transfer_syntax_in=parsed.transfer_syntax, transfer_syntax_out=syntax,
        size_in=size, size_out=written.size, frames=writer.frames, verified=written.verified,
        lossy=False,
        ratio_pixels=layout.frame_bytes * layout.number_of_frames / max(1, writer.encoded_bytes),
        digest_in=bytes_digest(data, options.digest) if options.digest else None,
        digest_out=written.digest,
    )

