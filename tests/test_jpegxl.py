"""JPEG XL (.110, .111, .112): bit-exact on the corpus, checked by Debian's djxl (libjxl 0.7,
a build independent of imagecodecs'), hostile frames refused before libjxl, pydicom reads."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pydicom
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydicom.encaps import generate_frames

from conftest import as_transcoded, frames_of, require_tool, uncompressed_images
from dicompress import uids
from dicompress.codecs import available_codecs, get_codec
from dicompress.codecs._jxl_header import CONTAINER_SIGNATURE, read_header
from dicompress.errors import CorruptPixelData, UnsupportedLayout, UnsupportedTransferSyntax
from dicompress.layout import FrameLayout
from dicompress.samples import find_sample
from dicompress.transcode import transcode_file

available_codecs()  # the registry loads its built-ins only while empty: before jpegxl alone
from dicompress.codecs import jpegxl  # noqa: E402

JPEG_BASELINE_SAMPLES = [
    "SC_rgb_jpeg.dcm", "SC_rgb_jpeg_dcmtk.dcm", "SC_rgb_dcmtk_+eb+cy+np.dcm",
    "SC_rgb_dcmtk_+eb+cy+s2.dcm", "SC_rgb_dcmtk_+eb+cy+n1.dcm", "SC_rgb_dcmtk_+eb+cr.dcm",
    "SC_rgb_jpeg_lossy_gdcm.dcm", "SC_jpeg_no_color_transform.dcm", "SC_rgb_small_odd_jpeg.dcm",
    "examples_ybr_color.dcm",
]


def _fragments(path: Path) -> list[bytes]:
    ds = pydicom.dcmread(path)
    return list(generate_frames(ds.PixelData, number_of_frames=int(ds.get("NumberOfFrames", 1))))


def _read_pnm(path: Path) -> np.ndarray:
    """Samples of a binary PGM/PPM (P5/P6) as djxl writes them, at the header's maxval.

    djxl 0.7 writes samples scaled to the full 8 or 16 bits whatever maxval says
    (4095 for 12-bit): they are scaled back (exactly: the steps are wider than 1)."""
    data = path.read_bytes()
    fields, at = [], 2
    while len(fields) < 3:
        while data[at:at + 1].isspace():
            at += 1
        end = at
        while not data[end:end + 1].isspace():
            end += 1
        fields.append(int(data[at:end]))
        at = end
    width, height, maxval = fields
    channels = 3 if data[:2] == b"P6" else 1
    dtype = np.uint8 if maxval < 256 else np.dtype(">u2")
    samples = np.frombuffer(data, dtype, width * height * channels, at + 1)
    shape = (height, width, channels) if channels == 3 else (height, width)
    full = 255 if maxval < 256 else 65535
    if maxval != full and samples.max() > maxval:
        samples = np.round(samples.astype(np.float64) * maxval / full).astype(np.uint16)
    return samples.reshape(shape)


def _djxl(codestream: bytes, tmp_path: Path, channels: int) -> np.ndarray:
    source = tmp_path / "frame.jxl"
    source.write_bytes(codestream)
    out = tmp_path / ("frame.ppm" if channels == 3 else "frame.pgm")
    subprocess.run([require_tool("djxl"), str(source), str(out)], check=True,
                   capture_output=True)
    return _read_pnm(out)


def _jpegxl_candidates() -> list[Path]:
    found = []
    for path in uncompressed_images():
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        if (ds.get("PixelRepresentation", 0) == 0 and ds.BitsAllocated in (8, 16)
                and ds.get("PhotometricInterpretation") in jpegxl._KEPT_AS_IS):
            found.append(path)
    return found


# -- .110 lossless ---------------------------------------------------------------------


@pytest.mark.parametrize("path", _jpegxl_candidates(), ids=lambda p: p.name)
def test_lossless_is_bit_exact_and_djxl_agrees(path, tmp_path):
    """Every unsigned uncompressed corpus image: pydicom (through our plugin) reads the
    output as the source frames; each fragment is one codestream whose bit depth is
    Bits Stored, and Debian's djxl decodes it to the same samples."""
    out = tmp_path / "out.dcm"
    transcode_file(path, out, get_codec("jpegxl", effort=1))
    ds = pydicom.dcmread(out)
    assert ds.file_meta.TransferSyntaxUID == uids.JPEGXLLossless
    source = frames_of(path)
    for a, b in zip(source, frames_of(out), strict=True):
        np.testing.assert_array_equal(a, b)
    fragments = _fragments(out)
    assert len(fragments) == len(source)
    for k, fragment in enumerate(fragments):
        header = read_header(fragment)
        assert header.bits_per_sample == ds.BitsStored
        assert (header.height, header.width, header.channels) == (
            ds.Rows, ds.Columns, ds.SamplesPerPixel)
        # a codestream unless libjxl needs the level-10 box (over 12 bits)
        assert header.container == (ds.BitsStored > 12)
        if k == 0:
            decoded = _djxl(fragment[:header.length],
                            tmp_path, ds.SamplesPerPixel)
            np.testing.assert_array_equal(decoded, source[0])


