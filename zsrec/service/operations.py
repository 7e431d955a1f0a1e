"""Probes and metrics, at the root and never behind a version or a key prefix: what orchestrators and
scrapers call."""

from __future__ import annotations

from typing import Any

from anyio import to_thread
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response

from zsrec.service import schemas as s
from zsrec.service.encoding import EncoderProcess
from zsrec.service.http_errors import documented_errors

operations = APIRouter(tags=["operations"])


@operations.get("/livez", response_model=s.Probe)
async def livez() -> s.Probe:
    """The process answers (it may still be loading or draining)."""
    return s.Probe(status="alive")


@operations.get("/readyz", response_model=s.Probe, responses=documented_errors(503))
async def readyz(request: Request) -> Any:
    """Ready to serve: the model and its index are loaded, the server is not shutting down, and the encoder
    process (if any) is running. 503 otherwise, so a load balancer sends requests elsewhere."""
    reason = _not_ready(request.app)
    if reason is not None:
        return JSONResponse(status_code=503, content={"detail": reason})
    return s.Probe(status="ready")


def _not_ready(app: FastAPI) -> str | None:
    if not app.state.ready:
        return "the service is loading or shutting down"
    inner = app.state.encoder.inner
    if isinstance(inner, EncoderProcess) and not inner.alive():
        return "the encoder process has stopped; restart the service"
    return None


@operations.get("/metrics", response_class=PlainTextResponse, responses=documented_errors(413))
async def metrics(request: Request) -> Response:
    """Prometheus metrics: requests and latency per route, items, users, index recall, encoder queue."""
    body = await to_thread.run_sync(request.app.state.metrics.exposition, limiter=request.app.state.reads)
    return Response(body, media_type="text/plain; version=0.0.4; charset=utf-8")


def service_gauges(app: FastAPI) -> dict[str, float | None]:
    engine = getattr(app.state, "engine", None)
    if engine is None:
        return {}
    health = app.state.health_data()
    return {
        "items": engine.n_items,
        "users": getattr(health, "users", None),
        "index_recall_at_10": getattr(health, "index_recall_at_10", None),
        "served_recall_at_10": getattr(health, "served_recall_at_10", None),
        "encoder_queue": app.state.encoder.in_flight,
    }
