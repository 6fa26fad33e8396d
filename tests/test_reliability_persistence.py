"""Issue 6, lines 9-12: the saved index survives kills, corruption and change.

Line 9 kills a real subprocess (SIGKILL) at fixed points of a build; a step of
the build is made to pause there so the kill lands in that window every time.
Everything uses the fake embedder. Does not cover the web server or the static
pickle check (test_static_checks.py).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import assistant.store.persist as index_module
from assistant import Assistant
from assistant.config import Settings
from assistant.errors import CitationNotFoundError, IndexLoadError
from assistant.store.persist import load_index, save_index

from conftest import ROOT, FakeEmbedder

QUESTIONS = (
    "When was the armistice signed?",
    "Where did the talks begin?",
    "Which issue divided the sides over prisoners?",
    "When did leaders meet for inter-Korean summits?",
)


def load(seeds: Path, index: Path, embedder=None) -> Assistant:
    # Never abstain: these tests are about which passages answer, not how sure they are.
    return Assistant.load(seeds, index, settings=Settings(abstain_below=0.0),
                          embedder=embedder or FakeEmbedder())  # fmt: skip


def answers(assistant: Assistant) -> list[dict]:
    return [assistant.ask(q).to_dict() for q in QUESTIONS]


@pytest.fixture
def built(tiny_seeds, tmp_path):
    """A saved index of the tiny corpus and its answers to QUESTIONS."""
    index = tmp_path / "index"
    assistant = load(tiny_seeds, index)
    return tiny_seeds, index, assistant, answers(assistant)


# ---- line 9: a build killed part-way -------------------------------------------------

# Runs a build of `seeds` into `index` with the fake embedder, pausing at one step
# (after writing `marker`) so that the test can SIGKILL it there.
BUILDER = """
import os, sys, time
from pathlib import Path
sys.path[:0] = [{root!r}, {tests!r}]
from conftest import FakeEmbedder
import assistant.store.persist as index_module
from assistant import Assistant
from assistant.config import Settings

point, marker, seeds, index = sys.argv[1], Path(sys.argv[2]), sys.argv[3], sys.argv[4]

def pause():
    marker.write_text(point)
    time.sleep(120)

class PausingEmbedder(FakeEmbedder):
    def encode(self, texts, *, show_progress=False):
        if point == "embedding" and len(self.encoded) > 0:
            pause()  # the first batch is done, the second never finishes
        return super().encode(texts, show_progress=show_progress)

real_save, real_replace = index_module.ann.save, index_module.os.replace
def save_then_pause(*args):
    real_save(*args)  # dense.faiss is in the temporary folder, bm25 and manifest are not
    pause()
def pause_before_current(src, dst):
    if Path(dst).name == "CURRENT":
        pause()  # the new version folder is complete and in place; CURRENT is not switched
    real_replace(src, dst)
if point == "writing-files":
    index_module.ann.save = save_then_pause
if point == "switching-current":
    index_module.os.replace = pause_before_current

