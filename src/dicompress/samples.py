"""The real sample files installed with pydicom and pydicom-data.

They are the default input of ``dicompress demo`` and the corpus of the tests.
Nothing is downloaded: only files already on disk are listed.
"""

from __future__ import annotations

from pathlib import Path


def sample_dirs() -> list[Path]:
    """Folders holding the installed sample files (pydicom's, then pydicom-data's)."""
    dirs = []
    try:
        import pydicom

        dirs.append(Path(pydicom.__file__).parent / "data" / "test_files")
    except ImportError:  # pragma: no cover - pydicom is a dependency
        pass
    try:
        import data_store  # the import name of the pydicom-data package

        dirs.append(Path(data_store.__file__).parent / "data")
    except ImportError:
        pass
    return [d for d in dirs if d.is_dir()]


def sample_files() -> list[Path]:
    """Every file under the sample folders, sorted by folder then name."""
    files: list[Path] = []
    for d in sample_dirs():
        files.extend(sorted(p for p in d.rglob("*") if p.is_file() and p.suffix not in {".py", ".pyc", ".json", ".txt", ".gz", ".bz2", ".zip"}))
    return files


def find_sample(name: str) -> Path:
    """The sample file called `name` (e.g. ``"RG1_UNCR.dcm"``)."""
    for d in sample_dirs():
        hits = sorted(d.rglob(name))
        if hits:
            return hits[0]
    raise FileNotFoundError(f"{name} is not among the installed sample files; install pydicom-data")
