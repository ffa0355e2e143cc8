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

import contextlib
import json
import hashlib
import itertools
import math
import os
import threading
import zlib
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from typing import TYPE_CHECKING

import numpy as np

from dicompress import direct, uids
from dicompress.codecs import Codec, get_codec
from dicompress.errors import (
    AlreadyInTarget,
    CorruptPixelData,
    DicompressError,
    InvalidDicomFile,
    NotAnImage,
    VerificationFailed,
    with_context,
)
from dicompress.codecs.search import psnr
from dicompress.digests import HASHES, file_digest
from dicompress.fileio import atomic_output
from dicompress.layout import FrameLayout

if TYPE_CHECKING:
    from pydicom.dataset import Dataset

    from dicompress.writer import PixelDataWriter

# pydicom (0.25 s to import) is imported where the general path needs it, not here: the
# direct path, which most files of an archive take, runs without it.

# Transfer syntaxes whose decoded pixels differ from what was acquired.
LOSSY_TRANSFER_SYNTAXES = frozenset(
    (uids.JPEGBaseline8Bit, uids.JPEGExtended12Bit, uids.JPEGLSNearLossless, uids.JPEG2000,
     uids.HTJ2K, uids.JPEG2000MC)
)


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
    lossy: bool = False
    #: Stored pixel bytes / encoded pixel bytes (the Lossy Image Compression Ratio).
    ratio_pixels: float = 0.0
    #: Lossy results, verified: the worst frame's PSNR (Bits Stored peak) and error.
    psnr: float | None = None
    max_error: int | None = None
    #: With `transcode_file(digest=...)`: the content hashes of the input as read and of
    #: the output as written (dicompress.digests).
    digest_in: str | None = None
    digest_out: str | None = None
    error: DicompressError | None = field(default=None, repr=False)

    @property
    def ratio(self) -> float:
        return self.size_in / self.size_out if self.size_out else 0.0


def read_header(path: Path, *, any_object: bool = False) -> Dataset:
    """Read `path` with large values (the pixel data) left on disk until needed.

    A file without preamble and File Meta Information is taken when a forced read finds
    an image (or, with `any_object`, any object with SOP Class and Instance UIDs)."""
    import pydicom
    from pydicom.errors import InvalidDicomError

    try:
        return pydicom.dcmread(path, defer_size="256 KB")
    except InvalidDicomError as exc:
        # No preamble or file meta: still DICOM if a forced read finds an image.
        try:
            ds = pydicom.dcmread(path, defer_size="256 KB", force=True)
            if ("PixelData" in ds and "Rows" in ds) or (
                    any_object and "SOPClassUID" in ds and "SOPInstanceUID" in ds):
                if "TransferSyntaxUID" not in ds.file_meta:
                    implicit, little = ds.original_encoding
                    ds.file_meta.TransferSyntaxUID = (
                        uids.ImplicitVRLittleEndian if implicit
                        else uids.ExplicitVRLittleEndian if little
                        else uids.ExplicitVRBigEndian
                    )
                return ds
        except Exception:
            pass
        raise InvalidDicomFile(f"not a DICOM file ({exc})") from exc
    except Exception as exc:  # truncated or garbled files raise many types
        raise InvalidDicomFile(f"cannot be parsed as DICOM ({type(exc).__name__}: {exc})") from exc


def bounded_map(fn: Callable, items: Iterable, threads: int) -> Iterator:
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
    from pydicom.pixels import iter_pixels

    transfer_syntax = str(ds.file_meta.get("TransferSyntaxUID", ""))
    native = _native_frames(path, ds, transfer_syntax)
    if native is not None:
        yield from native
        return
    seekable = (
        getattr(ds, "preamble", None) is not None
        and transfer_syntax != uids.DeflatedExplicitVRLittleEndian
    )
    try:
        for arr in iter_pixels(path if seekable else ds, ds_out=meta, raw=True):
            # codecs take native byte order (big-endian sources decode to '>' arrays)
            yield arr if arr.dtype.isnative else arr.astype(arr.dtype.newbyteorder("="))
    except DicompressError:
        raise
    except Exception as exc:
        raise CorruptPixelData(f"pixel data cannot be decoded: {exc}") from exc


