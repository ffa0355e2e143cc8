"""Header sources: what a file says about itself, read by pydicom with the pixel data left
on disk. (The fast path's header source, the byte ranges of a parsed file, is
`dicompress.direct.Parsed`.)

This is where pydicom's parser is called, so this is where its exceptions become ours:
not DICOM at all (`NotDicom`, a skip), or DICOM too damaged to parse (`InvalidDicomFile`).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from dicompress import uids
from dicompress.errors import (DicompressError, InvalidDicomFile, NotDicom, StorageError,
                               with_context)

if TYPE_CHECKING:
    from pydicom.dataset import Dataset

#: Values larger than this stay on disk until needed (the pixel data, large LUTs).
DEFER_SIZE = "256 KB"


def read_header(path: Path, *, any_object: bool = False) -> Dataset:
    """Read `path` with large values (the pixel data) left on disk until needed.

    A file without preamble and File Meta Information is taken when a forced read finds
    an image (or, with `any_object`, any object with SOP Class and Instance UIDs).

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

    check_regular(path)
    try:
        return pydicom.dcmread(path, defer_size=DEFER_SIZE)
    except InvalidDicomError as exc:
        # No preamble or file meta: still DICOM if a forced read finds an image.
        ds = _forced(path, any_object)
        if ds is None:
            raise NotDicom(f"not a DICOM file ({exc})") from exc
        return ds
    except OSError as exc:
        raise StorageError(f"cannot be read ({exc.strerror or exc})", exc.errno) from exc
    except Exception as exc:  # pydicom's parser on a truncated or garbled file raises many types
        raise InvalidDicomFile(
            f"cannot be parsed as DICOM ({type(exc).__name__}: {exc})") from exc


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


def foreign_error(exc: BaseException) -> InvalidDicomFile | None:
    """`exc` as a damaged file when it was raised inside pydicom (its parser converting a
    value lazily, its writer refusing one), or inside what pydicom called; None when it
    comes from our own code, which makes it a bug, never a bad file.

    Decided by the traceback: below the innermost frame of dicompress, a frame of pydicom.
    """
    import traceback

    import pydicom

    frames = traceback.extract_tb(exc.__traceback__)
    ours = os.path.dirname(os.path.abspath(__file__)).rsplit(os.sep, 1)[0] + os.sep
    theirs = os.path.dirname(pydicom.__file__) + os.sep
    last_ours = max((n for n, f in enumerate(frames) if f.filename.startswith(ours)), default=-1)
    if not any(f.filename.startswith(theirs) for f in frames[last_ours + 1:]):
        return None
    return InvalidDicomFile(f"cannot be parsed as DICOM ({type(exc).__name__}: {exc})")


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
    import struct

    from dicompress.errors import CorruptPixelData

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
            if (group, element) == (0xFFFE, 0xE0DD):
                return tell, pos + 8
            if (group, element) != (0xFFFE, 0xE000) or length == 0xFFFFFFFF:
                raise CorruptPixelData(f"({group:04X},{element:04X}) where an item of the "
                                       "encapsulated Pixel Data should be")
            pos += 8 + length
            if pos > size:
                raise CorruptPixelData("a fragment of the Pixel Data runs past the end of the file")