@pytest.mark.parametrize("bits", [1, 2, 5, 7, 8, 9, 10, 12, 13, 14, 15, 16])
def test_every_bit_depth_round_trips_and_djxl_agrees(bits, tmp_path):
    """1 to 16 bits stored, in 8 or 16 bits allocated: the codestream says Bits Stored,
    and djxl decodes what we decode."""
    rng = np.random.default_rng(bits)
    allocated = 8 if bits <= 8 else 16
    ramp = np.add.outer(np.arange(40), np.arange(56)) * ((1 << bits) - 1) // 94
    arr = np.clip(ramp + rng.integers(-2, 3, ramp.shape), 0, (1 << bits) - 1).astype(
        f"<u{allocated // 8}")
    layout = FrameLayout(rows=40, columns=56, bits_allocated=allocated, bits_stored=bits)
    codec = get_codec("jpegxl")
    data = codec.encode_frame(arr, layout)
    assert read_header(data).bits_per_sample == bits
    np.testing.assert_array_equal(codec.decode_frame(data, layout), arr)
    np.testing.assert_array_equal(_djxl(data, tmp_path, 1), arr)


def test_every_frame_is_its_own_codestream(tmp_path):
    path = find_sample("OBXXXX1A_2frame.dcm")
    out = tmp_path / "out.dcm"
    transcode_file(path, out, "jpegxl")
    fragments = _fragments(out)
    assert len(fragments) == 2
    assert all(f[:2] == b"\xff\x0a" for f in fragments)


def test_twelve_bits_are_coded_as_twelve(tmp_path):
    """Declaring 16 for 12-bit data would cost bytes: the codestream says 12."""
    arr = frames_of(find_sample("MR2_UNCR.dcm"))[0]
    layout = FrameLayout(rows=arr.shape[0], columns=arr.shape[1], bits_allocated=16,
                         bits_stored=12)
    codec = get_codec("jpegxl", effort=1)
    data = codec.encode_frame(arr, layout)
    assert read_header(data).bits_per_sample == 12
    as_16 = codec.configure().encode_frame(arr, FrameLayout(
        rows=arr.shape[0], columns=arr.shape[1], bits_allocated=16, bits_stored=16))
    assert len(data) < len(as_16)


@pytest.mark.parametrize(("name", "why"), [
    ("CT_small.dcm", "unsigned samples only"),
    ("SC_ybr_full_uncompressed.dcm", "not YBR_FULL"),
    ("SC_rgb_32bit.dcm", "8 or 16 bits allocated"),
])
def test_what_jpegxl_cannot_carry_is_refused_with_the_reason(name, why, tmp_path):
    with pytest.raises(UnsupportedLayout, match=why):
        transcode_file(find_sample(name), tmp_path / "out.dcm", "jpegxl")
    assert not (tmp_path / "out.dcm").exists()


def test_options_are_checked():
    assert get_codec("jpegxl", effort=7).get_config()["effort"] == 7
    with pytest.raises(UnsupportedTransferSyntax, match="effort"):
        get_codec("jpegxl", effort=11)
    with pytest.raises(UnsupportedTransferSyntax, match="not both"):
        get_codec("jpegxl-lossy", ratio=10, psnr=40)


