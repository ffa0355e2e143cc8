"""The gateway as a running service: the SCP, one forwarder per route, /status."""

from __future__ import annotations

import fcntl
import json
import logging
import signal
import ssl
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from pydicom.uid import UID
from pynetdicom import AE, AllStoragePresentationContexts, _config, evt
from pynetdicom.sop_class import Verification

from dicompress.codecs.registry import readable_syntaxes
from dicompress.fileio import TEMP_SUFFIX
from dicompress.gateway.config import ConfigError, GatewayConfig
from dicompress.gateway.forwarder import Forwarder
from dicompress.gateway.queue import FAILED, QUEUED, Queue
from dicompress.gateway.receiver import Receiver

LOG = logging.getLogger("dicompress.gateway")

#: What the SCP accepts: every syntax dicompress can decode (pydicom's decoders and ours).
ACCEPTED_SYNTAXES = [UID(u) for u in readable_syntaxes()]


class _LazyHandshake(ssl.SSLContext):
    """The TLS handshake on the association's own thread (at its first read), not in the
    accept loop: a client that connects and says nothing must not stall every other."""

    def wrap_socket(self, sock, *args, **kwargs):
        kwargs["do_handshake_on_connect"] = False
        return super().wrap_socket(sock, *args, **kwargs)


def server_context(config: GatewayConfig) -> ssl.SSLContext | None:
    tls = config.tls
    if tls is None:
        return None
    context = _LazyHandshake(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(tls.cert, tls.key)
    if tls.ca:
        context.load_verify_locations(cafile=tls.ca)
        context.verify_mode = ssl.CERT_REQUIRED  # only senders with a certificate we trust
    return context


class Gateway:
    def __init__(self, config: GatewayConfig) -> None:
        self.config = config
        self.stop_event = threading.Event()
        self.wake = {route.name: threading.Event() for route in config.routes}
        self.receiver = Receiver(config, self.wake)
        self.forwarders: list[Forwarder] = []
        self.server = None
        self.http = None
        self._lock = None

    def start(self) -> None:
        config = self.config
        (config.spool / "in").mkdir(parents=True, exist_ok=True)
        (config.spool / "out").mkdir(parents=True, exist_ok=True)
        (config.spool / "tmp").mkdir(parents=True, exist_ok=True)
        self._lock = open(config.spool / ".lock", "a")  # noqa: SIM115 - held while running
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            self._lock.close()
            raise ConfigError(f"{config.spool}: another gateway uses this spool") from None
        queue = Queue(config.database)
        try:
            self._recover(queue)
            queue.prune(config.keep_sent_days * 86400)
        finally:
            queue.close()
        # received datasets go to a file in the spool as they arrive, and are sent from
        # their files, not held in memory (process-wide settings: this process serves)
        _config.STORE_RECV_CHUNKED_DATASET = True
        _config.STORE_SEND_CHUNKED_DATASET = True
        self._tempdir = tempfile.tempdir
        tempfile.tempdir = str(config.spool / "tmp")
        ae = AE(ae_title=config.ae_title)
        ae.maximum_associations = config.max_associations
        ae.maximum_pdu_size = config.max_pdu
        ae.require_calling_aet = [ae_title for route in config.routes for ae_title in route.calling]
        ae.require_called_aet = True  # a sender aiming at another AE title is misconfigured
        ae.network_timeout = ae.acse_timeout = ae.dimse_timeout = 60
        for cx in AllStoragePresentationContexts:
            ae.add_supported_context(cx.abstract_syntax, ACCEPTED_SYNTAXES)
        ae.add_supported_context(Verification)
        handlers = [(evt.EVT_C_STORE, self.receiver.on_store),
                    (evt.EVT_REQUESTED, self.receiver.on_requested)]
        self.server = ae.start_server((config.host, config.port), block=False,
                                      evt_handlers=handlers, ssl_context=server_context(config))
        for route in config.routes:
            forwarder = Forwarder(config, route, self.stop_event, self.wake[route.name],
                                  on_sent=self.receiver.freed)
            forwarder.start()
            self.forwarders.append(forwarder)
        if config.status_port:
            self.http = _status_server(config, self.forwarders)
        LOG.info("listening as %s on %s:%d; %d route(s)", config.ae_title, config.host,
                 config.port, len(config.routes))

    def _recover(self, queue: Queue) -> None:
        """After a crash: temporaries and files never acknowledged (written, not queued)
        go; encoded copies are made again; everything queued is sent again."""
        spool = self.config.spool
        known = {Path(row[0]).name for row in queue.db.execute(
            "SELECT path FROM instances WHERE status IN (?, ?)", (QUEUED, FAILED))}
        removed = 0
        for path in (spool / "in").rglob("*"):
            # by name (random, unique): a spool moved to another disk keeps its files
            if path.is_file() and (path.name.endswith(TEMP_SUFFIX) or path.name not in known):
                path.unlink()
                removed += 1
        for folder in ("out", "tmp"):  # encoded copies, transfers cut off: made again
            for path in (self.config.spool / folder).iterdir():
                path.unlink()
        pending = len(known)
        if removed or pending:
            LOG.info("recovered: %d instance(s) to send, %d unacknowledged file(s) removed",
                     pending, removed)

    def stop(self) -> None:
        self.stop_event.set()
        for event in self.wake.values():
            event.set()
        if self.server is not None:
            self.server.shutdown()
        for forwarder in self.forwarders:
            forwarder.join(timeout=90)
        if self.http is not None:
            self.http.shutdown()
        lock = getattr(self, "_lock", None)
        if lock is not None:
            lock.close()
        if hasattr(self, "_tempdir"):
            tempfile.tempdir = self._tempdir

    def serve_forever(self) -> None:
        self.start()
        done = threading.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: done.set())
        done.wait()
        LOG.info("stopping: the association in progress finishes, the queue stays on disk")
        self.stop()


def status(config: GatewayConfig, forwarders: list | None = None) -> dict:
    if not config.database.is_file():
        return {"error": f"no queue at {config.database} (the gateway never ran here)"}
    queue = Queue(config.database, read_only=True)
    try:
        report = queue.status()
    finally:
        queue.close()
    if forwarders is not None:  # the running gateway's own threads
        now = time.time()
        report["forwarders"] = {f.route.name: {"alive": f.is_alive(),
                                                "seconds_since_loop": round(now - f.alive_at, 1)}
                                for f in forwarders}
    return report


def requeue_failed(config: GatewayConfig) -> int:
    """Instances set aside go back into the queue (their files back into the spool)."""
    queue = Queue(config.database)
    try:
        for item_id, path in queue.db.execute("SELECT id, path FROM instances WHERE status = ?",
                                              (FAILED,)).fetchall():
            source = config.spool / path
            target = config.spool / "in" / "requeued" / source.name
            if source.exists() and source.parent.name == "failed":
                target.parent.mkdir(parents=True, exist_ok=True)
                source.replace(target)
                queue.db.execute("UPDATE instances SET path = ? WHERE id = ?",
                                 (str(target.relative_to(config.spool)), item_id))
        return queue.requeue_failed()
    finally:
        queue.close()


def _status_server(config: GatewayConfig, forwarders: list) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - http.server's name
            if self.path.rstrip("/") != "/status":
                self.send_error(404)
                return
            body = json.dumps(status(config, forwarders), indent=2).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):  # quiet
            pass

    server = ThreadingHTTPServer(("127.0.0.1", config.status_port), Handler)  # loopback only
    threading.Thread(target=server.serve_forever, name="status", daemon=True).start()
    return server


