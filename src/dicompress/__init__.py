"""dicompress: DICOM compression and transcoding with a native core.

Importing the package registers its pydicom plugins (when pydicom is imported, before
or after), so existing pydicom code can use ``ds.compress(RLELossless,
encoding_plugin="dicompress")`` and decode RLE with ``decoding_plugin="dicompress"``.
"""

from dicompress.errors import (
    CorruptPixelData,
    DicompressError,
    UnsupportedLayout,
    UnsupportedTransferSyntax,
    VerificationFailed,
)
from dicompress.plugins import register_when_imported as _register_plugins

__version__ = "0.1.0"

__all__ = [
    "CorruptPixelData",
    "DicompressError",
    "UnsupportedLayout",
    "UnsupportedTransferSyntax",
    "VerificationFailed",
    "__version__",
]

_register_plugins()
