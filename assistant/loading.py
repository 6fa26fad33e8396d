"""Loading an Assistant from the command line's options, and the progress bar it prints.

What the CLI, the server start-up (web/) and `assistant eval` (evaluation/) all
need, so it sits below all three and none of them imports another for it.
Prints to stderr only; does not parse arguments.
"""

from __future__ import annotations

import sys

from .config import load_settings
from .pipeline import Assistant


def load_assistant(args, *, rebuild: bool = False, quiet: bool = False) -> Assistant:
    """The Assistant of `args.seeds` and `args.index`, with its load warnings printed."""
    assistant = Assistant.load(
        args.seeds, args.index, settings=load_settings(), rebuild=rebuild,
        progress=None if quiet else print_progress,
    )  # fmt: skip
    for warning in assistant.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    return assistant


def prepare_question_encoder(assistant: Assistant) -> None:
    """Export the question encoder if it is not yet, saying so (it takes seconds, once)."""
    prepare = getattr(assistant.embedder, "prepare_query_encoder", None)
    if prepare is not None:
        prepare(on_export=lambda: print("exporting the question encoder, once (about 15 s)...",
                                        file=sys.stderr, flush=True))  # fmt: skip


def print_progress(label: str, done: int, total: int) -> None:
    width = 30
    filled = width * done // max(total, 1)
    end = "\n" if done >= total else ""
    print(f"\r{label} [{'#' * filled}{'.' * (width - filled)}] {done}/{total}", end=end,
          file=sys.stderr, flush=True)  # fmt: skip
