"""A large instance to a slow destination is not read into memory whole before it
leaves (pynetdicom's send queue is unbounded; the gateway bounds it)."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
import tracemalloc

import pydicom
import pytest

from dicompress.gateway import Gateway, load_config, status
from test_gateway import (_wait_for_port, _wait_until, free_port, make_series, storescu,
                          write_config)


class SlowLink:
    """A TCP relay that carries what the gateway sends at `rate` bytes per second."""

    def __init__(self, port: int, target_port: int, rate: float) -> None:
        self.rate, self.target_port = rate, target_port
        self.listener = socket.create_server(("127.0.0.1", port))
        self.listener.settimeout(0.5)
        self.stopped = threading.Event()
        self.flowing = threading.Event()  # cleared: nothing crosses (a stalled peer)
        self.flowing.set()
        self.stall_after: int | None = None  # bytes carried before flowing is cleared
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.stopped.is_set():
            try:
                client, _ = self.listener.accept()
            except OSError:
                continue
            client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
            server = socket.create_connection(("127.0.0.1", self.target_port))
            threading.Thread(target=self._pump, args=(client, server, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client, False), daemon=True).start()

    def _pump(self, source, sink, slow: bool) -> None:
        try:
            carried = 0
            while (not slow or self.flowing.wait()) and (
                    data := source.recv(16 * 1024 if slow else 1 << 16)):
                sink.sendall(data)
                carried += len(data)
                if slow and self.stall_after is not None and carried >= self.stall_after:
                    self.flowing.clear()
                    self.stall_after = None
                if slow:
                    time.sleep(len(data) / self.rate)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def stop(self) -> None:
        self.stopped.set()
        self.listener.close()


#: A Storage SCP in its own process (its memory must not count as the gateway's)
SCP = """
import sys
from pynetdicom import AE, AllStoragePresentationContexts, evt
port, max_pdu, out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
ae = AE(ae_title="READ")
ae.maximum_pdu_size = max_pdu
for cx in AllStoragePresentationContexts:
    ae.add_supported_context(cx.abstract_syntax, ["1.2.840.10008.1.2.1"])
def store(event):
    with open(out, "a") as f:
        f.write(event.request.AffectedSOPInstanceUID + "\\n")
    return 0
ae.start_server(("127.0.0.1", port), evt_handlers=[(evt.EVT_C_STORE, store)])
"""


@pytest.mark.parametrize("max_pdu", [16384, 0])  # 0: the destination sets no maximum
def test_a_large_instance_to_a_slow_link_is_sent_from_the_file(tmp_path, max_pdu):
    dest_port, link_port = free_port(), free_port()
    out = tmp_path / "received.txt"
    dest = subprocess.Popen([sys.executable, "-c", SCP, str(dest_port), str(max_pdu), str(out)])
    _wait_for_port(dest_port)
    link = SlowLink(link_port, dest_port, rate=4e6)
    (big,) = make_series(tmp_path / "series", 1, 2048)  # 8 MB of pixel data
    size = big.stat().st_size

    def received() -> list[str]:
        return out.read_text().split() if out.exists() else []

    config, port = write_config(tmp_path, link_port, target="explicit")
    gateway = Gateway(load_config(config))
    gateway.start()
    try:
        assert storescu(port, [big]).returncode == 0
        tracemalloc.start()
        _wait_until(lambda: len(received()) == 1, limit=120, what="sent over the slow link")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
        gateway.stop()
        link.stop()
        dest.terminate()
        dest.wait(timeout=10)
    assert received() == [pydicom.dcmread(big).SOPInstanceUID]
    assert status(load_config(config))["sent"] == 1
    # the instance went from its file, a few PDUs ahead of the link (pynetdicom alone
    # queues them all: 3 times the instance was measured, 0.5 times
    # with a 16 KiB PDU, where the kernel's buffers take part)
    assert peak < 3e6 < size, (peak, size)


def test_a_destination_that_stops_reading_is_given_up_on_then_retried(tmp_path, monkeypatch):
    from dicompress.gateway import forwarder

    monkeypatch.setattr(forwarder, "SEND_PATIENCE", 2.0)
    dest_port, link_port = free_port(), free_port()
    out = tmp_path / "received.txt"
    dest = subprocess.Popen([sys.executable, "-c", SCP, str(dest_port), "16384", str(out)])
    _wait_for_port(dest_port)
    link = SlowLink(link_port, dest_port, rate=50e6)
    link.stall_after = 1 << 20  # associated, 1 MB of the instance taken, then nothing
    (big,) = make_series(tmp_path / "series", 1, 2048)
    config, port = write_config(tmp_path, link_port, target="explicit")
    gateway = Gateway(load_config(config))
    gateway.start()
    try:
        assert storescu(port, [big]).returncode == 0
        _wait_until(lambda: status(load_config(config))["problems"], limit=60, what="given up")
        report = status(load_config(config))
        assert "took nothing for" in report["problems"][0]["error"]
        assert report["queued"] == 1 and report["failed"] == 0  # not the instance's fault
        link.flowing.set()
        _wait_until(lambda: out.exists() and out.read_text().split(), limit=120,
                    what="sent once the destination reads again")
    finally:
        gateway.stop()
        link.stop()
        dest.terminate()
        dest.wait(timeout=10)
    assert out.read_text().split()[0] == pydicom.dcmread(big).SOPInstanceUID
