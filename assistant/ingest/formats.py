"""Read a document file of any supported format into text with its title and pages.

The type is sniffed from the bytes, never taken from the name alone: a PDF starts
with `%PDF-`, a Word file is a zip holding `word/document.xml`, a web page is text
that opens with an HTML tag. Each format goes through a well-kept extraction
library: pdfminer.six for PDF (MIT; its layout analysis orders two-column pages and
gives every line's position and font size, for running headers, footers and
headings), python-docx for Word (MIT), trafilatura for web pages (Apache-2.0: the
article's text without navigation and boilerplate). Markdown and plain text are the
file's own decoded text.

The extracted text is the document's text from then on: every citation offset
refers to it, and for a PDF `pages[i]` is the offset where page i + 1 begins.
Headings come out as Markdown `#` lines, so sections are found the same way in
every format. Does not split sentences or chunk (chunking.py) and does not decide
which files are read (documents.py).
"""

from __future__ import annotations

import io
import re
import statistics
import unicodedata
import zipfile
from collections import Counter
from dataclasses import dataclass
from pathlib import PurePath

from ..errors import DocumentError

FORMATS = {".pdf": "pdf", ".docx": "docx", ".html": "html", ".htm": "html",
           ".md": "markdown", ".markdown": "markdown", ".txt": "text"}  # fmt: skip
# Word files are zip archives: limits that stop a zip bomb before anything is inflated.
MAX_ZIP_MEMBERS = 5_000
MAX_ZIP_BYTES = 200_000_000  # all members, uncompressed
MAX_ZIP_RATIO = 200  # uncompressed / compressed, for any member over 1 MB
MAX_PAGES = 3_000
MAX_TEXT_CHARS = 5_000_000  # extracted text, whatever the format
_JUNK_TITLE = re.compile(r"(^untitled|^microsoft word|^document\d*$|\.(docx?|pdf|html?|txt|md)$|^[0-9a-f_\-]{8,}$)",
                         re.IGNORECASE)  # fmt: skip
_PAGE_NUMBER = re.compile(r"^\W*(?:page\s+)?\d{1,4}(?:\s*(?:of|/)\s*\d{1,4})?\W*$", re.IGNORECASE)
_ENDS_PARAGRAPH = re.compile(r"[.!?:;\"”’)\]]$")


@dataclass(frozen=True)
class Extracted:
    format: str  # pdf | docx | html | markdown | text
    text: str  # every offset refers to this
    title: str = ""  # from the file's metadata or first heading; "" when it has none
    pages: tuple[int, ...] = ()  # PDF: offset where each page begins (pages[0] == 0)
    encoding: str = "utf-8"


def sniff(data: bytes) -> str | None:
    """pdf | docx | html | text, from the content; None for anything else (binary)."""
    head = data[:1024]
    if b"%PDF-" in head:
        return "pdf"
    if data.startswith(b"PK\x03\x04"):
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as archive:
                return "docx" if "word/document.xml" in archive.namelist() else None
        except (zipfile.BadZipFile, ValueError):
            return None
    decoded = decode_bytes(data[:65536] if len(data) > 65536 else data)
    if decoded is None:
        return None
    opening = decoded[0].lstrip().lower()[:1000]
    if opening.startswith(("<!doctype html", "<html")) or re.search(r"<(head|body)[\s>]", opening):
        return "html"
    return "text"


