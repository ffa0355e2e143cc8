"""The Storage SCU side: one thread per route sends its queue to the destination.

Per association, one study (or its next `per_association` instances). Each SOP class
is proposed in separate presentation contexts, one transfer syntax each: the route's
target first, then Explicit and Implicit VR Little Endian, then the syntax it was
received in, so that the destination's answer says exactly which it takes. An
instance is encoded in the best syntax the destination accepted (never one it
refused) and is marked sent only on a success or warning status. A destination that
is down, refuses the association or fails a store is retried with a doubling delay.
"""

from __future__ import annotations

import logging
import os
import ssl
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pydicom
from pydicom.uid import UID, ExplicitVRLittleEndian, ImplicitVRLittleEndian
from pynetdicom import AE
from pynetdicom.status import code_to_category

from dicompress.batch.worker import codec_config, codec_from_config
from dicompress.codecs import get_codec
from dicompress.deid import deidentify_file, preparer
from dicompress.deid.files import check_burned_in, deidentifier
from dicompress.errors import DicompressError
from dicompress.gateway.config import GatewayConfig, Route, TLS
from dicompress.gateway.queue import Item, Queue
from dicompress.layout import FrameLayout
from dicompress.pipeline.mark import complete_file_meta
from dicompress.pipeline.read import read_header
from dicompress.pipeline.write import write_dataset
from dicompress.transcode import transcode_file

LOG = logging.getLogger("dicompress.gateway")

MAX_CONTEXTS = 128  # PS3.8: presentation context IDs are odd numbers 1-255
POISON_AFTER = 5  # an instance that breaks the encoder or pynetdicom this often is set aside


def _reencode(source: Path, out: Path, syntax: str, deid) -> None:
    """An object without pixel data in another uncompressed syntax (it is small)."""
    ds = pydicom.dcmread(source)
    if deid is not None:
        check_burned_in(ds, deid)
        deidentifier(deid).apply(ds)
    ds.file_meta.TransferSyntaxUID = syntax
    complete_file_meta(ds)
    write_dataset(out, ds)


def client_context(tls: TLS) -> ssl.SSLContext:
    """Only the CA given (not the system's), and the peer's certificate must name it."""
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=tls.ca)
    context.check_hostname = True
    if tls.cert:
        context.load_cert_chain(tls.cert, tls.key)
    return context


