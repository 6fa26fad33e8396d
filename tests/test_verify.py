"""Answer verification: what a question asks (its kind and relation), whether a statement
states it (a span of that kind, tied to the relation), the short answer inside the quote,
why-answers that run on, and the metrics that judge short answers.

Each failure class is pinned on a tiny corpus written here (the fake embedder; the real
entity model), never with a question of the shipped set.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from assistant import Assistant
from assistant.answer.compose import explained_rows
from assistant.answer.confidence import DEFAULT_WEIGHTS, type_gate
from assistant.answer.selection import selection_score, selector_names
from assistant.answer.verify import check_statement, short_answer, typed_spans
from assistant.evaluation.fitting import fit_selector
from assistant.evaluation.metrics import QuestionResult, exact_match, squad_tokens, token_f1
from assistant.evaluation.suite import corpus_questions, load_suite
from assistant.search.analysis import analyse_question
from assistant.search.query import pooled_without, relation_pieces
from assistant.web.formatting import ANSWER_LABEL, QUOTE_LABEL, export_markdown, format_answer_message, highlight_quote

from conftest import assistant_over

DOC = (
    "Talks on a ceasefire\n"
    "The talks were held at the village of Kaesong in July 1951. "
    "The armistice was signed at Panmunjom on July 27, 1953. "
    "Japan was among the countries that watched the talks closely.\n"
    "Why the talks stalled\n"
    "The talks stalled for months over prisoners of war. "
    "Each side feared that the other would keep its men.\n"
    "A new paragraph says something else entirely.\n"
)


@pytest.fixture
def corpus(tmp_path):
    return assistant_over(tmp_path, {"talks.txt": DOC}, abstain_below=0.0)


def row_of(assistant, words: str) -> int:
    return next(i for i, (_, s) in enumerate(assistant.index.sentences) if words in s.text)


def query(assistant, question: str):
    return assistant.queries([question])[0]


@pytest.mark.parametrize(
    "question, kind, relation",
    [
        ("Where was the armistice signed?", "place", ("armistic", "sign")),
        ("Who signed the armistice?", "agent", ("sign", "armistic")),
        ("What time of day was the armistice signed?", "time", ("armistic", "sign")),
        ("What is the capital of Japan?", "definition", ("capit",)),
        ("Why did the talks stall?", "reason", ("talk", "stall")),
        ("How did the prisoners get home?", "process", ("prison", "get", "home")),
        ("Did the war end with a treaty?", "yes-no", ("war", "end", "treati")),
        ("How many prisoners were returned?", "number", ("prison", "return")),
        ("what exact day did the talks start", "date", ("talk", "start")),
        ("armistice signing date", "date", ("armistic", "sign")),
        ("", None, ()),
    ],
)
def test_what_a_question_asks(question, kind, relation):
    asked = analyse_question(question)
    assert (asked.kind, asked.relation) == (kind, relation)


def test_the_question_names_are_not_the_relation():
    asked = analyse_question("What is the capital of Japan?")
    assert asked.entities == ("Japan",) and asked.relation_words == ("capital",)


def test_a_place_for_where_is_verified_only_where_the_relation_is(corpus):
    where = query(corpus, "Where was the armistice signed?")
    held = check_statement(corpus.index, [row_of(corpus, "Kaesong")], corpus._state.texts, where)
    signed = check_statement(corpus.index, [row_of(corpus, "Panmunjom")], corpus._state.texts, where)
    # Kaesong is a place, but the sentence says nothing of a signing or an armistice.
    assert held.kind_span == 1.0 and held.relation == 0.0
    assert signed.kind_span == 1.0 and signed.relation == 1.0
    assert signed.short is not None and signed.short.text == "Panmunjom"


def test_a_time_of_day_is_not_answered_by_a_date(corpus):
    asked = query(corpus, "What time of day was the armistice signed?")
    check = check_statement(corpus.index, [row_of(corpus, "Panmunjom")], corpus._state.texts, asked)
    assert check.kind_span == 0.0 and check.short is None
    # ... and a statement of the wrong kind is gated down, whatever the weights say.
    assert type_gate(0.9, {"kind_missed": 1.0, "answer_type": 1.0}, 0.5) == 0.45
    assert type_gate(0.9, {"kind_missed": 0.0, "answer_type": 1.0}, 0.5) == 0.9


def test_a_general_question_naming_a_mentioned_country_misses_the_relation(corpus):
    asked = query(corpus, "What is the capital of Japan?")
    check = check_statement(corpus.index, [row_of(corpus, "Japan")], corpus._state.texts, asked)
    assert check.relation == 0.0  # (how near its words come in meaning needs the real model)


def test_the_short_answer_is_the_dates_span_in_the_original_text(corpus):
    answer = corpus.ask("When was the armistice signed?")
    assert not answer.abstained
    short = answer.short_answer
    assert short is not None and short.text == "July 27, 1953"
    assert DOC[short.start : short.end] == short.text and short.doc == "talks.txt"
    assert answer.to_dict()["short_answer"] == {"text": "July 27, 1953", "doc": "talks.txt",
                                                "start": short.start, "end": short.end}


@pytest.mark.parametrize("question", ["Where was the armistice signed?", "When was the armistice signed?"])
def test_a_span_of_the_asked_kind_counts_as_tied_only_beside_the_relation(corpus, question):
    """kind_tied: a place (or date) in a statement that says "signed" is tied to the
    question; the same kind of span in a statement on something else is not."""
    tied = corpus.ask(question).features
    assert tied["kind_met"] == 1.0 and tied["kind_tied"] == 1.0
    untied = corpus.ask(question.replace("armistice signed", "treaty ratified")).features
    assert untied["kind_met"] == 1.0 and untied["kind_tied"] == 0.0 == untied["relation_coverage"]


def test_a_question_after_several_gets_them_all_as_listed(tmp_path):
    """"Which countries ...?" is answered by the whole list of them, as the text lists
    them; a question after one gets one."""
    text = ("Who took part\nThe delegations of the United States, North Korea and China met at Kaesong. "
            "Each delegation reported home every evening.\n")  # fmt: skip
    assistant = assistant_over(tmp_path, {"parties.txt": text}, abstain_below=0.0)
    several = assistant.ask("Which countries sent delegations to Kaesong?").short_answer
    assert several is not None and several.text == "the United States, North Korea and China"
    assert text[several.start : several.end] == several.text
    one = assistant.ask("Which country sent a delegation to Kaesong?").short_answer
    assert one is not None and one.text in ("the United States", "North Korea", "China")


@pytest.mark.parametrize(
    "question, kind, several",
    [
        ("Which northern premier travelled to Seoul?", "person", False),
        ("Which admiral led the delegation?", "person", False),
        ("What does the author say about the talks?", "thing", False),  # the title is no answer
        ("What did the ambassador say?", "thing", False),
        ("Which countries took part?", "agent", True),
        ("Who were the negotiators?", "person", True),
        ("Who led the delegation?", "agent", False),
    ],
)
def test_titles_ask_for_a_person_and_plurals_for_several(question, kind, several):
    asked = analyse_question(question)
    assert (asked.kind, asked.several) == (kind, several)


def test_a_date_the_question_names_is_no_answer(corpus):
    asked = analyse_question("What happened in July 1951?")
    assert asked.kind == "thing" and not typed_spans(corpus.index, [row_of(corpus, "Kaesong")],
                                                     corpus._state.texts, asked)
    dated = analyse_question("When were the talks held, after July 1951?")
    spans = typed_spans(corpus.index, [row_of(corpus, "Kaesong")], corpus._state.texts, dated)
    assert [s.text for s in spans] == []  # its only date is the one the question names
    assert short_answer(corpus.index, [row_of(corpus, "Panmunjom")], corpus._state.texts, dated).text \
        == "July 27, 1953"


def test_a_why_answer_takes_the_next_sentence_of_its_paragraph(corpus):
    first = row_of(corpus, "stalled for months")
    rows = explained_rows(corpus.index, [first], corpus._state.texts)
    assert [corpus.index.sentences[r][1].text[:9] for r in rows] == ["The talks", "Each side"]
    # never across a paragraph break
    last = row_of(corpus, "Each side")
    assert explained_rows(corpus.index, [last], corpus._state.texts) == [last]
    answer = corpus.ask("Why did the talks stall?")
    assert "Each side feared" in answer.citations[0].quote


@pytest.mark.parametrize(
    "prediction, gold, em, f1",
    [
        ("July 27, 1953", "27 July 1953", 0.0, 1.0),  # the same words in another order
        ("The Panmunjom", "Panmunjom", 1.0, 1.0),  # articles and case do not count
        ("the village of Panmunjom", "Panmunjom", 0.0, 0.5),  # P 1/2, R 1
        ("", "Panmunjom", 0.0, 0.0),
        ("Kaesong", "Panmunjom", 0.0, 0.0),
    ],
)
def test_short_answer_metrics_are_squads(prediction, gold, em, f1):
    assert exact_match(prediction, gold) == em
    assert token_f1(prediction, gold) == pytest.approx(f1)
    assert squad_tokens("The U.S.-led talks!") == ["u", "s", "led", "talks"]


def test_the_short_answer_is_shown_first_and_marked_inside_the_quote(corpus):
    answer = corpus.ask("When was the armistice signed?")
    message = format_answer_message(answer)
    assert message.startswith("**July 27, 1953**\n\n")
    citation = answer.citations[0]
    spans = highlight_quote(citation.passage, citation.quote, answer.short_answer.text)
    assert ("July 27, 1953", ANSWER_LABEL) in spans and any(label == QUOTE_LABEL for _, label in spans)
    assert "**Short answer:** July 27, 1953" in export_markdown(answer)


def test_a_suite_relabels_what_added_documents_answer(tmp_path):
    questions = tmp_path / "q.jsonl"
    questions.write_text(json.dumps({"id": "u1", "question": "Where was it signed?", "answerable": False,
                                     "evidence": [], "split": "dev"}) + "\n", encoding="utf-8")
    relabel = tmp_path / "answered.jsonl"
    relabel.write_text(json.dumps({"id": "u1", "evidence": ["signed at Panmunjom"], "answer": "Panmunjom"})
                       + "\n", encoding="utf-8")
    suite = tmp_path / "suite.json"
    suite.write_text(json.dumps({"corpora": [
        {"name": "one", "documents": ["docs"], "questions": ["q.jsonl"]},
        {"name": "two", "documents": ["docs", "more"], "questions": ["q.jsonl"], "relabel": "answered.jsonl"},
    ]}), encoding="utf-8")  # fmt: skip
    one, two = load_suite(suite)
    assert not corpus_questions(one)[0].answerable
    relabelled = corpus_questions(two)[0]
    assert relabelled.answerable and relabelled.evidence == ("signed at Panmunjom",)
    assert relabelled.answer == "Panmunjom"


def test_a_suite_adds_the_evidence_an_added_document_also_states(tmp_path):
    rows = [{"id": "a1", "question": "When was it signed?", "answerable": True, "evidence": ["on July 27, 1953"],
             "answer": "July 27, 1953", "split": "dev"},
            {"id": "u1", "question": "Who translated?", "answerable": False, "evidence": [], "split": "dev"}]
    (tmp_path / "q.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    also = [{"id": "a1", "evidence": ["on 27 July 1953"]}, {"id": "a1", "evidence": ["the July 1953 signing"]},
            {"id": "u1", "evidence": ["an interpreter"]}]  # not answerable: an "also" line adds nothing
    (tmp_path / "also.jsonl").write_text("".join(json.dumps(r) + "\n" for r in also), encoding="utf-8")
    suite = tmp_path / "suite.json"
    suite.write_text(json.dumps({"corpora": [
        {"name": "one", "documents": ["docs"], "questions": ["q.jsonl"]},
        {"name": "two", "documents": ["docs", "more"], "questions": ["q.jsonl"], "also_stated": "also.jsonl"},
    ]}), encoding="utf-8")  # fmt: skip
    one, two = load_suite(suite)
    assert corpus_questions(one)[0].evidence == ("on July 27, 1953",)
    dated, untouched = corpus_questions(two)
    assert dated.evidence == ("on July 27, 1953", "on 27 July 1953", "the July 1953 signing")
    assert dated.answer == "July 27, 1953" and not untouched.answerable and untouched.evidence == ()


def test_the_relations_word_pieces_are_found_and_pooled_out():
    pieces = {1: "where", 2: "was", 3: "the", 4: "arm", 5: "##istic", 6: "##e", 7: "sign", 8: "##ed", 9: "?"}
    ids = list(pieces)
    # "armistice" and "signed" are the relation; each is its word pieces' positions
    assert relation_pieces(ids, ("armistic", "sign"), pieces.get) == [[3, 4, 5], [6, 7]]
    assert relation_pieces(ids, (), pieces.get) == []
    vectors = np.eye(9, dtype=np.float32)
    whole, rest = pooled_without((ids, vectors), [[3, 4, 5], [6, 7]])
    assert np.allclose(whole, np.ones(9) / 3.0)  # the mean of nine unit axes, unit length
    assert np.allclose(rest, np.array([1, 1, 1, 0, 0, 0, 0, 0, 1]) / 2.0)
    assert pooled_without((ids, vectors), []) is None


def test_the_selector_chooses_the_quote_and_no_answer_is_every_candidate_wrong(corpus):
    """The top candidates are each verified and scored by the selector (fitted by
    --calibrate; none here): its choice is quoted, the confidence is that statement's,
    and the no-answer candidate's score is the chance that all are wrong."""
    question = "When was the armistice signed?"
    alone = corpus.ask(question)
    assert "selected" not in alone.features
    assert alone.features["no_answer"] == round(1.0 - alone.confidence, 4)
    assert len(alone.candidates) >= 3
    assert all(set(selector_names(DEFAULT_WEIGHTS)) <= set(inputs) for inputs, _ in alone.candidates)
    assert alone.citations[0].quote == alone.candidates[0][1]  # the first choice, weighed first
    # A selector that prefers the candidate the first choice scored lowest.
    weights = {"bias": 0.0, "statement_score": -4.0}
    choosing = Assistant(corpus.index, list(corpus._state.documents.values()), corpus.embedder,
                         corpus.settings.with_(selector=weights))  # fmt: skip
    answer = choosing.ask(question)
    last = min(alone.candidates, key=lambda c: c[0]["statement_score"])[1]
    assert answer.citations[0].quote == last and last != alone.citations[0].quote
    # The confidence signals are the quoted statement's, not the first choice's.
    signals = {k: answer.features[k] for k in DEFAULT_WEIGHTS if k != "bias"}
    quoted = next(inputs for inputs, text in alone.candidates if text == last)
    assert signals == {k: quoted[k] for k in signals}
    assert signals != {k: alone.features[k] for k in signals}
    scores = [selection_score(inputs, weights) for inputs, _ in alone.candidates]
    assert answer.features["selected"] == round(max(scores), 4)
    assert answer.features["no_answer"] == round(float(np.prod([1.0 - s for s in scores])), 4)


