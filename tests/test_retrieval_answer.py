"""retrieval.py, answer.py, answer_types.py on the tiny corpus with the fake embedder.

Hand-worked fusion, the three modes, near-duplicates kept as corroboration,
answer types, list quoting, verbatim quotes and abstention. Does not cover
k over the corpus size or FAISS padding (test_reliability_ingest.py does).
"""

from __future__ import annotations

import math
import re
from types import SimpleNamespace

import numpy as np
import pytest

from assistant import Assistant
from assistant.answer.citations import NOT_IN_DOCUMENTS, citation_id
from assistant.answer.compose import Statement, _select, quote_score
from assistant.answer.confidence import DEFAULT_WEIGHTS, confidence_from, entity_gap, term_idf, unknown_name
from assistant.answer.kinds import matches_type, mentions
from assistant.search.analysis import analyse_question, expected_type, recase
from assistant.config import Settings
from assistant.ingest.chunking import Chunk
from assistant.search.retrieval import Hit, fuse_rankings

from conftest import FakeEmbedder

SIGNED = "When was the armistice signed at Panmunjom?"
ECHO_ALPHA = "The armistice was signed at Panmunjom on July 27, 1953."
LIST_DOC = (
    "Agenda Items\n\n"
    "The Agenda\n"
    "The talks went on for two years.\n"
    "Key issues at the talks include:\n"
    "- The exchange of prisoners.\n"
    "- The demarcation line.\n"
    "  2. Supervision of the truce.\n"
    "After that the agenda was fixed.\n"
)


def load(seeds, tmp_path, **settings) -> Assistant:
    return Assistant.load(seeds, tmp_path / "index", settings=Settings(**settings),
                          embedder=FakeEmbedder())  # fmt: skip


@pytest.fixture
def tiny(tiny_seeds, tmp_path) -> Assistant:
    return load(tiny_seeds, tmp_path, abstain_below=0.0)


def assert_quotes_verbatim(assistant: Assistant, answer) -> None:
    for c in answer.citations:
        text = (assistant.settings.seeds_dir / c.doc).read_text(encoding="utf-8")
        assert c.quote == text[c.start : c.end] and c.quote
        assert c.id == citation_id(c.doc, c.start, c.end, c.quote)
        assert re.fullmatch(r".+:\d+-\d+#[0-9a-f]{6}", c.id)


# ---- fusion -----------------------------------------------------------------------


def test_fuse_rankings_hand_worked_rrf():
    dense = [(1, 0.9), (2, 0.8)]
    sparse = [(2, 5.0), (3, 4.0)]
    fused = fuse_rankings([dense, sparse], [1.0, 1.0], rrf_k=60)
    assert [row for row, _ in fused] == [2, 1, 3]
    assert fused[0][1] == pytest.approx(1 / 62 + 1 / 61)  # 2nd in dense, 1st in sparse
    assert fused[1][1] == pytest.approx(1 / 61)
    assert fused[2][1] == pytest.approx(1 / 62)


def test_fuse_rankings_weights_scores_are_ignored_and_ties_go_to_the_lower_row():
    assert fuse_rankings([[(1, 0.0)], [(2, 99.0)]], [3.0, 1.0], rrf_k=0) == [(1, 3.0), (2, 1.0)]
    assert fuse_rankings([[(5, 0.1)], [(4, 0.9)]], [1.0, 1.0]) == [(4, 1 / 61), (5, 1 / 61)]
    assert fuse_rankings([[], []], [1.0, 1.0]) == []


# ---- modes and near-duplicates ----------------------------------------------------


