"""The HTTP API: `create_app(model_dir)` builds a FastAPI app that loads the service folder in its lifespan.

The event loop only parses and answers; each request's numpy and faiss work runs in one of two small thread
pools, one for reads (`/recommend`, `/similar`, `/audience`, `/health`) and one for writes (`/items`, `/events`),
where numpy and faiss release the GIL. The pools are small on purpose: with Starlette's default of 40 threads
for sync endpoints, a short backlog at 1M items put dozens of request threads in contention for the GIL (each
faiss or numpy call hands it over and waits to get it back), and the server stalled for seconds at a time
while a core stood idle; with a few read threads per core the tail latency stayed low (figures, which vary
with the machine's speed, in docs/benchmarks.md).
A write waiting for the encoder holds a write thread, never a read one.
"""

from __future__ import annotations

import functools
import gc
import json
import os
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from anyio import CapacityLimiter, to_thread
from fastapi import APIRouter, FastAPI, HTTPException, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response

from zsrec.encoders import load_encoder
from zsrec.errors import ConfigError, ZsrecError
from zsrec.service import schemas as s
from zsrec.service.bundle import Manifest
from zsrec.service.encoding import EncoderProcess, EncoderUnavailableError
from zsrec.service.engine import Engine, NotFoundError
from zsrec.service.index import IndexSettings
from zsrec.service.store import ItemRecord


@dataclass(frozen=True)
class ServiceConfig:
    """Run-time settings, from the environment (ZSREC_MAX_BODY_BYTES, ZSREC_ANN_THRESHOLD, ZSREC_TARGET_RECALL,
    ZSREC_INDEX_CODEC, ZSREC_ENCODER_PROCESS, ZSREC_READ_THREADS, ZSREC_WRITE_THREADS)."""

    max_body_bytes: int = 1_048_576  # larger request bodies get 413 before they are parsed
    index: IndexSettings = IndexSettings()
    # the text encoder in a child process (zsrec.service.encoding): what `zsrec serve` does (from_env's
    # default); in-process here so that tests and embedding apps start no process
    encoder_process: bool = False
    # threads serving reads at once, two per core; more wait in the event loop
    read_threads: int = field(default_factory=lambda: _two_per_core())
    write_threads: int = 2  # threads serving writes at once (writes also take turns on the engine's write lock)

    def __post_init__(self) -> None:
        if self.max_body_bytes < 1024:
            raise ConfigError(f"max_body_bytes must be >= 1024, got {self.max_body_bytes}")
        if self.read_threads < 1 or self.write_threads < 1:
            raise ConfigError(
                f"read_threads and write_threads must be >= 1, got {self.read_threads} and {self.write_threads}"
            )

    @classmethod
    def from_env(cls, env: MutableMapping[str, str] | None = None) -> ServiceConfig:
        env = os.environ if env is None else env
        try:
            index = IndexSettings(
                ann_threshold=int(env.get("ZSREC_ANN_THRESHOLD", IndexSettings.ann_threshold)),
                target_recall=float(env.get("ZSREC_TARGET_RECALL", IndexSettings.target_recall)),
                codec=env.get("ZSREC_INDEX_CODEC", IndexSettings.codec),
            )
            in_child = env.get("ZSREC_ENCODER_PROCESS", "1")
            if in_child not in ("0", "1"):
                raise ValueError(f"ZSREC_ENCODER_PROCESS must be 0 or 1, got {in_child!r}")
            return cls(
                max_body_bytes=int(env.get("ZSREC_MAX_BODY_BYTES", cls.max_body_bytes)),
                index=index,
                encoder_process=in_child == "1",
                read_threads=int(env.get("ZSREC_READ_THREADS", _two_per_core())),
                write_threads=int(env.get("ZSREC_WRITE_THREADS", cls.write_threads)),
            )
        except ValueError as error:
            raise ConfigError(f"bad service setting in the environment: {error}") from error


