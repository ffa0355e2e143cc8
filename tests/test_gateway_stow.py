"""DICOMweb destinations: STOW-RS to a real Orthanc (Debian's orthanc and
orthanc-dicomweb), started by the tests on 127.0.0.1 with a temporary configuration."""

from __future__ import annotations

import base64
import io
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import threading
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pydicom
import pytest

from dicompress.gateway import ConfigError, load_config, status
from test_gateway import (_wait_for_port, _wait_until, free_port, gateway_factory,  # noqa: F401
                          make_series, storescu, write_config)

HTJ2K = "1.2.840.10008.1.2.4.201"
PLUGIN = Path("/usr/share/orthanc/plugins/libOrthancDicomWeb.so")
ORTHANC = shutil.which("Orthanc") or shutil.which("Orthanc", path="/usr/sbin")
USER, PASSWORD = "gateway", "s3cret-for-tests"


class Orthanc:
    """An Orthanc with the DICOMweb plugin, its storage in `folder`, basic auth on."""

    def __init__(self, folder: Path, port: int | None = None) -> None:
        if ORTHANC is None or not PLUGIN.is_file():
            pytest.skip("Orthanc and its DICOMweb plugin are not installed "
                        "(apt-get install orthanc orthanc-dicomweb)")
        self.folder, self.port = folder, port or free_port()
        folder.mkdir(parents=True, exist_ok=True)
        config = {
            "Name": "dicompress-test", "StorageDirectory": str(folder / "storage"),
            "IndexDirectory": str(folder / "index"), "HttpPort": self.port,
            "DicomServerEnabled": False, "DicomPort": free_port(),
            "RemoteAccessAllowed": False, "AuthenticationEnabled": True,
            "RegisteredUsers": {USER: PASSWORD}, "Plugins": [str(PLUGIN)],
            "DicomWeb": {"Enable": True, "Root": "/dicom-web/"},
            "StorageCompression": False, "OverwriteInstances": False,
        }
        (folder / "orthanc.json").write_text(json.dumps(config))
        self.start()

    @property
    def stow(self) -> str:
        return f"http://127.0.0.1:{self.port}/dicom-web/studies"

    def start(self) -> None:
        with open(self.folder / "orthanc.log", "ab") as log:
            self.proc = subprocess.Popen([ORTHANC, str(self.folder / "orthanc.json")],
                                         stdout=log, stderr=log, start_new_session=True)
        _wait_for_port(self.port, limit=60)

    def stop(self, how: int = signal.SIGTERM) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, how)
            self.proc.wait(timeout=60)

    def get(self, path: str) -> bytes:
        request = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}")
        token = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
        with urllib.request.urlopen(request, timeout=30) as reply:
            return reply.read()

    def instances(self) -> dict[str, pydicom.Dataset]:
        """SOP Instance UID -> the stored file, as Orthanc gives it back."""
        out = {}
        for orthanc_id in json.loads(self.get("/instances")):
            ds = pydicom.dcmread(io.BytesIO(self.get(f"/instances/{orthanc_id}/file")))
            out[ds.SOPInstanceUID] = ds
        return out

    def new_instances(self) -> int:
        """How many times Orthanc stored a new instance (a duplicate is not one)."""
        changes = json.loads(self.get("/changes?limit=10000"))["Changes"]
        return sum(1 for c in changes if c["ChangeType"] == "NewInstance")


def stow_config(tmp_path: Path, url: str, extra: str = "", target: str = "htj2k",
                auth: str = f'auth = {{ user = "{USER}", password = "{PASSWORD}" }}, '
                ) -> tuple[Path, int]:
    config, port = write_config(tmp_path, 1, target=target)
    text = config.read_text().replace(
        'destination = { ae_title = "READ", host = "127.0.0.1", port = 1 }',
        f'destination = {{ stow = "{url}", {auth}transfer_syntax_parameter = false{extra} }}')
    config.write_text(text)
    return config, port


def check_arrived(orthanc: Orthanc, config: Path, series: list[Path]) -> None:
    """Each instance once, in the syntax the queue says it was sent in, bit-exact."""
    stored = orthanc.instances()
    originals = {pydicom.dcmread(p).SOPInstanceUID: pydicom.dcmread(p) for p in series}
    assert set(stored) == set(originals)
    assert orthanc.new_instances() == len(series)  # never stored twice
    with sqlite3.connect(load_config(config).database) as db:
        sent = dict(db.execute("SELECT sop_instance, syntax_out FROM instances"
                               " WHERE status = 'sent'"))
    assert set(sent) == set(originals)
    for uid, ds in stored.items():
        assert ds.file_meta.TransferSyntaxUID == sent[uid] == HTJ2K
        assert np.array_equal(ds.pixel_array, originals[uid].pixel_array)


