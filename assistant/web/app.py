"""The web UI: a Gradio 6 page over the Assistant.

`build_app` lays out the page (chat with cited answers, sources, citation lookup,
settings, export, the documents) and the named API endpoints `/ask` and `/cite`; the handlers
are plain functions in handlers.py. Concurrent `/ask` requests are answered in
batches, one encode call each (batching.py); the page's own questions are
answered one by one. serve.py mounts the page in FastAPI and runs it. Does not
retrieve or compose answers, and never renders document text as HTML (see
formatting.py).
"""

from __future__ import annotations

import functools
import importlib.util
import logging
import tempfile
from collections.abc import Callable
from pathlib import Path

import gradio as gr

from ..errors import AssistantError, UsageError
from ..text.markdown import escape_markdown
from ..pipeline import Assistant
from . import batching, conversations
from .handlers import (
    api_ask, api_ask_batch, api_cite, chat_turn, lookup, lookup_from_url, user_errors, write_export,
)  # fmt: skip
from .documents_tab import Uploads, build_documents_tab
from .formatting import ANSWER_LABEL, QUOTE_LABEL
from .server import AssistantSlot, as_slot

log = logging.getLogger(__name__)

MAX_SOURCES = 6  # source slots beside the chat; more citations are in the export
# Waiting requests beyond this are told the server is busy. Room for 50 clients at once
# (an answer takes ~10-50 ms, so a full queue drains in about a second).
QUEUE_MAX = 64
SESSION_CAPACITY = 64  # sessions whose server-side state is kept (see build_app)
CONCURRENCY = 2  # questions (or /ask batches) answered at once (a 2-core machine)
# /ask requests waiting together are answered as one batch of up to this many
# (1: one at a time). A batch shares one encode call and Gradio's per-call work.
MAX_BATCH = 16
EXAMPLES = [
    "When was the armistice signed?",
    "Where did the armistice talks begin?",
    "Why did the prisoner of war issue stall the talks?",
    "What did the Panmunjom Declaration say?",
]
HIGHLIGHT_COLORS = {QUOTE_LABEL: "#fde047", ANSWER_LABEL: "#f97316"}
NO_SOURCES_YET = "The cited passages of the latest answer appear here."
REOPENED = "Reopened a saved conversation: each [n] in it opens its passage in the citation lookup."
# HighlightedText breaks words anywhere and sets each span apart as a box: passages read
# better as running text, whole-word, the quote and its short answer marked inline: the
# spans' boxes go (display: contents; the text inherits their colour), and the white space
# Gradio puts between them takes no room (font-size 0 outside the text).
# On a narrow screen the two columns stack: the sources then come straight under the
# chat (its latest answer), before the question box, examples and settings.
CSS = """
.passage .textfield { display: block !important; line-height: 1.8; font-size: 0; }
.passage .token-container, .passage .token { display: contents !important; }
.passage .text { word-break: normal !important; overflow-wrap: anywhere; padding: 2px 0 !important;
                 font-size: var(--text-md); background-color: inherit; border-radius: 2px;
                 -webkit-box-decoration-break: clone; box-decoration-break: clone; }
.passage .line-break { display: block; }
.passage.block { border: 1px solid var(--border-color-primary) !important; }
@media (max-width: 768px) {
  #ask-row { flex-direction: column !important; }
  #ask-main { display: contents !important; }
  #ask-main > * { order: 3; width: 100%; }
  #ask-main > #chat { order: 1; }
  #sources { order: 2; width: 100%; }
}
"""


