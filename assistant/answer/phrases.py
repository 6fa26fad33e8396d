"""The short answer to a "what" question: the phrase of the quoted statement that
answers it ("reconstruction aid or trade offers" for "What economic incentives could
encourage both Koreas to pursue peace?").

The statement's parse is read from the index (spaCy's small English pipeline, its tagger
and parser, run on every sentence when the index is built: ingest/entities.py), so that
answering never loads spaCy. Every noun phrase, with its list ("X or Y") or its whole subtree, and every
infinitive ("to contain communism") is a candidate, described by features that read
only the question and the statement: how much of it the question already says, where
it hangs in the parse (subject, object, after a preposition or "such as"), how far it
sits from the question's own words, its length. A logistic model over those features,
fitted by `assistant eval --calibrate` on dev questions with a short gold answer (a
candidate counts as right when its token F1 with the gold answer is at least 0.5),
scores each; the best is the short answer when it scores `floor` or more. Without
fitted weights there is no such short answer. Nothing here is a statistic of the corpus.
Span kinds (person, place, date...) are verify.py's; this reads only the kinds below.
"""

from __future__ import annotations

import unicodedata

from ..ingest.entities import analyse_sentences
from ..store.index import Index
from ..text.terms import STOPWORDS, stem, words
from .citations import Span
from .confidence import confidence_from

# The kinds of question whose short answer is a phrase: "what / which" questions asking
# for a thing, and keyword queries with no recognisable kind. Not lists ("What were the key
# terms?"): one phrase in bold would pass for the whole list.
PHRASE_KINDS = frozenset({"thing", None})
RIGHT_F1 = 0.5  # a candidate this close to the gold answer counts as right when fitting
_WH = frozenset({"what", "which", "who", "whom", "whose", "where", "when", "why", "how"})
_HEADS = frozenset({"NOUN", "PROPN", "NUM"})
_VERB_DEPS = frozenset({"xcomp", "pcomp", "conj", "dobj"})  # a verb phrase as an answer
_LEFT_DEPS = frozenset({"det", "amod", "compound", "poss", "nummod", "nmod", "advmod", "aux",
                        "neg", "case", "quantmod"})  # fmt: skip
_INTRODUCERS = frozenset({"as", "including", "like", "include", "includes", "included"})
_DEPS = ("nsubj", "nsubjpass", "dobj", "pobj", "conj", "attr", "appos", "xcomp", "ROOT", "npadvmod",
         "acomp", "advcl", "ccomp", "relcl")  # fmt: skip
MAX_TOKENS = 12
FAR = 9  # parse-tree distance counted as "not near the question's words"

PHRASE_FEATURES = ("novelty", "all_new", "any_question", "length", "one_word", "long", "distance",
                   "adjacent", "near", "governor_asked", "introduced", "has_verb", "has_comma",
                   "has_list", "proper", "verb_head", "unanchored",
                   *(f"dep_{d}" for d in _DEPS))  # fmt: skip


def question_stems(question: str) -> set[str]:
    """The question's content stems: its words less stopwords and wh-words."""
    return {stem(w.lower()) for w in words(question) if w.lower() not in STOPWORDS and w.lower() not in _WH}


class Token:
    """One token of a parsed statement, with the few spaCy Token attributes read here."""

    __slots__ = ("doc", "i", "idx", "text", "lower_", "pos_", "dep_", "_head", "children")

    def __init__(self, doc, i: int, idx: int, text: str, pos: str, dep: str, head: int):
        self.doc, self.i, self.idx, self.text, self.lower_ = doc, i, idx, text, text.lower()
        self.pos_, self.dep_, self._head, self.children = pos, dep, head, []

    @property
    def head(self) -> Token:
        return self.doc[self._head]

    @property
    def is_space(self) -> bool:
        return self.pos_ == "SPACE" or not self.text.strip()

    @property
    def is_punct(self) -> bool:
        return bool(self.text) and all(unicodedata.category(c).startswith("P") for c in self.text)

    @property
    def lefts(self) -> list[Token]:
        return [c for c in self.children if c.i < self.i]

    @property
    def rights(self) -> list[Token]:
        return [c for c in self.children if c.i > self.i]

    @property
    def subtree(self) -> list[Token]:
        out, todo = [], [self]
        while todo:
            t = todo.pop()
            out.append(t)
            todo.extend(t.children)
        return sorted(out, key=lambda t: t.i)

    @property
    def left_edge(self) -> Token:
        return self.subtree[0]

    @property
    def right_edge(self) -> Token:
        return self.subtree[-1]


