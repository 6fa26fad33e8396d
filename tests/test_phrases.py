"""The short answer of a "what" question: the phrase of the quoted statement that
answers it (answer/phrases.py), its verbatim offsets, and the model `--calibrate` fits.

Pinned on sentences and a tiny corpus written here (the real parser, the fake
embedder), never with a question of the shipped set.
"""

from __future__ import annotations

import pytest

from assistant.answer.phrases import (PHRASE_FEATURES, candidates, features, parse, phrase_answer, question_stems,
                                      statement_parse)
from assistant.evaluation.fitting import fit_phrases
from assistant.evaluation.metrics import QuestionResult

from conftest import assistant_over

# Hand-set weights for the mechanism's tests: a new phrase that lists its items wins.
WEIGHTS = {"bias": -3.0, "novelty": 4.0, "has_list": 1.5, "introduced": 1.0}


def phrases_of(statement: str) -> list[str]:
    doc = parse(statement)
    return [doc[a:b].text for a, b, _ in candidates(doc)]


def test_candidates_are_noun_phrases_with_their_lists_and_infinitives():
    found = phrases_of("Cheap loans such as farm credit or road grants may tempt the towns.")
    assert "farm credit or road grants" in found
    assert "Cheap loans" in found
    assert "to guard the harbour" in phrases_of("The navy aimed to guard the harbour.")
    assert "the Border Patrol Office (BPO)" in phrases_of("The treaty created the Border Patrol Office (BPO).")


def test_no_candidate_begins_or_ends_with_white_space():
    found = phrases_of("Key terms:\n  - Incidents along the border that escalate tensions.\n  - Talks.")
    assert found and all(p == p.strip() for p in found)
    assert "Incidents along the border that escalate tensions" in found


def test_features_read_what_the_question_already_says():
    doc = parse("Cheap loans such as farm credit or road grants may tempt the towns.")
    asked = question_stems("What cheap loans might tempt the towns?")
    spans = {doc[a:b].text: features(doc, a, b, h, asked) for a, b, h in candidates(doc)}
    assert spans["Cheap loans"]["novelty"] == 0.0
    listed = spans["farm credit or road grants"]
    assert listed["novelty"] == 1.0 and listed["has_list"] == 1.0 and listed["introduced"] == 1.0
    assert set(listed) == set(PHRASE_FEATURES)


def test_the_phrase_is_cut_verbatim_from_the_document_or_not_given():
    text = "Preface.\nCheap loans such as farm credit or road grants may tempt the towns. The end."
    start = text.index("Cheap")
    end = text.index(" The end")
    question = "What cheap loans might tempt the towns?"
    parsed = parse(text[start:end])
    span, listed = phrase_answer(parsed, "d.txt", start, question, WEIGHTS, 0.3)
    assert span.text == "farm credit or road grants" == text[span.start : span.end]
    assert span.doc == "d.txt" and len(listed) > 3
    assert phrase_answer(parsed, "d.txt", start, question, WEIGHTS, 0.999)[0] is None  # below the floor
    none, listed_anyway = phrase_answer(parsed, "d.txt", start, question, {}, 0.3)
    assert none is None and listed_anyway == listed  # unfitted: no phrase, candidates kept for fitting


DOC = (
    "Harbour talks\n"
    "The harbour talks began in March 1961. "
    "Cheap loans such as farm credit or road grants may tempt the towns to settle.\n"
)


@pytest.fixture
def harbour(tmp_path):
    return assistant_over(tmp_path, {"harbour.txt": DOC}, abstain_below=0.0, phrase=WEIGHTS)


def test_the_parse_is_read_from_the_index_and_answering_never_loads_spacy(harbour):
    import assistant.ingest.entities as entities

    rows = [i for i, (_, s) in enumerate(harbour.index.sentences) if "Cheap loans" in s.text]
    parsed, doc, start = statement_parse(harbour.index, rows, {"harbour.txt": DOC})
    assert doc == "harbour.txt" and DOC[start:].startswith(parsed.text) and parsed.text.startswith("Cheap loans")
    assert [t.text for t in parsed][:2] == ["Cheap", "loans"] and parsed[1].head.text == "tempt"
    loaded, entities._pipeline = entities._pipeline, None  # as in a fresh `assistant ask`
    try:
        assert harbour.ask("What cheap loans might tempt the towns to settle?").short_answer is not None
        assert entities._pipeline is None
    finally:
        entities._pipeline = loaded


def test_a_what_answer_carries_its_phrase_and_a_when_answer_its_date(harbour):
    answer = harbour.ask("What cheap loans might tempt the towns to settle?")
    short = answer.to_dict()["short_answer"]
    assert short["text"] == "farm credit or road grants"
    assert DOC[short["start"] : short["end"]] == short["text"] and short["doc"] == "harbour.txt"
    assert answer.phrases  # what --calibrate fits on
    dated = harbour.ask("When did the harbour talks begin?")
    assert dated.short_answer.text == "March 1961" and not dated.phrases
    listed = harbour.ask("List the cheap loans that may tempt the towns to settle.")  # a list: no one phrase
    assert listed.query.asked.kind == "list" and listed.short_answer is None and not listed.phrases


def result(phrases) -> QuestionResult:
    return QuestionResult(id="q", question="q", answerable=True, split="dev", abstained=False, confidence=1.0,
                          answer="", latency_ms=0.0, relevant=[], relevant_total=0, citation_relevant=[],
                          quote_verbatim=[], supported=True, phrases=phrases)  # fmt: skip


def test_the_phrase_model_is_fitted_on_the_phrases_near_the_gold_answer():
    new = {n: 0.0 for n in PHRASE_FEATURES} | {"novelty": 1.0}
    said = {n: 0.0 for n in PHRASE_FEATURES}
    weights = fit_phrases([result([(new, 0.9), (said, 0.0)]), result([(said, 0.2), (new, 1.0)])])
    assert set(weights) == {"bias", *PHRASE_FEATURES} and weights["novelty"] > 0
    assert fit_phrases([result([(said, 0.0)])]) is None  # no right phrase: nothing to fit
