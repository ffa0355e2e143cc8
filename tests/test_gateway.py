"""The DICOM gateway against real peers: DCMTK's storescu/storescp/echoscu and pynetdicom."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pynetdicom import AE, AllStoragePresentationContexts, evt
from pynetdicom import _config as pynetdicom_config
from pynetdicom.sop_class import Verification

from conftest import require_tool
from dicompress.gateway import ConfigError, Gateway, load_config, status
from dicompress.samples import find_sample

sys.path.insert(0, str(Path(__file__).parent.parent / "tools"))
from make_series import make_series  # noqa: E402

CLI = [sys.executable, "-m", "dicompress"]
J2K_LOSSLESS = "1.2.840.10008.1.2.4.90"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pixel_hash(path: Path) -> str:
    return hashlib.sha256(pydicom.dcmread(path).pixel_array.tobytes()).hexdigest()


def write_config(tmp: Path, dest_port: int, *, target="j2k", options=None, deid=None,
                 extra="", calling=("CT1",), max_spool="1GB") -> tuple[Path, int]:
    port = free_port()
    lines = [
        "[gateway]", 'ae_title = "DICOMPRESS"', f"port = {port}", 'host = "127.0.0.1"',
        f'spool = "{tmp / "spool"}"', f'max_spool = "{max_spool}"', "retry_initial = 0.3",
        "retry_max = 1.0", extra, "", "[[route]]", 'name = "reading site"',
        f"calling = {json.dumps(list(calling))}",
        f'destination = {{ ae_title = "READ", host = "127.0.0.1", port = {dest_port} }}',
        f'target = "{target}"',
    ]
    if options:
        lines.append("options = { " + ", ".join(f"{k} = {v}" for k, v in options.items()) + " }")
    if deid:
        lines.append(deid)
    path = tmp / "gateway.toml"
    path.write_text("\n".join(lines) + "\n")
    return path, port


class StoreSCP:
    """DCMTK's storescp as the remote reading site."""

    def __init__(self, folder: Path, port: int, *options: str) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.folder, self.port = folder, port
        self.proc = subprocess.Popen([require_tool("storescp"), "-aet", "READ", "-od", str(folder),
                                      *options, str(port)], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        _wait_for_port(port)

    def files(self) -> list[Path]:
        return [p for p in self.folder.iterdir() if p.is_file()]

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)


def _wait_for_port(port: int, limit: float = 20) -> None:
    end = time.monotonic() + limit
    while time.monotonic() < end:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on {port}")


def _wait_until(predicate, limit: float = 60, what: str = "") -> None:
    end = time.monotonic() + limit
    while time.monotonic() < end:
        if predicate():
            return
        time.sleep(0.1)
    raise TimeoutError(what)


def storescu(port: int, files: list[Path], calling: str = "CT1") -> subprocess.CompletedProcess:
    return subprocess.run([require_tool("storescu"), "-aet", calling, "-aec", "DICOMPRESS",
                           "127.0.0.1", str(port), *map(str, files)],
                          capture_output=True, text=True, timeout=300)


@pytest.fixture
def series(tmp_path) -> list[Path]:
    return make_series(tmp_path / "series", 12, 64)


@pytest.fixture
def gateway_factory():
    started = []

    def start(config_path: Path) -> Gateway:
        gateway = Gateway(load_config(config_path))
        gateway.start()
        started.append(gateway)
        return gateway

    yield start
    for gateway in started:
        gateway.stop()


