"""What an operator runs the service with: probes, Prometheus metrics, access logs with request ids, the batch
form of /recommend, paging through the catalog, and the versioned paths with their aliases."""

from __future__ import annotations

import json
import logging
import os
import re
import signal
import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from zsrec.encoders.base import Kind
from zsrec.service.app import ServiceConfig, create_app
from zsrec.service.observability import CountingEncoder


def metric(text: str, name: str, **labels: str) -> float:
    """The value of one sample in a Prometheus exposition."""
    wanted = ",".join(f'{k}="{v}"' for k, v in labels.items())
    pattern = re.escape(name) + (r"\{" + re.escape(wanted) + r"\}" if wanted else "") + r" (\S+)"
    found = re.search("^" + pattern + "$", text, flags=re.MULTILINE)
    assert found, f"no sample {name}{{{wanted}}}"
    return float(found.group(1))


def test_probes_answer_once_loaded(client: TestClient) -> None:
    assert client.get("/livez").json() == {"status": "alive"}
    assert client.get("/readyz").json() == {"status": "ready"}


def test_readyz_is_503_before_the_model_is_loaded_and_after_shutdown(folder: Path) -> None:
    app = create_app(folder, ServiceConfig())
    unstarted = TestClient(app)  # no `with`: the lifespan (which loads the model) has not run
    r = unstarted.get("/readyz")
    assert r.status_code == 503 and r.json() == {"detail": "the service is loading or shutting down"}
    assert unstarted.get("/livez").status_code == 200
    with TestClient(app) as c:
        assert c.get("/readyz").status_code == 200
    assert app.state.ready is False  # set as shutdown begins, so a balancer drains the instance


def test_readyz_is_503_once_the_encoder_process_died(folder: Path) -> None:
    with TestClient(create_app(folder, ServiceConfig(encoder_process=True))) as c:
        assert c.get("/readyz").status_code == 200
        (pid,) = c.app.state.encoder.pids()
        os.kill(pid, signal.SIGKILL)
        for _ in range(50):
            r = c.get("/readyz")
            if r.status_code == 503:
                break
            threading.Event().wait(0.1)
        assert r.status_code == 503 and "encoder process has stopped" in r.json()["detail"]


def test_metrics_count_requests_per_route_and_report_the_catalog(client: TestClient) -> None:
    for _ in range(3):
        assert client.post("/v1/recommend", json={"user_id": "u0"}).status_code == 200
    client.post("/recommend", json={"user_id": "nobody"})  # the alias, and a 404
    client.get("/no/such/path/12345")
    client.delete("/v1/items/i5")
    text = client.get("/metrics").text
    assert metric(text, "zsrec_http_requests_total", method="POST", route="/v1/recommend", status="200") == 3
    assert metric(text, "zsrec_http_requests_total", method="POST", route="/recommend", status="404") == 1
    assert metric(text, "zsrec_http_requests_total", method="GET", route="unmatched", status="404") == 1
    assert metric(text, "zsrec_http_requests_total", method="DELETE", route="/v1/items/{item_id}", status="200") == 1
    assert "/no/such/path" not in text and "i5" not in text  # raw paths never become labels
    assert metric(text, "zsrec_http_request_duration_seconds_count", method="POST", route="/v1/recommend") == 3
    assert metric(text, "zsrec_items") == 13 and metric(text, "zsrec_users") == 40
    assert metric(text, "zsrec_index_recall_at_10") == 1.0  # exact search below the ANN threshold
    assert metric(text, "zsrec_encoder_queue_length") == 0
    client.post("/v1/items", json={"items": [{"item_id": "new", "title": "Tent pegs", "category": "Outdoor"}]})
    assert metric(client.get("/metrics").text, "zsrec_items") == 14


def test_the_encoder_queue_counts_calls_waiting_or_running() -> None:
    seen: list[int] = []

    class Slow:
        model_id, dim, n_forward_texts = "slow", 2, 0

        def encode(self, texts: Sequence[str], *, kind: Kind = "passage", show_progress: bool = False) -> np.ndarray:
            seen.append(counting.in_flight)
            gate.wait(5)
            return np.ones((len(texts), 2), dtype=np.float32)

    gate = threading.Event()
    counting = CountingEncoder(Slow())  # type: ignore[arg-type]
    threads = [threading.Thread(target=counting.encode, args=(["x"],)) for _ in range(3)]
    for t in threads:
        t.start()
    while len(seen) < 3:
        threading.Event().wait(0.01)
    assert counting.in_flight == 3 and max(seen) == 3
    gate.set()
    for t in threads:
        t.join()
    assert counting.in_flight == 0 and counting.model_id == "slow"


