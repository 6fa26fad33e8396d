"""Shared fixtures: a fast deterministic fake embedder and a tiny corpus in tmp_path."""

from __future__ import annotations

import hashlib
import os
import shutil
import uuid
from pathlib import Path

import numpy as np
import pytest

from assistant.config import Settings
from assistant.text.terms import terms

ROOT = Path(__file__).resolve().parent.parent
SEEDS = ROOT / "seeds"


class FakeEmbedder:
    """Hashed bag of stemmed terms: texts sharing words are close. Counts its work."""

    name = "fake-bow@1"
    dimension = 64
    max_tokens = 256

    def __init__(self):
        self.encoded: list[str] = []

    def count_tokens(self, texts):
        return [len(t.split()) for t in texts]

    def encode(self, texts, *, show_progress=False):
        self.encoded.extend(texts)
        return self._vectors(texts)

    def _vectors(self, texts):
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        for row, text in enumerate(texts):
            for term in terms(text) or ["<empty>"]:
                digest = hashlib.sha256(term.encode()).digest()
                out[row, digest[0] % self.dimension] += 1.0 if digest[1] % 2 else -1.0
            out[row] /= np.linalg.norm(out[row]) or 1.0
        return out


class TokenFakeEmbedder(FakeEmbedder):
    """FakeEmbedder that also gives token vectors: one per stemmed term, hashed."""

    name = "fake-bow-tokens@1"

    def _tokens(self, text):
        found = terms(text) or ["<empty>"]
        ids = np.array([int.from_bytes(hashlib.sha256(t.encode()).digest()[:2], "big") for t in found],
                       dtype=np.int32)  # fmt: skip
        return ids, self._vectors(found)

    def encode_with_tokens(self, texts, *, show_progress=False):
        vectors = self.encode(texts)
        return vectors, [self._tokens(t) for t in texts]

    def encode_queries_with_tokens(self, texts):
        return self.encode_with_tokens(texts)


class CountingEmbedder(FakeEmbedder):
    """Counts encode calls for questions (what a batch of questions shares)."""

    def __init__(self):
        super().__init__()
        self.calls = 0

    def encode_queries(self, texts):
        self.calls += 1
        return self.encode(texts)


def gated_assistant(inner):
    """`inner` (an Assistant), recording the questions of each `ask_batch` call, with a
    gate (`.gate`, a threading.Event, open) that holds the calls while closed; `.held` is
    how many are held. A `poisoned` question makes any call that holds it fail."""
    import threading

    class Gated(type(inner)):
        def __init__(self):
            self.__dict__.update(inner.__dict__)
            self.gate, self.calls, self.held = threading.Event(), [], 0
            self.gate.set()
            self.poisoned = None
            self._gate_lock = threading.Lock()

        def ask_batch(self, questions, histories=None, **kwargs):
            with self._gate_lock:
                self.calls.append(list(questions))
                self.held += 1
            try:
                assert self.gate.wait(60), "the test never opened the gate"
            finally:
                with self._gate_lock:
                    self.held -= 1
            if self.poisoned is not None and self.poisoned in questions:
                raise RuntimeError("poisoned question in /srv/secret/index")
            return super().ask_batch(questions, histories, **kwargs)

    return Gated()


TINY_DOCS = {
    "alpha.txt": (
        "The Armistice Talks\n\n"
        "Opening Moves\n"
        "Talks began at Kaesong in July 1951. The delegates argued about the agenda for weeks.\n"
        "Prisoners of War\n"
        "The exchange of prisoners was the hardest issue. Voluntary repatriation divided the sides.\n"
        "- Operation Little Switch exchanged sick prisoners in April 1953.\n"
        "The Signing\n"
        "The armistice was signed at Panmunjom on July 27, 1953. No peace treaty followed.\n"
        "Scroll to top\n"
    ),
    "beta.md": (
        "# Later Summits\n\n"
        "Summits\n"
        "Leaders met in 2000 and in 2007 for inter-Korean summits.\n"
        "See also  Some unrelated article\n"
        "The Panmunjom Declaration came in 2018.\n"
        "Echo\n"
        "The armistice was signed at Panmunjom on July 27, 1953, and no peace treaty followed it.\n"
    ),
}


