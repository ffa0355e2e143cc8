"""The codec interface and the registry of transfer-syntax targets.

Every target is a small `Codec` with its transfer syntax UID, its name, whether
it is lossless, the layouts it accepts and its options; `transcode` looks
codecs up here and never branches on their names.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from dicompress.errors import UnsupportedLayout, UnsupportedTransferSyntax
from dicompress.layout import FrameLayout


@dataclass(frozen=True)
class Codec:
    """One encapsulated transfer syntax we can write."""

    name: str
    transfer_syntax: str
    lossless: bool = True
    options: dict[str, Any] = field(default_factory=dict)

    def check_layout(self, layout: FrameLayout) -> None:
        """Raise UnsupportedLayout if frames of `layout` cannot be encoded."""

    def encode_frame(self, arr: np.ndarray, layout: FrameLayout) -> bytes:
        raise NotImplementedError

    def decode_frame(self, data: bytes, layout: FrameLayout) -> np.ndarray:
        raise NotImplementedError

    def output_attributes(self, layout: FrameLayout) -> dict[str, Any]:
        """Image Pixel attributes the encoded data implies (keyword -> value)."""
        return {}

    def get_config(self) -> dict[str, Any]:
        return {"name": self.name, **self.options}


_REGISTRY: dict[str, Codec] = {}


def register(codec: Codec) -> Codec:
    _REGISTRY[codec.name] = codec
    return codec


def get_codec(name_or_uid: str) -> Codec:
    """The codec called `name_or_uid` (``"rle"``) or writing that transfer syntax UID."""
    _load_builtin()
    key = name_or_uid.strip()
    if key.lower() in _REGISTRY:
        return _REGISTRY[key.lower()]
    for codec in _REGISTRY.values():
        if codec.transfer_syntax == key:
            return codec
    names = ", ".join(sorted(_REGISTRY))
    raise UnsupportedTransferSyntax(f"unknown target {name_or_uid!r}; known targets: {names}")


def available_codecs() -> list[Codec]:
    _load_builtin()
    return [c for _, c in sorted(_REGISTRY.items())]


def _load_builtin() -> None:
    if not _REGISTRY:
        from dicompress.codecs import rle  # noqa: F401  (registers itself)


__all__ = ["Codec", "register", "get_codec", "available_codecs", "UnsupportedLayout"]