def test_a_stow_route_delivers_each_instance_once_bit_exact(tmp_path, gateway_factory):
    orthanc = Orthanc(tmp_path / "orthanc")
    try:
        config, port = stow_config(tmp_path, orthanc.stow)
        gateway_factory(config)
        series = make_series(tmp_path / "series", 6, 64)
        assert storescu(port, series).returncode == 0
        _wait_until(lambda: status(load_config(config))["sent"] == len(series), limit=60,
                    what="stored in Orthanc")
        check_arrived(orthanc, config, series)
    finally:
        orthanc.stop()


def test_orthanc_stopped_and_restarted_mid_study_loses_and_duplicates_nothing(
        tmp_path, gateway_factory):
    orthanc = Orthanc(tmp_path / "orthanc")
    try:
        config, port = stow_config(tmp_path, orthanc.stow)
        gateway_factory(config)
        series = make_series(tmp_path / "series", 40, 128)  # one study
        assert storescu(port, series[:20]).returncode == 0
        _wait_until(lambda: status(load_config(config))["sent"] == 20, limit=60,
                    what="the study's first half stored")
        orthanc.stop(signal.SIGKILL)  # the server dies mid-study
        assert storescu(port, series[20:]).returncode == 0  # the gateway keeps receiving
        _wait_until(lambda: any("cannot be reached" in (p["error"] or "")
                                for p in status(load_config(config))["problems"]),
                    what="the gateway notices")
        assert status(load_config(config))["sent"] == 20
        orthanc.start()
        _wait_until(lambda: status(load_config(config))["sent"] == len(series), limit=120,
                    what="the rest stored after the restart")
        check_arrived(orthanc, config, series)
    finally:
        orthanc.stop()


def test_a_server_that_refuses_the_syntax_is_not_taken_for_a_success(tmp_path,
                                                                     gateway_factory):
    """Orthanc's DICOMweb plugin skips a part whose Content-Type has the transfer-syntax
    parameter and answers 200 listing nothing: the instance is not marked sent."""
    orthanc = Orthanc(tmp_path / "orthanc")
    try:
        config, port = stow_config(tmp_path, orthanc.stow)
        config.write_text(config.read_text().replace("transfer_syntax_parameter = false",
                                                     "transfer_syntax_parameter = true"))
        gateway_factory(config)
        assert storescu(port, make_series(tmp_path / "series", 1, 32)).returncode == 0
        _wait_until(lambda: status(load_config(config))["problems"], what="a problem")
        report = status(load_config(config))
        assert report["sent"] == 0 and report["queued"] == 1
        assert "does not list it as stored" in report["problems"][0]["error"]
        assert not orthanc.instances()
    finally:
        orthanc.stop()


def test_wrong_credentials_are_a_problem_not_a_loss(tmp_path, gateway_factory):
    orthanc = Orthanc(tmp_path / "orthanc")
    try:
        config, port = stow_config(tmp_path, orthanc.stow,
                                   auth=f'auth = {{ user = "{USER}", password = "wrong" }}, ')
        gateway_factory(config)
        assert storescu(port, make_series(tmp_path / "series", 1, 32)).returncode == 0
        _wait_until(lambda: status(load_config(config))["problems"], what="a problem")
        report = status(load_config(config))
        assert report["queued"] == 1 and report["problems"][0]["error"].startswith("HTTP 401")
    finally:
        orthanc.stop()


