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
from .fitting import calibrate, calibration_warning, format_calibration, write_calibration
from .questions import DEFAULT_QUESTIONS, Question, check_lengths, load_questions, select_split
from .report import write_report
from .runner import format_metrics, run_json, run_questions, with_settings


def in_sample_note(settings, path: Path, questions: Sequence[Question]) -> str | None:
    """A note when the shipped set's dev questions are run with the adapter fitted on them."""
    shipped = Path(path).resolve() == Path(DEFAULT_QUESTIONS).resolve()
    if settings.query_adapter is None or not shipped or not any(q.split == "dev" for q in questions):
        return None
    return ("the dev figures are in-sample: the query adapter and the confidence were fitted on "
            "these dev questions (README, \"Query adapter\", gives them out of fold)")


def eval_command(args) -> int:
    """`assistant eval FILE ...`: check the file, load, (calibrate,) run, print/report."""
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
        assistant = with_settings(assistant, calibration=calibration["weights"],
                                  abstain_below=calibration["threshold"],
                                  query_adapter=calibration["query_adapter"])  # fmt: skip
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
    if note := in_sample_note(assistant.settings, args.file, questions):
        print(f"note: {note}")
    return 0
