"""Fit what `assistant eval --calibrate` fits on the dev split: the query adapter,
the confidence weights and the abstention threshold; write them to
assistant/calibration.json (and the adapter's .npy beside it), which
`config.load_settings()` reads.

The logistic fit and threshold sweep are calibration.py's; this module runs the
questions for them and keeps the record. Does not change the engine otherwise.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np

from .. import matrix_file
from ..config import CALIBRATION_FILE, calibration_checksum
from ..errors import UsageError
from ..pipeline import DEFAULT_WEIGHTS, PHRASE_FEATURES, RIGHT_F1, feature_matrix, selector_names, type_gate
from .calibration import (
    MAX_FALSE_ABSTENTION,
    best_threshold,
    choose_l2,
    fit_logistic,
    out_of_fold_confidences,
    risk_coverage_rows,
    sweep,
)
from .metrics import QuestionResult, contains_evidence
from .questions import Question
from .runner import run_questions, with_settings

L2_GRID = (0.1, 1.0, 10.0)  # ridge penalties tried by cross-validation on dev
# Floors tried for Settings.relevance_floor (cosines of the all-MiniLM-L6-v2 model: a
# scale of the model, not of the corpus). 0.0: no floor.
RELEVANCE_FLOORS = (0.0, 0.08, 0.10, 0.12, 0.15, 0.18)


def calibrate(assistant, questions: Sequence[Question], *, k: int = 10, mode: str | None = None,
              progress=None, adapt: bool = True, others: Sequence[tuple] = ()) -> dict:  # fmt: skip
    """Fit the confidence weights and abstention threshold on these (dev) questions, and
    on those of `others`: (assistant, questions) pairs over other corpora (a suite's),
    so that the confidence is fitted on questions about several corpora, not one.

    With `adapt`, first fits the query adapter (adapter.py) on the answerable
    questions' evidence; the confidence features are then collected out of fold
    (each fifth of the questions answered through an adapter fitted on the other
    four fifths), since an adapter makes the questions it was fitted on look surer
    than new ones. Without it, the features come from the engine as it is, adapter
    off. Asks with abstention off to collect every answer's confidence features, fits
    answerable-vs-unanswerable, sweeps the threshold for the best abstention F1
    with at most MAX_FALSE_ABSTENTION false abstentions over out-of-fold
    confidences, then re-runs the questions under the new
    settings to measure them (those dev metrics are in-sample, hence optimistic).
    The adapter is fitted on this corpus's questions only; another corpus's question
    that is one of them is answered through the same fold's adapter, any other
    through the adapter fitted on all.
    Returns the calibration record (weights, threshold, fitted_on, dev_metrics, sweep,
    query_adapter: the matrix or None).
    """
    matrix, folds = None, [None] * ADAPTER_FOLDS
    if adapt:
        examples = _adapter_examples(assistant, questions)  # embedded once, for every fold
        matrix = fit_adapter(assistant, examples)
        if matrix is None:
            raise UsageError("--calibrate fits the query adapter on answerable dev questions whose "
                             "evidence is in the documents, and there are none (or use --no-adapter)")
        folds = [fit_adapter(assistant, examples, keep=lambda i, f=f: i % ADAPTER_FOLDS != f)
                 for f in range(ADAPTER_FOLDS)]  # fmt: skip
    fold_of = {q.id: i % ADAPTER_FOLDS for i, q in enumerate(questions)} if adapt else {}
    open_results = []
    for corpus, asked in [(assistant, questions), *others]:
        open_results += _out_of_fold(corpus, asked, fold_of, folds, matrix, k=k, mode=mode,
                                     progress=progress)  # fmt: skip
    # The selector (answer/selection.py) on every candidate statement of these answers.
    selector = fit_selector(open_results)
    if selector is None:
        raise UsageError("--calibrate needs answerable dev questions whose evidence a candidate "
                         "statement holds, and unanswerable ones")
    phrase = fit_phrases(open_results)  # the short answers of "what" questions (answer/phrases.py)
    assistant = with_settings(assistant, query_adapter=matrix, selector=selector, phrase=phrase or {})
    fitted = [r for r in open_results if r.features]  # no candidate sentence: always abstains
    if len({r.answerable for r in fitted}) < 2:
        raise UsageError("--calibrate needs answerable and unanswerable dev questions")
    X, names = feature_matrix([r.features for r in fitted])
    labels = [r.answerable for r in fitted]
    l2, cv_scores = choose_l2(X, labels, L2_GRID, max_false_abstention=MAX_FALSE_ABSTENTION)
    weights, bias = fit_logistic(X, labels, l2=l2)
    calibrated = _weights_record(names, weights, bias)
    held_out = list(out_of_fold_confidences(X, labels, l2=l2))
    factor = assistant.settings.type_mismatch_factor  # the engine's gate, applied alike here
    correct = [r.answerable and r.supported for r in open_results]
    # The relevance floor (a gate on the best passage's cosine, which a linear fit cannot
    # draw) is chosen with the threshold: the pair with the best F1 within the budget.
    best = None
    for floor in RELEVANCE_FLOORS:
        scores = iter(held_out)
        confidences = [type_gate(float(next(scores)), r.features, factor, floor) if r.features else 0.0
                       for r in open_results]  # fmt: skip
        points = sweep(confidences, [r.answerable for r in open_results], correct)
        chosen = best_threshold(points, max_false_abstention=MAX_FALSE_ABSTENTION)
        key = (chosen.false_abstention_rate <= MAX_FALSE_ABSTENTION + 1e-12, round(chosen.abstention_f1, 12),
               -chosen.false_abstention_rate, -floor)  # fmt: skip
        if best is None or key > best[0]:
            best = (key, floor, points, chosen)
    _, floor, points, chosen = best
    threshold = round(chosen.threshold, 6)
    checked = run_questions(with_settings(assistant, calibration=calibrated, abstain_below=threshold,
                                          relevance_floor=floor),
                            questions, k=k, mode=mode, progress=progress)  # fmt: skip
    dev_metrics = {key: v for key, v in checked.metrics.items() if key != "by_split"}
    return {
        "weights": calibrated,
        "selector": selector,
        "phrase": phrase,
        "threshold": threshold,
        "relevance_floor": floor,
        "fitted_on": f"{len(questions)} dev questions"
                     f"{''.join(f' + {len(o[1])} about another corpus' for o in others)} "
                     f"({len(fitted)} with features), "
                     f"mode {mode or assistant.settings.mode}, k {k}, "
                     f"{'query adapter (features out of fold)' if adapt else 'no query adapter'}, "
                     f"selector on {sum(len(r.candidates) for r in open_results)} candidate statements "
                     f"(L2 {SELECTOR_L2}), "
                     f"phrases on {sum(len(r.phrases) for r in open_results)} candidates of "
                     f"{sum(bool(r.phrases) for r in open_results)} questions, "
                     f"false abstentions <= {MAX_FALSE_ABSTENTION:.1%}, "
                     f"L2 {l2} (cross-validated F1 "
                     f"{', '.join(f'{p}: {_fmt(f)}' for p, f in cv_scores.items())}), "
                     f"{date.today().isoformat()}",
        "dev_metrics": dev_metrics,
        "sweep": [p.__dict__ for p in risk_coverage_rows(points, chosen)],
        "previous_weights": dict(assistant.settings.calibration or DEFAULT_WEIGHTS),
        "query_adapter": matrix,
        "adapter_settings": {"l2": assistant.settings.adapter_l2,
                             "temperature": assistant.settings.adapter_temperature},
    }  # fmt: skip


ADAPTER_FOLDS = 5


@dataclass
class _AdapterExamples:
    """The answerable questions whose evidence lies in an indexed passage: their
    positions in the question list, vectors (as `ask` embeds them, before any
    adapter) and the chunk and sentence rows holding an evidence string."""

    positions: list[int]
    vectors: np.ndarray
    chunk_rows: list[list[int]]
    sentence_rows: list[list[int]]


def _adapter_examples(assistant, questions: Sequence[Question]) -> _AdapterExamples:
    index = assistant.index
    chunk_texts = [c.text for c in index.chunks]
    sentence_texts = [s.text for _, s in index.sentences]
    positions, chunk_rows, sentence_rows = [], [], []
    for i, q in enumerate(questions):
        if not q.answerable or not q.evidence:
            continue
        chunks = [r for r, text in enumerate(chunk_texts) if contains_evidence(text, q.evidence)]
        if chunks:
            positions.append(i)
            chunk_rows.append(chunks)
            sentence_rows.append([r for r, text in enumerate(sentence_texts)
                                  if contains_evidence(text, q.evidence)])  # fmt: skip
    chosen = [questions[i] for i in positions]
    queries = assistant.queries([q.question for q in chosen], [q.history for q in chosen])
    vectors = np.stack([q.vector for q in queries]) if queries else np.zeros((0, 0), np.float32)
    return _AdapterExamples(positions, vectors, chunk_rows, sentence_rows)


def fit_adapter(assistant, examples: _AdapterExamples, keep=lambda position: True):
    """The query adapter fitted on the examples whose position `keep` accepts; None
    if there is none."""
    rows = [j for j, position in enumerate(examples.positions) if keep(position)]
    if not rows:
        return None
    return assistant.fit_query_adapter(examples.vectors[rows], [examples.chunk_rows[j] for j in rows],
                                       [examples.sentence_rows[j] for j in rows])  # fmt: skip


def _out_of_fold(assistant, questions: Sequence[Question], fold_of: dict[str, int], folds: list,
                 matrix, *, k: int, mode: str | None, progress=None) -> list[QuestionResult]:  # fmt: skip
    """Every question answered (abstention off) through an adapter fitted without it:
    the fold's (fold_of: question id -> fold; fold f holds questions f, f + 5, ... of
    the file the adapter was fitted on), else `matrix`."""
    groups: dict[int | None, list[int]] = {}
    for i, q in enumerate(questions):
        groups.setdefault(fold_of.get(q.id), []).append(i)
    results: dict[int, QuestionResult] = {}
    for fold, held in sorted(groups.items(), key=lambda item: -1 if item[0] is None else item[0]):
        adapter = matrix if fold is None else folds[fold]
        run = run_questions(with_settings(assistant, abstain_below=0.0, query_adapter=adapter),
                            [questions[i] for i in held], k=k, mode=mode, progress=progress)  # fmt: skip
        results.update(zip(held, run.results))
    return [results[i] for i in range(len(questions))]


SELECTOR_L2 = 1.0  # ridge penalty of the selector, on standardized inputs


def fit_selector(results: Sequence[QuestionResult]) -> dict | None:
    """The selector's weights (answer/selection.py), fitted on the results' candidate
    statements: one is right when its question is answerable and it holds the
    question's evidence. None without both kinds of statement."""
    names = selector_names(DEFAULT_WEIGHTS)
    rows, labels = [], []
    for r in results:
        for inputs, right in r.candidates:
            rows.append([inputs.get(n, 0.0) for n in names])
            labels.append(right)
    if len(set(labels)) < 2:
        return None
    weights, bias = fit_logistic(np.array(rows, dtype=float), np.array(labels), l2=SELECTOR_L2)
    return _weights_record(names, weights, bias)


