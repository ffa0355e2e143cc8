"""Quality numbers in the units a reader sees (docs/compare.md): compare and transcode
agree with each other and with a computation of our own on pydicom's decoding of the
written file (rescale and window applied here, by hand)."""

from __future__ import annotations

import json
import math

import numpy as np
import pydicom
import pytest

from dicompress.codecs import get_codec
from dicompress.compare import compare, parse_codecs
from dicompress.compare.report import write_json
from dicompress.pipeline.encode import VISIBLE_LEVELS
from dicompress.samples import find_sample
from dicompress.transcode import transcode_file


def _stored(path) -> np.ndarray:
    return pydicom.dcmread(path).pixel_array.astype(np.float64)


def _linear_window(x: np.ndarray, center: float, width: float) -> np.ndarray:
    """PS3.3 C.11.2.1.2 (LINEAR) to 0..255, continuous."""
    return np.clip((x - (center - 0.5)) / (width - 1) + 0.5, 0.0, 1.0) * 255.0


@pytest.mark.parametrize("name, setting", [("693_UNCR.dcm", 40), ("MR2_UNCR.dcm", 20)])
def test_worst_modality_error_is_what_transcode_writes(name, setting, tmp_path):
    source = find_sample(name)
    row = compare([source], parse_codecs(f"j2k-lossy:{setting}")).overall[f"j2k-lossy:{setting}"]
    result = transcode_file(source, tmp_path / "out.dcm", get_codec("j2k-lossy", ratio=setting))

    header = pydicom.dcmread(source, stop_before_pixels=True)
    slope, intercept = float(header.RescaleSlope), float(header.RescaleIntercept)
    before = _stored(source) * slope + intercept  # HU for the CT
    after = _stored(tmp_path / "out.dcm") * slope + intercept
    independent = float(np.abs(before - after).max())
    assert independent > 0  # a lossy setting that loses something: the test can fail
    assert row.max_abs_error_modality == pytest.approx(independent, rel=1e-9)
    assert result.max_abs_error_modality == pytest.approx(independent, rel=1e-9)

    center, width = float(header.WindowCenter), float(header.WindowWidth)
    display = float(np.abs(_linear_window(before, center, width)
                           - _linear_window(after, center, width)).max())
    # voi.py renders to 16 bits: each side is within half of 1/257 of a level
    assert row.max_display_error == pytest.approx(display, abs=1 / 257)
    assert result.max_display_error == pytest.approx(display, abs=1 / 257)
    assert result.display_window == f"C{center:g}/W{width:g}"

    stored_before, stored_after = _stored(source), _stored(tmp_path / "out.dcm")
    peak = stored_before.max() - stored_before.min()  # the image's dynamic range
    mse = float(np.mean((stored_before - stored_after) ** 2))
    assert row.psnr == pytest.approx(10 * math.log10(peak * peak / mse), abs=1e-6)
    assert result.psnr == pytest.approx(row.psnr, abs=1e-6)


def test_psnr_target_is_met_on_the_dynamic_range(tmp_path):
    source = find_sample("693_UNCR.dcm")
    result = transcode_file(source, tmp_path / "out.dcm", get_codec("j2k-lossy", psnr=45))
    before, after = _stored(source), _stored(tmp_path / "out.dcm")
    mse = float(np.mean((before - after) ** 2))
    on_range = 10 * math.log10((before.max() - before.min()) ** 2 / mse)
    on_bits_stored = 10 * math.log10((2**14 - 1) ** 2 / mse)
    assert 45 <= on_range < on_bits_stored  # the Bits Stored peak would flatter it
    assert result.psnr == pytest.approx(on_range, abs=1e-6)


def test_visible_at_a_narrow_window_and_reported_in_json(tmp_path):
    source = find_sample("693_UNCR.dcm")
    result = compare([source], parse_codecs("rle,j2k-lossy:40"), window="brain")
    lossy, lossless = result.overall["j2k-lossy:40"], result.overall["rle"]
    assert lossless.max_display_error == 0 and lossless.visible_at == []
    assert lossy.max_display_error > VISIBLE_LEVELS
    assert lossy.visible_at == ["C40/W80 brain"]
    write_json(result, tmp_path / "c.json")
    row = next(r for r in json.loads((tmp_path / "c.json").read_text())["codecs"]
               if r["codec"] == "j2k-lossy:40")
    assert row["max_abs_error_modality"] == pytest.approx(lossy.max_abs_error_modality, abs=1e-4)
    assert row["max_display_error"] == pytest.approx(lossy.max_display_error, abs=1e-3)
    assert row["visible_at"] == ["C40/W80 brain"]


