"""Answer types and question entities: the rules behind two confidence signals."""

import pytest

from assistant.answer.kinds import entity_coverage, matches_type, name_forms

from assistant.search.analysis import expected_type, question_entities


@pytest.mark.parametrize(
    "question, expected",
    [
        ("What was the total death toll of the Korean War?", "number"),
        ("how wide is the DMZ in kilometres", "number"),
        ("Which South Korean president introduced the Sunshine Policy?", "person"),
        ("Who were the main parties at the table?", None),  # parties, not a person
        ("In which city was the 2019 summit held?", "place"),
        ("In which cities were the 2019 summits held?", "place"),  # plurals ask the same
        ("In which years did the summits take place?", "date"),
        ("In what areas have the talks sought cooperation?", None),  # fields, not places
    ],
)
def test_expected_type(question, expected):
    assert expected_type(question) == expected


@pytest.mark.parametrize(
    "sentence, answer_type, expected",
    [
        ("It was signed on July 27, 1953.", "number", False),  # a date is not a count
        ("About 300,000 troops crossed.", "number", True),
        ("The front settled at the 38th parallel.", "number", False),
        ("Two summits followed.", "number", False),  # small number words are too common
        ("Thousands of troops crossed.", "number", True),
        ("The Korean Armistice Agreement was signed on July 27, 1953.", "person", False),
        ("North Korea, led by Kim Il-sung, held firm.", "person", True),
        ("The talks were held at the village of Kaesong.", "place", True),  # "<kind> of <Name>"
        ("The talks were held at the village.", "place", False),
        ("Officials from the United Nations Command met.", "place", False),  # not a place
        ("Envoys from the Security Council met.", "place", False),
        ("Troops from the United States landed.", "place", True),  # a country is
        # A list item's first word is capitalised because it opens the item.
        ("Key elements included:\n- Creation of a buffer zone.\n- Release of prisoners.", "person", False),
        ("Key elements included:\n1. Frequency of drills.", "person", False),
        ("Key elements included:\n- Talks led by Kim Il-sung.", "person", True),
    ],
)
def test_matches_type(sentence, answer_type, expected):
    assert matches_type(sentence, answer_type) is expected


def test_question_entities_skip_the_first_word_and_stopwords():
    assert question_entities("When did the Six-Party Talks collapse in 2009?") == [
        "Six-Party", "Talks", "2009"
    ]  # fmt: skip


def test_question_entities_skip_every_sentence_opener():
    assert question_entities("What held up the talks? Give me the list. Then Kaesong.") == ["Kaesong"]
    # An abbreviation's full stop ends no sentence, and is no name itself.
    assert question_entities("What did the U.S. Army and Gen. Ridgway do?") == ["Army", "Ridgway"]


def test_question_entities_take_whole_numbers_only():
    assert question_entities("What happened in the 1950-53 war and in 2010?") == ["1950", "2010"]
    assert question_entities("Were 250,000 troops there in the '50s?") == []


def test_name_forms_alias_a_spelling_fix():
    assert name_forms("Beijng", {"beijng": "beijing"}) == {"Beijng", "beijing", "China"}
    assert name_forms("DMZ") == {"DMZ", "Demilitarized Zone DMZ"}
    assert name_forms("Congress") == {"Congress"}  # no plural "s" to take off
    assert name_forms("Koreas") == {"Koreas", "Korea"}


def test_question_entities_drop_possessives_so_aliases_and_names_match():
    assert question_entities("What was Washington's goal and Kim Il-sung’s aim?") == [
        "Washington", "Kim", "Il-sung"
    ]  # fmt: skip
    assert entity_coverage(question_entities("What was Washington's goal?"), "The United States aimed to win.") == 1.0


@pytest.mark.parametrize(
    "question, text, expected",
    [
        ("What did Beijing want?", "China sought influence.", 1.0),  # an alias counts
        ("When did the Vietnam War end?", "The Korean War ended in 1953.", 0.5),
        ("How fortified is the border?", "anything", 1.0),  # no entities
        ("Where is Panmunjon?", "talks at Panmunjom", 1.0),  # a spelling fix counts
    ],
)
def test_entity_coverage(question, text, expected):
    corrections = {"panmunjon": "panmunjom"}
    assert entity_coverage(question_entities(question), text, corrections) == expected


@pytest.mark.parametrize(
    "sentence, answer_type, question, expected",
    [
        ("It was signed on July 27, 1953.", "date", "How many met before the 1953 signing?", True),
        ("The talks ended in 1953.", "date", "What happened before the 1953 signing?", False),
        ("The Korean Armistice Agreement was signed.", "agent",
         "Who signed the Korean Armistice Agreement?", False),
        ("The United States led the coalition.", "agent", "Who led the coalition?", True),
    ],
)  # fmt: skip
def test_what_the_question_names_does_not_count_as_the_answer(sentence, answer_type, question,
                                                               expected):  # fmt: skip
    assert matches_type(sentence, answer_type, question) is expected


def test_novelty_counts_what_neither_question_nor_heading_says():
    from types import SimpleNamespace

    from assistant.answer.compose import novelty
    from assistant.text.terms import terms

    query = SimpleNamespace(terms=tuple(terms("Which powers took part in the Korean War talks?")))
    heading = "The Role of International Powers"
    restating = "International powers influenced the talks during the Korean War."
    informative = "The key players included the United States, the Soviet Union and China."
    assert novelty(restating, query, heading) < 0.3 < novelty(informative, query, heading)
    assert novelty("", query, heading) == 0.0
