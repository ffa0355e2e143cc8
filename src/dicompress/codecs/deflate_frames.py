"""Deflated Image Frame Compression (1.2.840.10008.1.2.8.1; PS3.5 8.2.16, A.4.13).

Each frame's native pixel bytes (little endian, Planar Configuration 0) are
compressed alone with Deflate as RFC 1951 defines it (raw deflate: no zlib header,
no Adler-32) into one fragment; an odd result is padded with one NULL, which the
writer adds to every odd fragment (A.4.13). 8.2.16: "there are no restrictions on
the values of Pixel Data Related Attributes", so every layout is accepted.

Bits Allocated 1 (segmentations, the intended use): a frame's pixels are packed
eight to a byte, the first pixel in the least significant bit (PS3.5 8.1.1), and
each frame starts on a byte boundary, its last byte padded with zero bits.

Encoding uses libdeflate (imagecodecs), which compresses better and faster than
zlib; decoding uses zlib, bounded to the frame's size (a deflate bomb stops there).
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Any

import numpy as np

from dicompress.codecs.registry import Codec, Option, register
from dicompress.errors import CorruptPixelData, UnsupportedLayout
from dicompress.layout import FrameLayout
from dicompress.uids import DeflatedImageFrameCompression


def frame_length(layout: FrameLayout) -> int:
    """Bytes of one uncompressed frame (1-bit frames packed, from a byte boundary)."""
    samples = layout.frame_pixels * layout.samples_per_pixel
    if layout.bits_allocated == 1:
        return (samples + 7) // 8
    return samples * layout.bytes_per_sample


def inflate(data: bytes, length: int) -> bytes:
    """The `length` bytes a raw deflate stream (RFC 1951) holds; anything else is refused."""
    inflater = zlib.decompressobj(-zlib.MAX_WBITS)
    try:
        out = inflater.decompress(data, length + 1)
    except zlib.error as exc:
        raise CorruptPixelData(f"deflated frame cannot be inflated: {exc}") from exc
    if len(out) > length or (not inflater.eof and inflater.unconsumed_tail):
        raise CorruptPixelData(f"deflated frame holds more than the {length} bytes of a frame")
    if not inflater.eof:
        raise CorruptPixelData(f"deflated frame is cut short ({len(out)} of {length} bytes)")
    if len(out) != length:
        raise CorruptPixelData(f"deflated frame holds {len(out)} bytes; a frame is {length}")
    if inflater.unused_data.strip(b"\0"):  # one NULL pads an odd stream (A.4.13)
        raise CorruptPixelData("deflated frame has data after the end of its deflate stream")
    return out


@dataclass(frozen=True)
class DeflateFramesCodec(Codec):
    def check_layout(self, layout: FrameLayout) -> None:
        if layout.bits_allocated != 1 and layout.bits_allocated % 8:
            raise UnsupportedLayout(
                f"{layout.bits_allocated} bits allocated has no native byte layout to deflate"
            )

    def output_attributes(self, layout: FrameLayout) -> dict[str, Any]:
        return {"PlanarConfiguration": 0} if layout.samples_per_pixel > 1 else {}

    def encode_frame(self, arr: np.ndarray, layout: FrameLayout, threads: int = 1) -> bytes:
        import imagecodecs

        if layout.bits_allocated == 1:
            if arr.size and arr.max() > 1:
                raise UnsupportedLayout("a 1-bit frame holds values other than 0 and 1")
            native = np.packbits(arr.reshape(-1).astype(np.uint8, copy=False),
                                 bitorder="little").tobytes()
        else:
            native = np.ascontiguousarray(arr, arr.dtype.newbyteorder("<")).tobytes()
        return bytes(imagecodecs.deflate_encode(native, level=int(self.option("level")), raw=True))

    def decode_frame(self, data: bytes, layout: FrameLayout) -> np.ndarray:
        native = inflate(data, frame_length(layout))
        if layout.bits_allocated == 1:
            bits = np.unpackbits(np.frombuffer(native, np.uint8), bitorder="little")
            return bits[: layout.frame_pixels * layout.samples_per_pixel].reshape(layout.frame_shape)
        return np.frombuffer(native, layout.dtype).reshape(layout.frame_shape)


# level 12 (libdeflate's best) is slow; 9 is close in size.
register(DeflateFramesCodec(
    name="deflate-frames", transfer_syntax=DeflatedImageFrameCompression, order=60,
    description="each frame deflated alone (segmentations, sparse images)",
    specs=(Option("level", int, 9, low=1, high=12, help="deflate level 1-12 (libdeflate)"),),
))
