"""pydicom decoding plugin: Deflated Image Frame Compression (1.2.840.10008.1.2.8.1)."""

from __future__ import annotations

import numpy as np

from dicompress import uids
from dicompress.plugins._new_syntaxes import layout_of

DECODER_DEPENDENCIES = {uids.DeflatedImageFrameCompression: ("numpy",)}


def is_available(uid: str) -> bool:
    return uid == uids.DeflatedImageFrameCompression


def _decode_frame(src: bytes, runner) -> np.ndarray:
    """One frame as native little-endian samples, interleaved; 1-bit frames one pixel
    a byte (as pydicom wants them from a decoder)."""
    from dicompress.codecs import get_codec

    frame = get_codec(str(runner.transfer_syntax)).decode_frame(src, layout_of(runner))
    runner.set_option("planar_configuration", 0)
    return frame