def build_app(source: Assistant | AssistantSlot | Callable[[], Assistant], *,
              max_batch: int = MAX_BATCH, uploads: Uploads = Uploads()) -> gr.Blocks:  # fmt: skip
    """The whole page and its API. `source` may still be loading (an AssistantSlot).
    `uploads`: whether the Documents tab may add and remove documents, and its token.

    `max_batch` 1 answers `/ask` requests one at a time (as before batching: for
    comparison, and the fallback should this Gradio lack what batching needs).
    """
    slot = as_slot(source)
    batched = max_batch > 1 and batching.supported()
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
        turns, cited, conversation = gr.State([]), gr.State([]), gr.State(None)
        saved = gr.BrowserState(conversations.EMPTY, storage_key=conversations.STORAGE_KEY,
                                secret=conversations.browser_secret(slot.settings.index_dir))  # fmt: skip
        with gr.Tabs() as tabs:
            with gr.Tab("Ask", id="ask"):
                with gr.Row(elem_id="ask-row"):
                    with gr.Column(scale=3, elem_id="ask-main"):
                        chat = gr.Chatbot(label="Conversation", height=460, latex_delimiters=[],
                                          elem_id="chat", feedback_options=None,
                                          buttons=["copy", "copy_all"])  # fmt: skip
                        question_box = gr.Textbox(label="Question", elem_id="question", lines=1,
                                                  max_length=slot.settings.max_question_chars,
                                                  placeholder="e.g. When was the armistice signed?")  # fmt: skip
                        with gr.Row():
                            ask_btn = gr.Button("Ask", variant="primary", elem_id="ask")
                            clear_btn = gr.Button("New conversation", elem_id="clear")
                        with gr.Row():
                            picker = gr.Dropdown([], value=None, label="Saved conversations (in this browser)",
                                                 elem_id="conversations", scale=4)  # fmt: skip
                            forget_btn = gr.Button("Forget this one", elem_id="forget", size="sm", scale=1)
                        examples = gr.Examples(EXAMPLES, inputs=[question_box], label="Examples (click to ask)")
                        with gr.Accordion("Settings", open=False):
                            top_k = gr.Slider(1, 50, value=slot.settings.top_k, step=1,
                                              label="Passages to retrieve (top-k)")  # fmt: skip
                            mode = gr.Radio([("Hybrid", "hybrid"), ("Dense", "dense"), ("BM25", "bm25")],
                                            value=slot.settings.mode, label="Retrieval mode")  # fmt: skip
                        download = gr.DownloadButton("Download answer (Markdown)", visible=False,
                                                     elem_id="download")  # fmt: skip
                        with gr.Accordion("Answer as Markdown (copy)", open=False, visible=False,
                                          elem_id="export") as export_group:  # fmt: skip
                            export_box = gr.Textbox(show_label=False, lines=8, interactive=False,
                                                    buttons=["copy"], elem_id="export-box")  # fmt: skip
                    with gr.Column(scale=2, elem_id="sources"):
                        gr.Markdown("### Sources")
                        note = gr.Markdown(NO_SOURCES_YET, elem_id="sources-note")
                        slots = []
                        for i in range(MAX_SOURCES):
                            with gr.Group(visible=False) as box:
                                header = gr.Markdown(latex_delimiters=[])
                                passage = gr.HighlightedText(show_label=False, show_legend=False,
                                                             color_map=HIGHLIGHT_COLORS,
                                                             show_inline_category=False,
                                                             elem_classes="passage")  # fmt: skip
                                details = gr.Markdown(latex_delimiters=[])
                                with gr.Accordion("The numbers behind this", open=False):
                                    scores = gr.Markdown(latex_delimiters=[])
                                open_btn = gr.Button(f"Open [{i + 1}] in citation lookup", size="sm",
                                                     elem_id=f"open-{i + 1}")  # fmt: skip
                            slots.append((box, header, passage, details, scores, open_btn))
            with gr.Tab("Citation lookup", id="lookup"):
                cite_box = gr.Textbox(label="Citation ID", elem_id="cite-id",
                                      placeholder="000_ed13bf9180557300.txt:9128-9215#79a85f")  # fmt: skip
                lookup_btn = gr.Button("Look up", elem_id="lookup-btn")
                lookup_header = gr.Markdown(latex_delimiters=[], elem_id="lookup-header")
                lookup_passage = gr.HighlightedText(label="Passage in context", show_legend=False,
                                                    color_map=HIGHLIGHT_COLORS,
                                                    show_inline_category=False, elem_id="lookup-passage",
                                                    elem_classes="passage")  # fmt: skip
            with gr.Tab("Documents", id="documents") as documents_tab:
                documents = build_documents_tab(slot, uploads)
            show, shown_outputs = documents["show"]
            documents_tab.select(show, None, shown_outputs, api_visibility="private")
            # The evaluation tab is another module's; omitted until that module exists.
            if importlib.util.find_spec(f"{__package__}.evaluation_tab") is not None:
                with gr.Tab("Evaluation", id="evaluation"):
                    from .evaluation_tab import build_evaluation_tab

                    build_evaluation_tab(slot.get)

        slot_outputs = [c for s in slots for c in s[:5]]
        page_outputs = [chat, question_box, turns, cited, note, download, export_group, export_box,
                        *slot_outputs]  # fmt: skip
        kept_outputs = [saved, conversation, picker]

        def hidden_sources() -> list:
            return [u for _ in range(MAX_SOURCES) for u in (gr.Group(visible=False), "", [], "", "")]

        @user_errors
        def on_ask(q, chat_value, turns_value, k, mode_value, saved_value, conversation_id):
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
                            card.details if card else "", card.scores if card else ""]  # fmt: skip
            # An abstention has nothing to download; its Markdown (the closest passages) stays.
            file = None if turn.answer.abstained else write_export(turn.export, export_dir)
            first = turn.turns[0] if turn.turns else turn.answer.question
            saved_value, conversation_id = conversations.record(
                saved_value, conversation_id, turn.chat, turn.turns, first)
            return [turn.chat, "", turn.turns, [c.citation_id for c in shown], note_text,
                    gr.DownloadButton(value=str(file) if file else None, visible=file is not None),
                    gr.Accordion(visible=True), turn.export, *updates,
                    saved_value, conversation_id,
                    gr.Dropdown(choices=conversations.choices(saved_value), value=conversation_id)]  # fmt: skip

        def show_conversation(saved_value, found, note_text=NO_SOURCES_YET):
            chat_value = found["chat"] if found else []
            turns_value = found["turns"] if found else []
            return [chat_value, "", turns_value, [], note_text if found else NO_SOURCES_YET,
                    gr.DownloadButton(visible=False), gr.Accordion(visible=False), "",
                    *hidden_sources(), saved_value, found["id"] if found else None,
                    gr.Dropdown(choices=conversations.choices(saved_value),
                                value=found["id"] if found else None)]  # fmt: skip

        def on_clear(saved_value):
            saved_value, _ = conversations.restore(saved_value, None)
            return show_conversation(saved_value, None)

        def on_pick(saved_value, conversation_id):
            saved_value, found = conversations.restore(saved_value, conversation_id)
            return show_conversation(saved_value, found, REOPENED)

        def on_forget(saved_value, conversation_id):
            return show_conversation(conversations.forget(saved_value, conversation_id), None)

        @user_errors  # anything but an engine error: one generic line, logged
        def lookup_updates(citation_id):
            try:
                return lookup(slot, citation_id)
            except AssistantError as exc:  # shown in place of the old result, never under it
                return f"⚠️ {escape_markdown(' '.join(str(exc).split())[:300], one_line=True)}", []

        def on_open(i):
            @user_errors
            def open_citation(cited_ids):
                if i >= len(cited_ids):
                    raise UsageError("that source is no longer shown; ask again")
                header, spans = lookup(slot, cited_ids[i])
                return gr.Tabs(selected="lookup"), cited_ids[i], header, spans

            return open_citation

        def on_page_load(saved_value, request: gr.Request):
            saved_value = conversations.clean(saved_value)
            # Nothing to reopen: leave the page alone (a question asked at once may be
            # answered before this returns, and must not be wiped by it).
            restored = (on_pick(saved_value, saved_value["current"]) if saved_value["current"]
                        else [gr.skip()] * len(ask_outputs))  # fmt: skip
            param = request.query_params.get("cite") if request is not None else None
            shown = lookup_from_url(slot, param)
            if shown is None:
                return [gr.skip()] * 4 + restored
            return [gr.Tabs(selected="lookup"), param[:500], shown[0], shown[1]] + restored

        private = {"api_visibility": "private"}
        ask_inputs = [question_box, chat, turns, top_k, mode, saved, conversation]
        ask_outputs = page_outputs + kept_outputs
        ask_btn.click(on_ask, ask_inputs, ask_outputs, **private)
        question_box.submit(on_ask, ask_inputs, ask_outputs, **private)
        examples.load_input_event.then(on_ask, ask_inputs, ask_outputs, **private)
        clear_btn.click(on_clear, [saved], ask_outputs, **private)
        chat.clear(on_clear, [saved], ask_outputs, **private)
        picker.input(on_pick, [saved, picker], ask_outputs, **private)
        forget_btn.click(on_forget, [saved, conversation], ask_outputs, **private)
        lookup_outputs = [lookup_header, lookup_passage]
        lookup_btn.click(lookup_updates, [cite_box], lookup_outputs, **private)
        cite_box.submit(lookup_updates, [cite_box], lookup_outputs, **private)
        for i, s in enumerate(slots):
            s[5].click(on_open(i), [cited], [tabs, cite_box, *lookup_outputs], **private)
        demo.load(on_page_load, [saved], [tabs, cite_box, *lookup_outputs, *ask_outputs], **private)

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
    # Gradio keeps a state (a copy of the page's config, the last inputs) for every
    # session, and every API call is a new one: 10,000 by default, ~0.1-0.4 MB each. The
    # page's own state is its chat; the oldest sessions beyond this are dropped.
    demo.state_session_capacity = SESSION_CAPACITY
    if batched:
        batching.answer_each_request_apart(demo, "ask")
    return demo
