"""two-tower-lora / two-tower-full on a tiny random BERT: fit, save (adapter only for LoRA), reload without pickle."""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
from dataclasses import replace

import numpy as np
import pytest
import safetensors.torch
import torch
from finetune_fixtures import tiny_bert_folder
from shop_fixtures import tiny_shop

from zsrec.data.splits import SplitSettings, make_split
from zsrec.encoders import EmbeddingCache
from zsrec.encoders.base import l2_normalize
from zsrec.encoders.templates import ItemTextTemplate
from zsrec.errors import ConfigError
from zsrec.manifest import write_manifest
from zsrec.models.finetuned import (
    ADAPTER,
    ENCODER,
    FinetunedTwoTower,
    FinetunedTwoTowerFull,
    FinetuneSettings,
    LoraSettings,
)
from zsrec.models.registry import load_model
from zsrec.training.contrastive import ContrastiveSettings, user_texts
from zsrec.vectors import recentre

TEMPLATE = ItemTextTemplate(fields=("title", "category"))
TRAINING = ContrastiveSettings(epochs=2, batch_size=8, lr=2e-3, level=2, min_history=2, min_validation_users=5, seed=2)


@pytest.fixture(scope="module")
def split():
    return make_split(tiny_shop(), SplitSettings(categories=("Sleeping Bags",), level=2, min_history=3))


@pytest.fixture(scope="module")
def bert(tmp_path_factory):
    return tiny_bert_folder(tmp_path_factory.mktemp("bert"), TEMPLATE.render(tiny_shop().items))


@pytest.fixture(scope="module", params=[("lora", "items"), ("full", "text")], ids=["lora-items", "full-text"])
def fitted(request, bert, split):
    mode, user_side = request.param
    settings = FinetuneSettings(
        encoder=str(bert),
        mode=mode,
        lora=LoraSettings(rank=2, alpha=4),
        template=TEMPLATE,
        training=replace(TRAINING, user_side=user_side),
    )
    cls = FinetunedTwoTower if mode == "lora" else FinetunedTwoTowerFull
    return cls(settings).fit(split.train)


def test_fit_reports_what_it_trained(fitted) -> None:
    assert fitted.name == ("two-tower-lora" if fitted.settings.mode == "lora" else "two-tower-full")
    assert fitted.training_log_["epochs"][0]["epoch"] == 0  # the untrained encoder was validated first
    if fitted.settings.mode == "lora":
        assert 0 < fitted.n_trainable_params_ < 0.2 * fitted.n_encoder_params_
    else:
        assert fitted.n_trainable_params_ == fitted.n_encoder_params_
    assert fitted.encoder_id_.startswith("finetuned:") and fitted.base_id_ in fitted.encoder_id_


def test_saved_folder_holds_safetensors_only_and_lora_only_the_adapter(fitted, tmp_path) -> None:
    fitted.save(tmp_path / "m")
    files = {p.name for p in (tmp_path / "m").iterdir()}
    assert not {f for f in files if f.endswith((".pkl", ".pt", ".bin", ".pth"))}
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    assert config["base_encoder_id"] == fitted.base_id_ and config["settings"]["encoder"] == fitted.settings.encoder
    if fitted.settings.mode == "lora":
        assert ADAPTER in files and ENCODER not in files
        weights = safetensors.torch.load_file(str(tmp_path / "m" / ADAPTER))
        assert weights and all("lora_" in k for k in weights)
        assert sum(w.numel() for w in weights.values()) == fitted.n_trainable_params_
    else:
        assert ENCODER in files and ADAPTER not in files


