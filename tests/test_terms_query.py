"""terms.py, aliases.py, query.py: analysis, spelling, aliases, follow-ups, the Query.

Hand-worked examples; the fake embedder stands in for the model. Does not
retrieve (test_retrieval_answer.py does).
"""

from __future__ import annotations

import numpy as np
import pytest

from assistant.search.aliases import expand_aliases
from assistant.search.query import is_followup, make_query, resolve_followup, strip_meta
from assistant.text.terms import STOPWORDS, correct_terms, stem, terms, words

from conftest import FakeEmbedder

# ---- terms ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, expected",
    [
        ("The negotiations were negotiated by negotiators", ["negoti", "negoti", "negoti"]),
        ("Prisoners of war's repatriation", ["prison", "war", "repatri"]),
        ("Signed on July 27, 1953", ["sign", "juli", "27", "1953"]),
        ("What did the documents say about it?", []),  # all stopwords
        ("", []),
        ("🕊 peace", ["peac"]),
        ("Kim Il-sung’s talks", ["kim", "il", "sung", "talk"]),  # curly possessive dropped
        ("a b 7 x", ["7"]),  # one-letter words go, digits stay
    ],
)
def test_terms(text, expected):
    assert terms(text) == expected


def test_words_lowercases_and_drops_possessives():
    assert words("Korea's DMZ and Seoul’s envoys") == ["korea", "dmz", "and", "seoul", "envoys"]


def test_question_words_are_stopwords_but_content_words_are_not():
    assert {"who", "when", "where", "what", "which", "how", "why", "tell", "explain"} <= STOPWORDS
    assert not {"armistice", "north", "south", "war", "peace", "treaty"} & STOPWORDS


def test_stem_meets_inflections():
    assert stem("negotiated") == stem("negotiations") == stem("negotiate")
    assert stem("signed") == stem("signing") == "sign"


# ---- spelling ---------------------------------------------------------------------


CORPUS_WORDS = ["armistice", "signed", "negotiations", "panmunjom", "prisoners", "seoul", "talk"]
KNOWN = {stem(w) for w in CORPUS_WORDS}


@pytest.mark.parametrize(
    "query_words, expected",
    [
        (["armistace"], {"armistace": "armistice"}),
        (["panmunjon", "negotiatons"], {"panmunjon": "panmunjom", "negotiatons": "negotiations"}),
        (["armistice", "signed"], {}),  # known stems are left alone
        (["prisoner"], {}),  # same stem as "prisoners"
        (["amnesty"], {}),  # too far from anything (best ratio 0.5 < 0.8)
        (["armis"], {}),  # 5 letters but not close enough to a corpus word
        (["seol"], {"seol": "seoul"}),  # four letters are enough
        (["tank"], {}),  # four letters, nothing close
        (["tlk"], {}),  # under four letters (0.86 from "talk")
        (["1953x"], {}),  # not alphabetic
        (["whatever"], {}),  # a stopword
    ],
)
def test_correct_terms(query_words, expected):
    assert correct_terms(query_words, known_stems=KNOWN, surface_words=CORPUS_WORDS) == expected


def test_a_word_the_dictionary_knows_is_not_corrected():
    # "signer" is one edit from the corpus's "signed": English, so it stays as typed.
    assert correct_terms(["signer"], known_stems=KNOWN, surface_words=CORPUS_WORDS) == {"signer": "signed"}
    english = {"signer"}.__contains__
    assert correct_terms(["signer", "armistace"], known_stems=KNOWN, surface_words=CORPUS_WORDS,
                         is_word=english) == {"armistace": "armistice"}  # fmt: skip


@pytest.mark.slow
@pytest.mark.parametrize(
    "word, known",
    [("table", True), ("landing", True), ("northern", True), ("tougher", True), ("soften", True),
     ("armistace", False), ("perimiter", False), ("fortifed", False), ("buildng", False),
     ("panmunjon", False), ("declaraton", False)],
)  # fmt: skip
def test_the_model_vocabulary_tells_english_from_typos(real_assistant, word, known):
    assert real_assistant.embedder.is_word(word) is known


@pytest.mark.slow
def test_everyday_words_missing_from_the_corpus_are_not_respelt(real_assistant):
    answer = real_assistant.ask("Where did they take place, and who sat at the table?",
                                ["When did the armistice negotiations first get underway?"])  # fmt: skip
    assert answer.query.corrections == ()
    assert real_assistant.ask("When was the armistace signed?").query.corrections == (("armistace", "armistice"),)


# ---- aliases ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, expected",
    [
        ("What did Pyongyang want?", "What did Pyongyang want? (North Korea)"),
        ("Did the US and the UN agree?", "Did the US and the UN agree? (United States; United Nations)"),
        ("When was the truce signed?", "When was the truce signed? (armistice ceasefire)"),
        ("Where is the DMZ?", "Where is the DMZ? (Demilitarized Zone DMZ)"),
        ("What did the Chinese and Beijing want?", "What did the Chinese and Beijing want? (China)"),
        ("tell us about it", "tell us about it"),  # lower-case "us" is a pronoun
        ("Pyongyang, North Korea", "Pyongyang, North Korea"),  # already named
        ("When was the armistice signed?", "When was the armistice signed?"),
        ("", ""),
    ],
)
def test_expand_aliases(text, expected):
    assert expand_aliases(text) == expected


