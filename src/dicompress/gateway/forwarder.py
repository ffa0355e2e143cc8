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
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from pydicom.uid import UID, ExplicitVRLittleEndian, ImplicitVRLittleEndian
from pynetdicom import AE

from dicompress.codecs import get_codec
from dicompress.deid import deidentify_file, preparer
from dicompress.errors import DicompressError
from dicompress.gateway.config import GatewayConfig, Route, TLS
from dicompress.gateway.queue import Item, Queue
from dicompress.layout import FrameLayout
from dicompress.transcode import read_header, transcode_file

LOG = logging.getLogger("dicompress.gateway")

MAX_CONTEXTS = 128  # PS3.8: presentation context IDs are odd numbers 1-255
GIVE_UP_AFTER = 50  # attempts at one instance the destination keeps failing


def client_context(tls: TLS) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=tls.ca)
    context.check_hostname = False  # DICOM peers are named by AE title and address
    if tls.cert:
        context.load_cert_chain(tls.cert, tls.key)
    return context


class Forwarder(threading.Thread):
    def __init__(self, config: GatewayConfig, route: Route, stop: threading.Event,
                 wake: threading.Event, on_sent=None) -> None:
        super().__init__(name=f"forward-{route.name}", daemon=True)
        self.config, self.route, self.stop, self.wake = config, route, stop, wake
        self.on_sent = on_sent or (lambda: None)
        self.delay = config.retry_initial
        self.out_dir = config.spool / "out"
        self._study_codecs: dict[str, object] = {}

    def run(self) -> None:
        queue = Queue(self.config.database)
        try:
            while not self.stop.is_set():
                items = queue.due(self.route.name, self.config.per_association,
                                  self.route.settle)
                if not items:
                    self.wake.wait(1.0)
                    self.wake.clear()
                    continue
                try:
                    self._send(queue, items)
                except Exception as exc:  # never let the thread die: log, back off, go on
                    LOG.exception("%s: sending failed", self.route.name)
                    self._back_off(queue, items, f"unexpected {type(exc).__name__}: {exc}")
        finally:
            queue.close()

    # -- one association --------------------------------------------------------------
    def _back_off(self, queue: Queue, items: list[Item], reason: str) -> None:
        for item in items:
            queue.retry(item.id, reason, self.delay)
        LOG.warning("%s: %s; %d instance(s) retried in %.0f s", self.route.name, reason,
                    len(items), self.delay)
        self.delay = min(self.delay * 2, self.config.retry_max)

    def _study_codec(self, queue: Queue, study: str):
        """The route's codec for this study: with a budget, fitted to the whole study
        (decided once per study and run, when its first instances go)."""
        if self.route.budget is None:
            return self.route.codec()
        if study not in self._study_codecs:
            pixels = headers = 0
            members = queue.study_items(self.route.name, study)
            for item in members:
                try:
                    ds = read_header(Path(item.path))
                    layout = FrameLayout.from_dataset(ds)
                    size = layout.frame_bytes * layout.number_of_frames
                except (DicompressError, OSError):
                    size = 0  # no pixels, or sent already: all of it counted as header
                pixels += size
                headers += max(0, item.size_in - size)
            codec, note = self.route.codec_for(pixels, headers, len(members))
            if note:
                queue.note(self.route.name, study, note)
                LOG.warning("%s: study %s: %s", self.route.name, study, note)
            self._study_codecs[study] = codec
            while len(self._study_codecs) > 1000:  # a service runs for months
                self._study_codecs.pop(next(iter(self._study_codecs)))
        return self._study_codecs[study]

    def _preferred(self, item: Item) -> str | None:
        """The route's target syntax for this instance (it depends on the layout: JPEG
        8 or 12 bit), or None when the instance has no pixels or cannot be read."""
        try:
            ds = read_header(Path(item.path))
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
        tls_args = (client_context(dest.tls), dest.host) if dest.tls else None
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
                    if not assoc.is_established:
                        for future in encoded[n:]:
                            if future is not None:
                                future.cancel()
                        self._back_off(queue, items[n:], "the association was lost")
                        return
                    self._send_one(queue, assoc, item, wanted[item.id], usable, encoded[n])
            self.delay = self.config.retry_initial
        finally:
            if assoc.is_established:
                assoc.release()

    def _send_one(self, queue: Queue, assoc, item: Item, wanted: list[str],
                  usable: list[str], encoded) -> None:
        if not usable:
            queue.fail(item.id, f"the destination accepts {UID(item.sop_class).name} in none of "
                                f"{', '.join(UID(s).name for s in wanted)}")
            return
        try:
            path, syntax = encoded.result()
        except DicompressError as exc:
            queue.fail(item.id, str(exc))
            LOG.error("%s: %s", self.route.name, exc)
            return
        try:
            status = assoc.send_c_store(path)
        finally:
            if path != Path(item.path):
                size_out = path.stat().st_size if path.exists() else 0
            else:
                size_out = item.size_in
        code = getattr(status, "Status", None) if status else None
        if code is not None and (code == 0 or 0xB000 <= code <= 0xBFFF):
            queue.sent(item.id, size_out, syntax)
            Path(item.path).unlink(missing_ok=True)
            if path != Path(item.path):
                path.unlink(missing_ok=True)
            self.on_sent()
            return
        reason = ("no response" if code is None else f"the destination answered 0x{code:04X}")
        if item.attempts + 1 >= GIVE_UP_AFTER:
            queue.fail(item.id, f"{reason} ({GIVE_UP_AFTER} times)")
        else:
            queue.retry(item.id, reason, self.delay)

    def _encode(self, item: Item, usable: list[str]) -> tuple[Path, str]:
        """The file to send and its syntax: the first usable syntax we can produce.
        Without de-identification, an instance already in that syntax goes as it came;
        if encoding fails and its own syntax is usable, it goes as it came too."""
        source = Path(item.path)
        deid = self.route.deid
        out = self.out_dir / f"{item.id}.dcm"
        errors = []
        for syntax in usable:
            if syntax == item.syntax_in and deid is None:
                return source, syntax
            try:
                if syntax == item.syntax_in or self._targets.get(item.id) is None:
                    if syntax != item.syntax_in:
                        errors.append(f"{UID(syntax).name}: not an image; sent in its own syntax")
                        continue
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
