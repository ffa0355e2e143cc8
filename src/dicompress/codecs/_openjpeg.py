"""JPEG 2000 Part 1 encoding with OpenJPEG through glymur's bindings.

glymur's `Jp2k` writer takes only uint8/uint16 at precision 8/16 and writes
files; DICOM needs the codestream precision equal to Bits Stored, signed
components for Pixel Representation 1, and the codestream in memory. So we use
glymur's ctypes layer (its library loader and its OpenJPEG structures) and add
an in-memory output stream. ctypes releases the GIL for every OpenJPEG call,
so frames encode in parallel on threads.

glymur is pointed at the newer of the system's libopenjp2 (Debian: libopenjp2-7,
2.5.0 on bookworm) and the OpenJPEG that ships inside imagecodecs (2.5.4 here: its
encoder is 4 % faster on CT), or at whichever of the two exists.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dicompress.errors import DicompressError, UnsupportedLayout

_lock = threading.Lock()
_opj = None


def _bundled_openjp2() -> str | None:
    try:
        import imagecodecs
    except ImportError:
        return None
    libs = Path(imagecodecs.__file__).parent.parent / "imagecodecs.libs"
    found = sorted(libs.glob("libopenjp2*.so*"))
    return str(found[0]) if found else None


def _version(library: str) -> tuple[int, ...]:
    """OpenJPEG's own version of `library` (opj_version), (0,) if it cannot be asked."""
    try:
        fn = ctypes.CDLL(library).opj_version
        fn.restype = ctypes.c_char_p
        return tuple(int(part) for part in fn().decode().split(".")[:3])
    except (OSError, AttributeError, ValueError):
        return (0,)


def openjp2():
    """glymur's `lib.openjp2` module, with a loaded OpenJPEG >= 2.4."""
    global _opj
    with _lock:
        if _opj is not None:
            return _opj
        original = ctypes.util.find_library
        bundled = _bundled_openjp2()
        system = original("openjp2")
        if bundled and system and _version(system) >= _version(bundled):
            bundled = None  # the system's is as new: use it
        if bundled:
            # glymur's config looks the library up with find_library at import.
            ctypes.util.find_library = lambda name: bundled if name == "openjp2" else original(name)
        try:
            import glymur.lib.openjp2 as opj
        finally:
            ctypes.util.find_library = original
        if opj.OPENJP2 is None:
            raise DicompressError(
                "JPEG 2000 needs the OpenJPEG library: apt-get install libopenjp2-7 "
                "(or pip install imagecodecs, which ships one)"
            )
        if (opj._MAJOR, opj._MINOR) < (2, 4):
            raise DicompressError(f"OpenJPEG {opj.version()} is too old; 2.4 or newer is needed")
        _opj = _Functions(opj)
        return _opj


# -- an output stream in memory --------------------------------------------------------

_WRITE_FN = ctypes.CFUNCTYPE(ctypes.c_size_t, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_void_p)
_SKIP_FN = ctypes.CFUNCTYPE(ctypes.c_int64, ctypes.c_int64, ctypes.c_void_p)
_SEEK_FN = ctypes.CFUNCTYPE(ctypes.c_int32, ctypes.c_int64, ctypes.c_void_p)
_ERROR_FN = ctypes.CFUNCTYPE(None, ctypes.c_char_p, ctypes.c_void_p)


class _Functions:
    """Our own prototypes of the OpenJPEG functions we call.

    ``lib[name]`` gives a fresh function object, so glymur's wrappers (which
    reset argtypes/restype on the shared attributes at every call) and ours
    never disturb each other.
    """

    def __init__(self, opj) -> None:
        self.opj = opj
        lib = opj.OPENJP2
        vp, i32, image_p = ctypes.c_void_p, ctypes.c_int32, ctypes.POINTER(opj.ImageType)

        def fn(name, restype, *argtypes):
            f = lib[name]
            f.restype, f.argtypes = restype, list(argtypes)
            return f

        self.image_create = fn("opj_image_create", image_p, ctypes.c_uint32,
                               ctypes.POINTER(opj.ImageComptParmType), ctypes.c_int)
        self.image_destroy = fn("opj_image_destroy", None, image_p)
        self.create_compress = fn("opj_create_compress", vp, ctypes.c_int)
        self.destroy_codec = fn("opj_destroy_codec", None, vp)
        self.setup_encoder = fn("opj_setup_encoder", i32, vp,
                                ctypes.POINTER(opj.CompressionParametersType), image_p)
        self.set_threads = fn("opj_codec_set_threads", i32, vp, ctypes.c_int)
        self.start_compress = fn("opj_start_compress", i32, vp, image_p, vp)
        self.encode = fn("opj_encode", i32, vp, vp)
        self.end_compress = fn("opj_end_compress", i32, vp, vp)
        self.stream_create = fn("opj_stream_create", vp, ctypes.c_size_t, i32)
        self.stream_destroy = fn("opj_stream_destroy", None, vp)
        self.set_write = fn("opj_stream_set_write_function", None, vp, _WRITE_FN)
        self.set_skip = fn("opj_stream_set_skip_function", None, vp, _SKIP_FN)
        self.set_seek = fn("opj_stream_set_seek_function", None, vp, _SEEK_FN)
        self.set_error = fn("opj_set_error_handler", i32, vp, _ERROR_FN, vp)
        self.set_warning = fn("opj_set_warning_handler", i32, vp, _ERROR_FN, vp)
        self.set_info = fn("opj_set_info_handler", i32, vp, _ERROR_FN, vp)


