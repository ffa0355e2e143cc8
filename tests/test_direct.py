"""The direct path (dicompress.direct): the common files transcoded without pydicom must
give what the general pydicom path gives, and anything unexpected must go to that path."""

from __future__ import annotations

import shutil
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pydicom
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from pydicom.encaps import generate_frames

from conftest import frames_of
from dicompress import direct
from dicompress.codecs import get_codec
from dicompress.errors import DicompressError, VerificationFailed
from dicompress.samples import find_sample, sample_files
from dicompress.transcode import transcode_file

LOSSLESS = ("rle", "j2k", "htj2k", "jpegls")


def _eligible() -> list[Path]:
    found = []
    for path in sample_files():
        try:
            direct.Parsed(path.read_bytes()).layout()
        except direct.NotDirect:
            continue
        found.append(path)
    return found


ELIGIBLE = _eligible()


@pytest.fixture
def calls(monkeypatch):
    """Which files the direct path finished (rather than handing them on)."""
    done: list[Path] = []
    real = direct.transcode

    def spy(source, *args, **kwargs):
        result = real(source, *args, **kwargs)
        if result is not None:
            done.append(Path(source))
        return result

    monkeypatch.setattr(direct, "transcode", spy)
    return done


def _general(monkeypatch, *args, **kwargs):
    """transcode_file with the direct path switched off."""
    with monkeypatch.context() as m:
        m.setattr(direct, "transcode", lambda *a, **k: None)
        return transcode_file(*args, **kwargs)


def _same_dataset(a: Path, b: Path) -> None:
    da, db = pydicom.dcmread(a), pydicom.dcmread(b)
    assert da.preamble == db.preamble
    assert list(da.file_meta.keys()) == list(db.file_meta.keys())
    for elem in da.file_meta:
        assert db.file_meta[elem.tag].value == elem.value, elem
    assert list(da.keys()) == list(db.keys())
    for elem in da:
        if elem.tag != 0x7FE00010:
            assert db[elem.tag].value == elem.value, elem
    frames = int(da.get("NumberOfFrames", 1) or 1)
    assert list(generate_frames(da.PixelData, number_of_frames=frames)) == \
        list(generate_frames(db.PixelData, number_of_frames=frames))


def test_the_corpus_has_files_for_the_direct_path():
    # CT, MR, CR, 8-bit, signed and unsigned, 10-16 bits stored, multi-frame, overlays,
    # trailing padding: the shapes an archive is made of
    names = {p.name for p in ELIGIBLE}
    assert len(ELIGIBLE) >= 40
    assert {"CT_small.dcm", "MR_small.dcm", "emri_small.dcm", "RG1_UNCR.dcm",
            "vlut_04.dcm"} <= names


@pytest.mark.parametrize("target", LOSSLESS)
def test_direct_path_gives_what_the_general_path_gives(target, tmp_path, calls, monkeypatch):
    """Every eligible corpus file: the same File Meta Information, the same elements with
    the same values, the same fragments, and pixels equal to the source's."""
    compared = 0
    for n, path in enumerate(ELIGIBLE):
        fast, slow = tmp_path / f"{n}-direct.dcm", tmp_path / f"{n}-general.dcm"
        try:
            general = _general(monkeypatch, path, slow, target)
        except DicompressError as exc:  # e.g. J2K refusing values past Bits Stored
            with pytest.raises(type(exc)):
                transcode_file(path, fast, target)
            assert not fast.exists()
            continue
        result = transcode_file(path, fast, target)
        assert calls[-1] == path
        assert (result.frames, result.size_out, result.transfer_syntax_out) == \
            (general.frames, general.size_out, general.transfer_syntax_out)
        assert result.verified and not result.lossy
        _same_dataset(fast, slow)
        for a, b in zip(frames_of(path), frames_of(fast), strict=True):
            np.testing.assert_array_equal(a, b)
        compared += 1
    assert compared >= 30


def test_other_files_take_the_general_path(tmp_path, calls):
    for name in ("MR_small_implicit.dcm", "SC_rgb_small_odd.dcm", "JPEG2000.dcm",
                 "MR_small_bigendian.dcm", "examples_palette.dcm"):
        out = tmp_path / name
        transcode_file(find_sample(name), out, "rle")
        for a, b in zip(frames_of(find_sample(name)), frames_of(out), strict=True):
            np.testing.assert_array_equal(a, b)
    assert calls == []


@pytest.mark.parametrize("target", ["j2k-lossy", "jpegls-near", "explicit", "deflate"])
def test_lossy_and_native_targets_take_the_general_path(target, tmp_path, calls):
    transcode_file(find_sample("CT_small.dcm"), tmp_path / "out.dcm", target)
    assert calls == []


def test_bits_above_bits_stored_are_treated_as_the_general_path_treats_them(tmp_path,
                                                                               monkeypatch):
    """12 bits stored of 16, with the unused high bits set in some pixels (PS3.5 8.1.1):
    both paths code the sign extension of the stored value (pydicom's reading)."""
    ds = pydicom.dcmread(find_sample("CT_small.dcm"))
    arr = ds.pixel_array.astype(np.int16)
    arr[::7, ::5] |= np.int16(-0x1000)  # garbage in bits 12-15
    ds.BitsStored, ds.HighBit = 12, 11
    ds.PixelData = arr.tobytes()
    src = tmp_path / "garbage.dcm"
    ds.save_as(src)
    _general(monkeypatch, src, tmp_path / "slow.dcm", "rle")
    transcode_file(src, tmp_path / "fast.dcm", "rle")
    _same_dataset(tmp_path / "fast.dcm", tmp_path / "slow.dcm")


# The writer and the verifier both paths share are tested in tests/test_pipeline.py.


