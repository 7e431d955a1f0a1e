"""The HTTP API: `create_app(model_dir)` builds a FastAPI app that loads the service folder in its lifespan.

Routes live under /v1; the unversioned paths of the first release answer the same (aliases, left out of the
OpenAPI document so it lists each operation once). /livez, /readyz and /metrics sit at the root, where
orchestrators and scrapers look for them.

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

import base64
import binascii
import functools
import gc
import os
from collections.abc import AsyncIterator, Callable, MutableMapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

from anyio import CapacityLimiter, to_thread
from fastapi import APIRouter, Depends, FastAPI, HTTPException, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from starlette.convertors import Convertor, register_url_convertor

from zsrec._version import __version__
from zsrec.encoders import load_encoder
from zsrec.errors import ConfigError, ZsrecError
from zsrec.service import schemas as s
from zsrec.service.bundle import Manifest
from zsrec.service.encoding import EncoderProcess, EncoderUnavailableError
from zsrec.service.engine import Engine, NotFoundError
from zsrec.service.http_errors import (
    BODY_ERRORS,
    documented_errors,
    error_response,
    invalid_request,
    openapi_with_access,
)
from zsrec.service.index import IndexSettings
from zsrec.service.observability import CountingEncoder, Metrics, RequestLog
from zsrec.service.operations import operations, service_gauges
from zsrec.service.security import (
    VERSION_PREFIX,
    AccessSettings,
    ApiKeyAuth,
    BodySizeLimit,
)
from zsrec.service.store import ItemRecord


@dataclass(frozen=True)
class ServiceConfig:
    """Run-time settings, from the environment (ZSREC_MAX_BODY_BYTES, ZSREC_ANN_THRESHOLD, ZSREC_TARGET_RECALL,
    ZSREC_INDEX_CODEC, ZSREC_ENCODER_PROCESS, ZSREC_READ_THREADS, ZSREC_WRITE_THREADS, and for access
    ZSREC_API_KEYS, ZSREC_READ_AUTH, ZSREC_CORS_ORIGINS)."""

    max_body_bytes: int = 1_048_576  # larger request bodies get 413 before they are parsed
    index: IndexSettings = IndexSettings()
    # the text encoder in a child process (zsrec.service.encoding): what `zsrec serve` does (from_env's
    # default); in-process here so that tests and embedding apps start no process
    encoder_process: bool = False
    # threads serving reads at once, two per core; more wait in the event loop
    read_threads: int = field(default_factory=lambda: _two_per_core())
    write_threads: int = 2  # threads serving writes at once (writes also take turns on the engine's write lock)
    access: AccessSettings = AccessSettings()  # API keys, read auth, CORS origins
    access_log: bool = True  # one JSON line per request on the "zsrec.access" logger

    def __post_init__(self) -> None:
        if self.max_body_bytes < 1024:
            raise ConfigError(f"max_body_bytes must be >= 1024, got {self.max_body_bytes}")
        if self.read_threads < 1 or self.write_threads < 1:
            raise ConfigError(
                f"read_threads and write_threads must be >= 1, got {self.read_threads} and {self.write_threads}"
            )

    @classmethod
    def from_env(
        cls,
        env: MutableMapping[str, str] | None = None,
        *,
        api_keys_file: Path | None = None,
        access_log: bool = True,
    ) -> ServiceConfig:
        env = os.environ if env is None else env
        access = AccessSettings.from_env(env, api_keys_file)  # its errors name the variable already
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
                access=access,
                access_log=access_log,
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
        version=__version__,
        lifespan=_lifespan(folder, config),
    )
    app.state.folder, app.state.config, app.state.ready = folder, config, False
    app.state.metrics = Metrics(functools.partial(service_gauges, app))
    app.state.health_data = lambda: _health(app.state.engine, folder)  # what the metrics' gauges read
    app.add_exception_handler(RequestValidationError, invalid_request)  # type: ignore[arg-type]
    app.add_exception_handler(NotFoundError, error_response(404))
    app.add_exception_handler(EncoderUnavailableError, error_response(503))
    app.add_exception_handler(ZsrecError, error_response(422))
    app.include_router(router, prefix=VERSION_PREFIX)
    app.include_router(router, include_in_schema=False)  # the first release's paths, kept as aliases
    app.include_router(operations)
    # Starlette runs the middleware added last first: request ids and metrics see every answer (401s and
    # 413s too), CORS answers preflights before any key is asked for, and keys are checked before a body is read.
    app.add_middleware(ApiKeyAuth, access=config.access)
    app.add_middleware(BodySizeLimit, max_bytes=config.max_body_bytes)
    if config.access.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(config.access.cors_origins),
            allow_methods=["GET", "POST", "DELETE"],
            allow_headers=["Authorization", "Content-Type", "X-Request-ID"],
            expose_headers=["X-Request-ID"],
        )
    app.add_middleware(RequestLog, metrics=app.state.metrics, log=config.access_log)
    app.openapi = functools.partial(openapi_with_access, app, app.openapi, config.access)  # type: ignore[method-assign]
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
        inner = EncoderProcess(manifest.encoder) if config.encoder_process else load_encoder(manifest.encoder)
        encoder = CountingEncoder(inner)
        try:
            engine = Engine.open(folder, encoder, config.index)
        except BaseException:
            if isinstance(inner, EncoderProcess):
                inner.close()
            raise
        # The catalog is millions of long-lived objects (ids, titles, histories); left in the collector's
        # generations, every full collection walks them all, which showed as 0.2-1 s stalls in the first
        # minute of load at 1M items. Frozen, they are never scanned again.
        gc.collect()
        gc.freeze()
        app.state.engine, app.state.encoder = engine, encoder
        app.state.reads = CapacityLimiter(config.read_threads)
        app.state.writes = CapacityLimiter(config.write_threads)
        app.state.ready = True
        try:
            yield
        finally:
            app.state.ready = False  # draining: load balancers stop sending new requests
            gc.unfreeze()  # an app embedded in a longer-lived process leaves the collector as it found it
            engine.close()
            if isinstance(inner, EncoderProcess):
                inner.close()
            limits.restore_original_limits()

    return lifespan


# -- routes: each parses in the event loop and does its work in the read or the write pool ----------------
def _no_unknown_query(request: Request) -> None:
    """422 for a query parameter the route does not take: a misspelt `limt=5` must not pass as the default."""
    route = request.scope.get("route")
    known = {p.alias for p in route.dependant.query_params} if route is not None else set()
    unknown = sorted(set(request.query_params) - known)
    if unknown:
        expected = ", ".join(sorted(known)) or "none"
        raise HTTPException(status_code=422, detail=f"query.{unknown[0]}: unknown parameter (expected: {expected})")


router = APIRouter(dependencies=[Depends(_no_unknown_query)])


class AnyPathConvertor(Convertor[str]):
    """Starlette's `path`, newlines included: an id holding "/" is deletable, and one holding a control
    character reaches the id check (a 422 naming it) instead of the router's bare 404."""

    regex = r"[\s\S]*"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("anypath", AnyPathConvertor())


