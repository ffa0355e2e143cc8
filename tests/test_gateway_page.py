"""The status page at / on the status port, opened in headless Chromium."""

from __future__ import annotations

import re
import subprocess

import numpy as np
import pydicom
from PIL import Image

from conftest import require_tool
from test_gateway import (PynetdicomSCP, _wait_until, free_port, gateway_factory,  # noqa: F401
                          make_series, storescu, write_config)
from test_gateway_fallback import broken_j2k, send
from dicompress.gateway import load_config, status

PATIENT_NAME, PATIENT_ID = "Doe^Jane", "PID-4711-XYZ"


def chromium(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([require_tool("chromium"), "--headless", "--no-sandbox",
                           "--disable-gpu", "--hide-scrollbars", *args],
                          capture_output=True, text=True, timeout=120)


def test_the_status_page_shows_the_routes_problems_and_held_but_no_patient(tmp_path,
                                                                         gateway_factory):
    dest_port, status_port = free_port(), free_port()
    dest = PynetdicomSCP(dest_port, ["1.2.840.10008.1.2.1"])
    try:
        config, port = write_config(tmp_path, dest_port, target="htj2k",
                                    extra=f"status_port = {status_port}")
        gateway_factory(config)
        series = make_series(tmp_path / "series", 3, 32)
        held = broken_j2k(tmp_path / "in")
        for path in [*series, held]:  # a patient the page must not name
            ds = pydicom.dcmread(path)
            ds.PatientName, ds.PatientID = PATIENT_NAME, PATIENT_ID
            ds.save_as(path)
        assert storescu(port, series).returncode == 0
        send(port, [held])
        _wait_until(lambda: status(load_config(config))["sent"] == 3
                    and status(load_config(config))["held"] == 1, what="sent and held")
        url = f"http://127.0.0.1:{status_port}/"
        dom = chromium("--dump-dom", url)
        shot = tmp_path / "status.png"
        snap = chromium("--window-size=1200,900", f"--screenshot={shot}", url)
    finally:
        dest.stop()
    assert dom.returncode == 0, dom.stderr[-2000:]
    page = dom.stdout
    body = dict(re.findall(r'data-(\w+)="(\d+)"', re.search(r"<body([^>]*)>", page).group(1)))
    assert body == {"queued": "0", "sent": "3", "held": "1", "failed": "0"}
    assert "reading site" in page and "htj2k" in page
    held_uid = pydicom.dcmread(held).SOPInstanceUID
    assert held_uid in page  # the held instance, listed by its SOP Instance UID
    assert "cannot be decoded" in page  # and why
    assert "ExplicitVRLittleEndian: 3" in page  # what went in which syntax
    assert page.count("sent as ExplicitVRLittleEndian, not HTJ2KLossless: the destination "
                      "refused HTJ2KLossless") == 3  # the notes, one an instance
    # the sent-other-than-target count is there, marked as a problem
    assert re.search(r'<td class="n bad">3</td>', page)
    for identifier in (PATIENT_NAME, "Doe", "Jane", PATIENT_ID, "4711"):
        assert identifier not in page
    assert snap.returncode == 0 and shot.is_file(), snap.stderr[-2000:]
    pixels = np.asarray(Image.open(shot).convert("RGB")).astype(int)
    assert pixels.std() > 10  # not a blank page
    assert (np.abs(pixels - (0xAA, 0, 0)).sum(axis=2) < 60).sum() > 20  # the problems in red
