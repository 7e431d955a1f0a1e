"""One self-contained HTML report from a result document: figures inlined as base64 PNG, inline CSS, no
script and no link to anything outside the file, so it opens offline and can be mailed or archived as is."""

from __future__ import annotations

import base64
import html
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from zsrec.errors import ConfigError
from zsrec.io import atomic_write_text
from zsrec.reports.figures import ReportFigure
from zsrec.reports.sections import Section, report_kind, report_sections

STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2rem auto; max-width: 62rem;
       padding: 0 1rem; color: #1d1d1f; line-height: 1.45; }
h1 { font-size: 1.5rem; margin-bottom: 0.2rem; }
h2 { font-size: 1.15rem; border-bottom: 1px solid #ddd; padding-bottom: 0.2rem; margin-top: 2rem; }
table.facts { border-collapse: collapse; font-size: 0.9rem; }
table.facts th { text-align: left; padding: 0.2rem 1rem 0.2rem 0; vertical-align: top; white-space: nowrap;
                 color: #555; font-weight: 600; }
table.facts td { padding: 0.2rem 0; word-break: break-word; }
figure { margin: 1rem 0 1.5rem 0; }
figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption { font-size: 0.85rem; color: #555; margin-top: 0.3rem; }
details pre { background: #f6f6f6; padding: 0.6rem; overflow-x: auto; font-size: 0.8rem; }
p.note { font-size: 0.9rem; color: #555; }
"""

TITLES = {
    "evaluation": "Evaluation on new categories",
    "draws": "Evaluation over seeded category draws",
    "warmup": "Warm-up evaluation",
    "robustness": "Robustness to tampered item text",
    "scenarios": "Application scenarios",
}


def render_report(title: str, sections: Sequence[Section]) -> str:
    """The HTML page of `sections` under `title`."""
    body = [f"<h1>{html.escape(title)}</h1>", '<p class="note">Made by zsrec from a result document.</p>']
    for section in sections:
        body.append(f"<h2>{html.escape(section.title)}</h2>")
        if section.note:
            body.append(f'<p class="note">{html.escape(section.note)}</p>')
        if section.facts:
            rows = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>" for k, v in section.facts)
            body.append(f'<table class="facts">{rows}</table>')
        if section.preformatted:
            body.append(
                "<details><summary>resolved configuration</summary>"
                f"<pre>{html.escape(section.preformatted)}</pre></details>"
            )
        body += [_figure(f) for f in section.figures]
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{html.escape(title)}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n"
        + "\n".join(body)
        + "\n</body>\n</html>\n"
    )


def _figure(figure: ReportFigure) -> str:
    data = base64.b64encode(figure.png).decode("ascii")
    return (
        f'<figure><img alt="{html.escape(figure.title)}" src="data:image/png;base64,{data}">'
        f"<figcaption>{html.escape(figure.caption)}</figcaption></figure>"
    )


def report_html(doc: Mapping[str, Any], *, warmup: Mapping[str, Any] | None = None, title: str | None = None) -> str:
    """The report of a result document (`warmup`: the demo's warm-up document, for its launch story)."""
    kind = report_kind(doc)
    dataset = f": {doc['dataset']}" if doc.get("dataset") else ""
    return render_report(title or f"{TITLES[kind]}{dataset}", report_sections(doc, warmup=warmup))


def write_report(
    path: str | Path, doc: Mapping[str, Any], *, warmup: Mapping[str, Any] | None = None, title: str | None = None
) -> Path:
    """Write `doc`'s report to `path` atomically (nothing is left behind if making it fails)."""
    path = Path(path)
    atomic_write_text(path, report_html(doc, warmup=warmup, title=title))
    return path


def read_result(path: str | Path) -> dict[str, Any]:
    """A saved result document; ConfigError naming the file when it is not JSON or not a result."""
    path = Path(path)
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise ConfigError(f"{path} is not JSON: {err.msg} at line {err.lineno}") from err
    if not isinstance(doc, dict):
        raise ConfigError(f"{path} holds a JSON {type(doc).__name__}, not a result document")
    report_kind(doc)
    return doc
