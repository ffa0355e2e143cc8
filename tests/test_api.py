"""The Python API: compress/decompress on pydicom Datasets, the exported names."""

from __future__ import annotations

import subprocess
import sys
import warnings

import numpy as np
import pydicom
import pytest
from pydicom.uid import UID

import dicompress
from conftest import KNOWN_UNTRANSCODABLE, as_transcoded, corpus_images, require_tool
from dicompress.codecs import available_codecs
from dicompress.samples import find_sample

warnings.filterwarnings("ignore", module="pydicom")

LOSSLESS = [c.name for c in available_codecs() if c.lossless and c.encodes_pixels]
#: A few files of every shape: signed CT, MR, big endian, RGB (planar 1 too), 16-bit RGB,
#: multi-frame, a JPEG lossless source, YBR_FULL_422 JPEG, 12-bit JPEG.
SAMPLES = ["CT_small.dcm", "MR_small.dcm", "MR_small_bigendian.dcm", "SC_rgb.dcm",
           "color-pl.dcm", "SC_rgb_16bit.dcm", "SC_rgb_2frame.dcm", "JPEG-LL.dcm",
           "SC_rgb_jpeg_gdcm.dcm", "JPGExtended.dcm", "emri_small.dcm"]


def _sample(name: str):
    try:
        return find_sample(name)
    except FileNotFoundError:
        pytest.skip(f"{name} needs pydicom-data")


def _frames(ds) -> np.ndarray:
    return pydicom.pixels.pixel_array(ds, raw=True)


def _peers(syntax) -> list[str]:
    """pydicom's decoding plugins for `syntax` other than ours ("" for a native one)."""
    if not UID(syntax).is_encapsulated:
        return [""]
    try:
        plugins = pydicom.pixels.get_decoder(syntax).available_plugins
    except NotImplementedError:
        return []
    return [p for p in plugins if p not in ("dicompress", "pillow")][:2]  # Pillow: 8-bit colour only


def _snapshot(ds) -> tuple:
    return (ds.file_meta.TransferSyntaxUID, ds.SOPInstanceUID, bytes(ds.PixelData),
            ds.PhotometricInterpretation, ds.get("LossyImageCompression"))


@pytest.mark.parametrize("target", LOSSLESS)
@pytest.mark.parametrize("name", SAMPLES)
def test_compress_is_bit_exact_and_leaves_the_input_alone(name, target):
    ds = pydicom.dcmread(_sample(name))
    before, source = _snapshot(ds), _frames(ds)
    try:
        out = dicompress.compress(ds, target)
    except dicompress.UnsupportedLayout as exc:
        assert str(exc).startswith(f"dataset {ds.SOPInstanceUID}: "), exc
        pytest.skip(f"{target} cannot code {name}: {exc}")
    assert _snapshot(ds) == before
    assert out is not ds and out.filename is None
    assert out.SOPInstanceUID == ds.SOPInstanceUID
    codec = dicompress.get_codec(target)
    assert out.file_meta.TransferSyntaxUID in (codec.transfer_syntax, *codec.also_writes)
    # read by pydicom's own decoders (pylibjpeg, GDCM, its RLE), not ours, where it has
    # them (JPEG XL, .98 and deflated frames have independent checks in their own tests)
    for plugin in _peers(out.file_meta.TransferSyntaxUID):
        decoded = pydicom.pixels.pixel_array(out, raw=True, decoding_plugin=plugin)
        np.testing.assert_array_equal(decoded, source, err_msg=f"{name} -> {target}, {plugin}")
    try:
        back = dicompress.decompress(out)
    except dicompress.DicompressError as exc:
        pytest.skip(f"dicompress does not read {target} back: {exc}")
    assert back.file_meta.TransferSyntaxUID == pydicom.uid.ExplicitVRLittleEndian
    np.testing.assert_array_equal(_frames(back), source)


@pytest.mark.slow
@pytest.mark.parametrize("target", ["j2k", "htj2k", "jpegls", "rle"])
def test_compress_over_the_corpus(target):
    """Every decodable corpus image (single file size), compress then decompress:
    bit-exact, or refused for its layout with the reason."""
    done = 0
    for path in corpus_images():
        if path.name in KNOWN_UNTRANSCODABLE or path.stat().st_size > 2_000_000:
            continue
        ds = pydicom.dcmread(path)
        try:
            out = dicompress.compress(ds, target, verify=True)
        except (dicompress.UnsupportedLayout, dicompress.CorruptPixelData):
            continue
        back = dicompress.decompress(out)  # signed JPEG-LS too (plugins/jpegls_decoder.py)
        np.testing.assert_array_equal(_frames(back), as_transcoded(ds, out, _frames(ds)),
                                      err_msg=f"{path.name} -> {target}")
        done += 1
    assert done >= 60


def test_lossy_outputs_are_marked_as_transcode_marks_them(tmp_path):
    ds = pydicom.dcmread(_sample("CT_small.dcm"))
    out = dicompress.compress(ds, "j2k-lossy", ratio=8)
    assert out.LossyImageCompression == "01"
    assert out.LossyImageCompressionMethod == "ISO_15444_1"
    assert 6 < float(out.LossyImageCompressionRatio) < 10
    assert out.SOPInstanceUID != ds.SOPInstanceUID
    assert out.file_meta.MediaStorageSOPInstanceUID == out.SOPInstanceUID
    assert ds.get("LossyImageCompression") is None  # the input untouched
    # the same attributes as the CLI's transcode writes
    path = tmp_path / "cli.dcm"
    dicompress.transcode_file(_sample("CT_small.dcm"), path, dicompress.get_codec("j2k-lossy", ratio=8))
    by_file = pydicom.dcmread(path)
    for keyword in ("LossyImageCompression", "LossyImageCompressionMethod",
                    "LossyImageCompressionRatio", "SOPInstanceUID", "DerivationDescription"):
        assert out.get(keyword) == by_file.get(keyword), keyword
    assert out.DerivationCodeSequence[0].CodeValue == "113040"


