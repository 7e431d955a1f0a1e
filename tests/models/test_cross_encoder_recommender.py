"""`cross-encoder`: re-ranking a base model's shortlist, saving and reloading without pickle.

(Named apart from tests/training/test_cross_encoder.py: the test folders are not packages, so two test
modules may not share a base name.)
"""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from finetune_fixtures import tiny_shop_classifier
from shop_fixtures import REPO, tiny_shop

from zsrec.data.splits import SplitSettings, make_split
from zsrec.encoders import HashingEncoder
from zsrec.encoders.templates import ItemTextTemplate
from zsrec.errors import ConfigError, CorruptModelError
from zsrec.models import registry
from zsrec.models.cross_encoder import CrossEncoderRecommender, CrossEncoderSettings
from zsrec.models.embedding_source import EmbeddingSource
from zsrec.models.registry import SPECS, ModelContext, build_model, load_model, saved_model_classes, text_models
from zsrec.models.zero_shot import ZeroShotRecommender
from zsrec.training.cross_encoder import CrossEncoderTrainingSettings


def save_tiny_bert(folder: Path) -> Path:
    """The tiny shop's random BERT classifier, saved as a transformers folder."""
    model, tokenizer = tiny_shop_classifier()
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def split():
    return make_split(tiny_shop(), SplitSettings(categories=("Sleeping Bags", "Knives"), level=2, min_history=3))


@pytest.fixture(scope="module")
def embeddings(tmp_path_factory):
    return EmbeddingSource(HashingEncoder(dim=64), cache_dir=tmp_path_factory.mktemp("cache"))


@pytest.fixture(scope="module")
def settings(tmp_path_factory) -> CrossEncoderSettings:
    backbone = save_tiny_bert(tmp_path_factory.mktemp("bert"))
    training = CrossEncoderTrainingSettings(
        epochs=2, batch_size=8, lr=1e-3, negatives="catalog", level=2, max_length=48, max_pairs=40, threads=1
    )
    return CrossEncoderSettings(
        backbone=str(backbone), base="zero-shot-mean", top_n=3, item_template=ItemTextTemplate(), training=training
    )


@pytest.fixture(scope="module")
def fitted(settings, split, embeddings) -> CrossEncoderRecommender:
    return registry.cross_encoder_model(settings, embeddings=embeddings).fit(split.train)


def test_the_shortlist_is_the_base_top_n_reordered_and_the_rest_keeps_the_base_order(fitted, split) -> None:
    users, items = split.test_users[:6], np.arange(split.train.n_items)
    base = fitted.base_.score(users, items)
    scores = fitted.score(users, items)
    assert scores.shape == base.shape and np.isfinite(scores).all()
    histories = split.train.histories()
    for row, u in enumerate(users):
        unseen = np.setdiff1d(items, histories[u])
        shortlist = unseen[np.argsort(-base[row, unseen], kind="stable")[:3]]
        top = np.argsort(-scores[row], kind="stable")[:3]
        assert set(top.tolist()) == set(shortlist.tolist())
        rest = np.setdiff1d(items, shortlist)
        assert scores[row, rest].max() < scores[row, shortlist].min()
        # below the shortlist, the base model's order is kept exactly
        assert (np.argsort(-scores[row, rest], kind="stable") == np.argsort(-base[row, rest], kind="stable")).all()
        # the shortlist's own order is the classifier's
        user_text = fitted.texts_.user_text(int(u), histories[u])
        expected = fitted.classify([user_text] * 3, [fitted.texts_.item_texts[i] for i in shortlist])
        np.testing.assert_allclose(scores[row, shortlist], expected, rtol=1e-5)


def test_fit_records_a_per_epoch_log_and_the_trainable_parameters(fitted) -> None:
    assert [e["epoch"] for e in fitted.training_log_] == [1, 2]
    assert all(e["loss"] > 0 and e["seconds"] >= 0 for e in fitted.training_log_)
    n = sum(p.numel() for p in fitted.model_.parameters())
    assert fitted.n_trainable_params_ == n > 0
    assert fitted.training_["labels"] == "interaction"


def test_held_out_pairs_are_classified_with_accuracy_and_f1(fitted, split) -> None:
    pairs = fitted.held_out_pairs(split)
    assert set(pairs.items.tolist()) <= set(split.new_items.tolist()) and set(pairs.labels.tolist()) == {0, 1}
    m = fitted.pair_metrics(pairs)
    assert m["n"] == len(pairs)
    assert 0 <= m["accuracy"] <= 1 and m["f1_micro"] == pytest.approx(m["accuracy"])


