"""Per-user explanations of a fitted model's recommendations (the demo's example, `zsrec recommend`), and how
well a new text fits a user (`--text`)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

from zsrec.data.dataset import Dataset
from zsrec.encoders.templates import UserTextTemplate
from zsrec.errors import ConfigError
from zsrec.models.base import Explainable, HasUserVectors, Recommender
from zsrec.models.tuned import TunedZeroShot
from zsrec.vectors import catalog_mean


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
    # ask for more reasons than shown: different products often share a title, and repeats say nothing
    explainable = isinstance(model, Explainable) and len(items)
    reasons = model.explain(user, items, 3 * n_reasons) if explainable else [[] for _ in items]
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
        profile=profile_texts(data.users.iloc[[user]])[0],
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
    core = model.model_ if isinstance(model, TunedZeroShot) else model  # `zero-shot` wraps a ZeroShotRecommender
    if not isinstance(core, HasUserVectors):
        raise ConfigError(f"--text needs a zero-shot model (one that embeds text), got {model.name!r}")
    if not text.strip():
        raise ConfigError("--text is empty")
    vector = core.embeddings.texts([text])[0]
    postprocess = core.settings.postprocess
    if postprocess == "center":  # the model subtracted the catalog mean from every item vector: do the same
        vector = vector - catalog_mean(core.embeddings.items(data.items, core.settings.template))
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


def profile_texts(users: Any) -> list[str]:
    """Each user's profile text, or their attributes rendered as text when the profile is empty."""
    frame = users.users if isinstance(users, Dataset) else users
    profiles = frame["profile"].fillna("").astype(str).tolist() if "profile" in frame else [""] * len(frame)
    attributes = UserTextTemplate(include_profile=False).render(frame)
    return [p or a for p, a in zip(profiles, attributes, strict=True)]
