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
    columns += [key for key in first if key.startswith("new_share@") or key.endswith(("_new", "_warm"))]  # launch
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


# -- many draws and the warm-up protocol -------------------------------------------------------------------
def evaluation_tables(result: dict[str, Any]) -> list[Table]:
    """The tables `zsrec evaluate` prints for any of its documents: one evaluation (metrics per pool, and per
    held-out category when there are 2 to 12), the warm-up form (`reveal`) or the many-draw form (`draws`)."""
    if "draws" in result:
        return draws_tables(result)
    if "reveal" in result:
        tables = [warmup_table({v: [doc] for v, doc in result["reveal"].items()})]
        for doc in result["reveal"].values():
            tables += single_evaluation_tables(doc)
        return tables
    return single_evaluation_tables(result)


def single_evaluation_tables(result: dict[str, Any]) -> list[Table]:
    """Metrics per pool, and per held-out category when there are 2 to 12 (titled with the reveal share, if any)."""
    tables = []
    n_categories = len(result["protocol"]["heldout_categories"])
    for pool in result_pools(result):
        tables.append(metrics_table(result, pool))
        per_category = per_category_table(result, pool) if 1 < n_categories <= 12 else None
        if per_category is not None:
            tables.append(per_category)
    reveal = result["protocol"].get("reveal")
    if reveal is None:
        return tables
    prefix = f"reveal {reveal['value']} ({reveal['n_revealed_users']:,} adopters' purchases revealed): "
    return _retitled(tables, prefix)


def draws_tables(result: dict[str, Any]) -> list[Table]:
    """Per reveal value (or once): the per-model summary over draws and the per-draw NDCG table; with several
    reveal values, a warm-up table of median NDCG first."""
    values = result.get("reveal_values") or []
    if len(values) <= 1:
        return [
            draws_summary_table(result["summary"], result["ratio_to_strongest_baseline"], len(result["draws"])),
            per_draw_table(result["draws"], result["ratio_to_strongest_baseline"]),
        ]
    tables = [warmup_table({v: [d["reveal"][v] for d in result["draws"]] for v in values}, result["summary"])]
    for value in values:
        docs = [d["reveal"][value] for d in result["draws"]]
        ratios = result["ratio_to_strongest_baseline"][value]
        summary = draws_summary_table(result["summary"][value], ratios, len(docs))
        tables += _retitled([summary, per_draw_table(docs, ratios)], f"reveal {value}: ")
    return tables


def draws_summary_table(summary: dict[str, Any], ratios: dict[str, Any] | None, n_draws: int) -> Table:
    """Models × (metric median, quartiles, range; the same for the ratio to the strongest baseline)."""
    pool, metric = (ratios["pool"], ratios["metric"]) if ratios else _draw_target(summary)
    table = Table(title=f"{metric} on the {pool} pool over {n_draws} draws", title_justify="left")
    table.add_column("model", no_wrap=True)
    for column in ("median", "q1–q3", "min–max"):
        table.add_column(column, justify="right", no_wrap=True)
    if ratios:
        for column in ("× strongest baseline (median)", "q1–q3", "min–max"):
            table.add_column(column, justify="right", no_wrap=True)
    for model, per_pool in summary.items():
        stats = per_pool.get(pool, {}).get(metric)
        if stats is None:
            continue
        cells = [display_name(model), *_stat_cells(stats)]
        if ratios:
            cells += _stat_cells(ratios["summary"].get(model, {}))
        table.add_row(*cells, style="dim" if model in LEAK_MODELS else None)
    if ratios:
        counts: dict[str, int] = {}
        for name in ratios["strongest"]:
            counts[name or "none"] = counts.get(name or "none", 0) + 1
        table.caption = "strongest baseline: " + ", ".join(f"{n} in {c} draw(s)" for n, c in counts.items())
    else:
        table.caption = "no ratio: no baseline (tfidf, bm25, lightfm; popularity, als once purchases are revealed) ran"
    return table


