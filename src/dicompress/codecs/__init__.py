"""Codecs: one module per codec family behind one interface, and the table of them
(registry.py). Third-party codecs register with `register` or the entry-point group
``dicompress.codecs``."""

from dicompress.codecs.registry import Codec, Option, available_codecs, get_codec, register

__all__ = ["Codec", "Option", "available_codecs", "get_codec", "register"]
