"""De-identifying files: the header rewritten, the pixel data copied byte for byte.

Pixel data is never decoded unless rectangles are blanked: the encoded frames are
copied as they are (a lossy JPEG stays exactly the JPEG it was), in chunks, so memory
stays small whatever the size of the file. With blanking, the frames are decoded,
blanked and encoded again in the file's own transfer syntax (or the one asked for).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path

import pydicom
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.uid import UID

from dicompress.codecs import Codec, get_codec
from dicompress.deid.burned_in import Blanker, burned_in_reason
from dicompress.deid.deidentify import DeidConfig, Deidentifier
from dicompress.errors import (BurnedInRefused, CorruptPixelData, InvalidDicomFile, NotAnImage,
                               UnsupportedTransferSyntax)
from dicompress.layout import FrameLayout, header_number
from dicompress.pipeline.mark import complete_file_meta
from dicompress.pipeline.read import errors_named, pixel_span, read_header
from dicompress.pipeline.header import DatasetHeader
from dicompress.pipeline.write import output_file, write_dataset
from dicompress.transcode import TranscodeResult, transcode_file

_PIXEL_DATA = 0x7FE00010
_MEDIA_DIRECTORY = "1.2.840.10008.1.3.10"


@functools.lru_cache(maxsize=4)
def deidentifier(config: DeidConfig) -> Deidentifier:
    """One per configuration and process (the mapping file is read once)."""
    return Deidentifier(config)


def renamed(path: Path, config: DeidConfig) -> Path:
    """study/series/instance.dcm of `path`'s de-identified copy (its new UIDs), so that
    no original folder or file name (which may hold a name or an ID) leaves with it."""
    ds = read_header(path, any_object=True)
    deid = deidentifier(config)
    keep = "retain-uids" in config.options
    parts = []
    for keyword in ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID"):
        try:
            uid = str(ds.get(keyword, "") or "").strip()
        except Exception as exc:  # a damaged value
            raise InvalidDicomFile(f"{keyword} cannot be read ({type(exc).__name__})") from exc
        if not uid:
            raise InvalidDicomFile(f"no {keyword} to name the output by")
        parts.append(uid if keep else deid.uid(uid))
    if any(not all(c.isdigit() or c == "." for c in p) or p in (".", "..") for p in parts):
        raise InvalidDicomFile("a UID that is not one cannot name a file")
    return Path(parts[0], parts[1], parts[2] + ".dcm")


def check_burned_in(ds: Dataset, config: DeidConfig) -> None:
    if "PixelData" not in ds or config.allow_burned_in or config.blank:
        return
    reason = burned_in_reason(ds)
    if reason:
        raise BurnedInRefused(f"refused: {reason}; give the rectangles to blank "
                              "(--blank x,y,w,h) or accept it (--allow-burned-in)")


def preparer(config: DeidConfig) -> Callable[[Dataset, FrameLayout], Callable | None]:
    """The `prepare` of `transcode_file` that de-identifies (and blanks) on the way."""
    deid = deidentifier(config)

    def prepare(ds: Dataset, layout: FrameLayout):
        check_burned_in(ds, config)
        deid.apply(ds, blanked=bool(config.blank))
        return Blanker(config.blank, layout) if config.blank else None

    return prepare


def deidentify_file(source: Path | str, destination: Path | str, config: DeidConfig, *,
                    verify: bool = True, target: str | Codec | None = None,
                    before_replace: Callable[[Path], None] | None = None) -> TranscodeResult:
    """De-identify `source` into `destination` (which may be `source` itself).

    Pixel data is copied unchanged; with `config.blank` it is decoded, blanked and
    encoded again in `target` (default: the file's own transfer syntax). Files
    without pixel data (structured reports, presentation states) are de-identified too.

    Raises
    ------
    InvalidDicomFile
        Not DICOM, or too damaged to parse.
    BurnedInRefused
        The pixels may show identity and neither blanking nor --allow-burned-in was given.
    DicompressError
        Anything else that stopped this file; nothing is written then.
    """
    source, destination = Path(source), Path(destination)
    with errors_named(source):
        if config.blank:
            return _blank_file(source, destination, config, verify, target, before_replace)
        return _copy_file(source, destination, config, verify, before_replace)


def _blank_codec(ds: Dataset) -> Codec:
    """What blanked frames are encoded in when the user did not choose: the file's own
    syntax, without adding loss to an image that had none (a syntax that holds lossless
    or lossy data goes to its lossless twin unless the image was lossy)."""
    syntax = str(ds.file_meta.get("TransferSyntaxUID", ""))
    if syntax == pydicom.uid.ExplicitVRBigEndian:
        return get_codec(pydicom.uid.ExplicitVRLittleEndian)  # retired: written little endian
    try:
        codec = get_codec(syntax)
    except UnsupportedTransferSyntax:
        raise UnsupportedTransferSyntax(
            f"blanking needs the frames encoded again, and {UID(syntax).name} is not a "
            "syntax dicompress writes; choose one with transcode --deid --to") from None
    if codec.lossless:
        return codec
    if codec.lossless_twin and str(ds.get("LossyImageCompression", "")) != "01":
        return get_codec(codec.lossless_twin)
    ratios = []
    if codec.spec("ratio") is not None and ds.get("LossyImageCompressionRatio"):
        value = ds.LossyImageCompressionRatio  # one value is not a list (PS3.3 C.7.6.1.1.5)
        ratios = [float(r) for r in (value if isinstance(value, MultiValue) else [value])
                  if str(r).strip()]
    return codec.reencoding(ratios[-1] if ratios else None)


def _blank_file(source, destination, config, verify, target, before_replace) -> TranscodeResult:
    ds = read_header(source, any_object=True)
    if "PixelData" not in ds:  # a report, a presentation state: nothing to blank
        return _copy_file(source, destination, config, verify, before_replace)
    return transcode_file(source, destination, target or _blank_codec(ds), verify=verify,
                          before_replace=before_replace, prepare=preparer(config))


def _copy_file(source: Path, destination: Path, config: DeidConfig, verify: bool,
               before_replace) -> TranscodeResult:
    result = TranscodeResult(source=source, size_in=source.stat().st_size)
    ds = read_header(source, any_object=True)
    if str(ds.file_meta.get("MediaStorageSOPClassUID", "")) == _MEDIA_DIRECTORY:
        raise NotAnImage("a DICOMDIR (its records name patients): not copied; make a new one "
                         "from the de-identified files")
    for keyword in ("SOPClassUID", "SOPInstanceUID"):
        if not str(ds.get(keyword, "") or "").strip():
            raise InvalidDicomFile(f"no {keyword}: not an object that can be de-identified")
    syntax = UID(str(ds.file_meta.get("TransferSyntaxUID", "")))
    if not syntax.is_transfer_syntax:
        raise InvalidDicomFile(f"the Transfer Syntax UID {str(syntax)!r} is not one")
    result.transfer_syntax_in = result.transfer_syntax_out = str(syntax)
    result.modality = str(ds.get("Modality", ""))
    check_burned_in(ds, config)
    span = None
    if _PIXEL_DATA in ds:
        result.frames = header_number(ds, "NumberOfFrames", 0, 2**31 - 1, default=1) or 1
        raw = ds.get_item(_PIXEL_DATA, keep_deferred=True)
        if not syntax.is_deflated and getattr(raw, "value_tell", None) is not None:
            span = pixel_span(source, raw)
            if raw.length != 0xFFFFFFFF and raw.length & 1:
                raise CorruptPixelData(f"the Pixel Data has an odd length ({raw.length})")
        # else (deflated, or pydicom had to convert the element while reading):
        # the whole dataset is written from memory, Pixel Data included
    deidentifier(config).apply(ds)
    complete_file_meta(ds)
    if not syntax.is_implicit_VR:
        # a file written implicit under an explicit syntax (pydicom reads through it):
        # elements still raw carry no VR; converted, they are written with one
        for tag in list(ds.keys()):
            if tag != _PIXEL_DATA and ds.get_item(tag).VR is None:
                ds[tag]
    if span is None:  # no pixel data, or all of it deflated
        written = write_dataset(destination, ds, verify=verify, before_replace=before_replace)
    else:
        encapsulated = raw.length == 0xFFFFFFFF
        with output_file(destination, DatasetHeader(ds, keep_offset_tables=True),
                         pixels="copied", verify=verify,
                         before_replace=before_replace) as (writer, written):
            writer.copy_pixel_data(source, *span, vr=_pixel_vr(ds, raw),
                                   encapsulated=encapsulated)
            writer.finish()
    result.verified = written.verified
    result.size_out = written.size
    result.destination = destination
    result.ratio_pixels = 1.0
    return result


def _pixel_vr(ds: Dataset, elem) -> str:
    """The VR Pixel Data is written with (a file may say one encoding and use another,
    which pydicom reads through: the VR is decided anew)."""
    if elem.VR in ("OB", "OW"):
        return elem.VR
    return "OW" if header_number(ds, "BitsAllocated", 1, 64, default=8) > 8 else "OB"