@pytest.mark.parametrize("mode", ["hybrid", "dense", "bm25"])
def test_each_mode_ranks_the_signing_first_with_its_echo_as_corroboration(tiny, mode):
    answer = tiny.ask(SIGNED, mode=mode)
    hits = answer.retrieved
    assert [h.rank for h in hits] == list(range(1, len(hits) + 1))
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    top = hits[0]
    assert (top.chunk.doc, top.chunk.section) == ("alpha.txt", "The Signing")
    # The echo in beta.md does not take a second slot; it rides on the top hit.
    assert [(a.chunk.doc, a.chunk.section) for a in top.also_in] == [("beta.md", "Echo")]
    assert all(h.chunk.section != "Echo" for h in hits)
    assert {"armistic", "sign", "panmunjom"} <= set(top.matched_terms)
    if mode == "bm25":
        assert all(h.bm25_score and h.bm25_score > 0 for h in hits)
    if mode == "dense":
        assert all(h.bm25_rank is None for h in hits)
    # A statement both documents make lists both sources.
    assert answer.answer.startswith(ECHO_ALPHA) and answer.answer.endswith("[1][2]")
    assert [c.doc for c in answer.citations] == ["alpha.txt", "beta.md"]
    assert_quotes_verbatim(tiny, answer)


def test_a_repeat_inside_the_same_document_is_dropped_not_kept(tiny_seeds, tmp_path):
    sentence = "The neutral nations commission supervised the repatriation of prisoners."
    (tiny_seeds / "gamma.txt").write_text(
        f"Commission Notes\n\nFirst Mention\n{sentence}\nSecond Mention\n{sentence}\n", encoding="utf-8"
    )
    assistant = load(tiny_seeds, tmp_path, abstain_below=0.0)
    hits = assistant.ask("Who supervised the repatriation of prisoners?").retrieved
    gamma = [h for h in hits if h.chunk.doc == "gamma.txt"]
    assert len(gamma) == 1 and gamma[0].rank == 1
    assert all(a.chunk.doc != "gamma.txt" for a in gamma[0].also_in)


def test_k_limits_the_passages(tiny):
    assert len(tiny.ask(SIGNED, k=1).retrieved) == 1
    assert len(tiny.ask(SIGNED, k=2).retrieved) == 2


def test_answers_are_verbatim_for_several_questions(tiny):
    for question in ["Where did the talks begin?", "Which issue divided the sides?",
                     "When did leaders meet for inter-Korean summits?", SIGNED]:  # fmt: skip
        answer = tiny.ask(question)
        assert answer.citations and not answer.abstained
        assert_quotes_verbatim(tiny, answer)
        assert all(f"[{c.n}]" in answer.answer for c in answer.citations)
        assert [c.n for c in answer.citations] == list(range(1, len(answer.citations) + 1))


# ---- the statement quoted first ------------------------------------------------


def test_the_first_quote_is_the_passages_statement_with_the_questions_words(tiny):
    index = tiny.index
    chunk = next(i for i, rows in enumerate(index.chunk_sentence_rows) if len(rows) >= 2)
    first, second = index.chunk_sentence_rows[chunk][:2]
    elsewhere = next(r for r in range(len(index.sentences)) if chunk not in index.sentence_chunks[r])
    assert float(index.sentence_vectors[first] @ index.sentence_vectors[second]) < 0.8
    passage = Hit(chunk, index.chunks[chunk], 1.0)
    other = Hit(index.sentence_chunks[elsewhere][0], index.chunks[index.sentence_chunks[elsewhere][0]], 0.9)
    topic = Statement(first, passage, 2.00, 0.6, [first], lexical=0.1, novelty=0.2)
    answer = Statement(second, passage, 1.95, 0.5, [second], lexical=0.6, novelty=0.5)
    # Better words, but in another passage: the passage is chosen by the passage score.
    outside = Statement(elsewhere, other, 1.99, 0.9, [elsewhere], lexical=1.0, novelty=1.0, typed=True)
    settings = Settings(quote_lexical_weight=3.4, quote_novelty_weight=1.8, quote_type_weight=1.6)
    assert quote_score(answer, settings) == pytest.approx(0.5 + 3.4 * 0.6 + 1.8 * 0.5)
    assert quote_score(topic, settings) == pytest.approx(0.6 + 3.4 * 0.1 + 1.8 * 0.2)
    chosen = _select(index, [topic, outside, answer], settings)
    assert chosen == [answer, topic]  # the runner-up by passage score follows
    cosine_only = Settings(quote_lexical_weight=0.0, quote_novelty_weight=0.0, quote_type_weight=0.0)
    assert _select(index, [topic, outside, answer], cosine_only)[0] is topic


