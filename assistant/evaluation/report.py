"""Evaluation reports: metric and per-question tables, plots, report.md and report.html.

Works on finished runs (anything with .label, .k, .threshold, .results and
.metrics, i.e. evaluation.EvalRun); one run is a report, two are shown side
by side. The HTML is self-contained: plots are base64 PNGs and every piece of
text is HTML-escaped; report.md's cells are Markdown-escaped (document text never
becomes markup). Matplotlib is used through its object API with the Agg canvas,
never pyplot, so it is safe in a server thread. Does not run questions or compute metrics.
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Sequence
from pathlib import Path

from .metrics import metric_table, outcome
from ..text.markdown import escape_markdown

RANK_BUCKETS = 10  # ranks 1..10 each get a bar, then "none"


def metric_columns(runs: Sequence) -> dict[str, dict]:
    """Column name -> metric dict: all questions, then each split, for each run."""
    columns: dict[str, dict] = {}
    for run in runs:
        prefix = f"{run.label} " if len(runs) > 1 else ""
        splits = run.metrics.get("by_split", {})
        if len(splits) != 1:  # one split only: its column already says everything
            columns[f"{prefix}all"] = run.metrics
        for split, m in splits.items():
            columns[f"{prefix}{split}"] = m
    return columns


def metric_rows(runs: Sequence) -> tuple[list[str], list[list[str]]]:
    columns = metric_columns(runs)
    return ["metric", *columns], metric_table(columns)


def question_rows(runs: Sequence) -> tuple[list[str], list[list[str]]]:
    """One row per question; rank/abstained/confidence/outcome/answer for each run."""
    headers = ["id", "split", "answerable", "question"]
    for run in runs:
        p = f"{run.label} " if len(runs) > 1 else ""
        headers += [f"{p}rank", f"{p}abstained", f"{p}confidence", f"{p}outcome", f"{p}answer"]
    rows = []
    for i, first in enumerate(runs[0].results):
        row = [first.id, first.split or "", "yes" if first.answerable else "no", first.question]
        for run in runs:
            r = run.results[i]
            rank = "" if not r.answerable else (str(r.rank) if r.rank is not None else "none")
            row += [rank, "yes" if r.abstained else "no", f"{r.confidence:.3f}", outcome(r), r.answer]
        rows.append(row)
    return headers, rows


def _new_figure(width: float, height: float):
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=100, layout="constrained")


def rank_figure(runs: Sequence):
    """Bars: how many answerable questions first find their evidence at each rank."""
    fig = _new_figure(6.4, 3.4)
    ax = fig.add_subplot()
    labels = [str(i) for i in range(1, RANK_BUCKETS + 1)] + ["none"]
    width = 0.8 / len(runs)
    for n, run in enumerate(runs):
        counts = [0] * len(labels)
        for r in run.results:
            if r.answerable:
                rank = r.rank
                counts[rank - 1 if rank is not None and rank <= RANK_BUCKETS else -1] += 1
        xs = [i + (n - (len(runs) - 1) / 2) * width for i in range(len(labels))]
        ax.bar(xs, counts, width=width, label=run.label)
    ax.set_xticks(range(len(labels)), labels)
    ax.set_xlabel("rank of the first relevant passage (answerable questions)")
    ax.set_ylabel("questions")
    if len(runs) > 1:
        ax.legend()
    return fig


def confidence_figure(runs: Sequence):
    """Confidence of answerable vs unanswerable questions, the abstention threshold drawn."""
    fig = _new_figure(6.4 * len(runs) if len(runs) > 1 else 6.4, 3.4)
    axes = fig.subplots(1, len(runs), squeeze=False)[0]
    for ax, run in zip(axes, runs):
        groups = [
            [r.confidence for r in run.results if r.answerable],
            [r.confidence for r in run.results if not r.answerable],
        ]
        bins = [i / 20 for i in range(21)]
        ax.hist(groups, bins=bins, label=["answerable", "unanswerable"],
                color=["tab:blue", "tab:orange"])  # fmt: skip
        ax.axvline(run.threshold, color="black", linestyle="--",
                   label=f"abstain below {run.threshold:.2f}")  # fmt: skip
        ax.set_xlim(0, 1)
        ax.set_xlabel("confidence")
        ax.set_ylabel("questions")
        ax.set_title(run.label)
        ax.legend(fontsize="small")
    return fig


def figure_png(fig) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return buffer.getvalue()


def _md_cell(value) -> str:
    # Escaped as the chat escapes it, so a Markdown renderer shows document text as text:
    # no HTML, no links ("[x](javascript:...)"), no emphasis, no table break at "|".
    return escape_markdown(str(value), one_line=True)


def _md_table(headers: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(_md_cell(h) for h in headers) + " |",
             "|" + "---|" * len(headers)]  # fmt: skip
    lines += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _html_table(headers: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in headers)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _describe(runs: Sequence, source: str) -> str:
    first = runs[0]
    modes = " vs ".join(run.label for run in runs)
    return (f"{source}: {len(first.results)} questions; mode {modes}; k={first.k}; "
            f"abstain below {first.threshold:.3f}")  # fmt: skip


_CSS = """body{font-family:sans-serif;margin:2em;max-width:110em}
table{border-collapse:collapse;margin:1em 0;font-size:0.9em}
th,td{border:1px solid #ccc;padding:0.25em 0.5em;text-align:left;vertical-align:top}
th{background:#f3f3f3}img{max-width:100%}"""


def write_report(directory: Path, runs: Sequence, *, source: str) -> list[Path]:
    """Write report.md (+ its two PNGs) and the self-contained report.html; return their paths."""
    directory.mkdir(parents=True, exist_ok=True)
    plots = {
        "rank_distribution.png": figure_png(rank_figure(runs)),
        "confidence.png": figure_png(confidence_figure(runs)),
    }
    for name, data in plots.items():
        (directory / name).write_bytes(data)
    metric_headers, metric_body = metric_rows(runs)
    question_headers, question_body = question_rows(runs)
    description = _describe(runs, source)

    md = "\n\n".join([
        "# Evaluation report", _md_cell(description),
        "## Metrics", _md_table(metric_headers, metric_body),
        "## Plots", "![rank of the first relevant passage](rank_distribution.png)",
        "![confidence of answerable and unanswerable questions](confidence.png)",
        "## Questions", _md_table(question_headers, question_body),
    ]) + "\n"  # fmt: skip
    images = "".join(
        f'<img alt="{html.escape(name)}" src="data:image/png;base64,{base64.b64encode(data).decode()}">'
        for name, data in plots.items()
    )
    page = (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f"<title>Evaluation report</title><style>{_CSS}</style></head><body>"
        f"<h1>Evaluation report</h1><p>{html.escape(description)}</p>"
        f"<h2>Metrics</h2>{_html_table(metric_headers, metric_body)}"
        f"<h2>Plots</h2>{images}"
        f"<h2>Questions</h2>{_html_table(question_headers, question_body)}</body></html>\n"
    )
    (directory / "report.md").write_text(md, encoding="utf-8")
    (directory / "report.html").write_text(page, encoding="utf-8")
    return [directory / "report.md", directory / "report.html", *(directory / n for n in plots)]
