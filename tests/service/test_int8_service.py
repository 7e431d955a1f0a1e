"""A model folder made at int8 is served at int8: the encoder process runs the ONNX model the vectors came from."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from shop_fixtures import tiny_shop

from zsrec.models.embedding_source import EmbeddingSource
from zsrec.service.app import ServiceConfig, create_app
from zsrec.service.bundle import Manifest, ServingSettings, write_service_folder

pytestmark = pytest.mark.slow

LANTERN = {"item_id": "lantern", "title": "LED camping lantern for tents", "category": "Outdoor > Lights"}


def test_a_folder_made_at_int8_is_served_at_int8(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, onnx_models_dir: Path
) -> None:
    monkeypatch.setenv("ZSREC_CACHE_DIR", str(tmp_path / "embeddings"))
    (onnx_models_dir / "onnx").mkdir(exist_ok=True)
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "onnx").symlink_to(onnx_models_dir / "onnx", target_is_directory=True)  # export once
    folder = tmp_path / "model"
    embeddings = EmbeddingSource("minilm@int8")
    write_service_folder(tiny_shop(), folder, embeddings, settings=ServingSettings(encoder="minilm@int8"))
    manifest = Manifest.read(folder)
    assert manifest.encoder == "minilm@int8" and manifest.encoder_model_id.startswith("onnx-int8-")
    with TestClient(create_app(folder, ServiceConfig(encoder_process=True))) as client:
        assert client.get("/health").json()["encoder"] == manifest.encoder_model_id
        assert client.post("/items", json={"items": [LANTERN]}).status_code == 200
        similar = client.post("/similar", json={"text": "camping lantern", "k": 3}).json()["items"]
    assert similar[0]["item_id"] == "lantern"
