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
