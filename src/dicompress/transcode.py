"""Dataset in, dataset out: frames, encapsulation, attributes, verification.

The pipeline for one file::

    read header (pixel data deferred) -> iterate frames (pydicom decoders, ours first)
      -> encode each frame (threads; the native codecs release the GIL)
      -> encapsulate (Basic Offset Table, or Extended Offset Table past 4 GiB)
      -> set attributes -> write to a temporary file beside the target
      -> verify: read the temporary file back, every frame must hash equal
      -> rename over the target

Frames are held a few at a time; the encoded output is held until it is written.
"""

from __future__ import annotations

import hashlib
import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
from pydicom.dataset import Dataset
from pydicom.encaps import encapsulate, encapsulate_extended
from pydicom.errors import InvalidDicomError
from pydicom.pixels import iter_pixels
from pydicom.uid import UID

from dicompress.codecs import Codec, get_codec
from dicompress.errors import (
    CorruptPixelData,
    DicompressError,
    InvalidDicomFile,
    NotAnImage,
    VerificationFailed,
    with_context,
)
from dicompress.fileio import atomic_output
from dicompress.layout import FrameLayout

# Transfer syntaxes whose decoded pixels differ from what was acquired.
LOSSY_TRANSFER_SYNTAXES = frozenset(
    str(u) for u in (
        pydicom.uid.JPEGBaseline8Bit, pydicom.uid.JPEGExtended12Bit,
        pydicom.uid.JPEGLSNearLossless, pydicom.uid.JPEG2000,
        pydicom.uid.HTJ2K, pydicom.uid.JPEG2000MC,
    )
)

_MAX_BOT_OFFSET = 2**32 - 1

# PS3.5 B.2: our own root would be registered; until then a UUID-derived one.
IMPLEMENTATION_CLASS_UID = "2.25.219083617519436327355305566470815263377"
IMPLEMENTATION_VERSION_NAME = "DICOMPRESS_01"


@dataclass
class TranscodeResult:
    """What happened to one file."""

    source: Path
    destination: Path | None = None
    status: str = "ok"  # ok | not-dicom | not-image | failed
    reason: str = ""
    modality: str = ""
    transfer_syntax_in: str = ""
    transfer_syntax_out: str = ""
    size_in: int = 0
    size_out: int = 0
    frames: int = 0
    verified: bool = False
    error: DicompressError | None = field(default=None, repr=False)

    @property
    def ratio(self) -> float:
        return self.size_in / self.size_out if self.size_out else 0.0


def read_header(path: Path) -> Dataset:
    """Read `path` with large values (the pixel data) left on disk until needed."""
    try:
        return pydicom.dcmread(path, defer_size="256 KB")
    except InvalidDicomError as exc:
        # No preamble or file meta: still DICOM if a forced read finds an image.
        try:
            ds = pydicom.dcmread(path, defer_size="256 KB", force=True)
            if "PixelData" in ds and "Rows" in ds:
                if "TransferSyntaxUID" not in ds.file_meta:
                    implicit, little = ds.original_encoding
                    ds.file_meta.TransferSyntaxUID = (
                        pydicom.uid.ImplicitVRLittleEndian if implicit
                        else pydicom.uid.ExplicitVRLittleEndian if little
                        else pydicom.uid.ExplicitVRBigEndian
                    )
                return ds
        except Exception:
            pass
        raise InvalidDicomFile(f"not a DICOM file ({exc})") from exc
    except Exception as exc:  # truncated or garbled files raise many types
        raise InvalidDicomFile(f"cannot be parsed as DICOM ({type(exc).__name__}: {exc})") from exc


def frame_digest(arr: np.ndarray) -> str:
    """A hash of a frame's values, shape and sample type."""
    if arr.dtype.byteorder not in ("=", "|"):
        arr = arr.astype(arr.dtype.newbyteorder("="))  # values, not byte order, count
    h = hashlib.blake2b(digest_size=20)
    h.update(f"{arr.dtype.str}{arr.shape}".encode())
    h.update(np.ascontiguousarray(arr).data)
    return h.hexdigest()


def _bounded_map(fn: Callable, items: Iterable, threads: int) -> Iterator:
    """Like ``pool.map`` but keeps at most 2 x `threads` items in flight (bounded memory)."""
    if threads <= 1:
        for item in items:
            yield fn(item)
        return
    with ThreadPoolExecutor(threads) as pool:
        pending: deque = deque()
        for item in items:
            pending.append(pool.submit(fn, item))
            if len(pending) >= 2 * threads:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


_DECODED_PHOTOMETRIC = {
    "YBR_FULL_422": "YBR_FULL",  # pydicom removes the 4:2:2 subsampling
    "YBR_ICT": "RGB",
    "YBR_RCT": "RGB",
}