Assistant.load(seeds, index, settings=Settings(abstain_below=0.0), embedder=PausingEmbedder())
print("finished without pausing", file=sys.stderr)
"""


def kill_build_at(point: str, seeds: Path, index: Path, tmp_path: Path) -> None:
    script = tmp_path / "builder.py"
    script.write_text(BUILDER.format(root=str(ROOT), tests=str(ROOT / "tests")))
    marker = tmp_path / f"paused-{point}"
    process = subprocess.Popen(
        [sys.executable, str(script), point, str(marker), str(seeds), str(index)],
        stdin=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while not marker.exists() and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert marker.exists(), f"the build never reached {point}: {process.poll()} {process.stderr.read() if process.poll() is not None else ''}"
        os.kill(process.pid, signal.SIGKILL)
        assert process.wait(timeout=30) == -signal.SIGKILL
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        process.stderr.close()


@pytest.mark.parametrize("point", ["embedding", "writing-files", "switching-current"])
def test_a_build_killed_part_way_leaves_the_previous_index_answering_identically(
    built, tmp_path, point
):
    seeds, index, _, before = built
    manifest_before = load_index(index).manifest
    # A change that forces a build with several embedding batches (over 256 texts).
    sentences = " ".join(f"Delegation number {i} met on day {i} to read note {i}." for i in range(400))
    (seeds / "added.txt").write_text(f"Added Later\n\n{sentences}\n", encoding="utf-8")

    kill_build_at(point, seeds, index, tmp_path)

    assert load_index(index).manifest == manifest_before  # verified by checksums
    live_before = (index / "CURRENT").read_text()
    (seeds / "added.txt").unlink()  # back to the documents the live index was built from
    after = load(seeds, index)
    assert after.build_stats is None and after.warnings == []  # loaded, not rebuilt
    assert answers(after) == before
    # the kill left no lock behind: the next build runs and completes
    (seeds / "added.txt").write_text("Added Later\n\nThe Geneva Conference met in 1954.\n")
    rebuilt = load(seeds, index)
    assert rebuilt.build_stats is not None and "added.txt" in rebuilt.index.manifest["documents"]
    assert not list(index.glob(".tmp-*"))
    # the new version and the one live before it (kept for a reader still loading it)
    assert {p.name for p in index.glob("v-*")} == {live_before, rebuilt.index.path.name}


# ---- line 10: a flipped byte or a missing file ------------------------------------


def version_folder(index: Path) -> Path:
    return index / (index / "CURRENT").read_text().strip()


def index_files(index: Path) -> list[str]:
    folder = version_folder(index)
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())


def flip_byte(path: Path, position: float) -> None:
    data = bytearray(path.read_bytes())
    at = min(int(len(data) * position), len(data) - 1)
    data[at] ^= 0x01  # one bit: the smallest corruption there is
    path.write_bytes(bytes(data))


@pytest.fixture
def faiss_reads(monkeypatch) -> list[str]:
    import faiss

    reads: list[str] = []
    real = faiss.read_index

    def spy(path, *args):
        reads.append(str(path))
        return real(path, *args)

    monkeypatch.setattr(faiss, "read_index", spy)
    return reads


def test_every_flipped_byte_position_tried_is_detected_before_faiss_reads_the_index(built, faiss_reads):
    _, index, _, _ = built
    names = index_files(index)
    assert len(names) >= 10
    for name in names:  # every file the index has, whatever it has
        path = version_folder(index) / name
        original = path.read_bytes()
        for position in (0.0, 0.5, 0.999):
            flip_byte(path, position)
            with pytest.raises(IndexLoadError, match=r"corrupt|unreadable|checksum"):
                load_index(index)
            path.write_bytes(original)
    assert faiss_reads == []
    assert load_index(index).manifest["files"]  # restored: loads again


def test_a_missing_file_is_detected_before_faiss_reads_the_index(built, faiss_reads):
    _, index, _, _ = built
    for name in [*index_files(index), "../CURRENT"]:
        path = version_folder(index) / name
        original = path.read_bytes()
        path.unlink()
        with pytest.raises(IndexLoadError):
            load_index(index)
        path.write_bytes(original)
    assert faiss_reads == []


@pytest.mark.parametrize(
    "damage",
    ["flip dense.faiss", "flip manifest.json", "delete chunk_vectors.npy", "delete bm25/vocab.index.json"],
)
def test_a_damaged_index_is_rebuilt_with_a_warning_and_answers_as_before(built, damage):
    seeds, index, _, before = built
    action, name = damage.split()
    path = version_folder(index) / name
    flip_byte(path, 0.5) if action == "flip" else path.unlink()

    after = load(seeds, index)
    assert after.build_stats is not None  # rebuilt
    assert len(after.warnings) == 1 and after.warnings[0].startswith("rebuilding the index: ")
    assert answers(after) == before
    assert load_index(index).manifest["files"] == after.index.manifest["files"]  # saved, sound


# ---- line 11: the configured model is not the index's -----------------------------


class OtherModel(FakeEmbedder):
    name = "fake-bow@2"


class OtherDimension(FakeEmbedder):
    """Same name, other width: a cache keyed by the name alone would mix vectors."""

    dimension = 48


@pytest.mark.parametrize("embedder_class", [OtherModel, OtherDimension])
def test_a_different_model_or_dimension_forces_a_full_rebuild(built, embedder_class):
    seeds, index, old, _ = built
    embedder = embedder_class()
    after = load(seeds, index, embedder)
    stats = after.build_stats
    assert stats is not None and stats.reused == 0 and stats.embedded == stats.chunks
    manifest = load_index(index).manifest
    assert (manifest["model"], manifest["dimension"]) == (embedder.name, embedder.dimension)
    assert after.index.chunk_vectors.shape == (len(old.index.chunks), embedder.dimension)
    answer = after.ask(QUESTIONS[0])
    assert not answer.abstained and "1953" in answer.answer
    # and back again: the first model's index is rebuilt, not taken from the cache
    again = load(seeds, index)
    assert again.build_stats is not None and again.build_stats.reused == 0


def test_a_manifest_edited_to_name_another_model_is_not_trusted(built):
    seeds, index, _, before = built
    path = version_folder(index) / "manifest.json"
    manifest = json.loads(path.read_text())
    path.write_text(json.dumps({**manifest, "model": "someone-else@1", "dimension": 999}, indent=2))
    after = load(seeds, index)
    assert after.build_stats is not None
    assert load_index(index).manifest["model"] == FakeEmbedder.name
    assert answers(after) == before


# ---- line 12: documents added, edited, deleted ---------------------------------


def cited(answer) -> set[str]:
    return {c.doc for c in answer.citations}


def test_added_edited_and_deleted_documents_are_detected_and_answered(built):
    seeds, index, assistant, _ = built
    signed = assistant.ask("When was the armistice signed at Panmunjom?")
    old_alpha = [c for c in signed.citations if c.doc == "alpha.txt"]
    old_beta = [c for c in assistant.ask("When did leaders meet for inter-Korean summits?").citations
                if c.doc == "beta.md"]  # fmt: skip
    assert old_alpha and old_beta
    geneva = "What happened at the Geneva Conference on Korea?"
    assert "gamma.txt" not in cited(assistant.ask(geneva))

    # added: found by refresh(), answered from
    (seeds / "gamma.txt").write_text(
        "The Geneva Conference\n\nThe Geneva Conference on Korea met in April 1954 and ended "
        "without any agreement on reunification.\n", encoding="utf-8")  # fmt: skip
    stats = assistant.refresh()
    assert stats is not None and stats.changed_documents == ("gamma.txt",)
    answer = assistant.ask(geneva)
    assert cited(answer) == {"gamma.txt"} and "April 1954" in answer.answer

    # edited: a new first paragraph shifts every offset and the date changes
    alpha = (seeds / "alpha.txt").read_text(encoding="utf-8")
    edited = alpha.replace("Talks began at Kaesong", "Preliminary contacts came first. Talks began at Kaesong")
    edited = edited.replace("on July 27, 1953", "on the 27th of July 1953 at ten in the morning")
    (seeds / "alpha.txt").write_text(edited, encoding="utf-8")
    stats = assistant.refresh()
    assert stats.changed_documents == ("alpha.txt",)
    assert "ten in the morning" in assistant.ask("At what time of day was the armistice signed?").answer
    for citation in old_alpha:
        now = assistant.cite(citation.id)
        assert now.stale and now.doc == "alpha.txt"
        assert now.quote == edited[now.start : now.end] and now.id != citation.id
    for citation in old_beta:  # beta.md did not change: its IDs are current
        now = assistant.cite(citation.id)
        assert not now.stale and (now.id, now.quote) == (citation.id, citation.quote)

    # deleted: gone from answers and citations, in this process and the next
    (seeds / "gamma.txt").unlink()
    stats = assistant.refresh()
    assert stats is not None and "gamma.txt" not in assistant.index.manifest["documents"]
    assert "gamma.txt" not in cited(assistant.ask(geneva))
    with pytest.raises(CitationNotFoundError, match="gamma.txt"):
        assistant.cite(answer.citations[0].id)
    fresh = load(seeds, index)
    assert fresh.build_stats is None  # the saved index already matches the folder
    assert answers(fresh) == answers(assistant)


def test_a_change_made_while_stopped_is_found_by_the_next_load(built):
    seeds, index, _, _ = built
    (seeds / "beta.md").write_text(
        (seeds / "beta.md").read_text().replace("in 2018", "in April 2018"), encoding="utf-8"
    )
    after = load(seeds, index)
    assert after.build_stats.changed_documents == ("beta.md",)
    assert after.build_stats.embedded < after.build_stats.chunks  # only what changed
    assert "April 2018" in after.ask("When did the Panmunjom Declaration come?").answer


# ---- a build saving while another process loads -------------------------------------


def save_during_load(monkeypatch, index_object, index: Path, saves: int) -> list[str]:
    """Make the next load_index run `saves` saves (another process's build) just as it
    starts checking its version's files; returns the version it started on."""
    real = index_module._sha256_file
    started: list[str] = []

    def hashing(path):
        if not started:
            started.append((index / "CURRENT").read_text())
            for _ in range(saves):
                save_index(index_object, index)
        return real(path)

    monkeypatch.setattr(index_module, "_sha256_file", hashing)
    return started


def test_a_save_landing_during_a_load_keeps_the_version_being_loaded(built, monkeypatch):
    seeds, index, assistant, before = built
    started = save_during_load(monkeypatch, assistant.index, index, saves=1)
    during = load(seeds, index)
    monkeypatch.undo()
    assert started and during.index.path.name == started[0]  # read to the end, still there
    assert during.build_stats is None and during.warnings == []  # no spurious rebuild
    assert answers(during) == before
    assert len(list(index.glob("v-*"))) == 2  # the new version and the one live before it


def test_two_saves_during_a_load_give_the_newest_version_or_a_one_line_error(built, monkeypatch):
    """The version being read is deleted under the loader (two builds behind): it
    reads the new live version, or fails with IndexLoadError, never a raw OSError."""
    seeds, index, assistant, before = built
    started = save_during_load(monkeypatch, assistant.index, index, saves=2)
    try:
        loaded = load_index(index)
    except IndexLoadError as exc:
        assert "\n" not in str(exc)
    else:
        assert loaded.path.name == (index / "CURRENT").read_text() != started[0]
        assert loaded.manifest == load_index(index).manifest
    monkeypatch.undo()
    assert not (index / started[0]).exists()  # deleted mid-read: the case under test
    assert answers(load(seeds, index)) == before


def test_each_save_keeps_the_version_live_before_it_and_deletes_older_ones(built):
    _, index, assistant, _ = built
    live = [(index / "CURRENT").read_text()]
    for _ in range(3):
        live.append(save_index(assistant.index, index).name)
    assert {p.name for p in index.glob("v-*")} == set(live[-2:])


# ---- an index path that cannot be used at all ---------------------------------------


@pytest.mark.parametrize("command", [["build"], ["ask", QUESTIONS[0]]])
@pytest.mark.parametrize("parent", ["a-file", "/dev/null"])
def test_an_index_path_under_a_file_is_a_one_line_error_with_exit_2(tiny_seeds, tmp_path, capsys,
                                                                    monkeypatch, command, parent):  # fmt: skip
    import assistant.pipeline as pipeline
    from assistant.cli import main

    monkeypatch.setattr(pipeline, "SentenceTransformerEmbedder", lambda *args, **kwargs: FakeEmbedder())
    (tmp_path / "a-file").write_text("not a folder")
    index = Path(parent) / "index" if parent.startswith("/") else tmp_path / parent / "index"
    code = main([*command, "--seeds", str(tiny_seeds), "--index", str(index)])
    out, err = capsys.readouterr()
    assert (code, out) == (2, "")
    assert err == f"error: index path {index} cannot be used: Not a directory\n"


def test_a_read_only_index_folder_with_changed_documents_is_kept_in_memory(tiny_seeds, tmp_path,
                                                                          monkeypatch):  # fmt: skip
    """Issue 18, item 7: the lock file cannot be opened and nothing can be written (a
    read-only folder; simulated, since root writes anywhere): the updated index is built
    in memory with one warning, and answers from the changed document."""
    index = tmp_path / "index"
    Assistant.load(tiny_seeds, index, settings=Settings(), embedder=FakeEmbedder())
    (tiny_seeds / "alpha.txt").write_text("The Signing\nThe armistice was signed in a tent on July 27, 1953.\n",
                                          encoding="utf-8")  # fmt: skip
    real_open = open

    def read_only_open(path, mode="r", *args, **kwargs):
        if "w" in mode and str(path).startswith(str(index)):
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path, mode, *args, **kwargs)

    def read_only_save(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(index_module, "open", read_only_open, raising=False)
    monkeypatch.setattr("assistant.store.stores.save_index", read_only_save)
    live = Assistant.load(tiny_seeds, index, settings=Settings(abstain_below=0.0), embedder=FakeEmbedder())
    assert [w for w in live.warnings if w.startswith("index kept in memory only")]
    assert "tent" in live.ask("When was the armistice signed?").citations[0].quote


def test_a_path_under_a_file_is_still_a_one_line_index_error(tiny_seeds, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(IndexLoadError, match="cannot be used"):
        Assistant.load(tiny_seeds, blocker / "index", settings=Settings(), embedder=FakeEmbedder())


def test_a_title_set_beside_the_documents_reaches_the_answers_and_a_reload(built):
    seeds, index, assistant, _ = built
    (seeds / "metadata.toml").write_text('["alpha.txt"]\ntitle = "Kaesong and Panmunjom"\n',
                                         encoding="utf-8")  # fmt: skip
    stats = assistant.refresh()
    assert stats is not None and stats.embedded == 0  # only the title changed: no re-embedding
    signed = assistant.ask("When was the armistice signed at Panmunjom?")
    assert {c.title for c in signed.citations if c.doc == "alpha.txt"} == {"Kaesong and Panmunjom"}
    again = load(seeds, index)
    assert again.build_stats is None  # the saved index holds the new title
    assert {c.title for c in again.ask("When was the armistice signed at Panmunjom?").citations
            if c.doc == "alpha.txt"} == {"Kaesong and Panmunjom"}  # fmt: skip
