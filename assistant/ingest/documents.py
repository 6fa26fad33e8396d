"""Load documents from the seeds folder and clean them in memory.

Cleaning never changes what offsets mean: every paragraph keeps a map from its
cleaned characters back to the decoded original text, so a citation's span is
always a span of the file as the user has it. Files on disk are never touched.
Does not split sentences or make chunks (see chunking.py).
"""

from __future__ import annotations

import bisect
import hashlib
import json
import os
import re
import stat
import tomllib
from dataclasses import dataclass, replace
from pathlib import Path

from ..errors import DocumentError, NoDocumentsError
from ..files import write_atomically
from .formats import FORMATS, Extracted, decode_bytes, extract  # decode_bytes: for callers here

SUFFIXES = (".txt", ".md")  # read as text, as they are
READABLE = tuple(FORMATS)  # and .pdf, .docx, .html, .htm through ingest/formats.py
MAX_BINARY_BYTES = 50_000_000  # a PDF or Word file (text files: Settings.max_file_bytes)
EXTRACTOR_VERSION = 1  # of formats.extract's output: a change re-extracts cached files
# Titles set beside the documents, for files whose first line is not one (docs/documents.md):
#   ["report.txt"]
#   title = "The Armistice Negotiations"
METADATA_FILE = "metadata.toml"
MAX_TITLE_CHARS = 200
_HASH_LIKE = re.compile(r"[0-9a-f]{8,}", re.IGNORECASE)

_BULLET = re.compile(r"^(?:[-*\u2022\u00b7\u25aa]|\d{1,2}[.)])\s+")
_BOILERPLATE = re.compile(
    r"^(?:see also\b.*|scroll to top|back to top|share this( article)?|print this page)$",
    re.IGNORECASE,
)
_NON_ASCII_RUN = re.compile(r"[^\x00-\x7f]+")
_MARKDOWN_HEADING = re.compile(r"^#{1,6}\s+")


@dataclass(frozen=True)
class Paragraph:
    """A run of cleaned text inside one section, mapped back to the original."""

    section: str
    text: str
    start: int  # offset of text[0] in the original
    # offsets[i] is the original offset of text[i]; None when text is a verbatim slice.
    offsets: tuple[int, ...] | None = None
    end_offset: int | None = None

    def original_span(self, i: int, j: int) -> tuple[int, int]:
        """Original (start, end) of the cleaned slice text[i:j], j > i."""
        if self.offsets is None:
            return self.start + i, self.start + j
        end = self.offsets[j] if j < len(self.offsets) else self.end_offset
        return self.offsets[i], end


@dataclass(frozen=True)
class Document:
    path: str  # relative to the seeds folder, POSIX separators
    title: str
    text: str  # the decoded original: every offset refers to this
    sha256: str  # of the file's bytes
    encoding: str
    paragraphs: tuple[Paragraph, ...]
    format: str = "text"  # pdf | docx | html | markdown | text (ingest/formats.py)
    pages: tuple[int, ...] = ()  # PDF: the offset in `text` where each page begins

    def page_span(self, start: int, end: int) -> tuple[int, int] | None:
        """The first and last page (from 1) that text[start:end] lies on; None when the
        document has no pages (every format but PDF)."""
        if not self.pages:
            return None
        first = bisect.bisect_right(self.pages, start)
        last = bisect.bisect_right(self.pages, max(start, end - 1))
        return first, last

    @property
    def sections(self) -> list[str]:
        return list(dict.fromkeys(p.section for p in self.paragraphs))


def repair_mojibake(text: str) -> tuple[str, list[int]]:
    """Undo UTF-8 read as cp1252/cp1250/latin-1, run by run of non-ASCII characters.

    Returns the repaired text and, for each of its characters, the index of the
    character it came from. A run is changed only when it re-encodes to valid UTF-8.
    """
    out: list[str] = []
    index: list[int] = []
    last = 0
    for m in _NON_ASCII_RUN.finditer(text):
        fixed = _fix_run(m.group())
        if fixed is None:
            continue
        out.append(text[last : m.start()])
        index.extend(range(last, m.start()))
        out.append(fixed)
        index.extend([m.start()] * len(fixed))
        last = m.end()
    out.append(text[last:])
    index.extend(range(last, len(text)))
    return "".join(out), index


def _fix_run(run: str) -> str | None:
    for encoding in ("cp1252", "cp1250", "latin-1"):
        try:
            fixed = run.encode(encoding).decode("utf-8")
        except (UnicodeEncodeError, UnicodeDecodeError):
            continue
        if fixed != run and len(fixed) < len(run):
            return fixed
    return None


def is_heading(line: str) -> bool:
    """A short title-cased line with no closing punctuation."""
    if _MARKDOWN_HEADING.match(line):
        return True
    words = line.split()
    if not words or len(words) > 16 or len(line) > 140 or _BULLET.match(line):
        return False
    if line[-1] in ".!?;:,\"”)’" or not (line[0].isupper() or line[0].isdigit()):
        return False
    long_words = [w for w in words if len(w) > 3]
    capitalised = [w for w in long_words if w[0].isupper() or w[0].isdigit()]
    return len(capitalised) * 2 >= len(long_words)