def test_the_selector_is_fitted_on_the_statements_that_hold_the_evidence():
    """--calibrate's selector learns what the right candidates share (here: a span of the
    asked kind); with no right candidate there is nothing to fit."""
    def result(kinds_and_labels):
        return QuestionResult(id="q", question="q", answerable=True, split="dev", abstained=False,
                              confidence=0.5, answer="", latency_ms=0.0, relevant=[], relevant_total=0,
                              citation_relevant=[], quote_verbatim=[], supported=False,
                              candidates=[({"kind_met": k, "statement_score": 1.0 / (1 + i)}, right)
                                          for i, (k, right) in enumerate(kinds_and_labels)])  # fmt: skip

    results = [result([(0.0, False), (1.0, True), (0.0, False)]), result([(1.0, True), (0.0, False)]),
               result([(0.0, False), (0.0, False), (1.0, True)]), result([(1.0, False), (0.0, False)])]
    weights = fit_selector(results)
    assert set(weights) == {"bias", *selector_names(DEFAULT_WEIGHTS)}
    assert weights["kind_met"] > 0.0
    assert fit_selector([result([(1.0, False), (0.0, False)])]) is None


def test_an_abstention_lists_the_closest_passages_to_check(corpus):
    strict = Assistant(corpus.index, list(corpus._state.documents.values()), corpus.embedder,
                       corpus.settings.with_(abstain_below=1.0))  # fmt: skip
    answer = strict.ask("Where were the talks held?")
    assert answer.abstained and answer.citations == [] and 1 <= len(answer.closest) <= 3
    for c in answer.closest:  # each a lookup reference to a whole passage, which resolves
        looked_up = strict.cite(c.id)
        assert not looked_up.stale and looked_up.quote == DOC[c.start : c.end]
    assert [c["id"] for c in answer.to_dict()["closest"]] == [c.id for c in answer.closest]
    message = format_answer_message(answer)
    assert "closest passages, for you to check (not an answer)" in message
    assert message.count("](?cite=") == len(answer.closest)


