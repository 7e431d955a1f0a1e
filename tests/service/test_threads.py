"""Request work runs in two small thread pools: reads are capped, and a slow write never holds a read thread."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from zsrec.errors import ConfigError
from zsrec.service.app import ServiceConfig, create_app

NEW_ITEM = {"item_id": "lantern", "title": "LED camping lantern for tents", "category": "Outdoor > Lights"}


def test_a_write_waiting_for_its_encoder_does_not_hold_up_reads(folder: Path) -> None:
    with TestClient(create_app(folder, ServiceConfig(read_threads=1, write_threads=1))) as c:
        engine = c.app.state.engine  # type: ignore[attr-defined]
        encode, entered, release = engine._encode_items, threading.Event(), threading.Event()

        def slow_encode(items):  # the encoder process busy with a large batch
            entered.set()
            release.wait(30)
            return encode(items)

        engine._encode_items = slow_encode
        posted = []
        writer = threading.Thread(target=lambda: posted.append(c.post("/items", json={"items": [NEW_ITEM]})))
        writer.start()
        try:
            assert entered.wait(10)
            user = next(iter(engine._user_row))
            read = c.post("/recommend", json={"user_id": user, "k": 3})  # the one read thread is free
            assert read.status_code == 200 and len(read.json()["items"]) == 3
            assert writer.is_alive() and not posted  # answered while the write still waited
        finally:
            release.set()
            writer.join(30)
        assert posted[0].status_code == 200


def test_reads_beyond_the_read_threads_wait_their_turn(folder: Path) -> None:
    with TestClient(create_app(folder, ServiceConfig(read_threads=2))) as c:
        engine = c.app.state.engine  # type: ignore[attr-defined]
        recommend, lock, release = engine.recommend, threading.Lock(), threading.Event()
        running, most = [0], [0]

        def counted(**kwargs):
            with lock:
                running[0] += 1
                most[0] = max(most[0], running[0])
            release.wait(0.5)  # long enough for all five requests to be in flight
            with lock:
                running[0] -= 1
            return recommend(**kwargs)

        engine.recommend = counted
        user = next(iter(engine._user_row))
        statuses = []
        threads = [
            threading.Thread(target=lambda: statuses.append(c.post("/recommend", json={"user_id": user}).status_code))
            for _ in range(5)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert statuses == [200] * 5
        assert most[0] == 2


def test_thread_counts_from_the_environment() -> None:
    config = ServiceConfig.from_env({"ZSREC_READ_THREADS": "8", "ZSREC_WRITE_THREADS": "1"})
    assert (config.read_threads, config.write_threads) == (8, 1)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    assert (ServiceConfig.from_env({}).read_threads, ServiceConfig.from_env({}).write_threads) == (2 * cores, 2)
    assert ServiceConfig().read_threads == 2 * cores
    with pytest.raises(ConfigError, match="read_threads"):
        ServiceConfig.from_env({"ZSREC_READ_THREADS": "0"})
    with pytest.raises(ConfigError, match="bad service setting"):
        ServiceConfig.from_env({"ZSREC_WRITE_THREADS": "two"})


def test_the_catalog_is_loaded_with_room_for_new_items(folder: Path) -> None:
    with TestClient(create_app(folder, ServiceConfig())) as c:
        engine = c.app.state.engine  # type: ignore[attr-defined]
        vectors = engine._vectors
        assert len(vectors) >= engine.n_items + 1024
        assert c.post("/items", json={"items": [NEW_ITEM]}).status_code == 200
        assert engine._vectors is vectors  # written in place: no copy of the matrix for the first posts
        found = c.post("/similar", json={"item_id": "lantern", "k": 1}).json()["items"]
        assert found and found[0]["item_id"] != "lantern"
