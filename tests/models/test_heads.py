"""The trained heads: the shared contract, persistence, the seed formula's one ranking, training and stopping."""

from __future__ import annotations

import json
from dataclasses import replace
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from shop_fixtures import tiny_shop

from zsrec.data.splits import SplitSettings, make_split
from zsrec.encoders import HashingEncoder
from zsrec.errors import ConfigError
from zsrec.models.embedding_source import EmbeddingSource
from zsrec.models.heads import (
    HeadRecommender,
    HeadSettings,
    InteractionMlpHead,
    MlpHeadRecommender,
    SeedLinearRecommender,
    TwoTowerHead,
    TwoTowerRecommender,
)
from zsrec.training.adversarial import AdversarialSettings
from zsrec.training.heads import (
    HeadTrainingSettings,
    ScoringHead,
    StuffedNegatives,
    _StuffedPools,
    build_training_pairs,
    history_vectors,
    train_head,
    validation_ndcg,
    validation_task,
)

HEADS: dict[str, type[HeadRecommender]] = {
    "seed-linear": SeedLinearRecommender,
    "two-tower-head": TwoTowerRecommender,
    "mlp-head": MlpHeadRecommender,
}
FAST = HeadTrainingSettings(epochs=8, hidden_dim=16, proj_dim=8)


@pytest.fixture(scope="module")
def split():
    return make_split(tiny_shop(), SplitSettings(categories=("Sleeping Bags",), level=2, min_history=3))


@pytest.fixture(scope="module")
def embeddings(tmp_path_factory) -> EmbeddingSource:
    return EmbeddingSource(HashingEncoder(dim=64), cache_dir=tmp_path_factory.mktemp("cache"))


def _head(name: str, embeddings: EmbeddingSource, training: HeadTrainingSettings = FAST, **kw) -> HeadRecommender:
    return HEADS[name](HeadSettings(training=training, **kw), embeddings=embeddings)


@pytest.fixture(scope="module", params=list(HEADS))
def fitted(request, embeddings, split) -> HeadRecommender:
    return _head(request.param, embeddings).fit(split.train)


# The contract checks run over the heads in tests/models/test_contract.py (every registered model).


def test_save_then_load_scores_identically(fitted, split, tmp_path) -> None:
    fitted.save(tmp_path / "model")
    files = {p.name for p in (tmp_path / "model").iterdir()}
    assert {"config.json", "head.safetensors", "training_log.json"} <= files
    assert not [f for f in files if f.endswith((".pkl", ".pt", ".tmp"))]
    loaded = type(fitted).load(tmp_path / "model")
    users = np.arange(split.train.n_users)
    np.testing.assert_array_equal(loaded.score(users, split.new_items), fitted.score(users, split.new_items))
    assert loaded.settings == fitted.settings
    assert loaded.training_log_ == fitted.training_log_


def test_load_refuses_another_models_folder(fitted, tmp_path) -> None:
    fitted.save(tmp_path / "model")
    other = next(cls for cls in HEADS.values() if cls is not type(fitted))
    with pytest.raises(ValueError, match=fitted.name):
        other.load(tmp_path / "model")


# -- what each head is --------------------------------------------------------------------------------
def test_seed_linear_gives_every_user_the_same_ranking(embeddings, split) -> None:
    model = _head("seed-linear", embeddings).fit(split.train)
    users = np.arange(split.train.n_users)
    scores = model.score(users, np.arange(split.train.n_items))
    assert np.ptp(scores[0]) > 0  # it did learn an item prior (not all ties)
    # the user term is one number per user: scores differ between users only by a constant
    np.testing.assert_allclose(
        scores - scores[:, :1], np.broadcast_to(scores[0] - scores[0, 0], scores.shape), atol=1e-5
    )
    ranking = model.recommend(users, k=5, candidates=np.arange(split.train.n_items), exclude_seen=False)
    assert (ranking.items == ranking.items[0]).all()


