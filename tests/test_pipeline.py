"""The one writer and the one verifier (src/dicompress/pipeline/).

The verifier is checked against pydicom, which shares no code with it: what pydicom reads
from a good output is what the verifier is told to expect, and it must accept that output
and refuse every damaged copy of it.
"""

from __future__ import annotations

import hashlib
import struct
import zlib
from pathlib import Path

import blake3
import pydicom
import pytest
from pydicom.encaps import generate_frames

from dicompress import uids
from dicompress.errors import VerificationFailed
from dicompress.pipeline import verify as verifier
from dicompress.pipeline.write import fragment_digest
from dicompress.samples import find_sample
from dicompress.transcode import transcode_file


def _expected(path: Path) -> verifier.Expected:
    """What pydicom reads from `path`, as the verifier's expectation."""
    ds = pydicom.dcmread(path)
    syntax = str(ds.file_meta.TransferSyntaxUID)
    values = {k: ds.get(k) for k in verifier.CHECKED}
    if syntax in (uids.ExplicitVRLittleEndian, uids.ImplicitVRLittleEndian,
                  uids.DeflatedExplicitVRLittleEndian, uids.ExplicitVRBigEndian):
        value = ds.PixelData + b"\0" * (len(ds.PixelData) & 1)
        pixel = verifier.Value(blake3.blake3(value).hexdigest(16), len(value))
    else:
        frames = int(ds.get("NumberOfFrames", 1) or 1)
        fragments = [f + b"\0" * (len(f) & 1) for f in
                     generate_frames(ds.PixelData, number_of_frames=frames)]
        pixel = verifier.Fragments(tuple(fragment_digest(f) for f in fragments))
    return verifier.Expected(transfer_syntax=syntax, values=values, pixel_data=pixel)


def damage_after_the_writer(monkeypatch) -> None:
    """A fault between the writer and the disk: a byte of frame 1 changed once written."""
    from dicompress.pipeline import write

    real_finish = write.PixelDataWriter.finish

    def finish_then_damage(self, patch=None):
        real_finish(self, patch)
        self.fp.seek(self.first_item_at + 40)
        self.fp.write(b"\xff")

    monkeypatch.setattr(write.PixelDataWriter, "finish", finish_then_damage)


@pytest.fixture(scope="module")
def outputs(tmp_path_factory) -> dict[str, Path]:
    """A multi-frame image written in an encapsulated, a native, an implicit and a
    deflated syntax."""
    folder = tmp_path_factory.mktemp("outputs")
    made = {}
    for target in ("rle", "explicit", "implicit", "deflate"):
        made[target] = folder / f"{target}.dcm"
        transcode_file(find_sample("emri_small.dcm"), made[target], target)
    return made


@pytest.mark.parametrize("target", ["rle", "explicit", "implicit", "deflate"])
def test_the_verifier_accepts_what_pydicom_reads(outputs, target):
    path = outputs[target]
    assert verifier.verify(path, _expected(path), digest="sha256") == \
        hashlib.sha256(path.read_bytes()).hexdigest()


def _pixel_at(data: bytes) -> int:
    return data.index(b"\xe0\x7f\x10\x00")


def _damaged_encapsulated(data: bytes) -> dict[str, bytes]:
    at = _pixel_at(data)  # (7FE0,0010) OB, undefined length; then the offset table item
    table_length = struct.unpack_from("<I", data, at + 16)[0]
    first = at + 20 + table_length
    item_length = struct.unpack_from("<I", data, first + 4)[0]
    return {
        "offset table": data[:at + 24] + struct.pack("<I", 8) + data[at + 28:],
        "item length": data[:first + 4] + struct.pack("<I", item_length + 2) + data[first + 8:],
        "a fragment's byte": data[:first + 20] + bytes([data[first + 20] ^ 1]) + data[first + 21:],
        "delimiter": data[:-8] + b"\0" * 8,
        "cut short": data[:-3],
        "trailing bytes": data + b"\0\0\0\0",
        "syntax": data.replace(uids.RLELossless.encode(), b"1.2.840.10008.1.2.4.5", 1),
        "rows": data.replace(b"\x28\x00\x10\x00US\x02\x00\x40\x00", b"\x28\x00\x10\x00US\x02\x00\x41\x00", 1),
        "meta group length": data[:140] + struct.pack("<I", struct.unpack_from("<I", data, 140)[0] + 2)
        + data[144:],
        "order": data.replace(b"\x28\x00\x10\x00US", b"\x28\x00\x01\x00US", 1),
    }


