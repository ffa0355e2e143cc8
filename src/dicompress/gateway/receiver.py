"""The Storage SCP side: accept an instance only once it is safe on disk and queued.

C-STORE success is returned after the dataset (exactly the bytes the sender encoded)
is in the spool, fsynced and renamed into place, and its row is committed. Anything
that cannot be parsed as the SOP instance it claims to be is refused with an error
status and leaves nothing behind. File names are ours (a counter and random hex),
never built from attributes.
"""

from __future__ import annotations

import errno
import logging
import os
import secrets
import shutil
import sqlite3
import threading
from pathlib import Path

from pydicom.uid import UID
from pynetdicom import _config

from dicompress.pipeline.read import pixel_span, read_header
from dicompress.errors import CorruptPixelData
from dicompress.fileio import atomic_output
from dicompress.gateway.config import GatewayConfig, folder_name
from dicompress.gateway.logs import event as log_event
from dicompress.gateway.metrics import Metrics
from dicompress.gateway.queue import Queue
from dicompress.layout import FrameLayout

LOG = logging.getLogger("dicompress.gateway")

# PS3.4 Table B.2-1 (Storage Service Class) statuses
SUCCESS = 0x0000
OUT_OF_RESOURCES = 0xA700
DOES_NOT_MATCH = 0xA900
CANNOT_UNDERSTAND = 0xC000


class Refused(Exception):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status


class Receiver:
    """The C-STORE and association handlers of the gateway's AE."""

    def __init__(self, config: GatewayConfig, wake: dict[str, threading.Event],
                 metrics: Metrics | None = None) -> None:
        self.config = config
        self.wake = wake
        self.metrics = metrics or Metrics([r.name for r in config.routes])
        self._local = threading.local()
        self._spool_bytes_lock = threading.Lock()
        self._spool_bytes: int | None = None
        self._admission = threading.Lock()

    def _queue(self) -> Queue:
        queue = getattr(self._local, "queue", None)
        if queue is None:
            queue = self._local.queue = Queue(self.config.database)
        return queue

    def spool_full(self) -> bool:
        with self._spool_bytes_lock:
            if self._spool_bytes is None:
                self._spool_bytes = self._queue().spool_bytes()
            return self._spool_bytes >= self.config.max_spool

    def freed(self, size: int) -> None:
        """An instance was sent and its file removed: its bytes are free again."""
        with self._spool_bytes_lock:
            if self._spool_bytes is not None:
                self._spool_bytes = max(0, self._spool_bytes - size)

    # -- events ---------------------------------------------------------------------
    def on_requested(self, event) -> None:
        """A new association: while the spool is full, the acceptor refuses it with
        A-ASSOCIATE-RJ transient / local limit exceeded (PS3.8 9.3.4), so senders keep
        their data and try later. pynetdicom applies the limit it reads here."""
        with self._admission:  # requests arrive on their own threads
            event.assoc.ae._maximum_associations = (  # noqa: SLF001 - no public switch
                0 if self.spool_full() else self.config.max_associations)

    def on_accepted(self, event) -> None:
        """The line per association accepted: who, from where, on which route."""
        requestor = event.assoc.requestor
        route = self.config.route_for(requestor.ae_title)
        log_event(logging.INFO, "association accepted", calling_ae=requestor.ae_title.strip(),
                  address=f"{requestor.address}:{requestor.port}",
                  route=route.name if route else None,
                  contexts=len(event.assoc.accepted_contexts))

    def on_rejected(self, event) -> None:
        """The line per association refused, with the reason pynetdicom's A-ASSOCIATE-RJ
        carried (its event gives none: the same checks, in the order it makes them)."""
        assoc = event.assoc
        requestor = assoc.requestor
        calling = requestor.ae_title.strip()
        called = str(getattr(requestor.primitive, "called_ae_title", "") or "").strip()
        acceptors = [a for a in assoc.ae.active_associations if a.is_acceptor]
        if len(acceptors) > assoc.ae.maximum_associations:
            reason = ("the spool is full" if assoc.ae.maximum_associations == 0 else
                      f"the association limit ({assoc.ae.maximum_associations}) is reached")
        elif called != self.config.ae_title:
            reason = f"the called AE title {called!r} is not the gateway's"
        elif self.config.route_for(calling) is None:
            reason = "the calling AE title is on no route"
        else:
            reason = "refused"
        log_event(logging.WARNING, "association rejected", calling_ae=calling,
                  called_ae=called, address=f"{requestor.address}:{requestor.port}",
                  reason=reason)

    def on_store(self, event) -> int:
        calling = event.assoc.requestor.ae_title.strip()
        route = self.config.route_for(calling)
        if route is None:  # the allow-list rejects at association; never reached
            return CANNOT_UNDERSTAND
        try:
            return self._store(event, route, calling)
        except Refused as exc:
            requestor = event.assoc.requestor
            log_event(logging.WARNING, "instance refused", route=route.name, calling_ae=calling,
                      address=f"{requestor.address}:{requestor.port}",
                      sop_instance=str(event.request.AffectedSOPInstanceUID),
                      status=f"0x{exc.status:04X}", reason=str(exc))
            return exc.status
        except OSError as exc:
            LOG.error("%s: cannot spool an instance from %s: %s", route.name, calling, exc)
            return OUT_OF_RESOURCES if exc.errno in (errno.ENOSPC, errno.EDQUOT) else 0xA701
        except sqlite3.Error as exc:  # the queue's disk is full, or locked too long
            LOG.error("%s: cannot queue an instance from %s: %s", route.name, calling, exc)
            return OUT_OF_RESOURCES

    def _store(self, event, route, calling: str) -> int:
        if self.spool_full():
            raise Refused(OUT_OF_RESOURCES, "the spool is full")
        request = event.request
        folder = self.config.spool / "in" / folder_name(route.name)
        path = folder / f"{secrets.token_hex(12)}.dcm"
        with atomic_output(path) as tmp:
            if _config.STORE_RECV_CHUNKED_DATASET:  # pynetdicom wrote it to a file as it came
                try:
                    os.replace(event.dataset_path, tmp)  # spool/tmp: the same filesystem
                except OSError:
                    with open(event.dataset_path, "rb") as src, open(tmp, "wb") as dst:
                        shutil.copyfileobj(src, dst, 1 << 20)
            else:  # the sender's bytes, not decoded
                tmp.write_bytes(event.encoded_dataset(include_meta=True))
            size = tmp.stat().st_size
            info = _check(tmp, str(request.AffectedSOPClassUID),
                          str(request.AffectedSOPInstanceUID))
        queue = self._queue()
        try:  # the path relative to the spool: the spool may move to a bigger disk
            queue.add(route.name, calling, *info, path=str(path.relative_to(self.config.spool)),
                      size_in=size)
        except BaseException:
            path.unlink(missing_ok=True)  # not queued: not ours to keep
            raise
        with self._spool_bytes_lock:
            if self._spool_bytes is not None:
                self._spool_bytes += size
        self.metrics.count("received", route.name)
        self.metrics.count("received_bytes", route.name, size)
        self.wake[route.name].set()
        return SUCCESS