# -- configuration -----------------------------------------------------------------------
def test_config_errors_say_what_and_where(tmp_path):
    path = tmp_path / "g.toml"
    cases = {
        "[gateway]\nport = 104\n": "no \\[\\[route\\]\\]",
        '[[route]]\nname = "a"\ncalling = []\n': "calling",
        '[[route]]\ncalling = ["A\\\\B"]\n': "not an AE title",
        '[[route]]\ncalling = ["CT1"]\ndestination = { host = "x" }\n': "destination",
        ('[[route]]\ncalling = ["CT1"]\ndestination = { ae_title = "R", host = "h", port = 1 }\n'
         'target = "nonsense"\n'): "target",
        ('[[route]]\ncalling = ["CT1"]\ndestination = { ae_title = "R", host = "h", port = 1 }\n'
         '[[route]]\ncalling = ["CT1"]\ndestination = { ae_title = "R", host = "h", port = 1 }\n'):
            "already sends",
        ('[[route]]\ncalling = ["CT1"]\ndestination = { ae_title = "R", host = "h", port = 1 }\n'
         "deid = true\n"): "key_file",
        "not toml [": "not valid TOML",
        ('[[route]]\ncalling = "CT1"\n'): "a list",
        ('[[route]]\ncalling = ["CT1"]\ndestination = { ae_title = "R", host = "h", port = 1 }\n'
         "de_id = true\n"): "unknown key",
        ('[[route]]\nname = "a"\ncalling = ["CT1"]\n'
         'destination = { ae_title = "R", host = "h", port = 1 }\n'
         '[[route]]\nname = "a"\ncalling = ["CT2"]\n'
         'destination = { ae_title = "R", host = "h", port = 1 }\n'): "taken",
        ('[gateway]\nper_association = 0\n[[route]]\ncalling = ["CT1"]\n'
         'destination = { ae_title = "R", host = "h", port = 1 }\n'): "per_association",
        ('[[route]]\ncalling = ["CT1"]\n'
         'destination = { ae_title = "R", host = "h", port = 1, tls = {} }\n'): "empty",
    }
    for text, message in cases.items():
        path.write_text(text)
        with pytest.raises(ConfigError, match=message):
            load_config(path)


# -- real peers --------------------------------------------------------------------------
def test_lossless_route_dcmtk_to_dcmtk(tmp_path, series, gateway_factory):
    dest = StoreSCP(tmp_path / "dest", free_port(), "+xv")  # takes JPEG 2000 lossless
    try:
        config, port = write_config(tmp_path, dest.port, target="j2k")
        gateway_factory(config)
        sent = storescu(port, series)
        assert sent.returncode == 0, sent.stderr
        _wait_until(lambda: len(dest.files()) == len(series), what="all forwarded")
        originals = {pydicom.dcmread(p).SOPInstanceUID: pixel_hash(p) for p in series}
        for path in dest.files():
            ds = pydicom.dcmread(path)
            assert ds.file_meta.TransferSyntaxUID == J2K_LOSSLESS
            assert pixel_hash(path) == originals[ds.SOPInstanceUID]  # bit-exact
        _wait_until(lambda: status(load_config(config))["sent"] == len(series))
        report = status(load_config(config))
        assert report["queued"] == 0 and report["bytes_saved"] > 0
        assert not list((tmp_path / "spool" / "in").rglob("*.dcm"))  # sent files leave
    finally:
        dest.stop()


def test_destination_taking_only_uncompressed_gets_uncompressed(tmp_path, series,
                                                               gateway_factory):
    dest = StoreSCP(tmp_path / "dest", free_port())  # default: uncompressed syntaxes only
    try:
        config, port = write_config(tmp_path, dest.port, target="htj2k")
        gateway_factory(config)
        assert storescu(port, series[:4]).returncode == 0
        _wait_until(lambda: len(dest.files()) == 4, what="forwarded")
        for path in dest.files():
            ds = pydicom.dcmread(path)
            assert ds.file_meta.TransferSyntaxUID in ("1.2.840.10008.1.2.1", "1.2.840.10008.1.2")
            assert ds.SOPInstanceUID in {pydicom.dcmread(p).SOPInstanceUID for p in series}
    finally:
        dest.stop()


