"""Native (uncompressed) transfer syntaxes: Explicit and Implicit VR Little Endian,
and Deflated Explicit VR Little Endian (the whole dataset deflated, PS3.5 A.5).

Frames are the little-endian sample bytes, interleaved (Planar Configuration 0);
1-bit frames stay unpacked here and are packed across frame boundaries by the writer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from dicompress import uids as uid

from dicompress.codecs.registry import Codec, register
from dicompress.layout import FrameLayout


@dataclass(frozen=True)
class NativeCodec(Codec):
    implicit_vr: bool = False
    deflated: bool = False

    def output_attributes(self, layout: FrameLayout) -> dict[str, Any]:
        return {"PlanarConfiguration": 0} if layout.samples_per_pixel > 1 else {}

    def encode_frame(self, arr: np.ndarray, layout: FrameLayout, threads: int = 1) -> bytes:
        return np.ascontiguousarray(arr, arr.dtype.newbyteorder("<")).tobytes()

    def decode_frame(self, data: bytes, layout: FrameLayout) -> np.ndarray:
        dtype = np.dtype(np.uint8) if layout.bits_allocated == 1 else layout.dtype
        return np.frombuffer(data, dtype).reshape(layout.frame_shape)


register(NativeCodec(name="explicit", transfer_syntax=str(uid.ExplicitVRLittleEndian),
                     encapsulated=False))
register(NativeCodec(name="implicit", transfer_syntax=str(uid.ImplicitVRLittleEndian),
                     encapsulated=False, implicit_vr=True))
register(NativeCodec(name="deflate", transfer_syntax=str(uid.DeflatedExplicitVRLittleEndian),
                     encapsulated=False, deflated=True))
