"""The web handlers: plain functions over an `AssistantSlot`, testable without a server.

The named API endpoints (`/ask`, `/cite`) return the JSON of the CLI's --json;
the page's handlers return what one question or lookup changes on the page.
Engine errors become a one-line gr.Error (`user_errors`). Does not lay out the
page (app.py) and never renders document text as HTML (formatting.py).
"""

from __future__ import annotations

import functools
import hashlib
import html
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import gradio as gr

from ..errors import AssistantError, UsageError
from ..pipeline import Answer
from .batching import MAX_HISTORY, RequestFailed, answer_requests, check_history
from .formatting import (
    SourceCard, escape_markdown, export_markdown, format_answer_message, format_lookup,
    highlight_quote, source_cards,
)  # fmt: skip
from .server import AssistantSlot

log = logging.getLogger(__name__)

EXPORT_TTL_SECONDS = 3600
GENERIC_ERROR = "internal error: the server could not handle this request (details are in its log)"


def error_message(exc: BaseException) -> str:
    """What the user is told: an engine error's message on one line, else GENERIC_ERROR."""
    if isinstance(exc, AssistantError):
        # Toasts render HTML: escape, since the message may echo the user's input.
        return html.escape(" ".join(str(exc).split())[:300], quote=False)
    return GENERIC_ERROR


def user_errors(fn):
    """Engine errors become a one-line gr.Error; anything else a generic one (logged)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except gr.Error:
            raise
        except AssistantError as exc:
            raise gr.Error(error_message(exc), print_exception=False) from None
        except Exception as exc:
            log.exception("handler %s failed", fn.__name__)
            raise gr.Error(error_message(exc), print_exception=False) from None

    return wrapper


def uploaded_path(file, upload_dir: str | Path | None, refusal: str) -> str | None:
    """The path of a file gr.File received (a path string with type='filepath'; older
    payloads have a .name); None for none. With `upload_dir`, the path (symlinks and ".."
    resolved) must lie inside it, else AssistantError(refusal): a client can send any path,
    not only one it uploaded."""
    if file is None or file == "":
        return None
    path = str(getattr(file, "name", file))
    if upload_dir is not None and not Path(path).resolve().is_relative_to(Path(upload_dir).resolve()):
        raise AssistantError(refusal)
    return path


def upload_folder() -> str:
    """Where Gradio stores uploads (GRADIO_TEMP_DIR, else <tmp>/gradio), read per call."""
    from gradio.utils import get_upload_folder

    return get_upload_folder()


# --- the API: the same JSON as the CLI's --json --------------------------------------


def api_ask(slot: AssistantSlot, question: str, history: list[str] | None = None,
            k: int | None = None, mode: str | None = None) -> dict:  # fmt: skip
    """Answer a question: the JSON of `assistant ask --json` (Answer.to_dict())."""
    return slot.get().ask(question, check_history(history), k=k, mode=mode).to_dict()


def api_ask_batch(slot: AssistantSlot, question: Sequence, history: Sequence, k: Sequence,
                  mode: Sequence) -> list[dict | RequestFailed]:  # fmt: skip
    """`api_ask` for a batch of requests (one list per input), one encode call for all:
    per request its answer, or a `RequestFailed` with the error it alone raised."""
    try:
        results = answer_requests(slot.get(), list(zip(question, history, k, mode, strict=True)))
    except Exception as exc:  # not ready (every request is told), or a bug here (logged)
        if not isinstance(exc, AssistantError):
            log.exception("answering a batch of /ask requests failed")
        return [RequestFailed(error_message(exc))] * len(question)
    return [r if isinstance(r, dict) else RequestFailed(error_message(r)) for r in results]


def api_cite(slot: AssistantSlot, citation_id: str) -> dict:
    """Look a citation ID up: the JSON of `assistant cite --json`."""
    citation = slot.get().cite(citation_id if isinstance(citation_id, str) else "")
    return citation.lookup_dict()


# --- the page's handlers ------------------------------------------------------------


@dataclass
class ChatTurn:
    """What one question changes on the page."""

    answer: Answer
    chat: list[dict]
    turns: list[str]
    cards: list[SourceCard] = field(default_factory=list)
    export: str = ""


def chat_turn(slot: AssistantSlot, question: str, chat: list | None, turns: list | None,
              k: float | None = None, mode: str | None = None) -> ChatTurn:  # fmt: skip
    """Ask with the conversation's earlier user turns; append both messages to the chat."""
    turns = check_history(turns)
    answer = slot.get().ask(question, turns, k=None if k is None else int(k), mode=mode)
    chat = list(chat or []) + [
        {"role": "user", "content": escape_markdown(answer.question, one_line=True)},
        {"role": "assistant", "content": format_answer_message(answer)},
    ]
    return ChatTurn(answer, chat, (turns + [answer.question])[-MAX_HISTORY:],
                    source_cards(answer), export_markdown(answer))  # fmt: skip


def lookup(slot: AssistantSlot, citation_id: str) -> tuple[str, list]:
    """(header Markdown, highlighted passage) for a citation ID; stale ones say so."""
    citation_id = (citation_id or "").strip()
    if not citation_id:
        raise UsageError("paste a citation ID, e.g. doc.txt:120-240#a1b2c3")
    citation = slot.get().cite(citation_id)
    return format_lookup(citation_id, citation), highlight_quote(citation.passage, citation.quote)


def lookup_from_url(slot: AssistantSlot, citation_id: str | None) -> tuple[str, list] | None:
    """Like `lookup`, for `?cite=ID`: problems are shown in the page, not raised."""
    if not citation_id:
        return None
    try:
        return lookup(slot, citation_id[:500])
    except AssistantError as exc:
        return f"⚠️ {escape_markdown(str(exc)[:300], one_line=True)}", []


def write_export(markdown: str, directory: Path) -> Path:
    """The export file, named by its content; files older than an hour are pruned."""
    directory.mkdir(parents=True, exist_ok=True)
    now = time.time()
    for old in directory.glob("answer-*.md"):
        if now - old.stat().st_mtime > EXPORT_TTL_SECONDS:
            old.unlink(missing_ok=True)
    path = directory / f"answer-{hashlib.sha256(markdown.encode()).hexdigest()[:12]}.md"
    path.write_text(markdown, encoding="utf-8")
    return path
