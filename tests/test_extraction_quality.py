"""Issue 21: the same text added as a PDF and as Markdown gives the same answers and
the same passages, and every PDF citation's page is the page its quote is printed on.

Measured on the two documents written outside the team (tests/data/corpora/), each with
the question block written by someone who read only that document: the document as
Markdown, and typeset as a report (pdf_maker.py: two columns, a running header and
page numbers, words hyphenated at line ends, paragraphs running on across columns and
pages). The real model answers both.
"""

from __future__ import annotations

import io
import json
import re

import pytest
from pdfminer.high_level import extract_text

from assistant import Assistant
from assistant.config import load_settings

from conftest import ROOT
from pdf_maker import make_pdf, text_as_markdown

pytestmark = pytest.mark.slow
CORPORA = ROOT / "tests" / "data" / "corpora"
DOCUMENTS = {"pow": "pow_repatriation.txt", "agreements": "interkorean_agreements.txt"}


def letters(text: str) -> str:
    return re.sub(r"[^a-z0-9]", "", text.lower())


@pytest.mark.parametrize("corpus", sorted(DOCUMENTS))
def test_a_pdf_answers_as_its_markdown_does_and_cites_the_right_page(corpus, tmp_path, real_assistant):
    markdown = text_as_markdown((CORPORA / corpus / DOCUMENTS[corpus]).read_text(encoding="utf-8"))
    (tmp_path / "md").mkdir()
    (tmp_path / "pdf").mkdir()
    (tmp_path / "md" / "report.md").write_text(markdown, encoding="utf-8")
    pdf = make_pdf(markdown, tmp_path / "pdf" / "report.pdf", header=f"Outside report: {corpus}")
    settings = load_settings()
    as_md, as_pdf = (Assistant.load(tmp_path / kind, tmp_path / f"index-{kind}", settings=settings,
                                    embedder=real_assistant.embedder) for kind in ("md", "pdf"))  # fmt: skip
    count = next(row["pages"] for row in as_pdf.documents() if row["path"] == "report.pdf")
    header = letters(f"Outside report: {corpus}")
    pages = [re.sub(r"page\d+$", "", letters(extract_text(io.BytesIO(pdf.read_bytes()), page_numbers=[i]))
                    ).removeprefix(header) for i in range(count)]  # fmt: skip

    questions = [json.loads(line) for line in (CORPORA / corpus / "questions.jsonl").read_text().splitlines()]
    differ = []
    for q in questions:
        a, b = as_md.ask(q["question"], q.get("history", [])), as_pdf.ask(q["question"], q.get("history", []))
        same = (a.answer == b.answer and a.abstained == b.abstained
                and [h.chunk.text for h in a.retrieved] == [h.chunk.text for h in b.retrieved])  # fmt: skip
        if not same:
            differ.append(q["id"])
        for c in b.citations:  # on the pages it names: all of them, and no fewer
            first, last = c.pages
            quote = letters(c.quote)
            assert quote in "".join(pages[first - 1 : last]), (q["id"], c.id, c.pages)
            assert (quote in pages[first - 1]) == (first == last), (q["id"], c.id, c.pages)
    assert differ == [], f"{len(differ)} of {len(questions)} questions answered otherwise from the PDF"
