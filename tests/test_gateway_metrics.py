"""/metrics on the status port, parsed by prometheus_client's own parser."""

from __future__ import annotations

import sqlite3
import time
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from dicompress.gateway import load_config
from test_gateway import (PynetdicomSCP, _wait_until, free_port, gateway_factory,  # noqa: F401
                          make_series, storescu, write_config)
from test_gateway_fallback import broken_j2k, send

EXPLICIT = "1.2.840.10008.1.2.1"
ROUTE = {"route": "reading site"}


def scrape(port: int) -> dict[tuple[str, tuple], float]:
    """Every sample as {(name, sorted labels): value}; the parser rejects a bad format."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as reply:
        assert reply.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        text = reply.read().decode()
    samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            key = (sample.name, tuple(sorted(sample.labels.items())))
            assert key not in samples, f"{key} twice"
            samples[key] = sample.value
    return samples


def value(samples, name: str, **labels) -> float:
    return samples[name, tuple(sorted({**ROUTE, **labels}.items()))]


def test_metrics_count_what_was_received_sent_held_and_how_long_it_took(tmp_path,
                                                                       gateway_factory):
    dest_port, status_port = free_port(), free_port()
    dest = PynetdicomSCP(dest_port, [EXPLICIT])  # takes no compressed syntax
    try:
        config, port = write_config(tmp_path, dest_port, target="htj2k",
                                    extra=f"status_port = {status_port}")
        gateway_factory(config)
        series = make_series(tmp_path / "series", 3, 32)
        assert storescu(port, series).returncode == 0
        send(port, [broken_j2k(tmp_path / "in")])  # undecodable, J2K refused: held
        _wait_until(lambda: value(scrape(status_port), "dicompress_gateway_sent_total") == 3
                    and value(scrape(status_port), "dicompress_gateway_held_total") == 1,
                    what="sent and held")
        samples = scrape(status_port)
    finally:
        dest.stop()
    assert value(samples, "dicompress_gateway_received_total") == 4
    assert value(samples, "dicompress_gateway_sent_other_than_target_total") == 3
    assert value(samples, "dicompress_gateway_failed_total") == 0
    assert value(samples, "dicompress_gateway_sent_syntax_total", transfer_syntax=EXPLICIT) == 3
    with sqlite3.connect(load_config(config).database) as db:
        size_in, size_out = db.execute("SELECT SUM(size_in), SUM(size_out) FROM instances"
                                       " WHERE status = 'sent'").fetchone()
        all_in = db.execute("SELECT SUM(size_in) FROM instances").fetchone()[0]
    assert value(samples, "dicompress_gateway_sent_in_bytes_total") == size_in
    assert value(samples, "dicompress_gateway_sent_out_bytes_total") == size_out
    assert value(samples, "dicompress_gateway_received_bytes_total") == all_in
    assert value(samples, "dicompress_gateway_queued") == 0
    assert value(samples, "dicompress_gateway_oldest_queued_seconds") == 0
    for name in ("dicompress_gateway_encode_seconds", "dicompress_gateway_send_seconds"):
        assert value(samples, f"{name}_count") == 3
        buckets = sorted((float(dict(labels)["le"]), v) for (n, labels), v in samples.items()
                         if n == f"{name}_bucket")
        assert buckets[-1] == (float("inf"), 3)
        assert all(a[1] <= b[1] for a, b in zip(buckets, buckets[1:]))  # cumulative
        assert 0 < value(samples, f"{name}_sum") < 60


def test_metrics_show_the_queue_waiting_for_a_destination_that_is_down(tmp_path,
                                                                      gateway_factory):
    status_port = free_port()
    config, port = write_config(tmp_path, free_port(), extra=f"status_port = {status_port}")
    gateway_factory(config)
    samples = scrape(status_port)  # idle: every route is listed, at zero
    assert value(samples, "dicompress_gateway_queued") == 0
    assert value(samples, "dicompress_gateway_sent_total") == 0
    assert storescu(port, make_series(tmp_path / "series", 2, 32)).returncode == 0
    time.sleep(1.5)
    samples = scrape(status_port)
    assert value(samples, "dicompress_gateway_queued") == 2
    assert value(samples, "dicompress_gateway_oldest_queued_seconds") >= 1.0
    assert value(samples, "dicompress_gateway_sent_total") == 0


@pytest.mark.parametrize("route", ['a"b', "a\\b", "a\nb"])
def test_label_values_are_escaped(route):
    from dicompress.gateway.metrics import Metrics

    metrics = Metrics([route])
    metrics.count("received", route)
    text = metrics.exposition({route: (1, time.time() - 5)})
    samples = {(s.name, s.labels["route"]): s.value
               for f in text_string_to_metric_families(text) for s in f.samples
               if "route" in s.labels}
    assert samples["dicompress_gateway_received_total", route] == 1
    assert samples["dicompress_gateway_queued", route] == 1
