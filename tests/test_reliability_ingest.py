"""Issue 6, lines 5-8: hostile files in the seeds folder, and k beyond the corpus.

Each test states the behaviour it holds. The fake embedder keeps them fast;
nothing here needs the real model. Does not cover the index on disk (see
test_reliability_persistence.py) or the web server (test_reliability_http.py).
"""

from __future__ import annotations

import builtins
import io
import os
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FuturesTimeout
from pathlib import Path

import numpy as np
import pytest

from assistant import Assistant
from assistant.store import ann
from assistant.ingest.documents import decode_bytes, load_documents
from assistant.errors import NoDocumentsError

GOOD = "Signing Day\n\nThe armistice was signed at Panmunjom on July 27, 1953.\n"
# Every non-ASCII letter here decodes to something else in cp1250, cp775 or cp1257,
# so a wrong guess of the legacy encoding shows.
LATIN1 = (
    "Délégués à Kaesong\n\n"
    "Les délégués se sont réunis à Kaesong en juillet 1951. "
    "Ça a été très long, naïve idée, élève de São Paulo, café à Zürich.\n"
)
UTF16 = "Summit Notes\n\nLeaders met in Pyongyang in 2000 and in 2007 for inter-Korean summits.\n"


def load(seeds: Path, tmp_path: Path, fake_embedder, **settings):
    from assistant.config import Settings

    return Assistant.load(seeds, tmp_path / "index", settings=Settings(**settings),
                          embedder=fake_embedder)  # fmt: skip


@pytest.fixture
def seeds(tmp_path) -> Path:
    folder = tmp_path / "seeds"
    folder.mkdir()
    (folder / "good.txt").write_text(GOOD, encoding="utf-8")
    return folder


# ---- line 5: legacy encodings and binary files -------------------------------------


@pytest.mark.parametrize(
    "name, data, expected",
    [
        ("latin1.txt", LATIN1.encode("latin-1"), LATIN1),
        ("utf16.txt", UTF16.encode("utf-16"), UTF16),  # Python writes a BOM
        ("utf16be.md", b"\xfe\xff" + UTF16.encode("utf-16-be"), UTF16),
        ("utf8bom.txt", b"\xef\xbb\xbf" + GOOD.encode("utf-8"), GOOD),
    ],
)
def test_legacy_encodings_are_decoded_to_the_right_text(seeds, tmp_path, fake_embedder,
                                                        name, data, expected):  # fmt: skip
    (seeds / name).write_bytes(data)
    assistant = load(seeds, tmp_path, fake_embedder)
    documents = assistant._state.documents
    assert set(documents) == {"good.txt", name}
    assert documents[name].text == expected  # decoded, not mojibake
    assert not assistant.warnings
    # offsets refer to the decoded text: a citation quotes it verbatim
    for chunk in assistant.index.chunks:
        assert documents[chunk.doc].text[chunk.start : chunk.end].strip()


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(bytes(range(256)) * 16, id="every-byte"),
        pytest.param(b"\x89PNG\r\n\x1a\n" + np.random.default_rng(6).bytes(4000), id="png"),
        pytest.param(b"PK\x03\x04" + b"\x00" * 200 + b"payload", id="zip-with-nuls"),
        pytest.param(b"\x7fELF\x02\x01\x01" + bytes(500), id="elf"),
    ],
)
def test_a_binary_file_named_txt_is_skipped_with_a_warning_naming_it(seeds, tmp_path,
                                                                     fake_embedder, data):  # fmt: skip
    (seeds / "photo.txt").write_bytes(data)
    assistant = load(seeds, tmp_path, fake_embedder)
    assert list(assistant._state.documents) == ["good.txt"]
    assert [w for w in assistant.warnings if "photo.txt" in w], assistant.warnings
    assert assistant.ask("When was the armistice signed?").citations[0].doc == "good.txt"


def test_decode_bytes_never_returns_text_with_nul_or_control_runs():
    assert decode_bytes(b"plain text\x00\x00\x00 with NULs " * 20) is None
    assert decode_bytes("naïve".encode("latin-1")) == ("naïve", "cp1252")


# ---- line 6: size cap and empty folders ----------------------------------------------


@pytest.fixture
def opened(monkeypatch) -> list[str]:
    """Names of the files opened while the test runs (builtins.open and pathlib's io.open)."""
    names: list[str] = []
    real_open = io.open

    def spy(file, *args, **kwargs):
        names.append(os.fspath(file) if isinstance(file, (str, os.PathLike)) else repr(file))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", spy)
    monkeypatch.setattr(io, "open", spy)
    return names


