"""Header sources: what a file says about itself, read by pydicom with the pixel data left
on disk. (The fast path's header source, the byte ranges of a parsed file, is
`dicompress.direct.Parsed`.)

This is where pydicom's parser is called, so this is where its exceptions become ours:
not DICOM at all (`NotDicom`, a skip), or DICOM too damaged to parse (`InvalidDicomFile`).
"""

from __future__ import annotations

import contextlib
import os
import threading
import struct
import warnings
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from dicompress import uids
from dicompress.errors import (CorruptPixelData, DicompressError, InvalidDicomFile, NotDicom,
                               StorageError, reason_of, with_context)
from dicompress.pipeline.check import (PIXEL_DATA, check_inflated, check_pixel_data,
                                       encapsulated_items)

if TYPE_CHECKING:
    from pydicom.dataset import Dataset

#: Values larger than this stay on disk until needed (the pixel data, large LUTs).
DEFER_SIZE = "256 KB"


_WARNINGS = threading.Lock()


def read_header(path: Path, *, any_object: bool = False, convert: Iterable[str] = ()
                ) -> Dataset:
    """Read `path` with large values (the pixel data) left on disk until needed.

    A file without preamble and File Meta Information is taken when a forced read finds
    an image (or, with `any_object`, any object with SOP Class and Instance UIDs).
    The values of the keywords in `convert` are converted here: pydicom converts a
    value when it is first read, and a damaged one raises then, of many types, wherever
    that is (each command names those it reads: `direct.view.HEADER_VALUES` for
    export, `compare.selection.COMPARED`).

    Raises
    ------
    NotDicom
        Nothing in the file reads as DICOM.
    InvalidDicomFile
        It starts as DICOM but cannot be parsed (truncated, garbled).
    StorageError
        The OS would not let it be read.
    """
    import pydicom
    from pydicom.errors import InvalidDicomError

    size = check_regular(path)
    deflated_at = _deflated_data_set(path)
    if deflated_at is not None:  # pydicom inflates all of it into memory: bound that first
        check_inflated(path, deflated_at)
    try:
        # warnings.catch_warnings changes the process's warning state: one thread at a time
        # (the gateway's receiver and forwarder threads, compress() from a user's threads)
        with _WARNINGS, warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            ds = pydicom.dcmread(path, defer_size=DEFER_SIZE)
    except InvalidDicomError as exc:
        # No preamble or file meta: still DICOM if a forced read finds an image.
        with _WARNINGS, warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            ds = _forced(path, any_object)
        if ds is None:
            raise NotDicom(f"not a DICOM file ({exc})") from exc
    except OSError as exc:
        raise StorageError(f"cannot be read ({exc.strerror or exc})", exc.errno) from exc
    except Exception as exc:  # pydicom's parser on a truncated or garbled file raises many types
        raise InvalidDicomFile(
            f"cannot be parsed as DICOM ({type(exc).__name__}: {reason_of(exc)})") from exc
    check_complete(path, ds, size, [str(w.message) for w in caught])
    if PIXEL_DATA in ds:
        check_pixel_data(path, ds, size)
    for keyword in convert:
        try:
            ds.get(keyword)
        except Exception as exc:
            damage = foreign_error(exc)
            if damage is None:
                raise  # a bug of ours
            raise InvalidDicomFile(f"{keyword}: {damage}") from exc
    return ds


#: Values of these VRs have a 4-byte length after 2 reserved bytes (PS3.5 7.1.2).
_LONG_VRS = (b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN", b"UR",
             b"UT", b"UV")


def _deflated_data_set(path: Path) -> int | None:
    """Where the deflated data set of `path` starts when its File Meta Information says
    Deflated Explicit VR Little Endian (PS3.5 A.5); None otherwise.

    The File Meta Information is walked element by element to its end, the first element
    of another group, as pydicom reads it: with a preamble and ``DICM`` or without
    (a forced read), whatever its (0002,0000) group length says or whether it has one.
    Only the elements' headers and the Transfer Syntax UID are read.
    """
    size = os.path.getsize(path)
    with open(path, "rb") as fp:
        head = fp.read(132)
        pos = 132 if head[128:132] == b"DICM" else 0
        syntax = None
        while pos + 8 <= size:  # Explicit VR Little Endian (PS3.10 7.1)
            fp.seek(pos)
            header = fp.read(12)
            group, element, vr = struct.unpack_from("<HH2s", header)
            if group != 0x0002:
                break
            if vr in _LONG_VRS:
                if len(header) < 12:
                    return None  # cut short: pydicom says what is wrong with it
                (length,), value = struct.unpack_from("<I", header, 8), pos + 12
            else:
                (length,), value = struct.unpack_from("<H", header, 6), pos + 8
            if length == 0xFFFFFFFF:
                return None  # not a File Meta element pydicom reads as one
            if (group, element) == (0x0002, 0x0010):
                fp.seek(value)
                syntax = fp.read(min(length, 64)).rstrip(b"\0 ").decode("ascii", "replace")
            pos = value + length
    return pos if syntax == uids.DeflatedExplicitVRLittleEndian else None


