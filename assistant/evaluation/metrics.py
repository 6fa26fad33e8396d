"""Evaluation metrics: relevance, ranking, citation, abstention and latency scores.

Plain functions over plain values plus `summarize`, which turns a list of
`QuestionResult`s into the metric dict that `assistant eval` prints. Ranking
metrics use binary relevance and the usual definitions (those of ranx and
trec_eval: nDCG with gain 1 / log2(rank + 1), the ideal ranking built from every
relevant passage in the corpus). Does not run the assistant, read files or draw.
"""

from __future__ import annotations

import math
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

RANK_CUTOFF = 10  # MRR@10 and nDCG@10


# Typographic variants folded for matching only: an evidence string typed with a
# straight apostrophe still matches the documents' "North Korea’s".
_TYPOGRAPHY = str.maketrans({"’": "'", "‘": "'", "‛": "'", "′": "'", "“": '"', "”": '"',
                             "„": '"', "″": '"', "–": "-", "—": "-", "―": "-", "‐": "-", "‑": "-"})  # fmt: skip


def normalize(text: str) -> str:
    """Lower-cased, NFKC, curly quotes and dashes made plain, every run of whitespace
    made one space, ends stripped."""
    text = unicodedata.normalize("NFKC", text).translate(_TYPOGRAPHY)
    return " ".join(text.lower().split())


def contains_evidence(text: str, evidence: Sequence[str]) -> bool:
    """True when the text holds any evidence string (case-insensitive, whitespace- and
    typography-normalized: see `normalize`)."""
    haystack = normalize(text)
    return any(normalize(e) and normalize(e) in haystack for e in evidence)


def states_evidence(answer: str, evidence: Sequence[str]) -> bool:
    """True when an answer's text holds any evidence string, as `contains_evidence`, but
    for a full stop or semicolon closing the string: the answer joins a list's items
    with "; " and drops their full stops ("...the two Koreas; Creation of ..."), while
    its quotes keep them."""
    return contains_evidence(answer, [e.rstrip().rstrip(".;") for e in evidence])


def first_relevant_rank(relevant: Sequence[bool]) -> int | None:
    """1-based rank of the first relevant passage, None when there is none."""
    return next((i for i, r in enumerate(relevant, start=1) if r), None)


def hit_at_k(relevant: Sequence[bool], k: int) -> float:
    return 1.0 if any(relevant[:k]) else 0.0


def reciprocal_rank(relevant: Sequence[bool], k: int = RANK_CUTOFF) -> float:
    rank = first_relevant_rank(relevant[:k])
    return 0.0 if rank is None else 1.0 / rank


def ndcg_at_k(relevant: Sequence[bool], relevant_total: int, k: int = RANK_CUTOFF) -> float:
    """Binary nDCG@k; the ideal ranking puts all `relevant_total` relevant passages first."""
    relevant_total = max(relevant_total, sum(bool(r) for r in relevant[:k]))
    if relevant_total == 0:
        return 0.0
    dcg = sum(1.0 / math.log2(i + 1) for i, r in enumerate(relevant[:k], start=1) if r)
    ideal = sum(1.0 / math.log2(i + 1) for i in range(1, min(relevant_total, k) + 1))
    return dcg / ideal


def precision_recall_f1(tp: int, fp: int, fn: int) -> tuple[float | None, float | None, float | None]:
    """None where a ratio is undefined (nothing predicted, or nothing to find)."""
    precision = tp / (tp + fp) if tp + fp else None
    recall = tp / (tp + fn) if tp + fn else None
    if precision is None or recall is None:
        f1 = None
    else:
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1


def abstention_scores(abstained: Sequence[bool], answerable: Sequence[bool]) -> dict:
    """Abstaining is the positive class and unanswerable questions are the ones to catch."""
    tp = sum(a and not ok for a, ok in zip(abstained, answerable))
    fp = sum(a and ok for a, ok in zip(abstained, answerable))
    fn = sum(not a and not ok for a, ok in zip(abstained, answerable))
    n_answerable = sum(bool(ok) for ok in answerable)
    precision, recall, f1 = precision_recall_f1(tp, fp, fn)
    return {
        "abstention_precision": precision,
        "abstention_recall": recall,
        "abstention_f1": f1,
        "false_abstention_rate": fp / n_answerable if n_answerable else None,
    }