def test_a_file_over_the_size_cap_is_skipped_before_it_is_read(seeds, opened):
    big = seeds / "huge.txt"
    with open(big, "wb") as handle:  # sparse: 64 MB that costs nothing on disk
        handle.truncate(64 << 20)
    opened.clear()
    documents, warnings = load_documents(seeds, max_file_bytes=1 << 20)
    assert [d.path for d in documents] == ["good.txt"]
    assert warnings == [f"skipped huge.txt: {64 << 20} bytes is over the {1 << 20}-byte cap"]
    assert not [name for name in opened if name.endswith("huge.txt")], opened


def test_the_size_cap_applies_through_the_assistant(seeds, tmp_path, fake_embedder):
    (seeds / "big.md").write_text("Big File\n\n" + "The talks went on. " * 100, encoding="utf-8")
    assistant = load(seeds, tmp_path, fake_embedder, max_file_bytes=1000)
    assert list(assistant._state.documents) == ["good.txt"]
    assert any("big.md" in w and "cap" in w for w in assistant.warnings)


@pytest.mark.parametrize(
    "contents",
    [
        pytest.param({}, id="empty-folder"),
        pytest.param({"notes.pdf": b"%PDF-1.7", "image.png": b"\x89PNG"}, id="no-readable-file"),
        pytest.param({"blob.txt": bytes(range(256)) * 4}, id="only-binary"),
        pytest.param({"blank.txt": b"   \n\n\t\n", "empty.md": b""}, id="only-blank"),
        pytest.param({".hidden.txt": GOOD.encode()}, id="only-hidden"),
    ],
)
def test_a_seeds_folder_with_nothing_to_read_is_a_clear_error(tmp_path, fake_embedder, contents):
    folder = tmp_path / "seeds"
    folder.mkdir()
    for name, data in contents.items():
        (folder / name).write_bytes(data)
    with pytest.raises(NoDocumentsError, match=r"no readable documents \(\.txt, \.md, \.pdf, \.docx, \.html\) in .*seeds"):
        load(folder, tmp_path, fake_embedder)
    assert fake_embedder.encoded == []  # failed before any embedding


def test_a_missing_seeds_folder_is_a_clear_error(tmp_path, fake_embedder):
    with pytest.raises(NoDocumentsError, match="seeds folder not found"):
        load(tmp_path / "nowhere", tmp_path, fake_embedder)


def test_the_cli_reports_an_empty_seeds_folder_in_one_line(tmp_path, capsys):
    from assistant.cli import main

    (tmp_path / "seeds").mkdir()
    code = main(["build", "--seeds", str(tmp_path / "seeds"), "--index", str(tmp_path / "index")])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("error: no readable documents (.txt, .md, .pdf, .docx, .html) in ")
    assert err.count("\n") == 1 and "Traceback" not in err


# ---- line 7: symlinks out of the seeds folder -------------------------------------


def test_symlinks_leaving_the_seeds_folder_are_not_followed(seeds, tmp_path, fake_embedder):
    outside = tmp_path / "outside"
    outside.mkdir()
    secret = outside / "secret.txt"
    secret.write_text("Secret Plans\n\nThe secret codeword is xylophone-marmalade.\n")
    (outside / "more.md").write_text("More Secrets\n\nAnother secret sentence lives here.\n")
    (seeds / "link.txt").symlink_to(secret)  # a file link
    (seeds / "linked-dir").symlink_to(outside, target_is_directory=True)  # a folder link
    (seeds / "passwd.txt").symlink_to("/etc/passwd")
    (seeds / "relative.md").symlink_to(Path("..") / "outside" / "more.md")
    (seeds / "chain.txt").symlink_to(seeds / "link.txt")  # inside, but ends outside
    (seeds / "inner.txt").symlink_to(seeds / "good.txt")  # stays inside: allowed

    assistant = load(seeds, tmp_path, fake_embedder)
    assert sorted(assistant._state.documents) == ["good.txt", "inner.txt"]
    for name in ("link.txt", "passwd.txt", "relative.md", "chain.txt"):
        assert f"skipped {name}: symlink leaves the seeds folder" in assistant.warnings
    indexed = " ".join(c.text for c in assistant.index.chunks)
    assert "xylophone" not in indexed and "root:" not in indexed
    assert all("xylophone" not in text for text in fake_embedder.encoded)


# ---- odd entries: a FIFO, a dangling symlink, a symlink loop ----------------------


def load_documents_or_fail_if_blocked(seeds: Path, fifo: Path | None = None):
    """load_documents in a thread: a read of a FIFO would block it forever."""
    with ThreadPoolExecutor(1) as pool:
        future = pool.submit(load_documents, seeds, max_file_bytes=1 << 20)
        try:
            return future.result(timeout=30)
        except FuturesTimeout:
            if fifo is not None:
                with open(fifo, "wb"):  # lets the blocked reader go
                    pass
            pytest.fail("loading the seeds blocked")


