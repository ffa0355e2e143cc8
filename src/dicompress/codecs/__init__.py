"""Codecs: one module per codec family behind one interface (see registry.py)."""

from dicompress.codecs.registry import Codec, available_codecs, get_codec

__all__ = ["Codec", "available_codecs", "get_codec"]