def test_the_verifier_refuses_damaged_encapsulated_outputs(outputs, tmp_path):
    data = outputs["rle"].read_bytes()
    expected = _expected(outputs["rle"])
    assert b"\x28\x00\x10\x00US\x02\x00\x40\x00" in data  # Rows 64, as damaged below
    for what, bad in _damaged_encapsulated(data).items():
        path = tmp_path / "bad.dcm"
        path.write_bytes(bad)
        with pytest.raises(VerificationFailed):
            verifier.verify(path, expected)
            pytest.fail(f"damaged {what} accepted")


def test_the_verifier_refuses_damaged_native_outputs(outputs, tmp_path):
    for target in ("explicit", "implicit"):
        data = outputs[target].read_bytes()
        expected = _expected(outputs[target])
        at = _pixel_at(data) + (12 if target == "explicit" else 8)
        damaged = {
            "a sample": data[:at + 100] + bytes([data[at + 100] ^ 0x80]) + data[at + 101:],
            "cut short": data[:-2],
            "length": data[:at - 4] + struct.pack("<I", len(data) - at + 2) + data[at:],
        }
        for what, bad in damaged.items():
            path = tmp_path / "bad.dcm"
            path.write_bytes(bad)
            with pytest.raises(VerificationFailed):
                verifier.verify(path, expected)
                pytest.fail(f"{target}: damaged {what} accepted")


def test_the_verifier_inflates_deflated_outputs_and_refuses_damage(outputs, tmp_path):
    data = outputs["deflate"].read_bytes()
    expected = _expected(outputs["deflate"])
    meta_end = 144 + struct.unpack_from("<I", data, 140)[0]
    body = zlib.decompress(data[meta_end:], -zlib.MAX_WBITS)
    at = _pixel_at(body) + 12
    changed = body[:at + 7] + bytes([body[at + 7] ^ 4]) + body[at + 8:]
    deflater = zlib.compressobj(6, zlib.DEFLATED, -zlib.MAX_WBITS)
    recompressed = deflater.compress(changed) + deflater.flush()
    damaged = {"cut short": data[:meta_end + (len(data) - meta_end) // 2],
               "a sample": data[:meta_end] + recompressed}
    for what, bad in damaged.items():
        path = tmp_path / "bad.dcm"
        path.write_bytes(bad)
        with pytest.raises(VerificationFailed):
            verifier.verify(path, expected)
            pytest.fail(f"damaged {what} accepted")


def test_a_write_damaged_on_disk_is_not_kept(tmp_path, monkeypatch):
    """A fault between the writer and the disk: the verifier reads what is there."""
    damage_after_the_writer(monkeypatch)
    for name in ("CT_small.dcm", "MR_small_implicit.dcm"):  # the fast and the general path
        target = tmp_path / "o.dcm"
        with pytest.raises(VerificationFailed, match=f"{name}: frame 1 of the output differs"):
            transcode_file(find_sample(name), target, "rle")
        assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("name", ["CT_small.dcm", "MR_small_implicit.dcm", "MR_small_RLE.dcm"])
def test_verify_file_reads_back_without_decoding_again(tmp_path, monkeypatch, name):
    """decode_check=False (`--verify file`) trusts the codec (a frame that would decode
    wrong is not seen) but still reads the written file back (a fault on disk is)."""
    from dicompress.codecs import get_codec

    codec = get_codec("j2k")
    source = find_sample(name)  # the fast path, Implicit VR, and a decoded source

    def decodes_wrong(self, data, layout):
        raise AssertionError("decoded for the check")

    monkeypatch.setattr(type(codec), "decode_frame", decodes_wrong)
    target = tmp_path / "o.dcm"
    with pytest.raises(AssertionError, match="decoded for the check"):
        transcode_file(source, target, codec)
    assert not target.exists()
    result = transcode_file(source, target, codec, decode_check=False)
    assert result.verified and pydicom.dcmread(target).file_meta.TransferSyntaxUID == uids.JPEG2000Lossless

    damage_after_the_writer(monkeypatch)
    again = tmp_path / "again.dcm"
    with pytest.raises(VerificationFailed, match="frame 1 of the output differs"):
        transcode_file(source, again, codec, decode_check=False)
    assert not again.exists()


def test_the_verifier_shares_no_code_with_the_writer():
    """The independence the verification rests on: verify.py imports neither the writer
    nor the parsers (the fast path's, pydicom)."""
    import ast

    tree = ast.parse(Path(verifier.__file__).read_text())
    imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    imported |= {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import)
                 for alias in node.names}
    assert imported <= {"__future__", "blake3", "hashlib", "mmap", "struct", "tempfile", "zlib",
                        "dataclasses", "pathlib", "dicompress", "dicompress.digests",
                        "dicompress.errors"}, imported


