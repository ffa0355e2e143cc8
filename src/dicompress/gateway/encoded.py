"""What a forwarder sends: an instance as encoded for the destination (`Encoded`), or held
(`Hold`) when nothing the route's fallback allows can be sent; an object without pixel
data re-encoded in another uncompressed syntax; transfer syntaxes as log lines name them."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pydicom.uid import UID

from dicompress.deid.files import check_burned_in, deidentifier
from dicompress.pipeline.mark import complete_file_meta
from dicompress.pipeline.read import errors_named, read_header
from dicompress.pipeline.write import write_dataset


def reencode(source: Path, out: Path, syntax: str, deid) -> None:
    """An object without pixel data in another uncompressed syntax (it is small)."""
    with errors_named(source):  # a damaged object is the object's fault, said as such
        _reencode_read(source, out, syntax, deid)


def _reencode_read(source: Path, out: Path, syntax: str, deid) -> None:
    ds = read_header(source, any_object=True)
    if deid is not None:
        check_burned_in(ds, deid)
        deidentifier(deid).apply(ds)
    ds.file_meta.TransferSyntaxUID = syntax
    complete_file_meta(ds)
    write_dataset(out, ds)


class Hold(Exception):
    """Nothing the route's fallback allows can be sent: the instance is held."""


@dataclass
class Encoded:
    path: Path
    transfer_syntax: str
    fallback: str | None  # why this is not the route's target (None: it is, or no pixels)
    seconds: float


def syntax_name(transfer_syntax: str | None) -> str:
    """A transfer syntax as log lines show it: pydicom's keyword, or the UID."""
    if not transfer_syntax:
        return "-"
    return UID(transfer_syntax).keyword or str(transfer_syntax)
