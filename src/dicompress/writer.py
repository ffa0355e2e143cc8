"""Writing a DICOM file whose Pixel Data arrives one frame at a time.

pydicom writes a dataset that is whole in memory; a 2,000-frame file would then
be held twice (decoded and encoded). Here the header is written by pydicom, and
the Pixel Data element is streamed after it:

* native: the element's length is known from the layout (PS3.5 8.1.1), frames
  are appended as they come (1-bit frames packed across frame boundaries);
* encapsulated (PS3.5 A.4): one fragment per frame, items of even length, the
  Basic Offset Table reserved up front and filled in at the end, or - when the
  offsets may not fit 32 bits, or on request - an empty Basic Offset Table and
  the Extended Offset Table (7FE0,0001/0002), also filled in at the end;
* deflated (PS3.5 A.5): everything after the File Meta Information goes
  through one raw deflate stream.

Values that are only known at the end (the achieved Lossy Image Compression
Ratio) are written as fixed-width placeholders and patched in place.
"""

from __future__ import annotations

import hashlib
import struct
import zlib
from typing import BinaryIO

import numpy as np
from pydicom.dataset import Dataset
from pydicom.filebase import DicomBytesIO
from pydicom.charset import default_encoding
from pydicom.filewriter import write_data_element, write_dataset, write_file_meta_info
from pydicom.uid import UID
from pydicom.valuerep import EXPLICIT_VR_LENGTH_32  # PS3.5 Table 7.1-1: 4-byte lengths

from dicompress.errors import CorruptPixelData, DicompressError
from dicompress.layout import FrameLayout

_PIXEL_DATA = 0x7FE00010
_EOT, _EOT_LENGTHS = 0x7FE00001, 0x7FE00002
_ITEM = b"\xfe\xff\x00\xe0"
_SEQ_DELIMITER = b"\xfe\xff\xdd\xe0\x00\x00\x00\x00"
MAX_BOT_OFFSET = 2**32 - 1

#: A DS value of 16 characters, unique enough to be found in the header bytes.
PLACEHOLDER_DS = "0.00000000000017"


class _Sink:
    """Where the dataset bytes go: the file, or a raw deflate stream into it."""

    def __init__(self, fp: BinaryIO, deflate: bool) -> None:
        self.fp = fp
        self.deflater = zlib.compressobj(6, zlib.DEFLATED, -zlib.MAX_WBITS) if deflate else None
        self.written = 0

    def write(self, data: bytes) -> None:
        if self.deflater is not None:
            data = self.deflater.compress(data)
        self.fp.write(data)
        self.written += len(data)

    def close(self) -> None:
        if self.deflater is not None:
            tail = self.deflater.flush()
            self.written += len(tail)
            if self.written % 2:  # the deflated stream is padded to even length
                tail += b"\0"
            self.fp.write(tail)