def test_the_verifier_reads_back_every_header_byte(outputs, tmp_path):
    """Not only the attributes it parses: a value changed in the header before the Pixel
    Data, in what follows it, or in the File Meta Information and preamble, is refused
    (the writer's front, head and tail, hashed)."""
    from dicompress.pipeline import write

    captured = {}
    real = write.PixelDataWriter.expected

    def keep(self):
        captured["expected"] = real(self)
        return captured["expected"]

    source = tmp_path / "with-tail.dcm"
    ds = pydicom.dcmread(find_sample("CT_small.dcm"))
    ds.DataSetTrailingPadding = b"\0" * 6  # (FFFC,FFFC): an element after the Pixel Data
    ds.save_as(source)
    import pytest as _pytest

    with _pytest.MonkeyPatch.context() as mp:
        mp.setattr(write.PixelDataWriter, "expected", keep)
        transcode_file(source, tmp_path / "o.dcm", "explicit")
    data = (tmp_path / "o.dcm").read_bytes()
    expected = captured["expected"]
    modality = data.index(b"\x08\x00\x60\x00CS\x02\x00CT")
    instance = data.index(b"\x02\x00\x03\x00UI") + 9  # a digit of the File Meta's UID
    flipped = b"1" if data[instance:instance + 1] != b"1" else b"2"
    damaged = {"a header value": data[:modality + 8] + b"MR" + data[modality + 10:],
               "a value after the Pixel Data": data[:-2] + b"\x01\x00",
               "a File Meta UID": data[:instance] + flipped + data[instance + 1:],
               "the preamble": data[:5] + b"\x07" + data[6:]}
    for what, bad in damaged.items():
        path = tmp_path / "bad.dcm"
        path.write_bytes(bad)
        with pytest.raises(VerificationFailed, match="reads back different"):
            verifier.verify(path, expected)
            pytest.fail(f"{what} accepted")


def test_binary_values_are_swapped_when_the_byte_order_changes(tmp_path):
    """pydicom re-encodes numbers in the output's byte order, not OW bytes: the one writer
    swaps them whoever calls it (the gateway's re-encoding of an object without pixels
    wrote a big-endian waveform's samples backwards)."""
    import numpy as np
    from pydicom.dataelem import DataElement

    from dicompress.gateway.encoded import reencode

    ds = pydicom.dcmread(find_sample("MR_small_bigendian.dcm"))
    del ds.PixelData
    ds[0x54001010] = DataElement(0x54001010, "OW", np.array([1, 2, 0x1234], ">u2").tobytes())
    src = tmp_path / "be.dcm"
    ds.save_as(src, implicit_vr=False, little_endian=False, enforce_file_format=True)
    reencode(src, tmp_path / "le.dcm", uids.ExplicitVRLittleEndian, None)
    out = pydicom.dcmread(tmp_path / "le.dcm")
    assert np.frombuffer(out[0x54001010].value, "<u2").tolist() == [1, 2, 0x1234]


@pytest.mark.parametrize("target", ["explicit", "j2k-lossy", "rle"])
def test_values_as_pydicom_writes_them_are_accepted(target, tmp_path):
    """A multi-valued Patient ID and ISO 2022 text read back as pydicom wrote them."""
    for name, change in (("multi", lambda ds: setattr(ds, "PatientID", "12\\34")),
                         ("iso2022", lambda ds: (setattr(ds, "SpecificCharacterSet",
                                                         ["", "ISO 2022 IR 87"]),
                                                 setattr(ds, "PatientID", "ヤマダ")))):
        ds = pydicom.dcmread(find_sample("MR_small.dcm"))
        change(ds)
        ds.save_as(tmp_path / f"{name}.dcm")
        transcode_file(tmp_path / f"{name}.dcm", tmp_path / f"{name}-{target}.dcm", target)
