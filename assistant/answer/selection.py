"""Which candidate statement to quote: each of the top candidates is verified and
scored by a statement-level model, P(this statement states the answer), and the
surest is quoted. "No answer" is the chance that every candidate is wrong.

The model's inputs are a candidate's confidence signals (confidence.py, verify.py:
the kind asked found or missed, the relation held, the cosines) and how the first
stage scored it (compose._score_sentences, compose.quote_score): none is a
statistic of the corpus, and the passage's retrieval score is read relative to
the best of the same question's. `assistant eval --calibrate` fits the weights
(evaluation/fitting.py) on the dev questions' candidates, a statement labelled
right when it holds the question's evidence; until then (no `selector` weights)
the first choice stands. Does not compose the answer or fit anything.
"""

from __future__ import annotations

from .confidence import confidence_from

# The inputs that describe a candidate beyond its confidence signals.
CANDIDATE_FEATURES = ("passage_share", "lexical", "novelty", "typed", "quote_score", "statement_score")


def candidate_features(signals: dict, statement, *, quote: float, top: float) -> dict:
    """A candidate statement's inputs: its confidence `signals` and how the first stage
    scored it (`statement` is a compose.Statement; `top` the best passage score of the
    question's). No rank: which of two near-equal statements the first stage put first
    must not decide the quote (a word extracted otherwise from a PDF swaps them)."""
    own = {k: v for k, v in signals.items() if k not in ("no_answer", "selected") and not k.startswith("adapted_")}
    # Which statement of one question to quote reads the cosines retrieval ranked by (through
    # the query adapter); whether to answer at all reads the model's own (confidence.py).
    own.update({k: signals[f"adapted_{k}"] for k in ("sentence_cosine", "passage_cosine")
                if f"adapted_{k}" in signals})  # fmt: skip
    return {
        **own,
        "passage_share": round(statement.hit.score / (top or 1.0), 4),
        "lexical": round(statement.lexical, 4),
        "novelty": round(statement.novelty, 4),
        "typed": float(statement.typed),
        "quote_score": round(quote, 4),
        "statement_score": round(statement.score, 4),
    }


def selection_score(features: dict, weights: dict) -> float:
    """P(the candidate states the answer) under the fitted weights; 0.0 without any."""
    return confidence_from(features, weights) if weights else 0.0


def selector_names(signal_names) -> list[str]:
    """The model's input names, in the order its weights are fitted and stored."""
    return [n for n in signal_names if n != "bias"] + list(CANDIDATE_FEATURES)
