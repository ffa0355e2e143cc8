"""The codec table: every fact about a codec lives in its module under codecs/, and
everything else (CLI, compare, plan, gateway, de-identification) reads the registry.

The proof is Encapsulated Uncompressed Explicit VR Little Endian (PS3.5 A.4.11), added
as one module: its outputs are read here by readers that share no code with our writer
(pydicom's fragment parser, DCMTK's dcmdump) and compared bit for bit with the source
frames as pydicom decodes them.
"""

from __future__ import annotations

import ast
import dataclasses
import json
import shutil
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import generate_frames

import dicompress
from conftest import (KNOWN_UNTRANSCODABLE, as_transcoded, corpus_images, frames_of,
                      require_tool)
from dicompress.cli import main
from dicompress.cli.arguments import build_parser, codec_options
from dicompress.codecs import available_codecs, get_codec
from dicompress.codecs.registry import (Codec, codec_config, codec_from_config,
                                        compare_defaults, fallback_syntaxes, gateway_default,
                                        option_specs, readable_syntaxes, register)
from dicompress.errors import CorruptPixelData
from dicompress.layout import FrameLayout
from dicompress.samples import find_sample
from dicompress.transcode import transcode_file

SRC = Path(dicompress.__file__).parent
ENCAPSULATED_UNCOMPRESSED = "1.2.840.10008.1.2.1.98"
TARGET = "encapsulated-uncompressed"


# -- the table --------------------------------------------------------------------------
def test_listing_is_deterministic_and_names_and_uids_are_unique():
    codecs = available_codecs()
    assert [c.name for c in codecs] == [c.name for c in available_codecs()]
    assert [(c.order, c.name) for c in codecs] == sorted((c.order, c.name) for c in codecs)
    names = [n for c in codecs for n in (c.name, *c.aliases)]
    assert len(names) == len(set(names))
    syntaxes = [s for c in codecs for s in (c.transfer_syntax, *c.also_writes)]
    assert len(syntaxes) == len(set(syntaxes))
    for codec in codecs:
        assert codec.description, codec.name
        assert get_codec(codec.transfer_syntax) is codec
        assert pydicom.uid.UID(codec.transfer_syntax).is_transfer_syntax
        assert codec.lossless == (not codec.lossy_method)
        assert codec.lossless_twin is None or get_codec(codec.lossless_twin).lossless


def test_each_option_is_one_flag_with_one_type():
    for codec in available_codecs():
        for spec in codec.specs:
            shared, _ = option_specs()[spec.name]
            assert (spec.type, spec.flag, spec.choices) == (shared.type, shared.flag,
                                                            shared.choices), spec.name
        if codec.value_option is not None:
            assert codec.spec(codec.value_option) is not None, codec.name


@pytest.mark.parametrize("codec", available_codecs(), ids=lambda c: c.name)
def test_config_round_trips_through_json(codec):
    back = codec_from_config(codec_config(codec))
    assert type(back) is type(codec) and back.get_config() == codec.get_config()
    if codec.spec("tile") is not None:  # JSON has no tuples
        tiled = codec.configure(tile=(256, 512))
        assert codec_from_config(codec_config(tiled)).option("tile") == (256, 512)
    config = json.loads(codec_config(codec))
    assert config["name"] == codec.name and config["transfer_syntax"] == codec.transfer_syntax
    assert set(config) - {"name", "transfer_syntax"} == {s.name for s in codec.specs}


def test_the_derived_lists_are_what_they_were():
    """Derived from the table, the lists equal what compare, plan, the gateway and
    de-identification wrote out by hand before, with JPEG XL added by its module alone
    (issue 19: lossless at efforts 1 and 7 in compare, 1 and 3 in plan)."""
    from dicompress.compare import DEFAULT_CODECS
    from dicompress.compare.plan import _candidates

    assert DEFAULT_CODECS == compare_defaults() == (
        "explicit,rle,j2k,htj2k,htj2k-rpcl,jpegls,j2k-lossy:5,10,20,40,"
        "htj2k-lossy:5,10,20,40,jpegls-near:1,2,4,jpeg:90,75,jpegxl:1,7")
    assert [c.label for c in _candidates(7.3, True)] == ["htj2k", "jpegls", "j2k", "rle",
                                                         "jpegxl:1", "jpegxl:3"]
    assert [c.label for c in _candidates(7.3, False)][6:] == [
        "j2k-lossy:7.52", "htj2k-lossy:7.52", *(f"jpegls-near:{n}" for n in (1, 2, 3, 4, 6, 8)),
        *(f"jpeg:{q}" for q in (95, 90, 85, 75, 60, 50))]
    assert gateway_default().name == "htj2k"
    assert fallback_syntaxes() == [pydicom.uid.ExplicitVRLittleEndian,
                                   pydicom.uid.ImplicitVRLittleEndian]
    assert {c.name: c.lossless_twin for c in available_codecs() if c.lossless_twin} == {
        "j2k-lossy": "j2k", "htj2k-lossy": "htj2k", "jpegls-near": "jpegls"}


