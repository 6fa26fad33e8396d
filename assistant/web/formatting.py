"""Pure formatting for the web UI: safe Markdown, highlighted quotes, source cards, export.

Document text never becomes HTML here: it goes into Markdown only through
`escape_markdown` (so `<img onerror=...>`, `<script>` and `[x](javascript:...)`
render as literal text) and into gr.HighlightedText as plain (text, label)
pairs. Does not call the engine, import Gradio, or touch files.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import quote as url_quote

from ..pipeline import Answer, Citation, Hit, answer_text
from ..text.markdown import code_span, escape_markdown
from ..text.terms import stem, terms, words

QUOTE_LABEL = "quote"
ANSWER_LABEL = "answer"  # the short answer inside the quote
Spans = list[tuple[str, str | None]]

def cite_link(citation_id: str) -> str:
    """A relative link that opens the citation lookup tab on this ID."""
    return "?cite=" + url_quote(citation_id, safe="")


def highlight_quote(passage: str, quote: str, short: str | None = None) -> Spans:
    """The passage as (text, label) spans with the quote labelled, for gr.HighlightedText,
    and inside the quote the short answer, if any, labelled apart (ANSWER_LABEL).

    The passage is cleaned text and the quote is the original file's characters, so an
    exact match is tried first, then one that ignores differences in whitespace. If the
    quote still cannot be found, it is shown (labelled) above the whole passage.
    """
    if not quote:
        return [(passage, None)]
    start = passage.find(quote)
    end = start + len(quote)
    if start < 0:
        pattern = r"\s+".join(re.escape(w) for w in quote.split())
        match = re.search(pattern, passage) if pattern else None
        if match is None:
            return [(quote, QUOTE_LABEL), ("\n\n" + passage, None)]
        start, end = match.span()
    quoted = [(passage[start:end], QUOTE_LABEL)]
    at = passage[start:end].find(short) if short else -1
    if at >= 0:
        inner = passage[start:end]
        quoted = [(inner[:at], QUOTE_LABEL), (short, ANSWER_LABEL), (inner[at + len(short):], QUOTE_LABEL)]
    spans = [(passage[:start], None), *quoted, (passage[end:], None)]
    return [s for s in spans if s[0]]


@dataclass(frozen=True)
class SourceCard:
    """One cited passage, ready to show: header and details are safe Markdown."""

    n: int
    citation_id: str
    header: str
    spans: Spans
    details: str  # same statement, also in, why this passage (in plain words)
    scores: str = ""  # the numbers behind "why", one click away


def where(citation: Citation) -> str:
    """The citation's section, and its page for a PDF: "Custody · p. 3" (Markdown)."""
    section = escape_markdown(citation.section, one_line=True)
    return f"{section} · {citation.page_label}" if citation.page_label else section


def format_answer_message(answer: Answer) -> str:
    """The assistant's chat message: the answer with [n] markers, or a clear abstention."""
    if answer.abstained:
        closest = "".join(
            f"\n> - [{escape_markdown(c.title, one_line=True)} — {where(c)}]"
            f"({cite_link(c.id)}) · {code_span(c.id)}" for c in answer.closest)  # fmt: skip
        if closest:
            closest = "\n>\n> The closest passages, for you to check (not an answer):" + closest
        return (
            "> **Not in the documents.** The documents don't answer that, so nothing is "
            f"cited.\n>\n> *Confidence {answer.confidence:.2f}*{closest}"
        )
    sources = "  \n".join(
        f"[\\[{c.n}\\]]({cite_link(c.id)}) {escape_markdown(c.title, one_line=True)} — "
        f"{where(c)} · {code_span(c.id)}"
        for c in answer.citations
    )
    ids = {c.n: c.id for c in answer.citations}
    short = ""
    if answer.short_answer is not None:
        short = f"**{escape_markdown(answer.short_answer.text, one_line=True)}**\n\n"
    text = short + answer_text([(escape_markdown(said, one_line=True), numbers)
                        for said, numbers in answer_parts(answer)],
                       marker=lambda n: f"[\\[{n}\\]]({cite_link(ids[n])})")  # fmt: skip
    return (
        f"{text}\n\n"
        f"*Confidence {answer.confidence:.2f}* · each [n] opens its passage in the citation "
        f"lookup; the passages are also under Sources\n\n{sources}"
    )


def answer_parts(answer: Answer) -> list[tuple[str, list[int]]]:
    """The answer as (statement, the numbers of its markers); one unmarked part when the
    answer has no statements (an abstention)."""
    return answer.parts or [(answer.answer, [])]


def find_hit(answer: Answer, citation: Citation) -> tuple[Hit | None, Hit | None]:
    """(the retrieved passage a citation came from, the ranked hit it was folded into)."""
    for hit in answer.retrieved:
        if hit.chunk.id == citation.passage_id:
            return hit, None
    for hit in answer.retrieved:
        for twin in hit.also_in:
            if twin.chunk.id == citation.passage_id:
                return twin, hit
    return None, None


