"""The demo job, and the per-user explanations it shares with `zsrec recommend`.

`run_demo` takes the embedded Complete Journey grocery data, pretends the shop is launching five product
categories it never sold, evaluates every model on them, and picks one household to show what the zero-shot
model recommends from the new categories and why.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from zsrec.data.dataset import CATEGORY_SEP, Dataset
from zsrec.data.splits import EvalSplit, SplitSettings
from zsrec.encoders.templates import UserTextTemplate
from zsrec.errors import ConfigError
from zsrec.evaluation.evaluate import EvalSettings
from zsrec.evaluation.run import (
    ModelRun,
    Reporter,
    SilentReporter,
    check_request,
    evaluate_models,
    prepare_split,
    result_document,
)
from zsrec.models.base import Recommender
from zsrec.models.embedding_source import EmbeddingSource

if TYPE_CHECKING:
    from zsrec.scenarios.examples import ScenarioExamples

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
DEMO_MODELS = ("random", "popularity", "popularity-oracle", "tfidf", "zero-shot-mean", "zero-shot")
EXAMPLE_MODELS = ("zero-shot", "zero-shot-mean")  # the first of these that ran explains the example
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

    def __post_init__(self) -> None:
        if self.min_households < 1:
            raise ConfigError(f"min_households must be >= 1, got {self.min_households}")
        if self.example_k < 1:
            raise ConfigError(f"example_k must be >= 1, got {self.example_k}")

    @classmethod
    def fast(cls) -> DemoSettings:
        """Without the tuned `zero-shot` (its grid search is most of the run) and with 200 resamples."""
        return cls(models=tuple(m for m in DEMO_MODELS if m != "zero-shot"), n_bootstrap=200)


@dataclass(frozen=True)
class Recommendation:
    """One recommended item, with the user's history items most similar to it (the reason)."""

    item_id: str
    title: str
    category: str
    score: float
    because: tuple[tuple[str, float], ...] = ()  # (history item title, cosine), most similar first
    bought: bool | None = None  # in an evaluation: whether the user really chose it (None outside one)


@dataclass(frozen=True)
class UserExample:
    """A user, what they bought lately, and what a model recommends them."""

    user_id: str
    profile: str  # profile text and attributes; "" when nothing is known
    recent: tuple[str, ...]  # distinct titles of the latest history items, newest first
    n_history: int
    recommendations: tuple[Recommendation, ...]
    note: str = ""  # how this user was chosen, when it matters


@dataclass(frozen=True)
class TextMatch:
    """How well a new piece of text (a product not yet in the catalog) fits a user."""

    user_id: str
    text: str
    cosine: float  # between the text's embedding and the user's vector
    similar_history: tuple[tuple[str, float], ...]  # (history item title, cosine), most similar first


@dataclass
class DemoResult:
    reduction: str  # what was cut from the full dataset, in words
    result: dict[str, Any]  # the evaluation's result document (as `zsrec evaluate --out` writes)
    example: UserExample | None
    scenarios: ScenarioExamples | None = None  # one example of each application scenario


# -- the demo ---------------------------------------------------------------------------------------------
def run_demo(settings: DemoSettings | None = None, reporter: Reporter | None = None) -> DemoResult:
    """Reduce Complete Journey, hold out `settings.categories`, evaluate `settings.models` on their items."""
    from zsrec.data.loaders import load_dataset

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
    example = pick_example(runs, split, k=settings.example_k)
    scenarios = None
    if settings.scenarios:
        with reporter.progress("scenario examples", None):
            scenarios = _scenario_examples(data, split, embeddings, example)
    return DemoResult(reduction, result, example, scenarios)


def _scenario_examples(
    data: Dataset, split: EvalSplit, embeddings: EmbeddingSource, example: UserExample | None
) -> ScenarioExamples:
    from zsrec.scenarios.examples import scenario_examples

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
    profiles = _profile_texts(data)
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


# -- per-user explanations (also behind `zsrec recommend`) -------------------------------------------------
def find_user(data: Dataset, user_id: str) -> int:
    """The index of `user_id`; an unknown id raises ConfigError with a few ids that exist."""
    ids = data.users["user_id"].astype(str)
    hits = np.flatnonzero(ids.to_numpy() == str(user_id))
    if len(hits) == 0:
        examples = ", ".join(ids.head(5).tolist())
        raise ConfigError(f"unknown user id {user_id!r} in {data.name} (ids look like: {examples})")
    return int(hits[0])


def items_in_category(data: Dataset, category: str) -> np.ndarray:
    """Items whose category path starts with `category`: a path prefix ("A > B") or a unique name ("B")."""
    name = category.strip()
    paths = data.items["category"].fillna("").astype(str)
    lowered = paths.str.lower()
    key = name.lower()
    mask = ((lowered == key) | lowered.str.startswith(key + CATEGORY_SEP.lower())).to_numpy()
    if name and mask.any():
        return np.flatnonzero(mask)
    prefixes = set()
    for level in range(1, data.category_depth() + 1):
        prefixes |= {p for p in data.category_at(level) if p and p.split(CATEGORY_SEP)[-1].lower() == key}
    if len(prefixes) > 1:
        raise ConfigError(f"category {category!r} is ambiguous: {sorted(prefixes)[:5]}; give the full path")
    if not prefixes:
        some = sorted({p for p in data.category_at(1) if p})[:6]
        raise ConfigError(
            f"category {category!r} not found in {data.name}; give a path prefix or a category name "
            f"(top-level categories include: {some})"
        )
    return items_in_category(data, prefixes.pop())


