"""Does a statement state what the question asks? Its typed spans, its hold on the
asked relation, and the short answer inside it.

A statement answers "Where was the armistice signed?" only if it holds a place
(the kind asked) that the question does not already name, and says something of
the signing (the relation asked, `Asked.relation`), with the place near those
words. Typed spans come from the entities found when the index was built
(ingest/entities.py), with kinds.py's patterns for dates and counts as a second
opinion. Everything here reads one statement and the question's analysis: nothing
is a statistic of the corpus, so it means the same whatever documents are added.
Does not choose statements or score confidence (compose.py, confidence.py do).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from ..search.analysis import Asked
from ..store.index import Index
from ..text.terms import WORD, stem, words
from .citations import Span
from .kinds import MONTHS, PLACE, PLACE_OF

# The entity labels (OntoNotes, as spaCy's English pipelines use them) that answer each
# span kind. A country answers "who" as well as a person does ("China intervened").
SPAN_LABELS = {
    "person": {"PERSON"},
    "place": {"GPE", "LOC", "FAC"},
    "date": {"DATE"},
    "time": {"TIME"},
    "number": {"CARDINAL", "QUANTITY", "MONEY", "PERCENT"},
    "organisation": {"ORG", "NORP", "GPE"},
    "agent": {"PERSON", "ORG", "NORP", "GPE"},
    # What something is called: any proper name.
    "name": {"PERSON", "ORG", "NORP", "GPE", "LOC", "FAC", "EVENT", "LAW", "WORK_OF_ART", "PRODUCT",
             "LANGUAGE"},
}
_TITLE_LABELS = frozenset({"LAW", "ORG", "WORK_OF_ART", "EVENT", "PRODUCT"})
# Two or more capitalised words in a row, "of" / "the" / "and" between ("Operation Little
# Switch", "the Agreement on Reconciliation"): a name the entity model may not label.
_TITLED = re.compile(r"\b[A-Z][\w’'-]*(?:\s+(?:(?:of|the|and|on|for)\s+)*[A-Z][\w’'-]*)+")
_YEAR_OR_DATE = re.compile(rf"\b(?:(?:{MONTHS})(?:\s+\d{{1,2}})?,?\s+)?(?:1[5-9]\d\d|20\d\d)s?\b")
# A count: "75,823", "38", "2.5"; not a piece of a designation or a range ("EC-121", "20-23").
_COUNT = re.compile(r"(?<![\w.,\-–])\d{1,3}(?:,\d{3})+(?![\w,\-–])|(?<![\w.,\-–])\d+(?:\.\d+)?(?![\w.,\-–])")
_HAS_PART = {
    "year": re.compile(r"\b(?:1[5-9]\d\d|20\d\d)s?\b|['’]\d\d\b"),
    "month": re.compile(rf"\b(?:{MONTHS})\b"),
    "day": re.compile(rf"\b(?:{MONTHS})\s+\d{{1,2}}\b|\b\d{{1,2}}(?:st|nd|rd|th)?\s+(?:of\s+)?(?:{MONTHS})\b"),
}


def typed_spans(index: Index, rows: list[int], documents: dict, asked: Asked) -> list[Span]:
    """The spans of the asked kind in the statement's sentences that the question does
    not already name, in document order; [] when the kind is not a span kind."""
    labels = SPAN_LABELS.get(asked.kind or "")
    if not labels:
        return []
    question = " ".join(words(asked.recased))
    found: list[Span] = []
    for row in rows:
        doc, sentence = index.sentences[row]
        text = documents[doc]
        entities = index.sentence_entities[row] if row < len(index.sentence_entities) else []
        spans = [(a, b) for a, b, label in entities if label in labels]
        original = text[sentence.start : sentence.end]
        if asked.kind == "date":  # years and "June 25, 1950" the entity model may miss
            spans += [m.span() for m in _YEAR_OR_DATE.finditer(original)]
        elif asked.kind == "number":  # a count the entity model missed, not a day of a date
            dates = [(a, b) for a, b, label in entities if label in ("DATE", "TIME")]
            spans += [m.span() for m in _COUNT.finditer(original) if not _YEAR_OR_DATE.fullmatch(m.group())
                      and not any(a < m.end() and m.start() < b for a, b in dates)]  # fmt: skip
        elif asked.kind == "name":
            spans += [m.span() for m in _TITLED.finditer(original) if m.start() > 0]
        elif asked.kind == "place":  # "at Kaesong", "the village of Kaesong" (kinds.py), not
            # a word of a title ("the Agreement on Reconciliation": a LAW or an ORG entity)
            titles = [(a, b) for a, b, label in entities if label in _TITLE_LABELS]
            named = [m.span(3) for m in PLACE.finditer(original)] + [m.span(2) for m in PLACE_OF.finditer(original)]
            spans += [(a, b) for a, b in named if not any(x <= a and b <= y for x, y in titles)]
        for a, b in sorted(set(spans)):
            if not 0 <= a < b <= len(original):
                continue
            value = original[a:b].strip(" ,.;:")
            said = " ".join(words(value))
            if not said or (f" {said} " in f" {question} "):
                continue  # the question names it already: "before the 1953 signing"
            if asked.kind == "date" and asked.date_part and not _HAS_PART[asked.date_part].search(value):
                continue  # "July 8" does not say in what year
            start = sentence.start + a + original[a:b].find(value)
            found.append(Span(value, doc, start, start + len(value)))
    return _outermost(found)


def _outermost(spans: list[Span]) -> list[Span]:
    """Spans not inside another one ("1953" inside "July 27, 1953")."""
    return [s for s in spans if not any(o is not s and o.doc == s.doc and o.start <= s.start
                                        and s.end <= o.end and o.end - o.start > s.end - s.start
                                        for o in spans)]  # fmt: skip


def relation_positions(asked: Asked, doc_text: str, start: int, end: int) -> list[int]:
    """Where, in the document, the statement's words carry the asked relation's stems."""
    relation = set(asked.relation)
    return [start + m.start() for m in WORD.finditer(doc_text[start:end])
            if stem(m.group().lower().replace("’", "'")) in relation]  # fmt: skip


def relation_coverage(asked: Asked, statement_terms: set[str] | frozenset[str]) -> float:
    """Share of the asked relation's stems the statement holds (1.0 when it asks none)."""
    if not asked.relation:
        return 1.0
    return sum(t in statement_terms for t in asked.relation) / len(asked.relation)