def _image_attributes(ds: Dataset, meta: Dataset, arr: np.ndarray) -> dict[str, Any]:
    """The Image Pixel attributes of the frames as decoded: pydicom's ds_out where it
    filled them in, else the source's."""
    attrs = {}
    for keyword in ("PhotometricInterpretation", "BitsAllocated", "BitsStored", "HighBit",
                    "PixelRepresentation", "SamplesPerPixel", "PlanarConfiguration"):
        for source in (meta, ds):
            if keyword in source:
                attrs[keyword] = source[keyword].value
                break
    # Decoded frames are full resolution, and J2K decoders undo the colour
    # transform: the photometric interpretation of what we hold says so.
    photometric = attrs.get("PhotometricInterpretation")
    if photometric:
        attrs["PhotometricInterpretation"] = _DECODED_PHOTOMETRIC.get(str(photometric), photometric)
    bits = arr.dtype.itemsize * 8
    if attrs.get("BitsAllocated", bits) != 1 and attrs.get("BitsAllocated") != bits:
        attrs["BitsAllocated"] = bits
    return attrs


def _frames(path: Path, ds: Dataset, meta: Dataset) -> Iterator[np.ndarray]:
    """Decoded frames of `path` as stored (no colour conversion).

    From the path, pydicom reads one frame at a time; deflated files (whose
    bytes cannot be seeked) and files without file meta go through the dataset.
    """
    transfer_syntax = str(ds.file_meta.get("TransferSyntaxUID", ""))
    seekable = (
        getattr(ds, "preamble", None) is not None
        and transfer_syntax != pydicom.uid.DeflatedExplicitVRLittleEndian
    )
    try:
        yield from iter_pixels(path if seekable else ds, ds_out=meta, raw=True)
    except DicompressError:
        raise
    except Exception as exc:
        raise CorruptPixelData(f"pixel data cannot be decoded: {exc}") from exc


def transcode_file(
    source: Path | str,
    destination: Path | str,
    target: str | Codec = "rle",
    *,
    verify: bool = True,
    threads: int | None = None,
) -> TranscodeResult:
    """Transcode one file to `target`, writing `destination` only once verified.

    Every error names the file. Nothing is written at `destination` unless the
    whole output was written and (for lossless targets) read back bit-exact.

    Raises
    ------
    InvalidDicomFile, NotAnImage
        The file is not DICOM, or carries no pixel data (callers skip these).
    DicompressError
        Anything else that stopped this file.
    """
    try:
        return _transcode_file(Path(source), Path(destination), target, verify, threads)
    except DicompressError as exc:
        raise with_context(exc, source) from exc
    except OSError as exc:
        raise DicompressError(f"{source}: {exc.strerror or exc}") from exc
    except Exception as exc:  # a damaged header value, a decoder's own error, ...
        raise InvalidDicomFile(f"{source}: {type(exc).__name__}: {exc}") from exc


def _transcode_file(source: Path, destination: Path, target, verify, threads) -> TranscodeResult:
    codec = target if isinstance(target, Codec) else get_codec(target)
    threads = threads if threads is not None else (os.cpu_count() or 1)
    result = TranscodeResult(source=source, size_in=source.stat().st_size)

    ds = read_header(source)
    result.modality = str(ds.get("Modality", ""))
    result.transfer_syntax_in = str(ds.file_meta.get("TransferSyntaxUID", ""))
    if "PixelData" not in ds:
        raise NotAnImage("no Pixel Data (not an image)")
    declared = FrameLayout.from_dataset(ds)
    if declared.bits_allocated == 1:
        codec.check_layout(declared)  # raises for codecs that need whole bytes

    meta = Dataset()
    digests: list[str] = []
    layout: FrameLayout | None = None
    attrs: dict[str, Any] = {}

    def encode(arr: np.ndarray) -> bytes:
        data = codec.encode_frame(arr, layout)
        if verify and codec.lossless:
            back = codec.decode_frame(data, layout)
            if not np.array_equal(back, arr):
                raise VerificationFailed("encoded frame does not decode to the source values")
        return data

    def prepared(frames: Iterator[np.ndarray]) -> Iterator[np.ndarray]:
        nonlocal layout
        for arr in frames:
            if layout is None:
                attrs.update(_image_attributes(ds, meta, arr))
                layout = FrameLayout(
                    rows=arr.shape[0], columns=arr.shape[1],
                    samples_per_pixel=arr.shape[2] if arr.ndim == 3 else 1,
                    bits_allocated=arr.dtype.itemsize * 8,
                    pixel_representation=1 if arr.dtype.kind == "i" else 0,
                    photometric_interpretation=str(attrs.get("PhotometricInterpretation", "")),
                )
                codec.check_layout(layout)
            digests.append(frame_digest(arr))
            yield arr

    fragments = list(_bounded_map(encode, prepared(_frames(source, ds, meta)), threads))
    if not fragments:
        raise CorruptPixelData("Pixel Data holds no frames")

    out = _build_output(ds, fragments, codec, layout, attrs)
    result.frames = len(fragments)
    result.transfer_syntax_out = codec.transfer_syntax

    with atomic_output(destination) as tmp:
        # force_encoding: re-encode values read implicit/big endian as explicit LE
        pydicom.dcmwrite(tmp, out, implicit_vr=False, little_endian=True, force_encoding=True)
        if verify and codec.lossless:
            _verify_file(tmp, digests)
        result.verified = verify and codec.lossless
        result.size_out = tmp.stat().st_size
    result.destination = destination
    return result


