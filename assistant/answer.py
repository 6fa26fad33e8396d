"""Compose an extractive answer: pick sentences, cite them, or abstain.

Every word of an answer is a sentence from a retrieved passage, followed by
`[n]` markers; each citation's quote is the original file's text[start:end].
The confidence is a logistic combination of several signals (see
`confidence_features`); below `settings.abstain_below` the answer is withheld.
Does not retrieve and does not embed (vectors come from the index and query).
"""

from __future__ import annotations

import hashlib
import math
from collections import ChainMap
from functools import lru_cache
import re
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

from .aliases import WRITTEN
from .answer_types import (asks_why, entity_coverage, expected_type, is_year, matches_type, mentions,
                           name_forms, question_entities, recase)
from .index import Index
from .query import Query
from .retrieval import Hit
from .terms import terms

_LIST_GAP = re.compile(r"[ \t]*\r?\n\s*(?:[-*\u2022\u00b7\u25aa]|\d{1,2}[.)])\s*")
NOT_IN_DOCUMENTS = "The documents don't answer that."

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
}


@dataclass(frozen=True)
class Citation:
    n: int
    id: str
    doc: str
    title: str
    section: str
    start: int
    end: int
    quote: str  # == original document text[start:end]
    passage: str  # the whole chunk the quote was found in
    score: float
    passage_id: str = ""
    passage_start: int = 0
    passage_end: int = 0
    stale: bool = False

    def to_dict(self) -> dict:
        keys = ("n", "id", "doc", "title", "section", "start", "end", "quote", "passage", "score")
        return {k: getattr(self, k) for k in keys}

    def lookup_dict(self) -> dict:
        """The JSON of `assistant cite --json` and the /cite API: with staleness and the
        passage's span."""
        return {**self.to_dict(), "stale": self.stale, "passage_start": self.passage_start,
                "passage_end": self.passage_end}  # fmt: skip


@dataclass
class Answer:
    question: str
    answer: str
    abstained: bool
    confidence: float
    citations: list[Citation]
    retrieved: list[Hit]
    features: dict = field(default_factory=dict)
    query: Query | None = None
    # The answer as composed: each statement with the numbers of its [n] markers, so a
    # display links those markers and never an "[n]" inside quoted text.
    parts: list[tuple[str, list[int]]] = field(default_factory=list)

    def to_dict(self) -> dict:
        """The JSON shape of `assistant ask --json` and the /ask API."""
        return {
            "question": self.question,
            "answer": self.answer,
            "abstained": self.abstained,
            "confidence": round(self.confidence, 4),
            "citations": [c.to_dict() for c in self.citations],
            "retrieved": [
                {"id": h.chunk.id, "doc": h.chunk.doc, "text": h.chunk.text,
                 "score": round(h.score, 6)}  # fmt: skip
                for h in self.retrieved
            ],
        }


class Statement(NamedTuple):
    """A candidate statement of the answer, with the parts of its score."""

    row: int  # its first sentence row
    hit: Hit  # the passage it was scored in
    score: float  # the choice of passage (answer._score_sentences)
    cosine: float
    rows: list[int]
    lexical: float = 0.0
    novelty: float = 0.0
    typed: bool = False  # holds what the question asks for (answer_types.matches_type)


def citation_id(doc: str, start: int, end: int, quote: str) -> str:
    """Human-readable and stable while the document is: path, span, quote hash."""
    return f"{doc}:{start}-{end}#{hashlib.sha256(quote.encode('utf-8')).hexdigest()[:6]}"


def idf_weights(index: Index, query_terms) -> dict[str, float]:
    """BM25-style idf per query term; a term the corpus lacks gets the largest idf."""
    return {t: term_idf(index, t) for t in query_terms}


def term_idf(index: Index, term: str) -> float:
    column = index.vocabulary.get(term)
    return _idf(len(index.chunks), index.document_frequency(column) if column is not None else 0)


def _idf(n: int, df: int) -> float:
    n = max(n, 1)
    return math.log(1 + (n - df + 0.5) / (df + 0.5))


