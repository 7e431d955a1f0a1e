"""The report's figures: plain numbers in, one PNG out (matplotlib's Agg renderer, no pyplot state).

Every function takes data that a result document already holds (means, CIs, per-draw values); nothing is
computed here but the layout. `ReportFigure.png` is a PNG without a timestamp, so a figure made twice from the
same numbers is the same file.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import matplotlib
import numpy as np

matplotlib.use("Agg")  # headless: the report is made on servers and in CI, never on a screen

from matplotlib.figure import Figure  # noqa: E402  (after the backend is chosen)

#: what PNG metadata keeps: no software version or date, so committed figures only change with their numbers
PNG_METADATA = {"Software": None}
DPI = 110
WIDTH = 7.0  # inches: about 770 pixels at DPI, a column of an HTML page or a Markdown file
MUTED = "#999999"


@dataclass(frozen=True)
class ReportFigure:
    """One figure of a report: its title, a caption saying how to read it, and the PNG bytes."""

    title: str
    caption: str
    png: bytes


def _png(fig: Figure) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI, bbox_inches="tight", metadata=PNG_METADATA)
    return buffer.getvalue()


def _height(rows: int, per_row: float = 0.35, least: float = 2.6) -> float:
    return max(least, 1.2 + per_row * rows)


def ndcg_bars(
    values: Mapping[str, Mapping[int, float | None]],
    cis: Mapping[str, Mapping[int, Sequence[float] | None]],
    *,
    title: str,
    caption: str,
) -> ReportFigure:
    """Horizontal bars per model, one per cut-off k, with the 95% CI as an error bar.

    Args:
        values: {model: {k: NDCG@k or None}}.
        cis: {model: {k: [low, high] or None}}.
    """
    models = list(values)
    ks = sorted({k for per_k in values.values() for k in per_k})
    fig = Figure(figsize=(WIDTH, _height(len(models) * max(1, len(ks)), 0.2)))
    ax = fig.add_subplot()
    height = 0.8 / max(1, len(ks))
    for j, k in enumerate(ks):
        ys = [i + (j - (len(ks) - 1) / 2) * height for i in range(len(models))]
        xs = [values[m].get(k) or 0.0 for m in models]
        err_low, err_high = [], []
        for m, x in zip(models, xs, strict=True):
            ci = cis.get(m, {}).get(k)
            err_low.append(max(0.0, x - ci[0]) if ci else 0.0)
            err_high.append(max(0.0, ci[1] - x) if ci else 0.0)
        ax.barh(ys, xs, height=height, xerr=[err_low, err_high], capsize=3, label=f"NDCG@{k}")
    ax.set_yticks(range(len(models)), models)
    ax.invert_yaxis()
    ax.set_xlabel("NDCG (bars: 95% bootstrap CI over users)")
    ax.set_title(title, loc="left", fontsize=10)
    ax.grid(axis="x", alpha=0.3)
    if len(ks) > 1:
        ax.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.01, 0.5))
    return ReportFigure(title, caption, _png(fig))


def heatmap(
    matrix: Sequence[Sequence[float | None]],
    rows: Sequence[str],
    columns: Sequence[str],
    *,
    title: str,
    caption: str,
    label: str,
) -> ReportFigure:
    """Rows × columns of values in [0, 1] as colours, each cell written out (blank where undefined)."""
    grid = np.array([[np.nan if v is None else v for v in row] for row in matrix], dtype=float)
    fig = Figure(figsize=(min(12.0, max(WIDTH, 2.5 + 0.9 * len(columns))), _height(len(rows), 0.3)))
    ax = fig.add_subplot()
    top = max(1e-9, float(np.nanmax(grid, initial=0.0)))
    image = ax.imshow(np.ma.masked_invalid(grid), cmap="viridis", vmin=0.0, vmax=top, aspect="auto")
    ax.set_xticks(range(len(columns)), [_short(c) for c in columns], rotation=35, ha="right", fontsize=8)
    ax.set_yticks(range(len(rows)), [_short(r, 48) for r in rows], fontsize=8)
    if len(rows) * len(columns) <= 200:
        for (i, j), value in np.ndenumerate(grid):
            if np.isfinite(value):
                light = value < 0.6 * top
                text = f"{value:.2f}" if top >= 0.1 else f"{value:.3f}"  # small NDCGs keep a digit
                ax.text(j, i, text, ha="center", va="center", fontsize=7, color="white" if light else "black")
    fig.colorbar(image, ax=ax, label=label, fraction=0.04)
    ax.set_title(title, loc="left", fontsize=10)
    return ReportFigure(title, caption, _png(fig))


def distribution(
    per_model: Mapping[str, Sequence[float | None]],
    *,
    title: str,
    caption: str,
    label: str,
    reference: float | None = None,
) -> ReportFigure:
    """Per model, a box over its values (one per draw) with every value as a dot; `reference` as a line."""
    models = [m for m, v in per_model.items() if any(x is not None for x in v)]
    fig = Figure(figsize=(WIDTH, _height(len(models), 0.45)))
    ax = fig.add_subplot()
    data = [[x for x in per_model[m] if x is not None] for m in models]
    if data:
        ax.boxplot(data, orientation="horizontal", widths=0.5, showfliers=False)
        for i, values in enumerate(data, start=1):
            ax.scatter(values, [i] * len(values), s=14, alpha=0.7, zorder=3)
    ax.set_yticks(range(1, len(models) + 1), models)
    ax.invert_yaxis()
    if reference is not None:
        ax.axvline(reference, color=MUTED, linestyle="--", linewidth=1)
    ax.set_xlabel(label)
    ax.set_title(title, loc="left", fontsize=10)
    ax.grid(axis="x", alpha=0.3)
    return ReportFigure(title, caption, _png(fig))


def lines(
    xs: Sequence[float],
    per_model: Mapping[str, Sequence[float | None]],
    *,
    title: str,
    caption: str,
    xlabel: str,
    ylabel: str,
) -> ReportFigure:
    """One line per model over `xs` (a gap where a value is undefined)."""
    fig = Figure(figsize=(WIDTH, 3.6))
    ax = fig.add_subplot()
    for model, ys in per_model.items():
        ax.plot(xs, [float("nan") if y is None else y for y in ys], marker="o", label=model)
    ax.set_xticks(list(xs), [f"{x:g}" for x in xs])
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, loc="left", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.01, 0.5))
    return ReportFigure(title, caption, _png(fig))


def grouped_bars(
    values: Mapping[str, Mapping[str, float | None]],
    cis: Mapping[str, Mapping[str, Sequence[float] | None]],
    *,
    title: str,
    caption: str,
    xlabel: str,
) -> ReportFigure:
    """Groups (e.g. perturbations) × series (e.g. models): horizontal bars with optional CIs; a line at 0.

    Args:
        values: {group: {series: value}}.
        cis: {group: {series: [low, high] or None}}.
    """
    groups = list(values)
    series = list(dict.fromkeys(s for per in values.values() for s in per))
    fig = Figure(figsize=(WIDTH, _height(len(groups) * max(1, len(series)), 0.25)))
    ax = fig.add_subplot()
    height = 0.8 / max(1, len(series))
    for j, name in enumerate(series):
        ys = [i + (j - (len(series) - 1) / 2) * height for i in range(len(groups))]
        xs = [values[g].get(name) or 0.0 for g in groups]
        err = [[0.0] * len(groups), [0.0] * len(groups)]
        for i, g in enumerate(groups):
            ci = cis.get(g, {}).get(name)
            if ci:
                err[0][i], err[1][i] = max(0.0, xs[i] - ci[0]), max(0.0, ci[1] - xs[i])
        ax.barh(ys, xs, height=height, xerr=err, capsize=3, label=name)
    ax.set_yticks(range(len(groups)), groups)
    ax.invert_yaxis()
    ax.axvline(0.0, color=MUTED, linewidth=1)
    ax.set_xlabel(xlabel)
    ax.set_title(title, loc="left", fontsize=10)
    ax.grid(axis="x", alpha=0.3)
    ax.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.01, 0.5))
    return ReportFigure(title, caption, _png(fig))


def reliability(bins: Sequence[Mapping[str, float]], *, title: str, caption: str) -> ReportFigure:
    """A reliability diagram: observed rate against mean predicted probability per bin (dot area ~ pairs),
    beside the diagonal of perfect calibration; both axes on a square-root scale, as most pairs sit near 0."""
    used = [b for b in bins if b.get("count")]
    fig = Figure(figsize=(4.6, 4.2))
    ax = fig.add_subplot()
    top = max([0.05, *(max(b["mean_predicted"], b["observed_rate"]) for b in used)]) * 1.05
    ax.plot([0, top], [0, top], color=MUTED, linestyle="--", linewidth=1, label="perfect calibration")
    if used:
        largest = max(b["count"] for b in used)
        sizes = [20 + 280 * (b["count"] / largest) ** 0.5 for b in used]
        ax.scatter([b["mean_predicted"] for b in used], [b["observed_rate"] for b in used], s=sizes, zorder=3)
        ax.plot([b["mean_predicted"] for b in used], [b["observed_rate"] for b in used], linewidth=1)
    ax.set_xscale("function", functions=(_sqrt, _square))
    ax.set_yscale("function", functions=(_sqrt, _square))
    ax.set_xlim(0, top)
    ax.set_ylim(0, top)
    ax.set_xlabel("mean predicted probability")
    ax.set_ylabel("observed adoption rate")
    ax.set_title(title, loc="left", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper left")
    return ReportFigure(title, caption, _png(fig))


def predicted_vs_actual(
    predicted: Sequence[float], actual: Sequence[float], *, title: str, caption: str
) -> ReportFigure:
    """Forecast against real counts, one dot per category, beside the diagonal (log scales where they span
    more than a factor of 20)."""
    fig = Figure(figsize=(4.6, 4.2))
    ax = fig.add_subplot()
    ax.scatter(actual, predicted, s=18, alpha=0.8, zorder=3)
    positive = [v for v in [*predicted, *actual] if v > 0]
    low, high = (min(positive), max(positive)) if positive else (0.1, 1.0)
    ax.plot([low, high], [low, high], color=MUTED, linestyle="--", linewidth=1, label="forecast = actual")
    if high / low > 20:
        ax.set_xscale("log")
        ax.set_yscale("log")
    ax.set_xlabel("real adopters")
    ax.set_ylabel("forecast adopters")
    ax.set_title(title, loc="left", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper left")
    return ReportFigure(title, caption, _png(fig))


def _sqrt(x: np.ndarray) -> np.ndarray:  # matplotlib passes arrays
    return np.sqrt(np.clip(x, 0, None))


def _square(x: np.ndarray) -> np.ndarray:
    return x**2


def _short(label: str, limit: int = 28) -> str:
    """A tick label: the whole category path where it fits in `limit` characters, else its last part, cut."""
    text = label if len(label) <= limit else label.split(" > ")[-1]
    return text if len(text) <= limit else text[: limit - 1] + "…"
