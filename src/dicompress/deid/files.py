"""De-identifying files: the header rewritten, the pixel data copied byte for byte.

Pixel data is never decoded unless rectangles are blanked: the encoded frames are
copied as they are (a lossy JPEG stays exactly the JPEG it was), in chunks, so memory
stays small whatever the size of the file. With blanking, the frames are decoded,
blanked and encoded again in the file's own transfer syntax (or the one asked for).
"""

from __future__ import annotations

import functools
import hashlib
import os
import struct
from collections.abc import Callable
from pathlib import Path

import pydicom
from pydicom.dataset import Dataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_dataset, write_file_meta_info
from pydicom.multival import MultiValue
from pydicom.uid import UID

from dicompress.codecs import Codec, get_codec
from dicompress.deid.burned_in import Blanker, burned_in_reason
from dicompress.deid.deidentify import DeidConfig, Deidentifier
from dicompress.errors import DeidError
from dicompress.errors import (CorruptPixelData, DicompressError, InvalidDicomFile, NotAnImage,
                               UnsupportedTransferSyntax, VerificationFailed, with_context)
from dicompress.fileio import atomic_output
from dicompress.layout import FrameLayout
from dicompress.transcode import (TranscodeResult, complete_file_meta, hash_span, read_header,
                                  transcode_file)

_PIXEL_DATA = 0x7FE00010
_ITEM, _SEQUENCE_END = (0xFFFE, 0xE000), (0xFFFE, 0xE0DD)
_CHUNK = 1 << 20
_MEDIA_DIRECTORY = "1.2.840.10008.1.3.10"


class BurnedInRefused(DeidError):
    """The file may show identity in its pixels and the user did not say what to do."""


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
    try:
        if config.blank:
            return _blank_file(source, destination, config, verify, target, before_replace)
        return _copy_file(source, destination, config, verify, before_replace)
    except DicompressError as exc:
        raise with_context(exc, source) from exc
    except OSError as exc:
        raise DicompressError(f"{source}: {exc.strerror or exc}") from exc
    except Exception as exc:  # a damaged value met on the way
        raise InvalidDicomFile(f"{source}: {type(exc).__name__}: {exc}") from exc


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
        result.frames = int(ds.get("NumberOfFrames", 1) or 1)
        raw = ds.get_item(_PIXEL_DATA, keep_deferred=True)
        if not syntax.is_deflated and getattr(raw, "value_tell", None) is not None:
            span = pixel_span(source, raw, syntax)
            if raw.length != 0xFFFFFFFF and raw.length & 1:
                raise CorruptPixelData(f"the Pixel Data has an odd length ({raw.length})")
        # else (deflated, or pydicom had to convert the element while reading):
        # pydicom writes the whole dataset, Pixel Data from memory
    deidentifier(config).apply(ds)
    complete_file_meta(ds)
    if not syntax.is_implicit_VR:
        # a file written implicit under an explicit syntax (pydicom reads through it):
        # elements still raw carry no VR; converted, they are written with one
        for tag in list(ds.keys()):
            if tag != _PIXEL_DATA and ds.get_item(tag).VR is None:
                ds[tag]
    with atomic_output(destination, before_replace) as tmp:
        with open(tmp, "wb") as fp:
            if span is None:  # no pixel data, or all of it deflated: pydicom writes it all
                pixel_hash = None
                if "PixelData" in ds:
                    pixel_hash = hashlib.blake2b(ds.PixelData, digest_size=20).hexdigest()
                pydicom.dcmwrite(fp, ds, enforce_file_format=True)
            else:
                pixel_hash = _write_with_pixels(fp, ds, source, span, syntax, raw)
        if verify:
            _verify(tmp, ds, pixel_hash, syntax)
        result.verified = verify
        result.size_out = tmp.stat().st_size
    result.destination = destination
    result.ratio_pixels = 1.0
    return result