def why_this_passage(hit: Hit | None, folded_into: Hit | None, answer: Answer) -> tuple[str, str]:
    """(why, in plain words: the question's words it holds and how close in meaning it is of
    all passages; the numbers behind that: cosine, word-piece match, BM25 and fused ranks),
    both Markdown-safe."""
    if hit is None:
        return "*Why this passage:* it was not among the passages retrieved.", ""
    surface = _surface_words(answer)
    matched_terms = hit.matched_terms
    if not matched_terms and answer.query is not None:  # a folded twin was never annotated
        matched_terms = tuple(sorted(set(answer.query.terms) & set(terms(hit.chunk.text))))
    matched = [surface.get(t, t) for t in matched_terms]
    said = []
    if matched:
        said.append("it holds your words " + ", ".join(f"*{escape_markdown(w, one_line=True)}*" for w in matched))
    else:
        said.append("it holds none of your words")
    if hit.dense_rank == 1:
        said.append("it is the closest in meaning of all passages")
    elif hit.dense_rank:
        said.append(f"it is the {_ordinal(hit.dense_rank)} closest in meaning of all passages")
    if folded_into is not None:
        said.append(f"it repeats the passage ranked {folded_into.rank}")
    why = "*Why this passage:* " + "; ".join(said) + "."

    dense = "n/a" if hit.dense_score is None else f"{hit.dense_score:.3f}"
    if hit.dense_rank:
        dense += f" (dense rank {hit.dense_rank})"
    bm25 = f"BM25 rank {hit.bm25_rank}" if hit.bm25_rank else "no BM25 match"
    rank = (
        f"fused rank {hit.rank}"
        if folded_into is None
        else f"a near-duplicate folded into fused rank {folded_into.rank}"
    )
    late = "" if hit.token_score is None else f" · word-piece match {hit.token_score:.3f}"
    numbers = (f"dense cosine {dense}{late} · matched terms: "
               f"{escape_markdown(', '.join(matched) or 'none', one_line=True)} ({bm25}) · {rank}")  # fmt: skip
    return why, numbers


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def _surface_words(answer: Answer) -> dict[str, str]:
    """Stem -> a word the user typed, so matched terms read as words, not stems."""
    if answer.query is None:
        return {}
    out: dict[str, str] = {}
    for word in words(answer.query.text):
        out.setdefault(stem(word), word)
    return out


def source_cards(answer: Answer) -> list[SourceCard]:
    """A card per citation: title, section, passage with the quote, also-in, why."""
    groups = [numbers for _, numbers in answer_parts(answer)]
    cards = []
    for c in answer.citations:
        hit, folded_into = find_hit(answer, c)
        header = (
            f"**\\[{c.n}\\] {escape_markdown(c.title, one_line=True)}** — "
            f"{where(c)}  \n"
            f"{code_span(c.id)} · characters {c.start}–{c.end} · "
            f"[link to this citation]({cite_link(c.id)})"
        )
        lines = []
        same = [n for g in groups if c.n in g for n in g if n != c.n]
        if same:
            lines.append("*Same statement cited as:* " + ", ".join(f"\\[{n}\\]" for n in same))
        twins = (hit.also_in if hit is not None else []) + ([folded_into] if folded_into else [])
        if twins:
            lines.append(
                "*Also in:* "
                + "; ".join(
                    f"{escape_markdown(t.chunk.title, one_line=True)} — "
                    f"{escape_markdown(t.chunk.section, one_line=True)}"
                    for t in twins
                )
            )
        why, scores = why_this_passage(hit, folded_into, answer)
        lines.append(why)
        short = answer.short_answer
        inside = short is not None and short.doc == c.doc and c.start <= short.start and short.end <= c.end
        cards.append(SourceCard(c.n, c.id, header, highlight_quote(c.passage, c.quote, short.text if inside else None),
                                "  \n".join(lines), scores))  # fmt: skip
    return cards


def export_markdown(answer: Answer) -> str:
    """The answer and its citations as a Markdown file (quotes, document, section, span)."""
    out = [f"# {escape_markdown(answer.question, one_line=True)}", ""]
    if answer.abstained:
        out += ["**Not in the documents.** Nothing is cited.", ""]
        if answer.closest:
            out += ["The closest passages, for you to check (not an answer):", ""]
            out += [f"- {escape_markdown(c.title, one_line=True)} — {where(c)}: "
                    f"`{c.id}`" for c in answer.closest] + [""]  # fmt: skip
    else:
        if answer.short_answer is not None:
            out += [f"**Short answer:** {escape_markdown(answer.short_answer.text, one_line=True)}", ""]
        out += [escape_markdown(answer.answer, one_line=True), ""]
    out += [f"Confidence: {answer.confidence:.2f}", ""]
    if answer.citations:
        out += ["## Citations", ""]
    for c in answer.citations:
        out += [
            f"**\\[{c.n}\\]**",
            "",
            f"> {escape_markdown(c.quote, one_line=True)}",
            "",
            f"- Document: {escape_markdown(c.title, one_line=True)} "
            f"({escape_markdown(c.doc, one_line=True)})",
            f"- Section: {escape_markdown(c.section, one_line=True)}",
            *([f"- Page: {c.page_label}"] if c.page_label else []),
            f"- Span: characters {c.start}–{c.end}",
            f"- Citation ID: {code_span(c.id)}",
            "",
        ]
    return "\n".join(out)


def format_lookup(requested: str, citation: Citation) -> str:
    """The lookup tab's header: stale warning if any, title, section, span, link."""
    lines = []
    if citation.stale:
        lines.append(
            f"⚠️ **Stale citation.** {escape_markdown(requested, one_line=True)} no longer "
            "matches its document (the document changed since it was cited). "
            "Showing the nearest current passage instead."
        )
        lines.append("")
    lines.append(
        f"**{escape_markdown(citation.title, one_line=True)}** — "
        f"{where(citation)}  \n"
        f"{code_span(citation.id)} · characters "
        f"{citation.start}–{citation.end} · [link to this citation]({cite_link(citation.id)})"
    )
    return "\n".join(lines)
