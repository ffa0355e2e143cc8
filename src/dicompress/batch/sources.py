"""What to work on: files, folder trees, glob patterns and file lists, walked lazily.

Every source carries the path it is read from and the path it maps to under an
output folder, so the output mirrors the input tree. Nothing is collected up front:
an archive of millions of files is walked as it is worked on.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from dicompress.fileio import TEMP_SUFFIX

#: Our own files that are never inputs: temporaries of atomic writes, run journals.
_OWN_PREFIXES = (".dicompress-journal",)


@dataclass(frozen=True)
class Source:
    path: Path
    relative: Path  # where it goes under the output folder
    #: The folder (or a glob's fixed prefix) it was found under; None for a file named
    #: itself. In place, a file whose real path lies outside its root (reached through a
    #: symbolic link) is not rewritten unless links are to be followed.
    root: Path | None = None


def is_own_file(name: str) -> bool:
    return name.endswith(TEMP_SUFFIX) or name.startswith(_OWN_PREFIXES)


def _has_magic(text: str) -> bool:
    return any(c in text for c in "*?[")


def _walk(root: Path) -> Iterator[Path]:
    """Files under `root`, sorted, following symlinks but not their loops."""
    visited: set[tuple[int, int]] = set()
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        try:
            st = os.stat(dirpath)
        except OSError:
            dirnames[:] = []
            continue
        if (st.st_dev, st.st_ino) in visited:  # a symlink loop, or a second link to a folder
            dirnames[:] = []
            continue
        visited.add((st.st_dev, st.st_ino))
        dirnames.sort()
        for name in sorted(filenames):
            if not is_own_file(name):
                yield Path(dirpath) / name


def _name_regex(part: str) -> str:
    """One path component of a glob: ``*``, ``?`` and ``[...]`` (``[!...]`` negated)."""
    regex, i = "", 0
    while i < len(part):
        c = part[i]
        close = part.find("]", i + 2) if c == "[" else -1
        if c == "*":
            regex += "[^/]*"
        elif c == "?":
            regex += "[^/]"
        elif close != -1:
            body = part[i + 1:close]
            regex += "[" + ("^" + body[1:] if body.startswith("!") else body).replace("\\", "\\\\") + "]"
            i = close
        else:
            regex += re.escape(c)
        i += 1
    return regex


def _pattern(parts: tuple[str, ...]) -> re.Pattern:
    """A regex for a relative glob; ``**`` is any number of folders (or, last, anything)."""
    regex = ""
    for n, part in enumerate(parts):
        last = n == len(parts) - 1
        if part == "**":
            regex += ".*" if last else "(?:[^/]+/)*"
        else:
            regex += _name_regex(part) + ("" if last else "/")
    return re.compile(regex)


def _glob(pattern: Path) -> Iterator[Source]:
    """Files matching `pattern`, or under folders matching it, walked like a folder
    (sorted, symlink loops not followed), relative to the pattern's fixed prefix."""
    prefix_parts: list[str] = []
    for part in pattern.parts:
        if _has_magic(part):
            break
        prefix_parts.append(part)
    prefix = Path(*prefix_parts) if prefix_parts else Path(".")
    regex = _pattern(pattern.parts[len(prefix_parts):])
    if not prefix.is_dir():
        return
    for path in _walk(prefix):
        relative = path.relative_to(prefix)
        parts = relative.parts
        # the file itself, or one of its folders, matches
        if any(regex.fullmatch("/".join(parts[:n])) for n in range(len(parts), 0, -1)):
            yield Source(path, relative, prefix)


def _list_lines(from_list: str) -> Iterator[str]:
    handle = sys.stdin if from_list == "-" else open(from_list, encoding="utf-8")
    with contextlib.ExitStack() as stack:
        if handle is not sys.stdin:
            stack.enter_context(handle)
        for line in handle:
            line = line.rstrip("\r\n")
            if line.strip():
                yield line


def _listed(line: str) -> Source:
    """A path from a file list: relative paths keep their place, absolute ones lose the root."""
    path = Path(line)
    relative = Path(*path.parts[1:]) if path.is_absolute() else path
    return Source(path, relative)


def iter_sources(paths: Iterable[str | Path], from_list: str | None = None) -> Iterator[Source]:
    """Files named, files under folders named, files matching glob patterns, and the
    lines of `from_list` (a file of paths, ``-`` for stdin).

    A file maps to its own name under the output folder; a folder's files keep their
    path relative to that folder; a glob's matches keep their path relative to the
    pattern's fixed prefix. Duplicates are left to the caller (the journal keys on the
    resolved path), so this holds no per-file state.
    """
    for arg in paths:
        text = str(arg)
        root = Path(text)
        if root.is_dir():
            for path in _walk(root):
                yield Source(path, path.relative_to(root), root)
        elif not root.exists() and _has_magic(text):
            yield from _glob(root)
        else:
            yield Source(root, Path(root.name))
    if from_list is not None:
        for line in _list_lines(from_list):
            yield _listed(line)


def unique(sources: Iterable[Source]) -> Iterator[Source]:
    """`sources` without repeats of the same file (by resolved path); for bounded runs.

    The batch runner does this through its journal instead, which stays on disk.
    """
    seen: set[Path] = set()
    for source in sources:
        real = source.path.resolve()
        if real not in seen:
            seen.add(real)
            yield source
