"""Issue 6, lines 1-3 and 14-19, through the real server on 127.0.0.1.

One server per module, over the real model (the session's, already loaded): its
index is a copy of the session's, so nothing is embedded again. The Assistant
behind it is instrumented: its embedder counts calls, a gate can hold answers
back (to fill the queue) and a fault can be injected (to see what a crash shows).
Line 4 (hostile text in the page) is the browser test in test_browser.py; line 15
is checked on the engine, where the swap happens, with the fake embedder.
Does not time anything as a pass/fail criterion: the load figures are printed.
"""

from __future__ import annotations

import gc
import json
import shutil
import statistics
import threading
import time
import urllib.parse
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import gradio as gr
import httpx
import pytest
from gradio_client import Client

from assistant import Assistant
from assistant.web.app import CONCURRENCY, QUEUE_MAX
from assistant.web.handlers import GENERIC_ERROR, chat_turn, user_errors
from assistant.web.serve import create_server_app
from assistant.config import Settings
from assistant.web.server import AssistantSlot, protected_paths, serve_in_thread

from conftest import FakeEmbedder

pytestmark = pytest.mark.slow

QUESTIONS = (
    "When was the armistice signed?",
    "Where did the armistice talks begin?",
    "What did the Panmunjom Declaration say?",
)
BUSY = "Queue is full"


class CountingEmbedder:
    """The real embedder, counting the calls that reach it (questions go through its
    ONNX `encode_queries`, as in the product)."""

    def __init__(self, inner):
        self.inner, self.name, self.dimension = inner, inner.name, inner.dimension
        self.max_tokens, self.calls, self._lock = inner.max_tokens, 0, threading.Lock()

    def _count(self) -> None:
        with self._lock:
            self.calls += 1

    def count_tokens(self, texts):
        self._count()
        return self.inner.count_tokens(texts)

    def encode(self, texts, *, show_progress=False):
        self._count()
        return self.inner.encode(texts, show_progress=show_progress)

    def encode_queries(self, texts):
        self._count()
        return self.inner.encode_queries(texts)


class Instrumented(Assistant):
    """An Assistant whose answers a test can hold back (gate) or make fail (fault).

    Both act in `ask_batch`, which every answer goes through: `ask`, the page and the
    batched `/ask` alike.
    """

    def __init__(self, inner: Assistant):
        self.__dict__.update(inner.__dict__)
        self.embedder = CountingEmbedder(inner.embedder)
        self.gate = threading.Event()
        self.gate.set()
        self.fault: BaseException | None = None
        self.waiting = 0  # asks held at the gate right now
        self._lock = threading.Lock()

    def ask_batch(self, *args, **kwargs):
        if self.fault is not None:
            raise self.fault
        with self._lock:
            self.waiting += 1
        try:
            if not self.gate.wait(120):
                raise TimeoutError("the test never opened the gate")
        finally:
            with self._lock:
                self.waiting -= 1
        return super().ask_batch(*args, **kwargs)

    def cite(self, citation: str):
        if self.fault is not None:
            raise self.fault
        return super().cite(citation)


@dataclass
class Served:
    url: str
    assistant: Instrumented
    slot: AssistantSlot
    base: Path
    while_loading: dict = field(default_factory=dict)
    baseline: dict = field(default_factory=dict)


def http_get(url: str, path: str) -> httpx.Response:
    return httpx.get(url.rstrip("/") + path, timeout=30, follow_redirects=False)