def parse_document(path: str, text: str, sha256: str, encoding: str) -> Document:
    """Find the title and sections, drop boilerplate, keep offsets."""
    lines = []  # (start offset, stripped line) for non-empty lines
    pos = 0
    for raw_line in text.splitlines(keepends=True):
        stripped = raw_line.strip()
        if stripped:
            lines.append((pos + raw_line.index(stripped[0]), stripped))
        pos += len(raw_line)

    title = ""
    if len(lines) > 1 and is_heading(lines[0][1]):
        # A heading-like first line is the title when something sets it apart from
        # the body: a Markdown '#', a blank line after it, or a section heading next.
        gap = text[lines[0][0] + len(lines[0][1]) : lines[1][0]]
        if (_MARKDOWN_HEADING.match(lines[0][1]) or gap.count("\n") > 1
                or is_heading(lines[1][1]) or not _looks_like_section(lines)):  # fmt: skip
            title = _MARKDOWN_HEADING.sub("", lines[0][1])
            lines = lines[1:]
    if not title:
        title = fallback_title(path, [line for _, line in lines])
    section = "Introduction"
    paragraphs: list[Paragraph] = []
    for i, (start, line) in enumerate(lines):
        if _BOILERPLATE.match(line) or _MARKDOWN_HEADING.sub("", line) == title:
            continue
        if is_heading(line) and i + 1 < len(lines) and not _BOILERPLATE.match(lines[i + 1][1]):
            section = _MARKDOWN_HEADING.sub("", line)
            continue
        bullet = _BULLET.match(line)
        if bullet:
            start += bullet.end()
            line = line[bullet.end() :]
        paragraphs.append(_make_paragraph(section, line, start))
    return Document(path, title, text, sha256, encoding, tuple(paragraphs))


def fallback_title(path: str, lines: list[str]) -> str:
    """A title for a document without one: its file name in words, or, when the name is
    only numbers and a hash (`000_ed13bf9180557300.txt`), the first words of its text."""
    stem = Path(path).stem
    named = " ".join(_HASH_LIKE.sub(" ", stem).replace("_", " ").replace("-", " ").split())
    if sum(ch.isalpha() for ch in named) >= 3:
        return named
    first = lines[0].split() if lines else []
    if not first:
        return stem
    return " ".join(first[:8]).rstrip(",;:") + ("…" if len(first) > 8 else "")


def read_titles(seeds_dir: Path) -> tuple[dict[str, str], list[str]]:
    """The titles set in `<seeds_dir>/metadata.toml` ({path: title}), and one warning per
    problem: a file that cannot be read or parsed is ignored whole, a bad entry alone."""
    path = Path(seeds_dir) / METADATA_FILE
    if not path.is_file():
        return {}, []
    try:
        table = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        return {}, [f"ignored {METADATA_FILE}: {' '.join(str(exc).split())[:200]}"]
    titles, warnings = {}, []
    for name, entry in table.items():
        title = entry.get("title") if isinstance(entry, dict) else None
        if not isinstance(title, str) or not title.strip():
            warnings.append(f"ignored {METADATA_FILE} entry {name!r}: it needs title = \"...\"")
            continue
        titles[name] = " ".join(title.split())[:MAX_TITLE_CHARS]
    return titles, warnings


def _looks_like_section(lines) -> bool:
    """Whether the first line is more likely a section heading: other headings follow."""
    return any(is_heading(line) for _, line in lines[2:])


def _make_paragraph(section: str, line: str, start: int) -> Paragraph:
    fixed, index = repair_mojibake(line)
    if fixed == line:
        return Paragraph(section, line, start)
    # Start at the first word, so a repaired emoji does not open every quote.
    lead = next((k for k, ch in enumerate(fixed) if ch.isalnum()), 0)
    offsets = tuple(start + k for k in index)
    return Paragraph(
        section, fixed[lead:], offsets[lead], offsets[lead:], end_offset=start + len(line)
    )


