"""Typeset Markdown (`#` title, `##` headings, paragraphs) as a PDF, as a report would be:
two columns, a running header and a page-number footer on every page, words
hyphenated at line ends, paragraphs running on across columns and pages.

For tests and the extraction measurement only (reportlab, a dev dependency).
"""

from __future__ import annotations

from pathlib import Path

from reportlab.lib.pagesizes import letter
from reportlab.pdfbase.pdfmetrics import stringWidth
from reportlab.pdfgen import canvas

BODY, BODY_SIZE, LEADING = "Times-Roman", 10, 12.5
HEADING, HEADING_SIZE = "Helvetica-Bold", 13
TITLE_SIZE = 18
MARGIN, GUTTER = 54, 20


def blocks(markdown: str) -> list[tuple[str, str]]:
    """("title" | "heading" | "text", text) per non-empty line."""
    out = []
    for line in markdown.splitlines():
        line = line.strip()
        if line.startswith("# "):
            out.append(("title", line[2:]))
        elif line.startswith("## "):
            out.append(("heading", line[3:]))
        elif line:
            out.append(("text", line))
    return out


def wrap(text: str, font: str, size: float, width: float, *, hyphenate: bool) -> list[str]:
    lines, current = [], ""
    for word in text.split():
        trial = f"{current} {word}" if current else word
        if stringWidth(trial, font, size) <= width:
            current = trial
            continue
        if hyphenate and word.isalpha() and len(word) >= 7 and current:
            for cut in range(len(word) - 3, 2, -1):
                head = f"{current} {word[:cut]}-"
                if stringWidth(head, font, size) <= width:
                    lines.append(head)
                    current = word[cut:]
                    break
            else:
                lines.append(current)
                current = word
            continue
        if current:
            lines.append(current)
        current = word
    if current:
        lines.append(current)
    return lines


def make_pdf(markdown: str, path: Path, *, columns: int = 2, header: str = "", hyphenate: bool = True,
             title: str | None = None, encrypt: str | None = None) -> Path:  # fmt: skip
    """Write the PDF; `title` sets the metadata title, `encrypt` a user password."""
    width, height = letter
    pdf = canvas.Canvas(str(path), pagesize=letter, encrypt=encrypt)
    if title is not None:
        pdf.setTitle(title)
    column_width = (width - 2 * MARGIN - (columns - 1) * GUTTER) / columns
    top, bottom = height - MARGIN - 10, MARGIN + 10
    state = {"page": 1, "column": 0, "y": top}

    def furniture():
        if header:
            pdf.setFont("Helvetica", 8)
            pdf.drawString(MARGIN, height - MARGIN + 8, header)
        pdf.setFont("Helvetica", 8)
        pdf.drawCentredString(width / 2, MARGIN - 16, f"Page {state['page']}")

    def advance(needed: float):
        if state["y"] - needed >= bottom:
            return
        state["column"] += 1
        state["y"] = top
        if state["column"] == columns:
            pdf.showPage()
            state["page"] += 1
            state["column"] = 0
            furniture()

    def draw(line: str, font: str, size: float, leading: float):
        advance(leading)
        x = MARGIN + state["column"] * (column_width + GUTTER)
        pdf.setFont(font, size)
        pdf.drawString(x, state["y"] - size, line)
        state["y"] -= leading

    furniture()
    for kind, text in blocks(markdown):
        if kind == "text":
            for line in wrap(text, BODY, BODY_SIZE, column_width, hyphenate=hyphenate):
                draw(line, BODY, BODY_SIZE, LEADING)
            state["y"] -= 6
        else:
            size = TITLE_SIZE if kind == "title" else HEADING_SIZE
            advance(3 * size)  # a heading is not left alone at a column's foot
            state["y"] -= 4
            for line in wrap(text, HEADING, size, column_width, hyphenate=False):
                draw(line, HEADING, size, size * 1.25)
            state["y"] -= 4
    pdf.showPage()
    pdf.save()
    return path


def text_as_markdown(text: str) -> str:
    """A plain-text document as Markdown: its title line `#`, its heading lines `##`
    (the heading rule the assistant itself uses for plain text)."""
    from assistant.ingest.documents import is_heading

    lines = [line.strip() for line in text.splitlines() if line.strip()]
    out = [f"# {lines[0]}"]
    for i, line in enumerate(lines[1:], start=1):
        heading = is_heading(line) and i + 1 < len(lines)
        out.append(f"## {line}" if heading else line)
    return "\n\n".join(out) + "\n"
