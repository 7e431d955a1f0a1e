"""The demo job (the per-user explanations it shares with `zsrec recommend` live in `zsrec.models.explain`).

`run_demo` takes the embedded Complete Journey grocery data, pretends the shop is launching five product
categories it never sold, evaluates every model on them, and picks one household to show what the zero-shot
model recommends from the new categories and why.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from zsrec.data.dataset import CATEGORY_SEP, Dataset
from zsrec.data.loaders import load_dataset
from zsrec.data.lookup import find_user, items_in_category
from zsrec.data.splits import EvalSplit, SplitSettings
from zsrec.errors import ConfigError
from zsrec.evaluation.evaluate import EvalSettings
from zsrec.evaluation.run import (
    ModelRun,
    RunOptions,
    check_request,
    evaluate_models,
    prepare_split,
    result_document,
)
from zsrec.evaluation.warmup import warmup_document
from zsrec.models.base import Recommender
from zsrec.models.embedding_source import EmbeddingSource
from zsrec.models.explain import (
    Recommendation,
    TextMatch,
    UserExample,
    explain_recommendations,
    match_text,
    profile_texts,
)
from zsrec.models.registry import ModelContext, build_model, text_models
from zsrec.reporting import Reporter, SilentReporter
from zsrec.scenarios.examples import ScenarioExamples, scenario_examples

DEMO_DATASET = "completejourney"
# Level-2 categories (department > product category) the shop "launches": each has a few hundred to a
# thousand and more buying households, and a clear link to what else a household buys (cat litter, diapers…).
DEMO_CATEGORIES = (
    "Grocery > Cat Food",
    "Drug GM > Baby Foods",
    "Grocery > Beers/Ales",
    "Grocery > Coffee",
    "Grocery > Frozen Pizza",
)
DEMO_MODELS = ("random", "popularity", "popularity-oracle", "tfidf", "bm25", "zero-shot", "launch-ranker")
EXAMPLE_MODELS = ("launch-ranker", "zero-shot", "zero-shot-mean")  # the first of these that ran explains the example
# After launch: the first adopters' purchases are revealed (earliest first) and every model may use them.
WARMUP_SHARES = ("0.01", "0.02", "0.05")
WARMUP_MODELS = ("popularity", "als", "tfidf", "launch-ranker")
# The scenario examples' ad: a product text for one of the held-out categories.
DEMO_AD = ("Drug GM > Baby Foods", "Organic baby food puree for infants, 6 months and up")


@dataclass(frozen=True)
class DemoSettings:
    """What the demo runs; `fast()` trades sample size for speed."""

    min_households: int = 30  # keep products bought by at least this many households (speed)
    categories: tuple[str, ...] = DEMO_CATEGORIES  # held-out level-2 categories
    models: tuple[str, ...] = DEMO_MODELS
    n_bootstrap: int = 1000  # resamples for the NDCG@10 confidence interval
    encoder: str = "minilm"
    example_k: int = 5  # recommendations shown for the example household
    scenarios: bool = True  # also one example of each application scenario (forecast, audience, ...)
    warmup: tuple[str, ...] = WARMUP_SHARES  # shares of adopters revealed after launch (empty: launch only)

    def __post_init__(self) -> None:
        if self.min_households < 1:
            raise ConfigError(f"min_households must be >= 1, got {self.min_households}")
        if self.example_k < 1:
            raise ConfigError(f"example_k must be >= 1, got {self.example_k}")

    @classmethod
    def fast(cls) -> DemoSettings:
        """Without the separate `zero-shot` (`launch-ranker` holds it), one warm-up step, 200 resamples."""
        return cls(models=tuple(m for m in DEMO_MODELS if m != "zero-shot"), n_bootstrap=200, warmup=("0.02",))


@dataclass
class DemoResult:
    reduction: str  # what was cut from the full dataset, in words
    result: dict[str, Any]  # the evaluation's result document (as `zsrec evaluate --out` writes)
    example: UserExample | None
    scenarios: ScenarioExamples | None = None  # one example of each application scenario
    warmup: dict[str, Any] | None = None  # the warm-up evaluation (`zsrec evaluate --reveal`'s document)


# -- the demo ---------------------------------------------------------------------------------------------
def run_demo(settings: DemoSettings | None = None, reporter: Reporter | None = None) -> DemoResult:
    """Reduce Complete Journey, hold out `settings.categories`, evaluate `settings.models` on their items."""
    settings = settings or DemoSettings()
    reporter = reporter or SilentReporter()
    split_settings = SplitSettings(level=2, categories=settings.categories)
    eval_settings = EvalSettings(pools=("new",), n_bootstrap=settings.n_bootstrap)
    names = check_request(settings.models, split_settings, eval_settings)

    with reporter.progress(f"loading {DEMO_DATASET}", None):
        full = load_dataset(DEMO_DATASET)
    for line in full.warnings:
        reporter.warning(line)
    data = keep_popular_items(full, settings.min_households)
    reduction = (
        f"kept the {data.n_items:,} of {full.n_items:,} products bought by at least "
        f"{settings.min_households} households ({len(data.interactions):,} of "
        f"{len(full.interactions):,} purchases), so that encoding their text takes minutes"
    )
    data, split = prepare_split(data, split_settings, reporter)
    embeddings = EmbeddingSource(settings.encoder, show_progress=reporter.progress_bars)
    runs = evaluate_models(
        split, names, eval_settings, encoder=settings.encoder, embeddings=embeddings, reporter=reporter
    )
    result = result_document(data, split, split_settings, runs, encoder=settings.encoder, command=["zsrec", "demo"])
    warmup = None
    if settings.warmup:
        warmup = warmup_document(
            data,
            split,
            split_settings,
            WARMUP_MODELS,
            EvalSettings(ks=(10,), pools=("new",), n_bootstrap=0),
            RunOptions(encoder=settings.encoder, embeddings=embeddings, reporter=reporter),
            reveal=settings.warmup,
        )
    example = pick_example(runs, split, k=settings.example_k)
    scenarios = None
    if settings.scenarios:
        with reporter.progress("scenario examples", None):
            scenarios = _scenario_examples(data, split, embeddings, example)
    return DemoResult(reduction, result, example, scenarios, warmup)


def _scenario_examples(
    data: Dataset, split: EvalSplit, embeddings: EmbeddingSource, example: UserExample | None
) -> ScenarioExamples:
    category, text = DEMO_AD
    if category not in split.heldout_categories:  # other held-out categories: advertise the first by its name
        category = split.heldout_categories[0]
        text = category.split(CATEGORY_SEP)[-1]
    user = find_user(split.train, example.user_id) if example is not None else int(split.test_users[0])
    return scenario_examples(data, split, embeddings, ad_text=text, ad_category=category, profile_user=user)


def keep_popular_items(data: Dataset, min_users: int) -> Dataset:
    """The dataset restricted to items with at least `min_users` distinct users."""
    per_item = np.bincount(data.interactions["item"].to_numpy(), minlength=data.n_items)  # one row per pair
    return data.subset_items(per_item >= min_users, reason=f"bought by fewer than {min_users} households")


def pick_example(runs: Sequence[ModelRun], split: EvalSplit, *, k: int) -> UserExample | None:
    """The test household with profile text whose top `k` new items hold the most of its held-out purchases.

    Ties go to the shortest history (its reasons are easiest to read). Chosen for readability, not at
    random, and the example's note says so.
    """
    by_name = {run.name: run.model for run in runs}
    name = next((n for n in EXAMPLE_MODELS if n in by_name), None)
    if name is None:
        return None
    model, data = by_name[name], split.train
    profiles = profile_texts(data)
    users = [int(u) for u in split.test_users if profiles[int(u)]]
    if not users:
        return None
    targets = {int(u): set(t.tolist()) for u, t in zip(split.test_users, split.targets, strict=True)}
    top = model.recommend(np.asarray(users), k=k, candidates=split.new_items).items
    hits = [len(targets[u] & set(top[row].tolist())) for row, u in enumerate(users)]
    row = min(range(len(users)), key=lambda r: (-hits[r], len(model.histories_[users[r]]), r))
    note = (
        f"{name}; the household with demographics whose top {k} holds the most of its held-out purchases"
        if hits[row]
        else f"{name}; no household with demographics has a held-out purchase in its top {k}"
    )
    return explain_recommendations(
        model, data, users[row], k=k, candidates=split.new_items, targets=targets[users[row]], note=note
    )


def fit_model(
    data: Dataset,
    name: str,
    *,
    encoder: str = "minilm",
    embeddings: EmbeddingSource | None = None,
    reporter: Reporter | None = None,
) -> Recommender:
    """Build the named model and fit it on all of `data` (outside an evaluation, so no leak model)."""
    reporter = reporter or SilentReporter()
    if embeddings is None and name in text_models():
        embeddings = EmbeddingSource(encoder, show_progress=reporter.progress_bars)
    model = build_model(name, ModelContext(embeddings=embeddings, encoder=encoder))
    reporter.message(f"fitting {name} on {data.name}")
    return model.fit(data)


__all__ = [
    "DemoResult",
    "DemoSettings",
    "Recommendation",
    "TextMatch",
    "UserExample",
    "explain_recommendations",
    "find_user",
    "fit_model",
    "items_in_category",
    "keep_popular_items",
    "match_text",
    "run_demo",
]
