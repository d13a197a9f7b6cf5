"""Prometheus metrics of one app instance (its own registry: no process-wide state)."""

from __future__ import annotations

from typing import Any, Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_FAST = (0.001, 0.0025, 0.005, 0.01, 0.015, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


class _ActiveEdits:
    """Scrape-time gauge: active edits per namespace, read from the ledger."""

    def __init__(self, count: Callable[[], dict[str, int]]) -> None:
        self._count = count

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily("agentedit_active_edits", "Active edits in the store, per namespace", labels=["namespace"])
        for ns, n in sorted(self._count().items()):
            family.add_metric([ns], n)
        yield family


class Metrics:
    """The server's counters and histograms; :meth:`render` gives the Prometheus text format."""

    def __init__(self, active_edits: Callable[[], dict[str, int]] | None = None) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter("agentedit_http_requests", "HTTP requests", ["method", "route", "status"], registry=r)
        self.latency = Histogram("agentedit_http_request_seconds", "HTTP request time", ["route"], buckets=_FAST, registry=r)
        self.chats = Counter("agentedit_chat_completions", "Chat completions by route and mode", ["route", "stream"], registry=r)
        self.applied = Counter("agentedit_edits_applied", "Edits injected into chat requests", registry=r)
        self.prepare = Histogram("agentedit_prepare_seconds", "Retrieve + scope + compose time", buckets=_FAST, registry=r)
        self.upstream = Histogram("agentedit_upstream_seconds", "Upstream model call time (to the first chunk when streaming)",
                                  buckets=_FAST, registry=r)
        self.upstream_errors = Counter("agentedit_upstream_errors", "Failed upstream calls by HTTP status returned",
                                       ["status"], registry=r)
        self.upstream_cancelled = Counter("agentedit_upstream_cancelled", "Upstream calls cancelled because the client "
                                          "went away", ["stream"], registry=r)
        self.auth_failures = Counter("agentedit_auth_failures", "Requests refused by authentication or authorization",
                                     ["status"], registry=r)
        if active_edits is not None:
            r.register(_ActiveEdits(active_edits))  # type: ignore[arg-type]

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        self.requests.labels(method, route, str(status)).inc()
        self.latency.labels(route).observe(seconds)

    def render(self) -> bytes:
        return generate_latest(self.registry)

    def value(self, name: str, labels: dict[str, Any] | None = None) -> float | None:
        """One sample's current value (for tests and health output)."""
        return self.registry.get_sample_value(name, {k: str(v) for k, v in (labels or {}).items()})