def test_enhanced_ct_reads_rescale_and_window_from_its_functional_groups():
    from dicompress.pipeline.encode import FrameView

    ds = pydicom.dcmread(find_sample("eCT_Supplemental.dcm"), stop_before_pixels=True)
    assert "RescaleIntercept" not in ds  # only in the Pixel Value Transformation group
    view = FrameView(ds, 1)
    assert float(view.header.RescaleIntercept) == -1024.0
    stored = np.array([[1024, 1124]], np.uint16)
    assert view.modality(stored).tolist() == [[0.0, 100.0]]
    assert str(view.resolve(stored)).startswith("C49/W102")


# -- where a lossy output says what it derives from -------------------------------------------
def _findings(tool, path):
    """dciodvfy's errors, and its warnings about attributes the IOD does not have."""
    import re
    import subprocess

    proc = subprocess.run([tool, str(path)], capture_output=True, text=True, errors="replace")
    text = proc.stdout + proc.stderr
    lines = re.findall(r"^(Error - .*|Warning - Attribute is not present in standard .*)$",
                       text, re.M)
    return {re.sub(r"\s+", " ", line).strip() for line in lines}


@pytest.mark.peers
@pytest.mark.parametrize("target", ["j2k-lossy", "htj2k-lossy", "jpegls-near"])
def test_enhanced_ct_derivation_goes_in_its_functional_group(target, tmp_path):
    from test_interop import new_errors

    source = find_sample("eCT_Supplemental.dcm")
    output = tmp_path / "out.dcm"
    transcode_file(source, output, target)
    ds = pydicom.dcmread(output, stop_before_pixels=True)
    for keyword in ("SourceImageSequence", "DerivationDescription", "DerivationCodeSequence"):
        assert keyword not in ds, keyword  # not at the top level of an Enhanced object
    item = ds.SharedFunctionalGroupsSequence[0].DerivationImageSequence[-1]
    assert item.DerivationCodeSequence[0].CodeValue == "113040"
    assert "Lossy compression by dicompress" in item.DerivationDescription
    reference = item.SourceImageSequence[0]
    original = pydicom.dcmread(source, stop_before_pixels=True)
    assert reference.ReferencedSOPInstanceUID == original.SOPInstanceUID != ds.SOPInstanceUID
    assert reference.PurposeOfReferenceCodeSequence[0].CodeValue == "121320"
    assert all("DerivationImageSequence" not in group
               for group in ds.PerFrameFunctionalGroupsSequence)
    if target.startswith("htj2k"):
        return  # dicom3tools (Debian bookworm) predates HTJ2K
    new, compared = new_errors([(source, output)], errors=_findings)
    assert compared == 1 and not new, new


def test_per_frame_derivation_stays_per_frame():
    """A source that keeps the Derivation Image group per frame gets the item in every
    frame's group, not a second copy of the group in the shared one (PS3.3 C.7.6.16)."""
    from pydicom.dataset import Dataset

    from dicompress.pipeline.mark import mark_lossy

    ds = pydicom.dcmread(find_sample("eCT_Supplemental.dcm"), stop_before_pixels=True)
    earlier = Dataset()
    earlier.DerivationDescription = "resampled"
    for group in ds.PerFrameFunctionalGroupsSequence:
        group.DerivationImageSequence = [earlier]
    mark_lossy(ds, get_codec("j2k-lossy", ratio=10), source_lossy=False)
    assert "DerivationImageSequence" not in ds.SharedFunctionalGroupsSequence[0]
    for group in ds.PerFrameFunctionalGroupsSequence:
        descriptions = [i.DerivationDescription for i in group.DerivationImageSequence]
        assert descriptions[0] == "resampled" and descriptions[1].startswith("Lossy compression")