# ---- follow-ups -------------------------------------------------------------------


@pytest.mark.parametrize(
    "question, followup",
    [
        ("And who led the South?", True),  # a connector
        ("What about China?", True),
        ("What did they agree to?", True),  # a pronoun
        ("Why?", True),  # no content words
        ("Who led North Korea during the war?", False),
        ("Which countries took part in the armistice negotiations?", False),
        ("What role did the United Nations Command play in the talks?", False),
    ],
)
def test_is_followup(question, followup):
    assert is_followup(question) is followup


def test_resolve_followup_leans_on_the_last_user_turn():
    history = ["When was the armistice signed?", "Who led North Korea during the war?"]
    assert resolve_followup("And who led the South?", history) == history[-1]
    assert resolve_followup("And who led the South?", [*history, "  ", None]) == history[-1]
    assert resolve_followup("And who led the South?", []) is None
    assert resolve_followup("Which countries took part in the armistice negotiations?", history) is None


def test_the_query_for_a_followup_includes_the_earlier_turn():
    embedder = FakeEmbedder()
    earlier = "Who led North Korea during the war?"
    query = make_query("And who led the South?", [earlier], encode=embedder.encode,
                       known_stems={"led", "north", "korea", "war", "south"},
                       surface_words=["korea", "south"])  # fmt: skip
    assert query.followup_of == earlier
    assert query.text == f"{earlier} And who led the South?"
    assert query.terms == ("led", "north", "korea", "war", "led", "south")
    assert query.focus_terms == ("led", "south")  # the question's own terms
    # One encode call: with the context, and the question's own words alone.
    assert embedder.encoded == [query.text, "And who led the South?"]
    assert np.isclose(np.linalg.norm(query.vector), 1.0)
    assert np.array_equal(query.own_vector, embedder.encode(["And who led the South?"])[0])


def test_a_standalone_question_ignores_history():
    embedder = FakeEmbedder()
    question = "Which countries took part in the armistice negotiations?"
    query = make_query(question, ["Who led North Korea during the war?"], encode=embedder.encode,
                       known_stems=set(), surface_words=[])  # fmt: skip
    assert query.followup_of is None and query.text == question and query.own_vector is None
    assert embedder.encoded == [question]


@pytest.mark.parametrize(
    "question, expected",
    [
        ("According to the text, when was the armistice signed?", "when was the armistice signed?"),
        ("How does the peace-talks article describe the DMZ?", "the DMZ?"),
        ("What does the document say about prisoners of war?", "prisoners of war?"),
        ("What were the main terms, as described in the article?", "What were the main terms?"),
        ("What does the article say?", "What does the article say?"),  # nothing else left
        ("What does the text of the armistice say?", "What does the text of the armistice say?"),
        ("In the analysis section, how is the ceasefire described?",  # a section is a subject
         "In the analysis section, how is the ceasefire described?"),
    ],
)  # fmt: skip
def test_strip_meta_drops_talk_about_the_documents(question, expected):
    assert strip_meta(question) == expected


def test_the_query_embeds_the_question_without_talk_about_the_documents():
    embedder = FakeEmbedder()
    query = make_query("According to the article, who led the South?", [], encode=embedder.encode,
                       known_stems={"led", "south"}, surface_words=[])  # fmt: skip
    assert embedder.encoded == ["who led the South?"]
    assert query.terms == query.focus_terms == ("led", "south")


def test_the_query_knows_which_words_stand_for_a_documents_name():
    query = make_query("What did Beijing and the UN want?", [], encode=FakeEmbedder().encode,
                       known_stems=set(), surface_words=[])  # fmt: skip
    assert query.aliased_terms == ("beij", "un")


def test_the_query_fixes_spelling_and_adds_aliases_for_both_searches():
    embedder = FakeEmbedder()
    query = make_query("When was the armistace signed in Pyongyang?", [], encode=embedder.encode,
                       known_stems={"armistic", "sign"}, surface_words=["armistice", "signed"])  # fmt: skip
    assert query.corrections == (("armistace", "armistice"),)
    assert query.text == "When was the armistice signed in Pyongyang? (North Korea)"  # embedded
    assert query.terms == ("armistic", "sign", "pyongyang", "north", "korea")  # BM25
    assert query.question == "When was the armistace signed in Pyongyang?"  # as typed


def test_a_misspelt_name_is_fixed_before_its_alias_is_added():
    query = make_query("What did Beijng want?", [], encode=FakeEmbedder().encode,
                       known_stems={"want"}, surface_words=["beijing", "wanted"])  # fmt: skip
    assert query.corrections == (("beijng", "beijing"),)
    assert query.text == "What did beijing want? (China)"
    assert "china" in query.terms


def test_a_follow_up_to_a_misspelt_turn_gets_the_fix_and_the_alias():
    query = make_query("And why?", ["What did Beijng want?"], encode=FakeEmbedder().encode,
                       known_stems={"want"}, surface_words=["beijing", "wanted"])  # fmt: skip
    assert query.text == "What did beijing want? And why? (China)"


def test_a_word_spelt_as_its_target_is_not_a_fix():
    assert correct_terms(["kremlin"], known_stems=set(), surface_words=["kremlin"]) == {}
