"""Archive-scale `transcode`: sources, journal, resume, in place, kill -9, disk full,
permissions, Dask. Every check compares pixels with hashes taken before the run."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import re
import shutil
import signal
import sqlite3
import stat
import subprocess
import sys
import time
from pathlib import Path

import blake3
import pydicom
import pytest
from pydicom.uid import ExplicitVRLittleEndian, JPEG2000Lossless, RLELossless

from conftest import require_tool
from dicompress.batch import journal as J
from dicompress.batch.runner import BatchOptions, BatchRun
from dicompress.batch.sources import iter_sources
from dicompress.batch.worker import Task, codec_config, run_task
from dicompress.cli import main
from dicompress.codecs import get_codec
from dicompress.samples import find_sample

sys.path.insert(0, str(Path(__file__).parent.parent / "tools"))
from make_series import make_series  # noqa: E402

CLI = [sys.executable, "-m", "dicompress"]


def pixel_hash(path: Path) -> str:
    ds = pydicom.dcmread(path)
    return hashlib.sha256(ds.pixel_array.tobytes()).hexdigest()


def syntax(path: Path) -> str:
    return str(pydicom.dcmread(path, stop_before_pixels=True).file_meta.TransferSyntaxUID)


def temporaries(root: Path) -> list[Path]:
    return list(root.rglob("*.dicompress-tmp"))


def journal_rows(path: Path) -> list[dict]:
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    rows = [dict(zip(J.COLUMNS, r)) for r in
            db.execute(f"SELECT {', '.join(J.COLUMNS)} FROM files ORDER BY path")]
    db.close()
    return rows


def run_json(capsys, *args) -> tuple[int, dict]:
    code = main(["transcode", *map(str, args), "--json"])
    out = capsys.readouterr().out
    return code, json.loads(out)


@pytest.fixture
def series(tmp_path) -> Path:
    return make_series(tmp_path / "series", 12, 64)[0].parent


@pytest.fixture
def mixed(tmp_path) -> Path:
    """A tree with images, an RLE image, a non-image, a non-DICOM file and a symlink loop."""
    root = tmp_path / "mixed"
    (root / "a" / "b").mkdir(parents=True)
    shutil.copy(find_sample("CT_small.dcm"), root / "a" / "ct.dcm")
    shutil.copy(find_sample("MR_small.dcm"), root / "a" / "b" / "mr.dcm")
    shutil.copy(find_sample("MR_small_RLE.dcm"), root / "a" / "b" / "mr_rle.dcm")
    shutil.copy(find_sample("rtplan.dcm"), root / "plan.dcm")
    (root / "readme.txt").write_text("not DICOM")
    os.symlink(root, root / "a" / "loop")  # a symlink loop
    os.symlink(root / "a" / "ct.dcm", root / "ct_link.dcm")  # the same file twice
    return root


# -- sources ----------------------------------------------------------------------------------
def test_sources_trees_globs_lists(mixed, tmp_path):
    listed = tmp_path / "list.txt"
    listed.write_text(f"{mixed / 'plan.dcm'}\n\n{mixed / 'a' / 'ct.dcm'}\n")
    found = [s.relative.as_posix() for s in iter_sources([mixed], str(listed))]
    # the tree once (the loop is not followed into itself), then the list
    assert sorted(found[:6]) == ["a/b/mr.dcm", "a/b/mr_rle.dcm", "a/ct.dcm", "ct_link.dcm",
                                 "plan.dcm", "readme.txt"]
    assert found[6:] == [str(mixed / "plan.dcm")[1:], str(mixed / "a" / "ct.dcm")[1:]]
    globbed = [s.relative.as_posix() for s in iter_sources([f"{mixed}/a/**/*.dcm"])]
    # relative to the fixed part; the link up to the root is followed once (the journal
    # later drops ct_link.dcm as the same file as ct.dcm)
    assert sorted(globbed) == ["b/mr.dcm", "b/mr_rle.dcm", "ct.dcm", "loop/ct_link.dcm",
                               "loop/plan.dcm"]


def test_tree_run_counts_every_kind(mixed, tmp_path, capsys):
    out = tmp_path / "out"
    code, summary = run_json(capsys, mixed, "--to", "rle", "-o", out, "--jobs", "2",
                             "--only-images")
    assert code == 0
    # ct, mr transcoded; the RLE file skipped as already RLE; plan has no pixels; readme
    # is not DICOM; the symlinked copy of ct is a duplicate
    assert summary["files"] == {"ok": 2, "already": 1, "not-image": 1, "not-dicom": 1}
    assert summary["copied_unchanged"] == {}
    assert summary["duplicates"] == 1
    # the walk meets the link (top folder first) before a/ct.dcm, which is then the duplicate
    assert syntax(out / "ct_link.dcm") == RLELossless and not (out / "a" / "ct.dcm").exists()
    assert pixel_hash(out / "a" / "b" / "mr.dcm") == pixel_hash(mixed / "a" / "b" / "mr.dcm")
    assert not (out / "a" / "b" / "mr_rle.dcm").exists()
    rows = {Path(r["path"]).name: r for r in journal_rows(out / J.JOURNAL_NAME)}
    assert rows["ct.dcm"]["status"] == "ok" and rows["mr_rle.dcm"]["status"] == "already"
    # BLAKE3 by default
    assert rows["ct.dcm"]["hash_in"] == blake3.blake3((mixed / "a" / "ct.dcm").read_bytes()).hexdigest()
    assert rows["ct.dcm"]["hash_out"] == blake3.blake3((out / "ct_link.dcm").read_bytes()).hexdigest()
    assert rows["ct.dcm"]["syntax_out"] == RLELossless

    # --force transcodes the RLE file as well (a new journal: this is a new run)
    code, summary = run_json(capsys, mixed / "a" / "b", "--to", "rle", "-o", tmp_path / "forced",
                             "--force", "--jobs", "1")
    assert code == 0 and summary["files"] == {"ok": 2}
    assert pixel_hash(tmp_path / "forced" / "mr_rle.dcm") == pixel_hash(mixed / "a" / "b" / "mr_rle.dcm")


def test_from_list_on_stdin(series, tmp_path):
    paths = sorted(series.iterdir())[:3]
    out = tmp_path / "out"
    proc = subprocess.run(CLI + ["transcode", "--from-list", "-", "--to", "rle", "-o", str(out),
                                 "--json", "--jobs", "1"],
                          input="\n".join(map(str, paths)), capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["files"] == {"ok": 3}
    for p in paths:  # absolute paths are mirrored below the output without their root
        assert syntax(out / str(p)[1:]) == RLELossless


# -- journal, resume, report ------------------------------------------------------------------
def test_verify_file_is_a_setting_of_the_run(series, tmp_path, capsys):
    """--verify file is recorded in the journal: a resume must ask for the same checks."""
    out = tmp_path / "out"
    code, summary = run_json(capsys, series, "--to", "j2k", "-o", out, "--verify", "file",
                             "--jobs", "1")
    assert code == 0 and summary["files"] == {"ok": 12}
    assert main(["transcode", str(series), "--to", "j2k", "-o", str(out), "--resume"]) == 2
    assert "decode_check differ" in capsys.readouterr().err
    code, summary = run_json(capsys, series, "--to", "j2k", "-o", out, "--resume",
                             "--verify", "file")
    assert code == 0 and summary["done_before"] == 12
    with pytest.raises(SystemExit) as exited:  # one or the other
        main(["transcode", str(series), "--to", "j2k", "-o", str(tmp_path / "x"),
              "--verify", "file", "--no-verify"])
    assert exited.value.code == 2 and "not allowed with" in capsys.readouterr().err


def test_resume_of_a_finished_run_does_nothing(series, tmp_path, capsys):
    out = tmp_path / "out"
    assert run_json(capsys, series, "--to", "rle", "-o", out, "--jobs", "2")[0] == 0
    stamps = {p: p.stat().st_mtime_ns for p in out.glob("*.dcm")}
    # the journal is there: without --resume that is refused ...
    assert main(["transcode", str(series), "--to", "rle", "-o", str(out)]) == 2
    assert "add --resume" in capsys.readouterr().err
    # ... with other settings too ...
    assert main(["transcode", str(series), "--to", "j2k", "-o", str(out), "--resume"]) == 2
    assert "other settings" in capsys.readouterr().err
    # ... and with --resume nothing is left to do
    code, summary = run_json(capsys, series, "--to", "rle", "-o", out, "--resume")
    assert code == 0 and summary["files"] == {} and summary["done_before"] == 12
    assert {p: p.stat().st_mtime_ns for p in out.glob("*.dcm")} == stamps
    # an output deleted since is made again
    victim = sorted(out.glob("*.dcm"))[3]
    victim.unlink()
    code, summary = run_json(capsys, series, "--to", "rle", "-o", out, "--resume")
    assert summary["files"] == {"ok": 1} and summary["done_before"] == 11
    assert syntax(victim) == RLELossless


def test_blake3_digests_agree_with_b3sum(series, tmp_path, capsys):
    """The journal's default hash is the BLAKE3 of b3sum (the reference implementation's
    command-line tool, Debian's b3sum), for inputs and outputs; a resume must keep the hash."""
    b3sum = require_tool("b3sum")
    # the direct path (the series), the general path (implicit VR), a skipped file
    shutil.copy(find_sample("MR_small_implicit.dcm"), series / "implicit.dcm")
    shutil.copy(find_sample("MR_small_RLE.dcm"), series / "already.dcm")
    out = tmp_path / "out"
    code, summary = run_json(capsys, series, "--to", "rle", "-o", out, "--jobs", "2")
    assert code == 0 and summary["files"] == {"ok": 13, "already": 1}
    rows = journal_rows(out / J.JOURNAL_NAME)
    # the skipped file is copied unchanged to the output: its copy is hashed too
    paths = [r["path"] for r in rows] + [r["destination"] for r in rows]
    listed = subprocess.run([b3sum, *paths], capture_output=True, text=True, check=True).stdout
    expected = {path: digest for digest, path in (line.split("  ", 1) for line in listed.splitlines())}
    for r in rows:
        assert r["hash_in"] == expected[r["path"]]
        assert r["hash_out"] == expected[r["destination"]]
    with pytest.raises(SystemExit):
        main(["transcode", str(series), "--to", "rle", "-o", str(out), "--hash", "md5"])
    assert main(["transcode", str(series), "--to", "rle", "-o", str(out), "--resume",
                 "--hash", "sha256"]) == 2  # other settings: refused, and which
    assert "hash differ" in capsys.readouterr().err
    # a journal from before --hash (sha256, not recorded) resumes without --hash
    db = sqlite3.connect(out / J.JOURNAL_NAME)
    settings = json.loads(db.execute("SELECT value FROM run WHERE key = 'settings'").fetchone()[0])
    del settings["hash"]
    db.execute("UPDATE run SET value = ? WHERE key = 'settings'", (json.dumps(settings),))
    db.commit()
    db.close()
    code, summary = run_json(capsys, series, "--to", "rle", "-o", out, "--resume")
    assert code == 0 and summary["done_before"] == 14


