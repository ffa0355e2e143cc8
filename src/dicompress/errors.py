"""One exception hierarchy for everything dicompress raises on purpose."""

from __future__ import annotations


class DicompressError(Exception):
    """Base class of every dicompress error."""


class CorruptPixelData(DicompressError, ValueError):
    """Encoded pixel data disagrees with itself or with the image's attributes."""


class UnsupportedLayout(DicompressError, ValueError):
    """The pixel layout cannot be coded by the chosen codec (e.g. 1-bit for RLE)."""


class UnsupportedTransferSyntax(DicompressError, ValueError):
    """The transfer syntax cannot be decoded or is not a known target."""


class NotAnImage(DicompressError):
    """The file is DICOM but carries no pixel data."""


class InvalidDicomFile(DicompressError):
    """The file is not DICOM, or too damaged to parse."""


class AlreadyInTarget(DicompressError):
    """The file is already in the target transfer syntax (batch runs skip it)."""


class VerificationFailed(DicompressError):
    """A lossless result does not decode to exactly the source pixels."""


class DeidError(DicompressError):
    """A file cannot be de-identified as asked (refused, unmapped patient, bad key, ...)."""


class ConfigError(DicompressError):
    """The gateway configuration cannot be used; the message says where and why."""


def with_context(exc: DicompressError, path: object) -> DicompressError:
    """`exc` with the file's path in front of its message (once)."""
    if str(exc).startswith(f"{path}:"):
        return exc
    return type(exc)(f"{path}: {exc}")
