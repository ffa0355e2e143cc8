"""Export's header source without pydicom (dicompress.direct.view): the values it gives
must be pydicom's, files it does not read must be left to pydicom, an export of the files
it reads must be what an export through pydicom writes, and never import pydicom."""

from __future__ import annotations

import os
import pickle
import struct
import subprocess
import sys
import tempfile
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pydicom
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from pydicom.datadict import dictionary_VR, tag_for_keyword
from pydicom.multival import MultiValue

from dicompress.deid.identifiers import _text_elements, collect_identifiers
from dicompress.direct import Parsed, view as direct_view
from dicompress.direct.elements import NotDirect
from dicompress.direct.view import ATTRIBUTES, HEAD, header_view
from dicompress.export import ExportOptions, export
from dicompress.export import job
from dicompress.export.frames import NativePixels, read_native
from dicompress.samples import find_sample, sample_files

sys.path.insert(0, str(Path(__file__).parent.parent / "tools"))
from make_series import make_series  # noqa: E402

#: The keywords whose values a view gives (the two sequences send a file to pydicom).
KEYWORDS = [k for k in ATTRIBUTES if k not in ("PixelData", "ModalityLUTSequence",
                                               "VOILUTSequence")]
VIEWED = [p for p in sample_files() if header_view(p) is not None]


def test_the_attributes_are_pydicoms_keywords():
    for keyword, tag in ATTRIBUTES.items():
        assert tag_for_keyword(keyword) == tag, keyword


def test_the_corpus_has_files_for_the_view():
    names = {p.name for p in VIEWED}
    assert len(VIEWED) >= 25, names
    # Explicit and Implicit VR, CT and MR, 8 and 16 bits, multi-frame
    assert {"CT_small.dcm", "MR_small.dcm", "MR_small_implicit.dcm", "emri_small.dcm"} <= names
    # colour, compressed, a VOI LUT Sequence, big endian: read by pydicom
    for name in ("SC_rgb.dcm", "JPEG2000.dcm", "vlut_04.dcm", "MR_small_bigendian.dcm"):
        assert header_view(find_sample(name)) is None, name


def _as_pydicom_gives(value):
    """A value as comparable text and numbers: pydicom's types and the view's compared."""
    if isinstance(value, (list, MultiValue)):
        return [_as_pydicom_gives(v) for v in value]
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return ("number", repr(float(value)), str(value))  # nan equals itself here
    return value if value is None or isinstance(value, bytes) else str(value)


@pytest.mark.parametrize("path", VIEWED, ids=lambda p: p.name)
def test_values_are_pydicoms(path):
    ds = pydicom.dcmread(path, stop_before_pixels=True)
    view = header_view(path)
    for keyword in KEYWORDS:
        assert (keyword in view) == (keyword in ds), keyword
        try:
            expected = _as_pydicom_gives(ds.get(keyword))
        except (ValueError, TypeError) as exc:  # pydicom cannot convert it: nor can the view
            with pytest.raises(type(exc)):
                view.get(keyword)
            continue
        assert _as_pydicom_gives(view.get(keyword)) == expected, keyword
        if keyword in ds:
            assert _as_pydicom_gives(getattr(view, keyword)) == expected
    again = pickle.loads(pickle.dumps(view))  # a pool started without fork gets it so
    for keyword in KEYWORDS:
        assert _as_pydicom_gives(again.get(keyword)) == _as_pydicom_gives(view.get(keyword))
    with pytest.raises(AttributeError):
        view.PatientComments  # noqa: B018 - not an attribute the view reads
    with pytest.raises(KeyError, match="not among"):
        view.get("PatientComments")


@pytest.mark.parametrize("path", VIEWED, ids=lambda p: p.name)
def test_text_at_any_depth_is_pydicoms(path):
    """The Clean Descriptors test sees the same values in either header."""
    ds = pydicom.dcmread(path, stop_before_pixels=True)
    view = header_view(path)
    expected = [e for e in _text_elements(ds) if e[2]]
    assert list(view.text_elements()) == expected
    a, b = collect_identifiers(view), collect_identifiers(ds)
    assert (a.words, a.phrases, a.fragments) == (b.words, b.phrases, b.fragments)


