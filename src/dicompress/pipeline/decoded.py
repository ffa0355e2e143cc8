"""Decoded frames as pydicom gives them: their layout and the Image Pixel attributes that
describe them (full resolution, colour transforms undone), and the US colour rule: which
YBR_FULL frames are written as RGB (PS3.3 C.7.6.3.1.2, C.8.5.6.1.16)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import numpy as np

from dicompress.layout import FrameLayout

if TYPE_CHECKING:
    from pydicom.dataset import Dataset

    from dicompress.codecs import Codec


_DECODED_PHOTOMETRIC = {
    "YBR_FULL_422": "YBR_FULL",  # pydicom removes the 4:2:2 subsampling
    "YBR_ICT": "RGB",
    "YBR_RCT": "RGB",
    "XYB": "RGB",  # JPEG XL decoders give RGB (PS3.3 C.7.6.3.1.2)
}


def _image_attributes(ds: Dataset, meta: Dataset, arr: np.ndarray) -> dict[str, Any]:
    """The Image Pixel attributes of the frames as decoded: pydicom's ds_out where it
    filled them in, else the source's."""
    attrs = {}
    for keyword in ("PhotometricInterpretation", "BitsAllocated", "BitsStored", "HighBit",
                    "PixelRepresentation", "SamplesPerPixel", "PlanarConfiguration"):
        for source in (meta, ds):
            if keyword in source:
                attrs[keyword] = source[keyword].value
                break
    # Decoded frames are full resolution, and J2K decoders undo the colour
    # transform: the photometric interpretation of what we hold says so.
    photometric = attrs.get("PhotometricInterpretation")
    if photometric:
        attrs["PhotometricInterpretation"] = _DECODED_PHOTOMETRIC.get(str(photometric), photometric)
    bits = arr.dtype.itemsize * 8
    if attrs.get("BitsAllocated", bits) != 1 and attrs.get("BitsAllocated") != bits:
        attrs["BitsAllocated"] = bits
    return attrs


def decoded_layout(ds: Dataset, declared: FrameLayout, meta: Dataset,
                   first: np.ndarray) -> tuple[FrameLayout, dict[str, Any]]:
    """The layout of the frames as decoded (frame 1 tells the sample type) and the
    Image Pixel attributes that describe them."""
    attrs = _image_attributes(ds, meta, first)
    layout = FrameLayout(
        rows=first.shape[0], columns=first.shape[1],
        samples_per_pixel=first.shape[2] if first.ndim == 3 else 1,
        bits_allocated=1 if declared.bits_allocated == 1 else first.dtype.itemsize * 8,
        bits_stored=int(attrs.get("BitsStored") or first.dtype.itemsize * 8),
        pixel_representation=1 if first.dtype.kind == "i" else 0,
        photometric_interpretation=str(attrs.get("PhotometricInterpretation", "")),
        number_of_frames=declared.number_of_frames,
    )
    return layout, attrs


#: US Image Storage and US Multi-frame Image Storage (and their retired versions): the
#: objects that carry the US Image Module (PS3.3 C.8.5.6).
US_IMAGE_SOP_CLASSES = frozenset({
    "1.2.840.10008.5.1.4.1.1.6.1", "1.2.840.10008.5.1.4.1.1.3.1",
    "1.2.840.10008.5.1.4.1.1.6", "1.2.840.10008.5.1.4.1.1.3",
})


def us_colour(ds: Dataset) -> str | None:
    """How the YCbCr frames of a US image reach a target: "decoded" (pydicom decodes a
    lossy JPEG's YBR_FULL_422 to YBR_FULL: a decoder's output), "exact" (YBR_FULL samples
    as stored, native or RLE); None for any other object or colour. What
    `us_colour_as_rgb` decides by."""
    if str(ds.get("SOPClassUID", "")) not in US_IMAGE_SOP_CLASSES:
        return None
    return {"YBR_FULL_422": "decoded", "YBR_FULL": "exact"}.get(
        str(ds.get("PhotometricInterpretation", "")))


def us_colour_as_rgb(kind: str | None, layout: FrameLayout, codec: Codec) -> bool:
    """Whether the decoded frames of a US image (`kind`: `us_colour` of its header) are
    to be written as RGB by `codec`.

    PS3.3 C.7.6.3.1.2 (YBR_FULL) and C.8.5.6.1.16: in the US Image Module, YBR_FULL
    requires Planar Configuration 1, i.e. the colour-by-plane layout that RLE codes
    (PS3.5 G.2); dciodvfy accepts YBR_FULL in a US image under RLE only. Frames that pydicom
    decoded from YBR_FULL_422 (a lossy JPEG: the YCbCr values are a decoder's output, with
    nothing exact to keep) are therefore written as RGB, converted as a JPEG decoder does
    (DCMTK's dcmdjpeg does the same), unless the target codes colour by plane. Exact
    YBR_FULL samples are kept by lossless targets (the conversion rounds: it would not be
    lossless; native targets write them by plane, `us_planar_configuration`) and go as RGB
    to a lossy target whose output would still say YBR_FULL (J2K then codes them with its
    colour transform, YBR_ICT; JPEG baseline codes YCbCr itself). `compare` measures each
    choice on the frames its transcode would code (compare/measure.py).
    """
    if not (kind and layout.photometric_interpretation == "YBR_FULL"
            and layout.samples_per_pixel == 3 and layout.bits_allocated == 8):
        return False
    attrs = codec.output_attributes(layout)
    if attrs.get("PlanarConfiguration") == 1:
        return False
    return kind == "decoded" or (
        not codec.lossless and attrs.get("PhotometricInterpretation", "YBR_FULL") == "YBR_FULL")


def us_planar_configuration(ds: Dataset, layout: FrameLayout) -> FrameLayout:
    """The layout to write the frames of `ds` in: colour-by-plane (Planar Configuration
    1) for YBR_FULL in a US image, as the US Image Module requires (PS3.3 C.8.5.6.1.16,
    C.7.6.3.1.2), else as it is.

    Codecs whose samples are stored as they are (native, encapsulated uncompressed;
    PS3.3 C.7.6.3.1.3 allows either order) write the samples in this order, a lossless
    reordering; RLE codes by plane anyway (PS3.5 G.2); JPEG-LS and JPEG 2000 code the
    components of a pixel together and say 0 (PS3.5 8.2.3, 8.2.4, and PS3.3 C.7.6.3.1.3:
    with such a syntax the value is the one PS3.5 gives), so their lossless outputs of an
    exact YBR_FULL US image keep 0 (docs/transcoding.md)."""
    if (us_colour(ds) is not None and layout.samples_per_pixel == 3
            and layout.photometric_interpretation == "YBR_FULL"):
        return dataclasses.replace(layout, planar_configuration=1)
    return layout


def as_rgb(layout: FrameLayout, attrs: dict[str, Any], first: np.ndarray,
           frames: Iterator[np.ndarray]
           ) -> tuple[FrameLayout, dict[str, Any], np.ndarray, Iterator[np.ndarray]]:
    """YBR_FULL frames converted to RGB (pydicom's conversion, PS3.3 C.7.6.3.1.2)."""
    from pydicom.pixels import convert_color_space

    def convert(arr: np.ndarray) -> np.ndarray:
        return convert_color_space(arr, "YBR_FULL", "RGB")

    return (dataclasses.replace(layout, photometric_interpretation="RGB"),
            {**attrs, "PhotometricInterpretation": "RGB"}, convert(first), map(convert, frames))