def explain_recommendations(
    model: Recommender,
    data: Dataset,
    user: int,
    *,
    k: int = 10,
    candidates: np.ndarray | None = None,
    targets: set[int] | None = None,
    note: str = "",
    n_recent: int = 5,
    n_reasons: int = 3,
) -> UserExample:
    """The user's top-`k` unseen items among `candidates`, each with its reasons when the model can explain.

    `data` is the dataset the model was fitted on; histories are the model's (the training view).
    """
    ranking = model.recommend(np.asarray([user]), k=k, candidates=candidates)
    items, scores = ranking.items[0], ranking.scores[0]
    keep = np.isfinite(scores)  # seen items come back as -inf when fewer than k are unseen
    items, scores = items[keep], scores[keep]
    explain = getattr(model, "explain", None)
    # ask for more reasons than shown: different products often share a title, and repeats say nothing
    reasons = explain(user, items, 3 * n_reasons) if callable(explain) and len(items) else [[] for _ in items]
    titles = data.items["title"].to_numpy()
    cats = data.items["category"].to_numpy()
    history = model.histories_[user]
    recs = tuple(
        Recommendation(
            item_id=str(data.items["item_id"].iat[int(i)]),
            title=str(titles[i]),
            category=str(cats[i]),
            score=float(s),
            because=_unique_titles(((str(titles[h]), float(c)) for h, c in why), n_reasons),
            bought=None if targets is None else int(i) in targets,
        )
        for i, s, why in zip(items, scores, reasons, strict=True)
    )
    recent = _unique_titles(((str(titles[h]), 0.0) for h in history[::-1]), n_recent)
    return UserExample(
        user_id=str(data.users["user_id"].iat[user]),
        profile=_profile_texts(data.users.iloc[[user]])[0],
        recent=tuple(title for title, _ in recent),
        n_history=len(history),
        recommendations=recs,
        note=note,
    )


def _unique_titles(pairs: Iterable[tuple[str, float]], limit: int) -> tuple[tuple[str, float], ...]:
    """The first `limit` (title, value) pairs with distinct titles."""
    seen: dict[str, float] = {}
    for title, value in pairs:
        if title not in seen:
            seen[title] = value
            if len(seen) == limit:
                break
    return tuple(seen.items())


def match_text(model: Recommender, data: Dataset, user: int, text: str, *, top: int = 3) -> TextMatch:
    """Score a new text against the user: cosine to their vector, and their most similar history items.

    Needs a zero-shot model (one with text embeddings); the text is placed in the model's embedding space.
    """
    core = getattr(model, "model_", model)  # `zero-shot` wraps the tuned ZeroShotRecommender
    if not (hasattr(core, "item_vectors_") and hasattr(core, "embeddings") and hasattr(core, "user_vectors")):
        raise ConfigError(f"--text needs a zero-shot model (one that embeds text), got {model.name!r}")
    if not text.strip():
        raise ConfigError("--text is empty")
    vector = core.embeddings.texts([text])[0]
    postprocess = core.settings.postprocess
    if postprocess == "center":  # the model subtracted the catalog mean from every item vector: do the same
        raw = core.embeddings.items(data.items, core.settings.template)
        vector = vector - raw.mean(axis=0)
    elif postprocess != "none":
        raise ConfigError(f"--text does not support models with postprocess={postprocess!r} yet")
    vector = vector / max(float(np.linalg.norm(vector)), 1e-12)
    user_vector = core.user_vectors(np.asarray([user]))[0]
    history = np.unique(model.histories_[user])
    sims = core.item_vectors_[history] @ vector if len(history) else np.empty(0)
    titles = data.items["title"].to_numpy()
    ranked = ((str(titles[history[j]]), float(sims[j])) for j in np.argsort(-sims))
    return TextMatch(
        user_id=str(data.users["user_id"].iat[user]),
        text=text,
        cosine=float(user_vector @ vector),
        similar_history=_unique_titles(ranked, top),
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
    from zsrec.models.registry import TEXT_MODELS, ModelContext, build_model

    reporter = reporter or SilentReporter()
    if embeddings is None and name in TEXT_MODELS:
        embeddings = EmbeddingSource(encoder, show_progress=reporter.progress_bars)
    model = build_model(name, ModelContext(embeddings=embeddings, encoder=encoder))
    reporter.message(f"fitting {name} on {data.name}")
    return model.fit(data)


def _profile_texts(users: Any) -> list[str]:
    """Each user's profile text, or their attributes rendered as text when the profile is empty."""
    frame = users.users if isinstance(users, Dataset) else users
    profiles = frame["profile"].fillna("").astype(str).tolist() if "profile" in frame else [""] * len(frame)
    attributes = UserTextTemplate(include_profile=False).render(frame)
    return [p or a for p, a in zip(profiles, attributes, strict=True)]


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