def test_options_are_not_changed_by_a_run(series, tmp_path):
    """The hash a run records is resolved per run (the journal's on resume): an options
    object used again starts from what it says."""
    options = BatchOptions(target="rle", output=tmp_path / "out", jobs=1)
    run = BatchRun(iter_sources([series]), options)
    assert run.run().counts == {"ok": 12}
    assert options.hash is None and run.hash == "blake3"


def test_report_exports_the_journal(series, tmp_path, capsys):
    out = tmp_path / "out"
    assert run_json(capsys, series, "--to", "rle", "-o", out, "--jobs", "1",
                    "--hash", "sha256")[0] == 0
    journal = out / J.JOURNAL_NAME
    assert main(["report", str(journal), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["settings"]["codec"]["name"] == "rle" and data["settings"]["hash"] == "sha256"
    assert len(data["files"]) == 12 and {f["status"] for f in data["files"]} == {"ok"}
    for f in data["files"]:
        assert f["hash_in"] == hashlib.sha256(Path(f["path"]).read_bytes()).hexdigest()
        assert f["hash_out"] == hashlib.sha256(Path(f["destination"]).read_bytes()).hexdigest()
        assert f["size_out"] == Path(f["destination"]).stat().st_size
    csv_file = tmp_path / "r.csv"
    assert main(["report", str(journal), "--csv", "-o", str(csv_file)]) == 0
    lines = csv_file.read_text().splitlines()
    assert lines[0].split(",") == list(J.COLUMNS) and len(lines) == 13
    assert main(["report", str(journal)]) == 0
    assert "ok" in capsys.readouterr().out
    assert main(["report", str(tmp_path / "nope.sqlite")]) == 2


# -- in place ---------------------------------------------------------------------------------
def test_in_place_replaces_only_verified_results(series, capsys):
    before = {p.name: pixel_hash(p) for p in series.glob("*.dcm")}
    code, summary = run_json(capsys, series, "--to", "j2k", "--in-place", "--jobs", "2")
    assert code == 0 and summary["files"] == {"ok": 12}
    for p in series.glob("*.dcm"):
        assert syntax(p) == JPEG2000Lossless and pixel_hash(p) == before[p.name]
    assert not temporaries(series)
    # running again: the files are already J2K, and the journal says so
    code, summary = run_json(capsys, series, "--to", "j2k", "--in-place", "--resume")
    assert summary["done_before"] == 12 and summary["files"] == {}


def _wait_for_ok_rows(journal: Path, count: int, proc: subprocess.Popen, limit: float = 60) -> int:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"the run ended before it could be interrupted: {proc.returncode}")
        if journal.exists():
            try:
                db = sqlite3.connect(f"file:{journal}?mode=ro", uri=True)
                n = db.execute("SELECT COUNT(*) FROM files WHERE status = 'ok'").fetchone()[0]
                db.close()
                if n >= count:
                    return n
            except sqlite3.OperationalError:
                pass
        time.sleep(0.005)
    pytest.fail("the run made no progress")


@pytest.mark.parametrize("done_before_kill, whole_group", [
    (1, False), (60, True), (150, False), (250, True)],
    ids=["start", "early-group", "middle", "late-group"])
def test_kill_9_in_place_then_resume(tmp_path, done_before_kill, whole_group):
    """kill -9 the run (alone, or with its workers as in a power cut) at several points;
    every file is then its original or its verified result, and --resume finishes.
    FILES leaves work after the last kill point: results are committed in groups (before
    each task is sent, every 64 results), and the last ones only at the end."""
    FILES = 600
    folder = tmp_path / "archive"
    files = make_series(folder, FILES, 96, seed=done_before_kill)
    pixels = {p.name: pixel_hash(p) for p in files}
    raw = {p.name: p.read_bytes() for p in files}
    command = CLI + ["transcode", str(folder), "--to", "rle", "--in-place", "-q", "--jobs", "2"]
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            start_new_session=True)
    try:
        _wait_for_ok_rows(folder / J.JOURNAL_NAME, done_before_kill, proc)
    finally:
        if whole_group:
            os.killpg(proc.pid, signal.SIGKILL)
        else:
            proc.kill()
        proc.wait()
    time.sleep(0.3)  # workers die with their parent (PR_SET_PDEATHSIG)

    converted = 0
    for p in files:  # now: each file is either untouched or the verified result
        if p.read_bytes() == raw[p.name]:
            continue
        assert syntax(p) == RLELossless and pixel_hash(p) == pixels[p.name], p
        converted += 1
    assert 0 < converted < FILES

    resumed = subprocess.run(command + ["--resume", "--json"], capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    summary = json.loads(resumed.stdout)
    assert summary["done_before"] + summary["files"]["ok"] == FILES
    for p in files:
        assert syntax(p) == RLELossless, p
        assert pixel_hash(p) == pixels[p.name], p
    assert not temporaries(folder)
    rows = journal_rows(folder / J.JOURNAL_NAME)
    assert len(rows) == FILES and {r["status"] for r in rows} == {"ok"}


# -- failures ---------------------------------------------------------------------------------
def test_corrupt_and_unreadable_files_are_reported_and_skipped(series, tmp_path):
    src = series
    shutil.copy(find_sample("MR_truncated.dcm"), src / "truncated.dcm")
    locked = src / "slice0003.dcm"
    locked.chmod(0)
    out = tmp_path / "out"
    command = CLI + ["transcode", str(src), "--to", "rle", "-o", str(out), "--json", "--jobs", "2"]
    if os.geteuid() == 0:  # root reads everything: drop the capabilities that allow it
        if not shutil.which("setpriv"):
            pytest.skip("running as root without setpriv: cannot meet a permission error")
        caps = "-dac_override,-dac_read_search"
        command = ["setpriv", "--bounding-set", caps, "--inh-caps", caps] + command
    proc = subprocess.run(command, capture_output=True, text=True)
    assert proc.returncode == 1, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["files"] == {"ok": 11, "failed": 2}
    reasons = {Path(f["path"]).name: f["reason"] for f in summary["failures"]}
    assert "Permission denied" in reasons["slice0003.dcm"]
    assert "truncated.dcm" in reasons["truncated.dcm"]
    assert not (out / "slice0003.dcm").exists() and not (out / "truncated.dcm").exists()
    assert not temporaries(out)


def test_a_file_that_keeps_changing_while_transcoding_is_left_alone(series, monkeypatch):
    """Another program appends each time the file is read: it is read again at most
    CHANGE_RETRIES more times, then left with every byte the other program wrote."""
    import dicompress.batch.worker as worker
    from dicompress.batch.worker import CHANGE_RETRIES

    victim = sorted(series.glob("*.dcm"))[0]
    real = worker.transcode_file

    def meddle(source, *args, **kwargs):
        with open(source, "ab") as fp:  # another program appends while we work
            fp.write(b"\0\0")
        return real(source, *args, **kwargs)

    monkeypatch.setattr(worker, "transcode_file", meddle)
    before = victim.read_bytes()
    task = Task(path=str(victim), destination=str(victim), codec=codec_config(get_codec("rle")))
    outcome = run_task(task)
    assert outcome.status == "failed" and "changed while being transcoded" in outcome.reason
    # the other program's writes survive
    assert victim.read_bytes() == before + b"\0\0" * (CHANGE_RETRIES + 1)
    assert not temporaries(series)


def _full_at(n: int):
    """An os.fsync whose n-th call on a regular file fails with ENOSPC."""
    calls = {"n": 0}
    real_fsync = os.fsync

    def fsync(fd):
        if stat.S_ISREG(os.fstat(fd).st_mode):
            calls["n"] += 1
            if calls["n"] == n:
                raise OSError(errno.ENOSPC, "No space left on device")
        return real_fsync(fd)

    return fsync


def test_disk_full_stops_cleanly_with_originals_intact(series, monkeypatch):
    """ENOSPC injected at the fourth file (where delayed allocation reports it: the fsync of
    the written file): the run stops taking new files, the file being written is left as
    the original, and nothing partial remains."""
    originals = {p.name: p.read_bytes() for p in series.glob("*.dcm")}
    monkeypatch.setattr(os, "fsync", _full_at(4))
    run = BatchRun(iter_sources([series]), BatchOptions(target="rle", in_place=True, jobs=1),
                   journal_hint=series)
    summary = run.run()
    assert summary.stopped and summary.exit_code == 3
    # the files already handed to the worker (--jobs 1 is a worker process too) finish
    assert summary.counts["failed"] == 1 and summary.counts["ok"] >= 3
    assert sum(summary.counts.values()) < len(originals)
    assert "disk full" in summary.failures[0][1]
    changed = [p for p in series.glob("*.dcm") if p.read_bytes() != originals[p.name]]
    assert len(changed) == summary.counts["ok"] and all(syntax(p) == RLELossless for p in changed)
    assert not temporaries(series)


@pytest.fixture
def tiny_filesystem(tmp_path):
    mount = tmp_path / "tiny"
    mount.mkdir()
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1500k", "tmpfs", str(mount)],
                          capture_output=True)
    if proc.returncode != 0:
        pytest.skip("cannot mount a small tmpfs here (needs root with CAP_SYS_ADMIN); the "
                    "injected ENOSPC test covers the logic")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