def check_complete(path: Path, ds: Dataset, size: int, complaints: list[str] = ()) -> None:
    """Refuse a dataset that pydicom read only in part, which it does without an error:
    it stops at the damage and hands back what came before.

    Two signs, checked without reading a value: an element of the top level whose value
    runs past the end of the file (a damaged or hostile length: the value swallowed
    whatever followed it, Pixel Data included); and no Pixel Data in the dataset while
    the file holds the bytes of a Pixel Data element (pydicom stopped before it: an
    encapsulated value without its Sequence Delimitation Item, a junk one, a body in
    another byte order than its transfer syntax says). The gateway calls this on a
    received file too.

    Parameters
    ----------
    path
        The file `ds` was read from (with its large values left on disk).
    size
        Its size in bytes.
    complaints
        The warnings pydicom gave while reading it: the first is the reason given.

    Raises
    ------
    InvalidDicomFile
        The dataset is not the whole of what the file holds.
    """
    if transfer_syntax_of(ds) in _DEFLATED:
        return  # positions are in the inflated stream, not the file (PS3.5 A.5)
    for tag in list(ds.keys()):
        if tag == PIXEL_DATA:
            continue  # pixel_span and the frame sources say what the image needed
        elem = ds.get_item(tag, keep_deferred=True)
        tell, length = getattr(elem, "value_tell", None), getattr(elem, "length", None)
        if tell is None or length is None or length == 0xFFFFFFFF:
            continue
        if tell + length > size:  # PS3.5 7.1.1: the length is the value's, in bytes
            raise InvalidDicomFile(
                f"element ({tag >> 16:04X},{tag & 0xFFFF:04X}) says its value is {length} bytes "
                f"but the file ends {size - tell} bytes after the value starts"
                + _byte_order_hint(path, ds))
    if "PixelData" in ds or "FloatPixelData" in ds or "DoubleFloatPixelData" in ds:
        return
    if not complaints and not ("Rows" in ds and "Columns" in ds):
        return  # read to its end without a complaint, and no image: a Pixel Data found in
        # its bytes is an icon's, inside a sequence (DICOMDIR records, reports)
    implicit = ds.original_encoding[0] if hasattr(ds, "original_encoding") else False
    found = _pixel_data_bytes(path, implicit)
    if found is not None:
        reason = complaints[0] if complaints else "the elements before it do not parse"
        reason = reason.replace(f" found in file {path}", "").replace(f" in file {path}", "")
        raise InvalidDicomFile(f"the file holds a Pixel Data element (at byte {found}) that "
                               f"cannot be read: {reason.rstrip('.')}")


_DEFLATED = {uids.DeflatedExplicitVRLittleEndian}

#: The tag (7FE0,0010) in either byte order, and the VRs an explicit Pixel Data has
#: (PS3.5 8.2: OB or OW; UN once a private or unknown syntax has been through).
_PIXEL_DATA_TAGS = (b"\xe0\x7f\x10\x00", b"\x7f\xe0\x00\x10")
_PIXEL_DATA_VRS = (b"OB\0\0", b"OW\0\0", b"UN\0\0")


def _byte_order_hint(path: Path, ds: Dataset) -> str:
    """Why a big endian file's lengths make no sense, when its body is little endian."""
    if getattr(ds, "original_encoding", (None, True))[1] is not False:
        return ""
    found = _pixel_data_bytes(path, False, _PIXEL_DATA_TAGS[:1])
    return "" if found is None else (
        f" (the body is little endian: a Pixel Data element in little endian order at byte "
        f"{found}; the transfer syntax says big endian)")


def _pixel_data_bytes(path: Path, implicit: bool, tags: tuple[bytes, ...] = _PIXEL_DATA_TAGS
                      ) -> int | None:
    """Where the bytes of a Pixel Data element header are in `path` (tag, then an explicit
    VR of OB, OW or UN, or, in an implicit file, any length), or None; read in chunks."""
    chunk, overlap = 1 << 20, 8
    with open(path, "rb") as fp:
        start, data = 0, b""
        while True:
            more = fp.read(chunk)
            data += more
            for tag in tags:
                at = data.find(tag)
                while at >= 0 and at + 8 <= len(data):
                    if implicit or data[at + 4:at + 8] in _PIXEL_DATA_VRS:
                        return start + at
                    at = data.find(tag, at + 1)
            if not more:
                return None
            start += max(0, len(data) - overlap)
            data = data[-overlap:]


