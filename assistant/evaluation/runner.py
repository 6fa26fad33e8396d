"""Ask every question of a set through `Assistant.ask` and judge the answers.

Every question goes through the same `Assistant.ask` as the UI and the CLI. Metric
formulas live in metrics.py, plots and report files in report.py, fitting the
confidence and the query adapter in fitting.py, the `assistant eval` command in
command.py. Does not change the engine.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..pipeline import decode_bytes
from .metrics import (QuestionResult, contains_evidence, is_short_gold, normalize, states_evidence,
                      summarize_by_split, token_f1)
from .questions import Question
from .report import metric_rows


def with_settings(assistant, **changes):
    """A shallow copy of the assistant answering under changed settings (the original is untouched)."""
    other = copy.copy(assistant)
    other.settings = assistant.settings.with_(**changes)
    return other


@dataclass
class EvalRun:
    mode: str
    k: int
    threshold: float
    results: list[QuestionResult]
    metrics: dict

    @property
    def label(self) -> str:
        return self.mode


class _Judge:
    """Relevance and verbatim checks against the assistant's current index and files."""

    def __init__(self, assistant):
        self.seeds_dir = Path(assistant.settings.seeds_dir)
        self.chunk_texts = [normalize(c.text) for c in assistant.index.chunks]
        self._originals: dict[str, str | None] = {}

    def original(self, doc: str) -> str | None:
        if doc not in self._originals:
            try:
                decoded = decode_bytes((self.seeds_dir / doc).read_bytes())
            except OSError:
                decoded = None
            self._originals[doc] = decoded[0] if decoded else None
        return self._originals[doc]

    def relevant_total(self, evidence: Sequence[str]) -> int:
        needles = [normalize(e) for e in evidence]
        return sum(any(n in text for n in needles) for text in self.chunk_texts)

    def judge(self, q: Question, answer, latency_ms: float) -> QuestionResult:
        data = answer.to_dict()
        verbatim = []
        for c in answer.citations:
            original = self.original(c.doc)
            verbatim.append(original is not None and original[c.start : c.end] == c.quote)
        return QuestionResult(
            id=q.id, question=q.question, answerable=q.answerable, split=q.split,
            abstained=answer.abstained, confidence=float(answer.confidence), answer=answer.answer,
            latency_ms=latency_ms,
            relevant=[contains_evidence(h.chunk.text, q.evidence) for h in answer.retrieved],
            relevant_total=self.relevant_total(q.evidence) if q.evidence else 0,
            citation_relevant=[contains_evidence(c.passage, q.evidence) for c in answer.citations],
            quote_verbatim=verbatim,
            supported=not answer.abstained and states_evidence(answer.answer, q.evidence),
            features=dict(answer.features), citations=data["citations"], retrieved=data["retrieved"],
            gold=q.answer, predicted_short=predicted_short(answer), source=q.source,
            kind=q.kind or (answer.query.asked.kind if answer.query is not None else None),
            candidates=[(inputs, bool(q.answerable and q.evidence and contains_evidence(text, q.evidence)))
                        for inputs, text in answer.candidates],
            phrases=[(inputs, token_f1(text, q.answer)) for inputs, text in answer.phrases]
            if q.answerable and is_short_gold(q.answer) else [],
        )  # fmt: skip


def predicted_short(answer) -> str:
    """What short-answer metrics read: the short answer, else the first quote, else ""."""
    if answer.abstained:
        return ""
    if answer.short_answer is not None:
        return answer.short_answer.text
    return answer.citations[0].quote if answer.citations else ""


def run_questions(assistant, questions: Sequence[Question], *, k: int = 10, mode: str | None = None,
                  progress: Callable[[str, int, int], None] | None = None) -> EvalRun:  # fmt: skip
    """Ask every question (with its history) and judge the answers."""
    mode = mode or assistant.settings.mode
    judge = _Judge(assistant)
    results = []
    if questions:  # untimed warm-up: the first ask may load the model
        assistant.ask(questions[0].question, questions[0].history, k=k, mode=mode)
    for i, q in enumerate(questions):
        started = time.perf_counter()
        answer = assistant.ask(q.question, q.history, k=k, mode=mode)
        latency_ms = (time.perf_counter() - started) * 1000
        results.append(judge.judge(q, answer, latency_ms))
        if progress:
            progress(f"evaluating ({mode})", i + 1, len(questions))
    return EvalRun(mode, k, assistant.settings.abstain_below, results, summarize_by_split(results))


def format_metrics(runs: Sequence[EvalRun]) -> str:
    """The metric table as text: one column per run and split (all, then each split)."""
    headers, rows = metric_rows(runs)
    width = max(len(r[0]) for r in rows) + 2
    lines = [" " * width + "".join(f"{name:>13}" for name in headers[1:])]
    lines += [f"{r[0]:<{width}}" + "".join(f"{v:>13}" for v in r[1:]) for r in rows]
    return "\n".join(lines)


def run_json(run: EvalRun) -> dict:
    return {"mode": run.mode, "k": run.k, "threshold": run.threshold, "metrics": run.metrics,
            "results": [r.to_dict() for r in run.results]}  # fmt: skip
