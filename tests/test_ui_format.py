"""Chat markers: only the [n] markers the answer appended are links, never document text."""

from __future__ import annotations

import pytest

import re

from markdown_it import MarkdownIt

from assistant.answer.citations import NOT_IN_DOCUMENTS, Answer, Citation, answer_text
from assistant.web.formatting import answer_parts, cite_link, escape_markdown, format_answer_message, source_cards


def citation(n: int, quote: str, doc: str = "a.txt") -> Citation:
    return Citation(n, f"{doc}:{n}-{n + 1}#{n:06x}", doc, "Title", "Section", n, n + 1, quote,
                    f"Before. {quote} After.", 1.0)  # fmt: skip


def answer(parts: list[tuple[str, list[int]]], *citations: Citation) -> Answer:
    """An answer as compose_answer makes one: its text is built from its parts."""
    return Answer("Q?", answer_text(parts), False, 0.9, list(citations), [], parts=parts)


def links(message: str) -> list[str]:
    body = message.split("\n\n")[0]  # the answer, not the sources list under it
    return re.findall(r'<a href="([^"]+)">\[(\d+)\]</a>', MarkdownIt("commonmark").render(body))


def test_answer_text_puts_each_statements_markers_after_it():
    assert answer_text([("It was signed.", [1, 2]), ("Talks resumed.", [3])]) == (
        "It was signed. [1][2] Talks resumed. [3]"
    )


def test_a_footnote_in_the_quote_is_text_not_a_citation_link():
    first = citation(1, "The armistice was signed on 27 July 1953.")
    second = citation(2, "See note [2] for the <img src=x onerror=alert(1)> text.")
    third = citation(3, "The armistice was signed.", doc="b.txt")
    a = answer([(first.quote, [1]), (second.quote, [2, 3])], first, second, third)
    assert a.answer == ("The armistice was signed on 27 July 1953. [1] "
                        "See note [2] for the <img src=x onerror=alert(1)> text. [2][3]")  # fmt: skip
    message = format_answer_message(a)
    assert links(message) == [(cite_link(c.id), str(c.n)) for c in (first, second, third)]
    rendered = MarkdownIt("commonmark").render(message)
    assert "See note [2] for the &lt;img" in rendered and "<img" not in rendered
    cards = source_cards(a)
    assert "Same statement cited as:* \\[3\\]" in cards[1].details and "Same" not in cards[0].details


def test_a_marker_like_end_of_a_quote_is_not_linked():
    # The quote ends in "[2]", just before the real marker; parsed out of the text, "[2]"
    # would have linked to citation 2, a passage that says something else.
    first = citation(1, "Prisoners were exchanged [2]")
    second = citation(2, "Talks resumed in October.")
    a = answer([(first.quote, [1]), (second.quote, [2])], first, second)
    assert links(format_answer_message(a)) == [(cite_link(c.id), str(c.n)) for c in (first, second)]
    assert "Prisoners were exchanged \\[2\\] [\\[1\\]]" in format_answer_message(a)


def test_an_abstention_links_nothing():
    a = Answer("Q?", NOT_IN_DOCUMENTS, True, 0.1, [], [])
    assert answer_parts(a) == [(NOT_IN_DOCUMENTS, [])]
    assert links(format_answer_message(a)) == []


@pytest.mark.parametrize(
    "text, escaped",
    [
        ("see www.example.test today", "see www\\.example.test today"),
        ("at https://example.test/phish now", "at https\\://example.test/phish now"),
        ("ftp://x.test and HTTP://Y.test", "ftp\\://x.test and HTTP\\://Y.test"),
        ("mail a.b@example.test", "mail a.b\\@example.test"),
        ("a ratio of 3:1 at 10.30", "a ratio of 3:1 at 10.30"),  # nothing that links: unchanged
    ],
)
def test_bare_addresses_are_not_left_for_a_renderer_to_link(text, escaped):
    """Issue 18, item 3: GFM renderers (the chat's) link bare URLs, www. and e-mails."""
    assert escape_markdown(text, one_line=True) == escaped


def test_a_pdf_citation_shows_its_page_everywhere_and_others_show_none():
    from dataclasses import replace

    from assistant.web.formatting import export_markdown, format_lookup

    paged = replace(citation(1, "The custodial force guarded the camps.", doc="r.pdf"), pages=(3, 4))
    plain = citation(2, "Talks began at Kaesong.")
    shown = answer([("The custodial force guarded the camps.", [1]), ("Talks began at Kaesong.", [2])],
                   paged, plain)  # fmt: skip
    message = format_answer_message(shown)
    assert "Section · pp. 3–4" in message and "Section · p." not in message.split("pp. 3–4")[1]
    assert "Section · pp. 3–4" in source_cards(shown)[0].header and "· p" not in source_cards(shown)[1].header
    assert "- Page: pp. 3–4" in export_markdown(shown) and export_markdown(shown).count("- Page:") == 1
    assert "Section · pp. 3–4" in format_lookup(paged.id, replace(paged, pages=(3, 4)))
    assert replace(paged, pages=(5, 5)).page_label == "p. 5" and plain.page_label == ""