def test_reload_in_a_fresh_process_scores_identically(fitted, split, tmp_path) -> None:
    folder = tmp_path / "m"
    fitted.save(folder)
    users, items = split.test_users, np.arange(split.train.n_items)
    expected = fitted.score(users, items)
    script = (
        "import sys, numpy as np, pickle, torch\n"
        "def refuse(*a, **k): raise AssertionError('unpickling during load')\n"
        "pickle.load = pickle.loads = torch.load = refuse\n"
        "from zsrec.models.registry import load_model\n"
        f"m = load_model({str(folder)!r})\n"
        f"np.save({str(tmp_path / 'scores.npy')!r}, m.score(np.array({users.tolist()}), np.arange({len(items)})))\n"
    )
    subprocess.run([sys.executable, "-c", script], check=True, timeout=300)
    np.testing.assert_array_equal(np.load(tmp_path / "scores.npy", allow_pickle=False), expected)


def test_reloaded_encoder_reproduces_the_vectors_and_scores_new_users(fitted, split, tmp_path, monkeypatch) -> None:
    fitted.save(tmp_path / "m")

    def refuse(*args, **kwargs):
        raise AssertionError("unpickling during load")

    monkeypatch.setattr(pickle, "load", refuse)
    monkeypatch.setattr(torch, "load", refuse)
    loaded = load_model(tmp_path / "m")
    assert type(loaded) is FinetunedTwoTower and loaded.name == fitted.name
    assert loaded.encoder_id_ == fitted.encoder_id_
    texts = TEMPLATE.render(split.train.items)
    t = fitted.settings.training
    np.testing.assert_array_equal(loaded.catalog_mean_, fitted.catalog_mean_)
    vectors = recentre(loaded.tower_.encode(texts, t.item_max_length), loaded.catalog_mean_)
    np.testing.assert_allclose(vectors, fitted.item_vectors_, atol=1e-5)
    # a user not yet encoded is encoded by the reloaded encoder as by the original
    loaded.user_encoded_[:] = False
    users = split.test_users[:5]
    np.testing.assert_allclose(
        loaded.score(users, split.new_items), fitted.score(users, split.new_items), rtol=1e-4, atol=1e-5
    )


def test_served_vectors_are_centred_by_the_catalog_mean_and_users_read_their_whole_history(fitted, split) -> None:
    t = fitted.settings.training
    assert t.postprocess == "center" and t.score_history_items is None  # the defaults
    raw = fitted.tower_.encode(TEMPLATE.render(split.train.items), t.item_max_length)
    mean = raw.mean(axis=0, keepdims=True)
    np.testing.assert_allclose(fitted.catalog_mean_, mean, atol=1e-6)
    np.testing.assert_allclose(fitted.item_vectors_, l2_normalize(raw - mean), atol=1e-5)
    users = np.array([u for u in split.test_users if len(fitted.histories_[u]) > 1][:3])
    if t.user_side == "items":  # the normalised mean of every history item's centred vector
        expected = l2_normalize(np.stack([fitted.item_vectors_[fitted.histories_[u]].mean(0) for u in users]))
    else:  # the history titles as one text, centred like the items
        texts = user_texts(fitted.item_titles_, [fitted.histories_[u] for u in users], t.history_items)
        expected = l2_normalize(fitted.tower_.encode(texts, t.user_max_length) - mean)
    np.testing.assert_allclose(
        fitted.score(users, split.new_items), expected @ fitted.item_vectors_[split.new_items].T, atol=1e-5
    )


def test_a_folder_saved_before_centring_loads_with_its_raw_vectors(fitted, tmp_path) -> None:
    folder = tmp_path / "m"
    fitted.save(folder)
    (folder / "manifest.json").unlink()  # such folders predate manifests too
    (folder / "catalog_mean_.npy").unlink()
    with pytest.raises(FileNotFoundError, match="catalog_mean_"):  # a centred model needs its mean
        load_model(folder)
    config = json.loads((folder / "config.json").read_text())
    for key in ("postprocess", "score_history_items"):  # settings written before these fields existed
        del config["settings"]["training"][key]
    (folder / "config.json").write_text(json.dumps(config))
    old = load_model(folder)
    t = old.settings.training
    assert t.postprocess == "none" and t.score_history_items == t.history_items  # what such a model served
    assert not old.catalog_mean_.any()