def pixel_span(path: Path, elem, syntax: UID) -> tuple[int, int]:
    """Where the value of the Pixel Data element lies in `path` (start, end)."""
    tell = elem.value_tell
    size = os.path.getsize(path)
    if elem.length != 0xFFFFFFFF:
        end = tell + elem.length
        if end > size:
            raise CorruptPixelData(f"the Pixel Data is {elem.length} bytes long but the file "
                                   f"ends {size - tell} bytes after it starts")
        return tell, end
    with open(path, "rb") as fp:  # encapsulated: walk the items to the delimiter
        pos = tell
        while True:
            fp.seek(pos)
            header = fp.read(8)
            if len(header) < 8:
                raise CorruptPixelData("the encapsulated Pixel Data ends before its "
                                       "Sequence Delimitation Item")
            group, element, length = struct.unpack("<HHI", header)
            if (group, element) == _SEQUENCE_END:
                return tell, pos + 8
            if (group, element) != _ITEM or length == 0xFFFFFFFF:
                raise CorruptPixelData(f"({group:04X},{element:04X}) where an item of the "
                                       "encapsulated Pixel Data should be")
            pos += 8 + length
            if pos > size:
                raise CorruptPixelData("a fragment of the Pixel Data runs past the end of the file")


def _pixel_header(ds: Dataset, elem, syntax: UID, length: int) -> bytes:
    """The Pixel Data element's tag, VR and length in the output's encoding (written
    anew: a file may say one encoding and use another, which pydicom reads through)."""
    endian = "<" if syntax.is_little_endian else ">"
    tag = struct.pack(f"{endian}HH", 0x7FE0, 0x0010)
    if syntax.is_implicit_VR:
        return tag + struct.pack(f"{endian}I", length)
    if length == 0xFFFFFFFF:
        vr = "OB"
    elif elem.VR in ("OB", "OW"):
        vr = elem.VR
    else:
        vr = "OW" if int(ds.get("BitsAllocated", 8) or 8) > 8 else "OB"
    return tag + vr.encode() + b"\0\0" + struct.pack(f"{endian}I", length)


def _write_with_pixels(fp, ds: Dataset, source: Path, span: tuple[int, int],
                       syntax: UID, pixel) -> str:
    """Preamble, meta, the header before Pixel Data, the element copied, what follows."""
    fp.write(ds.preamble or b"\0" * 128)
    fp.write(b"DICM")
    meta = DicomBytesIO()
    write_file_meta_info(meta, ds.file_meta, enforce_standard=True)
    fp.write(meta.getvalue())
    head, tail = Dataset(), Dataset()
    implicit, little = ds.original_encoding
    for part in (head, tail):
        if implicit is not None:
            part.set_original_encoding(implicit, little, ds.original_character_set)
    for elem in ds.elements():
        if elem.tag != _PIXEL_DATA:
            (head if elem.tag < _PIXEL_DATA else tail)[elem.tag] = elem
    fp.write(_encode(head, syntax))
    encapsulated = pixel.length == 0xFFFFFFFF
    fp.write(_pixel_header(ds, pixel, syntax, 0xFFFFFFFF if encapsulated else span[1] - span[0]))
    digest = hashlib.blake2b(digest_size=20)
    with open(source, "rb") as src:
        src.seek(span[0])
        left = span[1] - span[0]
        while left:
            chunk = src.read(min(left, _CHUNK))
            if not chunk:
                raise CorruptPixelData("the source ended while its Pixel Data was copied")
            digest.update(chunk)
            fp.write(chunk)
            left -= len(chunk)
    if len(tail):
        fp.write(_encode(tail, syntax))
    return digest.hexdigest()


def _encode(ds: Dataset, syntax: UID) -> bytes:
    buffer = DicomBytesIO()
    buffer.is_little_endian, buffer.is_implicit_VR = syntax.is_little_endian, syntax.is_implicit_VR
    write_dataset(buffer, ds)
    return buffer.getvalue()


def _verify(path: Path, expected: Dataset, pixel_hash: str | None, syntax: UID) -> None:
    """The output parses, says it is de-identified, and holds the same pixel data bytes."""
    try:
        ds = pydicom.dcmread(path, defer_size=1024)
        for keyword in ("SOPInstanceUID", "PatientID", "PatientIdentityRemoved", "Rows"):
            if ds.get(keyword) != expected.get(keyword):
                raise VerificationFailed(f"{keyword} reads back as {ds.get(keyword)!r}")
        if pixel_hash is None:
            return
        if syntax.is_deflated:
            found = hashlib.blake2b(ds.PixelData, digest_size=20).hexdigest()
        else:
            start, end = pixel_span(path, ds.get_item(_PIXEL_DATA, keep_deferred=True), syntax)
            found = hash_span(path, start, end - start)
    except DicompressError:
        raise
    except Exception as exc:
        raise VerificationFailed(f"the output cannot be read back: {exc}") from exc
    if found != pixel_hash:
        raise VerificationFailed("the pixel data reads back different from the original's")
