"""Prometheus metrics of one app, in its own registry (so several apps in one process never collide).

Route labels are route templates (`/v0.1/servers/{name}`), never raw paths, so a client cannot grow
the label set by asking for many names.
"""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
RELOAD_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)

METRICS_CONTENT_TYPE = CONTENT_TYPE_LATEST
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT"})


class ApiMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "mcpreg_api_requests",
            "HTTP requests answered, by route template, method and status code.",
            ("route", "method", "status"),
            registry=self.registry,
        )
        self.latency = Histogram(
            "mcpreg_api_request_duration_seconds",
            "Time from reading a request to having its response ready, by route template.",
            ("route",),
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.in_flight = Gauge(
            "mcpreg_api_requests_in_flight", "Requests being handled now.", registry=self.registry
        )
        self.reloads = Counter(
            "mcpreg_api_catalog_reloads",
            "Catalogue generations received from storage, by result (loaded, unchanged, invalid).",
            ("result",),
            registry=self.registry,
        )
        self.reload_duration = Histogram(
            "mcpreg_api_catalog_reload_duration_seconds",
            "Time to parse and precompute a catalogue generation.",
            buckets=RELOAD_BUCKETS,
            registry=self.registry,
        )
        self.servers = Gauge(
            "mcpreg_api_catalog_servers", "Distinct servers in the catalogue served.", registry=self.registry
        )
        self.entries = Gauge(
            "mcpreg_api_catalog_entries", "Server versions in the catalogue served.", registry=self.registry
        )
        self.loaded_at = Gauge(
            "mcpreg_api_catalog_loaded_timestamp_seconds",
            "When the catalogue served was loaded (Unix time).",
            registry=self.registry,
        )
        self.ready = Gauge(
            "mcpreg_api_ready", "1 when a catalogue is loaded and served, else 0.", registry=self.registry
        )
        self.auth_reviews = Counter(
            "mcpreg_api_auth_reviews",
            "Reviews sent to the Kubernetes API server (auth mode kubernetes), by kind (token, access) "
            "and result (the outcome, or failed).",
            ("kind", "result"),
            registry=self.registry,
        )

        self._request_children: dict[tuple[str, str, int], Any] = {}
        self._latency_children: dict[str, Any] = {}

    def observe_request(self, route: str, method: str, status: int, seconds: float) -> None:
        """Count one answered request (label children cached: this runs for every request)."""
        if method not in KNOWN_METHODS:
            method = "other"  # any token is a method to HTTP: never let clients mint label values
        key = (route, method, status)
        counter = self._request_children.get(key)
        if counter is None:
            counter = self._request_children[key] = self.requests.labels(route, method, str(status))
        counter.inc()
        histogram = self._latency_children.get(route)
        if histogram is None:
            histogram = self._latency_children[route] = self.latency.labels(route)
        histogram.observe(seconds)

    def render(self) -> bytes:
        return generate_latest(self.registry)
