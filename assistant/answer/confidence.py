"""How sure an answer is: the signals (`confidence_features`), their logistic
combination and the type gate, and the lexical scores both this and the choice of
statement read (idf, coverage).

`assistant eval --calibrate` refits the weights on the dev split
(Settings.calibration). Does not choose statements (compose.py does).
"""

from __future__ import annotations

import math

import numpy as np

from ..store.index import Index
from ..search.analysis import Asked, is_year
from ..search.query import Query
from ..search.retrieval import Hit
from ..text.terms import terms
from .kinds import entity_coverage, matches_type, mentions, name_forms
from .verify import Check

# Logistic weights of the confidence; `assistant eval --calibrate` refits them on
# the dev split and stores them in the index settings (Settings.calibration).
DEFAULT_WEIGHTS = {
    "bias": -10.0,
    "sentence_cosine": 6.0,
    "passage_cosine": 4.0,
    "term_coverage": 3.0,
    "rank_agreement": 1.0,
    "unknown_terms": -4.0,
    "answer_type": 2.0,
    "entity_coverage": 2.0,
    "entity_gap": -4.0,
    "unknown_name": -2.0,
    # Verification's signals (verify.py) count only once calibration has weighed them.
    "asks_type": 0.0,
    "names_entities": 0.0,
    "kind_met": 0.0,
    "kind_missed": 0.0,
    "kind_tied": 0.0,
    "relation_coverage": 0.0,
    "relation_delta": 0.0,
    "relation_maxsim": 0.0,
    "relation_anywhere": 0.0,  # these two are compose.verified_anywhere's
    "verified_anywhere": 0.0,
}


def idf_weights(index: Index, query_terms) -> dict[str, float]:
    """BM25-style idf per query term; a term the corpus lacks gets the largest idf."""
    return {t: term_idf(index, t) for t in query_terms}


def term_idf(index: Index, term: str) -> float:
    column = index.vocabulary.get(term)
    return _idf(len(index.chunks), index.document_frequency(column) if column is not None else 0)


def _idf(n: int, df: int) -> float:
    n = max(n, 1)
    return math.log(1 + (n - df + 0.5) / (df + 0.5))


def entity_gap(index: Index, asked: Asked, statement: str, corrections: dict[str, str]) -> float:
    """How rare the rarest name of a typed or why-question is that the answer statement
    leaves out.

    For a question with an expected answer type (a date, number, place, person, or
    agent: "who", "which country") or one asking why: the largest idf among the question's names
    (capitalised words, numbers) that the statement does not mention, over the idf of
    a word the documents lack, so in [0, 1]; 0 when the question has no such type or
    the statement names them all. A name is as rare as its commonest form in the
    documents ("Beijing" counts as "China"). A date answering "When did Chinese troops
    enter the war?" from a sentence about the North's invasion is a date about
    something else, and so is a reason for "Why did Syngman Rhee refuse to sign?" that
    never names Rhee. (Other untyped questions are left out: "what" and "how" answers
    often leave the question's names implied; on the dev split, reading the gap for
    every question lowered cross-validated abstention F1 0.950 -> 0.919, for why-questions
    too it rose to 0.969.) Names found in most passages ("Korea", "North") weigh little:
    a statement may leave them implied.
    """
    if asked.answer_type is None and not asked.why:
        return 0.0
    haystack = statement.lower()
    unseen = _idf(len(index.chunks), 0)  # the idf of a word no passage holds
    gap = 0.0
    for entity in asked.entities:
        if mentions(haystack, entity, corrections):
            continue
        rarities = [max(term_idf(index, t) for t in stems) for stems in _form_terms(entity, corrections)
                    if stems]  # fmt: skip
        gap = max(gap, min(rarities, default=unseen) / unseen)
    return gap


def _form_terms(entity: str, corrections: dict[str, str]) -> list[list[str]]:
    """The BM25 terms of each form of a name (kinds.name_forms)."""
    return [terms(form) for form in name_forms(entity, corrections)]


def unknown_name(index: Index, asked: Asked, corrections: dict[str, str]) -> float:
    """1.0 when the question names something the documents mention in none of its
    forms ("the Six-Party Talks", "the Cheonan", "2010"): a fact they are unlikely to
    hold. A form is mentioned when the index knows all its terms; a hyphenated name
    when each part is ("North-South", "UN-backed"). Of numbers only years count: "250"
    may well be a figure the documents write another way."""

    def known(entity: str) -> bool:
        return any(not stems or all(t in index.vocabulary for t in stems)
                   for stems in _form_terms(entity, corrections))  # fmt: skip

    for entity in asked.entities:
        if entity[0].isdigit() and not is_year(entity):
            continue
        if not known(entity) and not ("-" in entity and all(map(known, entity.split("-")))):
            return 1.0
    return 0.0


def coverage(query_terms, focus_terms, text_terms: set[str], idf: dict[str, float]) -> float:
    """Share of the query's idf mass found in a text; the question's own terms count double."""
    focus = set(focus_terms)
    total = found = 0.0
    for t in set(query_terms):
        weight = idf[t] * (2.0 if t in focus else 1.0)
        total += weight
        found += weight if t in text_terms else 0.0
    return found / total if total else 0.0


