"""JPEG XL (PS3.5 8.2.15): lossless (.110), JPEG recompression (.111) and lossy (.112)
through libjxl (imagecodecs).

| name          | transfer syntax          | what is coded                                 |
|---------------|--------------------------|-----------------------------------------------|
| jpegxl        | 1.2.840.10008.1.2.4.110  | samples, modular lossless, `effort`           |
| jpegxl-lossy  | 1.2.840.10008.1.2.4.112  | samples, VarDCT at a `distance` (or searched) |
| jpegxl-jpeg   | 1.2.840.10008.1.2.4.111  | a JPEG baseline frame's own bitstream         |

* Bit depth: the codestream's bits per sample is Bits Stored, so a 12-bit image is
  coded as 12-bit (PS3.5 8.2.15: the attributes "shall contain Values that are
  consistent with the characteristics of the compressed data stream").
* Sign: a JPEG XL codestream holds unsigned integer (or floating point) samples
  (ISO/IEC 18181-1 BitDepth has no sign), so Pixel Representation 1 cannot be
  consistent with it: signed images are refused, with the codecs that carry them.
* Colour: the codestream is Grey or RGB. Lossless and JPEG recompression keep the
  samples as they are (MONOCHROME1/2, PALETTE COLOR, RGB; .111 also YBR_FULL_422,
  the JPEG's own colour); lossy colour is coded in XYB, which PS3.3 C.7.6.3.1.2
  names as the Photometric Interpretation XYB (decoders give RGB: frames decoded
  by dicompress say RGB, and pydicom 3.0 is taught the term by
  `plugins._new_syntaxes.teach_xyb`, as pydicom 3.1 has it).
* Frames: one codestream per frame, one fragment per frame. libjxl writes a bare
  codestream unless it needs the 18181-2 container: the level-10 box of samples
  deeper than 12 bits, or the JPEG reconstruction box of .111. Both are read back.
* Before libjxl decodes a frame, its header (`_jxl_header`) must agree with the
  layout: a hostile frame is refused with CorruptPixelData naming what differs.

jpegxl-jpeg recompresses JPEG baseline fragments without decoding them: the pipeline
hands the encoded fragment to `from_encoded` (see `ENCODED_TRANSFORMS`); its output
is exactly as lossy as its source and is not marked as a new lossy step.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from dicompress import uids as uid
from dicompress.codecs._jxl_header import JXLHeader, read_header
from dicompress.codecs.registry import (Codec, Option, check_values_fit, register,
                                        register_transform, stored_bits)
from dicompress.codecs.search import PSNR_TARGET
from dicompress.codecs.search import bisect_knob, psnr
from dicompress.errors import CorruptPixelData, UnsupportedLayout, UnsupportedTransferSyntax
from dicompress.layout import FrameLayout

_KEPT_AS_IS = ("MONOCHROME1", "MONOCHROME2", "PALETTE COLOR", "RGB")
#: The JPEG XL JPEG Recompression rows of PS3.5 Table 8.2.15-1 (samples -> photometric).
_RECOMPRESSED_PHOTOMETRIC = {1: ("MONOCHROME2",), 3: ("YBR_FULL_422", "RGB")}
#: libjxl's distance range for lossy coding (0 is lossless, 25 the coarsest).
_DISTANCES = (0.05, 25.0)


def check_frame(header: JXLHeader, layout: FrameLayout, bits: int | None) -> None:
    """Refuse a frame whose codestream header disagrees with `layout` (before libjxl)."""
    if (header.width, header.height) != (layout.columns, layout.rows):
        raise CorruptPixelData(
            f"JPEG XL frame is {header.width} x {header.height}; the image is "
            f"{layout.columns} x {layout.rows} (Columns x Rows)"
        )
    if header.channels != layout.samples_per_pixel:
        raise CorruptPixelData(
            f"JPEG XL frame has {header.channels} channel(s); Samples per Pixel is "
            f"{layout.samples_per_pixel}"
        )
    if header.float_sample:
        raise CorruptPixelData("JPEG XL frame holds floating point samples; DICOM Pixel Data "
                               "holds integers")
    if bits is not None and header.bits_per_sample != bits:
        raise CorruptPixelData(
            f"JPEG XL frame has {header.bits_per_sample} bits per sample; Bits Stored is {bits}"
        )
    if header.bits_per_sample > layout.bytes_per_sample * 8:
        raise CorruptPixelData(
            f"JPEG XL frame has {header.bits_per_sample} bits per sample; Bits Allocated is "
            f"{layout.bits_allocated}"
        )


def _decode(data: bytes, layout: FrameLayout, bits: int | None, lossless: bool) -> np.ndarray:
    import imagecodecs

    header = read_header(data)
    check_frame(header, layout, bits)
    if lossless and header.xyb_encoded:
        raise CorruptPixelData("JPEG XL Lossless frame is coded in XYB, which loses: "
                               "it is not lossless")
    try:
        decoded = imagecodecs.jpegxl_decode(data[:header.length], numthreads=1)
    except Exception as exc:
        raise CorruptPixelData(f"JPEG XL frame cannot be decoded: {exc}") from exc
    if decoded.shape != layout.frame_shape:
        raise CorruptPixelData(f"JPEG XL frame decodes to {decoded.shape}, not {layout.frame_shape}")
    return decoded.astype(layout.dtype, copy=False)


@dataclass(frozen=True)
class JPEGXLCodec(Codec):
    """Samples coded by libjxl: lossless (modular) or lossy (VarDCT, XYB colour)."""

    def validate_options(self, options: dict[str, Any]) -> None:
        if options.get("ratio") is not None and options.get("psnr") is not None:
            raise UnsupportedTransferSyntax("give a target ratio or a target PSNR, not both")

    def check_layout(self, layout: FrameLayout) -> None:
        if layout.pixel_representation:
            raise UnsupportedLayout(
                "JPEG XL codes unsigned samples only (ISO/IEC 18181-1 has no signed integer "
                "samples, and PS3.5 8.2.15 wants Pixel Representation consistent with the "
                "codestream): for signed images use jpegls, j2k or htj2k"
            )
        if layout.bits_allocated not in (8, 16):
            raise UnsupportedLayout(
                f"{self.name} codes 8 or 16 bits allocated, not {layout.bits_allocated}"
            )
        if not 1 <= stored_bits(layout) <= 16:
            raise UnsupportedLayout(f"{self.name} codes 1 to 16 bits stored, not {stored_bits(layout)}")
        if layout.samples_per_pixel not in (1, 3):
            raise UnsupportedLayout(f"{self.name} codes 1 or 3 samples per pixel")
        photometric = layout.photometric_interpretation
        if photometric not in _KEPT_AS_IS:
            raise UnsupportedLayout(
                f"JPEG XL codes grey or RGB samples, not {photometric} (PS3.5 8.2.15); "
                "use jpegxl-jpeg for JPEG baseline sources, or j2k"
            )
        if not self.lossless and photometric == "PALETTE COLOR":
            raise UnsupportedLayout("PALETTE COLOR indices cannot be coded lossy")

    def output_attributes(self, layout: FrameLayout) -> dict[str, Any]:
        attrs: dict[str, Any] = {}
        if layout.samples_per_pixel > 1:
            attrs["PlanarConfiguration"] = 0
            if not self.lossless:
                # libjxl codes lossy colour in XYB (xyb_encoded in the header);
                # PS3.3 C.7.6.3.1.2 names that XYB.
                attrs["PhotometricInterpretation"] = "XYB"
        return attrs

    def encode_frame(self, arr: np.ndarray, layout: FrameLayout, threads: int = 1) -> bytes:
        check_values_fit(arr, layout, self.name)
        bits = stored_bits(layout)
        samples = np.ascontiguousarray(arr, np.uint8 if bits <= 8 else np.dtype("<u2"))
        if self.lossless:
            return self._encode(samples, bits, None, threads)
        target_psnr, ratio = self.option("psnr"), self.option("ratio")
        if target_psnr is not None:
            # knob = distance: quality falls as it grows.
            return bisect_knob(
                lambda distance: self._encode(samples, bits, distance, threads),
                lambda data: psnr(arr, self.decode_frame(data, layout), bits) >= target_psnr,
                *_DISTANCES,
            )
        if ratio is not None:
            # knob = 1 / distance: the finest coding whose output meets the ratio.
            return bisect_knob(
                lambda quality: self._encode(samples, bits, 1.0 / quality, threads),
                lambda data: arr.nbytes / len(data) >= ratio,
                1.0 / _DISTANCES[1], 1.0 / _DISTANCES[0],
            )
        return self._encode(samples, bits, float(self.option("distance")), threads)

    def _encode(self, samples: np.ndarray, bits: int, distance: float | None,
                threads: int) -> bytes:
        import imagecodecs

        return bytes(imagecodecs.jpegxl_encode(
            samples,
            lossless=distance is None,
            distance=distance,
            effort=int(self.option("effort")),
            bitspersample=bits,
            numthreads=threads,
        ))

    def decode_frame(self, data: bytes, layout: FrameLayout) -> np.ndarray:
        # Lossless frames must say Bits Stored; lossy ones may round it (libjxl keeps it).
        return _decode(data, layout, stored_bits(layout) if self.lossless else None,
                       lossless=self.lossless)


# -- JPEG recompression (.111) --------------------------------------------------------


def recompress_jpeg(fragment: bytes) -> bytes:
    """A JPEG baseline frame's bitstream as JPEG XL with its reconstruction data.

    The result is checked: libjxl must give back the JPEG bytes exactly (trailing
    padding after EOI aside, which the fragment may carry, PS3.5 A.4).
    """
    import imagecodecs

    jpeg = jpeg_bitstream(fragment)
    try:
        data = bytes(imagecodecs.jpegxl_encode_jpeg(jpeg))
    except Exception as exc:
        raise UnsupportedLayout(f"libjxl cannot recompress this JPEG frame: {exc}") from exc
    if reconstruct_jpeg(data) != jpeg:
        raise CorruptPixelData("JPEG XL recompression does not give the JPEG bitstream back")
    return data


def reconstruct_jpeg(data: bytes) -> bytes:
    """The JPEG bitstream a jpegxl-jpeg frame was made from, byte for byte."""
    import imagecodecs

    header = read_header(data)
    if not header.jpeg_reconstruction:
        raise CorruptPixelData("JPEG XL frame carries no JPEG reconstruction data (jbrd box)")
    try:
        return bytes(imagecodecs.jpegxl_decode_jpeg(data[:header.length], numthreads=1))
    except Exception as exc:
        raise CorruptPixelData(f"JPEG XL frame does not reconstruct a JPEG: {exc}") from exc


def jpeg_bitstream(fragment: bytes) -> bytes:
    """The JPEG bitstream of a frame: from SOI to its EOI, without trailing padding."""
    fragment = bytes(fragment)
    if fragment[:2] != b"\xff\xd8":
        raise CorruptPixelData("JPEG frame does not start with SOI (FF D8)")
    end = fragment.rstrip(b"\x00")
    if not end.endswith(b"\xff\xd9"):
        raise CorruptPixelData("JPEG frame does not end with EOI (FF D9)")
    return end


@dataclass(frozen=True)
class JPEGXLJPEGCodec(Codec):
    """JPEG baseline frames recompressed as they are (no decode, no new loss)."""

    def check_layout(self, layout: FrameLayout) -> None:
        if layout.pixel_representation or layout.bits_allocated != 8:
            raise UnsupportedLayout("jpegxl-jpeg recompresses 8-bit JPEG baseline frames only")
        allowed = _RECOMPRESSED_PHOTOMETRIC.get(layout.samples_per_pixel, ())
        if layout.photometric_interpretation not in allowed:
            raise UnsupportedLayout(
                f"jpegxl-jpeg carries {' or '.join(allowed) or 'nothing'} when Samples per "
                f"Pixel is {layout.samples_per_pixel} (PS3.5 Table 8.2.15-1), not "
                f"{layout.photometric_interpretation}"
            )

    def encode_frame(self, arr: np.ndarray, layout: FrameLayout, threads: int = 1) -> bytes:
        raise UnsupportedLayout(
            "jpegxl-jpeg recompresses JPEG baseline (.50) fragments as they are; decoded "
            "pixels cannot be turned back into the JPEG they came from"
        )

    def decode_frame(self, data: bytes, layout: FrameLayout) -> np.ndarray:
        """The pixels of the JPEG it reconstructs: libjpeg-turbo tells the JPEG's colour
        space from its markers (JFIF, Adobe), as pydicom's JPEG decoders do; YBR stays
        YBR (the 4:2:2 subsampling undone), RGB comes out RGB."""
        import imagecodecs

        jpeg = reconstruct_jpeg(data)
        colour = layout.samples_per_pixel == 3
        ybr = layout.photometric_interpretation.startswith("YBR")
        coded = "YCbCr" if ybr or _transformed(jpeg) else "RGB"
        try:
            decoded = imagecodecs.jpeg8_decode(
                jpeg, colorspace=coded if colour else None,
                outcolorspace=("YCbCr" if ybr else "RGB") if colour else None)
        except Exception as exc:
            raise CorruptPixelData(f"reconstructed JPEG frame cannot be decoded: {exc}") from exc
        return decoded.astype(layout.dtype, copy=False)


def _transformed(jpeg: bytes) -> bool:
    """Whether an RGB-declared JPEG's components are YCbCr all the same: a JFIF APP0
    says so, and an Adobe APP14 by its transform flag; without either they are RGB."""
    at = 2
    while at + 4 <= len(jpeg) and jpeg[at] == 0xFF:
        marker, length = jpeg[at + 1], int.from_bytes(jpeg[at + 2:at + 4], "big")
        body = jpeg[at + 4:at + 2 + length]
        if marker == 0xE0 and body.startswith(b"JFIF"):
            return True
        if marker == 0xEE and body.startswith(b"Adobe") and len(body) >= 12:
            return body[11] != 0
        if marker in (0xC0, 0xC1, 0xC2, 0xDA):
            break
        at += 2 + length
    return False


#: Fragment-to-fragment transforms between transfer syntaxes, no decoding (both ways:
#: a recompressed archive goes back to exactly the JPEG it was).
ENCODED_TRANSFORMS: dict[tuple[str, str], Callable[[bytes], bytes]] = {
    (uid.JPEGBaseline8Bit, uid.JPEGXLJPEGRecompression): recompress_jpeg,
    (uid.JPEGXLJPEGRecompression, uid.JPEGBaseline8Bit): reconstruct_jpeg,
}
for (_source, _target), _transform in ENCODED_TRANSFORMS.items():
    register_transform(_source, _target, _transform)


# Effort 1 is libjxl's fast lossless path: on the corpus CT it codes smaller than JPEG-LS
# at several times its speed; higher efforts gain 2-40 % at 20-300x the time
# (benchmarks/bench_jpegxl.py).
_EFFORT = "libjxl effort 1-10: higher is smaller and much slower"
_COLOUR = "#e377c2"
register(JPEGXLCodec(
    name="jpegxl", transfer_syntax=uid.JPEGXLLossless, order=50,
    description="JPEG XL lossless (libjxl); bit depth = Bits Stored",
    specs=(Option("effort", int, 1, low=1, high=10, help=_EFFORT),),
    value_option="effort", compare_values=(1, 7), plan_rank=4, plan_values=(1, 3),
    colour=_COLOUR,
))
register(JPEGXLCodec(
    name="jpegxl-lossy", transfer_syntax=uid.JPEGXL, lossless=False,
    lossy_method="ISO_18181_1", order=51,
    description="JPEG XL lossy, to a --distance, a --ratio or a --psnr (libjxl)",
    specs=(Option("effort", int, 7, low=1, high=10, help=_EFFORT),
           Option("distance", float, 1.0, low=_DISTANCES[0], high=_DISTANCES[1],
                  help="JPEG XL butteraugli distance (1.0: visually lossless for photos)"),
           Option("ratio", float, None, low=1.0, high=10000.0,
                  help="target compression ratio"),
           PSNR_TARGET),
    colour=_COLOUR,
))
# Lossless in that it adds no loss to its (lossy) source, whose lossy attributes are kept.
register(JPEGXLJPEGCodec(
    name="jpegxl-jpeg", transfer_syntax=uid.JPEGXLJPEGRecompression, order=52,
    encodes_pixels=False, compare_values=(), plan_rank=0,
    description="JPEG baseline frames recompressed by JPEG XL as they are (reversible)",
    colour=_COLOUR,
))
