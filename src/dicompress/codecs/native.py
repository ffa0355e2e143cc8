"""Native (uncompressed) transfer syntaxes: Explicit and Implicit VR Little Endian,
and Deflated Explicit VR Little Endian (the whole dataset deflated, PS3.5 A.5).

Frames are the little-endian sample bytes, in the order the layout's Planar
Configuration says: colour-by-pixel (0), or colour-by-plane (1) where the object needs it
(a US image's YBR_FULL, `pipeline.decoded.us_planar_configuration`); 1-bit frames stay
unpacked here and are packed across frame boundaries by the writer.
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
        return stored_planar_configuration(layout)

    def encode_frame(self, arr: np.ndarray, layout: FrameLayout, threads: int = 1) -> bytes:
        return np.ascontiguousarray(stored_order(arr, layout),
                                    arr.dtype.newbyteorder("<")).tobytes()

    def decode_frame(self, data: bytes, layout: FrameLayout) -> np.ndarray:
        dtype = np.dtype(np.uint8) if layout.bits_allocated == 1 else layout.dtype
        return from_stored_order(np.frombuffer(data, dtype), layout)


def stored_planar_configuration(layout: FrameLayout) -> dict[str, Any]:
    """Planar Configuration of samples stored as they are: the layout's (PS3.5 8.1.1 and
    PS3.3 C.7.6.3.1.3 allow either; the IOD may require one)."""
    return ({"PlanarConfiguration": layout.planar_configuration}
            if layout.samples_per_pixel > 1 else {})


def stored_order(arr: np.ndarray, layout: FrameLayout) -> np.ndarray:
    """A frame as numpy holds it (samples last) in the order its samples are stored:
    colour-by-plane for Planar Configuration 1 (a view; the bytes are copied once)."""
    if layout.samples_per_pixel > 1 and layout.planar_configuration == 1:
        return arr.transpose(2, 0, 1)
    return arr


def from_stored_order(samples: np.ndarray, layout: FrameLayout) -> np.ndarray:
    """A frame's stored samples (flat) as numpy holds a frame (samples last)."""
    if layout.samples_per_pixel > 1 and layout.planar_configuration == 1:
        return samples.reshape(layout.samples_per_pixel, layout.rows,
                               layout.columns).transpose(1, 2, 0)
    return samples.reshape(layout.frame_shape)


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
