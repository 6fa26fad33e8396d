"""documents.py: decoding, mojibake repair, titles, sections, boilerplate, offsets.

Hand-worked examples on tiny texts plus the two real seeds. Does not cover
encodings chosen by detection in depth, symlinks or size caps
(test_reliability_ingest.py does).
"""

from __future__ import annotations

import pytest

from assistant.ingest.documents import (
    METADATA_FILE,
    Document,
    decode_bytes,
    is_heading,
    load_documents,
    parse_document,
    repair_mojibake,
)

from conftest import SEEDS, TINY_DOCS

MOJIBAKE_DOC = "003_5a3a1dfd038f9b52.txt"
PLAIN_DOC = "000_ed13bf9180557300.txt"


def parse(text: str, path: str = "doc.txt") -> Document:
    return parse_document(path, text, "0" * 64, "utf-8")


def cleaned_span(paragraph, i: int = 0, j: int | None = None) -> tuple[int, int]:
    return paragraph.original_span(i, len(paragraph.text) if j is None else j)


def assert_offsets_sound(doc: Document) -> None:
    """Every paragraph maps into the original; verbatim ones slice back exactly."""
    for p in doc.paragraphs:
        start, end = cleaned_span(p)
        assert 0 <= start < end <= len(doc.text)
        if p.offsets is None:
            assert doc.text[start:end] == p.text


@pytest.fixture(scope="module")
def seeds() -> dict[str, Document]:
    documents, warnings = load_documents(SEEDS, max_file_bytes=5_000_000)
    assert warnings == []
    return {d.path: d for d in documents}


# ---- decoding ---------------------------------------------------------------------


def test_utf8_with_a_bom_loses_the_bom():
    assert decode_bytes("\ufeffPanmunjom talks".encode("utf-8")) == ("Panmunjom talks", "utf-8")


def test_latin1_bytes_are_decoded_to_the_same_text():
    text = "Café au lait à Paris, très bien. Le café était très bon pour l'été."
    decoded, encoding = decode_bytes(text.encode("latin-1"))
    assert decoded == text and encoding != "utf-8"


def test_utf16_with_a_bom_is_decoded_without_the_bom():
    text = "Armistice talks at Panmunjom began in 1951.\n"
    decoded, encoding = decode_bytes(text.encode("utf-16"))  # BOM + little-endian
    assert decoded == text and "16" in encoding


@pytest.mark.parametrize(
    "data",
    [bytes(range(256)) * 8, b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(200))],
    ids=["all-bytes", "png-header"],
)
def test_binary_data_is_not_text(data):
    assert decode_bytes(data) is None


# ---- mojibake ---------------------------------------------------------------------


def test_repair_mojibake_hand_worked_emoji_read_as_cp1250():
    # 💡 is F0 9F 92 A1 in UTF-8; cp1250 reads those bytes as "đ", "ź", "’", "ˇ".
    assert "💡".encode("utf-8").decode("cp1250") == "đź’ˇ"
    fixed, index = repair_mojibake("đź’ˇ Note")
    assert fixed == "💡 Note"
    assert index == [0, 4, 5, 6, 7, 8]  # the emoji comes from the run at 0; " Note" from 4..8


def test_repair_mojibake_hand_worked_cp1252_accent():
    assert repair_mojibake("cafÃ© ok") == ("café ok", [0, 1, 2, 3, 5, 6, 7])


@pytest.mark.parametrize("text", ["naïve café", "Peace 🕊 talks", "plain ASCII", "", "Müller’s “view”"])
def test_repair_mojibake_leaves_correct_text_alone(text):
    assert repair_mojibake(text) == (text, list(range(len(text))))


def test_the_seed_mojibake_line_is_repaired_and_maps_back_to_the_original(seeds):
    doc = seeds[MOJIBAKE_DOC]
    original_line = doc.text.splitlines()[2]
    assert original_line.startswith("đź’ˇ Note to readers")
    [paragraph] = [p for p in doc.paragraphs if p.offsets is not None]
    assert paragraph.text.startswith("Note to readers: This content was produced by AI.")
    assert "đ" not in paragraph.text and "ˇ" not in paragraph.text
    start, end = cleaned_span(paragraph)
    line_start = doc.text.index(original_line)
    # The quote starts at the first word (the repaired emoji is left out) and ends at
    # the end of the line, both in the original text.
    assert doc.text[start:end] == original_line[len("đź’ˇ ") :]
    assert start == line_start + len("đź’ˇ ") and end == line_start + len(original_line)
    # A span inside the repaired paragraph is still verbatim in the original.
    i = paragraph.text.index("readers")
    assert doc.text.__getitem__(slice(*paragraph.original_span(i, i + len("readers")))) == "readers"


