"""Synthetic corpora for the scale benchmarks, recombined from the seeds' own sentences.

`seed_sentences` cuts the seed documents into sentences with the engine's own
splitter; `write_corpus` writes documents of randomly ordered sentences (titles,
sections, paragraphs) until the engine's chunker yields the wanted number of
chunks. The random generator is seeded, so a run is reproducible. Sentences
repeat across documents (there are only a few hundred in the seeds), so their
vectors are shared in a build; chunk texts are unique.

Does not embed or index anything.
"""

from __future__ import annotations

import hashlib
import random
from pathlib import Path

from assistant.ingest.chunking import chunk_document, split_sentences
from assistant.ingest.documents import load_documents, parse_document


def seed_sentences(seeds_dir: Path) -> list[str]:
    documents, _ = load_documents(seeds_dir, max_file_bytes=10_000_000)
    out = []
    for doc in documents:
        for paragraph in doc.paragraphs:
            out.extend(s.text for s in split_sentences(paragraph) if len(s.text.split()) >= 4)
    return list(dict.fromkeys(out))


def make_document(sentences: list[str], rng: random.Random, number: int, *,
                  sections: int = 6, paragraphs: int = 5) -> str:  # fmt: skip
    """A title, sections with headings, and paragraphs of 3-6 random seed sentences."""
    lines = [f"Synthetic Talks Record {number}", ""]
    for s in range(sections):
        lines.append(f"Session {s + 1} Notes")
        for _ in range(paragraphs):
            lines.append(" ".join(rng.choice(sentences) for _ in range(rng.randint(3, 6))))
        lines.append("")
    return "\n".join(lines) + "\n"


def count_chunks(path: str, text: str, count_tokens, settings) -> int:
    doc = parse_document(path, text, hashlib.sha256(text.encode()).hexdigest(), "utf-8")
    return len(chunk_document(doc, count_tokens, chunk_tokens=settings.chunk_tokens,
                              max_chunk_tokens=settings.max_chunk_tokens,
                              overlap_sentences=settings.overlap_sentences))  # fmt: skip


def write_corpus(target: Path, sentences: list[str], chunks: int, count_tokens, settings, *,
                 seed: int = 0, sections: int = 6) -> dict:  # fmt: skip
    """Write documents into `target` until about `chunks` chunks; returns counts per file."""
    rng = random.Random(seed)
    target.mkdir(parents=True, exist_ok=True)
    counts: dict[str, int] = {}
    number = 0
    while sum(counts.values()) < chunks:
        text = make_document(sentences, rng, number, sections=sections)
        name = f"synthetic_{number:04d}.txt"
        (target / name).write_text(text, encoding="utf-8")
        counts[name] = count_chunks(name, text, count_tokens, settings)
        number += 1
    return counts


def chunk_texts(sentences: list[str], n: int, count_tokens, settings, *, seed: int = 1) -> list[str]:
    """About n chunk texts as the engine would cut them from synthetic documents."""
    rng = random.Random(seed)
    texts: list[str] = []
    number = 0
    while len(texts) < n:
        text = make_document(sentences, rng, number)
        doc = parse_document(f"s{number}.txt", text, "0" * 64, "utf-8")
        texts.extend(c.text for c in chunk_document(
            doc, count_tokens, chunk_tokens=settings.chunk_tokens,
            max_chunk_tokens=settings.max_chunk_tokens, overlap_sentences=settings.overlap_sentences))  # fmt: skip
        number += 1
    return texts[:n]