_HEADER = find_sample("MR_small.dcm").read_bytes()


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.integers(0, 4000), st.integers(0, 255)), min_size=1, max_size=8),
       st.integers(0, len(_HEADER)))
def test_hostile_bytes_only_ever_raise_not_direct(edits, cut):
    """Bytes changed anywhere in the header and the file cut anywhere: the walk either
    accepts the file or says NotDirect; nothing else escapes (struct, index, recursion)."""
    data = bytearray(_HEADER[:cut])
    for at, value in edits:
        if at < len(data):
            data[at] = value
    try:
        parsed = direct.Parsed(bytes(data))
        layout = parsed.layout()
    except direct.NotDirect:
        return
    assert parsed.pixel_data.value_at + parsed.pixel_data.length <= len(data)
    assert layout.rows and layout.columns


def test_deep_nesting_is_refused_not_recursed(tmp_path):
    item_start, item_end = b"\xfe\xff\x00\xe0\xff\xff\xff\xff", b"\xfe\xff\x0d\xe0\0\0\0\0"
    sq = b"\x08\x00\x15\x11SQ\0\0\xff\xff\xff\xff"  # (0008,1115), undefined length
    nested = (sq + item_start) * 5000 + (item_end + b"\xfe\xff\xdd\xe0\0\0\0\0") * 5000
    data = _HEADER[:_HEADER.index(b"\x08\x00\x16\x00")] + nested
    with pytest.raises(direct.NotDirect, match="too deep"):
        direct.Parsed(data)


def test_truncated_files_fail_cleanly_on_either_path(tmp_path):
    source = find_sample("CT_small.dcm").read_bytes()
    padding = source.rindex(b"\xfc\xff\xfc\xff")  # cut trailing padding is not missed
    for cut in [*range(200, padding, 997), padding - 1]:
        src = tmp_path / "cut.dcm"
        src.write_bytes(source[:cut])
        out = tmp_path / "out.dcm"
        with pytest.raises(DicompressError, match="cut.dcm"):
            transcode_file(src, out, "rle")
        assert not out.exists()
        assert sorted(p.name for p in tmp_path.iterdir()) == ["cut.dcm"]


def test_uids_are_pydicoms():
    import pydicom.uid

    from dicompress import uids

    names = [n for n, v in vars(uids).items() if not n.startswith("_") and isinstance(v, str)]
    assert len(names) >= 15
    for name in names:
        assert getattr(uids, name) == getattr(pydicom.uid, name), name


def _python(code: str) -> list[str]:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True).stdout.split()


def test_pydicom_is_imported_only_when_a_file_needs_it(tmp_path):
    """The CLI and a run of direct-path files never import pydicom (0.25 s); a file that
    needs the general path does, and pydicom then finds our plugins registered."""
    ct, implicit = tmp_path / "ct", tmp_path / "implicit"
    ct.mkdir(), implicit.mkdir()
    shutil.copy(find_sample("CT_small.dcm"), ct)
    shutil.copy(find_sample("MR_small_implicit.dcm"), implicit)
    run = ("import sys; from dicompress.cli import main; "
           "code = main(['transcode', sys.argv[1], '--to', 'rle', '-o', sys.argv[2], '-j', '1', "
           "'-q']); print(code, 'pydicom' in sys.modules)")
    for source, needs in ((ct, "False"), (implicit, "True")):
        out = subprocess.run([sys.executable, "-c", run, str(source), str(tmp_path / f"o-{needs}")],
                             capture_output=True, text=True, check=True).stdout.split()
        assert out[-2:] == ["0", needs]
    registered = ("import pydicom.pixels.decoders.base as d, pydicom.pixels.encoders.base as e; "
                  "print(next(iter(d.RLELosslessDecoder._available)), "
                  "'dicompress' in e.RLELosslessEncoder._available)")
    assert _python("import dicompress; " + registered) == ["dicompress", "True"]  # pydicom after
    assert _python("import pydicom, dicompress; " + registered) == ["dicompress", "True"]
    # looking whether pydicom is installed does not use the hook up
    assert _python("import importlib.util, dicompress; importlib.util.find_spec('pydicom'); "
                   + registered) == ["dicompress", "True"]


def _edited(tmp_path, name: str, changes: dict) -> Path:
    """CT_small with `changes` (keyword -> value), saved explicit LE; a bytes key is
    replaced by its value in the file's bytes (what pydicom would not write)."""
    ds = pydicom.dcmread(find_sample("CT_small.dcm"))
    for keyword, value in changes.items():
        if isinstance(keyword, str):
            setattr(ds, keyword, value)
    path = tmp_path / name
    ds.save_as(path)
    for old, new in changes.items():
        if isinstance(old, bytes):
            assert old in path.read_bytes()
            path.write_bytes(path.read_bytes().replace(old, new, 1))
    return path


@pytest.mark.parametrize("changes", [
    # a stale Extended Offset Table would be copied beside the new fragments
    {"ExtendedOffsetTable": b"\0" * 8, "ExtendedOffsetTableLengths": b"\0" * 8},
    {"SOPInstanceUID": ""},  # the general path refuses it (File Meta needs it)
    {"NumberOfFrames": "01"},  # pydicom writes "1 ": both paths must give the same bytes
    {"NumberOfFrames": "1",  # then 5,000 digits (pydicom will not write them): no int() of it
     b"\x28\x00\x08\x00IS\x02\x001 ": b"\x28\x00\x08\x00IS\x88\x13" + b"1" * 5000},
    {"PhotometricInterpretation": "MONOCHROME2\0"},
])
def test_values_the_general_path_rewrites_are_left_to_it(changes, tmp_path):
    path = _edited(tmp_path, "edited.dcm", changes)
    with pytest.raises(direct.NotDirect):
        direct.Parsed(path.read_bytes()).layout()