# ---- titles, sections, boilerplate, bullets -------------------------------------


def test_the_tiny_corpus_titles_and_sections(tiny_seeds):
    documents, warnings = load_documents(tiny_seeds, max_file_bytes=10_000)
    assert warnings == []
    alpha, beta = documents
    assert (alpha.path, alpha.title) == ("alpha.txt", "The Armistice Talks")
    assert alpha.sections == ["Opening Moves", "Prisoners of War", "The Signing"]
    assert (beta.path, beta.title) == ("beta.md", "Later Summits")  # "# " stripped
    assert beta.sections == ["Summits", "Echo"]
    for doc in documents:
        assert_offsets_sound(doc)


@pytest.mark.parametrize(
    "path, text",
    [("alpha.txt", "The Armistice Talks\n\nOpening Moves\nTalks began at Kaesong in 1951.\n"),
     ("beta.md", "# The Armistice Talks\n\nOpening Moves\nTalks began at Kaesong in 1951.\n")],
    ids=["plain", "markdown"],
)  # fmt: skip
def test_a_title_followed_by_a_section_heading_is_still_the_title(path, text):
    doc = parse(text, path)
    assert doc.title == "The Armistice Talks"
    assert doc.sections == ["Opening Moves"]


def test_a_title_followed_by_body_text_is_the_title():
    doc = parse("# The Armistice Talks\n\nTalks began at Kaesong in 1951.\n", "beta.md")
    assert doc.title == "The Armistice Talks"
    assert [p.text for p in doc.paragraphs] == ["Talks began at Kaesong in 1951."]


def test_boilerplate_lines_are_dropped(tiny_seeds):
    documents, _ = load_documents(tiny_seeds, max_file_bytes=10_000)
    texts = [p.text for d in documents for p in d.paragraphs]
    assert not any("Scroll to top" in t or t.startswith("See also") for t in texts)
    # the sentence after a "See also" line stays in its section
    beta = documents[1]
    assert [p.text for p in beta.paragraphs if p.section == "Summits"] == [
        "Leaders met in 2000 and in 2007 for inter-Korean summits.",
        "The Panmunjom Declaration came in 2018.",
    ]


def test_a_bullet_is_stripped_and_its_offset_points_past_the_marker(tiny_seeds):
    documents, _ = load_documents(tiny_seeds, max_file_bytes=10_000)
    alpha = documents[0]
    [item] = [p for p in alpha.paragraphs if "Little Switch" in p.text]
    assert item.text == "Operation Little Switch exchanged sick prisoners in April 1953."
    assert alpha.text[item.start - 2 : item.start] == "- "
    assert alpha.text[item.start : item.start + len(item.text)] == item.text


def test_a_hash_named_file_without_a_title_line_is_titled_by_its_first_words():
    text = (SEEDS / PLAIN_DOC).read_text(encoding="utf-8")
    doc = parse_document(PLAIN_DOC, text, "0" * 64, "utf-8")
    assert doc.title == "The Korean War, a pivotal conflict in the…"  # never "000_ed13…"
    assert doc.paragraphs[0].section == "Introduction"
    assert doc.paragraphs[0].text.startswith("The Korean War, a pivotal conflict")
    # a file name in words is a title; the hash in it is dropped
    assert parse("the talks began.", "armistice_report-5a3a1dfd038f9b52.txt").title == "armistice report"


def test_the_shipped_metadata_file_titles_the_first_seed(seeds):
    assert seeds[PLAIN_DOC].title == "The Korean War: Negotiations and Peace Talks"


def test_titles_set_beside_the_documents_replace_their_own(tiny_seeds):
    (tiny_seeds / METADATA_FILE).write_text(
        '["alpha.txt"]\ntitle = "  Talks at\tKaesong "\n\n'
        '["gone.txt"]\ntitle = "No such file"\n\n["beta.md"]\ntitle = 3\n', encoding="utf-8")
    documents, warnings = load_documents(tiny_seeds, max_file_bytes=10_000)
    titles = {d.path: d.title for d in documents}
    assert titles["alpha.txt"] == "Talks at Kaesong"
    assert titles["beta.md"] == "Later Summits"  # a bad entry: the document's own title
    assert any("'beta.md'" in w and "title" in w for w in warnings)
    assert any("'gone.txt'" in w and "not a document" in w for w in warnings)


