"""An evaluation suite: the same engine over several corpora, each with its question sets.

A suite file (JSON, paths relative to it) names corpora; each is a list of document
folders and a list of question files, and optionally a relabel file: questions
that the added documents answer although their set was written as unanswerable
about the shipped ones (one JSON line each: id, evidence, answer), and an "also
stated" file: answerable questions whose answer an added document states as well
(id, evidence), so that quoting it counts as citing the answer. A corpus whose
only folder is the assistant's own documents folder is answered by that assistant;
any other is copied into a work folder (documents only) and indexed there once,
then kept up to date like any index. `assistant eval --suite FILE` prints one row
per corpus and question block; `--calibrate` with it fits on every corpus's dev
questions (fitting.py) but those of a corpus marked `"fit": false`: one held out
whole, to measure how the engine carries to documents nothing was fitted on. Does
not write question files or documents.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import dataclass, replace
from pathlib import Path

from ..errors import UsageError
from ..pipeline import Assistant
from .questions import Question, load_questions

DOCUMENT_SUFFIXES = (".txt", ".md")


@dataclass(frozen=True)
class Corpus:
    name: str
    documents: tuple[Path, ...]
    questions: tuple[Path, ...]
    relabel: Path | None = None
    fit: bool = True  # its dev questions enter `--calibrate`
    also_stated: Path | None = None


def load_suite(path: str | Path) -> list[Corpus]:
    """The corpora of a suite file; UsageError (one line) when it is not one."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        corpora = []
        for entry in data["corpora"]:
            folders = tuple((path.parent / d).resolve() for d in entry["documents"])
            files = tuple((path.parent / q).resolve() for q in entry["questions"])
            relabel, fit, also = entry.get("relabel"), entry.get("fit", True), entry.get("also_stated")
            if not isinstance(fit, bool):
                raise TypeError(f"'fit' is true or false, not {fit!r}")
            corpora.append(Corpus(str(entry["name"]), folders, files,
                                  (path.parent / relabel).resolve() if relabel else None, fit,
                                  (path.parent / also).resolve() if also else None))  # fmt: skip
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError) as exc:
        raise UsageError(f"{path} is not a suite file ({type(exc).__name__}: {exc})") from None
    if not corpora:
        raise UsageError(f"{path}: no corpora")
    return corpora


def corpus_questions(corpus: Corpus) -> list[Question]:
    """The corpus's questions, every file's, relabelled where its added documents answer,
    with the evidence its added documents also state."""
    questions = [q for file in corpus.questions for q in load_questions(file)]
    answered = {str(r["id"]): r for r in _records(corpus.relabel)}
    also: dict[str, tuple[str, ...]] = {}
    for r in _records(corpus.also_stated):
        also[str(r["id"])] = also.get(str(r["id"]), ()) + tuple(r["evidence"])
    for i, q in enumerate(questions):
        if q.id in answered and not q.answerable:
            record = answered[q.id]
            questions[i] = replace(q, answerable=True, evidence=tuple(record["evidence"]),
                                   answer=str(record.get("answer", "")))  # fmt: skip
        elif q.id in also and q.answerable:
            questions[i] = replace(q, evidence=(*q.evidence, *also[q.id]))
    return questions


def _records(path: Path | None) -> list[dict]:
    """A relabel or "also stated" file's records, each with an id and evidence strings."""
    if path is None:
        return []
    records = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if line.strip():
            try:
                record = json.loads(line)
                str(record["id"]), tuple(record["evidence"])
            except (ValueError, KeyError, TypeError) as exc:
                raise UsageError(f"{path} line {number}: {exc}") from None
            records.append(record)
    return records


def corpus_assistant(corpus: Corpus, assistant: Assistant, work_dir: Path, *, progress=None
                     ) -> Assistant:  # fmt: skip
    """The assistant itself for its own documents folder; else one over a copy of the
    corpus's documents under work_dir, with the same settings and embedder."""
    own = Path(assistant.settings.seeds_dir).resolve()
    if corpus.documents == (own,):
        return assistant
    slug = hashlib.sha256("\n".join(map(str, corpus.documents)).encode()).hexdigest()[:12]
    seeds = work_dir / slug / "seeds"
    wanted = {}
    for folder in corpus.documents:
        for file in sorted(folder.iterdir()):
            if file.suffix.lower() in DOCUMENT_SUFFIXES and file.is_file():
                if file.name in wanted:
                    raise UsageError(f"suite corpus {corpus.name!r}: two documents named {file.name}")
                wanted[file.name] = file
    seeds.mkdir(parents=True, exist_ok=True)
    for stale in seeds.iterdir():
        if stale.name not in wanted:
            stale.unlink()
    for name, file in wanted.items():
        target = seeds / name
        if not target.exists() or target.read_bytes() != file.read_bytes():
            shutil.copyfile(file, target)
    # A suite's corpora are indexed in local folders of their own, never in a shared store
    # (`--store`): that holds the documents every reader is answered from.
    settings = assistant.settings.with_(seeds_dir=seeds, index_dir=work_dir / slug / "index", store="")
    return Assistant.load(settings=settings, embedder=assistant.embedder, progress=progress)


SUITE_METRICS = ("questions", "citation_hit@1", "answer_support", "short_answer_f1",
                 "answered_unanswerable_rate", "false_abstention_rate")  # fmt: skip


def suite_rows(named_results) -> list[tuple[str, str, dict]]:
    """(corpus, block, metrics) for each corpus's blocks (a question's `source`, "team"
    when it has none) and for the corpus as a whole ("all")."""
    from .metrics import summarize, summarize_by

    rows = []
    for name, results in named_results:
        for block, metrics in summarize_by(results, lambda r: r.source or "team").items():
            rows.append((name, block, metrics))
        rows.append((name, "all", summarize(results)))
    return rows


def format_suite(rows) -> str:
    """The suite's table as text: one line per corpus and block."""
    from .metrics import METRIC_LABELS, format_value

    names = [METRIC_LABELS[k] for k in SUITE_METRICS]
    corpus_width = max(len(r[0]) for r in rows) + 2
    block_width = max(len(r[1]) for r in rows) + 2
    lines = [f"{'corpus':<{corpus_width}}{'block':<{block_width}}" + "".join(f"{n:>24}" for n in names)]
    for corpus, block, metrics in rows:
        lines.append(f"{corpus:<{corpus_width}}{block:<{block_width}}"
                     + "".join(f"{format_value(k, metrics.get(k)):>24}" for k in SUITE_METRICS))  # fmt: skip
    return "\n".join(lines)
