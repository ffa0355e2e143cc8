"""pydicom pixel-data plugins backed by dicompress's codecs (docs/python.md, "pydicom plugins")."""

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

    pydicom 3.0 discovers no pixel-data plugins through entry points (pylibjpeg's are
    found by pylibjpeg itself, behind pydicom's "pylibjpeg" plugin), so registering when
    dicompress is imported is what makes ``encoding_plugin="dicompress"`` reachable.
    Importing pydicom takes 0.25 s: `import dicompress` does not pay it for commands and
    files that never need pydicom (the CLI's direct path). The plugins are appended
    (`register` with ``prefer=False``): pydicom's choice when no plugin is named is the
    same as without dicompress, except where it had no plugin that can run at all.
    """
    if "pydicom" in sys.modules:
        register()
    elif not any(isinstance(f, _AfterImport) for f in sys.meta_path):
        sys.meta_path.insert(0, _AfterImport("pydicom", register))


#: (pydicom coder, our module, its function) for every syntax pydicom 3.0 knows.
_DECODERS = (
    ("RLELossless", "dicompress.plugins.rle_decoder"),
    ("JPEGBaseline8Bit", "dicompress.plugins.jpeg_decoder"),
    ("JPEGExtended12Bit", "dicompress.plugins.jpeg_decoder"),
    ("JPEGLossless", "dicompress.plugins.jpeg_decoder"),
    ("JPEGLosslessSV1", "dicompress.plugins.jpeg_decoder"),
    ("JPEGLSLossless", "dicompress.plugins.jpegls_decoder"),
    ("JPEGLSNearLossless", "dicompress.plugins.jpegls_decoder"),
)
_ENCODERS = ("RLELossless", "JPEGLSLossless", "JPEGLSNearLossless", "JPEG2000Lossless",
             "JPEG2000")


def register(prefer: bool = False, check: bool = False) -> None:
    """Add the dicompress plugins to pydicom's decoders and encoders (idempotent).

    Decoders: RLE Lossless (the native codec), JPEG baseline, extended and lossless
    (libjpeg-turbo through imagecodecs), JPEG-LS (CharLS), and decoders for the syntaxes pydicom 3.0 does
    not know (JPEG XL, Deflated Image Frame Compression). Encoders: RLE, JPEG-LS
    lossless and near-lossless, JPEG 2000 lossless and lossy, the codecs `transcode`
    uses. They are added with pydicom's public ``add_plugin``, after pydicom's own:
    name them (``decoding_plugin="dicompress"``, ``encoding_plugin="dicompress"``) to
    use them, or they serve when no earlier plugin can. pydicom's own plugins and their
    order are left as they are unless asked (`prefer`, `check`).

    Parameters
    ----------
    prefer : bool
        Also move the dicompress plugins first, so that pydicom uses them when no
        plugin is named, and GDCM last for JPEG 2000 (it aborts the process on some
        damaged codestreams where the others raise). pydicom has no public way to
        reorder its plugins: this edits its ``_available`` dicts (pydicom is pinned
        below 3.1 for this).
    check : bool
        Also put the frame check of `dicompress.pipeline.codestream` in front of every
        decoder pydicom has (now) for JPEG, JPEG-LS, JPEG 2000, RLE and deflated frames,
        so that a plain ``ds.pixel_array`` refuses a frame whose codestream disagrees
        with the header before native code sees it. dicompress's own reading runs the
        check itself, without this. Like `prefer`, it edits pydicom's private lists.
    """
    from pydicom.pixels import get_decoder, get_encoder

    from dicompress import uids
    from dicompress.plugins import _new_syntaxes, checked_decoders

    _new_syntaxes.register()
    coders = [(get_decoder(getattr(uids, name)), module, "_decode_frame")
              for name, module in _DECODERS]
    coders += [(get_encoder(getattr(uids, name)), "dicompress.plugins.encoder", "_encode_frame")
               for name in _ENCODERS]
    for coder, module, function in coders:
        try:
            coder.add_plugin(PLUGIN, (module, function))
        except ValueError as exc:  # registered before (pydicom: "already has a plugin")
            if "already" not in str(exc):
                raise
        if prefer and PLUGIN in coder.available_plugins:
            coder._available = {PLUGIN: coder._available.pop(PLUGIN), **coder._available}

    # last, as asked: the frame check in front of every decoder (ours too), GDCM last
    # for JPEG 2000
    if check or prefer:
        checked_decoders.register(check=check, reorder=prefer)


def decoding_plugin(transfer_syntax: str) -> str:
    """The plugin dicompress's own reading asks pydicom for: ours for RLE (the native
    decoder, 10x pydicom's) and JPEG-LS (a writable frame: see jpegls_decoder); for JPEG
    2000 the first that is not GDCM (it aborts the process on some damaged codestreams
    where the others raise); else "" (pydicom chooses, in its own order)."""
    from pydicom.pixels import get_decoder

    from dicompress import uids
    from dicompress.plugins.checked_decoders import J2K_SYNTAXES

    register()
    syntax = str(transfer_syntax)
    if syntax in J2K_SYNTAXES:  # GDCM aborts where the others raise: OpenJPEG, if it is here
        available = get_decoder(syntax).available_plugins
        return "pylibjpeg" if "pylibjpeg" in available else ""
    if syntax not in (uids.RLELossless, uids.JPEGLSLossless, uids.JPEGLSNearLossless):
        return ""
    return PLUGIN if PLUGIN in get_decoder(syntax).available_plugins else ""
