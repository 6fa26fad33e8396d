"""Issue 21: PDF, Word and HTML files read into text with their titles and pages
(ingest/formats.py), and each kind of bad file refused with one line.

PDFs are typeset in the test (pdf_maker.py: two columns, running header, page-number
footer, words hyphenated at line ends), so each case states its own input.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import docx
import pytest
from pdfminer.high_level import extract_text

from assistant.errors import DocumentError
from assistant.ingest.formats import extract, sniff

from pdf_maker import make_pdf

WORDS = ("negotiations delegations repatriation demarcation commissions supervisory "
         "international reconstruction armistice prisoners").split()  # fmt: skip


def report(paragraphs: int = 40) -> str:
    """A Markdown report long enough for several two-column pages, with long words that
    the typesetter hyphenates and a hyphenated compound that must stay whole."""
    out = ["# The Conduct of the Negotiations"]
    for i in range(paragraphs):
        if i % 6 == 0:
            out.append(f"## Phase {i // 6 + 1} of the Talks")
        body = " ".join(f"The {WORDS[(i + j) % len(WORDS)]} of session {i}-{j} went on for weeks."
                        for j in range(9))  # fmt: skip
        out.append(f"{body} A well-known delegate spoke in paragraph {i}.")
    return "\n\n".join(out) + "\n"


def paragraphs(text: str) -> list[str]:
    return [" ".join(p.split()) for p in text.split("\n\n") if p.strip()]


def test_a_two_column_pdf_reads_as_its_markdown(tmp_path):
    markdown = report()
    pdf = make_pdf(markdown, tmp_path / "r.pdf", header="Outside Report on the Talks")
    got = extract("r.pdf", pdf.read_bytes())
    assert got.format == "pdf" and len(got.pages) >= 3
    # Same paragraphs, same headings: running header and page numbers gone, words cut
    # at line ends joined again, the compound "well-known" kept, paragraphs cut by
    # column and page breaks whole.
    assert paragraphs(got.text) == paragraphs(markdown)
    assert "Outside Report" not in got.text and "Page 2" not in got.text
    assert got.title == "The Conduct of the Negotiations"


def test_pages_are_where_the_pdf_has_the_text(tmp_path):
    pdf = make_pdf(report(), tmp_path / "r.pdf")
    got = extract("r.pdf", pdf.read_bytes())
    assert got.pages[0] == 0 and list(got.pages) == sorted(got.pages)
    for page, start in enumerate(got.pages, start=1):
        end = got.pages[page] if page < len(got.pages) else len(got.text)
        words = [w for w in got.text[start:end].split() if not w.startswith("#")]
        middle = len(words) // 2
        sample = " ".join(words[middle : middle + 3])  # away from words hyphenated at a page's ends
        on_page = " ".join(extract_text(io.BytesIO(pdf.read_bytes()), page_numbers=[page - 1]).split())
        assert sample in on_page


def test_the_pdf_metadata_title_wins_unless_it_is_junk(tmp_path):
    good = make_pdf(report(3), tmp_path / "a.pdf", title="Minutes of the Panmunjom Talks")
    junk = make_pdf(report(3), tmp_path / "b.pdf", title="Microsoft Word - draft3.doc")
    assert extract("a.pdf", good.read_bytes()).title == "Minutes of the Panmunjom Talks"
    assert extract("b.pdf", junk.read_bytes()).title == "The Conduct of the Negotiations"


def test_an_encrypted_pdf_is_refused(tmp_path):
    pdf = make_pdf(report(3), tmp_path / "e.pdf", encrypt="secret")
    with pytest.raises(DocumentError, match="encrypted"):
        extract("e.pdf", pdf.read_bytes())


def test_a_truncated_pdf_is_refused(tmp_path):
    data = make_pdf(report(3), tmp_path / "t.pdf").read_bytes()
    with pytest.raises(DocumentError, match="t.pdf: "):
        extract("t.pdf", data[: len(data) // 3])


def test_a_pdf_without_a_text_layer_is_refused(tmp_path):
    from reportlab.pdfgen import canvas

    path = tmp_path / "scan.pdf"
    pdf = canvas.Canvas(str(path))
    pdf.rect(100, 100, 300, 400, fill=1)  # a page with marks and no text, as a scan
    pdf.showPage()
    pdf.save()
    with pytest.raises(DocumentError, match="no text layer"):
        extract("scan.pdf", path.read_bytes())


def word_file(tmp_path, title="Talks Record") -> bytes:
    document = docx.Document()
    document.core_properties.title = title
    document.add_heading("Opening of the Talks", level=1)
    document.add_paragraph("The delegations met at Kaesong on 10 July 1951.")
    document.add_paragraph("Kaesong", style="List Bullet")
    table = document.add_table(rows=1, cols=2)
    table.rows[0].cells[0].text, table.rows[0].cells[1].text = "Agenda item", "Prisoners"
    path = tmp_path / "w.docx"
    document.save(path)
    return path.read_bytes()


def test_a_word_file_keeps_headings_lists_and_tables(tmp_path):
    got = extract("w.docx", word_file(tmp_path))
    assert got.format == "docx" and got.title == "Talks Record" and got.pages == ()
    assert paragraphs(got.text) == ["## Opening of the Talks", "The delegations met at Kaesong on 10 July 1951.",
                                    "- Kaesong", "Agenda item | Prisoners"]  # fmt: skip


def test_a_word_file_that_inflates_past_the_limit_is_refused(tmp_path):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("word/document.xml", "<w:document/>")
        archive.writestr("word/bomb.xml", b"\0" * 50_000_000)  # 50 MB that packs into ~50 KB
    with pytest.raises(DocumentError, match="zip bomb"):
        extract("bomb.docx", buffer.getvalue())


def test_a_damaged_word_file_is_refused(tmp_path):
    data = word_file(tmp_path)
    with pytest.raises(DocumentError, match="w.docx: "):
        extract("w.docx", data[:600] + b"\0" * 200 + data[800:])


def test_a_web_page_gives_its_article_not_its_navigation():
    page = ("<html><head><title>The Armistice Talks</title></head><body>"
            "<nav><a href='/'>Home</a> <a href='/about'>About us</a></nav>"
            "<article><h1>The Armistice Talks</h1><p>The armistice was signed on 27 July 1953 at "
            "Panmunjom after two years of talks between the two sides.</p><h2>Prisoners</h2>"
            "<p>The prisoner question was the hardest issue and delayed the agreement by a year.</p>"
            "</article><footer>Copyright 2024. All rights reserved.</footer></body></html>")  # fmt: skip
    got = extract("talks.html", page.encode())
    assert got.format == "html" and got.title == "The Armistice Talks"
    assert "## Prisoners" in got.text and "signed on 27 July 1953" in got.text
    assert "About us" not in got.text and "rights reserved" not in got.text


@pytest.mark.parametrize("name, data, message", [
    ("report.pdf", b"just some words, not a PDF at all", "its name says PDF but its content is plain text"),
    ("notes.txt", b"%PDF-1.4 not really", "its name says TEXT but its content is PDF"),
    ("image.docx", bytes(range(256)) * 40, "not a document this assistant reads"),
    ("archive.docx", b"PK\x03\x04" + b"\0" * 100, "not a document this assistant reads"),
])  # fmt: skip
def test_the_type_comes_from_the_content_not_the_name(name, data, message):
    with pytest.raises(DocumentError, match=message):
        extract(name, data)


def test_sniffing_reads_each_kind(tmp_path):
    assert sniff(make_pdf(report(2), tmp_path / "x.pdf").read_bytes()) == "pdf"
    assert sniff(word_file(tmp_path)) == "docx"
    assert sniff(b"<!DOCTYPE html><html><body>x</body></html>") == "html"
    assert sniff("Plain words, and “quotes”.".encode()) == "text"


def test_running_lines_go_but_a_number_ending_a_paragraph_at_a_page_foot_stays():
    from assistant.ingest.formats import _drop_running_lines, _Line

    body = iter(["The delegates met at Kaesong.", "They moved to Panmunjom.", "The talks went on",
                 "into the autumn.", "The armistice was signed", "on 27 July", "The prisoners went home",
                 "in the autumn of"])  # fmt: skip

    def page(n: int, foot: str) -> list[_Line]:
        return [_Line("Outside Report", n, 1, 50, 200, 30, 8), _Line(next(body), n, 2, 50, 300, 80, 10),
                _Line(next(body), n, 2, 50, 300, 700, 10), _Line(foot, n, 3, 290, 310, 760, 8)]  # fmt: skip

    lines = page(1, "1") + page(2, "2") + page(3, "3") + page(4, "4")
    lines[6] = _Line("1953.", 2, 2, 50, 300, 700, 10)  # a paragraph's last line, alone at the foot
    kept = [line.text for line in _drop_running_lines(lines, 4)]
    assert "Outside Report" not in kept and not {"1", "2", "3", "4"} & set(kept)
    assert "1953." in kept and len(kept) == 8


FORMATS = Path(__file__).parent / "data" / "formats"  # the outside document as Word and PDF
GENEVA = Path(__file__).parent / "data" / "corpora" / "geneva"


@pytest.mark.parametrize("name", ["geneva_1954.pdf", "geneva_1954.docx"])
def test_a_report_made_by_word_processor_reads_as_its_text(name):
    """The outside document as LibreOffice made it (justified two columns, running header,
    page numbers, automatic hyphenation: data/formats/README.md) against its plain text."""
    from pdf_maker import text_as_markdown

    expected = paragraphs(text_as_markdown((GENEVA / "geneva_1954.txt").read_text(encoding="utf-8")))
    got = extract(name, (FORMATS / name).read_bytes())
    assert got.title == "The Geneva Conference of 1954 on Korea"
    same = sum(a == b for a, b in zip(paragraphs(got.text), expected))
    assert len(paragraphs(got.text)) == len(expected)
    # The PDF's one difference: "round-" ending a line, "table" starting the next, a
    # compound the document writes nowhere else, read as one word ("roundtable").
    assert same >= len(expected) - (1 if name.endswith(".pdf") else 0)
    if name.endswith(".pdf"):
        assert len(got.pages) == 7
