"""What an answer is made of: the `Answer`, its `Citation`s, their stable IDs, and
the answer text with its [n] markers.

Every citation's quote is the original file's text[start:end]. Plain data and
pure functions: does not choose what to quote (compose.py) or score it.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field

from ..search.query import Query
from ..search.retrieval import Hit

NOT_IN_DOCUMENTS = "The documents don't answer that."


@dataclass(frozen=True)
class Span:
    """Where a short answer sits: `text` == the original document text[start:end]."""

    text: str
    doc: str
    start: int
    end: int

    def to_dict(self) -> dict:
        return {"text": self.text, "doc": self.doc, "start": self.start, "end": self.end}


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
    pages: tuple[int, int] | None = None  # first and last page of the quote (PDF only)

    @property
    def page_label(self) -> str:
        """"p. 3", "pp. 3–4", or "" for a document without pages."""
        if self.pages is None:
            return ""
        first, last = self.pages
        return f"p. {first}" if first == last else f"pp. {first}–{last}"

    def to_dict(self) -> dict:
        keys = ("n", "id", "doc", "title", "section", "start", "end", "quote", "passage", "score")
        return {**{k: getattr(self, k) for k in keys},
                "pages": None if self.pages is None else list(self.pages)}  # fmt: skip

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
    # The shortest span of the first quoted statement that answers a question asking for
    # a person, place, date, number, organisation (answer/verify.py), or the phrase that
    # answers a "what" question (answer/phrases.py); None otherwise.
    short_answer: Span | None = None
    # An abstention's nearest passages, for the reader to check (never citations).
    closest: list[Citation] = field(default_factory=list)
    # The candidate statements weighed (answer/selection.py): each one's inputs to the
    # selector and its text, for `assistant eval --calibrate` to fit the selector on.
    candidates: list[tuple[dict, str]] = field(default_factory=list, repr=False)
    # A "what" question's candidate phrases of the quoted statement (answer/phrases.py):
    # each one's inputs and its text, for `--calibrate` to fit the phrase model on.
    phrases: list[tuple[dict, str]] = field(default_factory=list, repr=False)

    def to_dict(self) -> dict:
        """The JSON shape of `assistant ask --json` and the /ask API."""
        return {
            "question": self.question,
            "answer": self.answer,
            "abstained": self.abstained,
            "confidence": round(self.confidence, 4),
            "short_answer": None if self.short_answer is None else self.short_answer.to_dict(),
            "closest": [{k: c.to_dict()[k] for k in ("id", "doc", "title", "section", "start", "end", "pages")}
                        for c in self.closest],
            "citations": [c.to_dict() for c in self.citations],
            "retrieved": [
                {"id": h.chunk.id, "doc": h.chunk.doc, "text": h.chunk.text,
                 "score": round(h.score, 6)}  # fmt: skip
                for h in self.retrieved
            ],
        }


def citation_id(doc: str, start: int, end: int, quote: str) -> str:
    """Human-readable and stable while the document is: path, span, quote hash."""
    return f"{doc}:{start}-{end}#{hashlib.sha256(quote.encode('utf-8')).hexdigest()[:6]}"


# What copying a citation ID out of rendered or exported Markdown can add to it: a
# backslash before Markdown punctuation, code-span backticks, quotes, brackets, line breaks.
_MARKDOWN_ESCAPE = re.compile(r"\\([\\`*_\[\]{}()|~$#>+=.!-])")
_WRAPPING = "`'\"“”‘’<>[]()"


def clean_citation_id(text: str) -> str:
    """A citation ID as pasted, without what copying added: escapes, backticks, quotes,
    brackets around it and whitespace anywhere (an ID holds none of these)."""
    text = "".join((text or "").split()).strip(_WRAPPING)
    text = text.replace("&amp;", "&").replace("&lt;", "<").replace("&gt;", ">")
    text = _MARKDOWN_ESCAPE.sub(r"\1", text)
    for _ in range(2):  # `“id”.` : the closing quote, then the sentence's full stop
        text = text.strip(_WRAPPING).rstrip(".,;:")
    return text


def answer_text(parts: list[tuple[str, list[int]]], marker=lambda n: f"[{n}]") -> str:
    """Statements, each followed by its markers: "It was signed in 1953. [1][2] ..."
    (`marker` writes one; the chat makes each a link)."""
    return " ".join(f"{said} {''.join(map(marker, numbers))}".strip() for said, numbers in parts)


def closest_passages(hits: list[Hit], documents: dict, settings) -> list[Citation]:
    """When the assistant abstains: the passages nearest the question, for the reader to
    check (`Settings.closest_passages`), each as a lookup reference to the whole passage.
    They are not an answer and carry no [n] marker (n is 0)."""
    out = []
    for hit in hits[: settings.closest_passages]:
        chunk = hit.chunk
        quote = documents[chunk.doc][chunk.start : chunk.end]
        out.append(Citation(0, citation_id(chunk.doc, chunk.start, chunk.end, quote), chunk.doc, chunk.title,
                            chunk.section, chunk.start, chunk.end, quote, chunk.text, round(hit.score, 4),
                            chunk.id, chunk.start, chunk.end))  # fmt: skip
    return out
