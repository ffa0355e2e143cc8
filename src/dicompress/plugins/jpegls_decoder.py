"""pydicom decoding plugin: JPEG-LS lossless and near-lossless (PS3.5 A.4.3) through the
dicompress codec (CharLS).

What it adds to pydicom's own JPEG-LS plugins: frames come back in a writable buffer.
pydicom 3.0 sign-corrects JPEG-LS frames in place, which fails on the read-only bytes
GDCM gives (signed images with Bits Stored below Bits Allocated: "output array is
read-only"); dicompress's own reading names this plugin for JPEG-LS.
"""

from __future__ import annotations

from dicompress import uids
from dicompress.plugins._new_syntaxes import layout_of

DECODER_DEPENDENCIES = {uids.JPEGLSLossless: ("numpy", "imagecodecs>=2024.1.1"),
                        uids.JPEGLSNearLossless: ("numpy", "imagecodecs>=2024.1.1")}


def is_available(uid: str) -> bool:
    if uid not in DECODER_DEPENDENCIES:
        return False
    try:
        from dicompress.codecs import _charls

        return _charls.library() is not None
    except Exception:  # noqa: BLE001 - no CharLS here: pydicom lists what is missing
        return False


def _decode_frame(src: bytes, runner) -> bytearray:
    """One frame in the Bits Allocated container, sign-extended from the JPEG-LS
    precision when Pixel Representation is 1; colour as it was interleaved."""
    from pydicom.pixels.utils import _get_jpg_parameters

    from dicompress.codecs import get_codec

    frame = get_codec(str(runner.transfer_syntax)).decode_frame(src, layout_of(runner))
    if runner.samples_per_pixel > 1:  # ILV 0 (PS3.5 8.2.3): component by component
        planar = _get_jpg_parameters(src).get("interleave_mode", 1) == 0
        runner.set_option("planar_configuration", int(planar))
    return bytearray(frame.tobytes())