PHRASE_L2 = 1.0  # ridge penalty of the phrase model, on standardized inputs


def fit_phrases(results: Sequence[QuestionResult]) -> dict | None:
    """The phrase model's weights (answer/phrases.py), fitted on the candidate phrases of
    the answers to "what" questions with a short gold answer: one is right when its token
    F1 with the gold answer is RIGHT_F1 or more. None without both kinds of phrase."""
    rows, labels = [], []
    for r in results:
        for inputs, f1 in r.phrases:
            rows.append([inputs.get(n, 0.0) for n in PHRASE_FEATURES])
            labels.append(f1 >= RIGHT_F1)
    if len(set(labels)) < 2:
        return None
    weights, bias = fit_logistic(np.array(rows, dtype=float), np.array(labels), l2=PHRASE_L2)
    return _weights_record(PHRASE_FEATURES, weights, bias)


def _weights_record(names: Sequence[str], weights, bias: float) -> dict:
    """Fitted logistic weights as calibration.json stores them: the bias, then one per input."""
    return {"bias": round(bias, 6), **{n: round(float(w), 6) for n, w in zip(names, weights)}}


def calibrated_settings(record: dict) -> dict:
    """The settings a calibration record sets, as `load_settings` reads them from its file
    (what the run after `--calibrate` answers with)."""
    return {"calibration": record["weights"], "abstain_below": record["threshold"],
            "relevance_floor": record.get("relevance_floor", 0.0), "selector": record.get("selector") or {},
            "phrase": record.get("phrase") or {},
            "query_adapter": record["query_adapter"]}  # fmt: skip


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def calibration_warning(settings, dimension: int | None = None) -> str | None:
    """A warning when the saved weights were fitted on other signals than the engine
    computes, or the query adapter for vectors of another width than the model's."""
    matrix = settings.query_adapter
    if matrix is not None and dimension is not None and matrix.shape[0] != dimension:
        return (f"the query adapter was fitted for {matrix.shape[0]}-d vectors and the model gives "
                f"{dimension}-d: it is not used; rerun `assistant eval FILE --calibrate`")  # fmt: skip
    weights = settings.calibration or {}
    if not weights or set(weights) == set(DEFAULT_WEIGHTS):
        return None
    missing = sorted(set(DEFAULT_WEIGHTS) - set(weights))
    extra = sorted(set(weights) - set(DEFAULT_WEIGHTS))
    detail = "; ".join(part for part in (
        f"no weight for {', '.join(missing)}" if missing else "",
        f"weights for unknown {', '.join(extra)}" if extra else "",
    ) if part)  # fmt: skip
    return f"{CALIBRATION_FILE.name} is stale ({detail}); rerun `assistant eval FILE --calibrate`"


