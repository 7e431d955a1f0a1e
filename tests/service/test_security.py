"""API keys, read auth, the loopback-only default and CORS: who may call what, and what they are told."""

from __future__ import annotations

import hmac
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from zsrec.cli import app as cli
from zsrec.errors import ConfigError
from zsrec.service.app import ServiceConfig, create_app
from zsrec.service.security import AccessSettings, KeyChecker, check_bind

KEY, OTHER = "k" * 8 + "-reader-writer-1", "z" * 8 + "-reader-writer-2"
ITEM = {"item_id": "pad1", "title": "Sleeping pad", "category": "Outdoor > Pads"}
WRITES = [
    ("POST", "/v1/items", {"items": [ITEM]}),
    ("POST", "/items", {"items": [ITEM]}),  # the unversioned alias is guarded alike
    ("DELETE", "/v1/items/i0", None),
    ("POST", "/v1/items/delete", {"item_id": "i1"}),
    ("POST", "/v1/events", {"events": [{"user_id": "u0", "item_id": "i2"}]}),
    ("PUT", "/v1/anything", None),  # any method that is not a read is a write, even where no route exists
]
READS = [
    ("GET", "/v1/health", None),
    ("POST", "/v1/recommend", {"user_id": "u0"}),
    ("POST", "/v1/recommend/batch", {"queries": [{"user_id": "u0"}]}),
    ("POST", "/v1/similar", {"item_id": "i0"}),
    ("POST", "/v1/audience", {"text": "tent"}),
    ("GET", "/v1/items", None),
    ("GET", "/metrics", None),
]


def keyed(folder: Path, **access: object) -> TestClient:
    settings = AccessSettings(api_keys=(KEY, OTHER), **access)  # type: ignore[arg-type]
    return TestClient(create_app(folder, ServiceConfig(access=settings)))


@pytest.fixture()
def guarded(folder: Path) -> Iterator[TestClient]:
    with keyed(folder) as c:
        yield c


def call(c: TestClient, method: str, path: str, body: object, key: str | None = None):  # noqa: ANN201
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return c.request(method, path, json=body, headers=headers)


@pytest.mark.parametrize(("method", "path", "body"), WRITES)
def test_a_write_without_a_key_is_401_and_with_a_wrong_one_403(
    guarded: TestClient, method: str, path: str, body: object
) -> None:
    missing = call(guarded, method, path, body)
    assert missing.status_code == 401 and missing.headers["www-authenticate"] == "Bearer"
    assert missing.json() == {"detail": "missing API key: send 'Authorization: Bearer KEY'"}
    wrong = call(guarded, method, path, body, key=KEY + "x")
    assert wrong.status_code == 403 and wrong.json() == {"detail": "invalid API key"}
    assert call(guarded, method, path, body, key=KEY[:-1]).status_code == 403  # a prefix is not the key


def test_writes_with_either_key_succeed_and_reads_need_none(guarded: TestClient) -> None:
    assert call(guarded, "POST", "/v1/items", {"items": [ITEM]}, key=KEY).status_code == 200
    assert call(guarded, "DELETE", "/v1/items/pad1", None, key=OTHER).status_code == 200
    events = {"events": [{"user_id": "u0", "item_id": "i2"}]}
    assert call(guarded, "POST", "/events", events, key=KEY).json() == {"recorded": 1, "users_created": 0}
    for method, path, body in READS:
        assert call(guarded, method, path, body).status_code == 200, path
    bad_scheme = guarded.post("/v1/items", json={"items": [ITEM]}, headers={"Authorization": f"Basic {KEY}"})
    assert bad_scheme.status_code == 401


def test_read_auth_guards_reads_too_but_never_the_probes(folder: Path) -> None:
    with keyed(folder, read_auth=True) as c:
        for method, path, body in READS:
            assert call(c, method, path, body).status_code == 401, path
            assert call(c, method, path, body, key="wrong-key-of-some-length").status_code == 403, path
            assert call(c, method, path, body, key=OTHER).status_code == 200, path
        assert c.get("/livez").status_code == 200 and c.get("/readyz").status_code == 200
        assert c.get("/openapi.json").status_code == 401


def test_without_keys_everything_is_open(client: TestClient) -> None:
    assert client.post("/v1/items", json={"items": [ITEM]}).status_code == 200
    assert "securitySchemes" not in client.get("/openapi.json").json().get("components", {})


def test_the_openapi_document_states_which_operations_need_a_key(folder: Path) -> None:
    with keyed(folder) as c:
        spec = c.get("/openapi.json").json()
    assert spec["components"]["securitySchemes"] == {"apiKey": {"type": "http", "scheme": "bearer"}}
    post_items, recommend = spec["paths"]["/v1/items"]["post"], spec["paths"]["/v1/recommend"]["post"]
    assert post_items["security"] == [{"apiKey": []}] and {"401", "403"} <= set(post_items["responses"])
    assert "security" not in recommend and "401" not in recommend["responses"]
    assert "security" not in spec["paths"]["/readyz"]["get"]