class PynetdicomSCP:
    """A pynetdicom Storage SCP accepting every syntax, keeping what it receives."""

    def __init__(self, port: int, syntaxes: list[str] | None = None) -> None:
        self.received: list[pydicom.Dataset] = []
        self.sizes: list[int] = []
        ae = AE(ae_title="READ")
        from dicompress.gateway.service import ACCEPTED_SYNTAXES
        for cx in AllStoragePresentationContexts:
            ae.add_supported_context(cx.abstract_syntax, syntaxes or ACCEPTED_SYNTAXES)

        def store(event):
            if pynetdicom_config.STORE_RECV_CHUNKED_DATASET:  # the gateway in this process
                self.sizes.append(Path(event.dataset_path).stat().st_size)
            else:
                self.sizes.append(len(event.encoded_dataset(include_meta=True)))
            ds = event.dataset
            ds.file_meta = event.file_meta
            self.received.append(ds)
            return 0x0000

        self.server = ae.start_server(("127.0.0.1", port), block=False,
                                      evt_handlers=[(evt.EVT_C_STORE, store)])

    def stop(self) -> None:
        self.server.shutdown()


@pytest.fixture
def explicit_only(tmp_path, gateway_factory):
    """A gateway on an HTJ2K route to a destination that takes Explicit VR LE only."""
    port_dest = free_port()
    dest = PynetdicomSCP(port_dest, ["1.2.840.10008.1.2.1"])
    config, port = write_config(tmp_path, port_dest, target="htj2k")
    gateway_factory(config)
    yield dest, port
    dest.stop()


def test_destination_taking_only_explicit_vr_gets_it_bit_exact(series, explicit_only):
    dest, port = explicit_only
    assert storescu(port, series[:3]).returncode == 0
    _wait_until(lambda: len(dest.received) == 3, what="forwarded")
    originals = {pydicom.dcmread(p).SOPInstanceUID: pydicom.dcmread(p).pixel_array
                 for p in series[:3]}
    for ds in dest.received:
        assert ds.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.1"
        assert np.array_equal(ds.pixel_array, originals[ds.SOPInstanceUID])


def test_lossy_deidentifying_route_to_pynetdicom(tmp_path, series, gateway_factory):
    port_dest = free_port()
    dest = PynetdicomSCP(port_dest)
    (tmp_path / "site.key").write_text("gateway-test-key-0123456789\n")
    try:
        config, port = write_config(
            tmp_path, port_dest, target="htj2k-lossy", options={"ratio": 10},
            deid='deid = { options = ["retain-modified-dates"], key_file = "site.key" }')
        gateway_factory(config)
        assert storescu(port, series[:3]).returncode == 0
        _wait_until(lambda: len(dest.received) == 3, what="forwarded")
        originals = {pydicom.dcmread(p).SOPInstanceUID for p in series}
        for ds in dest.received:
            assert ds.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.4.203"
            assert ds.LossyImageCompression == "01"
            assert ds.PatientIdentityRemoved == "YES"
            assert ds.SOPInstanceUID not in originals  # lossy and de-identified: new UIDs
            assert ds.pixel_array.shape == (64, 64)
    finally:
        dest.stop()


def test_a_study_budget_raises_the_ratio_until_the_study_fits(tmp_path, series,
                                                             gateway_factory):
    port_dest = free_port()
    dest = PynetdicomSCP(port_dest)
    try:
        budget = 40_000  # the 12 slices take 110 kB as received
        config, port = write_config(tmp_path, port_dest, target="j2k-lossy",
                                    options={"ratio": 2},
                                    extra="")
        config.write_text(config.read_text() + f"budget = {budget}\nsettle = 1\n")
        gateway_factory(config)
        assert sum(p.stat().st_size for p in series) > 2.5 * budget
        assert storescu(port, series).returncode == 0
        _wait_until(lambda: len(dest.received) == len(series), what="forwarded")
        assert sum(dest.sizes) <= budget
        assert sum(dest.sizes) > budget * 0.5  # the ratio fitted, not maxed out
        ratios = {float(ds.LossyImageCompressionRatio) for ds in dest.received}
        assert min(ratios) > 2.5  # raised from the configured 2
    finally:
        dest.stop()