def short_answer(index: Index, rows: list[int], documents: dict, asked: Asked) -> Span | None:
    """The typed span nearest the words of the asked relation (the first, without them):
    "July 27, 1953" for "When was the armistice signed?". None for other kinds."""
    spans = typed_spans(index, rows, documents, asked)
    if not spans:
        return None
    anchors: dict[str, list[int]] = {}
    for row in rows:
        doc, sentence = index.sentences[row]
        anchors.setdefault(doc, []).extend(
            relation_positions(asked, documents[doc], sentence.start, sentence.end))

    def distance(span: Span) -> int:
        near = anchors.get(span.doc) or []
        return min((abs(p - span.start) for p in near), default=0)

    best = min(spans, key=lambda s: (distance(s), s.start))
    return listed_run(spans, best, documents) if asked.several else best


# What stands between two items of a list: ", ", " and ", ", and ", " or ".
_LIST_JOIN = re.compile(r"\s*,\s*(?:(?:and|or)\s+)?|\s+(?:and|or)\s+")


def listed_run(spans: list[Span], span: Span, documents: dict) -> Span:
    """The span widened over the spans listed with it ("the United States, the Soviet
    Union, and China" from "the United States"): neighbours in document order with only
    a comma or "and" / "or" between. `spans` are in document order."""
    i = spans.index(span)
    first = last = i
    text = documents[span.doc]

    def joined(a: Span, b: Span) -> bool:
        return a.doc == b.doc and a.end <= b.start and bool(_LIST_JOIN.fullmatch(text[a.end : b.start]))

    while first > 0 and joined(spans[first - 1], spans[first]):
        first -= 1
    while last + 1 < len(spans) and joined(spans[last], spans[last + 1]):
        last += 1
    if first == last:
        return span
    start, end = spans[first].start, spans[last].end
    return Span(text[start:end], span.doc, start, end)


