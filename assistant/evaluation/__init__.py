"""Evaluation: question sets, metrics, calibration, reports, and the `eval` command.

The names below are the evaluation API in one place (the web UI's evaluation tab
and the tests use them).
"""

from .command import in_sample_note
from .fitting import calibrate, calibration_warning, write_calibration
from .questions import DEFAULT_QUESTIONS, Question, check_lengths, load_questions, parse_questions, select_split
from .runner import EvalRun, run_questions, with_settings

__all__ = [
    "DEFAULT_QUESTIONS", "EvalRun", "Question", "calibrate", "calibration_warning", "check_lengths",
    "in_sample_note", "load_questions", "parse_questions", "run_questions", "select_split",
    "with_settings", "write_calibration",
]  # fmt: skip
