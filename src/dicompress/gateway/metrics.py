"""The gateway's counters, and /metrics in the Prometheus text exposition format.

Counters and histograms live in memory for the life of the process (Prometheus takes
a restart as a counter reset); the queue's depth and the age of its oldest instance
are read from the queue at each scrape, so they hold across restarts. The format
(version 0.0.4) is a few lines of text: written here, not with a client library.
"""

from __future__ import annotations

import threading
import time

#: Histogram bucket upper bounds, in seconds (encoding one instance; sending one).
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)

_COUNTERS = {
    "received": "Instances received and queued (C-STORE success returned)",
    "sent": "Instances the destination acknowledged",
    "sent_other_than_target": "Instances sent in a syntax other than the route's target",
    "failed": "Instances set aside after breaking the encoder or the network library",
    "held": "Instances held by the route's fallback = \"hold\"",
    "received_bytes": "Bytes of the instances received",
    "sent_in_bytes": "Bytes, as received, of the instances sent",
    "sent_out_bytes": "Bytes, as sent, of the instances sent",
}
_HISTOGRAMS = {
    "encode_seconds": "Time to encode one instance for its destination",
    "send_seconds": "Time to send one instance and have its answer",
}


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(labels: dict[str, str]) -> str:
    return "{" + ",".join(f'{k}="{_escape(str(v))}"' for k, v in labels.items()) + "}"


class Histogram:
    def __init__(self) -> None:
        self.counts = [0] * len(BUCKETS)
        self.total = 0.0
        self.count = 0

    def observe(self, seconds: float) -> None:
        for n, bound in enumerate(BUCKETS):
            if seconds <= bound:
                self.counts[n] += 1
                break
        self.total += seconds
        self.count += 1


class Metrics:
    """Thread-safe counters per route (and per transfer syntax sent)."""

    def __init__(self, routes: list[str]) -> None:
        self._lock = threading.Lock()
        self.routes = list(routes)
        self.counters = {name: dict.fromkeys(routes, 0) for name in _COUNTERS}
        self.syntaxes: dict[tuple[str, str], int] = {}
        self.histograms = {name: {r: Histogram() for r in routes} for name in _HISTOGRAMS}
        self.started = time.time()

    def count(self, name: str, route: str, amount: int = 1) -> None:
        with self._lock:
            counters = self.counters[name]
            counters[route] = counters.get(route, 0) + amount

    def sent(self, route: str, syntax: str, size_in: int, size_out: int, other: bool) -> None:
        with self._lock:
            for name, amount in (("sent", 1), ("sent_in_bytes", size_in),
                                 ("sent_out_bytes", size_out),
                                 ("sent_other_than_target", int(other))):
                self.counters[name][route] = self.counters[name].get(route, 0) + amount
            self.syntaxes[route, syntax] = self.syntaxes.get((route, syntax), 0) + 1

    def observe(self, name: str, route: str, seconds: float) -> None:
        with self._lock:
            self.histograms[name].setdefault(route, Histogram()).observe(seconds)

    def exposition(self, depth: dict[str, tuple[int, float | None]]) -> str:
        """The text format; `depth` is Queue.depth() (route -> (queued, oldest arrival))."""
        now = time.time()
        lines = []
        with self._lock:
            for name, help_text in _COUNTERS.items():
                metric = f"dicompress_gateway_{name.removesuffix('_bytes')}"
                metric += "_bytes_total" if name.endswith("_bytes") else "_total"
                lines += [f"# HELP {metric} {help_text}", f"# TYPE {metric} counter"]
                lines += [f"{metric}{_labels({'route': r})} {v}"
                          for r, v in sorted(self.counters[name].items())]
            metric = "dicompress_gateway_sent_syntax_total"
            lines += [f"# HELP {metric} Instances sent, by transfer syntax UID",
                      f"# TYPE {metric} counter"]
            lines += [f"{metric}{_labels({'route': r, 'transfer_syntax': s})} {v}"
                      for (r, s), v in sorted(self.syntaxes.items())]
            for name, help_text in _HISTOGRAMS.items():
                metric = f"dicompress_gateway_{name}"
                lines += [f"# HELP {metric} {help_text}", f"# TYPE {metric} histogram"]
                for route, hist in sorted(self.histograms[name].items()):
                    cumulative = 0
                    for bound, n in zip(BUCKETS, hist.counts):
                        cumulative += n
                        labels = _labels({"route": route, "le": repr(bound)})
                        lines.append(f"{metric}_bucket{labels} {cumulative}")
                    lines.append(f"{metric}_bucket{_labels({'route': route, 'le': '+Inf'})}"
                                 f" {hist.count}")
                    lines.append(f"{metric}_sum{_labels({'route': route})} {hist.total!r}")
                    lines.append(f"{metric}_count{_labels({'route': route})} {hist.count}")
            routes = sorted(set(self.routes) | set(depth))
        lines += ["# HELP dicompress_gateway_queued Instances waiting to be sent",
                  "# TYPE dicompress_gateway_queued gauge"]
        lines += [f"dicompress_gateway_queued{_labels({'route': r})} {depth.get(r, (0, None))[0]}"
                  for r in routes]
        lines += ["# HELP dicompress_gateway_oldest_queued_seconds Age of the oldest instance "
                  "waiting (0: none)", "# TYPE dicompress_gateway_oldest_queued_seconds gauge"]
        for r in routes:
            oldest = depth.get(r, (0, None))[1]
            age = 0.0 if oldest is None else max(0.0, now - oldest)
            lines.append(f"dicompress_gateway_oldest_queued_seconds{_labels({'route': r})} "
                         f"{age:.3f}")
        lines += ["# HELP dicompress_gateway_up_seconds Seconds since the gateway started",
                  "# TYPE dicompress_gateway_up_seconds gauge",
                  f"dicompress_gateway_up_seconds {max(0.0, now - self.started):.3f}"]
        return "\n".join(lines) + "\n"
