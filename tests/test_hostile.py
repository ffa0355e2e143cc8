"""Hostile and unlucky inputs: every command refuses them with a one-line reason naming the
file, and nothing hangs, crashes or is lost (issue 16)."""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import hashlib
import io
import os
import re
import shutil
import signal
import struct
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
from hypothesis import settings, strategies as st, given

from dicompress.errors import CorruptPixelData
from dicompress.samples import find_sample

COMMANDS = {
    "transcode": ["transcode", "{src}", "--to", "rle", "-o", "{out}", "--jobs", "1"],
    "transcode-j2": ["transcode", "{src}", "--to", "rle", "-o", "{out}", "--jobs", "2"],
    "deid": ["deid", "{src}", "-o", "{out}", "--key", "0123456789abcdef0123", "--jobs", "1"],
    "export": ["export", "{src}", "--format", "png", "-o", "{out}"],
    "compare": ["compare", "{src}", "--codecs", "rle"],
    "info": ["info", "{src}/fifo.dcm"],
}


def _run(command: str, src: Path, out: Path) -> subprocess.CompletedProcess:
    argv = [a.format(src=src, out=out) for a in COMMANDS[command]]
    return subprocess.run([sys.executable, "-m", "dicompress", *argv], capture_output=True,
                          text=True, timeout=60, stdin=subprocess.DEVNULL)


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_a_fifo_named_dcm_is_refused_not_opened(command, tmp_path):
    """Opening a FIFO for reading blocks until a writer comes: a run over a tree holding
    one must not hang (the timeout fails the test), and names it."""
    src = tmp_path / "in"
    src.mkdir()
    shutil.copy(find_sample("CT_small.dcm"), src / "ct.dcm")
    os.mkfifo(src / "fifo.dcm")
    proc = _run(command, src, tmp_path / "out")
    assert "Traceback" not in proc.stderr, proc.stderr
    text = proc.stdout + proc.stderr
    assert "fifo.dcm" in text and "FIFO" in text, text
    if command == "info":
        assert proc.returncode == 1
    else:
        assert proc.returncode == 0, text  # the FIFO is skipped; the image is done


@pytest.mark.parametrize("command", ["transcode", "deid"])
def test_in_place_does_not_rewrite_what_a_link_points_to(command, tmp_path):
    """A symbolic link in the tree to a file (or a folder) outside it: in place, the file
    outside is reported and left as it is, unless --follow-links."""
    import hashlib

    tree, outside = tmp_path / "tree", tmp_path / "outside"
    tree.mkdir()
    (outside / "sub").mkdir(parents=True)
    shutil.copy(find_sample("CT_small.dcm"), tree / "own.dcm")
    shutil.copy(find_sample("CT_small.dcm"), outside / "theirs.dcm")
    shutil.copy(find_sample("MR_small.dcm"), outside / "sub" / "deep.dcm")
    (tree / "link.dcm").symlink_to(outside / "theirs.dcm")
    (tree / "linked-folder").symlink_to(outside / "sub")
    before = {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in outside.rglob("*.dcm")}
    argv = (["transcode", str(tree), "--to", "rle"] if command == "transcode"
            else ["deid", str(tree), "--key", "0123456789abcdef0123"])
    proc = subprocess.run([sys.executable, "-m", "dicompress", *argv, "--in-place", "--jobs", "1",
                           "--journal", str(tmp_path / "j.sqlite")],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in outside.rglob("*.dcm")} == before
    text = proc.stdout + proc.stderr
    assert "link.dcm: a link to" in text and "deep.dcm: a link to" in text and "--follow-links" in text
    assert "Traceback" not in proc.stderr
    proc = subprocess.run([sys.executable, "-m", "dicompress", *argv, "--in-place", "--jobs", "1",
                           "--follow-links", "--journal", str(tmp_path / "j2.sqlite")],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in outside.rglob("*.dcm")} != before


# -- a command run as an attacker would see it run -------------------------------------------
#: Address space a command may take: 2 GiB, whatever a damaged header claims.
ADDRESS_SPACE = 2 << 30
KEY = "0123456789abcdef0123"


def _bounded() -> None:  # runs in the child, before exec
    import resource

    resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE, ADDRESS_SPACE))


def _session_members(sid: int) -> list[int]:
    """Processes still alive in the session `sid` (the command's children)."""
    members = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[3]) == sid and fields[0] != "Z":
            members.append(int(entry))
    return members


#: Runs a command and writes its peak resident KiB (its own and its waited children's) to
#: argv[1]. Linux keeps a process's peak across exec, and a process forked from the test
#: session starts with the session's size (hundreds of MB once the corpus fixtures are
#: built): started from this small process instead, the command's peak is its own. Dies
#: as the command died.
_LAUNCHER = """
import os, signal, subprocess, sys
child = subprocess.Popen(sys.argv[2:])
_, status, usage = os.wait4(child.pid, 0)
with open(sys.argv[1], "w") as f:
    f.write(str(usage.ru_maxrss))
code = os.waitstatus_to_exitcode(status)
if code < 0:
    signal.signal(-code, signal.SIG_DFL)
    os.kill(os.getpid(), -code)
sys.exit(code)
"""


def run_bounded(argv: list[str], tmp_path: Path, timeout: float = 120, env: dict | None = None
                ) -> tuple[int, str, str, int]:
    """`dicompress argv` in its own session under ADDRESS_SPACE: (exit code, stdout, stderr,
    peak resident KiB). A hang fails the test (the session is killed); so does a process
    of the command still alive after it exited, and a death by signal."""
    out_path, err_path = tmp_path / "stdout.txt", tmp_path / "stderr.txt"
    peak_path = tmp_path / "peak.txt"
    with open(out_path, "w") as out, open(err_path, "w") as err:
        proc = subprocess.Popen([sys.executable, "-c", _LAUNCHER, str(peak_path),
                                 sys.executable, "-m", "dicompress", *argv], stdout=out,
                                stderr=err, stdin=subprocess.DEVNULL, preexec_fn=_bounded,
                                start_new_session=True,
                                env=None if env is None else {**os.environ, **env})
    timer = threading.Timer(timeout, os.killpg, (proc.pid, signal.SIGKILL))
    timer.start()
    try:
        _, status, _ = os.wait4(proc.pid, 0)
    finally:
        hung = not timer.is_alive()
        timer.cancel()
    proc.returncode = code = os.waitstatus_to_exitcode(status)
    leftover = _session_members(proc.pid)
    if leftover:
        os.killpg(proc.pid, signal.SIGKILL)
    assert not hung, f"dicompress {argv} did not end within {timeout} s"
    assert code >= 0, f"dicompress {argv} died of signal {-code}"
    assert not leftover, f"processes of dicompress {argv} outlived it: {leftover}"
    return code, out_path.read_text(), err_path.read_text(), int(peak_path.read_text())


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


#: Each command over a folder, with where its outputs go.
def command_lines(src: Path, out: Path) -> dict[str, list[str]]:
    return {
        "info": ["info", *map(str, sorted(src.iterdir()))],
        "transcode": ["transcode", str(src), "--to", "rle", "-o", str(out), "--jobs", "1"],
        "transcode-j2": ["transcode", str(src), "--to", "rle", "-o", str(out), "--jobs", "2"],
        "deid": ["deid", str(src), "-o", str(out), "--key", KEY, "--jobs", "1"],
        "export": ["export", str(src), "--format", "png", "-o", str(out)],
        "compare": ["compare", str(src), "--codecs", "rle"],
    }


