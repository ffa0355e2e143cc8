"""Log lines for operators: one per association (who, from where, accepted or rejected
and why) and one per instance (route, SOP Instance UID, syntax and bytes in -> out, ms,
result), as text or JSON; tracebacks only with -v."""

from __future__ import annotations

import io
import json
import logging
import os
import re
import signal
import subprocess

import pydicom
import pytest

from conftest import require_tool
from dicompress.gateway.logs import JSONFormatter, TextFormatter, configure, event
from test_gateway import (CLI, PynetdicomSCP, StoreSCP, _wait_for_port, _wait_until, free_port,
                          gateway_factory, make_series, storescu, write_config)  # noqa: F401
from test_gateway_fallback import broken_j2k, send


def serve(config, log, *flags) -> subprocess.Popen:
    return subprocess.Popen(CLI + ["serve", "--config", str(config), *flags],
                            stdout=subprocess.DEVNULL, stderr=log, start_new_session=True)


def stop(proc: subprocess.Popen) -> None:
    os.killpg(proc.pid, signal.SIGTERM)
    assert proc.wait(timeout=60) == 0


def echo(port: int, calling: str, called: str = "DICOMPRESS") -> int:
    return subprocess.run([require_tool("echoscu"), "-aet", calling, "-aec", called, "127.0.0.1",
                           str(port)], capture_output=True).returncode


def text_fields(line: str) -> dict[str, str]:
    """key=value pairs of a text line (values with spaces are JSON strings)."""
    return {k: json.loads(v) if v.startswith('"') else v
            for k, v in re.findall(r'(\w+)=("(?:[^"\\]|\\.)*"|\S+)', line)}


@pytest.mark.parametrize("log_format", ["json", "text"])
def test_a_line_per_association_and_per_instance(tmp_path, log_format):
    series = make_series(tmp_path / "series", 3, 32)
    dest = StoreSCP(tmp_path / "dest", free_port(), "+xv")
    config, port = write_config(tmp_path, dest.port, target="j2k")
    log_path = tmp_path / "gateway.log"
    with open(log_path, "w") as log:
        proc = serve(config, log, "--log-format", log_format)
    try:
        _wait_for_port(port)
        assert echo(port, "INTRUDER") != 0
        assert echo(port, "CT1", "ELSEWHERE") != 0
        assert storescu(port, series).returncode == 0
        _wait_until(lambda: len(dest.files()) == 3, what="forwarded")
        _wait_until(lambda: log_path.read_text().count("instance") >= 3, what="logged")
    finally:
        stop(proc)
        dest.stop()
    lines = [line for line in log_path.read_text().splitlines() if line]
    if log_format == "json":
        records = [json.loads(line) for line in lines]  # every line is one JSON object
    else:
        records = [{"message": re.split(r" \w+=", line.split(" ", 3)[3])[0],
                    "level": line.split(" ")[2], **text_fields(line.split(" ", 3)[3])}
                   for line in lines]
    rejected = [r for r in records if r["message"] == "association rejected"]
    assert [(r["calling_ae"], r["reason"]) for r in rejected] == [
        ("INTRUDER", "the calling AE title is on no route"),
        ("CT1", "the called AE title 'ELSEWHERE' is not the gateway's")]
    assert all(re.fullmatch(r"127\.0\.0\.1:\d+", r["address"]) for r in rejected)
    assert all(r["level"] == "WARNING" for r in rejected)
    accepted = [r for r in records if r["message"] == "association accepted"]
    assert len(accepted) == 1 and accepted[0]["calling_ae"] == "CT1"
    assert accepted[0]["route"] == "reading site"
    instances = [r for r in records if r["message"] == "instance"]
    uids = {pydicom.dcmread(p).SOPInstanceUID: p.stat().st_size for p in series}
    assert {r["sop_instance"] for r in instances} == set(uids)
    for r in instances:
        assert r["route"] == "reading site" and r["result"] == "sent"
        assert (r["syntax_in"], r["syntax_out"]) == ("ExplicitVRLittleEndian", "JPEG2000Lossless")
        # as received (storescu writes its own File Meta Information) and as sent
        assert abs(int(r["bytes_in"]) - uids[r["sop_instance"]]) < 256
        assert int(r["bytes_in"]) > int(r["bytes_out"]) > 0
        assert float(r["ms"]) > 0
    assert not any("Traceback" in line for line in lines)
    assert not any("pynetdicom" in line for line in lines)  # its own lines only with -v


