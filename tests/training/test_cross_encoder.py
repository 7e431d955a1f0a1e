"""The cross-encoder's trainer and its classification metrics, on a tiny random BERT built from a config here."""

from __future__ import annotations

from dataclasses import asdict, replace

import numpy as np
import pytest
import torch
from finetune_fixtures import tiny_shop_classifier
from shop_fixtures import tiny_shop
from sklearn.metrics import precision_recall_fscore_support

from zsrec.data.splits import SplitSettings, make_split
from zsrec.encoders.templates import ItemTextTemplate, UserTextTemplate
from zsrec.errors import ConfigError
from zsrec.evaluation.classification import classification_metrics, confusion_matrix, predicted_labels
from zsrec.training.adversarial import AdversarialSettings
from zsrec.training.cross_encoder import (
    CrossEncoderTrainingSettings,
    PairTexts,
    label_source,
    label_values,
    pair_metrics,
    task_pairs,
    train_cross_encoder,
    training_pairs,
)


# -- classification metrics -----------------------------------------------------------------------------
def test_predictions_are_the_argmax_over_the_label_axis_on_a_hand_made_batch() -> None:
    # (batch=4, num_labels=2): the seed's argmax(dim=2) has no axis 2 to take here
    logits = np.array([[2.0, 1.0], [0.0, 3.0], [1.0, 0.0], [0.5, 0.2]])
    predictions = predicted_labels(logits)
    assert predictions.tolist() == [0, 1, 0, 0]
    m = classification_metrics(np.array([0, 1, 1, 0]), predictions, n_labels=2)
    # label 0: tp 2, fp 1, fn 0 -> P 2/3, R 1, F1 0.8; label 1: tp 1, fp 0, fn 1 -> P 1, R 1/2, F1 2/3
    assert m["accuracy"] == pytest.approx(0.75)
    assert m["precision_macro"] == pytest.approx((2 / 3 + 1) / 2)
    assert m["recall_macro"] == pytest.approx(0.75)
    assert m["f1_macro"] == pytest.approx((0.8 + 2 / 3) / 2)
    assert m["precision_micro"] == m["recall_micro"] == m["f1_micro"] == pytest.approx(0.75)


def test_predicted_labels_refuse_anything_but_batch_by_labels() -> None:
    with pytest.raises(ValueError, match="2-D"):
        predicted_labels(np.zeros((4, 7, 2)))  # token-classification shaped logits
    with pytest.raises(ValueError, match="2-D"):
        predicted_labels(np.zeros(4))


def test_metrics_agree_with_scikit_learn_on_three_labels() -> None:
    rng = np.random.default_rng(0)
    labels, predictions = rng.integers(0, 3, 200), rng.integers(0, 3, 200)
    m = classification_metrics(labels, predictions, n_labels=3)
    for average in ("macro", "micro"):
        p, r, f, _ = precision_recall_fscore_support(labels, predictions, average=average, zero_division=0)
        assert (m[f"precision_{average}"], m[f"recall_{average}"], m[f"f1_{average}"]) == pytest.approx((p, r, f))
    assert confusion_matrix(labels, predictions, 3).sum() == 200


def test_a_label_never_predicted_counts_as_zero_precision() -> None:
    m = classification_metrics(np.array([0, 1, 1]), np.array([0, 0, 0]), n_labels=2)
    assert m["precision_macro"] == pytest.approx((1 / 3 + 0) / 2)  # label 0: 1 right of 3 predicted
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        classification_metrics(np.array([0, 2]), np.array([0, 1]), n_labels=2)


# -- settings, labels and pairs ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    "bad",
    [{"epochs": 0}, {"lr": 0.0}, {"labels": "stars"}, {"negatives": "everything"}, {"max_length": 4}],
)
def test_bad_settings_name_the_setting(bad: dict) -> None:
    with pytest.raises(ConfigError, match=next(iter(bad))):
        CrossEncoderTrainingSettings(**bad)


def test_text_augmentation_is_refused_rather_than_ignored() -> None:
    with pytest.raises(ConfigError, match="augment"):
        CrossEncoderTrainingSettings(adversarial=AdversarialSettings(augment=("typos",)))


def test_labels_come_from_ratings_where_the_data_has_them() -> None:
    shop = tiny_shop()
    settings = CrossEncoderTrainingSettings()
    assert label_source(shop, settings) == "interaction"
    with pytest.raises(ConfigError, match="rating"):
        label_source(shop, replace(settings, labels="rating"))
    inter = shop.interactions.copy()
    inter["rating"] = np.where(inter["item"] % 2 == 0, 5.0, 2.0)
    rated = shop.with_interactions(inter)
    assert label_source(rated, settings) == "rating"
    assert label_values(rated, "rating") == [2.0, 5.0]
    texts = PairTexts.build(rated, ItemTextTemplate(), UserTextTemplate(), 4)
    pairs = training_pairs(rated, texts, replace(settings, max_pairs=50), "rating", [2.0, 5.0])
    assert len(pairs) == 50  # rated pairs only, no sampled negatives
    np.testing.assert_array_equal(pairs.labels, (pairs.items % 2 == 0).astype(int))


