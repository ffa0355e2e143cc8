"""Our RLE files as other DICOM systems read them: DCMTK, GDCM and dicom3tools (Debian)."""

from __future__ import annotations

import functools
import re
import subprocess
from pathlib import Path

import numpy as np
import pydicom
import pytest

from common import assert_same_frames
from conftest import corpus_images, frames_of, require_tool

pytestmark = [pytest.mark.peers, pytest.mark.slow]


CORPUS = corpus_images()


@pytest.fixture(scope="module")
def transcoded(transcoded_corpus) -> list[tuple[Path, Path]]:
    """Every corpus image RLE can carry, transcoded once for the session: (source, output)."""
    pairs = [(r.source, r.destination) for r in transcoded_corpus("rle").values()
             if r.status == "ok"]
    assert len(pairs) > 100
    return pairs


def _rle_output(transcoded_corpus, source: Path) -> Path:
    """`source` as RLE (the session's), or a skip where RLE does not carry it
    (tests/test_codecs.py checks why)."""
    result = transcoded_corpus("rle")[source]
    if result.status != "ok":
        pytest.skip("not written as RLE (tests/test_codecs.py checks the reason)")
    return result.destination


def _same_pixels(source: Path, decoded: Path) -> None:
    assert_same_frames(source, decoded)


def _sample(pairs, step=1):
    return pairs[::step]


def test_most_of_the_corpus_is_rle(transcoded):
    assert len(transcoded) > 100


@pytest.mark.parametrize("source", CORPUS, ids=lambda p: p.name)
def test_dcmtk_dcmdrle_decodes_bit_exact(source, transcoded_corpus, tmp_path):
    tool = require_tool("dcmdrle")
    output = _rle_output(transcoded_corpus, source)
    raw = tmp_path / "raw.dcm"
    proc = subprocess.run([tool, str(output), str(raw)], capture_output=True, text=True)
    assert proc.returncode == 0, f"{source.name}: {proc.stderr}"
    assert pydicom.dcmread(raw, stop_before_pixels=True).file_meta.TransferSyntaxUID != pydicom.uid.RLELossless
    _same_pixels(source, raw)


def _gdcm_raw(tool: str, path: Path, raw: Path) -> Path | None:
    proc = subprocess.run([tool, "--raw", str(path), str(raw)], capture_output=True, text=True)
    return raw if proc.returncode == 0 else None


def _is_wide_colour(path: Path) -> bool:
    ds = pydicom.dcmread(path, stop_before_pixels=True)
    return ds.get("SamplesPerPixel", 1) == 3 and ds.BitsAllocated in (16, 32)


@pytest.mark.parametrize("source", CORPUS, ids=lambda p: p.name)
def test_gdcmconv_raw_decodes_bit_exact(source, transcoded_corpus, tmp_path):
    tool = require_tool("gdcmconv")
    output = _rle_output(transcoded_corpus, source)
    ours = _gdcm_raw(tool, output, tmp_path / "ours.dcm")
    try:
        assert ours is not None, f"gdcmconv cannot convert our {output.name}"
        _same_pixels(source, ours)
    except AssertionError:
        # GDCM misreads 16- and 32-bit colour RLE from every encoder (see the test
        # below); DCMTK, pylibjpeg-rle and pydicom read these files right.
        assert _is_wide_colour(source), f"GDCM misreads our {output.name}"


def test_gdcm_quirks_are_few(transcoded):
    """The exception above (wide colour) covers under a fifth of the RLE outputs."""
    wide = [source.name for source, _ in transcoded if _is_wide_colour(source)]
    assert len(wide) < len(transcoded) // 5, wide


@pytest.mark.parametrize("name", ["SC_rgb_rle_16bit.dcm", "SC_rgb_rle_32bit.dcm"])
def test_gdcm_misreads_wide_colour_rle_of_other_encoders_too(name, tmp_path):
    """The exception above is GDCM's: it fails on pydicom's reference RLE files as well."""
    from dicompress.samples import find_sample

    tool = require_tool("gdcmconv")
    source = find_sample(name)
    raw = _gdcm_raw(tool, source, tmp_path / "theirs.dcm")
    assert raw is not None
    theirs = frames_of(raw)[0]
    reference = frames_of(source)[0]  # pydicom's own decoder, which agrees with DCMTK
    assert not np.array_equal(theirs, reference)


_ERROR = re.compile(r"^Error - (.*)$", re.M)


def _errors(tool: str, path: Path) -> set[str] | None:
    """dciodvfy's error lines, or None when it could not read the file at all."""
    proc = subprocess.run([tool, str(path)], capture_output=True, text=True, errors="replace")
    text = proc.stdout + proc.stderr
    if "Assertion" in text or "Dicom dataset read failed" in text or proc.returncode < 0:
        return None  # it aborts on 32-bit native pixel data, cannot inflate deflated files
    # PS3.10 copies SOP Instance UID into the file meta: a bad one is reported twice
    text = text.replace("(0x0002,0x0003) UI Media Storage SOP Instance UID",
                        "(0x0008,0x0018) UI SOP Instance UID")
    text = text.replace("(0x0002,0x0003) Media Storage SOP Instance UID",
                        "(0x0008,0x0018) SOP Instance UID")
    # A lossy derivative references its source's SOP Instance UID: the same bad UID
    text = text.replace("(0x0008,0x1155) UI Referenced SOP Instance UID",
                        "(0x0008,0x0018) UI SOP Instance UID")
    text = text.replace("(0x0008,0x1155) Referenced SOP Instance UID",
                        "(0x0008,0x0018) SOP Instance UID")
    return {re.sub(r"\s+", " ", e).strip() for e in _ERROR.findall(text)}


@functools.lru_cache(maxsize=None)
def _errors_of_source(errors, tool: str, path: Path, _version: int) -> set[str] | None:
    """`errors(tool, path)` of a source, once per session (sources are compared with the
    outputs of a dozen targets)."""
    return errors(tool, path)


def new_errors(pairs, errors=_errors, unreadable_ok=lambda output: False):
    """dciodvfy's errors on each output that it did not report on its input:
    ({source name: new errors}, how many pairs were compared). `unreadable_ok(output)`
    names outputs dciodvfy may fail to read (it aborts on some layouts)."""
    tool = require_tool("dciodvfy")
    new, compared = {}, 0
    for source, output in pairs:
        before = _errors_of_source(errors, tool, source, source.stat().st_mtime_ns)
        if before is None:
            continue
        after = errors(tool, output)
        if after is None and unreadable_ok(output):
            continue
        assert after is not None, f"dciodvfy cannot read our {output.name}"
        compared += 1
        if after - before:
            new[source.name] = sorted(after - before)
    return new, compared


def test_dciodvfy_finds_no_new_errors(transcoded):
    new, compared = new_errors(transcoded)
    assert not new, new
    assert compared > 100