def test_untrained_two_tower_and_mlp_heads_rank_like_zero_shot_mean() -> None:
    gen = torch.Generator().manual_seed(0)
    users = torch.nn.functional.normalize(torch.randn(5, 32, generator=gen), dim=1)
    items = torch.nn.functional.normalize(torch.randn(7, 32, generator=gen), dim=1)
    for head in (TwoTowerHead(32, 0, True), TwoTowerHead(32, 16, False), InteractionMlpHead(32, 8, 16, True)):
        torch.testing.assert_close(head.scores(users, items), users @ items.T)


def test_mlp_head_scores_the_mlp_of_the_concatenated_pair_features() -> None:
    # pair_scores splits the first layer by blocks for speed; it must equal the documented formula
    gen = torch.Generator().manual_seed(0)
    head = InteractionMlpHead(32, 8, 16, item_prior=True)
    for p in head.parameters():
        p.data = torch.randn(p.shape, generator=gen)
    users, items = torch.randn(5, 32, generator=gen), torch.randn(7, 32, generator=gen)
    cand = torch.randint(0, 7, (5, 4), generator=gen)
    pu = head.proj(users).unsqueeze(1).expand(-1, 4, -1)
    pi = head.proj(items)[cand]
    mlp = head.mlp(torch.cat([pu, pi, pu * pi, (pu - pi).abs()], dim=-1)).squeeze(-1)
    expected = (users @ items.T).gather(1, cand) + mlp + (items @ head.prior.weight.T).squeeze(1)[cand]
    torch.testing.assert_close(head.pair_scores(users, items, cand), expected, rtol=1e-4, atol=1e-4)


def test_two_tower_and_mlp_users_get_their_own_rankings(embeddings, split) -> None:
    for name in ("two-tower-head", "mlp-head"):
        model = _head(name, embeddings).fit(split.train)
        camper, cook = 0, 1  # tiny shop: even users camp, odd users cook
        scores = model.score(np.array([camper, cook]), np.arange(split.train.n_items))
        assert not np.allclose(scores[0] - scores[0, 0], scores[1] - scores[1, 0])


# -- training -----------------------------------------------------------------------------------------
def test_training_pairs_remove_the_targets_category_from_the_history(embeddings, split) -> None:
    data = split.train
    vectors = embeddings.items(data.items, HeadSettings().template)
    settings = replace(FAST, level=2)
    pairs = build_training_pairs(data, vectors, settings)
    cats, histories = data.category_at(2), data.histories()
    assert len(pairs) == len(data.interactions)  # every tiny-shop user buys in three categories
    for k in range(0, len(pairs), 7):
        u, i = int(pairs.users[k]), int(pairs.items[k])
        rest = np.asarray([j for j in histories[u] if cats[j] != cats[i]])
        np.testing.assert_allclose(
            pairs.inputs(torch.tensor([k]))[0].numpy(), history_vectors([rest], vectors)[0], atol=1e-6
        )
    loo = build_training_pairs(data, vectors, replace(settings, pair_history="leave-one-out"))
    u, i = int(loo.users[0]), int(loo.items[0])
    rest = np.asarray([j for j in histories[u] if j != i])
    np.testing.assert_allclose(loo.inputs(torch.tensor([0]))[0].numpy(), history_vectors([rest], vectors)[0], atol=1e-6)


@pytest.mark.parametrize("name", list(HEADS))
def test_training_loss_decreases(name, embeddings, split) -> None:
    model = _head(name, embeddings, replace(FAST, epochs=10, lr=1e-2)).fit(split.train)
    losses = [e["loss"] for e in model.training_log_["epochs"] if e["loss"] is not None]
    assert len(losses) == 10
    assert losses[-1] < losses[0] - 1e-3


