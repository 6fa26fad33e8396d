"""Metric functions on hand-worked tiny rankings, agreement with ranx, and the calibration fit."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest

from assistant.evaluation.calibration import best_threshold, candidate_thresholds, fit_logistic, sweep
from assistant.evaluation.metrics import (
    QuestionResult,
    abstention_scores,
    contains_evidence,
    first_relevant_rank,
    states_evidence,
    hit_at_k,
    ndcg_at_k,
    normalize,
    outcome,
    percentile,
    reciprocal_rank,
    summarize,
    summarize_by_split,
)

T, F = True, False


def result(qid="q", *, answerable=True, relevant=(), total=None, citations=(), abstained=False,
           supported=False, quotes=None, latency=10.0, split=None, confidence=0.5):  # fmt: skip
    return QuestionResult(
        id=qid, question="?", answerable=answerable, split=split, abstained=abstained,
        confidence=confidence, answer="", latency_ms=latency, relevant=list(relevant),
        relevant_total=sum(relevant) if total is None else total,
        citation_relevant=list(citations),
        quote_verbatim=[True] * len(citations) if quotes is None else list(quotes),
        supported=supported,
    )  # fmt: skip


@pytest.mark.parametrize(
    "text, evidence, expected",
    [
        ("The armistice was SIGNED\n at  Panmunjom.", ["armistice was signed at Panmunjom"], True),
        ("The armistice was signed at Panmunjom.", ["  Armistice   was signed "], True),
        ("The armistice was signed.", ["armistice was signed at Panmunjom"], False),
        # Typography folds too: evidence typed with a straight apostrophe still matches.
        ("North Korea’s leader", ["North Korea's leader"], True),
        ("North Korea’s leader", ["North Koreas leader"], False),
        ("anything", [], False),
        ("", ["x"], False),
        ("one of two", ["zzz", "two"], True),
    ],
)
def test_contains_evidence(text, evidence, expected):
    assert contains_evidence(text, evidence) is expected


def test_an_answer_joining_list_items_still_states_their_evidence():
    """A list answer reads "...the two Koreas; Creation of ...": the item's closing full stop
    is gone from the answer text (not from its quote), and the item still counts."""
    answer = "Key elements included: The Demarcation Line to separate the two Koreas; Creation of the DMZ [1]"
    assert states_evidence(answer, ["The Demarcation Line to separate the two Koreas."])
    assert not contains_evidence(answer, ["The Demarcation Line to separate the two Koreas."])
    assert not states_evidence(answer, ["The Demarcation Line to separate the two Koreas forever."])
    assert not states_evidence(answer, [])


def test_normalize():
    assert normalize("  A\tb\n\nC  ") == "a b c"
    assert normalize("North Korea’s “core issues”—denuclearization") == (
        "north korea's \"core issues\"-denuclearization"
    )
    assert contains_evidence("North Korea’s continued nuclear development", ["north korea's continued"])
    assert not contains_evidence("North Korea’s continued", ["north koreas continued"])
    assert normalize("") == ""


@pytest.mark.parametrize(
    "relevant, k, expected",
    [([F, T, F], 1, 0.0), ([F, T, F], 2, 1.0), ([T], 1, 1.0), ([], 3, 0.0), ([F, F, F], 5, 0.0)],
)
def test_hit_at_k(relevant, k, expected):
    assert hit_at_k(relevant, k) == expected


@pytest.mark.parametrize(
    "relevant, expected",
    [([T, F], 1.0), ([F, F, T], 1 / 3), ([F, T, T], 0.5), ([F] * 10 + [T], 0.0), ([], 0.0)],
)
def test_reciprocal_rank(relevant, expected):
    assert reciprocal_rank(relevant, 10) == pytest.approx(expected)


def test_first_relevant_rank():
    assert first_relevant_rank([F, F, T, T]) == 3
    assert first_relevant_rank([F, F]) is None


def test_ndcg_hand_worked():
    # Relevant at ranks 1 and 3, two relevant passages in all:
    # DCG = 1/log2(2) + 1/log2(4) = 1.5; ideal = 1 + 1/log2(3) = 1.6309...
    assert ndcg_at_k([T, F, T], 2) == pytest.approx(1.5 / (1 + 1 / math.log2(3)))
    assert ndcg_at_k([T, F, T], 2) == pytest.approx(0.9197207891)
    # A third relevant passage exists but was not retrieved: the ideal counts it.
    assert ndcg_at_k([T, F, T], 3) == pytest.approx(1.5 / (1 + 1 / math.log2(3) + 0.5))
    assert ndcg_at_k([F, T], 1) == pytest.approx(1 / math.log2(3))
    assert ndcg_at_k([T, T], 2) == pytest.approx(1.0)
    assert ndcg_at_k([F, F], 0) == 0.0
    # Only the first k count.
    assert ndcg_at_k([F, F, T], 1, k=2) == 0.0


def test_abstention_scores_hand_worked():
    # 3 unanswerable (2 abstained), 4 answerable (1 abstained).
    abstained = [T, T, F, T, F, F, F]
    answerable = [F, F, F, T, T, T, T]
    s = abstention_scores(abstained, answerable)
    assert s["abstention_precision"] == pytest.approx(2 / 3)
    assert s["abstention_recall"] == pytest.approx(2 / 3)
    assert s["abstention_f1"] == pytest.approx(2 / 3)
    assert s["false_abstention_rate"] == pytest.approx(1 / 4)


def test_abstention_scores_undefined():
    s = abstention_scores([F, F], [T, T])
    assert s["abstention_precision"] is None and s["abstention_recall"] is None
    assert s["abstention_f1"] is None and s["false_abstention_rate"] == 0.0
    assert abstention_scores([T], [F])["false_abstention_rate"] is None


def test_percentile():
    assert percentile([10, 20, 30, 40], 50) == pytest.approx(25.0)
    assert percentile([10, 20, 30, 40], 95) == pytest.approx(38.5)
    assert percentile([], 50) is None


def test_summarize_hand_worked():
    results = [
        result("a", relevant=[T, F], citations=[T, F], supported=True, latency=10),
        result("b", relevant=[F, F, F, T], total=2, citations=[F], latency=20),
        result("c", relevant=[F, F], total=1, abstained=True, latency=30),
        result("d", answerable=False, relevant=[F], abstained=True, latency=40),
        result("e", answerable=False, relevant=[F], citations=[F], quotes=[False], latency=50),
    ]
    m = summarize(results)
    assert (m["questions"], m["answerable"], m["unanswerable"]) == (5, 3, 2)
    assert m["hit@1"] == pytest.approx(1 / 3)
    assert m["hit@3"] == pytest.approx(1 / 3)
    assert m["hit@5"] == pytest.approx(2 / 3)
    assert m["mrr@10"] == pytest.approx((1 + 1 / 4) / 3)
    ndcg_b = (1 / math.log2(5)) / (1 + 1 / math.log2(3))
    assert m["ndcg@10"] == pytest.approx((1 + ndcg_b + 0) / 3)
    assert m["citation_precision"] == pytest.approx(1 / 3)  # answerable citations: T, F, F
    assert m["citation_hit@1"] == pytest.approx(1 / 3)  # a yes, b no, c abstained
    assert m["answer_support"] == pytest.approx(1 / 3)
    assert m["abstention_precision"] == pytest.approx(1 / 2)
    assert m["abstention_recall"] == pytest.approx(1 / 2)
    assert m["false_abstention_rate"] == pytest.approx(1 / 3)
    assert m["quote_verbatim_rate"] == pytest.approx(3 / 4)  # every citation, answerable or not
    assert m["latency_p50_ms"] == pytest.approx(30)
    assert m["latency_p95_ms"] == pytest.approx(48)


def test_summarize_by_split_and_empty_parts():
    results = [result("a", relevant=[T], split="dev"), result("b", relevant=[F], split="test")]
    m = summarize_by_split(results)
    assert m["hit@1"] == 0.5
    assert m["by_split"]["dev"]["hit@1"] == 1.0 and m["by_split"]["test"]["hit@1"] == 0.0
    assert "by_split" not in summarize_by_split([result("a", relevant=[T])])
    only_unanswerable = summarize([result("x", answerable=False, abstained=True)])
    assert only_unanswerable["hit@1"] is None and only_unanswerable["citation_precision"] is None
    assert only_unanswerable["abstention_f1"] == 1.0


@pytest.mark.parametrize(
    "kwargs, expected",
    [
        ({"answerable": False, "abstained": True}, "correct abstention"),
        ({"answerable": False}, "answered (should abstain)"),
        ({"relevant": [T], "abstained": True}, "false abstention"),
        ({"relevant": [F], "abstained": True}, "abstained, evidence not retrieved"),
        ({"relevant": [F, T], "citations": [T, F]}, "correct"),
        ({"relevant": [F, T], "citations": [F, T]}, "wrong citation"),
        ({"relevant": [F], "citations": [F]}, "wrong, evidence not retrieved"),
    ],
)
def test_outcome(kwargs, expected):
    assert outcome(result(**kwargs)) == expected


def synthetic_run(seed: int = 7, queries: int = 40):
    """Random binary rankings of 12 passages; some relevant passages never retrieved."""
    rng = random.Random(seed)
    out = []
    for i in range(queries):
        relevant = [rng.random() < 0.2 for _ in range(12)]
        if not any(relevant) and i % 2:
            relevant[rng.randrange(12)] = True
        missing = rng.choice([0, 0, 1, 3])
        total = sum(relevant) + missing
        if total == 0:
            total, missing = 1, 1
        out.append(result(f"q{i}", relevant=relevant, total=total))
    return out


def test_ranking_metrics_equal_ranx():
    ranx = pytest.importorskip("ranx")
    results = synthetic_run()
    qrels, run = {}, {}
    for r in results:
        docs = [f"{r.id}-p{rank}" for rank in range(1, len(r.relevant) + 1)]
        run[r.id] = {doc: 1.0 / rank for rank, doc in enumerate(docs, start=1)}
        judged = {doc: 1 for doc, rel in zip(docs, r.relevant) if rel}
        for extra in range(r.relevant_total - len(judged)):  # relevant but not retrieved
            judged[f"{r.id}-unretrieved{extra}"] = 1
        qrels[r.id] = judged
    theirs = ranx.evaluate(
        ranx.Qrels(qrels), ranx.Run(run),
        ["hit_rate@1", "hit_rate@3", "hit_rate@5", "mrr@10", "ndcg@10"],
    )  # fmt: skip
    ours = summarize(results)
    assert ours["hit@1"] == pytest.approx(theirs["hit_rate@1"], abs=1e-9)
    assert ours["hit@3"] == pytest.approx(theirs["hit_rate@3"], abs=1e-9)
    assert ours["hit@5"] == pytest.approx(theirs["hit_rate@5"], abs=1e-9)
    assert ours["mrr@10"] == pytest.approx(theirs["mrr@10"], abs=1e-9)
    assert ours["ndcg@10"] == pytest.approx(theirs["ndcg@10"], abs=1e-9)
    # The run is not trivial: the metrics differ from each other.
    assert len({round(ours[k], 6) for k in ("hit@1", "hit@3", "mrr@10", "ndcg@10")}) == 4


# Calibration: the logistic fit and the threshold sweep.


def test_fit_logistic_is_the_penalized_optimum():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 3)) * [1.0, 5.0, 0.1] + [0.0, 2.0, 1.0]
    true = np.array([2.0, -0.5, 10.0])
    y = (rng.random(200) < 1 / (1 + np.exp(-(X @ true - 10.0)))).astype(float)
    weights, bias = fit_logistic(X, y, l2=1.0)
    # At the optimum the gradient of log loss + l2/2 |w * scale|^2 vanishes.
    scale = X.std(axis=0)
    p = 1 / (1 + np.exp(-(X @ weights + bias)))
    grad_bias = np.sum(p - y)
    grad_w = X.T @ (p - y) + 1.0 * (weights * scale) * scale
    assert abs(grad_bias) < 1e-6
    assert np.allclose(grad_w, 0, atol=1e-5)
    assert np.sign(weights).tolist() == [1.0, -1.0, 1.0]


def test_fit_logistic_constant_feature_gets_no_weight():
    X = np.array([[0.0, 1.0], [1.0, 1.0], [2.0, 1.0], [3.0, 1.0]])
    weights, _ = fit_logistic(X, np.array([0, 0, 1, 1]), l2=1.0)
    assert weights[1] == 0.0 and weights[0] > 0


def test_candidate_thresholds():
    assert candidate_thresholds([0.2, 0.8, 0.2]) == pytest.approx([0.1, 0.5, 0.9])
    assert candidate_thresholds([]) == [0.5]


def test_sweep_and_best_threshold_hand_worked():
    confidences = [0.1, 0.3, 0.6, 0.7, 0.9]
    answerable = [F, T, F, T, T]
    correct = [F, T, F, F, T]
    points = sweep(confidences, answerable, correct)
    assert [p.threshold for p in points] == pytest.approx([0.05, 0.2, 0.45, 0.65, 0.8, 0.95])
    at_065 = points[3]  # abstains on 0.1, 0.3, 0.6: catches both unanswerable, one false
    assert at_065.abstention_f1 == pytest.approx(0.8)
    assert at_065.false_abstention_rate == pytest.approx(1 / 3)
    assert at_065.coverage == pytest.approx(2 / 5)
    assert at_065.risk == pytest.approx(1 / 2)  # 0.7 is answerable but unsupported
    assert points[0].coverage == 1.0 and points[0].risk == pytest.approx(3 / 5)
    assert points[-1].risk is None
    # 0.2 gives F1 2/3 (P 1, R 1/2); 0.65 gives F1 0.8: the best.
    assert best_threshold(points).threshold == pytest.approx(0.65)


def test_best_threshold_prefers_fewer_false_abstentions_on_ties():
    # Thresholds 0.15 and 0.9 both give F1 = 2/3 here; 0.15 abstains on no answerable question.
    points = sweep([0.1, 0.2, 0.3, 0.8], [F, T, T, F], [F, T, T, F])
    f1 = {round(p.threshold, 2): p.abstention_f1 for p in points}
    assert f1[0.15] == pytest.approx(f1[0.9]) == pytest.approx(2 / 3)
    assert best_threshold(points).threshold == pytest.approx(0.15)


def test_best_threshold_keeps_to_a_false_abstention_budget():
    # Unbudgeted, 0.65 wins (F1 0.8) at 1/3 false abstentions; within 0 false
    # abstentions the best is 0.2 (F1 2/3); a budget nothing meets ignores the budget.
    points = sweep([0.1, 0.3, 0.6, 0.7, 0.9], [F, T, F, T, T], [F, T, F, F, T])
    assert best_threshold(points, max_false_abstention=0.0).threshold == pytest.approx(0.2)
    assert best_threshold(points, max_false_abstention=0.5).threshold == pytest.approx(0.65)
    assert best_threshold(points[3:4], max_false_abstention=0.0).threshold == pytest.approx(0.65)


def test_cross_validation_of_the_penalty():
    from assistant.evaluation.calibration import choose_l2, cross_validated_f1

    rng = np.random.default_rng(1)
    X = np.concatenate([rng.normal(0.0, 0.1, (20, 2)), rng.normal(1.0, 0.1, (20, 2))])
    y = [False] * 20 + [True] * 20
    assert cross_validated_f1(X, y, l2=1.0) == pytest.approx(1.0)  # cleanly separated
    noisy = [not v if i % 4 == 0 else v for i, v in enumerate(y)]
    assert cross_validated_f1(X, noisy, l2=1.0) < 1.0
    assert cross_validated_f1(X[:21], [False] + [True] * 20, l2=1.0) is None  # one unanswerable
    assert choose_l2(X[:21], [False] + [True] * 20, (0.1, 1.0, 10.0))[0] == 1.0
    best, scores = choose_l2(X, y, (0.1, 1.0, 10.0))
    assert set(scores) == {0.1, 1.0, 10.0} and best == 10.0  # all tie at 1.0: strongest penalty


def test_choose_l2_takes_the_strongest_penalty_within_one_deviation_of_the_best(monkeypatch):
    import assistant.evaluation.calibration as calibration

    runs = {0.1: [0.95, 0.96, 0.95, 0.96], 1.0: [0.90, 0.90, 0.90, 0.90], 10.0: [0.95, 0.95, 0.95, 0.95]}
    monkeypatch.setattr(calibration, "_cross_validated_runs", lambda X, y, l2, **_: np.array(runs[l2]))
    best, scores = calibration.choose_l2(None, None, (0.1, 1.0, 10.0))
    assert scores[0.1] == pytest.approx(0.955) and best == 10.0  # 0.95 >= 0.955 - 0.005
    runs[10.0] = [0.94] * 4  # now further below the best than its spread
    assert calibration.choose_l2(None, None, (0.1, 1.0, 10.0))[0] == 0.1


def test_out_of_fold_confidences_never_score_their_own_training_data():
    from assistant.evaluation.calibration import out_of_fold_confidences

    rng = np.random.default_rng(2)
    X = rng.normal(size=(30, 2))
    y = np.array([True] * 20 + [False] * 10)  # labels unrelated to X: pure noise
    held_out = out_of_fold_confidences(X, y, l2=0.01)
    weights, bias = fit_logistic(X, y, l2=0.01)
    in_sample = 1 / (1 + np.exp(-(X @ weights + bias)))

    def log_loss(p):
        return -np.mean(np.where(y, np.log(p), np.log(1 - p)))

    assert held_out.shape == (30,) and np.all((held_out > 0) & (held_out < 1))
    assert log_loss(held_out) > log_loss(in_sample)  # the in-sample fit flatters itself on noise
    tiny = out_of_fold_confidences(X[:21], y[:21], l2=1.0)  # one negative: in-sample fallback
    w, b = fit_logistic(X[:21], y[:21], l2=1.0)
    assert np.allclose(tiny, 1 / (1 + np.exp(-(X[:21] @ w + b))))
