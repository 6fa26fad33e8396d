"""chunking.py: sentences, chunk limits in real word pieces, sections, spans, overlap.

The token limit is checked with the real model's tokenizer (it loads only the
`tokenizers` library, not torch). Does not embed or index anything.
"""

from __future__ import annotations

import pytest

from assistant.ingest.chunking import Sentence, chunk_document, split_sentences
from assistant.config import Settings
from assistant.ingest.documents import Document, Paragraph, load_documents, parse_document
from assistant.embed.sbert import SentenceTransformerEmbedder

from conftest import SEEDS, FakeEmbedder

SETTINGS = Settings()


@pytest.fixture(scope="module")
def tokenizer() -> SentenceTransformerEmbedder:
    return SentenceTransformerEmbedder()  # count_tokens never imports torch


@pytest.fixture(scope="module")
def seed_documents() -> list[Document]:
    return load_documents(SEEDS, max_file_bytes=5_000_000)[0]


def chunks_of(doc: Document, count_tokens, **overrides):
    options = {"chunk_tokens": SETTINGS.chunk_tokens, "max_chunk_tokens": SETTINGS.max_chunk_tokens,
               "overlap_sentences": SETTINGS.overlap_sentences, **overrides}  # fmt: skip
    return chunk_document(doc, count_tokens, **options)


def parse(text: str) -> Document:
    return parse_document("doc.txt", text, "0" * 64, "utf-8")


def words_count(texts):
    return FakeEmbedder().count_tokens(texts)


# ---- sentences --------------------------------------------------------------------


def test_split_sentences_hand_worked_with_abbreviations():
    text = ("U.S. forces under Gen. Ridgway held the line. Talks resumed in Oct. 1951 at Kaesong! "
            "Did the U.S. Eighth Army retreat? Yes. Dr. Kim and Mr. Lee agreed.")  # fmt: skip
    sentences = split_sentences(Paragraph("S", text, 100))
    assert sentences == [
        Sentence("U.S. forces under Gen. Ridgway held the line.", 100, 145),
        Sentence("Talks resumed in Oct. 1951 at Kaesong!", 146, 184),
        Sentence("Did the U.S. Eighth Army retreat?", 185, 218),
        Sentence("Yes.", 219, 223),
        Sentence("Dr. Kim and Mr. Lee agreed.", 224, 251),
    ]


@pytest.mark.parametrize(
    "text, expected",
    [
        ("", []),
        ("   ", []),
        ("Panmunjom", ["Panmunjom"]),
        ("Peace 🕊 came. 🕊 Then talks.", ["Peace 🕊 came. 🕊 Then talks."]),  # no capital after
        ("Peace came. 2018 was busy.", ["Peace came.", "2018 was busy."]),
        ("He said “Stop.” Then he left.", ["He said “Stop.”", "Then he left."]),
        ("Kim agreed. J. Smith did too.", ["Kim agreed.", "J. Smith did too."]),  # an initial
        ("It held No. 3 Division back.", ["It held No. 3 Division back."]),
    ],
    ids=["empty", "blank", "one-word", "emoji", "digit-start", "closing-quote", "initial", "no-dot"],
)
def test_split_sentences_edge_cases(text, expected):
    sentences = split_sentences(Paragraph("S", text, 0))
    assert [s.text for s in sentences] == expected
    assert all(text[s.start : s.end] == s.text for s in sentences)


# ---- the real seeds, measured with the real tokenizer -----------------------------


def test_every_seed_chunk_fits_the_model_in_real_word_pieces(seed_documents, tokenizer):
    assert tokenizer.max_tokens == 256
    for doc in seed_documents:
        chunks = chunks_of(doc, tokenizer.count_tokens)
        assert chunks
        sizes = tokenizer.count_tokens([c.text for c in chunks])
        assert max(sizes) <= SETTINGS.max_chunk_tokens == tokenizer.max_tokens - 2  # [CLS] [SEP]
        # What is embedded (heading + text) fits too: nothing is silently truncated.
        assert max(tokenizer.count_tokens([c.indexed_text for c in chunks])) <= SETTINGS.max_chunk_tokens


def test_seed_chunks_stay_inside_one_section_and_keep_original_spans(seed_documents, tokenizer):
    for doc in seed_documents:
        verbatim = [p for p in doc.paragraphs if p.offsets is None]
        repaired = [p for p in doc.paragraphs if p.offsets is not None]
        for chunk in chunks_of(doc, tokenizer.count_tokens):
            assert (chunk.doc, chunk.title) == (doc.path, doc.title)
            assert chunk.start == chunk.sentences[0].start and chunk.end == chunk.sentences[-1].end
            for s in chunk.sentences:
                home = [p for p in doc.paragraphs
                        if p.start <= s.start and s.end <= p.original_span(0, len(p.text))[1]]  # fmt: skip
                assert [p.section for p in home] == [chunk.section], s
                if home[0] in verbatim:
                    assert doc.text[s.start : s.end] == s.text
                else:
                    assert home[0] in repaired and s.text in home[0].text
                assert s.text in chunk.text


def test_consecutive_seed_chunks_of_a_section_overlap_by_one_sentence(seed_documents, tokenizer):
    pairs = 0
    for doc in seed_documents:
        chunks = chunks_of(doc, tokenizer.count_tokens)
        for a, b in zip(chunks, chunks[1:]):
            if a.section == b.section:
                pairs += 1
                assert a.sentences[-1] == b.sentences[0]
                assert a.start < b.start and a.end < b.end
            else:
                assert not set(a.sentences) & set(b.sentences)
    assert pairs >= 20  # the seeds have many multi-chunk sections


