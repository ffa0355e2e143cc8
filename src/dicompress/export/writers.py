"""Image files from display values (Pillow), with only non-identifying text."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, PngImagePlugin

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
    img = _resize(_image(arr), scale)
    buf = io.BytesIO()
    if fmt == "png":
        info = PngImagePlugin.PngInfo()
        for key, value in text.items():
            info.add_text(key, value)
        img.save(buf, format="PNG", pnginfo=info, optimize=True)
    elif fmt == "jpeg":
        if arr.dtype != np.uint8:
            raise ValueError("JPEG export is 8-bit")
        img.save(buf, format="JPEG", quality=quality, optimize=True)
    elif fmt == "tiff":
        img.save(buf, format="TIFF", compression="tiff_adobe_deflate")
    else:
        raise ValueError(f"unknown still format {fmt}")
    return buf.getvalue()


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