def test_keys_are_compared_in_constant_time_against_every_key(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    real = hmac.compare_digest

    def counted(a: bytes, b: bytes) -> bool:
        calls.append(len(a) + len(b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", counted)
    checker = KeyChecker([KEY, OTHER, "a-third-key-0123456789"])
    assert checker.valid(KEY) and checker.valid(OTHER)
    assert not checker.valid("x") and not checker.valid(KEY + KEY)
    # every key is compared whether or not one matched, always as equal-length digests
    assert len(calls) == 12 and set(calls) == {64}


def test_keys_never_reach_the_log_or_a_repr(guarded: TestClient, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="zsrec.access"):
        call(guarded, "POST", "/v1/items", {"items": [ITEM]}, key=KEY)
        call(guarded, "POST", "/v1/items", {"items": [ITEM]}, key=KEY + "wrong")
    assert len(caplog.records) == 2
    assert all(KEY not in r.getMessage() and "Bearer" not in r.getMessage() for r in caplog.records)
    config = guarded.app.state.config
    assert KEY not in repr(config) and KEY not in repr(config.access)


def test_keys_from_the_environment_and_a_file(tmp_path: Path) -> None:
    keys_file = tmp_path / "keys"
    keys_file.write_text(f"# operators\n{OTHER}\n\n{KEY}\n")
    access = AccessSettings.from_env({"ZSREC_API_KEYS": f" {KEY} ,", "ZSREC_READ_AUTH": "1"}, keys_file)
    assert access.api_keys == (KEY, OTHER) and access.read_auth and access.enabled
    assert ServiceConfig.from_env({}).access == AccessSettings()
    origins = AccessSettings.from_env({"ZSREC_CORS_ORIGINS": "https://shop.example, https://admin.example"})
    assert origins.cors_origins == ("https://shop.example", "https://admin.example")


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"ZSREC_API_KEYS": "short"}, "API key #1 must be at least 16"),
        ({"ZSREC_API_KEYS": "has a space in the middle"}, "without spaces"),
        ({"ZSREC_READ_AUTH": "1"}, "ZSREC_READ_AUTH=1 needs API keys"),
        ({"ZSREC_READ_AUTH": "yes", "ZSREC_API_KEYS": KEY}, "ZSREC_READ_AUTH must be 0 or 1"),
    ],
)
def test_bad_key_settings_are_one_clear_error(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        ServiceConfig.from_env(env)


def test_a_missing_or_empty_keys_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read the API keys file"):
        AccessSettings.from_env({}, tmp_path / "absent")
    (tmp_path / "empty").write_text("# nothing yet\n")
    with pytest.raises(ConfigError, match="holds no key"):
        AccessSettings.from_env({}, tmp_path / "empty")


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "::1", "[::1]", "localhost"])
def test_loopback_is_allowed_without_keys(host: str) -> None:
    check_bind(host, AccessSettings(), insecure=False)


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.5", "shop.example"])
def test_other_hosts_need_keys_or_insecure(host: str) -> None:
    with pytest.raises(ConfigError, match=f"refusing to listen on {host} without API keys.*--insecure"):
        check_bind(host, AccessSettings(), insecure=False)
    check_bind(host, AccessSettings(), insecure=True)
    check_bind(host, AccessSettings(api_keys=(KEY,)), insecure=False)


def test_serve_refuses_a_public_host_without_keys_in_one_line(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ZSREC_API_KEYS", raising=False)
    result = CliRunner().invoke(cli, ["serve", str(folder), "--host", "0.0.0.0"])
    assert result.exit_code == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines() == [
        "error: refusing to listen on 0.0.0.0 without API keys: set ZSREC_API_KEYS or --api-keys-file, "
        "or pass --insecure to serve the network unauthenticated"
    ]


def test_cors_is_off_unless_origins_are_configured(folder: Path) -> None:
    preflight = {"Origin": "https://shop.example", "Access-Control-Request-Method": "POST"}
    with TestClient(create_app(folder, ServiceConfig())) as c:
        r = c.options("/v1/recommend", headers=preflight)
        assert "access-control-allow-origin" not in r.headers
        assert "access-control-allow-origin" not in c.get("/v1/health", headers={"Origin": "https://x"}).headers
    access = AccessSettings(api_keys=(KEY,), cors_origins=("https://shop.example",))
    with TestClient(create_app(folder, ServiceConfig(access=access))) as c:
        r = c.options("/v1/items", headers=preflight)  # a preflight carries no key, and needs none
        assert r.status_code == 200 and r.headers["access-control-allow-origin"] == "https://shop.example"
        other = c.options("/v1/items", headers={**preflight, "Origin": "https://evil.example"})
        assert "access-control-allow-origin" not in other.headers