def test_the_first_quote_is_never_quoted_twice():
    # Zero vectors are "different" from everything (cosine 0 < 0.8): only identity stops a repeat.
    index = SimpleNamespace(sentence_vectors=np.zeros((2, 4), dtype=np.float32))
    hit = Hit(0, Chunk("a.txt", "A", "S", 0, 1, "x", ()), 1.0, rank=1)
    best, other = Statement(0, hit, 2.0, 0.5, [0]), Statement(1, hit, 1.99, 0.1, [1])
    assert _select(index, [best, other], Settings()) == [best, other]
    assert _select(index, [best], Settings()) == [best]


# ---- list introductions -----------------------------------------------------------


def test_a_list_introduction_is_quoted_with_its_items_verbatim(tiny_seeds, tmp_path):
    (tiny_seeds / "gamma.txt").write_text(LIST_DOC, encoding="utf-8")
    assistant = load(tiny_seeds, tmp_path, abstain_below=0.0)
    answer = assistant.ask("What are the key issues at the talks?")
    first = answer.citations[0]
    assert first.doc == "gamma.txt"
    assert first.quote == (
        "Key issues at the talks include:\n"
        "- The exchange of prisoners.\n"
        "- The demarcation line.\n"
        "  2. Supervision of the truce."
    )  # stops before the next non-item line
    assert_quotes_verbatim(assistant, answer)
    assert answer.answer.startswith(
        "Key issues at the talks include: The exchange of prisoners; The demarcation line; "
        "Supervision of the truce [1]"
    )


# ---- abstention and confidence ----------------------------------------------------


def test_an_off_topic_question_abstains_with_nothing_cited(tiny_seeds, tmp_path):
    assistant = load(tiny_seeds, tmp_path)  # the default threshold
    answer = assistant.ask("How do I bake sourdough bread at home?")
    assert answer.abstained and answer.citations == []
    assert answer.answer == NOT_IN_DOCUMENTS
    assert 0.0 <= answer.confidence < assistant.settings.abstain_below
    assert len(answer.retrieved) > 0  # what was considered is still reported


def test_the_confidence_is_a_logistic_of_the_weighted_features():
    assert confidence_from({}, {"bias": 0.0}) == 0.5
    assert confidence_from({"a": 1.0, "b": 0.5}, {"bias": -1.0, "a": 2.0, "b": 2.0}) == pytest.approx(
        1 / (1 + math.exp(-2.0))
    )
    assert confidence_from({"a": 1e9}, {"a": 1.0}) == pytest.approx(1.0)  # clipped, no overflow
    assert confidence_from({"a": -1e9}, {"a": 1.0}) == pytest.approx(0.0)


def test_answered_features_are_in_range(tiny):
    answer = tiny.ask(SIGNED)
    # Every weighed signal, the no-answer candidate's score (the chance every candidate
    # statement is wrong), and the cosines through the query adapter (the selector's).
    adapted = {"adapted_sentence_cosine", "adapted_passage_cosine"}
    assert set(answer.features) == set(DEFAULT_WEIGHTS) - {"bias"} | {"no_answer"} | adapted
    assert all(-1.0 <= v <= 1.0 for v in answer.features.values())
    assert answer.features["no_answer"] == round(1.0 - answer.confidence, 4)
    assert 0.0 <= answer.features["entity_gap"] <= 1.0
    assert 0.0 <= answer.confidence <= 1.0


