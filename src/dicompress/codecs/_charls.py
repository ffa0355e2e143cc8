"""JPEG-LS (ISO 14495-1) through CharLS's C API, called with ctypes.

The Python bindings at hand either fix the sample precision to the container
(imagecodecs: 16 bits for 12-bit CT) or hold the GIL while coding (pyjpegls).
DICOM wants the JPEG-LS precision P equal to Bits Stored, and we want frames
coded in parallel, so we call CharLS directly: ctypes releases the GIL.

The library is the CharLS that ships inside imagecodecs, else the system's
(Debian: libcharls2).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import threading
from pathlib import Path

import numpy as np

from dicompress.errors import CorruptPixelData, DicompressError


class _FrameInfo(ctypes.Structure):
    _fields_ = [("width", ctypes.c_uint32), ("height", ctypes.c_uint32),
                ("bits_per_sample", ctypes.c_int32), ("component_count", ctypes.c_int32)]


_lock = threading.Lock()
_lib = None
INTERLEAVE_NONE, INTERLEAVE_LINE, INTERLEAVE_SAMPLE = 0, 1, 2


def _find() -> str | None:
    try:
        import imagecodecs

        libs = Path(imagecodecs.__file__).parent.parent / "imagecodecs.libs"
        found = sorted(libs.glob("libcharls*.so*"))
        if found:
            return str(found[0])
    except ImportError:
        pass
    return ctypes.util.find_library("charls")


def library():
    global _lib
    with _lock:
        if _lib is not None:
            return _lib
        path = _find()
        if path is None:
            raise DicompressError("JPEG-LS needs CharLS: pip install imagecodecs "
                                  "(or apt-get install libcharls2)")
        lib = ctypes.CDLL(path)
        vp, errc, size_p = ctypes.c_void_p, ctypes.c_int32, ctypes.POINTER(ctypes.c_size_t)
        proto = {
            "charls_jpegls_encoder_create": (vp,),
            "charls_jpegls_encoder_destroy": (None, vp),
            "charls_jpegls_encoder_set_frame_info": (errc, vp, ctypes.POINTER(_FrameInfo)),
            "charls_jpegls_encoder_set_near_lossless": (errc, vp, ctypes.c_int32),
            "charls_jpegls_encoder_set_interleave_mode": (errc, vp, ctypes.c_int32),
            "charls_jpegls_encoder_get_estimated_destination_size": (errc, vp, size_p),
            "charls_jpegls_encoder_set_destination_buffer": (errc, vp, vp, ctypes.c_size_t),
            "charls_jpegls_encoder_encode_from_buffer":
                (errc, vp, vp, ctypes.c_size_t, ctypes.c_uint32),
            "charls_jpegls_encoder_get_bytes_written": (errc, vp, size_p),
            "charls_jpegls_decoder_create": (vp,),
            "charls_jpegls_decoder_destroy": (None, vp),
            "charls_jpegls_decoder_set_source_buffer": (errc, vp, vp, ctypes.c_size_t),
            "charls_jpegls_decoder_read_header": (errc, vp),
            "charls_jpegls_decoder_get_frame_info": (errc, vp, ctypes.POINTER(_FrameInfo)),
            "charls_jpegls_decoder_get_destination_size": (errc, vp, ctypes.c_uint32, size_p),
            "charls_jpegls_decoder_decode_to_buffer":
                (errc, vp, vp, ctypes.c_size_t, ctypes.c_uint32),
            "charls_get_error_message": (ctypes.c_char_p, errc),
        }
        for name, (restype, *argtypes) in proto.items():
            fn = getattr(lib, name)
            fn.restype, fn.argtypes = restype, argtypes
        _lib = lib
        return lib


def _check(lib, code: int, what: str, error=DicompressError) -> None:
    if code:
        message = lib.charls_get_error_message(code).decode(errors="replace")
        raise error(f"CharLS could not {what}: {message} (error {code})")


def encode(samples: np.ndarray, precision: int, near: int = 0) -> bytes:
    """JPEG-LS of one frame: uint8 (precision <= 8) or uint16 samples, rows x cols [x n]."""
    lib = library()
    samples = np.ascontiguousarray(samples)
    rows, columns = samples.shape[:2]
    components = samples.shape[2] if samples.ndim == 3 else 1
    info = _FrameInfo(columns, rows, max(2, precision), components)
    enc = lib.charls_jpegls_encoder_create()
    if not enc:
        raise MemoryError("CharLS could not create an encoder")
    try:
        _check(lib, lib.charls_jpegls_encoder_set_frame_info(enc, ctypes.byref(info)),
               "accept the frame")
        _check(lib, lib.charls_jpegls_encoder_set_near_lossless(enc, int(near)), "set NEAR")
        if components > 1:
            _check(lib, lib.charls_jpegls_encoder_set_interleave_mode(enc, INTERLEAVE_SAMPLE),
                   "set the interleave mode")
        size = ctypes.c_size_t()
        _check(lib, lib.charls_jpegls_encoder_get_estimated_destination_size(
            enc, ctypes.byref(size)), "size the output")
        out = np.empty(size.value, np.uint8)
        _check(lib, lib.charls_jpegls_encoder_set_destination_buffer(
            enc, out.ctypes.data, out.nbytes), "take the output buffer")
        _check(lib, lib.charls_jpegls_encoder_encode_from_buffer(
            enc, samples.ctypes.data, samples.nbytes, 0), "encode the frame")
        written = ctypes.c_size_t()
        _check(lib, lib.charls_jpegls_encoder_get_bytes_written(enc, ctypes.byref(written)),
               "count the output")
        return out[: written.value].tobytes()
    finally:
        lib.charls_jpegls_encoder_destroy(enc)


def decode(data: bytes) -> tuple[np.ndarray, int]:
    """(samples, precision) of one JPEG-LS frame; colour comes back interleaved
    when it was coded line or sample interleaved."""
    lib = library()
    src = np.frombuffer(data, np.uint8)
    dec = lib.charls_jpegls_decoder_create()
    if not dec:
        raise MemoryError("CharLS could not create a decoder")
    try:
        _check(lib, lib.charls_jpegls_decoder_set_source_buffer(dec, src.ctypes.data, src.nbytes),
               "take the input", CorruptPixelData)
        _check(lib, lib.charls_jpegls_decoder_read_header(dec), "read the header", CorruptPixelData)
        info = _FrameInfo()
        _check(lib, lib.charls_jpegls_decoder_get_frame_info(dec, ctypes.byref(info)),
               "read the frame info", CorruptPixelData)
        size = ctypes.c_size_t()
        _check(lib, lib.charls_jpegls_decoder_get_destination_size(dec, 0, ctypes.byref(size)),
               "size the output", CorruptPixelData)
        dtype = np.uint8 if info.bits_per_sample <= 8 else np.dtype("<u2")
        shape = (info.height, info.width) + ((info.component_count,) if info.component_count > 1 else ())
        out = np.empty(shape, dtype)
        if out.nbytes != size.value:
            raise CorruptPixelData(f"JPEG-LS frame decodes to {size.value} bytes, not {out.nbytes}")
        _check(lib, lib.charls_jpegls_decoder_decode_to_buffer(dec, out.ctypes.data, out.nbytes, 0),
               "decode the frame", CorruptPixelData)
        return out, info.bits_per_sample
    finally:
        lib.charls_jpegls_decoder_destroy(dec)
