"""Reading the gateway's policy (TOML) into a `GatewayConfig`, every key checked: where it
listens, who may send, where each sender's studies go and how they are compressed on the way.

    [gateway]
    ae_title = "DICOMPRESS"
    port = 11112
    host = "127.0.0.1"            # loopback unless set: "0.0.0.0" listens on every network
    spool = "/var/spool/dicompress"
    max_spool = "50GB"            # new associations refused (local limit) beyond this
    max_associations = 8
    max_pdu = 65536
    status_port = 8086            # HTTP /status on 127.0.0.1 (0: none)

    [[route]]
    name = "reading-site"
    calling = ["CT1", "MR_3T"]    # the modalities allowed to send on this route
    destination = { ae_title = "READ", host = "reading.example.org", port = 104 }
    # avoid = ["rle:colour"] in the destination: syntaxes it mangles (docs/gateway.md)
    target = "..."                # a `dicompress transcode --to` name (default: HTJ2K lossless);
                                  # lossy targets take options = { ratio = 15 }
    fallback = "uncompressed"     # when the target cannot be sent: "original" or "hold"
    deid = false                  # or { options = ["retain-modified-dates"], key_file = "..." }
    budget = "20MB"               # per study (lossy J2K/HTJ2K: the ratio is raised to fit)
    link = "2Mbit"                # ... or what the link carries by the deadline
    deadline = "5min"
    settle = 10                   # seconds without a new instance before a study is complete
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from urllib.parse import urlsplit

from dicompress.codecs import get_codec
from dicompress.codecs.registry import gateway_default
from dicompress.deid import OPTIONS as DEID_OPTIONS, DeidConfig
from dicompress.deid import keys
from dicompress.errors import ConfigError, DicompressError
from dicompress.gateway.config import (FALLBACKS, TLS, Avoid, Destination, GatewayConfig, Route,
                                       Stow, folder_name)


_SIZE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([kKmMgGtT]?)B?\s*")
_AE = re.compile(r"[\x20-\x5b\x5d-\x7e]{1,16}")  # PS3.5 AE: no backslash, no control


def parse_size(text: str | int) -> int:
    if isinstance(text, int):
        return text
    m = _SIZE.fullmatch(str(text))
    if not m:
        raise ConfigError(f"{text!r} is not a size (e.g. 500MB, 50GB)")
    return int(float(m[1]) * 1000 ** " KMGT".index((m[2] or " ").upper()))


def _ae(value, where: str) -> str:
    if not isinstance(value, str) or not _AE.fullmatch(value.strip() or "x") or not value.strip():
        raise ConfigError(f"{where}: {value!r} is not an AE title (1-16 characters, no backslash)")
    return value.strip()


def _tls(table, where: str, base: Path, *, server: bool) -> TLS | None:
    """Listening: cert and key required (ca: clients must present a certificate it
    signed). Sending: ca required (the peer is checked against it and its name)."""
    if table is None:
        return None
    if not isinstance(table, dict) or not table:
        raise ConfigError(f"{where}: give a table with cert, key and/or ca (an empty one "
                          "would silently mean no encryption)")
    _known(table, {"cert", "key", "ca", "server_name"}, where)
    paths = {}
    for name in ("cert", "key", "ca"):
        if table.get(name):
            path = (base / table[name]).resolve()
            if not path.is_file():
                raise ConfigError(f"{where}.{name}: {path} does not exist")
            paths[name] = str(path)
    if server and not ("cert" in paths and "key" in paths):
        raise ConfigError(f"{where}: a listening TLS needs cert and key")
    if not server and "ca" not in paths:
        raise ConfigError(f"{where}: ca is needed to check the destination's certificate")
    if ("cert" in paths) != ("key" in paths):
        raise ConfigError(f"{where}: cert and key go together")
    return TLS(**paths, server_name=str(table["server_name"]) if table.get("server_name") else None)


def _avoid(value, where: str) -> tuple[Avoid, ...]:
    """`avoid = ["htj2k", "rle:colour", "1.2.840.10008.1.2.4.203"]`: codec names or
    transfer syntax UIDs, ":colour" for colour images only."""
    if value is None:
        return ()
    if not isinstance(value, list):
        raise ConfigError(f"{where}: avoid = [\"htj2k\", \"rle:colour\"] (a list)")
    entries = []
    for entry in value:
        name, _, scope = str(entry).partition(":")
        if scope not in ("", "colour"):
            raise ConfigError(f"{where}: avoid {entry!r}: only \":colour\" may follow a name")
        try:
            codec = get_codec(name)
        except DicompressError as exc:
            raise ConfigError(f"{where}: avoid {entry!r}: {exc}") from None
        syntax = name if name.startswith("1.") else codec.transfer_syntax
        entries.append(Avoid(syntax, scope == "colour"))
    return tuple(entries)


def _dimse(dest, where: str, base: Path) -> Destination:
    try:
        return Destination(_ae(dest.get("ae_title"), f"{where}.destination.ae_title"),
                           str(dest["host"]), int(dest["port"]),
                           _tls(dest.get("tls"), f"{where}.destination.tls", base,
                                server=False),
                           _avoid(dest.get("avoid"), f"{where}.destination"))
    except (KeyError, TypeError, ValueError, AttributeError):
        raise ConfigError(f"{where}: destination = {{ ae_title, host, port }} or "
                          "{ stow = \"https://...\" }") from None


def _stow(dest: dict, where: str, base: Path) -> Stow:
    """destination = { stow = URL, auth = { token } | { user, password } | { cert, key },
    ca, syntaxes = [...], avoid = [...] }"""
    _known(dest, {"stow", "auth", "ca", "syntaxes", "avoid", "transfer_syntax_parameter"},
           where)
    if not isinstance(dest.get("transfer_syntax_parameter", True), bool):
        raise ConfigError(f"{where}: transfer_syntax_parameter = true or false")
    url = str(dest["stow"])
    scheme = url.split("://", 1)[0] if "://" in url else ""
    if scheme not in ("http", "https"):
        raise ConfigError(f"{where}: stow = {url!r} is not an http(s) URL")
    auth = dest.get("auth") or {}
    if not isinstance(auth, dict):
        raise ConfigError(f"{where}.auth: a table: {{ token }}, {{ user, password }} or "
                          "{ cert, key }")
    _known(auth, {"token", "user", "password", "cert", "key"}, f"{where}.auth")
    if auth.get("token") and (auth.get("user") or auth.get("password")):
        raise ConfigError(f"{where}.auth: a token or a user and password, not both")
    for pair in (("user", "password"), ("cert", "key")):  # a certificate goes with either
        if bool(auth.get(pair[0])) != bool(auth.get(pair[1])):
            raise ConfigError(f"{where}.auth: {' and '.join(pair)} go together")
    paths = {}
    for name, value in (("cert", auth.get("cert")), ("key", auth.get("key")),
                        ("ca", dest.get("ca"))):
        if value:
            path = (base / value).resolve()
            if not path.is_file():
                raise ConfigError(f"{where}: {name} {path} does not exist")
            paths[name] = str(path)
    if (paths.get("cert") or dest.get("ca")) and scheme != "https":
        raise ConfigError(f"{where}: a certificate or a ca needs an https URL")
    if auth.get("token") or auth.get("user"):
        if scheme != "https" and urlsplit(url).hostname not in ("127.0.0.1", "localhost", "::1"):
            raise ConfigError(f"{where}: credentials would cross the network in clear: "
                              "use https")
    syntaxes = dest.get("syntaxes") or []
    if not isinstance(syntaxes, list):
        raise ConfigError(f"{where}: syntaxes = [\"htj2k\", \"explicit\"] (a list)")
    uids = []
    for entry in syntaxes:
        try:
            codec = get_codec(str(entry))
        except DicompressError as exc:
            raise ConfigError(f"{where}: syntaxes {entry!r}: {exc}") from None
        uids.append(str(entry) if str(entry).startswith("1.") else codec.transfer_syntax)
    return Stow(url, token=auth.get("token"), user=auth.get("user"),
                password=auth.get("password"), cert=paths.get("cert"), key=paths.get("key"),
                ca=paths.get("ca"), syntaxes=tuple(uids), avoid=_avoid(dest.get("avoid"), where),
                transfer_syntax_parameter=dest.get("transfer_syntax_parameter", True))


def _known(table: dict, keys: set[str], where: str) -> None:
    """A misspelt key (de_id = ...) must not silently mean its default."""
    unknown = set(table) - keys
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(sorted(unknown))} "
                          f"(known: {', '.join(sorted(keys))})")


def _deid(value, where: str, base: Path) -> DeidConfig | None:
    if value in (None, False):
        return None
    table = {} if value is True else value
    if not isinstance(table, dict):
        raise ConfigError(f"{where}: true, false or a table")
    options = frozenset(table.get("options", []))
    unknown = options - DEID_OPTIONS.keys()
    if unknown:
        raise ConfigError(f"{where}.options: unknown {', '.join(sorted(unknown))}")
    key_file = table.get("key_file")
    if not key_file:
        raise ConfigError(f"{where}: a key_file is needed (the same key keeps a patient's "
                          "studies linked across restarts)")
    try:
        key = keys.load_key(path=base / key_file)
        return DeidConfig(options=options, key=key, allow_burned_in=bool(table.get("allow_burned_in")))
    except (DicompressError, ValueError) as exc:
        raise ConfigError(f"{where}: {exc}") from None


def _budget(table: dict, where: str) -> int | None:
    """Bytes per study: `budget`, and/or what `link` carries by `deadline` (the smaller)."""
    from dicompress.compare.plan import LINK_EFFICIENCY, PlanError, parse_duration, parse_rate

    limits = []
    try:
        if table.get("budget") is not None:
            limits.append(parse_size(table["budget"]))
        if (table.get("link") is None) != (table.get("deadline") is None):
            raise ConfigError(f"{where}: link and deadline go together")
        if table.get("link") is not None:
            limits.append(int(parse_rate(str(table["link"])) / 8
                              * parse_duration(str(table["deadline"])) * LINK_EFFICIENCY))
    except PlanError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    return min(limits) if limits else None


def load_config(path: Path | str) -> GatewayConfig:
    path = Path(path)
    base = path.parent
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{path}: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})") from None
    _known(data, {"gateway", "route"}, str(path))
    gw = data.get("gateway") or {}
    _known(gw, {"ae_title", "port", "host", "spool", "max_spool", "max_associations", "max_pdu",
                "status_port", "tls", "retry_initial", "retry_max", "per_association",
                "keep_sent_days"}, f"{path}: [gateway]")
    routes_data = data.get("route") or []
    if not routes_data:
        raise ConfigError(f"{path}: no [[route]]: nobody could send")
    routes, seen, names = [], {}, {}
    for n, r in enumerate(routes_data, 1):
        where = f"{path}: route {r.get('name', n)!r}"
        _known(r, {"name", "calling", "destination", "target", "options", "deid", "budget",
                   "link", "deadline", "settle", "fallback"}, where)
        name = str(r.get("name") or f"route{n}")
        if folder_name(name) in names:  # rows, folders and forwarders are keyed by name
            raise ConfigError(f"{where}: the name {name!r} is taken by route "
                              f"{names[folder_name(name)]!r}")
        names[folder_name(name)] = name
        if not isinstance(r.get("calling", []), list):
            raise ConfigError(f"{where}: calling = [\"AE1\", \"AE2\"] (a list)")
        if not isinstance(r.get("options", {}), dict):
            raise ConfigError(f"{where}: options = {{ ratio = 10 }} (a table)")
        calling = [_ae(v, f"{where}.calling") for v in r.get("calling", [])]
        if not calling:
            raise ConfigError(f"{where}: calling = [...] lists the AE titles allowed to send")
        for ae in calling:
            if ae in seen:
                raise ConfigError(f"{where}: {ae} already sends on route {seen[ae]!r}")
            seen[ae] = r.get("name", str(n))
        dest = r.get("destination") or {}
        if isinstance(dest, dict) and "stow" in dest:
            destination = _stow(dest, f"{where}.destination", base)
        else:
            if isinstance(dest, dict):
                _known(dest, {"ae_title", "host", "port", "tls", "avoid"},
                       f"{where}.destination")
            destination = _dimse(dest, where, base)
        route = Route(name, calling, destination,
                      str(r.get("target", gateway_default().name)), dict(r.get("options", {})),
                      _deid(r.get("deid"), f"{where}.deid", base))
        route.fallback = str(r.get("fallback", "uncompressed"))
        if route.fallback not in FALLBACKS:
            raise ConfigError(f"{where}: fallback = {route.fallback!r}; one of "
                              f"{', '.join(FALLBACKS)}")
        route.budget = _budget(r, where)
        if r.get("link") is not None:
            from dicompress.compare.plan import parse_rate
            route.link_rate = parse_rate(str(r["link"]))
        try:
            route.settle = float(r.get("settle", 10.0 if route.budget else 0.0))
        except (TypeError, ValueError):
            raise ConfigError(f"{where}: settle is a number of seconds") from None
        try:
            route.codec()
        except (DicompressError, TypeError, ValueError) as exc:
            raise ConfigError(f"{where}: target {route.target!r} {route.options}: {exc}") from None
        routes.append(route)
    try:
        config = GatewayConfig(
            ae_title=_ae(gw.get("ae_title", "DICOMPRESS"), f"{path}: gateway.ae_title"),
            port=int(gw.get("port", 11112)), spool=(base / gw.get("spool", "spool")).resolve(),
            routes=routes, host=str(gw.get("host", "127.0.0.1")),
            max_spool=parse_size(gw.get("max_spool", "50GB")),
            max_associations=int(gw.get("max_associations", 8)),
            max_pdu=int(gw.get("max_pdu", 65536)), status_port=int(gw.get("status_port", 0)),
            tls=_tls(gw.get("tls"), f"{path}: gateway.tls", base, server=True),
            retry_initial=float(gw.get("retry_initial", 2.0)),
            retry_max=float(gw.get("retry_max", 300.0)),
            per_association=int(gw.get("per_association", 200)),
            keep_sent_days=float(gw.get("keep_sent_days", 7)),
        )
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{path}: [gateway]: {exc}") from None
    if (config.max_associations < 1 or not 0 < config.port < 65536
            or not 0 <= config.status_port < 65536 or config.max_pdu < 0
            or config.per_association < 1 or config.retry_initial <= 0
            or config.retry_max < config.retry_initial or config.keep_sent_days <= 0):
        raise ConfigError(f"{path}: [gateway]: port 1-65535, status_port 0-65535, max_pdu >= 0 "
                          "(0: no limit), max_associations and per_association >= 1, "
                          "0 < retry_initial <= retry_max, keep_sent_days > 0")
    return config