def create_app(model_dir: str | Path, config: ServiceConfig | None = None) -> FastAPI:
    """The service for the folder `model_dir` (written by `zsrec train` / `write_service_folder`)."""
    folder = Path(model_dir)
    config = config or ServiceConfig.from_env()
    app = FastAPI(
        title="zsrec",
        summary="Zero-shot recommendations for new items and categories, updated live.",
        lifespan=_lifespan(folder, config),
    )
    app.state.folder = folder
    app.add_middleware(BodySizeLimit, max_bytes=config.max_body_bytes)
    app.add_exception_handler(RequestValidationError, _invalid)  # type: ignore[arg-type]
    app.add_exception_handler(NotFoundError, _error_response(404))
    app.add_exception_handler(EncoderUnavailableError, _error_response(503))
    app.add_exception_handler(ZsrecError, _error_response(422))
    app.include_router(router)
    return app


def _lifespan(folder: Path, config: ServiceConfig) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    """Open the engine (and its encoder) at start-up, close them at shutdown."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        from threadpoolctl import threadpool_limits

        # One BLAS/OpenMP thread per request: requests already run in parallel, and nested threads on a
        # small machine made exact search many times slower.
        limits = threadpool_limits(limits=1)
        import faiss

        faiss.omp_set_num_threads(1)
        manifest = Manifest.read(folder)
        encoder = EncoderProcess(manifest.encoder) if config.encoder_process else load_encoder(manifest.encoder)
        try:
            engine = Engine.open(folder, encoder, config.index)
        except BaseException:
            if isinstance(encoder, EncoderProcess):
                encoder.close()
            raise
        # The catalog is millions of long-lived objects (ids, titles, histories); left in the collector's
        # generations, every full collection walks them all, which showed as 0.2-1 s stalls in the first
        # minute of load at 1M items. Frozen, they are never scanned again.
        gc.collect()
        gc.freeze()
        app.state.engine = engine
        app.state.reads = CapacityLimiter(config.read_threads)
        app.state.writes = CapacityLimiter(config.write_threads)
        try:
            yield
        finally:
            gc.unfreeze()  # an app embedded in a longer-lived process leaves the collector as it found it
            engine.close()
            if isinstance(encoder, EncoderProcess):
                encoder.close()
            limits.restore_original_limits()

    return lifespan


# -- errors ---------------------------------------------------------------------------------------------
async def _invalid(request: Request, exc: RequestValidationError) -> Response:
    # FastAPI's own handler echoes the input as UTF-8 and fails (500) on a lone surrogate; ASCII escapes
    # keep any input printable.
    body = json.dumps({"detail": jsonable_encoder(exc.errors())}, ensure_ascii=True, default=str)
    return Response(body, status_code=422, media_type="application/json")


def _error_response(status: int) -> Callable[[Request, Exception], Awaitable[JSONResponse]]:
    """A handler answering `status` with the exception's message as `detail`."""

    async def handle(request: Request, exc: Exception) -> JSONResponse:
        return JSONResponse(status_code=status, content={"detail": str(exc)})

    return handle


# -- routes: each parses in the event loop and does its work in the read or the write pool ----------------
router = APIRouter()


def _engine(request: Request) -> Engine:
    return request.app.state.engine


async def _read(request: Request, work: Callable[..., Any], *args: Any) -> Any:
    return await _in_pool(request.app.state.reads, work, *args)


async def _write(request: Request, work: Callable[..., Any], *args: Any) -> Any:
    return await _in_pool(request.app.state.writes, work, *args)


@router.get("/health", response_model=s.Health)
async def health(request: Request) -> s.Health:
    return await _read(request, _health, _engine(request), request.app.state.folder)


def _health(e: Engine, folder: Path) -> s.Health:
    described = e.index.describe()
    return s.Health(
        status="ok",
        model_id=e.model_name,
        encoder=e.manifest.encoder_model_id,
        items=e.n_items,
        users=len(e._user_row),
        index=str(described["kind"]),
        index_recall_at_10=float(described["recall_at_10"]),
        served_recall_at_10=e.served_recall,
        store_version=e.store.version,
    )


@router.post("/recommend", response_model=s.RecommendResponse)
async def recommend(body: s.RecommendRequest, request: Request) -> s.RecommendResponse:
    return await _read(request, _recommend, _engine(request), body)


