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
from ..text.markdown import escape_markdown
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
    details: str


def format_answer_message(answer: Answer) -> str:
    """The assistant's chat message: the answer with [n] markers, or a clear abstention."""
    if answer.abstained:
        closest = "".join(
            f"\n> - [{escape_markdown(c.title, one_line=True)} — {escape_markdown(c.section, one_line=True)}]"
            f"({cite_link(c.id)})" for c in answer.closest)  # fmt: skip
        if closest:
            closest = "\n>\n> The closest passages, for you to check (not an answer):" + closest
        return (
            "> **Not in the documents.** The documents don't answer that, so nothing is "
            f"cited.\n>\n> *Confidence {answer.confidence:.2f}*{closest}"
        )
    sources = "  \n".join(
        f"[\\[{c.n}\\]]({cite_link(c.id)}) {escape_markdown(c.title, one_line=True)} — "
        f"{escape_markdown(c.section, one_line=True)}"
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
        f"*Confidence {answer.confidence:.2f}* · sources are listed beside the chat\n\n{sources}"
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


def why_this_passage(hit: Hit | None, folded_into: Hit | None, answer: Answer) -> str:
    """One line: dense cosine, late-interaction match, BM25 matched terms, fused rank
    (Markdown-safe)."""
    if hit is None:
        return "*Why this passage:* not among the retrieved passages."
    dense = "n/a" if hit.dense_score is None else f"{hit.dense_score:.3f}"
    if hit.dense_rank:
        dense += f" (dense rank {hit.dense_rank})"
    surface = _surface_words(answer)
    matched_terms = hit.matched_terms
    if not matched_terms and answer.query is not None:  # a folded twin was never annotated
        matched_terms = tuple(sorted(set(answer.query.terms) & set(terms(hit.chunk.text))))
    matched = ", ".join(surface.get(t, t) for t in matched_terms) or "none"
    bm25 = f"BM25 rank {hit.bm25_rank}" if hit.bm25_rank else "no BM25 match"
    rank = (
        f"fused rank {hit.rank}"
        if folded_into is None
        else f"a near-duplicate folded into fused rank {folded_into.rank}"
    )
    late = "" if hit.token_score is None else f" · word-piece match {hit.token_score:.3f}"
    return (
        f"*Why this passage:* dense cosine {dense}{late} · matched terms: "
        f"{escape_markdown(matched, one_line=True)} ({bm25}) · {rank}"
    )


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
            f"{escape_markdown(c.section, one_line=True)}  \n"
            f"{escape_markdown(c.id, one_line=True)} · characters {c.start}–{c.end} · "
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
        lines.append(why_this_passage(hit, folded_into, answer))
        short = answer.short_answer
        inside = short is not None and short.doc == c.doc and c.start <= short.start and short.end <= c.end
        cards.append(SourceCard(c.n, c.id, header, highlight_quote(c.passage, c.quote, short.text if inside else None),
                                "  \n".join(lines)))  # fmt: skip
    return cards


def export_markdown(answer: Answer) -> str:
    """The answer and its citations as a Markdown file (quotes, document, section, span)."""
    out = [f"# {escape_markdown(answer.question, one_line=True)}", ""]
    if answer.abstained:
        out += ["**Not in the documents.** Nothing is cited.", ""]
        if answer.closest:
            out += ["The closest passages, for you to check (not an answer):", ""]
            out += [f"- {escape_markdown(c.title, one_line=True)} — {escape_markdown(c.section, one_line=True)}: "
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
            f"- Span: characters {c.start}–{c.end}",
            f"- Citation ID: {escape_markdown(c.id, one_line=True)}",
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
        f"{escape_markdown(citation.section, one_line=True)}  \n"
        f"{escape_markdown(citation.id, one_line=True)} · characters "
        f"{citation.start}–{citation.end} · [link to this citation]({cite_link(citation.id)})"
    )
    return "\n".join(lines)