def entity_gap(index: Index, question: str, statement: str, corrections: dict[str, str]) -> float:
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
    if expected_type(question) is None and not asks_why(question):
        return 0.0
    haystack = statement.lower()
    unseen = _idf(len(index.chunks), 0)  # the idf of a word no passage holds
    gap = 0.0
    for entity in question_entities(question):
        if mentions(haystack, entity, corrections):
            continue
        rarities = [max(term_idf(index, t) for t in stems) for stems in _form_terms(entity, corrections)
                    if stems]  # fmt: skip
        gap = max(gap, min(rarities, default=unseen) / unseen)
    return gap


def _form_terms(entity: str, corrections: dict[str, str]) -> list[list[str]]:
    """The BM25 terms of each form of a name (answer_types.name_forms)."""
    return [terms(form) for form in name_forms(entity, corrections)]


def unknown_name(index: Index, question: str, corrections: dict[str, str]) -> float:
    """1.0 when the question names something the documents mention in none of its
    forms ("the Six-Party Talks", "the Cheonan", "2010"): a fact they are unlikely to
    hold. A form is mentioned when the index knows all its terms; a hyphenated name
    when each part is ("North-South", "UN-backed"). Of numbers only years count: "250"
    may well be a figure the documents write another way."""

    def known(entity: str) -> bool:
        return any(not stems or all(t in index.vocabulary for t in stems)
                   for stems in _form_terms(entity, corrections))  # fmt: skip

    for entity in question_entities(question):
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


def compose_answer(index: Index, query: Query, hits: list[Hit], documents: dict, settings) -> Answer:
    """Select answer sentences from the top hits, cite them and score the confidence.

    `documents` maps a document path to its original text (for verbatim quotes).
    """
    idf = idf_weights(index, query.terms)
    candidates = _score_sentences(index, query, hits[: settings.answer_passages], idf, documents,
                                  settings)  # fmt: skip
    if not candidates:
        return Answer(query.question, NOT_IN_DOCUMENTS, True, 0.0, [], hits, {}, query)
    chosen = _select(index, candidates, settings)
    features = confidence_features(index, query, hits, chosen[0], idf)
    confidence = type_gate(confidence_from(features, settings.calibration or DEFAULT_WEIGHTS),
                           features, settings.type_mismatch_factor)  # fmt: skip
    if confidence < settings.abstain_below:
        return Answer(query.question, NOT_IN_DOCUMENTS, True, confidence, [], hits, features, query)
    citations: list[Citation] = []
    parts: list[tuple[str, list[int]]] = []
    for candidate in chosen:
        markers = []
        statement = [index.sentences[r][1] for r in candidate.rows]
        own = (candidate.row, candidate.hit, candidate.score)
        for row, hit, score in [own] + _corroborations(index, candidate, hits, settings):
            doc, sentence = index.sentences[row]
            main = row == candidate.row
            end = statement[-1].end if main else sentence.end
            chunk = _passage_for(index, candidate.rows, hit.row) if main else hit.chunk
            text = documents[doc]
            quote = text[sentence.start : end]
            n = len(citations) + 1
            citations.append(
                Citation(n, citation_id(doc, sentence.start, end, quote), doc,
                         chunk.title, chunk.section, sentence.start, end, quote,
                         chunk.text, round(score, 4), chunk.id, chunk.start, chunk.end)  # fmt: skip
            )
            markers.append(n)
        said = statement[0].text + " " + "; ".join(s.text.rstrip(".;") for s in statement[1:])
        parts.append((said.strip(), markers))
    return Answer(query.question, answer_text(parts), False, confidence, citations, hits, features,
                  query, parts)  # fmt: skip


def answer_text(parts: list[tuple[str, list[int]]], marker=lambda n: f"[{n}]") -> str:
    """Statements, each followed by its markers: "It was signed in 1953. [1][2] ..."
    (`marker` writes one; the chat makes each a link)."""
    return " ".join(f"{said} {''.join(map(marker, numbers))}".strip() for said, numbers in parts)


def novelty(own: set[str] | str, query: Query, section: str) -> float:
    """Share of a statement's content terms (or text) that neither the question nor its
    section heading contains: a topic sentence restating the heading tells the asker nothing."""
    own = set(terms(own)) if isinstance(own, str) else own
    if not own:
        return 0.0
    known = set(query.terms) | _section_terms(section)
    return len(own - known) / len(own)


@lru_cache(maxsize=4096)
def _section_terms(section: str) -> frozenset[str]:
    return frozenset(terms(section))