def test_cli_transcodes_to_jpegxl(tmp_path):
    done = subprocess.run([sys.executable, "-m", "dicompress", "transcode",
                           str(find_sample("US1_UNCR.dcm")), "--to", "jpegxl", "-o", str(tmp_path)],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    (out,) = tmp_path.rglob("*.dcm")
    assert pydicom.dcmread(out).file_meta.TransferSyntaxUID == uids.JPEGXLLossless
    np.testing.assert_array_equal(pydicom.dcmread(out).pixel_array,
                                  pydicom.dcmread(find_sample("US1_UNCR.dcm")).pixel_array)


# -- .112 lossy ------------------------------------------------------------------------


def test_lossy_meets_its_targets_and_is_marked(tmp_path):
    path = find_sample("MR2_UNCR.dcm")
    source = frames_of(path)[0]
    layout = FrameLayout(rows=1024, columns=1024, bits_allocated=16, bits_stored=12)
    from dicompress.codecs.search import psnr

    codec = get_codec("jpegxl-lossy", psnr=50, effort=3)
    data = codec.encode_frame(source, layout)
    assert psnr(source, codec.decode_frame(data, layout), 12) >= 50
    coarse = get_codec("jpegxl-lossy", ratio=40, effort=3).encode_frame(source, layout)
    assert source.nbytes / len(coarse) >= 40

    out = tmp_path / "out.dcm"
    transcode_file(path, out, get_codec("jpegxl-lossy", distance=2.0, effort=3))
    ds = pydicom.dcmread(out)
    assert ds.file_meta.TransferSyntaxUID == uids.JPEGXL
    assert ds.LossyImageCompression == "01"
    assert ds.LossyImageCompressionMethod == "ISO_18181_1"
    assert ds.SOPInstanceUID != pydicom.dcmread(path).SOPInstanceUID
    assert np.abs(ds.pixel_array.astype(int) - source).mean() < 20


def test_lossy_colour_is_declared_xyb():
    """libjxl codes lossy colour in XYB; PS3.3 C.7.6.3.1.2 calls that XYB."""
    arr = frames_of(find_sample("US1_UNCR.dcm"))[0]
    layout = FrameLayout(rows=480, columns=640, samples_per_pixel=3,
                         photometric_interpretation="RGB")
    codec = get_codec("jpegxl-lossy")
    assert read_header(codec.encode_frame(arr, layout)).xyb_encoded
    assert codec.output_attributes(layout)["PhotometricInterpretation"] == "XYB"


@pytest.mark.parametrize("name", ["US1_UNCR.dcm", "SC_rgb_2frame.dcm"])
def test_lossy_colour_file_reads_back_as_rgb_everywhere(name, tmp_path):
    """A .112 colour file declares XYB (its frames are coded in XYB); pydicom (3.0 with
    our plugin, which teaches it the term pydicom 3.1 has), our decoder and Debian's
    djxl all read it, as RGB, and so does every command that decodes it."""
    source = frames_of(find_sample(name))
    out = tmp_path / "lossy.dcm"
    transcode_file(find_sample(name), out, get_codec("jpegxl-lossy", distance=1.0))
    ds = pydicom.dcmread(out)
    assert ds.PhotometricInterpretation == "XYB" and ds.SamplesPerPixel == 3
    assert ds.file_meta.TransferSyntaxUID == uids.JPEGXL
    frames = ds.pixel_array.reshape(len(source), *source[0].shape)
    layout = FrameLayout.from_dataset(ds)
    fragments = list(generate_frames(ds.PixelData, number_of_frames=len(source)))
    for k, (fragment, original) in enumerate(zip(fragments, source)):
        ours = get_codec("jpegxl-lossy").decode_frame(fragment, layout)
        np.testing.assert_array_equal(frames[k], ours)
        header = read_header(fragment)
        assert header.xyb_encoded and header.channels == 3
        djxl = _djxl(fragment[:header.length], tmp_path, 3)
        assert np.abs(djxl.astype(int) - ours).max() <= 1  # libjxl 0.7 and 0.11 round alike
        assert np.abs(ours.astype(int) - original).mean() < 3  # RGB, not XYB samples
    # decoded again by dicompress (the pipeline), the frames are RGB and say so
    back = tmp_path / "back.dcm"
    transcode_file(out, back, get_codec("explicit"))
    again = pydicom.dcmread(back)
    assert again.PhotometricInterpretation == "RGB"
    np.testing.assert_array_equal(again.pixel_array.reshape(frames.shape), frames)


# -- .111 JPEG recompression -----------------------------------------------------------


@pytest.mark.parametrize("name", JPEG_BASELINE_SAMPLES)
def test_jpeg_recompression_gives_the_jpeg_back_byte_for_byte(name, tmp_path):
    """Fragment level: smaller, the same JPEG bytes back (ours and djxl's), the same
    pixels as the source decodes to."""
    path = find_sample(name)
    ds = pydicom.dcmread(path)
    assert ds.file_meta.TransferSyntaxUID == uids.JPEGBaseline8Bit
    layout = FrameLayout.from_dataset(ds)
    codec = get_codec("jpegxl-jpeg")
    source_frames = frames_of(path)
    sizes = [0, 0]
    for k, fragment in enumerate(_fragments(path)):
        data = codec.from_encoded(fragment, uids.JPEGBaseline8Bit, layout)
        jpeg = jpegxl.jpeg_bitstream(fragment)
        sizes[0] += len(jpeg)
        sizes[1] += len(data)
        back = jpegxl.ENCODED_TRANSFORMS[(uids.JPEGXLJPEGRecompression,
                                          uids.JPEGBaseline8Bit)](data)
        assert back == jpeg
        assert read_header(data).jpeg_reconstruction
        np.testing.assert_array_equal(codec.decode_frame(data, layout), source_frames[k])
        if k == 0:
            (tmp_path / "f.jxl").write_bytes(data)
            subprocess.run([require_tool("djxl"), str(tmp_path / "f.jxl"),
                            str(tmp_path / "f.jpg")], check=True, capture_output=True)
            assert (tmp_path / "f.jpg").read_bytes() == jpeg
    if sizes[0] > 1000:  # a 3 x 3 JPEG gains nothing: the container costs more
        assert sizes[1] < sizes[0], f"{name}: {sizes[0]} -> {sizes[1]} bytes"


def test_jpeg_recompression_takes_only_jpeg_baseline():
    codec = get_codec("jpegxl-jpeg")
    with pytest.raises(UnsupportedLayout, match="YBR_FULL_422 or RGB when Samples per Pixel is 3.*not YBR_FULL$"):
        codec.check_layout(FrameLayout(rows=8, columns=8, samples_per_pixel=3,
                                       photometric_interpretation="YBR_FULL"))
    with pytest.raises(UnsupportedLayout, match="MONOCHROME2 when Samples per Pixel is 1.*not MONOCHROME1"):
        codec.check_layout(FrameLayout(rows=8, columns=8, photometric_interpretation="MONOCHROME1"))
    layout = FrameLayout(rows=8, columns=8)
    assert codec.from_encoded(b"\xff\xd8", uids.JPEGLSLossless, layout) is None
    with pytest.raises(CorruptPixelData, match="SOI"):
        codec.from_encoded(b"\x00\x00", uids.JPEGBaseline8Bit, layout)
    with pytest.raises(UnsupportedLayout, match="fragments as they are"):
        codec.encode_frame(np.zeros((8, 8), np.uint8), layout)


# -- hostile frames --------------------------------------------------------------------


@pytest.fixture
def twelve_bit_frame():
    arr = frames_of(find_sample("MR2_UNCR.dcm"))[0][:64, :96].copy()
    layout = FrameLayout(rows=64, columns=96, bits_allocated=16, bits_stored=12)
    return get_codec("jpegxl", effort=1).encode_frame(arr, layout), layout


@pytest.fixture
def libjxl_must_not_run(monkeypatch):
    import imagecodecs

    def refuse(*args, **kwargs):
        raise AssertionError("libjxl was given a frame the header check should refuse")

    monkeypatch.setattr(imagecodecs, "jpegxl_decode", refuse)


def test_frame_of_the_wrong_size_is_refused(twelve_bit_frame, libjxl_must_not_run):
    data, layout = twelve_bit_frame
    with pytest.raises(CorruptPixelData, match=r"96 x 64; the image is 96 x 65"):
        get_codec("jpegxl").decode_frame(data, FrameLayout(
            rows=65, columns=96, bits_allocated=16, bits_stored=12))


def test_frame_of_the_wrong_bit_depth_is_refused(twelve_bit_frame, libjxl_must_not_run):
    data, _ = twelve_bit_frame
    with pytest.raises(CorruptPixelData, match="12 bits per sample; Bits Stored is 10"):
        get_codec("jpegxl").decode_frame(data, FrameLayout(
            rows=64, columns=96, bits_allocated=16, bits_stored=10))
    with pytest.raises(CorruptPixelData, match="Bits Allocated is 8"):
        get_codec("jpegxl-lossy").decode_frame(data, FrameLayout(
            rows=64, columns=96, bits_allocated=8, bits_stored=8))


def test_frame_with_other_components_is_refused(twelve_bit_frame, libjxl_must_not_run):
    data, _ = twelve_bit_frame
    with pytest.raises(CorruptPixelData, match="1 channel.*Samples per Pixel is 3"):
        get_codec("jpegxl").decode_frame(data, FrameLayout(
            rows=64, columns=96, samples_per_pixel=3, bits_allocated=16, bits_stored=12,
            photometric_interpretation="RGB"))


def test_lossy_frame_in_a_lossless_file_is_refused(libjxl_must_not_run):
    arr = np.arange(64 * 96, dtype=np.uint16).reshape(64, 96) >> 4
    layout = FrameLayout(rows=64, columns=96, bits_allocated=16, bits_stored=12)
    lossy = get_codec("jpegxl-lossy", effort=1).encode_frame(arr, layout)
    with pytest.raises(CorruptPixelData, match="coded in XYB"):
        get_codec("jpegxl").decode_frame(lossy, layout)


@pytest.mark.parametrize("keep", [0, 1, 2, 3, 4])
def test_frame_cut_inside_its_header_is_refused(twelve_bit_frame, libjxl_must_not_run, keep):
    data, layout = twelve_bit_frame
    with pytest.raises(CorruptPixelData, match="not a JPEG XL|ends inside"):
        get_codec("jpegxl").decode_frame(data[:keep], layout)


def test_frame_cut_after_its_header_is_refused_by_libjxl(twelve_bit_frame):
    data, layout = twelve_bit_frame
    with pytest.raises(CorruptPixelData, match="cannot be decoded"):
        get_codec("jpegxl").decode_frame(data[: len(data) // 2], layout)


def test_container_box_longer_than_the_frame_is_refused(libjxl_must_not_run):
    deep = np.arange(64 * 96, dtype=np.uint16).reshape(64, 96)
    layout = FrameLayout(rows=64, columns=96, bits_allocated=16, bits_stored=16)
    data = get_codec("jpegxl", effort=1).encode_frame(deep, layout)
    assert data[4:8] == b"JXL "
    with pytest.raises(CorruptPixelData, match="says .* bytes"):
        get_codec("jpegxl").decode_frame(data[:-10], layout)


def _real_frames() -> list[bytes]:
    """The first bytes of real frames: a codestream, a container (16 bits), a .111 one."""
    codec = get_codec("jpegxl", effort=1)
    deep = np.arange(64 * 96, dtype=np.uint16).reshape(64, 96)
    frames = [codec.encode_frame(deep >> 4, FrameLayout(rows=64, columns=96, bits_allocated=16,
                                                        bits_stored=12)),
              codec.encode_frame(deep, FrameLayout(rows=64, columns=96, bits_allocated=16,
                                                   bits_stored=16)),
              jpegxl.recompress_jpeg(_fragments(find_sample("SC_rgb_jpeg_dcmtk.dcm"))[0])]
    return [f[:200] for f in frames]


_REAL = _real_frames()


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=64), st.sampled_from(range(len(_REAL))), st.integers(0, 199),
       st.integers(0, 255))
def test_header_parser_refuses_garbage_cleanly(tail, which, position, value):
    """Fuzz: random bytes, and real frames (bare, boxed, .111) with one byte changed,
    give a header or CorruptPixelData, never another exception."""
    real = _REAL[which]
    mutated = real[:position] + bytes([value]) + real[position + 1:]
    for data in (b"\xff\x0a" + tail, mutated, CONTAINER_SIGNATURE + tail, real[:position]):
        try:
            read_header(data)
        except CorruptPixelData:
            pass


# -- pydicom ---------------------------------------------------------------------------


def test_pydicom_knows_the_new_syntaxes():
    """pydicom 3.0 has no public way to add a standard transfer syntax: our one private
    route (dicompress.plugins._new_syntaxes) must still work, or this fails loudly."""
    from pydicom.pixels import get_decoder

    for uid, (name, keyword, _) in __import__(
            "dicompress.plugins._new_syntaxes", fromlist=["NEW_SYNTAXES"]).NEW_SYNTAXES.items():
        assert pydicom.uid.UID(uid).is_encapsulated
        assert pydicom.uid.UID(uid).name == name
        assert getattr(pydicom.uid, keyword) == uid
        assert "dicompress" in get_decoder(uid).available_plugins


@pytest.mark.parametrize("name", ["SC_rgb_dcmtk_+eb+cy+np.dcm", "examples_ybr_color.dcm",
                                  "SC_jpeg_no_color_transform.dcm", "color3d_jpeg_baseline.dcm"])
def test_jpeg_recompressed_file_reads_as_its_source_and_goes_back_byte_for_byte(name, tmp_path):
    """`transcode --to jpegxl-jpeg` then `--to jpeg`: the frames are never decoded, the
    file is smaller, pydicom reads the same pixels, the source's UID and lossy attributes
    are kept (no new loss, PS3.5 8.2.15), and every JPEG fragment comes back byte for byte."""
    path = find_sample(name)
    jxl, back = tmp_path / "jxl.dcm", tmp_path / "back.dcm"
    result = transcode_file(path, jxl, "jpegxl-jpeg")
    assert result.size_out < result.size_in and not result.lossy
    transcode_file(jxl, back, "jpeg")
    source, recompressed, returned = (pydicom.dcmread(p) for p in (path, jxl, back))
    assert recompressed.file_meta.TransferSyntaxUID == uids.JPEGXLJPEGRecompression
    assert returned.file_meta.TransferSyntaxUID == uids.JPEGBaseline8Bit
    for ds in (recompressed, returned):
        assert ds.SOPInstanceUID == source.SOPInstanceUID
        assert ds.LossyImageCompression == "01"
        assert "DerivationDescription" not in ds or ds.DerivationDescription == \
            source.get("DerivationDescription")
        assert ds.PhotometricInterpretation == source.PhotometricInterpretation
    # as stored (raw): the same Photometric Interpretation (above), so equal samples
    # are equal pictures; pydicom's YBR to RGB conversion was most of this test's time
    np.testing.assert_array_equal(pydicom.pixels.pixel_array(recompressed, raw=True),
                                  pydicom.pixels.pixel_array(source, raw=True))
    frames = int(source.get("NumberOfFrames", 1) or 1)
    for a, b in zip(generate_frames(source.PixelData, number_of_frames=frames),
                    generate_frames(returned.PixelData, number_of_frames=frames), strict=True):
        assert a.rstrip(b"\0") == b.rstrip(b"\0")
    transcode_file(jxl, tmp_path / "explicit.dcm", "explicit")  # decoded, when asked
    explicit = pydicom.dcmread(tmp_path / "explicit.dcm", stop_before_pixels=True)
    for a, b in zip(frames_of(path), frames_of(tmp_path / "explicit.dcm"), strict=True):
        np.testing.assert_array_equal(as_transcoded(source, explicit, a), b)


def test_jpeg_recompression_de_identifies_the_header_on_the_way(tmp_path):
    """`transcode --deid --to jpegxl-jpeg`: the header is de-identified, the frames are
    recompressed as they are (no blanking asked, so nothing to decode)."""
    from dicompress.deid import DeidConfig, preparer

    config = DeidConfig(key=b"0123456789abcdef0123", allow_burned_in=True)
    source = find_sample("SC_rgb_dcmtk_+eb+cy+s2.dcm")
    transcode_file(source, tmp_path / "o.dcm", "jpegxl-jpeg", prepare=preparer(config))
    out, original = pydicom.dcmread(tmp_path / "o.dcm"), pydicom.dcmread(source)
    assert out.PatientIdentityRemoved == "YES"
    assert out.SOPInstanceUID != original.SOPInstanceUID  # de-identified, not marked lossy
    assert out.file_meta.TransferSyntaxUID == uids.JPEGXLJPEGRecompression
    np.testing.assert_array_equal(out.pixel_array, original.pixel_array)
