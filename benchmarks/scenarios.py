"""Benchmark: the application scenarios of issue 7, each measured on real data.

    .venv/bin/python benchmarks/scenarios.py        # ≈ 10 min on a shared 2-core machine; needs ../shared/data
    .venv/bin/python benchmarks/scenarios.py --render-only   # the section and its figures from the saved JSON
    .venv/bin/python benchmarks/scenarios.py --render-only --report scenarios.html   # and an HTML report

1. category probabilities: P(user adopts category), calibrated on validation categories (Platt, isotonic);
   ECE and a reliability table on the held-out test categories (Amazon Scientific and Complete Journey, level 2);
2. trend forecast: Σ_u P(u adopts c) against the real adopters of each held-out category (Spearman, Pearson,
   bootstrap CIs over categories), beside baselines; and on Complete Journey over time: level-3 categories
   first sold after week 13, forecast from the data before it;
3. audience: Complete Journey coupons, the coupon's products as the ad, recipients ranked from their purchases
   before the campaign, redeemers as positives; temperature chosen on the earlier campaigns;
4. cross-category: from a user's last item, rank a held-out category's items; Complete Journey baskets across
   departments;
5. interest profiles: precision@5 of the tags against the categories bought later.
Writes its section of docs/benchmarks.md and the raw numbers to docs/benchmarks/scenarios.json. Complete
Journey is reduced as in the demo (products bought by ≥ 30 households). Embeddings come from the usual cache.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from common import figure_markdown, write_section  # noqa: E402  (benchmarks/common.py, beside this script)

from zsrec.data import load_dataset  # noqa: E402
from zsrec.data.splits import SplitSettings, leave_category_out_split  # noqa: E402
from zsrec.demo import keep_popular_items  # noqa: E402
from zsrec.encoders.templates import ItemTextTemplate  # noqa: E402
from zsrec.evaluation.metrics import bootstrap_ci  # noqa: E402
from zsrec.io import atomic_write_text  # noqa: E402
from zsrec.models.baselines import TfidfRecommender  # noqa: E402
from zsrec.models.embedding_source import EmbeddingSource  # noqa: E402
from zsrec.reports import figures  # noqa: E402
from zsrec.reports.html import write_report  # noqa: E402
from zsrec.scenarios.adoption import (  # noqa: E402
    AdoptionSettings,
    CategoryScorer,
    adoption_labels,
    eligible_users,
    fit_category_adoption,
)
from zsrec.scenarios.audience import (  # noqa: E402
    AudienceSettings,
    audience_scores,
    case_metrics,
    history_similarities,
    soft_count,
)
from zsrec.scenarios.calibration import expected_calibration_error, reliability_bins  # noqa: E402
from zsrec.scenarios.completejourney import coupon_cases, purchase_lines  # noqa: E402
from zsrec.scenarios.forecast import (  # noqa: E402
    baseline_forecasts,
    categories_first_sold_after,
    correlation_report,
)
from zsrec.scenarios.profile import category_sets, split_by_sequence, split_by_time, tag_precision  # noqa: E402
from zsrec.scenarios.similar import (  # noqa: E402
    basket_queries,
    embedding_scorer,
    evaluate_baskets,
    evaluate_last_item,
    random_scorer,
)
from zsrec.vectors import standardise  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
AMAZON = REPO.parent / "shared" / "data" / "amazon-scientific"
WEEK = 7 * 86400
N_BOOT = 1000


def log(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


# -- 1 + 2: calibrated category probabilities and the forecast ---------------------------------------------
def adoption_and_forecast(data, name: str, level: int, embeddings: EmbeddingSource) -> dict:
    split = leave_category_out_split(data, SplitSettings(level=level, holdout_fraction=0.2, seed=0))
    cats = list(split.heldout_categories)
    out: dict = {"dataset": name, "level": level, "test_categories": len(cats)}
    for method in ("platt", "isotonic"):
        adoption = fit_category_adoption(split.train, AdoptionSettings(level=level, calibration=method), embeddings)
        users = eligible_users(split.train, adoption.settings.min_history)
        probs = adoption.probabilities(users, cats)
        labels = adoption_labels(data, users, level, cats)
        out[method] = {
            "validation": adoption.validation,
            "ece": expected_calibration_error(probs, labels),
            "mean_predicted": float(probs.mean()),
            "observed_rate": float(labels.mean()),
            "pairs": int(labels.size),
            "forecast": correlation_report(probs.sum(axis=0), labels.sum(axis=0), n_resamples=N_BOOT)
            | {"predicted": probs.sum(axis=0).tolist(), "actual": labels.sum(axis=0).tolist()},
        }
        if method == "platt":
            out["reliability"] = [vars(b) for b in reliability_bins(probs, labels)]
            actual = labels.sum(axis=0)
            out["baselines"] = {
                b: correlation_report(v, actual, n_resamples=N_BOOT)
                for b, v in baseline_forecasts(adoption, cats).items()
            }
            out["users"] = len(users)
    return out


def forecast_over_time(data, level: int, cutoff_week: int, embeddings: EmbeddingSource) -> dict:
    cutoff = float(data.interactions["timestamp"].min()) + cutoff_week * WEEK
    before, late = categories_first_sold_after(data, level, cutoff)
    adoption = fit_category_adoption(before, AdoptionSettings(level=level), embeddings)
    users = eligible_users(before, adoption.settings.min_history)
    after = data.with_interactions(data.interactions[data.interactions["timestamp"].to_numpy() >= cutoff])
    actual = adoption_labels(after, users, level, late).sum(axis=0)
    predicted = adoption.probabilities(users, late).sum(axis=0)
    return {
        "level": level,
        "cutoff_week": cutoff_week,
        "categories": late,
        "users": len(users),
        "zero-shot": correlation_report(predicted, actual, n_resamples=N_BOOT),
        "baselines": {
            b: correlation_report(v, actual, n_resamples=N_BOOT) for b, v in baseline_forecasts(adoption, late).items()
        },
        "predicted": predicted.tolist(),
        "actual": actual.tolist(),
    }


# -- 3: audience on coupons ----------------------------------------------------------------------------------
def audience_on_coupons(data, lines: pd.DataFrame, vectors: np.ndarray, embeddings: EmbeddingSource) -> dict:
    cases, histories = coupon_cases(data, lines)
    ads = embeddings.texts([c.ad_text for c in cases])
    rng = np.random.default_rng(0)
    scorers = {"random": None, "activity": None, "profile": AudienceSettings(scoring="profile")}
    for tau in (0.02, 0.05, 0.1, 0.2):
        scorers[f"soft-count τ={tau}"] = AudienceSettings(temperature=tau)
    per_case: dict[str, list[dict[str, float]]] = {n: [None] * len(cases) for n in scorers}  # type: ignore[list-item]
    by_campaign: dict[int, list[int]] = {}
    for j, case in enumerate(cases):
        by_campaign.setdefault(case.campaign_id, []).append(j)
    for cid, rows in by_campaign.items():
        hist = histories[cid]
        sims, starts = history_similarities(vectors, hist, ads[rows])  # once per campaign, every temperature
        scores: dict[str, np.ndarray] = {
            "random": rng.random((len(hist), len(rows))),
            "activity": np.repeat(np.asarray([len(h) for h in hist], dtype=np.float64)[:, None], len(rows), 1),
            "profile": audience_scores(vectors, hist, ads[rows], scorers["profile"]),
        }
        for name, settings in scorers.items():
            if name.startswith("soft-count"):
                scores[name] = soft_count(sims, starts, settings.temperature)
        for col, j in enumerate(rows):
            for name in scorers:
                per_case[name][j] = case_metrics(scores[name][:, col], cases[j].redeemed, k=10)
    starts = np.asarray([c.start for c in cases])
    validation = starts < datetime(2017, 7, 1, tzinfo=UTC).timestamp()
    soft = [n for n in scorers if n.startswith("soft-count")]
    chosen = max(soft, key=lambda n: np.mean([m["auc"] for m, v in zip(per_case[n], validation, strict=True) if v]))

    def summary(mask: np.ndarray) -> dict:
        out = {}
        for name in scorers:
            aucs = np.asarray([m["auc"] for m in per_case[name]])[mask]
            prec = np.asarray([m["precision@10"] for m in per_case[name]])[mask]
            lo, hi = bootstrap_ci(aucs, n_resamples=N_BOOT)
            plo, phi = bootstrap_ci(prec, n_resamples=N_BOOT)
            out[name] = {
                "auc": float(aucs.mean()),
                "auc_ci": [lo, hi],
                "precision@10": float(prec.mean()),
                "precision@10_ci": [plo, phi],
            }
        return out

    recipients = np.asarray([len(c.users) for c in cases])
    positives = np.asarray([int(c.redeemed.sum()) for c in cases])
    return {
        "coupons": len(cases),
        "campaigns": len({c.campaign_id for c in cases}),
        "validation_coupons": int(validation.sum()),
        "median_recipients": float(np.median(recipients)),
        "median_redeemers": float(np.median(positives)),
        "base_rate": float(positives.sum() / recipients.sum()),
        "chosen": chosen,
        "test": summary(~validation),
        "all": summary(np.ones(len(cases), dtype=bool)),
        "example_ads": [c.ad_text for c in cases[:3]],
    }


# -- 4: cross-category ---------------------------------------------------------------------------------------
def item_scorers(data, vectors: np.ndarray) -> dict:
    tfidf = TfidfRecommender().fit(data).item_matrix
    return {
        "zero-shot (text embedding)": embedding_scorer(vectors),
        "tfidf": lambda q, c: np.asarray((tfidf[q] @ tfidf[c].T).todense()),
        "random": random_scorer(0),
    }


def cross_category(data, level: int, vectors: np.ndarray) -> dict:
    split = leave_category_out_split(data, SplitSettings(level=level, holdout_fraction=0.2, seed=0))
    return {
        "level": level,
        "users": len(split.test_users),
        "new_items": len(split.new_items),
        "results": evaluate_last_item(split, item_scorers(data, vectors), n_bootstrap=N_BOOT),
    }


def baskets(data, lines: pd.DataFrame, vectors: np.ndarray) -> dict:
    bq = basket_queries(data, lines["basket"].to_numpy(), lines["item"].to_numpy(), level=1, n_queries=2000)
    scorers = item_scorers(data, vectors)
    counts = np.bincount(lines["item"].to_numpy(), minlength=data.n_items).astype(np.float64)
    scorers["popularity (reference, not text)"] = lambda q, c: np.broadcast_to(counts[c], (len(q), len(c)))
    text = embedding_scorer(vectors)
    scorers["zero-shot + popularity"] = lambda q, c: (
        standardise(text(q, c)) + standardise(np.broadcast_to(np.log1p(counts[c]), (len(q), len(c))))
    )
    return {"queries": len(bq.queries), "results": evaluate_baskets(bq, scorers, n_bootstrap=N_BOOT)}


# -- 5: interest profiles ------------------------------------------------------------------------------------
def profiles(data, history, future, level: int, embeddings: EmbeddingSource, how: str) -> dict:
    scorer = CategoryScorer(history, level, embeddings)
    adoption = fit_category_adoption(history, AdoptionSettings(level=level), embeddings)
    users = eligible_users(history, 3)
    past, later = category_sets(history, level, scorer.names), category_sets(future, level, scorer.names)
    allowed = scorer.real
    rng = np.random.default_rng(0)
    popularity = np.zeros(len(scorer.names))
    for s in past:
        popularity[list(s)] += 1
    frequency = np.zeros((len(users), len(scorer.names)))
    cat_of_item = scorer.item_category
    histories = history.histories()  # once: it splits the whole log
    for row, u in enumerate(users):
        np.add.at(frequency[row], cat_of_item[histories[u]], 1.0)
    rows = np.arange(len(scorer.names))
    scores = {
        "zero-shot (cosine)": scorer.cosines(users),
        "zero-shot calibrated P(adopt)": adoption.model.probabilities(adoption.scorer.features(users, rows)),
        "popularity": np.broadcast_to(popularity, (len(users), len(popularity))),
        "history frequency": frequency + 1e-6 * popularity[None, :],
        "random": rng.random((len(users), len(scorer.names))),
    }
    out: dict = {"how": how, "level": level, "users": len(users)}
    for new_only in (False, True):
        key = "new categories only" if new_only else "all categories"
        out[key] = {}
        for name, s in scores.items():
            if new_only and name == "history frequency":
                continue
            p = tag_precision(s, users, past, later, allowed, k=5, new_only=new_only)
            p = p[~np.isnan(p)]
            out[key][name] = {
                "precision@5": float(p.mean()),
                "ci": list(bootstrap_ci(p, n_resamples=N_BOOT)),
                "users": len(p),
            }
    return out


# -- report ----------------------------------------------------------------------------------------------------
def fmt_ci(x: float, ci) -> str:
    return f"{x:.3f} [{ci[0]:.3f}, {ci[1]:.3f}]"


def corr_cells(r: dict) -> str:
    if np.isnan(r["spearman"]):
        return f"n/a (constant) | n/a | {r['mae']:.1f}"
    return (
        f"{r['spearman']:.3f} [{r['spearman_ci_low']:.2f}, {r['spearman_ci_high']:.2f}] | "
        f"{r['pearson']:.3f} [{r['pearson_ci_low']:.2f}, {r['pearson_ci_high']:.2f}] | {r['mae']:.1f}"
    )


def markdown(doc: dict) -> str:
    lines = [
        "## Application scenarios (issue 7)",
        "",
        f"Written by `.venv/bin/python benchmarks/scenarios.py` on {doc['date']} ({doc['machine']}), "
        f"{doc['seconds'] / 60:.1f} min. Complete Journey reduced as in the demo (products bought by ≥ 30 "
        "households); leave-category-out splits hold out 20% of the level's categories (seed 0). CIs: 95% "
        "percentile bootstrap.",
        "",
        "### Calibrated P(user adopts category) — test categories, never seen in calibration",
        "",
        "| dataset | level | test categories | users × categories | observed rate | ECE Platt | ECE isotonic |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in doc["adoption"]:
        lines.append(
            f"| {r['dataset']} | {r['level']} | {r['test_categories']} | {r['platt']['pairs']:,} | "
            f"{r['platt']['observed_rate']:.4f} | {r['platt']['ece']:.4f} | {r['isotonic']['ece']:.4f} |"
        )
    for r in doc["adoption"]:
        diagram = figures.reliability(r["reliability"], title=f"{r['dataset']}, level {r['level']} (Platt)", caption="")
        name = "reliability-" + r["dataset"].lower().replace(" ", "-")
        lines += [
            "",
            f"Reliability, {r['dataset']} (Platt):",
            "",
            figure_markdown(diagram, name),
            "",
            "| predicted | pairs | mean predicted | observed |",
            "|---|---|---|---|",
        ]
        for b in r["reliability"]:
            if b["count"]:
                lines.append(
                    f"| {b['low']:.1f}–{b['high']:.1f} | {b['count']:,} | {b['mean_predicted']:.4f} | "
                    f"{b['observed_rate']:.4f} |"
                )
    lines += [
        "",
        "### Trend forecast: expected adopters of each held-out category",
        "",
        "| dataset | forecast | Spearman [CI] | Pearson [CI] | MAE (users) |",
        "|---|---|---|---|---|",
    ]
    for r in doc["adoption"]:
        lines.append(
            f"| {r['dataset']} ({r['test_categories']} categories) | zero-shot Σ P, Platt | "
            + corr_cells(r["platt"]["forecast"])
            + " |"
        )
        lines.append("| | zero-shot Σ P, isotonic | " + corr_cells(r["isotonic"]["forecast"]) + " |")
        for b, v in r["baselines"].items():
            lines.append(f"| | {b} | " + corr_cells(v) + " |")
    t = doc["forecast_time"]
    lines.append(
        f"| Complete Journey over time: {len(t['categories'])} level-{t['level']} categories first sold "
        f"after week {t['cutoff_week']} | zero-shot Σ P | " + corr_cells(t["zero-shot"]) + " |"
    )
    for b, v in t["baselines"].items():
        lines.append(f"| | {b} | " + corr_cells(v) + " |")
    over_time = figures.predicted_vs_actual(
        t["predicted"], t["actual"], title=f"Categories first sold after week {t['cutoff_week']}", caption=""
    )
    lines += ["", figure_markdown(over_time, "forecast-over-time")]
    lines += [
        "",
        "Baselines: `known-mean` = the mean adopters of the known categories (the same number for every new "
        "category, so no correlation); `known-rate-x-size` = adopters per item of the known categories × the "
        "new category's item count; `nearest-known` = adopters of the known category whose item texts are "
        'closest. Over time the probabilities are calibrated for "adopt within the data", not within the '
        "remaining weeks, so only the correlations mean something there.",
    ]
    a = doc["audience"]
    lines += [
        "",
        "### Audience targeting: Complete Journey coupons",
        "",
        f"{a['coupons']} redeemed coupons in {a['campaigns']} campaigns (campaigns starting ≥ 4 weeks into the "
        f"data). Per coupon, its recipients with ≥ 3 items bought before the campaign start are ranked from "
        f"those purchases only (median {a['median_recipients']:.0f} recipients, {a['median_redeemers']:.0f} "
        f"redeemers; base rate {a['base_rate']:.4f}). The ad is the coupon's three commonest product types, e.g. "
        f'"{a["example_ads"][0]}". Temperature chosen on the {a["validation_coupons"]} coupons of campaigns '
        f"starting before July 2017: **{a['chosen']}**. AUC and precision@10 are means over coupons.",
        "",
        "| scorer | AUC, later campaigns [CI] | precision@10, later | AUC, all coupons [CI] | precision@10, all |",
        "|---|---|---|---|---|",
    ]
    for name in a["all"]:
        te, al = a["test"][name], a["all"][name]
        mark = " (chosen)" if name == a["chosen"] else ""
        lines.append(
            f"| {name}{mark} | {fmt_ci(te['auc'], te['auc_ci'])} | {te['precision@10']:.3f} | "
            f"{fmt_ci(al['auc'], al['auc_ci'])} | {al['precision@10']:.3f} |"
        )
    lines += [
        "",
        "`activity` = purchase lines before the campaign (the popularity-of-user baseline); `profile` = "
        "cosine between the ad and the mean of the user's history vectors.",
        "",
        "### Cross-category: item → items of another category",
        "",
        "| task | scorer | NDCG@10 [CI] | Recall@10 | NDCG@50 | Recall@50 |",
        "|---|---|---|---|---|---|",
    ]
    for label, r in doc["cross_category"].items():
        for name, m in r["results"].items():
            lines.append(
                f"| {label} | {name} | {fmt_ci(m['ndcg@10'], (m['ndcg@10_ci_low'], m['ndcg@10_ci_high']))} "
                f"| {m['recall@10']:.4f} | {m['ndcg@50']:.4f} | {m['recall@50']:.4f} |"
            )
            label = ""
    lines += [
        "",
        "Last item: each test user's last item outside the held-out level-2 categories queries every "
        "held-out item; relevant = the held-out items they bought. Baskets: a random item of a basket that "
        "spans two departments queries every item of the other departments; relevant = the basket's items "
        "there.",
        "",
        "### Interest profiles: tags vs the categories bought later",
        "",
        "| data | tags from | precision@5, all categories [CI] | precision@5, new categories only [CI] |",
        "|---|---|---|---|",
    ]
    for r in doc["profiles"]:
        label = f"{r['how']}, level {r['level']}"
        for name, m in r["all categories"].items():
            new = r["new categories only"].get(name)
            new_cell = fmt_ci(new["precision@5"], new["ci"]) if new else "—"
            lines.append(f"| {label} | {name} | {fmt_ci(m['precision@5'], m['ci'])} | {new_cell} |")
            label = ""
    lines += [
        "",
        "All categories: any category bought later counts; new categories only: tags and targets "
        "exclude the categories already in the user's history (a history-frequency tagger has none to "
        "offer there).",
    ]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--render-only", action="store_true", help="rebuild the section from the saved JSON")
    parser.add_argument("--report", type=Path, help="also write an HTML report of the results here")
    args = parser.parse_args()
    saved = REPO / "docs" / "benchmarks" / "scenarios.json"
    if args.render_only:
        doc = json.loads(saved.read_text())
        write_section("scenarios", markdown(doc))
        if args.report:
            write_report(args.report, doc)
        return 0
    if not (AMAZON / "Scientific.item.json").exists():
        print(f"error: {AMAZON} not found; the benchmark reads ../shared/data/amazon-scientific", file=sys.stderr)
        return 2
    doc = run_all()
    atomic_write_text(saved, json.dumps(doc, indent=2, default=float) + "\n")
    write_section("scenarios", markdown(doc))
    if args.report:
        write_report(args.report, json.loads(saved.read_text()))  # as saved: NaN read back as JSON has it
    log(f"done in {doc['seconds'] / 60:.1f} min")
    return 0


def run_all() -> dict:
    """Every scenario measured; the document scenarios.json holds."""
    started = time.perf_counter()
    embeddings = EmbeddingSource("minilm")
    amazon = load_dataset(f"amazon-lcrec:{AMAZON}")
    journey = keep_popular_items(load_dataset("completejourney"), 30)
    log("loaded")
    vectors = {n: embeddings.items(d.items, ItemTextTemplate()) for n, d in (("am", amazon), ("cj", journey))}
    doc: dict = {"adoption": []}
    for data, name in ((amazon, "Amazon Scientific"), (journey, "Complete Journey")):
        doc["adoption"].append(adoption_and_forecast(data, name, 2, embeddings))
        log(f"adoption + forecast {name}")
    doc["forecast_time"] = forecast_over_time(journey, 3, 13, embeddings)
    log("forecast over time")
    lines = purchase_lines(journey)
    doc["audience"] = audience_on_coupons(journey, lines, vectors["cj"], embeddings)
    log("audience")
    doc["cross_category"] = {
        "Amazon Scientific, last item → held-out level-2 category": cross_category(amazon, 2, vectors["am"]),
        "Complete Journey, last item → held-out level-2 category": cross_category(journey, 2, vectors["cj"]),
        "Complete Journey, basket across departments": baskets(journey, lines, vectors["cj"]),
    }
    log("cross-category")
    cutoff = float(journey.interactions["timestamp"].min()) + 40 * WEEK
    doc["profiles"] = [
        profiles(
            amazon, *split_by_sequence(amazon, 0.8), 2, embeddings, "Amazon Scientific, first 80% of each sequence"
        ),
        profiles(journey, *split_by_time(journey, cutoff), 2, embeddings, "Complete Journey, weeks 1–40 → 41–53"),
    ]
    log("profiles")
    doc["seconds"] = time.perf_counter() - started
    doc["date"] = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    doc["machine"] = f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}"
    return doc


if __name__ == "__main__":
    sys.exit(main())
