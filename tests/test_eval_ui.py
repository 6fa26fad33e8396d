"""The Evaluation tab's event: private, and it runs only an uploaded set or the shipped one."""

from __future__ import annotations

import json

import gradio as gr
import httpx
import pytest
from conftest import FakeEmbedder

from assistant import Assistant
from assistant.web import evaluation_tab as eval_ui
from assistant.web.serve import create_server_app
from assistant.web.server import AssistantSlot, serve_in_thread

SECRET = "TOP SECRET question nobody uploaded?"
LINE = json.dumps({"id": "s", "question": SECRET, "answerable": False}) + "\n"


@pytest.fixture
def tiny_assistant(tiny_seeds, tiny_settings):
    return Assistant.load(tiny_seeds, tiny_settings.index_dir, settings=tiny_settings,
                          embedder=FakeEmbedder())  # fmt: skip


@pytest.fixture
def uploads(tmp_path, monkeypatch):
    """Gradio's upload folder, private to the test."""
    folder = tmp_path / "uploads"
    folder.mkdir()
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(folder))
    return folder


def evaluate_event(tiny_assistant):
    with gr.Blocks() as demo:
        eval_ui.build_evaluation_tab(lambda: tiny_assistant)
    (fn,) = [fn for fn in demo.fns.values() if fn.api_name == "evaluate"]
    return fn


def test_the_event_is_private(tiny_assistant):
    assert evaluate_event(tiny_assistant).api_visibility == "private"


def test_a_file_outside_the_upload_folder_is_refused_in_one_line(tiny_assistant, uploads, tmp_path):
    private = tmp_path / "private.jsonl"
    private.write_text(LINE, encoding="utf-8")
    handler = evaluate_event(tiny_assistant).fn
    for path in (private, uploads / ".." / "private.jsonl"):
        with pytest.raises(gr.Error) as info:
            handler(str(path), "all", "hybrid")
        assert info.value.message == eval_ui.NOT_UPLOADED and "\n" not in info.value.message
    (uploads / "link.jsonl").symlink_to(private)  # a link out of the folder is outside too
    with pytest.raises(gr.Error, match="only an uploaded question set"):
        handler(str(uploads / "link.jsonl"), "all", "hybrid")


def test_an_uploaded_file_runs(tiny_assistant, uploads):
    upload = uploads / "0123abcd" / "mine.jsonl"
    upload.parent.mkdir()
    upload.write_text(LINE, encoding="utf-8")
    status, metrics, plots, *_, questions = evaluate_event(tiny_assistant).fn(str(upload), "all", "hybrid")
    assert status.startswith("mine.jsonl: 1 questions") and SECRET in str(questions.value["data"])
    # the tables and plots, hidden before a run, are shown; the key columns come first
    assert metrics.visible and plots.visible and questions.visible
    assert questions.value["headers"][:3] == ["question", "outcome", "answer"]


def test_over_http_a_named_server_file_is_not_read_but_an_upload_is(tiny_assistant, uploads, tmp_path):
    private = tmp_path / "private.jsonl"
    private.write_text(LINE, encoding="utf-8")

    def run(url, path):
        payload = {"data": [{"path": path, "meta": {"_type": "gradio.FileData"}}, "all", "hybrid"]}
        event = httpx.post(url + "gradio_api/call/evaluate", json=payload, timeout=30).json()["event_id"]
        return httpx.get(url + f"gradio_api/call/evaluate/{event}", timeout=60).text

    with serve_in_thread(create_server_app(AssistantSlot(tiny_assistant))) as url:
        refused = run(url, str(private))
        assert "event: error" in refused and SECRET not in refused
        assert not any(p.name == "private.jsonl" for p in uploads.rglob("*"))  # not copied in
        (sent,) = httpx.post(url + "gradio_api/upload", timeout=30,
                             files={"files": ("mine.jsonl", LINE.encode())}).json()  # fmt: skip
        ran = run(url, sent)
        assert "event: complete" in ran and SECRET in ran