def _engine(request: Request) -> Engine:
    return request.app.state.engine


async def _read(request: Request, work: Callable[..., Any], *args: Any) -> Any:
    return await _in_pool(request.app.state.reads, work, *args)


async def _write(request: Request, work: Callable[..., Any], *args: Any) -> Any:
    return await _in_pool(request.app.state.writes, work, *args)


@router.get("/health", response_model=s.Health, responses=documented_errors(413, 422))
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


@router.post("/recommend", response_model=s.RecommendResponse, responses=BODY_ERRORS)
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


@router.post(
    "/recommend/batch", response_model=s.BatchRecommendResponse, responses=documented_errors(400, 413, 422, 503)
)
async def recommend_batch(body: s.BatchRecommendRequest, request: Request) -> s.BatchRecommendResponse:
    """Several /recommend queries in one request: one answer each, in order. A query naming something unknown
    (404) or that cannot be answered (422) gets that status in its own answer; the others are unaffected."""
    return await _read(request, _recommend_batch, _engine(request), body)


def _recommend_batch(e: Engine, body: s.BatchRecommendRequest) -> s.BatchRecommendResponse:
    answers = []
    for query in body.queries:
        try:
            answers.append(s.BatchAnswer(status=200, items=_recommend(e, query).items))
        except EncoderUnavailableError:
            raise  # not the query's fault: the whole request gets 503
        except NotFoundError as error:
            answers.append(s.BatchAnswer(status=404, detail=str(error)))
        except ZsrecError as error:
            answers.append(s.BatchAnswer(status=422, detail=str(error)))
    return s.BatchRecommendResponse(results=answers)


