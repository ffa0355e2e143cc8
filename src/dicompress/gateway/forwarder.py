"""The Storage SCU side: one thread per route sends its queue to the destination.

Per association, one study (or its next `per_association` instances). Each SOP class
is proposed in separate presentation contexts, one transfer syntax each: the route's
target first, then the syntaxes of the route's fallback, so that the destination's
answer says exactly which it takes. An instance is encoded in the route's target when
the destination accepted it and the encoder takes the image. When not (the
destination refused the syntax, avoids it, or the encoder refused the layout or
failed), the route's `fallback` decides: uncompressed, the syntax it came in, or
hold; whatever is sent other than the target is recorded in the queue with the
reason, noted in /status, counted in /metrics and logged. An instance is marked sent
only on a success or warning status. A destination that is down, refuses the
association or fails a store is retried with a doubling delay.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from pydicom.uid import UID
from pynetdicom import AE

from dicompress.batch.worker import codec_config, codec_from_config
from dicompress.codecs import get_codec
from dicompress.codecs.registry import fallback_syntaxes
from dicompress.deid import deidentify_file, preparer
from dicompress.errors import DicompressError
from dicompress.gateway.config import GatewayConfig, Route, Stow
from dicompress.gateway.dimse import DimseLink, bound_send_queue, client_context
from dicompress.gateway.encoded import Encoded, Hold, reencode, syntax_name
from dicompress.gateway.logs import event
from dicompress.gateway.metrics import Metrics
from dicompress.gateway.queue import Item, Queue
from dicompress.gateway.stow import StowLink
from dicompress.layout import FrameLayout
from dicompress.pipeline.read import read_header
from dicompress.transcode import transcode_file

LOG = logging.getLogger("dicompress.gateway")

MAX_CONTEXTS = 128  # PS3.8: presentation context IDs are odd numbers 1-255
SEND_PATIENCE = 60.0  # seconds a destination may take nothing before it counts as down
POISON_AFTER = 5  # an instance that breaks the encoder or pynetdicom this often is set aside


class Forwarder(threading.Thread):
    def __init__(self, config: GatewayConfig, route: Route, stop: threading.Event,
                 wake: threading.Event, on_sent=None, metrics: Metrics | None = None) -> None:
        super().__init__(name=f"forward-{route.name}", daemon=True)
        self.config, self.route, self.stop, self.wake = config, route, stop, wake
        self.on_sent = on_sent or (lambda size: None)
        self.metrics = metrics or Metrics([route.name])
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
        event(logging.WARNING, "%s: %s; %d instance(s) retried in %.0f s or more"
              % (self.route.name, reason, len(items), self._delay(items[0])),
              route=self.route.name, result="retry")

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

    def _preferred(self, item: Item) -> tuple[str | None, str | None]:
        """The route's target syntax for this instance (it depends on the layout: JPEG
        8 or 12 bit; None when the instance has no pixels or its header cannot be read),
        and why it will not be tried, when that is known before the association: the
        encoder refuses the layout, or the destination avoids the syntax."""
        try:
            ds = read_header(self._path(item))
            if "PixelData" not in ds:
                return None, None
            layout = FrameLayout.from_dataset_header(ds)
            target = self._target.transfer_syntax_for(layout)
        except DicompressError:
            return None, None
        try:
            self._target.check_layout(layout)
        except DicompressError as exc:
            return target, f"the encoder refused the layout ({exc})"
        avoided = self.route.destination.avoided(target, layout.samples_per_pixel)
        if avoided is not None:
            return target, f"the destination avoids {avoided} (its avoid setting)"
        return target, None

    def _send(self, queue: Queue, items: list[Item]) -> None:
        """One batch (a study's next instances) over one link: an association, or a
        keep-alive connection to a STOW-RS server."""
        items, wanted = self._plan(queue, items)
        if not items:
            return
        if isinstance(self.route.destination, Stow):
            link = StowLink(self.route.destination)
        else:
            link = self._associate(queue, items, wanted)
            if link is None:
                return
        try:
            plan = []
            for item in items:
                accepted = link.accepts(item.sop_class)
                plan.append((item, [s for s in wanted[item.id]
                                    if accepted is None or s in accepted]))
            # the next instance is encoded while this one is on the wire
            with ThreadPoolExecutor(max_workers=1) as pool:
                encoded = [pool.submit(self._encode, item, usable) if usable else None
                           for item, usable in plan[:1]]
                for n, (item, usable) in enumerate(plan):
                    if n + 1 < len(plan):
                        nxt, nxt_usable = plan[n + 1]
                        encoded.append(pool.submit(self._encode, nxt, nxt_usable)
                                       if nxt_usable else None)
                    if not link.alive:  # lost on the one before: the rest go with the
                        for future in encoded[n:]:  # next link, uncharged; a server
                            if future is not None and not future.cancel():  # that is
                                self._discard(future)  # down: after a delay
                        if link.down:
                            self._back_off(queue, [i for i, _ in plan[n:]], link.down)
                        return
                    self._send_one(queue, link, item, wanted[item.id], usable, encoded[n])
        finally:
            link.close()

    def _plan(self, queue: Queue, items: list[Item]) -> tuple[list[Item], dict[int, list[str]]]:
        """Each instance's target and the syntaxes it may go in, in order; the instances
        the route's fallback holds already (fallback = "hold" and a known reason) are held."""
        wanted: dict[int, list[str]] = {}
        self._targets: dict[int, tuple[str | None, str | None]] = {}
        self._target = self._study_codec(queue, items[0].study)
        for item in items:
            target, not_tried = self._targets[item.id] = self._preferred(item)
            if target is None:  # no pixels: only the encoding may change, as it must
                order = [item.syntax_in, *fallback_syntaxes()]
            else:
                order = ([] if not_tried else [target]) + \
                    self.route.fallback_syntaxes(item.syntax_in)
            wanted[item.id] = list(dict.fromkeys(order))
        for item in [i for i in items if not wanted[i.id]]:
            self._hold(queue, item, self._targets[item.id][0],
                       f"{self._targets[item.id][1]}; fallback = 'hold'")
        return [item for item in items if wanted[item.id]], wanted

    def _associate(self, queue: Queue, items: list[Item], wanted: dict[int, list[str]]
                   ) -> DimseLink | None:
        """An association proposing each SOP class in each wanted syntax (one context a
        syntax), or None when the destination cannot be reached or rejects it. With more
        contexts than an association can carry, the batch is cut (items shortened)."""
        ae = AE(ae_title=self.config.ae_title)
        ae.maximum_pdu_size = self.config.max_pdu
        ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = 60
        ae.connection_timeout = 30  # a peer that accepts TCP but never answers TLS
        contexts = {(item.sop_class, s) for item in items for s in wanted[item.id]}
        if len(contexts) > MAX_CONTEXTS:  # many SOP classes: fewer instances this time
            keep, seen = [], set()
            for item in items:
                needed = {(item.sop_class, s) for s in wanted[item.id]}
                if len(seen | needed) > MAX_CONTEXTS:
                    break
                seen |= needed
                keep.append(item)
            items[:], contexts = keep, seen
        for sop_class, syntax in sorted(contexts):
            ae.add_requested_context(sop_class, [syntax])
        dest = self.route.destination
        tls_args = ((client_context(dest.tls), dest.tls.server_name or dest.host)
                    if dest.tls else None)
        assoc = ae.associate(dest.host, dest.port, ae_title=dest.ae_title, tls_args=tls_args)
        if not assoc.is_established:
            why = "rejected the association" if assoc.is_rejected else "cannot be reached"
            self._back_off(queue, items, f"{dest} {why}")
            return None
        bound_send_queue(assoc, patience=SEND_PATIENCE)
        return DimseLink(assoc)

    def _send_one(self, queue: Queue, link, item: Item, wanted: list[str],
                  usable: list[str], encoded) -> None:
        """Send one instance; whatever goes wrong is this instance's alone: it is retried
        later on its own backoff (never given up on: a destination may come to accept it),
        held when the route's fallback allows nothing that can be sent, or set aside when
        it breaks the encoder, pynetdicom or the association five times."""
        source = self._path(item)
        target = self._targets[item.id][0]
        if not usable:
            reason = (f"the destination accepts {UID(item.sop_class).name} in none of "
                      f"{', '.join(UID(s).name for s in wanted)}")
            if target is not None and self.route.fallback == "hold":
                self._hold(queue, item, target, f"{reason}; fallback = 'hold'")
            else:
                queue.retry(item.id, reason, self._delay(item))
                self._log(logging.WARNING, item, target, None, None, 0.0, "retry", reason)
            return
        result = None
        try:
            result = encoded.result()
            size_out = result.path.stat().st_size
            started = time.perf_counter()
            # the whole instance must cross the link before the answer can come
            state, reason = link.store(result.path, result.transfer_syntax, item.sop_instance,
                                       timeout=60 + size_out / self._min_rate)
            send_seconds = time.perf_counter() - started
            ms = (result.seconds + send_seconds) * 1000
            if state == "sent":
                queue.sent(item.id, size_out, result.transfer_syntax, target=target,
                           fallback=result.fallback, encode_ms=result.seconds * 1000,
                           send_ms=send_seconds * 1000)
                source.unlink(missing_ok=True)
                self.on_sent(item.size_in)
                self.metrics.sent(self.route.name, result.transfer_syntax, item.size_in,
                                  size_out, result.fallback is not None)
                self.metrics.observe("encode_seconds", self.route.name, result.seconds)
                self.metrics.observe("send_seconds", self.route.name, send_seconds)
                if result.fallback is not None:  # never silent: /status, the log, /metrics
                    queue.note(self.route.name, item.study,
                               f"{item.sop_instance} sent as {syntax_name(result.transfer_syntax)}"
                               f", not {syntax_name(target)}: {result.fallback}")
                self._log(logging.WARNING if result.fallback or reason else logging.INFO,
                          item, target, result.transfer_syntax, size_out, ms, "sent",
                          "; ".join(filter(None, [result.fallback, reason])) or None)
            elif state == "lost":  # it broke the association: this instance's doing?
                self._error(queue, item, reason)
            else:  # refused, or the server is down: later, on its own delay
                queue.retry(item.id, reason, self._delay(item))
                self._log(logging.WARNING, item, target, result.transfer_syntax, size_out, ms,
                          "retry", reason)
        except Hold as exc:
            self._hold(queue, item, target, str(exc))
        except DicompressError as exc:  # an object without pixels that cannot be re-encoded
            self._error(queue, item, str(exc))
        except Exception as exc:  # noqa: BLE001 - this file's, not the association's
            if result is None:  # the encoder: a bug of ours (foreign errors are translated)
                LOG.error("%s: encoding %s failed", self.route.name, item.sop_instance,
                          exc_info=True)
            self._error(queue, item, f"{type(exc).__name__}: {exc}")
        finally:
            if result is not None and result.path != source:
                result.path.unlink(missing_ok=True)  # encoded again on the next attempt

    def _log(self, level: int, item: Item, target: str | None, syntax_out: str | None,
             size_out: int | None, ms: float, result: str, reason: str | None) -> None:
        """The line per instance: route, SOP Instance UID, syntax and bytes in -> out, ms."""
        event(level, "instance", route=self.route.name, sop_instance=item.sop_instance,
              syntax_in=syntax_name(item.syntax_in), syntax_out=syntax_name(syntax_out),
              target=syntax_name(target), bytes_in=item.size_in, bytes_out=size_out,
              ms=round(ms, 1), result=result, reason=reason)

    def _hold(self, queue: Queue, item: Item, target: str | None, reason: str) -> None:
        queue.hold(item.id, target, reason)
        queue.note(self.route.name, item.study, f"{item.sop_instance} held: {reason}")
        self.metrics.count("held", self.route.name)
        self._log(logging.WARNING, item, target, None, None, 0.0, "held", reason)

    def _error(self, queue: Queue, item: Item, reason: str) -> None:
        """A failure of this instance itself (not of the link or the destination)."""
        if queue.bump_errors(item.id) >= POISON_AFTER:
            self._set_aside(queue, item, reason)
        else:
            queue.retry(item.id, reason, self._delay(item))

    def _discard(self, future) -> None:
        try:
            path = future.result().path
        except Exception:  # noqa: BLE001 - nothing was made
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
        self.metrics.count("failed", self.route.name)
        self._log(logging.ERROR, item, self._targets.get(item.id, (None,))[0], None, None, 0.0,
                  "failed", f"set aside after {POISON_AFTER} attempts ({reason}); "
                            "`dicompress serve --requeue` retries it")

    def _encode(self, item: Item, usable: list[str]) -> Encoded:
        """The file to send: in the route's target when the destination accepted it and
        the encoder takes the image, else in the first syntax of the route's fallback
        that works (recording why), else Hold."""
        started = time.perf_counter()
        target, reason = self._targets[item.id]
        if target is None:  # no pixels: the first usable encoding, nothing to compress
            errors = []
            for syntax in usable:
                try:
                    return Encoded(self._write(item, syntax), syntax, None,
                                   time.perf_counter() - started)
                except DicompressError as exc:
                    errors.append(f"{UID(syntax).name}: {exc}")
            raise DicompressError(f"{item.sop_instance}: cannot be sent in any syntax the "
                                  f"destination accepts ({'; '.join(errors)})")
        if reason is None:
            if target in usable:
                try:
                    return Encoded(self._write(item, target, self._target), target, None,
                                   time.perf_counter() - started)
                except DicompressError as exc:
                    reason = f"the encoder failed ({exc})"
            else:
                reason = f"the destination refused {syntax_name(target)}"
        tried = []
        for syntax in self.route.fallback_syntaxes(item.syntax_in):
            if syntax not in usable:
                continue
            try:
                return Encoded(self._write(item, syntax), syntax, reason,
                               time.perf_counter() - started)
            except DicompressError as exc:
                tried.append(f"{syntax_name(syntax)} failed too ({exc})")
        raise Hold("; ".join([reason, *tried, f"fallback = {self.route.fallback!r}"]))

    def _write(self, item: Item, syntax: str, codec=None) -> Path:
        """The instance in `syntax` (de-identified when the route says): the received file
        itself when nothing changes, else a file in out/."""
        source = self._path(item)
        deid = self.route.deid
        if syntax == item.syntax_in and deid is None:
            return source
        out = self.out_dir / f"{item.id}.dcm"
        if syntax == item.syntax_in:
            deidentify_file(source, out, deid)  # pixels copied as they are
        elif self._targets[item.id][0] is None:
            reencode(source, out, syntax, deid)  # no pixels: only the encoding
        else:
            transcode_file(source, out, codec or get_codec(syntax), threads=1,
                           codec_threads=os.cpu_count(),
                           prepare=preparer(deid) if deid is not None else None)
        return out
