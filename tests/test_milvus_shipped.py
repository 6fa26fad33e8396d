"""Issue 22: the shipped question set on the Milvus store and on the index folder (FAISS)
gives the same passages, the same answers and the same citations, question by question.

The real model over the real seeds (conftest.real_assistant), the Milvus side on the
real Milvus Lite server process (conftest.milvus_server).
"""

from __future__ import annotations

import json

import pytest

from assistant import Assistant

from conftest import ROOT

pytestmark = pytest.mark.slow


def shipped_questions() -> list[str]:
    with open(ROOT / "tests" / "data" / "questions.jsonl", encoding="utf-8") as handle:
        return [json.loads(line)["question"] for line in handle if line.strip()]


def test_every_shipped_question_gets_the_same_passages_and_answer_on_both_stores(real_assistant, milvus_uri,
                                                                                tmp_path):  # fmt: skip
    folder = real_assistant
    settings = folder.settings.with_(store=milvus_uri, index_dir=tmp_path / "replica")
    shared = Assistant.load(settings=settings, embedder=folder.embedder)
    assert type(shared.index.dense).__name__ == "MilvusVectors"
    questions = shipped_questions()
    assert len(questions) > 500
    differences = []
    for here, there in zip(folder.ask_batch(questions), shared.ask_batch(questions), strict=True):
        same = (
            [(h.row, round(h.score, 4)) for h in here.retrieved] == [(h.row, round(h.score, 4)) for h in there.retrieved]
            and [c.id for c in here.citations] == [c.id for c in there.citations]
            and here.abstained == there.abstained and here.answer == there.answer
            and abs(here.confidence - there.confidence) < 1e-4
        )  # fmt: skip
        if not same:
            differences.append(here.question)
    assert not differences, f"{len(differences)} of {len(questions)} differ, e.g. {differences[:3]}"
