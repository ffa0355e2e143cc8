"""pydicom pixel-data plugins backed by dicompress's native codecs."""

from __future__ import annotations

import copy
import importlib.util
import sys
import threading
import warnings

PLUGIN = "dicompress"


class _AfterImport:  # a sys.meta_path finder (importlib.abc costs 12 ms to import)
    """Calls `then()` once the module `name` has been imported (a post-import hook).

    Placed first in sys.meta_path, it finds `name` through the other finders and gives
    the spec a copy of its loader (a zip importer serves a whole archive) whose
    exec_module runs `then()` right after the module's code. It leaves sys.meta_path when
    the module is executed, not when it is merely looked for (``find_spec("pydicom")`` to
    see whether pydicom is installed must not use it up). A failing `then()` is a warning:
    the module itself imported fine.
    """

    def __init__(self, name: str, then) -> None:
        self.name, self.then = name, then
        self._inside = threading.local()  # our own find_spec call must not find us again

    def find_spec(self, fullname, path=None, target=None):
        if fullname != self.name or getattr(self._inside, "busy", False):
            return None
        self._inside.busy = True
        try:
            spec = importlib.util.find_spec(fullname)
        finally:
            self._inside.busy = False
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        loader = copy.copy(spec.loader)
        execute, then, finder = loader.exec_module, self.then, self

        def exec_module(module):
            finder.remove()
            execute(module)
            try:
                then()
            except Exception as exc:  # pragma: no cover - a pydicom without what we need
                warnings.warn(f"dicompress could not register its pydicom plugins: {exc}",
                              stacklevel=2)

        loader.exec_module = exec_module
        spec.loader = loader
        return spec

    def remove(self) -> None:
        try:
            sys.meta_path.remove(self)
        except ValueError:
            pass


def register_when_imported() -> None:
    """Register the plugins now if pydicom is loaded, else as soon as it is.

    Importing pydicom takes 0.25 s; `import dicompress` does not pay it for commands
    and files that never need pydicom (the CLI's direct path), and pydicom code that
    runs after ``import dicompress`` still finds the plugins in place.
    """
    if "pydicom" in sys.modules:
        register()
    elif not any(isinstance(f, _AfterImport) for f in sys.meta_path):
        sys.meta_path.insert(0, _AfterImport("pydicom", register))


def register() -> None:
    """Add the dicompress plugins to pydicom's RLE encoder and decoder, and decoders for
    the syntaxes pydicom 3.0 does not know (JPEG XL, deflated frames) (idempotent).

    The decoder is put first, so ``ds.pixel_array`` uses it by default; the
    encoder is chosen with ``encoding_plugin="dicompress"`` (or is used when
    no plugin is named, as the first one tried).
    """
    from pydicom.pixels.decoders.base import RLELosslessDecoder
    from pydicom.pixels.encoders.base import RLELosslessEncoder

    from dicompress.plugins import _new_syntaxes, checked_decoders

    _new_syntaxes.register()

    for codec, module in (
        (RLELosslessDecoder, "dicompress.plugins.rle_decoder"),
        (RLELosslessEncoder, "dicompress.plugins.rle_encoder"),
    ):
        if PLUGIN in codec._available or PLUGIN in codec._unavailable:
            continue
        codec.add_plugin(PLUGIN, (module, "_encode_frame" if "encoder" in module else "_decode_frame"))
        # Tried first: pydicom walks its plugins in insertion order.
        codec._available = {PLUGIN: codec._available.pop(PLUGIN), **codec._available}
    checked_decoders.register()  # last: in front of every decoder, ours too