@dataclass(frozen=True)
class Check:
    """What verification found in one statement (the confidence reads all but `short`)."""

    wants_span: bool  # the question asks for a span (a person, place, date, time, number...)
    kind_span: float  # 1.0: it holds a span of the asked kind, or none is asked; else 0.0
    relation: float  # relation_coverage: the relation's stems it holds
    delta: float  # relation_delta
    maxsim: float  # relation_maxsim
    short: Span | None  # short_answer


def check_statement(index: Index, rows: list[int], documents: dict, query, passage_row: int | None = None
                    ) -> Check:  # fmt: skip
    asked = query.asked
    own = set().union(*(index.sentence_terms(r) for r in rows))
    short = short_answer(index, rows, documents, asked)
    wants_span = asked.kind in SPAN_LABELS
    return Check(wants_span, float(short is not None or not wants_span), relation_coverage(asked, own),
                 relation_delta(index, rows, query), relation_maxsim(index, passage_row, query),
                 short)  # fmt: skip


def relation_maxsim(index: Index, row: int | None, query) -> float:
    """How well the passage holds the relation asked, word by word, in context: per
    relation word, its pieces' best cosine to one of the passage's word pieces (the
    late-interaction vectors), averaged over the words; 1.0 when none is asked, 0.0 when
    the index or the question has no word-piece vectors. A paraphrase ("headed" for "led")
    comes near; a relation the passage never speaks of ("born", "capital") does not."""
    if not query.asked.relation or not query.relation_groups:
        return 1.0 if not query.asked.relation else 0.0
    if row is None or not index.has_tokens or query.tokens is None:
        return 0.0
    start, end = index.token_offsets[row], index.token_offsets[row + 1]
    if end <= start:
        return 0.0
    vectors = index.project_tokens(np.asarray(query.tokens[1], dtype=np.float32))
    best = (vectors @ index.token_matrix[start:end].T).max(axis=1)
    return float(np.mean([max(best[i] for i in group) for group in query.relation_groups]))


def relation_delta(index: Index, rows: list[int], query) -> float:
    """How much closer the statement is to the question than to the question without its
    relation words (search/query.pooled_without; the model's own vectors): a statement that
    only shares the question's subject ("Japan", for "the capital of Japan") gains nothing
    from "capital"."""
    if query.raw_vector is None or query.ablated_vector is None or not query.asked.relation:
        return 0.0
    vector = index.sentence_vectors[rows].mean(axis=0)
    vector = vector / (np.linalg.norm(vector) or 1.0)
    return float(vector @ query.raw_vector - vector @ query.ablated_vector)


def verified_anywhere(index: Index, query, candidates, documents) -> dict:
    """Over every candidate statement of the top passages: the most of the asked relation
    one holds, and whether one holds both a span of the asked kind and most of the
    relation ("signed" and a place, for "Where was the armistice signed?"). A question
    whose relation and kind meet in no statement is likely one the documents do not
    answer, whichever statement is quoted."""
    asked = query.asked
    best_relation, verified = 0.0, 0.0
    for c in candidates:
        own = set().union(*(index.sentence_terms(r) for r in c.rows))
        relation = relation_coverage(asked, own)
        best_relation = max(best_relation, relation)
        if asked.kind in SPAN_LABELS and relation >= 0.5 and not verified:
            verified = float(bool(typed_spans(index, c.rows, documents, asked)))
    return {"relation_anywhere": round(best_relation, 4), "verified_anywhere": verified}
