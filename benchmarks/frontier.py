"""The abstention frontier of the committed calibration, per corpus of a suite.

Answers every question of one split with abstention off, then reads the confidences
at three kinds of threshold: the calibrated one; the one that withholds a given share
of the fitted corpora's answerable questions (false abstentions matched across
engines: the quantile of their confidences); and per corpus, the highest one that keeps
answer support at a level. Two engines compare at the same false abstentions or the
same support even when their calibrated thresholds differ. Prints; asserts nothing.

    .venv/bin/python benchmarks/frontier.py [--suite tests/data/suite.json] [--split test]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from assistant import Assistant, load_settings  # noqa: E402
from assistant.evaluation.questions import select_split  # noqa: E402
from assistant.evaluation.runner import run_questions, with_settings  # noqa: E402
from assistant.evaluation.suite import corpus_assistant, corpus_questions, load_suite  # noqa: E402

FALSE_ABSTENTIONS = (0.01, 0.02, 0.04)
SUPPORT = (0.90, 0.85, 0.80, 0.75)


def rates(rows, threshold: float) -> tuple[float, float, float]:
    """(unanswerable answered, false abstentions, answer support) at a threshold;
    rows are (answerable, confidence, supported)."""
    unanswerable = [c >= threshold for a, c, _ in rows if not a]
    answerable = [(c >= threshold, s) for a, c, s in rows if a]
    return (float(np.mean(unanswerable)) if unanswerable else float("nan"),
            float(np.mean([not kept for kept, _ in answerable])) if answerable else float("nan"),
            float(np.mean([kept and s for kept, s in answerable])) if answerable else float("nan"))  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--suite", default=str(ROOT / "tests" / "data" / "suite.json"))
    parser.add_argument("--split", default="test")
    args = parser.parse_args()
    settings = load_settings()
    assistant = Assistant.load(settings=settings)
    threshold = settings.abstain_below
    by_corpus: dict[str, list] = {}
    fitted: list[float] = []  # answerable confidences of the corpora the calibration is fitted on
    for corpus in load_suite(args.suite):
        questions = select_split(corpus_questions(corpus), args.split)
        engine = corpus_assistant(corpus, assistant, Path(settings.index_dir) / ".suite")
        run = run_questions(with_settings(engine, abstain_below=0.0), questions)
        rows = [(r.answerable, r.confidence, r.supported) for r in run.results]
        by_corpus[corpus.name] = rows
        if corpus.fit:
            fitted += [c for a, c, _ in rows if a]
    print(f"{args.split} split; unanswerable answered / false abstentions / answer support")
    for name, rows in by_corpus.items():
        cells = [f"calibrated {threshold:.3f}: " + " / ".join(f"{v:.3f}" for v in rates(rows, threshold))]
        for share in FALSE_ABSTENTIONS if fitted else ():
            cells.append(f"FA {share:.0%} matched: {rates(rows, float(np.quantile(fitted, share)))[0]:.3f}")
        for level in SUPPORT:
            kept = [t for t in sorted({c for _, c, _ in rows}) if rates(rows, t)[2] >= level]
            if kept:
                unanswered, false, _ = rates(rows, max(kept))
                cells.append(f"support {level:.2f}: {unanswered:.3f} ({false:.3f} FA)")
        print(f"{name}\n  " + "\n  ".join(cells))


if __name__ == "__main__":
    main()
