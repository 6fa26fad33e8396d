"""The web app's Evaluation tab: run a question set and show metrics, plots and answers.

`build_evaluation_tab(get_assistant)` adds its components to whatever gr.Tab or
gr.Blocks is open; `run_evaluation` is the plain handler behind the button (unit
tests call it directly). The shipped set runs by default; another set can be
uploaded, and only an uploaded file (inside Gradio's upload folder) is read, whatever
path a client sends. The run is not part of the public API. Errors reach the user as
one-line gr.Error messages. Does not compute
metrics or draw plots itself (evaluation.py, report.py).
"""

from __future__ import annotations

import html
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import gradio as gr
import pandas as pd

from ..config import MODES
from ..errors import AssistantError
from ..evaluation import (
    DEFAULT_QUESTIONS,
    calibration_warning,
    check_lengths,
    in_sample_note,
    load_questions,
    run_questions,
    select_split,
)
from ..evaluation.report import confidence_figure, metric_rows, question_rows, rank_figure
from .handlers import upload_folder, uploaded_path

ALL_SPLITS = "all"
NOT_UPLOADED = "only an uploaded question set (or none, for the shipped set) can be run"


@dataclass
class EvaluationView:
    status: str
    metrics: pd.DataFrame
    rank_plot: object  # matplotlib Figure
    confidence_plot: object
    questions: pd.DataFrame

    def as_tuple(self) -> tuple:
        return self.status, self.metrics, self.rank_plot, self.confidence_plot, self.questions


# The questions table as the tab shows it: what a reader scans first (the question, how
# it went, the answer), then the details; widths so that every column fits at 1280 px.
QUESTION_COLUMNS = {"question": "26%", "outcome": "13%", "answer": "27%", "rank": "6%",
                    "confidence": "9%", "abstained": "8%", "answerable": "10%", "id": "7%",
                    "split": "6%"}  # fmt: skip


def questions_table(frame: pd.DataFrame) -> pd.DataFrame:
    """The columns of QUESTION_COLUMNS first, in its order; any others after them."""
    first = [c for c in QUESTION_COLUMNS if c in frame.columns]
    return frame[first + [c for c in frame.columns if c not in first]]


def evaluate_view(assistant, file: str | Path | None = None, *, split: str = ALL_SPLITS,
                  mode: str = "hybrid", k: int = 10, progress=None) -> EvaluationView:  # fmt: skip
    """Run a question set (the shipped one when file is None) and build what the tab shows."""
    path = Path(file) if file else DEFAULT_QUESTIONS
    questions = load_questions(path)
    check_lengths(questions, assistant.settings.max_question_chars, source=path.name)
    if any(q.split for q in questions):  # a set without splits runs whole, whatever is picked
        questions = select_split(questions, None if split in (None, "", ALL_SPLITS) else split)
    if mode not in MODES:
        raise AssistantError(f"mode must be one of: {', '.join(MODES)}")

    def report(label: str, done: int, total: int) -> None:
        if progress is not None:
            progress(done / total, desc=f"{label}: {done}/{total}")

    run = run_questions(assistant, questions, k=k, mode=mode, progress=report)
    metric_headers, metric_body = metric_rows([run])
    question_headers, question_body = question_rows([run])
    m = run.metrics
    status = (f"{html.escape(path.name)}: {len(questions)} questions, mode {mode}, k={k}, abstain below "
              f"{run.threshold:.2f}. Ranking and citation metrics count the {m['answerable']} "
              f"answerable questions.")  # fmt: skip
    if warning := calibration_warning(assistant.settings, assistant.embedder.dimension):
        status += f" Warning: {warning}."
    if note := in_sample_note(assistant.settings, path, questions):
        status += f" Note: {note}."
    return EvaluationView(
        status,
        pd.DataFrame(metric_body, columns=metric_headers),
        rank_figure([run]),
        confidence_figure([run]),
        questions_table(pd.DataFrame(question_body, columns=question_headers)),
    )


