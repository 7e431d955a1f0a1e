"""Many-draw evaluation: the same leave-category-out evaluation on N seeded draws of held-out categories.

One draw of categories can flatter or sink a model; the spread over draws says how much a figure can be trusted.
Per model, each metric is summarised by its median, quartiles and range over the draws, and each model's NDCG is
set against the strongest baseline of the same draw (a ratio over 1 beats every baseline run in that draw).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from functools import partial
from typing import Any

import numpy as np

from zsrec.data.dataset import Dataset
from zsrec.data.splits import CATEGORY_PROTOCOLS, LAUNCH, SplitSettings
from zsrec.errors import ConfigError
from zsrec.evaluation.evaluate import EvalSettings
from zsrec.evaluation.run import RunOptions, check_request, prepare_split, provenance
from zsrec.evaluation.warmup import check_reveal, warmup_document
from zsrec.models.embedding_source import EmbeddingSource
from zsrec.models.registry import text_models
from zsrec.reporting import Reporter, SilentReporter, json_ready

MAX_DRAWS = 100

#: the baselines a new-category model must beat, each with whether it needs revealed purchases of the new items:
#: the text baselines work cold, the collaborative ones only once the warm-up protocol has revealed purchases
STRONG_BASELINES: dict[str, bool] = {
    "tfidf": False,
    "bm25": False,
    "lightfm": False,
    "popularity": True,
    "als": True,
    "interleave": True,
}

STAT_KEYS = ("median", "q1", "q3", "min", "max")


def quantile_summary(values: Sequence[float | None]) -> dict[str, float | None]:
    """Median, quartiles (numpy's linear interpolation) and range of the defined values (None = undefined).

    >>> quantile_summary([1.0, 2.0, 3.0, 4.0, 5.0, None])
    {'median': 3.0, 'q1': 2.0, 'q3': 4.0, 'min': 1.0, 'max': 5.0}
    """
    defined = np.asarray([v for v in values if v is not None and np.isfinite(v)], dtype=np.float64)
    if len(defined) == 0:
        return dict.fromkeys(STAT_KEYS)
    q1, median, q3 = np.percentile(defined, [25, 50, 75])
    return {
        "median": float(median),
        "q1": float(q1),
        "q3": float(q3),
        "min": float(defined.min()),
        "max": float(defined.max()),
    }


def summarize_draws(docs: Sequence[dict[str, Any]]) -> dict[str, dict[str, dict[str, dict[str, float | None]]]]:
    """`{model: {pool: {metric: quantile_summary}}}` over result documents, for every scalar metric
    (CIs and per-category breakdowns are left out); a model or pool missing from a draw adds nothing."""
    collected: dict[str, dict[str, dict[str, list[float | None]]]] = {}
    for doc in docs:
        for model, per_pool in doc["results"].items():
            for pool, metrics in per_pool.items():
                for metric, value in metrics.items():
                    if value is None or isinstance(value, int | float):
                        collected.setdefault(model, {}).setdefault(pool, {}).setdefault(metric, []).append(value)
    return {
        model: {pool: {m: quantile_summary(v) for m, v in metrics.items()} for pool, metrics in per_pool.items()}
        for model, per_pool in collected.items()
    }


def ratio_target(doc: dict[str, Any]) -> tuple[str, str]:
    """(pool, metric) the baseline ratio compares: the new pool where evaluated, and NDCG@10 where measured
    (else the smallest NDCG cut-off)."""
    per_pool = next(iter(doc["results"].values()))
    pool = "new" if "new" in per_pool else next(iter(per_pool))
    ndcgs = sorted((int(k.split("@")[1]), k) for k in per_pool[pool] if k.startswith("ndcg@") and "_" not in k)
    metric = "ndcg@10" if "ndcg@10" in per_pool[pool] else ndcgs[0][1]
    return pool, metric


def strongest_baseline(
    results: dict[str, dict[str, dict[str, Any]]], *, revealed: bool, pool: str = "new", metric: str = "ndcg@10"
) -> str | None:
    """The best of `STRONG_BASELINES` among `results`' models by `metric` on `pool` (the collaborative ones only
    when `revealed`); None when none was run or none has a defined value. Ties go to the first in the results."""
    best, best_value = None, -np.inf
    for model, per_pool in results.items():
        if model not in STRONG_BASELINES or (STRONG_BASELINES[model] and not revealed):
            continue
        value = per_pool.get(pool, {}).get(metric)
        if value is not None and value > best_value:
            best, best_value = model, value
    return best


def baseline_ratios(docs: Sequence[dict[str, Any]], *, revealed: bool) -> dict[str, Any] | None:
    """Each model's metric over the strongest baseline's, per draw, and its `quantile_summary` over draws.

    Returns:
        None when no draw ran a baseline; else `{"pool", "metric", "baselines": [names counted],
        "strongest": [per draw: the strongest baseline or None], "per_draw": {model: [ratio or None]},
        "summary": {model: quantile_summary}}`. A ratio is None where the baseline scored 0 or none was run.
    """
    if not docs:
        return None
    pool, metric = ratio_target(docs[0])
    strongest = [strongest_baseline(d["results"], revealed=revealed, pool=pool, metric=metric) for d in docs]
    if all(s is None for s in strongest):
        return None
    models = list(dict.fromkeys(m for d in docs for m in d["results"]))
    per_draw: dict[str, list[float | None]] = {m: [] for m in models}
    for doc, base in zip(docs, strongest, strict=True):
        base_value = doc["results"][base][pool][metric] if base is not None else None
        for model in models:
            value = doc["results"].get(model, {}).get(pool, {}).get(metric)
            ok = value is not None and base_value is not None and base_value > 0
            per_draw[model].append(value / base_value if ok else None)
    counted = [m for m in models if m in STRONG_BASELINES and (revealed or not STRONG_BASELINES[m])]
    return {
        "pool": pool,
        "metric": metric,
        "baselines": counted,
        "strongest": strongest,
        "per_draw": per_draw,
        "summary": {m: quantile_summary(r) for m, r in per_draw.items()},
    }


def check_draws(draws: int, split_settings: SplitSettings) -> None:
    """Draws need a seeded category draw to repeat: leave-category-out without named categories."""
    if not 1 <= draws <= MAX_DRAWS:
        raise ConfigError(f"draws must be between 1 and {MAX_DRAWS}, got {draws}")
    if split_settings.protocol not in CATEGORY_PROTOCOLS:
        shown = " or ".join(CATEGORY_PROTOCOLS)
        raise ConfigError(f"draws repeat the category draw of {shown}; got {split_settings.protocol}")
    if split_settings.categories:
        raise ConfigError("draws repeat the seeded holdout-fraction draw; they cannot take named categories")


def draws_document(
    docs: Sequence[dict[str, Any]], split_settings: SplitSettings, *, reveal: Sequence[str] = ()
) -> dict[str, Any]:
    """The many-draw record from its per-draw documents (see `run_draws` for the schema)."""
    first = docs[0]
    multi = len(reveal) > 1
    if multi:
        summary: dict[str, Any] = {v: summarize_draws([d["reveal"][v] for d in docs]) for v in reveal}
        ratios: Any = {v: baseline_ratios([d["reveal"][v] for d in docs], revealed=float(v) > 0) for v in reveal}
    else:
        summary = summarize_draws(docs)
        # on launch day the old items' purchases are known: the collaborative baselines count
        revealed = split_settings.protocol == LAUNCH or (bool(reveal) and float(reveal[0]) > 0)
        ratios = baseline_ratios(docs, revealed=revealed)
    doc = {
        "dataset": first["dataset"],
        "dataset_fingerprint": first.get("dataset_fingerprint"),
        "protocol": {
            "name": split_settings.protocol,
            "level": split_settings.level,
            "holdout_fraction": split_settings.holdout_fraction,
            "min_history": split_settings.min_history,
            "seeds": [split_settings.seed + i for i in range(len(docs))],
        },
        "n_draws": len(docs),
        "reveal_values": list(reveal),
        "draws": list(docs),
        "summary": summary,
        "ratio_to_strongest_baseline": ratios,
        "baseline_models": dict(STRONG_BASELINES),
        "encoder": first["encoder"],
        **provenance(first["command"]),
    }
    return json_ready(doc)


def run_draws(
    dataset: str | Dataset,
    models: Sequence[str],
    split_settings: SplitSettings | None = None,
    eval_settings: EvalSettings | None = None,
    *,
    draws: int,
    reveal: Sequence[str] = (),
    encoder: str = "minilm",
    embeddings: EmbeddingSource | None = None,
    reporter: Reporter | None = None,
    command: Sequence[str] = (),
) -> dict[str, Any]:
    """Evaluate on `draws` category draws, seeds seed, seed + 1, ... (the split's and the evaluation's seed
    both move, so draw i is exactly `run_evaluation` with seed + i); the dataset is loaded and text encoded once.

    Returns:
        `{"dataset", "protocol": {"name", "level", "holdout_fraction", "min_history", "seeds"}, "n_draws",
        "reveal_values", "draws": [per-draw documents], "summary": {model: {pool: {metric: {"median", "q1",
        "q3", "min", "max"}}}}, "ratio_to_strongest_baseline": {"pool", "metric", "baselines", "strongest",
        "per_draw", "summary"} or None, "baseline_models", "encoder", "zsrec_version", "created", "command"}`.
        With several `reveal` shares, each draw document has the warm-up form (`{"reveal": {value: document}}`)
        and `summary` and `ratio_to_strongest_baseline` are keyed by reveal value first.
    """
    split_settings = split_settings or SplitSettings()
    eval_settings = eval_settings or EvalSettings()
    reporter = reporter or SilentReporter()
    check_draws(draws, split_settings)
    names = check_request(models, split_settings, eval_settings)
    values = check_reveal(reveal, split_settings) if reveal else ()
    if embeddings is None and any(n in text_models() for n in names):
        embeddings = EmbeddingSource(encoder, show_progress=reporter.progress_bars)  # shared: text encoded once
    options = RunOptions(encoder, embeddings, reporter, command)
    document = partial(warmup_document, options=options, reveal=values) if values else options.evaluate_split
    data: str | Dataset = dataset
    docs = []
    for i in range(draws):
        settings = replace(split_settings, seed=split_settings.seed + i)
        scoring = replace(eval_settings, seed=eval_settings.seed + i)
        reporter.message(f"draw {i + 1} of {draws} (seed {settings.seed})")
        try:
            data, split = prepare_split(data, settings, reporter)
        except ConfigError as err:
            raise ConfigError(f"draw {i + 1} (seed {settings.seed}): {err}") from err
        docs.append(document(data, split, settings, names, scoring))
    return draws_document(docs, split_settings, reveal=values)
