"""Issue 18, item 2: a running server notices that a document changed.

The documents folder is watched (web/server.watch_documents); after an edit the index
is brought up to date in the background and swapped in whole, /readyz reports the new
version, /ask quotes the new text, and /cite judges an old ID against the file as it is
now, even before the index has caught up. Bounded in time; loopback only.
"""

from __future__ import annotations

import threading
import time

import httpx

from assistant import Assistant
from assistant.config import Settings
from assistant.web.serve import create_server_app
from assistant.web.server import AssistantSlot, readiness, serve_in_thread, watch_documents

from conftest import FakeEmbedder

QUESTION = "When was the armistice signed at Panmunjom?"


def load(seeds, tmp_path) -> Assistant:
    return Assistant.load(seeds, tmp_path / "index", settings=Settings(abstain_below=0.0), embedder=FakeEmbedder())


def test_an_edited_document_is_indexed_and_served_without_a_restart(tiny_seeds, tmp_path):
    assistant = load(tiny_seeds, tmp_path)
    slot = AssistantSlot(assistant)
    old = assistant.ask(QUESTION).citations[0]
    stop, refreshed = threading.Event(), []
    watch_documents(slot, stop=stop, debounce_ms=100, on_refresh=refreshed.append)
    try:
        with serve_in_thread(create_server_app(slot)) as url:
            before = httpx.get(url + "readyz", timeout=10).json()["index_version"]
            time.sleep(0.5)  # the watcher is watching
            alpha = tiny_seeds / "alpha.txt"
            alpha.write_text(alpha.read_text().replace("July 27, 1953", "the twenty-seventh of July 1953"))
            deadline = time.monotonic() + 30
            while httpx.get(url + "readyz", timeout=10).json()["index_version"] == before:
                assert time.monotonic() < deadline, f"the index was not updated: {refreshed}"
                time.sleep(0.2)
            assert refreshed and "index updated" in refreshed[-1]
            quotes = [c.quote for c in slot.get().ask(QUESTION).citations]
            assert any("twenty-seventh" in q for q in quotes)
            cited = slot.get().cite(old.id)
            assert cited.stale and "twenty-seventh" in cited.quote
    finally:
        stop.set()


def test_a_citation_is_stale_as_soon_as_its_file_changes(tiny_seeds, tmp_path):
    assistant = load(tiny_seeds, tmp_path)
    old = assistant.ask(QUESTION).citations[0]
    assert not assistant.cite(old.id).stale
    path = tiny_seeds / old.doc
    path.write_text(path.read_text().replace("July 27, 1953", "the twenty-seventh of July 1953"))
    assert assistant.cite(old.id).stale  # the index has not caught up; the file has changed
    status, body = readiness(AssistantSlot(assistant))
    assert status == 200 and body["index_version"] == assistant.index.path.name