def _damaged_files() -> dict[str, tuple]:
    """Every damaged file of classes 1-4 below: case -> (its bytes, the reason every
    command must give, the commands that read what is damaged; None: all)."""
    cases = {case: (lambda s=sample, c=change: c(find_sample(s).read_bytes()), reason, None)
             for case, (sample, change, reason) in DAMAGED_IMAGES.items()}
    cases.update({case: (make, reason, None) for case, (make, reason) in SIZE_BOMBS.items()})
    cases.update({case: (lambda s=sample, a=attributes: _with(s, **a), reason,
                         ["transcode", "transcode-j2", "export", "compare"])
                  for case, (sample, attributes, reason) in CODESTREAM_MISMATCHES.items()})
    cases.update({case: (lambda c=change: c(find_sample("examples_palette.dcm").read_bytes()),
                         reason, ["deid", "transcode", "info"])
                  for case, (change, reason) in SWALLOWING_LENGTHS.items()})
    cases.update(DAMAGED_WHERE_READ)
    return cases


@dataclasses.dataclass(frozen=True)
class Run:
    """One command's run over the folder of damaged files."""

    code: int
    text: str  # stdout and stderr
    stderr: str
    outputs: list[str]  # the names of what it wrote
    peak: int  # resident KiB


@pytest.fixture(scope="module")
def refused(tmp_path_factory) -> tuple[Path, dict[str, str], dict[str, Run]]:
    """Each command run once over one folder holding every damaged file of classes 1-4
    and a good image: (the folder, each file's SHA-256 before, each command's run). A
    run starts a Python process and takes seconds; one per case and command was most of
    this module's time. Each case's test then reads its own file's line."""
    base = tmp_path_factory.mktemp("refused")
    src = base / "in"
    src.mkdir()
    shutil.copy(find_sample("CT_small.dcm"), src / "good.dcm")
    for case, (make, _, _) in _damaged_files().items():
        (src / f"{case}.dcm").write_bytes(make())
    before = {path.name: sha256(path) for path in src.iterdir()}
    runs = {}
    for command in command_lines(src, base):
        out = base / f"out-{command}"
        code, stdout, stderr, peak = run_bounded(command_lines(src, out)[command], base)
        runs[command] = Run(code, stdout + stderr, stderr,
                            [path.name for path in out.rglob("*")], peak)
    return src, before, runs


def assert_refused(refused, case: str) -> None:
    """Every command that reads what is damaged in `case`'s file, run over a folder
    holding it (`refused`): exit 1, one line naming the file with the reason, as a
    failure (not a skip), no output of it, the source as it was, no traceback."""
    src, before, runs = refused
    _, reason, commands = _damaged_files()[case]
    name = f"{case}.dcm"
    for command, run in runs.items():
        if commands is not None and command not in commands:
            continue
        assert "Traceback" not in run.stderr, (command, run.stderr)
        assert run.code == 1, (command, run.code, run.text)
        lines = [line for line in run.text.splitlines() if f"/{name}" in line]
        assert len(lines) == 1 and reason in lines[0], (command, reason, lines)
        assert lines[0].startswith(("FAILED ", "error: ")), (command, lines[0])
        assert not [output for output in run.outputs if case in output], (command, run.outputs)
        assert sha256(src / name) == before[name], command
        assert run.peak < ADDRESS_SPACE >> 10, (command, run.peak)


def _mutated(tmp_path: Path, name: str, sample: str, change) -> Path:
    """`sample` changed by `change(bytes) -> bytes`, alone in a folder of its own."""
    folder = tmp_path / "in"
    folder.mkdir(exist_ok=True)
    path = folder / name
    path.write_bytes(change(find_sample(sample).read_bytes()))
    return path



# -- class 4: damaged images are failures, never "without pixel data" -------------------------
def _delimiter(data: bytes) -> int:
    return data.rfind(b"\xfe\xff\xdd\xe0")


def _set_length(data: bytes, value_tell: int, size: int, length: int) -> bytes:
    """The value length field (`size` bytes just before the value at `value_tell`) set."""
    out = bytearray(data)
    out[value_tell - size:value_tell] = struct.pack("<H" if size == 2 else "<I", length)
    return bytes(out)


def _last_before_pixel_data(sample: str) -> int:
    import pydicom

    ds = pydicom.dcmread(find_sample(sample), defer_size=16)
    return [e for e in ds if e.tag < 0x7FE00010][-1].file_tell  # where its value starts


DAMAGED_IMAGES = {
    # an RLE file cut in the middle of its Pixel Data
    "truncated-rle": ("MR_small_RLE.dcm", lambda b: b[:_delimiter(b) - 2000],
                      "cannot be read: End of file reached before delimiter (FFFE,E0DD)"),
    "no-delimiter": ("MR_small_RLE.dcm", lambda b: b[:_delimiter(b)],
                     "cannot be read: End of file reached before delimiter (FFFE,E0DD)"),
    "junk-delimiter": ("MR_small_RLE.dcm",
                       lambda b: b[:_delimiter(b)] + b"\x34\x12\x78\x56" + b[_delimiter(b) + 4:],
                       "cannot be read: End of file reached before delimiter"),
    # Explicit VR Big Endian said of a little endian body
    "big-endian-label": ("CT_small.dcm",
                         lambda b: b.replace(b"1.2.840.10008.1.2.1\0", b"1.2.840.10008.1.2.2\0", 1),
                         "the transfer syntax says big endian"),
    # (0028,1051) Window Width says 0xFFFFFFF0 bytes: it would swallow the Pixel Data
    "huge-length-implicit": ("MR_small_implicit.dcm",
                             lambda b: _set_length(b, _last_before_pixel_data(
                                 "MR_small_implicit.dcm"), 4, 0xFFFFFFF0),
                             "says its value is 4294967280 bytes but the file ends"),
    "huge-length-explicit": ("CT_small.dcm",
                             lambda b: _set_length(b, _last_before_pixel_data("CT_small.dcm"),
                                                   2, 0xFFFF),
                             "says its value is 65535 bytes but the file ends"),
    # Bits Stored 0 was read as Bits Allocated and kept in the output (pydicom refuses it)
    "bits-stored-0": ("CT_small.dcm", lambda _: _with("CT_small.dcm", BitsStored=0),
                      "Bits Stored is 0"),
    # an Extended Offset Table without its lengths: pydicom's AttributeError reached users
    "offsets-without-lengths": ("MR_small_RLE.dcm",
                                lambda _: _with("MR_small_RLE.dcm", ExtendedOffsetTable=bytes(8)),
                                "ExtendedOffsetTable without ExtendedOffsetTableLengths"),
    # lengths of 2^50 bytes: pydicom read a frame that long (a MemoryError, no message)
    "offsets-past-the-end": ("MR_small_RLE.dcm",
                             lambda _: _with("MR_small_RLE.dcm", ExtendedOffsetTable=bytes(8),
                                             ExtendedOffsetTableLengths=_U64_2_50),
                             "past the end of the file"),
}


@pytest.mark.parametrize("case", sorted(DAMAGED_IMAGES))
def test_a_damaged_image_is_a_failure_not_a_skip(case, refused):
    """pydicom stops at the damage and returns what came before, without Pixel Data: that
    was reported as "without pixel data (skipped)" with exit 0 (issue 16, class 4)."""
    assert_refused(refused, case)


# -- class 3: declared sizes the bytes present cannot hold --------------------------------------
_U64_2_50 = (1 << 50).to_bytes(8, "little")


def _with(sample: str, **attributes):
    """`sample` with `attributes` set, as bytes (written by pydicom)."""
    import io

    import pydicom

    ds = pydicom.dcmread(find_sample(sample))
    for keyword, value in attributes.items():
        setattr(ds, keyword, value)
    buffer = io.BytesIO()
    ds.save_as(buffer)
    return buffer.getvalue()


