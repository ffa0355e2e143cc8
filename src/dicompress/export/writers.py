"""Image files from display values (PNG, TIFF: our writers and libdeflate; JPEG: libjpeg-turbo;
GIF and downscaling: Pillow), with only non-identifying text."""

from __future__ import annotations

import io
import struct
import zlib

import imagecodecs
import numpy as np
from PIL import Image

FORMATS = {"png": ".png", "jpeg": ".jpg", "tiff": ".tif", "gif": ".gif"}


def _image(arr: np.ndarray) -> Image.Image:
    if arr.dtype == np.uint16:
        if arr.ndim != 2:
            raise ValueError("16-bit export is grayscale")
        return Image.fromarray(np.ascontiguousarray(arr, dtype="<u2"))  # mode I;16
    if arr.ndim == 2:
        return Image.fromarray(arr, mode="L")
    return Image.fromarray(np.ascontiguousarray(arr), mode="RGB")


def encode_still(arr: np.ndarray, fmt: str, *, text: dict[str, str], quality: int = 90,
                 scale: float = 1.0) -> bytes:
    """One picture as PNG, JPEG or TIFF bytes; `scale` < 1 downsizes (Lanczos)."""
    if fmt == "png":
        return encode_png(arr if scale >= 1.0 else np.asarray(_resize(_image(arr), scale)), text)
    if fmt not in ("jpeg", "tiff"):
        raise ValueError(f"unknown still format {fmt}")
    image = arr if scale >= 1.0 else np.asarray(_resize(_image(arr), scale))
    return encode_jpeg(image, quality) if fmt == "jpeg" else encode_tiff(image)


def encode_jpeg(arr: np.ndarray, quality: int = 90) -> bytes:
    """A baseline JFIF JPEG of an 8-bit grayscale or RGB image, by libjpeg-turbo
    (imagecodecs), colour subsampled 4:2:0.

    Huffman tables are the standard ones (no optimize pass): on 200 CT slices windowed to
    8 bits the optimised tables saved 2.4 % and took 2.7x the time
    (benchmarks/bench_export.py, group jpeg-encoders). The bytes are those Pillow writes
    at the same quality.
    """
    if arr.dtype != np.uint8 or arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] != 3):
        raise ValueError(f"JPEG export takes 8-bit grayscale or RGB, not {arr.dtype} {arr.shape}")
    colour = arr.ndim == 3
    return bytes(imagecodecs.jpeg8_encode(
        np.ascontiguousarray(arr), level=quality,
        colorspace="RGB" if colour else "GRAYSCALE",
        outcolorspace="YCbCr" if colour else "GRAYSCALE",
        subsampling="420" if colour else None))


#: libdeflate's level for PNG, chosen by measurement (benchmarks/bench_export.py, groups
#: png-encoders and png-levels, 200 CT slices windowed to 8 bits): "up" filtered rows at
#: level 1 are 3.7 % larger than Pillow's PNG at its default level (zlib 6, adaptive
#: filters) in a fifth of its time; level 6 is 0.7 % smaller than level 1 and takes
#: 1.15x its time, levels 2-4 are larger than 1; Pillow's optimize=True is 6x slower
#: than its default; the Sub and Average filters are larger than Up at every level.
PNG_LEVEL = 1
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _chunk(kind: bytes, data: bytes) -> bytes:
    """A PNG chunk: length, type, data, CRC-32 of type and data (PNG spec 5.3)."""
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(data, zlib.crc32(kind)))


def _text_chunk(key: str, value: str) -> bytes:
    """tEXt when Latin-1 carries the text, else iTXt in UTF-8 (PNG spec 11.3.4)."""
    keyword = key.encode("latin-1", "replace")[:79]
    try:
        return _chunk(b"tEXt", keyword + b"\0" + value.encode("latin-1"))
    except UnicodeEncodeError:
        return _chunk(b"iTXt", keyword + b"\0\0\0\0\0" + value.encode("utf-8"))


def _geometry(arr: np.ndarray, fmt: str) -> tuple[int, int, int, int]:
    """(rows, columns, samples, bits) of a picture the PNG and TIFF writers take."""
    if arr.dtype not in (np.uint8, np.uint16) or arr.ndim not in (2, 3) or (
            arr.ndim == 3 and (arr.shape[2] != 3 or arr.dtype != np.uint8)):
        raise ValueError(f"{fmt} export takes 8-bit grayscale or RGB, or 16-bit grayscale, "
                         f"not {arr.dtype} {arr.shape}")
    return arr.shape[0], arr.shape[1], 3 if arr.ndim == 3 else 1, arr.dtype.itemsize * 8