def statement_cosine(index: Index, rows: list[int], vector, own_vector=None) -> float:
    """A statement's cosine to the question: a list is judged by its best item and by the
    whole, not by its opener alone; a follow-up wants what is new in it (`own_vector`)
    as much as the joined question."""
    cosines = [float(index.sentence_vectors[r] @ vector) for r in rows]
    if own_vector is not None:
        cosines = [0.5 * c + 0.5 * float(index.sentence_vectors[r] @ own_vector) for c, r in zip(cosines, rows)]
    return 0.5 * max(cosines) + 0.5 * sum(cosines) / len(cosines)


def confidence_features(index: Index, query: Query, hits: list[Hit], best, idf, statement: str,
                        check: Check) -> dict:  # fmt: skip
    """The signals the confidence combines, each roughly in [0, 1]; `statement` is the
    best statement's text (compose.statement_text), `check` what verify.py found in it."""
    hit = best.hit
    adapted = {"sentence_cosine": best.cosine, "passage_cosine": max((h.dense_score or 0.0) for h in hits[:3])}
    cosine, passage_cosine = adapted["sentence_cosine"], adapted["passage_cosine"]
    if query.model_vectors is not None:  # the model's own cosines, not the adapter's
        vector, own = query.model_vectors
        cosine = statement_cosine(index, best.rows, vector, own)
        passage_cosine = max((float(index.chunk_vectors[h.row] @ vector) for h in hits[:3]), default=0.0)
    corrections = dict(query.corrections)
    passage_terms = index.chunk_terms(hit.row)
    # A word the documents call otherwise ("Pyongyang") is not unknown to them.
    unknown = [t for t in set(query.terms) if t not in index.vocabulary and t not in query.aliased_terms]
    total_idf = sum(idf[t] for t in set(query.terms)) or 1.0
    dense_rank = hit.dense_rank or 99
    bm25_rank = hit.bm25_rank or 99
    agreement = 1.0 if max(dense_rank, bm25_rank) <= 3 else 0.5 if min(dense_rank, bm25_rank) <= 3 else 0.0
    return {
        "sentence_cosine": round(cosine, 4),
        "passage_cosine": round(passage_cosine, 4),
        "term_coverage": round(coverage(query.terms, query.focus_terms, passage_terms, idf), 4),
        "rank_agreement": agreement,
        "unknown_terms": round(sum(idf[t] for t in unknown) / total_idf, 4),
        "answer_type": float(matches_type(statement, query.asked.answer_type, query.text)),
        "entity_coverage": round(entity_coverage(
            query.asked.entities, " ".join(h.chunk.text for h in hits[:3]), corrections), 4),
        "entity_gap": round(entity_gap(index, query.asked, statement, corrections), 4),
        "unknown_name": unknown_name(index, query.asked, corrections),
        # A span of the asked kind (a date for "when"), found or missing; both 0.0 when the
        # question asks for no span, so that "nothing asked" never reads as "found".
        "kind_met": float(check.wants_span and check.kind_span == 1.0),
        "kind_missed": float(check.wants_span and check.kind_span == 0.0),
        # A span of the asked kind in a statement that also says what is asked of it (the
        # relation's share): "a place" and "signed", not a place in a sentence on something else.
        "kind_tied": round(float(check.wants_span and check.kind_span == 1.0) * check.relation, 4),
        "relation_coverage": round(check.relation, 4),
        "relation_delta": round(check.delta, 4),
        "relation_maxsim": round(check.maxsim, 4),
        # Whether the question asks for a typed answer and names anything: answer_type and
        # entity_coverage read 1.0 when it does neither, and must not pass for "found".
        "asks_type": float(query.asked.answer_type is not None or check.wants_span),
        "names_entities": float(bool(query.asked.entities)),
        # The cosines through the query adapter, as retrieval ranks: the selector's
        # (selection.py), which weighs statements of one question against each other.
        **{f"adapted_{k}": round(v, 4) for k, v in adapted.items()},
    }


def confidence_from(features: dict, weights: dict) -> float:
    z = weights.get("bias", 0.0) + sum(weights.get(k, 0.0) * v for k, v in features.items())
    return 1.0 / (1.0 + math.exp(-max(min(z, 30.0), -30.0)))


def type_gate(confidence: float, features: dict, factor: float, floor: float = 0.0) -> float:
    """Scale the confidence down when the best statement is not what the question asks
    for (no date for a "when", no name for a "who"; kinds.py, verify.py), or when no
    retrieved passage comes near the question in meaning (its best cosine below `floor`,
    Settings.relevance_floor): what a linear combination of the signals cannot draw."""
    wrong_kind = features.get("answer_type") == 0.0 or features.get("kind_missed") == 1.0
    off_topic = features.get("passage_cosine", 1.0) < floor
    return confidence * factor ** (int(wrong_kind) + 2 * int(off_topic))


def feature_matrix(feature_dicts: list[dict]) -> tuple[np.ndarray, list[str]]:
    names = [k for k in DEFAULT_WEIGHTS if k != "bias"]
    return np.array([[f.get(k, 0.0) for k in names] for f in feature_dicts], dtype=float), names
