"""De-identification (PS3.15 E.1): the table, each action, the options, whole corpora."""

from __future__ import annotations

import contextlib
import copy
import io
import json
import re
import subprocess
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.charset import encode_string
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from conftest import corpus_images, frames_of, require_tool
from dicompress.deid import (BurnedInRefused, DeidConfig, Deidentifier, Profile, deidentify_file,
                             renamed)
from dicompress.deid import keys
from dicompress.deid.dates import shift_da, shift_dt
from dicompress.deid.profile import KEEP, rule_for, rules
from dicompress.errors import DeidError, DicompressError
from dicompress.samples import find_sample, sample_files
from test_interop import _errors, new_errors

KEY = b"a test key that is long enough"


def config(*options: str, **kw) -> DeidConfig:
    return DeidConfig(options=frozenset(options), key=KEY, **kw)


def action(keyword_or_tag, *options: str) -> str:
    tag = keyword_or_tag if isinstance(keyword_or_tag, int) else \
        pydicom.datadict.tag_for_keyword(keyword_or_tag)
    rule = rule_for(tag)
    return KEEP if rule is None else Profile(frozenset(options)).action(rule)


# -- the table ------------------------------------------------------------------------
def test_table_is_whole_and_well_formed():
    exact, masked, private = rules()
    assert len(exact) > 600 and len(masked) == 3  # 2026c lists 655 attributes
    for rule in list(exact.values()) + list(masked.values()) + [private]:
        assert rule.basic in {"X", "Z", "D", "U", "K", "C", "X/Z", "X/D", "Z/D", "X/Z/D",
                              "X/Z/U*"}, rule
        assert set(rule.options.values()) <= {"K", "C", "X"}, rule


@pytest.mark.parametrize("keyword, options, expected", [
    # PS3.15 Table E.1-1 rows, by the basic profile and with each option that names them
    ("PatientName", (), "Z"), ("PatientID", (), "D"),  # Z/D since 2024 ("AccessionNumber", (), "Z"),
    ("PatientAddress", (), "X"), ("OtherPatientIDsSequence", (), "X"),
    ("InstitutionName", (), "D"), ("InstitutionName", ("retain-institution-id",), "K"),
    ("DeviceSerialNumber", (), "D"), ("DeviceSerialNumber", ("retain-device-id",), "K"),
    ("StationName", ("retain-device-id",), "K"),
    ("SOPInstanceUID", (), "U"), ("SOPInstanceUID", ("retain-uids",), "K"),
    ("FrameOfReferenceUID", (), "U"), ("ReferencedSOPInstanceUID", (), "U"),
    ("ReferencedImageSequence", (), "U*"),
    ("StudyDate", (), "Z"), ("StudyDate", ("retain-full-dates",), "K"),
    ("StudyDate", ("retain-modified-dates",), "C"), ("AcquisitionDateTime", (), "D"),
    ("PatientAge", (), "X"), ("PatientAge", ("retain-patient-chars",), "K"),
    ("PatientSex", ("retain-patient-chars",), "K"), ("PatientWeight", ("retain-patient-chars",), "K"),
    ("StudyDescription", (), "X"), ("StudyDescription", ("clean-descriptors",), "C"),
    ("SeriesDescription", ("clean-descriptors",), "C"),
    ("ContentSequence", (), "D"), ("Modality", (), "K"), ("PixelSpacing", (), "K"),
    (0x60003000, (), "X"), (0x60024000, (), "X"), (0x50020010, (), "X"),  # overlays, curves
    (0x00091001, (), "X"), (0x00291010, ("retain-safe-private",), "C"),  # private
])
def test_profile_examples_get_their_action(keyword, options, expected):
    assert action(keyword, *options) == expected


def test_options_are_checked_and_marked():
    with pytest.raises(ValueError, match="exclude"):
        Profile(frozenset({"retain-full-dates", "retain-modified-dates"}))
    with pytest.raises(ValueError, match="unknown"):
        Profile(frozenset({"retain-everything"}))
    codes = Profile(frozenset({"retain-uids", "clean-descriptors"})).codes()
    assert [c for c, _ in codes] == ["113100", "113105", "113110"]


# -- one dataset, every kind of action -------------------------------------------------
def _dataset() -> Dataset:
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
    ds.SOPInstanceUID = "1.2.3.4.5.6.7.100"
    ds.StudyInstanceUID = "1.2.3.4.5.6.7.1"
    ds.SeriesInstanceUID = "1.2.3.4.5.6.7.2"
    ds.FrameOfReferenceUID = "1.2.3.4.5.6.7.3"
    ds.PatientName = "Müller^Jürgen"
    ds.PatientID = "MRN0012345"
    ds.IssuerOfPatientID = "HOSPITAL A"
    ds.PatientBirthDate = "19610412"
    ds.PatientSex = "M"
    ds.PatientAge = "063Y"
    ds.PatientAddress = "12 Rue des Lilas, Paris"
    ds.AccessionNumber = "ACC7781"
    ds.StudyDate, ds.SeriesDate, ds.StudyTime = "20240301", "20240301", "101500"
    ds.AcquisitionDateTime = "20240301101733.25"
    ds.InstitutionName = "Hôpital Saint-Louis"
    ds.ReferringPhysicianName = "Dupont^Claire"
    ds.StudyDescription = "CT THORAX"
    ds.SeriesDescription = "Müller follow-up"
    ds.ImageComments = "call 01 42 49 49 49"
    ds.DeviceSerialNumber = "SN-4711"
    ds.StationName = "CTROOM2"
    ds.Modality = "CT"
    ds.Manufacturer = "ACME"
    ref = Dataset()
    ref.ReferencedSOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
    ref.ReferencedSOPInstanceUID = "1.2.3.4.5.6.7.99"
    ds.ReferencedImageSequence = Sequence([ref])
    req = Dataset()
    req.RequestedProcedureID = "RP99"
    req.PatientID = "MRN0012345"
    ds.AnatomicRegionSequence = Sequence([req])  # not in the table: kept, items cleaned
    ds.add_new(0x00090010, "LO", "ACME PRIVATE")
    ds.add_new(0x00091001, "LO", "Jürgen Müller")
    ds.add_new(0x00190010, "LO", "SIEMENS MR HEADER")
    ds.add_new(0x0019100C, "IS", "1000")  # B_value: on the safe list
    ds.add_new(0x0019100A, "US", 7)  # not on it
    ds.add_new(0x60003000, "OW", b"\x01\x02" * 8)  # overlay bitmap
    ds.add_new(0x50000010, "US", 3)  # curve
    ds.add_new(0x00100000, "UL", 1234)  # a group length, stale after removal
    ds.file_meta = Dataset()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.file_meta.SourceApplicationEntityTitle = "HOSP_CT2"
    return ds