@pytest.mark.parametrize(
    "kind, warning",
    [
        ("fifo", "skipped pipe.txt: not a regular file"),
        ("dangling-symlink", "skipped pipe.txt: cannot read it (No such file or directory)"),
        ("symlink-loop", "skipped pipe.txt: cannot read it (symlink loop)"),
    ],
)
def test_an_odd_entry_is_skipped_with_a_warning_and_the_rest_is_indexed(seeds, tmp_path, fake_embedder,
                                                                        kind, warning):  # fmt: skip
    odd = seeds / "pipe.txt"
    if kind == "fifo":
        os.mkfifo(odd)
    elif kind == "dangling-symlink":
        odd.symlink_to("gone.txt")  # inside the folder, so not refused as leaving it
    else:
        odd.symlink_to("pipe.txt")
    documents, warnings = load_documents_or_fail_if_blocked(seeds, odd if kind == "fifo" else None)
    assert [d.path for d in documents] == ["good.txt"]
    assert warnings == [warning]
    assistant = load(seeds, tmp_path, fake_embedder)  # the whole build, as `assistant build` runs it
    assert list(assistant._state.documents) == ["good.txt"] and assistant.warnings == warnings


def test_the_cli_builds_past_a_dangling_symlink_with_one_warning_line(seeds, tmp_path, capsys, monkeypatch,
                                                                     fake_embedder):  # fmt: skip
    import assistant.pipeline as pipeline
    from assistant.cli import main

    monkeypatch.setattr(pipeline, "SentenceTransformerEmbedder", lambda *args, **kwargs: fake_embedder)
    (seeds / "broken.txt").symlink_to("missing.txt")
    code = main(["build", "--seeds", str(seeds), "--index", str(tmp_path / "index")])
    out, err = capsys.readouterr()
    assert code == 0 and out.startswith("built index: 1 documents")
    assert "warning: skipped broken.txt: cannot read it (No such file or directory)\n" in err
    assert "error" not in err and "Traceback" not in err


# ---- line 8: more results than chunks ------------------------------------------------


class PaddingIndex:
    """Stands in for a FAISS index that pads with -1 (as HNSW does when its graph
    search finds fewer than k neighbours, even for k below ntotal)."""

    def __init__(self, ntotal: int):
        self.ntotal = ntotal

    def search(self, queries, k):
        ids = np.full((len(queries), k), -1, dtype=np.int64)
        scores = np.full((len(queries), k), -3.4e38, dtype=np.float32)
        ids[:, :2], scores[:, :2] = [1, 0], [0.75, 0.5]
        return scores, ids


def test_ann_search_drops_minus_one_padding():
    assert ann.search(PaddingIndex(ntotal=5), np.zeros((1, 4), np.float32), 4) == [
        [(1, 0.75), (0, 0.5)]
    ]


@pytest.mark.parametrize("mode", ["hybrid", "dense", "bm25"])
@pytest.mark.parametrize("padded", [False, True], ids=["faiss", "padded-faiss"])
def test_asking_for_more_passages_than_exist_never_uses_minus_one(
    tiny_seeds, tmp_path, fake_embedder, mode, padded
):
    assistant = load(tiny_seeds, tmp_path, fake_embedder)
    chunks = assistant.index.chunks
    if padded:  # a FAISS that pads: row -1 would silently mean "the last chunk"
        assistant.index.dense = PaddingIndex(len(chunks))
        assistant.index.sentence_dense = PaddingIndex(len(assistant.index.sentences))
    answer = assistant.ask("When was the armistice signed at Panmunjom?", k=100, mode=mode)
    rows = [hit.row for hit in answer.retrieved]
    assert rows and len(rows) <= len(chunks)
    assert all(0 <= row < len(chunks) for row in rows) and len(set(rows)) == len(rows)
    assert all(hit.chunk is chunks[hit.row] for hit in answer.retrieved)
    if padded and mode == "dense":  # chunk rows 0, 1 and the chunks of sentence rows 0, 1
        via_sentences = {c for r in (0, 1) for c in assistant.index.sentence_chunks[r]}
        assert sorted(rows) == sorted({0, 1} | via_sentences)


def test_a_one_chunk_corpus_answers_with_k_100(tmp_path, fake_embedder):
    folder = tmp_path / "seeds"
    folder.mkdir()
    (folder / "one.txt").write_text("The armistice was signed on July 27, 1953.\n")
    assistant = load(folder, tmp_path, fake_embedder)
    assert len(assistant.index.chunks) == 1
    answer = assistant.ask("When was the armistice signed?", k=100)
    assert [hit.row for hit in answer.retrieved] == [0]
