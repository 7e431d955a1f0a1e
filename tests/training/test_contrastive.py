"""Contrastive encoder fine-tuning on a tiny random BERT: pairs, loss, validation, early stopping, augmentation."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch
from finetune_fixtures import tiny_bert_folder
from shop_fixtures import tiny_shop

from zsrec.encoders.base import l2_normalize
from zsrec.encoders.templates import ItemTextTemplate
from zsrec.errors import ConfigError
from zsrec.models.finetuned import FinetuneSettings, LoraSettings, load_tower
from zsrec.training import contrastive
from zsrec.training.adversarial import AdversarialSettings, TextAugmenter
from zsrec.training.contrastive import (
    ContrastiveSettings,
    _batches,
    build_pairs,
    centring_mean,
    history_text,
    in_batch_loss,
    train_contrastive,
    user_vectors,
    validation_ndcg,
    validation_task,
)
from zsrec.vectors import recentre

TEMPLATE = ItemTextTemplate(fields=("title", "category"))


@pytest.fixture(scope="module")
def bert_folder(tmp_path_factory):
    shop = tiny_shop()
    texts = TEMPLATE.render(shop.items) + ["stuffed words"]
    return tiny_bert_folder(tmp_path_factory.mktemp("bert"), texts)


def tower_for(folder, mode: str = "full"):
    lora = LoraSettings(rank=2, alpha=4)
    tower, _ = load_tower(FinetuneSettings(encoder=str(folder), mode=mode, lora=lora, template=TEMPLATE))
    return tower


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("batch_size", 1),
        ("pair_history", "all"),
        ("temperature", 0),
        ("epoch_gate", 1.0),
        ("postprocess", "whiten"),
        ("score_history_items", 0),
    ],
)
def test_bad_settings_are_refused(field: str, value: object) -> None:
    with pytest.raises(ConfigError, match=field):
        ContrastiveSettings(**{field: value})


def test_settings_survive_config_json() -> None:
    settings = ContrastiveSettings(adversarial=AdversarialSettings(method="fgm", augment=("typos",)))
    from dataclasses import asdict

    assert ContrastiveSettings.from_dict(asdict(settings)) == settings  # survives config.json


def test_in_batch_loss_known_answer_and_duplicate_masking() -> None:
    users = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    items = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.6, 0.8]])  # third row: an extra negative
    loss = in_batch_loss(users, items, torch.tensor([0, 1, 2]), temperature=1.0)
    logits = users @ items.T
    expected = torch.nn.functional.cross_entropy(logits, torch.tensor([0, 1]))
    torch.testing.assert_close(loss, expected)
    # the same item as positive of both rows: neither may count the other's copy as a negative
    loss_dup = in_batch_loss(users, items[:2], torch.tensor([7, 7]), temperature=1.0)
    torch.testing.assert_close(loss_dup, torch.tensor(0.0))


def test_pairs_leave_out_the_targets_category() -> None:
    shop = tiny_shop()
    category = shop.category_at(2)
    pairs = build_pairs(shop, ContrastiveSettings(level=2, history_items=10))
    assert len(pairs) == len(shop.interactions)  # everyone has history in other categories
    for history, item, group in zip(pairs.histories, pairs.items, pairs.groups, strict=True):
        assert len(history) and not (category[history] == category[item]).any()
        assert (category[pairs.items[pairs.groups == group]] == category[item]).all()
    assert history_text(["a", "b", "c"], np.array([0, 1, 2]), 2) == "c; b"  # most recent first
    capped = build_pairs(shop, ContrastiveSettings(level=2, max_pairs=7, history_items=1))
    assert len(capped) == 7 and all(len(h) == 1 for h in capped.histories)


def test_category_batches_hold_one_category_each() -> None:
    pairs = build_pairs(tiny_shop(), ContrastiveSettings(level=2))
    batches = _batches(pairs, ContrastiveSettings(batching="category", batch_size=5), np.random.default_rng(0))
    assert sorted(np.concatenate(batches).tolist()) == list(range(len(pairs)))
    assert all(len(set(pairs.groups[b].tolist())) == 1 and len(b) <= 5 for b in batches)


def test_items_user_side_is_the_mean_of_history_item_vectors(bert_folder) -> None:
    tower = tower_for(bert_folder)
    vectors = np.eye(4, tower.dim, dtype=np.float32)
    histories = [np.array([0, 1, 2]), np.array([3]), np.array([], dtype=np.int64)]
    settings = ContrastiveSettings(user_side="items", score_history_items=2, history_items=1)
    out = user_vectors(tower, histories, [], vectors, settings)
    expected = np.zeros((3, tower.dim), dtype=np.float32)
    expected[0, [1, 2]] = 1 / np.sqrt(2)  # the two most recent items only (history_items is for training)
    expected[1, 3] = 1.0
    np.testing.assert_allclose(out, expected, atol=1e-6)
    whole = user_vectors(tower, histories, [], vectors, ContrastiveSettings(user_side="items"))  # the default
    expected[0, [0, 1, 2]] = 1 / np.sqrt(3)
    np.testing.assert_allclose(whole, expected, atol=1e-6)


def test_centring_subtracts_the_catalog_mean_and_none_leaves_vectors_alone() -> None:
    raw = np.array([[1.0, 0.0], [0.8, 0.6], [0.6, 0.8]], dtype=np.float32)
    mean = centring_mean(raw, ContrastiveSettings())
    np.testing.assert_allclose(mean, raw.mean(axis=0, keepdims=True))
    np.testing.assert_allclose(recentre(raw, mean), l2_normalize(raw - mean), atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(recentre(raw, mean), axis=1), 1.0, atol=1e-6)
    none = centring_mean(raw, ContrastiveSettings(postprocess="none"))
    assert none.shape == (1, 2) and not none.any() and recentre(raw, none) is raw


def test_training_lowers_the_loss_and_keeps_the_best_epoch(bert_folder) -> None:
    shop = tiny_shop()
    settings = ContrastiveSettings(
        epochs=4,
        batch_size=8,
        lr=2e-3,
        patience=10,
        level=2,
        min_validation_users=5,
        min_history=2,
        user_side="text",
        epoch_gate=None,  # the best mean wins (the gate has its own test)
    )
    tower = tower_for(bert_folder)
    before = {k: v.clone() for k, v in tower.state_dict().items()}
    log = train_contrastive(tower, shop, TEMPLATE, settings)
    losses = [e["loss"] for e in log["epochs"][1:]]
    assert log["epochs"][0]["epoch"] == 0 and log["validation"] is not None
    assert losses[-1] < losses[0]
    assert log["trainable_params"] == sum(p.numel() for p in tower.parameters())
    best = log["best_validation_ndcg@10"]
    assert best == max(e["validation_ndcg@10"] for e in log["epochs"])
    task = validation_task(shop, settings)
    titles = shop.items["title"].tolist()
    per_user = validation_ndcg(tower, task, titles, TEMPLATE.render(shop.items), settings)
    assert per_user.shape == (len(task.split.test_users),) and np.mean(per_user) == pytest.approx(best)
    # validation categories are held out of training: the pairs came from the rest only
    assert log["pairs"] < len(shop.interactions)
    if log["best_epoch"] > 0:
        assert any(not torch.equal(before[k], v) for k, v in tower.state_dict().items())


@pytest.mark.parametrize(("gain", "kept"), [(0.01, False), (0.3, True)])
def test_a_trained_epoch_must_beat_the_untrained_encoder_beyond_noise(bert_folder, monkeypatch, gain, kept) -> None:
    shop = tiny_shop()
    settings = ContrastiveSettings(epochs=1, batch_size=8, lr=2e-3, level=2, min_validation_users=5, min_history=2)
    n_users = len(validation_task(shop, settings).split.test_users)
    noise = np.random.default_rng(0).normal(0, 0.3, size=n_users)  # per-user swings far above a 0.01 mean gain
    noise -= noise.mean()
    start, calls = np.full(n_users, 0.5), []

    def validate(*args) -> np.ndarray:
        calls.append(args)
        return start if len(calls) == 1 else start + gain + noise

    monkeypatch.setattr(contrastive, "validation_ndcg", validate)
    tower = tower_for(bert_folder)
    before = {k: v.clone() for k, v in tower.state_dict().items()}
    log = train_contrastive(tower, shop, TEMPLATE, settings)
    assert len(calls) == 2 and log["epoch_gate"]["epoch"] == 1 and log["epoch_gate"]["kept"] is kept
    assert log["best_epoch"] == (1 if kept else 0)
    assert log["best_validation_ndcg@10"] == pytest.approx(0.5 + gain if kept else 0.5)
    trained = any(not torch.equal(before[k], v) for k, v in tower.state_dict().items())
    assert trained is kept  # a rejected epoch leaves the untrained weights in the tower
    # without the gate the best mean wins, however noisy
    calls.clear()
    log = train_contrastive(tower_for(bert_folder), shop, TEMPLATE, replace(settings, epoch_gate=None))
    assert log["epoch_gate"] is None and log["best_epoch"] == 1


def test_lora_trains_only_the_adapter(bert_folder) -> None:
    shop = tiny_shop()
    tower = tower_for(bert_folder, "lora")
    frozen = {n: p.clone() for n, p in tower.named_parameters() if not p.requires_grad}
    settings = ContrastiveSettings(epochs=1, batch_size=8, lr=1e-2, level=2, min_validation_users=10_000)
    log = train_contrastive(tower, shop, TEMPLATE, settings)
    assert log["validation"] is None and len(log["epochs"]) == 1  # too few users: no early stopping
    assert 0 < log["trainable_params"] < tower.total_parameters() / 10
    for name, p in tower.named_parameters():
        if name in frozen:
            assert torch.equal(p, frozen[name]), name
    assert all("lora_" in n for n, p in tower.named_parameters() if p.requires_grad)


@pytest.mark.parametrize("user_side", ["text", "items"])
def test_adversarial_training_runs_and_logs_both_losses(bert_folder, user_side) -> None:
    shop = tiny_shop()
    adv = AdversarialSettings(method="pgd", epsilon=0.5, steps=2, augment=("typos", "stuffing"), augment_prob=0.5)
    settings = ContrastiveSettings(
        epochs=1,
        batch_size=8,
        level=2,
        min_validation_users=10_000,
        adversarial=adv,
        user_side=user_side,
        batching="category",
    )
    log = train_contrastive(tower_for(bert_folder), shop, TEMPLATE, settings)
    entry = log["epochs"][0]
    assert entry["adversarial_loss"] > 0 and entry["loss"] > 0


def test_augmenter_perturbs_training_items_only() -> None:
    shop = tiny_shop()
    category = shop.category_at(2)
    training = np.flatnonzero(np.char.startswith(category.astype(str), "Outdoor"))  # pretend Kitchen is test
    adv = AdversarialSettings(augment=("stuffing", "casing"), augment_prob=1.0, stuffing_words=3)
    augmenter = TextAugmenter.for_training(shop.items, category, training, TEMPLATE, adv)
    rng = np.random.default_rng(0)
    texts, ids = augmenter.negatives(training[:2], rng)
    assert len(ids) == len(texts) > 0
    assert set(ids.tolist()) <= set(training.tolist()) - set(training[:2].tolist())
    for text, item in zip(texts, ids, strict=True):
        original = TEMPLATE.render(shop.items.iloc[[item]])[0]
        assert text != original
        # the stuffed words come from other (training) categories' titles, never from the pretend-test items
        added = set(text.lower().split()) - set(original.lower().split())
        kitchen_only = {"kitchen", "knife", "pan", "skillet", "saucepan", "board", "cutting"}
        assert added and not added & kitchen_only
    item = int(training[0])
    changed = augmenter.positive(TEMPLATE.render(shop.items.iloc[[item]])[0], item, rng)
    assert changed.lower().startswith(shop.items["title"].iat[item].lower()[:3])
    none = TextAugmenter.for_training(shop.items, category, training, TEMPLATE, replace(adv, augment=()))
    assert none.positive("x", item, rng) == "x" and none.negatives(training[:2], rng)[0] == []
