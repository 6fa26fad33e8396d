"""Compose an extractive answer: pick sentences, cite them, or abstain.

Every word of an answer is a sentence from a retrieved passage, followed by
`[n]` markers; each citation's quote is the original file's text[start:end].
The confidence is a logistic combination of several signals (confidence.py);
below `settings.abstain_below` the answer is withheld.
Does not retrieve and does not embed (vectors come from the index and query).
"""

from __future__ import annotations

import math
import re
from functools import lru_cache
from typing import NamedTuple

from ..store.index import Index
from ..search.query import Query
from ..search.retrieval import Hit
from ..text.terms import terms
from .citations import NOT_IN_DOCUMENTS, Answer, Citation, answer_text, citation_id, closest_passages
from .confidence import (DEFAULT_WEIGHTS, confidence_features, confidence_from, coverage, idf_weights,
                         statement_cosine, type_gate)
from .kinds import matches_type
from .phrases import PHRASE_KINDS, phrase_answer, statement_parse
from .selection import candidate_features, selection_score
from .verify import Check, check_statement, verified_anywhere

_LIST_GAP = re.compile(r"[ \t]*\r?\n\s*(?:[-*\u2022\u00b7\u25aa]|\d{1,2}[.)])\s*")


class Statement(NamedTuple):
    """A candidate statement of the answer, with the parts of its score."""

    row: int  # its first sentence row
    hit: Hit  # the passage it was scored in
    score: float  # the choice of passage (answer._score_sentences)
    cosine: float
    rows: list[int]
    lexical: float = 0.0
    novelty: float = 0.0
    typed: bool = False  # holds what the question asks for (kinds.matches_type)


def compose_answer(index: Index, query: Query, hits: list[Hit], documents: dict, settings) -> Answer:
    """Select answer sentences from the top hits, cite them and score the confidence.

    `documents` maps a document path to its original text (for verbatim quotes).
    """
    idf = idf_weights(index, query.terms)
    candidates = _score_sentences(index, query, hits[: settings.answer_passages], idf, documents,
                                  settings)  # fmt: skip
    if not candidates:
        return Answer(query.question, NOT_IN_DOCUMENTS, True, 0.0, [], hits, {}, query,
                      closest=closest_passages(hits, documents, settings))  # fmt: skip
    chosen = _select(index, candidates, settings)
    # Which statement to quote is the selector's (selection.py): each of the top
    # candidates verified against what the question asks and scored alone.
    anywhere = verified_anywhere(index, query, candidates, documents)
    top = max((h.score for h in hits[: settings.answer_passages]), default=1.0)
    pool = _pool(candidates, chosen[0], settings.selector_candidates)
    judged = []
    for statement in pool:
        judgement = _judge(index, query, hits, statement, idf, documents, anywhere)
        inputs = candidate_features(judgement.features, statement, quote=quote_score(statement, settings),
                                    top=top)  # fmt: skip
        judged.append((judgement, inputs, selection_score(inputs, settings.selector)))
    first = next(j for j, _, _ in judged if j.statement is chosen[0])
    best, selected = first, None
    if settings.selector:
        ranked = sorted(judged, key=lambda j: (-j[2], j[0] is not first))
        best, _, selected = ranked[0]
        # The runners-up are the selector's too: the next statements by its score, within
        # RUNNER_UP_SHARE of the best's, so that the answer does not hang on which statement
        # the first stage happened to rank first among near-equals.
        runners = [j.statement for j, _, score in ranked[1:] if score >= RUNNER_UP_SHARE * selected]
        chosen = _with_runners_up(index, best.statement, runners, settings)
    # The confidence is the quoted statement's: verified (verify.py) as the answer shown.
    features, check = dict(best.features), best.check
    if selected is not None:
        features["selected"] = round(selected, 4)
    confidence = type_gate(confidence_from(features, settings.calibration or DEFAULT_WEIGHTS), features,
                           settings.type_mismatch_factor, settings.relevance_floor)  # fmt: skip
    # "No answer" is a candidate too: the chance that every candidate is wrong (without
    # a selector, the one judged: the first choice).
    wrong = [1.0 - s for _, _, s in judged] if settings.selector else [1.0 - confidence]
    features["no_answer"] = round(math.prod(wrong), 4)
    candidate_inputs = [(inputs, j.text) for j, inputs, _ in judged]
    if confidence < settings.abstain_below:
        return Answer(query.question, NOT_IN_DOCUMENTS, True, confidence, [], hits, features, query,
                      closest=closest_passages(hits, documents, settings),
                      candidates=candidate_inputs)  # fmt: skip
    citations: list[Citation] = []
    parts: list[tuple[str, list[int]]] = []
    if query.asked.kind in ("reason", "process") and chosen:  # the reason often runs on
        chosen = [chosen[0]._replace(rows=explained_rows(index, chosen[0].rows, documents)),
                  *chosen[1:]]
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
    short, phrases = check.short, []
    wants_phrase = short is None and query.asked.kind in PHRASE_KINDS  # "what" questions: a phrase
    parsed = statement_parse(index, chosen[0].rows, documents) if wants_phrase else None
    if parsed is not None:
        short, phrases = phrase_answer(*parsed, query.asked.recased, settings.phrase, settings.phrase_floor)
    return Answer(query.question, answer_text(parts), False, confidence, citations, hits, features,
                  query, parts, short, candidates=candidate_inputs, phrases=phrases)  # fmt: skip


