"""The web UI's handlers and formatting, called directly (no server, fake embedder)."""

from __future__ import annotations

import html
import os
import threading
import time

import gradio as gr
import pytest
from conftest import CountingEmbedder, FakeEmbedder
from markdown_it import MarkdownIt

from assistant import Assistant
from assistant.web.batching import RequestFailed
from assistant.web.app import MAX_BATCH, build_app  # fmt: skip
from assistant.web.batching import check_history
from assistant.web.handlers import GENERIC_ERROR, api_ask, api_ask_batch, api_cite, chat_turn, lookup, lookup_from_url, user_errors, write_export
from assistant.web.serve import create_server_app
from assistant.errors import ModelNotFoundError, UsageError
from assistant.web.server import AssistantSlot, NotReadyError, readiness
from assistant.web.formatting import ANSWER_LABEL, QUOTE_LABEL, escape_markdown, highlight_quote

HOSTILE = [
    "<img src=x onerror=alert(1)>",
    "<script>alert(2)</script>",
    "[x](javascript:alert(3))",
    "![pic](http://example.com/a.png)",
    "<javascript:alert(4)>",
    "&lt;b&gt; already an entity",
]


@pytest.fixture
def assistant(tiny_seeds, tiny_settings):
    return Assistant.load(tiny_seeds, tiny_settings.index_dir, settings=tiny_settings,
                          embedder=FakeEmbedder())  # fmt: skip


@pytest.fixture
def slot(assistant):
    return AssistantSlot(assistant)


def raised_message(fn, *args) -> str:
    with pytest.raises(gr.Error) as info:
        user_errors(fn)(*args)
    return info.value.message


# --- formatting --------------------------------------------------------------------


@pytest.mark.parametrize(
    "text", HOSTILE + ["", "plain words", "# not a heading", "1. not a list", "- nor this",
                       "> nor a quote", "*stars* _under_ `code` $x$ ~strike~ | pipe", "한국 🕊️"],
)  # fmt: skip
def test_escaped_markdown_renders_the_text_literally_and_inertly(text):
    rendered = MarkdownIt("commonmark").enable(["table", "strikethrough"]).render(
        escape_markdown(text)
    )
    assert "<img" not in rendered and "<script" not in rendered and "<a " not in rendered
    inner = rendered.strip().removeprefix("<p>").removesuffix("</p>")
    assert html.unescape(inner) == text  # nothing lost, nothing became markup


@pytest.mark.parametrize(
    "passage, quote, expected",
    [
        ("A b. Quote here. C d.", "Quote here.", [("A b. ", None), ("Quote here.", QUOTE_LABEL), (" C d.", None)]),
        ("Quote first. Then more.", "Quote first.", [("Quote first.", QUOTE_LABEL), (" Then more.", None)]),
        ("A b. Quote\nhere. C.", "Quote here.", [("A b. ", None), ("Quote\nhere.", QUOTE_LABEL), (" C.", None)]),
        ("Cleaned passage.", "• Missing quote", [("• Missing quote", QUOTE_LABEL), ("\n\nCleaned passage.", None)]),
        ("Nothing quoted.", "", [("Nothing quoted.", None)]),
    ],
)  # fmt: skip
def test_highlight_quote(passage, quote, expected):
    assert highlight_quote(passage, quote) == expected


# --- the chat ----------------------------------------------------------------------


