"""RLE Lossless (1.2.840.10008.1.2.5) through the native codec."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from dicompress.uids import RLELossless

from dicompress import rle
from dicompress.codecs.registry import Codec, register
from dicompress.errors import UnsupportedLayout
from dicompress.layout import FrameLayout


@dataclass(frozen=True)
class RLECodec(Codec):
    def check_layout(self, layout: FrameLayout) -> None:
        if layout.bits_allocated == 1:
            raise UnsupportedLayout(
                "Bits Allocated 1 cannot be RLE encoded: PS3.5 G codes whole bytes "
                "(8, 16 or 32 bits allocated)"
            )
        if layout.bits_allocated not in (8, 16, 32):
            raise UnsupportedLayout(
                f"RLE encodes 8, 16 or 32 bits allocated, not {layout.bits_allocated}"
            )
        if layout.samples_per_pixel * layout.bytes_per_sample > 15:
            raise UnsupportedLayout(
                f"{layout.samples_per_pixel} samples of {layout.bits_allocated} bits need "
                "more than the 15 RLE segments PS3.5 G.2 allows"
            )

    def encode_frame(self, arr: np.ndarray, layout: FrameLayout, threads: int = 1) -> bytes:
        return rle.encode_frame(arr)

    def decode_frame(self, data: bytes, layout: FrameLayout) -> np.ndarray:
        return rle.decode_frame(
            data, layout.rows, layout.columns, layout.samples_per_pixel,
            layout.bits_allocated, layout.pixel_representation,
        )

    def output_attributes(self, layout: FrameLayout) -> dict[str, Any]:
        # PS3.5 G.2 note: segments are colour-by-plane, so Planar Configuration is 1.
        return {"PlanarConfiguration": 1} if layout.samples_per_pixel > 1 else {}


register(RLECodec(
    name="rle", transfer_syntax=str(RLELossless), order=20,
    description="RLE Lossless (PS3.5 G), dicompress's own native codec",
    compare_values=(), plan_rank=4, colour="#7f7f7f",
))
