"""The registry of transfer-syntax targets: the one codec table (the interface each
codec implements, `Codec` and `Option`, is `dicompress.codecs.base`; both are here too).

Every target is a small `Codec` that carries every fact about itself: its name and
transfer syntax UID, whether it is lossless, the layouts it accepts, its options (typed
`Option` specs with defaults, ranges and the CLI flag that sets them), and its place in
the lists other modules make: the CLI's targets, `compare`'s default choices, `plan`'s
candidates, the gateway's default target and fallbacks, de-identification's lossless
twin. Those modules read the table (`available_codecs`, `get_codec`); none of them names
a codec, and `transcode` never branches on names.

The table always holds the built-in codecs (every public module of this package
registers its own on import); third-party codecs join them through the entry-point
group ``dicompress.codecs`` or `register`.

A codec is immutable: ``get_codec("j2k-lossy").configure(ratio=10)`` returns a new codec
with that option set and checked; `codec_config` and `codec_from_config` carry one
through JSON (journals, worker tasks, the gateway's study plans).
"""

from __future__ import annotations

import functools
import importlib
import json
import pkgutil
import threading
import warnings
from typing import Any

from dicompress.codecs.base import (BUDGET_RATIO, Codec, Option, check_values_fit,
                                    register_transform, stored_bits)
from dicompress.errors import UnsupportedTransferSyntax

#: The entry-point group third-party codecs register under: each entry point names a
#: module that registers its codecs on import, or a `Codec` (registered on loading).
ENTRY_POINT_GROUP = "dicompress.codecs"

# -- the table -----------------------------------------------------------------------
_REGISTRY: dict[str, Codec] = {}
_lock = threading.RLock()
_loaded = False
_loading = False


def register(codec: Codec, *, replace: bool = False) -> Codec:
    """Add `codec` to the table beside the built-ins.

    Raises ValueError when its name (or an alias) is taken, unless `replace` (then
    the codec of that name is replaced).
    """
    with _lock:
        if not _loading:
            _load()
        taken = {_lookup(n).name for n in (codec.name, *codec.aliases) if _lookup(n) is not None}
        if taken and not replace:
            raise ValueError(
                f"a codec named {', '.join(sorted(taken))} is registered already "
                "(register(..., replace=True) replaces it)")
        for old in taken:
            del _REGISTRY[old.lower()]
        _REGISTRY[codec.name.lower()] = codec
    return codec


def _lookup(name: str) -> Codec | None:
    key = name.strip().lower()
    found = _REGISTRY.get(key)
    if found is None:
        found = next((c for c in _REGISTRY.values()
                      if key in (a.lower() for a in c.aliases)), None)
    return found


def get_codec(name_or_uid: str | Codec, **options: Any) -> Codec:
    """The codec called `name_or_uid` (``"rle"``) or writing that transfer syntax UID,
    configured with `options`."""
    if isinstance(name_or_uid, Codec):
        return name_or_uid.configure(**options) if options else name_or_uid
    _load()
    key = name_or_uid.strip()
    codec = _lookup(key)
    if codec is None:
        codec = next((c for c in available_codecs()
                      if key == c.transfer_syntax or key in c.also_writes), None)
    if codec is None:
        names = ", ".join(sorted(c.name for c in available_codecs()))
        raise UnsupportedTransferSyntax(f"unknown target {name_or_uid!r}; known targets: {names}")
    return codec.configure(**options) if options else codec


def available_codecs() -> list[Codec]:
    """Every codec of the table, in its listing order."""
    _load()
    return sorted(_REGISTRY.values(), key=lambda c: (c.order, c.name))


def _load() -> None:
    """Import the built-in codec modules and the entry points, once."""
    global _loaded, _loading
    if _loaded:
        return
    with _lock:
        if _loaded or _loading:
            return
        _loading = True
        try:
            import dicompress.codecs as package

            for module in pkgutil.iter_modules(package.__path__):
                if not module.name.startswith("_"):
                    importlib.import_module(f"{package.__name__}.{module.name}")
            _load_entry_points()
        finally:
            _loading = False
        _loaded = True