def run_evaluation(get_assistant: Callable[[], object], file=None, split: str = ALL_SPLITS,
                   mode: str = "hybrid", progress=None, *,
                   upload_dir: str | Path | None = None) -> tuple:  # fmt: skip
    """The button's handler: user errors become gr.Error, nothing else escapes.

    With `upload_dir` (the tab always passes Gradio's upload folder) a file that does not
    lie inside it is refused: a client can send any path, not only one it uploaded.
    """
    try:
        path = uploaded_path(file, upload_dir, NOT_UPLOADED)
        view = evaluate_view(get_assistant(), path, split=split, mode=mode, progress=progress)
    except AssistantError as exc:
        raise gr.Error(str(exc)) from None
    except Exception as exc:  # one failed run must not take the server down
        raise gr.Error(f"evaluation failed ({type(exc).__name__})") from None
    return view.as_tuple()


def shown(view: tuple) -> list:
    """The handler's results as updates that also show the tables and plots, which stay
    hidden until a run has something to show (no empty "1 2 3" placeholders)."""
    status, metrics, rank_plot, confidence_plot, questions = view
    return [status, gr.Dataframe(metrics, visible=True), gr.Row(visible=True), rank_plot,
            confidence_plot, gr.Dataframe(questions, visible=True)]  # fmt: skip


def build_evaluation_tab(get_assistant: Callable[[], object]) -> dict:
    """Add the evaluation components to the open Blocks context; return them by name."""
    gr.Markdown(
        "Runs every question of a question set through the same answering code as the chat "
        "and scores it against the evidence. The shipped set is "
        f"`{DEFAULT_QUESTIONS.relative_to(DEFAULT_QUESTIONS.parents[2]).as_posix()}`; "
        "upload another JSON Lines set in the same format to run that instead."
    )
    with gr.Row():
        upload = gr.File(label="Question set (optional, .jsonl)", file_types=[".jsonl"],
                         type="filepath")  # fmt: skip
        split = gr.Radio([ALL_SPLITS, "dev", "test"], value=ALL_SPLITS, label="Split")
        mode = gr.Radio(list(MODES), value="hybrid", label="Retrieval mode")
    button = gr.Button("Run evaluation", variant="primary", elem_id="run-evaluation")
    status = gr.Markdown(elem_id="evaluation-status")
    metrics = gr.Dataframe(label="Metrics", interactive=False, visible=False, wrap=True,
                           elem_id="evaluation-metrics")  # fmt: skip
    # The plots' titles above them, not as labels that Gradio lays over their top edge.
    with gr.Row(visible=False) as plots:
        with gr.Column():
            gr.Markdown("**Rank of the first relevant passage**")
            rank_plot = gr.Plot(show_label=False, format="png")
        with gr.Column():
            gr.Markdown("**Confidence and the abstention threshold**")
            confidence_plot = gr.Plot(show_label=False, format="png")
    questions = gr.Dataframe(label="Questions", interactive=False, wrap=True, visible=False,
                             column_widths=list(QUESTION_COLUMNS.values()),
                             elem_id="evaluation-questions")  # fmt: skip

    def handler(file, split_value, mode_value, progress=gr.Progress()):
        return shown(run_evaluation(get_assistant, file, split_value, mode_value, progress,
                                    upload_dir=upload_folder()))  # fmt: skip

    # Private: off the API page and out of gradio_client. A raw HTTP call can still reach
    # any event, so the handler itself refuses files that were not uploaded. One progress
    # bar, in the status line, for the whole run.
    button.click(handler, [upload, split, mode],
                 [status, metrics, plots, rank_plot, confidence_plot, questions],
                 api_name="evaluate", api_visibility="private", concurrency_limit=1,
                 show_progress_on=[status])  # fmt: skip
    return {"upload": upload, "split": split, "mode": mode, "button": button, "status": status,
            "metrics": metrics, "plots": plots, "rank_plot": rank_plot, "confidence_plot": confidence_plot,
            "questions": questions}  # fmt: skip