def test_only_listed_callers_may_associate(tmp_path, gateway_factory):
    config, port = write_config(tmp_path, free_port())
    gateway_factory(config)
    echoscu = require_tool("echoscu")
    ok = subprocess.run([echoscu, "-aet", "CT1", "-aec", "DICOMPRESS", "127.0.0.1", str(port)],
                        capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    intruder = subprocess.run([echoscu, "-aet", "INTRUDER", "-aec", "DICOMPRESS", "127.0.0.1",
                               str(port)], capture_output=True, text=True)
    assert intruder.returncode != 0
    assert "Rejected" in intruder.stderr or "rejected" in intruder.stderr.lower()
    misaimed = subprocess.run([echoscu, "-aet", "CT1", "-aec", "SOMEONE_ELSE", "127.0.0.1",
                               str(port)], capture_output=True, text=True)
    assert misaimed.returncode != 0  # the called AE title must be the gateway's


def test_hostile_and_truncated_datasets_are_refused(tmp_path, gateway_factory):
    config, port = write_config(tmp_path, free_port())
    gateway_factory(config)
    ae = AE(ae_title="CT1")
    ae.add_requested_context("1.2.840.10008.5.1.4.1.1.2")
    ae.add_requested_context(Verification)
    good = pydicom.dcmread(find_sample("CT_small.dcm"))
    liar = good.copy()
    liar.SOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
    del liar.StudyInstanceUID  # no study: it cannot be routed as one
    broken = good.copy()
    broken.Rows = 0  # image attributes that make no sense
    assoc = ae.associate("127.0.0.1", port, ae_title="DICOMPRESS")
    assert assoc.is_established
    try:
        for ds in (liar, broken):
            result = assoc.send_c_store(ds)
            assert result.Status in (0xA900, 0xC000), hex(result.Status)
        assert assoc.send_c_echo().Status == 0  # still serving
    finally:
        assoc.release()
    with sqlite3.connect(load_config(config).database) as db:
        assert db.execute("SELECT COUNT(*) FROM instances").fetchone()[0] == 0
    assert not list((tmp_path / "spool" / "in").rglob("*.dcm"))


def test_full_spool_refuses_associations(tmp_path, series, gateway_factory):
    config, port = write_config(tmp_path, free_port(), max_spool="10KB")  # destination down
    gateway_factory(config)
    assert storescu(port, series[:1]).returncode == 0  # 8 KB: taken
    assert storescu(port, series[1:2]).returncode == 0  # still under the limit when asked
    refused = storescu(port, series[2:3])  # now full: the association is refused
    assert refused.returncode != 0
    assert "Rejected" in refused.stderr or "rejected" in refused.stderr.lower()


# -- faults ------------------------------------------------------------------------------
def _count(config: Path, status_: str | None = None) -> int:
    db = load_config(config).database
    if not db.exists():
        return 0
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        query, args = "SELECT COUNT(*) FROM instances", ()
        if status_:
            query, args = query + " WHERE status = ?", (status_,)
        return conn.execute(query, args).fetchone()[0]


def _serve(config: Path) -> subprocess.Popen:
    proc = subprocess.Popen(CLI + ["serve", "--config", str(config)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, start_new_session=True)
    return proc


@pytest.mark.slow
def test_kill_9_in_flight_then_restart_loses_nothing(tmp_path):
    series = make_series(tmp_path / "series", 200, 64)
    dest = StoreSCP(tmp_path / "dest", free_port(), "+xv")
    config, port = write_config(tmp_path, dest.port)
    proc = _serve(config)
    try:
        _wait_for_port(port)
        sender = subprocess.Popen([require_tool("storescu"), "-aet", "CT1", "-aec", "DICOMPRESS",
                                   "127.0.0.1", str(port), *map(str, series)],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _wait_until(lambda: _count(config) >= 60, what="some received")
        os.killpg(proc.pid, signal.SIGKILL)  # the gateway dies mid-series
        proc.wait()
        sender.wait(timeout=60)
        received_before = _count(config)
        assert received_before < len(series)
        proc = _serve(config)  # restart: what was queued goes out
        _wait_for_port(port)
        # the modality sends again what was not acknowledged (storescu: all of it)
        assert storescu(port, series).returncode == 0
        expected = {pydicom.dcmread(p).SOPInstanceUID: pixel_hash(p) for p in series}

        uids: dict[Path, str] = {}  # each file's header read once, not at every poll

        def arrived() -> dict[str, Path]:
            for path in dest.files():
                if path not in uids:
                    try:
                        uids[path] = pydicom.dcmread(path, stop_before_pixels=True).SOPInstanceUID
                    except Exception:
                        pass  # storescp still writing
            return {uid: path for path, uid in uids.items()}

        _wait_until(lambda: set(arrived()) == set(expected), limit=180, what="all arrived")
        for uid, path in arrived().items():
            assert pixel_hash(path) == expected[uid]
            assert pydicom.dcmread(path).file_meta.TransferSyntaxUID == J2K_LOSSLESS
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=60)
        dest.stop()


def test_destination_down_then_up_receives_everything(tmp_path, series):
    dest_port = free_port()
    config, port = write_config(tmp_path, dest_port)
    proc = _serve(config)
    try:
        _wait_for_port(port)
        assert storescu(port, series).returncode == 0  # accepted while the site is down
        time.sleep(1.0)
        report = json.loads(subprocess.run(CLI + ["serve", "--config", str(config), "--status"],
                                           capture_output=True, text=True).stdout)
        assert report["queued"] == len(series) and report["sent"] == 0
        assert report["problems"] and "cannot be reached" in report["problems"][0]["error"]
        dest = StoreSCP(tmp_path / "dest", dest_port, "+xv")  # the link comes back
        try:
            _wait_until(lambda: len(dest.files()) == len(series), limit=60, what="delivered")
        finally:
            dest.stop()
        _wait_until(lambda: _count(config, "sent") == len(series))
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        assert proc.wait(timeout=60) == 0  # a clean stop on SIGTERM


# -- TLS ---------------------------------------------------------------------------------
def _certificates(folder: Path) -> dict[str, Path]:
    """A CA, and a server and a client certificate signed by it (openssl)."""
    openssl = require_tool("openssl")
    folder.mkdir()
    f = {n: folder / n for n in ("ca.key", "ca.pem", "server.key", "server.pem",
                                 "client.key", "client.pem")}

    def run(*args):
        subprocess.run([openssl, *map(str, args)], check=True, capture_output=True)

    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", f["ca.key"], "-out",
        f["ca.pem"], "-days", "2", "-subj", "/CN=test CA")
    for who in ("server", "client"):
        csr, ext = folder / f"{who}.csr", folder / f"{who}.ext"
        ext.write_text(f"subjectAltName=DNS:{who}.reading.test\n")
        run("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f[f"{who}.key"], "-out", csr,
            "-subj", f"/CN={who}.reading.test")
        run("x509", "-req", "-in", csr, "-CA", f["ca.pem"], "-CAkey", f["ca.key"],
            "-CAcreateserial", "-out", f[f"{who}.pem"], "-days", "2", "-extfile", ext)
    return f


def test_tls_in_both_directions(tmp_path, series, gateway_factory):
    import ssl

    certs = _certificates(tmp_path / "certs")
    # the reading site: a pynetdicom SCP over TLS, requiring our client certificate
    received = []
    dest_ae = AE(ae_title="READ")
    for cx in AllStoragePresentationContexts:
        dest_ae.add_supported_context(cx.abstract_syntax, ["1.2.840.10008.1.2.4.90",
                                                            "1.2.840.10008.1.2.1"])
    dest_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    dest_ctx.load_cert_chain(certs["server.pem"], certs["server.key"])
    dest_ctx.load_verify_locations(certs["ca.pem"])
    dest_ctx.verify_mode = ssl.CERT_REQUIRED
    dest_port = free_port()
    dest = dest_ae.start_server(("127.0.0.1", dest_port), block=False, ssl_context=dest_ctx,
                                evt_handlers=[(evt.EVT_C_STORE,
                                               lambda e: received.append(e.dataset) or 0)])
    try:
        tls = (f'tls = {{ cert = "{certs["server.pem"]}", key = "{certs["server.key"]}", '
               f'ca = "{certs["ca.pem"]}" }}')
        config, port = write_config(tmp_path, dest_port, target="j2k", extra=tls)
        text = config.read_text().replace(
            f"port = {dest_port} }}",
            f'port = {dest_port}, tls = {{ cert = "{certs["client.pem"]}", '
            f'key = "{certs["client.key"]}", ca = "{certs["ca.pem"]}", '
            f'server_name = "server.reading.test" }} }}')
        config.write_text(text)
        gateway_factory(config)
        # a modality with a certificate the gateway trusts
        ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=certs["ca.pem"])
        ctx.check_hostname = False
        ctx.load_cert_chain(certs["client.pem"], certs["client.key"])
        ae = AE(ae_title="CT1")
        ae.add_requested_context("1.2.840.10008.5.1.4.1.1.2")
        assoc = ae.associate("127.0.0.1", port, ae_title="DICOMPRESS", tls_args=(ctx, None))
        assert assoc.is_established
        for path in series[:3]:
            assert assoc.send_c_store(path).Status == 0
        assoc.release()
        _wait_until(lambda: len(received) == 3, what="forwarded over TLS")
        # without a certificate, no association: the TLS handshake fails
        plain = AE(ae_title="CT1")
        plain.add_requested_context("1.2.840.10008.5.1.4.1.1.2")
        bare = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=certs["ca.pem"])
        bare.check_hostname = False
        refused = plain.associate("127.0.0.1", port, ae_title="DICOMPRESS", tls_args=(bare, None))
        assert not refused.is_established
    finally:
        dest.shutdown()