def check_regular(path: Path) -> int:
    """The size of `path`, a regular file; a FIFO, a device or a socket is refused before
    anything opens it (opening a FIFO blocks until a writer comes)."""
    import stat

    try:
        st = os.stat(path)
    except OSError as exc:
        raise StorageError(f"cannot be read ({exc.strerror or exc})", exc.errno) from exc
    if not stat.S_ISREG(st.st_mode):
        kind = ("a folder" if stat.S_ISDIR(st.st_mode) else "a FIFO" if stat.S_ISFIFO(st.st_mode)
                else "a socket" if stat.S_ISSOCK(st.st_mode) else "a device")
        raise NotDicom(f"not a regular file ({kind}): not opened")
    return st.st_size


def _forced(path: Path, any_object: bool) -> Dataset | None:
    """`path` read without its preamble and meta, if what it holds is an object we know."""
    import pydicom

    try:
        ds = pydicom.dcmread(path, defer_size=DEFER_SIZE, force=True)
        found = ("PixelData" in ds and "Rows" in ds) or (
            any_object and "SOPClassUID" in ds and "SOPInstanceUID" in ds)
    except Exception:  # noqa: BLE001 - a forced read of a non-DICOM file fails any way it likes
        return None
    if not found:
        return None
    if "TransferSyntaxUID" not in ds.file_meta:
        implicit, little = ds.original_encoding
        ds.file_meta.TransferSyntaxUID = (
            uids.ImplicitVRLittleEndian if implicit
            else uids.ExplicitVRLittleEndian if little
            else uids.ExplicitVRBigEndian
        )
    return ds


def transfer_syntax_of(ds: Dataset) -> str:
    return str(ds.file_meta.get("TransferSyntaxUID", ""))


#: pydicom's modules that read, convert and write values: an exception raised in one of them
#: (innermost) is the file's. Elsewhere in pydicom (a keyword that does not exist, an API
#: misused) it is ours.
_PYDICOM_PARSERS = ("filereader.py", "values.py", "valuerep.py", "dataelem.py", "charset.py",
                    "filewriter.py", "multival.py", "sequence.py", "encaps.py", "filebase.py",
                    "fileutil.py", "hooks.py")


def foreign_error(exc: BaseException) -> InvalidDicomFile | None:
    """`exc` as a damaged file when pydicom's parser or value conversion raised it (a
    value converted lazily, a writer refusing a value read from the file), or what they
    called; None when it comes from our own code, which makes it a bug, never a bad file.

    Decided by the traceback: below the innermost frame of dicompress, the innermost
    frame of pydicom is in one of its reading, converting or writing modules.
    """
    import traceback

    import pydicom

    ours = os.path.dirname(os.path.abspath(__file__)).rsplit(os.sep, 1)[0] + os.sep
    theirs = os.path.dirname(pydicom.__file__) + os.sep
    cause: BaseException | None = exc
    seen: set[int] = set()  # a chain that loops back on itself ends there
    while cause is not None:  # pydicom re-raises a value's error naming its tag: the cause
        frames = traceback.extract_tb(cause.__traceback__)
        last_ours = max((n for n, f in enumerate(frames) if f.filename.startswith(ours)),
                        default=-1)
        inside = [f.filename for f in frames[last_ours + 1:] if f.filename.startswith(theirs)]
        if inside and inside[-1].endswith(_PYDICOM_PARSERS):
            return InvalidDicomFile(
                f"cannot be parsed as DICOM ({type(exc).__name__}: {reason_of(exc)})")
        seen.add(id(cause))
        cause = cause.__cause__ if id(cause.__cause__) not in seen else None
    return None


@contextlib.contextmanager
def errors_named(source: Path) -> Iterator[None]:
    """Every error of the block names `source`; the OS's become StorageError, pydicom's
    (`foreign_error`) InvalidDicomFile, and anything else, a bug of ours, passes as it is."""
    try:
        yield
    except DicompressError as exc:
        raise with_context(exc, source) from exc
    except OSError as exc:
        raise StorageError(f"{source}: {exc.strerror or exc}", exc.errno) from exc
    except Exception as exc:
        translated = foreign_error(exc)  # pydicom met a damaged value on the way
        if translated is None:
            raise  # a bug of ours: it keeps its traceback
        raise with_context(translated, source) from exc


def pixel_span(path: Path, elem) -> tuple[int, int]:
    """Where the value of the Pixel Data element `elem` (read with its value left on disk)
    lies in `path`: (start, end); encapsulated, to the end of its Sequence Delimitation
    Item, found by walking the items."""
    tell = elem.value_tell
    size = os.path.getsize(path)
    if elem.length != 0xFFFFFFFF:
        end = tell + elem.length
        if end > size:
            raise CorruptPixelData(f"the Pixel Data is {elem.length} bytes long but the file "
                                   f"ends {size - tell} bytes after it starts")
        return tell, end
    return tell, encapsulated_items(path, tell, size)[2]
