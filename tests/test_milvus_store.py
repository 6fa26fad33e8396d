"""Issue 22: the index in a shared Milvus store, against a real Milvus Lite server process
over gRPC (conftest.milvus_server; `.ci/run` starts it). Each test has a database of
its own on that server. The fake embedder keeps them fast; the shipped question set on
both stores is in test_milvus_shipped.py.
"""

from __future__ import annotations

import json
import threading
import time

import pytest

from assistant import Assistant
from assistant.cli import main
from assistant.config import Settings
from assistant.errors import DocumentError, IndexLoadError, SettingsError, StoreError
from assistant.store import milvus as milvus_module
from assistant.store.stores import open_store

from conftest import FakeEmbedder, milvus_server_process

REPORT = """# Report on the Neutral Commission

## Custody

The Neutral Nations Repatriation Commission took custody of the prisoners at Panmunjom in September 1953.

The Indian custodial force guarded the camps in the demilitarized zone for ninety days.
"""
OTHER = """# Notes on the Military Demarcation Line

The demarcation line was marked with yellow signs placed every few hundred metres along its length.
"""
QUESTIONS = ["When was the armistice signed?", "Where did the talks begin?", "What divided the sides?",
             "When were the inter-Korean summits?", "What came in 2018?", "Who won the 1954 World Cup?"]


def replica(tmp_path, seeds, uri: str, name: str) -> Assistant:
    """An app replica: its own index folder (cache, library, encoder), the shared store."""
    settings = Settings(seeds_dir=seeds, index_dir=tmp_path / name, abstain_below=0.0, store=uri)
    return Assistant.load(settings=settings, embedder=FakeEmbedder())


def rows(store, kind: str) -> set[str]:
    found = store.call("query", collection_name=store._name(kind), filter='key != ""', output_fields=["key"],
                       limit=16_384)  # fmt: skip
    return {r["key"] for r in found}


def names(assistant: Assistant) -> set[str]:
    return {d["path"] for d in assistant.documents()}


def quoted(answer) -> list[tuple[str, int, int]]:
    return [(c.doc, c.start, c.end) for c in answer.citations]


def test_the_store_answers_as_the_index_folder_does(tmp_path, tiny_seeds, milvus_uri):
    folder = Assistant.load(settings=Settings(seeds_dir=tiny_seeds, index_dir=tmp_path / "folder",
                                              abstain_below=0.0), embedder=FakeEmbedder())  # fmt: skip
    shared = replica(tmp_path, tiny_seeds, milvus_uri, "a")
    assert type(shared.index.dense).__name__ == "MilvusVectors"  # searched by Milvus, not FAISS
    for question in QUESTIONS:
        here, there = folder.ask(question), shared.ask(question)
        assert (quoted(here), here.abstained) == (quoted(there), there.abstained), question
        assert here.confidence == pytest.approx(there.confidence, abs=1e-6)
        for mode in ("dense", "hybrid"):
            a, b = folder.ask(question, mode=mode), shared.ask(question, mode=mode)
            assert [(h.row, round(h.score, 5)) for h in a.retrieved] == [(h.row, round(h.score, 5)) for h in b.retrieved]


def test_a_second_replica_answers_what_the_first_added_and_both_see_a_removal(tmp_path, tiny_seeds, milvus_uri):
    first = replica(tmp_path, tiny_seeds, milvus_uri, "a")
    second = replica(tmp_path, tiny_seeds, milvus_uri, "b")
    question = "Who guarded the camps in the demilitarized zone?"
    assert not second.follow_store()  # nothing new yet
    first.add_documents([("commission.md", REPORT.encode())])
    assert "commission.md" not in names(second)  # until it follows the store
    assert second.follow_store()
    answer = second.ask(question)
    assert answer.citations and answer.citations[0].doc == "commission.md"
    assert "Indian custodial force" in second.cite(answer.citations[0].id).quote
    listed = {d["path"]: d for d in second.documents()}
    assert listed["commission.md"]["source"] == "added"
    assert not (tmp_path / "b" / "library" / "commission.md").exists()  # its text came from the store
    # Removed through the replica that did not add it: gone for both.
    second.remove_document("commission.md")
    assert first.follow_store()
    assert all(c.doc != "commission.md" for c in first.ask(question).citations)
    assert "commission.md" not in names(first)
    # A seeds document cannot be removed this way, on either replica.
    with pytest.raises(DocumentError, match="seeds folder"):
        first.remove_document("alpha.txt")