def write_calibration(record: dict, path: Path) -> None:
    """The file config.load_settings() reads, and the query adapter's .npy beside it
    (named by its checksum); the sweep table is printed, not stored."""
    keep = {k: record[k] for k in ("weights", "threshold", "fitted_on", "dev_metrics")}
    for model in ("selector", "phrase"):
        if record.get(model):
            keep[model] = record[model]
    keep["relevance_floor"] = record.get("relevance_floor", 0.0)
    keep["dev_metrics"] = {k: round(v, 4) if isinstance(v, float) else v
                           for k, v in keep["dev_metrics"].items()}  # fmt: skip
    matrix = record.get("query_adapter")
    if matrix is not None:
        sha256 = matrix_file.checksum(matrix)
        name = f"query_adapter-{sha256[:12]}.npy"
        matrix_file.save(matrix, path.with_name(name))
        keep["adapter"] = {"file": name, "sha256": sha256, **record.get("adapter_settings", {})}
    keep["sha256"] = calibration_checksum(keep)  # load_settings checks it
    # Written beside it, then renamed over it: a crash leaves the old file, never half a file.
    # The adapter is written first under a new name, so the file always names one that exists.
    partial = path.with_name(path.name + ".tmp")
    partial.write_text(json.dumps(keep, indent=2) + "\n", encoding="utf-8")
    os.replace(partial, path)
    for old in path.parent.glob("query_adapter-*.npy"):
        if old.name != keep.get("adapter", {}).get("file"):
            old.unlink(missing_ok=True)


def format_calibration(record: dict) -> str:
    lines = ["risk/coverage on dev, out-of-fold confidences (abstain below the threshold):",
             f"{'threshold':>10} {'coverage':>9} {'risk':>6} {'abst. F1':>9} {'false abst.':>12}"]  # fmt: skip
    for p in record["sweep"]:
        risk = "n/a" if p["risk"] is None else f"{p['risk']:.3f}"
        mark = "  <- chosen" if abs(p["threshold"] - record["threshold"]) < 5e-7 else ""
        lines.append(f"{p['threshold']:>10.4f} {p['coverage']:>9.3f} {risk:>6} "
                     f"{p['abstention_f1']:>9.3f} {p['false_abstention_rate']:>12.3f}{mark}")  # fmt: skip
    def listed(weights: dict) -> str:
        return ", ".join(f"{k} {v:+.3f}" for k, v in weights.items())

    lines += [f"weights: {listed(record['weights'])}", f"threshold: {record['threshold']:.4f}"]
    for model in ("selector", "phrase"):
        if record.get(model):
            lines.append(f"{model}: {listed(record[model])}")
    return "\n".join(lines)
