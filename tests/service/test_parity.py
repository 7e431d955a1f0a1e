"""Parity: `zsrec serve DIR` ranks a user as the library's `recommend_users` does with DIR's model: same ids, same
order, same scores, for `zero-shot`, a trained head and `launch-ranker`; after `/events` has fed it a new
category's first purchases; and after `/items` has added an item in a category nobody has seen."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from shop_fixtures import tiny_shop

from zsrec.data.splits import SplitSettings
from zsrec.errors import ConfigError
from zsrec.models.base import Recommender
from zsrec.models.registry import load_model
from zsrec.service.app import ServiceConfig, create_app
from zsrec.service.index import IndexSettings
from zsrec.train import train_model

MODELS = {"zero-shot": None, "mlp-head": {"epochs": 2}, "launch-ranker": None}
# the held-out categories are new at training time: nobody has bought in them yet
SPLIT = SplitSettings(categories=("Sleeping Bags", "Knives"), level=2, min_history=3)
USERS = [f"u{u}" for u in range(0, 40, 3)]
CONFIGS = {
    "exact": ServiceConfig(),
    # the IVF path: index candidates re-scored by the model (here the candidates cover the whole tiny catalog)
    "ivf": ServiceConfig(index=IndexSettings(ann_threshold=1, target_recall=1.0)),
}


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("trained")
    for name, training in MODELS.items():
        train_model(tiny_shop(), name, out=root / name, split_settings=SPLIT, encoder="hashing-256", training=training)
    return {name: root / name for name in MODELS}


@pytest.fixture(params=[(m, c) for m in MODELS for c in CONFIGS], ids=lambda p: f"{p[0]}-{p[1]}")
def served(
    request: pytest.FixtureRequest, trained: dict[str, Path], tmp_path: Path
) -> Iterator[tuple[TestClient, Path]]:
    name, config = request.param
    folder = tmp_path / name
    shutil.copytree(trained[name], folder)
    with TestClient(create_app(folder, CONFIGS[config])) as client:
        yield client, folder


def api_top(client: TestClient, users: list[str], k: int = 10) -> dict[str, list[tuple[str, float]]]:
    out = {}
    for user in users:
        response = client.post("/recommend", json={"user_id": user, "k": k})
        assert response.status_code == 200, response.text
        out[user] = [(i["item_id"], i["score"]) for i in response.json()["items"]]
    return out


def library_top(model: Recommender, users: list[str], k: int = 10) -> dict[str, list[tuple[str, float]]]:
    frame = model.recommend_users(users, k)
    return {u: list(zip(g["item_id"], g["score"], strict=True)) for u, g in frame.groupby("user_id", sort=False)}


def assert_same(api: dict[str, list[tuple[str, float]]], library: dict[str, list[tuple[str, float]]]) -> None:
    assert api.keys() == library.keys()
    for user, ranked in api.items():
        assert [i for i, _ in ranked] == [i for i, _ in library[user]], user
        np.testing.assert_allclose([s for _, s in ranked], [s for _, s in library[user]], rtol=1e-4, atol=1e-4)


def test_health_names_the_folders_model(served: tuple[TestClient, Path]) -> None:
    client, folder = served
    body = client.get("/health").json()
    assert body["model_id"] == folder.name  # as trained, from training.json


def test_api_top10_equals_recommend_users(served: tuple[TestClient, Path]) -> None:
    client, folder = served
    assert_same(api_top(client, USERS), library_top(load_model(folder), USERS))


def test_parity_holds_after_events_reveal_a_new_categorys_first_purchases(served: tuple[TestClient, Path]) -> None:
    client, folder = served
    model = load_model(folder)
    ids = model.ids_
    assert ids is not None
    bags = [str(i) for i, c in zip(ids.items, ids.categories, strict=True) if c.endswith("Sleeping Bags")]
    buyers = [f"u{u}" for u in range(0, 12, 2)]  # campers
    events = [{"user_id": u, "item_id": bags[n % len(bags)]} for n, u in enumerate(buyers)]
    assert client.post("/events", json={"events": events}).status_code == 200
    position = {str(i): n for n, i in enumerate(ids.items)}
    users = {str(u): n for n, u in enumerate(ids.users)}
    model.partial_fit(
        pd.DataFrame({"user": [users[e["user_id"]] for e in events], "item": [position[e["item_id"]] for e in events]})
    )
    assert_same(api_top(client, USERS), library_top(model, USERS))


def test_parity_holds_for_a_posted_item_in_a_new_category_and_a_new_user(served: tuple[TestClient, Path]) -> None:
    client, folder = served
    item = {"item_id": "h1", "title": "Camping hammock for tent trips", "category": "Outdoor > Hammocks"}
    assert client.post("/items", json={"items": [item]}).status_code == 200
    events = [{"user_id": "u0", "item_id": "h1"}, {"user_id": "newbie", "item_id": "i0"}]
    assert client.post("/events", json={"events": events}).status_code == 200
    model = load_model(folder)
    (new,) = model.add_items(pd.DataFrame([item | {"description": "", "brand": ""}]))
    (newbie,) = model.add_users(["newbie"])
    model.partial_fit(pd.DataFrame({"user": [0, newbie], "item": [new, 0]}))
    users = [*USERS, "newbie"]
    api = api_top(client, users)
    assert_same(api, library_top(model, users))
    campers = [u for u in USERS if int(u[1:]) % 2 == 0 and u != "u0"]
    assert any("h1" in [i for i, _ in api[u][:3]] for u in campers)  # the new item reaches the campers


def test_a_folder_whose_model_cannot_be_served_refuses_to_start(trained: dict[str, Path], tmp_path: Path) -> None:
    folder = tmp_path / "old"
    shutil.copytree(trained["zero-shot"], folder)
    (folder / "ids.json").unlink()  # as written by a zsrec that did not record ids (nor manifests)
    (folder / "manifest.json").unlink()
    with pytest.raises(ConfigError, match="without its item and user ids"), TestClient(create_app(folder)):
        pass


def test_api_audience_ranks_and_scores_as_zsrec_audience(client: TestClient, tmp_path: Path) -> None:
    from zsrec.encoders import load_encoder
    from zsrec.models.embedding_source import EmbeddingSource
    from zsrec.scenarios.tasks import audience

    text = "tent camping sleeping bag"
    embeddings = EmbeddingSource(load_encoder("hashing-256"), cache_dir=tmp_path / "cli-cache")
    _, members = audience(tiny_shop(), embeddings, text=text, k=40)  # the shop the served folder was written from
    users = client.post("/audience", json={"text": text, "k": 40}).json()["users"]
    assert len(members) == 40 and len({round(m.score, 3) for m in members}) > 1  # campers above cooks
    assert [u["user_id"] for u in users] == [m.user_id for m in members]
    np.testing.assert_allclose([u["score"] for u in users], [m.score for m in members], rtol=1e-5)
    assert [u["history_size"] for u in users] == [m.n_history for m in members]
