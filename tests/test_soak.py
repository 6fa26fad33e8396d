"""Issue 18, item 4: memory stays bounded under refused and accepted requests alike.

A server (the fake embedder, the tiny corpus) runs in its own process on a loopback
port; after a warm-up, 2,000 requests refused for an over-long question (250 KB each,
under the body limit, so Gradio takes them in) and 2,000 accepted ones are sent one
after another, and the server's resident memory may grow by at most 50 MB. Before the
session cap (web/app.SESSION_CAPACITY) every call kept a session's state: 500 refused
requests took the server from 474 to 689 MB. Bounded in count and time.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import httpx
import pytest

from conftest import ROOT

pytestmark = pytest.mark.slow

SERVER = textwrap.dedent("""
    import sys
    from pathlib import Path
    sys.path.insert(0, sys.argv[3])
    from conftest import FakeEmbedder, TINY_DOCS
    from assistant import Assistant
    from assistant.config import Settings
    from assistant.web.serve import create_server_app
    from assistant.web.server import make_server
    base = Path(sys.argv[2])
    (base / "seeds").mkdir()
    for name, text in TINY_DOCS.items():
        (base / "seeds" / name).write_text(text, encoding="utf-8")
    assistant = Assistant.load(base / "seeds", base / "index", settings=Settings(), embedder=FakeEmbedder())
    server, sock = make_server(create_server_app(assistant), "127.0.0.1", int(sys.argv[1]))
    server.run(sockets=[sock])
""")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def rss_mb(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(status.split("VmRSS:")[1].split()[0]) / 1024


def call(client: httpx.Client, url: str, question: str) -> str:
    event = client.post(url, json={"data": [question, [], None, None]}).json()["event_id"]
    return client.get(f"{url}/{event}").text


def test_memory_stays_bounded_under_refused_and_accepted_requests(tmp_path):
    port = free_port()
    server = subprocess.Popen([sys.executable, "-c", SERVER, str(port), str(tmp_path), str(ROOT / "tests")],
                              cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    url = f"http://127.0.0.1:{port}/gradio_api/call/ask"
    try:
        deadline = time.monotonic() + 60
        with httpx.Client(timeout=30) as client:
            while True:
                try:
                    if client.get(f"http://127.0.0.1:{port}/readyz").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert time.monotonic() < deadline and server.poll() is None, "the server did not start"
                time.sleep(0.2)
            for _ in range(200):  # warm-up: caches, the session cap filled
                call(client, url, "When was the armistice signed?")
            before = rss_mb(server.pid)
            started, big = time.monotonic(), "x" * 250_000
            for i in range(2000):
                assert "too long" in call(client, url, big)
                assert "Panmunjom" in call(client, url, "When was the armistice signed?")
                assert time.monotonic() - started < 600
            growth = rss_mb(server.pid) - before
        assert growth < 50, f"the server grew by {growth:.0f} MB"
    finally:
        server.terminate()
        server.wait(timeout=30)