# Chosen on dev: 0.5 quoted more second statements that are not evidence (citation
# precision 0.950 -> 0.905), 0.8 fewer (0.933) for answer support 0.947 -> 0.954.
RUNNER_UP_SHARE = 0.8


class Judged(NamedTuple):
    statement: Statement
    check: Check
    features: dict  # the confidence signals, without the selector's score
    text: str  # statement_text of its rows


def _judge(index: Index, query: Query, hits: list[Hit], statement: Statement, idf, documents,
           anywhere: dict) -> Judged:  # fmt: skip
    """A candidate statement verified (verify.py), with its confidence signals."""
    check = check_statement(index, statement.rows, documents, query, statement.hit.row)
    text = statement_text(index, statement.rows)
    features = confidence_features(index, query, hits, statement, idf, text, check)
    features.update(anywhere)
    return Judged(statement, check, features, text)


def _pool(candidates: list[Statement], first: Statement, size: int) -> list[Statement]:
    """The candidates the selector weighs: the first `size` by statement score, and the
    first choice wherever it ranks."""
    pool = candidates[: max(size, 1)]
    return pool if any(c is first for c in pool) else [*pool, first]


def _with_runners_up(index: Index, first: Statement, chosen: list[Statement], settings) -> list[Statement]:
    """The selected statement quoted first, then those of `chosen` (in order) that say
    something different from it, up to `max_answer_sentences`."""
    out = [first]
    for candidate in chosen:
        if len(out) >= settings.max_answer_sentences:
            break
        if candidate.row != first.row and _says_other(index, candidate, out):
            out.append(candidate)
    return out


def _says_other(index: Index, candidate: Statement, chosen: list[Statement]) -> bool:
    """Whether a statement says something the chosen ones do not (first-sentence cosine
    below 0.8 to each)."""
    vector = index.sentence_vectors[candidate.row]
    return all(float(index.sentence_vectors[c.row] @ vector) < 0.8 for c in chosen)


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
    answer_type = query.asked.answer_type
    novelty_weight = settings.novelty_weight
    seen, out = set(), []
    top = max((h.score for h in hits), default=1.0) or 1.0
    for hit in hits:
        for row in index.chunk_sentence_rows[hit.row]:
            rows = statement_rows(index, row, documents)
            if rows[0] in seen:
                continue
            seen.add(rows[0])
            cosine = statement_cosine(index, rows, query.vector, query.own_vector)
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
        if _says_other(index, candidate, chosen):
            chosen.append(candidate)
    return chosen


_SAME_PARAGRAPH = re.compile(r"[ \t]+")


def explained_rows(index: Index, rows: list[int], documents: dict, *, extra: int = 1) -> list[int]:
    """A why- or how-answer's sentences: the statement and the next `extra` sentences of
    its paragraph (the reason is often given, or finished, by the sentence after)."""
    out = list(rows)
    doc = index.sentences[rows[-1]][0]
    text = documents[doc]
    for _ in range(extra):
        last, following = out[-1], out[-1] + 1
        if following >= len(index.sentences) or index.sentences[following][0] != doc:
            break
        gap = text[index.sentences[last][1].end : index.sentences[following][1].start]
        if not _SAME_PARAGRAPH.fullmatch(gap):
            break
        out.append(following)
    return out


def statement_text(index: Index, rows: list[int]) -> str:
    """A statement's sentences, one per line as a list's items stand in the document
    (so a word opening an item reads as an opener: kinds.matches_type)."""
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


