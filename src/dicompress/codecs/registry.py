"""The codec interface and the registry of transfer-syntax targets.

Every target is a small `Codec` with its transfer syntax UID, its name, whether
it is lossless, the layouts it accepts and its options; `transcode` looks
codecs up here and never branches on their names.

A codec is immutable: ``get_codec("j2k-lossy").configure(ratio=10)`` returns
a new codec with that option set and checked.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from dicompress.errors import UnsupportedLayout, UnsupportedTransferSyntax
from dicompress.layout import FrameLayout


@dataclass(frozen=True)
class Codec:
    """One transfer syntax we can write."""

    name: str
    transfer_syntax: str
    lossless: bool = True
    #: Pixel data as fragments (PS3.5 A.4) rather than native (PS3.5 8.1).
    encapsulated: bool = True
    #: Lossy Image Compression Method (0028,2114) term, for lossy codecs.
    lossy_method: str = ""
    #: Other transfer syntaxes the codec picks for some layouts (JPEG 12-bit).
    also_writes: tuple[str, ...] = ()
    options: dict[str, Any] = field(default_factory=dict)
    #: Options ``configure`` accepts, with their defaults.
    defaults: dict[str, Any] = field(default_factory=dict, repr=False)

    # -- options -----------------------------------------------------------------
    def configure(self, **options: Any) -> "Codec":
        """A copy with `options` set (None values ignored); unknown options raise."""
        options = {k: v for k, v in options.items() if v is not None}
        unknown = sorted(set(options) - set(self.defaults))
        if unknown:
            accepted = ", ".join(sorted(self.defaults)) or "none"
            raise UnsupportedTransferSyntax(
                f"{self.name} has no option {', '.join(unknown)} (accepted: {accepted})"
            )
        merged = {**self.options, **options}
        self.validate_options(merged)
        return dataclasses.replace(self, options=merged)

    def option(self, key: str) -> Any:
        return self.options.get(key, self.defaults.get(key))

    def validate_options(self, options: dict[str, Any]) -> None:
        """Raise UnsupportedTransferSyntax for option values out of range."""

    def get_config(self) -> dict[str, Any]:
        return {"name": self.name, "transfer_syntax": self.transfer_syntax,
                **{k: self.option(k) for k in sorted(self.defaults)}}

    # -- what a layout becomes ---------------------------------------------------
    def check_layout(self, layout: FrameLayout) -> None:
        """Raise UnsupportedLayout if frames of `layout` cannot be encoded."""

    def transfer_syntax_for(self, layout: FrameLayout) -> str:
        """The transfer syntax UID frames of `layout` are written in."""
        return self.transfer_syntax

    def output_attributes(self, layout: FrameLayout) -> dict[str, Any]:
        """Image Pixel attributes the encoded data implies (keyword -> value)."""
        return {}

    # -- frames ------------------------------------------------------------------
    def encode_frame(self, arr: np.ndarray, layout: FrameLayout, threads: int = 1) -> bytes:
        """Encode one frame (rows x columns [x samples], interleaved).

        `threads` is how many threads the codec may use inside this one frame
        (the caller runs frames in parallel when a file has many).
        """
        raise NotImplementedError

    def decode_frame(self, data: bytes, layout: FrameLayout) -> np.ndarray:
        """Decode one encoded frame to the array `encode_frame` was given."""
        raise NotImplementedError

    # -- encoded frames, not decoded -----------------------------------------------
    def from_encoded(self, fragment: bytes, source_syntax: str, layout: FrameLayout) -> bytes | None:
        """One frame encoded in `source_syntax` turned into this codec's encoding without
        decoding it (a JPEG recompressed as JPEG XL, and back), or None: decode instead.
        A transform adds no loss: the output keeps the source's lossy attributes."""
        transform = _TRANSFORMS.get((str(source_syntax), self.transfer_syntax))
        return None if transform is None else transform(fragment)

    def takes_encoded(self, source_syntax: str) -> bool:
        """Whether frames in `source_syntax` are transformed by `from_encoded`."""
        return (str(source_syntax), self.transfer_syntax) in _TRANSFORMS

    @property
    def searches_quality(self) -> bool:
        """True when frames are encoded to a target PSNR (each frame searched)."""
        return self.option("psnr") is not None


_REGISTRY: dict[str, Codec] = {}
#: Fragment-to-fragment transforms, no decoding: (source syntax, target syntax) -> the
#: function of one frame's bytes. Codec modules register theirs (`register_transform`).
_TRANSFORMS: dict[tuple[str, str], Callable[[bytes], bytes]] = {}


def register_transform(source_syntax: str, target_syntax: str,
                       transform: Callable[[bytes], bytes]) -> None:
    """Frames in `source_syntax` become frames in `target_syntax` by `transform(fragment)`,
    without decoding (see `Codec.from_encoded`)."""
    _TRANSFORMS[(str(source_syntax), str(target_syntax))] = transform


def register(codec: Codec) -> Codec:
    _REGISTRY[codec.name] = codec
    return codec


def get_codec(name_or_uid: str | Codec, **options: Any) -> Codec:
    """The codec called `name_or_uid` (``"rle"``) or writing that transfer syntax UID,
    configured with `options`."""
    if isinstance(name_or_uid, Codec):
        return name_or_uid.configure(**options) if options else name_or_uid
    _load_builtin()
    key = name_or_uid.strip()
    codec = _REGISTRY.get(key.lower())
    if codec is None:
        codec = next((c for c in _REGISTRY.values()
                      if key == c.transfer_syntax or key in c.also_writes), None)
    if codec is None:
        names = ", ".join(sorted(_REGISTRY))
        raise UnsupportedTransferSyntax(f"unknown target {name_or_uid!r}; known targets: {names}")
    return codec.configure(**options) if options else codec


def available_codecs() -> list[Codec]:
    _load_builtin()
    return [c for _, c in sorted(_REGISTRY.items())]


def _load_builtin() -> None:
    if not _REGISTRY:
        # Each module registers its codecs on import.
        from dicompress.codecs import deflate_frames, jpeg, jpeg2000, jpegls, jpegxl, native, rle  # noqa: F401,E501


def check_range(options: dict[str, Any], key: str, low: float, high: float) -> None:
    value = options.get(key)
    if value is not None and not (low <= float(value) <= high):
        raise UnsupportedTransferSyntax(f"{key} must be between {low} and {high}, not {value}")


def stored_bits(layout: FrameLayout) -> int:
    return layout.bits_stored or layout.bits_allocated


def check_values_fit(arr: np.ndarray, layout: FrameLayout, codec: str) -> None:
    """Codecs that code Bits Stored bits cannot keep values beyond them."""
    bits = stored_bits(layout)
    if bits >= arr.dtype.itemsize * 8:
        return
    if layout.pixel_representation:
        low, high = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    else:
        low, high = 0, (1 << bits) - 1
    if arr.size and (arr.min() < low or arr.max() > high):
        raise UnsupportedLayout(
            f"pixel values lie outside the {bits} bits of Bits Stored "
            f"({int(arr.min())}..{int(arr.max())}); {codec} codes only those bits, so "
            "they would be lost: use rle or explicit, which keep every bit"
        )


__all__ = ["Codec", "register", "register_transform", "get_codec", "available_codecs", "check_range",
           "check_values_fit", "stored_bits"]
