"""The lookup tables of the display pipeline (`dicompress.voi`), on the native kernels of
`native/lut.c`: a table over every value the sample type holds, built for the stored
range with its end values held outside it (values that break the attributes' promises
clamp to the ends), cached, and applied by the gather kernel (GIL released, rows split
over threads for big frames); the formulas per pixel where no table fits (float, 64-bit,
or 32-bit samples of very wide range). Modality and VOI arrive as hashable keys."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache

import numpy as np

from dicompress import _lut
from dicompress.errors import DisplayError, UnsupportedLayout

_PARALLEL_MIN = 1 << 20  # elements; below this one thread is faster
_TABLE_SPAN_MAX = 1 << 22  # 32-bit input: widest value span done with a table


def type_range(dtype: np.dtype) -> tuple[int, int]:
    info = np.iinfo(dtype)
    return int(info.min), int(info.max)


@lru_cache(maxsize=64)
def build_table(first: int, length: int, stored_lo: int, stored_hi: int, voi: tuple,
           modality: tuple, invert: bool, bits: int) -> np.ndarray:
    """A table over first..first+length-1, computed for stored_lo..stored_hi, ends held."""
    kwargs = dict(voi)
    kind = modality[0]
    if kind == "rescale":
        kwargs.update(slope=modality[1], intercept=modality[2])
    else:
        kwargs.update(modality_table=np.frombuffer(modality[1], np.float64),
                      modality_first=modality[2])
    if "voi_table" in kwargs:
        kwargs["voi_table"] = np.frombuffer(kwargs["voi_table"], np.float64)
    try:
        core = _lut.build(stored_lo, stored_hi - stored_lo + 1, out_bits=bits, invert=invert,
                          **kwargs)
    except ValueError as exc:
        raise DisplayError(str(exc)) from exc
    if stored_lo == first and stored_hi - stored_lo + 1 == length:
        table = core
    else:
        table = np.empty(length, dtype=core.dtype)
        below, above = stored_lo - first, first + length - 1 - stored_hi
        table[:below] = core[0]
        table[below: below + core.size] = core
        table[length - above:] = core[-1]
    table.flags.writeable = False
    return table


def apply_table(arr: np.ndarray, stored: tuple[int, int] | None, voi: tuple, modality: tuple,
           invert: bool, bits: int, threads: int | None) -> np.ndarray:
    arr = np.ascontiguousarray(arr)
    if arr.dtype.byteorder == ">":
        arr = arr.astype(arr.dtype.newbyteorder("="))
    if arr.dtype.kind not in "uif":
        raise UnsupportedLayout(f"display LUTs take integer or float samples, not {arr.dtype}")
    out = np.empty(arr.shape, dtype=np.uint8 if bits == 8 else np.uint16)
    if arr.size == 0:
        return out
    if arr.dtype.kind == "f" or arr.dtype.itemsize > 4:
        return _apply_direct(arr, voi, modality, invert, bits, out)
    if arr.dtype.itemsize <= 2:
        first, last = type_range(arr.dtype)
        lo, hi = stored if stored else (first, last)
        lo, hi = max(lo, first), min(hi, last)
        if lo > hi:  # attributes that describe no value this type holds
            lo, hi = first, last
    else:
        # 32-bit: a table over the values present, when that is small enough
        first, last = int(arr.min()), int(arr.max())
        if last - first + 1 > _TABLE_SPAN_MAX:
            return _apply_direct(arr, voi, modality, invert, bits, out)
        lo, hi = first, last
    table = build_table(first, last - first + 1, lo, hi, voi, modality, invert, bits)
    _gather(arr, table, first, out, threads)
    return out


_POOL: ThreadPoolExecutor | None = None


def _pool() -> ThreadPoolExecutor:
    """One pool for the process: starting threads per frame costs more than the gather."""
    global _POOL
    if _POOL is None:
        _POOL = ThreadPoolExecutor(os.cpu_count() or 1, thread_name_prefix="dicompress-lut")
    return _POOL


def _gather(arr, table, first, out, threads):
    workers = min(threads if threads is not None else (os.cpu_count() or 1), os.cpu_count() or 1)
    if workers <= 1 or arr.size < _PARALLEL_MIN:
        _lut.apply(arr, table, first, out)
        return
    flat_in, flat_out = arr.reshape(-1), out.reshape(-1)
    bounds = np.linspace(0, arr.size, workers + 1).astype(int)
    jobs = [_pool().submit(_lut.apply, flat_in[bounds[k]:bounds[k + 1]], table, first,
                           flat_out[bounds[k]:bounds[k + 1]]) for k in range(workers)]
    for job in jobs:
        job.result()


def _apply_direct(arr, voi, modality, invert, bits, out):
    """The slow path (float, 64-bit, or 32-bit data of very wide range): the formulas per pixel."""
    x = arr.astype(np.float64)
    if modality[0] == "rescale":
        x = x * modality[1] + modality[2]
    else:
        table = np.frombuffer(modality[1], np.float64)
        x = table[np.clip(np.floor(x + 0.5) - modality[2], 0, table.size - 1).astype(np.int64)]
    y = _voi_formula(x, dict(voi))
    if invert:
        y = 1.0 - y
    top = 255 if bits == 8 else 65535
    out[...] = np.floor(y * top + 0.5)
    return out


def _voi_formula(x: np.ndarray, voi: dict) -> np.ndarray:
    function, c, w = voi["function"], voi.get("center", 0.0), voi.get("width", 1.0)
    with np.errstate(over="ignore"):
        if function == "linear":
            y = np.where(x <= c - 0.5 - (w - 1) / 2, 0.0,
                         np.where(x > c - 0.5 + (w - 1) / 2, 1.0, (x - (c - 0.5)) / (w - 1) + 0.5))
        elif function == "linear_exact":
            y = np.where(x <= c - w / 2, 0.0, np.where(x > c + w / 2, 1.0, (x - c) / w + 0.5))
        elif function == "sigmoid":
            y = 1.0 / (1.0 + np.exp(-4.0 * (x - c) / w))
        elif function == "table":
            table = np.frombuffer(voi["voi_table"], np.float64)
            k = np.clip(np.floor(x + 0.5) - voi["voi_first"], 0, table.size - 1).astype(np.int64)
            y = table[k] / voi["voi_max"]
        else:
            y = (x - voi["range_min"]) / (voi["range_max"] - voi["range_min"])
    return np.clip(y, 0.0, 1.0)