def test_each_action_on_a_dataset():
    ds = _dataset()
    report = Deidentifier(config()).apply(ds)
    # U: replaced, under 2.25, consistently (the meta copy too)
    assert ds.SOPInstanceUID.startswith("2.25.") and ds.SOPInstanceUID != "1.2.3.4.5.6.7.100"
    assert ds.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID
    assert ds.ReferencedImageSequence[0].ReferencedSOPInstanceUID == \
        keys.replacement_uid(KEY, "1.2.3.4.5.6.7.99")
    assert ds.ReferencedImageSequence[0].ReferencedSOPClassUID == "1.2.840.10008.5.1.4.1.1.2"
    assert len(ds.SOPInstanceUID) <= 64 and re.fullmatch(r"2\.25\.[1-9]\d*", ds.SOPInstanceUID)
    # Z: pseudonyms for the patient, empty otherwise; the same ID inside sequences
    assert str(ds.PatientName).startswith("ANON") and ds.PatientID == str(ds.PatientName)
    assert ds.AnatomicRegionSequence[0].PatientID == ds.PatientID
    assert ds.PatientBirthDate == "" and ds.AccessionNumber == "" and ds.StudyDate == ""
    # X: gone, wherever they are
    for keyword in ("PatientAddress", "PatientAge", "IssuerOfPatientID", "StudyDescription",
                    "SeriesDescription", "ImageComments"):
        assert keyword not in ds, keyword
    assert "RequestedProcedureID" not in ds.AnatomicRegionSequence[0]
    # D: dummies
    assert ds.InstitutionName == "ANONYMIZED" and ds.DeviceSerialNumber == "ANONYMIZED"
    assert ds.SeriesDate == "19000101" and ds.AcquisitionDateTime == "19000101000000"
    # K: what is not in the table stays
    assert ds.Modality == "CT" and ds.Manufacturer == "ACME"
    # private, overlays, curves, group lengths, the sender in the meta: gone
    assert not [t for t in ds.keys() if t >> 16 & 1 or t >> 16 in (0x5000, 0x6000)]
    assert 0x00100000 not in ds and "SourceApplicationEntityTitle" not in ds.file_meta
    # marking
    assert ds.PatientIdentityRemoved == "YES"
    assert [i.CodeValue for i in ds.DeidentificationMethodCodeSequence] == ["113100"]
    assert ds.LongitudinalTemporalInformationModified == "REMOVED"
    assert report.actions["X"] >= 10 and report.actions["U"] >= 5


def test_options_keep_what_they_name():
    ds = _dataset()
    Deidentifier(config("retain-patient-chars", "retain-device-id", "retain-institution-id",
                        "retain-uids", "clean-descriptors", "retain-safe-private",
                        "retain-full-dates")).apply(ds)
    assert ds.PatientAge == "063Y" and ds.PatientSex == "M"
    assert ds.DeviceSerialNumber == "SN-4711" and ds.StationName == "CTROOM2"
    assert ds.InstitutionName == "Hôpital Saint-Louis"
    assert ds.SOPInstanceUID == "1.2.3.4.5.6.7.100"
    assert ds.StudyDate == "20240301"
    assert ds.PatientBirthDate == ""  # no option of the table keeps it (the age stays)
    # Clean Descriptors: kept when clean, removed when they name the patient or a number
    assert ds.StudyDescription == "CT THORAX"
    assert "SeriesDescription" not in ds and "ImageComments" not in ds
    # Retain Safe Private: the b-value and its creator stay, nothing else private
    assert ds[0x0019100C].value == "1000" and ds[0x00190010].value == "SIEMENS MR HEADER"
    assert 0x0019100A not in ds and 0x00091001 not in ds and 0x00090010 not in ds
    assert [i.CodeValue for i in ds.DeidentificationMethodCodeSequence] == [
        "113100", "113105", "113106", "113108", "113109", "113110", "113111", "113112"]
    assert ds.LongitudinalTemporalInformationModified == "UNMODIFIED"


def test_modified_dates_shift_a_patient_by_one_interval():
    a, b, other = _dataset(), _dataset(), _dataset()
    b.SOPInstanceUID, b.StudyDate, b.SeriesDate = "1.2.3.9", "20240415", "20240415"
    other.PatientID = "SOMEONE ELSE"
    for ds in (a, b, other):
        Deidentifier(config("retain-modified-dates")).apply(ds)
    day = lambda v: np.datetime64(f"{v[:4]}-{v[4:6]}-{v[6:8]}")  # noqa: E731
    shift = (day(a.StudyDate) - np.datetime64("2024-03-01")).astype(int)
    assert -3653 <= shift <= -365
    assert (day(b.StudyDate) - day(a.StudyDate)).astype(int) == 45  # interval kept
    assert a.PatientBirthDate == ""  # Z whatever the options
    assert a.AcquisitionDateTime[8:] == "101733.25" and a.StudyTime == "101500"
    assert (day(other.StudyDate) - np.datetime64("2024-03-01")).astype(int) != shift
    assert a.LongitudinalTemporalInformationModified == "MODIFIED"