PARTS = (
    "Leaders and figures\n"
    "The summit was cancelled when the old leader died on July 8. "
    "The leader had been born in 1912 in a village near the capital. "
    "On 18 June 1953 prisoners broke out of the camps near the coast. "
    "The North shot down an EC-121 plane over the sea. "
    "The guards counted 27,000 prisoners who broke out of the camps. "
    "The two sides signed an accord on exchanges in 1991. "
    "They called the 1991 accord the Basic Agreement on Reconciliation.\n"
    "In 1991 the two Koreas signed the Agreement on Reconciliation, Non-aggression, and Exchanges "
    "and Cooperation. The envoys of both sides met at Panmunjom.\n"
)


@pytest.fixture
def parts(tmp_path):
    return assistant_over(tmp_path, {"parts.txt": PARTS}, abstain_below=0.0)


@pytest.mark.parametrize("question, part", [
    ("In what year did the old leader die?", "year"), ("what yr was he born", "year"),
    ("In what month did the talks resume?", "month"), ("On what exact day did the war begin?", "day"),
    ("When did the old leader die?", None), ("On what date did the talks move?", None),
])  # fmt: skip
def test_a_question_asks_for_a_part_of_a_date(question, part):
    assert analyse_question(question).date_part == part


def test_a_date_without_the_asked_part_does_not_answer(parts):
    """"July 8" answers when he died, not in what year: no year, no span of the kind."""
    row = [row_of(parts, "died on July 8")]
    when = check_statement(parts.index, row, parts._state.texts, query(parts, "When did the old leader die?"))
    assert when.short is not None and when.short.text == "July 8"
    year = check_statement(parts.index, row, parts._state.texts,
                           query(parts, "In what year did the old leader die?"))  # fmt: skip
    assert year.kind_span == 0.0 and year.short is None