@pytest.fixture
def configured_log():
    """The gateway's logging as `serve` configures it, into a string; restored after."""
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    levels = {n: logging.getLogger(n).level for n in ("pynetdicom", "pydicom")}
    stream = io.StringIO()
    configure("json", verbose=False, stream=stream)
    yield stream
    root.handlers[:], _ = saved[0], root.setLevel(saved[1])
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)


def test_an_instance_nobody_can_decode_is_one_line_without_traceback(tmp_path, configured_log,
                                                                   gateway_factory):
    dest_port = free_port()
    dest = PynetdicomSCP(dest_port, ["1.2.840.10008.1.2.1"])
    try:
        config, port = write_config(tmp_path, dest_port, target="htj2k")
        gateway_factory(config)
        send(port, [broken_j2k(tmp_path / "in")])
        _wait_until(lambda: '"instance"' in configured_log.getvalue(), what="logged")
    finally:
        dest.stop()
    records = [json.loads(line) for line in configured_log.getvalue().splitlines()]
    problems = [r for r in records if r["level"] != "INFO"]
    assert len(problems) == 1 and problems[0]["result"] == "held", records
    assert "cannot be decoded" in problems[0]["reason"]
    assert not any("traceback" in r or "Traceback" in r["message"] for r in records)


def test_tracebacks_only_with_verbose():
    try:
        raise RuntimeError("a bug of ours")
    except RuntimeError:
        record = logging.LogRecord("dicompress.gateway", logging.ERROR, __file__, 1,
                                   "the forwarder's loop failed", (), exc_info=True)
        import sys
        record.exc_info = sys.exc_info()
    quiet, verbose = TextFormatter(False).format(record), TextFormatter(True).format(record)
    assert "\n" not in quiet and quiet.endswith(
        "the forwarder's loop failed (RuntimeError: a bug of ours; -v shows where)")
    assert "Traceback (most recent call last)" in verbose
    assert "traceback" not in json.loads(JSONFormatter(False).format(record))
    assert "Traceback" in json.loads(JSONFormatter(True).format(record))["traceback"]


def test_field_values_with_spaces_and_quotes_stay_one_parseable_line():
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(TextFormatter(False))
    logger = logging.getLogger("dicompress.gateway")
    logger.addHandler(handler)
    try:
        event(logging.WARNING, "instance", route="reading site", reason='a "b"\nc=d')
    finally:
        logger.removeHandler(handler)
    (line,) = stream.getvalue().splitlines()
    assert text_fields(line) == {"route": "reading site", "reason": 'a "b"\nc=d'}


def test_rejections_for_a_full_spool_and_the_association_limit_say_so(tmp_path, configured_log,
                                                                       gateway_factory):
    from pynetdicom import AE
    from pynetdicom.sop_class import Verification

    series = make_series(tmp_path / "series", 3, 64)
    config, port = write_config(tmp_path, free_port(), max_spool="10KB",
                                extra="max_associations = 1")  # the destination is down
    gateway_factory(config)
    ae = AE(ae_title="CT1")
    ae.add_requested_context(Verification)
    held = ae.associate("127.0.0.1", port, ae_title="DICOMPRESS")
    assert held.is_established
    assert ae.associate("127.0.0.1", port, ae_title="DICOMPRESS").is_rejected
    held.release()
    _wait_until(lambda: storescu(port, series[:1]).returncode == 0, limit=10, what="free again")
    assert storescu(port, series[1:2]).returncode == 0  # under the limit when asked
    assert storescu(port, series[2:3]).returncode != 0  # now full
    records = [json.loads(line) for line in configured_log.getvalue().splitlines()]
    reasons = [r["reason"] for r in records if r["message"] == "association rejected"]
    assert reasons[0] == "the association limit (1) is reached"
    assert reasons[-1] == "the spool is full"