@pytest.fixture
def fake_embedder():
    return FakeEmbedder()


def assistant_over(tmp_path: Path, docs: dict[str, str], **settings):
    """An Assistant (the fake embedder, the real entity model) over documents written here."""
    from assistant import Assistant

    seeds = tmp_path / "seeds"
    seeds.mkdir()
    for name, text in docs.items():
        (seeds / name).write_text(text, encoding="utf-8")
    settings = Settings(seeds_dir=seeds, index_dir=tmp_path / "index", **settings)
    return Assistant.load(settings=settings, embedder=FakeEmbedder())


@pytest.fixture
def tiny_seeds(tmp_path) -> Path:
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    for name, text in TINY_DOCS.items():
        (seeds / name).write_text(text, encoding="utf-8")
    return seeds


@pytest.fixture
def tiny_settings(tmp_path, tiny_seeds) -> Settings:
    return Settings(seeds_dir=tiny_seeds, index_dir=tmp_path / "index", abstain_below=0.5)


@pytest.fixture
def real_seeds(tmp_path) -> Path:
    """A private copy of the project's seeds (tests may add or edit files)."""
    target = tmp_path / "seeds"
    shutil.copytree(SEEDS, target)
    return target


@pytest.fixture(scope="session")
def real_assistant(tmp_path_factory):
    """The real bundled model over the real seeds, index built once per session."""
    from assistant import Assistant

    base = tmp_path_factory.mktemp("real")
    shutil.copytree(SEEDS, base / "seeds")
    return Assistant.load(base / "seeds", base / "index")


@pytest.fixture(scope="module")
def real_server_url(real_assistant):
    """The web app over `real_assistant`, served on 127.0.0.1 for one test module."""
    from assistant.web.serve import create_server_app
    from assistant.web.server import serve_in_thread

    with serve_in_thread(create_server_app(real_assistant)) as url:
        yield url


def milvus_server_process(data: Path):
    """A `milvus-lite server` process on a free loopback port until the block ends:
    yields (uri, process) (store/milvus.local_server)."""
    from assistant.store.milvus import local_server

    return local_server(data)


@pytest.fixture(scope="session")
def milvus_server(tmp_path_factory):
    """A real Milvus Lite server process on a loopback port, over gRPC: the one `.ci/run`
    started (ASSISTANT_TEST_MILVUS=milvus://127.0.0.1:PORT), else one started here and
    stopped after the session. Never skipped: the store tests need it."""
    given = os.environ.get("ASSISTANT_TEST_MILVUS", "").strip()
    if given:
        yield given.rstrip("/")
        return
    with milvus_server_process(tmp_path_factory.mktemp("milvus-data")) as (uri, _):
        yield uri


@pytest.fixture
def milvus_uri(milvus_server):
    """A store of its own for one test: a fresh database on the session's server."""
    return f"{milvus_server}/t_{uuid.uuid4().hex[:12]}"


def pytest_terminal_summary(terminalreporter):
    """The browser tests skip without Chromium: say so loudly, not as one skip line."""
    skipped = terminalreporter.stats.get("skipped", [])
    if any("chromium" in str(report.longrepr).lower() for report in skipped):
        terminalreporter.section("BROWSER TESTS DID NOT RUN", sep="!", red=True, bold=True)
        terminalreporter.line(
            "There is no Chromium on this machine, so the real page was not tested in a browser. "
            "Install Debian's `chromium` (`make setup` does where it runs as root with apt-get; "
            ".ci/run does) and run `make test` again.", red=True, bold=True)  # fmt: skip
