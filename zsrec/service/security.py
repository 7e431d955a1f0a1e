"""Who may call the service: API keys, the loopback-only default, and the request-size limit.

Keys come from ZSREC_API_KEYS (comma-separated) and/or a file (one key a line); clients send
`Authorization: Bearer KEY`. Once any key is configured every write needs one, and with ZSREC_READ_AUTH=1 every
read too; the probes (/livez, /readyz) never do, as orchestrators call them without credentials. Keys are
compared in constant time (the comparison's duration does not reveal how much of a guess was right) and never
logged or shown in a setting's repr.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastapi import HTTPException

from zsrec.errors import ConfigError

MIN_KEY_LENGTH = 16  # shorter keys can be guessed by brute force over the network
PUBLIC_PATHS = frozenset({"/livez", "/readyz"})
# POST routes that only read: every other non-GET request is a write (so a new write route is protected by
# default, not by remembering to list it)
READ_POSTS = frozenset({"/recommend", "/recommend/batch", "/similar", "/audience"})
VERSION_PREFIX = "/v1"

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


@dataclass(frozen=True)
class AccessSettings:
    """API keys and who needs one; `api_keys` is hidden from repr so a logged setting never shows a key."""

    api_keys: tuple[str, ...] = field(default=(), repr=False)
    read_auth: bool = False  # keys for reads too (only meaningful with keys)
    cors_origins: tuple[str, ...] = ()  # browser origins allowed to call the API; none: CORS stays off

    def __post_init__(self) -> None:
        for n, key in enumerate(self.api_keys, start=1):
            if len(key) < MIN_KEY_LENGTH or any(c.isspace() or not c.isprintable() for c in key):
                raise ConfigError(f"API key #{n} must be at least {MIN_KEY_LENGTH} printable characters without spaces")
        if self.read_auth and not self.api_keys:
            raise ConfigError("ZSREC_READ_AUTH=1 needs API keys (ZSREC_API_KEYS or --api-keys-file)")

    @property
    def enabled(self) -> bool:
        return bool(self.api_keys)

    @classmethod
    def from_env(cls, env: MutableMapping[str, str], keys_file: Path | None = None) -> AccessSettings:
        keys = split_list(env.get("ZSREC_API_KEYS", ""))
        if keys_file is not None:
            keys += read_keys_file(keys_file)
        read_auth = env.get("ZSREC_READ_AUTH", "0")
        if read_auth not in ("0", "1"):
            raise ConfigError(f"ZSREC_READ_AUTH must be 0 or 1, got {read_auth!r}")
        origins = split_list(env.get("ZSREC_CORS_ORIGINS", ""))
        return cls(api_keys=tuple(dict.fromkeys(keys)), read_auth=read_auth == "1", cors_origins=tuple(origins))


def split_list(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]


def read_keys_file(path: Path) -> list[str]:
    """One key a line; blank lines and lines starting with # are skipped."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"cannot read the API keys file {path}: {error}") from error
    keys = [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    if not keys:
        raise ConfigError(f"the API keys file {path} holds no key")
    return keys


def check_bind(host: str, access: AccessSettings, *, insecure: bool) -> None:
    """Refuse to listen beyond loopback without keys: anyone on the network could then change the catalog."""
    if access.enabled or insecure or is_loopback(host):
        return
    raise ConfigError(
        f"refusing to listen on {host} without API keys: set ZSREC_API_KEYS or --api-keys-file, "
        "or pass --insecure to serve the network unauthenticated"
    )


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def is_write(method: str, path: str) -> bool:
    if method in ("GET", "HEAD", "OPTIONS"):
        return False
    unversioned = path[len(VERSION_PREFIX) :] if path.startswith(VERSION_PREFIX + "/") else path
    return not (method == "POST" and unversioned in READ_POSTS)


class KeyChecker:
    """Constant-time membership test of a presented key among the configured ones."""

    def __init__(self, keys: Iterable[str]) -> None:
        # Digests have one length, so compare_digest's time depends on neither the key's length nor its content.
        self._digests = [hashlib.sha256(k.encode()).digest() for k in keys]

    def valid(self, presented: str) -> bool:
        digest = hashlib.sha256(presented.encode("utf-8", "surrogatepass")).digest()
        found = False
        for known in self._digests:  # every key is compared, found or not
            found |= hmac.compare_digest(digest, known)
        return found


class ApiKeyAuth:
    """ASGI middleware: 401 without a key, 403 with a wrong one, for the requests that need a key.

    It runs before the body is read or parsed, so an unauthenticated caller learns nothing about validation.
    """

    def __init__(self, app: ASGIApp, *, access: AccessSettings) -> None:
        self.app, self.access, self.checker = app, access, KeyChecker(access.api_keys)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self._needs_key(scope["method"], scope["path"]):
            await self.app(scope, receive, send)
            return
        header = _header(scope, b"authorization")
        scheme, _, key = header.partition(" ")
        if scheme.lower() != "bearer" or not key.strip():
            await send_error(send, 401, "missing API key: send 'Authorization: Bearer KEY'", bearer=True)
        elif not self.checker.valid(key.strip()):
            await send_error(send, 403, "invalid API key")
        else:
            await self.app(scope, receive, send)

    def _needs_key(self, method: str, path: str) -> bool:
        if not self.access.enabled or path in PUBLIC_PATHS or method == "OPTIONS":
            return False
        return self.access.read_auth or is_write(method, path)


def _header(scope: Scope, name: bytes) -> str:
    for key, value in scope.get("headers") or []:
        if key.lower() == name:
            return value.decode("latin-1")
    return ""


async def send_error(send: Send, status: int, detail: str, *, bearer: bool = False) -> None:
    """A JSON `{"detail": ...}` answer sent from a middleware (before any route ran)."""
    headers = [(b"content-type", b"application/json")]
    if bearer:
        headers.append((b"www-authenticate", b"Bearer"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": json.dumps({"detail": detail}).encode()})


class BodySizeLimit:
    """ASGI middleware: 413 for a body over `max_bytes`, by Content-Length or while a chunked body streams in."""

    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _header(scope, b"content-length")
        if declared and (not declared.isdigit() or int(declared) > self.max_bytes):
            await send_error(send, 413, f"request body larger than {self.max_bytes} bytes")
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