def test_per_frame_rescale_of_an_enhanced_object_is_applied_frame_by_frame(tmp_path):
    from pydicom.dataset import Dataset

    ds = pydicom.dcmread(find_sample("eCT_Supplemental.dcm"))
    del ds.SharedFunctionalGroupsSequence[0].PixelValueTransformationSequence
    slopes = (1.0, 3.0)
    for group, slope in zip(ds.PerFrameFunctionalGroupsSequence, slopes):
        item = Dataset()
        item.RescaleSlope, item.RescaleIntercept, item.RescaleType = slope, -1024, "HU"
        group.PixelValueTransformationSequence = [item]
    source = tmp_path / "per_frame.dcm"
    ds.save_as(source)  # a test input, not an output of ours
    result = transcode_file(source, tmp_path / "out.dcm", get_codec("j2k-lossy", ratio=30))
    before = pydicom.dcmread(source).pixel_array.astype(np.float64)
    after = pydicom.dcmread(tmp_path / "out.dcm").pixel_array.astype(np.float64)
    independent = max(float(np.abs(b - a).max()) * slope
                       for b, a, slope in zip(before, after, slopes))
    assert independent > 0
    assert result.max_abs_error_modality == pytest.approx(independent, rel=1e-9)


def test_a_window_the_display_pipeline_refuses_falls_back_to_auto_and_says_so():
    from pydicom.dataset import Dataset

    from dicompress.compare.metrics import quality
    from dicompress.pipeline.encode import FrameView

    header = Dataset()
    header.PhotometricInterpretation, header.BitsStored, header.PixelRepresentation = \
        "MONOCHROME2", 12, 0
    header.WindowCenter, header.WindowWidth = 100, 0.5  # LINEAR needs a width of 1 or more
    ref = np.arange(400, dtype=np.uint16).reshape(20, 20)
    dec = ref.copy()
    dec[5, 5] += 4
    q = quality(ref, dec, 12, FrameView(header))
    assert q.window.startswith("auto (the file's window unusable: window width 0.5 < 1")
    assert q.max_display_error > 0 and q.max_abs_error_modality == 4


@pytest.mark.peers
@pytest.mark.parametrize("target, photometric, planar", [
    ("explicit", "RGB", 0), ("j2k-lossy", "YBR_ICT", 0), ("rle", "YBR_FULL", 1)])
def test_us_ybr_full_outputs_follow_the_us_planar_configuration_rule(target, photometric,
                                                                     planar, tmp_path):
    """PS3.3 C.8.5.6.1.16: YBR_FULL in a US image is colour-by-plane (Planar Configuration
    1), which RLE codes; the YCbCr frames a lossy JPEG decodes to go to every other target
    as RGB (J2K then codes them with its colour transform). dciodvfy finds no new error,
    and the RGB frames are pydicom's own conversion of the source's."""
    from pydicom.pixels import convert_color_space

    from test_interop import new_errors

    source = find_sample("examples_ybr_color.dcm")  # US multi-frame, YBR_FULL_422 JPEG
    output = tmp_path / "out.dcm"
    transcode_file(source, output, target)
    out = pydicom.dcmread(output)
    assert (out.PhotometricInterpretation, out.PlanarConfiguration) == (photometric, planar)
    new, compared = new_errors([(source, output)])
    assert compared == 1 and not new, new
    if target == "explicit":
        from pydicom.pixels import pixel_array

        decoded = pixel_array(source, raw=True)  # YBR_FULL, as pydicom decodes it
        np.testing.assert_array_equal(out.pixel_array,
                                      convert_color_space(decoded, "YBR_FULL", "RGB"))


def test_compare_codes_us_ycbcr_as_transcode_does(tmp_path):
    """compare measures a US image's JPEG YCbCr as each target's transcode codes it (RGB
    for J2K, YBR_FULL by plane for RLE): its sizes and worst errors are the transcode's."""
    from pydicom.encaps import generate_frames

    source = find_sample("examples_ybr_color.dcm")
    choices = parse_codecs("rle,j2k-lossy:20")
    result = compare([source], choices, sample=2)
    for choice in choices:
        row = result.overall[choice.label]
        assert row.frames == 2 and not row.not_applicable
        out = tmp_path / f"{choice.codec.name}.dcm"
        written = transcode_file(source, out, choice.codec)
        ds = pydicom.dcmread(out)
        frames = list(generate_frames(ds.PixelData, number_of_frames=int(ds.NumberOfFrames)))
        # the sampled frames are the first and the last
        stored = sum(len(f) + (len(f) & 1) for f in (frames[0], frames[-1]))
        assert row.stored_bytes == stored, choice.label
        if not choice.lossless:
            assert row.max_abs_error_modality <= written.max_abs_error_modality