_PLAIN_NATIVE = (uids.ExplicitVRLittleEndian, uids.ImplicitVRLittleEndian)


def _native_frames(path: Path, ds: Dataset, transfer_syntax: str) -> Iterator[np.ndarray] | None:
    """Frames of a little-endian native single-sample image read straight from the file,
    the bulk of an archive, without pydicom parsing the file a second time; None for
    anything else (pydicom decodes those).

    Values come out as pydicom gives them: unused bits above Bits Stored are
    replaced by the sign (or zero) extension of the stored value (PS3.5 8.1.1).
    """
    if transfer_syntax not in _PLAIN_NATIVE or getattr(ds, "preamble", None) is None:
        return None
    try:
        layout = FrameLayout.from_dataset(ds)
        elem = ds.get_item(0x7FE00010, keep_deferred=True)
    except DicompressError:
        return None
    if (layout.samples_per_pixel != 1 or layout.bits_allocated not in (8, 16, 32)
            or elem is None or elem.length in (None, 0xFFFFFFFF)
            or layout.bits_stored > layout.bits_allocated or layout.rows * layout.columns == 0):
        return None
    frame_bytes = layout.rows * layout.columns * layout.bytes_per_sample
    if elem.length < frame_bytes * layout.number_of_frames:
        return None  # pydicom says what is wrong with it
    in_memory = elem.value if isinstance(elem.value, (bytes, bytearray)) else None
    if in_memory is None and elem.value_tell is None:
        return None
    dtype, shape = layout.dtype, (layout.rows, layout.columns)
    shift = layout.bits_allocated - layout.bits_stored

    def frames() -> Iterator[np.ndarray]:
        with contextlib.ExitStack() as stack:
            fp = None if in_memory is not None else stack.enter_context(open(path, "rb"))
            for k in range(layout.number_of_frames):
                if in_memory is not None:
                    buffer = bytearray(in_memory[k * frame_bytes:(k + 1) * frame_bytes])
                else:
                    buffer = bytearray(frame_bytes)
                    fp.seek(elem.value_tell + k * frame_bytes)
                    if fp.readinto(buffer) != frame_bytes:
                        raise CorruptPixelData(f"frame {k + 1} is cut short")
                arr = np.frombuffer(buffer, dtype).reshape(shape)
                if shift:
                    np.left_shift(arr, shift, out=arr)
                    np.right_shift(arr, shift, out=arr)
                yield arr

    return frames()


def decoded_layout(ds: Dataset, declared: FrameLayout, meta: Dataset,
                   first: np.ndarray) -> tuple[FrameLayout, dict[str, Any]]:
    """The layout of the frames as decoded (frame 1 tells the sample type) and the
    Image Pixel attributes that describe them."""
    attrs = _image_attributes(ds, meta, first)
    layout = FrameLayout(
        rows=first.shape[0], columns=first.shape[1],
        samples_per_pixel=first.shape[2] if first.ndim == 3 else 1,
        bits_allocated=1 if declared.bits_allocated == 1 else first.dtype.itemsize * 8,
        bits_stored=int(attrs.get("BitsStored") or first.dtype.itemsize * 8),
        pixel_representation=1 if first.dtype.kind == "i" else 0,
        photometric_interpretation=str(attrs.get("PhotometricInterpretation", "")),
        number_of_frames=declared.number_of_frames,
    )
    return layout, attrs


def _start_decoding(path: Path, ds: Dataset, declared: FrameLayout
                    ) -> tuple[FrameLayout, dict[str, Any], np.ndarray, Iterator[np.ndarray]]:
    """Decode frame 1 (it tells the layout of all): layout, attributes, frame 1, the rest."""
    from pydicom.dataset import Dataset

    meta = Dataset()
    frames = _frames(path, ds, meta)
    first = next(frames, None)
    if first is None:
        raise CorruptPixelData("Pixel Data holds no frames")
    layout, attrs = decoded_layout(ds, declared, meta, first)
    return layout, attrs, first, frames


def iter_frames(path: Path) -> tuple[FrameLayout, Iterator[np.ndarray]]:
    """The layout of `path`'s frames as decoded, and the frames (one at a time)."""
    path = Path(path)
    ds = read_header(path)
    if "PixelData" not in ds:
        raise NotAnImage("no Pixel Data (not an image)")
    layout, _, first, frames = _start_decoding(path, ds, FrameLayout.from_dataset(ds))
    return layout, itertools.chain([first], frames)


