"""JPEG 2000 (PS3.5 A.4.4): Part 1 through OpenJPEG (glymur), HTJ2K through OpenJPH.

| name          | transfer syntax          | engine                         |
|---------------|--------------------------|--------------------------------|
| j2k           | 1.2.840.10008.1.2.4.90   | OpenJPEG via glymur, reversible |
| j2k-lossy     | 1.2.840.10008.1.2.4.91   | OpenJPEG via glymur, 9/7 + rate |
| htj2k         | 1.2.840.10008.1.2.4.201  | OpenJPH via imagecodecs         |
| htj2k-rpcl    | 1.2.840.10008.1.2.4.202  | OpenJPH, RPCL + TLM             |
| htj2k-lossy   | 1.2.840.10008.1.2.4.203  | OpenJPH, irreversible           |

Colour: RGB frames are coded with the multi-component transform, so the output
is YBR_RCT (reversible) or YBR_ICT (irreversible), as PS3.5 8.2.4 requires;
YBR_FULL and PALETTE COLOR are coded component by component.

Ratios are relative to the stored size (Bits Allocated), the size users see.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from dicompress import uids as uid

from dicompress.codecs import _openjpeg
from dicompress.codecs.registry import (BUDGET_RATIO, Codec, Option, check_values_fit, register,
                                        stored_bits)
from dicompress.codecs.search import PSNR_TARGET, bisect_knob, psnr
from dicompress.errors import CorruptPixelData, UnsupportedLayout, UnsupportedTransferSyntax
from dicompress.layout import FrameLayout

_PROGRESSIONS = ("LRCP", "RLCP", "RPCL", "PCRL", "CPRL")
#: The highest ratio asked of a lossy J2K/HTJ2K codec when re-encoding lossy frames.
MAX_RATIO = 400.0


@dataclass(frozen=True)
class _J2KFamily(Codec):
    """What Part 1 and HTJ2K share: layouts, colour, attributes, lossy search."""

    def check_layout(self, layout: FrameLayout) -> None:
        if layout.bits_allocated not in (8, 16, 32):
            raise UnsupportedLayout(
                f"{self.name} codes 8, 16 or 32 bits allocated, not {layout.bits_allocated}"
            )
        if layout.samples_per_pixel not in (1, 3):
            raise UnsupportedLayout(f"{self.name} codes 1 or 3 samples per pixel")
        if stored_bits(layout) > 24:
            raise UnsupportedLayout(
                f"{stored_bits(layout)}-bit samples are beyond what {self.name} codes exactly here (24)"
            )
        if not self.lossless and layout.photometric_interpretation == "PALETTE COLOR":
            raise UnsupportedLayout("PALETTE COLOR indices cannot be coded lossy (PS3.5 8.2.4)")

    def uses_mct(self, layout: FrameLayout) -> bool:
        return layout.samples_per_pixel == 3 and layout.photometric_interpretation == "RGB"

    def output_attributes(self, layout: FrameLayout) -> dict[str, Any]:
        attrs: dict[str, Any] = {}
        if layout.samples_per_pixel > 1:
            attrs["PlanarConfiguration"] = 0
        if self.uses_mct(layout):
            attrs["PhotometricInterpretation"] = "YBR_RCT" if self.reversible else "YBR_ICT"
        return attrs

    @property
    def reversible(self) -> bool:
        return self.lossless

    def validate_options(self, options: dict[str, Any]) -> None:
        if options.get("ratio") is not None and options.get("psnr") is not None:
            raise UnsupportedTransferSyntax("give a target ratio or a target PSNR, not both")

    def reencoding(self, previous_ratio: float | None) -> "_J2KFamily":
        # Already lossy: again at the ratio it had (within what a ratio may be here).
        if previous_ratio is None or self.lossless:
            return self
        return self.configure(ratio=max(1.0, min(previous_ratio, MAX_RATIO)))

    def encode_frame(self, arr: np.ndarray, layout: FrameLayout, threads: int = 1) -> bytes:
        check_values_fit(arr, layout, self.name)
        target_psnr = self.option("psnr")
        if target_psnr is None:
            return self._encode(arr, layout, self._knob_for_ratio(), threads)
        bits = stored_bits(layout)
        return bisect_knob(
            lambda knob: self._encode(arr, layout, knob, threads),
            lambda data: psnr(arr, self.decode_frame(data, layout), bits) >= target_psnr,
            *self._psnr_knob_range(),
        )

    def _knob_for_ratio(self) -> float | None:
        return None

    def _psnr_knob_range(self) -> tuple[float, float]:
        raise NotImplementedError

    def _encode(self, arr, layout, knob, threads) -> bytes:
        raise NotImplementedError

    def decode_frame(self, data: bytes, layout: FrameLayout) -> np.ndarray:
        # OpenJPEG (the build inside imagecodecs) decodes Part 1 and HTJ2K alike;
        # for HTJ2K it is a decoder independent of the encoder.
        import imagecodecs

        try:
            decoded = imagecodecs.jpeg2k_decode(data, planar=False)
        except Exception:
            # CI once saw OpenJPEG fail to decode a valid HTJ2K stream (the same test
            # passes on rerun; 3,000 parallel decodes did not reproduce it): a second,
            # single-threaded try; a damaged stream fails both, and verification still
            # compares every sample.
            try:
                decoded = imagecodecs.jpeg2k_decode(data, planar=False, numthreads=1)
            except Exception as exc:
                raise CorruptPixelData(f"JPEG 2000 frame cannot be decoded: {exc}") from exc
        return decoded.astype(layout.dtype, copy=False)


@dataclass(frozen=True)
class J2KCodec(_J2KFamily):
    """JPEG 2000 Part 1 through OpenJPEG (glymur's bindings)."""

    def validate_options(self, options: dict[str, Any]) -> None:
        super().validate_options(options)
        tile = options.get("tile")
        if tile is not None and (len(tile) != 2 or min(tile) < 16):
            raise UnsupportedTransferSyntax("tile must be two sizes of at least 16 (rows, columns)")

    def _knob_for_ratio(self) -> float | None:
        return None if self.lossless else float(self.option("ratio"))

    def _psnr_knob_range(self) -> tuple[float, float]:
        return 2.0, 400.0  # compression ratio: quality falls as it grows

    def _encode(self, arr, layout, ratio, threads) -> bytes:
        ratios: tuple[float, ...] = ()
        if ratio is not None:
            # OpenJPEG's rates are relative to the codestream precision; ours to
            # the bytes allocated. Layers: each one doubles the quality.
            rate = ratio * stored_bits(layout) / (8 * arr.dtype.itemsize)
            layers = int(self.option("layers"))
            ratios = tuple(rate * 2 ** (layers - 1 - i) for i in range(layers))
        params = _openjpeg.J2KParameters(
            reversible=self.lossless,
            ratios=ratios,
            resolutions=int(self.option("resolutions")),
            progression=str(self.option("progression")).upper(),
            tile=tuple(self.option("tile")) if self.option("tile") else None,
            mct=self.uses_mct(layout),
        )
        return _openjpeg.encode(arr, stored_bits(layout), bool(layout.pixel_representation),
                                params, threads)


@dataclass(frozen=True)
class HTJ2KCodec(_J2KFamily):
    """High-Throughput JPEG 2000 (Part 15) through OpenJPH (imagecodecs)."""

    rpcl: bool = False

    def check_layout(self, layout: FrameLayout) -> None:
        super().check_layout(layout)
        if layout.bits_allocated == 32 and stored_bits(layout) > 16:
            raise UnsupportedLayout("HTJ2K through imagecodecs codes at most 16-bit samples here")

    def _decompositions(self, layout: FrameLayout) -> int:
        wanted = int(self.option("resolutions")) - 1
        if self.rpcl:
            # PS3.5 10.18: the base resolution is at most 64 wide and high.
            wanted = max(wanted, math.ceil(math.log2(max(layout.rows, layout.columns) / 64)))
        return max(0, min(wanted, int(math.log2(max(1, min(layout.rows, layout.columns))))))

    def _knob_for_ratio(self) -> float | None:
        return None  # handled in encode_frame: OpenJPH has no rate control

    def _psnr_knob_range(self) -> tuple[float, float]:
        return 1e-5, 0.5  # quantisation step: quality falls as it grows

    def encode_frame(self, arr: np.ndarray, layout: FrameLayout, threads: int = 1) -> bytes:
        ratio = self.option("ratio")
        if self.lossless or self.option("psnr") is not None:
            return super().encode_frame(arr, layout, threads)
        check_values_fit(arr, layout, self.name)
        # The finest quantisation (quality = 1 / step) whose output meets the ratio.
        return bisect_knob(
            lambda quality: self._encode(arr, layout, 1.0 / quality, threads),
            lambda data: arr.nbytes / len(data) >= ratio,
            2.0, 1e5,
        )

    def _encode(self, arr, layout, qstep, threads) -> bytes:
        import imagecodecs

        try:  # OpenJPH's refusals are the layout's, not a bug of ours
            return imagecodecs.htj2k_encode(
                arr,
                level=None if self.lossless else qstep,
                reversible=self.lossless,
                rgb=self.uses_mct(layout),
                planar=False,
                resolutions=self._decompositions(layout),
                tlm=self.rpcl or None,
            )
        except (ValueError, RuntimeError, imagecodecs.Htj2kError) as exc:
            raise UnsupportedLayout(f"OpenJPH cannot code this frame ({arr.shape} {arr.dtype}): "
                                    f"{exc}") from exc

def _tile(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(v) for v in text.lower().split("x"))
    except ValueError:
        raise UnsupportedTransferSyntax(f"--tile {text!r}: give ROWSxCOLS") from None


_RESOLUTIONS = Option("resolutions", int, 6, low=1, high=33, help="J2K/HTJ2K resolution levels")
_PART1 = (
    _RESOLUTIONS,
    Option("progression", str, "LRCP", choices=_PROGRESSIONS, help="J2K progression order"),
    Option("tile", tuple, None, metavar="ROWSxCOLS", parse=_tile,
           help="J2K tile size, e.g. 256x256"),
)
_RATE = (
    Option("ratio", float, 10.0, low=1.0, high=10000.0, help="target compression ratio"),
    PSNR_TARGET,
)
_J2K_COLOUR, _HT_COLOUR = "#1f77b4", "#2ca02c"
_LOSSY_PLAN = {"value_option": "ratio", "compare_values": (5, 10, 20, 40),
               "plan_values": BUDGET_RATIO}

register(J2KCodec(
    name="j2k", transfer_syntax=str(uid.JPEG2000Lossless), order=30,
    description="JPEG 2000 lossless (OpenJPEG)", specs=_PART1,
    compare_values=(), plan_rank=3, colour=_J2K_COLOUR,
))
register(J2KCodec(
    name="j2k-lossy", transfer_syntax=str(uid.JPEG2000), lossless=False,
    lossy_method="ISO_15444_1", order=31,
    description="JPEG 2000 lossy, to a --ratio or a --psnr (OpenJPEG)",
    specs=(*_PART1, *_RATE,
           Option("layers", int, 1, low=1, high=20,
                  help="J2K quality layers, each doubling the quality")),
    plan_rank=5, lossless_twin="j2k", colour=_J2K_COLOUR, **_LOSSY_PLAN,
))
register(HTJ2KCodec(
    name="htj2k", transfer_syntax=str(uid.HTJ2KLossless), order=32,
    description="High-Throughput JPEG 2000 lossless (OpenJPH)",
    specs=(_RESOLUTIONS,), compare_values=(), plan_rank=1, gateway_default=True,
    colour=_HT_COLOUR,
))
register(HTJ2KCodec(
    name="htj2k-rpcl", transfer_syntax=str(uid.HTJ2KLosslessRPCL), rpcl=True, order=33,
    description="HTJ2K lossless, RPCL order with TLM markers (for streaming)",
    specs=(_RESOLUTIONS,), compare_values=(), colour=_HT_COLOUR,
))
register(HTJ2KCodec(
    name="htj2k-lossy", transfer_syntax=str(uid.HTJ2K), lossless=False,
    lossy_method="ISO_15444_15", order=34,
    description="HTJ2K lossy, to a --ratio or a --psnr (OpenJPH)",
    specs=(_RESOLUTIONS, *_RATE), plan_rank=6, lossless_twin="htj2k", colour=_HT_COLOUR,
    **_LOSSY_PLAN,
))
