"""Load documents from the seeds folder and clean them in memory.

Cleaning never changes what offsets mean: every paragraph keeps a map from its
cleaned characters back to the decoded original text, so a citation's span is
always a span of the file as the user has it. Files on disk are never touched.
Does not split sentences or make chunks (see chunking.py).
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
import tomllib
from dataclasses import dataclass, replace
from pathlib import Path

from ..errors import NoDocumentsError

SUFFIXES = (".txt", ".md")
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

    @property
    def sections(self) -> list[str]:
        return list(dict.fromkeys(p.section for p in self.paragraphs))


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


def load_documents(seeds_dir: Path, *, max_file_bytes: int) -> tuple[list[Document], list[str]]:
    """Every .txt/.md file under seeds_dir, and one warning per file skipped; titles set
    in its metadata.toml replace the documents' own (`read_titles`).

    Symlinks that resolve outside the folder are not followed; anything that is not a
    regular file (FIFO, device, dangling symlink) or cannot be read is skipped.
    Raises NoDocumentsError when the folder is missing or nothing could be read.
    """
    seeds_dir = Path(seeds_dir)
    if not seeds_dir.is_dir():
        raise NoDocumentsError(f"seeds folder not found: {seeds_dir}")
    root = seeds_dir.resolve()
    documents, warnings = [], []
    for path in sorted(_walk(seeds_dir)):
        rel = path.relative_to(seeds_dir).as_posix()
        try:
            if path.is_symlink() and not path.resolve().is_relative_to(root):
                warnings.append(f"skipped {rel}: symlink leaves the seeds folder")
                continue
            info = path.stat()  # of what a symlink points to
        except (OSError, RuntimeError) as exc:  # dangling symlink; a loop (RuntimeError before 3.13)
            reason = exc.strerror if isinstance(exc, OSError) else "symlink loop"
            warnings.append(f"skipped {rel}: cannot read it ({reason})")
            continue
        if not stat.S_ISREG(info.st_mode):  # reading a FIFO would wait forever
            warnings.append(f"skipped {rel}: not a regular file")
            continue
        size = info.st_size
        if size > max_file_bytes:
            warnings.append(f"skipped {rel}: {size} bytes is over the {max_file_bytes}-byte cap")
            continue
        try:
            data = path.read_bytes()
        except OSError as exc:
            warnings.append(f"skipped {rel}: cannot read it ({exc.strerror})")
            continue
        decoded = decode_bytes(data)
        if decoded is None:
            warnings.append(f"skipped {rel}: not a text file (binary or undetectable encoding)")
            continue
        text, encoding = decoded
        doc = parse_document(rel, text, hashlib.sha256(data).hexdigest(), encoding)
        if not doc.paragraphs:
            warnings.append(f"skipped {rel}: no text")
            continue
        documents.append(doc)
    titles, title_warnings = read_titles(seeds_dir)
    warnings += title_warnings
    known = {d.path for d in documents}
    warnings += [f"{METADATA_FILE} names {name!r}, which is not a document here" for name in titles
                 if name not in known]  # fmt: skip
    documents = [replace(d, title=titles[d.path]) if d.path in titles else d for d in documents]
    if not documents:
        raise NoDocumentsError(f"no readable .txt or .md documents in {seeds_dir}")
    return documents, warnings


def _walk(seeds_dir: Path):
    for dirpath, dirnames, filenames in os.walk(seeds_dir, followlinks=False):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in filenames:
            if name.lower().endswith(SUFFIXES) and not name.startswith("."):
                yield Path(dirpath) / name
