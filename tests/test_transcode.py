"""`dicompress transcode` and `info` on files and trees: outputs, attributes, failures, safety."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.encaps import generate_frames, parse_basic_offsets
from pydicom.uid import RLELossless

from conftest import frames_of
from dicompress.pipeline import verify as verify_module
from dicompress.pipeline.read import read_header
from dicompress.cli import main
from dicompress.errors import UnsupportedLayout, VerificationFailed
from dicompress.samples import find_sample
from conftest import KNOWN_UNTRANSCODABLE
from dicompress.transcode import transcode_file


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def tree(tmp_path):
    src = tmp_path / "in"
    (src / "ct").mkdir(parents=True)
    (src / "us" / "deep").mkdir(parents=True)
    shutil.copy(find_sample("CT_small.dcm"), src / "ct" / "a.dcm")
    shutil.copy(find_sample("SC_rgb_2frame.dcm"), src / "us" / "deep" / "rgb.dcm")
    shutil.copy(find_sample("rtplan.dcm"), src / "plan.dcm")  # DICOM, no pixel data
    (src / "notes.txt").write_text("not DICOM")
    return src


def test_tree_is_mirrored_and_verified(tree, tmp_path, capsys):
    before = {p: sha(p) for p in tree.rglob("*") if p.is_file()}
    out = tmp_path / "out"
    assert main(["transcode", str(tree), "--to", "rle", "-o", str(out), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["files"] == {"ok": 2, "not-image": 1, "not-dicom": 1}
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*")
                  if p.is_file() and not p.name.startswith(".dicompress-journal")) == [
        "ct/a.dcm", "plan.dcm", "us/deep/rgb.dcm"]  # the plan (no pixels) copied unchanged
    assert (out / "plan.dcm").read_bytes() == (tree / "plan.dcm").read_bytes()
    for rel in ("ct/a.dcm", "us/deep/rgb.dcm"):
        ds = pydicom.dcmread(out / rel)
        assert ds.file_meta.TransferSyntaxUID == RLELossless
        for a, b in zip(frames_of(tree / rel), frames_of(out / rel), strict=True):
            np.testing.assert_array_equal(a, b)
    assert {p: sha(p) for p in tree.rglob("*") if p.is_file()} == before  # originals untouched


def test_failures_are_reported_and_leave_nothing(tree, tmp_path, capsys):
    shutil.copy(find_sample("MR_truncated.dcm"), tree / "truncated.dcm")
    shutil.copy(find_sample("liver.dcm"), tree / "onebit.dcm")
    out = tmp_path / "out"
    assert main(["transcode", str(tree), "--to", "rle", "-o", str(out), "--json"]) == 1
    captured = capsys.readouterr()
    assert "truncated.dcm: the Pixel Data holds 8130 bytes; the image needs" in captured.err
    assert "onebit.dcm: Bits Allocated 1 cannot be RLE encoded" in captured.err
    summary = json.loads(captured.out)
    assert summary["files"]["ok"] == 2 and summary["files"]["failed"] == 2
    assert summary["exit_code"] == 1
    assert not (out / "truncated.dcm").exists() and not (out / "onebit.dcm").exists()
    assert not list(out.rglob("*dicompress-tmp*"))


def test_unknown_target_is_a_usage_error(tree, tmp_path, capsys):
    assert main(["transcode", str(tree), "--to", "zip", "-o", str(tmp_path)]) == 2
    assert "unknown target 'zip'" in capsys.readouterr().err


def test_target_by_uid(tmp_path):
    src = find_sample("MR_small.dcm")
    assert main(["transcode", str(src), "--to", str(RLELossless), "-o", str(tmp_path), "-q"]) == 0
    assert pydicom.dcmread(tmp_path / "MR_small.dcm").file_meta.TransferSyntaxUID == RLELossless


def test_refuses_to_overwrite_the_source(tmp_path, capsys):
    src = tmp_path / "a.dcm"
    shutil.copy(find_sample("MR_small.dcm"), src)
    before = sha(src)
    assert main(["transcode", str(src), "--to", "rle", "-o", str(tmp_path)]) == 1
    assert "would replace the original" in capsys.readouterr().err
    assert sha(src) == before


def test_lossless_attributes(tmp_path):
    src = find_sample("SC_rgb_2frame.dcm")
    result = transcode_file(src, tmp_path / "o.dcm", "rle")
    assert result.verified and result.frames == 2
    ds, orig = pydicom.dcmread(tmp_path / "o.dcm"), pydicom.dcmread(src)
    assert ds.SOPInstanceUID == orig.SOPInstanceUID  # lossless keeps the UIDs
    assert ds.file_meta.MediaStorageSOPInstanceUID == orig.SOPInstanceUID
    assert ds.PlanarConfiguration == 1  # PS3.5 G.2: RLE colour is by plane
    assert ds.NumberOfFrames == 2
    assert "LossyImageCompression" not in ds
    elem = ds["PixelData"]
    assert elem.VR == "OB" and elem.is_undefined_length
    # Basic Offset Table filled: one offset per frame, first 0
    fragments = list(generate_frames(ds.PixelData, number_of_frames=2))
    offsets = parse_basic_offsets(ds.PixelData)
    assert offsets == [0, 8 + len(fragments[0])]


def test_lossy_source_stays_marked_lossy(tmp_path):
    # a JPEG baseline file that forgot to say it was lossy
    ds = pydicom.dcmread(find_sample("SC_rgb_dcmtk_+eb+cy+np.dcm"))
    assert ds.PhotometricInterpretation == "YBR_FULL_422"
    del ds.LossyImageCompression
    src = tmp_path / "jpeg.dcm"
    ds.save_as(src)
    transcode_file(src, tmp_path / "o.dcm", "rle")
    out = pydicom.dcmread(tmp_path / "o.dcm")
    assert out.LossyImageCompression == "01"
    # decoded without colour conversion, the 4:2:2 subsampling is gone
    assert out.PhotometricInterpretation == "YBR_FULL"


def test_big_endian_binary_values_are_swapped(tmp_path):
    from pydicom.dataset import Dataset, FileMetaDataset

    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = pydicom.uid.ExplicitVRBigEndian
    ds.SOPClassUID = pydicom.uid.SecondaryCaptureImageStorage
    ds.SOPInstanceUID = pydicom.uid.generate_uid()
    ds.Rows, ds.Columns, ds.SamplesPerPixel = 4, 4, 1
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
    ds.PhotometricInterpretation = "MONOCHROME2"
    lut = np.array([1, 0x0203, 0x0405], dtype=">u2")
    ds.add_new(0x00283006, "OW", lut.tobytes())  # LUT Data, raw big-endian words
    pixels = np.arange(16, dtype=">u2").reshape(4, 4)
    ds.PixelData = pixels.tobytes()
    src = tmp_path / "be.dcm"
    ds.save_as(src, implicit_vr=False, little_endian=False, enforce_file_format=True)

    transcode_file(src, tmp_path / "le.dcm", "rle")
    out = pydicom.dcmread(tmp_path / "le.dcm")
    assert np.frombuffer(out[0x00283006].value, "<u2").tolist() == [1, 0x0203, 0x0405]
    np.testing.assert_array_equal(out.pixel_array, pixels)


@pytest.mark.parametrize("name", ["MR_small.dcm", "MR_small_implicit.dcm"])  # direct, general
def test_verification_failure_writes_nothing(name, tmp_path, monkeypatch):
    def broken(*args, **kwargs):
        raise VerificationFailed("frame 1 of the output differs from the source")

    monkeypatch.setattr(verify_module, "verify", broken)  # the one verifier, both paths
    target = tmp_path / "o.dcm"
    with pytest.raises(VerificationFailed, match=rf"{name}: frame 1 of the output differs"):
        transcode_file(find_sample(name), target, "rle")
    assert list(tmp_path.iterdir()) == []


def test_in_memory_check_catches_a_bad_encoder(tmp_path, monkeypatch):
    from dicompress.codecs import rle as rle_codec

    real = rle_codec.rle.encode_frame

    def corrupting(arr):
        data = bytearray(real(arr))
        data[-3] ^= 0x01
        return bytes(data)

    monkeypatch.setattr(rle_codec.rle, "encode_frame", corrupting)
    with pytest.raises(Exception, match="CT_small.dcm"):
        transcode_file(find_sample("CT_small.dcm"), tmp_path / "o.dcm", "rle")
    assert not (tmp_path / "o.dcm").exists()


def test_one_bit_is_refused_clearly(tmp_path):
    with pytest.raises(UnsupportedLayout, match="liver.dcm: Bits Allocated 1 cannot be RLE encoded"):
        transcode_file(find_sample("liver.dcm"), tmp_path / "o.dcm", "rle")


def test_info(capsys):
    assert main(["info", str(find_sample("MR_small_RLE.dcm")), str(find_sample("rtplan.dcm"))]) == 0
    out = capsys.readouterr().out
    assert "RLE Lossless" in out and "64x64" in out and "16/16s" in out
    assert "(no pixel data)" in out


def test_info_on_non_dicom_fails(tmp_path, capsys):
    junk = tmp_path / "junk.bin"
    junk.write_bytes(b"\0" * 10)
    assert main(["info", str(junk)]) == 1
    assert "junk.bin: not a DICOM file" in capsys.readouterr().err


def test_demo_runs(tmp_path, capsys):
    assert main(["demo", "-o", str(tmp_path / "demo")]) == 0
    out = capsys.readouterr().out
    assert "RG1_UNCR.dcm" in out and "verified" in out
    assert (tmp_path / "demo").is_dir()


@pytest.mark.parametrize("name", ["image_dfl.dcm", "OT-PAL-8-face.dcm", "ExplVR_BigEnd.dcm",
                                  "MR_small_implicit.dcm", "US1_J2KR.dcm", "JPEG-LL.dcm"])
def test_awkward_sources(name, tmp_path):
    """Deflated, no file meta, big endian, implicit VR, colour J2K, JPEG lossless."""
    src = find_sample(name)
    transcode_file(src, tmp_path / "o.dcm", "rle")
    out, orig = pydicom.dcmread(tmp_path / "o.dcm"), read_header(src)
    assert out.PhotometricInterpretation  # never emptied
    source_frames = pydicom.pixels.iter_pixels(orig, raw=True)
    for a, b in zip(source_frames, frames_of(tmp_path / "o.dcm"), strict=True):
        np.testing.assert_array_equal(a, b)
    if orig.PhotometricInterpretation not in ("YBR_RCT", "YBR_ICT"):
        assert out.PhotometricInterpretation == orig.PhotometricInterpretation


# Damaged on purpose, 1-bit, or beyond every installed decoder (12-bit JPEG with a
# misplaced marker; pydicom cannot sign-correct J2K_pixelrep_mismatch frame by frame).


def test_whole_corpus_transcodes_but_the_known_bad(tmp_path):
    from dicompress.batch import iter_sources, transcode_many
    from dicompress.samples import sample_dirs

    results = list(transcode_many(iter_sources(sample_dirs()), tmp_path, "rle"))
    failed = {r.source.name for r in results if r.status == "failed"}
    assert failed <= KNOWN_UNTRANSCODABLE, failed - KNOWN_UNTRANSCODABLE
    assert sum(r.status == "ok" for r in results) >= 145
    assert all(r.verified for r in results if r.status == "ok")


def test_a_bug_of_ours_is_an_internal_error_never_a_bad_file(tmp_path, monkeypatch, capsys):
    """errors.py: only exceptions raised inside pydicom are read as damaged files; our own
    keep their type and traceback, and the CLI exits with EXIT_INTERNAL."""
    from dicompress.codecs import available_codecs
    from dicompress.errors import EXIT_INTERNAL

    available_codecs()  # every built-in registered before one module is imported alone
    from dicompress.codecs import rle as rle_codec

    def broken(arr):
        raise TypeError("a bug")

    monkeypatch.setattr(rle_codec.rle, "encode_frame", broken)
    with pytest.raises(TypeError, match="a bug"):
        transcode_file(find_sample("CT_small.dcm"), tmp_path / "o.dcm", "rle")
    src = tmp_path / "in"
    src.mkdir()
    shutil.copy(find_sample("CT_small.dcm"), src)
    code = main(["transcode", str(src), "--to", "rle", "-o", str(tmp_path / "out"), "--jobs", "1"])
    err = capsys.readouterr().err
    assert code == EXIT_INTERNAL
    assert "internal error" in err and "Traceback" in err and "TypeError: a bug" in err
    assert not (tmp_path / "out" / "CT_small.dcm").exists()


def test_damage_met_inside_pydicom_is_a_damaged_file(tmp_path):
    """A value pydicom cannot convert when the general path touches it: InvalidDicomFile
    naming the file, not a traceback."""
    from dicompress.errors import InvalidDicomFile

    ds = pydicom.dcmread(find_sample("MR_small.dcm"))
    ds.file_meta.TransferSyntaxUID = pydicom.uid.ImplicitVRLittleEndian  # the general path
    src = tmp_path / "bad.dcm"
    ds.save_as(src, implicit_vr=True, enforce_file_format=True)
    data = bytearray(src.read_bytes())
    at = data.index(b"\x28\x00\x30\x00")  # Pixel Spacing becomes a Lossy Image Compression
    data[at:at + 4] = b"\x28\x00\x12\x21"  # Ratio (DS) that is not numbers: read when marking
    length = int.from_bytes(data[at + 4:at + 8], "little")
    data[at + 8:at + 8 + length] = b"x" * length
    src.write_bytes(bytes(data))
    with pytest.raises(InvalidDicomFile, match="bad.dcm: cannot be parsed as DICOM"):
        transcode_file(src, tmp_path / "o.dcm", "j2k-lossy")
    assert not (tmp_path / "o.dcm").exists()


def test_pydicom_misused_by_us_is_our_bug_not_a_bad_file():
    """foreign_error reads only pydicom's parser and value conversion as the file's fault."""
    from pydicom.dataset import Dataset

    from dicompress.pipeline.read import errors_named

    with pytest.raises(ValueError, match="NoSuchKeyword"):
        with errors_named(Path("x.dcm")):
            Dataset().get_item("NoSuchKeyword")