def test_date_values_shift_with_their_precision_and_ranges():
    assert shift_da("20240301", -1) == "20240229"
    assert shift_da("20240101-20240131", 1) == "20240102-20240201"
    assert shift_da("2024", -366) == "2023" and shift_da("bad", 1) is None  # by mid-year
    assert shift_dt("2020-2021", -1) == "2020-2021"  # a range, not an offset of -2021
    assert shift_dt("2020-2021", -200) == "2019-2020"
    assert shift_dt("20240301000000-0500", -1) == "20240229000000-0500"
    assert shift_dt("20240101-20240201", 1) == "20240102-20240202"


def test_keys_decide_every_replacement():
    first, again = _dataset(), _dataset()
    Deidentifier(config()).apply(first)
    Deidentifier(config()).apply(again)
    other = _dataset()
    Deidentifier(DeidConfig(key=b"another key, also long enough")).apply(other)
    assert first.SOPInstanceUID == again.SOPInstanceUID and first.PatientID == again.PatientID
    assert other.SOPInstanceUID != first.SOPInstanceUID and other.PatientID != first.PatientID
    with pytest.raises(DeidError, match="16 characters"):
        keys.load_key("short")


def test_mapping_csv_gives_the_pseudonyms(tmp_path):
    mapping = tmp_path / "map.csv"
    mapping.write_text("patient_id,new_patient_id,new_patient_name,date_shift_days\n"
                       "MRN0012345,STUDY-001,Subject^One,-100\n")
    ds = _dataset()
    Deidentifier(config("retain-modified-dates", mapping=str(mapping))).apply(ds)
    assert ds.PatientID == "STUDY-001" and ds.PatientName == "Subject^One"
    assert ds.StudyDate == "20231122"  # 100 days before 2024-03-01
    other = _dataset()
    other.PatientID = "NOT-MAPPED"
    with pytest.raises(DeidError, match="not in the mapping"):
        Deidentifier(config(mapping=str(mapping))).apply(other)
    (tmp_path / "bad.csv").write_text("id,new\nA,B\n")
    with pytest.raises(DeidError, match="patient_id"):
        keys.load_mapping(tmp_path / "bad.csv")


# -- whole files ------------------------------------------------------------------------
def _pixel_span(path: Path) -> tuple[int, int]:
    """Where Pixel Data lies (its bytes may hold any text by chance)."""
    ds = pydicom.dcmread(path, defer_size=64, force=True)
    if "PixelData" not in ds:
        return (0, 0)
    elem = ds.get_item(0x7FE00010, keep_deferred=True)
    if getattr(elem, "value_tell", None) is None:
        return (0, 0)
    if elem.length == 0xFFFFFFFF:
        return elem.value_tell, path.stat().st_size
    return elem.value_tell, elem.value_tell + elem.length


# A sequence replaced by dummy values keeps its items' structure: codes stay, text goes.
_FREE_TEXT = {"AE", "AS", "DA", "DT", "LO", "LT", "PN", "SH", "ST", "TM", "UC", "UT", "UR"}
_CODE_PARTS = {"CodeValue", "CodingSchemeDesignator", "CodingSchemeVersion", "CodeMeaning",
               "LongCodeValue", "URNCodeValue", "ValueType", "RelationshipType",
               "ContinuityOfContent", "TemplateIdentifier", "MappingResource", "GraphicType",
               "BoundingBoxAnnotationUnits", "AnchorPointAnnotationUnits",
               "GraphicAnnotationUnits"}


def _texts(ds: Dataset, profile: Profile, removed: set[str], kept: set[str],
           mode: str = "normal") -> None:
    """Every text value of `ds`, split by whether the profile takes it out. `mode`:
    normal, dummy (inside a sequence replaced by dummy values), gone (all of it goes)."""
    for elem in ds:
        if elem.tag == 0x7FE00010 or elem.tag >> 16 == 0x0002:
            continue
        rule = rule_for(elem.tag)
        act = KEEP if rule is None else profile.action(rule)
        if mode == "gone":
            out = True
        elif rule is None and mode == "dummy":
            out = elem.VR in _FREE_TEXT and elem.keyword not in _CODE_PARTS
        else:
            out = act not in (KEEP, "C", "U*")
        if elem.VR == "SQ":
            inner = ("gone" if mode == "gone" or act in ("X", "Z") else
                     "dummy" if mode == "dummy" or act == "D" else "normal")
            for item in elem.value or ():
                _texts(item, profile, removed, kept, inner)
            continue
        if elem.VR in ("OB", "OW", "UN", "OF", "OD", "OL", "OV", "US", "SS", "UL", "SL", "FL",
                       "FD", "AT", "SV", "UV"):
            continue
        values = elem.value if isinstance(elem.value, (list, pydicom.multival.MultiValue)) \
            else [elem.value]
        for value in values:
            text = str(value or "").strip()
            if elem.VR == "PN":
                parts = [p for p in re.split(r"[\^= ]+", text) if p]
                (removed if out else kept).update(parts)
            (removed if out else kept).add(text)


