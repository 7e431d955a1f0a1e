"""Every endpoint and every 4xx of the HTTP API, on the tiny shop (campers and cooks), over both index kinds."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

CAMPING = {"Outdoor > Tents", "Outdoor > Sleeping Bags", "Outdoor > Stoves"}


@pytest.fixture(params=["exact", "ivf"])
def api(request: pytest.FixtureRequest) -> TestClient:
    return request.getfixturevalue("client" if request.param == "exact" else "ivf_client")


def test_health_names_model_items_and_index(api: TestClient) -> None:
    body = api.get("/health").json()
    assert body["status"] == "ok" and body["model_id"] == "semantic"
    assert body["items"] == 14 and body["users"] == 40
    assert body["index"] in ("exact", "ivf") and 0 < body["index_recall_at_10"] <= 1


def test_recommend_for_a_camper_ranks_the_unseen_camping_item_first_with_explanations(api: TestClient) -> None:
    engine = api.app.state.engine
    history = {engine.item_id(r) for r in engine.user_history("u0")}
    unseen_camping = {f"i{n}" for n in range(7)} - history
    assert len(unseen_camping) == 1  # u0 bought 6 of the 7 outdoor items
    r = api.post("/recommend", json={"user_id": "u0", "k": 3})
    assert r.status_code == 200
    items = r.json()["items"]
    assert len(items) == 3 and items[0]["item_id"] in unseen_camping
    scores = [i["score"] for i in items]
    assert scores == sorted(scores, reverse=True)
    assert not history & {i["item_id"] for i in items}
    assert items[0]["because"] and all(b["item_id"] in history for i in items for b in i["because"])
    contributions = [b["contribution"] for b in items[0]["because"]]
    assert contributions == sorted(contributions, reverse=True) and sum(contributions) <= items[0]["score"] + 1e-6


def test_recommend_excludes_seen_items_unless_asked(api: TestClient) -> None:
    history = ["i10", "i11"]
    out = api.post("/recommend", json={"history": history, "k": 14}).json()["items"]
    assert not {i["item_id"] for i in out} & set(history)
    kept = api.post("/recommend", json={"history": history, "k": 2, "exclude_seen": False}).json()["items"]
    assert {i["item_id"] for i in kept} == set(history)  # an item is most similar to itself


def test_recommend_from_profile_text_and_category_filter(api: TestClient) -> None:
    out = api.post("/recommend", json={"profile": "a sharp kitchen knife", "k": 2}).json()["items"]
    assert {i["category"] for i in out} == {"Kitchen > Knives"}
    boards = api.post("/recommend", json={"user_id": "u0", "k": 5, "categories": ["Kitchen > Boards"]}).json()
    assert [i["category"] for i in boards["items"]] == ["Kitchen > Boards", "Kitchen > Boards"]
    kitchen = api.post("/recommend", json={"user_id": "u0", "k": 20, "categories": ["Kitchen"]}).json()
    assert len(kitchen["items"]) == 7 and all(i["category"].startswith("Kitchen > ") for i in kitchen["items"])


def test_posted_item_in_a_new_category_is_recommended_in_the_next_request(api: TestClient) -> None:
    new = {"item_id": "pad1", "title": "Sleeping pad for tent camping backpacking", "category": "Outdoor > Pads"}
    assert api.post("/items", json={"items": [new]}).json() == {"upserted": 1, "item_ids": ["pad1"], "items_total": 15}
    top = api.post("/recommend", json={"user_id": "u0", "k": 3}).json()["items"]
    assert "pad1" in [i["item_id"] for i in top]
    cook = api.post("/recommend", json={"user_id": "u1", "k": 3}).json()["items"]
    assert "pad1" not in [i["item_id"] for i in cook]


def test_updating_an_item_moves_it_and_deleting_removes_it(api: TestClient) -> None:
    moved = {"item_id": "i0", "title": "Chef knife kitchen steel", "category": "Kitchen > Knives", "color": "red"}
    assert api.post("/items", json={"items": [moved]}).status_code == 200
    assert api.get("/health").json()["items"] == 14
    similar = api.post("/similar", json={"item_id": "i10", "k": 1}).json()["items"]
    assert similar[0]["item_id"] == "i0" and similar[0]["category"] == "Kitchen > Knives"
    assert api.delete("/items/i0").json() == {"deleted": "i0", "items_total": 13}
    everything = api.post("/recommend", json={"profile": "knife", "k": 100}).json()["items"]
    assert "i0" not in {i["item_id"] for i in everything} and len(everything) == 13
    assert api.delete("/items/i0").status_code == 404
    assert api.post("/items", json={"items": [moved]}).json()["items_total"] == 14  # a deleted id comes back


def test_similar_by_item_text_and_across_categories(api: TestClient) -> None:
    out = api.post("/similar", json={"item_id": "i3", "k": 3}).json()["items"]
    assert "i3" not in [i["item_id"] for i in out] and out[0]["item_id"] == "i4"
    cross = api.post("/similar", json={"item_id": "i3", "k": 3, "other_categories_only": True}).json()["items"]
    assert len(cross) == 3 and all(i["category"] != "Outdoor > Sleeping Bags" for i in cross)
    by_text = api.post("/similar", json={"text": "bamboo cutting board", "k": 1}).json()["items"]
    assert by_text[0]["category"] == "Kitchen > Boards"


def test_audience_for_text_item_and_category(api: TestClient) -> None:
    campers = api.post("/audience", json={"text": "tent camping sleeping bag", "k": 5}).json()["users"]
    assert len(campers) == 5 and all(int(u["user_id"][1:]) % 2 == 0 for u in campers)
    cooks = api.post("/audience", json={"category": "Kitchen", "k": 5}).json()["users"]
    assert all(int(u["user_id"][1:]) % 2 == 1 for u in cooks)
    item = api.post("/audience", json={"item_id": "i10", "k": 40}).json()["users"]
    engine = api.app.state.engine
    bought = {
        f"u{u}"
        for u in range(40)
        if engine.item_id(engine.user_history(f"u{u}")[0])
        and "i10" in {engine.item_id(r) for r in engine.user_history(f"u{u}")}
    }
    assert bought and item and not bought & {u["user_id"] for u in item}  # who already has it is no audience


def test_events_update_profiles_without_retraining_and_create_users(api: TestClient) -> None:
    before = api.post("/recommend", json={"user_id": "u0", "k": 1}).json()["items"][0]
    assert before["category"] in CAMPING
    events = [{"user_id": "u0", "item_id": i, "timestamp": 1e9} for i in ("i7", "i8", "i9", "i10", "i11", "i12")]
    r = api.post("/events", json={"events": events * 3})
    assert r.json() == {"recorded": 18, "users_created": 0}
    after = api.post("/recommend", json={"user_id": "u0", "k": 1}).json()["items"][0]
    assert after["category"].startswith("Kitchen")
    created = api.post("/events", json={"events": [{"user_id": "visitor", "item_id": "i13", "event": "view"}]})
    assert created.json() == {"recorded": 1, "users_created": 1}
    assert (
        api.post("/recommend", json={"user_id": "visitor", "k": 1}).json()["items"][0]["category"].startswith("Kitchen")
    )
    assert api.post("/audience", json={"item_id": "i10", "k": 50}).status_code == 200


BAD_BODIES = [
    ("/recommend", {}),
    ("/recommend", {"user_id": "u0", "profile": "x"}),
    ("/recommend", {"user_id": "u0", "k": 0}),
    ("/recommend", {"user_id": "u0", "k": 100000}),
    ("/recommend", {"user_id": "u0", "unknown": 1}),
    ("/recommend", {"history": []}),
    ("/recommend", {"user_id": "   "}),
    ("/recommend", {"user_id": "u\ud800"}),
    ("/recommend", {"profile": "a\x00b"}),
    ("/items", {"items": []}),
    ("/items", {"items": [{"item_id": "x", "title": "", "category": "A"}]}),
    ("/items", {"items": [{"item_id": "x", "title": "t"}]}),
    ("/items", {"items": [{"item_id": "x", "title": "t", "category": "A", "nested": {"a": 1}}]}),
    ("/items", [1, 2]),
    ("/similar", {"item_id": "i0", "text": "x"}),
    ("/similar", {"text": "tent", "other_categories_only": True}),
    ("/audience", {"k": 3}),
    ("/events", {"events": [{"user_id": "u0"}]}),
    ("/events", {"events": [{"user_id": "u0", "item_id": "i0", "timestamp": "soon"}]}),
]


@pytest.mark.parametrize(("path", "body"), BAD_BODIES)
def test_malformed_or_unanswerable_bodies_get_422_with_detail(client: TestClient, path: str, body: object) -> None:
    raw = json.dumps(body).encode()  # ASCII escapes, so a lone surrogate reaches the server as JSON allows
    r = client.post(path, content=raw, headers={"content-type": "application/json"})
    assert r.status_code == 422, r.text
    assert r.json()["detail"]


def test_unparsable_json_gets_400(client: TestClient) -> None:
    r = client.post("/recommend", content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 400 and r.json()["detail"].startswith("the body is not valid JSON")


UNKNOWN = [
    ("/recommend", {"user_id": "nobody"}, "unknown user_id 'nobody'"),
    ("/recommend", {"history": ["i0", "nothing"]}, "unknown item_id 'nothing'"),
    ("/recommend", {"user_id": "u0", "categories": ["Garden"]}, "unknown category 'Garden'"),
    ("/similar", {"item_id": "nothing"}, "unknown item_id 'nothing'"),
    ("/audience", {"item_id": "nothing"}, "unknown item_id 'nothing'"),
    ("/audience", {"category": "Garden"}, "unknown category 'Garden'"),
    ("/events", {"events": [{"user_id": "u0", "item_id": "nothing"}]}, "unknown item_id 'nothing'"),
]


@pytest.mark.parametrize(("path", "body", "detail"), UNKNOWN)
def test_unknown_ids_get_404_naming_them(client: TestClient, path: str, body: object, detail: str) -> None:
    r = client.post(path, json=body)
    assert r.status_code == 404 and r.json()["detail"].startswith(detail)


def test_unknown_item_delete_is_404_and_a_failed_event_batch_writes_nothing(client: TestClient) -> None:
    assert client.delete("/items/nothing").status_code == 404
    version = client.get("/health").json()["store_version"]
    bad = {"events": [{"user_id": "newbie", "item_id": "i0"}, {"user_id": "newbie", "item_id": "nothing"}]}
    assert client.post("/events", json=bad).status_code == 404
    assert client.post("/recommend", json={"user_id": "newbie"}).status_code == 404
    assert client.get("/health").json()["store_version"] == version


def test_user_without_history_or_profile_gets_422(client: TestClient) -> None:
    client.post("/events", json={"events": [{"user_id": "fresh", "item_id": "i0"}]})
    client.delete("/items/i0")
    r = client.post("/recommend", json={"user_id": "fresh"})
    assert r.status_code == 422 and "no history" in r.json()["detail"]


def test_oversized_bodies_get_413_by_header_and_by_stream(client: TestClient) -> None:
    big = b'{"profile": "' + b"a" * 2_000_000 + b'"}'
    r = client.post("/recommend", content=big, headers={"content-type": "application/json"})
    assert r.status_code == 413 and "larger than" in r.json()["detail"]

    def chunks():  # no Content-Length: the limit must hold while the body streams in
        yield b'{"profile": "'
        for _ in range(40):
            yield b"a" * 65536
        yield b'"}'

    r = client.post("/recommend", content=chunks(), headers={"content-type": "application/json"})
    assert r.status_code == 413


def test_openapi_docs_are_served(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    served = {"/health", "/recommend", "/items", "/items/{item_id}", "/similar", "/audience", "/events"}
    assert {"/v1" + p for p in served} <= set(spec["paths"])
    assert not served & set(spec["paths"])  # the unversioned aliases answer but are listed once, under /v1
    assert client.get("/docs").status_code == 200