class Phrase:
    """Tokens start..end of a parsed statement (spaCy's Span, as far as read here)."""

    def __init__(self, doc, start: int, end: int):
        self.doc, self.start, self.end = doc, start, max(start, end)

    def __len__(self) -> int:
        return self.end - self.start

    def __iter__(self):
        return iter(self.doc.tokens[self.start : self.end])

    def __getitem__(self, key):
        if isinstance(key, slice):
            first, last, _ = key.indices(len(self))
            return Phrase(self.doc, self.start + first, self.start + last)
        return self.doc.tokens[self.start : self.end][key]

    @property
    def text(self) -> str:
        if not len(self):
            return ""
        last = self.doc.tokens[self.end - 1]
        return self.doc.text[self.doc.tokens[self.start].idx : last.idx + len(last.text)]


class Parsed:
    """A statement and its tokens, rebuilt from the parse the index keeps of its sentences."""

    def __init__(self, text: str, tokens: list[tuple[int, int, str, str, int]]):
        self.text = text
        self.tokens = [Token(self, i, a, text[a:b], pos, dep, head) for i, (a, b, pos, dep, head) in enumerate(tokens)]
        for t in self.tokens:
            if t._head != t.i and 0 <= t._head < len(self.tokens):
                self.tokens[t._head].children.append(t)
            elif not 0 <= t._head < len(self.tokens):
                t._head = t.i

    def __len__(self) -> int:
        return len(self.tokens)

    def __iter__(self):
        return iter(self.tokens)

    def __getitem__(self, key):
        if isinstance(key, slice):
            first, last, _ = key.indices(len(self))
            return Phrase(self, first, last)
        return self.tokens[key]


def statement_parse(index: Index, rows: list[int], documents: dict) -> tuple[Parsed, str, int] | None:
    """The parse of a statement's sentences (consecutive rows of one document) as one
    Parsed, its document and its start there; None when the index keeps no parse."""
    if not rows or len(index.sentence_tokens) != len(index.sentences):
        return None
    doc, first = index.sentences[rows[0]]
    start, end = first.start, index.sentences[rows[-1]][1].end
    tokens = []
    for row in rows:
        shift, base = index.sentences[row][1].start - start, len(tokens)
        tokens += [(a + shift, b + shift, pos, dep, head + base) for a, b, pos, dep, head in index.sentence_tokens[row]]
    return Parsed(documents[doc][start:end], tokens), doc, start


def parse(text: str) -> Parsed:
    """A text parsed on the spot, as the index parses its sentences (for tests and tools)."""
    return Parsed(text, analyse_sentences([text])[0][1])


def candidates(doc) -> list[tuple[int, int, int]]:
    """(first token, end token, head token) of every candidate phrase, in order."""
    found = set()
    for tok in doc:
        if not (tok.pos_ in _HEADS or (tok.pos_ == "VERB" and tok.dep_ in _VERB_DEPS)):
            continue
        subtree = list(tok.subtree)
        left = [t for t in tok.lefts if t.dep_ in _LEFT_DEPS]
        starts = {min([tok.i] + [t.left_edge.i for t in left]), subtree[0].i}
        listed = max([tok.i] + [t.right_edge.i for t in tok.rights if t.dep_ in ("conj", "cc")])
        for first in starts:
            for last in {tok.i, listed, subtree[-1].i}:
                span = doc[first : last + 1]
                while len(span) and (span[-1].is_punct or span[-1].is_space or span[-1].pos_ in ("CCONJ", "ADP")):
                    span = span[:-1]
                if _opens(span) and span.end < len(doc) and doc[span.end].text in (")", "]"):
                    span = doc[span.start : span.end + 1]  # "the Korean Demilitarized Zone (DMZ)"
                while len(span) and (span[0].is_punct or span[0].is_space or span[0].pos_ == "CCONJ"):
                    span = span[1:]
                if 0 < len(span) <= MAX_TOKENS and _content(span):
                    found.add((span.start, span.end, tok.i))
    return sorted(found)


