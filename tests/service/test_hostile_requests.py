"""Hostile HTTP requests: each gets one status and a body of exactly one line, `{"detail": "..."}`, and the
service stays usable. One case per row; the rows for files, folders and options live with the CLI's tests."""

# ruff: noqa: E501 - one row per line: the table reads as the list of cases it is
from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from zsrec.service.app import ServiceConfig, create_app
from zsrec.service.security import AccessSettings

KEY = "hostile-suite-key-0001"
JSON = {"content-type": "application/json"}


@dataclass(frozen=True)
class Row:
    name: str
    method: str
    path: str
    raw: bytes | None  # the body exactly as sent
    status: int
    detail: str  # the start of the one-line detail
    headers: dict[str, str] = field(default_factory=lambda: dict(JSON))
    keyed: bool = False  # against a service with API keys configured


def body(value: object) -> bytes:
    return json.dumps(value).encode()  # ASCII escapes: lone surrogates travel as JSON allows


ROWS = [
    Row("k as a string", "POST", "/v1/recommend", body({"user_id": "u0", "k": "10"}), 422, "body.k: Input should be a valid integer"),
    Row("k as a boolean", "POST", "/v1/recommend", body({"user_id": "u0", "k": True}), 422, "body.k: Input should be a valid integer"),
    Row("k in exponent form", "POST", "/v1/recommend", b'{"user_id": "u0", "k": 1e3}', 422, "body.k: Input should be a valid integer"),
    Row("k as a float", "POST", "/v1/recommend", b'{"user_id": "u0", "k": 10.0}', 422, "body.k: Input should be a valid integer"),
    Row("k of zero", "POST", "/v1/recommend", body({"user_id": "u0", "k": 0}), 422, "body.k: Input should be greater than or equal to 1"),
    Row("k beyond the cap", "POST", "/v1/recommend", body({"user_id": "u0", "k": 10**9}), 422, "body.k: Input should be less than or equal to 1000"),
    Row("k beyond 64 bits", "POST", "/v1/similar", body({"item_id": "i0", "k": 2**70}), 422, "body.k: Input should be less than or equal to 1000"),
    Row("flag as a string", "POST", "/v1/recommend", body({"user_id": "u0", "exclude_seen": "yes"}), 422, "body.exclude_seen: Input should be a valid boolean"),
    Row("flag as a number", "POST", "/v1/similar", body({"item_id": "i0", "other_categories_only": 1}), 422, "body.other_categories_only: Input should be a valid boolean"),
    Row("timestamp as a string", "POST", "/v1/events", body({"events": [{"user_id": "u0", "item_id": "i0", "timestamp": "1e9"}]}), 422, "body.events.0.timestamp: Input should be a valid number"),
    Row("timestamp NaN", "POST", "/v1/events", b'{"events": [{"user_id": "u0", "item_id": "i0", "timestamp": NaN}]}', 422, "body.events.0.timestamp: Input should be a finite number"),
    Row("zero-width space in an id", "POST", "/v1/items", body({"items": [{"item_id": "a\u200bb", "title": "t", "category": "A"}]}), 422, "body.items.0.item_id: ids must not contain control or invisible characters (found U+200B)"),
    Row("byte-order mark in a user id", "POST", "/v1/recommend", body({"user_id": "\ufeffu0"}), 422, "body.user_id: ids must not contain control or invisible characters (found U+FEFF)"),
    Row("bell character in an id", "POST", "/v1/events", body({"events": [{"user_id": "u\x07", "item_id": "i0"}]}), 422, "body.events.0.user_id: ids must not contain control"),
    Row("newline in a deleted id", "DELETE", "/v1/items/a%0Ab", None, 422, "path.item_id: ids must not contain control or invisible characters (found U+000A)"),
    Row("bidi override in a deleted id", "POST", "/v1/items/delete", body({"item_id": "i0\u202e"}), 422, "body.item_id: ids must not contain control or invisible characters (found U+202E)"),
    Row("lone surrogate in an id", "POST", "/v1/recommend", body({"user_id": "u\ud800"}), 422, "body.user_id: Input should be a valid string, unable to parse raw data as a unicode string"),
    Row("NUL in a profile", "POST", "/v1/recommend", body({"profile": "a\x00b"}), 422, "body.profile: text must not contain NUL characters"),
    Row("blank profile", "POST", "/v1/recommend", body({"profile": "   "}), 422, "body.profile: must not be empty or blank"),
    Row("empty id in a history", "POST", "/v1/recommend", body({"history": ["i0", ""]}), 422, "body.history.1: String should have at least 1 character"),
    Row("id over 256 characters", "POST", "/v1/similar", body({"item_id": "x" * 257}), 422, "body.item_id: String should have at most 256 characters"),
    Row("two query sources", "POST", "/v1/recommend", body({"user_id": "u0", "profile": "tents"}), 422, "body: give exactly one of user_id, history, profile; got ['user_id', 'profile']"),
    Row("no query source", "POST", "/v1/audience", body({"k": 3}), 422, "body: give exactly one of text, item_id, category; got none"),
    Row("unknown field", "POST", "/v1/recommend", body({"user_id": "u0", "limit": 5}), 422, "body.limit: Extra inputs are not permitted"),
    Row("nested extra attribute", "POST", "/v1/items", body({"items": [{"item_id": "x", "title": "t", "category": "A", "size": {"w": 1}}]}), 422, "body.items.0: extra attribute 'size' must be a string or number"),
    Row("a list where an object goes", "POST", "/v1/items", body([1, 2]), 422, "body: Input should be a valid dictionary"),
    Row("too many items", "POST", "/v1/items", body({"items": [{"item_id": f"x{n}", "title": "t", "category": "A"} for n in range(1001)]}), 422, "body.items: List should have at most 1000 items"),
    Row("too many queries", "POST", "/v1/recommend/batch", body({"queries": [{"user_id": "u0"}] * 101}), 422, "body.queries: List should have at most 100 items"),
    Row("bad query inside a batch", "POST", "/v1/recommend/batch", body({"queries": [{"user_id": "u0"}, {"user_id": "u0", "k": "5"}]}), 422, "body.queries.1.k: Input should be a valid integer"),
    Row("broken JSON", "POST", "/v1/recommend", b'{"user_id": "u0",', 400, "the body is not valid JSON: "),
    Row("bytes that are not UTF-8", "POST", "/v1/recommend", b'{"user_id": "\xff\xfe"}', 400, "There was an error parsing the body"),
    Row("a body that is not JSON", "POST", "/v1/recommend", b"user_id=u0", 422, "body: Input should be a valid dictionary", headers={"content-type": "application/x-www-form-urlencoded"}),
    Row("a body over the limit", "POST", "/v1/recommend", b'{"profile": "' + b"a" * 1_100_000 + b'"}', 413, "request body larger than 1048576 bytes"),
    Row("unknown user", "POST", "/v1/recommend", body({"user_id": "nobody"}), 404, "unknown user_id 'nobody'"),
    Row("unknown category", "POST", "/v1/recommend", body({"user_id": "u0", "categories": ["Garden"]}), 404, "unknown category 'Garden'"),
    Row("path traversal as an id", "DELETE", "/v1/items/..%2F..%2Fetc%2Fpasswd", None, 404, "unknown item_id '../../etc/passwd'"),
    Row("unknown id to delete by body", "POST", "/v1/items/delete", body({"item_id": "a/b"}), 404, "unknown item_id 'a/b'"),
    Row("an empty id to delete", "DELETE", "/v1/items/%20", None, 422, "path.item_id: must not be empty or blank"),
    Row("a forged cursor", "GET", "/v1/items?cursor=AAAA", None, 400, "invalid cursor: pass a next_cursor from a previous page"),
    Row("a cursor with symbols", "GET", "/v1/items?cursor=%24%7B1%7D", None, 422, "query.cursor: String should match pattern"),
    Row("a page of zero", "GET", "/v1/items?limit=0", None, 422, "query.limit: Input should be greater than or equal to 1"),
    Row("a page size in words", "GET", "/v1/items?limit=ten", None, 422, "query.limit: Input should be a valid integer"),
    Row("a misspelt query parameter", "GET", "/v1/items?limt=5", None, 422, "query.limt: unknown parameter (expected: cursor, limit)"),
    Row("a query parameter on a body route", "POST", "/v1/recommend?k=5", body({"user_id": "u0"}), 422, "query.k: unknown parameter (expected: none)"),
    Row("a method the route lacks", "PUT", "/v1/recommend", body({"user_id": "u0"}), 405, "Method Not Allowed"),
    Row("a path that does not exist", "GET", "/v1/../../etc/passwd", None, 404, "Not Found"),
    Row("a write without a key", "POST", "/v1/items", body({"items": [{"item_id": "x", "title": "t", "category": "A"}]}), 401, "missing API key", keyed=True),
    Row("a delete with a wrong key", "DELETE", "/v1/items/i0", None, 403, "invalid API key", headers={"authorization": "Bearer " + "0" * 22}, keyed=True),
    Row("a key in the wrong scheme", "POST", "/v1/events", body({"events": []}), 401, "missing API key", headers={"authorization": f"Token {KEY}", **JSON}, keyed=True),
]