class _Scripted:
    """A validation that returns fixed values in turn and remembers the weights it saw."""

    def __init__(self, values: list[float]) -> None:
        self.values, self.seen = list(values), []

    def __call__(self, head: ScoringHead) -> float:
        self.seen.append({k: v.clone() for k, v in head.state_dict().items()})
        return self.values[len(self.seen) - 1]


def test_early_stopping_keeps_the_best_epochs_weights(embeddings, split) -> None:
    data = split.train
    vectors = embeddings.items(data.items, HeadSettings().template)
    settings = replace(FAST, epochs=10, patience=2, lr=1e-2)
    pairs = build_training_pairs(data, vectors, settings)
    head = TwoTowerHead(vectors.shape[1], 0, False)
    validate = _Scripted([0.1, 0.2, 0.5, 0.4, 0.45, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9])
    log = train_head(head, pairs, torch.from_numpy(vectors), settings, validate=validate)
    assert log["best_epoch"] == 2 and log["best_validation_ndcg@10"] == 0.5
    assert [e["epoch"] for e in log["epochs"]] == [0, 1, 2, 3, 4]  # stopped after `patience` worse epochs
    assert log["stopped_early"]
    final = head.state_dict()
    assert all(torch.equal(final[k], validate.seen[2][k]) for k in final)
    assert not all(torch.equal(final[k], validate.seen[-1][k]) for k in final)


@pytest.mark.parametrize(("gain", "kept"), [(0.01, False), (0.3, True)])
def test_a_trained_epoch_must_beat_the_untrained_head_beyond_noise(embeddings, split, gain, kept) -> None:
    data = split.train
    vectors = embeddings.items(data.items, HeadSettings().template)
    settings = replace(FAST, epochs=1, lr=1e-2)
    pairs = build_training_pairs(data, vectors, settings)
    head = TwoTowerHead(vectors.shape[1], 0, False)
    noise = np.random.default_rng(0).normal(0, 0.3, size=200)  # per-user swings far above a 0.01 mean gain
    noise -= noise.mean()
    start = np.full(200, 0.5)
    seen = []

    def validate(h: ScoringHead) -> np.ndarray:
        seen.append({k: v.clone() for k, v in h.state_dict().items()})
        return start if len(seen) == 1 else start + gain + noise

    log = train_head(head, pairs, torch.from_numpy(vectors), settings, validate=validate)
    assert log["epoch_gate"]["epoch"] == 1 and log["epoch_gate"]["kept"] is kept
    assert log["best_epoch"] == (1 if kept else 0)
    final = head.state_dict()
    assert all(torch.equal(final[k], seen[log["best_epoch"]][k]) for k in final)
    # without the gate the best mean wins, however noisy
    assert (
        train_head(
            head,
            pairs,
            torch.from_numpy(vectors),
            replace(settings, epoch_gate=None),
            validate=lambda h: start + gain + noise,
        )["epoch_gate"]
        is None
    )


def test_training_runs_deterministic_algorithms_and_restores_the_global_setting(embeddings, split) -> None:
    # multi-threaded index_put backward is order-dependent unless deterministic algorithms are on
    data = split.train
    vectors = embeddings.items(data.items, HeadSettings().template)
    settings = replace(FAST, epochs=1)
    pairs = build_training_pairs(data, vectors, settings)
    seen: list[bool] = []

    def validate(head: ScoringHead) -> float:
        seen.append(torch.are_deterministic_algorithms_enabled())
        return 0.0

    assert not torch.are_deterministic_algorithms_enabled()
    train_head(TwoTowerHead(vectors.shape[1], 0, False), pairs, torch.from_numpy(vectors), settings, validate=validate)
    assert seen == [True, True]
    assert not torch.are_deterministic_algorithms_enabled()