@pytest.fixture
def series(tmp_path) -> Path:
    """Six CT slices, one Implicit VR, with a description that names the patient inside
    a sequence only (the caption must still leave it out), and windows, positions."""
    paths = make_series(tmp_path / "series", 6, 64)
    for n, path in enumerate(paths):
        ds = pydicom.dcmread(path)
        ds.PatientName, ds.PatientID = "Doe^Jane", "PID77431"  # (the CQ500 ID holds "CT")
        ds.StudyDescription = "CT HEAD"
        ds.SeriesDescription = "Axial Quixote"
        item = pydicom.Dataset()
        item.PatientName = "Quixote^Alonso"
        ds.OtherPatientIDsSequence = [item]
        if n == 2:
            ds.file_meta.TransferSyntaxUID = pydicom.uid.ImplicitVRLittleEndian
        ds.save_as(path, enforce_file_format=True)
    return paths[0].parent


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file()}


@pytest.mark.parametrize("fmt", ["png", "tiff", "jpeg", "gif"])
def test_an_export_is_what_an_export_through_pydicom_writes(series, tmp_path, monkeypatch, fmt):
    assert all(header_view(p) is not None for p in series.glob("*.dcm"))
    sources = [series, find_sample("CT_small.dcm"), find_sample("MR_small_implicit.dcm"),
               find_sample("emri_small.dcm")]
    viewed = export(sources, tmp_path / "view", ExportOptions(format=fmt, zip="all.zip"))
    with monkeypatch.context() as m:
        m.setattr(job, "header_view", lambda path: None)
        general = export(sources, tmp_path / "pydicom", ExportOptions(format=fmt, zip="all.zip"))
    assert not viewed.failed and not general.failed
    assert len(viewed.outputs) == len(general.outputs) == 1
    with zipfile.ZipFile(viewed.outputs[0]) as a, zipfile.ZipFile(general.outputs[0]) as b:
        assert a.namelist() == b.namelist()
        assert any(name.endswith("index.html") for name in a.namelist())
        for name in a.namelist():
            assert a.read(name) == b.read(name), name
        page = a.read("index.html").decode()
    assert "CT HEAD" in page and "Quixote" not in page