def test_a_training_pair_hides_the_targets_category_and_its_negatives_are_unseen() -> None:
    shop = tiny_shop()
    settings = CrossEncoderTrainingSettings(level=2, n_negatives=1)
    texts = PairTexts.build(shop, ItemTextTemplate(), UserTextTemplate(include_profile=False), 8)
    pairs = training_pairs(shop, texts, settings, "interaction", [0.0, 1.0])
    assert set(pairs.labels.tolist()) == {0, 1}
    categories = shop.items["category"].to_numpy()
    histories = shop.histories()
    for k in np.flatnonzero(pairs.labels == 1)[:20]:
        u, i = pairs.users[k], pairs.items[k]
        same_category = [texts.titles[j] for j in histories[u] if categories[j] == categories[i]]
        assert not any(title in pairs.user_texts[k] for title in same_category)
        assert pairs.user_texts[k].startswith("Bought: ")
    for k in np.flatnonzero(pairs.labels == 0):
        assert pairs.items[k] not in set(histories[pairs.users[k]].tolist())


# -- training ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def split():
    return make_split(tiny_shop(), SplitSettings(categories=("Sleeping Bags", "Knives"), level=2, min_history=3))


def test_training_fits_its_pairs_and_keeps_the_best_validation_epoch(split) -> None:
    model, tokenizer = tiny_shop_classifier()
    settings = CrossEncoderTrainingSettings(
        epochs=6, batch_size=8, lr=1e-3, warmup_fraction=0.0, negatives="catalog", level=2, max_length=48,
        max_pairs=30, threads=1,
    )  # fmt: skip
    texts = PairTexts.build(split.train, ItemTextTemplate(fields=("title",)), UserTextTemplate(), 8)
    train = training_pairs(split.train, texts, settings, "interaction", [0.0, 1.0])
    before = pair_metrics(model, tokenizer, train, texts, settings, [0.0, 1.0])
    log = train_cross_encoder(model, tokenizer, train, texts, settings, [0.0, 1.0], validation=train)
    after = pair_metrics(model, tokenizer, train, texts, settings, [0.0, 1.0])
    assert after["loss"] < before["loss"] - 0.02
    assert after["auc"] > before["auc"]
    f1 = [e["validation"]["f1_macro"] for e in log["epochs"]]
    assert log["best_epoch"] == 1 + int(np.argmax(f1))
    assert after["f1_macro"] == pytest.approx(max(f1))  # the best epoch's weights are the ones left in place


@pytest.mark.slow
def test_fine_tuned_minilm_sends_campers_to_sleeping_bags(split) -> None:
    from zsrec.models.cross_encoder import load_backbone

    model, tokenizer = load_backbone("minilm", 2)
    settings = CrossEncoderTrainingSettings(epochs=1, lr=5e-5, negatives="catalog", level=2, max_length=64)
    texts = PairTexts.build(split.train, ItemTextTemplate(fields=("title",)), UserTextTemplate(), 8)
    train = training_pairs(split.train, texts, settings, "interaction", [0.0, 1.0])
    held_out = task_pairs(split, texts, settings, "interaction", [0.0, 1.0])
    train_cross_encoder(model, tokenizer, train, texts, settings, [0.0, 1.0])
    assert pair_metrics(model, tokenizer, held_out, texts, settings, [0.0, 1.0])["auc"] >= 0.9


def test_fgm_training_runs_through_the_one_adversarial_option(split) -> None:
    model, tokenizer = tiny_shop_classifier()
    attack = AdversarialSettings(method="fgm", epsilon=0.5)
    settings = CrossEncoderTrainingSettings(
        epochs=1, lr=1e-3, negatives="catalog", level=2, adversarial=attack, threads=1
    )
    texts = PairTexts.build(split.train, ItemTextTemplate(fields=("title",)), UserTextTemplate(), 4)
    train = training_pairs(split.train, texts, replace(settings, max_pairs=40), "interaction", [0.0, 1.0])
    weights = model.classifier.weight.detach().clone()
    log = train_cross_encoder(model, tokenizer, train, texts, settings, [0.0, 1.0])
    entry = log["epochs"][0]
    assert entry["adversarial_loss"] > 0 and entry["loss"] > 0
    assert not torch.equal(weights, model.classifier.weight)


def test_settings_round_trip_through_json_shapes() -> None:
    settings = CrossEncoderTrainingSettings(adversarial=AdversarialSettings(method="pgd", steps=2))
    values = asdict(settings)
    values["adversarial"]["augment"] = list(values["adversarial"]["augment"])
    assert CrossEncoderTrainingSettings(**values) == settings