def _score_sentences(index: Index, query: Query, hits: list[Hit], idf, documents,
                     settings) -> list[Statement]:  # fmt: skip
    """A `Statement` for each statement of the hits, best first.

    A statement is a sentence, or a whole list (its "...include:" sentence and items).
    """
    answer_type = expected_type(query.question)
    novelty_weight = settings.novelty_weight
    seen, out = set(), []
    top = max((h.score for h in hits), default=1.0) or 1.0
    for hit in hits:
        for row in index.chunk_sentence_rows[hit.row]:
            rows = statement_rows(index, row, documents)
            if rows[0] in seen:
                continue
            seen.add(rows[0])
            cosines = [float(index.sentence_vectors[r] @ query.vector) for r in rows]
            if query.own_vector is not None:  # a follow-up wants what is new in it as much
                cosines = [0.5 * c + 0.5 * float(index.sentence_vectors[r] @ query.own_vector)
                           for c, r in zip(cosines, rows)]  # fmt: skip
            # A list is judged by its best item and by the whole, not by its opener alone.
            cosine = 0.5 * max(cosines) + 0.5 * sum(cosines) / len(cosines)
            text = statement_text(index, rows)
            own = set().union(*(index.sentence_terms(r) for r in rows))
            lexical = coverage(query.terms, query.focus_terms, own, idf)
            # The passage's own retrieval score (relative to the best) carries the
            # context a lone sentence lacks; weights chosen on the dev split.
            score = cosine + 0.3 * lexical + hit.score / top + 0.05 / hit.rank
            # An answer says something the question and the heading do not already say.
            fresh = novelty(own, query, hit.chunk.section)
            score += novelty_weight * fresh
            typed = bool(answer_type) and matches_type(text, answer_type, query.text)
            if typed:
                score += settings.type_weight
            out.append(Statement(rows[0], hit, score, cosine, rows, lexical, fresh, typed))
    out.sort(key=lambda c: (-c.score, c.row))
    return out


def _passage_for(index: Index, rows: list[int], hit_row: int):
    """The passage to show with a statement: the hit's chunk if it holds the whole
    statement (a list may run on past it), else the chunk holding most of it."""
    wanted = set(rows)
    candidates = {hit_row, *(c for r in rows for c in index.sentence_chunks[r])}
    best = max(sorted(candidates), key=lambda c: (len(wanted & set(index.chunk_sentence_rows[c])),
                                                  c == hit_row))  # fmt: skip
    return index.chunks[best]


def quote_score(statement: Statement, settings) -> float:
    """How well a statement answers, among those of one passage: the passage prior is
    the same for all, and the question's own words in the sentence count for more
    than they do when passages are compared (`Settings.quote_*_weight`)."""
    return (statement.cosine + settings.quote_lexical_weight * statement.lexical
            + settings.quote_novelty_weight * statement.novelty
            + settings.quote_type_weight * statement.typed)  # fmt: skip


def _select(index: Index, candidates: list[Statement], settings) -> list[Statement]:
    """The statement to quote first, plus close runners-up that say something different.

    The passage is the one holding the best-scored statement; within it, the statement
    with the best `quote_score` is quoted first. Runners-up are the next statements by
    score, within `sentence_margin` of the best.
    """
    passage = candidates[0].hit
    first = max((c for c in candidates if c.hit is passage), key=lambda c: quote_score(c, settings))
    chosen = [first]
    for candidate in candidates:
        if len(chosen) >= settings.max_answer_sentences:
            break
        if candidate is first:
            continue
        if candidate.score < candidates[0].score - settings.sentence_margin:
            break
        vector = index.sentence_vectors[candidate.row]
        if all(float(index.sentence_vectors[c.row] @ vector) < 0.8 for c in chosen):
            chosen.append(candidate)
    return chosen


def statement_text(index: Index, rows: list[int]) -> str:
    """A statement's sentences, one per line as a list's items stand in the document
    (so a word opening an item reads as an opener: answer_types.matches_type)."""
    return "\n".join(index.sentences[r][1].text for r in rows)


