"""The gateway as a running service: the SCP, one forwarder per route, and on the
status port (loopback) /status (JSON), /metrics (Prometheus) and / (a status page).
Also the operator's commands on the queue: requeue, drop, reroute (audited)."""

from __future__ import annotations

import fcntl
import json
import logging
import os
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
from dicompress.errors import ConfigError
from dicompress.fileio import TEMP_SUFFIX
from dicompress.gateway.config import GatewayConfig
from dicompress.gateway.forwarder import Forwarder
from dicompress.gateway.logs import event as log_event
from dicompress.gateway.metrics import Metrics
from dicompress.gateway.queue import FAILED, HELD, QUEUED, Queue
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
        self.metrics = Metrics([route.name for route in config.routes])
        self.receiver = Receiver(config, self.wake, self.metrics)
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
                    (evt.EVT_REQUESTED, self.receiver.on_requested),
                    (evt.EVT_ACCEPTED, self.receiver.on_accepted),
                    (evt.EVT_REJECTED, self.receiver.on_rejected)]
        self.server = ae.start_server((config.host, config.port), block=False,
                                      evt_handlers=handlers, ssl_context=server_context(config))
        for route in config.routes:
            forwarder = Forwarder(config, route, self.stop_event, self.wake[route.name],
                                  on_sent=self.receiver.freed, metrics=self.metrics)
            forwarder.start()
            self.forwarders.append(forwarder)
        if config.status_port:
            self.http = _status_server(config, self.forwarders, self.metrics)
        LOG.info("listening as %s on %s:%d; %d route(s)", config.ae_title, config.host,
                 config.port, len(config.routes))

    def _recover(self, queue: Queue) -> None:
        """After a crash: temporaries and files never acknowledged (written, not queued)
        go; encoded copies are made again; everything queued is sent again. A file is
        found by its name (random, unique) in in/ or failed/ wherever it is: a crash
        between moving a file (set aside, requeued) and updating its row, or a spool
        moved to another disk, leaves a row whose path is stale."""
        spool = self.config.spool
        files = {path.name: path for folder in ("in", "failed") if (spool / folder).is_dir()
                 for path in (spool / folder).rglob("*")
                 if path.is_file() and not path.name.endswith(TEMP_SUFFIX)}
        rows = queue.db.execute("SELECT id, path FROM instances WHERE status IN (?, ?, ?)",
                                (QUEUED, FAILED, HELD)).fetchall()
        known = set()
        for item_id, path in rows:
            name = Path(path).name
            known.add(name)
            found = files.get(name)
            if found is not None and found != spool / path:
                queue.db.execute("UPDATE instances SET path = ? WHERE id = ?",
                                 (str(found.relative_to(spool)), item_id))
        removed = 0
        for path in (spool / "in").rglob("*"):
            if path.is_file() and (path.name.endswith(TEMP_SUFFIX) or path.name not in known):
                path.unlink()
                removed += 1
        for folder in ("out", "tmp"):  # encoded copies, transfers cut off: made again
            for path in (self.config.spool / folder).iterdir():
                path.unlink()
        if removed or rows:
            LOG.info("recovered: %d instance(s) queued, held or set aside, %d unacknowledged "
                     "file(s) removed", len(rows), removed)

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
        report = queue.status([route.name for route in config.routes])
    finally:
        queue.close()
    routes = {route.name: route for route in config.routes}
    for name, entry in report["routes"].items():
        route = routes.get(name)  # None: a route since removed from the configuration
        entry["target"] = route.target if route else None
        entry["destination"] = str(route.destination) if route else None
    if forwarders is not None:  # the running gateway's own threads
        now = time.time()
        report["forwarders"] = {f.route.name: {"alive": f.is_alive(),
                                                "seconds_since_loop": round(now - f.alive_at, 1)}
                                for f in forwarders}
    return report


class OperatorError(ConfigError):
    """An operator's command that cannot be done (unknown UID or route)."""


