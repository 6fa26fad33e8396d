"""The web UI: a Gradio 6 app over the Assistant, served by uvicorn inside FastAPI.

`build_app` lays out the page (chat with cited answers, sources, citation lookup,
settings, export) and the named API endpoints `/ask` and `/cite`; the handlers
are plain functions taking an `AssistantSlot`, testable without a server.
Concurrent `/ask` requests are answered in batches, one encode call each
(api_batch.py); the page's own questions are answered one by one.
`create_server_app` adds `/healthz` and `/readyz`; `serve` is `assistant serve`.
Does not retrieve or compose answers, and never renders document text as HTML
(see ui_format.py).
"""

from __future__ import annotations

import functools
import hashlib
import html
import importlib.util
import logging
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import gradio as gr

from . import api_batch
from .answer import Answer
from .api_batch import MAX_HISTORY, RequestFailed, answer_requests, check_history
from .config import load_settings
from .errors import AssistantError, UsageError
from .pipeline import Assistant
from .server import (
    AssistantSlot, RequestSizeLimit, as_slot, make_server, protected_paths, readiness,
)  # fmt: skip
from .ui_format import (
    QUOTE_LABEL, SourceCard, escape_markdown, export_markdown, format_answer_message,
    format_lookup, highlight_quote, source_cards,
)  # fmt: skip

log = logging.getLogger(__name__)

MAX_SOURCES = 6  # source slots beside the chat; more citations are in the export
# Waiting requests beyond this are told the server is busy. Room for 50 clients at once
# (an answer takes ~10-50 ms, so a full queue drains in about a second).
QUEUE_MAX = 64
CONCURRENCY = 2  # questions (or /ask batches) answered at once (a 2-core machine)
# /ask requests waiting together are answered as one batch of up to this many
# (1: one at a time). A batch shares one encode call and Gradio's per-call work.
MAX_BATCH = 16
# Request bodies past this are refused (413) before Gradio parses and keeps them: a
# question is at most 1,000 characters; the page also sends its chat (~1 KB a turn).
MAX_REQUEST_BYTES = 256 * 1024
EXPORT_TTL_SECONDS = 3600
EXAMPLES = [
    "When was the armistice signed?",
    "Where did the armistice talks begin?",
    "Why did the prisoner of war issue stall the talks?",
    "What did the Panmunjom Declaration say?",
]
GENERIC_ERROR = "internal error: the server could not handle this request (details are in its log)"
HIGHLIGHT_COLORS = {QUOTE_LABEL: "#fde047"}
# HighlightedText breaks words anywhere by default; passages read better whole-word.
CSS = """
.passage .text { word-break: normal !important; overflow-wrap: anywhere; }
.passage.block { border: 1px solid var(--border-color-primary) !important; }
"""


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


# --- the page -------------------------------------------------------------------------