def load_documents(seeds_dir: Path, *, max_file_bytes: int, library_dir: Path | None = None,
                   cache_dir: Path | None = None, max_binary_bytes: int = MAX_BINARY_BYTES,
                   ) -> tuple[list[Document], list[str]]:  # fmt: skip
    """Every document under seeds_dir (.txt, .md, .pdf, .docx, .html) and, when given,
    in the managed `library_dir` (files added with `assistant add`), and one warning per
    file skipped. Titles set in the seeds' metadata.toml or when a file was added
    replace the documents' own (`read_titles`); extracted text is kept in cache_dir.

    Symlinks that resolve outside the folder are not followed; anything that is not a
    regular file (FIFO, device, dangling symlink) or cannot be read is skipped.
    Raises NoDocumentsError when the folder is missing or nothing could be read.
    """
    seeds_dir = Path(seeds_dir)
    if not seeds_dir.is_dir():
        raise NoDocumentsError(f"seeds folder not found: {seeds_dir}")
    documents, warnings = [], []
    limits = (max_file_bytes, max_binary_bytes)
    for path in sorted(_walk(seeds_dir)):
        rel = path.relative_to(seeds_dir).as_posix()
        read = _read_file(path, rel, seeds_dir.resolve(), limits, cache_dir)
        (documents if isinstance(read, Document) else warnings).append(read)
    titles, title_warnings = read_titles(seeds_dir)
    warnings += title_warnings
    known = {d.path for d in documents}
    warnings += [f"{METADATA_FILE} names {name!r}, which is not a document here" for name in titles
                 if name not in known]  # fmt: skip
    if library_dir is not None and Path(library_dir).is_dir():
        from .library import read_entries

        entries, entry_warnings = read_entries(Path(library_dir))
        warnings += entry_warnings
        for name, entry in sorted(entries.items()):
            if name in known:
                warnings.append(f"skipped added document {name}: seeds/ has a document of that name")
                continue
            read = _read_file(Path(library_dir) / name, name, Path(library_dir).resolve(), limits, cache_dir)
            if isinstance(read, str):
                warnings.append(read)
                continue
            documents.append(read)
            if entry.get("title"):
                titles[name] = entry["title"]
    documents = [replace(d, title=titles[d.path]) if d.path in titles else d for d in documents]
    if not documents:
        raise NoDocumentsError(f"no readable documents (.txt, .md, .pdf, .docx, .html) in {seeds_dir}")
    return documents, warnings


def _read_file(path: Path, rel: str, root: Path, limits: tuple[int, int], cache_dir: Path | None
               ) -> Document | str:  # fmt: skip
    """The document in the file, or a one-line warning saying why it is skipped."""
    try:
        if path.is_symlink() and not path.resolve().is_relative_to(root):
            return f"skipped {rel}: symlink leaves the seeds folder"
        info = path.stat()  # of what a symlink points to
    except (OSError, RuntimeError) as exc:  # dangling symlink; a loop (RuntimeError before 3.13)
        reason = exc.strerror if isinstance(exc, OSError) else "symlink loop"
        return f"skipped {rel}: cannot read it ({reason})"
    if not stat.S_ISREG(info.st_mode):  # reading a FIFO would wait forever
        return f"skipped {rel}: not a regular file"
    textual = path.suffix.lower() in SUFFIXES
    cap = limits[0] if textual else limits[1]
    if info.st_size > cap:
        return f"skipped {rel}: {info.st_size} bytes is over the {cap}-byte cap"
    try:
        data = path.read_bytes()
    except OSError as exc:
        return f"skipped {rel}: cannot read it ({exc.strerror})"
    sha256 = hashlib.sha256(data).hexdigest()
    if textual:
        decoded = decode_bytes(data)
        if decoded is None:
            return f"skipped {rel}: not a text file (binary or undetectable encoding)"
        doc = parse_document(rel, decoded[0], sha256, decoded[1])
        doc = replace(doc, format="markdown" if path.suffix.lower() == ".md" else "text")
    else:
        try:
            extracted = _extracted(rel, data, sha256, cache_dir)
        except DocumentError as exc:
            return f"skipped {rel}: {str(exc).removeprefix(rel + ': ')}"
        doc = parse_document(rel, extracted.text, sha256, extracted.encoding)
        doc = replace(doc, format=extracted.format, pages=extracted.pages,
                      title=extracted.title or doc.title)  # fmt: skip
    if not doc.paragraphs:
        return f"skipped {rel}: no text"
    return doc


def _extracted(name: str, data: bytes, sha256: str, cache_dir: Path | None) -> Extracted:
    """formats.extract, or what it gave before for the same bytes (kept as JSON)."""
    cached = Path(cache_dir) / f"{sha256}.json" if cache_dir is not None else None
    if cached is not None:
        try:
            record = json.loads(cached.read_text(encoding="utf-8"))
            if record.pop("extractor") == EXTRACTOR_VERSION:
                return Extracted(record["format"], record["text"], record["title"],
                                 tuple(record["pages"]), record["encoding"])  # fmt: skip
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            pass
    extracted = extract(name, data)
    if cached is not None:
        record = {"extractor": EXTRACTOR_VERSION, "format": extracted.format, "text": extracted.text,
                  "title": extracted.title, "pages": list(extracted.pages), "encoding": extracted.encoding}
        try:
            cached.parent.mkdir(parents=True, exist_ok=True)
            write_atomically(cached, json.dumps(record, ensure_ascii=False).encode("utf-8"))
        except OSError:
            pass  # a cache that cannot be written costs time, nothing else
    return extracted


def _walk(seeds_dir: Path):
    for dirpath, dirnames, filenames in os.walk(seeds_dir, followlinks=False):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in filenames:
            if name.lower().endswith(READABLE) and not name.startswith("."):
                yield Path(dirpath) / name