@pytest.fixture(scope="module")
def clients(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[bool, TestClient]]:
    from conftest import make_folder

    tmp: Path = tmp_path_factory.mktemp("hostile")
    folder = make_folder(tmp / "model", tmp / "cache")
    keyed = ServiceConfig(access=AccessSettings(api_keys=(KEY,)), access_log=False)
    with (
        TestClient(create_app(folder, ServiceConfig(access_log=False))) as open_client,
        TestClient(create_app(folder, keyed)) as keyed_client,
    ):
        yield {False: open_client, True: keyed_client}


@pytest.mark.parametrize("row", ROWS, ids=[r.name for r in ROWS])
def test_a_hostile_request_gets_one_status_and_one_line(clients: dict[bool, TestClient], row: Row) -> None:
    c = clients[row.keyed]
    r = c.request(row.method, row.path, content=row.raw, headers=row.headers)
    assert r.status_code == row.status, r.text
    assert r.headers["content-type"].startswith("application/json")
    answer = r.json()
    assert list(answer) == ["detail"] and isinstance(answer["detail"], str)
    assert "\n" not in answer["detail"] and "Traceback" not in answer["detail"]
    assert answer["detail"].startswith(row.detail), answer["detail"]
    assert c.get("/readyz").status_code == 200  # and the service is still serving