def test_a_saved_model_reloads_in_a_fresh_process_with_identical_scores(fitted, split, tmp_path) -> None:
    folder = tmp_path / "model"
    fitted.save(folder)
    assert (folder / "cross_encoder.safetensors").is_file() and (folder / "base" / "config.json").is_file()
    assert not list(folder.rglob("*.bin")) and not list(folder.rglob("*.pkl"))
    users, items = split.test_users[:5], np.arange(split.train.n_items)
    expected = fitted.score(users, items)
    out = tmp_path / "scores.npy"
    script = f"""
import pickle, sys, numpy as np, torch
def refuse(*a, **k):
    raise AssertionError("loading must not unpickle")
pickle.load = pickle.loads = torch.load = refuse
from zsrec.models.registry import load_model
model = load_model({str(folder)!r})
np.save({str(out)!r}, model.score(np.array({users.tolist()}), np.arange({len(items)})))
"""
    subprocess.run([sys.executable, "-c", script], check=True, cwd=REPO, timeout=300)
    np.testing.assert_array_equal(np.load(out, allow_pickle=False), expected)


def test_loading_never_unpickles(fitted, tmp_path, monkeypatch) -> None:
    fitted.save(tmp_path / "m")

    def refuse(*args, **kwargs):
        raise AssertionError("loading must not unpickle")

    monkeypatch.setattr(pickle, "load", refuse)
    monkeypatch.setattr(pickle, "loads", refuse)
    monkeypatch.setattr(torch, "load", refuse)
    loaded = load_model(tmp_path / "m")
    assert isinstance(loaded, CrossEncoderRecommender)
    assert isinstance(loaded.base_, ZeroShotRecommender)
    assert loaded.training_log_ == json.loads(json.dumps(fitted.training_log_))


def test_a_folder_missing_its_weights_is_refused(fitted, tmp_path) -> None:
    fitted.save(tmp_path / "m")
    (tmp_path / "m" / "cross_encoder.safetensors").unlink()
    with pytest.raises(CorruptModelError, match="cross_encoder.safetensors"):
        load_model(tmp_path / "m")


def test_base_weight_blends_the_base_score_into_the_shortlist(fitted, split) -> None:
    users, items = split.test_users[:4], np.arange(split.train.n_items)
    blended = CrossEncoderRecommender(replace(fitted.settings, base_weight=100.0))
    for name in ("base_", "model_", "tokenizer_", "texts_", "label_values_", "histories_", "n_items_", "n_users_"):
        setattr(blended, name, getattr(fitted, name))
    base = fitted.base_.score(users, items)
    scores = blended.score(users, items)
    for row in range(len(users)):
        top = np.argsort(-scores[row], kind="stable")[:3]
        # with a huge base weight the shortlist is ordered as the base model orders it
        assert (np.diff(base[row, top]) <= 1e-6).all()


def test_settings_are_checked_and_registered() -> None:
    with pytest.raises(ConfigError, match="top_n"):
        CrossEncoderSettings(top_n=0)
    with pytest.raises(ConfigError, match="base"):
        CrossEncoderSettings(base="cross-encoder")
    assert "cross-encoder" in SPECS and "cross-encoder" in text_models()
    assert CrossEncoderRecommender in saved_model_classes()
    s = CrossEncoderSettings(top_n=7, base_validation_level=2)
    assert CrossEncoderSettings.from_dict(json.loads(json.dumps(s.to_dict()))) == s


def test_the_base_model_tunes_at_the_evaluations_level(split, monkeypatch) -> None:
    model = build_model("cross-encoder", ModelContext(encoder="hashing", validation_level=2))
    assert model.settings.base_validation_level == 2
    assert build_model("cross-encoder", ModelContext(encoder="hashing")).settings.base_validation_level is None
    built = {}

    def capture(name, ctx):  # fit builds its base first: record what it asks for, then stop
        built.update(name=name, level=ctx.validation_level)
        raise RuntimeError("captured")

    monkeypatch.setattr(registry, "build_model", capture)
    with pytest.raises(RuntimeError, match="captured"):
        model.fit(split.train)
    assert built == {"name": "zero-shot", "level": 2}
