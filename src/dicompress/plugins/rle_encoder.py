"""pydicom encoding plugin: RLE Lossless with dicompress's native encoder."""

from __future__ import annotations

from pydicom.uid import RLELossless

from dicompress import _rle

ENCODER_DEPENDENCIES = {RLELossless: ("numpy",)}


def is_available(uid: str) -> bool:
    return uid == RLELossless


def _encode_frame(src: bytes, runner) -> bytes:
    """Encode one frame of little-endian samples handed over by pydicom.

    pydicom gives the samples in the smallest container of Bits Stored
    (e.g. 1 byte for Bits Stored 8 in Bits Allocated 16); the segments follow
    Bits Allocated, so narrower samples are widened first (sign-extended when
    Pixel Representation is 1).
    """
    if runner.get_option("byteorder", "<") != "<":
        raise ValueError("only little-endian input is supported")
    rows, columns, samples = runner.rows, runner.columns, runner.samples_per_pixel
    bits = runner.bits_allocated
    if bits == 1 or bits % 8:
        raise ValueError(f"RLE cannot carry {bits} bits allocated")
    width = bits // 8
    pixels = rows * columns * samples
    have = len(src) // pixels if pixels else 0
    planar = samples > 1 and runner.planar_configuration == 1 and not runner.is_array
    if have != width:
        import numpy as np

        signed = runner.pixel_representation == 1
        arr = np.frombuffer(src, dtype=f"<{'i' if signed else 'u'}{have}")
        src = arr.astype(f"<{'i' if signed else 'u'}{width}").tobytes()
    return _rle.encode(src, rows, columns, samples, width, planar)
