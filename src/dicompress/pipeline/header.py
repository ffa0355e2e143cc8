"""Header sources for the one writer (`pipeline.write`): a pydicom Dataset
(`DatasetHeader`: elements still raw as read copied with a header of ours, the rest
encoded by pydicom) or the byte ranges of a parsed file (`BytesHeader`, the fast path);
each gives the File Meta Information group, the elements before the Pixel Data and those
after it. Element headers (PS3.5 7.1.2) and the byte order of binary values are made
here."""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from dicompress import uids
from dicompress.errors import DicompressError
from dicompress.pipeline import verify as verifier

if TYPE_CHECKING:
    from pydicom.dataset import Dataset


PIXEL_DATA = 0x7FE00010
EXTENDED_OFFSET_TABLE, EXTENDED_OFFSET_TABLE_LENGTHS = 0x7FE00001, 0x7FE00002

# PS3.5 Table 7.1-1: the VRs with a reserved field and a 4-byte length (unknown VRs
# too, as pydicom writes them).
LONG_VRS = frozenset("OB OD OF OL OV OW SQ SV UC UN UR UT UV".split())


@dataclass(frozen=True)
class Encoding:
    """How the dataset after the File Meta Information is encoded (PS3.5 A)."""

    implicit: bool = False
    little_endian: bool = True
    deflated: bool = False

    @classmethod
    def of(cls, transfer_syntax: str) -> Encoding:
        return cls(implicit=transfer_syntax == uids.ImplicitVRLittleEndian,
                   little_endian=transfer_syntax != uids.ExplicitVRBigEndian,
                   deflated=transfer_syntax == uids.DeflatedExplicitVRLittleEndian)


def element_header(tag: int, vr: str, length: int, encoding: Encoding = Encoding()) -> bytes:
    """Tag, VR and length of one element (PS3.5 7.1.2): 2-byte lengths for the short VRs."""
    endian = "<" if encoding.little_endian else ">"
    group_element = struct.pack(f"{endian}HH", tag >> 16, tag & 0xFFFF)
    if encoding.implicit:
        return group_element + struct.pack(f"{endian}I", length)
    if vr not in LONG_VRS:
        if length > 0xFFFF:
            raise DicompressError(f"({tag >> 16:04X},{tag & 0xFFFF:04X}) {vr} value of "
                                  f"{length} bytes cannot be written explicitly")
        return group_element + vr.encode() + struct.pack(f"{endian}H", length)
    return group_element + vr.encode() + b"\0\0" + struct.pack(f"{endian}I", length)


_WORD_VRS = {"OW": 2, "OF": 4, "OL": 4, "OD": 8, "OV": 8}