def test_a_question_gets_a_cited_answer_sources_and_an_export(slot, tiny_seeds):
    turn = chat_turn(slot, "When was the armistice signed?", [], [], 10, "hybrid")
    answer = turn.answer
    assert not answer.abstained and "[1]" in answer.answer
    assert [m["role"] for m in turn.chat] == ["user", "assistant"]
    assert "?cite=" in turn.chat[1]["content"] and "Confidence" in turn.chat[1]["content"]
    assert [card.n for card in turn.cards] == [c.n for c in answer.citations]
    for card, c in zip(turn.cards, answer.citations):
        original = (tiny_seeds / c.doc).read_text(encoding="utf-8")
        assert original[c.start : c.end] == c.quote
        # the quote, with the short answer (if it lies in this quote) marked inside it
        assert "".join(t for t, label in card.spans if label in (QUOTE_LABEL, ANSWER_LABEL)) == c.quote
        # why, in plain words; the numbers one click away
        assert "Why this passage" in card.details and "closest in meaning" in card.details
        assert "cosine" not in card.details and "fused rank" in card.scores
        assert escape_markdown(c.title, one_line=True) in card.header
    # The two documents say the same thing: the second citation corroborates the first.
    assert "Also in" in turn.cards[0].details
    for c in answer.citations:
        assert escape_markdown(c.quote, one_line=True) in turn.export
        assert f"characters {c.start}–{c.end}" in turn.export and c.section in turn.export


def test_follow_ups_pass_the_earlier_user_turns(slot, assistant, monkeypatch):
    seen = []
    ask = assistant.ask
    monkeypatch.setattr(assistant, "ask", lambda q, h=(), **kw: seen.append(list(h)) or ask(q, h, **kw))
    first = chat_turn(slot, "What was the hardest issue at the talks?", [], [])
    second = chat_turn(slot, "And when was it signed?", first.chat, first.turns)
    assert seen == [[], ["What was the hardest issue at the talks?"]]
    assert second.turns == ["What was the hardest issue at the talks?", "And when was it signed?"]
    assert len(second.chat) == 4


def test_an_off_topic_question_abstains_and_cites_nothing(slot):
    turn = chat_turn(slot, "What is the best recipe for chocolate cake?", [], [])
    assert turn.answer.abstained and turn.cards == []
    assert "Not in the documents" in turn.chat[-1]["content"]
    # Nothing is cited: no [n] marker. The only links are to the closest passages, listed
    # after the abstention for the reader to check (issue 17).
    content = turn.chat[-1]["content"]
    assert "[\\[" not in content
    before, _, listed = content.partition("closest passages, for you to check (not an answer)")
    assert "?cite=" not in before and listed.count("?cite=") == len(turn.answer.closest) > 0
    assert "Not in the documents" in turn.export and "## Citations" not in turn.export


@pytest.mark.parametrize(
    "question, message",
    [("", "the question is empty"), ("   ", "the question is empty"),
     ("x" * 1001, "too long (1001 characters; the limit is 1000)")],
)  # fmt: skip
def test_bad_questions_are_one_line_ui_errors_on_the_chat_and_the_api(slot, question, message):
    assert message in raised_message(chat_turn, slot, question, [], [])
    assert message in raised_message(api_ask, slot, question)


@pytest.mark.parametrize("k, mode", [(0, None), (101, None), (None, "fuzzy")])
def test_bad_settings_are_ui_errors(slot, k, mode):
    assert raised_message(api_ask, slot, "When was the armistice signed?", None, k, mode)