def test_disk_full_on_a_real_tiny_filesystem(tmp_path, tiny_filesystem):
    series = make_series(tmp_path / "big", 10, 512)[0].parent
    out = tiny_filesystem / "out"
    proc = subprocess.run(CLI + ["transcode", str(series), "--to", "rle", "-o", str(out),
                                 "--json", "--jobs", "1", "--journal", str(tmp_path / "j.sqlite")],
                          capture_output=True, text=True)
    assert proc.returncode == 3, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["stopped"] and summary["files"]["failed"] >= 1
    assert 1 <= summary["files"]["ok"] < 10
    written = sorted(out.glob("*.dcm"))
    assert len(written) == summary["files"]["ok"]
    for p in written:  # what was kept is complete and right
        assert pixel_hash(p) == pixel_hash(series / p.name)
    assert not temporaries(out)


# -- Dask -------------------------------------------------------------------------------------
def test_dask_local_cluster_equals_the_process_pool(series, tmp_path, capsys):
    pytest.importorskip("distributed")
    shutil.copy(find_sample("SC_rgb_2frame.dcm"), series / "rgb.dcm")
    shutil.copy(find_sample("emri_small.dcm"), series / "emri.dcm")  # 10 frames
    pool_out, dask_out = tmp_path / "pool", tmp_path / "dask"
    assert run_json(capsys, series, "--to", "j2k", "-o", pool_out, "--jobs", "2")[0] == 0
    code, summary = run_json(capsys, series, "--to", "j2k", "-o", dask_out, "--jobs", "2",
                             "--scheduler", "local")
    assert code == 0 and summary["files"] == {"ok": 14}
    names = sorted(p.name for p in pool_out.glob("*.dcm"))
    assert names == sorted(p.name for p in dask_out.glob("*.dcm")) and len(names) == 14
    for name in names:
        assert (pool_out / name).read_bytes() == (dask_out / name).read_bytes(), name
    # the client kept the journal: resume through the cluster finds nothing to do
    code, summary = run_json(capsys, series, "--to", "j2k", "-o", dask_out, "--jobs", "2",
                             "--scheduler", "local", "--resume")
    assert code == 0 and summary["done_before"] == 14