def encode_png(arr: np.ndarray, text: dict[str, str] | None = None) -> bytes:
    """A PNG of an 8-bit grayscale or RGB, or a 16-bit grayscale image.

    Every row is written with the "Up" filter (the difference from the row above, byte by
    byte, PNG spec 9.2) and the rows deflated by libdeflate (imagecodecs) at PNG_LEVEL.
    """
    rows, columns, samples, bits = _geometry(arr, "PNG")
    colour_type, depth = (2 if samples == 3 else 0), bits
    raw = np.ascontiguousarray(arr, dtype=">u2" if depth == 16 else np.uint8)
    line = raw.view(np.uint8).reshape(rows, -1)  # samples big-endian (PNG spec 7.1)
    filtered = np.empty((rows, line.shape[1] + 1), np.uint8)
    filtered[:, 0] = 2  # filter type Up
    filtered[0, 1:] = line[0]
    np.subtract(line[1:], line[:-1], out=filtered[1:, 1:])  # modulo 256
    header = struct.pack(">IIBBBBB", columns, rows, depth, colour_type, 0, 0, 0)
    parts = [_PNG_SIGNATURE, _chunk(b"IHDR", header)]
    parts += [_text_chunk(k, v) for k, v in (text or {}).items()]
    parts += [_chunk(b"IDAT", bytes(imagecodecs.deflate_encode(filtered, level=PNG_LEVEL))),
              _chunk(b"IEND", b"")]
    return b"".join(parts)


#: libdeflate's level for TIFF, chosen by measurement (benchmarks/bench_export.py, group
#: tiff-levels, 200 CT slices windowed to 8 bits, Predictor 2): level 1 is 0.5 % larger
#: than level 6 in 70 % of its time, and 5 % smaller than Pillow's Adobe Deflate TIFF
#: (zlib level 6, no predictor); levels 2-4 are larger than 1.
TIFF_LEVEL = 1
#: TIFF 6.0 tag numbers and field types (TIFF 6.0 section 2, "Image File Directory").
_SHORT, _LONG = 3, 4
_TIFF_DEFLATE, _TIFF_HORIZONTAL_DIFFERENCING = 8, 2  # Compression (Adobe), Predictor


def encode_tiff(arr: np.ndarray) -> bytes:
    """A little-endian baseline TIFF of an 8-bit grayscale or RGB, or a 16-bit grayscale
    image: one strip, rows predicted from the sample to the left (Predictor 2, TIFF 6.0
    section 14) and deflated by libdeflate at TIFF_LEVEL (Compression 8, Adobe Deflate).
    """
    rows, columns, samples, bits = _geometry(arr, "TIFF")
    image = np.ascontiguousarray(arr, dtype="<u2" if bits == 16 else np.uint8)
    predicted = image.copy()
    np.subtract(image[:, 1:], image[:, :-1], out=predicted[:, 1:])  # modulo 2**bits
    strip = bytes(imagecodecs.deflate_encode(predicted, level=TIFF_LEVEL))
    entries = 11
    ifd_at = 8 + len(strip) + (len(strip) & 1)  # the IFD starts on a word boundary
    extra_at = ifd_at + 2 + 12 * entries + 4
    bits_value = (struct.pack("<HHHH", bits, bits, bits, 0) if samples == 3 else b"")
    tags = [
        (256, _LONG, 1, columns), (257, _LONG, 1, rows),
        (258, _SHORT, samples, extra_at if samples == 3 else bits),
        (259, _SHORT, 1, _TIFF_DEFLATE), (262, _SHORT, 1, 2 if samples == 3 else 1),
        (273, _LONG, 1, 8), (277, _SHORT, 1, samples), (278, _LONG, 1, rows),
        (279, _LONG, 1, len(strip)), (284, _SHORT, 1, 1),
        (317, _SHORT, 1, _TIFF_HORIZONTAL_DIFFERENCING),
    ]
    assert len(tags) == entries
    ifd = struct.pack("<H", entries) + b"".join(
        struct.pack("<HHI", tag, kind, count)
        + (struct.pack("<HH", value, 0) if kind == _SHORT and count == 1 else struct.pack("<I", value))
        for tag, kind, count, value in tags) + struct.pack("<I", 0)
    return (b"II*\0" + struct.pack("<I", ifd_at) + strip + b"\0" * (len(strip) & 1) + ifd
            + bits_value)


def encode_gif(frames: list[np.ndarray], *, duration_ms: int, scale: float = 1.0) -> bytes:
    """An animated GIF (loops forever); 8-bit frames, colour quantised per frame."""
    images = []
    for arr in frames:
        if arr.dtype != np.uint8:
            raise ValueError("GIF export is 8-bit")
        img = _resize(_image(arr), scale)
        images.append(img.convert("P", palette=Image.Palette.ADAPTIVE) if img.mode == "RGB" else img)
    buf = io.BytesIO()
    images[0].save(buf, format="GIF", save_all=True, append_images=images[1:],
                   duration=max(20, int(duration_ms)), loop=0, optimize=False)
    return buf.getvalue()


def _resize(img: Image.Image, scale: float) -> Image.Image:
    if scale >= 1.0:
        return img
    size = (max(1, round(img.width * scale)), max(1, round(img.height * scale)))
    if img.mode == "I;16":
        return img.resize(size, Image.Resampling.NEAREST)
    return img.resize(size, Image.Resampling.LANCZOS)
