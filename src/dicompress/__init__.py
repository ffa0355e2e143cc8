"""dicompress: DICOM compression and transcoding with a native core.

The Python API (docs/python.md):

* `compress` / `decompress`: a pydicom Dataset in, a new Dataset out;
* `transcode_file` (with `TranscodeOptions`, giving a `TranscodeResult`) and
  `transcode_many`: files and trees;
* `iter_frames`: a file's frames as decoded; `window` and `render`: display values;
* the codec table: `get_codec`, `available_codecs`, `Codec`;
* the errors: `DicompressError` and its subclasses.

``import dicompress`` stays cheap (the CLI starts with it): it imports neither numpy
nor pydicom; the names above load their modules when first used. When pydicom is
imported (before or after), the dicompress pixel-data plugins are added to its decoders
and encoders, after pydicom's own: ``ds.compress(JPEG2000Lossless,
encoding_plugin="dicompress")`` works, and pydicom's choice when no plugin is named is
unchanged (`dicompress.plugins.register`).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from dicompress.errors import (
    CorruptPixelData,
    DicompressError,
    InvalidDicomFile,
    NotAnImage,
    NotDicom,
    StorageError,
    UnsupportedLayout,
    UnsupportedTransferSyntax,
    UsageError,
    VerificationFailed,
)
from dicompress.plugins import register_when_imported as _register_plugins

if TYPE_CHECKING:  # the lazy names, for type checkers and IDEs
    from dicompress.api import compress, decompress
    from dicompress.batch import transcode_many
    from dicompress.codecs import Codec, available_codecs, get_codec
    from dicompress.pipeline.frames import iter_frames
    from dicompress.transcode import TranscodeOptions, TranscodeResult, transcode_file
    from dicompress.voi import render, window

__version__ = "0.1.0"

#: name -> the module that defines it, imported on first use (PEP 562).
_LAZY = {
    "compress": "dicompress.api",
    "decompress": "dicompress.api",
    "transcode_file": "dicompress.transcode",
    "TranscodeOptions": "dicompress.transcode",
    "TranscodeResult": "dicompress.transcode",
    "transcode_many": "dicompress.batch",
    "iter_frames": "dicompress.pipeline.frames",
    "window": "dicompress.voi",
    "render": "dicompress.voi",
    "get_codec": "dicompress.codecs",
    "available_codecs": "dicompress.codecs",
    "Codec": "dicompress.codecs",
}

__all__ = [
    *_LAZY,
    "CorruptPixelData",
    "DicompressError",
    "InvalidDicomFile",
    "NotAnImage",
    "NotDicom",
    "StorageError",
    "UnsupportedLayout",
    "UnsupportedTransferSyntax",
    "UsageError",
    "VerificationFailed",
    "__version__",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'dicompress' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # once
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


_register_plugins()