def test_tls_destination_must_carry_the_expected_name(tmp_path, series, gateway_factory):
    import ssl

    certs = _certificates(tmp_path / "certs")
    received = []
    dest_ae = AE(ae_title="READ")
    for cx in AllStoragePresentationContexts:
        dest_ae.add_supported_context(cx.abstract_syntax, ["1.2.840.10008.1.2.1"])
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(certs["client.pem"], certs["client.key"])  # a valid certificate
    dest_port = free_port()  # ... but of another name than the route expects
    dest = dest_ae.start_server(("127.0.0.1", dest_port), block=False, ssl_context=ctx,
                                evt_handlers=[(evt.EVT_C_STORE,
                                               lambda e: received.append(e.dataset) or 0)])
    try:
        config, port = write_config(tmp_path, dest_port, target="explicit")
        config.write_text(config.read_text().replace(
            f"port = {dest_port} }}",
            f'port = {dest_port}, tls = {{ ca = "{certs["ca.pem"]}", '
            f'server_name = "server.reading.test" }} }}'))
        gateway_factory(config)
        assert storescu(port, series[:1]).returncode == 0
        time.sleep(2)
        assert not received  # never sent to a peer that is not who it should be
        report = status(load_config(config))
        assert report["queued"] == 1 and report["problems"]
    finally:
        dest.shutdown()