class _MemoryOutput:
    """The bytes OpenJPEG writes, with the seeks it makes to patch headers."""

    def __init__(self) -> None:
        self.buf = bytearray()
        self.pos = 0
        self.write = _WRITE_FN(self._write)
        self.skip = _SKIP_FN(self._skip)
        self.seek = _SEEK_FN(self._seek)
        self.errors: list[str] = []
        self.on_error = _ERROR_FN(lambda msg, _: self.errors.append(msg.decode(errors="replace").strip()))

    def _write(self, src, n, _user) -> int:
        end = self.pos + n
        if end > len(self.buf):
            self.buf.extend(bytes(end - len(self.buf)))
        ctypes.memmove((ctypes.c_char * n).from_buffer(self.buf, self.pos), src, n)
        self.pos = end
        return n

    def _skip(self, n, _user) -> int:
        self.pos += n
        return n

    def _seek(self, offset, _user) -> int:
        self.pos = offset
        return 1


@dataclass(frozen=True)
class J2KParameters:
    """What `encode` does to one frame (see PS3.5 A.4.4)."""

    reversible: bool = True
    #: Compression ratios per quality layer, increasing quality (e.g. (40, 20, 10));
    #: empty for a single lossless layer.
    ratios: tuple[float, ...] = ()
    resolutions: int = 6
    progression: str = "LRCP"
    tile: tuple[int, int] | None = None
    #: Apply the multi-component transform (RCT/ICT) to 3-sample frames.
    mct: bool = True


_PROGRESSIONS = {"LRCP": 0, "RLCP": 1, "RPCL": 2, "PCRL": 3, "CPRL": 4}


def resolutions_for(rows: int, columns: int, wanted: int) -> int:
    """Resolution levels OpenJPEG accepts: the smallest side must be >= 2**(levels - 1)."""
    levels = wanted
    while levels > 1 and min(rows, columns) < 2 ** (levels - 1):
        levels -= 1
    return levels


def encode(arr: np.ndarray, precision: int, signed: bool, params: J2KParameters,
           threads: int = 1) -> bytes:
    """The J2K codestream of one frame: rows x columns [x samples], int or uint."""
    f = openjp2()
    opj = f.opj
    if arr.ndim == 2:
        arr = arr[:, :, None]
    rows, columns, samples = arr.shape
    if not 1 <= precision <= (38 if arr.dtype.itemsize > 2 else 16):
        raise UnsupportedLayout(f"JPEG 2000 cannot code {precision}-bit samples")
    if arr.dtype.itemsize > 2 and precision > 31:
        raise UnsupportedLayout("OpenJPEG codes at most 31-bit samples")

    comptparms = (opj.ImageComptParmType * samples)()
    for c in range(samples):
        comptparms[c].dx = comptparms[c].dy = 1
        comptparms[c].w, comptparms[c].h = columns, rows
        comptparms[c].x0 = comptparms[c].y0 = 0
        comptparms[c].prec = comptparms[c].bpp = precision
        comptparms[c].sgnd = 1 if signed else 0
    colour = opj.CLRSPC_SRGB if samples == 3 else opj.CLRSPC_GRAY

    cparams = opj.set_default_encoder_parameters()
    cparams.irreversible = 0 if params.reversible else 1
    cparams.numresolution = resolutions_for(rows, columns, params.resolutions)
    cparams.prog_order = _PROGRESSIONS[params.progression]
    cparams.tcp_mct = 1 if (samples == 3 and params.mct) else 0
    cparams.cod_format = opj.CODEC_J2K
    if params.tile:
        cparams.tile_size_on = 1
        cparams.cp_tdy, cparams.cp_tdx = params.tile
    cparams.cp_disto_alloc = 1
    if params.ratios:
        cparams.tcp_numlayers = len(params.ratios)
        for i, ratio in enumerate(params.ratios):
            cparams.tcp_rates[i] = float(ratio)
    else:
        cparams.tcp_numlayers = 1
        cparams.tcp_rates[0] = 0.0  # lossless: no rate allocation

    out = _MemoryOutput()
    image = f.image_create(samples, comptparms, colour)
    if not image:
        raise MemoryError("OpenJPEG could not allocate the image")
    codec = stream = None
    try:
        image.contents.x0 = image.contents.y0 = 0
        image.contents.x1, image.contents.y1 = columns, rows
        plane = np.empty((rows, columns), np.int32)
        for c in range(samples):
            np.copyto(plane, arr[:, :, c], casting="unsafe")
            ctypes.memmove(image.contents.comps[c].data, plane.ctypes.data, plane.nbytes)

        codec = f.create_compress(opj.CODEC_J2K)
        f.set_error(codec, out.on_error, None)
        f.set_warning(codec, _SILENT, None)
        f.set_info(codec, _SILENT, None)
        _check(out, f.setup_encoder(codec, ctypes.byref(cparams), image), "set up")
        if threads > 1:
            f.set_threads(codec, int(threads))
        stream = f.stream_create(1 << 20, 0)
        f.set_write(stream, out.write)
        f.set_skip(stream, out.skip)
        f.set_seek(stream, out.seek)
        _check(out, f.start_compress(codec, image, stream), "start")
        _check(out, f.encode(codec, stream), "encode")
        _check(out, f.end_compress(codec, stream), "end")
    finally:
        if stream:
            f.stream_destroy(stream)
        if codec:
            f.destroy_codec(codec)
        f.image_destroy(image)
    return bytes(out.buf)


_SILENT = _ERROR_FN(lambda msg, _: None)


def _check(out: _MemoryOutput, ok, step: str) -> None:
    if not ok:
        detail = "; ".join(out.errors) or "no message"
        raise DicompressError(f"OpenJPEG failed to {step} the codestream: {detail}")
