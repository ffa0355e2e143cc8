"""The library's entry points for a pydicom user: a Dataset in, a new Dataset out.

`compress` and `decompress` go through the same pipeline as `transcode_file` (the one
writer, the one verifier): the dataset is written to a temporary file, transcoded to a
second one, and read back by pydicom, fully loaded; the temporary files are gone when
the call returns. The input dataset is not changed.
"""

from __future__ import annotations

import copy
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dicompress.errors import DicompressError, UsageError, with_context

if TYPE_CHECKING:
    from pydicom.dataset import Dataset

    from dicompress.codecs import Codec


def compress(ds: Dataset, target: str | Codec, *, verify: bool = True,
             threads: int | None = None, **options: Any) -> Dataset:
    """A new dataset holding `ds`'s pixel data in the transfer syntax of `target`.

    The frames are decoded (whatever `ds` holds: native, compressed, big endian),
    encoded by the codec `target` names, written and read back exactly as
    ``dicompress transcode`` does: lossy targets get a new SOP Instance UID and the
    lossy attributes (Lossy Image Compression, its Ratio and Method, Derivation), and
    Image Pixel attributes follow the encoding (e.g. YBR_RCT for colour JPEG 2000).

    Parameters
    ----------
    ds : pydicom.dataset.Dataset
        An image: Pixel Data and the Image Pixel attributes. It is not changed. A
        dataset without File Meta Information is taken as it was read (or, made in
        memory, as Explicit VR Little Endian).
    target : str or Codec
        A codec name (``"htj2k"``, ``"j2k-lossy"``, ``"jpegls"``, ...), a transfer
        syntax UID, or a `Codec` (`available_codecs` lists them).
    verify : bool, optional
        Decode every encoded frame again (lossless: bit-exact with its source) and read
        the written file back with the independent verifier (default). ``False`` skips
        both.
    threads : int, optional
        Frames coded in parallel (default: every core).
    **options
        The codec's options (``ratio=20``, ``near=2``, ``quality=85``, ...;
        ``get_codec(name).specs`` lists them).

    Returns
    -------
    pydicom.dataset.FileDataset
        The new dataset, fully loaded (its ``filename`` is None).

    Raises
    ------
    UnsupportedTransferSyntax
        `target` is no codec, or an option is unknown or out of range.
    UnsupportedLayout
        The codec cannot code these frames (e.g. signed samples as JPEG).
    NotAnImage, CorruptPixelData, InvalidDicomFile
        `ds` has no pixel data, or pixel data that cannot be decoded.
    VerificationFailed
        What was written did not read back as meant.

    Examples
    --------
    >>> import pydicom, dicompress
    >>> ds = pydicom.dcmread("CT_small.dcm")
    >>> small = dicompress.compress(ds, "htj2k")
    >>> (small.pixel_array == ds.pixel_array).all()
    True
    """
    import pydicom

    from dicompress.codecs import get_codec
    from dicompress.transcode import transcode_file

    codec = get_codec(target, **options)
    name = _name(ds)
    with tempfile.TemporaryDirectory(prefix="dicompress-") as folder:
        source, destination = Path(folder) / "in.dcm", Path(folder) / "out.dcm"
        try:
            _write(source, ds)
            transcode_file(source, destination, codec, verify=verify, threads=threads)
        except DicompressError as exc:
            raise _renamed(exc, source, name) from exc
        out = pydicom.dcmread(destination)
        out.PixelData  # noqa: B018 - read now: the file is about to go
        out.filename = None
    return out


def decompress(ds: Dataset, *, verify: bool = True, threads: int | None = None) -> Dataset:
    """A new dataset holding `ds`'s pixel data decoded, in Explicit VR Little Endian.

    The same as ``compress(ds, "explicit")``: native pixel data (PS3.5 8.1.1), Image
    Pixel attributes as decoded (e.g. YBR_FULL_422 becomes YBR_FULL), lossy marks of the
    source kept. `ds` is not changed.

    Parameters
    ----------
    ds : pydicom.dataset.Dataset
        An image, in any transfer syntax dicompress reads.
    verify : bool, optional
        Read the written file back with the independent verifier (default).
    threads : int, optional
        Frames decoded in parallel (default: every core).

    Returns
    -------
    pydicom.dataset.FileDataset
        The new dataset, fully loaded.
    """
    from dicompress import uids

    return compress(ds, uids.ExplicitVRLittleEndian, verify=verify, threads=threads)


def _name(ds: Dataset) -> str:
    """How errors name the dataset: its SOP Instance UID, else its file."""
    uid = ds.get("SOPInstanceUID")
    if uid:
        return f"dataset {uid}"
    filename = getattr(ds, "filename", None)
    return f"dataset {filename}" if isinstance(filename, str) and filename else "dataset"


def _renamed(exc: DicompressError, source: Path, name: str) -> DicompressError:
    """`exc` naming the dataset instead of the temporary file it was written to."""
    text = str(exc).replace(f"{source}: ", "", 1).replace(str(source), name)
    try:
        plain = type(exc)(text)
    except TypeError:  # a subclass with another signature: keep it as it is
        return exc
    return with_context(plain, name)


def _write(path: Path, ds: Dataset) -> None:
    """`ds` as a file, through the one writer; `ds` itself is not changed (a shallow
    copy takes the File Meta Information the writer needs)."""
    from pydicom.dataset import FileMetaDataset

    from dicompress import uids
    from dicompress.pipeline.mark import complete_file_meta
    from dicompress.pipeline.write import write_dataset

    if "PixelData" not in ds:
        from dicompress.errors import NotAnImage

        raise NotAnImage("no Pixel Data (not an image)")
    work = copy.copy(ds)  # shares the elements (read only here), not the attributes
    meta = FileMetaDataset(copy.deepcopy(getattr(ds, "file_meta", None) or FileMetaDataset()))
    if "TransferSyntaxUID" not in meta:
        implicit, little = ds.original_encoding
        meta.TransferSyntaxUID = (
            uids.ImplicitVRLittleEndian if implicit
            else uids.ExplicitVRBigEndian if little is False
            else uids.ExplicitVRLittleEndian)
    for keyword in ("SOPClassUID", "SOPInstanceUID"):
        if keyword not in ds:
            raise UsageError(f"the dataset has no {keyword}: a DICOM file needs one")
    work.file_meta = meta
    complete_file_meta(work)
    write_dataset(path, work, verify=False)  # a temporary input: the output is verified


__all__ = ["compress", "decompress"]