def test_usage_errors(series, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:  # argparse: -o and --in-place together
        main(["transcode", str(series), "--to", "rle", "-o", str(tmp_path), "--in-place"])
    assert exit_info.value.code == 2
    assert main(["transcode", "--to", "rle", "-o", str(tmp_path)]) == 2
    assert main(["transcode", str(series), "--to", "rle", "-o", str(tmp_path), "--jobs", "0"]) == 2
    assert main(["transcode", str(series), "--to", "rle", "-o", str(tmp_path / "o"),
                 "--resume"]) == 2
    assert "nothing to resume" in capsys.readouterr().err


def test_in_place_lossy_marks_and_replaces(series, capsys):
    before = {p.name: pydicom.dcmread(p) for p in series.glob("*.dcm")}
    code, summary = run_json(capsys, series, "--to", "j2k-lossy", "--ratio", "8", "--in-place",
                             "--jobs", "2")
    assert code == 0 and summary["files"] == {"ok": 12}
    for p in series.glob("*.dcm"):
        ds, orig = pydicom.dcmread(p), before[p.name]
        assert ds.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.4.91"
        assert ds.LossyImageCompression == "01" and ds.SOPInstanceUID != orig.SOPInstanceUID
        assert ds.SourceImageSequence[0].ReferencedSOPInstanceUID == orig.SOPInstanceUID
        assert ds.pixel_array.shape == orig.pixel_array.shape
    assert not temporaries(series)


def test_plain_log_shows_progress_and_eta(series, capsys):
    from dicompress.cli import progress

    counter = progress.Counter(lambda: iter_sources([series]))
    deadline = time.monotonic() + 10
    while not counter.done and time.monotonic() < deadline:
        time.sleep(0.01)
    assert counter.files == 12 and counter.bytes == sum(p.stat().st_size for p in series.iterdir())
    reporter = progress.LogReporter(counter, quiet=True, json_mode=False, every=0)
    run = BatchRun(iter_sources([series]), BatchOptions(target="rle", in_place=True, jobs=1),
                   journal_hint=series, on_result=reporter.result)
    run.run()
    err = capsys.readouterr().err.splitlines()
    lines = [line for line in err if line.startswith("progress ")]
    assert len(lines) == 12
    assert lines[-1].startswith("progress 12/12 files,") and "ETA 0s" in lines[-1]
    assert "files/s" in lines[0] and "MB/s" in lines[0] and "saved" in lines[0]


# -- from the review of the batch runner ------------------------------------------------------
def test_in_place_keeps_each_files_permissions(series, capsys):
    files = sorted(series.glob("*.dcm"))
    files[0].chmod(0o600)
    files[1].chmod(0o640)
    assert run_json(capsys, series, "--to", "rle", "--in-place", "--jobs", "1")[0] == 0
    assert files[0].stat().st_mode & 0o777 == 0o600
    assert files[1].stat().st_mode & 0o777 == 0o640


def test_disk_full_files_are_taken_again_on_resume(series, monkeypatch):
    pixels = {p.name: pixel_hash(p) for p in series.glob("*.dcm")}
    monkeypatch.setattr(os, "fsync", _full_at(2))
    options = BatchOptions(target="rle", in_place=True, jobs=1)
    assert BatchRun(iter_sources([series]), options, journal_hint=series).run().exit_code == 3
    monkeypatch.undo()  # room again
    resumed = BatchRun(iter_sources([series]),
                       BatchOptions(target="rle", in_place=True, jobs=1, resume=True),
                       journal_hint=series).run()
    # done before the disk filled: the first, and those already handed to the worker
    assert resumed.exit_code == 0 and resumed.done_before >= 1
    assert resumed.counts == {"ok": 12 - resumed.done_before}
    for p in series.glob("*.dcm"):
        assert syntax(p) == RLELossless and pixel_hash(p) == pixels[p.name]


def test_a_worker_that_dies_once_costs_no_file(series, monkeypatch):
    """A worker killed once (as the out-of-memory killer would): every file of its task,
    and of the tasks lost with the pool, is tried again alone and done."""
    import dicompress.batch.worker as worker

    real = worker.transcode_file

    def dies_on_slice5(source, *args, **kwargs):
        if Path(source).name == "slice0005.dcm":
            os.kill(os.getpid(), signal.SIGKILL)
        return real(source, *args, **kwargs)

    # the fork-started workers inherit the patch; the pool rebuilt after the death
    # (forkserver) imports the real code: the death does not come back
    monkeypatch.setattr(worker, "transcode_file", dies_on_slice5)
    summary = BatchRun(iter_sources([series]), BatchOptions(target="rle", in_place=True, jobs=2),
                       journal_hint=series).run()
    assert summary.exit_code == 0 and summary.counts == {"ok": 12} and not summary.failures
    for p in series.glob("*.dcm"):
        assert syntax(p) == RLELossless


@pytest.mark.parametrize("where", ["-o", "in place"])
def test_a_death_mid_write_leaves_no_temporary(series, tmp_path, monkeypatch, where):
    """A worker killed while its output is written (complete, before the rename): the
    file is done again alone, and what the dead worker left half-way is removed."""
    import dicompress.batch.worker as worker

    real = worker.transcode_file

    def dies_before_the_rename(source, *args, before_replace=None, **kwargs):
        def then_dies(tmp):
            if before_replace is not None:
                before_replace(tmp)
            if Path(source).name == "slice0005.dcm":
                os.kill(os.getpid(), signal.SIGKILL)
        return real(source, *args, before_replace=then_dies, **kwargs)

    monkeypatch.setattr(worker, "transcode_file", dies_before_the_rename)
    out = tmp_path / "out"
    place = dict(output=out) if where == "-o" else dict(in_place=True)
    summary = BatchRun(iter_sources([series]), BatchOptions(target="rle", jobs=2, **place),
                       journal_hint=series).run()
    assert summary.counts == {"ok": 12} and summary.exit_code == 0
    folder = out if where == "-o" else series
    assert not [p.name for p in folder.iterdir() if p.name.endswith(".dicompress-tmp")]
    assert all(syntax(p) == RLELossless for p in folder.glob("*.dcm"))


def test_a_file_replaced_before_its_worker_died_is_recorded_done(series, monkeypatch):
    """In place, the death came after the rename: the file is not done twice (it is in
    the target syntax now); the journal says what happened."""
    import dicompress.batch.worker as worker

    real = worker.transcode_file

    def dies_after_the_rename(source, *args, **kwargs):
        result = real(source, *args, **kwargs)
        if Path(source).name == "slice0005.dcm":
            os.kill(os.getpid(), signal.SIGKILL)
        return result

    monkeypatch.setattr(worker, "transcode_file", dies_after_the_rename)
    summary = BatchRun(iter_sources([series]),
                       BatchOptions(target="rle", in_place=True, jobs=2, force=True),
                       journal_hint=series).run()
    assert summary.counts == {"ok": 12} and summary.exit_code == 0
    rows = {Path(r["path"]).name: r for r in journal_rows(series / J.JOURNAL_NAME)}
    assert rows["slice0005.dcm"]["reason"] == "completed before its worker process died"
    assert rows["slice0005.dcm"]["syntax_out"] == RLELossless


DIES_ON = """\
import os, signal
if os.environ.get("DICOMPRESS_TEST_DIES_ON"):  # every process of the run, forkserver too
    import dicompress.batch.worker as worker
    real = worker.transcode_file
    def dies(source, *args, **kwargs):
        if os.path.basename(str(source)) == os.environ["DICOMPRESS_TEST_DIES_ON"]:
            os.kill(os.getpid(), signal.SIGKILL)
        return real(source, *args, **kwargs)
    worker.transcode_file = dies
"""


DIES_STARTING = """\
import os, signal
if os.environ.get("DICOMPRESS_TEST_DIES_STARTING"):  # a worker killed in its set-up
    import dicompress.batch.processes as processes
    real = processes.init_worker
    def init(*args, **kwargs):
        marker = os.environ["DICOMPRESS_TEST_DIES_STARTING"]
        if marker != "always":
            try:
                os.close(os.open(marker, os.O_CREAT | os.O_EXCL))
            except FileExistsError:  # once only
                return real(*args, **kwargs)
        os.kill(os.getpid(), signal.SIGKILL)
    processes.init_worker = init
"""


@pytest.mark.parametrize("how", ["once", "always"])
def test_a_worker_killed_while_the_pool_starts(series, tmp_path, how):
    """Once: the pool is started again and the run is whole. Always: the run says the
    workers could not start (a failure, not an internal error)."""
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(DIES_STARTING)
    marker = "always" if how == "always" else str(tmp_path / "died-once")
    env = {**os.environ, "DICOMPRESS_TEST_DIES_STARTING": marker,
           "PYTHONPATH": os.pathsep.join(filter(None, [str(hook),
                                                        os.environ.get("PYTHONPATH")]))}
    proc = subprocess.run([sys.executable, "-m", "dicompress", "transcode", str(series),
                           "--to", "rle", "-o", str(tmp_path / "out"), "--jobs", "2"],
                          capture_output=True, text=True, timeout=300, env=env)
    if how == "once":
        assert proc.returncode == 0, proc.stderr
        assert len(list((tmp_path / "out").glob("*.dcm"))) == 12
    else:
        assert proc.returncode not in (0, 70), proc.stderr
        assert "died while starting" in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.parametrize("where", ["-o", "--in-place"])
def test_a_file_that_kills_its_worker_costs_that_file_only(series, tmp_path, where):
    """Whatever task it went in and whatever else was in flight, a file that kills every
    worker it meets is the only failure: named, exit 1, the other files done."""
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(DIES_ON)
    env = {**os.environ, "DICOMPRESS_TEST_DIES_ON": "slice0005.dcm",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(hook),
                                                        os.environ.get("PYTHONPATH")]))}
    out = tmp_path / "out"
    place = ["-o", str(out)] if where == "-o" else ["--in-place"]
    proc = subprocess.run([sys.executable, "-m", "dicompress", "transcode", str(series),
                           "--to", "rle", *place, "--jobs", "2", "--json"],
                          capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 1, proc.stderr
    report = json.loads(proc.stdout)
    assert report["files"] == {"ok": 11, "failed": 1}
    [failure] = report["failures"]
    assert Path(failure["path"]).name == "slice0005.dcm"
    # how the first worker ended, where the pool still knew (once in a loaded make test
    # run it did not, and the words were the fallback's: "killed")
    assert re.search(r"died \((SIGKILL|killed)\), and again with this file alone",
                     failure["reason"]), failure["reason"]
    done = out if where == "-o" else series
    assert sorted(p.name for p in done.glob("*.dcm") if syntax(p) == RLELossless) == sorted(
        f"slice{i:04d}.dcm" for i in range(12) if i != 5)


def test_a_dead_worker_in_place_deid_is_not_done_twice(series, monkeypatch):
    """In place, a file its worker had replaced before dying is recognised when the files
    the worker held are sent again (the journal kept it pending): de-identified once, the
    series stays one series."""
    import dicompress.deid as deid
    from dicompress.deid import DeidConfig
    from dicompress.deid.files import deidentify_file as real

    def dies_after_slice5(source, *args, **kwargs):  # replaced, then killed
        result = real(source, *args, **kwargs)
        if Path(source).name == "slice0005.dcm":
            os.kill(os.getpid(), signal.SIGKILL)
        return result

    monkeypatch.setattr(deid, "deidentify_file", dies_after_slice5)
    options = dict(target=None, in_place=True, jobs=2,
                   deid=DeidConfig(key=b"a key long enough for the test run"))
    summary = BatchRun(iter_sources([series]), BatchOptions(**options), journal_hint=series).run()
    assert summary.exit_code == 0 and summary.counts == {"ok": 12}, summary.failures
    rows = {Path(r["path"]).name: r for r in journal_rows(series.parent / f".series{J.JOURNAL_NAME}")}
    assert rows["slice0005.dcm"]["reason"] == "completed before its worker process died"
    done = [pydicom.dcmread(p) for p in sorted(series.glob("*.dcm"))]
    assert all(ds.PatientIdentityRemoved == "YES" for ds in done)
    assert len({ds.StudyInstanceUID for ds in done}) == 1  # never de-identified twice
    assert len({ds.SeriesInstanceUID for ds in done}) == 1


def test_force_resume_does_not_encode_a_replaced_file_twice(series, capsys):
    code, _ = run_json(capsys, series, "--to", "j2k-lossy", "--in-place", "--force", "--jobs", "1")
    assert code == 0
    uids = {p.name: pydicom.dcmread(p).SOPInstanceUID for p in series.glob("*.dcm")}
    # as if the run had been killed after the renames but before recording them
    db = sqlite3.connect(series / J.JOURNAL_NAME)
    db.execute("UPDATE files SET status = 'pending'")
    db.commit()
    db.close()
    code, summary = run_json(capsys, series, "--to", "j2k-lossy", "--in-place", "--force",
                             "--resume", "--jobs", "1")
    assert code == 0 and summary["files"] == {"ok": 12}
    for p in series.glob("*.dcm"):
        ds = pydicom.dcmread(p)
        assert ds.LossyImageCompressionMethod == "ISO_15444_1"  # once: a single value
        assert ds.SOPInstanceUID == uids[p.name]
    rows = journal_rows(series / J.JOURNAL_NAME)
    assert {r["reason"] for r in rows} == {"completed by the interrupted run"}


def test_outputs_stay_inside_the_output_folder(series, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(series)
    listed = tmp_path / "list.txt"
    listed.write_text("slice0000.dcm\n../series/slice0001.dcm\n")
    out = tmp_path / "out"
    code = main(["transcode", "--from-list", str(listed), "--to", "rle", "-o", str(out),
                 "--json", "--jobs", "1"])
    summary = json.loads(capsys.readouterr().out)
    assert code == 1 and summary["files"] == {"ok": 1, "failed": 1}
    assert "outside the output folder" in summary["failures"][0]["reason"]
    assert [p.name for p in tmp_path.glob("*.dcm")] == []


def test_an_output_folder_inside_the_sources_is_not_walked_as_input(series, capsys):
    out = series / "compressed"
    code, summary = run_json(capsys, series, "--to", "rle", "-o", out, "--force", "--jobs", "1")
    assert code == 0 and summary["files"] == {"ok": 12}
    assert not (out / "compressed").exists()


def test_report_of_a_journal_whose_path_needs_quoting(series, tmp_path, capsys):
    journal = tmp_path / "a#b c%20" / "j.sqlite"
    assert run_json(capsys, series, "--to", "rle", "-o", tmp_path / "o", "--journal", journal,
                    "--jobs", "1")[0] == 0
    assert main(["report", str(journal), "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out)["files"]) == 12


def test_unknown_vr_elements_are_written_as_read(tmp_path):
    import struct

    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import generate_uid

    from dicompress.transcode import transcode_file

    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID, ds.SOPInstanceUID = "1.2.840.10008.5.1.4.1.1.7", generate_uid()
    ds.Rows = ds.Columns = 4
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    ds.PixelData = bytes(range(16))
    base = tmp_path / "base.dcm"
    ds.save_as(base, enforce_file_format=True)
    raw = base.read_bytes()
    at = raw.index(b"\x08\x00\x16\x00UI")  # before SOP Class UID: insert (0008,0015) XX
    odd = struct.pack("<HH", 8, 0x15) + b"XX" + struct.pack("<H", 4) + b"abcd"
    src = tmp_path / "xx.dcm"
    src.write_bytes(raw[:at] + odd + raw[at:])
    out = tmp_path / "out.dcm"
    transcode_file(src, out, "rle", verify=False)
    back = pydicom.dcmread(out)
    assert back.Rows == 4 and back.get_item(0x00080015).value == b"abcd"
    assert pixel_hash(out) == pixel_hash(src)


# -- -o yields the complete study ---------------------------------------------------------
def _basic_text_sr(path: Path) -> Path:
    """A Basic Text SR (no pixel data), written by pydicom."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.88.11"
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
    ds.Modality, ds.ValueType, ds.TextValue = "SR", "CONTAINER", ""
    ds.ContentSequence = [Dataset()]
    ds.ContentSequence[0].ValueType = "TEXT"
    ds.ContentSequence[0].TextValue = "No acute findings."
    ds.save_as(path, enforce_file_format=True)
    return path


@pytest.fixture
def study(tmp_path) -> Path:
    """Images to transcode, images already RLE, objects without pixel data, a non-DICOM file."""
    root = tmp_path / "study"
    (root / "ct").mkdir(parents=True)
    (root / "other").mkdir()
    shutil.copy(find_sample("CT_small.dcm"), root / "ct" / "ct.dcm")
    shutil.copy(find_sample("MR_small.dcm"), root / "ct" / "mr.dcm")
    shutil.copy(find_sample("MR_small_RLE.dcm"), root / "ct" / "mr_rle.dcm")
    shutil.copy(find_sample("rtdose_rle.dcm"), root / "other" / "dose_rle.dcm")
    shutil.copy(find_sample("rtplan.dcm"), root / "other" / "plan.dcm")
    _basic_text_sr(root / "other" / "report.dcm")
    (root / "notes.txt").write_text("not DICOM")
    return root


def test_output_folder_holds_the_complete_study(study, tmp_path, capsys):
    out = tmp_path / "out"
    code, summary = run_json(capsys, study, "--to", "rle", "-o", out, "--jobs", "2")
    assert code == 0
    assert summary["files"] == {"ok": 2, "already": 2, "not-image": 2, "not-dicom": 1}
    assert summary["copied_unchanged"] == {"already": 2, "not-image": 2}
    dicom_in = sorted(p.relative_to(study) for p in study.rglob("*.dcm"))
    dicom_out = sorted(p.relative_to(out) for p in out.rglob("*.dcm"))
    assert dicom_out == dicom_in  # as many instances as the source, under the same names
    assert not (out / "notes.txt").exists()  # non-DICOM files stay out
    for name in ("ct/mr_rle.dcm", "other/dose_rle.dcm", "other/plan.dcm", "other/report.dcm"):
        assert (out / name).read_bytes() == (study / name).read_bytes()  # byte-identical
    assert syntax(out / "ct" / "ct.dcm") == RLELossless
    assert not temporaries(out)
    rows = {Path(r["path"]).name: r for r in journal_rows(out / J.JOURNAL_NAME)}
    report = rows["report.dcm"]
    assert report["status"] == "not-image" and "copied unchanged" in report["reason"]
    assert report["hash_out"] == blake3.blake3((study / "other" / "report.dcm").read_bytes()).hexdigest()
    assert report["destination"] == str(out / "other" / "report.dcm")
    assert rows["mr_rle.dcm"]["status"] == "already" and "copied unchanged" in rows["mr_rle.dcm"]["reason"]
    assert rows["notes.txt"]["status"] == "not-dicom" and "copied" not in rows["notes.txt"]["reason"]

    # the summary table counts the copies apart from the skips
    assert main(["transcode", str(study), "--to", "rle", "-o", str(tmp_path / "table")]) == 0
    text = capsys.readouterr().out
    assert "already in the target syntax (copied unchanged)" in text
    assert "without pixel data (copied unchanged)" in text
    # `report` reads the journal as before
    assert main(["report", str(out / J.JOURNAL_NAME), "--csv"]) == 0
    assert "copied unchanged" in capsys.readouterr().out

    # resume: copies done are done while they are there; a deleted copy is made again
    (out / "other" / "plan.dcm").unlink()
    code, summary = run_json(capsys, study, "--to", "rle", "-o", out, "--resume")
    assert code == 0 and summary["done_before"] == 6 and summary["copied_unchanged"] == {"not-image": 1}
    assert (out / "other" / "plan.dcm").read_bytes() == (study / "other" / "plan.dcm").read_bytes()


def test_only_images_and_in_place_copy_nothing(study, tmp_path, capsys):
    out = tmp_path / "images"
    code, summary = run_json(capsys, study, "--to", "rle", "-o", out, "--only-images")
    assert code == 0 and summary["copied_unchanged"] == {}
    assert sorted(p.name for p in out.rglob("*.dcm")) == ["ct.dcm", "mr.dcm"]
    before = {p: p.read_bytes() for p in study.rglob("*.dcm")}
    stamps = {p: p.stat().st_mtime_ns for p in before}
    code, summary = run_json(capsys, study, "--to", "rle", "--in-place",
                             "--journal", tmp_path / "j.sqlite")
    assert code == 0 and summary["copied_unchanged"] == {}
    for path in ("ct/mr_rle.dcm", "other/plan.dcm", "other/report.dcm"):
        p = study / path
        assert p.read_bytes() == before[p] and p.stat().st_mtime_ns == stamps[p]


def test_copy_that_reads_back_different_fails_the_file(study, tmp_path, monkeypatch):
    """A copy whose bytes differ from the original's never takes the output's name."""
    import dicompress.batch.worker as worker

    real = worker.file_digest
    calls = []

    def digest(path, name):  # the second digest (the copy read back) differs
        calls.append(path)
        return real(path, name) + ("x" if len(calls) == 2 else "")

    monkeypatch.setattr(worker, "file_digest", digest)
    destination = tmp_path / "out" / "plan.dcm"
    outcome = run_task(Task(path=str(study / "other" / "plan.dcm"), destination=str(destination),
                            codec=codec_config(get_codec("rle")), copy_unchanged=True))
    assert outcome.status == "failed" and "reads back different bytes" in outcome.reason
    assert not destination.exists() and not temporaries(tmp_path / "out")


# -- loss in the journal ------------------------------------------------------------------------
def test_lossy_runs_record_their_loss_per_file_and_report_shows_the_worst(series, tmp_path,
                                                                          capsys):
    """Each lossy output's worst errors are in its journal row; the worst error in HU is
    recomputed here from the files with pydicom (Rescale Slope/Intercept applied)."""
    import numpy as np

    out = tmp_path / "out"
    code, _ = run_json(capsys, series, "--to", "j2k-lossy", "--ratio", "20", "-o", out,
                       "--jobs", "1")
    assert code == 0
    db = J.open_read_only(out / J.JOURNAL_NAME)
    rows = [dict(zip(J.COLUMNS, row)) for row in J.file_rows(db)]
    assert len(rows) == 12
    for row in rows:
        source, output = pydicom.dcmread(row["path"]), pydicom.dcmread(row["destination"])
        slope, intercept = float(source.RescaleSlope), float(source.RescaleIntercept)
        hu = [ds.pixel_array.astype(float) * slope + intercept for ds in (source, output)]
        assert row["max_abs_error_modality"] == pytest.approx(np.abs(hu[0] - hu[1]).max())
        assert row["max_error"] == np.abs(source.pixel_array.astype(int)
                                          - output.pixel_array.astype(int)).max() > 0
        assert 0 <= row["max_display_error"] <= 255 and row["display_window"]
        assert 0 < row["psnr"] < 200  # dB, peak = the frame's dynamic range
    worst = max(rows, key=lambda r: r["max_display_error"])
    db.close()
    assert main(["report", str(out / J.JOURNAL_NAME)]) == 0
    text = capsys.readouterr().out
    modality = max(r["max_abs_error_modality"] for r in rows)
    assert (f"lossy    12 files; worst frame PSNR {min(r['psnr'] for r in rows):.1f} dB; "
            f"worst error {modality:.4g} in the modality's units") in text
    assert f"worst display error {worst['max_display_error']:.4g} levels of 255 at " in text


def _schema_1_journal(path: Path, source: Path) -> None:
    """A journal as written before the loss columns (schema 1), holding one file."""
    db = sqlite3.connect(path)
    db.executescript("""
        CREATE TABLE run (key TEXT PRIMARY KEY, value TEXT NOT NULL);
        CREATE TABLE files (path TEXT PRIMARY KEY, run INTEGER, destination TEXT UNIQUE,
            size_in INTEGER, mtime_in INTEGER, hash_in TEXT, size_out INTEGER,
            mtime_out INTEGER, hash_out TEXT, syntax_in TEXT, syntax_out TEXT,
            status TEXT NOT NULL, reason TEXT, frames INTEGER, seconds REAL, updated REAL);
        CREATE INDEX files_status ON files(status);""")
    db.execute("INSERT INTO run VALUES ('runs', '1')")
    db.execute("INSERT INTO files (path, run, size_in, status, frames, seconds, updated) "
               "VALUES (?, 1, 100, 'ok', 1, 0.5, 1.0)", (str(source),))
    db.commit()
    db.close()


def test_a_journal_written_before_the_loss_columns_still_reads_and_is_migrated(tmp_path,
                                                                               capsys):
    journal = tmp_path / J.JOURNAL_NAME
    _schema_1_journal(journal, tmp_path / "a.dcm")
    # report reads it as it is (read-only: no migration), the loss columns empty
    assert main(["report", str(journal), "--json"]) == 0
    files = json.loads(capsys.readouterr().out)["files"]
    assert files[0]["status"] == "ok" and files[0]["frames"] == 1
    assert files[0]["max_abs_error_modality"] is None and files[0]["psnr"] is None
    assert main(["report", str(journal)]) == 0
    assert "lossy" not in capsys.readouterr().out
    db = sqlite3.connect(journal)
    assert "psnr" not in {r[1] for r in db.execute("PRAGMA table_info(files)")}
    db.close()
    # opened to resume: migrated in place, the row kept, the new columns there and empty
    with J.Journal(journal) as opened:
        row = opened.get(str(tmp_path / "a.dcm"))
        assert row.status == "ok" and row.size_in == 100 and row.loss is None
        opened.finish(str(tmp_path / "a.dcm"), max_display_error=3.0, display_window="C40/W400")
    db = sqlite3.connect(journal)
    assert dict(db.execute("SELECT key, value FROM run"))["schema"] == str(J.SCHEMA_VERSION)
    assert db.execute("SELECT max_display_error, display_window FROM files").fetchone() == (
        3.0, "C40/W400")
    db.close()


# -- resuming journals of earlier versions ------------------------------------------------------
def _settings(journal: Path, edit) -> dict:
    """Rewrite the run settings of `journal` with `edit(settings)`; returns the result."""
    db = sqlite3.connect(journal)
    settings = json.loads(db.execute("SELECT value FROM run WHERE key = 'settings'").fetchone()[0])
    edit(settings)
    db.execute("UPDATE run SET value = ? WHERE key = 'settings'", (json.dumps(settings),))
    db.commit()
    db.close()
    return settings


def test_the_run_records_whether_it_copies(study, tmp_path, capsys):
    for extra, copies in (([], True), (["--only-images"], False)):
        out = tmp_path / f"out{len(extra)}"
        assert run_json(capsys, study, "--to", "rle", "-o", out, *extra)[0] == 0
        db = J.open_read_only(out / J.JOURNAL_NAME)
        assert J.settings_of(db)["copy_unchanged"] is copies
        db.close()
    assert run_json(capsys, study, "--to", "rle", "--in-place", "--journal",
                    tmp_path / "j.sqlite")[0] == 0
    db = J.open_read_only(tmp_path / "j.sqlite")
    assert J.settings_of(db)["copy_unchanged"] is False
    db.close()


def test_resuming_a_journal_from_before_the_copies_completes_the_study(study, tmp_path, capsys):
    """A journal written by a version that never copied (no copy_unchanged, no only_images
    in its settings; its skips not copied): --resume copies those skips now, and -o ends
    with as many instances as the source."""
    out = tmp_path / "out"
    assert run_json(capsys, study, "--to", "rle", "-o", out, "--only-images")[0] == 0
    _settings(out / J.JOURNAL_NAME, lambda s: s.pop("copy_unchanged"))  # as such a version wrote
    assert sorted(p.name for p in out.rglob("*.dcm")) == ["ct.dcm", "mr.dcm"]
    code, summary = run_json(capsys, study, "--to", "rle", "-o", out, "--resume")
    assert code == 0, summary
    assert summary["done_before"] == 3  # the two images coded, the non-DICOM file
    assert summary["copied_unchanged"] == {"already": 2, "not-image": 2}
    dicom_in = sorted(p.relative_to(study) for p in study.rglob("*.dcm"))
    assert sorted(p.relative_to(out) for p in out.rglob("*.dcm")) == dicom_in
    db = J.open_read_only(out / J.JOURNAL_NAME)
    assert J.settings_of(db)["copy_unchanged"] is True  # recorded now
    db.close()
    # resumed once more: all done, nothing copied twice
    code, summary = run_json(capsys, study, "--to", "rle", "-o", out, "--resume")
    assert code == 0 and summary["done_before"] == 7 and summary["copied_unchanged"] == {}


def test_resuming_older_journals_keeps_their_choice(study, tmp_path, capsys):
    """A journal of a run with only_images (before copy_unchanged was recorded) resumes
    with --only-images and copies nothing; a resume that would copy has other settings.
    A journal of a run that copied (no copy_unchanged recorded) copies nothing again."""
    out = tmp_path / "images"
    assert run_json(capsys, study, "--to", "rle", "-o", out, "--only-images")[0] == 0
    _settings(out / J.JOURNAL_NAME,
              lambda s: (s.pop("copy_unchanged"), s.update(only_images=True)))
    code, summary = run_json(capsys, study, "--to", "rle", "-o", out, "--resume",
                             "--only-images")
    assert code == 0 and summary["done_before"] == 7 and summary["copied_unchanged"] == {}
    _settings(out / J.JOURNAL_NAME,
              lambda s: (s.pop("copy_unchanged"), s.update(only_images=True)))
    assert main(["transcode", str(study), "--to", "rle", "-o", str(out), "--resume"]) == 2
    assert "copy_unchanged" in capsys.readouterr().err

    complete = tmp_path / "complete"
    assert run_json(capsys, study, "--to", "rle", "-o", complete)[0] == 0
    _settings(complete / J.JOURNAL_NAME, lambda s: s.pop("copy_unchanged"))
    code, summary = run_json(capsys, study, "--to", "rle", "-o", complete, "--resume")
    assert code == 0 and summary["done_before"] == 7 and summary["copied_unchanged"] == {}