def test_a_day_of_a_date_or_a_designation_is_no_count(parts):
    """"18" in "18 June 1953" and "121" in "EC-121" are not how many; "27,000" is."""
    asked = query(parts, "How many prisoners broke out of the camps?")
    texts = parts._state.texts
    for words in ("On 18 June 1953", "EC-121"):
        check = check_statement(parts.index, [row_of(parts, words)], texts, asked)
        assert check.kind_span == 0.0 and check.short is None, words
    counted = check_statement(parts.index, [row_of(parts, "27,000")], texts, asked)
    assert counted.short is not None and counted.short.text == "27,000"


@pytest.mark.parametrize("question", ["What was the 1991 accord called?",
                                      "What was the name of the 1991 accord?"])
def test_a_question_after_a_name_wants_a_proper_name(parts, question):
    """A name is asked: a statement that only says an accord was signed holds none."""
    asked = query(parts, question)
    assert asked.asked.kind == "name"
    texts = parts._state.texts
    unnamed = check_statement(parts.index, [row_of(parts, "signed an accord")], texts, asked)
    assert unnamed.kind_span == 0.0 and unnamed.short is None
    named = check_statement(parts.index, [row_of(parts, "Basic Agreement")], texts, asked)
    assert named.short is not None and named.short.text.endswith("Basic Agreement on Reconciliation")
    assert PARTS[named.short.start : named.short.end] == named.short.text
    assert analyse_question("Which countries are named as key players?").kind != "name"