def transcode_file(
    source: Path | str,
    destination: Path | str,
    target: str | Codec = "rle",
    *,
    verify: bool = True,
    threads: int | None = None,
    extended_offsets: bool | None = None,
    codec_threads: int | None = None,
    skip_same_syntax: bool = False,
    before_replace: Callable[[Path], None] | None = None,
    prepare: Callable[[Dataset, FrameLayout], Callable[[np.ndarray], np.ndarray] | None]
    | None = None,
    digest: str | None = None,
) -> TranscodeResult:
    """Transcode one file to `target`, writing `destination` only once verified.

    Every error names the file. Nothing is written at `destination` unless the
    whole output was written and (for lossless targets) read back bit-exact.
    `destination` may be `source` itself: the original is replaced only then.

    `threads` code the frames of a multi-frame file in parallel; a single frame
    is given `codec_threads` (default `threads`) inside the codec. With
    `skip_same_syntax`, a file already in the target syntax raises
    `AlreadyInTarget`. `before_replace(tmp)` runs on the complete, verified,
    fsynced output just before it is renamed into place, and may veto it.
    `prepare(header, layout)` may change the source's header (de-identification) before
    the output's is made from it, and return a function applied to every decoded frame
    before it is encoded (blanking); lossless results are verified against its output.
    `digest` (a name of dicompress.digests.HASHES) asks for the content hashes of the input
    and the output in the result.

    Raises
    ------
    InvalidDicomFile, NotAnImage
        The file is not DICOM, or carries no pixel data (callers skip these).
    DicompressError
        Anything else that stopped this file.
    """
    try:
        return _transcode_file(Path(source), Path(destination), target, verify, threads,
                               extended_offsets, codec_threads, skip_same_syntax, before_replace,
                               prepare, digest)
    except DicompressError as exc:
        raise with_context(exc, source) from exc
    except OSError as exc:
        raise DicompressError(f"{source}: {exc.strerror or exc}") from exc
    except Exception as exc:  # a damaged header value, a decoder's own error, ...
        raise InvalidDicomFile(f"{source}: {type(exc).__name__}: {exc}") from exc