def statement_rows(index: Index, row: int, documents: dict) -> list[int]:
    """The sentence rows of the statement a sentence belongs to.

    A list item (set off by a line break and a bullet or number in the original)
    belongs with the other items and the "...include:" sentence opening them; any
    other sentence stands alone. Sentence rows follow document order.
    """
    doc = index.sentences[row][0]
    text = documents[doc]

    def joined(a: int, b: int) -> bool:  # row b continues the list row a is in
        if b >= len(index.sentences) or a < 0 or index.sentences[b][0] != doc:
            return False
        return bool(_LIST_GAP.fullmatch(text[index.sentences[a][1].end : index.sentences[b][1].start]))

    first = row
    while joined(first - 1, first) and first - row > -12:
        first -= 1
    last = row
    if index.sentences[row][1].text.endswith(":") or first < row:
        while joined(last, last + 1) and last - first < 12:
            last += 1
    if first == last == row:
        return [row]
    return list(range(first, last + 1))


def _corroborations(index: Index, candidate, hits: list[Hit], settings) -> list[tuple]:
    """The same statement in another document: a near-identical sentence among the hits."""
    row, hit = candidate.row, candidate.hit
    doc = index.sentences[row][0]
    vector = index.sentence_vectors[row]
    best: dict[str, tuple] = {}
    pool = [h for top in hits for h in [top, *top.also_in]]
    for other_hit in pool:
        if other_hit.chunk.doc == doc:
            continue
        for other in index.chunk_sentence_rows[other_hit.row]:
            cosine = float(index.sentence_vectors[other] @ vector)
            if cosine >= settings.corroboration_cosine:
                current = best.get(other_hit.chunk.doc)
                if current is None or cosine > current[2]:
                    best[other_hit.chunk.doc] = (other, other_hit, cosine)
    return sorted(best.values(), key=lambda c: -c[2])[:2]


def confidence_features(index: Index, query: Query, hits: list[Hit], best, idf) -> dict:
    """The signals the confidence combines, each roughly in [0, 1]."""
    hit, cosine, rows = best.hit, best.cosine, best.rows
    statement = statement_text(index, rows)
    corrections = dict(query.corrections)
    question = recase(query.question, ChainMap(index.proper_names, WRITTEN), corrections)
    passage_terms = index.chunk_terms(hit.row)
    # A word the documents call otherwise ("Pyongyang") is not unknown to them.
    unknown = [t for t in set(query.terms) if t not in index.vocabulary and t not in query.aliased_terms]
    total_idf = sum(idf[t] for t in set(query.terms)) or 1.0
    dense_rank = hit.dense_rank or 99
    bm25_rank = hit.bm25_rank or 99
    agreement = 1.0 if max(dense_rank, bm25_rank) <= 3 else 0.5 if min(dense_rank, bm25_rank) <= 3 else 0.0
    return {
        "sentence_cosine": round(cosine, 4),
        "passage_cosine": round(max((h.dense_score or 0.0) for h in hits[:3]), 4),
        "term_coverage": round(coverage(query.terms, query.focus_terms, passage_terms, idf), 4),
        "rank_agreement": agreement,
        "unknown_terms": round(sum(idf[t] for t in unknown) / total_idf, 4),
        "answer_type": float(matches_type(statement, expected_type(query.question), query.text)),
        "entity_coverage": round(entity_coverage(
            question, " ".join(h.chunk.text for h in hits[:3]), corrections), 4),
        "entity_gap": round(entity_gap(index, question, statement, corrections), 4),
        "unknown_name": unknown_name(index, question, corrections),
    }


def confidence_from(features: dict, weights: dict) -> float:
    z = weights.get("bias", 0.0) + sum(weights.get(k, 0.0) * v for k, v in features.items())
    return 1.0 / (1.0 + math.exp(-max(min(z, 30.0), -30.0)))


def type_gate(confidence: float, features: dict, factor: float) -> float:
    """Scale the confidence down when the best statement is not what the question asks
    for (no date for a "when", no name for a "who"). On the dev split this separates
    near-miss questions from answerable ones far better than the fitted weight alone."""
    return confidence * factor if features.get("answer_type") == 0.0 else confidence


def feature_matrix(feature_dicts: list[dict]) -> tuple[np.ndarray, list[str]]:
    names = [k for k in DEFAULT_WEIGHTS if k != "bias"]
    return np.array([[f.get(k, 0.0) for k in names] for f in feature_dicts], dtype=float), names