@router.get("/items", response_model=s.ItemPage, responses=documented_errors(400, 413, 422))
async def list_items(
    request: Request,
    cursor: Annotated[
        str | None,
        Query(min_length=1, max_length=64, pattern="^[A-Za-z0-9_-]+$", description="next_cursor of the previous page"),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=s.MAX_PAGE, description="items per page")] = 100,
) -> s.ItemPage:
    """The live catalog, page by page, oldest item first. Items added while paging appear on a later page."""
    after = _decode_cursor(cursor) if cursor is not None else -1
    return await _read(request, _items_page, _engine(request), after, limit)


def _items_page(e: Engine, after: int, limit: int) -> s.ItemPage:
    rows, more = e.items_after(after, limit)
    items = [s.ItemSummary(item_id=i, title=t, category=c) for _, i, t, c in rows]
    return s.ItemPage(items=items, next_cursor=_encode_cursor(rows[-1][0]) if more and rows else None)


def _encode_cursor(row: int) -> str:
    # opaque to clients (a row number today; free to change)
    return base64.urlsafe_b64encode(f"r{row}".encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> int:
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("ascii")
        if text[:1] == "r" and text[1:].isdigit():
            return int(text[1:])
    except (binascii.Error, UnicodeDecodeError, ValueError):
        pass
    raise HTTPException(status_code=400, detail="invalid cursor: pass a next_cursor from a previous page")


@router.post("/items", response_model=s.ItemsResponse, responses=BODY_ERRORS)
async def post_items(body: s.ItemsRequest, request: Request) -> s.ItemsResponse:
    return await _write(request, _post_items, _engine(request), body)


def _post_items(e: Engine, body: s.ItemsRequest) -> s.ItemsResponse:
    records = [ItemRecord(i.item_id, i.title, i.category, i.description, i.brand, i.extra_text()) for i in body.items]
    e.upsert_items(records)
    ids = list(dict.fromkeys(r.item_id for r in records))
    return s.ItemsResponse(upserted=len(ids), item_ids=ids, items_total=e.n_items)


@router.post("/items/delete", response_model=s.DeleteResponse, responses=documented_errors(400, 404, 413, 422))
async def delete_item_by_body(body: s.DeleteRequest, request: Request) -> s.DeleteResponse:
    """Delete the item named in the body (for clients that cannot put an id holding '/' in a path)."""
    return await _write(request, _delete_item, _engine(request), body.item_id)


@router.delete("/items/{item_id:anypath}", response_model=s.DeleteResponse, responses=documented_errors(404, 413, 422))
async def delete_item(item_id: s.Id, request: Request) -> s.DeleteResponse:
    """Delete one item; an id holding '/' may be sent as is or percent-encoded (or use POST /items/delete)."""
    return await _write(request, _delete_item, _engine(request), item_id)


def _delete_item(e: Engine, item_id: str) -> s.DeleteResponse:
    e.delete_item(item_id)
    return s.DeleteResponse(deleted=item_id, items_total=e.n_items)


@router.post("/similar", response_model=s.SimilarResponse, responses=BODY_ERRORS)
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


@router.post("/audience", response_model=s.AudienceResponse, responses=BODY_ERRORS)
async def audience(body: s.AudienceRequest, request: Request) -> s.AudienceResponse:
    return await _read(request, _audience, _engine(request), body)


def _audience(e: Engine, body: s.AudienceRequest) -> s.AudienceResponse:
    found = e.audience(text=body.text, item_id=body.item_id, category=body.category, k=body.k)
    return s.AudienceResponse(users=[s.ScoredUser(user_id=u, score=sc, history_size=n) for u, sc, n in found])


@router.post("/events", response_model=s.EventsResponse, responses=documented_errors(400, 404, 413, 422))
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
