"""pydicom pixel-data plugins backed by dicompress's native codecs."""

from __future__ import annotations

PLUGIN = "dicompress"


def register() -> None:
    """Add the dicompress plugins to pydicom's RLE encoder and decoder (idempotent).

    The decoder is put first, so ``ds.pixel_array`` uses it by default; the
    encoder is chosen with ``encoding_plugin="dicompress"`` (or is used when
    no plugin is named, as the first one tried).
    """
    from pydicom.pixels.decoders.base import RLELosslessDecoder
    from pydicom.pixels.encoders.base import RLELosslessEncoder

    for codec, module in (
        (RLELosslessDecoder, "dicompress.plugins.rle_decoder"),
        (RLELosslessEncoder, "dicompress.plugins.rle_encoder"),
    ):
        if PLUGIN in codec._available or PLUGIN in codec._unavailable:
            continue
        codec.add_plugin(PLUGIN, (module, "_encode_frame" if "encoder" in module else "_decode_frame"))
        # Tried first: pydicom walks its plugins in insertion order.
        codec._available = {PLUGIN: codec._available.pop(PLUGIN), **codec._available}