def _audit(config: GatewayConfig, queue: Queue, action: str, sop_instance: str, route: str,
           detail: str) -> None:
    """Kept twice: a row in the queue, and a line in spool/audit.log (JSON)."""
    queue.audit(action, sop_instance, route, detail)
    entry = {"time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "action": action,
             "sop_instance": sop_instance, "route": route, "detail": detail}
    with open(config.spool / "audit.log", "a", encoding="utf-8") as log:
        log.write(json.dumps(entry) + "\n")
        log.flush()
        os.fsync(log.fileno())
    log_event(logging.INFO, "operator", action=action, sop_instance=sop_instance, route=route,
              detail=detail)


def _back_in(config: GatewayConfig, path: str) -> str:
    """A set-aside file moved back under in/ (its row is updated after: a crash in
    between is mended at start, where files are found by name)."""
    source = config.spool / path
    if source.exists() and source.parent.name == "failed":
        target = config.spool / "in" / "requeued" / source.name
        target.parent.mkdir(parents=True, exist_ok=True)
        source.replace(target)
        return str(target.relative_to(config.spool))
    return path


def requeue(config: GatewayConfig) -> int:
    """Instances held or set aside go back into the queue (their files back into in/)."""
    queue = Queue(config.database)
    try:
        rows = queue.set_aside()
        for item_id, sop_instance, route, path in rows:
            queue.requeue(item_id, _back_in(config, path))
            _audit(config, queue, "requeue", sop_instance, route, "queued again")
        return len(rows)
    finally:
        queue.close()


def _waiting(queue: Queue, sop_instance: str) -> list[tuple[int, str, str, str]]:
    rows = queue.find(sop_instance)
    if not rows:
        raise OperatorError(f"{sop_instance}: no instance of that SOP Instance UID waits in "
                            "the queue (queued, held or failed)")
    return rows


def drop(config: GatewayConfig, sop_instance: str, reason: str = "dropped by the operator"
         ) -> int:
    """Forget an instance a destination rejects forever: its rows leave the queue (kept,
    as dropped) and its files are deleted."""
    queue = Queue(config.database)
    try:
        rows = _waiting(queue, sop_instance)
        for item_id, route, state, path in rows:
            queue.drop(item_id, reason)
            _audit(config, queue, "drop", sop_instance, route, f"was {state}")
            (config.spool / path).unlink(missing_ok=True)  # after the row: a crash leaves
        return len(rows)                                    # a file unknown, removed at start
    finally:
        queue.close()


def reroute(config: GatewayConfig, sop_instance: str, route_name: str) -> int:
    """Send an instance on another route (another destination, target, fallback)."""
    if not any(route.name == route_name for route in config.routes):
        raise OperatorError(f"no route {route_name!r} (routes: "
                            f"{', '.join(route.name for route in config.routes)})")
    queue = Queue(config.database)
    try:
        rows = _waiting(queue, sop_instance)
        for item_id, route, state, path in rows:
            queue.reroute(item_id, route_name, _back_in(config, path))
            _audit(config, queue, "reroute", sop_instance, route,
                   f"was {state} on {route!r}; now queued on {route_name!r}")
        return len(rows)
    finally:
        queue.close()


def _status_server(config: GatewayConfig, forwarders: list, metrics: Metrics
                   ) -> ThreadingHTTPServer:
    from dicompress.gateway.page import status_page

    def scrape() -> str:
        queue = Queue(config.database, read_only=True)
        try:
            return metrics.exposition(queue.depth())
        finally:
            queue.close()

    pages = {
        "/status": (lambda: json.dumps(status(config, forwarders), indent=2),
                    "application/json"),
        "/metrics": (scrape, "text/plain; version=0.0.4; charset=utf-8"),
        "/": (lambda: status_page(config, status(config, forwarders)),
              "text/html; charset=utf-8"),
    }

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - http.server's name
            page = pages.get(self.path.split("?")[0].rstrip("/") or "/")
            if page is None:
                self.send_error(404)
                return
            make, content_type = page
            body = make().encode()
            self.send_response(200)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):  # quiet
            pass

    server = ThreadingHTTPServer(("127.0.0.1", config.status_port), Handler)  # loopback only
    threading.Thread(target=server.serve_forever, name="status", daemon=True).start()
    return server
