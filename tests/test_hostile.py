"""Hostile and unlucky inputs: every command refuses them with a one-line reason naming the
file, and nothing hangs, crashes or is lost (issue 16)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from dicompress.samples import find_sample

COMMANDS = {
    "transcode": ["transcode", "{src}", "--to", "rle", "-o", "{out}", "--jobs", "1"],
    "transcode-j2": ["transcode", "{src}", "--to", "rle", "-o", "{out}", "--jobs", "2"],
    "deid": ["deid", "{src}", "-o", "{out}", "--key", "0123456789abcdef0123", "--jobs", "1"],
    "export": ["export", "{src}", "--format", "png", "-o", "{out}"],
    "compare": ["compare", "{src}", "--codecs", "rle"],
    "info": ["info", "{src}/fifo.dcm"],
}


def _run(command: str, src: Path, out: Path) -> subprocess.CompletedProcess:
    argv = [a.format(src=src, out=out) for a in COMMANDS[command]]
    return subprocess.run([sys.executable, "-m", "dicompress", *argv], capture_output=True,
                          text=True, timeout=60, stdin=subprocess.DEVNULL)


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_a_fifo_named_dcm_is_refused_not_opened(command, tmp_path):
    """Opening a FIFO for reading blocks until a writer comes: a run over a tree holding
    one must not hang (the timeout fails the test), and names it."""
    src = tmp_path / "in"
    src.mkdir()
    shutil.copy(find_sample("CT_small.dcm"), src / "ct.dcm")
    os.mkfifo(src / "fifo.dcm")
    proc = _run(command, src, tmp_path / "out")
    assert "Traceback" not in proc.stderr, proc.stderr
    text = proc.stdout + proc.stderr
    assert "fifo.dcm" in text and "FIFO" in text, text
    if command == "info":
        assert proc.returncode == 1
    else:
        assert proc.returncode == 0, text  # the FIFO is skipped; the image is done


@pytest.mark.parametrize("command", ["transcode", "deid"])
def test_in_place_does_not_rewrite_what_a_link_points_to(command, tmp_path):
    """A symbolic link in the tree to a file (or a folder) outside it: in place, the file
    outside is reported and left as it is, unless --follow-links."""
    import hashlib

    tree, outside = tmp_path / "tree", tmp_path / "outside"
    tree.mkdir()
    (outside / "sub").mkdir(parents=True)
    shutil.copy(find_sample("CT_small.dcm"), tree / "own.dcm")
    shutil.copy(find_sample("CT_small.dcm"), outside / "theirs.dcm")
    shutil.copy(find_sample("MR_small.dcm"), outside / "sub" / "deep.dcm")
    (tree / "link.dcm").symlink_to(outside / "theirs.dcm")
    (tree / "linked-folder").symlink_to(outside / "sub")
    before = {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in outside.rglob("*.dcm")}
    argv = (["transcode", str(tree), "--to", "rle"] if command == "transcode"
            else ["deid", str(tree), "--key", "0123456789abcdef0123"])
    proc = subprocess.run([sys.executable, "-m", "dicompress", *argv, "--in-place", "--jobs", "1",
                           "--journal", str(tmp_path / "j.sqlite")],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in outside.rglob("*.dcm")} == before
    text = proc.stdout + proc.stderr
    assert "link.dcm: a link to" in text and "deep.dcm: a link to" in text and "--follow-links" in text
    assert "Traceback" not in proc.stderr
    proc = subprocess.run([sys.executable, "-m", "dicompress", *argv, "--in-place", "--jobs", "1",
                           "--follow-links", "--journal", str(tmp_path / "j2.sqlite")],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in outside.rglob("*.dcm")} != before
