"""What an operator sees: Prometheus metrics, one structured access-log line per request, and request ids.

Each app has its own metrics registry (two apps in one process, as in the tests, never share counters). Route
labels are the route's template (`/v1/items/{item_id}`), never the raw path, so a client cannot grow the label
set; requests that match no route, or that are refused before routing (a missing key, a body too large),
share the label "unmatched".
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator, MutableMapping, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from zsrec.encoders.base import Kind, TextEncoder
from zsrec.service.security import VERSION_PREFIX, ASGIApp, Receive, Scope, Send

ACCESS_LOGGER = "zsrec.access"
REQUEST_ID_HEADER = b"x-request-id"
# A client's request id is echoed only when it is short and plain, so it cannot inject text into the log
_CLIENT_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class CountingEncoder:
    """A `TextEncoder` that counts the calls waiting for or inside the encoder: the encoder queue length."""

    def __init__(self, inner: TextEncoder) -> None:
        self.inner = inner
        self.model_id, self.dim = inner.model_id, inner.dim
        self._lock = threading.Lock()
        self.in_flight = 0

    @property
    def n_forward_texts(self) -> int:
        return self.inner.n_forward_texts

    def __getattr__(self, name: str) -> Any:  # the rest of the encoder's interface (e.g. an encoder process's pids)
        return getattr(self.inner, name)

    def encode(self, texts: Sequence[str], *, kind: Kind = "passage", show_progress: bool = False) -> np.ndarray:
        with self._counted():
            return self.inner.encode(texts, kind=kind, show_progress=show_progress)

    @contextmanager
    def _counted(self) -> Iterator[None]:
        with self._lock:
            self.in_flight += 1
        try:
            yield
        finally:
            with self._lock:
                self.in_flight -= 1


class ServiceGauges(Collector):
    """Gauges read at scrape time from `read()`: {"items", "users", "index_recall_at_10", "served_recall_at_10",
    "encoder_queue"}.

    A value that is None (the service still loading, or health data without a recall) is left out."""

    def __init__(self, read: Callable[[], dict[str, float | None]]) -> None:
        self.read = read

    def collect(self) -> Iterator[GaugeMetricFamily]:
        values = self.read()
        described = {
            "items": ("zsrec_items", "Live catalog items."),
            "users": ("zsrec_users", "Known users."),
            "index_recall_at_10": ("zsrec_index_recall_at_10", "Recall@10 of the vector index against exact search."),
            "served_recall_at_10": (
                "zsrec_served_recall_at_10",
                "Recall@10 of the served ranking against the model's exact ranking over the whole catalog.",
            ),
            "encoder_queue": ("zsrec_encoder_queue_length", "Encoder calls waiting or running."),
        }
        for key, (name, doc) in described.items():
            if values.get(key) is not None:
                yield GaugeMetricFamily(name, doc, value=float(values[key]))  # type: ignore[arg-type]


class Metrics:
    """The app's registry: request counts and latency per route, and the service gauges."""

    def __init__(self, read_gauges: Callable[[], dict[str, float | None]]) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "zsrec_http_requests", "HTTP requests answered.", ["method", "route", "status"], registry=self.registry
        )
        self.latency = Histogram(
            "zsrec_http_request_duration_seconds",
            "Time from request to the end of the answer.",
            ["method", "route"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.registry.register(ServiceGauges(read_gauges))

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        self.requests.labels(method, route, str(status)).inc()
        self.latency.labels(method, route).observe(seconds)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


class RequestLog:
    """ASGI middleware: a request id on every answer (the client's X-Request-ID, or a new one), one JSON access
    log line per request and its metrics. Headers are never logged (they carry the API key)."""

    def __init__(self, app: ASGIApp, *, metrics: Metrics, log: bool = True) -> None:
        self.app, self.metrics, self.log = app, metrics, log
        self.logger = logging.getLogger(ACCESS_LOGGER)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _request_id(scope)
        scope.setdefault("state", {})["request_id"] = request_id
        status = 500  # what the client gets if the app fails before answering
        start = time.perf_counter()

        async def send_with_id(message: MutableMapping[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                message["headers"] = [*message.get("headers", []), (REQUEST_ID_HEADER, request_id.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            seconds = time.perf_counter() - start
            route = _route_label(scope)
            self.metrics.observe(scope["method"], route, status, seconds)
            if self.log and self.logger.isEnabledFor(logging.INFO):
                self.logger.info(_log_line(scope, request_id, route, status, seconds))


def _route_label(scope: Scope) -> str:
    """The matched route's template with its version prefix ("/v1/items/{item_id}"), or "unmatched".

    A router included under a prefix hands the handler its own route, whose path lacks the prefix; the request
    path tells which inclusion matched."""
    route = scope.get("route")
    template = getattr(route, "path_format", None) or getattr(route, "path", None)  # "{id}", not "{id:anypath}"
    if not template:
        return "unmatched"
    path = str(scope.get("path", ""))
    if path.startswith(VERSION_PREFIX + "/") and not template.startswith(VERSION_PREFIX + "/"):
        return VERSION_PREFIX + template
    return template


def _request_id(scope: Scope) -> str:
    for key, value in scope.get("headers") or []:
        if key.lower() == REQUEST_ID_HEADER:
            text = value.decode("latin-1")
            if _CLIENT_ID.fullmatch(text):
                return text
            break
    return uuid.uuid4().hex


def _log_line(scope: Scope, request_id: str, route: str, status: int, seconds: float) -> str:
    client = scope.get("client")
    return json.dumps(
        {
            "event": "request",
            "request_id": request_id,
            "method": scope["method"],
            "route": route,
            "path": scope.get("path", ""),
            "status": status,
            "duration_ms": round(seconds * 1000, 3),
            "client": client[0] if client else None,
        },
        ensure_ascii=True,  # a path with control characters stays one printable line
    )


def configure_access_log(stream: Any = None) -> None:
    """Send the access log (JSON lines) to stderr, as the server's own log goes; once per process."""
    logger = logging.getLogger(ACCESS_LOGGER)
    if not logger.handlers:
        handler = logging.StreamHandler(stream)
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False  # uvicorn's root handlers would print it a second time