def _leaks(source: Path, output: Path, profile: Profile) -> list[str]:
    """Original values the profile removes that are still in the output's bytes."""
    ds = pydicom.dcmread(source, force=True)
    removed, kept = set(), set()
    _texts(ds, profile, removed, kept)
    data = output.read_bytes()
    start, end = _pixel_span(output)
    data = data[:start] + data[end:]
    charsets = ds.get("SpecificCharacterSet", "ISO_IR 6")
    ours = pydicom.dcmread(output, stop_before_pixels=True)
    kept |= {"ANONYMIZED", "ANONYMOUS", "19000101000000", str(ours.get("PatientID", "")),
             str(ours.get("PatientName", ""))}  # what we write in their place
    found = []
    for value in removed:
        if len(value) < 4 or (value.isdigit() and len(value) < 8) or any(value in k for k in kept):
            continue  # too short to mean anything (binary values hold short digit strings
            # by chance), or also the value of a kept attribute
        encodings = {encode_string(value, pydicom.charset.convert_encodings(charsets))}
        encodings |= {value.encode("utf-8", "ignore"), value.encode("latin-1", "ignore")}
        if any(e and e in data for e in encodings):
            found.append(value)
    return found


@pytest.fixture(scope="module")
def corpus_out(tmp_path_factory):
    """Every sample file de-identified with the basic profile (burned-in allowed)."""
    out = tmp_path_factory.mktemp("deid")
    done, failed = [], {}
    for n, source in enumerate(sample_files()):
        target = out / f"{n:04d}_{source.name}"
        try:
            deidentify_file(source, target, config(allow_burned_in=True))
            done.append((source, target))
        except DicompressError as exc:
            failed[source.name] = str(exc)
            assert not target.exists()
    return done, failed


def test_corpus_no_identifying_value_survives(corpus_out):
    done, failed = corpus_out
    assert len(done) >= 200, failed
    # what fails is broken or not an object: truncated, bad values, no SOP UIDs, DICOMDIRs
    for name, reason in failed.items():
        assert re.search(r"not a DICOM|no SOP(Class|Instance)UID|Pixel Data|DICOMDIR|"
                         r"not a number|Transfer Syntax|says its value is", reason), (name, reason)
    profile = Profile()
    leaks = {s.name: found for s, o in done if (found := _leaks(s, o, profile))}
    assert not leaks, json.dumps(leaks)


def test_corpus_pixel_data_is_copied_byte_for_byte(corpus_out):
    done, _ = corpus_out
    compared = 0
    for source, output in done:
        a = pydicom.dcmread(source, force=True)
        if "PixelData" not in a:
            continue
        b = pydicom.dcmread(output)
        assert a.PixelData == b.PixelData, source.name  # encoded bytes, never decoded
        assert b.file_meta.TransferSyntaxUID == a.file_meta.get(
            "TransferSyntaxUID", b.file_meta.TransferSyntaxUID)  # no meta: as read
        compared += 1
    assert compared >= 150