def test_entity_gap_is_the_rarest_name_the_statement_leaves_out(tiny):
    index = tiny.index
    n = len(index.chunks)
    unseen = math.log(1 + (n + 0.5) / 0.5)
    kaesong_df = sum("kaesong" in chunk.text.lower() for chunk in index.chunks)
    assert 1 <= kaesong_df < n  # hand-worked idf of a name some passages hold
    kaesong = math.log(1 + (n - kaesong_df + 0.5) / (kaesong_df + 0.5))
    assert term_idf(index, "kaesong") == pytest.approx(kaesong)
    signing = "The armistice was signed at Panmunjom on July 27, 1953."
    # A date from a sentence about something else: the missing name decides.
    assert entity_gap(index, analyse_question("When did the talks move from Kaesong to Panmunjom?"), signing, {}) \
        == pytest.approx(kaesong / unseen)
    # A name no passage holds, in any form, is as rare as can be.
    assert entity_gap(index, analyse_question("When did Vietnamese troops enter the war?"), signing, {}) == 1.0
    # Every name in the statement, no expected type, or no names: no gap.
    assert entity_gap(index, analyse_question("When was the armistice signed at Panmunjom?"), signing, {}) == 0.0
    assert entity_gap(index, analyse_question("How did Vietnamese troops enter the war?"), signing, {}) == 0.0
    assert entity_gap(index, analyse_question("When was the armistice signed?"), signing, {}) == 0.0
    # A reason is about what the question names, like a date or a name is.
    assert entity_gap(index, analyse_question("Why did Vietnamese troops enter the war?"), signing, {}) == 1.0
    assert entity_gap(index, analyse_question("Explain why the talks left Kaesong"), signing, {}) \
        == pytest.approx(kaesong / unseen)
    assert entity_gap(index, analyse_question("Why was the armistice signed at Panmunjom?"), signing, {}) == 0.0
    # "Who" asks for an agent, which has a type too.
    assert entity_gap(index, analyse_question("Who met at Kaesong?"), signing, {}) == pytest.approx(kaesong / unseen)


def test_entity_gap_reads_a_name_in_the_form_the_documents_use(tiny):
    index = tiny.index
    signing = "The armistice was signed at Panmunjom on July 27, 1953."
    talks = "Talks began in July 1951."
    # A spelling fix counts as the name it fixes, present or missing.
    fixes = {"panmunjon": "panmunjom", "kaesnog": "kaesong"}
    assert entity_gap(index, analyse_question("When was it signed at Panmunjon?"), signing, fixes) == 0.0
    assert entity_gap(index, analyse_question("When did talks leave Kaesnog?"), talks, fixes) \
        == entity_gap(index, analyse_question("When did talks leave Kaesong?"), talks, {}) > 0.0
    # An alias is as rare as the name the documents use: "Pyongyang" is North Korea.
    assert entity_gap(index, analyse_question("When did Pyongyang sign?"), talks, {}) \
        == entity_gap(index, analyse_question("When did North Korea sign?"), talks, {})


def test_unknown_name_flags_a_name_the_documents_never_use(tiny):
    index = tiny.index
    assert unknown_name(index, analyse_question("Why did the Six-Party Talks fail?"), {}) == 1.0  # no "six"
    assert unknown_name(index, analyse_question("How did the Cheonan sinking affect Kaesong?"), {}) == 1.0
    assert unknown_name(index, analyse_question("Why were talks held at Kaesong?"), {}) == 0.0
    assert unknown_name(index, analyse_question("Why did Kaesnog matter?"), {"kaesnog": "kaesong"}) == 0.0
    assert unknown_name(index, analyse_question("Why did talks in Kaesong-Panmunjom matter?"), {}) == 0.0  # both parts
    assert unknown_name(index, analyse_question("why did talks fail?"), {}) == 0.0  # no names
    assert unknown_name(index, analyse_question("Why did the POW-exchange stall?"), {}) == 0.0  # a part by its alias
    # Of numbers only years count: a year no passage holds, not a figure.
    assert unknown_name(index, analyse_question("What happened at Kaesong in 2010?"), {}) == 1.0
    assert unknown_name(index, analyse_question("What happened at Kaesong in 1953?"), {}) == 0.0
    assert unknown_name(index, analyse_question("Were 250 prisoners exchanged?"), {}) == 0.0


def test_mentions_matches_a_name_at_the_start_of_a_word():
    assert mentions("the korean war", "Korea")
    assert not mentions("military talks", "Il")  # not inside another word
    assert mentions("the demilitarized zone", "DMZ")  # by the acronym's expansion
    assert mentions("china intervened", "Beijing")  # by its alias
    assert not mentions("the talks at kaesong", "Panmunjom")


