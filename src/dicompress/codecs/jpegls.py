"""JPEG-LS (PS3.5 A.4.3): lossless (.80) and near-lossless (.81) through CharLS.

The JPEG-LS precision P is Bits Stored. Signed samples are coded as their
Bits Stored two's complement bits (JPEG-LS has no sign; decoders sign-extend
from Pixel Representation, as pydicom, GDCM and DCMTK do). Near-lossless output
is checked: every decoded sample is within NEAR of its source, in the signed
domain too (a wrap across the sign boundary is refused, not written).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from dicompress import uids as uid

from dicompress.codecs import _charls
from dicompress.codecs.registry import Codec, Option, check_values_fit, register, stored_bits
from dicompress.errors import UnsupportedLayout, VerificationFailed
from dicompress.layout import FrameLayout


@dataclass(frozen=True)
class JPEGLSCodec(Codec):
    @property
    def near(self) -> int:
        return 0 if self.lossless else int(self.option("near"))

    def check_layout(self, layout: FrameLayout) -> None:
        if layout.bits_allocated not in (8, 16):
            raise UnsupportedLayout(f"JPEG-LS codes 8 or 16 bits allocated, not {layout.bits_allocated}")
        if layout.samples_per_pixel not in (1, 3):
            raise UnsupportedLayout("JPEG-LS codes 1 or 3 samples per pixel")
        if not 2 <= stored_bits(layout) <= 16:
            raise UnsupportedLayout(f"JPEG-LS codes 2 to 16 bits stored, not {stored_bits(layout)}")
        if self.near and layout.photometric_interpretation == "PALETTE COLOR":
            raise UnsupportedLayout("PALETTE COLOR indices cannot be coded near-lossless")

    def output_attributes(self, layout: FrameLayout) -> dict[str, Any]:
        return {"PlanarConfiguration": 0} if layout.samples_per_pixel > 1 else {}

    def encode_frame(self, arr: np.ndarray, layout: FrameLayout, threads: int = 1) -> bytes:
        check_values_fit(arr, layout, self.name)
        bits = stored_bits(layout)
        samples = arr.view(arr.dtype.str.replace("i", "u")) if arr.dtype.kind == "i" else arr
        if bits < samples.dtype.itemsize * 8:
            samples = samples & np.array((1 << bits) - 1, samples.dtype)
        samples = samples.astype(np.uint8 if bits <= 8 else "<u2", copy=False)
        data = _charls.encode(samples, bits, self.near)
        if self.near:
            error = np.abs(self.decode_frame(data, layout).astype(np.int64) - arr)
            if error.size and error.max() > self.near:
                raise VerificationFailed(
                    f"near-lossless error {int(error.max())} exceeds NEAR={self.near} "
                    "(signed values across the Bits Stored sign boundary): use jpegls or j2k-lossy"
                )
        return data

    def decode_frame(self, data: bytes, layout: FrameLayout) -> np.ndarray:
        samples, precision = _charls.decode(data)
        out = samples.astype(layout.dtype.str.replace("i", "u"), copy=False)
        if layout.pixel_representation:
            shift = out.dtype.itemsize * 8 - precision
            out = (out.view(layout.dtype) << shift) >> shift  # sign-extend
        return out.view(layout.dtype)


_COLOUR = "#9467bd"
register(JPEGLSCodec(
    name="jpegls", transfer_syntax=str(uid.JPEGLSLossless), order=40,
    description="JPEG-LS lossless (CharLS)",
    compare_values=(), plan_rank=2, colour=_COLOUR,
))
register(JPEGLSCodec(
    name="jpegls-near", transfer_syntax=str(uid.JPEGLSNearLossless), lossless=False,
    lossy_method="ISO_14495_1", order=41,
    description="JPEG-LS near-lossless: every sample within --near of its source",
    specs=(Option("near", int, 2, low=1, high=255,
                  help="JPEG-LS NEAR, the largest error per sample"),),
    value_option="near", compare_values=(1, 2, 4), plan_rank=7,
    plan_values=(1, 2, 3, 4, 6, 8), lossless_twin="jpegls", colour=_COLOUR,
))