class Forwarder(threading.Thread):
    def __init__(self, config: GatewayConfig, route: Route, stop: threading.Event,
                 wake: threading.Event, on_sent=None) -> None:
        super().__init__(name=f"forward-{route.name}", daemon=True)
        self.config, self.route, self.stop, self.wake = config, route, stop, wake
        self.on_sent = on_sent or (lambda size: None)
        self.out_dir = config.spool / "out"
        self.failed_dir = config.spool / "failed"
        self.alive_at = time.time()  # for /status: a forwarder that stopped looping shows
        # the slowest rate an instance is allowed to cross the link at (timeouts)
        self._min_rate = max(16_000.0, (route.link_rate or 2_000_000) / 8 / 4)

    def run(self) -> None:
        queue = None
        while not self.stop.is_set():
            try:  # nothing may end this loop but stop: a full disk, a bug, a library's error
                if queue is None:
                    queue = Queue(self.config.database)
                self.alive_at = time.time()
                items = queue.due(self.route.name, self.config.per_association,
                                  self.route.settle)
                if not items:
                    self.wake.wait(1.0)
                    self.wake.clear()
                    continue
                try:
                    self._send(queue, items)
                except Exception as exc:
                    LOG.exception("%s: sending failed", self.route.name)
                    self._back_off(queue, items, f"unexpected {type(exc).__name__}: {exc}")
            except Exception:
                LOG.exception("%s: the forwarder's loop failed; trying again", self.route.name)
                if queue is not None:
                    try:
                        queue.close()
                    finally:
                        queue = None
                self.stop.wait(5.0)
        if queue is not None:
            queue.close()

    # -- one association --------------------------------------------------------------
    def _delay(self, item: Item) -> float:
        """Each instance's own backoff: doubling with its attempts, up to retry_max."""
        return min(self.config.retry_initial * 2 ** min(item.attempts, 30), self.config.retry_max)

    def _back_off(self, queue: Queue, items: list[Item], reason: str) -> None:
        for item in items:
            queue.retry(item.id, reason, self._delay(item))
        LOG.warning("%s: %s; %d instance(s) retried in %.0f s or more", self.route.name,
                    reason, len(items), self._delay(items[0]))

    def _path(self, item: Item) -> Path:
        return self.config.spool / item.path  # relative (older rows: absolute)

    def _study_codec(self, queue: Queue, study: str):
        """The route's codec for this study: with a budget, fitted to the study when its
        first instances go, and kept in the queue (a restart goes on with the same
        settings, so resent instances keep their derived UIDs)."""
        if self.route.budget is None:
            return self.route.codec()
        kept = queue.plan(self.route.name, study)
        if kept is not None:
            return codec_from_config(kept)
        pixels = headers = 0
        members = queue.study_items(self.route.name, study)
        for item in members:
            try:
                layout = FrameLayout.from_dataset(read_header(self._path(item)))
                size = layout.frame_bytes * layout.number_of_frames
            except (DicompressError, OSError):
                size = 0  # no pixels: all of it is header
            pixels += size
            headers += max(0, item.size_in - size)
        spent = queue.study_sent_bytes(self.route.name, study)  # sent before (no plan kept)
        codec, note = self.route.codec_for(pixels, headers + spent, len(members))
        if note:
            queue.note(self.route.name, study, note)
            LOG.warning("%s: study %s: %s", self.route.name, study, note)
        queue.set_plan(self.route.name, study, codec_config(codec))
        return codec

    def _preferred(self, item: Item) -> str | None:
        """The route's target syntax for this instance (it depends on the layout: JPEG
        8 or 12 bit), or None when the instance has no pixels or cannot be read."""
        try:
            ds = read_header(self._path(item))
            if "PixelData" not in ds:
                return None
            return self._target.transfer_syntax_for(FrameLayout.from_dataset_header(ds))
        except DicompressError:
            return None

    def _send(self, queue: Queue, items: list[Item]) -> None:
        wanted: dict[int, list[str]] = {}
        ae = AE(ae_title=self.config.ae_title)
        ae.maximum_pdu_size = self.config.max_pdu
        ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = 60
        ae.connection_timeout = 30  # a peer that accepts TCP but never answers TLS
        contexts: set[tuple[str, str]] = set()
        self._targets: dict[int, str | None] = {}
        self._target = self._study_codec(queue, items[0].study)
        for item in items:
            target = self._targets[item.id] = self._preferred(item)
            order = [target or item.syntax_in, str(ExplicitVRLittleEndian),
                     str(ImplicitVRLittleEndian), item.syntax_in]
            wanted[item.id] = list(dict.fromkeys(order))
            for syntax in wanted[item.id]:
                contexts.add((item.sop_class, syntax))
        if len(contexts) > MAX_CONTEXTS:  # many SOP classes: fewer instances this time
            keep, seen = [], set()
            for item in items:
                needed = {(item.sop_class, s) for s in wanted[item.id]}
                if len(seen | needed) > MAX_CONTEXTS:
                    break
                seen |= needed
                keep.append(item)
            items, contexts = keep, seen
        for sop_class, syntax in sorted(contexts):
            ae.add_requested_context(sop_class, [syntax])
        dest = self.route.destination
        tls_args = ((client_context(dest.tls), dest.tls.server_name or dest.host)
                    if dest.tls else None)
        assoc = ae.associate(dest.host, dest.port, ae_title=dest.ae_title, tls_args=tls_args)
        if not assoc.is_established:
            why = "rejected the association" if assoc.is_rejected else "cannot be reached"
            self._back_off(queue, items, f"{dest.ae_title}@{dest.host}:{dest.port} {why}")
            return
        try:
            accepted: dict[str, set[str]] = {}
            for cx in assoc.accepted_contexts:
                accepted.setdefault(str(cx.abstract_syntax), set()).add(str(cx.transfer_syntax[0]))
            plan = [(item, [s for s in wanted[item.id] if s in accepted.get(item.sop_class, ())])
                    for item in items]
            # the next instance is encoded while this one is on the wire
            with ThreadPoolExecutor(max_workers=1) as pool:
                encoded = [pool.submit(self._encode, item, usable) if usable else None
                           for item, usable in plan[:1]]
                for n, (item, usable) in enumerate(plan):
                    if n + 1 < len(plan):
                        nxt, nxt_usable = plan[n + 1]
                        encoded.append(pool.submit(self._encode, nxt, nxt_usable)
                                       if nxt_usable else None)
                    if not assoc.is_established:  # lost on the one before: the rest go
                        for future in encoded[n:]:  # with the next association, uncharged
                            if future is not None and not future.cancel():
                                self._discard(future)
                        return
                    self._send_one(queue, assoc, item, wanted[item.id], usable, encoded[n])
        finally:
            if assoc.is_established:
                assoc.release()

    def _send_one(self, queue: Queue, assoc, item: Item, wanted: list[str],
                  usable: list[str], encoded) -> None:
        """Send one instance; whatever goes wrong is this instance's alone: it is retried
        later on its own backoff (never given up on: a destination may come to accept it),
        or set aside when it breaks the encoder, pynetdicom or the association five times."""
        source = self._path(item)
        if not usable:
            queue.retry(item.id, f"the destination accepts {UID(item.sop_class).name} in none "
                                 f"of {', '.join(UID(s).name for s in wanted)}", self._delay(item))
            return
        path = None
        try:
            path, syntax = encoded.result()
            size_out = path.stat().st_size
            # the whole instance must cross the link before the answer can come
            assoc.dimse_timeout = assoc.network_timeout = 60 + size_out / self._min_rate
            status = assoc.send_c_store(path)
            code = getattr(status, "Status", None) if status else None
            if code is not None and code_to_category(code) in ("Success", "Warning"):
                queue.sent(item.id, size_out, syntax)
                source.unlink(missing_ok=True)
                self.on_sent(item.size_in)
                return
            if code is None and not assoc.is_established:  # it broke the association
                self._error(queue, item, "the destination dropped the association on it")
            else:
                reason = "no response" if code is None else \
                    f"the destination answered 0x{code:04X}"
                queue.retry(item.id, reason, self._delay(item))
        except Exception as exc:  # encoder or pynetdicom: this file, not the association
            self._error(queue, item, f"{type(exc).__name__}: {exc}")
        finally:
            if path is not None and path != source:
                path.unlink(missing_ok=True)  # encoded again on the next attempt

    def _error(self, queue: Queue, item: Item, reason: str) -> None:
        """A failure of this instance itself (not of the link or the destination)."""
        if queue.bump_errors(item.id) >= POISON_AFTER:
            self._set_aside(queue, item, reason)
        else:
            queue.retry(item.id, reason, self._delay(item))

    def _discard(self, future) -> None:
        try:
            path, _ = future.result()
        except Exception:
            return
        if path.parent == self.out_dir:
            path.unlink(missing_ok=True)

    def _set_aside(self, queue: Queue, item: Item, reason: str) -> None:
        source = self._path(item)
        self.failed_dir.mkdir(exist_ok=True)
        target = self.failed_dir / source.name
        try:
            source.replace(target)
        except OSError:
            target = source
        queue.fail(item.id, f"set aside after {POISON_AFTER} attempts: {reason}",
                   str(target.relative_to(self.config.spool)))
        LOG.error("%s: %s set aside (%s); `dicompress serve --requeue` retries it",
                  self.route.name, item.sop_instance, reason)

    def _encode(self, item: Item, usable: list[str]) -> tuple[Path, str]:
        """The file to send and its syntax: the first usable syntax we can produce.
        Without de-identification, an instance already in that syntax goes as it came;
        if encoding fails and its own syntax is usable, it goes as it came too."""
        source = self._path(item)
        deid = self.route.deid
        out = self.out_dir / f"{item.id}.dcm"
        errors = []
        for syntax in usable:
            if syntax == item.syntax_in and deid is None:
                return source, syntax
            try:
                if self._targets.get(item.id) is None and syntax != item.syntax_in:
                    _reencode(source, out, syntax, deid)  # no pixels: only the encoding
                    return out, syntax
                if syntax == item.syntax_in:
                    deidentify_file(source, out, deid)  # pixels copied as they are
                    return out, syntax
                codec = self._target if syntax == self._targets[item.id] else get_codec(syntax)
                transcode_file(source, out, codec, threads=1, codec_threads=os.cpu_count(),
                               prepare=preparer(deid) if deid is not None else None)
                return out, syntax
            except DicompressError as exc:
                errors.append(f"{UID(syntax).name}: {exc}")
        if item.syntax_in in usable and deid is None:
            return source, item.syntax_in
        raise DicompressError(f"{item.sop_instance}: cannot be sent in any syntax the "
                              f"destination accepts ({'; '.join(errors)})")