def test_association_limit_and_http_status(tmp_path, series, gateway_factory):
    import urllib.request

    status_port = free_port()
    config, port = write_config(tmp_path, free_port(),
                                extra=f"max_associations = 2\nstatus_port = {status_port}")
    gateway_factory(config)
    ae = AE(ae_title="CT1")
    ae.add_requested_context(Verification)
    held = [ae.associate("127.0.0.1", port, ae_title="DICOMPRESS") for _ in range(2)]
    assert all(a.is_established for a in held)
    third = ae.associate("127.0.0.1", port, ae_title="DICOMPRESS")
    assert third.is_rejected  # transient, local limit exceeded
    for assoc in held:
        assoc.release()
    time.sleep(0.3)
    assert storescu(port, series[:2]).returncode == 0  # the limit frees up again
    with urllib.request.urlopen(f"http://127.0.0.1:{status_port}/status", timeout=10) as reply:
        report = json.load(reply)
    assert report["queued"] == 2 and report["routes"]["reading site"]["queued"] == 2


# -- after review: nothing acknowledged is ever dropped ---------------------------------------
def test_a_destination_failing_stores_for_a_while_gets_everything_later(tmp_path, series,
                                                                        gateway_factory):
    port_dest = free_port()
    received = []
    healthy = threading.Event()
    refusals = []
    ae = AE(ae_title="READ")
    for cx in AllStoragePresentationContexts:
        ae.add_supported_context(cx.abstract_syntax, ["1.2.840.10008.1.2.1"])

    def store(event):
        if not healthy.is_set():
            refusals.append(1)
            return 0xA700  # Out of Resources, again and again
        received.append(event.dataset.SOPInstanceUID)
        return 0x0000

    dest = ae.start_server(("127.0.0.1", port_dest), block=False,
                           evt_handlers=[(evt.EVT_C_STORE, store)])
    try:
        config, port = write_config(tmp_path, port_dest, target="explicit")
        gateway_factory(config)
        assert storescu(port, series[:3]).returncode == 0
        _wait_until(lambda: len(refusals) >= 12, what="refused many times")  # > the old limit
        assert status(load_config(config))["failed"] == 0  # never given up on
        healthy.set()
        _wait_until(lambda: len(set(received)) == 3, limit=30, what="delivered at last")
    finally:
        dest.shutdown()


