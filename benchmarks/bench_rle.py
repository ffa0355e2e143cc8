"""RLE Lossless encode and decode, dicompress against its peers, through pydicom.

One group per operation and file ("encode RG1_UNCR.dcm"), so pytest-benchmark
prints the implementations side by side; `plugin` is parametrised by
``conftest.py`` over dicompress, pylibjpeg(-rle), GDCM and pydicom.
``tools/bench_table.py`` turns the JSON of a run into the table of
``BENCHMARKS.md``.

Outputs are checked once per benchmark (an encoded frame must decode to the
original with pydicom's pure-Python decoder; a decoded frame must equal the
original); no time is ever asserted.
"""

from __future__ import annotations

import numpy as np
import pytest
from pydicom.pixels import get_decoder, get_encoder
from pydicom.uid import RLELossless

# pydicom's own encoder is pure Python (about 10 MB/s, 0.7 s for the 7 MB CR):
# a few rounds say all there is to say and keep the full run within minutes.
FIXED_ROUNDS = {"pydicom": 3}


def bench_encode(benchmark, measure, record, case, plugin):
    encoder = get_encoder(RLELossless)
    if plugin not in encoder.available_plugins:
        pytest.skip(f"pydicom has no usable {plugin!r} RLE encoder here")
    benchmark.group = f"encode {case.name}"
    ds = case.dataset

    def encode() -> bytes:
        return encoder.encode(ds, index=0, encoding_plugin=plugin)

    fragment = measure(encode, rounds=FIXED_ROUNDS.get(plugin))

    decoded, _ = get_decoder(RLELossless).as_array(
        case.with_fragments([fragment]), index=0, decoding_plugin="pydicom"
    )
    np.testing.assert_array_equal(decoded, case.pixels)
    record(case, "encode", plugin, len(fragment))


def bench_decode(benchmark, measure, record, case, plugin):
    decoder = get_decoder(RLELossless)
    if plugin not in decoder.available_plugins:
        pytest.skip(f"pydicom has no usable {plugin!r} RLE decoder here")
    benchmark.group = f"decode {case.name}"
    ds = case.rle_dataset

    def decode() -> np.ndarray:
        return decoder.as_array(ds, index=0, decoding_plugin=plugin)[0]

    decoded = measure(decode)

    np.testing.assert_array_equal(decoded, case.pixels)
    record(case, "decode", plugin, case.rle_bytes)
