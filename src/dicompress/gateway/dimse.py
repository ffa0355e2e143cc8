"""The DICOM network link of a route (PS3.7 C-STORE over PS3.8 associations): one
association's accepted syntaxes and C-STORE (`DimseLink`), a bounded send queue for
pynetdicom, and the TLS context a client presents."""

from __future__ import annotations

import queue as queues
import ssl
from pathlib import Path

from pynetdicom.pdu_primitives import MaximumLengthNotification
from pynetdicom.status import code_to_category

from dicompress.gateway.config import TLS


SEND_AHEAD = 1 << 20  # bytes of P-DATA PDUs pynetdicom may hold ahead of the socket
UNLIMITED_PDU = 1 << 18  # our PDU size for a peer that sets no maximum (PS3.8 D.1: 0)


class _SendAhead(queues.Queue):
    """pynetdicom's queue of PDUs waiting for the socket, bounded.

    pynetdicom (2.x/3.x) puts every P-DATA PDU of a message on an unbounded queue as
    fast as it reads the file; to a slow link a large instance went into memory whole
    before its first bytes left. Here the thread that sends the message waits while the
    association's reactor drains the queue; it gives up, with ConnectionError, when the
    reactor has stopped (the association is gone) or nothing left for `patience` seconds.
    """

    def __init__(self, dul, patience: float, pdu_size: int) -> None:
        super().__init__(max(4, SEND_AHEAD // pdu_size))
        self.dul, self.patience = dul, patience

    def put(self, item, block=True, timeout=None) -> None:
        waited = 0.0
        while True:
            try:
                return super().put(item, timeout=0.5)
            except queues.Full:
                waited += 0.5
                if not self.dul.is_alive() or waited > self.patience:
                    raise ConnectionError(f"the destination took nothing for {waited:.0f} s"
                                          ) from None


def bound_send_queue(assoc, patience: float) -> None:
    """Give an established association a bounded send queue (see _SendAhead), and PDUs
    of at most UNLIMITED_PDU bytes when the peer set no maximum (pynetdicom would send
    a whole instance as one PDU, read into memory)."""
    if not assoc.acceptor.maximum_length:  # negotiated: set in the peer's own item
        for item in assoc.acceptor.user_information:
            if isinstance(item, MaximumLengthNotification):
                item.maximum_length_received = UNLIMITED_PDU
    dul = assoc.dul
    bounded = _SendAhead(dul, patience, assoc.acceptor.maximum_length or UNLIMITED_PDU)
    with dul.to_provider_queue.mutex:  # nothing is waiting once established; if it is,
        bounded.queue.extend(dul.to_provider_queue.queue)  # it keeps its place
        dul.to_provider_queue.queue.clear()
        dul.to_provider_queue = bounded


class DimseLink:
    """One association: the syntaxes it accepted per SOP class, and C-STORE."""

    def __init__(self, assoc) -> None:
        self.assoc = assoc
        self.down: str | None = None  # the destination stopped taking data (not lost:
        # a lost association is tried again at once, a stalled one after a delay)
        self.accepted: dict[str, set[str]] = {}
        for cx in assoc.accepted_contexts:
            self.accepted.setdefault(str(cx.abstract_syntax), set()).add(
                str(cx.transfer_syntax[0]))

    @property
    def alive(self) -> bool:
        return self.assoc.is_established

    def accepts(self, sop_class: str) -> set[str]:
        return self.accepted.get(sop_class, set())

    def store(self, path: Path, transfer_syntax: str, sop_instance: str, timeout: float
              ) -> tuple[str, str | None]:
        """("sent", warning or None), ("refused", reason), ("lost", reason) or ("down",
        reason)."""
        self.assoc.dimse_timeout = self.assoc.network_timeout = timeout
        try:
            status = self.assoc.send_c_store(path)
        except ConnectionError as exc:  # _SendAhead: the destination stopped reading
            self.assoc.abort()
            self.down = f"{exc}; the association was aborted"
            return "down", self.down
        code = getattr(status, "Status", None) if status else None
        if code is not None and code_to_category(code) in ("Success", "Warning"):
            return "sent", (f"the destination answered 0x{code:04X}"
                            if code_to_category(code) == "Warning" else None)
        if code is None and not self.assoc.is_established:
            return "lost", "the destination dropped the association on it"
        return "refused", ("no response" if code is None else
                           f"the destination answered 0x{code:04X}")

    def close(self) -> None:
        if self.assoc.is_established:
            self.assoc.release()


def client_context(tls: TLS) -> ssl.SSLContext:
    """Only the CA given (not the system's), and the peer's certificate must name it."""
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=tls.ca)
    context.check_hostname = True
    if tls.cert:
        context.load_cert_chain(tls.cert, tls.key)
    return context