def test_each_answer_carries_a_request_id_and_one_json_log_line(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="zsrec.access"):
        given = client.get("/v1/health", headers={"X-Request-ID": "shop-42.a"})
        made = client.post("/v1/recommend", json={"user_id": "nobody"})
        refused = client.get("/v1/health", headers={"X-Request-ID": "not ok; " + "x" * 200})
    assert given.headers["x-request-id"] == "shop-42.a"
    assert re.fullmatch(r"[0-9a-f]{32}", made.headers["x-request-id"])
    assert re.fullmatch(r"[0-9a-f]{32}", refused.headers["x-request-id"])  # unsafe ids are replaced
    lines = [json.loads(r.getMessage()) for r in caplog.records if r.name == "zsrec.access"]
    assert [(x["request_id"], x["route"], x["status"]) for x in lines] == [
        ("shop-42.a", "/v1/health", 200),
        (made.headers["x-request-id"], "/v1/recommend", 404),
        (refused.headers["x-request-id"], "/v1/health", 200),
    ]
    assert all(x["method"] and x["duration_ms"] >= 0 and x["event"] == "request" for x in lines)


def test_the_access_log_can_be_turned_off(folder: Path, caplog: pytest.LogCaptureFixture) -> None:
    with TestClient(create_app(folder, ServiceConfig(access_log=False))) as c, caplog.at_level(logging.INFO):
        assert c.get("/v1/health").headers["x-request-id"]
    assert not [r for r in caplog.records if r.name == "zsrec.access"]


def test_batch_recommend_answers_each_query_in_order(client: TestClient) -> None:
    client.post("/v1/events", json={"events": [{"user_id": "fresh", "item_id": "i0"}]})
    client.delete("/v1/items/i0")  # "fresh" now has no live history and no profile: 422 for that query
    queries = [{"user_id": "u0", "k": 3}, {"user_id": "nobody"}, {"user_id": "fresh"}, {"profile": "knife", "k": 2}]
    r = client.post("/v1/recommend/batch", json={"queries": queries})
    assert r.status_code == 200
    results = r.json()["results"]
    assert [x["status"] for x in results] == [200, 404, 422, 200]
    alone = client.post("/v1/recommend", json=queries[0]).json()["items"]
    assert results[0]["items"] == alone and results[0]["detail"] is None
    assert results[1] == {"status": 404, "items": [], "detail": "unknown user_id 'nobody'"}
    assert "no history" in results[2]["detail"] and len(results[3]["items"]) == 2


@pytest.mark.parametrize("n", [0, 101])
def test_batch_recommend_is_bounded(client: TestClient, n: int) -> None:
    r = client.post("/v1/recommend/batch", json={"queries": [{"user_id": "u0"}] * n})
    assert r.status_code == 422 and r.json()["detail"].startswith("body.queries: List should have at")


def test_items_pages_cover_the_catalog_once_in_order(client: TestClient) -> None:
    client.delete("/v1/items/i3")
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params = {"limit": 5} | ({"cursor": cursor} if cursor else {})
        page = client.get("/v1/items", params=params).json()
        seen += [i["item_id"] for i in page["items"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert pages == 3 and len(seen) == 13 and len(set(seen)) == 13 and "i3" not in seen
    assert seen == sorted(seen, key=lambda i: int(i[1:]))  # oldest first (store rows)
    first = client.get("/v1/items", params={"limit": 1}).json()["items"][0]
    assert first == {"item_id": "i0", "title": first["title"], "category": first["category"]} and first["title"]


def test_items_added_while_paging_appear_on_a_later_page(client: TestClient) -> None:
    page = client.get("/v1/items", params={"limit": 13}).json()
    assert len(page["items"]) == 13 and page["next_cursor"]
    client.post("/v1/items", json={"items": [{"item_id": "late", "title": "Tent pegs", "category": "Outdoor"}]})
    rest = client.get("/v1/items", params={"cursor": page["next_cursor"]}).json()
    assert [i["item_id"] for i in rest["items"]] == ["i13", "late"] and rest["next_cursor"] is None


def test_v1_paths_and_the_old_aliases_answer_alike_and_the_document_lists_each_once(client: TestClient) -> None:
    body = {"user_id": "u0", "k": 5}
    assert client.post("/v1/recommend", json=body).json() == client.post("/recommend", json=body).json()
    assert client.get("/v1/health").json() == client.get("/health").json()
    paths = set(client.get("/openapi.json").json()["paths"])
    assert {"/livez", "/readyz", "/metrics"} <= paths
    assert all(p.startswith("/v1/") for p in paths - {"/livez", "/readyz", "/metrics"})
