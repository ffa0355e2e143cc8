"""DICOMweb destinations: STOW-RS (PS3.18 10.5), one instance a request.

Each instance is POSTed to the route's STOW-RS URL as multipart/related;
type="application/dicom" with one part, whose Content-Type carries the instance's
transfer syntax (PS3.18 8.7.3.4: ``application/dicom; transfer-syntax=UID``; servers
that refuse the parameter, such as Orthanc's DICOMweb plugin, are configured with
``transfer_syntax_parameter = false``: the file's meta information says it too). The
file is streamed from disk. The answer decides (PS3.18 10.5.3): 200, or 202 with the
instance in the Referenced SOP Sequence, is stored; the instance in the Failed SOP
Sequence, 409, or another 4xx is refused (retried later, with the reason); 5xx, no
answer or no connection is the server being down (the rest of the batch backs off).
A repeated POST of an instance already stored (a crash between the answer and the
queue's update) is a duplicate of the same SOP Instance UID, which servers store once.

The standard library's http.client does it: one keep-alive connection per batch, TLS
through ssl (a CA file, a client certificate), Bearer or Basic authorisation.
"""

from __future__ import annotations

import base64
import http.client
import json
import secrets
import ssl
from pathlib import Path
from urllib.parse import urlsplit

from dicompress.gateway.config import Stow

#: PS3.18 Table 10.5.3-1 attributes of the response (application/dicom+json)
FAILED_SOP_SEQUENCE = "00081198"
REFERENCED_SOP_SEQUENCE = "00081199"
REFERENCED_SOP_INSTANCE = "00081155"
FAILURE_REASON = "00081197"
WARNING_REASON = "00081196"
CHUNK = 1 << 20


def _values(entry: dict, tag: str) -> list:
    return (entry.get(tag) or {}).get("Value") or []


class StowLink:
    """Sends one batch of instances to a STOW-RS destination (the same face as an
    association: `accepts`, `alive`, `store`, `close`)."""

    def __init__(self, destination: Stow, timeout: float = 60.0) -> None:
        self.destination = destination
        url = urlsplit(destination.url)
        self.https = url.scheme == "https"
        self.host, self.port = url.hostname, url.port or (443 if self.https else 80)
        self.path = url.path or "/"
        self.timeout = timeout
        self.headers = {"Accept": "application/dicom+json"}
        if destination.token:
            self.headers["Authorization"] = f"Bearer {destination.token}"
        elif destination.user:
            pair = f"{destination.user}:{destination.password or ''}".encode()
            self.headers["Authorization"] = "Basic " + base64.b64encode(pair).decode()
        self.context = None
        if self.https:  # only the CA given (else the system's), and the host's name
            self.context = ssl.create_default_context(cafile=destination.ca)
            if destination.cert:
                self.context.load_cert_chain(destination.cert, destination.key)
        self.connection: http.client.HTTPConnection | None = None
        self.down: str | None = None  # why the server is taken to be down

    @property
    def alive(self) -> bool:
        return self.down is None

    def accepts(self, sop_class: str) -> set[str] | None:
        """The transfer syntaxes the server takes (the route's list; None: any)."""
        return set(self.destination.syntaxes) if self.destination.syntaxes else None

    def close(self) -> None:
        if self.connection is not None:
            self.connection.close()
            self.connection = None

    def _connect(self, timeout: float) -> http.client.HTTPConnection:
        if self.https:
            return http.client.HTTPSConnection(self.host, self.port, timeout=timeout,
                                               context=self.context)
        return http.client.HTTPConnection(self.host, self.port, timeout=timeout)

    def store(self, path: Path, transfer_syntax: str, sop_instance: str, timeout: float
              ) -> tuple[str, str | None]:
        """("sent", warning or None), ("refused", reason) or ("down", reason)."""
        for attempt in (1, 2):  # a kept-alive connection the server closed: once more
            fresh = self.connection is None
            try:
                if fresh:
                    self.connection = self._connect(timeout)
                self.connection.timeout = timeout
                status, body = self._post(path, transfer_syntax)
                break
            except (http.client.RemoteDisconnected, BrokenPipeError,
                    ConnectionResetError) as exc:
                self.close()
                if fresh or attempt == 2:
                    self.down = f"{self.destination.url}: {type(exc).__name__}: {exc}"
                    return "down", self.down
            except (OSError, http.client.HTTPException) as exc:  # refused, timeout, TLS
                self.close()
                self.down = f"{self.destination.url} cannot be reached ({exc})"
                return "down", self.down
        if status >= 500:
            self.close()
            self.down = f"{self.destination.url} answered HTTP {status}"
            return "down", self.down
        return _outcome(status, body, sop_instance)

    def _post(self, path: Path, transfer_syntax: str) -> tuple[int, bytes]:
        boundary = secrets.token_hex(16)
        part_type = "application/dicom"
        if self.destination.transfer_syntax_parameter:  # PS3.18 8.7.3.4
            part_type += f"; transfer-syntax={transfer_syntax}"
        head = f"--{boundary}\r\nContent-Type: {part_type}\r\n\r\n".encode()
        tail = f"\r\n--{boundary}--\r\n".encode()
        size = path.stat().st_size
        connection = self.connection
        connection.putrequest("POST", self.path, skip_accept_encoding=True)
        headers = {**self.headers,
                   "Content-Type": f'multipart/related; type="application/dicom"; '
                                   f"boundary={boundary}",
                   "Content-Length": str(len(head) + size + len(tail))}
        for name, value in headers.items():
            connection.putheader(name, value)
        connection.endheaders()
        connection.send(head)
        with open(path, "rb") as f:
            while chunk := f.read(CHUNK):
                connection.send(chunk)
        connection.send(tail)
        response = connection.getresponse()
        body = response.read()
        if response.getheader("Connection", "").lower() == "close":
            self.close()
        return response.status, body


def _outcome(status: int, body: bytes, sop_instance: str) -> tuple[str, str | None]:
    """What a STOW-RS answer says of the one instance sent (PS3.18 10.5.3)."""
    try:
        reply = json.loads(body) if body.strip() else {}
    except ValueError:
        reply = {}
    if isinstance(reply, list):  # some servers answer a list of one dataset
        reply = reply[0] if reply else {}
    for failed in _values(reply, FAILED_SOP_SEQUENCE):
        if sop_instance in _values(failed, REFERENCED_SOP_INSTANCE):
            reason = _values(failed, FAILURE_REASON)
            return "refused", (f"the server refused it (HTTP {status}, failure reason "
                               f"0x{int(reason[0]):04X})" if reason else
                               f"the server refused it (HTTP {status})")
    if status in (200, 202):
        stored = [r for r in _values(reply, REFERENCED_SOP_SEQUENCE)
                  if sop_instance in _values(r, REFERENCED_SOP_INSTANCE)]
        if stored:
            warnings = _values(stored[0], WARNING_REASON)
            return "sent", (f"the server warned 0x{int(warnings[0]):04X}" if warnings else None)
        # not listed as stored: not stored (Orthanc's DICOMweb plugin 1.7 answers 200
        # with both sequences empty when it skipped the part)
        return "refused", (f"HTTP {status}, but the server's answer does not list it as "
                           "stored")
    text = body[:200].decode("utf-8", "replace").strip()
    return "refused", f"HTTP {status}" + (f": {text}" if text else "")