def test_fit_stops_on_validation_categories_carved_from_its_data(embeddings, split) -> None:
    # seed 1 holds out two tiny-shop categories with enough users for a validation task
    # (the epoch gate off: this is about early stopping; the gate has its own test)
    training = replace(FAST, seed=1, min_validation_users=5, min_history=1, patience=2, epochs=6, epoch_gate=None)
    model = _head("two-tower-head", embeddings, training).fit(split.train)
    log = model.training_log_
    assert log["validation"]["users"] >= 5
    assert not set(log["validation"]["categories"]) & set(split.heldout_categories)
    curve = [e["validation_ndcg@10"] for e in log["epochs"]]
    assert log["best_epoch"] == int(np.argmax(curve))
    task = validation_task(split.train, model.item_vectors_, training)
    assert np.mean(validation_ndcg(model.head_, task)) == pytest.approx(max(curve), abs=1e-9)


def test_fitting_twice_with_one_seed_gives_the_same_model(embeddings, split) -> None:
    a = _head("mlp-head", embeddings, item_prior=True).fit(split.train)
    b = _head("mlp-head", embeddings, item_prior=True).fit(split.train)
    users = np.arange(split.train.n_users)
    np.testing.assert_array_equal(a.score(users, split.new_items), b.score(users, split.new_items))


def test_profile_text_joins_the_user_vector_and_survives_saving(embeddings, split, tmp_path) -> None:
    model = _head("two-tower-head", embeddings, profile_weight=0.5).fit(split.train)
    plain = _head("two-tower-head", embeddings).fit(split.train)
    users = np.arange(4)
    assert not np.allclose(model.score(users, split.new_items), plain.score(users, split.new_items))
    model.save(tmp_path / "m")
    loaded = TwoTowerRecommender.load(tmp_path / "m")
    np.testing.assert_array_equal(loaded.score(users, split.new_items), model.score(users, split.new_items))


# -- adversarial training: stuffed negatives ----------------------------------------------------------------
STUFFING = AdversarialSettings(augment=("stuffing",), augment_prob=1.0)


def test_stuffed_copies_come_from_the_batch_pool_and_never_copy_a_positive(embeddings, split) -> None:
    data = split.train
    vectors = embeddings.items(data.items, HeadSettings().template)
    settings = replace(FAST, level=2)
    pairs = build_training_pairs(data, vectors, settings)
    n = data.n_items
    stuffed = StuffedNegatives(torch.arange(n), torch.zeros(n, vectors.shape[1]), prob=0.5)
    pools = _StuffedPools(pairs, stuffed, n, settings)
    gen = torch.Generator().manual_seed(0)
    for group, members in enumerate(pairs.group_items):
        positives = members[:1]
        sizes = []
        for _ in range(100):
            rows = pools.draw(group, positives, gen)
            assert (rows >= n).all()  # stuffed copies sit after the catalog's rows
            drawn = stuffed.items[rows - n].tolist()
            assert set(drawn) <= set(members.tolist()) - {int(positives[0])} and len(set(drawn)) == len(drawn)
            sizes.append(len(rows))
        if len(members) > 1:
            assert 0.3 < np.mean(sizes) < 0.7  # about prob per positive


def test_stuffing_training_pushes_stuffed_copies_below_their_originals(embeddings, split) -> None:
    # small batches: a tiny-shop batch of 256 pairs holds every item of its category as a positive, and a
    # positive's own stuffed copy is never its negative. Raw vectors: on the tiny shop's hashing vectors,
    # stuffing pays an uncentred head (the situation the training is for); centred ones already resist it.
    training = replace(FAST, epochs=10, lr=1e-2, batch_size=8, postprocess="none")
    plain = _head("two-tower-head", embeddings, training).fit(split.train)
    tough = _head("two-tower-head", embeddings, replace(training, adversarial=STUFFING)).fit(split.train)
    stuffed = tough._stuffed(split.train, split.train)
    assert stuffed is not None and len(stuffed.items) > 0
    assert set(stuffed.items.tolist()) <= set(split.train.interactions["item"].tolist())  # training items only
    assert not set(stuffed.items.tolist()) & set(split.new_items.tolist())  # never a held-out item

    def stuffing_gain(model: HeadRecommender) -> float:
        users = torch.from_numpy(model.user_vectors_)
        originals = torch.from_numpy(model.item_vectors_[stuffed.items.numpy()])
        return float((model.head_.scores(users, stuffed.vectors) - model.head_.scores(users, originals)).mean())

    assert stuffing_gain(tough) < stuffing_gain(plain)
    assert plain._stuffed(split.train, split.train) is None  # without the setting nothing is stuffed


