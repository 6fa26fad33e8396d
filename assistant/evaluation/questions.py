"""Question-set files: parse and check JSON Lines questions, pick a split.

The whole file is checked before anything runs; the first bad line is
reported as "FILE line N: problem" (a UsageError). Unknown fields are ignored.
Does not ask questions or score answers (evaluation.py, metrics.py).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from ..errors import UsageError

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_QUESTIONS = REPO_ROOT / "tests" / "data" / "questions.jsonl"


@dataclass(frozen=True)
class Question:
    id: str
    question: str
    answerable: bool
    evidence: tuple[str, ...]
    answer: str = ""
    history: tuple[str, ...] = ()
    split: str | None = None
    line: int = 0
    kind: str | None = None  # what the question asks for (tests/data/README.md), if given
    source: str = ""  # the block it belongs to, if given


def parse_question(record, *, where: str) -> Question:
    """One JSON value as a Question; UsageError "WHERE: problem" when it is not one."""
    if not isinstance(record, dict):
        raise UsageError(f"{where}: expected a JSON object")
    for name in ("id", "question", "answerable"):
        if name not in record:
            raise UsageError(f"{where}: missing field {name!r}")
    if "evidence" not in record and record["answerable"] is not False:
        raise UsageError(f"{where}: missing field 'evidence'")
    qid, text, answerable = record["id"], record["question"], record["answerable"]
    evidence = record.get("evidence", [])  # may be left out for an unanswerable question
    if not isinstance(qid, str | int) or isinstance(qid, bool) or not str(qid).strip():
        raise UsageError(f"{where}: field 'id' must be a non-empty string")
    if not isinstance(text, str) or not text.strip():
        raise UsageError(f"{where}: field 'question' must be a non-empty string")
    if not isinstance(answerable, bool):
        raise UsageError(f"{where}: field 'answerable' must be true or false")
    if not isinstance(evidence, list) or not all(isinstance(e, str) and e.strip() for e in evidence):
        raise UsageError(f"{where}: field 'evidence' must be a list of non-empty strings")
    if answerable and not evidence:
        raise UsageError(f"{where}: an answerable question needs at least one evidence string")
    if not answerable and evidence:
        raise UsageError(f"{where}: an unanswerable question must have no evidence")
    answer = record.get("answer", "")
    history = record.get("history", [])
    split = record.get("split")
    if answer is None:
        answer = ""
    if not isinstance(answer, str):
        raise UsageError(f"{where}: field 'answer' must be a string")
    if history is None:
        history = []
    if not isinstance(history, list) or not all(isinstance(h, str) for h in history):
        raise UsageError(f"{where}: field 'history' must be a list of strings")
    if split is not None and (not isinstance(split, str) or not split.strip()):
        raise UsageError(f"{where}: field 'split' must be a non-empty string")
    kind, source = record.get("kind"), record.get("source", "")
    if kind is not None and (not isinstance(kind, str) or not kind.strip()):
        raise UsageError(f"{where}: field 'kind' must be a non-empty string")
    if not isinstance(source, str):
        raise UsageError(f"{where}: field 'source' must be a string")
    return Question(str(qid), text, answerable, tuple(evidence), answer, tuple(history), split,
                    kind=kind, source=source)  # fmt: skip


def parse_questions(text: str, *, source: str = "questions") -> list[Question]:
    """Questions from JSON Lines text; blank lines are skipped, line numbers are physical.

    Lines end at "\n" only: JSON strings may hold U+2028 or U+0085 raw, which
    str.splitlines() would split on."""
    questions: list[Question] = []
    seen: dict[str, int] = {}
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        where = f"{source} line {number}"
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise UsageError(f"{where}: not valid JSON ({exc.msg})") from None
        question = parse_question(record, where=where)
        if question.id in seen:
            raise UsageError(f"{where}: duplicate id {question.id!r} (first on line {seen[question.id]})")
        seen[question.id] = number
        questions.append(replace(question, line=number))
    if not questions:
        raise UsageError(f"{source}: no questions")
    return questions


def load_questions(path: str | Path) -> list[Question]:
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise UsageError(f"question file not found: {path}") from None
    except OSError as exc:
        raise UsageError(f"cannot read question file {path}: {exc.strerror or exc}") from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise UsageError(f"{path.name} line {line}: not UTF-8 text") from None
    return parse_questions(text, source=path.name)


def check_lengths(questions: Sequence[Question], limit: int, *, source: str = "questions") -> None:
    """Fail before any work on a question (or history turn) that ask() would refuse,
    by the same checks ask() makes."""
    from ..pipeline import check_question, check_turns

    for q in questions:
        try:
            check_question(q.question, limit)
            check_turns(q.history, limit)
        except UsageError as exc:
            raise UsageError(f"{source} line {q.line}: {exc}") from None


def select_split(questions: Sequence[Question], split: str | None) -> list[Question]:
    if split is None:
        return list(questions)
    chosen = [q for q in questions if q.split == split]
    if not chosen:
        known = sorted({q.split for q in questions if q.split}) or ["none"]
        raise UsageError(f"no questions with split {split!r} (splits in the file: {', '.join(known)})")
    return chosen