def test_a_broken_metadata_file_is_one_warning_and_loses_no_document(tiny_seeds):
    (tiny_seeds / METADATA_FILE).write_text('["alpha.txt"\ntitle = ', encoding="utf-8")
    documents, warnings = load_documents(tiny_seeds, max_file_bytes=10_000)
    assert [d.title for d in documents] == ["The Armistice Talks", "Later Summits"]
    assert len(warnings) == 1 and warnings[0].startswith(f"ignored {METADATA_FILE}:")


def test_the_real_seeds_sections_and_boilerplate(seeds):
    doc = seeds[MOJIBAKE_DOC]
    assert doc.title == ("Advancing Diplomacy: The Status and Significance of North Korea "
                         "South Korea Peace Talks")  # fmt: skip
    assert "Impact of Military Tensions on Peace Efforts" in doc.sections
    texts = [p.text for p in doc.paragraphs]
    # "See also  ..." lines, "Scroll to top" and the title repeated at the end are gone.
    assert doc.text.count("See also") == 3 and not any(t.startswith("See also") for t in texts)
    assert doc.text.rstrip().endswith("Scroll to top") and "Scroll to top" not in texts
    assert doc.text.count(doc.title) == 2 and doc.title not in texts
    assert texts[-1].startswith("Overall, the trajectory of North Korea South Korea peace talks")
    # The numbered list keeps its items as text, without "1." markers.
    items = [p for p in doc.paragraphs if p.text.startswith(("Frequency and scope", "Cross-border troop"))]
    assert [p.text for p in items] == ["Frequency and scope of military drills.",
                                       "Cross-border troop movements."]  # fmt: skip
    assert doc.text[items[0].start - 3 : items[0].start] == "1. "
    for d in seeds.values():
        assert_offsets_sound(d)
        assert d.encoding == "utf-8"


@pytest.mark.parametrize(
    "line, heading",
    [
        ("Historical Context of the Korean War", True),
        ("# lower-case markdown heading", True),
        ("The talks began in 1951.", False),  # closing punctuation
        ("the talks began", False),  # lower-case start
        ("- Operation Little Switch", False),  # a bullet
        ("Key elements influenced by military tensions include:", False),
        ("", False),
    ],
)
def test_is_heading(line, heading):
    assert is_heading(line) is heading


# ---- edge cases -------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, title, paragraph_texts",
    [
        ("", "doc", []),
        ("\n\n  \n", "doc", []),
        ("Panmunjom", "doc", ["Panmunjom"]),
        ("Peace 🕊 talks resumed in 2018.", "doc", ["Peace 🕊 talks resumed in 2018."]),
        ("A Lone Heading\n", "doc", ["A Lone Heading"]),  # a heading with no body is kept as text
        ("Title Here\n\nEmpty Section\nFull Section\nBody text here.", "Title Here",
         ["Body text here."]),
        ("Talks Resumed\n\nThe talks resumed. 🕊 Peace followed.\n", "Talks Resumed",
         ["The talks resumed. 🕊 Peace followed."]),
        ("Windows Lines\r\n\r\nThe talks ended.\r\n", "Windows Lines", ["The talks ended."]),
    ],
    ids=["empty", "blank-lines", "one-word", "emoji", "heading-only", "heading-no-body",
         "emoji-body", "crlf"],
)  # fmt: skip
def test_edge_cases(text, title, paragraph_texts):
    doc = parse(text)
    assert doc.title == title
    assert [p.text for p in doc.paragraphs] == paragraph_texts
    assert_offsets_sound(doc)


def test_a_heading_with_no_body_is_no_section_of_its_own():
    doc = parse("Title Here\n\nEmpty Section\nFull Section\nBody text here.")
    assert doc.sections == ["Full Section"]


def test_an_empty_file_is_skipped_with_a_warning_naming_it(tmp_path):
    (tmp_path / "empty.txt").write_text("")
    (tmp_path / "full.txt").write_text("The armistice was signed in 1953.\n")
    documents, warnings = load_documents(tmp_path, max_file_bytes=10_000)
    assert [d.path for d in documents] == ["full.txt"]
    assert warnings == ["skipped empty.txt: no text"]
