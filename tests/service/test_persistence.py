"""Restarts, snapshots, concurrency and the service folder itself."""

from __future__ import annotations

import json
import sqlite3
import sys
import threading
from pathlib import Path

import pytest
from conftest import make_folder
from fastapi.testclient import TestClient

from zsrec.errors import ConfigError, ZsrecError
from zsrec.manifest import write_manifest
from zsrec.service.app import ServiceConfig, create_app
from zsrec.service.bundle import MANIFEST, Manifest, ServingSettings
from zsrec.service.index import IndexSettings

IVF = ServiceConfig(index=IndexSettings(ann_threshold=1))
NEW = {"item_id": "pad1", "title": "Sleeping pad for tent camping", "category": "Outdoor > Pads"}


@pytest.mark.parametrize("config", [ServiceConfig(), IVF], ids=["exact", "ivf"])
def test_writes_survive_a_restart(folder: Path, config: ServiceConfig) -> None:
    with TestClient(create_app(folder, config)) as c:
        c.post("/items", json={"items": [NEW]})
        c.delete("/items/i13")
        c.post("/events", json={"events": [{"user_id": "visitor", "item_id": "pad1"}]})
        before = c.post("/recommend", json={"user_id": "visitor", "k": 5}).json()
    with TestClient(create_app(folder, config)) as c:
        health = c.get("/health").json()
        assert health["items"] == 14 and health["users"] == 41
        assert c.post("/recommend", json={"user_id": "visitor", "k": 5}).json() == before
        assert c.post("/similar", json={"item_id": "i13"}).status_code == 404


def test_snapshot_is_replayed_from_the_store_after_a_crash(folder: Path) -> None:
    with TestClient(create_app(folder, IVF)) as c:
        engine = c.app.state.engine
        snapshots = sorted((folder / "index").glob("*.faiss"))
        assert len(snapshots) == 1
        c.post("/items", json={"items": [NEW]})
        c.delete("/items/i0")
        engine.store.close()
        engine.save_snapshot = lambda: None  # a crash: the shut-down snapshot never happens
        engine.store.close = lambda: None
    assert sorted((folder / "index").glob("*.faiss")) == snapshots  # the stale snapshot is all there is
    with TestClient(create_app(folder, IVF)) as c:
        found = c.post("/recommend", json={"profile": "sleeping pad camping", "k": 14}).json()["items"]
        ids = [i["item_id"] for i in found]
        assert "pad1" in ids and "i0" not in ids and len(ids) == 14


def test_an_unreadable_snapshot_is_rebuilt(folder: Path) -> None:
    with TestClient(create_app(folder, IVF)):
        pass
    (snapshot,) = (folder / "index").glob("*.faiss")
    snapshot.write_bytes(b"garbage")
    with TestClient(create_app(folder, IVF)) as c:
        assert c.get("/health").json()["index"] == "ivf"
        assert len(c.post("/recommend", json={"user_id": "u0", "k": 3}).json()["items"]) == 3


def test_adds_while_recommending_lose_nothing_and_fail_nothing(folder: Path) -> None:
    with TestClient(create_app(folder, IVF)) as c:
        errors: list[str] = []
        stop = threading.Event()

        def reader() -> None:
            while not stop.is_set():
                r = c.post("/recommend", json={"user_id": "u0", "k": 5})
                if r.status_code != 200 or len(r.json()["items"]) != 5:
                    errors.append(r.text)

        readers = [threading.Thread(target=reader) for _ in range(3)]
        for t in readers:
            t.start()
        added = []
        for n in range(30):
            item = {"item_id": f"new{n}", "title": f"camping tent lantern {n}", "category": f"Outdoor > New {n % 3}"}
            assert c.post("/items", json={"items": [item]}).status_code == 200
            added.append(item["item_id"])
            if n % 10 == 9:
                assert c.delete(f"/items/new{n - 5}").status_code == 200
                added.remove(f"new{n - 5}")
        stop.set()
        for t in readers:
            t.join()
        assert not errors
        assert c.get("/health").json()["items"] == 14 + len(added)
        for item_id in added:
            assert c.post("/similar", json={"item_id": item_id, "k": 1}).status_code == 200
        every = c.post("/recommend", json={"profile": "camping tent lantern", "k": 200}).json()["items"]
        assert set(added) <= {i["item_id"] for i in every}


def test_service_folder_is_complete_and_rewritable(tmp_path: Path) -> None:
    folder = make_folder(tmp_path / "m", tmp_path / "cache", aggregation="recency", half_life=2.0)
    manifest = Manifest.read(folder)
    assert (manifest.encoder, manifest.aggregation, manifest.n_items, manifest.n_users) == (
        "hashing-256",
        "recency",
        14,
        40,
    )
    with sqlite3.connect(folder / "service.db") as conn:
        assert conn.execute("SELECT count(*) FROM events").fetchone()[0] == manifest.n_events == 240
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    with TestClient(create_app(folder, IVF)) as c:  # leaves a WAL and a snapshot behind
        c.post("/items", json={"items": [NEW]})
    make_folder(folder, tmp_path / "cache")  # training again replaces the live state entirely
    assert not list((folder / "index").glob("*.faiss"))
    with TestClient(create_app(folder, ServiceConfig())) as c:
        assert c.get("/health").json()["items"] == 14


def test_bad_settings_and_folders_are_refused(tmp_path: Path, folder: Path) -> None:
    with pytest.raises(ConfigError, match="aggregation"):
        ServingSettings(aggregation="median")
    with pytest.raises(FileNotFoundError, match="service.json"):
        Manifest.read(tmp_path)
    values = json.loads((folder / MANIFEST).read_text())
    values["encoder_model_id"] = "something-else"
    (folder / MANIFEST).write_text(json.dumps(values))
    write_manifest(folder)  # a deliberate edit, re-listed: the encoder check itself must refuse it
    with pytest.raises(ZsrecError, match="differs"), TestClient(create_app(folder, ServiceConfig())):
        pass
    with pytest.raises(ConfigError, match="ZSREC_ANN_THRESHOLD|bad service setting"):
        ServiceConfig.from_env({"ZSREC_ANN_THRESHOLD": "lots"})


def test_serve_refuses_a_folder_that_is_not_a_service_folder(tmp_path: Path) -> None:
    from zsrec.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(["serve", str(tmp_path)])
    assert exit_info.value.code == 2


@pytest.mark.slow
def test_kill_9_during_load_keeps_every_acknowledged_item(tmp_path: Path) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
    from crash_recovery import crash_check, tiny_folder

    result = crash_check(
        tiny_folder(tmp_path / "model"), duration=5, kill_at=4, rate=50, write_rate=10, log_dir=tmp_path
    )
    assert result["passed"], result
    assert result["items_acknowledged"] > 0 and result["n_missing"] == 0