def test_compress_takes_codec_options_and_refuses_unknown_ones():
    ds = pydicom.dcmread(_sample("MR_small.dcm"))
    out = dicompress.compress(ds, "jpegls-near", near=3)
    error = np.abs(_frames(out).astype(np.int64) - _frames(ds))
    assert 0 < error.max() <= 3
    with pytest.raises(dicompress.UnsupportedTransferSyntax, match="no option quality"):
        dicompress.compress(ds, "jpegls", quality=5)
    with pytest.raises(dicompress.UnsupportedTransferSyntax, match="unknown target 'jpeg3000'"):
        dicompress.compress(ds, "jpeg3000")


def test_verify_false_skips_the_checks_and_still_writes(monkeypatch):
    from dicompress.pipeline import verify as verifier

    calls = []
    monkeypatch.setattr(verifier, "verify", lambda *a, **k: calls.append(a))
    ds = pydicom.dcmread(_sample("CT_small.dcm"))
    out = dicompress.compress(ds, "htj2k", verify=False)
    assert calls == []
    np.testing.assert_array_equal(_frames(out), _frames(ds))


def test_errors_name_the_dataset_not_a_temporary_file():
    ds = pydicom.dcmread(_sample("CT_small.dcm"))
    with pytest.raises(dicompress.UnsupportedLayout) as caught:
        dicompress.compress(ds, "jpeg")  # signed CT
    message = str(caught.value)
    assert message.startswith(f"dataset {ds.SOPInstanceUID}: JPEG codes unsigned samples only")
    assert "dicompress-" not in message and "/tmp" not in message
    no_pixels = pydicom.dcmread(_sample("CT_small.dcm"), stop_before_pixels=True)
    with pytest.raises(dicompress.NotAnImage, match="no Pixel Data"):
        dicompress.compress(no_pixels, "rle")
    del no_pixels.SOPInstanceUID
    no_pixels.PixelData = b"\0" * 2
    with pytest.raises(dicompress.UsageError, match="no SOPInstanceUID"):
        dicompress.compress(no_pixels, "rle")


def test_a_dataset_made_in_memory():
    """No File Meta Information, never read from a file: taken as Explicit VR LE."""
    from pydicom.dataset import Dataset
    from pydicom.uid import generate_uid

    ds = Dataset()
    ds.SOPClassUID, ds.SOPInstanceUID = "1.2.840.10008.5.1.4.1.1.7", generate_uid()
    ds.Rows, ds.Columns, ds.SamplesPerPixel = 64, 48, 1
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    ds.PhotometricInterpretation = "MONOCHROME2"
    pixels = np.random.default_rng(7).integers(0, 4096, (64, 48), dtype=np.uint16)
    ds.PixelData = pixels.tobytes()
    out = dicompress.compress(ds, "jpegls")
    assert out.file_meta.TransferSyntaxUID == pydicom.uid.JPEGLSLossless
    np.testing.assert_array_equal(out.pixel_array, pixels)
    assert not hasattr(ds, "file_meta") or "TransferSyntaxUID" not in ds.file_meta


@pytest.mark.peers
def test_compress_output_reads_in_dcmtk(tmp_path):
    """An output of compress() written by pydicom and read by DCMTK's dcmdjpls."""
    tool = require_tool("dcmdjpls")
    ds = pydicom.dcmread(_sample("CT_small.dcm"))
    out = dicompress.compress(ds, "jpegls")
    out.save_as(tmp_path / "o.dcm")  # the user's own write of the dataset we return
    done = subprocess.run([tool, str(tmp_path / "o.dcm"), str(tmp_path / "d.dcm")],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    np.testing.assert_array_equal(pydicom.dcmread(tmp_path / "d.dcm").pixel_array, ds.pixel_array)


# -- the exported names ----------------------------------------------------------------
def test_the_public_names_are_exported_documented_and_typed():
    for name in dicompress.__all__:
        value = getattr(dicompress, name)
        if callable(value):
            assert value.__doc__, name
    import inspect

    for function in (dicompress.compress, dicompress.decompress, dicompress.transcode_file):
        signature = inspect.signature(function)
        assert signature.return_annotation is not inspect.Signature.empty
        assert "Parameters" in function.__doc__ or "Options" in function.__doc__ or \
            function is dicompress.transcode_file
    from importlib.resources import files

    assert files("dicompress").joinpath("py.typed").is_file()


def test_import_dicompress_stays_cheap():
    """No numpy, no pydicom at import: the CLI starts with it."""
    code = "import sys, dicompress; print(sorted(m for m in ('numpy', 'pydicom') if m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
    code = "import dicompress; print(dicompress.nonesuch)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert "has no attribute 'nonesuch'" in done.stderr


def test_uid_of_target_works_too():
    ds = pydicom.dcmread(_sample("MR_small.dcm"))
    out = dicompress.compress(ds, UID("1.2.840.10008.1.2.4.201"))
    assert out.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.4.201"
