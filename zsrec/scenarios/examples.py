"""One readable example of each scenario for the demo, on its held-out categories (seconds, embeddings cached)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from zsrec.data.dataset import Dataset
from zsrec.data.splits import EvalSplit
from zsrec.models.embedding_source import EmbeddingSource
from zsrec.scenarios.adoption import AdoptionSettings, adoption_labels, eligible_users, fit_category_adoption
from zsrec.scenarios.audience import AudienceMember, rank_audience
from zsrec.scenarios.forecast import ChosenForecast, choose_forecast, forecast_categories
from zsrec.scenarios.profile import InterestTag, interest_tags
from zsrec.scenarios.report import chosen_forecast_line, profile_lines, similar_lines
from zsrec.scenarios.similar import SimilarItem, similar_items
from zsrec.scenarios.tasks import item_vectors


@dataclass(frozen=True)
class ScenarioExamples:
    forecast: tuple[tuple[str, float, int], ...]  # (held-out category, calibrated expected adopters, real ones)
    forecast_users: int
    ad_text: str
    ad_category: str
    audience: tuple[AudienceMember, ...]
    audience_bought: tuple[bool, ...]  # whether each listed user really bought from `ad_category`
    ad_category_rate: float  # share of all ranked users who bought from it
    similar_query: SimilarItem
    similar: tuple[SimilarItem, ...]
    profile_user: str
    profile: tuple[InterestTag, ...]
    # per held-out category, the forecast by the method that did better on validation categories
    chosen_forecasts: tuple[ChosenForecast, ...] = ()


def scenario_examples(
    data: Dataset,
    split: EvalSplit,
    embeddings: EmbeddingSource,
    *,
    ad_text: str,
    ad_category: str,
    profile_user: int,
    k: int = 3,
) -> ScenarioExamples:
    """Forecast the held-out categories, target an ad for one of them, find cross-department neighbours of the
    best-selling item, and profile one user; all from `split.train` (the held-out purchases only to compare)."""
    level = split.level or 2
    train = split.train
    adoption = fit_category_adoption(train, AdoptionSettings(level=level, validation_folds=1), embeddings)
    cats = list(split.heldout_categories)
    users = eligible_users(train, adoption.settings.min_history)
    actual = adoption_labels(data, users, level, cats).sum(axis=0)
    forecasts = forecast_categories(adoption, cats)
    chosen, _ = choose_forecast(
        train, cats, embeddings, adoption.settings, calibrated=[f.expected_adopters for f in forecasts]
    )
    vectors = item_vectors(train, embeddings)
    ad = embeddings.texts([ad_text])[0]
    ad = ad / max(float(np.linalg.norm(ad)), 1e-12)
    members = rank_audience(train, vectors, ad, k=k)
    bought = adoption_labels(data, users, level, [ad_category])[:, 0]
    by_id = dict(zip(data.users["user_id"].to_numpy()[users].astype(str), bought, strict=True))
    counts = np.bincount(train.interactions["item"].to_numpy(), minlength=train.n_items)
    top_item = int(np.argmax(counts))
    row = train.items.iloc[top_item]
    query = SimilarItem(str(row["item_id"]), str(row["title"]), str(row["category"]), 1.0)
    return ScenarioExamples(
        forecast=tuple((c, f.expected_adopters, int(a)) for c, f, a in zip(cats, forecasts, actual, strict=True)),
        forecast_users=len(users),
        ad_text=ad_text,
        ad_category=ad_category,
        audience=tuple(members),
        audience_bought=tuple(bool(by_id.get(m.user_id, False)) for m in members),
        ad_category_rate=float(bought.mean()),
        similar_query=query,
        similar=tuple(similar_items(train, vectors, top_item, k=k, other_categories=True, level=1)),
        profile_user=str(data.users["user_id"].iat[profile_user]),
        profile=tuple(interest_tags(adoption.scorer, profile_user, k=k, new_only=True)),
        chosen_forecasts=tuple(chosen),
    )


def example_lines(ex: ScenarioExamples) -> list[str]:
    """The examples as plain lines, one short block per scenario."""
    lines = [f"Trend forecast (adopters among {ex.forecast_users:,} households; real adopters hidden):"]
    if ex.chosen_forecasts:
        real = {c: a for c, _, a in ex.forecast}
        lines += [f"  {chosen_forecast_line(f, real.get(f.category))}" for f in ex.chosen_forecasts]
    else:
        lines += [f"  {c:<28} expected {e:7.1f}   real {a:5d}" for c, e, a in ex.forecast]
    hits = sum(ex.audience_bought)
    lines += [
        "",
        f'Audience for the ad "{ex.ad_text}" — {hits} of the top {len(ex.audience)} households really bought '
        f"{ex.ad_category} (never seen by the model), against {ex.ad_category_rate:.0%} of all households:",
    ]
    for rank, (m, b) in enumerate(zip(ex.audience, ex.audience_bought, strict=True), start=1):
        closest = "; ".join(t for t, _ in m.because[:2])
        lines.append(f"  {rank}. household {m.user_id}{' (bought it)' if b else ''}: buys {closest}")
    lines += ["", "Cross-category: " + similar_lines(ex.similar_query, ex.similar, other_categories=True, level=1)[0]]
    lines += similar_lines(ex.similar_query, ex.similar, other_categories=True, level=1)[1:]
    lines += ["", "Interest profile: " + profile_lines(ex.profile_user, ex.profile, new_only=True)[0]]
    lines += profile_lines(ex.profile_user, ex.profile, new_only=True)[1:]
    return lines
