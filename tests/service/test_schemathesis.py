"""Schemathesis against the OpenAPI document (tests/service/api_fuzzing.py): no 5xx, every status documented,
every answer matching its declared schema, and invalid data refused. The longer run: benchmarks/fuzz.py."""

from __future__ import annotations

from pathlib import Path

from api_fuzzing import fuzz_app
from conftest import make_folder

from zsrec.service.app import ServiceConfig, create_app
from zsrec.service.index import IndexSettings

EXAMPLES = 30  # per operation and generation mode: about a minute in all on two cores


def test_schemathesis_finds_no_failure(tmp_path: Path) -> None:
    folder = make_folder(tmp_path / "model", tmp_path / "cache")
    app = create_app(folder, ServiceConfig(index=IndexSettings(ann_threshold=1), access_log=False))
    report = fuzz_app(app, examples=EXAMPLES)
    assert len(report.operations) >= 12 and report.requests >= 12 * EXAMPLES
    assert not report.failures, "\n\n".join(report.failures)


def test_the_run_reports_undocumented_statuses_and_bodies_off_schema() -> None:
    """The harness fails where it should: a status the document omits (ST103), a body off its schema (ST108)."""
    from fastapi import FastAPI
    from fastapi.responses import JSONResponse
    from pydantic import BaseModel

    class Count(BaseModel):
        n: int

    broken = FastAPI()

    @broken.get("/teapot", response_model=Count)
    async def teapot() -> JSONResponse:
        return JSONResponse({"n": 1}, status_code=418)

    @broken.get("/count", response_model=Count)
    async def count() -> JSONResponse:
        return JSONResponse({"n": "many"})

    report = fuzz_app(broken, examples=3)
    assert sorted(report.operations) == ["GET /count", "GET /teapot"]
    joined = "\n".join(report.failures)
    assert "ST103" in joined and "ST108" in joined