def build_app(source: Assistant | AssistantSlot | Callable[[], Assistant], *,
              max_batch: int = MAX_BATCH) -> gr.Blocks:  # fmt: skip
    """The whole page and its API. `source` may still be loading (an AssistantSlot).

    `max_batch` 1 answers `/ask` requests one at a time (as before batching: for
    comparison, and the fallback should this Gradio lack what batching needs).
    """
    slot = as_slot(source)
    batched = max_batch > 1 and api_batch.supported()
    if max_batch > 1 and not batched:
        log.warning("this Gradio cannot batch /ask per request; answering one at a time")
    export_dir = Path(tempfile.mkdtemp(prefix="assistant-export-"))
    with gr.Blocks(title="Korea talks assistant", analytics_enabled=False,
                   delete_cache=(3600, 3600)) as demo:  # fmt: skip
        gr.Markdown(
            "# Korea talks assistant\nAsk about the Korean War armistice talks and the "
            "inter-Korean peace talks. Every sentence of an answer is quoted from the "
            "documents and cited; when they don't answer, it says so."
        )
        turns, cited = gr.State([]), gr.State([])
        with gr.Tabs() as tabs:
            with gr.Tab("Ask", id="ask"):
                with gr.Row():
                    with gr.Column(scale=3):
                        chat = gr.Chatbot(label="Conversation", height=460, latex_delimiters=[],
                                          elem_id="chat", feedback_options=None,
                                          buttons=["copy", "copy_all"])  # fmt: skip
                        question_box = gr.Textbox(label="Question", elem_id="question", lines=1,
                                                  max_length=slot.settings.max_question_chars,
                                                  placeholder="e.g. When was the armistice signed?")  # fmt: skip
                        with gr.Row():
                            ask_btn = gr.Button("Ask", variant="primary", elem_id="ask")
                            clear_btn = gr.Button("New conversation", elem_id="clear")
                        gr.Examples(EXAMPLES, inputs=[question_box], label="Examples")
                        with gr.Accordion("Settings", open=False):
                            top_k = gr.Slider(1, 50, value=slot.settings.top_k, step=1,
                                              label="Passages to retrieve (top-k)")  # fmt: skip
                            mode = gr.Radio([("Hybrid", "hybrid"), ("Dense", "dense"), ("BM25", "bm25")],
                                            value=slot.settings.mode, label="Retrieval mode")  # fmt: skip
                        download = gr.DownloadButton("Download answer (Markdown)", visible=False,
                                                     elem_id="download")  # fmt: skip
                        with gr.Accordion("Answer as Markdown (copy)", open=False):
                            export_box = gr.Textbox(show_label=False, lines=8, interactive=False,
                                                    buttons=["copy"])  # fmt: skip
                    with gr.Column(scale=2, elem_id="sources"):
                        gr.Markdown("### Sources")
                        note = gr.Markdown("The cited passages of the latest answer appear here.")
                        slots = []
                        for i in range(MAX_SOURCES):
                            with gr.Group(visible=False) as box:
                                header = gr.Markdown(latex_delimiters=[])
                                passage = gr.HighlightedText(show_label=False, show_legend=False,
                                                             color_map=HIGHLIGHT_COLORS,
                                                             show_inline_category=False,
                                                             elem_classes="passage")  # fmt: skip
                                details = gr.Markdown(latex_delimiters=[])
                                open_btn = gr.Button(f"Open [{i + 1}] in citation lookup", size="sm",
                                                     elem_id=f"open-{i + 1}")  # fmt: skip
                            slots.append((box, header, passage, details, open_btn))
            with gr.Tab("Citation lookup", id="lookup"):
                cite_box = gr.Textbox(label="Citation ID", elem_id="cite-id",
                                      placeholder="000_ed13bf9180557300.txt:9128-9215#79a85f")  # fmt: skip
                lookup_btn = gr.Button("Look up", elem_id="lookup-btn")
                lookup_header = gr.Markdown(latex_delimiters=[])
                lookup_passage = gr.HighlightedText(label="Passage in context", show_legend=False,
                                                    color_map=HIGHLIGHT_COLORS,
                                                    show_inline_category=False, elem_id="lookup-passage",
                                                    elem_classes="passage")  # fmt: skip
            # The evaluation tab is another module's; omitted until that module exists.
            if importlib.util.find_spec(f"{__package__}.eval_ui") is not None:
                with gr.Tab("Evaluation", id="evaluation"):
                    from .eval_ui import build_evaluation_tab

                    build_evaluation_tab(slot.get)

        slot_outputs = [c for s in slots for c in s[:4]]
        page_outputs = [chat, question_box, turns, cited, note, download, export_box, *slot_outputs]

        @user_errors
        def on_ask(q, chat_value, turns_value, k, mode_value):
            turn = chat_turn(slot, q, chat_value, turns_value, k, mode_value)
            shown = turn.cards[:MAX_SOURCES]
            extra = len(turn.cards) - len(shown)
            note_text = ("No sources: the documents don't answer that." if turn.answer.abstained
                         else f"{len(turn.cards)} cited passage(s)"
                         + (f"; {extra} more in the download." if extra > 0 else "."))  # fmt: skip
            updates = []
            for i in range(MAX_SOURCES):
                card = shown[i] if i < len(shown) else None
                updates += [gr.Group(visible=card is not None),
                            card.header if card else "", card.spans if card else [],
                            card.details if card else ""]  # fmt: skip
            file = write_export(turn.export, export_dir)
            return [turn.chat, "", turn.turns, [c.citation_id for c in shown], note_text,
                    gr.DownloadButton(value=str(file), visible=True), turn.export, *updates]  # fmt: skip

        def on_clear():
            hidden = [u for _ in range(MAX_SOURCES) for u in (gr.Group(visible=False), "", [], "")]
            return [[], "", [], [], "The cited passages of the latest answer appear here.",
                    gr.DownloadButton(visible=False), "", *hidden]  # fmt: skip

        @user_errors
        def on_lookup(citation_id):
            return lookup(slot, citation_id)

        def on_open(i):
            @user_errors
            def open_citation(cited_ids):
                if i >= len(cited_ids):
                    raise UsageError("that source is no longer shown; ask again")
                header, spans = lookup(slot, cited_ids[i])
                return gr.Tabs(selected="lookup"), cited_ids[i], header, spans

            return open_citation

        def on_page_load(request: gr.Request):
            param = request.query_params.get("cite") if request is not None else None
            shown = lookup_from_url(slot, param)
            if shown is None:
                return gr.skip(), gr.skip(), gr.skip(), gr.skip()
            return gr.Tabs(selected="lookup"), param[:500], shown[0], shown[1]

        private = {"api_visibility": "private"}
        ask_inputs = [question_box, chat, turns, top_k, mode]
        ask_btn.click(on_ask, ask_inputs, page_outputs, **private)
        question_box.submit(on_ask, ask_inputs, page_outputs, **private)
        clear_btn.click(on_clear, None, page_outputs, **private)
        chat.clear(on_clear, None, page_outputs, **private)
        lookup_outputs = [lookup_header, lookup_passage]
        lookup_btn.click(on_lookup, [cite_box], lookup_outputs, **private)
        cite_box.submit(on_lookup, [cite_box], lookup_outputs, **private)
        for i, s in enumerate(slots):
            s[4].click(on_open(i), [cited], [tabs, cite_box, *lookup_outputs], **private)
        demo.load(on_page_load, None, [tabs, cite_box, *lookup_outputs], **private)

        @user_errors
        def ask(question: str, history: list[str] | None = None, k: int | None = None,
                mode: str | None = None) -> dict:  # fmt: skip
            """Answer a question from the documents; the JSON of `assistant ask --json`.

            history: earlier user questions, oldest first (for follow-ups); k: passages to
            retrieve (1-100, default 10); mode: "hybrid" (default), "dense" or "bm25".
            """
            return api_ask(slot, question, history, k, mode)

        @user_errors
        def cite(citation_id: str) -> dict:
            """Look a citation ID up; the JSON of `assistant cite --json` (with "stale")."""
            return api_cite(slot, citation_id)

        # Batched, Gradio passes one list per input and takes a tuple of one list back;
        # `ask`'s signature, types and docstring (wraps) still describe one request.
        @functools.wraps(ask)
        def ask_many(question, history, k, mode):
            return (api_ask_batch(slot, question, history, k, mode),)

        if batched:
            gr.api(ask_many, api_name="ask", batch=True, max_batch_size=max_batch)
        else:
            gr.api(ask, api_name="ask")
        gr.api(cite, api_name="cite")
    demo.queue(max_size=QUEUE_MAX, default_concurrency_limit=CONCURRENCY)
    if batched:
        api_batch.answer_each_request_apart(demo, "ask")
    return demo


