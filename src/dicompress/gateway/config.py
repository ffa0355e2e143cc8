"""The gateway's configuration as the service holds it: the listener, the routes (who may
send, where to, how compressed, what is sent when the target cannot be) and their
destinations (DIMSE or STOW-RS). `gateway.loader` reads it from the TOML policy."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from dicompress.codecs import Codec, get_codec
from dicompress.codecs.registry import fallback_syntaxes, gateway_default
from dicompress.deid import DeidConfig


@dataclass(frozen=True)
class TLS:
    """Python ssl settings for one direction: our certificate and the CA we trust."""

    cert: str | None = None
    key: str | None = None
    ca: str | None = None  # server: client certificates required when given
    server_name: str | None = None  # outbound: the name the peer's certificate must carry


@dataclass(frozen=True)
class Avoid:
    """A transfer syntax a destination mangles or cannot read: never proposed to it, for
    every image or (``colour``) only for images of 3 samples per pixel."""

    transfer_syntax: str
    colour_only: bool = False

    def applies(self, transfer_syntax: str, samples_per_pixel: int) -> bool:
        return transfer_syntax == self.transfer_syntax and (
            not self.colour_only or samples_per_pixel == 3)

    def __str__(self) -> str:
        return get_codec(self.transfer_syntax).name + (":colour" if self.colour_only else "")


class _Avoids:
    avoid: tuple[Avoid, ...]

    def avoided(self, transfer_syntax: str, samples_per_pixel: int) -> Avoid | None:
        """The `avoid` entry that rules `transfer_syntax` out for such an image, if any."""
        return next((a for a in self.avoid if a.applies(transfer_syntax, samples_per_pixel)),
                    None)


@dataclass(frozen=True)
class Destination(_Avoids):
    """A DICOM Storage SCP (C-STORE)."""

    ae_title: str
    host: str
    port: int
    tls: TLS | None = None
    avoid: tuple[Avoid, ...] = ()

    def __str__(self) -> str:
        return f"{self.ae_title}@{self.host}:{self.port}"


@dataclass(frozen=True)
class Stow(_Avoids):
    """A DICOMweb server's STOW-RS URL (PS3.18 10.5), how we authenticate to it, and the
    transfer syntaxes it stores (none given: any)."""

    url: str
    token: str | None = None  # Authorization: Bearer
    user: str | None = None  # Authorization: Basic
    password: str | None = field(default=None, repr=False)
    cert: str | None = None  # a client certificate (https)
    key: str | None = None
    ca: str | None = None  # the CA the server's certificate must chain to (https)
    syntaxes: tuple[str, ...] = ()
    avoid: tuple[Avoid, ...] = ()
    #: the part's Content-Type names the transfer syntax (PS3.18 8.7.3.4); off for the
    #: servers that refuse it (Orthanc's DICOMweb plugin)
    transfer_syntax_parameter: bool = True

    def __str__(self) -> str:
        return self.url


#: What a route sends when its target cannot be sent (the destination refused the syntax,
#: the encoder refused the image's layout or failed on it, the destination avoids it):
#: "uncompressed" Explicit, then Implicit VR Little Endian, then the syntax it came in;
#: "original" only the syntax it came in; "hold" nothing: it is held until requeued.
def folder_name(text: str) -> str:
    """A route's name as a folder: letters, digits, - and _ only."""
    return re.sub(r"[^A-Za-z0-9_-]+", "_", text)[:64] or "route"


#: What is sent when the target cannot be: the codec table's uncompressed fallbacks
#: (Explicit, then Implicit VR Little Endian) then the syntax it came in; as it came; nothing.
FALLBACKS = {
    "uncompressed": lambda: (*fallback_syntaxes(), None),
    "original": lambda: (None,),
    "hold": lambda: (),
}


MARKING_BYTES = 1024


@dataclass
class Route:
    name: str
    calling: list[str]
    destination: Destination | Stow
    target: str = field(default_factory=lambda: gateway_default().name)
    options: dict = field(default_factory=dict)
    deid: DeidConfig | None = None
    budget: int | None = None  # bytes per study on the link
    link_rate: float | None = None  # bits per second, when the route says
    settle: float = 0.0  # a study goes once no instance of it came for this long
    fallback: str = "uncompressed"  # a key of FALLBACKS

    def fallback_syntaxes(self, syntax_in: str) -> list[str]:
        """The syntaxes tried, in order, when the target cannot be sent."""
        return list(dict.fromkeys(s or syntax_in for s in FALLBACKS[self.fallback]()))

    def codec_for(self, pixel_bytes: int, header_bytes: int, instances: int
                  ) -> tuple[Codec, str | None]:
        """The codec for a study of that many bytes, and a note when it cannot fit:
        with a budget and a lossy target that takes a ratio, the ratio is raised so
        that pixel data and headers fit (3 % margin, and 1 KiB an instance for what
        lossy marking and de-identification add to a header)."""
        codec = self.codec()
        if self.budget is None:
            return codec, None
        header_bytes += MARKING_BYTES * instances
        room = self.budget * 0.97 - header_bytes
        if codec.lossless or codec.spec("ratio") is None:
            if pixel_bytes + header_bytes > self.budget:
                return codec, (f"{self.target} cannot be made smaller: the study may need "
                               f"{pixel_bytes + header_bytes} bytes, the budget is {self.budget}")
            return codec, None
        if room <= 0:
            return get_codec(self.target, **{**self.options, "ratio": 400.0}), (
                f"the headers alone ({header_bytes} bytes) exceed the budget ({self.budget})")
        needed = pixel_bytes / room
        ratio = max(float(self.options.get("ratio") or 1.0), needed)
        note = None
        if ratio > 400.0:
            ratio, note = 400.0, f"needs ratio {needed:.0f}: sent at 400, over the budget"
        return get_codec(self.target, **{**self.options, "ratio": round(ratio, 3)}), note

    def codec(self, transfer_syntax: str | None = None) -> Codec:
        """The route's codec (with its options), or the one for `transfer_syntax`."""
        if transfer_syntax is None:
            return get_codec(self.target, **self.options)
        return get_codec(transfer_syntax)


@dataclass
class GatewayConfig:
    ae_title: str
    port: int
    spool: Path
    routes: list[Route]
    host: str = "127.0.0.1"
    max_spool: int = 50 * 1000**3
    max_associations: int = 8
    max_pdu: int = 65536
    status_port: int = 0
    tls: TLS | None = None
    retry_initial: float = 2.0  # seconds before the first retry; doubles up to retry_max
    retry_max: float = 300.0
    per_association: int = 200  # instances sent per association (one study at a time)
    keep_sent_days: float = 7.0  # sent instances stay listed (status) this long

    def route_for(self, calling_ae: str) -> Route | None:
        calling_ae = calling_ae.strip()
        for route in self.routes:
            if calling_ae in route.calling:
                return route
        return None

    @property
    def database(self) -> Path:
        return self.spool / "queue.sqlite"