def swap_binary_values(ds: Dataset) -> None:
    """Byte-swap the OW/OF/OL/OD/OV values (Pixel Data aside) of a dataset written in the
    other byte order than it was read in.

    pydicom decodes numbers (US, FL, ...) to Python values, which it re-encodes in the
    output's byte order; raw binary values stay as read and must be swapped by hand.
    """
    for elem in ds.iterall():
        size = _WORD_VRS.get(elem.VR)
        if size and elem.tag != PIXEL_DATA and isinstance(elem.value, (bytes, bytearray)):
            raw = elem.value[: len(elem.value) // size * size]
            elem.value = np.frombuffer(raw, f"u{size}").byteswap().tobytes()


class DatasetHeader:
    """The header of a pydicom Dataset, encoded in its File Meta's transfer syntax.

    Elements still raw as read are copied with a header of ours when the encoding does
    not change (pydicom would do the same at ten times the cost per element); the rest
    is encoded by pydicom (VRs, ambiguous VRs, character sets). Group lengths (retired)
    are left out. Pixel Data is left to the writer unless `pixel_data_in_header`; the
    Extended Offset Table too unless `keep_offset_tables` (pixel data copied as it is).
    """

    def __init__(self, ds: Dataset, *, pixel_data_in_header: bool = False,
                 keep_offset_tables: bool = False) -> None:
        from pydicom.dataset import Dataset as _Dataset

        self.ds = ds
        self.preamble = ds.get("preamble") or b"\0" * 128
        self.transfer_syntax = str(ds.file_meta.TransferSyntaxUID)
        self.encoding = Encoding.of(self.transfer_syntax)
        head, tail = _Dataset(), _Dataset()
        implicit, little = ds.original_encoding
        for part in (head, tail):
            if implicit is not None:
                part.set_original_encoding(implicit, little, ds.original_character_set)
        if little is not None and little != self.encoding.little_endian:
            swap_binary_values(ds)  # pydicom re-encodes numbers, not OW/OF/... bytes
        skipped = () if pixel_data_in_header else (PIXEL_DATA,)
        if not keep_offset_tables:
            skipped += (EXTENDED_OFFSET_TABLE, EXTENDED_OFFSET_TABLE_LENGTHS)
        for tag in sorted(ds.keys()):
            if tag & 0xFFFF == 0 or tag in skipped:
                continue  # (not read: a skipped Pixel Data stays on disk)
            (head if tag < PIXEL_DATA or pixel_data_in_header else tail)[tag] = ds.get_item(tag)
        self._head, self._tail = head, tail

    def file_meta(self) -> bytes:
        from pydicom.filebase import DicomBytesIO
        from pydicom.filewriter import write_file_meta_info

        buffer = DicomBytesIO()
        write_file_meta_info(buffer, self.ds.file_meta, enforce_standard=True)
        return buffer.getvalue()

    def head(self) -> bytes:
        return self._encode(self._head)

    def tail(self) -> bytes:
        return self._encode(self._tail)

    def values(self) -> dict[str, object]:
        return {keyword: self.ds.get(keyword) for keyword in verifier.CHECKED}

    def _encode(self, ds: Dataset) -> bytes:
        from pydicom.charset import default_encoding
        from pydicom.filebase import DicomBytesIO
        from pydicom.filewriter import write_data_element, write_dataset

        encoding = self.encoding
        buffer = DicomBytesIO()
        buffer.is_little_endian, buffer.is_implicit_VR = encoding.little_endian, encoding.implicit
        if (ds.original_encoding != (encoding.implicit, encoding.little_endian)
                or ds.original_character_set != ds._character_set):
            write_dataset(buffer, ds)  # pydicom converts (VRs, ambiguous VRs, charset)
            return buffer.getvalue()
        encodings = ds.get("SpecificCharacterSet", default_encoding)
        for tag in sorted(ds.keys()):
            elem = ds.get_item(tag)
            value = elem.value
            if (elem.is_raw and isinstance(value, bytes) and elem.VR not in (None, "SQ")
                    and elem.length != 0xFFFFFFFF and len(value) == elem.length
                    and (len(value) <= 0xFFFF or elem.VR in LONG_VRS)):
                buffer.write(element_header(tag, elem.VR, len(value), encoding) + value)
            else:  # as pydicom's write_dataset does: raw elements stay raw
                write_data_element(buffer, elem, encodings)
        return buffer.getvalue()


@dataclass
class BytesHeader:
    """A header already encoded (Explicit VR Little Endian): the fast path's, made of
    byte ranges of the parsed source and File Meta Information built for the output."""

    preamble: bytes
    transfer_syntax: str
    meta: bytes
    head_parts: Sequence[bytes | memoryview]
    tail_parts: Sequence[bytes | memoryview]
    checked_values: dict[str, object]
    encoding: Encoding = field(default_factory=Encoding)

    def file_meta(self) -> bytes:
        return self.meta

    def head(self) -> bytes:
        return b"".join(self.head_parts)

    def tail(self) -> bytes:
        return b"".join(self.tail_parts)

    def values(self) -> dict[str, object]:
        return self.checked_values


def file_meta_group(elements: dict[int, tuple[str, bytes]]) -> bytes:
    """File Meta Information (PS3.10 7.1) from its elements (tag -> VR, even-length value),
    with the group length; always Explicit VR Little Endian."""
    body = b"".join(element_header(tag, vr, len(value)) + value
                    for tag, (vr, value) in sorted(elements.items()))
    return element_header(0x00020000, "UL", 4) + struct.pack("<I", len(body)) + body


__all__ = ["BytesHeader", "DatasetHeader", "Encoding", "LONG_VRS", "element_header",
           "file_meta_group", "swap_binary_values"]