@functools.lru_cache(maxsize=1)
def _deflate_bomb(inflated: int) -> bytes:
    """CT_small as Deflated Explicit VR Little Endian (PS3.5 A.5) with a private OB element
    of `inflated` zero bytes after its Pixel Data: about 1/1000 of that on disk. Made once
    (3 s of deflating) for the three cases built from it."""
    import zlib

    import pydicom
    from pydicom.filebase import DicomBytesIO
    from pydicom.filewriter import write_dataset, write_file_meta_info

    ds = pydicom.dcmread(find_sample("CT_small.dcm"))
    body = DicomBytesIO()
    body.is_little_endian, body.is_implicit_VR = True, False
    write_dataset(body, ds)
    tail = (struct.pack("<HH2sH", 0x7FE1, 0x0010, b"LO", 8) + b"BOMBBOMB"
            + struct.pack("<HH2sHI", 0x7FE1, 0x1000, b"OB", 0, inflated))
    deflater = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    parts, zeros = [deflater.compress(body.getvalue() + tail)], bytes(16 << 20)
    for _ in range(inflated // len(zeros)):
        parts.append(deflater.compress(zeros))
    parts.append(deflater.flush())
    ds.file_meta.TransferSyntaxUID = "1.2.840.10008.1.2.1.99"
    meta = DicomBytesIO()
    meta.is_little_endian, meta.is_implicit_VR = True, False
    write_file_meta_info(meta, ds.file_meta, enforce_standard=True)
    return b"\0" * 128 + b"DICM" + meta.getvalue() + b"".join(parts)


SIZE_BOMBS = {
    # 7.6 KB of RLE that says 65535 x 65535: 8 GiB if a decoder believed it
    "rle-65535": (lambda: _with("MR_small_RLE.dcm", Rows=65535, Columns=65535),
                  "encoded bytes can decode to"),
    # 38 KB of native pixels that say 2^31 - 1 frames
    "native-frames": (lambda: _with("CT_small.dcm", NumberOfFrames=2**31 - 1),
                      "the Pixel Data holds 32768 bytes; the image needs"),
    # one RLE fragment that says 2^31 - 1 frames
    "encapsulated-frames": (lambda: _with("MR_small_RLE.dcm", NumberOfFrames=2**31 - 1),
                            "Number of Frames is 2147483647 but the encapsulated Pixel Data "
                            "holds 1 fragment"),
    # 1.2 MB that inflates to 1.2 GiB (pydicom inflates a deflated file whole)
    "deflate": (lambda: _deflate_bomb(1200 << 20), "the deflated data set inflates to more than"),
    # the same without (0002,0000) File Meta Information Group Length: pydicom reads the
    # File Meta Information to the first element of another group all the same
    "deflate-no-group-length": (lambda: _without_group_length(_deflate_bomb(1200 << 20)),
                                "the deflated data set inflates to more than"),
    # ... and without preamble and DICM (read forced)
    "deflate-no-preamble": (lambda: _deflate_bomb(1200 << 20)[132:],
                            "the deflated data set inflates to more than"),
}


def _without_group_length(data: bytes) -> bytes:
    """A file with a preamble without its (0002,0000) element (12 bytes, UL)."""
    assert data[132:138] == b"\x02\x00\x00\x00UL"
    return data[:132] + data[144:]


@pytest.mark.parametrize("case", sorted(SIZE_BOMBS))
def test_a_size_the_bytes_cannot_hold_is_refused_before_allocating(case, refused):
    """A header's sizes are claims; the bytes present decide (issue 16, class 3). Each
    command runs under a 2 GiB address space: one allocation of the claimed size fails it."""
    assert_refused(refused, case)


# -- class 2: codestreams that disagree with the header never reach a native decoder ------------
CODESTREAM_MISMATCHES = {
    # one J2K component, three samples said: GDCM aborted the process (SIGABRT)
    "j2k-components": ("MR_small_jp2klossless.dcm",
                       dict(SamplesPerPixel=3, PhotometricInterpretation="RGB",
                            PlanarConfiguration=0),
                       "codestream says 1 components (Samples per Pixel: 3)"),
    "jpeg-size": ("SC_rgb_jpeg_dcmtk.dcm", dict(Rows=200, Columns=50),
                  "codestream says 100 rows (the header: 200), 100 columns (the header: 50)"),
    "jpeg-ls-precision": ("JPEGLSNearLossless_16.dcm", dict(BitsAllocated=8, BitsStored=8,
                                                            HighBit=7),
                          "16-bit samples (Bits Allocated: 8)"),
}


@pytest.mark.parametrize("case", sorted(CODESTREAM_MISMATCHES))
def test_a_codestream_that_disagrees_with_the_header_is_refused(case, refused):
    """The frame header (J2K SIZ, JPEG SOF, JPEG-LS SOF55) is checked against the DICOM
    header before any decoder sees the frame, every command that decodes alike (issue 16,
    class 2), with pydicom's decoders as they are (issue 17)."""
    assert_refused(refused, case)


@pytest.mark.parametrize("case", sorted(CODESTREAM_MISMATCHES))
def test_our_own_reading_checks_the_codestream_with_pydicoms_decoders_untouched(case, tmp_path):
    """`import dicompress` wraps none of pydicom's decoders (issue 17): dicompress's own
    reading runs the check itself, before any decoder sees the frame (compress,
    decompress, iter_frames; the commands: above)."""
    import pydicom
    from pydicom.pixels import get_decoder

    import dicompress

    sample, attributes, reason = CODESTREAM_MISMATCHES[case]
    damaged = tmp_path / f"{case}.dcm"
    damaged.write_bytes(_with(sample, **attributes))
    ds = pydicom.dcmread(damaged)
    syntax = ds.file_meta.TransferSyntaxUID
    assert not any(getattr(f, "codestream_checked", False)
                   for f in get_decoder(syntax)._available.values())
    with pytest.raises(CorruptPixelData, match=re.escape(reason)):
        dicompress.decompress(ds)
    with pytest.raises(CorruptPixelData, match="the frame's codestream says"):
        dicompress.iter_frames(damaged)


def test_a_jpeg_transformed_without_decoding_is_checked_first(tmp_path):
    """`--to jpegxl-jpeg` hands the stored JPEG frames to libjxl without decoding them:
    the frame check runs before it too, and nothing is written (without it, a file whose
    header says 200 x 50 over a 100 x 100 JPEG XL codestream was written, and verified)."""
    from dicompress.transcode import transcode_file

    _, attributes, reason = CODESTREAM_MISMATCHES["jpeg-size"]
    damaged = tmp_path / "jpeg-size.dcm"
    damaged.write_bytes(_with("SC_rgb_dcmtk_+eb+cy+np.dcm", **attributes))  # YBR_FULL_422
    with pytest.raises(CorruptPixelData, match=re.escape(reason)):
        transcode_file(damaged, tmp_path / "out.dcm", "jpegxl-jpeg")
    assert not (tmp_path / "out.dcm").exists()


def test_a_plain_pydicom_decode_with_the_check_registered_raises_instead_of_aborting(tmp_path):
    """GDCM aborted the whole process on the J2K case; pydicom tried it first. After
    `dicompress.plugins.register(check=True)`, every decoder pydicom has raises the
    check's error first; pydicom's order stays its own unless `register(prefer=True)`
    moves GDCM last."""
    sample, attributes, reason = CODESTREAM_MISMATCHES["j2k-components"]
    sample_syntax = "1.2.840.10008.1.2.4.90"
    damaged = tmp_path / "j2k.dcm"
    damaged.write_bytes(_with(sample, **attributes))
    script = ("import dicompress.plugins, pydicom\n"
              "from pydicom.pixels import get_decoder\n"
              "dicompress.plugins.register(check=True)\n"
              f"ds = pydicom.dcmread({str(damaged)!r})\n"
              "print(list(get_decoder(ds.file_meta.TransferSyntaxUID)._available))\n"
              "ds.pixel_array\n")
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=60, preexec_fn=_bounded)
    assert proc.returncode == 1, (proc.returncode, proc.stderr)  # an exception, not SIGABRT
    assert reason in proc.stderr
    script = ("import pydicom, dicompress.plugins as p\n"
              "from pydicom.pixels import get_decoder\n"
              "p.register(prefer=True)\n"
              f"print(list(get_decoder({sample_syntax!r})._available))\n")
    order = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                           timeout=60).stdout.strip()
    assert "gdcm" not in order or order.endswith("'gdcm']"), order


