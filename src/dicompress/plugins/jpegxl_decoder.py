"""pydicom decoding plugin: JPEG XL (.110, .111, .112) with dicompress's codecs."""

from __future__ import annotations

import numpy as np

from dicompress import uids
from dicompress.plugins._new_syntaxes import layout_of

DECODER_DEPENDENCIES = {
    uids.JPEGXLLossless: ("numpy", "imagecodecs"),
    uids.JPEGXLJPEGRecompression: ("numpy", "imagecodecs"),
    uids.JPEGXL: ("numpy", "imagecodecs"),
}


def is_available(uid: str) -> bool:
    if uid not in DECODER_DEPENDENCIES:
        return False
    try:
        import imagecodecs

        return bool(imagecodecs.JPEGXL.available)
    except ImportError:
        return False


def _decode_frame(src: bytes, runner) -> np.ndarray:
    """One frame, samples interleaved (Planar Configuration 0), in the container of
    Bits Allocated; refused before libjxl sees it if its header disagrees."""
    from dicompress.codecs import get_codec

    frame = get_codec(str(runner.transfer_syntax)).decode_frame(src, layout_of(runner))
    runner.set_option("planar_configuration", 0)
    return frame