def test_a_moved_spool_keeps_its_queue(tmp_path, series):
    dest_port = free_port()
    config, port = write_config(tmp_path, dest_port, target="explicit")
    gateway = Gateway(load_config(config))
    gateway.start()
    try:
        assert storescu(port, series[:4]).returncode == 0  # the destination is down
    finally:
        gateway.stop()
    (tmp_path / "spool").rename(tmp_path / "bigger-disk")
    config.write_text(config.read_text().replace(str(tmp_path / "spool"),
                                                 str(tmp_path / "bigger-disk")))
    dest = PynetdicomSCP(dest_port)
    gateway = Gateway(load_config(config))
    gateway.start()
    try:
        _wait_until(lambda: len(dest.received) == 4, limit=30, what="sent from the new place")
    finally:
        gateway.stop()
        dest.stop()


def test_pixel_data_shorter_than_the_image_is_refused(tmp_path, gateway_factory):
    config, port = write_config(tmp_path, free_port())
    gateway_factory(config)
    ds = pydicom.dcmread(find_sample("CT_small.dcm"))
    ds.PixelData = ds.PixelData[: len(ds.PixelData) // 2]  # half an image
    ae = AE(ae_title="CT1")
    ae.add_requested_context("1.2.840.10008.5.1.4.1.1.2")
    assoc = ae.associate("127.0.0.1", port, ae_title="DICOMPRESS")
    try:
        assert assoc.send_c_store(ds).Status == 0xC000
    finally:
        assoc.release()
    assert status(load_config(config))["queued"] == 0


def test_a_report_goes_as_explicit_vr_to_a_destination_taking_only_that(explicit_only):
    dest, port = explicit_only
    report = pydicom.dcmread(find_sample("test-SR.dcm"))
    ae = AE(ae_title="CT1")
    ae.add_requested_context(report.SOPClassUID, ["1.2.840.10008.1.2"])  # implicit only
    assoc = ae.associate("127.0.0.1", port, ae_title="DICOMPRESS")
    assert assoc.send_c_store(report).Status == 0
    assoc.release()
    _wait_until(lambda: len(dest.received) == 1, what="converted and sent")
    got = dest.received[0]
    assert got.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.1"
    assert got.SOPInstanceUID == report.SOPInstanceUID
