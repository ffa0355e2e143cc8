"""Encoding frames: the target codec on each frame, and (when verifying) the frame decoded
again: bit-exact for lossless codecs, else its loss measured."""

from __future__ import annotations

import math
import threading
from collections.abc import Callable

import numpy as np

from dicompress.codecs import Codec
from dicompress.codecs.search import psnr
from dicompress.errors import CorruptPixelData, VerificationFailed
from dicompress.layout import FrameLayout


class LossStats:
    """Worst-case loss over the frames of one lossy file."""

    def __init__(self) -> None:
        self.count = 0
        self.max_error = 0
        self.psnr = math.inf
        self._lock = threading.Lock()

    def add(self, source: np.ndarray, decoded: np.ndarray, bits_stored: int) -> None:
        error = int(np.abs(source.astype(np.int64) - decoded.astype(np.int64)).max(initial=0))
        value = psnr(source, decoded, bits_stored)
        with self._lock:
            self.count += 1
            self.max_error = max(self.max_error, error)
            self.psnr = min(self.psnr, value)


def frame_encoder(codec: Codec, layout: FrameLayout, shape: tuple[int, ...], dtype: np.dtype,
                  *, verify: bool, codec_threads: int,
                  frame_filter: Callable[[np.ndarray], np.ndarray] | None = None,
                  stats: LossStats | None = None) -> Callable[[np.ndarray], bytes]:
    """The function that encodes one frame (of `shape` and `dtype`, as frame 1 decoded)
    and, with `verify`, decodes it again: bit-exact for lossless codecs, else the loss
    goes to `stats`."""
    def encode(arr: np.ndarray) -> bytes:
        if arr.shape != shape or arr.dtype != dtype:
            raise CorruptPixelData(f"frame decodes to {arr.shape} {arr.dtype}, "
                                   f"frame 1 to {shape} {dtype}")
        if frame_filter is not None:
            arr = frame_filter(arr)
        data = codec.encode_frame(arr, layout, codec_threads)
        if verify:
            back = codec.decode_frame(data, layout)
            if codec.lossless:
                if not np.array_equal(back, arr):
                    raise VerificationFailed("an encoded frame does not decode to the source values")
            else:
                if back.shape != arr.shape:
                    raise VerificationFailed(f"a lossy frame decodes to {back.shape}, not {arr.shape}")
                if stats is not None:
                    stats.add(arr, back, layout.bits_stored)
        return data

    return encode
