"""Rich tables built from an evaluation's result document (`run.result_document`); no metric computed here."""

from __future__ import annotations

import re
from typing import Any

from rich.markup import escape
from rich.table import Table

from zsrec.models.explain import TextMatch, UserExample

#: models that read the test targets: shown as a ceiling, never as a contender
LEAK_MODELS = frozenset({"popularity-oracle"})
_NDCG = re.compile(r"ndcg@(\d+)$")


def display_name(model: str) -> str:
    return f"{model} (leak)" if model in LEAK_MODELS else model


def result_pools(result: dict[str, Any]) -> list[str]:
    """The candidate pools of a result document, in the order they were evaluated."""
    pools: list[str] = []
    for per_pool in result["results"].values():
        pools += [p for p in per_pool if p not in pools]
    return pools


def result_tables(result: dict[str, Any]) -> list[Table]:
    """One metrics table per candidate pool."""
    return [metrics_table(result, pool) for pool in result_pools(result)]


def metrics_table(result: dict[str, Any], pool: str) -> Table:
    """Models × metrics on one pool: NDCG with its bootstrap CI, Recall and HR at each k, MRR, AUC, coverage.

    The best value of each column among non-leaking models is bold.
    """
    rows = {m: per_pool[pool] for m, per_pool in result["results"].items() if pool in per_pool}
    first = next(iter(rows.values()))
    ks = sorted(int(m.group(1)) for key in first if (m := _NDCG.match(key)))
    columns = [f"ndcg@{k}" for k in ks] + [f"recall@{k}" for k in ks] + [f"hr@{k}" for k in ks]
    columns += ["mrr", "auc"] + [key for key in first if key.startswith("coverage@")]
    ci_column = f"ndcg@{ks[0]}" if ks else ""
    has_ci = any(f"{ci_column}_ci" in r for r in rows.values())

    table = Table(
        title=f"{pool} pool: {first['n_candidates']:,} candidates, {first['n_users']:,} test users",
        title_justify="left",
    )
    table.add_column("model", no_wrap=True)
    for column in columns:
        table.add_column(column, justify="right")
        if has_ci and column == ci_column:
            table.add_column("95% CI", justify="right", no_wrap=True)
    best = {c: _best(rows, c) for c in columns}
    for model, metrics in rows.items():
        cells = [display_name(model)]
        for column in columns:
            value = metrics.get(column)
            cells.append(_cell(value, bold=value == best[column] and model not in LEAK_MODELS))
            if has_ci and column == ci_column:
                cells.append(_interval(metrics.get(f"{ci_column}_ci")))
        table.add_row(*cells, style="dim" if model in LEAK_MODELS else None)
    if any(m in LEAK_MODELS for m in rows):
        table.caption = "(leak): ranks by the test users' own choices; a ceiling for reference, not a model"
    return table


def per_category_table(result: dict[str, Any], pool: str, metric: str = "ndcg@10") -> Table | None:
    """Held-out categories × models for one metric (None when the results have no per-category part)."""
    rows: dict[str, dict[str, float | None]] = {}
    users: dict[str, int] = {}
    models = [m for m, per_pool in result["results"].items() if pool in per_pool]
    for model in models:
        for cat, metrics in result["results"][model][pool].get("per_category", {}).items():
            rows.setdefault(cat, {})[model] = metrics.get(metric)
            users[cat] = metrics.get("n_users", 0)
    if not rows:
        return None
    table = Table(title=f"{metric} per held-out category ({pool} pool)", title_justify="left")
    table.add_column("category")
    table.add_column("users", justify="right")
    for model in models:
        table.add_column(display_name(model), justify="right")
    for cat, values in rows.items():
        table.add_row(cat, f"{users[cat]:,}", *(_cell(values.get(m)) for m in models))
    return table


def _best(rows: dict[str, dict[str, Any]], column: str) -> float | None:
    values = [m.get(column) for name, m in rows.items() if name not in LEAK_MODELS]
    values = [v for v in values if isinstance(v, int | float)]
    return max(values) if values else None


def _number(value: object) -> str:
    return f"{value:.4f}" if isinstance(value, int | float) else "–"


def _cell(value: object, *, bold: bool = False) -> str:
    text = _number(value)
    return f"[bold]{text}[/bold]" if bold and value is not None else text


def _interval(ci: object) -> str:
    if isinstance(ci, list | tuple) and len(ci) == 2 and None not in ci:
        return escape(f"[{_number(ci[0])}, {_number(ci[1])}]")
    return ""


def summary_table(summary: dict[str, Any]) -> Table:
    """The `zsrec validate` overview of a dataset (from `zsrec.data.summarize`)."""
    table = Table(title=f"dataset {summary['name']}", title_justify="left", show_header=False)
    table.add_column("what")
    table.add_column("value", overflow="fold")
    levels = ", ".join(f"level {lvl}: {n:,}" for lvl, n in summary["categories_per_level"].items())
    rows = [
        ("items", f"{summary['n_items']:,}"),
        ("users", f"{summary['n_users']:,} ({summary['n_active_users']:,} with interactions)"),
        ("interactions", f"{summary['n_interactions']:,}"),
        ("categories", levels or "none"),
        ("items without category", f"{summary['items_without_category']:,}"),
        ("users spanning >= 2 top-level categories", f"{summary['share_users_multi_category']:.1%}"),
        ("users with a single interaction", f"{summary['share_users_single_interaction']:.1%}"),
        ("timestamps", "from the data" if summary["has_timestamps"] else "none (file order stands in)"),
        ("user profiles", "yes" if summary["has_user_profiles"] else "no"),
        ("cleaning warnings", f"{len(summary['warnings'])}"),
    ]
    for name, value in rows:
        table.add_row(name, escape(value))
    return table


def user_example_table(example: UserExample, *, title: str = "") -> Table:
    """A user's recommendations with the history items behind each (the model's explanation)."""
    table = Table(title=title or f"recommendations for user {example.user_id}", title_justify="left")
    table.add_column("#", justify="right")
    table.add_column("item")
    table.add_column("score", justify="right")
    table.add_column("because they bought (cosine)")
    shows_bought = any(r.bought is not None for r in example.recommendations)
    if shows_bought:
        table.add_column("bought?", justify="center")
    for rank, rec in enumerate(example.recommendations, start=1):
        because = "\n".join(f"{title} ({cos:.2f})" for title, cos in rec.because) or "–"
        item = f"{rec.title}\n[{rec.category}] id {rec.item_id}"
        cells = [str(rank), escape(item), f"{rec.score:.3f}", escape(because)]
        if shows_bought:
            cells.append("yes" if rec.bought else "")
        table.add_row(*cells)
    return table


def user_header_lines(example: UserExample) -> list[str]:
    """Plain lines introducing the user: profile text and latest history, newest first."""
    lines = [f"user {example.user_id}" + (f" ({example.note})" if example.note else "")]
    lines.append(f"profile: {example.profile or '(none)'}")
    lines.append(f"history: {example.n_history:,} items; the latest, newest first:")
    lines += [f"  - {title}" for title in example.recent]
    return lines


def text_match_lines(match: TextMatch) -> list[str]:
    lines = [f"text: {match.text}", f"cosine to user {match.user_id}'s vector: {match.cosine:.3f}"]
    if match.similar_history:
        lines.append("most similar items in their history:")
        lines += [f"  - {title} ({cos:.3f})" for title, cos in match.similar_history]
    else:
        lines.append("the user has no history to compare with")
    return lines