def test_no_gain_training_pushes_stuffed_copies_below_their_originals_too(embeddings, split) -> None:
    training = replace(FAST, epochs=10, lr=1e-2, batch_size=8, postprocess="none")  # raw: see the test above
    no_gain = replace(STUFFING, stuffing_loss="no-gain", weight=2.0)
    plain = _head("two-tower-head", embeddings, training).fit(split.train)
    tough = _head("two-tower-head", embeddings, replace(training, adversarial=no_gain)).fit(split.train)
    stuffed = tough._stuffed(split.train, split.train)
    assert stuffed is not None and stuffed.no_gain and stuffed.weight == 2.0

    def mean_gain(model: HeadRecommender) -> float:
        """Mean of score(u, stuffed copy) - score(u, its original) over users and copies."""
        users = torch.from_numpy(model.user_vectors_)
        originals = torch.from_numpy(model.item_vectors_[stuffed.items.numpy()])
        return float((model.head_.scores(users, stuffed.vectors) - model.head_.scores(users, originals)).mean())

    assert mean_gain(tough) < 0 < mean_gain(plain)  # on the tiny shop, stuffing pays the plain head


def test_the_encoder_trainer_refuses_the_heads_no_gain_loss() -> None:
    from zsrec.training.contrastive import ContrastiveSettings

    with pytest.raises(ConfigError, match="no-gain"):
        ContrastiveSettings(adversarial=replace(STUFFING, stuffing_loss="no-gain"))
    with pytest.raises(ConfigError, match="stuffing_loss must be one of"):
        AdversarialSettings(stuffing_loss="ignore")


def test_a_head_rereads_tampered_item_text_without_retraining(fitted, split) -> None:
    data = split.train
    same = fitted.with_item_text(data)
    users = np.arange(data.n_users)
    np.testing.assert_array_equal(same.score(users, split.new_items), fitted.score(users, split.new_items))
    target = int(split.new_items[0])  # a held-out item: in no history, so no user vector moves
    items = data.items.copy()
    items.loc[target, "title"] = items.loc[target, "title"] + " plus entirely different words"
    tampered = fitted.with_item_text(replace(data, items=items))
    before, after = fitted.score(users, split.new_items), tampered.score(users, split.new_items)
    assert not np.allclose(before[:, 0], after[:, 0])
    np.testing.assert_allclose(before[:, 1:], after[:, 1:], atol=1e-6)
    assert tampered.head_ is fitted.head_  # the weights are shared, not retrained
    with pytest.raises(ConfigError, match="same catalog"):
        fitted.with_item_text(replace(data, items=items.iloc[:-1]))


def test_heads_take_only_stuffed_negatives_and_keep_them_in_their_config() -> None:
    for bad in (AdversarialSettings(method="fgm"), AdversarialSettings(augment=("typos", "stuffing"))):
        with pytest.raises(ConfigError, match="only adversarial augment=stuffing"):
            HeadTrainingSettings(adversarial=bad)
    settings = HeadSettings(training=HeadTrainingSettings(adversarial=STUFFING))
    assert HeadSettings.from_dict(json.loads(json.dumps(settings.to_dict()))) == settings