_ARTICLES = {"a", "an", "the"}
SHORT_GOLD_WORDS = 6  # a gold answer of at most this many words is a short one


def squad_tokens(text: str) -> list[str]:
    """SQuAD's answer normalisation: lower case, no punctuation, no articles, split."""
    text = "".join(" " if unicodedata.category(c).startswith("P") else c for c in normalize(text))
    return [w for w in text.split() if w not in _ARTICLES]


def exact_match(prediction: str, gold: str) -> float:
    return float(squad_tokens(prediction) == squad_tokens(gold))


def token_f1(prediction: str, gold: str) -> float:
    """SQuAD's token F1 between a predicted and a gold answer."""
    predicted, wanted = squad_tokens(prediction), squad_tokens(gold)
    if not predicted or not wanted:
        return float(predicted == wanted)
    common = sum(min(predicted.count(w), wanted.count(w)) for w in set(predicted))
    if common == 0:
        return 0.0
    precision, recall = common / len(predicted), common / len(wanted)
    return 2 * precision * recall / (precision + recall)


def is_short_gold(gold: str) -> bool:
    return 0 < len(squad_tokens(gold)) <= SHORT_GOLD_WORDS


def has_short_gold(result) -> bool:
    return result.answerable and is_short_gold(result.gold)


def percentile(values: Sequence[float], q: float) -> float | None:
    """Linear-interpolated percentile (numpy's default), None for no values."""
    return float(np.percentile(np.asarray(values, dtype=float), q)) if len(values) else None


@dataclass
class QuestionResult:
    """One question's outcome, already judged against its evidence."""

    id: str
    question: str
    answerable: bool
    split: str | None
    abstained: bool
    confidence: float
    answer: str
    latency_ms: float
    relevant: list[bool]  # per retrieved passage, in rank order
    relevant_total: int  # relevant passages in the whole index
    citation_relevant: list[bool]  # per citation, in order
    quote_verbatim: list[bool]  # per citation: quote == original text[start:end]
    supported: bool  # the answer text contains an evidence string
    features: dict = field(default_factory=dict)
    citations: list[dict] = field(default_factory=list)  # Answer.to_dict()["citations"]
    retrieved: list[dict] = field(default_factory=list)  # Answer.to_dict()["retrieved"]
    gold: str = ""  # the question's gold `answer`
    # The answer's short answer, else its first quoted statement, else "" (abstained).
    predicted_short: str = ""
    kind: str | None = None  # the question's kind: its `kind` field, else the engine's reading
    source: str = ""  # the question's block (its `source` field)
    # The candidate statements weighed: each one's selector inputs and whether it holds
    # the question's evidence (what `--calibrate` fits the selector on).
    candidates: list[tuple[dict, bool]] = field(default_factory=list, repr=False)
    # A "what" question with a short gold answer: each candidate phrase's inputs and its
    # token F1 with the gold answer (what `--calibrate` fits the phrase model on).
    phrases: list[tuple[dict, float]] = field(default_factory=list, repr=False)

    @property
    def rank(self) -> int | None:
        return first_relevant_rank(self.relevant)

    def to_dict(self) -> dict:
        return {
            "id": self.id, "question": self.question, "answerable": self.answerable,
            "split": self.split, "abstained": self.abstained,
            "confidence": round(self.confidence, 4), "answer": self.answer,
            "first_relevant_rank": self.rank, "supported": self.supported,
            "kind": self.kind, "short_answer": self.predicted_short,
            "latency_ms": round(self.latency_ms, 1),
            "citations": self.citations, "retrieved": self.retrieved,
        }  # fmt: skip


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def summarize(results: Sequence[QuestionResult]) -> dict:
    """The metric dict over these results; None marks a metric with nothing to measure.

    Ranking, citation and support metrics count answerable questions only; an
    abstention there scores 0 for citation hit@1 and answer support.
    """
    answerable = [r for r in results if r.answerable]
    short = [r for r in answerable if has_short_gold(r)]
    citations = [ok for r in answerable for ok in r.citation_relevant]
    quotes = [ok for r in results for ok in r.quote_verbatim]
    metrics = {
        "questions": len(results),
        "answerable": len(answerable),
        "unanswerable": len(results) - len(answerable),
        "hit@1": _mean([hit_at_k(r.relevant, 1) for r in answerable]),
        "hit@3": _mean([hit_at_k(r.relevant, 3) for r in answerable]),
        "hit@5": _mean([hit_at_k(r.relevant, 5) for r in answerable]),
        "mrr@10": _mean([reciprocal_rank(r.relevant, RANK_CUTOFF) for r in answerable]),
        "ndcg@10": _mean([ndcg_at_k(r.relevant, r.relevant_total, RANK_CUTOFF) for r in answerable]),
        "citation_precision": _mean([float(ok) for ok in citations]),
        "citation_hit@1": _mean([float(bool(r.citation_relevant[:1] == [True])) for r in answerable]),
        "answer_support": _mean([float(r.supported) for r in answerable]),
        "short_answer_em": _mean([exact_match(r.predicted_short, r.gold) for r in short]),
        "short_answer_f1": _mean([token_f1(r.predicted_short, r.gold) for r in short]),
        **abstention_scores([r.abstained for r in results], [r.answerable for r in results]),
        "answered_unanswerable_rate": _mean([float(not r.abstained) for r in results if not r.answerable]),
        "quote_verbatim_rate": _mean([float(ok) for ok in quotes]),
        "latency_p50_ms": percentile([r.latency_ms for r in results], 50),
        "latency_p95_ms": percentile([r.latency_ms for r in results], 95),
    }
    return metrics