def test_a_restarted_replica_keeps_what_another_added(tmp_path, tiny_seeds, milvus_uri):
    replica(tmp_path, tiny_seeds, milvus_uri, "a").add_documents([("commission.md", REPORT.encode())])
    version = open_store(Settings(index_dir=tmp_path / "a", store=milvus_uri)).version()
    again = replica(tmp_path, tiny_seeds, milvus_uri, "b")  # starts after the upload
    assert "commission.md" in names(again)
    assert again.build_stats is None  # loaded as stored, nothing rebuilt
    assert open_store(again.settings).version() == version


def test_an_update_embeds_and_upserts_only_new_rows_and_a_removal_deletes_them(tmp_path, tiny_seeds, milvus_uri):
    first = replica(tmp_path, tiny_seeds, milvus_uri, "a")
    store = open_store(first.settings)
    before = rows(store, "chunks")
    assert len(before) == len(first.index.chunks)
    stats = first.add_documents([("commission.md", REPORT.encode())])
    added = rows(store, "chunks") - before
    assert stats.embedded == len(added) == sum(c.doc == "commission.md" for c in first.index.chunks)
    assert rows(store, "chunks") >= before  # the seeds' rows stayed, none written again
    first.remove_document("commission.md")
    assert added <= rows(store, "chunks")  # the version before is kept for readers still on it
    first.add_documents([("line.md", OTHER.encode())])  # one more version: now they go
    assert not added & rows(store, "chunks")
    live = {json.loads(r["value"])["version"] for r in store.call(
        "query", collection_name=store._name("meta"), filter='key == "live"', output_fields=["value"])}
    versions = {r["version"] for r in store.call("query", collection_name=store._name("files"),
                                                 filter='key != ""', output_fields=["version"], limit=16_384)}
    assert live <= versions and len(versions) == 2  # the live one and the one before
    assert len(list((tmp_path / "a" / "store-cache").glob("v-*"))) == 2  # its cache: the same two


def test_a_build_that_fails_midway_leaves_the_live_version_whole(tmp_path, tiny_seeds, milvus_uri, monkeypatch):
    first = replica(tmp_path, tiny_seeds, milvus_uri, "a")
    second = replica(tmp_path, tiny_seeds, milvus_uri, "b")
    store = open_store(first.settings)
    version = store.version()

    def broken(self, version, folder):
        raise StoreError("the store milvus://... failed (upsert): connection reset")

    monkeypatch.setattr(milvus_module.MilvusStore, "_write_files", broken)
    with pytest.raises(StoreError):
        first.add_documents([("commission.md", REPORT.encode())])
    assert store.version() == version
    assert not second.follow_store()
    assert "commission.md" not in names(first) and "commission.md" not in names(second)
    assert not (tmp_path / "a" / "library" / "commission.md").exists()  # the add was undone


def test_two_replicas_adding_at_once_keep_both_documents(tmp_path, tiny_seeds, milvus_uri):
    first = replica(tmp_path, tiny_seeds, milvus_uri, "a")
    second = replica(tmp_path, tiny_seeds, milvus_uri, "b")
    first.add_documents([("commission.md", REPORT.encode())])
    # The second has not followed the store yet: its build starts from the old version,
    # finds the live one changed when it switches, and builds again on top of it.
    second.add_documents([("line.md", OTHER.encode())])
    assert {"commission.md", "line.md"} <= names(second)
    first.follow_store()
    assert {"commission.md", "line.md"} <= names(first)


def test_a_damaged_cache_is_fetched_again(tmp_path, tiny_seeds, milvus_uri):
    first = replica(tmp_path, tiny_seeds, milvus_uri, "a")
    cached = tmp_path / "a" / "store-cache" / open_store(first.settings).version() / "chunks.jsonl"
    cached.write_text("damaged")
    again = replica(tmp_path, tiny_seeds, milvus_uri, "a")
    assert again.build_stats is None and len(again.index.chunks) == len(first.index.chunks)


