"""A served tiny shop (hashing encoder: no model, milliseconds) for the service tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from shop_fixtures import tiny_shop

from zsrec.encoders import load_encoder
from zsrec.models.embedding_source import EmbeddingSource
from zsrec.service.app import ServiceConfig, create_app
from zsrec.service.bundle import ServingSettings, write_service_folder
from zsrec.service.index import IndexSettings


def make_folder(path: Path, tmp_cache: Path, **settings: object) -> Path:
    embeddings = EmbeddingSource(load_encoder("hashing-256"), cache_dir=tmp_cache)
    write_service_folder(tiny_shop(), path, embeddings, settings=ServingSettings(**settings))  # type: ignore[arg-type]
    return path


@pytest.fixture()
def folder(tmp_path: Path) -> Path:
    return make_folder(tmp_path / "model", tmp_path / "cache")


@pytest.fixture()
def client(folder: Path) -> Iterator[TestClient]:
    with TestClient(create_app(folder, ServiceConfig())) as c:
        yield c


@pytest.fixture()
def ivf_client(folder: Path) -> Iterator[TestClient]:
    """The same shop served through the IVF index (threshold 1), to run the endpoints over both index kinds."""
    config = ServiceConfig(index=IndexSettings(ann_threshold=1, target_recall=1.0))
    with TestClient(create_app(folder, config)) as c:
        yield c
