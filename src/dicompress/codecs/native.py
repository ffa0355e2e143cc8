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
    encapsulated: bool = False

    def output_attributes(self, layout: FrameLayout) -> dict[str, Any]:
        return {"PlanarConfiguration": 0} if layout.samples_per_pixel > 1 else {}

    def encode_frame(self, arr: np.ndarray, layout: FrameLayout, threads: int = 1) -> bytes:
        return np.ascontiguousarray(arr, arr.dtype.newbyteorder("<")).tobytes()

    def decode_frame(self, data: bytes, layout: FrameLayout) -> np.ndarray:
        dtype = np.dtype(np.uint8) if layout.bits_allocated == 1 else layout.dtype
        return np.frombuffer(data, dtype).reshape(layout.frame_shape)


# Explicit VR Little Endian is the uncompressed baseline compare measures, and with
# Implicit VR what a gateway falls back to when a destination refuses the target.
register(NativeCodec(
    name="explicit", transfer_syntax=str(uid.ExplicitVRLittleEndian), order=10,
    description="Explicit VR Little Endian, uncompressed", compare_values=(),
    fallback_rank=1,
))
register(NativeCodec(
    name="implicit", transfer_syntax=str(uid.ImplicitVRLittleEndian), order=11,
    description="Implicit VR Little Endian, uncompressed (the DICOM default)", fallback_rank=2,
))
register(NativeCodec(
    name="deflate", transfer_syntax=str(uid.DeflatedExplicitVRLittleEndian), order=12,
    description="Deflated Explicit VR Little Endian, the whole dataset deflated (PS3.5 A.5)",
    per_frame=False,
))