def _opens(span) -> bool:
    """An opening bracket in the span that it does not close."""
    text = span.text
    return text.count("(") + text.count("[") > text.count(")") + text.count("]")


def _content(tokens) -> list:
    return [t for t in tokens if not t.is_punct and t.lower_ not in STOPWORDS]


def _path(tok) -> list[int]:
    """The token and its heads up to the root, as token indices."""
    path = [tok.i]
    while tok.head.i != tok.i:
        tok = tok.head
        path.append(tok.i)
    return path


def features(doc, first: int, end: int, head: int, asked: set[str]) -> dict:
    """One candidate's inputs (PHRASE_FEATURES); `asked` is question_stems'."""
    span, head_tok = doc[first:end], doc[head]
    content = _content(span)
    said = [t for t in content if stem(t.lower_) in asked]
    novelty = 1.0 - len(said) / len(content)
    outside = [t.i for t in doc if not (first <= t.i < end) and not t.is_punct
               and t.lower_ not in STOPWORDS and stem(t.lower_) in asked]  # fmt: skip
    up = _path(head_tok)
    distance = FAR
    for i in outside:
        theirs = _path(doc[i])
        common = next((a for a in up if a in theirs), None)
        if common is not None:
            distance = min(distance, up.index(common) + theirs.index(common))
    governor = head_tok.head
    out = set(outside)
    values = {
        "novelty": novelty, "all_new": float(novelty == 1.0), "any_question": float(bool(said)),
        "length": len(span) / 6, "one_word": float(len(span) == 1), "long": float(len(span) > 7),
        "distance": distance / FAR, "adjacent": float(distance <= 1), "near": float(distance <= 2),
        "governor_asked": float(governor.i in out or (governor.pos_ == "ADP" and governor.head.i in out)),
        "introduced": float(any(t.lower_ in _INTRODUCERS for t in doc[max(0, first - 2) : first])),
        "has_verb": float(any(t.pos_ == "VERB" for t in span)),
        "has_comma": float(any(t.text == "," for t in span)),
        "has_list": float(any(t.dep_ == "conj" for t in span)),
        "proper": float(head_tok.pos_ == "PROPN"), "verb_head": float(head_tok.pos_ == "VERB"),
        "unanchored": float(not outside),
    }
    values.update({f"dep_{d}": float(head_tok.dep_ == d) for d in _DEPS})
    return {k: round(v, 4) for k, v in values.items()}


def phrase_answer(parsed: Parsed, doc_name: str, start: int, question: str, weights: dict, floor: float
                  ) -> tuple[Span | None, list[tuple[dict, str]]]:  # fmt: skip
    """The short answer inside a parsed statement (which sits at `start` of document
    `doc_name`), or None, and every candidate's (inputs, text) for fitting."""
    asked = question_stems(question)
    scored = []
    for first, last, head in candidates(parsed):
        inputs = features(parsed, first, last, head, asked)
        a = parsed[first].idx
        b = parsed[last - 1].idx + len(parsed[last - 1].text)
        scored.append((inputs, Span(parsed.text[a:b], doc_name, start + a, start + b)))
    listed = [(inputs, span.text) for inputs, span in scored]
    if not weights or not scored:
        return None, listed
    score, best = max(((confidence_from(inputs, weights), span) for inputs, span in scored),
                      key=lambda c: (c[0], -c[1].start))
    return (best if score >= floor else None), listed
