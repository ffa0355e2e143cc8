"""dicompress's pydicom plugins: JPEG decoding without the GPL decoder, an encoder for
every syntax pydicom 3.0 can encode, and registration that changes no pydicom default."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import warnings

import numpy as np
import pydicom
import pytest
from pydicom import uid
from pydicom.encaps import generate_frames

from conftest import require_tool, uncompressed_images
from dicompress.samples import find_sample, sample_files

warnings.filterwarnings("ignore", module="pydicom")

JPEG_SYNTAXES = (uid.JPEGBaseline8Bit, uid.JPEGExtended12Bit, uid.JPEGLossless,
                 uid.JPEGLosslessSV1)
ENCODED = (uid.RLELossless, uid.JPEGLSLossless, uid.JPEGLSNearLossless,
           uid.JPEG2000Lossless, uid.JPEG2000)
LOSSLESS = (uid.RLELossless, uid.JPEGLSLossless, uid.JPEG2000Lossless)


def _files_in(*syntaxes) -> list:
    found = []
    for path in sample_files():
        try:
            ds = pydicom.dcmread(path, stop_before_pixels=True)
            if ds.file_meta.TransferSyntaxUID in syntaxes and "Rows" in ds:
                found.append(path)
        except Exception:
            continue
    return found


def _jpeg_files() -> list:
    return _files_in(*JPEG_SYNTAXES)


def _ours(path, **options) -> np.ndarray:
    return pydicom.pixels.pixel_array(str(path), decoding_plugin="dicompress", **options)


# -- pydicom's own reference values (pydicom tests/pixels/pixels_reference.py, the
# values its IJG-based decoders give: "pillow"/"gdcm"), samples as coded (raw).
REFERENCE = {
    "SC_rgb_jpeg_dcmtk.dcm": {(5, 50): (76, 85, 255), (15, 50): (166, 106, 193),
                              (25, 50): (150, 46, 20), (45, 50): (29, 255, 107)},
    "SC_rgb_dcmtk_+eb+cy+np.dcm": {(5, 50): (76, 85, 254), (15, 50): (166, 109, 190),
                                   (35, 50): (203, 85, 74), (55, 50): (142, 192, 117)},
    "SC_rgb_dcmtk_+eb+cy+s2.dcm": {(15, 50): (166, 106, 193), (55, 50): (142, 193, 118)},
    "SC_rgb_dcmtk_+eb+cy+n1.dcm": {(15, 50): (166, 109, 190), (45, 50): (29, 255, 108)},
    "SC_rgb_dcmtk_+eb+cr.dcm": {(5, 50): (255, 0, 0), (35, 50): (128, 255, 128),
                                (75, 50): (64, 64, 64)},
    "SC_rgb_jpeg_lossy_gdcm.dcm": {(15, 50): (166, 107, 191), (25, 50): (150, 44, 21)},
    "SC_jpeg_no_color_transform_2.dcm": {(101, 172): (204, 190, 213),
                                         (84, 242): (210, 207, 225)},
    "JPGExtended.dcm": {(420, 140): 244, (230, 120): 95},
    "JPEG-lossy.dcm": {(420, 140): 244, (230, 120): 95},
    "JPGLosslessP14SV1_1s_1f_8b.dcm": {(300, 512): 26, (300, 515): 22, (600, 519): 21},
    "JPEG-LL.dcm": {(400, 124): 60, (400, 131): 67, (600, 125): 1},
    "SC_rgb_jpeg_gdcm.dcm": {(5, 50): (255, 0, 0), (45, 50): (0, 0, 255),
                             (85, 50): (192, 192, 192)},
}


@pytest.mark.parametrize("name", sorted(REFERENCE))
def test_jpeg_decoder_gives_pydicoms_reference_values(name):
    try:
        arr = _ours(find_sample(name), raw=True)
    except FileNotFoundError:
        pytest.skip(f"{name} needs pydicom-data")
    for (row, column), value in REFERENCE[name].items():
        got = arr[row, column]
        assert (tuple(got.tolist()) if got.ndim else int(got)) == value, (name, row, column)


@pytest.mark.peers
@pytest.mark.parametrize("path", _jpeg_files(), ids=lambda p: p.name)
def test_jpeg_decoder_is_bit_exact_with_independent_decoders(path, tmp_path):
    """Every JPEG file of the corpus, frames as coded: the same samples as DCMTK's
    dcmdjpeg (IJG 6b: 8, 12 and 16-bit), GDCM, and, lossless, jpegsof3 and liblj92."""
    try:
        ours = _ours(path, raw=True)
    except Exception as exc:
        pytest.skip(f"not decodable here: {str(exc).splitlines()[-1][:80]}")
    ds = pydicom.dcmread(path)
    checked = []
    if shutil.which("dcmdjpeg"):
        out = tmp_path / "dcmtk.dcm"
        if subprocess.run(["dcmdjpeg", "+cn", str(path), str(out)],
                          capture_output=True).returncode == 0:
            theirs = pydicom.pixels.pixel_array(str(out), raw=True)
            np.testing.assert_array_equal(ours, theirs, err_msg=f"{path.name}: DCMTK")
            checked.append("dcmtk")
    try:
        theirs = pydicom.pixels.pixel_array(str(path), decoding_plugin="gdcm", raw=True)
    except Exception:
        theirs = None
    if theirs is not None:
        np.testing.assert_array_equal(ours, theirs, err_msg=f"{path.name}: GDCM")
        checked.append("gdcm")
    if ds.file_meta.TransferSyntaxUID in (uid.JPEGLossless, uid.JPEGLosslessSV1):
        import imagecodecs

        frame = next(generate_frames(ds.PixelData, number_of_frames=1))
        for decode in (imagecodecs.jpegsof3_decode, imagecodecs.ljpeg_decode):
            theirs = decode(frame).reshape(ours.shape[:2] + ours.shape[2:])
            np.testing.assert_array_equal(ours, _signed(theirs, ds), err_msg=decode.__name__)
        checked.append("jpegsof3+ljpeg")
    assert checked, f"{path.name}: no independent decoder could read it here"


def _signed(arr: np.ndarray, ds) -> np.ndarray:
    """Unsigned samples of a lossless JPEG as pydicom gives them (sign-extended from
    Bits Stored when Pixel Representation is 1)."""
    if not ds.PixelRepresentation:
        return arr
    shift = arr.dtype.itemsize * 8 - ds.BitsStored
    return (arr.view(arr.dtype.str.replace("u", "i")) << shift) >> shift


@pytest.mark.parametrize("selection", [1, 2, 6])
def test_jpeg_lossless_from_dcmtk_round_trips_exactly(selection, tmp_path):
    """dcmcjpeg (DCMTK's IJG-based encoder) codes an image lossless, process 14 with
    predictor `selection` (.57; 1 is .70): our decoder gives back every source sample."""
    tool = require_tool("dcmcjpeg")
    for name in ("CT_small.dcm", "MR_small.dcm", "SC_rgb.dcm", "SC_rgb_16bit.dcm"):
        try:
            source = find_sample(name)
        except FileNotFoundError:
            continue
        out = tmp_path / f"{selection}-{name}"
        flag = ["+e1"] if selection == 1 else ["+el", "+sv", str(selection)]
        done = subprocess.run([tool, *flag, str(source), str(out)], capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        coded = pydicom.dcmread(out)
        assert coded.file_meta.TransferSyntaxUID == (uid.JPEGLosslessSV1 if selection == 1
                                                     else uid.JPEGLossless)
        np.testing.assert_array_equal(_ours(out), pydicom.dcmread(source).pixel_array,
                                      err_msg=f"{name}, selection value {selection}")


@pytest.mark.peers
@pytest.mark.parametrize("path", _files_in(uid.JPEGLSLossless, uid.JPEGLSNearLossless),
                         ids=lambda p: p.name)
def test_jpegls_decoder_is_bit_exact_with_pydicoms_other_plugins(path):
    """Every JPEG-LS file of the corpus (ILV 0, 1 and 2, signed, near-lossless): the same
    array as pylibjpeg's, pyjpegls's or GDCM's decode, whichever reads it."""
    ours = _ours(path)
    compared = 0
    for plugin in ("pylibjpeg", "pyjpegls", "gdcm"):
        try:
            theirs = pydicom.pixels.pixel_array(str(path), decoding_plugin=plugin)
        except Exception:  # that peer cannot (GDCM and 16-bit signed, ...)
            continue
        np.testing.assert_array_equal(ours, theirs, err_msg=f"{path.name}: {plugin}")
        compared += 1
    assert compared, f"{path.name}: no other plugin decodes it here"


def test_signed_jpegls_reads_through_the_pipeline(tmp_path):
    """pydicom 3.0 sign-corrects JPEG-LS frames in place: with GDCM's read-only frames,
    a signed 14-bit JPEG-LS file could not be transcoded (main: 'output array is
    read-only'); dicompress's reading names its own JPEG-LS decoder."""
    import dicompress
    from dicompress.transcode import transcode_file

    try:
        ds = pydicom.dcmread(find_sample("693_UNCI.dcm"))  # 14 bits stored, signed
    except FileNotFoundError:
        pytest.skip("needs pydicom-data")
    coded = dicompress.compress(ds, "jpegls")
    coded.save_as(tmp_path / "jls.dcm")
    result = transcode_file(tmp_path / "jls.dcm", tmp_path / "rle.dcm", "rle")
    assert result.verified
    np.testing.assert_array_equal(pydicom.dcmread(tmp_path / "rle.dcm").pixel_array,
                                  ds.pixel_array)


# -- registration ----------------------------------------------------------------------
_ORDERS = ("import json, pydicom.pixels.decoders.base as d, pydicom.pixels.encoders.base as e; "
           "print(json.dumps({f'{kind} {u}': list(c._available) for kind, table in "
           "(('decoder', d._PIXEL_DATA_DECODERS), ('encoder', e._PIXEL_DATA_ENCODERS)) "
           "for u, (c, _) in table.items()}))")


def _orders(prefix: str) -> dict:
    done = subprocess.run([sys.executable, "-c", prefix + _ORDERS], capture_output=True,
                          text=True, check=True)
    return json.loads(done.stdout.splitlines()[-1])


def test_importing_dicompress_changes_no_pydicom_default():
    """pydicom tries its plugins in order when none is named: with dicompress imported
    (before or after pydicom) every order is pydicom's own, ours appended last."""
    plain = _orders("")
    for prefix in ("import dicompress; ", "import pydicom, dicompress; "):
        with_us = _orders(prefix)
        for syntax, order in plain.items():
            assert [p for p in with_us[syntax] if p != "dicompress"] == order, syntax
            assert with_us[syntax][-1:] in (["dicompress"], order[-1:]), syntax
        added = {s for s, o in with_us.items() if "dicompress" in o}
        assert {f"decoder {u}" for u in (*JPEG_SYNTAXES, uid.RLELossless, uid.JPEGLSLossless,
                                        uid.JPEGLSNearLossless)} <= added
        assert {f"encoder {u}" for u in ENCODED} <= added


_IDENTITIES = """
import json, sys
import pydicom.pixels.decoders.base as d, pydicom.pixels.encoders.base as e

def plugins():  # "decoder 1.2.840.10008.1.2.5" -> [(label, the function's id, wrapped?)]
    return {f"{kind} {u}": [(label, id(f), hasattr(f, "__wrapped__"))
                            for label, f in c._available.items()]
            for kind, table in (("decoder", d._PIXEL_DATA_DECODERS),
                                ("encoder", e._PIXEL_DATA_ENCODERS))
            for u, (c, _) in table.items()}

before = plugins()
import pydicom, dicompress, dicompress.plugins
from dicompress.samples import find_sample
for name in ("MR_small_jp2klossless.dcm", "MR_small_RLE.dcm", "JPEGLSNearLossless_16.dcm",
             "SC_rgb_jpeg_dcmtk.dcm"):  # dicompress's own reading, through pydicom's decoders
    dicompress.decompress(pydicom.dcmread(find_sample(name)))
used = plugins()
dicompress.plugins.register(check=True)
print(json.dumps([before, used, plugins()]))
"""


def test_importing_and_using_dicompress_wraps_no_pydicom_decoder():
    """pydicom's own plugins stay the same function objects in the same order after
    `import dicompress` and its own reading (which checks codestreams itself, issue 17):
    ours are appended; new entries only for syntaxes pydicom 3.0 does not know.
    `register(check=True)` wraps every decoder, in the same order."""
    done = subprocess.run([sys.executable, "-c", _IDENTITIES], capture_output=True,
                          text=True, check=True)
    before, used, checked = json.loads(done.stdout.splitlines()[-1])
    for syntax, plugins in before.items():
        assert used[syntax][:len(plugins)] == plugins, syntax
        assert [label for label, *_ in used[syntax][len(plugins):]] in ([], ["dicompress"]), syntax
        assert not any(wrapped for *_, wrapped in used[syntax]), syntax
    for syntax in set(used) - set(before):
        assert [label for label, *_ in used[syntax]] == ["dicompress"], syntax
    wrapped = {s for s, plugins in checked.items() if any(w for *_, w in plugins)}
    assert {f"decoder {uid.JPEG2000Lossless}", f"decoder {uid.RLELossless}"} <= wrapped
    assert not any(s.startswith("encoder") for s in wrapped)
    for syntax in wrapped:
        assert [label for label, *_ in checked[syntax]] == [label for label, *_ in used[syntax]]
        assert all(w for *_, w in checked[syntax]), syntax


def test_register_prefer_puts_ours_first_when_asked():
    orders = _orders("import dicompress.plugins as p; p.register(prefer=True); ")
    for key in (f"decoder {uid.RLELossless}", f"decoder {uid.JPEGLosslessSV1}",
                f"encoder {uid.RLELossless}", f"encoder {uid.JPEG2000Lossless}"):
        assert orders[key][0] == "dicompress", key


def test_import_dicompress_does_not_import_pydicom():
    done = subprocess.run([sys.executable, "-c", "import sys, dicompress; "
                           "print('pydicom' in sys.modules)"], capture_output=True, text=True,
                          check=True)
    assert done.stdout.split() == ["False"]


# -- ds.compress(uid, encoding_plugin="dicompress") over the corpus ----------------------
def _compress_and_decode(path, syntax) -> tuple[str, str]:
    """('ok' | 'refused' | 'failed', detail): compressed by our plugin, decoded by every
    other plugin pydicom has for the syntax; lossless: bit-exact with each of them."""
    ds = pydicom.dcmread(path)
    source = ds.pixel_array.copy()
    try:
        ds.compress(syntax, encoding_plugin="dicompress")
    except (ValueError, RuntimeError) as exc:
        reason = str(exc).splitlines()[-1]
        known = ("Part 5, Section 8.2" in reason  # pydicom's encoding profiles
                 or "doesn't match the expected length" in reason  # pydicom: YBR_FULL_422
                 or "dicompress: Planar Configuration 1" in reason  # J2K, see encoder.py
                 or "dicompress: " in reason and any(  # our codecs' layout checks
                     why in reason for why in ("codes", "outside the", "beyond")))
        return ("refused" if known else "failed"), reason
    decoders = [p for p in pydicom.pixels.get_decoder(syntax).available_plugins
                if p != "dicompress"]
    assert decoders, f"nothing but dicompress decodes {syntax.name} here"
    worst, read_by = 0, []
    for plugin in decoders:
        ds.pixel_array_options(decoding_plugin=plugin)
        try:
            decoded = ds.pixel_array
        except Exception:  # a peer that cannot take this layout (Pillow: 16-bit colour)
            continue
        finally:
            ds._pixel_array, ds._pixel_id = None, {}
        read_by.append(plugin)
        worst = max(worst, int(np.abs(decoded.astype(np.int64) - source).max(initial=0)))
    if not read_by:
        return "failed", f"none of {decoders} decodes it"
    if syntax in LOSSLESS and worst:
        return "failed", f"lossless, but off by {worst}"
    return "ok", f"max error {worst}"


@pytest.mark.slow
def test_encoder_plugin_over_the_corpus():
    """Every uncompressed corpus image x every syntax pydicom 3.0 encodes: compressed
    with encoding_plugin="dicompress", decoded by pydicom's other plugins (pylibjpeg,
    GDCM, pyjpegls, pydicom's RLE); lossless ones bit-exact. Refusals are pydicom's
    encoding profiles (PS3.5 8.2) or our codecs' layout checks, never a crash."""
    results = {}
    for path in uncompressed_images():
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        if ds.file_meta.TransferSyntaxUID == uid.ExplicitVRBigEndian:
            continue  # pydicom 3.0's compress() reads big-endian Pixel Data as little
            # endian, whatever the plugin (its own RLE encoder too); dicompress.compress
            # takes them (tests/test_api.py)
        if ds.get("NumberOfFrames", 1) and int(ds.get("NumberOfFrames", 1) or 1) > 8:
            continue  # the multi-frame ones are covered by test_codecs; keep this short
        for syntax in ENCODED:
            results[(path.name, syntax.name)] = _compress_and_decode(path, syntax)
    failed = {k: v for k, v in results.items() if v[0] == "failed"}
    assert not failed, failed
    ok = sum(v[0] == "ok" for v in results.values())
    print(f"{ok} of {len(results)} calls work; the rest refused by profile or layout",
          sorted({v[1] for v in results.values() if v[0] == "refused"}))
    assert ok >= 0.75 * len(results)


@pytest.mark.parametrize("module", ["rle_decoder", "jpeg_decoder", "jpegls_decoder",
                                    "jpegxl_decoder", "deflate_frames_decoder", "encoder",
                                    "checked_decoders"])
def test_a_plugin_module_imported_first_still_registers_every_plugin(module):
    """`import dicompress.plugins.rle_decoder` in a fresh process imported pydicom from
    inside that module, whose hook then registered the plugins while the module was half
    made: "could not register its pydicom plugins" and none registered (found by review)."""
    code = (f"import dicompress.plugins.{module}\n"
            "import pydicom\n"
            "from pydicom.pixels import get_decoder, get_encoder\n"
            "from pydicom.uid import RLELossless, JPEGLSLossless\n"
            "assert 'dicompress' in get_decoder(RLELossless)._available\n"
            "assert 'dicompress' in get_encoder(JPEGLSLossless)._available\n")
    run = subprocess.run([sys.executable, "-W", "error::UserWarning", "-c", code],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