def test_the_mojibake_line_is_a_chunk_sentence_with_a_span_in_the_original(seed_documents, tokenizer):
    doc = next(d for d in seed_documents if d.path.startswith("003_"))
    sentences = [s for c in chunks_of(doc, tokenizer.count_tokens) for s in c.sentences]
    first = next(s for s in sentences if s.text.startswith("Note to readers"))
    assert doc.text[first.start : first.end] == first.text  # the emoji is left out of the span
    assert doc.text[: first.start].endswith("đź’ˇ ")


# ---- limits -----------------------------------------------------------------------


def test_a_sentence_longer_than_the_limit_is_split_into_pieces_that_fit():
    long = "The " + " ".join(f"word{i}" for i in range(25)) + "."
    doc = parse(f"Some Title\n\nA short opener. {long} A short closer.\n")
    chunks = chunks_of(doc, words_count, chunk_tokens=10, max_chunk_tokens=10)
    for chunk in chunks:
        assert words_count([chunk.text])[0] <= 10
        for s in chunk.sentences:
            assert doc.text[s.start : s.end] == s.text
    pieces = sorted({s for c in chunks for s in c.sentences}, key=lambda s: s.start)
    # the pieces tile the long sentence in order, word for word
    assert " ".join(s.text for s in pieces) == f"A short opener. {long} A short closer."


def test_a_long_sentence_with_the_real_tokenizer_never_exceeds_the_model_limit(tokenizer):
    # Numbers and rare words cost several word pieces each: word counts would lie.
    long = "The delegates listed " + ", ".join(f"item {i * 7919} (ref. XQZ-{i}a)" for i in range(200)) + "."
    doc = parse(f"Annex Lists\n\nThe annex was long. {long} It was signed.\n")
    chunks = chunks_of(doc, tokenizer.count_tokens)
    assert len(chunks) > 3
    sizes = tokenizer.count_tokens([c.text for c in chunks])
    assert max(sizes) <= SETTINGS.max_chunk_tokens
    assert max(tokenizer.count_tokens([c.indexed_text for c in chunks])) <= SETTINGS.max_chunk_tokens
    for chunk in chunks:
        assert all(doc.text[s.start : s.end] == s.text for s in chunk.sentences)


@pytest.mark.parametrize("extra, pieces", [(0, 1), (1, 2)], ids=["exactly-at-limit", "one-over"])
def test_a_sentence_exactly_at_the_limit_is_kept_whole(extra, pieces):
    limit = 12
    sentence = "The " + " ".join(["talks"] * (limit - 2 + extra)) + " ended."
    assert words_count([sentence])[0] == limit + extra
    doc = parse(f"Some Title\n\n{sentence}\n")
    # The limit covers what is embedded: the heading "Introduction" and a separator cost 2.
    chunks = chunks_of(doc, words_count, chunk_tokens=limit, max_chunk_tokens=limit + 2)
    assert len({s for c in chunks for s in c.sentences}) == pieces
    assert all(words_count([c.text])[0] <= limit for c in chunks)
    assert all(words_count([c.indexed_text])[0] <= limit + 1 for c in chunks)


def test_sentences_exactly_filling_the_target_make_one_chunk_each_with_overlap():
    # Three 4-word sentences and a target of 8: chunks [s1 s2], [s2 s3].
    doc = parse("Some Title\n\nTalks began in 1951. Talks paused in 1952. Talks ended in 1953.\n")
    chunks = chunks_of(doc, words_count, chunk_tokens=8, max_chunk_tokens=10)  # 2 for the heading
    assert [c.text for c in chunks] == ["Talks began in 1951. Talks paused in 1952.",
                                        "Talks paused in 1952. Talks ended in 1953."]  # fmt: skip
    assert chunks[0].sentences[-1] == chunks[1].sentences[0]


def test_overlap_zero_shares_nothing():
    doc = parse("Some Title\n\nTalks began in 1951. Talks paused in 1952. Talks ended in 1953.\n")
    chunks = chunks_of(doc, words_count, chunk_tokens=4, max_chunk_tokens=8, overlap_sentences=0)
    assert [len(c.sentences) for c in chunks] == [1, 1, 1]


def test_chunks_never_cross_a_section_even_when_small():
    doc = parse("Some Title\n\nFirst Part\nTalks began in 1951.\nSecond Part\nTalks ended in 1953.\n")
    chunks = chunks_of(doc, words_count)
    assert [(c.section, c.text) for c in chunks] == [("First Part", "Talks began in 1951."),
                                                     ("Second Part", "Talks ended in 1953.")]  # fmt: skip


def test_chunk_ids_are_the_document_and_span():
    doc = parse("Some Title\n\nTalks began in 1951.\n")
    [chunk] = chunks_of(doc, words_count)
    assert chunk.id == f"doc.txt:{chunk.start}-{chunk.end}" == "doc.txt:12-32"


def test_a_repeated_long_sentence_keeps_its_own_spans():
    long = "The " + " ".join(f"word{i}" for i in range(25)) + "."
    text = f"Some Title\n\nA short opener. {long} Middle bit. {long}\n"
    doc = parse(text)
    chunks = chunks_of(doc, words_count, chunk_tokens=10, max_chunk_tokens=10)
    ids = [c.id for c in chunks]
    assert len(ids) == len(set(ids))
    assert chunks[-1].end == len(text.rstrip("\n"))  # the last words are at the end
