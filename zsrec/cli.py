"""The `zsrec` command line: thin commands over the library; bad input ends as one `error:` line, exit 2."""

from __future__ import annotations

import dataclasses
import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer
from rich.console import Console

from zsrec.errors import ConfigError, ZsrecError, split_list

if TYPE_CHECKING:
    from zsrec.data.splits import SplitSettings
    from zsrec.models.embedding_source import EmbeddingSource
    from zsrec.reporting import LoggingReporter

# Model hubs are out of reach where zsrec runs; offline, transformers fails fast instead of waiting.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

# Errors that mean "your input is wrong", not "zsrec is broken": one line on stderr, exit code 2.
USER_ERRORS = (ZsrecError, FileNotFoundError, NotADirectoryError, UnicodeDecodeError)
EXIT_USER_ERROR = 2

app = typer.Typer(
    help="Recommend new e-commerce categories and items (no interactions yet) from their text.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _print_version(value: bool) -> None:
    if value:
        from zsrec._version import __version__

        typer.echo(f"zsrec {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_print_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """Recommend new e-commerce categories and items (no interactions yet) from their text."""


DatasetArg = Annotated[
    str,
    typer.Argument(
        help="A folder with items.*, interactions.* and optional users.* (csv, parquet or jsonl); "
        "amazon-lcrec:PATH for the LC-Rec JSON pair in PATH; or completejourney (the embedded demo data).",
        show_default=False,
    ),
]
EncoderOpt = Annotated[
    str,
    typer.Option(
        help='Text encoder of the text models: "minilm" (packaged), "e5-multilingual", "hashing[-DIM]" '
        '(fake, for tests), or a local model folder; "minilm@int8" runs it at int8 (see --precision).'
    ),
]

PrecisionOpt = Annotated[
    str,
    typer.Option(
        help="Precision of the text encoder: fp32 (torch) or int8 (ONNX Runtime, int8 weights; faster on CPU, "
        "exported into the model cache at first use). For minilm, mpnet and model folders; vectors of the two "
        "are cached apart and never mixed."
    ),
]


def _encoder_spec(encoder: str, precision: str) -> str:
    """The encoder spec at `precision` (ConfigError for an unknown precision). A spec that names its own
    precision ("minilm@int8") keeps it under the default --precision fp32."""
    from zsrec.encoders import PRECISIONS, split_precision, with_precision

    if precision not in PRECISIONS:
        raise ConfigError(f"--precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if precision == "fp32" and split_precision(encoder.strip())[1] != "fp32":
        return encoder.strip()
    return with_precision(encoder, precision)


# The split options, shared by every command that holds out categories (evaluate, train, robustness, ...).
ProtocolOpt = Annotated[
    str,
    typer.Option(
        help="leave-category-out (new categories), leave-one-out (next item) or launch (held-out categories "
        "launch into each user's last --test-fraction of interactions; the whole catalog is ranked against old "
        "and new targets, with new/old recall and the new items' share of the top slots)."
    ),
]
TestFractionOpt = Annotated[
    float,
    typer.Option(
        help="launch protocol: the last share of each user's interactions (time order, at least one) that is "
        "their test window."
    ),
]
LevelOpt = Annotated[
    int,
    typer.Option(
        help="Category level whose categories are held out (1 = top). With leave-category-out, zero-shot and "
        "ensemble also tune on validation categories held out at this level."
    ),
]
CategoriesOpt = Annotated[
    str,
    typer.Option(
        help='Categories to hold out, separated by ";": full paths ("A > B") or unique names at --level. '
        "Default: a seeded --holdout-fraction of the level's categories."
    ),
]
HoldoutFractionOpt = Annotated[
    float, typer.Option(help="Share of the level's categories held out when --categories is not given.")
]
MinHistoryOpt = Annotated[int, typer.Option(help="Interactions a test user needs outside the held-out part.")]
SeedOpt = Annotated[int, typer.Option(help="Seed of the category choice, tie-breaking and bootstrap.")]


def split_settings_from_options(
    protocol: str,
    level: int,
    categories: str,
    holdout_fraction: float,
    min_history: int,
    seed: int,
    test_fraction: float = 0.2,
) -> SplitSettings:
    """SplitSettings from the shared split options (raises ConfigError on a bad value)."""
    from zsrec.data.splits import SplitSettings

    return SplitSettings(
        protocol=protocol,
        level=level,
        categories=tuple(split_list(categories, "--categories", sep=";")),
        holdout_fraction=holdout_fraction,
        min_history=min_history,
        seed=seed,
        test_fraction=test_fraction,
    )


JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout instead of the text.")]
CategorySeparatorOpt = Annotated[
    str | None,
    typer.Option(
        help='What separates category levels in the items file, e.g. "/" for "Lab/Glass/Beakers". '
        'Default " > "; paths that look separated by "/", ">" or "|" instead are refused with a hint.',
        show_default=False,
    ),
]


def _dataset_arg(dataset: str, category_separator: str | None, reporter: LoggingReporter) -> Any:
    """The dataset spec as given, or (with a separator) the dataset loaded with it: the library loads specs
    with the default separator only."""
    if category_separator is None:
        return dataset
    from zsrec.data import load_dataset

    with reporter.progress(f"loading {dataset}", None):
        data = load_dataset(dataset, category_separator=category_separator)
    for line in data.warnings:
        reporter.warning(line)
    return data


# -- run files: --config in, --report and --mlflow out ------------------------------------------------------
def _read_config(ctx: typer.Context, value: Path | None) -> Path | None:
    """--config: the file's values become this command's defaults, so flags given as well override them."""
    if value is None:
        return None
    from zsrec.config_file import option_defaults, read_config_file

    known = [p.name for p in ctx.command.params if p.name and p.name != "config"]
    try:
        defaults = option_defaults(read_config_file(value), known, source=str(value))
    except ZsrecError as err:
        _fail(str(err))
    ctx.default_map = {**(ctx.default_map or {}), **defaults}
    return value


ConfigOpt = Annotated[
    Path | None,
    typer.Option(
        "--config",
        help="Read this command's options from a YAML file (keys: option names such as holdout-fraction, and "
        "the positional argument by name; lists allowed); flags given as well override it. An unknown key is "
        "an error. The resolved options are written into the results (and a trained model's run.yaml).",
        is_eager=True,
        callback=_read_config,
        show_default=False,
    ),
]
ReportOpt = Annotated[
    Path | None,
    typer.Option(
        help="Also write a self-contained HTML report with figures (no network needed to view it) here.",
        show_default=False,
    ),
]
MlflowOpt = Annotated[
    str | None,
    typer.Option(
        "--mlflow",
        help="Log params, metrics and artifacts to this MLflow tracking URI (e.g. sqlite:///mlflow.db). "
        "Default: MLFLOW_TRACKING_URI when set. Needs the tracking extra: pip install 'zsrec[tracking]'.",
        show_default=False,
    ),
]


def _resolved_options(ctx: typer.Context) -> dict[str, Any]:
    """The command's final option values, as `--config` reads them back; the tracking URI is left out (where a
    run is logged is not part of the run, and a URI can carry credentials)."""
    from zsrec.config_file import resolved_config

    values = {p.name: ctx.params[p.name] for p in ctx.command.params if p.name in ctx.params}
    return resolved_config(values, leave_out=("config", "mlflow"))


def _tracking_uri(option: str | None) -> str | None:
    """The MLflow store this run logs to (None: no tracking); a missing extra fails now, before any work."""
    from zsrec.tracking import require_mlflow, tracking_uri

    uri = tracking_uri(option)
    if uri is not None:
        require_mlflow()
    return uri


def _check_outputs(out: Path | None, report: Path | None, mlflow: str | None) -> str | None:
    """Refuse unwritable --out and --report paths and a tracking request without MLflow, before any work;
    returns the MLflow store to log to (None: no tracking)."""
    _check_out_path(out)
    _check_out_path(report, "--report")
    return _tracking_uri(mlflow)


def _save_outputs(
    result: dict[str, Any], out: Path | None, report: Path | None, uri: str | None, reporter: LoggingReporter
) -> None:
    """The result JSON (--out), the HTML report, then the MLflow run (which carries both as artifacts)."""
    if out is not None:
        _write_json(out, result, reporter)
    if report is not None:
        from zsrec.reports.html import write_report

        with _user_errors():
            write_report(report, result)
        reporter.message(f"wrote {report}")
    if uri is not None:
        from zsrec.tracking import log_run, result_run

        with _user_errors():
            run_id = log_run(uri, result_run(result, files=[report] if report is not None else []))
        reporter.message(f"logged MLflow run {run_id} to {uri}")


# -- output plumbing --------------------------------------------------------------------------------------
def _stdout() -> Console:
    # Piped output (files, tests) gets wide tables instead of rich's 80-column fallback.
    return Console(width=None if sys.stdout.isatty() else 160, highlight=False)


def _stderr() -> Console:
    return Console(stderr=True, highlight=False, soft_wrap=True)


def _echo_json(document: object) -> None:
    """One JSON document on stdout (dataclasses as objects, nan as null)."""
    from zsrec.evaluation.run import json_ready

    typer.echo(json.dumps(json_ready(_plain(document)), indent=2, ensure_ascii=False, allow_nan=False))


def _plain(value: object) -> object:
    """Dataclass results as dicts, recursively (json_ready does the rest)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _fail(message: str) -> NoReturn:
    typer.echo(f"error: {' '.join(str(message).split())}", err=True)
    raise typer.Exit(EXIT_USER_ERROR)


@contextmanager
def _user_errors() -> Iterator[None]:
    """Turn an error in the user's input into one `error: ...` line and exit code 2 (no traceback)."""
    try:
        yield
    except USER_ERRORS as err:
        _fail(str(err) or type(err).__name__)
    except OSError as err:  # a full disk, a permission, a read-only file system: the machine, not zsrec
        where = f"{err.filename}: " if err.filename else ""
        _fail(f"{where}{err.strerror or err}")


def _reporter() -> LoggingReporter:
    """The commands' Reporter: the library's steps and warnings through `logging` onto stderr, progress bars
    where stderr is a terminal."""
    from zsrec.reporting import console_logging

    return console_logging(_stderr())


def _check_out_path(out: Path | None, option: str = "--out") -> None:
    """Refuse an --out (or other output `option`) that could not be written, before any work is done."""
    from zsrec.io import check_out_writable

    if out is None:
        return
    try:
        check_out_writable(out, option=option)
    except ZsrecError as exc:
        _fail(str(exc))


# -- commands ---------------------------------------------------------------------------------------------
@app.command()
def validate(
    dataset: DatasetArg,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON on stdout.")] = False,
    category_separator: CategorySeparatorOpt = None,
) -> None:
    """Check a dataset and summarise it: sizes, categories per level, users spanning several categories."""
    from zsrec.data import load_dataset, summarize
    from zsrec.evaluation.report import summary_table
    from zsrec.reporting import json_ready

    reporter = _reporter()
    with _user_errors(), reporter.progress(f"loading {dataset}", None):
        data = load_dataset(dataset, category_separator=category_separator)
    for line in data.warnings:
        reporter.warning(line)
    summary = summarize(data)
    if as_json:
        typer.echo(json.dumps(json_ready(summary), indent=2))
    else:
        _stdout().print(summary_table(summary))


@app.command()
def evaluate(
    ctx: typer.Context,
    dataset: DatasetArg,
    protocol: ProtocolOpt = "leave-category-out",
    level: LevelOpt = 1,
    categories: CategoriesOpt = "",
    holdout_fraction: HoldoutFractionOpt = 0.2,
    min_history: MinHistoryOpt = 3,
    seed: SeedOpt = 0,
    test_fraction: TestFractionOpt = 0.2,
    models: Annotated[
        str, typer.Option(help="Comma-separated model names (see `zsrec models`).")
    ] = "random,popularity,tfidf,zero-shot",
    reference: Annotated[
        str | None,
        typer.Option(
            help="launch protocol: the model every model's paired NDCG CI compares against. Default: als where "
            "evaluated, else the first model.",
            show_default=False,
        ),
    ] = None,
    k: Annotated[str, typer.Option("--k", help="Comma-separated cut-offs for NDCG, Recall and HR.")] = "10,50",
    pool: Annotated[
        str | None,
        typer.Option(
            help="Candidates ranked: new (held-out items), all (whole catalog) or both. "
            "Default: new for leave-category-out, all for leave-one-out (which has only all).",
            show_default=False,
        ),
    ] = None,
    encoder: EncoderOpt = "minilm",
    precision: PrecisionOpt = "fp32",
    bootstrap: Annotated[
        int, typer.Option(help="Bootstrap resamples for the NDCG confidence interval (0 = none).")
    ] = 1000,
    out: Annotated[
        Path | None,
        typer.Option(help="Write the full results as JSON here (only once everything succeeded)."),
    ] = None,
    draws: Annotated[
        int | None,
        typer.Option(
            help="Repeat the evaluation on this many seeded category draws (seeds --seed, --seed + 1, ...; 1 to "
            "100) and report each metric's median, quartiles and range, and each model's NDCG over the "
            "strongest baseline's. Needs --holdout-fraction, not --categories.",
            show_default=False,
        ),
    ] = None,
    reveal: Annotated[
        str | None,
        typer.Option(
            help="Warm-up protocol (leave-category-out): comma-separated shares in [0, 1), e.g. 0,0.01,0.05. "
            "At each share, the earliest adopters of the new categories (by time of their first purchase there) "
            "have those purchases revealed to the models and leave the test set.",
            show_default=False,
        ),
    ] = None,
    category_separator: CategorySeparatorOpt = None,
    report: ReportOpt = None,
    mlflow: MlflowOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Evaluate models on items they never saw interactions for, ranking every candidate (full ranking)."""
    from zsrec.evaluation.draws import check_draws, run_draws
    from zsrec.evaluation.evaluate import EvalSettings
    from zsrec.evaluation.report import evaluation_tables
    from zsrec.evaluation.run import check_request, parse_ks, resolve_pools, run_evaluation
    from zsrec.evaluation.warmup import check_reveal, parse_reveal, run_warmup

    reporter = _reporter()
    with _user_errors():
        encoder = _encoder_spec(encoder, precision)
        split_settings = split_settings_from_options(
            protocol, level, categories, holdout_fraction, min_history, seed, test_fraction
        )
        eval_settings = EvalSettings(
            ks=parse_ks(k), pools=resolve_pools(pool, protocol), n_bootstrap=bootstrap, seed=seed, reference=reference
        )
        names = check_request(_parse_models(models), split_settings, eval_settings)
        shares = check_reveal(parse_reveal(reveal), split_settings) if reveal is not None else ()
        if draws is not None:
            check_draws(draws, split_settings)
        uri = _check_outputs(out, report, mlflow)
        embeddings = _embeddings_for(names, encoder, reporter)
        args = (_dataset_arg(dataset, category_separator, reporter), names, split_settings, eval_settings)
        kw: dict[str, Any] = {"encoder": encoder, "embeddings": embeddings, "reporter": reporter}
        kw["command"] = ["zsrec", *sys.argv[1:]]
        if draws is not None:
            result = run_draws(*args, draws=draws, reveal=shares, **kw)
        else:
            result = run_warmup(*args, reveal=shares, **kw) if shares else run_evaluation(*args, **kw)
    result["config"] = _resolved_options(ctx)
    console = _stdout()
    for table in evaluation_tables(result):
        console.print(table)
    _save_outputs(result, out, report, uri, reporter)


@app.command()
def recommend(
    dataset: Annotated[
        str,
        typer.Argument(
            help="A model folder made by `zsrec train` (scored as saved, no refit), or a dataset as in "
            "`zsrec evaluate` (a model is fitted on all of it first).",
            show_default=False,
        ),
    ],
    user: Annotated[
        str | None, typer.Option("--user", help="Id of one user to recommend for.", show_default=False)
    ] = None,
    users: Annotated[
        str | None,
        typer.Option(
            "--users",
            help="Batch export (model folders): `all`, or a file of user ids (one a line, or a csv/parquet/jsonl "
            "with a user_id column). Needs --out.",
            show_default=False,
        ),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(help="Batch output file: .parquet, .csv or .jsonl (written atomically).", show_default=False),
    ] = None,
    category: Annotated[
        str | None,
        typer.Option(
            help='Only items whose category path starts with this: a path prefix ("A > B") or a name.',
            show_default=False,
        ),
    ] = None,
    categories: Annotated[
        str | None,
        typer.Option(help='Model folders: only items in these categories, separated by ";".', show_default=False),
    ] = None,
    new_only: Annotated[
        bool, typer.Option("--new-only", help="Model folders: only items nobody had bought when it was trained.")
    ] = False,
    text: Annotated[
        str | None,
        typer.Option(
            help="Instead of recommending, score this new product text against the user (zero-shot models).",
            show_default=False,
        ),
    ] = None,
    k: Annotated[int, typer.Option("--k", help="How many items to recommend per user.")] = 10,
    model: Annotated[str, typer.Option(help="Datasets: the model to fit on the whole dataset.")] = "zero-shot-mean",
    encoder: EncoderOpt = "minilm",
    engine: Annotated[
        str, typer.Option(help="Batch export engine: local or spark (needs pyspark and Java).")
    ] = "local",
    spark_master: Annotated[
        str | None,
        typer.Option(help="Spark master URL; default $SPARK_MASTER, else local[*].", show_default=False),
    ] = None,
    memory_mb: Annotated[int, typer.Option(help="Batch export: MiB one chunk of users' scores may take.")] = 256,
    as_json: JsonOpt = False,
) -> None:
    """Top items for one user, or (model folders, --users) for every user into a file.

    With a model folder: `--user U` ranks with the saved model (`--json` gives the HTTP service's /recommend
    answer); `--users all --out recs.parquet` streams every user's top k, in chunks of bounded memory, into
    user_id, item_id, score, rank and the explaining history item (because_item_id).
    With a dataset: fit --model on all of it, then show --user's top items (or score --text for them).
    """
    with _user_errors():
        if k < 1:
            raise ConfigError(f"k must be >= 1, got {k}")
        folder = Path(dataset)
        if (folder / "config.json").is_file():
            wanted = [c.strip() for c in (categories or "").split(";") if c.strip()] + ([category] if category else [])
            _recommend_from_folder(
                folder, user, users, out, wanted, new_only, text, k, as_json, engine, spark_master, memory_mb
            )
            return
        if users is not None or out is not None or new_only or categories is not None:
            raise ConfigError(
                f"--users, --out, --new-only and --categories need a model folder (`zsrec train`); "
                f"{dataset} has no config.json"
            )
        if user is None:
            raise ConfigError("give --user")
    _recommend_from_dataset(dataset, user, category, text, k, model, encoder, as_json)


def _recommend_from_folder(
    folder: Path,
    user: str | None,
    users: str | None,
    out: Path | None,
    categories: list[str],
    new_only: bool,
    text: str | None,
    k: int,
    as_json: bool,
    engine: str,
    spark_master: str | None,
    memory_mb: int,
) -> None:
    from zsrec.batch import BatchSettings, export_recommendations, output_format, user_ranking

    if text is not None:
        raise ConfigError("--text needs a dataset, not a model folder")
    if (user is None) == (users is None):
        raise ConfigError("give exactly one of --user (one user) and --users (all, or a file of ids)")
    if engine not in ("local", "spark"):
        raise ConfigError(f"--engine must be local or spark, got {engine!r}")
    if user is not None:
        answer = user_ranking(folder, user, k=k, new_only=new_only, categories=categories or None)
        if as_json:
            _echo_json(answer)
            return
        for rank, item in enumerate(answer["items"], start=1):
            reason = (
                f"  (because {item['because'][0]['title'] or item['because'][0]['item_id']})" if item["because"] else ""
            )
            typer.echo(f"{rank:>3}  {item['score']:8.4f}  {item['item_id']}  {item['title']}{reason}")
        return
    if out is None:
        raise ConfigError("--users needs --out (a .parquet, .csv or .jsonl file)")
    _check_out_path(out)
    output_format(out)
    settings = BatchSettings(k=k, new_only=new_only, categories=tuple(categories) or None, memory_mb=memory_mb)
    reporter = _reporter()
    if engine == "spark":
        from zsrec.scale.spark import spark_recommend

        result = spark_recommend(
            folder, out=out, users=users, settings=settings, master=spark_master, reporter=reporter
        )
    else:
        result = export_recommendations(folder, out=out, users=users, settings=settings, reporter=reporter)
    reporter.message(
        f"wrote {result.rows:,} rows for {result.users:,} users to {result.out} "
        f"in {result.seconds:.1f} s ({result.users_per_second:,.0f} users/s)"
    )


def _recommend_from_dataset(
    dataset: str, user: str, category: str | None, text: str | None, k: int, model: str, encoder: str, as_json: bool
) -> None:
    from zsrec.data import load_dataset
    from zsrec.data.lookup import find_user, items_in_category
    from zsrec.demo import fit_model
    from zsrec.evaluation.report import text_match_lines, user_example_table, user_header_lines
    from zsrec.models.explain import explain_recommendations, match_text
    from zsrec.models.registry import text_models

    reporter = _reporter()
    console = _stdout()
    with _user_errors():
        names = _parse_models(model, "--model", one=True, folders=False)
        name = names[0]
        if name == "popularity-oracle":
            raise ConfigError("popularity-oracle only exists inside an evaluation (it reads the test targets)")
        if text is not None and name not in text_models():
            raise ConfigError(f"--text needs a zero-shot model such as zero-shot-mean, got {name!r}")
        embeddings = _embeddings_for(names, encoder, reporter)
        with reporter.progress(f"loading {dataset}", None):
            data = load_dataset(dataset)
        for line in data.warnings:
            reporter.warning(line)
        index = find_user(data, user)
        candidates = items_in_category(data, category) if category else None
        fitted = fit_model(data, name, encoder=encoder, embeddings=embeddings, reporter=reporter)
        if text is not None:
            match = match_text(fitted, data, index, text)
        else:
            example = explain_recommendations(fitted, data, index, k=k, candidates=candidates)
    if as_json:
        _echo_json(
            {"model": name, **_plain(match)}
            if text is not None
            else {"model": name, "category": category, **_plain(example)}
        )
        return
    if text is not None:
        for line in text_match_lines(match):
            console.print(line, markup=False)
        return
    for line in user_header_lines(example):
        console.print(line, markup=False)
    where = f" in {category}" if category else ""
    console.print(user_example_table(example, title=f"top {k} from {name}{where}"))


@app.command()
def demo(
    fast: Annotated[
        bool,
        typer.Option(
            "--fast", help="Quicker: skip the separate zero-shot model, one warm-up step, 200 bootstrap resamples."
        ),
    ] = False,
    encoder: EncoderOpt = "minilm",
    precision: PrecisionOpt = "fp32",
    out: Annotated[
        Path | None, typer.Option(help="Also write the evaluation results as JSON here (as evaluate --out).")
    ] = None,
    report: ReportOpt = None,
) -> None:
    """Launch five grocery categories the shop never sold and see who would buy them (Complete Journey)."""
    from dataclasses import replace

    from zsrec.demo import DemoSettings, run_demo
    from zsrec.evaluation.report import (
        launch_story_table,
        metrics_table,
        per_category_table,
        result_pools,
        user_example_table,
        user_header_lines,
    )

    reporter = _reporter()
    with _user_errors():
        settings = replace(DemoSettings.fast() if fast else DemoSettings(), encoder=_encoder_spec(encoder, precision))
        _check_out_path(out)
        _check_out_path(report, "--report")
        outcome = run_demo(settings, reporter)
    console = _stdout()
    result = outcome.result
    protocol = result["protocol"]
    console.print(
        f"\nNew categories: {'; '.join(protocol['heldout_categories'])} — {protocol['n_new_items']:,} items "
        f"without a single purchase in the training data; {protocol['n_test_users']:,} households to find.",
        markup=False,
    )
    console.print(f"Data: {outcome.reduction}.", markup=False)
    for pool in result_pools(result):
        console.print(metrics_table(result, pool))
        per_category = per_category_table(result, pool)
        if per_category is not None:
            console.print(per_category)
    if outcome.warmup is not None:
        console.print(launch_story_table(result, outcome.warmup))
    if outcome.example is not None:
        console.print()
        for line in user_header_lines(outcome.example):
            console.print(line, markup=False)
        title = f"top {settings.example_k} new items for this household"
        console.print(user_example_table(outcome.example, title=title))
    if outcome.scenarios is not None:
        from zsrec.scenarios.examples import example_lines

        console.print("\nOne example of each application scenario (zsrec audience / similar / forecast / profile):")
        for line in example_lines(outcome.scenarios):
            console.print(line, markup=False)
    if out is not None:
        _write_json(out, result, reporter)
    if report is not None:
        from zsrec.reports.html import write_report

        with _user_errors():
            write_report(report, result, warmup=outcome.warmup, title="zsrec demo: launching new categories")
        reporter.message(f"wrote {report}")


@app.command()
def report(
    result: Annotated[
        Path, typer.Argument(help="A result JSON written by evaluate --out, robustness --out or demo --out.")
    ],
    out: Annotated[Path, typer.Option(help="The HTML file to write.", show_default=False)],
) -> None:
    """Make the HTML report of a saved result: figures and run facts in one self-contained file."""
    from zsrec.reports.html import read_result, write_report

    reporter = _reporter()
    with _user_errors():
        _check_out_path(out)
        write_report(out, read_result(result))
    reporter.message(f"wrote {out}")


@app.command("models")
def list_models() -> None:
    """List the model names `--models` and `--model` accept."""
    from zsrec.evaluation.report import display_name
    from zsrec.models.registry import model_names, text_models

    text = text_models()
    for name in model_names():
        kind = "text" if name in text else "interactions only"
        typer.echo(f"{display_name(name):28s} {kind}")


# -- training commands (train) -------------------------------------------------------------------------
TrainProtocolOpt = Annotated[
    str,
    typer.Option(
        help="none: train on every interaction (for serving); leave-category-out or leave-one-out: hold "
        "out exactly what `zsrec evaluate` with the same split options tests, so the folder can be evaluated."
    ),
]
MembersOpt = Annotated[
    str, typer.Option(help="Ensemble members, comma-separated model names (only with --model ensemble).")
]
AdversarialOpt = Annotated[
    str,
    typer.Option(
        help="Adversarial training (two-tower-lora, two-tower-full, cross-encoder; the heads take only "
        "'augment=stuffing'): comma-separated field=value pairs of AdversarialSettings, e.g. "
        "'method=pgd,epsilon=0.5' (attacks on the word embeddings) or 'augment=typos+stuffing' (perturbed "
        "training texts, stuffed hard negatives)."
    ),
]
TrainingOpt = Annotated[
    str,
    typer.Option(
        help="Training settings of two-tower-lora, two-tower-full, cross-encoder or a head (seed-linear, "
        "two-tower-head, mlp-head): comma-separated field=value pairs of their training dataclass, e.g. "
        "'epochs=1,max_pairs=2000' (ContrastiveSettings, CrossEncoderTrainingSettings, HeadTrainingSettings)."
    ),
]
ValidationLevelOpt = Annotated[
    int | None,
    typer.Option(
        help="Category level at which zero-shot and ensemble hold out validation categories to tune: the "
        "level at which new categories will arrive. Default: --level under leave-category-out, otherwise "
        "their own choice (the top level if it has at least 4 categories).",
        show_default=False,
    ),
]


@app.command()
def train(
    ctx: typer.Context,
    dataset: DatasetArg,
    model: Annotated[str, typer.Option(help="Model to train (see `zsrec models`).", show_default=False)],
    out: Annotated[Path, typer.Option(help="Folder to write the model into (created; all or nothing).")],
    protocol: TrainProtocolOpt = "none",
    level: LevelOpt = 1,
    categories: CategoriesOpt = "",
    holdout_fraction: HoldoutFractionOpt = 0.2,
    min_history: MinHistoryOpt = 3,
    seed: SeedOpt = 0,
    members: MembersOpt = "",
    encoder: EncoderOpt = "minilm",
    precision: PrecisionOpt = "fp32",
    adversarial: AdversarialOpt = "",
    training: TrainingOpt = "",
    validation_level: ValidationLevelOpt = None,
    overwrite: Annotated[bool, typer.Option(help="Replace a non-empty --out folder.")] = False,
    category_separator: CategorySeparatorOpt = None,
    mlflow: MlflowOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Train a model and save it as a folder that `evaluate --models FOLDER` reads (and `serve`, for text models).

    With a split protocol, the held-out test categories stay out of training, and `evaluate` with the same split
    options accepts the folder; with `--protocol none` (the default) every interaction is used, for serving."""
    from zsrec.train import check_train_request, parse_training_options, train_model
    from zsrec.training.artifacts import ALL_DATA

    reporter = _reporter()
    with _user_errors():
        encoder = _encoder_spec(encoder, precision)
        name = _parse_models(model, "--model", one=True, folders=False)[0]
        member_names = tuple(_parse_models(members, "--members", folders=False)) if members.strip() else ()
        check_train_request(name, members=member_names, validation_level=validation_level)
        uri = _tracking_uri(mlflow)
        attack, overrides = parse_training_options(name, adversarial, training)
        split_settings = (
            None
            if protocol == ALL_DATA
            else split_settings_from_options(protocol, level, categories, holdout_fraction, min_history, seed)
        )
        _, record = train_model(
            _dataset_arg(dataset, category_separator, reporter),
            name,
            out=out,
            split_settings=split_settings,
            members=member_names,
            encoder=encoder,
            adversarial=attack,
            training=overrides,
            validation_level=validation_level,
            overwrite=overwrite,
            reporter=reporter,
            command=("zsrec", *sys.argv[1:]),
            run_config=_resolved_options(ctx),
        )
    params = f", {record.n_trainable_params:,} trainable parameters" if record.n_trainable_params else ""
    held = f"; held out {'; '.join(record.heldout_categories)}" if record.heldout_categories else ""
    typer.echo(f"trained {name} in {record.train_seconds:.1f}s{params}{held}")
    typer.echo(f"wrote {out}")
    if uri is not None:
        from zsrec.tracking import log_run, training_run

        with _user_errors():
            run_id = log_run(uri, training_run(record.to_dict(), out, config=_resolved_options(ctx)))
        reporter.message(f"logged MLflow run {run_id} to {uri}")


@app.command()
def embed(
    dataset: DatasetArg,
    out: Annotated[
        Path, typer.Option(help="Parquet file to write: item_id and vector (float32, unit length).", show_default=False)
    ],
    encoder: EncoderOpt = "minilm",
    precision: PrecisionOpt = "fp32",
    engine: Annotated[str, typer.Option(help="Where texts are encoded: local (this process) or spark.")] = "local",
    spark_master: Annotated[
        str | None,
        typer.Option(
            help="Spark master for --engine spark (default: $SPARK_MASTER, else local[*]).", show_default=False
        ),
    ] = None,
    cache: Annotated[
        bool,
        typer.Option(
            "--cache/--no-cache",
            help="Read and add to the embedding cache; --no-cache neither reads nor writes it (honest timings).",
        ),
    ] = True,
) -> None:
    """Turn every catalog item's text into a vector, written as parquet (encoder, template and precision in
    its metadata); items without any text get a zero vector."""
    import time

    from zsrec.embed import EmbedSettings, embed_dataset
    from zsrec.encoders import split_precision

    reporter = _reporter()
    with _user_errors():
        encoder, precision = split_precision(_encoder_spec(encoder, precision))
        settings = EmbedSettings(
            encoder=encoder, precision=precision, engine=engine, use_cache=cache, spark_master=spark_master
        )
        spark = None
        if engine == "spark":
            from zsrec.scale.spark import embed_on_spark as spark
        start = time.perf_counter()
        result = embed_dataset(
            dataset, out, settings, reporter=reporter, show_progress=reporter.progress_bars, spark=spark
        )
    seconds = time.perf_counter() - start
    n = len(result.item_ids)
    rate = n / max(seconds, 1e-9)
    typer.echo(f"embedded {n:,} items with {result.encoder_id} in {seconds:.1f}s ({rate:.1f} items/s)")
    typer.echo(f"wrote {out}")


# -- robustness commands (robustness) ------------------------------------------------------------------
@app.command()
def robustness(
    dataset: DatasetArg,
    level: LevelOpt = 1,
    categories: CategoriesOpt = "",
    holdout_fraction: HoldoutFractionOpt = 0.2,
    min_history: MinHistoryOpt = 3,
    seed: SeedOpt = 0,
    models: Annotated[str, typer.Option(help="Comma-separated model names (see `zsrec models`).")] = "tfidf,zero-shot",
    attacks: Annotated[
        str, typer.Option(help="Comma-separated attacks: typos, stuffing, noise, no-brand.")
    ] = "typos,stuffing,noise,no-brand",
    typo_rate: Annotated[float, typer.Option(help="typos: probability that a letter is dropped or swapped.")] = 0.1,
    n_stuffed: Annotated[int, typer.Option(help="stuffing: new items whose titles get stuffed.")] = 20,
    n_keywords: Annotated[int, typer.Option(help="stuffing: frequent words of other categories appended.")] = 10,
    k: Annotated[int, typer.Option("--k", help="Cut-off of NDCG and of the stuffed-item top-k share.")] = 10,
    encoder: EncoderOpt = "minilm",
    bootstrap: Annotated[int, typer.Option(help="Bootstrap resamples for the confidence intervals (0 = none).")] = 1000,
    out: Annotated[Path | None, typer.Option(help="Write the full results as JSON here.")] = None,
    report: ReportOpt = None,
    mlflow: MlflowOpt = None,
) -> None:
    """Tamper with the new items' text (typos, keyword stuffing, noise, no brand) and measure the ranking damage."""
    from rich.table import Table

    from zsrec.evaluation.run import RunOptions
    from zsrec.robustness.attacks import AttackSettings, parse_attacks
    from zsrec.robustness.evaluate import RobustnessSettings
    from zsrec.robustness.run import run_robustness

    reporter = _reporter()
    with _user_errors():
        split_settings = split_settings_from_options(
            "leave-category-out", level, categories, holdout_fraction, min_history, seed
        )
        attack = AttackSettings(typo_rate=typo_rate, n_stuffed=n_stuffed, n_keywords=n_keywords, seed=seed)
        settings = RobustnessSettings(
            attacks=parse_attacks(attacks), attack=attack, k=k, n_bootstrap=bootstrap, seed=seed
        )
        uri = _check_outputs(out, report, mlflow)
        names = _parse_models(models)
        embeddings = _embeddings_for(names, encoder, reporter)
        options = RunOptions(encoder, embeddings, reporter, ["zsrec", *sys.argv[1:]])
        result = run_robustness(dataset, names, split_settings, settings, options)
    key = f"ndcg@{k}"
    table = Table(title=f"{key} on the new pool: clean, and under each attack (drop)")
    for column in ["model", f"clean {key}", *settings.attacks]:
        table.add_column(column)
    for name, r in result["results"].items():
        cells = [f"{x[key]:.4f} ({-x[f'{key}_drop']:+.4f})" for x in r["attacks"].values()]
        table.add_row(name, f"{r['clean'][key]:.4f}", *cells)
    console = _stdout()
    console.print(table)
    if "stuffing" in settings.attacks:
        stuffing = Table(title=f"keyword stuffing: {len(result['stuffed_items'])} stuffed new items")
        for column in ("model", "mean rank gain", f"users with a stuffed item in top-{k}", "same items unstuffed"):
            stuffing.add_column(column)
        for name, r in result["results"].items():
            s = r["attacks"]["stuffing"]
            stuffing.add_row(
                name, f"{s['mean_rank_gain']:.1f}", f"{s[f'top{k}_share']:.3f}", f"{s[f'top{k}_share_clean']:.3f}"
            )
        console.print(stuffing)
    _save_outputs(result, out, report, uri, reporter)


# -- service commands (serve) --------------------------------------------------------------------------
@app.command()
def serve(
    model_dir: Annotated[Path, typer.Argument(help="A model folder made by `zsrec train` (it holds service.json).")],
    host: Annotated[str, typer.Option(help="Interface to listen on (non-loopback needs API keys).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.", min=1, max=65535)] = 8000,
    access_log: Annotated[
        bool, typer.Option(help="Log one JSON line per request, with its request id (costs CPU under heavy load).")
    ] = True,
    precision: Annotated[
        str | None,
        typer.Option(
            help="Precision of the encoder that embeds new items and texts: fp32 or int8. It must be the one the "
            "folder's vectors were made with (`zsrec train --precision`), which is also the default.",
            show_default=False,
        ),
    ] = None,
    api_keys_file: Annotated[
        Path | None, typer.Option(help="File of API keys, one a line (# comments), added to ZSREC_API_KEYS.")
    ] = None,
    insecure: Annotated[
        bool, typer.Option("--insecure", help="Allow a non-loopback --host without API keys (anyone can write).")
    ] = False,
    config: ConfigOpt = None,
) -> None:
    """Serve recommendations, live item updates, similar items and audiences over HTTP (docs at /docs).

    Known users are ranked by the folder's own model (the tuned zero-shot fusion, a trained head, launch-ranker),
    as `recommend_users` ranks them; posted items and events reach it at once. A model that cannot be served
    refuses to start.

    Settings from the environment:

    ZSREC_API_KEYS (comma-separated; clients send 'Authorization: Bearer KEY'): once set, writes need a key;
    ZSREC_READ_AUTH=1: reads too. ZSREC_CORS_ORIGINS: browser origins allowed (CORS is off without it).

    ZSREC_READ_THREADS, ZSREC_WRITE_THREADS: requests served at once (default two per core, and 2).

    ZSREC_ANN_THRESHOLD, ZSREC_TARGET_RECALL, ZSREC_INDEX_CODEC (sq8 or flat): the vector index.

    ZSREC_ENCODER_PROCESS (1, or 0 to encode in the server process); ZSREC_MAX_BODY_BYTES.
    """
    # One BLAS thread per request (set before numpy loads); the service also limits it at start-up.
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, "1")
    with _user_errors():
        from zsrec.check import check_service
        from zsrec.service.app import ServiceConfig
        from zsrec.service.bundle import Manifest
        from zsrec.service.security import check_bind
        from zsrec.service.served import check_servable

        service_config = ServiceConfig.from_env(api_keys_file=api_keys_file, access_log=access_log)
        check_bind(host, service_config.access, insecure=insecure)
        check_service(model_dir)  # a wrong or damaged folder is one error line, not a traceback from the server
        manifest = Manifest.read(model_dir)
        check_servable(model_dir)  # so is a model that cannot be served
        if precision is not None:
            _check_serving_precision(manifest.encoder, precision)
    import uvicorn

    from zsrec.service.app import create_app
    from zsrec.service.observability import configure_access_log

    configure_access_log()
    # uvicorn's own access log is off: the app logs each request as JSON, with its request id
    app_ = create_app(model_dir, service_config)
    uvicorn.run(app_, host=host, port=port, workers=1, log_level="info", access_log=False)


def _check_serving_precision(spec: str, precision: str) -> None:
    """Refuse a --precision other than the model folder's: new items' vectors would not match the stored ones."""
    from zsrec.encoders import split_precision

    wanted = _encoder_spec(split_precision(spec)[0], precision)
    if wanted != spec:
        trained = split_precision(spec)[1]
        raise ConfigError(
            f"--precision {precision}: the folder's vectors were made at precision {trained} (encoder {spec!r}); "
            f"serve it at {trained}, or train it again with --precision {precision}"
        )


@app.command()
def check(
    folder: Annotated[Path, typer.Argument(help="A model or service folder made by `zsrec train`.")],
    as_json: Annotated[
        bool, typer.Option("--json", help='Print {"folder", "ok", "checked": [...]} on stdout instead of OK.')
    ] = False,
) -> None:
    """Verify a saved folder as loading it would: every file against manifest.json (size, SHA-256, array dtype
    and shape), then the values (finite vectors, indexes in range), training.json, service.json and service.db.
    Prints OK, or one line naming the damaged file (exit code 2)."""
    from zsrec.check import check_folder

    _reporter()  # warnings (a folder without manifest.json) go to stderr
    with _user_errors():
        done = check_folder(folder)
    if as_json:
        _echo_json({"folder": str(folder), "ok": True, "checked": done})
        return
    for line in done:
        typer.echo(f"  {line}", err=True)
    typer.echo(f"OK {folder}")


# -- scenario commands (audience, similar, forecast, profile) ------------------------------------------
ScenarioLevelOpt = Annotated[int, typer.Option(help="Category level (1 = top).")]


def _scenario_data(dataset: str, encoder: str, reporter: LoggingReporter):  # -> (Dataset, EmbeddingSource)
    """Load the dataset and the encoder for a scenario command (the encoder first: a bad one fails fast)."""
    from zsrec.data import load_dataset

    embeddings = _embeddings_for(["zero-shot-mean"], encoder, reporter)
    with reporter.progress(f"loading {dataset}", None):
        data = load_dataset(dataset)
    for line in data.warnings:
        reporter.warning(line)
    return data, embeddings


@app.command()
def audience(
    dataset: DatasetArg,
    text: Annotated[str | None, typer.Option(help="The ad: a text (a campaign, a new product).")] = None,
    items: Annotated[str | None, typer.Option(help="The ad: comma-separated item ids it promotes.")] = None,
    category: Annotated[str | None, typer.Option(help="The ad: a category (path or unique name at --level).")] = None,
    level: ScenarioLevelOpt = 2,
    k: Annotated[int, typer.Option("--k", help="How many users to list.")] = 10,
    temperature: Annotated[
        float, typer.Option(help="Soft-count temperature: smaller counts only closer items.")
    ] = 0.05,
    encoder: EncoderOpt = "minilm",
    as_json: JsonOpt = False,
) -> None:
    """Rank users for an ad: who bought most things close to it (zero-shot, nothing learned from responses)."""
    from zsrec.scenarios.audience import AudienceSettings
    from zsrec.scenarios.report import audience_lines
    from zsrec.scenarios.tasks import audience as rank

    reporter = _reporter()
    with _user_errors():
        settings = AudienceSettings(temperature=temperature)
        ids = split_list(items, "--items") if items is not None else None
        data, embeddings = _scenario_data(dataset, encoder, reporter)
        ad, members = rank(
            data, embeddings, text=text, items=ids, category=category, level=level, k=k, settings=settings
        )
    if as_json:
        _echo_json({"ad": ad, "users": members})
        return
    for line in audience_lines(ad, members):
        typer.echo(line)


@app.command()
def similar(
    dataset: DatasetArg,
    item: Annotated[str, typer.Option("--item", help="Id of the item to start from.", show_default=False)],
    other_categories: Annotated[
        bool, typer.Option("--other-categories", help="Only items outside the item's own category at --level.")
    ] = False,
    level: Annotated[int, typer.Option(help="Category level for --other-categories (1 = top).")] = 1,
    k: Annotated[int, typer.Option("--k", help="How many items to list.")] = 10,
    encoder: EncoderOpt = "minilm",
    as_json: JsonOpt = False,
) -> None:
    """Items whose text is closest to one item's, optionally only in other categories (cross-category)."""
    from zsrec.scenarios.report import similar_lines
    from zsrec.scenarios.tasks import similar as find_similar

    reporter = _reporter()
    with _user_errors():
        if k < 1:
            raise ConfigError(f"k must be >= 1, got {k}")
        data, embeddings = _scenario_data(dataset, encoder, reporter)
        query, found = find_similar(data, embeddings, item, k=k, other_categories=other_categories, level=level)
    if as_json:
        _echo_json({"item": query, "other_categories": other_categories, "level": level, "similar": found})
        return
    for line in similar_lines(query, found, other_categories=other_categories, level=level):
        typer.echo(line)


@app.command()
def forecast(
    dataset: DatasetArg,
    category: Annotated[
        str | None, typer.Option(help="A category of the dataset, forecast as if it were new (its sales hidden).")
    ] = None,
    text: Annotated[str | None, typer.Option(help="A new category described in words.")] = None,
    level: ScenarioLevelOpt = 2,
    n_items: Annotated[
        int | None, typer.Option(help="--text: items the new category will have (default: the median category).")
    ] = None,
    calibration: Annotated[str, typer.Option(help="platt or isotonic, fitted on validation categories.")] = "platt",
    encoder: EncoderOpt = "minilm",
    as_json: JsonOpt = False,
) -> None:
    """How many users will adopt a new category: the sum of calibrated P(user adopts category) or the per-item
    baseline, whichever did better on validation categories, with an interval."""
    from zsrec.scenarios.adoption import AdoptionSettings
    from zsrec.scenarios.forecast import choose_forecast, without_categories
    from zsrec.scenarios.report import forecast_lines
    from zsrec.scenarios.tasks import forecast as run_forecast

    reporter = _reporter()
    with _user_errors():
        settings = AdoptionSettings(level=level, calibration=calibration)
        data, embeddings = _scenario_data(dataset, encoder, reporter)
        result = run_forecast(
            data, embeddings, category=category, text=text, level=level, n_items=n_items, settings=settings
        )
        path = result.forecast.category  # the category's full path, or "(text)"
        known = data if category is None else without_categories(data, level, [path])
        chosen, validation = choose_forecast(
            known,
            [path if category is not None else repr(text)],
            embeddings,
            settings,
            calibrated=[result.forecast.expected_adopters],
            n_items=[result.category_items],
        )
    if as_json:
        _echo_json(
            {"category": category, "text": text, **_plain(result), "chosen": chosen[0], "validation": validation}
        )
        return
    for line in forecast_lines(category or repr(text), result, chosen[0]):
        typer.echo(line)


@app.command()
def profile(
    dataset: DatasetArg,
    user: Annotated[str, typer.Option("--user", help="Id of the user to profile.", show_default=False)],
    level: ScenarioLevelOpt = 2,
    k: Annotated[int, typer.Option("--k", help="How many interest tags.")] = 5,
    new_only: Annotated[bool, typer.Option("--new-only", help="Only categories the user has not bought yet.")] = False,
    encoder: EncoderOpt = "minilm",
    as_json: JsonOpt = False,
) -> None:
    """A user's top interest tags (category names, scored zero-shot) and the history items behind each."""
    from zsrec.scenarios.report import profile_lines
    from zsrec.scenarios.tasks import profile as interest_profile

    reporter = _reporter()
    with _user_errors():
        data, embeddings = _scenario_data(dataset, encoder, reporter)
        tags = interest_profile(data, embeddings, user, level=level, k=k, new_only=new_only)
    if as_json:
        _echo_json({"user_id": user, "new_only": new_only, "tags": tags})
        return
    for line in profile_lines(user, tags, new_only=new_only):
        typer.echo(line)


def _write_json(out: Path, result: dict[str, object], reporter: LoggingReporter) -> None:
    """Write `result` atomically: a failed write leaves no file behind, and an error line, exit 2."""
    from zsrec.io import atomic_write_text

    try:
        atomic_write_text(out, json.dumps(result, indent=2, allow_nan=False) + "\n")
    except OSError as error:
        _fail(f"cannot write {out}: {error.strerror or error}")
    reporter.message(f"wrote {out}")


def _embeddings_for(names: list[str], encoder: str, reporter: LoggingReporter) -> EmbeddingSource | None:
    """The EmbeddingSource the text models among `names` share (None without one); a bad encoder fails now."""
    from zsrec.train import text_embeddings

    return text_embeddings(names, encoder, reporter)


def _parse_models(text: str, option: str = "--models", *, one: bool = False, folders: bool = True) -> list[str]:
    """The one reading of every model option: comma-separated registered names (and, where `folders`, model
    folders made by `zsrec train`), de-duplicated in order; an unknown name raises ConfigError."""
    from zsrec.evaluation.run import model_entries
    from zsrec.models.registry import parse_model_names

    names = model_entries(split_list(text, option))[0] if folders else parse_model_names(text)
    if one and len(names) != 1:
        raise ConfigError(f"{option} takes one model name, got {text!r}")
    return names


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point: usage errors (an unknown option, a value of the wrong type) end as one
    `error:` line and exit code 2 too, like every other bad input, instead of click's boxed usage text."""
    # typer 0.29 vendors click as typer._click (pinned in requirements.lock); its UsageError is not click's
    from typer import Abort
    from typer._click.exceptions import NoArgsIsHelpError, UsageError

    try:
        code = app(args=argv, prog_name="zsrec", standalone_mode=False)
    except NoArgsIsHelpError as err:
        typer.echo(err.ctx.get_help() if err.ctx else str(err))
        code = 0
    except UsageError as err:
        command = f"zsrec {err.ctx.info_name}" if err.ctx is not None and err.ctx.parent is not None else "zsrec"
        typer.echo(f"error: {' '.join(err.format_message().split())} (see '{command} --help')", err=True)
        code = EXIT_USER_ERROR
    except Abort:
        typer.echo("error: aborted", err=True)
        code = 130
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()