def _transcode_file(source: Path, destination: Path, target, verify, threads,
                    extended_offsets, codec_threads, skip_same_syntax,
                    before_replace, prepare, digest) -> TranscodeResult:
    codec = get_codec(target)
    if digest is not None and digest not in HASHES:  # before anything is written
        raise DicompressError(f"unknown hash {digest!r}: one of {', '.join(HASHES)}")
    threads = threads if threads is not None else (os.cpu_count() or 1)
    size = source.stat().st_size
    if prepare is None and not extended_offsets:  # the bulk of an archive, without pydicom
        done = direct.transcode(source, destination, codec, size=size, verify=verify,
                                threads=threads, codec_threads=codec_threads,
                                before_replace=before_replace, digest=digest)
        if done is not None:
            return done
    result = TranscodeResult(source=source, size_in=size, lossy=not codec.lossless)
    if digest:
        result.digest_in = file_digest(source, digest)

    ds = read_header(source)
    result.modality = str(ds.get("Modality", ""))
    result.transfer_syntax_in = str(ds.file_meta.get("TransferSyntaxUID", ""))
    if "PixelData" not in ds:
        raise NotAnImage("no Pixel Data (not an image)")
    declared = FrameLayout.from_dataset(ds)
    if skip_same_syntax:
        try:
            same = codec.transfer_syntax_for(declared) == result.transfer_syntax_in
        except DicompressError:
            same = False
        if same:
            from pydicom.uid import UID

            raise AlreadyInTarget(f"already {UID(result.transfer_syntax_in).name}")
    if declared.bits_allocated == 1:
        codec.check_layout(declared)  # raises for codecs that need whole bytes

    from dicompress.writer import MAX_BOT_OFFSET, PixelDataWriter

    layout, attrs, first, frames = _start_decoding(source, ds, declared)
    codec.check_layout(layout)
    frame_filter = prepare(ds, layout) if prepare is not None else None
    out = _output_dataset(ds, codec, layout, attrs)
    result.transfer_syntax_out = str(out.file_meta.TransferSyntaxUID)

    many = layout.number_of_frames > 1
    codec_threads = 1 if many else (codec_threads or threads)
    stats = _LossStats()
    # every frame must match frame 1
    encode = frame_encoder(codec, layout, first.shape, first.dtype, verify=verify,
                           codec_threads=codec_threads, frame_filter=frame_filter, stats=stats)

    if extended_offsets is None:  # auto: when offsets might pass 4 GiB
        extended_offsets = (codec.encapsulated and
                            layout.frame_bytes * layout.number_of_frames * 1.05 > MAX_BOT_OFFSET)
    hashes: list[str] = []
    encoded_bytes = 0
    with atomic_output(destination, before_replace) as tmp:
        with open(tmp, "wb") as fp:
            writer = PixelDataWriter(fp, out, layout, encapsulated=codec.encapsulated,
                                     extended_offsets=bool(extended_offsets))
            pending = itertools.chain([first], frames)
            for data in bounded_map(encode, pending, threads if many else 1):
                writer.add(data)
                # an odd fragment reads back with its pad byte (PS3.5 A.4)
                hashes.append(_digest(data + b"\0" if codec.encapsulated and len(data) & 1 else data))
                encoded_bytes += len(data)
            del first
            ratio = None
            if not codec.lossless:
                ratio = layout.frame_bytes * layout.number_of_frames / max(1, encoded_bytes)
            writer.finish(patch=f"{ratio:.4g}" if ratio is not None else None)
        if verify:
            _verify_file(tmp, out, writer, hashes)
        if digest:
            result.digest_out = file_digest(tmp, digest)
        result.verified = verify
        result.size_out = tmp.stat().st_size
    result.frames = len(hashes)
    result.ratio_pixels = layout.frame_bytes * layout.number_of_frames / max(1, encoded_bytes)
    result.psnr = stats.psnr if stats.count else None
    result.max_error = stats.max_error if stats.count else None
    result.destination = destination
    return result


def frame_encoder(codec: Codec, layout: FrameLayout, shape: tuple[int, ...], dtype: np.dtype,
                  *, verify: bool, codec_threads: int,
                  frame_filter: Callable[[np.ndarray], np.ndarray] | None = None,
                  stats: "_LossStats | None" = None) -> Callable[[np.ndarray], bytes]:
    """The function that encodes one frame (of `shape` and `dtype`, as frame 1 decoded)
    and, with `verify`, decodes it again: bit-exact for lossless codecs, else the loss
    goes to `stats`."""
    def encode(arr: np.ndarray) -> bytes:
        if arr.shape != shape or arr.dtype != dtype:
            raise CorruptPixelData(f"frame decodes to {arr.shape} {arr.dtype}, "
                                   f"frame 1 to {shape} {dtype}")
        if frame_filter is not None:
            arr = frame_filter(arr)
        data = codec.encode_frame(arr, layout, codec_threads)
        if verify:
            back = codec.decode_frame(data, layout)
            if codec.lossless:
                if not np.array_equal(back, arr):
                    raise VerificationFailed("an encoded frame does not decode to the source values")
            else:
                if back.shape != arr.shape:
                    raise VerificationFailed(f"a lossy frame decodes to {back.shape}, not {arr.shape}")
                if stats is not None:
                    stats.add(arr, back, layout.bits_stored)
        return data

    return encode


class _LossStats:
    """Worst-case loss over the frames of one lossy file."""

    def __init__(self) -> None:
        self.count = 0
        self.max_error = 0
        self.psnr = math.inf
        self._lock = threading.Lock()

    def add(self, source: np.ndarray, decoded: np.ndarray, bits_stored: int) -> None:
        error = int(np.abs(source.astype(np.int64) - decoded.astype(np.int64)).max(initial=0))
        value = psnr(source, decoded, bits_stored)
        with self._lock:
            self.count += 1
            self.max_error = max(self.max_error, error)
            self.psnr = min(self.psnr, value)


def _digest(data: bytes) -> str:
    """Length and CRC-32 of written bytes: read-back checks guard against storage and
    parser faults, not adversaries, and CRC-32 is 5x cheaper than a cryptographic hash."""
    return f"{len(data)}:{zlib.crc32(data):08x}"