def _check(path: Path, sop_class: str, sop_instance: str) -> tuple[str, str, str, str]:
    """(SOP Class, SOP Instance, Study Instance UID, transfer syntax) of a received file,
    or Refused when it is not the instance it claims to be."""
    try:
        # the same checks as every command's reading (issue 16): damage, declared sizes,
        # codestreams that disagree with the header are refused before an acknowledgement
        ds = read_header(path, any_object=True)
        syntax = str(ds.file_meta.TransferSyntaxUID)
        got_class, got_instance = str(ds.SOPClassUID), str(ds.SOPInstanceUID)
        study = str(ds.get("StudyInstanceUID", "") or "")
        deflated = UID(syntax).is_deflated  # offsets are in the inflated stream then
        if not deflated:  # every value left on disk must be there in full
            size = path.stat().st_size
            for tag in ds.keys():
                raw = ds.get_item(tag, keep_deferred=True)
                tell, length = getattr(raw, "value_tell", None), getattr(raw, "length", 0)
                if tell is not None and length != 0xFFFFFFFF and tell + length > size:
                    raise CorruptPixelData(f"{tag} is cut short: the dataset was truncated")
        if "PixelData" in ds:
            layout = FrameLayout.from_dataset_header(ds)  # the image attributes make sense
            raw = ds.get_item(0x7FE00010, keep_deferred=True)
            if getattr(raw, "value_tell", None) is not None and not deflated:
                start, end = pixel_span(path, raw)  # raises when cut short
                if raw.length != 0xFFFFFFFF and end - start < layout.frame_bytes * \
                        layout.number_of_frames * (1 if layout.bits_allocated > 1 else 0):
                    raise CorruptPixelData(f"Pixel Data holds {end - start} bytes; the image "
                                           "attributes need more")
    except Exception as exc:  # truncated, garbled, hostile: pydicom raises many types
        raise Refused(CANNOT_UNDERSTAND, f"cannot be parsed ({type(exc).__name__}: {exc})") from exc
    if (got_class, got_instance) != (sop_class, sop_instance):
        raise Refused(DOES_NOT_MATCH, "the dataset's SOP Class/Instance UIDs differ from the "
                                      "C-STORE request's")
    if not study:
        raise Refused(DOES_NOT_MATCH, "no Study Instance UID")
    return got_class, got_instance, study, syntax
