"""Assistant.ask_batch: one encode call for many questions, the same answers as ask."""

from __future__ import annotations

import pytest
from conftest import ROOT, CountingEmbedder

from assistant import Assistant
from assistant.errors import UsageError

QUESTIONS = [
    "When was the armistice signed?",
    "Where did the talks begin?",
    "What was the hardest issue?",
    "Who won the 1998 World Cup?",  # nothing in the documents: an abstention
]


@pytest.fixture
def assistant(tiny_seeds, tiny_settings):
    return Assistant.load(tiny_seeds, tiny_settings.index_dir, settings=tiny_settings,
                          embedder=CountingEmbedder())  # fmt: skip


def test_one_encode_call_and_the_answers_of_ask(assistant):
    histories = [[], [], ["Where did the talks begin?"], []]
    batch_questions = QUESTIONS[:2] + ["And the hardest issue?"] + QUESTIONS[3:]
    assistant.embedder.calls = 0
    answers = assistant.ask_batch(batch_questions, histories)
    assert assistant.embedder.calls == 1
    singles = [assistant.ask(q, h) for q, h in zip(batch_questions, histories)]
    assert [a.to_dict() for a in answers] == [a.to_dict() for a in singles]
    assert [a.query.text for a in answers] == [a.query.text for a in singles]  # follow-up joined


def test_options_apply_to_every_question(assistant):
    answers = assistant.ask_batch(QUESTIONS[:2], k=3, mode="bm25")
    assert [a.to_dict() for a in answers] == [assistant.ask(q, k=3, mode="bm25").to_dict()
                                              for q in QUESTIONS[:2]]  # fmt: skip
    assert all(len(a.retrieved) <= 3 for a in answers)


def test_empty_batch(assistant):
    assert assistant.ask_batch([]) == []


@pytest.mark.parametrize(
    ("questions", "histories", "kwargs"),
    [(["ok?", "   "], None, {}), (["ok?"], [[], []], {}), (["ok?"], None, {"k": 0}),
     (["ok?"], None, {"mode": "magic"}), (["x" * 5000], None, {})],
)  # fmt: skip
def test_any_invalid_input_raises_usage_error(assistant, questions, histories, kwargs):
    with pytest.raises(UsageError):
        assistant.ask_batch(questions, histories, **kwargs)


@pytest.mark.slow
def test_real_model_batch_equals_single_asks(real_assistant):
    answers = real_assistant.ask_batch(QUESTIONS)
    for question, answer in zip(QUESTIONS, answers):
        single = real_assistant.ask(question)
        assert answer.answer == single.answer and answer.abstained == single.abstained
        assert [c.id for c in answer.citations] == [c.id for c in single.citations]
        assert [h.chunk.id for h in answer.retrieved] == [h.chunk.id for h in single.retrieved]
        assert answer.confidence == pytest.approx(single.confidence, abs=1e-4)


@pytest.mark.slow
def test_real_model_batches_of_16_give_exactly_the_single_answers(real_assistant):
    """With the ONNX question encoder a padded batch gives the same vectors, bit for bit,
    as one question alone, so the batched web API returns exactly `ask`'s JSON."""
    import json
    import random

    path = ROOT / "tests" / "data" / "questions.jsonl"
    questions = [json.loads(line)["question"] for line in path.read_text().splitlines() if line.strip()]
    questions = random.Random(7).sample(questions, 48)  # mixed lengths in every batch
    single = [real_assistant.ask(q).to_dict() for q in questions]
    batched = [a.to_dict() for i in range(0, 48, 16) for a in real_assistant.ask_batch(questions[i : i + 16])]
    assert batched == single
