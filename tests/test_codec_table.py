"""The codec table: every fact about a codec lives in its module under codecs/, and
everything else (CLI, compare, plan, gateway, de-identification) reads the registry.
"""

from __future__ import annotations

import ast
import dataclasses
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pydicom
import pytest
from pydicom.dataset import Dataset, FileMetaDataset

import dicompress
from dicompress.cli import _codec_options, build_parser, main
from dicompress.codecs import available_codecs, get_codec
from dicompress.codecs.registry import (Codec, codec_config, codec_from_config,
                                        compare_defaults, fallback_syntaxes, gateway_default,
                                        option_specs, readable_syntaxes, register)

SRC = Path(dicompress.__file__).parent


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
    de-identification wrote out by hand before."""
    from dicompress.compare import DEFAULT_CODECS
    from dicompress.compare.plan import _candidates

    assert DEFAULT_CODECS == compare_defaults() == (
        "explicit,rle,j2k,htj2k,htj2k-rpcl,jpegls,j2k-lossy:5,10,20,40,"
        "htj2k-lossy:5,10,20,40,jpegls-near:1,2,4,jpeg:90,75")
    assert [c.label for c in _candidates(7.3, True)] == ["htj2k", "jpegls", "j2k", "rle"]
    assert [c.label for c in _candidates(7.3, False)][4:] == [
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
    from dicompress.cli import build_parser
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
    ("export/job.py", "jpeg"),
    ("cli/__init__.py", "jpeg"),  # export --format
    ("transcode.py", "rle"),  # transcode_file's default target (the lead's restructuring)
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
    assert "(j2k-lossy, htj2k-lossy, jpeg)" in text  # who takes --psnr


def test_codec_flags_become_codec_options(capsys):
    args = build_parser().parse_args(
        ["transcode", "f", "--to", "j2k-lossy", "--ratio", "15", "--tile", "256x128",
         "--progression", "RPCL", "--layers", "3", "-o", "o"])
    options = _codec_options(args)
    assert options == {"ratio": 15.0, "tile": (256, 128), "progression": "RPCL", "layers": 3,
                       "resolutions": None, "psnr": None, "near": None, "quality": None}
    codec = get_codec(args.to, **options)
    assert (codec.option("ratio"), codec.option("tile")) == (15.0, (256, 128))
    assert main(["transcode", "f", "--to", "j2k", "--tile", "25xab", "-o", "o"]) == 2
    assert "dicompress: --tile '25xab': give ROWSxCOLS" in capsys.readouterr().err
    assert main(["transcode", "f", "--to", "j2k", "--near", "2", "-o", "o"]) == 2
    assert "j2k has no option near" in capsys.readouterr().err
