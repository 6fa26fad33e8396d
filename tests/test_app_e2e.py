"""End to end: the real server on 127.0.0.1 with the real model, driven by gradio_client."""

from __future__ import annotations

import urllib.error
import urllib.parse
import urllib.request

import pytest
from gradio_client import Client


pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def client(real_server_url):
    client = Client(real_server_url, verbose=False)
    yield client
    client.close()


def http_get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def test_ask_returns_the_cli_json_with_verbatim_quotes(client, real_assistant):
    question = "When was the armistice signed?"
    result = client.predict(question, api_name="/ask")
    assert result == real_assistant.ask(question).to_dict()  # the JSON of `ask --json`
    assert not result["abstained"] and "[1]" in result["answer"] and result["citations"]
    seeds = real_assistant.settings.seeds_dir
    for c in result["citations"]:
        assert (seeds / c["doc"]).read_text(encoding="utf-8")[c["start"] : c["end"]] == c["quote"]
    looked_up = client.predict(result["citations"][0]["id"], api_name="/cite")
    assert looked_up["quote"] == result["citations"][0]["quote"] and looked_up["stale"] is False


def test_follow_up_and_settings_go_through_the_api(client):
    result = client.predict("Who led them?", ["Where did the armistice talks begin?"], 3, "bm25",
                            api_name="/ask")  # fmt: skip
    assert len(result["retrieved"]) <= 3


def test_an_off_topic_question_is_not_in_the_documents(client):
    result = client.predict("What is a good recipe for chocolate chip cookies?", api_name="/ask")
    assert result["abstained"] and result["citations"] == []


def test_an_over_long_question_is_rejected_by_the_server(client):
    with pytest.raises(Exception, match="too long"):
        client.predict("armistice " * 200, api_name="/ask")


def test_health_readiness_and_no_files_served(real_server_url, real_assistant):
    assert http_get(real_server_url + "healthz")[0] == 200
    status, body = http_get(real_server_url + "readyz")
    assert status == 200 and b'"chunks":%d' % len(real_assistant.index.chunks) in body
    seed = next(real_assistant.settings.seeds_dir.iterdir()).resolve()
    for path in (seed, real_assistant.index.path / "manifest.json"):
        url = real_server_url + "gradio_api/file=" + urllib.parse.quote(str(path))
        assert http_get(url)[0] in (403, 404)