def _recommend(e: Engine, body: s.RecommendRequest) -> s.RecommendResponse:
    hits = e.recommend(
        user_id=body.user_id,
        history=body.history,
        profile=body.profile,
        k=body.k,
        categories=body.categories,
        exclude_seen=body.exclude_seen,
    )
    return s.RecommendResponse(
        items=[
            s.ScoredItem(
                item_id=e.item_id(h.row),
                title=e.title(h.row),
                category=e.category(h.row),
                score=h.score,
                because=[s.Because(item_id=e.item_id(r), title=e.title(r), contribution=c) for r, c in h.because],
            )
            for h in hits
        ]
    )


@router.post("/items", response_model=s.ItemsResponse)
async def post_items(body: s.ItemsRequest, request: Request) -> s.ItemsResponse:
    return await _write(request, _post_items, _engine(request), body)


def _post_items(e: Engine, body: s.ItemsRequest) -> s.ItemsResponse:
    records = [ItemRecord(i.item_id, i.title, i.category, i.description, i.brand, i.extra_text()) for i in body.items]
    e.upsert_items(records)
    ids = list(dict.fromkeys(r.item_id for r in records))
    return s.ItemsResponse(upserted=len(ids), item_ids=ids, items_total=e.n_items)


@router.delete("/items/{item_id}", response_model=s.DeleteResponse)
async def delete_item(item_id: s.Id, request: Request) -> s.DeleteResponse:
    return await _write(request, _delete_item, _engine(request), item_id)


def _delete_item(e: Engine, item_id: str) -> s.DeleteResponse:
    e.delete_item(item_id)
    return s.DeleteResponse(deleted=item_id, items_total=e.n_items)


@router.post("/similar", response_model=s.SimilarResponse)
async def similar(body: s.SimilarRequest, request: Request) -> s.SimilarResponse:
    return await _read(request, _similar, _engine(request), body)


def _similar(e: Engine, body: s.SimilarRequest) -> s.SimilarResponse:
    hits = e.similar(item_id=body.item_id, text=body.text, k=body.k, other_categories_only=body.other_categories_only)
    return s.SimilarResponse(
        items=[
            s.SimilarItem(item_id=e.item_id(h.row), title=e.title(h.row), category=e.category(h.row), score=h.score)
            for h in hits
        ]
    )


@router.post("/audience", response_model=s.AudienceResponse)
async def audience(body: s.AudienceRequest, request: Request) -> s.AudienceResponse:
    return await _read(request, _audience, _engine(request), body)


def _audience(e: Engine, body: s.AudienceRequest) -> s.AudienceResponse:
    found = e.audience(text=body.text, item_id=body.item_id, category=body.category, k=body.k)
    return s.AudienceResponse(users=[s.ScoredUser(user_id=u, score=sc, history_size=n) for u, sc, n in found])


@router.post("/events", response_model=s.EventsResponse)
async def events(body: s.EventsRequest, request: Request) -> s.EventsResponse:
    return await _write(request, _events, _engine(request), body)


def _events(e: Engine, body: s.EventsRequest) -> s.EventsResponse:
    created = e.add_events([(ev.user_id, ev.item_id, ev.timestamp, ev.event) for ev in body.events])
    return s.EventsResponse(recorded=len(body.events), users_created=created)


async def _in_pool(pool: CapacityLimiter, work: Callable[..., Any], *args: Any) -> Any:
    """`work(*args)` in a worker thread once `pool` has a free slot (the event loop waits, not a thread)."""
    return await to_thread.run_sync(functools.partial(work, *args), limiter=pool)


def _two_per_core() -> int:
    """Two per core this process may run on (its affinity where the OS tells it, else all the cores)."""
    try:
        return 2 * len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return 2 * (os.cpu_count() or 1)


Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


class BodySizeLimit:
    """ASGI middleware: 413 for a body over `max_bytes`, by Content-Length or while a chunked body streams in."""

    def __init__(self, app: Callable[[Scope, Receive, Send], Awaitable[None]], *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_bytes):
            await _too_large(send, self.max_bytes)
            return
        seen = 0

        async def limited_receive() -> MutableMapping[str, Any]:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:  # a chunked body: FastAPI turns this into the 413 response
                    raise HTTPException(status_code=413, detail=f"request body larger than {self.max_bytes} bytes")
            return message

        await self.app(scope, limited_receive, send)


async def _too_large(send: Send, limit: int) -> None:
    body = json.dumps({"detail": f"request body larger than {limit} bytes"}).encode()
    await send({"type": "http.response.start", "status": 413, "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": body})