def test_corpus_marked_and_readable(corpus_out):
    done, _ = corpus_out
    for source, output in done:
        ds = pydicom.dcmread(output)
        assert ds.PatientIdentityRemoved == "YES", source.name
        assert ds.DeidentificationMethodCodeSequence[0].CodeValue == "113100"
        assert ds.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID
    for source, output in done[:: max(1, len(done) // 20)]:  # pixels decode as before
        if source in corpus_images():
            assert all(np.array_equal(x, y) for x, y in zip(frames_of(source), frames_of(output)))


def _deid_errors(tool: str, path: Path) -> set[str] | None:
    """dciodvfy's errors with values taken out (ours are replaced: the same error
    quotes a different UID or date)."""
    found = _errors(tool, path)
    if found is None:
        return None
    found = {re.sub(r"<[^>]*>", "<value>", e) if "UID" in e or "value as" in e else e
             for e in found}
    return {re.sub(r"(UID) [\d.]+", r"\1 <uid>", e) for e in found}


def test_dciodvfy_finds_no_new_errors(corpus_out):
    done, _ = corpus_out
    new, compared = new_errors(done, errors=_deid_errors)
    assert compared >= 100
    assert not new, json.dumps(new, indent=1)


# -- series, references, keys across runs ------------------------------------------------
def _linked_series(folder: Path, n: int = 4) -> list[Path]:
    """`n` slices of one series, each referencing the one before (Referenced Image
    Sequence) and all sharing a Frame of Reference, as a modality writes them."""
    folder.mkdir(parents=True, exist_ok=True)
    base = pydicom.dcmread(find_sample("CT_small.dcm"))
    base.PatientName, base.PatientID = "Doe^Jane", "PID-889977"
    paths, previous = [], None
    for k in range(n):
        ds = copy.deepcopy(base)
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = f"1.2.826.0.1.3680043.2.1.{k + 1}"
        ds.InstanceNumber = k + 1
        if previous is not None:
            ref = Dataset()
            ref.ReferencedSOPClassUID, ref.ReferencedSOPInstanceUID = ds.SOPClassUID, previous
            ds.ReferencedImageSequence = Sequence([ref])
        previous = ds.SOPInstanceUID
        paths.append(folder / f"Doe_Jane_{k + 1}.dcm")
        ds.save_as(paths[-1], enforce_file_format=True)
    return paths


def test_references_stay_linked_across_files_and_runs(tmp_path):
    sources = _linked_series(tmp_path / "in")
    outputs = []
    for run in ("a", "b"):
        outs = [tmp_path / run / p.name for p in sources]
        for s, o in zip(sources, outs):
            deidentify_file(s, o, config())
        outputs.append([pydicom.dcmread(o) for o in outs])
    first, second = outputs
    for ds in first:
        assert ds.StudyInstanceUID == first[0].StudyInstanceUID != pydicom.dcmread(sources[0]).StudyInstanceUID
        assert ds.SeriesInstanceUID == first[0].SeriesInstanceUID
        assert ds.FrameOfReferenceUID == first[0].FrameOfReferenceUID
        assert ds.PatientID == first[0].PatientID
    for k in range(1, len(first)):  # each reference points at the new UID of its target
        assert first[k].ReferencedImageSequence[0].ReferencedSOPInstanceUID == first[k - 1].SOPInstanceUID
    assert len({ds.SOPInstanceUID for ds in first}) == len(first)
    # the same key in another run gives the same UIDs and pseudonyms
    assert [d.SOPInstanceUID for d in first] == [d.SOPInstanceUID for d in second]
    # a file renamed by its new UIDs: no original name in the path
    name = renamed(sources[1], config())
    assert name.parts == (first[1].StudyInstanceUID, first[1].SeriesInstanceUID,
                          first[1].SOPInstanceUID + ".dcm")


def test_lossy_transcode_marks_and_references_the_deidentified_source(tmp_path):
    from dicompress.deid import preparer
    from dicompress.transcode import transcode_file

    source = _linked_series(tmp_path / "in", 1)[0]
    out = tmp_path / "lossy.dcm"
    transcode_file(source, out, "j2k-lossy", prepare=preparer(config()))
    ds = pydicom.dcmread(out)
    assert ds.PatientIdentityRemoved == "YES" and ds.LossyImageCompression == "01"
    assert ds.SourceImageSequence[0].ReferencedSOPInstanceUID == keys.replacement_uid(
        KEY, "1.2.826.0.1.3680043.2.1.1")  # the de-identified original, not the original
    assert "Doe" not in out.read_bytes().decode("latin-1")


# -- burned-in text -----------------------------------------------------------------------
def test_burned_in_is_refused_unless_allowed_or_blanked(tmp_path):
    us = find_sample("US1_UNCR.dcm")  # ultrasound, no Burned In Annotation
    with pytest.raises(BurnedInRefused, match="ultrasound"):
        deidentify_file(us, tmp_path / "refused.dcm", config())
    assert not (tmp_path / "refused.dcm").exists()
    deidentify_file(us, tmp_path / "allowed.dcm", config(allow_burned_in=True))
    said_no = tmp_path / "said_no.dcm"
    ds = pydicom.dcmread(us)
    ds.BurnedInAnnotation = "NO"
    ds.save_as(said_no)
    deidentify_file(said_no, tmp_path / "no.dcm", config())  # the file says it has none
    ds = pydicom.dcmread(find_sample("CT_small.dcm"))
    ds.BurnedInAnnotation = "YES"
    ds.save_as(tmp_path / "ct_yes.dcm")
    with pytest.raises(BurnedInRefused, match="Burned In Annotation is YES"):
        deidentify_file(tmp_path / "ct_yes.dcm", tmp_path / "x.dcm", config())


@pytest.mark.parametrize("name", ["US1_UNCR.dcm", "SC_rgb_rle_2frame.dcm", "SC_rgb_jpeg_dcmtk.dcm",
                                  "CT_small.dcm", "OBXXXX1A_rle.dcm", "ExplVR_BigEnd.dcm"])
def test_blanking_blacks_out_the_rectangles_only(tmp_path, name):
    source = find_sample(name)
    rects = ((0, 0, 40, 12), (10, 30, 5, 7))
    out = tmp_path / "blank.dcm"
    deidentify_file(source, out, config(blank=rects))
    before, after = frames_of(source), frames_of(out)
    a_ds, b_ds = pydicom.dcmread(source), pydicom.dcmread(out)
    same = a_ds.file_meta.TransferSyntaxUID
    if same == pydicom.uid.ExplicitVRBigEndian:
        same = pydicom.uid.ExplicitVRLittleEndian  # retired; written little endian
    assert b_ds.file_meta.TransferSyntaxUID == same
    assert b_ds.BurnedInAnnotation == "NO"
    assert "113101" in [i.CodeValue for i in b_ds.DeidentificationMethodCodeSequence]
    lossy = a_ds.file_meta.TransferSyntaxUID.is_compressed and \
        a_ds.file_meta.TransferSyntaxUID in ("1.2.840.10008.1.2.4.50",)
    for x, y in zip(before, after):
        mask = np.zeros(x.shape[:2], bool)
        for cx, cy, w, h in rects:
            mask[cy:cy + h, cx:cx + w] = True
        black = y[mask]
        if b_ds.PhotometricInterpretation.startswith("YBR"):
            assert np.all(black.reshape(-1, 3)[:, 0] <= 16)  # luma black (after JPEG)
        elif not lossy:
            low = -(1 << (b_ds.BitsStored - 1)) if b_ds.PixelRepresentation else 0
            assert np.all(black == low)
        if not lossy:
            assert np.array_equal(x[~mask], y[~mask])  # the rest untouched, bit for bit
        else:
            assert np.abs(x[~mask].astype(int) - y[~mask].astype(int)).mean() < 4


def test_blank_outside_the_image_is_an_error(tmp_path):
    with pytest.raises(DeidError, match="outside"):
        deidentify_file(find_sample("CT_small.dcm"), tmp_path / "x.dcm",
                        config(blank=((500, 500, 10, 10),)))
    assert not (tmp_path / "x.dcm").exists()


# -- the command line ----------------------------------------------------------------------
def _cli(*args) -> subprocess.CompletedProcess:
    """`dicompress *args` run in this process (the command is tested, not the start of a
    Python process: 0.5 s each), its exit code and output as a subprocess gives them."""
    from dicompress.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main([str(a) for a in args])
        except SystemExit as exc:  # argparse's usage errors
            code = exc.code
    return subprocess.CompletedProcess(args, code, out.getvalue(), err.getvalue())


def test_cli_deid_tree_rename_and_resume(tmp_path):
    sources = _linked_series(tmp_path / "Doe_Jane" / "ct")
    (tmp_path / "key").write_text("a-key-of-the-hospital-0042\n")
    out = tmp_path / "out"
    proc = _cli("deid", tmp_path / "Doe_Jane", "-o", out, "--key-file", tmp_path / "key",
                "--rename", "--retain-modified-dates", "--json", "-j", "2")
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["files"] == {"ok": len(sources)}
    written = sorted(out.rglob("*.dcm"))
    assert len(written) == len(sources)
    assert all("Doe" not in str(p) for p in written)  # no original name in any path
    assert not list(out.rglob("*sqlite*"))  # the journal (original paths) stays outside
    journal = Path(summary["journal"])
    assert journal.is_file() and not journal.is_relative_to(out)
    for p in written:
        ds = pydicom.dcmread(p)
        assert ds.LongitudinalTemporalInformationModified == "MODIFIED"
        assert b"Doe" not in p.read_bytes()
    # a finished run resumed does nothing; without the key it cannot be resumed
    again = _cli("deid", tmp_path / "Doe_Jane", "-o", out, "--key-file", tmp_path / "key",
                 "--rename", "--retain-modified-dates", "--json", "--resume")
    assert again.returncode == 0 and json.loads(again.stdout)["done_before"] == len(sources)
    other_key = tmp_path / "other"
    other_key.write_text("another-key-entirely-0043\n")
    refused = _cli("deid", tmp_path / "Doe_Jane", "-o", out, "--key-file", other_key,
                   "--rename", "--retain-modified-dates", "--resume")
    assert refused.returncode == 2 and "other settings" in refused.stderr


def test_cli_deid_in_place_and_refusals(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    ct = folder / "ct.dcm"
    us = folder / "us.dcm"
    ct.write_bytes(find_sample("CT_small.dcm").read_bytes())
    us.write_bytes(find_sample("US1_UNCR.dcm").read_bytes())
    proc = _cli("deid", folder, "--in-place", "--key", "k" * 20, "--json",
                "--journal", tmp_path / "j.sqlite")
    assert proc.returncode == 1  # the ultrasound is refused: a partial failure
    summary = json.loads(proc.stdout)
    assert summary["files"] == {"ok": 1, "failed": 1}
    assert "burned-in" in summary["failures"][0]["reason"]
    assert pydicom.dcmread(ct).PatientIdentityRemoved == "YES"
    assert us.read_bytes() == find_sample("US1_UNCR.dcm").read_bytes()  # untouched
    usage = _cli("transcode", folder, "--to", "rle", "-o", tmp_path / "o", "--retain-uids")
    assert usage.returncode == 2 and "without --deid" in usage.stderr
    bad = _cli("deid", folder, "-o", tmp_path / "o2", "--key", "short")
    assert bad.returncode == 2 and "16 characters" in bad.stderr


def test_cli_transcode_deid_compresses_and_deidentifies(tmp_path):
    folder = tmp_path / "in"
    sources = _linked_series(folder, 3)
    (folder / "plan.dcm").write_bytes(find_sample("rtplan.dcm").read_bytes())
    (folder / "rle.dcm").write_bytes(find_sample("MR_small_RLE.dcm").read_bytes())
    out = tmp_path / "out"
    proc = _cli("transcode", folder, "--to", "rle", "-o", out, "--deid", "--key", "k" * 20,
                "--json", "-j", "1")
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["files"] == {"ok": 4, "not-image": 1}  # the plan is not written at all
    assert not (out / "plan.dcm").exists()
    for source in sources + [folder / "rle.dcm"]:
        ds = pydicom.dcmread(out / source.name)
        assert ds.file_meta.TransferSyntaxUID == pydicom.uid.RLELossless
        assert ds.PatientIdentityRemoved == "YES"
        assert np.array_equal(ds.pixel_array, pydicom.dcmread(source).pixel_array)
    # already RLE: copied, not decoded (the fragments are the original's)
    assert pydicom.dcmread(out / "rle.dcm").PixelData == pydicom.dcmread(folder / "rle.dcm").PixelData


def test_export_applies_the_identity_rules(tmp_path):
    from PIL import Image

    from dicompress.export.job import ExportOptions, export

    source = _linked_series(tmp_path / "in", 1)[0]  # named Doe_Jane_1.dcm
    ds = pydicom.dcmread(source)
    ds.SeriesDescription, ds.StudyDescription = "Doe follow-up", "CT ABDOMEN"
    ds.SeriesInstanceUID = "1.2.3.77"
    ds.save_as(source)
    export([source], tmp_path / "png", ExportOptions(format="png"))
    written = list((tmp_path / "png").rglob("*.png"))
    assert len(written) == 1 and "Doe" not in str(written[0].relative_to(tmp_path))
    text = Image.open(written[0]).text
    assert text["Study"] == "CT ABDOMEN"  # a clean description is shown
    assert "Series" not in text and "Doe" not in json.dumps(text)
    export([source], tmp_path / "kept", ExportOptions(format="png", keep_identifiers=True))
    assert "Doe" in str(next((tmp_path / "kept").rglob("*.png")))


# -- an independent implementation ---------------------------------------------------------
@pytest.mark.slow
def test_whatever_gdcmanon_takes_out_we_take_out_too(corpus_out, tmp_path):
    """GDCM's gdcmanon implements PS3.15 E.1.1 (from an older edition of the table): every
    non-private attribute it removes or changes in a file, we remove or change as well."""
    gdcmanon, openssl = require_tool("gdcmanon"), require_tool("openssl")
    cert = tmp_path / "cert.pem"
    subprocess.run([openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout",
                    tmp_path / "key.pem", "-out", cert, "-days", "2", "-subj", "/CN=test"],
                   check=True, capture_output=True)
    done, _ = corpus_out
    missed, theirs, compared = {}, 0, 0
    for n, (source, ours) in enumerate(done):
        src = pydicom.dcmread(source, force=True)
        if "PixelData" not in src:
            continue
        gdcm_out = tmp_path / f"{n}.dcm"
        proc = subprocess.run([gdcmanon, "-e", "-c", cert, "-i", source, "-o", gdcm_out],
                              capture_output=True)
        if proc.returncode or not gdcm_out.exists():
            continue  # files GDCM cannot read
        g, o = pydicom.dcmread(gdcm_out), pydicom.dcmread(ours)
        compared += 1
        for elem in src:
            if elem.tag.is_private or elem.tag == 0x7FE00010 or not str(elem.value).strip():
                continue
            if elem.tag not in g or g[elem.tag].value != elem.value:
                theirs += 1
                if elem.tag in o and o[elem.tag].value == elem.value:
                    missed.setdefault(elem.keyword, []).append(source.name)
    assert compared >= 100 and theirs >= 1000  # GDCM did read and change them
    assert not missed, missed


# -- regressions found in review ------------------------------------------------------------
def test_identifying_codes_privates_meta_and_stray_uids_go():
    ds = _dataset()
    code = Dataset()
    code.CodeValue, code.CodingSchemeDesignator, code.CodeMeaning = "STELSEW-01", "L", "St Elsewhere Hospital"
    ds.InstitutionCodeSequence = Sequence([code])
    ds.add_new(0x00090001, "LO", "DOE^JOHN")  # private, below the creators' range
    ds.ConcatenationUID = "1.2.3.4.5.6.7.55"
    ds.SOPInstanceUIDOfConcatenationSource = "1.2.3.4.5.6.7.100"  # not in the table
    ds.RetrieveURL = "https://pacs.stelsewhere.org/wado"
    ds.add_new(0x00020016, "AE", "HOSP_CT2")  # File Meta Information inside the data set
    ds.file_meta.SourcePresentationAddress = "pacs.stelsewhere.org"
    Deidentifier(config()).apply(ds)
    assert "STELSEW" not in str(ds.InstitutionCodeSequence[0].CodeValue)
    assert "Elsewhere" not in str(ds.InstitutionCodeSequence[0].CodeMeaning)
    assert 0x00090001 not in ds and 0x00020016 not in ds
    assert ds.SOPInstanceUIDOfConcatenationSource == ds.SOPInstanceUID  # linked, replaced
    assert "RetrieveURL" not in ds
    assert ds.SOPClassUID == "1.2.840.10008.5.1.4.1.1.2"  # a definition stays
    # only what PS3.10 needs is rebuilt (version, class, instance)
    assert set(ds.file_meta.keys()) == {0x00020001, 0x00020002, 0x00020003}


def test_clean_descriptors_catches_names_in_any_script_and_ids_in_any_spelling():
    from dicompress.deid.clean import Identifiers

    found = Identifiers()
    found.add_person("山田^太郎=やまだ^たろう")
    found.add_person("王^小明")
    found.add_value("St Elsewhere Hospital")
    found.add_value("AB-1234")
    for text in ("山田太郎 胸部CT", "やまだ様", "王先生", "CT head - St Elsewhere", "ref AB1234",
                 "ab 1234", "seen 2024-03-01", "call +33 1 42 49 49 49"):
        assert found.found_in(text), text
    for text in ("CT THORAX", "胸部CT", "CT ABDOMEN PELVIS", "T2 FLAIR AX"):
        assert found.found_in(text) is None, text


def test_one_deidentifier_in_many_threads_keeps_each_file_to_itself():
    from concurrent.futures import ThreadPoolExecutor

    def patient(n: int) -> Dataset:
        ds = _dataset()
        ds.PatientID, ds.PatientName = f"PID{n:04d}", f"Person{n}^Test"
        ds.StudyDescription = f"CT THORAX person{n}"
        return ds

    alone = [Deidentifier(config("retain-modified-dates", "clean-descriptors")).apply(d) and d
             for d in (patient(n) for n in range(40))]
    shared = Deidentifier(config("retain-modified-dates", "clean-descriptors"))
    together = [patient(n) for n in range(40)]
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(shared.apply, together))
    for a, b in zip(alone, together):
        assert (a.PatientID, a.StudyDate, "StudyDescription" in a) == \
            (b.PatientID, b.StudyDate, "StudyDescription" in b)
        assert "StudyDescription" not in b  # it named the patient


def test_blanking_a_reversible_file_adds_no_loss(tmp_path):
    from dicompress.transcode import transcode_file

    reversible = tmp_path / "rev.dcm"
    transcode_file(find_sample("CT_small.dcm"), reversible, "j2k")
    ds = pydicom.dcmread(reversible)
    ds.file_meta.TransferSyntaxUID = "1.2.840.10008.1.2.4.91"  # may hold reversible J2K
    ds.save_as(reversible)
    out = tmp_path / "blank.dcm"
    deidentify_file(reversible, out, config(blank=((0, 0, 8, 8),)))
    before, after = frames_of(reversible)[0], frames_of(out)[0]
    mask = np.zeros(before.shape, bool)
    mask[:8, :8] = True
    assert np.array_equal(before[~mask], after[~mask])  # encoded reversibly (its twin, .90)
    assert pydicom.dcmread(out).file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.4.90"


def test_blank_still_deidentifies_objects_without_pixels(tmp_path):
    out = tmp_path / "sr.dcm"
    deidentify_file(find_sample("test-SR.dcm"), out, config(blank=((0, 0, 4, 4),)))
    assert pydicom.dcmread(out).PatientIdentityRemoved == "YES"


def test_cli_rename_skips_non_dicom_and_resume_keeps_its_naming(tmp_path):
    folder = tmp_path / "Doe_Jane"
    _linked_series(folder, 2)
    (folder / "notes.txt").write_text("Jane Doe's notes")
    out = tmp_path / "out"
    args = ["deid", folder, "-o", out, "--key", "k" * 20, "--json"]
    proc = _cli(*args, "--rename")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert json.loads(proc.stdout)["files"] == {"ok": 2, "not-dicom": 1}
    other = _cli(*args, "--resume")  # the naming is part of the run's settings
    assert other.returncode == 2 and "other settings" in other.stderr


def test_cli_in_place_resume_does_not_trust_a_vendors_mark(tmp_path):
    folder = tmp_path / "Doe_Jane"
    folder.mkdir()
    us = folder / "us.dcm"
    ds = pydicom.dcmread(find_sample("US1_UNCR.dcm"))
    ds.PatientName, ds.PatientIdentityRemoved = "Doe^Jane", "YES"  # the vendor's word
    ds.save_as(us)
    args = ["deid", folder, "--in-place", "--key", "k" * 20, "--json"]
    first = _cli(*args)
    assert first.returncode == 1  # refused: burned-in text possible
    journal = Path(json.loads(first.stdout)["journal"])
    assert not journal.is_relative_to(folder)  # the journal names originals: not in the tree
    ds = pydicom.dcmread(us)
    ds.BurnedInAnnotation = "NO"  # the user checked the images
    ds.save_as(us)
    again = _cli(*args, "--resume", "--retry-failed")
    assert again.returncode == 0, again.stdout + again.stderr
    assert b"Doe" not in us.read_bytes()


def test_clean_structured_content_keeps_the_report_without_its_names(tmp_path):
    source = find_sample("test-SR.dcm")
    ds = pydicom.dcmread(source)
    texts = []

    def walk(items):
        for item in items:
            if "TextValue" in item:
                texts.append(str(item.TextValue))
            walk(item.get("ContentSequence", []))

    walk(ds.ContentSequence)
    assert texts
    name = str(ds.PatientName).split("^")[0]
    ds.ContentSequence[-1].ContentSequence[0].TextValue = f"Discussed with {name} today"
    ds.save_as(tmp_path / "sr.dcm")
    basic, cleaned = tmp_path / "basic.dcm", tmp_path / "cleaned.dcm"
    deidentify_file(tmp_path / "sr.dcm", basic, config())
    deidentify_file(tmp_path / "sr.dcm", cleaned, config("clean-structured-content"))
    kept = []

    def collect(items, out):
        for item in items:
            if "TextValue" in item:
                out.append(str(item.TextValue))
            collect(item.get("ContentSequence", []), out)

    collect(pydicom.dcmread(basic).ContentSequence, kept)
    assert set(kept) == {"ANONYMIZED"}  # the basic profile: every text replaced
    kept = []
    out = pydicom.dcmread(cleaned)
    collect(out.ContentSequence, kept)
    assert name not in " ".join(kept) and "ANONYMIZED" in kept  # the naming one replaced
    assert [t for t in kept if t != "ANONYMIZED"]  # clean findings stay
    assert "113104" in [c.CodeValue for c in out.DeidentificationMethodCodeSequence]
    concept = out.ContentSequence[0].ConceptNameCodeSequence[0]
    assert concept.CodeMeaning == ds.ContentSequence[0].ConceptNameCodeSequence[0].CodeMeaning


def test_second_review_unknown_tags_bad_vrs_lengths_and_safety_nets(tmp_path):
    from pydicom.dataelem import RawDataElement

    ds = pydicom.dcmread(find_sample("CT_small.dcm"))
    ds.PatientName = "Doe^John"
    inner = Dataset()
    inner.PatientName = "Secret^Nested"
    ds.add_new(0x00420099, "SQ", Sequence([inner]))  # no dictionary knows (0042,0099)
    ds.add_new(0x00041500, "CS", ["SHOULD", "GO"])  # a DICOMDIR file ID inside a data set
    ds.EvaluatorName = "Evil^Evaluator"  # a name no row lists
    ds.StudyUpdateDateTime = "20240315101010"  # a date no row lists
    ds.SOPClassesInStudy = ["1.2.840.10008.5.1.4.1.1.2", "1.2.840.113619.4.27"]
    ds.add_new(0x00281199, "UI", "1.2.3.4.5.6.7.8.9")  # a palette UID (U in the table)
    src = tmp_path / "in.dcm"
    ds.file_meta.TransferSyntaxUID = pydicom.uid.ImplicitVRLittleEndian
    pydicom.dcmwrite(src, ds, implicit_vr=True)  # unknown tags read back without a VR
    out = tmp_path / "out.dcm"
    deidentify_file(src, out, config())
    data = out.read_bytes()
    for secret in (b"Secret", b"Evil", b"SHOULD", b"20240315"):
        assert secret not in data, secret
    back = pydicom.dcmread(out)
    assert list(back.SOPClassesInStudy) == ["1.2.840.10008.5.1.4.1.1.2", "1.2.840.113619.4.27"]
    # a VR code that is none, and a length that swallows what follows: refused, not copied
    bad = pydicom.dcmread(find_sample("CT_small.dcm"))
    bad[0x00081090] = RawDataElement(0x00081090, "XX", 16, b"Secret^Hidden^AB", 0, False, True)
    bad.save_as(tmp_path / "bad.dcm")
    with pytest.raises(DicompressError):
        deidentify_file(tmp_path / "bad.dcm", tmp_path / "bad_out.dcm", config())
    assert not (tmp_path / "bad_out.dcm").exists()
    swallow = pydicom.dcmread(find_sample("CT_small.dcm"))
    swallow[0x00080060] = RawDataElement(0x00080060, "CS", 24, b"OT\x10\x00\x10\x00Doe^John__", 0,
                                         False, True)
    swallow.save_as(tmp_path / "swallow.dcm")
    with pytest.raises(DicompressError, match="damaged length"):
        deidentify_file(tmp_path / "swallow.dcm", tmp_path / "sw_out.dcm", config())