def _build_output(ds: Dataset, fragments: list[bytes], codec: Codec, layout: FrameLayout,
                  attrs: dict[str, Any]) -> Dataset:
    out = ds  # the header read from the source; pixel data is replaced below
    for keyword, value in attrs.items():
        setattr(out, keyword, value)
    for keyword, value in codec.output_attributes(layout).items():
        setattr(out, keyword, value)
    if layout.samples_per_pixel == 1 and "PlanarConfiguration" in out:
        del out.PlanarConfiguration

    if str(ds.file_meta.get("TransferSyntaxUID", "")) in LOSSY_TRANSFER_SYNTAXES:
        # PS3.3 C.7.6.1.1.5: once lossy, always marked lossy.
        out.LossyImageCompression = "01"

    if ds.original_encoding[1] is False:  # read big endian
        _swap_binary_values(out)

    total = sum(len(f) + (len(f) & 1) + 8 for f in fragments[:-1])
    if total > _MAX_BOT_OFFSET:
        out.PixelData, out.ExtendedOffsetTable, out.ExtendedOffsetTableLengths = (
            encapsulate_extended(fragments)
        )
    else:
        for keyword in ("ExtendedOffsetTable", "ExtendedOffsetTableLengths"):
            if keyword in out:
                delattr(out, keyword)
        out.PixelData = encapsulate(fragments, has_bot=True)
    elem = out["PixelData"]
    elem.VR = "OB"
    elem.is_undefined_length = True
    if len(fragments) > 1 or "NumberOfFrames" in out:
        out.NumberOfFrames = len(fragments)

    out.file_meta.TransferSyntaxUID = UID(codec.transfer_syntax)
    _complete_file_meta(out)
    return out


def _complete_file_meta(ds: Dataset) -> None:
    """Give `ds` the preamble and File Meta Information of PS3.10 7.1."""
    ds.preamble = ds.get("preamble") or b"\0" * 128
    meta = ds.file_meta
    if "SOPClassUID" in ds:
        meta.MediaStorageSOPClassUID = ds.SOPClassUID
    if "SOPInstanceUID" in ds:
        meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    meta.ImplementationClassUID = IMPLEMENTATION_CLASS_UID
    meta.ImplementationVersionName = IMPLEMENTATION_VERSION_NAME
    pydicom.dataset.validate_file_meta(meta, enforce_standard=True)


_WORD_VRS = {"OW": 2, "OF": 4, "OL": 4, "OD": 8, "OV": 8}


def _swap_binary_values(ds: Dataset) -> None:
    """Byte-swap the OW/OF/OL/OD/OV values read from a big-endian file.

    pydicom decodes numbers (US, FL, ...) to Python values, which it re-encodes
    in the output's byte order; raw binary values stay as read and must be
    swapped by hand before writing little endian.
    """
    for elem in ds.iterall():
        size = _WORD_VRS.get(elem.VR)
        if size and isinstance(elem.value, (bytes, bytearray)) and elem.tag != 0x7FE00010:
            raw = elem.value[: len(elem.value) // size * size]
            elem.value = np.frombuffer(raw, f">u{size}").astype(f"<u{size}").tobytes()


def _verify_file(path: Path, digests: list[str]) -> None:
    """Read `path` back and require every frame to hash equal to its source."""
    n = 0
    try:
        for n, arr in enumerate(iter_pixels(path, raw=True), start=1):
            if n > len(digests) or frame_digest(arr) != digests[n - 1]:
                raise VerificationFailed(f"frame {n} of the output differs from the source")
    except DicompressError:
        raise
    except Exception as exc:
        raise VerificationFailed(f"the output cannot be read back: {exc}") from exc
    if n != len(digests):
        raise VerificationFailed(f"the output has {n} frames, the source {len(digests)}")
