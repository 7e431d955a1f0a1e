"""Hypothesis fuzzing of every operation in the OpenAPI spec: whatever the body, never a 5xx."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from conftest import make_folder
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from zsrec.service.app import ServiceConfig, create_app
from zsrec.service.index import IndexSettings

FUZZ = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
text = st.text(st.characters(codec=None, exclude_categories=()), max_size=30) | st.sampled_from(
    ["u0", "i0", "i13", "Kitchen", "Outdoor > Tents", "", " ", "\ud800", "\x00", "../../etc/passwd"]
)
scalars = st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats() | text
json_values = st.recursive(
    scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(text, inner, max_size=4), max_leaves=12
)


@pytest.fixture(scope="module")
def fuzz_client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    tmp = tmp_path_factory.mktemp("fuzz")
    folder = make_folder(tmp / "model", tmp / "cache")
    with TestClient(create_app(folder, ServiceConfig(index=IndexSettings(ann_threshold=1)))) as client:
        yield client


def body_operations(client: TestClient) -> list[tuple[str, list[str]]]:
    """(path, property names of its request body) for every POST in the spec."""
    spec = client.get("/openapi.json").json()
    out = []
    for path, ops in spec["paths"].items():
        if "post" in ops:
            ref = ops["post"]["requestBody"]["content"]["application/json"]["schema"]["$ref"]
            schema = spec["components"]["schemas"][ref.rsplit("/", 1)[1]]
            out.append((path, list(schema["properties"])))
    return out


def check(response) -> None:  # noqa: ANN001
    assert response.status_code < 500, response.text
    if response.status_code >= 400:
        assert response.json()["detail"]


def test_the_spec_lists_every_body_operation(fuzz_client: TestClient) -> None:
    expected = {"/recommend", "/recommend/batch", "/items", "/items/delete", "/similar", "/audience", "/events"}
    assert {p for p, _ in body_operations(fuzz_client)} == {"/v1" + p for p in expected}


@FUZZ
@given(data=st.data())
def test_schema_shaped_bodies_never_5xx(fuzz_client: TestClient, data: st.DataObject) -> None:
    path, props = data.draw(st.sampled_from(body_operations(fuzz_client)))
    keys = st.sampled_from(props) | text
    if path in ("/v1/items", "/v1/events", "/v1/recommend/batch"):  # lists of objects with the nested model's names
        inner = st.dictionaries(
            st.sampled_from(
                ["item_id", "user_id", "title", "category", "description", "brand", "timestamp", "event", "k"]
            )
            | text,
            json_values,
            max_size=6,
        )
        body = {props[0]: data.draw(st.lists(inner, max_size=3) | json_values)}
    else:
        body = data.draw(st.dictionaries(keys, json_values, max_size=5))
    raw = json.dumps(body, allow_nan=True).encode()  # NaN/Infinity too: Python's JSON reader accepts them
    check(fuzz_client.post(path, content=raw, headers={"content-type": "application/json"}))


@FUZZ
@given(path=st.sampled_from(["/recommend", "/items", "/similar", "/audience", "/events"]), body=json_values)
def test_arbitrary_json_never_5xx(fuzz_client: TestClient, path: str, body: object) -> None:
    raw = json.dumps(body, allow_nan=True).encode()
    check(fuzz_client.post(path, content=raw, headers={"content-type": "application/json"}))


@FUZZ
@given(raw=st.binary(max_size=200))
def test_arbitrary_bytes_never_5xx(fuzz_client: TestClient, raw: bytes) -> None:
    check(fuzz_client.post("/recommend", content=raw, headers={"content-type": "application/json"}))


@FUZZ
@given(item_id=text)
def test_delete_with_any_id_never_5xx(fuzz_client: TestClient, item_id: str) -> None:
    check(fuzz_client.delete("/items/" + quote(item_id.encode("utf-8", "surrogatepass"), safe="")))


def test_fuzzing_left_the_service_usable(fuzz_client: TestClient, tmp_path: Path) -> None:
    assert fuzz_client.get("/health").json()["status"] == "ok"