class PixelDataWriter:
    """Write `ds` (without Pixel Data) to `fp`, then frames via `add`, then `finish`."""

    def __init__(
        self,
        fp: BinaryIO,
        ds: Dataset,
        layout: FrameLayout,
        *,
        encapsulated: bool,
        extended_offsets: bool = False,
    ) -> None:
        self.fp = fp
        self.layout = layout
        self.frames_expected = layout.number_of_frames
        self.encapsulated = encapsulated
        self.extended = extended_offsets and encapsulated
        syntax = UID(ds.file_meta.TransferSyntaxUID)
        self.implicit = syntax.is_implicit_VR
        self.deflated = syntax.is_deflated
        if self.deflated and encapsulated:
            raise DicompressError("a deflated transfer syntax has native pixel data")
        self.frames = 0
        self.offsets: list[int] = []
        self.lengths: list[int] = []
        self._bits = np.empty(0, np.uint8)  # 1-bit samples not yet packed
        self._native_written = 0
        #: Hash and count of the native pixel bytes as written (with the pad byte).
        self.pixel_hash = hashlib.blake2b(digest_size=20)
        self.pixel_bytes_written = 0

        fp.write(ds.preamble or b"\0" * 128)
        fp.write(b"DICM")
        meta_buffer = DicomBytesIO()
        write_file_meta_info(meta_buffer, ds.file_meta, enforce_standard=True)
        fp.write(meta_buffer.getvalue())
        self.body_start = fp.tell()
        self.sink = _Sink(fp, self.deflated)

        # Elements are moved as read (raw): pydicom writes an unconverted element's bytes
        # as they are when the encoding does not change, which is most of the header
        # cost of a transcode. Head and tail carry the source's encoding to allow that.
        head, self.tail = Dataset(), Dataset()
        implicit, little = ds.original_encoding
        for part in (head, self.tail):
            if implicit is not None:
                part.set_original_encoding(implicit, little, ds.original_character_set)
        for elem in ds.elements():
            tag = elem.tag
            if tag & 0xFFFF == 0 or tag in (_PIXEL_DATA, _EOT, _EOT_LENGTHS):
                continue  # group lengths (retired) and what we write ourselves
            (head if tag < _PIXEL_DATA else self.tail)[tag] = elem
        head_bytes = self._encode(head)
        self.placeholder_at = head_bytes.find(PLACEHOLDER_DS.encode())
        self.sink.write(head_bytes)

        if encapsulated:
            n = self.frames_expected
            if self.extended:
                self.eot_at = fp.tell() + 12
                self.sink.write(self._element_header(_EOT, "OV", 8 * n) + bytes(8 * n))
                self.eot_lengths_at = fp.tell() + 12
                self.sink.write(self._element_header(_EOT_LENGTHS, "OV", 8 * n) + bytes(8 * n))
            self.sink.write(self._element_header(_PIXEL_DATA, "OB", 0xFFFFFFFF))
            bot = 0 if self.extended else 4 * n
            self.bot_at = fp.tell() + 8
            self.sink.write(_ITEM + struct.pack("<I", bot) + bytes(bot))
            self.first_item_at = fp.tell()
        else:
            vr = "OB" if layout.bits_allocated <= 8 else "OW"
            self.native_length = self._native_length()
            self.sink.write(self._element_header(_PIXEL_DATA, vr, self.native_length
                                                 + (self.native_length & 1)))

    # -- encoding helpers --------------------------------------------------------------
    def _encode(self, ds: Dataset) -> bytes:
        """`ds` encoded in the output's syntax (always little endian).

        When the encoding and character set do not change, elements still raw as
        read are copied with a header of our own (pydicom would do the same, at
        ten times the cost per element); everything else goes through pydicom.
        """
        buffer = DicomBytesIO()
        buffer.is_little_endian, buffer.is_implicit_VR = True, self.implicit
        if (ds.original_encoding != (self.implicit, True)
                or ds.original_character_set != ds._character_set):
            write_dataset(buffer, ds)  # pydicom converts (VRs, ambiguous VRs, charset)
            return buffer.getvalue()
        encodings = ds.get("SpecificCharacterSet", default_encoding)
        for tag in sorted(ds.keys()):
            elem = ds.get_item(tag)
            value = elem.value
            if (elem.is_raw and isinstance(value, bytes) and elem.VR not in (None, "SQ")
                    and elem.length != 0xFFFFFFFF and len(value) == elem.length
                    and (len(value) <= 0xFFFF or elem.VR in EXPLICIT_VR_LENGTH_32)):
                buffer.write(self._element_header(tag, elem.VR, len(value)) + value)
            else:  # as pydicom's write_dataset does: raw elements stay raw
                write_data_element(buffer, elem, encodings)
        return buffer.getvalue()

    def _element_header(self, tag: int, vr: str, length: int) -> bytes:
        """Tag, VR and length (PS3.5 7.1.2): 2-byte lengths for the short VRs."""
        group_element = struct.pack("<HH", tag >> 16, tag & 0xFFFF)
        if self.implicit:
            return group_element + struct.pack("<I", length)
        if vr not in EXPLICIT_VR_LENGTH_32:  # pydicom's rule, unknown VRs included
            if length > 0xFFFF:
                raise DicompressError(f"({tag >> 16:04X},{tag & 0xFFFF:04X}) {vr} value of "
                                      f"{length} bytes cannot be written explicitly")
            return group_element + vr.encode() + struct.pack("<H", length)
        return group_element + vr.encode() + b"\0\0" + struct.pack("<I", length)

    def _native_length(self) -> int:
        layout = self.layout
        samples = layout.frame_pixels * layout.samples_per_pixel * self.frames_expected
        if layout.bits_allocated == 1:
            return (samples + 7) // 8
        return samples * layout.bytes_per_sample

    # -- frames ------------------------------------------------------------------------
    def add(self, data: bytes) -> None:
        """Append the next frame (a fragment, or native little-endian samples)."""
        self.frames += 1
        if self.frames > self.frames_expected:
            raise CorruptPixelData(
                f"more frames than Number of Frames ({self.frames_expected})"
            )
        if self.encapsulated:
            offset = self.fp.tell() - self.first_item_at
            if not self.extended and offset > MAX_BOT_OFFSET:
                raise DicompressError(
                    "frame offsets exceed 4 GiB: rerun with the Extended Offset Table"
                )
            self.offsets.append(offset)
            self.lengths.append(len(data) + (len(data) & 1))  # item lengths, as pydicom
            self.fp.write(_ITEM + struct.pack("<I", len(data) + (len(data) & 1)))
            self.fp.write(data)
            if len(data) & 1:
                self.fp.write(b"\0")
        elif self.layout.bits_allocated == 1:
            bits = np.concatenate([self._bits, np.frombuffer(data, np.uint8)])
            whole = len(bits) // 8 * 8
            self._write_native(np.packbits(bits[:whole], bitorder="little").tobytes())
            self._bits = bits[whole:]
        else:
            self._write_native(data)

    def _write_native(self, data: bytes, pad: bool = False) -> None:
        if not pad:
            self._native_written += len(data)
            if self._native_written > self.native_length:
                raise CorruptPixelData("a frame is larger than the layout says")
        self.pixel_hash.update(data)
        self.pixel_bytes_written += len(data)
        self.sink.write(data)

    def finish(self, patch: str | None = None) -> None:
        """Close the Pixel Data, fill in the offset tables, write what follows it.

        `patch` replaces the DS placeholder (16 characters at most).
        """
        if self.frames != self.frames_expected:
            raise CorruptPixelData(
                f"{self.frames} frames decoded, Number of Frames says {self.frames_expected}"
            )
        if self.encapsulated:
            self.sink.write(_SEQ_DELIMITER)
            end = self.fp.tell()
            if self.extended:
                self.fp.seek(self.eot_at)
                self.fp.write(struct.pack(f"<{len(self.offsets)}Q", *self.offsets))
                self.fp.seek(self.eot_lengths_at)
                self.fp.write(struct.pack(f"<{len(self.lengths)}Q", *self.lengths))
            else:
                self.fp.seek(self.bot_at)
                self.fp.write(struct.pack(f"<{len(self.offsets)}I", *self.offsets))
            self.fp.seek(end)
        else:
            if len(self._bits):
                self._write_native(np.packbits(self._bits, bitorder="little").tobytes())
            if self._native_written != self.native_length:
                raise CorruptPixelData("the frames are shorter than the layout says")
            if self.native_length & 1:
                self._write_native(b"\0", pad=True)
        if len(self.tail):
            self.sink.write(self._encode(self.tail))
        self.sink.close()
        if patch is not None:
            if self.placeholder_at < 0 or self.deflated:
                raise DicompressError("no placeholder to patch")
            value = patch.encode().ljust(len(PLACEHOLDER_DS))[: len(PLACEHOLDER_DS)]
            end = self.fp.tell()
            self.fp.seek(self.body_start + self.placeholder_at)
            self.fp.write(value)
            self.fp.seek(end)


__all__ = ["PixelDataWriter", "PLACEHOLDER_DS", "MAX_BOT_OFFSET"]
