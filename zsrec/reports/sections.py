"""What a report shows for each kind of result document: sections of facts and figures.

The documents are the ones the commands write (`zsrec evaluate --out`, with or without `--draws` and
`--reveal`; `zsrec robustness --out`; the scenario benchmark's JSON). Values are read from them as they are;
the only arithmetic here is the mean of a held-out category's NDCG over the draws that held it out.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from zsrec.errors import ConfigError
from zsrec.reports import figures
from zsrec.reports.figures import ReportFigure

KINDS = ("evaluation", "draws", "warmup", "robustness", "scenarios")
MAX_HEATMAP_CATEGORIES = 30  # more rows than this cannot be read on a page
MAX_DRAW_FIGURES = 5  # per-draw CI figures shown; the spread figures cover every draw


@dataclass(frozen=True)
class Section:
    """A titled part of a report: fact rows, figures, and an optional preformatted block."""

    title: str
    figures: tuple[ReportFigure, ...] = ()
    facts: tuple[tuple[str, str], ...] = ()
    preformatted: str = ""
    note: str = ""


def report_kind(doc: Mapping[str, Any]) -> str:
    """Which result document `doc` is (one of `KINDS`); ConfigError for anything else."""
    if "draws" in doc and "summary" in doc:
        return "draws"
    if "reveal" in doc and "reveal_values" in doc:
        return "warmup"
    if "stuffed_items" in doc and "settings" in doc:
        return "robustness"
    if "adoption" in doc and "forecast_time" in doc:
        return "scenarios"
    if "results" in doc and "protocol" in doc:
        return "evaluation"
    raise ConfigError(
        "not a zsrec result document (from evaluate --out, robustness --out or the scenario benchmark): "
        f"top-level keys {sorted(doc)[:8]}"
    )


def report_sections(doc: Mapping[str, Any], *, warmup: Mapping[str, Any] | None = None) -> list[Section]:
    """The sections of `doc`'s report; `warmup` (the demo's warm-up document) adds the launch story."""
    kind = report_kind(doc)
    builders = {
        "evaluation": evaluation_sections,
        "draws": draws_sections,
        "warmup": warmup_sections,
        "robustness": robustness_sections,
        "scenarios": scenario_sections,
    }
    sections = [run_facts(doc), *builders[kind](doc)]
    if warmup is not None:
        docs = warmup["reveal"] if "reveal" in warmup else {warmup["protocol"]["reveal"]["value"]: warmup}
        sections.append(Section("After launch: as the first buyers arrive", (warmup_figure(docs, launch=doc),)))
    return sections


# -- run facts ------------------------------------------------------------------------------------------
def run_facts(doc: Mapping[str, Any]) -> Section:
    """Command, version, time, dataset and its fingerprint, split, encoder; the resolved configuration."""
    facts: list[tuple[str, str]] = []
    if doc.get("command"):
        facts.append(("command", " ".join(doc["command"])))
    for key, label in (("zsrec_version", "zsrec version"), ("created", "created"), ("date", "date")):
        if doc.get(key):
            facts.append((label, str(doc[key])))
    if doc.get("dataset"):
        facts.append(("dataset", str(doc["dataset"])))
    fingerprint = doc.get("dataset_fingerprint")
    if fingerprint:
        facts.append(
            (
                "dataset fingerprint",
                f"{fingerprint['n_items']:,} items, {fingerprint['n_users']:,} users; item ids sha256 "
                f"{fingerprint['items_sha256'][:16]}…, user ids sha256 {fingerprint['users_sha256'][:16]}…",
            )
        )
    facts += _split_facts(doc.get("protocol") or {})
    for key in ("encoder", "machine"):
        if doc.get(key):
            facts.append((key, str(doc[key])))
    if doc.get("seconds"):
        facts.append(("run time", f"{doc['seconds'] / 60:.1f} min"))
    config = doc.get("config")
    text = json.dumps(config, indent=2, ensure_ascii=False) if config else ""
    return Section("Run facts", facts=tuple(facts), preformatted=text)


def _split_facts(protocol: Mapping[str, Any]) -> list[tuple[str, str]]:
    if not protocol:
        return []
    split = [str(protocol.get("name", ""))]
    if protocol.get("level") is not None:
        split.append(f"level {protocol['level']}")
    if protocol.get("holdout_fraction") is not None and not protocol.get("heldout_categories"):
        split.append(f"{protocol['holdout_fraction']:.0%} of the categories held out per draw")
    if "seeds" in protocol:
        split.append(f"seeds {', '.join(map(str, protocol['seeds']))}")
    elif protocol.get("seed") is not None:
        split.append(f"seed {protocol['seed']}")
    if protocol.get("min_history") is not None:
        split.append(f"min history {protocol['min_history']}")
    facts = [("split", ", ".join(split))]
    if protocol.get("heldout_categories"):
        facts.append(("held-out categories", "; ".join(protocol["heldout_categories"])))
    for key in ("n_test_users", "n_new_items"):
        if protocol.get(key) is not None:
            facts.append((key.removeprefix("n_").replace("_", " "), f"{protocol[key]:,}"))
    return facts


# -- one evaluation -------------------------------------------------------------------------------------
def evaluation_sections(doc: Mapping[str, Any]) -> list[Section]:
    """NDCG@k with CIs per pool, and models × held-out categories per pool."""
    pools = _pools(doc["results"])
    bars = tuple(ndcg_figure(doc["results"], pool) for pool in pools)
    sections = [Section("NDCG@k per model, 95% CI", bars)]
    maps = [f for f in (category_heatmap([doc], pool) for pool in pools) if f is not None]
    if maps:
        sections.append(Section("Per held-out category", tuple(maps)))
    return sections


def ndcg_figure(results: Mapping[str, Any], pool: str, *, which: str = "") -> ReportFigure:
    """NDCG@k per model on one pool with its CIs; `which` names the draw in the title."""
    values: dict[str, dict[int, float | None]] = {}
    cis: dict[str, dict[int, Any]] = {}
    for model, per_pool in results.items():
        metrics = per_pool.get(pool)
        if metrics is None:
            continue
        for k in _ndcg_ks(metrics):
            values.setdefault(model, {})[k] = metrics.get(f"ndcg@{k}")
            cis.setdefault(model, {})[k] = metrics.get(f"ndcg@{k}_ci")
    return figures.ndcg_bars(
        values,
        cis,
        title=f"NDCG@k on the {pool} pool{which}",
        caption=f"{_POOLS.get(pool, pool)} Error bars: 95% bootstrap confidence interval over test users.",
    )


def category_heatmap(docs: Sequence[Mapping[str, Any]], pool: str) -> ReportFigure | None:
    """Models × held-out categories (the mean over the draws that held a category out); None without any."""
    collected: dict[str, dict[str, list[float]]] = {}
    metric = "ndcg@10"
    for doc in docs:
        for model, per_pool in doc["results"].items():
            per_category = (per_pool.get(pool) or {}).get("per_category") or {}
            metric = "ndcg@10" if "ndcg@10" in (per_pool.get(pool) or {}) else f"ndcg@{_ndcg_ks(per_pool[pool])[0]}"
            for category, values in per_category.items():
                if values.get(metric) is not None:
                    collected.setdefault(model, {}).setdefault(category, []).append(values[metric])
    if not collected:
        return None
    users = _category_users(docs, pool)
    categories = sorted(users, key=lambda c: -users[c])
    shown = [c for c in categories if any(c in per for per in collected.values())][:MAX_HEATMAP_CATEGORIES]
    models = list(collected)
    over = " (mean over the draws that held it out)" if len(docs) > 1 else ""
    cut = (
        f" The {len(shown)} of {len(categories)} categories with the most test users."
        if len(shown) < len(categories)
        else ""
    )
    caption = f"Each cell: the model's {metric} on the test users of one held-out category{over}.{cut}"
    title = f"{metric} per held-out category, {pool} pool"
    if len(shown) <= 12:
        matrix = [[_mean(collected[m].get(c)) for c in shown] for m in models]
        return figures.heatmap(matrix, models, shown, title=title, caption=caption, label=metric)
    matrix = [[_mean(collected[m].get(c)) for m in models] for c in shown]  # many categories: one row each
    return figures.heatmap(matrix, shown, models, title=title, caption=caption, label=metric)


def _category_users(docs: Sequence[Mapping[str, Any]], pool: str) -> dict[str, int]:
    """Test users per held-out category, summed over the documents (from the first model's breakdown)."""
    users: dict[str, int] = {}
    for doc in docs:
        first = next(iter(doc["results"].values()), {})
        for category, values in ((first.get(pool) or {}).get("per_category") or {}).items():
            users[category] = users.get(category, 0) + int(values.get("n_users") or 0)
    return users


# -- many draws ---------------------------------------------------------------------------------------------
def draws_sections(doc: Mapping[str, Any]) -> list[Section]:
    """The spread over draws, the ratio to the strongest baseline, per-category heatmap; the warm-up lines
    when several reveal shares ran."""
    values = doc.get("reveal_values") or []
    if len(values) > 1:
        docs = [d["reveal"][values[0]] for d in doc["draws"]]
        ratios = doc["ratio_to_strongest_baseline"][values[0]]
        sections = [Section("Warm-up over the draws", (warmup_median_figure(doc),))]
        title = f"Over the draws, reveal {values[0]}"
    else:
        docs, ratios, sections, title = list(doc["draws"]), doc["ratio_to_strongest_baseline"], [], "Over the draws"
    sections.append(Section(title, tuple(draws_figures(docs, ratios))))
    pools = _pools(docs[0]["results"])
    bars = [
        ndcg_figure(d["results"], pool, which=f" (draw {i + 1}, seed {d['protocol']['seed']})")
        for i, d in enumerate(docs[:MAX_DRAW_FIGURES])
        for pool in pools
    ]
    more = f"The first {MAX_DRAW_FIGURES} of {len(docs)} draws." if len(docs) > MAX_DRAW_FIGURES else ""
    sections.append(Section("NDCG@k per model in each draw, 95% CI", tuple(bars), note=more))
    maps = [f for f in (category_heatmap(docs, p) for p in pools) if f is not None]
    if maps:
        sections.append(Section("Per held-out category", tuple(maps)))
    return sections


def draws_figures(docs: Sequence[Mapping[str, Any]], ratios: Mapping[str, Any] | None) -> list[ReportFigure]:
    """Each model's metric over the draws, and (where a baseline ran) its ratio to the strongest baseline."""
    pool, metric = (ratios["pool"], ratios["metric"]) if ratios else (_pools(docs[0]["results"])[0], "ndcg@10")
    per_model = {m: [d["results"].get(m, {}).get(pool, {}).get(metric) for d in docs] for m in docs[0]["results"]}
    spread = [
        figures.distribution(
            per_model,
            title=f"{metric} on the {pool} pool over {len(docs)} draws",
            caption="Each dot is one draw of held-out categories; the box spans the quartiles, the line is the median.",
            label=metric,
        )
    ]
    if ratios:
        spread.append(
            figures.distribution(
                ratios["per_draw"],
                title="Ratio to the strongest baseline of each draw",
                caption=f"{metric} over the best of {', '.join(ratios['baselines'])} in the same draw; right of "
                "the dashed line beats every baseline that ran.",
                label=f"{metric} / strongest baseline's",
                reference=1.0,
            )
        )
    return spread


def warmup_median_figure(doc: Mapping[str, Any]) -> ReportFigure:
    """A many-draw warm-up document's median NDCG@10 by reveal share, one line per model."""
    values = doc["reveal_values"]
    first = doc["summary"][values[0]]
    pool = "new" if "new" in next(iter(first.values())) else "all"
    per_model = {
        m: [doc["summary"][v].get(m, {}).get(pool, {}).get("ndcg@10", {}).get("median") for v in values] for m in first
    }
    return figures.lines(
        [float(v) for v in values],
        per_model,
        title=f"Median NDCG@10 over the draws ({pool} pool) by share of adopters revealed",
        caption="Each share reveals the earliest adopters' purchases of the new categories to every model; "
        "those users leave the test set.",
        xlabel="share of adopters revealed",
        ylabel="median NDCG@10",
    )


# -- warm-up --------------------------------------------------------------------------------------------------
def warmup_sections(doc: Mapping[str, Any]) -> list[Section]:
    docs = doc["reveal"]
    first = docs[doc["reveal_values"][0]]
    return [Section("Warm-up", (warmup_figure(docs),)), *evaluation_sections(first)]


def warmup_figure(docs: Mapping[str, Mapping[str, Any]], *, launch: Mapping[str, Any] | None = None) -> ReportFigure:
    """NDCG@10 by share of adopters revealed, one line per model; `launch` adds the share-0 point."""
    first = next(iter(docs.values()))
    pool = "new" if "new" in next(iter(first["results"].values())) else "all"
    shares = [float(v) for v in docs]
    models = list(first["results"])
    per_model = {m: [d["results"].get(m, {}).get(pool, {}).get("ndcg@10") for d in docs.values()] for m in models}
    if launch is not None and 0.0 not in shares:
        shares = [0.0, *shares]
        per_model = {m: [launch["results"].get(m, {}).get(pool, {}).get("ndcg@10"), *v] for m, v in per_model.items()}
    return figures.lines(
        shares,
        per_model,
        title=f"NDCG@10 ({pool} pool) by share of adopters revealed",
        caption="0 = at launch. Each later share reveals the earliest adopters' purchases of the new categories "
        "to every model; those users leave the test set.",
        xlabel="share of adopters revealed",
        ylabel="NDCG@10",
    )


# -- robustness -------------------------------------------------------------------------------------------------
def robustness_sections(doc: Mapping[str, Any]) -> list[Section]:
    """Clean NDCG with its CI, and the drop under each perturbation with its CI."""
    k = doc["settings"]["k"]
    key = f"ndcg@{k}"
    results = doc["results"]
    clean = figures.ndcg_bars(
        {m: {k: r["clean"].get(key)} for m, r in results.items()},
        {m: {k: r["clean"].get(f"{key}_ci")} for m, r in results.items()},
        title=f"Clean {key} on the new pool",
        caption="Before any tampering. Error bars: 95% bootstrap CI over test users.",
    )
    attacks = doc["settings"]["attacks"]
    drops = {a: {m: r["attacks"][a].get(f"{key}_drop") for m, r in results.items()} for a in attacks}
    cis = {a: {m: r["attacks"][a].get(f"{key}_drop_ci") for m, r in results.items()} for a in attacks}
    drop = figures.grouped_bars(
        drops,
        cis,
        title=f"Drop in {key} per perturbation",
        caption="Clean minus attacked NDCG of the same users (positive = the attack hurt). Error bars: 95% "
        "paired bootstrap CI.",
        xlabel=f"{key} drop",
    )
    return [Section("Robustness to tampered item text", (clean, drop))]


# -- scenarios ------------------------------------------------------------------------------------------------
def scenario_sections(doc: Mapping[str, Any]) -> list[Section]:
    """Reliability diagrams of the calibrated P(user adopts category), and forecasts against real adopters."""
    diagrams = tuple(
        figures.reliability(
            r["reliability"],
            title=f"{r['dataset']}, level {r['level']} (Platt)",
            caption=f"Test categories never seen in calibration; ECE {r['platt']['ece']:.4f}. Dot area: pairs "
            "(user, category) in the bin.",
        )
        for r in doc["adoption"]
    )
    forecasts = [
        figures.predicted_vs_actual(
            r["platt"]["forecast"]["predicted"],
            r["platt"]["forecast"]["actual"],
            title=f"{r['dataset']}: held-out categories",
            caption=f"Σ P(user adopts), Platt; Spearman {r['platt']['forecast']['spearman']:.2f}.",
        )
        for r in doc["adoption"]
        if "predicted" in r["platt"]["forecast"]
    ]
    t = doc["forecast_time"]
    forecasts.append(
        figures.predicted_vs_actual(
            t["predicted"],
            t["actual"],
            title=f"Complete Journey: categories first sold after week {t['cutoff_week']}",
            caption=f"{len(t['categories'])} level-{t['level']} categories forecast from the data before "
            f"them; Spearman {t['zero-shot']['spearman']:.2f}.",
        )
    )
    return [
        Section("Calibration: reliability diagrams", diagrams),
        Section("Forecast against real adopters", tuple(forecasts)),
    ]


# -- helpers --------------------------------------------------------------------------------------------------
_POOLS = {
    "new": "Candidates: the held-out (new) items only.",
    "all": "Candidates: the whole catalog.",
}


def _pools(results: Mapping[str, Any]) -> list[str]:
    pools: list[str] = []
    for per_pool in results.values():
        pools += [p for p in per_pool if p not in pools]
    return pools


def _ndcg_ks(metrics: Mapping[str, Any]) -> list[int]:
    return sorted(int(key[5:]) for key in metrics if key.startswith("ndcg@") and key[5:].isdigit())


def _mean(values: list[float] | None) -> float | None:
    return sum(values) / len(values) if values else None