# -- settings -----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "bad",
    [
        {"epochs": 0},
        {"batch_size": 0},
        {"lr": 0.0},
        {"weight_decay": -1.0},
        {"temperature": 0.0},
        {"loss": "hinge"},
        {"negatives": "popular"},
        {"n_negatives": -1},
        {"hidden_dim": -1},
        {"proj_dim": 0},
        {"pair_history": "all"},
        {"max_pairs": 0},
        {"patience": 0},
        {"level": 0},
        {"validation_fraction": 1.0},
        {"min_history": 0},
        {"threads": 0},
        {"postprocess": "whiten"},
    ],
)
def test_bad_training_settings_name_the_setting(bad) -> None:
    with pytest.raises(ConfigError, match=next(iter(bad))):
        HeadTrainingSettings(**bad)


def test_no_negatives_at_all_is_refused() -> None:
    with pytest.raises(ConfigError, match="n_negatives"):
        HeadTrainingSettings(n_negatives=0, in_batch_negatives=False)
    HeadTrainingSettings(n_negatives=0, in_batch_negatives=True)  # in-batch ones alone are fine


def test_bad_head_settings_name_the_setting() -> None:
    with pytest.raises(ConfigError, match="profile_weight"):
        HeadSettings(profile_weight=-0.1)
    with pytest.raises(ConfigError, match="hidden_dim"):
        InteractionMlpHead(8, 4, 0, False)


def test_head_settings_round_trip_through_json_dict() -> None:
    s = HeadSettings(profile_weight=0.5, item_prior=True, training=HeadTrainingSettings(loss="bpr", seed=3))
    assert HeadSettings.from_dict(s.to_dict()) == s


def test_each_epoch_is_reported_as_it_ends(embeddings, split) -> None:
    training = replace(FAST, seed=1, min_validation_users=5, min_history=1, patience=2, epochs=3)
    model = _head("two-tower-head", embeddings, training)
    lines: list[str] = []
    model.reporter = SimpleNamespace(message=lines.append)
    model.fit(split.train)
    epochs = [e["epoch"] for e in model.training_log_["epochs"]]
    assert [line.split(",")[0] for line in lines] == [f"two-tower-head epoch {e}" for e in epochs]
    assert all("validation NDCG@10" in line for line in lines)
    assert model.n_trainable_params_ == sum(p.numel() for p in model.head_.parameters()) > 0


def test_a_centred_head_reads_zero_shots_centred_vectors_and_keeps_the_training_mean(
    embeddings, split, tmp_path
) -> None:
    from zsrec.models.interests import postprocess_embeddings

    model = _head("mlp-head", embeddings, replace(FAST, postprocess="center", epochs=2)).fit(split.train)
    raw = np.asarray(embeddings.items(split.train.items, model.settings.template), dtype=np.float32)
    np.testing.assert_allclose(model.item_vectors_, postprocess_embeddings(raw, "center"), atol=1e-6)
    # a tampered catalog is centred with the training catalog's mean, not its own: other items do not move
    items = split.train.items.copy()
    target = int(split.new_items[0])
    items.loc[target, "title"] = items.loc[target, "title"] + " plus entirely different words"
    tampered = model.with_item_text(replace(split.train, items=items))
    others = np.arange(split.train.n_items) != target
    np.testing.assert_array_equal(tampered.item_vectors_[others], model.item_vectors_[others])
    assert not np.allclose(tampered.item_vectors_[target], model.item_vectors_[target])
    # the mean travels with the saved model
    model.save(tmp_path / "m")
    loaded = MlpHeadRecommender.load(tmp_path / "m")
    np.testing.assert_array_equal(loaded.catalog_mean_, model.catalog_mean_)
    users = np.arange(split.train.n_users)
    np.testing.assert_array_equal(loaded.score(users, split.new_items), model.score(users, split.new_items))
    plain = _head("mlp-head", embeddings, replace(FAST, epochs=1, postprocess="none")).fit(split.train)
    assert not plain.catalog_mean_.any()
    np.testing.assert_allclose(plain.item_vectors_, raw, atol=1e-6)