# -- class 2: what still aborts costs one file, never the run --------------------------------
#: Imported by every Python process of the run (forked workers, the forkserver and its
#: workers alike): the frame check in front of pydicom's decoders aborts the process, as
#: GDCM did, on a frame holding the marked bytes.
_ABORTING_DECODER = """
import os
_MARK = os.environ.get("DICOMPRESS_TEST_ABORT_ON")
if _MARK:  # as a native decoder that aborts would, inside pydicom's decoding of the frame
    import pydicom  # noqa: F401
    import dicompress.plugins
    import dicompress.plugins.checked_decoders as _checked

    dicompress.plugins.register(check=True)  # the wrappers in front of pydicom's decoders

    def _patch(real=_checked.check_frame, mark=bytes.fromhex(_MARK)):
        def check_frame(src, *args, **kwargs):
            if mark in bytes(src):
                os.abort()
            return real(src, *args, **kwargs)
        return check_frame

    _checked.check_frame = _patch()
"""


def _frame_bytes(sample: str, index: int) -> bytes:
    """64 bytes from the middle of encapsulated frame `index` of `sample`."""
    import pydicom
    from pydicom.encaps import generate_frames

    ds = pydicom.dcmread(find_sample(sample))
    frames = generate_frames(ds.PixelData, number_of_frames=int(ds.get("NumberOfFrames", 1)))
    return list(frames)[index][100:164]


#: Where the aborting frame is: the only frame of a file, or frame 5 of 10 (export has
#: decoded frame 1 for the window; frame 5 aborts in a worker writing stills).
ABORTS = {"first-frame": ("MR_small_RLE.dcm", 0), "fifth-frame": ("emri_small_RLE.dcm", 4)}
#: The commands that decode, with where the other files' results are seen.
DECODING = {
    "transcode": ["transcode", "{src}", "--to", "jpegls", "-o", "{out}", "--jobs", "1"],
    "transcode-j2": ["transcode", "{src}", "--to", "jpegls", "-o", "{out}", "--jobs", "2"],
    "export": ["export", "{src}", "--format", "png", "-o", "{out}", "--jobs", "1"],
    "export-j2": ["export", "{src}", "--format", "png", "-o", "{out}", "--jobs", "2"],
    "compare": ["compare", "{src}", "--codecs", "rle"],
    "plan": ["plan", "{src}", "--budget", "10MB"],
    # per series: the series of the file that died gets no command (it had one, made
    # from the frames measured before the abort)
    "plan-per-series": ["plan", "{src}", "--budget", "10MB", "--lossless-only"],
}


@pytest.mark.parametrize("where", sorted(ABORTS))
@pytest.mark.parametrize("command", sorted(DECODING))
def test_a_decoder_that_aborts_costs_one_file(command, where, tmp_path):
    """A native decoder that aborts the process (SIGABRT) on a frame no check foresaw: the
    file is reported failed with the reason, the exit code is 1, every other file is done,
    and no process is left behind (issue 16, class 2)."""
    sample, index = ABORTS[where]
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(_ABORTING_DECODER)
    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    others = {"ct": "CT_small.dcm", "rgb": "SC_rgb_rle.dcm", "us": "US1_J2KR.dcm",
              "mr": "MR_small_RLE.dcm", "multi": "emri_small_RLE.dcm"}
    for name, other in others.items():
        if other != sample:
            shutil.copy(find_sample(other), src / f"{name}.dcm")
    shutil.copy(find_sample(sample), src / "crash.dcm")
    env = {"PYTHONPATH": str(hook), "DICOMPRESS_TEST_ABORT_ON": _frame_bytes(sample, index).hex()}
    argv = [a.format(src=src, out=out) for a in DECODING[command]]
    code, stdout, stderr, _ = run_bounded(argv, tmp_path, env=env)
    text = stdout + stderr
    assert "Traceback" not in stderr, stderr
    assert code == 1, (code, text)
    lines = [line for line in text.splitlines() if "crash.dcm" in line]
    # how the process ended is named where the pool can tell (a worker started by a
    # forkserver may be reported "exit code 255"): the file is named as the one that died
    assert len(lines) == 1 and "died (" in lines[0], lines
    done = sorted(p.name for p in src.iterdir() if p.name != "crash.dcm")
    frames = sum(10 if name == "multi.dcm" else 1 for name in done)
    before = index  # frames of crash.dcm measured before the one that aborts
    if command.startswith("transcode"):
        assert sorted(p.name for p in out.glob("*.dcm")) == done
    elif command.startswith("export"):
        singles = list(out.glob("*.png"))  # a picture for each single-frame file
        assert len(singles) == len(done) - ("multi.dcm" in done), singles
        # the 10-frame file's pictures: all of them when it is another file; when it is
        # the one that aborts, those before the aborting frame, never that one, and
        # those after it that another worker finished meanwhile
        frame_names = {p.name for p in out.glob("*/*.png")}
        if where == "first-frame":
            assert frame_names == {f"{n:04d}.png" for n in range(1, 11)}, frame_names
        else:
            assert {f"{n:04d}.png" for n in range(1, index + 1)} <= frame_names, frame_names
            assert f"{index + 1:04d}.png" not in frame_names, frame_names
        assert not [p for p in out.rglob("*") if p.name.endswith(".dicompress-tmp")]
    elif command == "compare":  # every other file's frames measured
        assert f"{frames + before} frames from" in stdout, stdout
    else:
        assert "Choice:" in stdout and "fits" in stdout, stdout
        assert not [line for line in stdout.splitlines()
                    if line.startswith("Run:") and "crash.dcm" in line], stdout