@pytest.fixture(scope="module")
def served(real_assistant, tmp_path_factory):
    base = tmp_path_factory.mktemp("http")
    shutil.copytree(real_assistant.settings.seeds_dir, base / "seeds")
    shutil.copytree(real_assistant.settings.index_dir, base / "index")
    settings = real_assistant.settings.with_(seeds_dir=base / "seeds", index_dir=base / "index")
    release = threading.Event()

    def load() -> Instrumented:
        release.wait(60)  # line 19: the server is up, the assistant is not
        inner = Assistant.load(settings.seeds_dir, settings.index_dir, settings=settings,
                               embedder=real_assistant.embedder)  # fmt: skip
        assert inner.build_stats is None  # the copied index was reused
        return Instrumented(inner)

    slot = AssistantSlot(settings=settings)
    slot.load_in_background(load)
    app = create_server_app(slot, blocked=protected_paths(settings))
    with serve_in_thread(app) as url:
        seen = {"healthz": http_get(url, "/healthz"), "readyz": http_get(url, "/readyz")}
        try:
            Client(url, verbose=False).predict(QUESTIONS[0], api_name="/ask")
        except Exception as exc:  # noqa: BLE001 - what a client sees while loading
            seen["ask"] = exc
        release.set()
        assert slot.done.wait(120) and slot.ready, slot.error
        served = Served(url, slot.get(), slot, base, seen)
        client = Client(url, verbose=False)
        served.baseline = {q: client.predict(q, api_name="/ask") for q in QUESTIONS}
        yield served


@pytest.fixture(scope="module")
def client(served):
    return Client(served.url, verbose=False)


@pytest.fixture
def assistant(served):
    """The served Assistant, reset to open and healthy after each test."""
    yield served.assistant
    served.assistant.fault = None
    served.assistant.gate.set()


def rejected(client: Client, *args, api_name: str = "/ask") -> str:
    with pytest.raises(Exception) as info:  # gradio_client's AppError
        client.predict(*args, api_name=api_name)
    return str(info.value)


# ---- lines 1-3: bad questions through the API (and the UI's handler) -----------------


@pytest.mark.parametrize(
    "question, message",
    [("", "the question is empty"), ("   ", "the question is empty"),
     ("\n\t \u3000", "the question is empty"), (None, "the question must be text")],
    ids=["empty", "spaces", "blank-unicode", "null"],
)  # fmt: skip
def test_an_empty_or_null_question_is_a_clear_error_and_never_reaches_the_model(
    served, client, assistant, question, message
):
    calls = assistant.embedder.calls
    assert rejected(client, question) == message
    with pytest.raises(gr.Error) as info:  # the page's handler says the same
        user_errors(chat_turn)(served.slot, question, [], [])
    assert info.value.message == message
    assert assistant.embedder.calls == calls


