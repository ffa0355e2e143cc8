"""JPEG lossy (PS3.5 A.4.1): Baseline 8-bit (.50) and Extended 12-bit (.51) via libjpeg-turbo.

Colour is coded as YCbCr with 4:2:2 chroma subsampling, which DICOM calls
YBR_FULL_422 (PS3.5 8.2.1); grayscale as one component. JPEG codes unsigned
samples of at most 12 bits: signed images (most CT) and deeper ones are refused
with the codec to use instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from dicompress import uids as uid

from dicompress.codecs.registry import Codec, Option, check_values_fit, register, stored_bits
from dicompress.codecs.search import PSNR_TARGET, bisect_knob, psnr
from dicompress.errors import CorruptPixelData, UnsupportedLayout, UnsupportedTransferSyntax
from dicompress.layout import FrameLayout


@dataclass(frozen=True)
class JPEGCodec(Codec):
    def validate_options(self, options: dict[str, Any]) -> None:
        if options.get("quality") is not None and options.get("psnr") is not None:
            raise UnsupportedTransferSyntax("give a JPEG quality or a target PSNR, not both")

    def reencoding(self, previous_ratio: float | None) -> "JPEGCodec":
        # Already lossy: a high quality adds little loss to what the blanking kept.
        return self.configure(quality=95)

    def check_layout(self, layout: FrameLayout) -> None:
        if layout.pixel_representation:
            raise UnsupportedLayout(
                "JPEG codes unsigned samples only; for signed images use j2k-lossy or jpegls-near"
            )
        if layout.bits_allocated not in (8, 16) or stored_bits(layout) > 12:
            raise UnsupportedLayout(
                f"JPEG codes at most 12 bits stored (here {stored_bits(layout)}); use j2k-lossy"
            )
        if layout.samples_per_pixel not in (1, 3):
            raise UnsupportedLayout("JPEG codes 1 or 3 samples per pixel")
        if layout.photometric_interpretation == "PALETTE COLOR":
            raise UnsupportedLayout("PALETTE COLOR indices cannot be coded lossy")
        if layout.samples_per_pixel == 3 and stored_bits(layout) > 8:
            raise UnsupportedLayout("12-bit colour JPEG is not supported; use j2k-lossy")

    def precision(self, layout: FrameLayout) -> int:
        return 8 if stored_bits(layout) <= 8 else 12

    def transfer_syntax_for(self, layout: FrameLayout) -> str:
        return self.transfer_syntax if self.precision(layout) == 8 else str(uid.JPEGExtended12Bit)

    def output_attributes(self, layout: FrameLayout) -> dict[str, Any]:
        if layout.samples_per_pixel == 1:
            return {}
        # Colour is always coded YCbCr 4:2:2, whatever it was (RGB or YBR_FULL).
        return {"PhotometricInterpretation": "YBR_FULL_422", "PlanarConfiguration": 0}

    def encode_frame(self, arr: np.ndarray, layout: FrameLayout, threads: int = 1) -> bytes:
        check_values_fit(arr, layout, self.name)
        target = self.option("psnr")
        if target is None:
            return self._encode(arr, layout, int(self.option("quality")))
        bits = stored_bits(layout)
        # knob = 101 - quality: quality falls as it grows.
        return bisect_knob(
            lambda knob: self._encode(arr, layout, round(101 - knob)),
            lambda data: psnr(arr, self.decode_frame(data, layout), bits) >= target,
            1.0, 96.0, steps=7, geometric=False,
        )

    def _encode(self, arr, layout, quality: int) -> bytes:
        import imagecodecs

        colour = layout.samples_per_pixel == 3
        source = "YCbCr" if layout.photometric_interpretation.startswith("YBR") else "RGB"
        try:  # libjpeg-turbo's refusals are the layout's, not a bug of ours
            # C-contiguous: a colour frame pydicom decoded from RLE is a view of its planes
            return imagecodecs.jpeg8_encode(
                np.ascontiguousarray(arr, np.uint8 if self.precision(layout) == 8 else np.uint16),
                level=quality,
                colorspace=source if colour else "GRAYSCALE",
                outcolorspace="YCbCr" if colour else "GRAYSCALE",
                subsampling="422" if colour else None,
                bitspersample=self.precision(layout),
                optimize=True,
            )
        except (ValueError, RuntimeError, imagecodecs.Jpeg8Error) as exc:
            raise UnsupportedLayout(f"libjpeg-turbo cannot code this frame "
                                    f"({arr.shape} {arr.dtype}, {layout.photometric_interpretation}): "
                                    f"{exc}") from exc

    def decode_frame(self, data: bytes, layout: FrameLayout) -> np.ndarray:
        import imagecodecs

        try:
            colour = layout.samples_per_pixel == 3
            decoded = imagecodecs.jpeg8_decode(
                data, colorspace="YCbCr" if colour else None,
                outcolorspace=("YCbCr" if layout.photometric_interpretation.startswith("YBR")
                               else "RGB") if colour else None,
            )
        except Exception as exc:
            raise CorruptPixelData(f"JPEG frame cannot be decoded: {exc}") from exc
        return decoded.astype(layout.dtype, copy=False)


register(JPEGCodec(
    name="jpeg", transfer_syntax=str(uid.JPEGBaseline8Bit), lossless=False,
    lossy_method="ISO_10918_1", also_writes=(str(uid.JPEGExtended12Bit),), order=50,
    description="JPEG lossy, 8-bit baseline or 12-bit extended (libjpeg-turbo)",
    specs=(Option("quality", int, 90, low=1, high=100, help="JPEG quality 1-100"), PSNR_TARGET),
    value_option="quality", compare_values=(90, 75), plan_rank=8,
    plan_values=(95, 90, 85, 75, 60, 50), colour="#d62728",
))
