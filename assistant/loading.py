"""Loading an Assistant from the command line's options, and the progress bar it prints.

What the CLI, the server start-up (web/) and `assistant eval` (evaluation/) all
need, so it sits below all three and none of them imports another for it.
Prints to stderr only; does not parse arguments.
"""

from __future__ import annotations

import sys

from pathlib import Path

from .config import Settings, load_settings
from .pipeline import Assistant, check_store_uri


def settings_from_args(args) -> Settings:
    """The settings with the command line's folders and store."""
    return load_settings().with_(seeds_dir=Path(args.seeds), index_dir=Path(args.index),
                                 store=check_store_uri(getattr(args, "store", "") or ""))  # fmt: skip


def load_assistant(args, *, rebuild: bool = False, quiet: bool = False) -> Assistant:
    """The Assistant of `args.seeds`, `args.index` and `args.store`, with its load
    warnings printed."""
    assistant = Assistant.load(
        settings=settings_from_args(args), rebuild=rebuild, progress=None if quiet else print_progress,
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