def test_the_gateway_accepts_what_pydicom_and_our_plugins_decode():
    from pydicom.pixels import get_decoder

    from dicompress.gateway.service import ACCEPTED_SYNTAXES

    accepted = [str(u) for u in ACCEPTED_SYNTAXES]
    assert accepted == readable_syntaxes()
    assert accepted[:2] == fallback_syntaxes()  # an SCP takes the first its peer proposes
    for uid in accepted:
        assert get_decoder(uid).is_available
    for codec in available_codecs():  # every target we write that pydicom reads back
        try:
            readable = get_decoder(codec.transfer_syntax).is_available
        except NotImplementedError:
            readable = False
        assert (codec.transfer_syntax in accepted) == readable, codec.name


def _blank_codec_of(syntax: str, **attributes) -> Codec:
    from dicompress.deid.files import _blank_codec

    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = syntax
    for keyword, value in attributes.items():
        setattr(ds, keyword, value)
    return _blank_codec(ds)


def test_blanking_re_encodes_in_the_lossless_twin_unless_the_image_was_lossy():
    uid = pydicom.uid
    assert _blank_codec_of(uid.JPEG2000).name == "j2k"
    assert _blank_codec_of(uid.HTJ2K).name == "htj2k"
    assert _blank_codec_of(uid.JPEGLSNearLossless).name == "jpegls"
    lossy = _blank_codec_of(uid.JPEG2000, LossyImageCompression="01",
                            LossyImageCompressionRatio=["8", "12.5"])
    assert (lossy.name, lossy.option("ratio")) == ("j2k-lossy", 12.5)
    assert _blank_codec_of(uid.HTJ2K, LossyImageCompression="01",
                           LossyImageCompressionRatio="900").option("ratio") == 400.0
    assert _blank_codec_of(uid.JPEGLSNearLossless, LossyImageCompression="01").name == "jpegls-near"
    jpeg = _blank_codec_of(uid.JPEGExtended12Bit)
    assert (jpeg.name, jpeg.option("quality")) == ("jpeg", 95)
    assert _blank_codec_of(uid.ExplicitVRBigEndian).name == "explicit"
    assert _blank_codec_of(uid.RLELossless, LossyImageCompression="01").name == "rle"
    with pytest.raises(dicompress.UnsupportedTransferSyntax, match="not a syntax dicompress"):
        _blank_codec_of(uid.JPEGLosslessSV1)


# -- registering -----------------------------------------------------------------------
def test_registering_a_name_twice_is_an_error_unless_replaced():
    original = get_codec("rle")
    with pytest.raises(ValueError, match="rle is registered already"):
        register(Codec(name="RLE", transfer_syntax="1.2.3.4"))
    copy = dataclasses.replace(original, description="another RLE")
    try:
        assert register(copy, replace=True) is copy
        assert get_codec("rle") is copy
    finally:
        register(original, replace=True)
    assert get_codec("rle") is original


def _python(code: str, path: Path | None = None) -> str:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(path)] * (path is not None) + [os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout


_THIRD_PARTY = """
    from dataclasses import dataclass
    from dicompress.codecs.registry import Codec

    @dataclass(frozen=True)
    class Reversed(Codec):
        def encode_frame(self, arr, layout, threads=1):
            return arr.tobytes()[::-1]

    CODEC = Reversed(name="x-reversed", transfer_syntax="1.2.826.0.1.3680043.9.9999.1",
                     description="bytes reversed (a test)", order=5)
"""


def test_a_codec_registered_first_does_not_hide_the_built_ins():
    out = _python(_THIRD_PARTY + """
    from dicompress.codecs.registry import available_codecs, get_codec, register
    register(CODEC)
    print(get_codec("rle").name, " ".join(c.name for c in available_codecs()))
    """)
    first, listing = out.split(" ", 1)
    assert first == "rle"
    assert listing.split() == ["x-reversed", *(c.name for c in available_codecs())]


def test_entry_point_codecs_join_the_built_ins(tmp_path):
    (tmp_path / "x_reversed.py").write_text(textwrap.dedent(_THIRD_PARTY))
    info = tmp_path / "x_reversed-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: x-reversed\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[dicompress.codecs]\nx-reversed = x_reversed:CODEC\n")
    out = _python("""
    from dicompress.cli.arguments import build_parser
    from dicompress.codecs import get_codec
    print(get_codec("x-reversed").description, "|", get_codec("rle").name)
    build_parser().parse_args(["transcode", "f", "--to", "x-reversed", "-o", "o"])
    """, tmp_path)
    assert out.strip() == "bytes reversed (a test) | rle"
    help_text = subprocess.run(
        [sys.executable, "-m", "dicompress", "transcode", "--help"], capture_output=True,
        text=True, env={**os.environ, "PYTHONPATH": str(tmp_path)}, timeout=120).stdout
    assert "x-reversed" in help_text and "bytes reversed (a test)" in help_text