def test_fine_tuned_vectors_never_share_the_base_cache_id(fitted, tmp_path) -> None:
    encoder = fitted.text_encoder()
    assert fitted.base_id_ not in (encoder.model_id.split("+")[0],)  # the id is not the base's
    assert encoder.model_id != fitted.base_id_ and encoder.model_id.startswith("finetuned:")
    cache = EmbeddingCache(tmp_path / "cache")
    vectors = cache.encode(encoder, ["trail tent"], kind="passage")
    assert vectors.shape == (1, encoder.dim)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_weights_change_the_encoder_id(fitted, bert, split) -> None:
    other = type(fitted)(replace(fitted.settings, training=replace(TRAINING, seed=3))).fit(split.train)
    assert other.encoder_id_ != fitted.encoder_id_


def test_a_different_base_is_refused_at_load(fitted, tmp_path) -> None:
    fitted.save(tmp_path / "m")
    path = tmp_path / "m" / "config.json"
    config = json.loads(path.read_text())
    config["base_encoder_id"] = "some-other-model@000000"
    path.write_text(json.dumps(config))
    write_manifest(tmp_path / "m")  # a deliberate edit, re-listed: the base check itself must refuse it
    with pytest.raises(ConfigError, match="fine-tuned from"):
        load_model(tmp_path / "m")


def test_settings_are_checked() -> None:
    with pytest.raises(ConfigError, match="mode"):
        FinetuneSettings(mode="qlora")
    with pytest.raises(ConfigError, match="rank"):
        LoraSettings(rank=0)
    with pytest.raises(ConfigError, match="encoder"):
        FinetunedTwoTower(FinetuneSettings(encoder="/no/such/folder")).fit(tiny_shop())
    settings = FinetuneSettings(mode="full", lora=LoraSettings(target_modules=("query",)))
    assert FinetuneSettings.from_dict(json.loads(json.dumps(settings.to_dict()))) == settings


def test_with_item_text_re_encodes_tampered_items_without_retraining(fitted, split) -> None:
    items = split.train.items.copy()
    target = int(split.new_items[0])
    items.loc[target, "title"] = items.loc[target, "title"] + " kitchen knife pan"
    tampered = fitted.with_item_text(replace(split.train, items=items))
    assert tampered.encoder_id_ == fitted.encoder_id_  # same weights
    changed = np.flatnonzero(np.abs(tampered.item_vectors_ - fitted.item_vectors_).sum(1) > 1e-6)
    assert changed.tolist() == [target]
    users = split.test_users[:3]
    np.testing.assert_allclose(
        tampered.score(users, np.array([1, 2])), fitted.score(users, np.array([1, 2])), rtol=1e-4, atol=1e-5
    )
    with pytest.raises(ConfigError, match="same catalog"):
        fitted.with_item_text(replace(split.train, items=items.iloc[:3]))


def test_lora_adapters_start_from_the_settings_seed_whatever_the_global_generator(bert) -> None:
    from zsrec.models.finetuned import load_tower, trained_weights

    def adapters(seed: int, global_seed: int) -> dict[str, torch.Tensor]:
        settings = FinetuneSettings(
            encoder=str(bert), lora=LoraSettings(rank=2, alpha=4), training=replace(TRAINING, seed=seed)
        )
        torch.manual_seed(global_seed)
        tower, _ = load_tower(settings)
        after = torch.rand(1)  # the caller's generator goes on as if no adapter had been drawn
        torch.manual_seed(global_seed)
        assert torch.equal(after, torch.rand(1))
        return trained_weights(tower, "lora")

    first, again, other = adapters(2, 0), adapters(2, 1), adapters(3, 0)
    lora_a = [k for k in first if "lora_A" in k]
    assert lora_a and all(first[k].abs().sum() > 0 for k in lora_a)  # A starts random (B at zero)
    assert all(torch.equal(first[k], again[k]) for k in first)
    assert any(not torch.equal(first[k], other[k]) for k in lora_a)