# --- the server -----------------------------------------------------------------------


def create_server_app(source: Assistant | AssistantSlot, *, blocked: Sequence[str] = (),
                      max_batch: int = MAX_BATCH):  # fmt: skip
    """FastAPI with /healthz, /readyz and the Gradio page mounted at /."""
    from fastapi import FastAPI
    from fastapi.responses import JSONResponse

    slot = as_slot(source)
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    app.add_middleware(RequestSizeLimit, max_bytes=MAX_REQUEST_BYTES)

    @app.get("/healthz")
    def healthz() -> dict:
        return {"status": "alive"}

    @app.get("/readyz")
    def readyz() -> JSONResponse:
        status, body = readiness(slot)
        return JSONResponse(body, status_code=status)

    blocked = list(blocked) or protected_paths(slot.settings)
    demo = build_app(slot, max_batch=max_batch)
    # Gradio checks that a file input was uploaded (not any server path a client names)
    # only once `has_launched`, which launch() sets and mount_gradio_app does not: without
    # this it copies the named file into its cache and hands that to the handler.
    demo.has_launched = True
    return gr.mount_gradio_app(
        app, demo, path="/", show_error=False, allowed_paths=[],
        blocked_paths=blocked, footer_links=["api", "settings"], run_history=False, ssr_mode=False,
        mcp_server=False, css=CSS,
    )  # fmt: skip


def serve(args) -> int:
    """`assistant serve`: start listening, load or update the index in the background."""
    from .cli import print_progress

    settings = load_settings().with_(seeds_dir=Path(args.seeds), index_dir=Path(args.index))
    slot = AssistantSlot(settings=settings)
    app = create_server_app(slot, blocked=protected_paths(settings),
                            max_batch=args.max_batch or MAX_BATCH)  # fmt: skip
    server, sock = make_server(app, args.host, args.port)

    def load() -> Assistant:
        assistant = Assistant.load(args.seeds, args.index, settings=load_settings(),
                                   progress=print_progress)  # fmt: skip
        for warning in assistant.warnings:
            print(f"warning: {warning}", file=sys.stderr)
        return assistant

    def loaded(done: AssistantSlot) -> None:
        if done.error is not None:
            server.should_exit = True  # nothing to serve: stop, serve() reports it
        else:
            print(f"ready: http://{args.host}:{args.port}/", file=sys.stderr, flush=True)

    print(f"listening on http://{args.host}:{args.port}/ (loading the model and index...)",
          file=sys.stderr, flush=True)  # fmt: skip
    slot.load_in_background(load, on_done=loaded)
    try:
        server.run(sockets=[sock])
    except KeyboardInterrupt:  # uvicorn re-raises Ctrl-C after shutting down cleanly
        print("stopped", file=sys.stderr)
        return 0
    if slot.error is not None:
        print(f"error: {slot.error}", file=sys.stderr)
        return 2
    return 0
