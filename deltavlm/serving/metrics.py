"""Prometheus metrics of one server process: counters, gauges and histograms in the text exposition format.

The format is a few lines of text, so this module writes it directly rather than adding a dependency for
the fast tests and the uvicorn engine. Each server (and each test app) owns its own :class:`Registry`, so
two apps in one process never mix numbers. Under Ray Serve every replica has its own registry and
``GET /metrics`` reports the replica that answered it.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Iterable, Sequence

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

LabelValues = tuple[str, ...]


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(names: Sequence[str], values: Sequence[str], extra: str = "") -> str:
    parts = [f'{n}="{_escape(v)}"' for n, v in zip(names, values, strict=True)]
    if extra:
        parts.append(extra)
    return "{" + ",".join(parts) + "}" if parts else ""


def _number(value: float) -> str:
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value)) if not float(value).is_integer() else str(int(value))


class _Metric:
    kind = ""

    def __init__(self, name: str, help_text: str, labelnames: Sequence[str] = ()) -> None:
        self.name = name
        self.help = help_text
        self.labelnames = tuple(labelnames)
        self._lock = threading.Lock()

    def _key(self, labels: dict[str, str]) -> LabelValues:
        if set(labels) != set(self.labelnames):
            raise ValueError(f"{self.name} takes labels {self.labelnames}, got {sorted(labels)}")
        return tuple(str(labels[n]) for n in self.labelnames)

    def header(self) -> list[str]:
        return [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} {self.kind}"]

    def samples(self) -> list[str]:
        raise NotImplementedError


class Counter(_Metric):
    """A count that only goes up (requests, cache hits)."""

    kind = "counter"

    def __init__(self, name: str, help_text: str, labelnames: Sequence[str] = ()) -> None:
        super().__init__(name, help_text, labelnames)
        self._values: dict[LabelValues, float] = {}

    def inc(self, amount: float = 1.0, **labels: str) -> None:
        key = self._key(labels)
        with self._lock:
            self._values[key] = self._values.get(key, 0.0) + amount

    def value(self, **labels: str) -> float:
        with self._lock:
            return self._values.get(self._key(labels), 0.0)

    def samples(self) -> list[str]:
        with self._lock:
            items = sorted(self._values.items())
        return [f"{self.name}{_labels(self.labelnames, k)} {_number(v)}" for k, v in items]


class CallbackMetric(_Metric):
    """A gauge or counter read from elsewhere at scrape time (cache sizes, the encoder's call count)."""

    def __init__(self, name: str, help_text: str, read: Callable[[], float], kind: str = "gauge") -> None:
        super().__init__(name, help_text)
        self.kind = kind
        self._read = read

    def samples(self) -> list[str]:
        return [f"{self.name} {_number(self._read())}"]


class Histogram(_Metric):
    """Observations in cumulative buckets plus their sum and count (latencies, batch sizes)."""

    kind = "histogram"

    def __init__(self, name: str, help_text: str, buckets: Iterable[float], labelnames: Sequence[str] = ()) -> None:
        super().__init__(name, help_text, labelnames)
        self.buckets = tuple(sorted(float(b) for b in buckets))
        self._counts: dict[LabelValues, list[int]] = {}
        self._sums: dict[LabelValues, float] = {}

    def observe(self, value: float, **labels: str) -> None:
        key = self._key(labels)
        with self._lock:
            counts = self._counts.setdefault(key, [0] * (len(self.buckets) + 1))
            for index, bound in enumerate(self.buckets):
                if value <= bound:
                    counts[index] += 1
            counts[-1] += 1
            self._sums[key] = self._sums.get(key, 0.0) + value

    def count(self, **labels: str) -> int:
        with self._lock:
            counts = self._counts.get(self._key(labels))
            return counts[-1] if counts else 0

    def total(self, **labels: str) -> float:
        with self._lock:
            return self._sums.get(self._key(labels), 0.0)

    def samples(self) -> list[str]:
        lines = []
        with self._lock:
            items = sorted((k, list(c), self._sums[k]) for k, c in self._counts.items())
        for key, counts, total in items:
            for bound, count in zip((*self.buckets, math.inf), counts, strict=True):
                le = f'le="{_number(bound)}"'
                lines.append(f"{self.name}_bucket{_labels(self.labelnames, key, le)} {count}")
            lines.append(f"{self.name}_sum{_labels(self.labelnames, key)} {_number(total)}")
            lines.append(f"{self.name}_count{_labels(self.labelnames, key)} {counts[-1]}")
        return lines


class Registry:
    """The metrics of one server, rendered together for ``GET /metrics``."""

    def __init__(self) -> None:
        self._metrics: dict[str, _Metric] = {}

    def add(self, metric: _Metric) -> _Metric:
        if metric.name in self._metrics:
            raise ValueError(f"metric {metric.name} registered twice")
        self._metrics[metric.name] = metric
        return metric

    def counter(self, name: str, help_text: str, labelnames: Sequence[str] = ()) -> Counter:
        metric = Counter(name, help_text, labelnames)
        self.add(metric)
        return metric

    def histogram(
        self, name: str, help_text: str, buckets: Iterable[float], labelnames: Sequence[str] = ()
    ) -> Histogram:
        metric = Histogram(name, help_text, buckets, labelnames)
        self.add(metric)
        return metric

    def callback(self, name: str, help_text: str, read: Callable[[], float], kind: str = "gauge") -> None:
        self.add(CallbackMetric(name, help_text, read, kind))

    def render(self) -> str:
        lines: list[str] = []
        for metric in self._metrics.values():
            lines.extend(metric.header())
            lines.extend(metric.samples())
        return "\n".join(lines) + "\n"


LATENCY_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64)


class ServerMetrics:
    """The server's named metrics (prefix ``deltavlm_``), so engine and app share one vocabulary."""

    def __init__(self) -> None:
        self.registry = Registry()
        r = self.registry
        self.requests = r.counter(
            "deltavlm_requests_total", "HTTP requests by route and status code.", ("route", "status")
        )
        self.request_seconds = r.histogram(
            "deltavlm_request_seconds", "Wall time of HTTP requests by route.", LATENCY_BUCKETS, ("route",)
        )
        self.batch_size = r.histogram(
            "deltavlm_batch_size", "Rows per model call (stage: encode or generate).", BATCH_BUCKETS, ("stage",)
        )
        self.queue_seconds = r.histogram(
            "deltavlm_queue_seconds", "Time a request waited before its batch started.", LATENCY_BUCKETS, ("stage",)
        )
        self.encode_seconds = r.histogram(
            "deltavlm_encode_seconds", "Wall time of one batched Bi-VE + CSRM pass.", LATENCY_BUCKETS
        )
        self.generate_seconds = r.histogram(
            "deltavlm_generate_seconds", "Wall time of one batched generate call.", LATENCY_BUCKETS
        )
        self.generated_tokens = r.counter("deltavlm_generated_tokens_total", "Tokens generated for answers.")
        self.pair_lookups = r.counter(
            "deltavlm_pair_lookups_total", "Chat requests by whether the pair id was held (hit) or not.", ("result",)
        )
        self.rejected = r.counter(
            "deltavlm_rejected_total", "Requests refused before reaching the model, by reason.", ("reason",)
        )
