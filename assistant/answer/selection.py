"""Which candidate statement to quote: each of the top candidates is verified and
scored by a statement-level model, P(this statement states the answer), and the
surest is quoted. "No answer" is the chance that every candidate is wrong.

The model's inputs are a candidate's confidence signals (confidence.py, verify.py:
the kind asked found or missed, the relation held, the cosines) and how the first
choice ranked it (compose._score_sentences, compose.quote_score): none is a
statistic of the corpus, and the passage's retrieval score is read relative to
the best of the same question's. `assistant eval --calibrate` fits the weights
(evaluation/fitting.py) on the dev questions' candidates, a statement labelled
right when it holds the question's evidence; until then (no `selector` weights)
the first choice stands. Does not compose the answer or fit anything.
"""

from __future__ import annotations

from .confidence import confidence_from

# The inputs that describe a candidate beyond its confidence signals.
CANDIDATE_FEATURES = ("passage_share", "lexical", "novelty", "typed", "quote_score", "statement_score",
                      "passage_rank", "first_choice", "order")  # fmt: skip


def candidate_features(signals: dict, statement, *, quote: float, top: float, first: bool,
                       order: int) -> dict:  # fmt: skip
    """A candidate statement's inputs: its confidence `signals` and its place in the
    first choice (`statement` is a compose.Statement; `top` the best passage score of
    the question's, `order` its 0-based place by statement score)."""
    return {
        **{k: v for k, v in signals.items() if k not in ("no_answer", "selected")},
        "passage_share": round(statement.hit.score / (top or 1.0), 4),
        "lexical": round(statement.lexical, 4),
        "novelty": round(statement.novelty, 4),
        "typed": float(statement.typed),
        "quote_score": round(quote, 4),
        "statement_score": round(statement.score, 4),
        "passage_rank": round(1.0 / max(statement.hit.rank, 1), 4),
        "first_choice": float(first),
        "order": round(1.0 / (1 + order), 4),
    }


def selection_score(features: dict, weights: dict) -> float:
    """P(the candidate states the answer) under the fitted weights; 0.0 without any."""
    return confidence_from(features, weights) if weights else 0.0


def selector_names(signal_names) -> list[str]:
    """The model's input names, in the order its weights are fitted and stored."""
    return [n for n in signal_names if n != "bias"] + list(CANDIDATE_FEATURES)