class _Recorder(BaseHTTPRequestHandler):
    """A STOW-RS endpoint that records requests and answers as PS3.18 10.5.3 says."""

    requests: list = []

    def do_POST(self):  # noqa: N802 - http.server's name
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).requests.append((dict(self.headers), body))
        ds = pydicom.dcmread(io.BytesIO(body.split(b"\r\n\r\n", 1)[1]))
        reply = json.dumps({"00081199": {"vr": "SQ", "Value": [
            {"00081155": {"vr": "UI", "Value": [ds.SOPInstanceUID]}}]}}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/dicom+json")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, *args):
        pass


def test_a_bearer_token_and_the_part_transfer_syntax_are_sent(tmp_path, gateway_factory):
    _Recorder.requests = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/dicomweb/studies"
        config, port = stow_config(tmp_path, url, auth='auth = { token = "abc.def" }, ')
        config.write_text(config.read_text().replace("transfer_syntax_parameter = false",
                                                     "transfer_syntax_parameter = true"))
        gateway_factory(config)
        assert storescu(port, make_series(tmp_path / "series", 2, 32)).returncode == 0
        _wait_until(lambda: status(load_config(config))["sent"] == 2, what="sent")
    finally:
        server.shutdown()
    for headers, body in _Recorder.requests:
        assert headers["Authorization"] == "Bearer abc.def"
        assert headers["Content-Type"].startswith('multipart/related; type="application/dicom"')
        assert f"Content-Type: application/dicom; transfer-syntax={HTJ2K}\r\n".encode() in body


def _certificates(folder: Path) -> dict[str, Path]:
    """A CA, and a server (localhost, 127.0.0.1) and a client certificate it signed."""
    folder.mkdir()

    def run(*args):
        subprocess.run(["openssl", *map(str, args)], check=True, capture_output=True)

    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", folder / "ca.key",
        "-out", folder / "ca.pem", "-days", "2", "-subj", "/CN=test CA")
    for who in ("server", "client", "stranger"):
        ext = folder / f"{who}.ext"
        ext.write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
        run("req", "-newkey", "rsa:2048", "-nodes", "-keyout", folder / f"{who}.key", "-out",
            folder / f"{who}.csr", "-subj", f"/CN={who}")
        if who == "stranger":  # self-signed: no CA we know signed it
            run("x509", "-req", "-in", folder / f"{who}.csr", "-signkey", folder / f"{who}.key",
                "-out", folder / f"{who}.pem", "-days", "2", "-extfile", ext)
        else:
            run("x509", "-req", "-in", folder / f"{who}.csr", "-CA", folder / "ca.pem", "-CAkey",
                folder / "ca.key", "-CAcreateserial", "-out", folder / f"{who}.pem", "-days",
                "2", "-extfile", ext)
    return {p.name: p for p in folder.iterdir()}


def test_https_with_a_client_certificate(tmp_path, gateway_factory):
    """Debian 12's Orthanc 1.10.1 crashes on its first HTTPS request (SslEnabled), so the
    TLS side is checked against Python's own HTTPS server requiring a client certificate."""
    import ssl

    certs = _certificates(tmp_path / "certs")
    _Recorder.requests = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=certs["ca.pem"])
    context.load_cert_chain(certs["server.pem"], certs["server.key"])
    context.verify_mode = ssl.CERT_REQUIRED  # no certificate of ours, no request
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"https://localhost:{server.server_address[1]}/studies"
        auth = (f'auth = {{ cert = "{certs["client.pem"]}", key = "{certs["client.key"]}" }}, '
                f'ca = "{certs["ca.pem"]}", ')
        config, port = stow_config(tmp_path, url, auth=auth)
        gateway_factory(config)
        assert storescu(port, make_series(tmp_path / "series", 2, 32)).returncode == 0
        _wait_until(lambda: status(load_config(config))["sent"] == 2, what="sent over https")
        assert len(_Recorder.requests) == 2
    finally:
        server.shutdown()


def test_https_to_a_server_we_cannot_trust_sends_nothing(tmp_path, gateway_factory):
    import ssl

    certs = _certificates(tmp_path / "certs")
    _Recorder.requests = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(certs["stranger.pem"], certs["stranger.key"])
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"https://localhost:{server.server_address[1]}/studies"
        config, port = stow_config(tmp_path, url, auth=f'ca = "{certs["ca.pem"]}", ')
        gateway_factory(config)
        assert storescu(port, make_series(tmp_path / "series", 1, 32)).returncode == 0
        _wait_until(lambda: status(load_config(config))["problems"], what="a problem")
        report = status(load_config(config))
        assert report["sent"] == 0 and report["queued"] == 1
        assert "CERTIFICATE_VERIFY_FAILED" in report["problems"][0]["error"]
        assert not _Recorder.requests
    finally:
        server.shutdown()


def test_stow_destinations_are_checked_in_the_config(tmp_path):
    base = ('[[route]]\ncalling = ["CT1"]\ndestination = { stow = %s }\n')
    cases = {
        '"ftp://x/studies"': "not an http",
        '"https://x/s", auth = { token = "t", user = "u", password = "p" }': "not both",
        '"https://x/s", auth = { user = "u" }': "user and password go together",
        '"http://pacs.example.org/s", auth = { token = "t" }': "in clear",
        '"https://x/s", ca = "missing.pem"': "does not exist",
        '"https://x/s", syntaxes = ["nonsense"]': "syntaxes 'nonsense'",
        '"https://x/s", transfer_syntax_parameter = "no"': "true or false",
    }
    path = tmp_path / "g.toml"
    for value, message in cases.items():
        path.write_text(base % value)
        with pytest.raises(ConfigError, match=message):
            load_config(path)
    path.write_text(base % '"https://x/s", auth = { token = "t" }, syntaxes = ["htj2k", '
                           '"explicit"]')
    stow = load_config(path).routes[0].destination
    assert stow.syntaxes == (HTJ2K, "1.2.840.10008.1.2.1") and stow.token == "t"
