"""Writing files so that a reader only ever sees the old file or the complete new one."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from collections.abc import Callable
from pathlib import Path

#: Name ending of the temporaries `atomic_output` writes (found and removed after a crash).
TEMP_SUFFIX = ".dicompress-tmp"


@contextlib.contextmanager
def atomic_output(target: Path, before_replace: Callable[[Path], None] | None = None,
                  *, durable: bool = True) -> Iterator[Path]:
    """Yield a temporary path beside `target`; on success fsync it and rename it over `target`.

    `before_replace(tmp)` runs after the fsync and may raise to keep `target` as it
    is (e.g. when the original changed meanwhile). If anything raises, the temporary
    file is removed and `target` is untouched. Without `durable` nothing is fsynced:
    readers still see the old file or the whole new one, but a power cut may lose what
    was written (for outputs that can be made again, such as exported pictures: two
    fsyncs cost more than rendering and encoding a CT slice on a busy disk).
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=TEMP_SUFFIX,
                                    dir=target.parent)
    tmp = Path(tmp_name)
    try:
        _take_permissions(fd, target)
    finally:
        os.close(fd)
    try:
        yield tmp
        if durable:
            with open(tmp, "rb+") as fh:
                os.fsync(fh.fileno())
        if before_replace is not None:
            before_replace(tmp)
        os.replace(tmp, target)
        if durable:
            _fsync_dir(target.parent)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


def _take_permissions(fd: int, target: Path) -> None:
    """A file replaced keeps its mode, owner and group (an archive's 0600 stays 0600);
    a new file gets the usual mode (mkstemp makes 0600)."""
    try:
        st = os.stat(target)
    except FileNotFoundError:
        os.fchmod(fd, 0o666 & ~_UMASK)
        return
    os.fchmod(fd, st.st_mode & 0o7777)
    if (st.st_uid, st.st_gid) != (os.geteuid(), os.getegid()):
        with contextlib.suppress(PermissionError):  # only root may give files away
            os.fchown(fd, st.st_uid, st.st_gid)
        os.fchmod(fd, st.st_mode & 0o7777)  # chown clears set-id bits


def _read_umask() -> int:
    """The process umask, read once at import (setting it to read it is not thread-safe)."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


_UMASK = _read_umask()


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory fds
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)