# -- nothing outside codecs/ names a codec ----------------------------------------------
#: String literals equal to a codec name that are not codecs, or not ours to change yet.
ALLOWED = {
    ("export/writers.py", "jpeg"),  # the image file format `dicompress export` writes
    ("export/stills.py", "jpeg"),  # a lossy still: its quality is what a budget lowers
    ("cli/arguments.py", "jpeg"),  # export --format
}


def test_no_module_outside_codecs_spells_a_codec_name():
    names = {n for c in available_codecs() for n in (c.name, *c.aliases)}
    found = set()
    for path in sorted(SRC.rglob("*.py")):
        relative = path.relative_to(SRC).as_posix()
        if relative.startswith("codecs/"):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and node.value in names:
                found.add((relative, node.value, node.lineno))
    assert {(path, name) for path, name, _ in found} - ALLOWED == set(), sorted(found)
    assert ALLOWED <= {(path, name) for path, name, _ in found}, "ALLOWED lists a fixed place"


# -- the CLI reads the table ------------------------------------------------------------
def test_transcode_help_lists_every_target_and_every_option(capsys):
    with pytest.raises(SystemExit):
        main(["transcode", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for codec in available_codecs():
        assert f"{codec.name} {' '.join(codec.description.split())}" in text
    for flag in ("--ratio", "--psnr DB", "--near", "--quality", "--layers", "--progression",
                 "--tile ROWSxCOLS", "--resolutions"):
        assert flag in text
    assert "(j2k-lossy, htj2k-lossy, jpeg, jpegxl-lossy)" in text  # who takes --psnr


def test_codec_flags_become_codec_options(capsys):
    args = build_parser().parse_args(
        ["transcode", "f", "--to", "j2k-lossy", "--ratio", "15", "--tile", "256x128",
         "--progression", "RPCL", "--layers", "3", "-o", "o"])
    options = codec_options(args)
    assert options == {"ratio": 15.0, "tile": (256, 128), "progression": "RPCL", "layers": 3,
                       "resolutions": None, "psnr": None, "near": None, "quality": None,
                       "effort": None, "distance": None, "level": None}
    codec = get_codec(args.to, **options)
    assert (codec.option("ratio"), codec.option("tile")) == (15.0, (256, 128))
    assert main(["transcode", "f", "--to", "j2k", "--tile", "25xab", "-o", "o"]) == 2
    assert "dicompress: --tile '25xab': give ROWSxCOLS" in capsys.readouterr().err
    assert main(["transcode", "f", "--to", "j2k", "--near", "2", "-o", "o"]) == 2
    assert "j2k has no option near" in capsys.readouterr().err


# -- the proof: Encapsulated Uncompressed, one module ---------------------------------------
def _fragments(path: Path) -> list[bytes]:
    """The frames of `path` through pydicom's own fragment parser (not our writer's)."""
    ds = pydicom.dcmread(path)
    extended = None
    if "ExtendedOffsetTable" in ds:
        extended = (ds.ExtendedOffsetTable, ds.ExtendedOffsetTableLengths)
    return list(generate_frames(ds.PixelData, number_of_frames=int(ds.get("NumberOfFrames", 1)),
                                extended_offsets=extended))


def _native(frame: np.ndarray) -> bytes:
    return np.ascontiguousarray(frame, frame.dtype.newbyteorder("<")).tobytes()


def _padded(data: bytes) -> bytes:
    return data + b"\0" * (len(data) & 1)


def test_the_new_target_is_one_module():
    codec = get_codec(TARGET)
    assert codec.transfer_syntax == ENCAPSULATED_UNCOMPRESSED and codec.lossless
    assert type(codec).__module__ == "dicompress.codecs.encapsulated_uncompressed"
    assert get_codec(ENCAPSULATED_UNCOMPRESSED) is codec
    # not measured by compare nor planned: the same bytes as explicit, plus item headers
    assert TARGET not in compare_defaults()


@pytest.mark.slow
def test_encapsulated_uncompressed_carries_the_corpus(transcoded_corpus):
    done = sum(r.status == "ok" for r in transcoded_corpus(TARGET).values())
    assert done >= 100


@pytest.mark.slow
@pytest.mark.parametrize("path", corpus_images(), ids=lambda p: p.name)
def test_encapsulated_uncompressed_is_bit_exact_on_the_corpus(path, transcoded_corpus):
    """Every decodable corpus image: one fragment per frame, each the source frame's
    native little-endian bytes (padded to even length), read by pydicom's parser."""
    r = transcoded_corpus(TARGET)[path]
    if r.status != "ok":
        assert path.name in KNOWN_UNTRANSCODABLE, r.reason
        return
    out = pydicom.dcmread(r.destination, stop_before_pixels=True)
    src = pydicom.dcmread(path, stop_before_pixels=True)
    assert out.file_meta.TransferSyntaxUID == ENCAPSULATED_UNCOMPRESSED
    assert out.SOPInstanceUID == src.SOPInstanceUID
    assert out.BitsStored == src.BitsStored and out.Rows == src.Rows
    fragments = _fragments(r.destination)
    frames = frames_of(path)
    assert len(fragments) == len(frames), path.name
    for n, (frame, fragment) in enumerate(zip(frames, fragments), 1):
        assert fragment == _padded(_native(as_transcoded(src, out, frame))), \
            f"{path.name} frame {n}"
    assert r.verified


def test_dcmtk_finds_one_item_per_frame_holding_the_native_frame(tmp_path):
    """DCMTK's dcmdump writes each item of the output's Pixel Data to a file: the Basic
    Offset Table, then one item per frame, byte for byte the source frame."""
    dcmdump = require_tool("dcmdump")
    for name in ("CT_small.dcm", "emri_small.dcm", "SC_rgb.dcm", "MR_small_bigendian.dcm"):
        out = tmp_path / name
        transcode_file(find_sample(name), out, TARGET)
        items = tmp_path / f"{name}.items"
        items.mkdir()
        subprocess.run([dcmdump, "+W", str(items), str(out)], check=True, capture_output=True)
        frames = frames_of(find_sample(name))
        table = np.frombuffer((items / f"{name}.0.raw").read_bytes(), "<u4")
        sizes = [len(_padded(_native(f))) + 8 for f in frames]
        assert table.tolist() == np.concatenate([[0], np.cumsum(sizes)[:-1]]).tolist()
        for n, frame in enumerate(frames, 1):
            assert (items / f"{name}.{n}.raw").read_bytes() == _padded(_native(frame)), name


def _small_image(path: Path, rows: int, columns: int, frames: int, bits: int) -> np.ndarray:
    rng = np.random.default_rng(7)
    pixels = rng.integers(0, 2 if bits == 1 else 256, (frames, rows, columns), dtype=np.uint8)
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = pydicom.uid.ExplicitVRLittleEndian
    ds.SOPClassUID = pydicom.uid.SecondaryCaptureImageStorage
    ds.SOPInstanceUID = pydicom.uid.generate_uid()
    ds.Modality = "OT"
    ds.Rows, ds.Columns, ds.NumberOfFrames, ds.SamplesPerPixel = rows, columns, frames, 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = bits, bits, bits - 1, 0
    ds.PixelData = (np.packbits(pixels.ravel(), bitorder="little") if bits == 1
                    else pixels).tobytes()
    ds.save_as(path, enforce_file_format=True)
    return pixels


def test_odd_frames_are_padded_with_one_null_byte(tmp_path):
    src = tmp_path / "odd.dcm"
    pixels = _small_image(src, 3, 5, 2, 8)
    transcode_file(src, tmp_path / "o.dcm", TARGET)
    assert _fragments(tmp_path / "o.dcm") == [frame.tobytes() + b"\0" for frame in pixels]


def test_one_bit_frames_are_packed_each_in_its_own_fragment(tmp_path):
    """Each frame starts its own fragment, first pixel in the least significant bit
    (PS3.5 D.2), the fragment padded to even length. (Frames that end mid-byte in the
    source cannot be read yet: pydicom 3.0's iter_pixels fails on them.)"""
    src = tmp_path / "bits.dcm"
    pixels = _small_image(src, 4, 6, 3, 1)  # 24 bits a frame
    transcode_file(src, tmp_path / "o.dcm", TARGET)
    fragments = _fragments(tmp_path / "o.dcm")
    assert [len(f) for f in fragments] == [4, 4, 4]  # 3 bytes, padded to even length
    for frame, fragment in zip(pixels, fragments):
        bits = np.unpackbits(np.frombuffer(fragment, np.uint8), bitorder="little")
        np.testing.assert_array_equal(bits[:24].reshape(4, 6), frame)
        assert not bits[24:].any()
    liver = find_sample("liver.dcm")  # 1-bit, 3 frames of 512 x 512
    transcode_file(liver, tmp_path / "liver.dcm", TARGET)
    source = pydicom.dcmread(liver).pixel_array
    for frame, fragment in zip(source, _fragments(tmp_path / "liver.dcm"), strict=True):
        np.testing.assert_array_equal(
            np.unpackbits(np.frombuffer(fragment, np.uint8), bitorder="little").reshape(512, 512),
            frame)


def test_extended_offsets_reach_every_frame(tmp_path):
    src = find_sample("emri_small.dcm")
    transcode_file(src, tmp_path / "o.dcm", TARGET, extended_offsets=True)
    ds = pydicom.dcmread(tmp_path / "o.dcm", stop_before_pixels=True)
    assert "ExtendedOffsetTable" in ds
    assert _fragments(tmp_path / "o.dcm") == [_padded(_native(f)) for f in frames_of(src)]


def test_a_fragment_of_the_wrong_size_is_refused():
    layout = FrameLayout(rows=3, columns=5, samples_per_pixel=1, bits_allocated=16,
                         bits_stored=12, pixel_representation=0,
                         photometric_interpretation="MONOCHROME2", number_of_frames=1)
    codec = get_codec(TARGET)
    frame = np.arange(15, dtype=np.uint16).reshape(3, 5)
    assert np.array_equal(codec.decode_frame(codec.encode_frame(frame, layout), layout), frame)
    with pytest.raises(CorruptPixelData, match="takes 30 bytes, its fragment 28"):
        codec.decode_frame(bytes(28), layout)


def test_pydicom_reads_the_file_but_decodes_frames_only_if_it_knows_the_syntax(tmp_path):
    """pydicom 3.0 parses the dataset and the fragments; it has no decoder for .98 (so
    it cannot be a source yet); should a later pydicom have one, it must agree."""
    src = find_sample("CT_small.dcm")
    transcode_file(src, tmp_path / "o.dcm", TARGET)
    ds = pydicom.dcmread(tmp_path / "o.dcm")
    try:
        decoded = ds.pixel_array
    except NotImplementedError:
        assert ENCAPSULATED_UNCOMPRESSED not in readable_syntaxes()
        return
    np.testing.assert_array_equal(decoded, pydicom.dcmread(src).pixel_array)


@pytest.mark.parametrize("name", ["CT_small.dcm", "emri_small.dcm", "SC_rgb.dcm", "liver.dcm"])
def test_encapsulated_uncompressed_is_read_back_as_a_source(name, tmp_path):
    """pydicom 3.0 has no decoder for .98: frames of a syntax the table has a codec for
    are decoded by it (pipeline/frames.py), so .98 files transcode onwards bit-exact."""
    transcode_file(find_sample(name), tmp_path / "e.dcm", "encapsulated-uncompressed")
    transcode_file(tmp_path / "e.dcm", tmp_path / "x.dcm", "explicit")
    np.testing.assert_array_equal(pydicom.dcmread(tmp_path / "x.dcm").pixel_array,
                                  pydicom.dcmread(find_sample(name)).pixel_array)


@pytest.mark.parametrize(("name", "options"), [("j2k-lossy", {"psnr": 60}),
                                               ("htj2k-lossy", {"psnr": 55}),
                                               ("jpeg", {"psnr": 40}),
                                               ("jpegxl-lossy", {"psnr": 50}),
                                               ("j2k-lossy", {"ratio": 10.0})])
def test_a_config_round_trip_keeps_only_what_was_set(name, options):
    """The batch and the gateway rebuild codecs from their config, which also lists the
    defaults: a PSNR target must not come back beside the default ratio (or quality) it
    excludes ("give a target ratio or a target PSNR, not both")."""
    codec = get_codec(name, **options)
    back = codec_from_config(codec_config(codec))
    assert back.get_config() == codec.get_config()


def test_a_psnr_target_runs_through_the_batch(tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    shutil.copy(find_sample("CT_small.dcm"), src)
    assert main(["transcode", str(src), "--to", "j2k-lossy", "--psnr", "60", "-o",
                 str(tmp_path / "out"), "--jobs", "1", "-q"]) == 0