def _load_entry_points() -> None:
    from importlib.metadata import entry_points

    for point in entry_points(group=ENTRY_POINT_GROUP):
        try:
            loaded = point.load()
        except Exception as exc:  # a broken plugin must not take the built-ins down
            warnings.warn(f"dicompress codec entry point {point.name!r} ({point.value}) "
                          f"cannot be loaded: {type(exc).__name__}: {exc}", stacklevel=3)
            continue
        if isinstance(loaded, Codec) and _REGISTRY.get(loaded.name.lower()) is not loaded:
            register(loaded)


# -- what other modules read off the table ---------------------------------------------
def codec_config(codec: Codec) -> str:
    """`codec` as JSON text (sorted keys): journals, worker tasks, gateway plans."""
    return json.dumps(codec.get_config(), sort_keys=True)


@functools.lru_cache(maxsize=8)
def codec_from_config(config: str) -> Codec:
    """The codec `codec_config` wrote."""
    options = json.loads(config)
    name = options.pop("name")
    options.pop("transfer_syntax", None)
    # Only what was set: a default written beside an option that excludes it (j2k-lossy's
    # ratio beside a psnr target) was not chosen, and must not be set now.
    defaults = get_codec(name).defaults
    return get_codec(name, **{k: v for k, v in options.items()
                              if k not in defaults or v != _json(defaults[k])})


def _json(value: Any) -> Any:
    """`value` as it comes back from JSON (tuples become lists)."""
    return list(value) if isinstance(value, tuple) else value


def compare_defaults() -> str:
    """What ``compare`` measures when not told (its ``--codecs`` syntax): the codecs the
    table marks, the lossless ones first (each as it is), then the lossy ones at their
    values."""
    # codecs that only transform encoded frames are offered where the sources fit
    # (compare.choices.offered_transforms), not named by default
    marked = [c for c in available_codecs()
              if c.compare_values is not None and c.encodes_pixels]
    tokens = [c.name for c in marked if not c.compare_values]
    tokens += [f"{c.name}:{','.join(f'{v:g}' for v in c.compare_values)}"
               for c in marked if c.compare_values]
    return ",".join(tokens)


def gateway_default() -> Codec:
    """The gateway's target when a route names none."""
    return next(c for c in available_codecs() if c.gateway_default)


def fallback_syntaxes() -> list[str]:
    """The transfer syntaxes a gateway proposes after the target, in order."""
    ranked = sorted((c for c in available_codecs() if c.fallback_rank is not None),
                    key=lambda c: c.fallback_rank)
    return [c.transfer_syntax for c in ranked]


def option_specs() -> dict[str, tuple[Option, list[Codec]]]:
    """Every option of the table, once per name (in listing order), with the codecs
    that take it: what the CLI turns into flags."""
    found: dict[str, tuple[Option, list[Codec]]] = {}
    for codec in available_codecs():
        for spec in codec.specs:
            found.setdefault(spec.name, (spec, []))[1].append(codec)
    return found


def readable_syntaxes() -> list[str]:
    """The transfer syntaxes dicompress can read frames from: those of the table and
    those pydicom knows, wherever pydicom has a decoder that can run here (the plugins
    `import dicompress` adds included).

    In order of preference (an SCP accepts the first its peer proposes): the fallback
    syntaxes, then native ones, then encapsulated ones, each by UID.
    """
    from pydicom.pixels import get_decoder
    from pydicom.uid import UID, AllTransferSyntaxes

    candidates = [*AllTransferSyntaxes]
    for codec in available_codecs():
        candidates += [codec.transfer_syntax, *codec.also_writes]
    readable = []
    for uid in dict.fromkeys(str(u) for u in candidates):
        try:
            decoder = get_decoder(uid)
        except NotImplementedError:
            continue
        if decoder.is_available:
            readable.append(uid)
    fallbacks = fallback_syntaxes()

    def preference(uid: str) -> tuple:
        rank = fallbacks.index(uid) if uid in fallbacks else len(fallbacks)
        return rank, UID(uid).is_encapsulated, tuple(int(p) for p in uid.split("."))

    return sorted(readable, key=preference)


__all__ = ["BUDGET_RATIO", "ENTRY_POINT_GROUP", "Codec", "Option", "available_codecs",
           "check_values_fit", "codec_config", "codec_from_config", "compare_defaults",
           "fallback_syntaxes", "gateway_default", "get_codec", "option_specs",
           "readable_syntaxes", "register", "register_transform", "stored_bits"]