# -- class 3: memory holds a few frames, whatever Number of Frames says ---------------------
def _many_frames(frames: int) -> bytes:
    """CT_small as `frames` native frames of 1 x 1 pixel, 8 bits: every byte present."""
    return _with("CT_small.dcm", Rows=1, Columns=1, BitsAllocated=8, BitsStored=8, HighBit=7,
                 PixelRepresentation=0, NumberOfFrames=frames, PixelData=bytes(range(256)) * (
                     frames // 256))


@pytest.mark.parametrize("command", ["export", "compare"])
def test_frames_are_listed_lazily_whatever_number_of_frames_says(command, tmp_path):
    """20 million real frames in a 20 MB file: export and compare pick three of them without
    a list of every frame (a (file, frame) pair each took over 2 GiB), under 2 GiB of
    address space and in well under it of resident memory (issue 16, class 3)."""
    frames = 20_000_000 // 256 * 256
    src = tmp_path / "in"
    src.mkdir()
    (src / "many.dcm").write_bytes(_many_frames(frames))
    out = tmp_path / "out"
    argv = (["export", str(src), "--format", "png", "-o", str(out), "--frames", f"1,2,{frames}"]
            if command == "export" else ["compare", str(src), "--codecs", "rle", "--sample", "3"])
    code, stdout, stderr, peak = run_bounded(argv, tmp_path)
    assert code == 0 and "Traceback" not in stderr, stdout + stderr
    if command == "export":
        assert sorted(p.name for p in out.rglob("*.png")) == ["0001.png", "0002.png",
                                                             f"{frames:04d}.png"]
    else:
        assert "3 frames from 1 series" in stdout, stdout
    assert peak < 400 << 10, peak  # KiB: a few frames, not a list of 20 million


# -- class 5: in place never overwrites what changed since it was read ------------------------
def _rewritten(victim: Path) -> tuple[bytes, callable]:
    """Other pixels of the same size for `victim`, and a function that writes them over it
    in place and sets its mtime back (rsync --inplace -t)."""
    newer = bytearray(victim.read_bytes())
    newer[-100:] = bytes(reversed(newer[-100:]))
    newer = bytes(newer)

    def rewrite() -> None:
        st = os.stat(victim)
        victim.write_bytes(newer)
        os.utime(victim, ns=(st.st_atime_ns, st.st_mtime_ns))
        assert os.stat(victim).st_mtime_ns == st.st_mtime_ns

    return newer, rewrite


def _meddling(monkeypatch, rewrites: int, rewrite) -> None:
    """Another program rewrites the source between our read and our rename, the first
    `rewrites` times."""
    import dicompress.batch.worker as worker
    import dicompress.deid as deid

    count = {"n": 0}

    def meddle(real):
        def run(source, *args, before_replace=None, **kwargs):
            def check(tmp):
                if count["n"] < rewrites:
                    count["n"] += 1
                    rewrite()
                before_replace(tmp)
            return real(source, *args, before_replace=check, **kwargs)
        return run

    monkeypatch.setattr(worker, "transcode_file", meddle(worker.transcode_file))
    monkeypatch.setattr(deid, "deidentify_file", meddle(deid.deidentify_file))


@pytest.mark.parametrize("deid", [False, True])
def test_a_source_rewritten_during_the_transcode_is_read_again(deid, tmp_path, monkeypatch):
    """Another program rewrites the source in place, same size, and sets its mtime back
    (rsync --inplace -t) between our read and our rename: the old content's result is never
    renamed over it; the new content is read and done again (issue 16, class 5)."""
    import pydicom

    from dicompress.batch.worker import Task, codec_config, run_task
    from dicompress.codecs import get_codec
    from dicompress.deid import DeidConfig

    victim = tmp_path / "ct.dcm"
    shutil.copy(find_sample("CT_small.dcm"), victim)
    newer, rewrite = _rewritten(victim)
    _meddling(monkeypatch, 1, rewrite)
    task = Task(path=str(victim), destination=str(victim), codec=codec_config(get_codec("rle")),
                deid=DeidConfig(key=KEY.encode()) if deid else None)
    outcome = run_task(task)
    assert outcome.status == "ok", outcome
    expected = pydicom.dcmread(io.BytesIO(newer)).pixel_array
    done = pydicom.dcmread(victim)
    assert str(done.file_meta.TransferSyntaxUID) == "1.2.840.10008.1.2.5"
    assert (done.pixel_array == expected).all()  # the transcode of the NEW content
    assert not [p for p in tmp_path.iterdir() if p.name != "ct.dcm"]


@pytest.mark.parametrize("deid", [False, True])
def test_a_source_that_keeps_changing_is_left_as_it_is(deid, tmp_path, monkeypatch):
    """Rewritten before every rename: after a bounded number of tries the file is reported
    and the other program's data stays."""
    from dicompress.batch.worker import CHANGE_RETRIES, Task, codec_config, run_task
    from dicompress.codecs import get_codec
    from dicompress.deid import DeidConfig

    victim = tmp_path / "ct.dcm"
    shutil.copy(find_sample("CT_small.dcm"), victim)
    newer, rewrite = _rewritten(victim)
    _meddling(monkeypatch, CHANGE_RETRIES + 1, rewrite)
    task = Task(path=str(victim), destination=str(victim), codec=codec_config(get_codec("rle")),
                deid=DeidConfig(key=KEY.encode()) if deid else None)
    outcome = run_task(task)
    assert outcome.status == "failed" and "changed while being transcoded" in outcome.reason
    assert "another program keeps writing it" in outcome.reason, outcome.reason
    assert victim.read_bytes() == newer  # the other program's data survives
    assert not [p for p in tmp_path.iterdir() if p.name != "ct.dcm"]


# -- class 1: de-identification never keeps what a damaged length swallowed ----------------------
def _palette_length(length_of) -> callable:
    """examples_palette.dcm with the length of its Red Palette Color Lookup Table Data (a
    kept OW element) set to `length_of(value_tell, file_size)`."""
    import pydicom

    ds = pydicom.dcmread(find_sample("examples_palette.dcm"), defer_size=16)
    tell = ds.get_item("RedPaletteColorLookupTableData", keep_deferred=True).value_tell
    return lambda data: _set_length(data, tell, 4, length_of(tell, len(data)))


SWALLOWING_LENGTHS = {
    # runs past the end of the file
    "past-the-end": (_palette_length(lambda tell, size: 0xFFFFFFF0),
                     "says its value is 4294967280 bytes but the file ends"),
    # ends where the file ends: the elements after it, Pixel Data too, read as its value
    "to-the-end": (_palette_length(lambda tell, size: size - tell),
                   "the file holds a Pixel Data element"),
}


@pytest.mark.parametrize("case", sorted(SWALLOWING_LENGTHS))
def test_a_length_that_swallows_later_elements_is_refused_by_deid(case, refused, tmp_path):
    """pydicom reads what follows a damaged length into that element; de-identification
    kept it (identifiers in its bytes, Pixel Data gone, exit 0, and in place the image
    lost). The file is refused, never written, in place or not (issue 16, class 1)."""
    change, reason = SWALLOWING_LENGTHS[case]
    assert_refused(refused, case)
    damaged = _mutated(tmp_path, f"{case}.dcm", "examples_palette.dcm", change)
    before = sha256(damaged)
    code, stdout, stderr, _ = run_bounded(
        ["deid", str(damaged.parent), "--key", KEY, "--in-place", "--jobs", "1",
         "--journal", str(tmp_path / "journal.sqlite")], tmp_path)
    assert code == 1 and reason in stdout + stderr, stdout + stderr
    assert sha256(damaged) == before


# -- class 7: the smaller ones -------------------------------------------------------------------
def _no_space(*args, **kwargs):
    import errno

    raise OSError(errno.ENOSPC, "No space left on device")


@pytest.mark.parametrize("command", ["export", "compare-html"])
def test_a_full_disk_stops_export_and_compare_html_cleanly(command, tmp_path, monkeypatch, capsys):
    """Export and compare --html ended in a traceback on a full disk; they stop with exit
    3 and one line, as transcode and deid do (issue 16, class 7)."""
    from dicompress.cli import main
    from dicompress.errors import EXIT_STOPPED

    source = find_sample("CT_small.dcm")
    if command == "export":
        monkeypatch.setattr(Path, "write_bytes", _no_space)
        argv = ["export", str(source), "--format", "png", "-o", str(tmp_path / "out"),
                "--jobs", "1"]
    else:
        monkeypatch.setattr(Path, "write_text", _no_space)
        argv = ["compare", str(source), "--codecs", "rle", "--html", str(tmp_path / "r.html")]
    code = main(argv)
    captured = capsys.readouterr()
    assert code == EXIT_STOPPED, captured.err
    assert "Traceback" not in captured.err and "disk full" in captured.err
    assert not [p for p in tmp_path.rglob("*") if p.is_file()]


def test_a_newline_in_a_file_name_cannot_forge_a_line(tmp_path):
    """A name holding a newline printed as it is started a line of its own: a forged
    FAILED (or ok) line. Control characters in names and messages are escaped."""
    src = tmp_path / "in"
    src.mkdir()
    damaged = src / "a\nFAILED   forged.dcm: oops\nb.dcm"
    damaged.write_bytes(find_sample("MR_small_RLE.dcm").read_bytes()[:3000])
    shutil.copy(find_sample("CT_small.dcm"), src / "ok\nFAILED   forged2.dcm")
    for name, argv in command_lines(src, tmp_path / "out").items():
        shutil.rmtree(tmp_path / "out", ignore_errors=True)
        _, stdout, stderr, _ = run_bounded(argv, tmp_path)
        lines = (stdout + stderr).splitlines()
        assert not [line for line in lines if line.startswith("FAILED   forged")], (name, lines)
        assert any("a\\nFAILED   forged.dcm: oops\\nb.dcm" in line for line in lines), (name, lines)


@pytest.mark.parametrize("name", ["../../x.zip", "/tmp/x.zip", "sub/x.zip", ".."])
def test_export_zip_is_a_name_inside_the_output_folder(name, tmp_path):
    """`--zip ../../x.zip` wrote outside -o: anything but a plain file name is refused."""
    out = tmp_path / "a" / "b" / "out"
    code, stdout, stderr, _ = run_bounded(
        ["export", str(find_sample("CT_small.dcm")), "--format", "png", "-o", str(out),
         "--zip", name], tmp_path)
    assert code == 2 and "--zip" in stderr and "Traceback" not in stderr, stderr
    assert not [p for p in tmp_path.rglob("*.zip")]


def _children(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.append(int(entry))
    return found


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_a_killed_run_leaves_no_process_after_a_worker_died(tmp_path):
    """A worker dies, the pool is rebuilt (forkserver), then the run is killed: the
    forkserver, its workers and the resource tracker used to outlive it, holding its
    stdout open."""
    import time

    sys.path.insert(0, str(Path(__file__).parents[1] / "tools"))
    from make_series import make_series

    src = make_series(tmp_path / "s", 150, 512)[0].parent
    proc = subprocess.Popen([sys.executable, "-m", "dicompress", "transcode", str(src), "--to",
                             "j2k", "-o", str(tmp_path / "out"), "--jobs", "2"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        deadline = time.monotonic() + 30
        while len(_children(proc.pid)) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        os.kill(_children(proc.pid)[0], signal.SIGKILL)  # a worker dies
        while len(_session_members(proc.pid)) < 4 and time.monotonic() < deadline:
            time.sleep(0.1)  # the rebuilt pool: forkserver and workers
        time.sleep(0.5)  # (killed sooner or later, nothing may stay: see die_with_parent)
        assert proc.poll() is None, "the run ended before the test could kill it"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        gone = time.monotonic() + 10
        while _session_members(proc.pid) and time.monotonic() < gone:
            time.sleep(0.1)
        assert not _session_members(proc.pid)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)


@pytest.mark.parametrize("target", ["codestream", "file"])
def test_the_checks_fuzz_smoke(target):
    """CI's short run of tools/fuzz_checks.py (a long run is done by hand): every mutated
    codestream or file ends in one of our errors or passes, nothing else."""
    tool = Path(__file__).parents[1] / "tools" / "fuzz_checks.py"
    proc = subprocess.run([sys.executable, str(tool), target, "5"], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]
    assert " 0 findings" in proc.stdout


def test_a_plain_pydicom_decode_of_a_size_bomb_raises():
    """With `register(check=True)`, the RLE decoders pydicom has (ours, pylibjpeg-rle's
    which aborts on a failed allocation) run behind the expansion check too."""
    from pydicom.pixels import get_decoder

    from dicompress.pipeline.codestream import CHECKED_SYNTAXES, check_frame
    from dicompress.plugins import register

    frame = b"\0" * 64 + b"\xff\0" * 8
    with pytest.raises(CorruptPixelData, match="can decode to 5120 at most"):
        check_frame(frame, "1.2.840.10008.1.2.5", rows=65535, columns=65535,
                    samples_per_pixel=1, bits_allocated=16)
    decoders = []
    for syntax in CHECKED_SYNTAXES:
        with contextlib.suppress(NotImplementedError):  # not a syntax pydicom 3.0 decodes
            decoders.append(get_decoder(syntax))
    before = {decoder: decoder._available for decoder in decoders}
    rle = get_decoder("1.2.840.10008.1.2.5")
    assert not any(getattr(f, "codestream_checked", False) for f in rle._available.values())
    try:
        register(check=True)
        assert list(rle._available) == list(before[rle])
        assert all(getattr(f, "codestream_checked", False) for f in rle._available.values())
    finally:
        for decoder, plugins in before.items():  # this process's pydicom as it was
            decoder._available = plugins


# -- what the checks must not refuse (valid files) ---------------------------------------------
def test_valid_files_at_the_edges_of_the_checks_are_read(tmp_path):
    """An icon's Pixel Data inside a sequence of an object without an image; an empty 1-bit
    segmentation deflated frame by frame (packed, 8 pixels a byte); a flat 4:2:0 colour
    JPEG (it decodes to ~512 samples a byte); our own JPEG output read back."""
    import numpy as np
    import pydicom
    from pydicom.dataset import Dataset

    import dicompress
    from dicompress.pipeline.read import read_header

    ds = pydicom.dcmread(find_sample("rtplan.dcm"))
    icon = Dataset()
    icon.Rows = icon.Columns = 8
    icon.SamplesPerPixel, icon.PhotometricInterpretation = 1, "MONOCHROME2"
    icon.BitsAllocated = icon.BitsStored = 8
    icon.HighBit, icon.PixelRepresentation = 7, 0
    icon.PixelData = bytes(64)
    ds.IconImageSequence = [icon]
    ds.save_as(tmp_path / "icon.dcm")
    read_header(tmp_path / "icon.dcm", any_object=True)

    seg = pydicom.dcmread(find_sample("liver.dcm"))
    seg.PixelData = bytes(len(seg.PixelData))  # empty: every frame deflates to a few bytes
    seg.save_as(tmp_path / "seg.dcm")
    dicompress.transcode_file(tmp_path / "seg.dcm", tmp_path / "seg-df.dcm", "deflate-frames")
    read_header(tmp_path / "seg-df.dcm")
    dicompress.transcode_file(tmp_path / "seg-df.dcm", tmp_path / "seg-back.dcm", "explicit")

    rgb = pydicom.dcmread(find_sample("SC_rgb.dcm"))
    rgb.PixelData = np.zeros((rgb.Rows, rgb.Columns, 3), np.uint8).tobytes()
    small = dicompress.compress(rgb, "jpeg")
    assert small.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.4.50"
    dicompress.decompress(small)  # our own JPEG output is read back


def test_a_bug_in_our_display_code_is_an_internal_error_in_export(tmp_path, monkeypatch):
    """export translates only pydicom's decoders' errors; an error of ours propagates."""
    from dicompress.export import ExportOptions, export
    from dicompress.export import frames as framing

    def broken(*args, **kwargs):
        raise KeyError("window_centre")

    monkeypatch.setattr(framing, "display", broken)
    with pytest.raises(KeyError):
        export([find_sample("CT_small.dcm")], tmp_path / "out", ExportOptions(format="png",
                                                                              jobs=1))


# -- class 5: damage only some commands read ----------------------------------------------------
def _voi_lut_without_data() -> bytes:
    """vlut_04.dcm whose VOI LUT Sequence item has lost its LUT Data (Type 1): export
    rendered with None for the table (AttributeError, exit 70; found by a hostile-input
    probe)."""
    import pydicom

    ds = pydicom.dcmread(find_sample("vlut_04.dcm"))
    del ds.VOILUTSequence[0].LUTData
    buffer = io.BytesIO()
    ds.save_as(buffer)
    return buffer.getvalue()


def _segmented_palette_expanding(indirect: bool | None) -> bytes:
    """gdcm-US-ALOKA-16.dcm whose segmented red table is 2000 linear segments of 65535
    entries (or one such segment and an indirect one copying itself): 16 kB that pydicom
    expands into 131 M list items (10.8 GB, 93 s; exit 70 under a memory cap), or
    recursed without end (exit 70). None: a linear segment of no entries that should
    reach another value (pydicom divides by its length: exit 70)."""
    import pydicom

    ds = pydicom.dcmread(find_sample("gdcm-US-ALOKA-16.dcm"))
    words = ([0, 1, 0, 1, 0, 9] if indirect is None else [0, 1, 0] + (
        [1, 65535, 9] * 2000 if not indirect else [1, 65535, 9, 2, 60000, 0, 0]))
    ds.SegmentedRedPaletteColorLookupTableData = struct.pack(f"<{len(words)}H", *words)
    buffer = io.BytesIO()
    ds.save_as(buffer)
    return buffer.getvalue()


def _green_table_halved() -> bytes:
    """examples_palette.dcm with a Green Palette Color Lookup Table Data half as long as
    the red and blue ones: pydicom's apply_color_lut raised ValueError, reported as an
    internal error (found by mutating gdcm-US-ALOKA-16.dcm)."""
    import pydicom

    ds = pydicom.dcmread(find_sample("examples_palette.dcm"))
    table = ds.GreenPaletteColorLookupTableData
    ds.GreenPaletteColorLookupTableData = table[:len(table) // 4 * 2]
    buffer = io.BytesIO()
    ds.save_as(buffer)
    return buffer.getvalue()


def _file_meta_vr_unknown() -> bytes:
    """CT_small.dcm whose Media Storage SOP Class UID has the VR bytes 'U\\xff': pydicom
    raises NotImplementedError from its value hook while handling its own error; that
    was taken for a bug of ours (exit 70) by transcode and deid, which read the element
    (found by mutating JPEGLSNearLossless_16.dcm)."""
    data = find_sample("CT_small.dcm").read_bytes()
    at = data.index(b"\x02\x00\x02\x00UI") + 4
    return data[:at] + b"U\xff" + data[at + 2:]


def _modality_vr_unknown() -> bytes:
    """CT_small.dcm whose Modality has the VR bytes 'C\\0': pydicom raises
    NotImplementedError when the value is first read, which export, compare and info did
    outside any handler (exit 70; found by mutating JPEG2000_UNC.dcm). Read headers
    convert the values those commands read at once (`read_header(convert=...)`)."""
    data = find_sample("CT_small.dcm").read_bytes()
    at = data.index(b"\x08\x00\x60\x00CS") + 4
    return data[:at] + b"C\0" + data[at + 2:]


def _sop_class_vr_unknown() -> bytes:
    """CT_small.dcm whose SOP Class UID has the VR bytes 'C\\0': compare read it (the US
    colour rule) outside any handler once it no longer converted every value export
    reads (exit 70; found by a review's sweep of every top-level element)."""
    data = find_sample("CT_small.dcm").read_bytes()
    at = data.index(b"\x08\x00\x16\x00UI") + 4
    return data[:at] + b"C\0" + data[at + 2:]


def _functional_group_vr_unknown() -> bytes:
    """CT_small.dcm with a Shared Functional Groups item whose Pixel Value Transformation
    holds a Rescale Slope of VR bytes 'C\\0': compare read it lazily, frame by frame,
    outside any handler (exit 70). Export does not read functional groups."""
    import pydicom

    ds = pydicom.dcmread(find_sample("CT_small.dcm"))
    transformation = pydicom.Dataset()
    transformation.RescaleSlope, transformation.RescaleIntercept = "1", "0"
    group = pydicom.Dataset()
    group.PixelValueTransformationSequence = [transformation]
    ds.SharedFunctionalGroupsSequence = [group]
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    data = out.getvalue()
    at = data.index(b"\x28\x00\x53\x10DS", data.index(b"\x00\x52\x29\x92")) + 4
    return data[:at] + b"C\0" + data[at + 2:]


def _sop_class_empty() -> bytes:
    """CT_small.dcm with an empty SOP Class UID (Type 1): the writer handed it to pydicom's
    File Meta check, whose AttributeError was taken for a bug of ours (exit 70; found by
    mutating attribute values)."""
    import pydicom

    ds = pydicom.dcmread(find_sample("CT_small.dcm"))
    ds.SOPClassUID = ""
    out = io.BytesIO()
    ds.save_as(out)
    return out.getvalue()


#: case -> (its bytes, the reason, the commands that read what is damaged)
DAMAGED_WHERE_READ = {
    "sop-class-empty": (_sop_class_empty, "no SOP Class UID: a Part 10 file names it",
                        ["transcode", "transcode-j2"]),
    "sop-class-vr-unknown": (_sop_class_vr_unknown,
                             "cannot be parsed as DICOM (NotImplementedError: Unknown Value "
                             "Representation", ["transcode", "transcode-j2", "deid", "export",
                                                "compare"]),
    "functional-group-vr-unknown": (_functional_group_vr_unknown,
                                    "cannot be parsed as DICOM (NotImplementedError: Unknown "
                                    "Value Representation", ["transcode", "compare"]),
    "modality-vr-unknown": (_modality_vr_unknown,
                            "cannot be parsed as DICOM (NotImplementedError: Unknown Value "
                            "Representation", None),
    "voi-lut-without-data": (_voi_lut_without_data,
                             "the VOI LUT Sequence item has no LUT Data", ["export"]),
    "segmented-palette-expanding": (lambda: _segmented_palette_expanding(False),
                                    "palette table expands past 1,048,576 entries", ["export"]),
    "segmented-palette-zero-run": (lambda: _segmented_palette_expanding(None),
                                   "the palette colour lookup tables cannot be applied "
                                   "(ZeroDivisionError", ["export"]),
    "segmented-palette-copied": (lambda: _segmented_palette_expanding(True),
                                 "the segmented red palette table cannot be expanded: "
                                 "indirect segments nested deeper", ["export"]),
    "palette-tables-differ": (_green_table_halved,
                              "the palette colour lookup tables cannot be applied", ["export"]),
    # RLE segments that hold more than the 2 columns said: pylibjpeg-rle (Rust) panics,
    # and a PyO3 PanicException is a BaseException, past every `except Exception`, and
    # cannot be pickled back from export's decoding process (exit 70 before)
    "rle-segments-overflow": (lambda: _with("rtdose_rle.dcm", Columns=2),
                              "pixel data cannot be decoded", ["export", "compare"]),
    "file-meta-vr-unknown": (_file_meta_vr_unknown,
                             "cannot be parsed as DICOM (NotImplementedError: Unknown Value "
                             "Representation", ["transcode", "transcode-j2", "deid"]),
}


@pytest.mark.parametrize("case", sorted(DAMAGED_WHERE_READ))
def test_damage_is_the_files_wherever_pydicom_refuses_it(case, refused):
    """A value pydicom refuses (the palette's tables for display, a VR it does not know
    in an element only some commands read) is the file's damage: exit 1 naming the
    file, never an internal error (exit 70)."""
    assert_refused(refused, case)


@pytest.mark.parametrize("command", ["export", "compare-json"])
def test_a_path_the_command_needs_that_cannot_be_written_stops_it_in_one_line(
        command, tmp_path, capsys):
    """An output under /proc: the OSError escaped main() as a traceback with exit 1 ("some
    files failed"); it is one line naming the path, exit 3 (stopped), as for a full disk."""
    from dicompress.cli import main
    from dicompress.errors import EXIT_STOPPED

    sample = str(find_sample("CT_small.dcm"))
    argv = {"export": ["export", sample, "--format", "png", "-o", "/proc/dicompress-nope"],
            "compare-json": ["compare", sample, "--codecs", "rle", "--json",
                             "/proc/dicompress-nope.json"]}[command]
    assert main(argv) == EXIT_STOPPED
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if "/proc/dicompress-nope" in line]
    assert len(lines) == 1 and lines[0].startswith("dicompress: /proc/dicompress-nope"), err


def test_an_error_without_a_message_still_says_why(monkeypatch):
    """pydicom's MemoryError (a frame of the length a damaged table gives) has no message:
    'pixel data cannot be decoded: ' said nothing, and the parser's translation failed on
    it (IndexError: an internal error, exit 70)."""
    from dicompress.errors import reason_of
    from dicompress.pipeline.frames import decoders_reason
    from dicompress.pipeline.read import foreign_error

    assert reason_of(MemoryError()).startswith("out of memory")
    assert reason_of(ValueError("")) == "ValueError, without a message"
    assert reason_of(ValueError("first\nsecond")) == "first"
    every = ("Unable to decode as exceptions were raised by all available plugins:\n"
             "  pylibjpeg: \n  gdcm: bad marker\n")
    assert decoders_reason(RuntimeError(every)) == (
        "pylibjpeg: no reason given (out of memory?); gdcm: bad marker")
    import pydicom.filereader

    def out_of_memory(*args, **kwargs):
        raise MemoryError()

    monkeypatch.setattr(pydicom.filereader, "read_partial", out_of_memory)
    try:  # an empty message raised inside pydicom's parser
        pydicom.filereader.dcmread(find_sample("CT_small.dcm"))
    except MemoryError as exc:
        translated = foreign_error(exc)
    assert "cannot be parsed as DICOM (MemoryError: out of memory" in str(translated)


def _segmented_table(draw_ops, eight: bool) -> list[int]:
    words = [0, 2, 3, 4]
    for op, a, b in draw_ops:
        if op == 0:
            words += [0, a % 5] + [b % 9] * (a % 5)
        elif op == 1:
            words += [1, a, b % 9]
        else:
            offset = b % (len(words) + 4)
            words += [2, a % 4 + 1] + ([offset & 0xFF, offset >> 8, 0, 0] if eight
                                        else [offset, 0])
    return words


@settings(max_examples=400, deadline=None)
@given(ops=st.lists(st.tuples(st.integers(0, 2), st.integers(0, 60), st.integers(0, 300)),
                    max_size=7),
       eight=st.booleans(), pad=st.booleans(), little=st.booleans())
def test_a_segmented_table_is_counted_as_pydicom_expands_it(ops, eight, pad, little):
    """export counts a segmented palette table's entries before pydicom expands it (16 kB
    once expanded to 131 M list items): the count is pydicom's, or the table is refused
    where pydicom recursed without end (a table whose indirect segment copies itself)."""
    from pydicom.pixels.processing import _expand_segmented_lut

    from dicompress.export.frames import segmented_entries

    words = _segmented_table(ops, eight) + ([0] if pad else [])
    if eight and max(words) > 255:
        return
    try:
        expected = len(_expand_segmented_lut(  # an 8-bit table's offsets: in byte order
            tuple(words), ("<" if little else ">") + ("B" if eight else "H")))
    except RecursionError:
        expected = None
    except (ValueError, IndexError, ZeroDivisionError):
        return  # pydicom refuses it (export says so: `to_rgb8`)
    array = np.array(words, dtype="u1" if eight else "<u2")
    if expected is None:
        with pytest.raises(ValueError):
            segmented_entries(array, little=little)
    else:
        assert segmented_entries(array, little=little) == expected


@pytest.mark.parametrize("name", ["gdcm-US-ALOKA-16.dcm", "gdcm-US-ALOKA-16_big.dcm"])
def test_real_segmented_palettes_are_counted_in_their_byte_order(name):
    """The big endian copy's tables are read big endian (as pydicom reads them): counted
    little endian they gave 512, 15,634 and 256 entries, and a valid table could fail."""
    import pydicom

    from dicompress.export import frames

    seen = []
    real = frames.segmented_entries
    with pytest.MonkeyPatch.context() as m:
        m.setattr(frames, "segmented_entries",
                  lambda words, **kw: seen.append(real(words, **kw)) or seen[-1])
        frames._check_segmented(pydicom.dcmread(find_sample(name)))
    assert seen == [65536, 65536, 65536]


def test_an_extended_offset_table_is_checked_whatever_its_vr(tmp_path):
    """A valid Extended Offset Table passes; one written as UL (two values a frame, so
    its length agreed) escaped the check as a bare ValueError (exit 70, second review of
    the offsets' bound)."""
    import pydicom
    from pydicom.encaps import encapsulate_extended, generate_frames

    from dicompress.errors import CorruptPixelData
    from dicompress.pipeline.read import read_header

    ds = pydicom.dcmread(find_sample("emri_small_jpeg_2k_lossless.dcm"))
    frames = list(generate_frames(ds.PixelData, number_of_frames=int(ds.NumberOfFrames)))
    data, offsets, lengths = encapsulate_extended(frames)
    ds.PixelData = data
    ds["PixelData"].is_undefined_length = True
    ds.ExtendedOffsetTable, ds.ExtendedOffsetTableLengths = offsets, lengths
    ds.save_as(tmp_path / "valid.dcm")
    assert "ExtendedOffsetTable" in read_header(tmp_path / "valid.dcm")
    del ds["ExtendedOffsetTable"]
    ds.add_new(0x7FE00001, "UL", list(struct.unpack(f"<{len(offsets) // 4}L", offsets)))
    ds.save_as(tmp_path / "ul.dcm")
    with pytest.raises(CorruptPixelData, match="ExtendedOffsetTable is not 8-byte values"):
        read_header(tmp_path / "ul.dcm")


def test_segmented_tables_beside_plain_ones_are_not_read(tmp_path):
    """pydicom applies the plain palette tables when a file has them and never expands
    the segmented ones: a huge segmented table beside them does not fail the file (it
    did, third review), and segmented data that is not bytes is refused as pydicom does."""
    import pydicom

    from dicompress.export import ExportOptions, export
    from dicompress.export.frames import _check_segmented

    ds = pydicom.dcmread(find_sample("examples_palette.dcm"))
    ds.SegmentedRedPaletteColorLookupTableData = struct.pack("<6003H", 0, 1, 0,
                                                             *[1, 65535, 9] * 2000)
    ds.save_as(tmp_path / "both.dcm")
    result = export([tmp_path / "both.dcm"], tmp_path / "out", ExportOptions(format="png"))
    assert not result.failed and len(result.outputs) == 1
    del ds.RedPaletteColorLookupTableData
    ds.SegmentedRedPaletteColorLookupTableData = "not bytes"
    with pytest.raises(TypeError, match="not bytes"):
        _check_segmented(ds)