def test_a_word_of_a_title_is_no_place(parts):
    """"on Reconciliation" in "the Agreement on Reconciliation" (an ORG to the entity model)
    is no place a "where" asks for; "at Panmunjom" is."""
    asked = query(parts, "Where did the two Koreas sign the agreement?")
    texts = parts._state.texts
    titled = check_statement(parts.index, [row_of(parts, "Non-aggression")], texts, asked)
    assert titled.kind_span == 0.0 and titled.short is None
    met = check_statement(parts.index, [row_of(parts, "envoys of both sides")], texts, asked)
    assert met.short is not None and met.short.text == "Panmunjom"


def test_the_confidence_reads_the_models_cosines_not_the_adapters(parts):
    """A query adapter moves the question for retrieval; the cosines the confidence
    reads are the model's own, so they mean the same whatever it was fitted on."""
    question = "How many prisoners broke out of the camps?"
    plain = parts.ask(question)
    rng = np.random.default_rng(0)
    matrix = (np.eye(64) + 0.3 * rng.standard_normal((64, 64))).astype(np.float32)
    adapted = Assistant(parts.index, list(parts._state.documents.values()), parts.embedder,
                        parts.settings.with_(query_adapter=matrix))  # fmt: skip
    answer = adapted.ask(question)
    assert answer.citations[0].quote == plain.citations[0].quote
    assert answer.retrieved[0].dense_score != pytest.approx(plain.retrieved[0].dense_score)  # the adapter moved it
    for key in ("sentence_cosine", "passage_cosine"):
        assert answer.features[key] == plain.features[key]
