"""Decoded frames as pydicom gives them: their layout and the Image Pixel attributes that
describe them (full resolution, colour transforms undone), and the US colour rule: which
YBR_FULL frames are written as RGB (PS3.3 C.7.6.3.1.2, C.8.5.6.1.16)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import numpy as np

from dicompress.layout import FrameLayout

if TYPE_CHECKING:
    from pydicom.dataset import Dataset


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


def decodes_to_us_ycbcr(ds: Dataset) -> bool:
    """Whether `ds` is a US image whose frames pydicom decodes from YBR_FULL_422 (a lossy
    JPEG's YCbCr) to YBR_FULL: the frames `us_colour_as_rgb` is about."""
    return (str(ds.get("SOPClassUID", "")) in US_IMAGE_SOP_CLASSES
            and str(ds.get("PhotometricInterpretation", "")) == "YBR_FULL_422")


def us_colour_as_rgb(us_ycbcr: bool, layout: FrameLayout,
                     planar_configuration: int | None) -> bool:
    """Whether the decoded frames of a US image (`us_ycbcr`: `decodes_to_us_ycbcr` of its
    header) are to be written as RGB by a target writing `planar_configuration`.

    PS3.3 C.7.6.3.1.2 (YBR_FULL) and C.8.5.6.1.16: in the US Image Module, YBR_FULL
    requires Planar Configuration 1, i.e. the colour-by-plane layout that RLE codes
    (PS3.5 G.2); dciodvfy accepts YBR_FULL in a US image under RLE only. Frames that pydicom
    decoded from YBR_FULL_422 (a lossy JPEG: the YCbCr values are a decoder's output, with
    nothing exact to keep) are therefore written as RGB, converted as a JPEG decoder does
    (DCMTK's dcmdjpeg does the same), unless the target codes colour by plane
    (`planar_configuration` 1, the target's). Frames that are exact YBR_FULL samples are
    left as they are: converting them would lose their exactness. `compare` measures
    each choice on the frames its transcode would code (compare/measure.py).
    """
    return (us_ycbcr and layout.photometric_interpretation == "YBR_FULL"
            and layout.samples_per_pixel == 3 and layout.bits_allocated == 8
            and planar_configuration != 1)


def as_rgb(layout: FrameLayout, attrs: dict[str, Any], first: np.ndarray,
           frames: Iterator[np.ndarray]
           ) -> tuple[FrameLayout, dict[str, Any], np.ndarray, Iterator[np.ndarray]]:
    """YBR_FULL frames converted to RGB (pydicom's conversion, PS3.3 C.7.6.3.1.2)."""
    import dataclasses

    from pydicom.pixels import convert_color_space

    def convert(arr: np.ndarray) -> np.ndarray:
        return convert_color_space(arr, "YBR_FULL", "RGB")

    return (dataclasses.replace(layout, photometric_interpretation="RGB"),
            {**attrs, "PhotometricInterpretation": "RGB"}, convert(first), map(convert, frames))
