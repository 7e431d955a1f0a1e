"""How the API answers errors, and how its OpenAPI document states them: every error is `{"detail": "one
line"}` (schemas.Error), and each status a route can return is listed for it, with the bearer scheme and
401/403 on the operations that need a key when keys are configured."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response

from zsrec.service import schemas as s
from zsrec.service.security import PUBLIC_PATHS, AccessSettings, is_write


def openapi_with_access(app: FastAPI, build: Callable[[], dict[str, Any]], access: AccessSettings) -> dict[str, Any]:
    """FastAPI's document, plus the bearer scheme, and 401/403, on the operations that need a key."""
    if app.openapi_schema is not None:
        return app.openapi_schema
    schema = build()
    if access.enabled:
        schema.setdefault("components", {})["securitySchemes"] = {"apiKey": {"type": "http", "scheme": "bearer"}}
        error = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
        for path, operations in schema["paths"].items():
            for method, operation in operations.items():
                if path not in PUBLIC_PATHS and (access.read_auth or is_write(method.upper(), path)):
                    operation["security"] = [{"apiKey": []}]
                    operation["responses"]["401"] = {"description": "no API key", **error}
                    operation["responses"]["403"] = {"description": "wrong API key", **error}
    app.openapi_schema = schema
    return schema


async def invalid_request(request: Request, exc: RequestValidationError) -> Response:
    errors = exc.errors()
    broken = next((e for e in errors if e.get("type") == "json_invalid"), None)
    if broken is not None:
        status, detail = 400, f"the body is not valid JSON: {broken.get('ctx', {}).get('error', 'decode error')}"
    else:
        status, detail = 422, _describe(errors[0]) + (f" (and {len(errors) - 1} more)" if len(errors) > 1 else "")
    # ASCII escapes keep any input printable (FastAPI's own handler fails, 500, on a lone surrogate)
    body = json.dumps({"detail": detail}, ensure_ascii=True)
    return Response(body, status_code=status, media_type="application/json")


def _describe(error: dict[str, Any]) -> str:
    """One pydantic error as one line, e.g. "body.k: Input should be a valid integer"."""
    where = ".".join(str(part) for part in error.get("loc", ()))
    message = str(error.get("msg", "invalid")).removeprefix("Value error, ")
    return f"{where}: {message}" if where else message


def error_response(status: int) -> Callable[[Request, Exception], Awaitable[JSONResponse]]:
    """A handler answering `status` with the exception's message as `detail`."""

    async def handle(request: Request, exc: Exception) -> JSONResponse:
        return JSONResponse(status_code=status, content={"detail": str(exc)})

    return handle


def documented_errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The `responses` of a route: each status with its meaning and the Error body."""
    return {status: {"model": s.Error, "description": _MEANING[status]} for status in statuses}


_MEANING = {
    400: "the body is not JSON",
    404: "an unknown user, item or category",
    413: "the body is larger than the limit",
    422: "a well-formed request that breaks a rule, or that cannot be answered as asked",
    503: "the encoder process has stopped, or the service is not ready",
}
# a body-taking route whose work may name unknown ids or need the encoder
BODY_ERRORS = documented_errors(400, 404, 413, 422, 503)