def _output_dataset(ds: Dataset, codec: Codec, layout: FrameLayout,
                    attrs: dict[str, Any]) -> Dataset:
    """The header of the output: the source's, with the image attributes of what we write."""
    out = ds  # the header read from the source; pixel data is written by the writer
    for keyword, value in attrs.items():
        setattr(out, keyword, value)
    for keyword, value in codec.output_attributes(layout).items():
        setattr(out, keyword, value)
    if layout.samples_per_pixel == 1 and "PlanarConfiguration" in out:
        del out.PlanarConfiguration
    for keyword in ("PixelData", "ExtendedOffsetTable", "ExtendedOffsetTableLengths"):
        if keyword in out:
            delattr(out, keyword)

    source_lossy = (
        str(ds.file_meta.get("TransferSyntaxUID", "")) in LOSSY_TRANSFER_SYNTAXES
        or str(ds.get("LossyImageCompression", "")) == "01"
    )
    if source_lossy:
        # PS3.3 C.7.6.1.1.5: once lossy, always marked lossy.
        out.LossyImageCompression = "01"
    if not codec.lossless:
        mark_lossy(out, codec, source_lossy)

    if ds.original_encoding[1] is False:  # read big endian
        _swap_binary_values(out)
    if "NumberOfFrames" in out or layout.number_of_frames > 1:
        out.NumberOfFrames = layout.number_of_frames

    from pydicom.uid import UID

    out.file_meta.TransferSyntaxUID = UID(codec.transfer_syntax_for(layout))
    complete_file_meta(out)
    return out


# PS3.16 CID 7202 (Source Image Purposes of Reference) and CID 7203 (derivation).
_UNCOMPRESSED_PREDECESSOR = ("121320", "Uncompressed predecessor")
_LOSSY_PREDECESSOR = ("121330", "Lossy compressed predecessor")
_LOSSY_COMPRESSION = ("113040", "Lossy Compression")


def _code(value: str, meaning: str) -> Dataset:
    from pydicom.dataset import Dataset

    item = Dataset()
    item.CodeValue, item.CodingSchemeDesignator, item.CodeMeaning = value, "DCM", meaning
    return item


def mark_lossy(out: Dataset, codec: Codec, source_lossy: bool) -> None:
    """Mark `out` as a lossy derivative of the image it was read as (PS3.3 C.7.6.1.1.5).

    Lossy Image Compression "01"; the achieved ratio and the method appended to
    their multi-valued lists (the ratio is a placeholder the writer patches); a new
    SOP Instance UID; the source referenced in Source Image Sequence as the
    uncompressed (or lossy compressed) predecessor; Derivation Description and
    Code Sequence (113040 Lossy Compression). Image Type is left alone: lossy
    compression is told by the attributes above, and making Value 1 DERIVED breaks
    the conditions of modules such as MR Pulse Sequence (dciodvfy reports them).
    """
    import pydicom
    from pydicom.dataset import Dataset
    from pydicom.multival import MultiValue

    from dicompress.writer import PLACEHOLDER_DS

    def values(keyword: str) -> list[str]:
        value = out.get(keyword)
        if value is None or value == "":
            return []
        return [str(v) for v in (value if isinstance(value, MultiValue) else [value])]

    out.LossyImageCompression = "01"
    out.LossyImageCompressionRatio = values("LossyImageCompressionRatio") + [PLACEHOLDER_DS]
    out.LossyImageCompressionMethod = values("LossyImageCompressionMethod") + [codec.lossy_method]

    if "SOPInstanceUID" in out:
        source = Dataset()
        if "SOPClassUID" in out:
            source.ReferencedSOPClassUID = out.SOPClassUID
        source.ReferencedSOPInstanceUID = out.SOPInstanceUID
        source.PurposeOfReferenceCodeSequence = [
            _code(*(_LOSSY_PREDECESSOR if source_lossy else _UNCOMPRESSED_PREDECESSOR))
        ]
        out.SourceImageSequence = [source]
    # The same source and settings give the same new UID: a run repeated (a resumed
    # batch, a gateway resending after a crash) makes a duplicate, never a second image.
    original = str(out.get("SOPInstanceUID", "") or "")
    out.SOPInstanceUID = derived_uid(
        original + "\0" + json.dumps(codec.get_config(), sort_keys=True, default=str)
    ) if original else pydicom.uid.generate_uid()

    settings = ", ".join(f"{k} {v}" for k, v in codec.get_config().items()
                         if k not in ("name", "transfer_syntax") and v is not None)
    note = f"Lossy compression by dicompress: {codec.name} ({codec.lossy_method}" + \
        (f"; {settings})" if settings else ")")
    previous = str(out.get("DerivationDescription", "") or "")
    out.DerivationDescription = (f"{previous}; {note}" if previous else note)[:1024]
    derivation = list(out.get("DerivationCodeSequence", []))
    derivation.append(_code(*_LOSSY_COMPRESSION))
    out.DerivationCodeSequence = derivation