def test_the_suite_has_a_case_per_row() -> None:
    assert len({r.name for r in ROWS}) == len(ROWS) >= 40


@pytest.mark.parametrize(
    ("item_id", "delete"),
    [
        ("a/b", lambda c: c.delete("/v1/items/a%2Fb")),
        ("c/d", lambda c: c.delete("/v1/items/c/d")),
        ("../../etc/passwd", lambda c: c.delete("/v1/items/..%2F..%2Fetc%2Fpasswd")),
        ("e/f", lambda c: c.post("/v1/items/delete", json={"item_id": "e/f"})),
        ("g/h", lambda c: c.delete("/items/g%2Fh")),  # the unversioned alias too
    ],
)
def test_ids_with_slashes_can_be_deleted(client: TestClient, item_id: str, delete) -> None:  # noqa: ANN001
    posted = client.post("/v1/items", json={"items": [{"item_id": item_id, "title": "Tent pegs", "category": "O"}]})
    assert posted.status_code == 200 and posted.json()["item_ids"] == [item_id]
    r = delete(client)
    assert r.status_code == 200 and r.json() == {"deleted": item_id, "items_total": 14}
    assert delete(client).status_code == 404


def test_ids_are_nfc_normalised(client: TestClient) -> None:
    decomposed, composed = "cafe\u0301", "caf\u00e9"
    posted = client.post("/v1/items", json={"items": [{"item_id": decomposed, "title": "Coffee", "category": "K"}]})
    assert posted.json()["item_ids"] == [composed]
    similar = client.post("/v1/similar", json={"item_id": decomposed, "k": 1})
    assert similar.status_code == 200  # either spelling names the item
    assert client.post("/v1/items/delete", json={"item_id": composed}).json()["deleted"] == composed


def test_every_error_status_a_route_returns_is_in_the_document(clients: dict[bool, TestClient]) -> None:
    specs = {keyed: c.get("/openapi.json").json() for keyed, c in clients.items()}
    checked = 0
    for row in ROWS:
        if row.detail in ("Not Found", "Method Not Allowed"):  # the router's answers: no operation matched
            continue
        paths = specs[row.keyed]["paths"]
        path = row.path.split("?")[0]
        template = path if path in paths else "/v1/items/{item_id}"
        responses = paths[template][row.method.lower()]["responses"]
        assert str(row.status) in responses, (row.name, template)
        error = responses[str(row.status)]["content"]["application/json"]["schema"]
        assert error == {"$ref": "#/components/schemas/Error"}, row.name
        checked += 1
    assert checked == len(ROWS) - 2
