"""Each scenario's result as readable plain lines (for the CLI and the demo); computed elsewhere, only shown here."""

from __future__ import annotations

from collections.abc import Sequence

from zsrec.data.dataset import CATEGORY_SEP
from zsrec.scenarios.audience import AudienceMember
from zsrec.scenarios.forecast import ChosenForecast
from zsrec.scenarios.profile import InterestTag
from zsrec.scenarios.similar import SimilarItem
from zsrec.scenarios.tasks import ForecastResult


def _reasons(pairs: Sequence[tuple[str, float]]) -> str:
    return "; ".join(f"{title} ({cos:.2f})" for title, cos in pairs) or "–"


def audience_lines(ad: str, members: Sequence[AudienceMember]) -> list[str]:
    lines = [f"audience for: {ad}", f"top {len(members)} users (soft count of history items close to the ad):"]
    for rank, m in enumerate(members, start=1):
        lines.append(f"  {rank:>2}. user {m.user_id}  score {m.score:.3f}  ({m.n_history} items)")
        lines.append(f"      closest purchases: {_reasons(m.because)}")
    return lines


def similar_lines(query: SimilarItem, items: Sequence[SimilarItem], *, other_categories: bool, level: int) -> list[str]:
    where = f", other level-{level} categories only" if other_categories else ""
    lines = [f"items like {query.title} [{query.category}] id {query.item_id}{where}:"]
    for rank, s in enumerate(items, start=1):
        lines.append(f"  {rank:>2}. {s.title} [{s.category}] id {s.item_id}  cosine {s.similarity:.3f}")
    return lines or ["  (no candidate)"]


def forecast_lines(name: str, result: ForecastResult, chosen: ChosenForecast | None = None) -> list[str]:
    f = result.forecast
    lines = [
        f"forecast for {name}: {f.expected_adopters:.1f} of {f.n_users:,} users expected to adopt it "
        f"(Σ of calibrated probabilities; category of {result.category_items} items)",
    ]
    if result.actual is not None:
        lines.append(f"  actually adopted in the data (hidden from the forecast): {result.actual:,}")
    cal = result.calibration
    lines.append(
        f"  calibrated on {len(cal['categories'])} validation categories ({cal['pairs']:,} user-category pairs)"  # type: ignore[arg-type]
    )
    lines.append("  likeliest adopters: " + ", ".join(f"{u} ({p:.2f})" for u, p in f.top_users))
    if chosen is not None:
        errors = ", ".join(f"{m} {e:.2f}" for m, e in chosen.validation_errors.items())
        lines.append(f"  chosen: {chosen_forecast_line(chosen, result.actual)}")
        lines.append(f"  validation error, mean |log((forecast + 1) / (real + 1))| per method: {errors}")
    return lines


def chosen_forecast_line(chosen: ChosenForecast, real: int | None = None) -> str:
    """One line: the chosen method's forecast, its interval, how the method was chosen, and the real count."""
    name = chosen.category.split(CATEGORY_SEP)[-1]
    line = (
        f"{name}: forecast {chosen.adopters:,.0f} adopters ({chosen.coverage:.0%} interval "
        f"{chosen.low:,.0f}–{chosen.high:,.0f}, method: {chosen.method}, "
        f"chosen on {chosen.n_validation} validation categories)"
    )
    return line if real is None else f"{line}; real: {real:,}"


def profile_lines(user_id: str, tags: Sequence[InterestTag], *, new_only: bool = False) -> list[str]:
    kind = "new interests (categories not bought yet)" if new_only else "interests"
    lines = [f"user {user_id}: top {len(tags)} {kind}"]
    for rank, t in enumerate(tags, start=1):
        owned = "bought before" if t.in_history else "not bought yet"
        lines.append(f"  {rank}. {t.tag}  [{t.category}]  score {t.score:.3f}, {owned}")
        lines.append(f"     from: {_reasons(t.because)}")
    return lines
