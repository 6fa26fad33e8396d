"""Sanity checks for the hand-written evaluation question set.

Standard library + pytest only; deliberately independent of the `assistant`
package so the data can be validated on its own.
"""

import json
from collections import Counter
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
DATA_FILE = Path(__file__).parent / "data" / "questions.jsonl"
SEEDS_DIR = ROOT / "seeds"
SEED_NAMES = ("000_ed13bf9180557300.txt", "003_5a3a1dfd038f9b52.txt")

REQUIRED = {
    "id": str,
    "question": str,
    "answerable": bool,
    "evidence": list,
    "answer": str,
    "split": str,
}
SPLITS = {"dev", "test"}


def _load_lines():
    text = DATA_FILE.read_text(encoding="utf-8")
    return [line for line in text.splitlines() if line.strip()]


def _load_questions():
    return [json.loads(line) for line in _load_lines()]


@pytest.fixture(scope="module")
def questions():
    return _load_questions()


@pytest.fixture(scope="module")
def documents():
    docs = {}
    for name in SEED_NAMES:
        path = SEEDS_DIR / name
        assert path.is_file(), f"missing seed document {path}"
        docs[name] = path.read_text(encoding="utf-8")
    return docs


def test_every_line_parses():
    lines = _load_lines()
    assert lines, "question file is empty"
    for n, line in enumerate(lines, 1):
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as exc:  # pragma: no cover - failure path
            pytest.fail(f"line {n} is not valid JSON: {exc}")
        assert isinstance(rec, dict), f"line {n} is not a JSON object"


def test_required_fields_and_types(questions):
    for q in questions:
        for field, typ in REQUIRED.items():
            assert field in q, f"{q.get('id')}: missing field {field!r}"
            assert isinstance(q[field], typ), (
                f"{q.get('id')}: field {field!r} should be {typ.__name__}"
            )
        assert q["question"].strip(), f"{q['id']}: empty question"
        assert q["split"] in SPLITS, f"{q['id']}: bad split {q['split']!r}"
        assert all(isinstance(e, str) and e.strip() for e in q["evidence"]), (
            f"{q['id']}: evidence must be non-empty strings"
        )
        if "history" in q:
            assert isinstance(q["history"], list), f"{q['id']}: history must be a list"
            assert all(isinstance(h, str) and h.strip() for h in q["history"]), (
                f"{q['id']}: history must hold non-empty strings"
            )


def test_ids_unique(questions):
    ids = [q["id"] for q in questions]
    dupes = [i for i, c in Counter(ids).items() if c > 1]
    assert not dupes, f"duplicate ids: {dupes}"


def test_evidence_is_verbatim(questions, documents):
    missing = []
    for q in questions:
        for ev in q["evidence"]:
            if not any(ev in text for text in documents.values()):
                missing.append((q["id"], ev))
    assert not missing, f"evidence not found verbatim in any seed document: {missing}"


def test_answerable_matches_evidence(questions):
    for q in questions:
        if q["answerable"]:
            assert len(q["evidence"]) >= 1, f"{q['id']}: answerable but no evidence"
            assert q["answer"].strip(), f"{q['id']}: answerable but no gold answer"
        else:
            assert q["evidence"] == [], f"{q['id']}: unanswerable but has evidence"


def test_counts(questions):
    assert len(questions) >= 80
    assert sum(1 for q in questions if not q["answerable"]) >= 15
    assert sum(1 for q in questions if q.get("history")) >= 6
    splits = Counter(q["split"] for q in questions)
    assert splits["dev"] > 0 and splits["test"] > 0


# ---- the sets added for answer verification (tests/data/README.md) -------------------

DATA = Path(__file__).parent / "data"
CORPORA = {"pow": "pow_repatriation.txt", "agreements": "interkorean_agreements.txt",
           "geneva": "geneva_1954.txt"}


def _read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


@pytest.mark.parametrize("name", sorted(CORPORA))
def test_each_added_document_has_its_own_block(name):
    folder = DATA / "corpora" / name
    text = (folder / CORPORA[name]).read_text(encoding="utf-8")
    rows = _read_jsonl(folder / "questions.jsonl")
    assert len({r["id"] for r in rows}) == len(rows) == 50
    for r in rows:
        assert {k: type(r[k]) for k in REQUIRED} == REQUIRED, r["id"]
        assert r["split"] in SPLITS and isinstance(r.get("kind"), str)
        assert bool(r["evidence"]) == r["answerable"], r["id"]
        assert all(e in text for e in r["evidence"]), r["id"]
    # split before they were run, half and half in each stratum
    for answerable in (True, False):
        counts = Counter(r["split"] for r in rows if r["answerable"] == answerable)
        assert counts["dev"] == counts["test"]


def test_the_unanswerable_set_is_unanswerable_and_split():
    rows = _read_jsonl(DATA / "unanswerable.jsonl")
    assert len(rows) >= 120 and len({r["id"] for r in rows}) == len(rows)
    assert all(not r["answerable"] and r["evidence"] == [] and r["answer"] == "" for r in rows)
    assert all(r["category"] in {"gk", "near-miss", "false-premise", "off-topic"} for r in rows)
    assert Counter(r["split"] for r in rows) == {"dev": len(rows) // 2, "test": len(rows) // 2}


def test_what_the_added_documents_answer_is_quoted_from_them():
    ids = {r["id"] for f in ("questions.jsonl", "unanswerable.jsonl") for r in _read_jsonl(DATA / f)
           if not r["answerable"]}  # fmt: skip
    texts = {doc: (DATA / "corpora" / name / doc).read_text(encoding="utf-8") for name, doc in CORPORA.items()}
    for r in _read_jsonl(DATA / "corpora" / "answered_by_added.jsonl"):
        assert r["id"] in ids and r["evidence"] and all(e in texts[r["doc"]] for e in r["evidence"]), r["id"]


def test_what_the_added_documents_also_state_is_quoted_from_them():
    ids = {r["id"] for r in _read_jsonl(DATA / "questions.jsonl") if r["answerable"]}
    texts = {doc: (DATA / "corpora" / name / doc).read_text(encoding="utf-8") for name, doc in CORPORA.items()}
    for r in _read_jsonl(DATA / "corpora" / "also_stated_by_added.jsonl"):
        assert r["id"] in ids and r["evidence"] and all(e in texts[r["doc"]] for e in r["evidence"]), r["id"]
