"""Split paragraphs into sentences and pack sentences into overlapping chunks.

Every sentence and chunk carries its span in the original document text.
A chunk never crosses a section and never exceeds the model's token limit,
measured with the tokenizer the caller passes in. Does not embed anything.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from .documents import Document, Paragraph

CountTokens = Callable[[Sequence[str]], list[int]]

_BOUNDARY = re.compile(r"[.!?][\"'”’)\]]*\s+(?=[\"'“‘(\[]?[A-Z0-9])")
ABBREVIATIONS = {
    "mr", "mrs", "ms", "dr", "st", "gen", "col", "lt", "sgt", "capt", "adm", "maj",
    "u.s", "u.n", "e.g", "i.e", "vs", "etc", "no", "jan", "feb", "mar", "apr", "jun",
    "jul", "aug", "sep", "sept", "oct", "nov", "dec", "inc", "ltd", "co", "jr", "sr",
}  # fmt: skip


@dataclass(frozen=True)
class Sentence:
    text: str  # cleaned text
    start: int  # span in the original document text
    end: int


@dataclass(frozen=True)
class Chunk:
    doc: str
    title: str
    section: str
    start: int
    end: int
    text: str
    sentences: tuple[Sentence, ...]

    @property
    def id(self) -> str:
        """Stable and human-readable: document path plus span."""
        return f"{self.doc}:{self.start}-{self.end}"

    @property
    def indexed_text(self) -> str:
        """What is embedded and BM25-indexed: the section heading, then the text, so
        "the section on sticking points" finds its section."""
        return f"{self.section}\n{self.text}"


def text_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


def ends_sentence(text: str) -> bool:
    """Whether text ends with a sentence's closing mark that is not an abbreviation's
    ("... the talks." yes; "the U.S." and "Gen." no)."""
    text = text.rstrip().rstrip("\"'”’)]")
    if not text or text[-1] not in ".!?":
        return False
    word = text.rsplit(None, 1)[-1].rstrip(".").lower()
    return text[-1] != "." or not (word in ABBREVIATIONS or (len(word) == 1 and word.isalpha()))


def split_sentences(paragraph: Paragraph) -> list[Sentence]:
    """Sentences of one paragraph, with original spans. Abbreviations do not end one."""
    text = paragraph.text
    cuts = [0]
    for m in _BOUNDARY.finditer(text):
        if not ends_sentence(text[: m.start() + 1]):
            continue
        cuts.append(m.end())
    cuts.append(len(text))
    sentences = []
    for i, j in zip(cuts, cuts[1:]):
        piece = text[i:j].rstrip()
        if not piece.strip():
            continue
        start, end = paragraph.original_span(i, i + len(piece))
        sentences.append(Sentence(piece, start, end))
    return sentences


def _split_long(
    sentence: Sentence, paragraph: Paragraph, offset: int, tokens: int, limit: int,
    count: CountTokens,
) -> list[Sentence]:
    """Cut a sentence longer than the limit into word windows that fit."""
    if tokens <= limit:
        return [sentence]
    words = list(re.finditer(r"\S+", sentence.text))
    sizes = count([w.group() for w in words])
    pieces, first, used = [], 0, 0
    for k, size in enumerate(sizes + [limit + 1]):
        if k == len(words) or (used + size > limit and k > first):
            a, b = words[first].start(), words[k - 1].end()
            start, end = paragraph.original_span(offset + a, offset + b)
            pieces.append(Sentence(sentence.text[a:b], start, end))
            first, used = k, 0
        used += size
    return pieces


def chunk_document(
    doc: Document,
    count_tokens: CountTokens,
    *,
    chunk_tokens: int = 160,
    max_chunk_tokens: int = 254,
    overlap_sentences: int = 1,
) -> list[Chunk]:
    """Pack each section's sentences into chunks of about chunk_tokens word pieces.

    Consecutive chunks share `overlap_sentences` sentences. No chunk exceeds
    max_chunk_tokens (the model's limit less [CLS] and [SEP]).
    """
    target = min(chunk_tokens, max_chunk_tokens)
    chunks: list[Chunk] = []
    sections: dict[str, list[tuple[Paragraph, list[Sentence]]]] = {}
    for paragraph in doc.paragraphs:
        sections.setdefault(paragraph.section, []).append((paragraph, split_sentences(paragraph)))
    for section, paragraphs in sections.items():
        # The heading is embedded with each chunk (Chunk.indexed_text): leave it room.
        limit = max_chunk_tokens - count_tokens([section])[0] - 1
        flat: list[tuple[Sentence, int, int]] = []  # sentence, tokens, paragraph number
        for number, (paragraph, sentences) in enumerate(paragraphs):
            sizes = count_tokens([s.text for s in sentences])
            cursor = 0  # where this sentence starts in the cleaned paragraph text
            for sentence, size in zip(sentences, sizes):
                offset = paragraph.text.index(sentence.text, cursor)
                cursor = offset + len(sentence.text)
                pieces = _split_long(sentence, paragraph, offset, size, limit,
                                     count_tokens)  # fmt: skip
                for piece in pieces:
                    size_piece = size if piece is sentence else count_tokens([piece.text])[0]
                    flat.append((piece, size_piece, number))
        section_chunks = [_make_chunk(doc, section, g) for g in _pack(flat, min(target, limit),
                                                                        overlap_sentences)]  # fmt: skip
        chunks.extend(_enforce_limit(section_chunks, count_tokens, limit))
    return chunks


def _pack(flat, target: int, overlap: int) -> list[list[tuple[Sentence, int]]]:
    groups, i = [], 0
    while i < len(flat):
        group, used, j = [], 0, i
        while j < len(flat):
            _, size, number = flat[j]
            if group and used + size > target:
                break
            # Prefer ending at a paragraph boundary once the chunk is well filled.
            if group and number != flat[j - 1][2] and used >= 0.6 * target:
                break
            group.append((flat[j][0], flat[j][2]))
            used += size
            j += 1
        groups.append(group)
        if j >= len(flat):
            break
        i = max(j - overlap, i + 1)
    return groups


def _make_chunk(doc: Document, section: str, group) -> Chunk:
    parts: list[str] = []
    for k, (sentence, number) in enumerate(group):
        if k:
            parts.append("\n" if number != group[k - 1][1] else " ")
        parts.append(sentence.text)
    sentences = tuple(s for s, _ in group)
    return Chunk(
        doc.path, doc.title, section, sentences[0].start, sentences[-1].end, "".join(parts), sentences
    )


def _enforce_limit(chunks: list[Chunk], count_tokens: CountTokens, limit: int) -> list[Chunk]:
    """Measure each finished chunk; split any that the joining pushed over the limit."""
    sizes = count_tokens([c.text for c in chunks])
    out = []
    for chunk, size in zip(chunks, sizes):
        if size <= limit or len(chunk.sentences) == 1:
            out.append(chunk)
            continue
        half = len(chunk.sentences) // 2
        for part in (chunk.sentences[:half], chunk.sentences[half:]):
            sub = Chunk(chunk.doc, chunk.title, chunk.section, part[0].start, part[-1].end,
                        " ".join(s.text for s in part), part)  # fmt: skip
            out.extend(_enforce_limit([sub], count_tokens, limit))
    return out