def test_an_export_of_common_files_never_imports_pydicom(series, tmp_path):
    """Headers, windows, frames, pictures and the page: all without pydicom (its import
    and header parsing cost an export of a CT series more than its pictures)."""
    out = tmp_path / "out"
    code = (
        "import sys\n"
        "from dicompress.cli import run\n"
        f"sys.argv = ['dicompress', 'export', {str(series)!r}, '-o', {str(out)!r},"
        " '--format', 'png', '--jobs', '1', '--zip', 'a.zip']\n"
        "try:\n    run()\nexcept SystemExit as exc:\n    assert exc.code == 0, exc.code\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'pydicom'))\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip().splitlines()[-1] == "[]"
    assert (out / "a.zip").exists()


def _with_private_block(source: Path, target: Path, size: int) -> Path:
    ds = pydicom.dcmread(source)
    block = ds.private_block(0x0029, "DICOMPRESS TEST", create=True)
    block.add_new(0x01, "OB", b"\x01" * size)
    ds.save_as(target, enforce_file_format=True)
    return target


def test_a_header_longer_than_the_first_read_goes_to_pydicom(tmp_path):
    """A header that runs past the first HEAD bytes is pydicom's (nothing more is read to
    find out); one within them is read here, and its frames are where pydicom finds them."""
    long = _with_private_block(find_sample("CT_small.dcm"), tmp_path / "long.dcm", HEAD)
    assert header_view(long) is None
    path = _with_private_block(find_sample("CT_small.dcm"), tmp_path / "ok.dcm", HEAD // 2)
    view = header_view(path)
    assert view is not None and view.get("Rows") == 128
    native = NativePixels(view.frame_layout, view.pixel_offset)
    np.testing.assert_array_equal(read_native(path, 0, native), pydicom.dcmread(path).pixel_array)
    result = export([long], tmp_path / "out", ExportOptions(format="png"))
    assert not result.failed and len(result.outputs) == 1


def test_files_the_view_cannot_vouch_for_go_to_pydicom(tmp_path):
    ct = find_sample("CT_small.dcm").read_bytes()
    at = ct.index(b"\xe0\x7f\x10\x00OW")
    cut = tmp_path / "cut.dcm"  # Pixel Data runs past the end of the file
    cut.write_bytes(ct[:-100])
    assert header_view(cut) is None
    longer = tmp_path / "longer.dcm"  # Pixel Data claims more than the file holds
    longer.write_bytes(ct[:at + 8] + struct.pack("<I", len(ct)) + ct[at + 12:])
    assert header_view(longer) is None
    charset = tmp_path / "charset.dcm"
    ds = pydicom.dcmread(find_sample("CT_small.dcm"))
    ds.SpecificCharacterSet = "ISO 2022 IR 87"
    ds.save_as(charset, enforce_file_format=True)
    assert header_view(charset) is None
    fifo = tmp_path / "fifo.dcm"
    os.mkfifo(fifo)
    assert header_view(fifo) is None  # refused without blocking on open
    assert header_view(tmp_path / "missing.dcm") is None
    # and an export still reads them through pydicom: the damaged ones fail, by name
    result = export([cut, longer, charset], tmp_path / "out", ExportOptions(format="png"))
    failed = {Path(p).name for p, _ in result.failed}
    assert {"cut.dcm"} <= failed and len(result.outputs) >= 1


def _bigger_than_the_head() -> bytes:
    """A 512 x 512 slice: only its head is read (a cut anywhere past it matters too)."""
    with tempfile.TemporaryDirectory() as folder:
        return make_series(Path(folder), 1, 512)[0].read_bytes()


_SOURCES = {"explicit": find_sample("CT_small.dcm").read_bytes(),
            "implicit": find_sample("MR_small_implicit.dcm").read_bytes(),
            "big": _bigger_than_the_head()}


@pytest.mark.parametrize("source", sorted(_SOURCES))
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(edits=st.lists(st.tuples(st.integers(0, 8000), st.integers(0, 255)), min_size=1,
                      max_size=6),
       cut=st.one_of(st.just(0), st.integers(0, 600_000)))
def test_hostile_headers_give_a_view_or_none(source, edits, cut):
    """Bytes changed anywhere in the header and the file cut anywhere: a view whose every
    value reads and whose frames all lie in the file, or None; nothing else escapes."""
    whole = _SOURCES[source]
    data = bytearray(whole[:max(0, len(whole) - cut)])
    for at, value in edits:
        if at < len(data):
            data[at] = value
    with tempfile.NamedTemporaryFile(suffix=".dcm") as fp:
        fp.write(data)
        fp.flush()
        view = header_view(Path(fp.name))
    if view is None:
        return
    assert view.pixel_offset + view.frame_layout.frame_bytes * view.frames <= len(data)
    for keyword in KEYWORDS:  # converted when the view was built: no error left
        view.get(keyword)
    list(view.text_elements())


def test_a_view_is_built_without_reading_the_pixels(tmp_path, monkeypatch):
    """Only the head of a file is read for its header (the frames are read later, one
    at a time, by the stills that need them)."""
    path = tmp_path / "big.dcm"
    make_series(tmp_path / "s", 1, 512)
    ds = pydicom.dcmread(next((tmp_path / "s").glob("*.dcm")))
    ds.save_as(path, enforce_file_format=True)
    reads: list[int] = []
    real = os.pread

    def spy(fd, n, offset):
        reads.append(n)
        return real(fd, n, offset)

    monkeypatch.setattr(direct_view.os, "pread", spy)
    assert header_view(path) is not None
    assert reads == [HEAD] and path.stat().st_size > 4 * HEAD


_VALUES = [
    (b"DS", b"\x02\x00478516\\0.478516"), (b"DS", b" 2 "), (b"DS", b"1\\ 2 "), (b"DS", b"nan"),
    (b"DS", b"\x001.5"), (b"DS", b"1\\\\2"), (b"DS", b"-1024 "), (b"DS", b"abc"),
    (b"IS", b"1.5"), (b"IS", b" 3"), (b"IS", b"\x00 3"), (b"IS", b"  "), (b"IS", b"1\\x"),
    (b"IS", b"+0012"), (b"PN", b"Doe^John=\xe5\xb1\xb1\xe7\x94\xb0\x00"),
    (b"PN", b"M\xfcller^Hans \\Doe "), (b"LO", b"Axial \\ Coronal\x00"),
    (b"LO", "Kopf \u00e4".encode("utf-8")), (b"LT", b"one\\value  "), (b"UI", b"1.2.3\x00"),
    (b"AE", b" STORE SCP \\ B "), (b"CS", b"ORIGINAL\\PRIMARY\\AXIAL "), (b"DA", b"20240517"),
    (b"US", b"\x01\x00\x02\x00"), (b"FD", struct.pack("<d", 2.5)), (b"SS", b""), (b"LO", b""),
    (b"UR", b"http://x/y  "), (b"SH", b"\\"),
    *((vr, b"") for vr in (b"DS", b"IS", b"AT", b"OB", b"US", b"FD", b"PN", b"UI", b"LT")),
]


@pytest.mark.parametrize("encoding,codec", [("latin-1", "iso8859"), ("utf-8", "utf_8")])
@pytest.mark.parametrize("vr,raw", _VALUES, ids=[f"{v.decode()}-{r!r}" for v, r in _VALUES])
def test_value_conversion_is_pydicoms(vr, raw, encoding, codec):
    """Each VR converted as pydicom.values converts it (an independent implementation),
    numbers that are none included (pydicom reads them as text then)."""
    from pydicom.dataelem import RawDataElement
    from pydicom.values import convert_value

    element = RawDataElement(0x00091001, vr.decode(), len(raw), raw, 0, False, True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = _as_pydicom_gives(convert_value(vr.decode(), element, [codec]))
    assert _as_pydicom_gives(direct_view.value_of(vr, raw, encoding)) == expected


def _ct_with(tmp_path: Path, name: str, **values) -> Path:
    ds = pydicom.dcmread(find_sample("CT_small.dcm"))
    for keyword, value in values.items():
        setattr(ds, keyword, value)
    path = tmp_path / "in" / f"{name}.dcm"
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return path


def _patched(data: bytes, find: bytes, replace: bytes) -> bytes:
    assert data.count(find) == 1, find
    return data.replace(find, replace)


def _un_patient_name(tmp_path: Path) -> Path:
    """Patient Name written as VR UN (pydicom reads it as PN, by its dictionary)."""
    path = _ct_with(tmp_path, "un", SeriesDescription="Quixote brain",
                    PatientName="Quixote^Alonso")
    data = path.read_bytes()
    at = data.index(b"\x10\x00\x10\x00PN")
    length = struct.unpack_from("<H", data, at + 6)[0]
    path.write_bytes(data[:at] + b"\x10\x00\x10\x00UN\0\0" + struct.pack("<I", length)
                     + data[at + 8:])
    return path


def _after_pixel_data(tmp_path: Path) -> Path:
    """A sequence after Pixel Data whose item names the patient."""
    path = _ct_with(tmp_path, "after", SeriesDescription="Quixote brain",
                    PatientName="Anonymous")
    item = pydicom.Dataset()
    item.PatientName = "Quixote^Alonso"
    ds = pydicom.dcmread(path)
    ds.add_new(0xFFFAFFFA, "SQ", [item])  # Digital Signatures Sequence: after Pixel Data
    ds.save_as(path, enforce_file_format=True)
    return path


def _charset_in_item(tmp_path: Path) -> Path:
    path = _ct_with(tmp_path, "charset", SpecificCharacterSet="ISO_IR 192",
                    SeriesDescription="M\u00fcller brain", PatientName="Anonymous")
    ds = pydicom.dcmread(path)
    item = pydicom.Dataset()
    item.SpecificCharacterSet = "ISO_IR 100"
    item.PatientName = "M\u00fcller^Hans"
    ds.OtherPatientIDsSequence = [item]
    ds.save_as(path, enforce_file_format=True)
    return path


#: Files the view must leave to pydicom (each once leaked an identifier into a caption)
REFUSED = {"un-patient-name": _un_patient_name, "after-pixel-data": _after_pixel_data,
           "charset-in-item": _charset_in_item}


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_files_whose_identifiers_the_view_would_miss_go_to_pydicom(case, tmp_path):
    """A standard element of VR UN, elements after Pixel Data, a character set in an item:
    the Clean Descriptors test would not see a name there; pydicom reads those files,
    and the description that repeats the name is left out of every picture and name."""
    path = REFUSED[case](tmp_path)
    assert header_view(path) is None
    result = export([path.parent], tmp_path / "out", ExportOptions(format="png", zip="a.zip"))
    assert not result.failed and len(result.outputs) == 1
    with zipfile.ZipFile(result.outputs[0]) as zf:
        for name in zf.namelist():
            assert "Quixote" not in name and "M\u00fcller" not in name
            data = zf.read(name)  # the page in UTF-8, PNG text chunks in Latin-1
            assert b"Quixote" not in data
            assert not any("M\u00fcller".encode(c) in data for c in ("utf-8", "latin-1"))


def test_trailing_padding_is_the_only_thing_after_pixel_data(tmp_path):
    """Data Set Trailing Padding filling the file (CT_small.dcm has it) is taken; padding
    whose length does not end the file is left to pydicom."""
    assert header_view(find_sample("CT_small.dcm")) is not None
    data = find_sample("CT_small.dcm").read_bytes()
    at = data.rindex(b"\xfc\xff\xfc\xffOB\0\0")
    short = tmp_path / "short.dcm"
    short.write_bytes(data[:-2])
    assert header_view(short) is None
    other = tmp_path / "other.dcm"  # another element in its place
    other.write_bytes(data[:at] + b"\xfa\xff\xfa\xff" + data[at + 4:])
    assert header_view(other) is None
    # Implicit VR: an 8-byte header; of its length, or of undefined length
    implicit = find_sample("MR_small_implicit.dcm").read_bytes()
    for length, taken in ((4, True), (6, False), (0xFFFFFFFF, False)):
        padded = tmp_path / f"implicit-{length}.dcm"
        padded.write_bytes(implicit + b"\xfc\xff\xfc\xff" + struct.pack("<I", length) + bytes(4))
        assert (header_view(padded) is not None) == taken, length


#: Values that are not what their VR says, or are written unusually: export reads them
#: through the view as through pydicom (or the view leaves the file to pydicom).
ODD_VALUES = {
    "slope-not-a-number": {"RescaleSlope": "abc"},
    "window-not-a-number": {"WindowCenter": "abc"},
    "series-number-decimal": {"SeriesNumber": "1.5"},
    "series-number-text": {"SeriesNumber": "A1"},
    "thickness-with-unit": {"SliceThickness": "5mm"},
    "spacing-spaced": {"PixelSpacing": "0.5 \\0.5 "},
    "instance-infinite": {"InstanceNumber": "inf"},
    "two-names": {"PatientName": "Doe^John\\Roe^Jane"},
    "series-number-huge": {"SeriesNumber": "99999999999999999999"},
    "uid-spaced": {"SeriesInstanceUID": " 1.2.3 "},
    # a value export does not read, but the Clean Descriptors test walks
    "acquisition-infinite": {"AcquisitionNumber": "inf"},
}
#: Those the view must leave to pydicom (which fails the file by name)
ODD_REFUSED = {"instance-infinite"}


@pytest.mark.parametrize("keep", [False, True], ids=["captions-checked", "keep-identifiers"])
@pytest.mark.parametrize("case", sorted(ODD_VALUES))
def test_odd_values_export_as_through_pydicom(case, keep, tmp_path, monkeypatch):
    ds = pydicom.dcmread(find_sample("CT_small.dcm"))
    for keyword, text in ODD_VALUES[case].items():  # written as LO, then given its VR
        ds.add_new(tag_for_keyword(keyword), "LO", text)
    path = tmp_path / "in" / "odd.dcm"
    path.parent.mkdir()
    ds.save_as(path, enforce_file_format=True)
    data = path.read_bytes()
    for keyword in ODD_VALUES[case]:
        tag = struct.pack("<HH", *divmod(tag_for_keyword(keyword), 0x10000))
        data = _patched(data, tag + b"LO", tag + dictionary_VR(keyword).encode())
    path.write_bytes(data)
    assert (header_view(path) is None) == (case in ODD_REFUSED)
    outcomes = []
    for viewed in (True, False):
        out = tmp_path / f"out-{viewed}"
        with monkeypatch.context() as m:
            if not viewed:
                m.setattr(job, "header_view", lambda path: None)
            result = export([path], out, ExportOptions(format="png", zip="a.zip",
                                                       keep_identifiers=keep))
        files = {}
        for part in result.outputs:
            with zipfile.ZipFile(part) as zf:
                files.update({name: zf.read(name) for name in zf.namelist()})
        outcomes.append(([reason for _, reason in result.failed], files))
    assert outcomes[0] == outcomes[1]


def test_numbers_of_a_length_no_number_has_fail_the_file_by_name(tmp_path):
    """Rescale Slope written as FD of 2 bytes: the view leaves the file to pydicom, whose
    conversion fails it by name (exit 1), never a traceback (either path raised before)."""
    data = find_sample("CT_small.dcm").read_bytes()
    path = tmp_path / "in" / "fd.dcm"
    path.parent.mkdir()
    path.write_bytes(_patched(data, b"\x28\x00\x53\x10DS", b"\x28\x00\x53\x10FD"))
    assert header_view(path) is None
    result = export([path], tmp_path / "out", ExportOptions(format="png"))
    assert [(Path(p).name, reason.split(":")[0]) for p, reason in result.failed] == \
        [("fd.dcm", "RescaleSlope")]


_TEXT_BYTES = st.sampled_from(list(b"0123456789.+-eE \\\x00=^\x1b\xa0\xe9aINFnf\t\x85(B"))


@settings(max_examples=3000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(vr=st.sampled_from([b"DS", b"IS", b"PN", b"LO", b"SH", b"UC", b"LT", b"ST", b"UT",
                           b"UR", b"AE", b"CS", b"UI", b"DA", b"TM"]),
       raw=st.lists(_TEXT_BYTES, max_size=14).map(bytes),
       charset=st.sampled_from([("latin-1", "iso8859"), ("utf-8", "utf_8")]))
def test_any_text_converts_as_pydicom_or_the_view_refuses_it(vr, raw, charset):
    """Any bytes a text VR can hold: `value_of` gives pydicom's value (or fails where
    pydicom fails), unless `vouches` is False, and then a file holding them is left to
    pydicom (ISO 2022 escapes, empty name groups: found by a review, leaking a name)."""
    from pydicom.dataelem import RawDataElement
    from pydicom.values import convert_value

    def outcome(convert):
        try:
            return "value", _as_pydicom_gives(convert())
        except (ValueError, OverflowError) as exc:
            return "fails", type(exc).__name__

    element = RawDataElement(0x00091001, vr.decode(), len(raw), raw, 0, False, True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = outcome(lambda: convert_value(vr.decode(), element, [charset[1]]))
    if direct_view.vouches(vr, raw):
        assert outcome(lambda: direct_view.value_of(vr, raw, charset[0])) == expected


def _element(tag: int, vr: bytes, raw: bytes) -> bytes:
    raw += (b"\0" if vr == b"UI" else b" ") if len(raw) % 2 else b""
    group, number = divmod(tag, 0x10000)
    if vr in (b"OB", b"OW", b"SQ", b"UN", b"UC", b"UR", b"UT"):
        return struct.pack("<HH2s2xI", group, number, vr, len(raw)) + raw
    return struct.pack("<HH2sH", group, number, vr, len(raw)) + raw


def _item(*elements: bytes) -> bytes:
    body = b"".join(elements)
    return struct.pack("<HHI", 0xFFFE, 0xE000, len(body)) + body


def _built(tmp_path: Path, name: str, elements: dict[int, tuple[bytes, bytes]],
           meta: bytes = b"") -> Path:
    """An Explicit VR Little Endian CT slice of 4 x 4, written byte by byte: `elements`
    (tag -> VR, value) added to or replacing the image's own, `meta` appended to its File
    Meta Information."""
    ui = b"1.2.840.10008.5.1.4.1.1.2"
    body = {0x00080016: (b"UI", ui + b"\0"), 0x00080018: (b"UI", b"1.2.3.4"),
            0x00080060: (b"CS", b"CT"), 0x0008103E: (b"LO", b"Quixote brain"),
            0x00100010: (b"PN", b"Anonymous"), 0x0020000E: (b"UI", b"1.2.3.5"),
            0x00280002: (b"US", b"\1\0"), 0x00280004: (b"CS", b"MONOCHROME2"),
            0x00280010: (b"US", b"\4\0"), 0x00280011: (b"US", b"\4\0"),
            0x00280100: (b"US", b"\x10\0"), 0x00280101: (b"US", b"\x0c\0"),
            0x00280102: (b"US", b"\x0b\0"), 0x00280103: (b"US", b"\0\0"), **elements}
    group = (_element(0x00020001, b"OB", b"\0\1") + _element(0x00020002, b"UI", ui + b"\0")
             + _element(0x00020003, b"UI", b"1.2.3.4")
             + _element(0x00020010, b"UI", b"1.2.840.10008.1.2.1\0") + meta)
    data = (bytes(128) + b"DICM" + _element(0x00020000, b"UL", struct.pack("<I", len(group)))
            + group + b"".join(_element(t, *body[t]) for t in sorted(body))
            + _element(0x7FE00010, b"OW", bytes(range(32))))
    path = tmp_path / name / f"{name}.dcm"
    path.parent.mkdir(parents=True)
    path.write_bytes(data)
    return path


#: Files a review found the view reading otherwise than pydicom (each by bytes): the
#: view must leave them to pydicom. Several leaked the name into a caption or file name.
READ_OTHERWISE = {
    # an ISO 2022 escape pydicom decodes away: the name is Quixote^Alonso for pydicom
    "escape-in-a-name": {0x00100010: (b"PN", b"\x1b(BQuixote^Alonso")},
    "escape-in-an-item": {0x00101002: (b"SQ", _item(_element(0x00100010, b"PN",
                                                             b"\x1b(BQuixote^Alonso")))},
    # a group length of a text VR: pydicom's walk reads it (50xx: Curve Data, removed)
    "text-group-length": {0x50000000: (b"LO", b"Quixote")},
    # an empty last component group: pydicom's PersonName drops it
    "name-ends-a-group": {0x00100010: (b"PN", b"Doe^John==")},
    # Number of Frames as SS: pydicom reads 8242 frames, the walk read the text "2 "
    "frames-as-ss": {0x00280008: (b"SS", b"2 "), 0x00280010: (b"US", b"\2\0")},
    # Slice Thickness as AT: pydicom gives a Tag
    "thickness-as-at": {0x00180050: (b"AT", b"\x18\x00\x50\x00")},
    "photometric-as-ob": {0x00280004: (b"OB", b"MONOCHROME2 ")},
    # a private sequence written as UN (PS3.5 6.2.2): pydicom reads it as SQ by its
    # creator's dictionary, and finds the name in its item
    "private-sequence-as-un": {
        0x00710010: (b"LO", b"AGFA-AG_HPState"),
        0x00711018: (b"UN", _item(struct.pack("<HHI", 0x0010, 0x0010, 14) + b"Quixote^Alonso"))},
    # a tag twice in an item: pydicom keeps the last
    "repeated-in-an-item": {0x00101002: (b"SQ", _item(
        _element(0x00100010, b"PN", b"Quixote^Alonso"), _element(0x00100010, b"PN", b"Roe")))},
}


#: Those the direct path's walk (`direct.Parsed`) refuses, for transcode's fast path too.
PARSED_REFUSES = {"frames-as-ss", "photometric-as-ob", "syntax-twice-in-the-meta",
                  "text-group-length", "repeated-in-an-item"}


@pytest.mark.parametrize("case", sorted(READ_OTHERWISE) + ["syntax-twice-in-the-meta"])
def test_files_the_view_would_read_otherwise_than_pydicom_go_to_pydicom(
        case, tmp_path, monkeypatch):
    if case == "syntax-twice-in-the-meta":  # pydicom takes the last: Implicit VR
        path = _built(tmp_path, case, {},
                      meta=_element(0x00020010, b"UI", b"1.2.840.10008.1.2\0"))
    else:
        path = _built(tmp_path, case, READ_OTHERWISE[case])
    assert header_view(_built(tmp_path, "plain", {})) is not None  # but for the fault
    assert header_view(path) is None
    if case in PARSED_REFUSES:  # the walk transcode's fast path shares refuses it too
        with pytest.raises(NotDirect):
            Parsed(path.read_bytes())
    outcomes = []
    for viewed in (True, False):  # and the export is pydicom's either way
        with monkeypatch.context() as m:
            if not viewed:
                m.setattr(job, "header_view", lambda path: None)
            result = export([path], tmp_path / f"out-{viewed}", ExportOptions(format="png"))
        outcomes.append(([reason for _, reason in result.failed],
                         {p.name: p.read_bytes() for p in result.outputs}))
    assert outcomes[0] == outcomes[1]
    if case in ("escape-in-a-name", "escape-in-an-item", "text-group-length",
                "private-sequence-as-un"):
        assert outcomes[0][1] and not any("Quixote" in name for name in outcomes[0][1])


def test_values_pydicom_reads_as_the_view_does_are_read(tmp_path):
    """The refusals above are not blanket ones: the same file without the fault is read,
    a blank value among several stays as written, and UL/SL values have their size."""
    path = _built(tmp_path, "plain", {0x00280030: (b"DS", b"0.5\\ \\0.5"),
                                      0x00280008: (b"IS", b"2"),  # of 2 x 4
                                      0x00280010: (b"US", b"\2\0"),
                                      0x00100010: (b"PN", b"Doe^John=Doe")})
    view = header_view(path)
    assert view is not None and view.frames == 2 and view.get("NumberOfFrames") == 2
    ds = pydicom.dcmread(path)
    assert _as_pydicom_gives(view.get("PixelSpacing")) == _as_pydicom_gives(ds.PixelSpacing)
    assert str(view.get("PatientName")) == str(ds.PatientName)
    assert direct_view.value_of(b"UL", struct.pack("<2I", 7, 8), "latin-1") == [7, 8]
    assert direct_view.value_of(b"SL", struct.pack("<i", -7), "latin-1") == -7