def per_draw_table(docs: list[dict[str, Any]], ratios: dict[str, Any] | None) -> Table:
    """Draws × models: the held-out categories, test users and each model's NDCG, with the strongest baseline."""
    pool, metric = (ratios["pool"], ratios["metric"]) if ratios else ("new", "ndcg@10")
    models = list(dict.fromkeys(m for d in docs for m in d["results"]))
    table = Table(title=f"{metric} per draw ({pool} pool)", title_justify="left")
    for column in ("seed", "held-out categories", "test users"):
        table.add_column(column, justify="left" if column == "held-out categories" else "right")
    for model in models:
        table.add_column(display_name(model), justify="right")
    if ratios:
        table.add_column("strongest baseline")
    for i, doc in enumerate(docs):
        protocol = doc["protocol"]
        categories = escape("; ".join(protocol["heldout_categories"]))
        cells = [str(protocol["seed"]), categories, f"{protocol['n_test_users']:,}"]
        cells += [_cell(doc["results"].get(m, {}).get(pool, {}).get(metric)) for m in models]
        if ratios:
            cells.append(ratios["strongest"][i] or "–")
        table.add_row(*cells)
    return table


def warmup_table(docs_by_value: dict[str, list[dict[str, Any]]], summary: dict[str, Any] | None = None) -> Table:
    """Models × reveal shares: NDCG@10 on the new pool (the median over draws when `summary` is given)."""
    values = list(docs_by_value)
    first = docs_by_value[values[0]][0]
    pool = "new" if "new" in next(iter(first["results"].values())) else "all"
    what = "median ndcg@10 over draws" if summary else "ndcg@10"
    table = Table(title=f"warm-up: {what} ({pool} pool) by share of adopters revealed", title_justify="left")
    table.add_column("model", no_wrap=True)
    for value in values:
        users = docs_by_value[value][0]["protocol"]["n_test_users"]
        header = f"reveal {value}" + ("" if summary else f"\n{users:,} users")
        table.add_column(header, justify="right")
    for model in first["results"]:
        if summary:
            found = [summary[v].get(model, {}).get(pool, {}).get("ndcg@10", {}).get("median") for v in values]
        else:
            found = [docs_by_value[v][0]["results"].get(model, {}).get(pool, {}).get("ndcg@10") for v in values]
        cells = [_number(value) for value in found]
        table.add_row(display_name(model), *cells, style="dim" if model in LEAK_MODELS else None)
    return table


def _draw_target(summary: dict[str, Any]) -> tuple[str, str]:
    per_pool = next(iter(summary.values()), {})
    pool = "new" if "new" in per_pool else next(iter(per_pool), "new")
    return pool, "ndcg@10"


def _stat_cells(stats: dict[str, Any]) -> list[str]:
    spread = [(stats.get("q1"), stats.get("q3")), (stats.get("min"), stats.get("max"))]
    return [_number(stats.get("median")), *(f"{_number(lo)}–{_number(hi)}" for lo, hi in spread)]


def _retitled(tables: list[Table], prefix: str) -> list[Table]:
    for table in tables:
        table.title = f"{prefix}{table.title}"
    return tables


def launch_story_table(launch: dict[str, Any], warmup: dict[str, Any]) -> Table:
    """The demo's story: NDCG@10 on the new pool at launch, then after each share of adopters is revealed
    (every model folds their purchases in; the users revealed leave the test set)."""
    docs = warmup["reveal"] if "reveal" in warmup else {warmup["protocol"]["reveal"]["value"]: warmup}
    table = Table(title="at launch, then as the first buyers arrive: ndcg@10 (new pool)", title_justify="left")
    table.add_column("model", no_wrap=True)
    table.add_column(f"at launch\n{launch['protocol']['n_test_users']:,} users", justify="right")
    for value, doc in docs.items():
        revealed = doc["protocol"]["reveal"]["n_revealed_users"]
        table.add_column(f"{float(value):.0%} revealed\n{revealed:,} buyers", justify="right")
    models = list(dict.fromkeys([*launch["results"], *next(iter(docs.values()))["results"]]))
    for model in models:
        at_launch = launch["results"].get(model, {}).get("new", {}).get("ndcg@10")
        later = [doc["results"].get(model, {}).get("new", {}).get("ndcg@10") for doc in docs.values()]
        table.add_row(
            display_name(model),
            *(_number(v) if v is not None else "" for v in [at_launch, *later]),
            style="dim" if model in LEAK_MODELS else None,
        )
    return table