def rss_bytes() -> int:
    """This process's resident memory (the server runs in it, in a thread)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


def post_ask(url: str, question, *, timeout: float = 10) -> httpx.Response:
    """A raw API call, as a script or the page makes it: every call a new Gradio session."""
    return httpx.post(url.rstrip("/") + "/gradio_api/call/ask",
                      json={"data": [question, None, None, None]}, timeout=timeout)  # fmt: skip


def test_a_1mb_question_is_refused_fast_and_memory_stays_flat(served, client, assistant, capsys):
    huge = "armistice " * 100_000  # 1,000,000 characters
    calls = assistant.embedder.calls
    for _ in range(5):  # warm up: the first requests allocate buffers that stay
        post_ask(served.url, huge)
    gc.collect()
    before, seconds = rss_bytes(), []
    for _ in range(100):  # 100 MB of questions, each from a new session
        started = time.perf_counter()
        response = post_ask(served.url, huge)
        seconds.append(time.perf_counter() - started)
        assert response.status_code == 413
        assert response.json() == {"detail": "request too large (1000028 bytes; the limit is 262144)"}
    gc.collect()
    growth = rss_bytes() - before
    assert "413" in rejected(client, huge)  # gradio_client: "Client error '413 Request Entity Too Large'"
    with capsys.disabled():
        print(f"\n1 MB question x100 (new session each): median {statistics.median(seconds) * 1000:.0f} ms "
              f"to refuse, RSS growth {growth / 1e6:.1f} MB")  # fmt: skip
    # Without the limit Gradio kept every session's input: ~1.1 MB a request. The bound
    # leaves room for what the rest of the suite's threads allocate meanwhile.
    assert growth < 50e6
    assert assistant.embedder.calls == calls


def test_a_body_without_a_length_is_refused_not_read(served):
    def chunks():  # a chunked upload never says how long it will be
        yield b'{"data": ["'
        yield b"armistice " * 1000
        yield b'", null, null, null]}'

    response = httpx.post(served.url.rstrip("/") + "/gradio_api/call/ask", content=chunks(),
                          headers={"content-type": "application/json"}, timeout=10)  # fmt: skip
    assert response.status_code == 411


@pytest.mark.parametrize("size", [1001, 100_000])
def test_a_long_question_under_the_request_limit_gets_the_engines_message(client, assistant, size):
    calls = assistant.embedder.calls
    limit = assistant.settings.max_question_chars
    message = rejected(client, "a" * size)
    assert message == f"the question is too long ({size} characters; the limit is {limit})"
    assert assistant.embedder.calls == calls


@pytest.mark.parametrize(
    "question",
    ["When was the armistice\x00 signed?", "\x00\x00\x00", "מתי נחתם הסכם שביתת הנשק? armistice",
     "\u202eWhen was the armistice signed?\u202c", "🕊️🇰🇷 armistice 👨‍👩‍👧 signed?", "e\u0301" * 50,
     "\ufeff\u200b\u200d", "When\r\nwas\tthe armistice signed?", "\U0010ffff armistice"],
    ids=["nul", "only-nul", "hebrew", "rtl-override", "emoji", "combining", "zero-width",
         "controls", "max-codepoint"],
)  # fmt: skip
def test_odd_unicode_gets_an_answer_or_a_clear_error(client, question):
    try:
        result = client.predict(question, api_name="/ask")
    except Exception as exc:  # noqa: BLE001
        assert str(exc) == "the question is empty", exc
    else:
        assert isinstance(result["answer"], str) and result["answer"]
        assert "\x00" not in result["question"]


def raw_call(url: str, body: str, endpoint: str = "ask") -> tuple[str, str]:
    """POST a raw JSON body to /gradio_api/call/<endpoint>; (event, data) of the result."""
    base = url.rstrip("/") + f"/gradio_api/call/{endpoint}"
    posted = httpx.post(base, content=body.encode(), headers={"content-type": "application/json"},
                        timeout=30)  # fmt: skip
    assert posted.status_code == 200, posted.text
    stream = httpx.get(f"{base}/{posted.json()['event_id']}", timeout=60).text
    event = next(line[7:] for line in stream.splitlines() if line.startswith("event: "))
    data = next(line[6:] for line in stream.splitlines() if line.startswith("data: "))
    return event, data


@pytest.mark.parametrize("question", ["\ud800 armistice signed", "\udfff", "When \udbff\udc00 signed?"])
def test_lone_surrogates_sent_as_raw_json_get_an_answer(served, question):
    body = json.dumps({"data": [question, None, None, None]})  # "\ud800" escapes, as JS sends
    event, data = raw_call(served.url, body)
    assert event == "complete", data
    assert json.loads(data)[0]["answer"]


# ---- line 14: 50 concurrent clients ------------------------------------------------


CLIENTS = 50
REQUESTS_PER_CLIENT = 2


def test_50_concurrent_clients_get_exactly_the_single_client_results(served, assistant, caplog,
                                                                     capsys):  # fmt: skip
    start = threading.Barrier(CLIENTS)

    def one_client(i: int) -> list[tuple[str, dict | str, float]]:
        client = Client(served.url, verbose=False)
        start.wait(120)  # everyone asks at once
        results = []
        for j in range(REQUESTS_PER_CLIENT):
            question = QUESTIONS[(i + j) % len(QUESTIONS)]
            began = time.perf_counter()
            try:
                result = client.predict(question, api_name="/ask")
            except Exception as exc:  # noqa: BLE001 - counted as a failure below
                result = f"{type(exc).__name__}: {exc}"
            results.append((question, result, time.perf_counter() - began))
        return results

    began = time.perf_counter()
    with ThreadPoolExecutor(CLIENTS) as pool:
        futures = [pool.submit(one_client, i) for i in range(CLIENTS)]
        results = [r for f in futures for r in f.result(timeout=600)]
    wall = time.perf_counter() - began
    failures = [(q, r) for q, r, _ in results if r != served.baseline[q]]
    seconds = sorted(s for _, _, s in results)
    p95 = seconds[max(0, round(0.95 * len(seconds)) - 1)]
    with capsys.disabled():
        print(f"\nload: {CLIENTS} clients, {len(results)} requests, {len(failures)} failures, "
              f"p50 {statistics.median(seconds):.2f} s, p95 {p95:.2f} s, {wall:.1f} s wall, "
              f"{len(results) / wall:.1f} answers/s (concurrency {CONCURRENCY}, queue {QUEUE_MAX})")  # fmt: skip
    assert len(results) == CLIENTS * REQUESTS_PER_CLIENT
    assert failures == [], failures[:3]
    assert "Already borrowed" not in caplog.text
    assert http_get(served.url, "/healthz").status_code == 200


# ---- line 15: a rebuild while questions are answered (engine) -------------------------


def test_questions_are_answered_from_the_old_index_until_the_new_one_is_swapped_in(
    tiny_seeds, tmp_path, monkeypatch
):
    import assistant.store.stores as pipeline  # where the folder store saves

    settings = Settings(abstain_below=0.0)
    live = Assistant.load(tiny_seeds, tmp_path / "index", settings=settings, embedder=FakeEmbedder())
    question = "When was the armistice signed at Panmunjom?"
    old = live.ask(question).to_dict()
    alpha = tiny_seeds / "alpha.txt"
    alpha.write_text(alpha.read_text().replace("July 27, 1953", "the twenty-seventh of July 1953"))
    beta = tiny_seeds / "beta.md"
    beta.write_text(beta.read_text().replace("July 27, 1953", "the twenty-seventh of July 1953"))

    saving, release = threading.Event(), threading.Event()
    real_save = pipeline.save_index

    def slow_save(index, index_dir):  # the new index is built; hold it before the swap
        saving.set()
        assert release.wait(60)
        return real_save(index, index_dir)

    monkeypatch.setattr(pipeline, "save_index", slow_save)
    refresher = threading.Thread(target=live.refresh, daemon=True)
    phase = ["building"]  # -> "held" (new index built, not swapped) -> "swapping" -> "swapped"
    stop, seen, errors = threading.Event(), [], []

    def keep_asking():
        deadline = time.monotonic() + 120
        while not stop.is_set() and time.monotonic() < deadline:
            started_in = phase[0]  # the phase when this question came in
            try:
                seen.append((started_in, live.ask(question).to_dict()))
            except Exception as exc:  # noqa: BLE001
                errors.append(exc)

    askers = [threading.Thread(target=keep_asking, daemon=True) for _ in range(3)]
    for thread in askers:
        thread.start()
    refresher.start()
    assert saving.wait(60)
    phase[0] = "held"
    time.sleep(0.2)  # questions keep coming while the new index waits
    phase[0] = "swapping"
    release.set()
    refresher.join(60)
    phase[0] = "swapped"
    deadline = time.monotonic() + 30
    while not any(started_in == "swapped" for started_in, _ in seen[-10:]) and time.monotonic() < deadline:
        time.sleep(0.01)
    stop.set()
    for thread in askers:
        thread.join(10)

    new = live.ask(question).to_dict()
    assert new != old and "twenty-seventh" in new["answer"]
    assert not errors and all(r in (old, new) for _, r in seen)  # never a mix of the two
    held = [r for started_in, r in seen if started_in in ("building", "held")]
    swapped = [r for started_in, r in seen if started_in == "swapped"]
    assert held and all(r == old for r in held)  # the old index until the swap
    assert swapped and all(r == new for r in swapped)


def test_a_rebuild_that_fails_leaves_the_old_index_answering(tiny_seeds, tmp_path):
    class Failing(FakeEmbedder):
        fail = False

        def encode(self, texts, *, show_progress=False):
            if self.fail:
                raise RuntimeError("embedding failed")
            return super().encode(texts, show_progress=show_progress)

    embedder = Failing()
    live = Assistant.load(tiny_seeds, tmp_path / "index", settings=Settings(abstain_below=0.0),
                          embedder=embedder)  # fmt: skip
    question = "When was the armistice signed at Panmunjom?"
    old = live.ask(question).to_dict()
    (tiny_seeds / "gamma.txt").write_text("Gamma\n\nThe armistice was discussed again in 1954.\n")
    embedder.fail = True
    with pytest.raises(RuntimeError, match="embedding failed"):
        live.refresh()
    embedder.fail = False
    assert live.ask(question).to_dict() == old
    assert "gamma.txt" not in live.index.manifest["documents"]


# ---- line 16: a full queue answers "busy" at once ------------------------------------


def test_more_waiting_requests_than_the_queue_allows_get_a_fast_busy_answer(served, client,
                                                                            assistant, capsys):  # fmt: skip
    assistant.gate.clear()  # answers are held: the workers fill, then the queue
    accepted, busy = [], []
    for _ in range(CONCURRENCY + QUEUE_MAX + 10):
        response = post_ask(served.url, QUESTIONS[0])  # a 10 s timeout: a hang fails here
        if response.status_code == 200:
            accepted.append(response.json()["event_id"])
            if len(accepted) <= CONCURRENCY:  # let the first ones reach the workers
                deadline = time.monotonic() + 30
                while assistant.waiting < len(accepted) and time.monotonic() < deadline:
                    time.sleep(0.02)
        else:
            busy.append(response)
    assert len(accepted) == CONCURRENCY + QUEUE_MAX
    assert len(busy) == 10 and all(r.status_code == 503 and BUSY in r.text for r in busy)

    started = time.perf_counter()
    with pytest.raises(Exception, match="Queue is full"):  # what a gradio_client user sees
        client.predict(QUESTIONS[1], api_name="/ask")
    busy_seconds = time.perf_counter() - started
    assert http_get(served.url, "/healthz").status_code == 200  # alive while busy

    assistant.gate.set()  # nothing accepted is lost
    base = served.url.rstrip("/") + "/gradio_api/call/ask/"
    streams = [httpx.get(base + event_id, timeout=120).text for event_id in accepted]
    answers = [json.loads(s.split("data: ", 1)[1].splitlines()[0])[0] for s in streams]
    assert all(a == served.baseline[QUESTIONS[0]] for a in answers)
    assert client.predict(QUESTIONS[1], api_name="/ask") == served.baseline[QUESTIONS[1]]
    with capsys.disabled():
        print(f"\nbusy: {len(accepted)} accepted ({CONCURRENCY} running + {QUEUE_MAX} queued), "
              f"{len(busy)} refused with 503, gradio_client told busy in {busy_seconds * 1000:.0f} ms")


# ---- line 17: /gradio_api/file= does not serve our files or the system's -------------


def file_paths(base: Path) -> list[str]:
    index = base / "index"
    version = index / (index / "CURRENT").read_text().strip()
    return [
        "/etc/passwd", "//etc/passwd", "/etc/../etc/passwd", "/proc/self/environ", "file:///etc/passwd",
        "../../../../../../etc/passwd", "..%2f..%2f..%2f..%2fetc%2fpasswd", "%2e%2e/%2e%2e/%2e%2e/etc/passwd",
        "..\\..\\..\\etc\\passwd", "....//....//....//etc/passwd", "%252e%252e%252fetc%252fpasswd",
        str(index / "CURRENT"), str(version / "manifest.json"), str(version / "dense.faiss"),
        str(index / ".." / "index" / "CURRENT"), str(base / "seeds" / "000_ed13bf9180557300.txt"),
        "seeds/000_ed13bf9180557300.txt", "pyproject.toml", "assistant/app.py",
        str(Path(__file__).resolve()), "http://169.254.169.254/latest/meta-data/",
    ]  # fmt: skip


def test_the_file_route_refuses_system_files_traversal_and_our_own_files(served):
    refused = {}
    for path in file_paths(served.base):
        for form in (path, urllib.parse.quote(path, safe="")):
            response = http_get(served.url, "/gradio_api/file=" + form)
            refused[form] = response.status_code
            assert response.status_code in (400, 403, 404), (form, response.status_code)
            assert b"root:" not in response.content and b"format_version" not in response.content
    assert len(refused) >= 2 * len(file_paths(served.base)) - 5


# ---- line 18: an unexpected exception shows a generic error ----------------------------


@pytest.mark.parametrize("endpoint", ["ask", "cite"])
@pytest.mark.parametrize("fault", [RuntimeError, KeyError, ZeroDivisionError, MemoryError])
def test_an_unexpected_exception_shows_a_generic_error_without_traceback_or_paths(
    served, client, assistant, endpoint, fault
):
    secret = str(served.base / "index" / "secret.faiss")
    assistant.fault = fault(f"failed reading {secret}")
    argument = QUESTIONS[0] if endpoint == "ask" else "000_ed13bf9180557300.txt:0-10"
    assert rejected(client, argument, api_name=f"/{endpoint}") == GENERIC_ERROR
    event, data = raw_call(served.url, json.dumps({"data": [argument] + [None] * (3 if endpoint == "ask" else 0)}),
                           endpoint)  # fmt: skip
    assert event == "error"
    for leak in ("Traceback", 'File "', fault.__name__, secret, str(served.base), "/work/", ".py"):
        assert leak not in data, (leak, data)
    assistant.fault = None  # and the server carries on
    assert client.predict(QUESTIONS[0], api_name="/ask") == served.baseline[QUESTIONS[0]]


# ---- line 19: liveness and readiness -------------------------------------------------


def test_healthz_is_200_at_once_and_readyz_503_until_the_assistant_is_loaded(served):
    seen = served.while_loading
    assert seen["healthz"].status_code == 200 and seen["healthz"].json() == {"status": "alive"}
    assert seen["readyz"].status_code == 503 and seen["readyz"].json() == {"status": "loading"}
    assert "still loading" in str(seen["ask"])
    ready = http_get(served.url, "/readyz")
    assert ready.status_code == 200 and ready.json()["status"] == "ready"
    assert ready.json()["chunks"] == len(served.assistant.index.chunks)
    assert http_get(served.url, "/healthz").status_code == 200


def test_every_response_carries_the_security_headers(served):
    """Issue 18, item 6: the page, the API, health routes, a refusal and a 404 alike."""
    base = served.url.rstrip("/")
    responses = [httpx.get(base + "/", timeout=10), httpx.get(base + "/readyz", timeout=10),
                 httpx.get(base + "/healthz", timeout=10), httpx.get(base + "/no-such-page", timeout=10),
                 httpx.post(base + "/gradio_api/call/ask", content=b"x" * 300_000,
                            headers={"Content-Type": "application/json"}, timeout=10)]  # fmt: skip
    assert [r.status_code for r in responses][-1] == 413
    for response in responses:
        csp = response.headers.get("content-security-policy", "")
        assert "frame-ancestors 'none'" in csp and "default-src 'self'" in csp, response.url
        assert response.headers["x-frame-options"] == "DENY"
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["referrer-policy"] == "no-referrer"