def test_servers_on_one_store_follow_each_other(tmp_path, tiny_seeds, milvus_uri):
    """Two app replicas (the real web app, each with its follower thread, as `assistant
    serve --store` runs them): a document added through one is answered by the other."""
    import httpx

    from assistant.web.serve import create_server_app
    from assistant.web.server import AssistantSlot, follow_store, serve_in_thread

    first = replica(tmp_path, tiny_seeds, milvus_uri, "a")
    second = replica(tmp_path, tiny_seeds, milvus_uri, "b")
    stop = threading.Event()
    question = {"question": "Who guarded the camps in the demilitarized zone?"}
    try:
        slots = [AssistantSlot(first), AssistantSlot(second)]
        for slot in slots:
            follow_store(slot, stop=stop, every=0.2)
        with serve_in_thread(create_server_app(slots[0])) as url_a, \
                serve_in_thread(create_server_app(slots[1])) as url_b:  # fmt: skip
            first.add_documents([("commission.md", REPORT.encode())])
            assert second.index.path.name != open_store(first.settings).version()  # b is behind
            deadline, cited = time.monotonic() + 30, []
            while time.monotonic() < deadline:
                body = httpx.post(url_b + "api/ask", json=question, timeout=30).json()
                cited = [c["doc"] for c in body.get("citations", [])]
                if cited[:1] == ["commission.md"]:
                    break
                time.sleep(0.2)
            assert cited and cited[0] == "commission.md"
            assert httpx.post(url_a + "api/ask", json=question, timeout=30).json()["citations"][0]["doc"] \
                == "commission.md"
    finally:
        stop.set()


def test_a_replica_keeps_answering_while_the_store_is_away_and_refuses_to_add(tmp_path, tiny_seeds):
    with milvus_server_process(tmp_path / "milvus") as (uri, server):
        first = replica(tmp_path, tiny_seeds, f"{uri}/away", "a")
        before = [first.ask(q).to_dict() for q in QUESTIONS]
        server.terminate()
        server.wait(10)
        assert [first.ask(q).to_dict() for q in QUESTIONS] == before  # its copy of the vectors, exactly
        assert first.index.dense.away
        with pytest.raises(StoreError, match="away|failed|reach"):
            first.add_documents([("commission.md", REPORT.encode())])
        assert "commission.md" not in names(first)
        with pytest.raises(StoreError):
            first.follow_store()


def test_a_store_that_cannot_be_reached_is_one_line(tmp_path, tiny_seeds, capsys):
    code = main(["ask", "When?", "--seeds", str(tiny_seeds), "--index", str(tmp_path / "i"),
                 "--store", "milvus://127.0.0.1:9"])  # fmt: skip
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "milvus://127.0.0.1:9" in err, err
    code = main(["ask", "When?", "--store", "postgres://x"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.startswith("error: store 'postgres://x' is not one of"), err


def test_store_uris(tmp_path):
    from assistant.store.stores import check_store_uri

    assert check_store_uri("milvus://10.0.0.5:19530/archive") == "milvus://10.0.0.5:19530/archive"
    assert check_store_uri("") == ""
    for bad in ("milvus://host", "milvus://host:0", "milvus://h:1/a-b", "milvus-lite:", "http://h:1"):
        with pytest.raises(SettingsError):
            check_store_uri(bad)


def test_an_empty_store_is_built_and_an_in_process_milvus_lite_file_works(tmp_path, tiny_seeds):
    uri = f"milvus-lite:{tmp_path / 'store.db'}"
    with pytest.raises(IndexLoadError, match="no index"):
        open_store(Settings(index_dir=tmp_path / "x", store=uri)).load()
    shared = replica(tmp_path, tiny_seeds, uri, "a")
    assert shared.build_stats is not None and shared.ask(QUESTIONS[0]).citations


def test_a_suite_evaluation_never_writes_its_corpora_into_the_shared_store(tmp_path, tiny_seeds, milvus_uri):
    from assistant.evaluation.suite import Corpus, corpus_assistant

    shared = replica(tmp_path, tiny_seeds, milvus_uri, "a")
    version = open_store(shared.settings).version()
    extra = tmp_path / "extra"
    extra.mkdir()
    (extra / "line.md").write_text(OTHER, encoding="utf-8")
    other = corpus_assistant(Corpus("tiny+1", (tiny_seeds, extra), ()), shared, tmp_path / "work")
    assert "line.md" in names(other) and not other.settings.store
    assert open_store(shared.settings).version() == version


def test_a_document_removed_through_another_replica_does_not_come_back_from_the_first(
        tmp_path, tiny_seeds, milvus_uri):  # fmt: skip
    first = replica(tmp_path, tiny_seeds, milvus_uri, "a")
    second = replica(tmp_path, tiny_seeds, milvus_uri, "b")
    first.add_documents([("commission.md", REPORT.encode())])
    second.follow_store()
    second.remove_document("commission.md")
    restarted = replica(tmp_path, tiny_seeds, milvus_uri, "a")  # its library still has the file
    assert "commission.md" not in names(restarted)
    assert restarted.build_stats is None  # nothing rebuilt, nothing pushed back
    restarted.refresh()
    assert "commission.md" not in names(restarted)
    # Added again through it, it is back, for both.
    restarted.add_documents([("commission.md", REPORT.encode())])
    assert second.follow_store() and "commission.md" in names(second)
