"""`assistant eval FILE ...`: check the file, load, (calibrate,) run, print or report.

The command-line face of evaluation: a question file is checked whole before any
work (questions.py); the first bad line stops the run with its line number.
Does not compute metrics (metrics.py) or fit anything itself (fitting.py).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path

from ..config import CALIBRATION_FILE, load_settings
from ..errors import UsageError
from ..loading import load_assistant, print_progress
from .fitting import calibrate, calibrated_settings, calibration_warning, format_calibration, write_calibration
from .questions import DEFAULT_QUESTIONS, Question, check_lengths, load_questions, select_split
from .metrics import METRIC_LABELS, format_value, summarize_by
from .report import write_report
from .suite import corpus_assistant, corpus_questions, format_suite, load_suite, suite_rows
from .runner import format_metrics, run_json, run_questions, with_settings


def in_sample_note(settings, path: Path, questions: Sequence[Question]) -> str | None:
    """A note when the shipped set's dev questions are run with the adapter fitted on them."""
    shipped = Path(path).resolve() == Path(DEFAULT_QUESTIONS).resolve()
    if settings.query_adapter is None or not shipped or not any(q.split == "dev" for q in questions):
        return None
    return ("the dev figures are in-sample: the query adapter and the confidence were fitted on "
            "these dev questions (docs/design.md, \"Query adapter\", gives them out of fold)")


KIND_METRICS = ("questions", "citation_hit@1", "answer_support", "short_answer_em", "short_answer_f1",
                "abstention_precision", "abstention_recall", "false_abstention_rate")  # fmt: skip


def format_by_kind(results) -> str:
    """One line per question kind (the question's `kind`, else the engine's reading)."""
    by_kind = summarize_by(results, lambda r: r.kind)
    width = max(len(k) for k in by_kind) + 2
    lines = [f"{'kind':<{width}}" + "".join(f"{METRIC_LABELS[m]:>22}" for m in KIND_METRICS)]
    for kind, metrics in by_kind.items():
        lines.append(f"{kind:<{width}}" + "".join(f"{format_value(m, metrics.get(m)):>22}"
                                                  for m in KIND_METRICS))  # fmt: skip
    return "\n".join(lines)


def suite_command(args) -> int:
    """`assistant eval --suite FILE ...`: every corpus of the suite with its question sets,
    one row per corpus and block; with --calibrate, fitted on the dev split of every
    corpus not marked `"fit": false`."""
    corpora = load_suite(args.suite)
    if not isinstance(args.k, int) or not 1 <= args.k <= 100:
        raise UsageError("k must be a whole number from 1 to 100")
    settings = load_settings()
    asked = [(corpus, corpus_questions(corpus)) for corpus in corpora]
    for corpus, questions in asked:
        check_lengths(questions, settings.max_question_chars, source=corpus.name)
    assistant = load_assistant(args, quiet=args.json)
    progress = None if args.json else print_progress
    if args.no_adapter:
        assistant = with_settings(assistant, query_adapter=None)
    work = Path(assistant.settings.index_dir) / ".suite"
    assistants = [corpus_assistant(corpus, assistant, work, progress=progress) for corpus, _ in asked]
    own = [i for i, a in enumerate(assistants) if a is assistant]
    if args.calibrate:
        own = [i for i in own if corpora[i].fit]
        if not own:
            raise UsageError('--calibrate with --suite needs a corpus of the documents folder itself'
                             ' (not marked "fit": false)')
        main = own[0]
        others = [(a, select_split(q, "dev")) for i, (a, (c, q)) in enumerate(zip(assistants, asked))
                  if i != main and c.fit]  # fmt: skip
        calibration = calibrate(assistant, select_split(asked[main][1], "dev"), k=args.k,
                                mode=args.mode, progress=progress, adapt=not args.no_adapter,
                                others=others)  # fmt: skip
        write_calibration(calibration, CALIBRATION_FILE)
        assistants = [with_settings(a, **calibrated_settings(calibration)) for a in assistants]
        if not args.json:
            print(format_calibration(calibration))
            print(f"wrote {CALIBRATION_FILE}\n")
    named = []
    for a, (corpus, questions) in zip(assistants, asked):
        run = run_questions(a, select_split(questions, args.split), k=args.k, mode=args.mode,
                            progress=progress)  # fmt: skip
        named.append((corpus.name, run.results))
    rows = suite_rows(named)
    if args.json:
        print(json.dumps({"split": args.split, "rows": [{"corpus": c, "block": b, "metrics": m}
                                                         for c, b, m in rows]}, ensure_ascii=False))
        return 0
    print(f"{Path(args.suite).name}: split {args.split or 'all'}, k={args.k}")
    print(format_suite(rows))
    for name, results in named:
        print(f"\n{name}, by question kind:")
        print(format_by_kind(results))
    return 0


def eval_command(args) -> int:
    """`assistant eval FILE ...`: check the file, load, (calibrate,) run, print/report."""
    if getattr(args, "suite", None):
        return suite_command(args)
    if args.file is None:
        raise UsageError("give a question file or --suite FILE")
    all_questions = load_questions(args.file)
    settings = load_settings()
    check_lengths(all_questions, settings.max_question_chars, source=Path(args.file).name)
    questions = select_split(all_questions, args.split)
    if not isinstance(args.k, int) or not 1 <= args.k <= 100:
        raise UsageError("k must be a whole number from 1 to 100")
    mode = args.mode or settings.mode
    if args.compare and args.compare == mode:
        raise UsageError(f"--compare {args.compare} is the mode already being evaluated")
    dev = select_split(all_questions, "dev") if args.calibrate else []
    assistant = load_assistant(args, quiet=args.json)
    progress = None if args.json else print_progress
    if args.no_adapter:
        assistant = with_settings(assistant, query_adapter=None)
    warning = calibration_warning(assistant.settings, assistant.embedder.dimension)
    if warning and not args.calibrate:
        print(f"warning: {warning}", file=sys.stderr)
    calibration = None
    if args.calibrate:
        calibration = calibrate(assistant, dev, k=args.k, mode=mode, progress=progress,
                                adapt=not args.no_adapter)  # fmt: skip
        write_calibration(calibration, CALIBRATION_FILE)
        assistant = with_settings(assistant, **calibrated_settings(calibration))
        if not args.json:
            print(format_calibration(calibration))
            print(f"wrote {CALIBRATION_FILE}\n")
    runs = [run_questions(assistant, questions, k=args.k, mode=mode, progress=progress)]
    if args.compare:
        runs.append(run_questions(assistant, questions, k=args.k, mode=args.compare, progress=progress))
    if args.report:
        written = write_report(Path(args.report), runs, source=str(args.file))
        if not args.json:
            print(f"wrote {', '.join(str(p) for p in written)}", file=sys.stderr)
    if args.json:
        out = {"metrics": runs[0].metrics, "results": [r.to_dict() for r in runs[0].results],
               "mode": runs[0].mode, "k": args.k, "threshold": runs[0].threshold}  # fmt: skip
        if len(runs) > 1:
            out["compare"] = run_json(runs[1])
        if calibration:
            out["calibration"] = {k: v for k, v in calibration.items() if k != "query_adapter"}
        print(json.dumps(out, ensure_ascii=False))
        return 0
    print(f"{Path(args.file).name}: {len(questions)} questions, k={args.k}, "
          f"abstain below {runs[0].threshold:.3f}")  # fmt: skip
    print(format_metrics(runs))
    print("\nby question kind:")
    print(format_by_kind(runs[0].results))
    if note := in_sample_note(assistant.settings, args.file, questions):
        print(f"note: {note}")
    return 0
