"""The JSON API (web/json_api.py) over HTTP on 127.0.0.1: its contract, not its speed.

POST /api/ask gives the JSON of `assistant ask --json`; GET /api/cite/{id} that of
`cite --json`; errors are one line, {"error": ...}, with 400/404/413/503; requests that
wait together are answered in one batch, each as it would be alone; the OpenAPI schema
describes both routes.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import quote

import httpx
import pytest
from conftest import FakeEmbedder, gated_assistant

from assistant import Assistant
from assistant.web.json_api import WORKERS
from assistant.web.serve import MAX_REQUEST_BYTES, create_server_app
from assistant.web.server import AssistantSlot, serve_in_thread

QUESTIONS = ["When was the armistice signed?", "Where did the talks begin?",
             "What was the hardest issue?", "When did leaders meet for inter-Korean summits?",
             "What came in 2018?", "What is the capital of Peru?"]  # fmt: skip


@pytest.fixture
def assistant(tiny_seeds, tiny_settings):
    return gated_assistant(Assistant.load(tiny_seeds, tiny_settings.index_dir, settings=tiny_settings,
                                          embedder=FakeEmbedder()))  # fmt: skip


@pytest.fixture
def url(assistant):
    with serve_in_thread(create_server_app(assistant)) as address:
        yield address


def test_ask_and_cite_give_the_json_of_the_cli(url, assistant):
    for question in QUESTIONS:
        response = httpx.post(url + "api/ask", json={"question": question}, timeout=30)
        assert response.status_code == 200
        assert response.json() == assistant.ask(question).to_dict()
    follow = {"question": "And where was it signed?", "history": ["When was the armistice signed?"],
              "k": 5, "mode": "dense"}  # fmt: skip
    response = httpx.post(url + "api/ask", json=follow, timeout=30)
    assert response.json() == assistant.ask(follow["question"], follow["history"], k=5, mode="dense").to_dict()

    citation = assistant.ask(QUESTIONS[0]).citations[0]
    for sent in (citation.id, f"`{citation.id}`", citation.id.replace("_", "\\_")):
        looked_up = httpx.get(url + "api/cite/" + quote(sent, safe=""), timeout=30)
        assert looked_up.status_code == 200
        assert looked_up.json() == assistant.cite(citation.id).lookup_dict()


@pytest.mark.parametrize("body, status, says", [
    ({"question": 5}, 400, "question"),
    ({"question": "x" * 1_001}, 400, "too long"),
    ({"question": "When?", "k": 0}, 400, "k must be"),
    ({"question": "When?", "mode": "fuzzy"}, 400, "mode"),
    ({"question": "When?", "history": "not a list"}, 400, "history"),
    ({}, 400, "question"),
    (b"{not json", 400, "bad request"),
    (b"x" * (MAX_REQUEST_BYTES + 1), 413, ""),
])  # fmt: skip
def test_a_bad_request_is_one_line_and_the_server_answers_on(url, body, status, says):
    sent = {"content": body} if isinstance(body, bytes) else {"json": body}
    response = httpx.post(url + "api/ask", timeout=30, headers={"content-type": "application/json"}, **sent)
    assert response.status_code == status
    if status == 400:
        error = response.json()["error"]
        assert says in error and "\n" not in error and "Traceback" not in error
    assert httpx.post(url + "api/ask", json={"question": QUESTIONS[0]}, timeout=30).status_code == 200


def test_an_unknown_citation_is_404_and_a_loading_server_503(url, tiny_settings):
    response = httpx.get(url + "api/cite/" + quote("gone.txt:1-5#abcdef", safe=""), timeout=30)
    assert response.status_code == 404 and "no document" in response.json()["error"]
    with serve_in_thread(create_server_app(AssistantSlot(settings=tiny_settings))) as loading:
        response = httpx.post(loading + "api/ask", json={"question": QUESTIONS[0]}, timeout=30)
        assert response.status_code == 503 and "loading" in response.json()["error"]


def test_requests_waiting_together_are_one_batch_each_answered_as_alone(url, assistant):
    alone = {q: assistant.ask(q).to_dict() for q in QUESTIONS}
    assistant.gate.clear()
    assistant.calls.clear()
    sent = [QUESTIONS[i % len(QUESTIONS)] for i in range(WORKERS + 8)]
    with ThreadPoolExecutor(len(sent)) as pool:
        futures = [pool.submit(httpx.post, url + "api/ask", json={"question": q}, timeout=60)
                   for q in sent[:WORKERS]]  # fmt: skip
        deadline = time.monotonic() + 20
        while assistant.held < WORKERS and time.monotonic() < deadline:  # both workers busy
            time.sleep(0.02)
        futures += [pool.submit(httpx.post, url + "api/ask", json={"question": q}, timeout=60)
                    for q in sent[WORKERS:]]  # fmt: skip
        time.sleep(0.5)  # they queue up behind the held two
        assistant.gate.set()
        responses = [f.result() for f in futures]
    assert [r.json() for r in responses] == [alone[q] for q in sent]
    assert len(assistant.calls) < len(sent) and max(map(len, assistant.calls)) > 1


def test_the_openapi_schema_describes_the_json_api(url):
    schema = httpx.get(url + "api/openapi.json", timeout=30).json()
    assert {"/api/ask", "/api/cite/{citation_id}"} <= set(schema["paths"])
    ask = schema["paths"]["/api/ask"]["post"]
    assert ask["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith("/AskRequest")
    assert {"200", "400", "503"} <= set(ask["responses"])
    fields = schema["components"]["schemas"]["AskResponse"]["properties"]
    assert {"answer", "abstained", "confidence", "short_answer", "citations", "closest"} <= set(fields)
    assert not [p for p in schema["paths"] if p.startswith("/gradio_api")]