def summarize_by(results: Sequence[QuestionResult], key) -> dict[str, dict]:
    """summarize() per value of key(result) (a question kind, a block), sorted by value."""
    groups: dict[str, list[QuestionResult]] = {}
    for r in results:
        groups.setdefault(str(key(r) or "none"), []).append(r)
    return {name: summarize(group) for name, group in sorted(groups.items())}


def summarize_by_split(results: Sequence[QuestionResult]) -> dict:
    """summarize() of all results, plus "by_split" when any question names a split."""
    metrics = summarize(results)
    splits = sorted({r.split for r in results if r.split is not None})
    if splits:
        metrics["by_split"] = {s: summarize([r for r in results if r.split == s]) for s in splits}
    return metrics


# Metric rows of the printed and reported tables, in order: key -> label.
METRIC_LABELS = {
    "questions": "questions",
    "answerable": "answerable",
    "unanswerable": "unanswerable",
    "hit@1": "hit@1",
    "hit@3": "hit@3",
    "hit@5": "hit@5",
    "mrr@10": "MRR@10",
    "ndcg@10": "nDCG@10",
    "citation_precision": "citation precision",
    "citation_hit@1": "citation hit@1",
    "answer_support": "answer support",
    "short_answer_em": "short answer EM",
    "short_answer_f1": "short answer F1",
    "abstention_precision": "abstention precision",
    "abstention_recall": "abstention recall",
    "abstention_f1": "abstention F1",
    "false_abstention_rate": "false abstentions",
    "answered_unanswerable_rate": "unanswerable answered",
    "quote_verbatim_rate": "quotes verbatim",
    "latency_p50_ms": "latency p50 (ms)",
    "latency_p95_ms": "latency p95 (ms)",
}


def format_value(key: str, value) -> str:
    if value is None:
        return "n/a"
    if key in ("questions", "answerable", "unanswerable"):
        return str(int(value))
    if key.startswith("latency"):
        return f"{value:.0f}"
    return f"{value:.3f}"


def metric_table(columns: dict[str, dict]) -> list[list[str]]:
    """Rows [label, value per column] for named metric dicts (e.g. {"test": ..., "dev": ...})."""
    return [
        [label, *(format_value(key, m.get(key)) for m in columns.values())]
        for key, label in METRIC_LABELS.items()
    ]


def outcome(result: QuestionResult) -> str:
    """A short verdict for the per-question table."""
    if not result.answerable:
        return "correct abstention" if result.abstained else "answered (should abstain)"
    if result.abstained:
        return "false abstention" if result.rank is not None else "abstained, evidence not retrieved"
    if result.citation_relevant[:1] == [True]:
        return "correct"
    return "wrong citation" if result.rank is not None else "wrong, evidence not retrieved"