def decode_bytes(data: bytes) -> tuple[str, str] | None:
    """Decode a file's bytes: UTF-8 first, else by detection. None for binary data."""
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        text, encoding = data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        from charset_normalizer import from_bytes

        matches = from_bytes(data)
        best = matches.best()
        if best is None:
            return None
        # Short Western texts fit many single-byte code pages equally well and the
        # detector's pick among them is arbitrary (cp1250 reads Latin-1 "à" as "ŕ"):
        # prefer cp1252, the superset of Latin-1, whenever it fits as well as the best.
        best = next((m for m in matches if m.encoding == "cp1252" and m.chaos <= best.chaos), best)
        text, encoding = str(best), best.encoding
        if text.startswith("\ufeff"):
            text = text[1:]
    controls = sum(1 for ch in text if ord(ch) < 32 and ch not in "\t\n\r\f")
    if "\x00" in text or controls > max(2, len(text) // 100):
        return None
    return text, encoding


def declared_format(name: str) -> str | None:
    return FORMATS.get(PurePath(name).suffix.lower())


def extract(name: str, data: bytes) -> Extracted:
    """The file's text, title and pages. Raises DocumentError with a one-line reason for
    a file that cannot be read: unknown or mismatched type, encrypted or malformed PDF,
    a PDF without a text layer, a zip bomb, no text at all."""
    kind = sniff(data)
    declared = declared_format(name)
    if kind is None:
        raise DocumentError(f"{name}: not a document this assistant reads (PDF, Word .docx, "
                            "HTML, Markdown or plain text)")  # fmt: skip
    if declared is not None and {"markdown": "text"}.get(declared, declared) != kind:
        raise DocumentError(f"{name}: its name says {declared.upper()} but its content is "
                            f"{'plain text' if kind == 'text' else kind.upper()}")  # fmt: skip
    if kind == "pdf":
        result = extract_pdf(name, data)
    elif kind == "docx":
        result = extract_docx(name, data)
    elif kind == "html":
        result = extract_html(name, data)
    else:
        decoded = decode_bytes(data)
        if decoded is None:
            raise DocumentError(f"{name}: not a text file (binary or undetectable encoding)")
        result = Extracted(declared or "text", decoded[0], encoding=decoded[1])
    if not result.text.strip():
        raise DocumentError(f"{name}: no text in it")
    if len(result.text) > MAX_TEXT_CHARS:
        raise DocumentError(f"{name}: {len(result.text)} characters of text is over the "
                            f"{MAX_TEXT_CHARS}-character limit")  # fmt: skip
    return result


def good_title(title: str | None) -> str:
    """A metadata title worth showing ("" for "Untitled", "Microsoft Word - x.doc", a hash)."""
    title = " ".join((title or "").split())
    if sum(ch.isalpha() for ch in title) < 3 or _JUNK_TITLE.search(title):
        return ""
    return title[:200]


# --- PDF ---------------------------------------------------------------------------


@dataclass
class _Line:
    text: str
    page: int
    box: int  # the run of lines read together: one column of one band of a page
    x0: float
    x1: float
    top: float  # distance from the page's top
    size: float  # median character size
    gap: float = 0.0  # from the previous line of its run (top to top); 0 for a run's first


def extract_pdf(name: str, data: bytes) -> Extracted:
    from pdfminer.pdfdocument import PDFDocument, PDFEncryptionError, PDFPasswordIncorrect
    from pdfminer.pdfparser import PDFParser, PDFSyntaxError
    from pdfminer.psparser import PSException

    try:
        document = PDFDocument(PDFParser(io.BytesIO(data)))
        title = good_title(_pdf_title(document))
        lines, page_count = _pdf_lines(data)
    except (PDFPasswordIncorrect, PDFEncryptionError):
        raise DocumentError(f"{name}: the PDF is encrypted; save an unprotected copy and add that") from None
    except DocumentError:
        raise
    except (PDFSyntaxError, PSException, ValueError, TypeError, KeyError, AttributeError,
            IndexError, AssertionError, RecursionError, OverflowError, ZeroDivisionError) as exc:  # fmt: skip
        raise DocumentError(f"{name}: cannot be read as a PDF ({type(exc).__name__})") from None
    if sum(len(line.text) for line in lines) < 20:
        raise DocumentError(f"{name}: the PDF has no text layer (a scan?); OCR is not supported, "
                            "add a PDF with selectable text")  # fmt: skip
    text, pages, heading = _pdf_text(_drop_running_lines(lines, page_count), page_count)
    return Extracted("pdf", text, title or heading, pages)


def _pdf_title(document) -> str:
    from pdfminer.pdftypes import resolve1
    from pdfminer.utils import decode_text

    for info in document.info or ():
        value = resolve1(info.get("Title")) if isinstance(info, dict) else None
        if isinstance(value, bytes):
            return decode_text(value)
        if isinstance(value, str):
            return value
    return ""


def _pdf_lines(data: bytes) -> tuple[list[_Line], int]:
    """Every page's text lines in reading order (`_reading_order`), as pdfminer's layout
    analysis finds them (its text boxes are not used: justified text can leave a word
    of a line in a box of its own)."""
    from pdfminer.high_level import extract_pages
    from pdfminer.layout import LAParams, LTChar, LTTextBox, LTTextLine

    lines: list[_Line] = []
    page_count = 0
    runs = 0
    for page_no, page in enumerate(extract_pages(io.BytesIO(data), laparams=LAParams()), start=1):
        if page_no > MAX_PAGES:
            raise DocumentError(f"the PDF has over {MAX_PAGES} pages")
        page_count = page_no
        found = []
        for element in page:
            for line in (element if isinstance(element, LTTextBox) else [element]):
                if not isinstance(line, LTTextLine):
                    continue
                text = _clean_line(line.get_text())
                if text:
                    sizes = [ch.size for ch in line if isinstance(ch, LTChar)]
                    found.append(_Line(text, page_no, 0, line.x0, line.x1, page.height - line.y1,
                                       statistics.median(sizes) if sizes else 0.0))  # fmt: skip
        for run in _reading_order(found):
            runs += 1
            for i, line in enumerate(run):
                line.box = runs
                line.gap = line.top - run[i - 1].top if i else 0.0
            lines.extend(run)
    return lines, page_count


def _reading_order(lines: list[_Line]) -> list[list[_Line]]:
    """A page's lines as a reader takes them, in runs: down the page, and on a two-column
    page down the left column, then the right, between lines that span both (a title, a
    table row). Pieces of one line (a justified line's words can come apart) are joined.

    pdfminer's own order (LAParams.boxes_flow) was measured to put a short right column
    before the left on a report's last page; this one only needs a column's lines to
    keep to their side of the page's middle.
    """
    if not lines:
        return []
    middle = (min(line.x0 for line in lines) + max(line.x1 for line in lines)) / 2
    side = lambda line: 0 if line.x1 <= middle + 2 else 1 if line.x0 >= middle - 2 else 2  # noqa: E731
    runs: list[list[_Line]] = []
    columns: tuple[list[_Line], list[_Line]] = ([], [])

    def close():
        runs.extend(_joined(c) for c in columns if c)
        columns[0].clear(), columns[1].clear()

    for line in sorted(lines, key=lambda line: (line.top, line.x0)):
        where = side(line)
        if where == 2:  # spans the middle: what was above it is read first
            close()
            runs.append([line])
        else:
            columns[where].append(line)
    close()
    return [run for run in runs if run]


def _joined(column: list[_Line]) -> list[_Line]:
    """A column's lines, top to bottom, pieces of the same line (tops within a third of
    the type size) joined left to right."""
    out: list[_Line] = []
    for line in sorted(column, key=lambda line: (line.top, line.x0)):
        last = out[-1] if out else None
        if last is not None and abs(line.top - last.top) < max(last.size, line.size, 1.0) / 3:
            first, second = sorted((last, line), key=lambda piece: piece.x0)
            out[-1] = _Line(f"{first.text} {second.text}", line.page, 0, first.x0, max(first.x1, second.x1),
                            min(first.top, second.top), max(first.size, second.size))  # fmt: skip
        else:
            out.append(line)
    return out


def _clean_line(text: str) -> str:
    # Ligatures (U+FB00-FB06) and other compatibility forms a PDF font may use.
    text = "".join(unicodedata.normalize("NFKC", ch) if "\ufb00" <= ch <= "\ufb06" else ch for ch in text)
    return " ".join(text.replace("\u00ad", "").split())


def _drop_running_lines(lines: list[_Line], page_count: int) -> list[_Line]:
    """Without running headers and footers: lines among a page's top two or bottom two
    that repeat there (numbers aside) on at least half of the pages, two at least, and
    page numbers."""
    if not lines:
        return lines
    by_page: dict[int, list[_Line]] = {}
    for line in lines:
        by_page.setdefault(line.page, []).append(line)
    edge: dict[int, set[int]] = {}
    for page, own in by_page.items():
        ordered = sorted(range(len(own)), key=lambda i: own[i].top)
        edge[page] = {id(own[i]) for i in ordered[:2] + ordered[-2:]}
    seen = Counter()
    for page, own in by_page.items():
        seen.update({_shape(line.text) for line in own if id(line) in edge[page]})
    # A number alone ("12", "Page 3 of 9") on two pages' edges is a page number; a body
    # line that happens to be one ("1953.") at a column's foot on one page is not.
    repeated = {shape for shape, n in seen.items()
                if n >= max(2, page_count / 2) or (n >= 2 and _PAGE_NUMBER.match(shape.replace("#", "1")))}
    return [line for line in lines if id(line) not in edge[line.page] or _shape(line.text) not in repeated]


def _shape(text: str) -> str:
    return re.sub(r"\d+", "#", text.lower())


def _pdf_text(lines: list[_Line], page_count: int) -> tuple[str, tuple[int, ...], str]:
    """Paragraphs joined by blank lines, headings as `#` lines; each page's start offset;
    the first heading (a title when the metadata has none)."""
    if not lines:
        return "", (0,) * max(page_count, 1), ""
    weights = Counter()
    for line in lines:
        weights[round(line.size, 1)] += len(line.text)
    body = weights.most_common(1)[0][0]
    # The body's line pitch: the commonest space from one line's top to the next's.
    pitches = Counter(round(line.gap) for line in lines if line.gap > 0 and abs(line.size - body) < 0.5)
    pitch = pitches.most_common(1)[0][0] if pitches else body * 1.2
    compounds = {w.lower() for line in lines for w in re.findall(r"\b[A-Za-z]+-[A-Za-z]+\b", line.text)}
    # Words the document writes whole: none of a line's first (maybe the end of a word cut
    # on the line before) or a last one cut by a hyphen.
    seen = {w.lower() for line in lines for w in re.findall(r"[A-Za-z]+\b(?!-)", line.text)[1:]}

    paragraphs: list[list[_Line]] = []  # headings are paragraphs of their own
    heading_of: list[bool] = []
    for i, line in enumerate(lines):
        heading = body > 0 and line.size >= body * 1.15 and len(line.text) < 200
        previous = lines[i - 1] if i else None
        if previous is None or heading != heading_of[-1]:
            new = True
        elif heading:  # one heading set on two lines, or the next heading
            new = not (previous.page == line.page and abs(previous.size - line.size) < 0.5
                       and 0 < line.top - previous.top < 2 * line.size)  # fmt: skip
        else:
            new = _starts_paragraph(previous, line, body, pitch)
        if not new:
            paragraphs[-1].append(line)
            continue
        # A paragraph cut by a page or column break goes on: the text before it did not end.
        if (previous is not None and not heading and not heading_of[-1] and previous.box != line.box
                and not _ENDS_PARAGRAPH.search(paragraphs[-1][-1].text)):  # fmt: skip
            paragraphs[-1].append(line)
            continue
        paragraphs.append([line])
        heading_of.append(heading)

    out: list[str] = []
    pages = [0] * page_count
    started: set[int] = set()
    position = 0
    first_heading = ""
    for lines_of, heading in zip(paragraphs, heading_of):
        if out:
            out.append("\n\n")
            position += 2
        level = ""
        if heading:
            level = "# " if not first_heading else "## "
            first_heading = first_heading or " ".join(line.text for line in lines_of)
            out.append(level)
            position += len(level)
        for j, line in enumerate(lines_of):
            piece = line.text
            if j:
                prev = out[-1]
                cut = re.search(r"([A-Za-z]+)-$", prev)
                rest = re.match(r"[a-z]+", piece)
                if cut and rest:  # a hyphen at the line's end, and the next starts in lower case
                    if not _keeps_hyphen(cut[1], rest[0], compounds, seen):
                        out[-1] = prev[:-1]
                        position -= 1
                elif cut and piece[:1].isupper():
                    pass  # "Paul-" then "Henri": a name's hyphen, joined as it is
                else:
                    out.append(" ")
                    position += 1
            if line.page not in started:
                started.add(line.page)
                pages[line.page - 1] = position
            out.append(piece)
            position += len(piece)
    # A page with no text of its own starts where the next page's text does.
    for page in range(page_count - 1, 0, -1):
        if page + 1 not in started:
            pages[page] = pages[page + 1] if page + 1 < page_count else position
    pages[0] = 0
    return "".join(out), tuple(pages), first_heading


def _keeps_hyphen(head: str, tail: str, compounds: set[str], seen: set[str]) -> bool:
    """Whether "head-" at a line's end and "tail" on the next are a hyphenated compound
    ("round-table") rather than one word cut in two ("negoti-ations"): the document
    writes the compound elsewhere on one line; or it never writes the joined word but
    does write both halves as words of three letters or more."""
    joined = f"{head}{tail}".lower()
    if f"{head}-{tail}".lower() in compounds:
        return True
    if joined in seen:
        return False
    return len(head) >= 3 and len(tail) >= 3 and head.lower() in seen and tail.lower() in seen


def _starts_paragraph(previous: _Line, line: _Line, body: float, pitch: float) -> bool:
    """Whether `line` begins a new paragraph: another run (column, page), more space above
    it than between a paragraph's lines, an indent, or a short line ending a sentence
    before it."""
    if previous.box != line.box:
        return True
    indent = line.x0 - previous.x0 > body * 1.0
    gap = line.gap > pitch * 1.3
    short = _ENDS_PARAGRAPH.search(previous.text) and previous.x1 < line.x1 - body * 3
    return bool(indent or gap or short)


# --- Word --------------------------------------------------------------------------


def check_zip(name: str, data: bytes) -> None:
    """Refuse an archive whose members would inflate past the limits (a zip bomb)."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            members = archive.infolist()
    except (zipfile.BadZipFile, ValueError):
        raise DocumentError(f"{name}: not a readable Word file (a damaged zip archive)") from None
    if len(members) > MAX_ZIP_MEMBERS:
        raise DocumentError(f"{name}: {len(members)} parts in the Word file is over the limit of {MAX_ZIP_MEMBERS}")
    total = sum(m.file_size for m in members)
    if total > MAX_ZIP_BYTES:
        raise DocumentError(f"{name}: it would inflate to {total} bytes, over the {MAX_ZIP_BYTES}-byte limit")
    for m in members:
        if m.file_size > 1_000_000 and m.file_size > MAX_ZIP_RATIO * max(m.compress_size, 1):
            raise DocumentError(f"{name}: a part compressed over {MAX_ZIP_RATIO} times (a zip bomb?)")


def extract_docx(name: str, data: bytes) -> Extracted:
    check_zip(name, data)
    import docx
    from docx.table import Table

    try:
        document = docx.Document(io.BytesIO(data))
        blocks = list(document.iter_inner_content())
        title = good_title(document.core_properties.title)
    except Exception as exc:  # python-docx raises many kinds for a damaged file
        raise DocumentError(f"{name}: not a readable Word file ({type(exc).__name__})") from None
    out: list[str] = []
    heading = ""
    for block in blocks:
        if isinstance(block, Table):
            for row in block.rows:
                cells = list(dict.fromkeys(" ".join(c.text.split()) for c in row.cells))
                line = " | ".join(c for c in cells if c)
                if line:
                    out.append(line)
            continue
        text = " ".join(block.text.split())
        if not text:
            continue
        style = (block.style.name if block.style is not None else "") or ""
        if style == "Title" or style.startswith("Heading"):
            level = 1 if style == "Title" else min(6, 1 + int(re.sub(r"\D", "", style) or 1))
            heading = heading or text
            out.append(f"{'#' * level} {text}")
        elif "List" in style:
            out.append(f"- {text}")
        else:
            out.append(text)
    return Extracted("docx", "\n\n".join(out), title or heading)


# --- HTML --------------------------------------------------------------------------


def extract_html(name: str, data: bytes) -> Extracted:
    import trafilatura

    decoded = decode_bytes(data)
    if decoded is None:
        raise DocumentError(f"{name}: not a readable web page (binary or undetectable encoding)")
    html = decoded[0]
    try:
        xml = trafilatura.extract(html, output_format="xml", include_comments=False,
                                  include_tables=True, include_images=False, include_links=False,
                                  include_formatting=False)  # fmt: skip
        metadata = trafilatura.extract_metadata(html)
        text = _article_text(xml) if xml else ""
    except Exception as exc:  # lxml and trafilatura raise many kinds for broken markup
        raise DocumentError(f"{name}: cannot read the web page ({type(exc).__name__})") from None
    if not text.strip():
        raise DocumentError(f"{name}: no main text found in the web page")
    title = good_title(metadata.title if metadata is not None else "")
    if not title:
        first = next((line for line in text.splitlines() if line.startswith("#")), "")
        title = good_title(first.lstrip("# "))
    return Extracted("html", text.strip(), title, encoding=decoded[1])


def _article_text(xml: str) -> str:
    """trafilatura's XML of the article as text: headings as `#` lines, list items as
    `- ` lines, a table row as its cells between ` | `, one paragraph per block."""
    from lxml import etree

    root = etree.fromstring(xml.encode("utf-8"), etree.XMLParser(resolve_entities=False, no_network=True))
    out = []
    for element in root.iter("head", "p", "item", "row", "quote"):
        if element.tag != "row" and any(a.tag in ("item", "row", "quote") for a in element.iterancestors()):
            continue  # inside a block already read
        if element.tag == "row":
            text = " | ".join(" ".join("".join(c.itertext()).split()) for c in element.iter("cell"))
        else:
            text = " ".join("".join(element.itertext()).split())
        if not text.strip(" |"):
            continue
        if element.tag == "head":
            rend = re.fullmatch(r"h([1-6])", element.get("rend") or "")
            level = int(rend[1]) if rend else 2
            text = f"{'#' * max(1, min(level, 6))} {text}"
        elif element.tag == "item":
            text = f"- {text}"
        out.append(text)
    return "\n\n".join(out)