def test_a_lower_case_question_gets_the_documents_names_back(tiny):
    names = tiny.index.proper_names
    assert names["kaesong"] == "Kaesong" and names["april"] == "April"
    assert "armistice" not in names and "talks" not in names  # also written in lower case
    question = recase("when did the talks move from kaesong to panmunjom?", names)
    assert question == "when did the talks move from Kaesong to Panmunjom?"
    # A capital first letter (a phone keyboard's) does not stop it; a capital past it does.
    assert recase("When did talks move from kaesong?", names) == "When did talks move from Kaesong?"
    assert recase("When did Talks move from kaesong?", names) == "When did Talks move from kaesong?"
    # The documents' own form comes back, after a spelling fix, possessive dropped.
    assert recase("when was the dmz set up", {"dmz": "DMZ"}) == "when was the DMZ set up"
    assert recase("when did kaesnog's talks start", names, {"kaesnog": "kaesong"}) \
        == "when did Kaesong talks start"
    # "I" and sentence openers are no names; a name the aliases know comes back too.
    assert recase("Where can I read about kaesong?", names) == "Where can I read about Kaesong?"
    assert recase("when did chinese troops enter?", {"chinese": "Chinese"}) \
        == "when did Chinese troops enter?"


def test_a_lower_case_question_has_the_entity_gap_of_its_cased_form(tiny):
    lower = tiny.ask("when did the talks move from kaesong to panmunjom?")
    cased = tiny.ask("When did the talks move from Kaesong to Panmunjom?")
    assert lower.features["entity_gap"] == cased.features["entity_gap"]
    assert 0.0 < lower.features["entity_gap"] <= 1.0
    # A name the aliases know, typed in lower case: "chinese" is China.
    lower = tiny.ask("when did chinese troops reach kaesong?")
    cased = tiny.ask("When did Chinese troops reach Kaesong?")
    assert lower.features["entity_gap"] == cased.features["entity_gap"] > 0.0


def test_a_misspelt_alias_is_fixed_to_the_alias(tiny):
    answer = tiny.ask("When did Beijng sign the armistice?")
    assert ("beijng", "beijing") in answer.query.corrections
    assert "(China)" in answer.query.text


# ---- answer types -----------------------------------------------------------------


@pytest.mark.parametrize(
    "question, answer_type",
    [
        ("When was the armistice signed?", "date"),
        ("In which year did the talks begin?", "date"),
        ("How many prisoners were exchanged?", "number"),
        ("How long did the negotiations last?", "number"),
        ("How far back does the dialogue go?", "date"),  # when, not how much
        ("How long ago did the talks begin?", "date"),
        ("How far is Kaesong from Seoul?", "number"),
        ("How far back did the UN forces retreat?", "number"),  # a distance
        ("Where did the talks begin?", "place"),
        ("In which city was the armistice signed?", "place"),
        ("Who led North Korea during the war?", "agent"),
        ("Which general signed for the UN?", "person"),
        ("Who headed the delegation?", "person"),  # what only a person does
        ("Who succeeded him as leader?", "person"),
        ("Who signed the treaty on behalf of the alliance?", "person"),
        ("Who signed the treaty?", "agent"),  # countries sign too
        ("Who were the parties to the armistice?", None),  # "who" asking for countries
        ("What is the Sunshine Policy?", None),
        ("", None),
    ],
)
def test_expected_type(question, answer_type):
    assert expected_type(question) == answer_type


@pytest.mark.parametrize(
    "sentence, answer_type, matches",
    [
        ("The armistice was signed on July 27, 1953.", "date", True),
        ("Talks resumed in the 1990s.", "date", True),
        ("The talks were slow.", "date", False),
        ("Some 75,000 prisoners went home.", "number", True),
        ("Three rounds of talks failed.", "number", False),
        ("The talks were slow.", "number", False),
        ("Talks began at Kaesong.", "place", True),
        ("Talks began in July.", "place", False),  # a month is not a place
        ("North Korea, led by Kim Il-sung, joined the talks.", "person", True),
        ("The United States and China agreed.", "person", False),
        ("Envoys of the United Nations Command and its Forces met.", "person", False),
        ("Anything at all.", None, True),
    ],
)
def test_matches_type(sentence, answer_type, matches):
    assert matches_type(sentence, answer_type) is matches
