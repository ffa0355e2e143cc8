"""Encapsulated Uncompressed Explicit VR Little Endian (1.2.840.10008.1.2.1.98, PS3.5 A.4.11).

Native pixel data carried as encapsulated fragments: each frame is one fragment (so
the Basic or Extended Offset Table reaches every frame, and Pixel Data may pass the
4 GiB a native value length allows), holding the frame as Explicit VR Little Endian
would (PS3.5 8.1.1): little-endian samples, in the order of the layout's Planar
Configuration (as `native` writes them). A
fragment of odd length gets one trailing null byte (PS3.5 A.4: items have even length;
the writer adds it, this codec reads past it).

1-bit frames (PS3.5 8.1.1, D.2) are packed here, first pixel in the least significant
bit, each frame starting at the first byte of its own fragment: frames no longer
share bytes across their boundary as they do in native Pixel Data.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from dicompress.codecs.native import from_stored_order, stored_order, stored_planar_configuration
from dicompress.codecs.registry import Codec, register
from dicompress.errors import CorruptPixelData
from dicompress.layout import FrameLayout

#: PS3.6 Table A-1.
ENCAPSULATED_UNCOMPRESSED = "1.2.840.10008.1.2.1.98"


def _packed_bytes(layout: FrameLayout) -> int:
    """The bytes one frame takes in its fragment, before padding."""
    if layout.bits_allocated == 1:
        return (layout.frame_pixels * layout.samples_per_pixel + 7) // 8
    return layout.frame_bytes


@dataclass(frozen=True)
class EncapsulatedUncompressedCodec(Codec):
    def output_attributes(self, layout: FrameLayout) -> dict[str, Any]:
        return stored_planar_configuration(layout)

    def encode_frame(self, arr: np.ndarray, layout: FrameLayout, threads: int = 1) -> bytes:
        if layout.bits_allocated == 1:
            return np.packbits(arr.astype(bool, copy=False).ravel(), bitorder="little").tobytes()
        return np.ascontiguousarray(stored_order(arr, layout),
                                    arr.dtype.newbyteorder("<")).tobytes()

    def decode_frame(self, data: bytes, layout: FrameLayout) -> np.ndarray:
        size = _packed_bytes(layout)
        if len(data) not in (size, size + (size & 1)):
            raise CorruptPixelData(
                f"an uncompressed frame of {layout.rows} x {layout.columns} x "
                f"{layout.samples_per_pixel} at {layout.bits_allocated} bits allocated takes "
                f"{size} bytes, its fragment {len(data)}")
        if layout.bits_allocated == 1:
            bits = np.unpackbits(np.frombuffer(data, np.uint8, size), bitorder="little",
                                 count=layout.frame_pixels * layout.samples_per_pixel)
            return bits.reshape(layout.frame_shape)
        samples = np.frombuffer(data, layout.dtype, layout.frame_pixels * layout.samples_per_pixel)
        return from_stored_order(samples, layout)


register(EncapsulatedUncompressedCodec(
    name="encapsulated-uncompressed", transfer_syntax=ENCAPSULATED_UNCOMPRESSED, order=13,
    description="Encapsulated Uncompressed Explicit VR Little Endian: a fragment a frame "
                "(PS3.5 A.4.11)",
))
