"""The batched /ask over HTTP: requests waiting together share one encode call, and each
still gets exactly its own result (real model, real server on 127.0.0.1).

To make a batch on purpose, the served Assistant can hold its answers (a gate): two
held requests fill both workers, the requests sent meanwhile wait in the queue, and
Gradio hands them to /ask as one batch when the gate opens. The same requests sent to
the app built unbatched (`max_batch=1`) give the reference errors.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time

import httpx
import pytest
from conftest import ROOT, gated_assistant

from assistant.web.app import CONCURRENCY
from assistant.web.handlers import GENERIC_ERROR
from assistant.web.serve import create_server_app
from assistant.web.server import serve_in_thread

pytestmark = pytest.mark.slow

FIRST = "When was the armistice signed?"
POISON = "Where did the armistice talks begin?"  # fails whenever the test says so


@pytest.fixture(scope="module")
def gated(real_assistant):
    return gated_assistant(real_assistant)


@pytest.fixture(scope="module")
def urls(gated, real_assistant):
    """(batched app over the gated Assistant, unbatched app over the plain one)."""
    with serve_in_thread(create_server_app(gated)) as batched:
        with serve_in_thread(create_server_app(real_assistant, max_batch=1)) as unbatched:
            yield batched, unbatched


@pytest.fixture
def assistant(gated):
    yield gated
    gated.gate.set()
    gated.poisoned = None


def post(url: str, data: list) -> str:
    """Queue an /ask request as a script does (Gradio's REST protocol); its event id."""
    response = httpx.post(url + "gradio_api/call/ask", json={"data": data}, timeout=30)
    assert response.status_code == 200, response.text
    return response.json()["event_id"]


def result(url: str, event_id: str) -> tuple[str, object]:
    """(event, data) that ends the request's event stream: "complete" or "error"."""
    stream = httpx.get(url + f"gradio_api/call/ask/{event_id}", timeout=60).text
    event = next(line[7:] for line in stream.splitlines() if line.startswith("event: "))
    data = next(line[6:] for line in stream.splitlines() if line.startswith("data: "))
    return event, json.loads(data)


def batch_of(url: str, assistant, requests: list[list]) -> list[tuple[str, object]]:
    """Send `requests` while both workers are held, so that they wait and are batched."""
    assistant.gate.clear()
    blockers = [post(url, [FIRST, None, None, None]) for _ in range(CONCURRENCY)]
    deadline = time.monotonic() + 30
    while assistant.held < CONCURRENCY and time.monotonic() < deadline:
        time.sleep(0.01)
    assert assistant.held == CONCURRENCY
    assistant.calls.clear()
    queued = [post(url, data) for data in requests]
    assistant.gate.set()
    for event_id in blockers:
        assert result(url, event_id)[0] == "complete"
    return [result(url, event_id) for event_id in queued]


ANSWERED = [  # (data sent, the question and options `ask` answers with)
    ([FIRST, None, None, None], (FIRST, [], None, None)),
    (["And where?", [FIRST], None, None], ("And where?", [FIRST], None, None)),
    (["What did the Panmunjom Declaration say?", None, 10, "hybrid"],
     ("What did the Panmunjom Declaration say?", [], 10, "hybrid")),
    (["Who led the talks?"], ("Who led the talks?", [], None, None)),  # a raw call: defaults
    (["What was the hardest issue?", None, 3, "bm25"], ("What was the hardest issue?", [], 3, "bm25")),
]  # fmt: skip
REFUSED = [  # data sent, the one-line error
    (["", None, None, None], "the question is empty"),
    ([None, None, None, None], "the question must be text"),
    (["x" * 1001, None, None, None], "the question is too long (1001 characters; the limit is 1000)"),
    ([FIRST, [1, 2], None, None], "history must be a list of earlier questions (strings)"),
    ([FIRST, None, 0, None], "k must be a whole number from 1 to 100"),
    ([FIRST, None, None, "fuzzy"], "mode must be one of: hybrid, dense, bm25"),
]


def test_a_batch_with_bad_requests_answers_the_good_ones_and_refuses_each_bad_one(
    urls, assistant, real_assistant
):
    batched, unbatched = urls
    requests = [data for data, _ in ANSWERED[:2]] + [data for data, _ in REFUSED]
    requests += [data for data, _ in ANSWERED[2:]]
    results = dict(zip(map(json.dumps, requests), batch_of(batched, assistant, requests)))

    for data, (question, history, k, mode) in ANSWERED:
        event, payload = results[json.dumps(data)]
        assert event == "complete", payload
        assert payload == [real_assistant.ask(question, history, k=k, mode=mode).to_dict()]
    for data, message in REFUSED:
        event, payload = results[json.dumps(data)]
        assert (event, payload["error"]) == ("error", message)
        assert (event, payload) == result(unbatched, post(unbatched, data))  # as unbatched
    # One encode call for the four with default options, one for the bm25 one; the
    # refused requests never reached the model.
    defaults = [FIRST, "And where?", "What did the Panmunjom Declaration say?", "Who led the talks?"]
    assert sorted(assistant.calls) == sorted([defaults, ["What was the hardest issue?"]])


def test_a_request_that_fails_on_its_own_does_not_fail_the_others(urls, assistant, real_assistant):
    batched, _ = urls
    assistant.poisoned = POISON
    questions = [FIRST, POISON, "What did the Panmunjom Declaration say?"]
    results = batch_of(batched, assistant, [[q, None, None, None] for q in questions])
    assert results[1] == ("error", {"error": GENERIC_ERROR, "duration": 10, "visible": True,
                                    "title": "Error"})  # fmt: skip
    for question, (event, payload) in zip(questions[::2], results[::2]):
        assert (event, payload) == ("complete", [real_assistant.ask(question).to_dict()])
    assert assistant.calls[0] == questions  # tried together, then one by one
    assert sorted(assistant.calls[1:]) == sorted([q] for q in questions)


def test_batched_answers_are_the_json_of_the_cli(urls, assistant, real_assistant):
    batched, _ = urls
    questions = [FIRST, "Why did the prisoner of war issue stall the talks?"]
    results = batch_of(batched, assistant, [[q, None, None, None] for q in questions])
    assert assistant.calls == [questions]
    settings = real_assistant.settings
    cli = subprocess.run(
        [sys.executable, "-m", "assistant", "ask", questions[1], "--json",
         "--seeds", str(settings.seeds_dir), "--index", str(settings.index_dir)],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert cli.returncode == 0, cli.stderr
    assert results[1] == ("complete", [json.loads(cli.stdout)])



@pytest.mark.parametrize("which", ["batched", "unbatched"])
def test_the_direct_run_route_answers_one_request_or_a_one_line_error(urls, assistant, real_assistant, which):
    """Issue 18, item 5: POST /gradio_api/run/ask was a 500 with "error": null for every
    request when /ask is batched (and for any error either way)."""
    url = urls[0] if which == "batched" else urls[1]
    question = "When was the armistice signed?"
    expected = real_assistant.ask(question).to_dict()
    for data in ([question], [question, [], None, None], [question, [], 10, "hybrid"]):
        response = httpx.post(url + "gradio_api/run/ask", json={"data": data}, timeout=30)
        assert response.status_code == 200 and response.json() == {"data": [expected]}
    for data, status, message in [([""], 400, "the question is empty"),
                                  ([question, "not a list"], 400, "history must be a list"),
                                  ([question, [], 0], 400, "k must be a whole number"),
                                  ("nope", 400, "send {\"data\": [question")]:  # fmt: skip
        response = httpx.post(url + "gradio_api/run/ask", json={"data": data}, timeout=30)
        assert response.status_code == status and message in response.json()["error"]
        assert "\n" not in response.json()["error"]