def test_unexpected_errors_become_a_generic_message(slot, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("secret detail /srv/index/v-1/dense.faiss")

    monkeypatch.setattr(slot.get(), "ask", broken)
    assert raised_message(api_ask, slot, "When was the armistice signed?") == GENERIC_ERROR


@pytest.mark.parametrize("history", ["one string", [1, 2], {"a": 1}])
def test_history_must_be_a_list_of_strings(history):
    with pytest.raises(UsageError):
        check_history(history)


# --- the batched API ---------------------------------------------------------------


BATCH = [  # (question, history, k, mode), as the API receives them
    ("When was the armistice signed?", None, None, None),
    ("", None, None, None),
    ("And where?", ["When was the armistice signed?"], 10, "hybrid"),
    ("What was the hardest issue?", None, 3, "bm25"),
    ("x" * 1001, None, None, None),
    (None, None, None, None),
    ("Where did the talks begin?", "one string", None, None),
    ("Where did the talks begin?", None, 101, None),
    ("Where did the talks begin?", None, None, "fuzzy"),
    ("Where did the talks begin?", None, 10, None),
]


def expected_result(slot, request) -> dict | RequestFailed:
    """What `api_ask` gives that request alone: its answer, or the message it raises."""
    try:
        return user_errors(api_ask)(slot, *request)
    except gr.Error as exc:
        return RequestFailed(exc.message)


def test_a_batch_gives_each_request_what_api_ask_gives_it_alone(tiny_seeds, tiny_settings):
    assistant = Assistant.load(tiny_seeds, tiny_settings.index_dir, settings=tiny_settings,
                               embedder=CountingEmbedder())  # fmt: skip
    slot = AssistantSlot(assistant)
    assistant.embedder.calls = 0
    results = api_ask_batch(slot, *zip(*BATCH))
    # One encode call per distinct (k, mode) of the valid requests; the invalid ones
    # never reach the model.
    assert assistant.embedder.calls == 2
    assert results == [expected_result(slot, request) for request in BATCH]
    assert [isinstance(r, dict) for r in results] == [True, False, True, True, False, False,
                                                      False, False, False, True]  # fmt: skip


def test_a_request_that_breaks_its_batch_fails_alone(slot, assistant, monkeypatch):
    ask_batch = assistant.ask_batch

    def breaks_on_cake(questions, histories=None, **kwargs):
        if any("cake" in q for q in questions):
            raise RuntimeError("secret detail /srv/index")
        return ask_batch(questions, histories, **kwargs)

    monkeypatch.setattr(assistant, "ask_batch", breaks_on_cake)
    requests = [("When was the armistice signed?", None, None, None),
                ("What is the best cake?", None, None, None),
                ("Where did the talks begin?", None, None, None)]  # fmt: skip
    results = api_ask_batch(slot, *zip(*requests))
    assert results[1] == RequestFailed(GENERIC_ERROR)
    assert [results[0], results[2]] == [api_ask(slot, q) for q, *_ in requests[::2]]


def test_every_request_of_a_batch_is_told_while_loading(assistant):
    slot = AssistantSlot(settings=assistant.settings)  # never filled: still loading
    results = api_ask_batch(slot, ["When?", "Where?"], [None, None], [None, None], [None, None])
    assert len(results) == 2 and all("still loading" in r.message for r in results)


def test_ask_is_batched_unless_built_with_max_batch_1_and_its_api_is_the_same(slot):
    def ask_of(demo):
        return next(fn for fn in demo.fns.values() if fn.api_name == "ask")

    batched, single = build_app(slot), build_app(slot, max_batch=1)
    assert ask_of(batched).batch and ask_of(batched).max_batch_size == MAX_BATCH
    assert not ask_of(single).batch
    info = [demo.get_api_info()["named_endpoints"]["/ask"] for demo in (batched, single)]
    assert info[0] == info[1]
    assert [p["parameter_name"] for p in info[0]["parameters"]] == ["question", "history", "k", "mode"]


# --- the API and the lookup --------------------------------------------------------


def test_the_api_returns_the_json_of_the_cli(slot, assistant):
    question = "Where did the talks begin?"
    assert api_ask(slot, question) == assistant.ask(question).to_dict()
    citation = api_ask(slot, question)["citations"][0]
    looked_up = api_cite(slot, citation["id"])
    assert looked_up["quote"] == citation["quote"] and looked_up["stale"] is False
    assert set(looked_up) == set(citation) | {"stale", "passage_start", "passage_end"}


def test_lookup_highlights_the_quote_and_flags_a_stale_id(slot, assistant, tiny_seeds):
    citation = api_ask(slot, "Where did the talks begin?")["citations"][0]
    header, spans = lookup(slot, citation["id"])
    assert "Stale" not in header and [t for t, label in spans if label] == [citation["quote"]]
    doc = tiny_seeds / citation["doc"]
    doc.write_text("A new first line.\n" + doc.read_text(encoding="utf-8"), encoding="utf-8")
    assistant.refresh()
    header, spans = lookup(slot, citation["id"])
    assert "Stale citation" in header and any(label for _, label in spans)


@pytest.mark.parametrize("bad", ["", "nope", "missing.txt:1-5#abcdef"])
def test_a_bad_citation_id_is_a_ui_error(slot, bad):
    assert raised_message(lookup, slot, bad)


def test_a_bad_citation_id_in_the_url_is_shown_escaped_not_raised(slot):
    assert lookup_from_url(slot, None) is None
    header, spans = lookup_from_url(slot, "<img src=x onerror=alert(1)>")
    assert "&lt;img" in header and "<img" not in header and spans == []
    assert "&lt;img" in raised_message(lookup, slot, "<img src=x onerror=alert(1)>")


# --- loading, readiness, the page --------------------------------------------------


def test_handlers_say_still_loading_until_the_background_load_ends(assistant):
    release = threading.Event()
    slot = AssistantSlot(settings=assistant.settings)
    slot.load_in_background(lambda: release.wait(10) and assistant)
    assert "still loading" in raised_message(api_ask, slot, "When was the armistice signed?")
    assert readiness(slot) == (503, {"status": "loading"})
    release.set()
    assert slot.done.wait(10)
    status, body = readiness(slot)
    assert status == 200 and body["chunks"] == len(assistant.index.chunks)
    assert body["model"] == FakeEmbedder.name


def test_a_failed_load_is_reported(assistant):
    def fail():
        raise ModelNotFoundError("embedding model not found at /nowhere")

    slot = AssistantSlot(settings=assistant.settings)
    slot.load_in_background(fail)
    assert slot.done.wait(10)
    assert readiness(slot) == (503, {"status": "failed", "error": "embedding model not found at /nowhere"})
    with pytest.raises(NotReadyError, match="failed to load"):
        slot.get()


def test_readyz_is_503_while_loading_then_200_over_http(assistant):
    from fastapi.testclient import TestClient

    release = threading.Event()
    slot = AssistantSlot(settings=assistant.settings)
    slot.load_in_background(lambda: release.wait(10) and assistant)
    with TestClient(create_server_app(slot)) as client:
        assert client.get("/healthz").status_code == 200
        assert client.get("/readyz").status_code == 503
        release.set()
        slot.done.wait(10)
        ready = client.get("/readyz")
        assert ready.status_code == 200 and ready.json()["documents"] == 2


def test_the_page_has_exactly_two_public_api_endpoints_and_the_evaluation_tab(slot):
    demo = build_app(slot)
    names = {fn.api_name for fn in demo.fns.values() if fn.api_visibility == "public"}
    assert names == {"ask", "cite"}  # nothing else (the evaluation run above all) is public
    labels = {block.label for block in demo.blocks.values() if isinstance(block, gr.Tab)}
    assert labels == {"Ask", "Citation lookup", "Documents", "Evaluation"}


def test_exports_are_named_by_content_and_old_ones_pruned(tmp_path):
    first = write_export("# one", tmp_path)
    assert write_export("# one", tmp_path) == first and first.read_text() == "# one"
    os.utime(first, (time.time() - 7200, time.time() - 7200))
    second = write_export("# two", tmp_path)
    assert not first.exists() and second.exists()


def test_citation_ids_are_code_spans_and_copies_of_them_resolve(slot, assistant):
    turn = chat_turn(slot, "When was the armistice signed?", [], [])
    c = turn.answer.citations[0]
    assert f"- Citation ID: `{c.id}`" in turn.export  # copied as it is, never \_-escaped
    assert f"`{c.id}`" in turn.cards[0].header and f"`{c.id}`" in turn.chat[1]["content"]
    rendered = MarkdownIt().render(turn.export)
    assert f"<code>{html.escape(c.id)}</code>" in rendered
    for pasted in (f"`{c.id}`", escape_markdown(c.id, one_line=True), f" “{c.id}”. ",
                   c.id.replace("-", "-\n"), c.id.replace("_", "\\_")):  # fmt: skip
        assert assistant.cite(pasted).id == c.id, pasted
    with pytest.raises(Exception) as info:
        assistant.cite("doc\\_x.txt")
    assert "\\\\" not in str(info.value) and "doc\\_x.txt" in str(info.value)  # as typed, not repr'd