def derived_uid(text: str) -> str:
    """A UID under 2.25 made from `text` (a UUID of version 8 of its SHA-256)."""
    from dicompress.deid.keys import uid_from_digest

    return uid_from_digest(hashlib.sha256(text.encode("utf-8", "surrogateescape")).digest())


def complete_file_meta(ds: Dataset) -> None:
    """Give `ds` the preamble and File Meta Information of PS3.10 7.1."""
    import pydicom

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


def _verify_file(path: Path, expected: Dataset, writer: PixelDataWriter,
                 hashes: list[str]) -> None:
    """Read `path` back: it must parse, carry the header we meant, and hold exactly
    the pixel data we wrote: each fragment found again through the offset tables,
    or the native bytes hashing the same."""
    import pydicom

    try:
        ds = pydicom.dcmread(path, defer_size=1024)
        for keyword in ("Rows", "Columns", "BitsAllocated", "PhotometricInterpretation",
                        "SOPInstanceUID", "NumberOfFrames"):
            if ds.get(keyword) != expected.get(keyword):
                raise VerificationFailed(f"{keyword} reads back as {ds.get(keyword)!r}")
        if ds.file_meta.TransferSyntaxUID != expected.file_meta.TransferSyntaxUID:
            raise VerificationFailed("the transfer syntax does not read back")
        if writer.encapsulated:
            found = _read_fragments(path, ds, len(hashes))
        elif writer.deflated:  # inflated by pydicom as a whole
            found = [hashlib.blake2b(bytes(ds.PixelData), digest_size=20).hexdigest()]
        else:
            found = [hash_span(path, ds.get_item(0x7FE00010, keep_deferred=True).value_tell,
                                writer.pixel_bytes_written)]
    except DicompressError:
        raise
    except Exception as exc:
        raise VerificationFailed(f"the output cannot be read back: {exc}") from exc
    if not writer.encapsulated:
        if found[0] != writer.pixel_hash.hexdigest():
            raise VerificationFailed("the pixel data reads back different from what was written")
        return
    if len(found) != len(hashes):
        raise VerificationFailed(f"the output has {len(found)} frames, the source {len(hashes)}")
    for n, (a, b) in enumerate(zip(found, hashes), 1):
        if a != b:
            raise VerificationFailed(f"frame {n} of the output differs from what was encoded")


def hash_span(path: Path, offset: int, length: int) -> str:
    h = hashlib.blake2b(digest_size=20)
    with open(path, "rb") as fp:
        fp.seek(offset)
        while length > 0:
            chunk = fp.read(min(length, 1 << 20))
            if not chunk:
                raise VerificationFailed("the pixel data is shorter than written")
            h.update(chunk)
            length -= len(chunk)
    return h.hexdigest()


def _read_fragments(path: Path, ds: Dataset, count: int) -> list[str]:
    """Hashes of the frames of `path`, located through its Basic or Extended Offset Table."""
    from pydicom.encaps import generate_frames

    extended = None
    if "ExtendedOffsetTable" in ds:
        extended = (ds.ExtendedOffsetTable, ds.ExtendedOffsetTableLengths)
    with open(path, "rb") as fp:
        fp.seek(ds.get_item(0x7FE00010, keep_deferred=True).value_tell)
        return [_digest(frame) for frame in
                generate_frames(fp, number_of_frames=count, extended_offsets=extended)]
