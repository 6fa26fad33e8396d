"""Issue 21: documents added and removed (Assistant.add_documents / remove_document,
`assistant add|remove|docs`), cited to the page, and every bad file refused with one
line that changes nothing on disk or in the index.

The fake embedder keeps these fast; test_formats.py covers the extraction itself.
"""

from __future__ import annotations

import json

import pytest

from assistant import Assistant
from assistant import pipeline
from assistant.cli import main
from assistant.config import Settings
from assistant.errors import DocumentError

from conftest import FakeEmbedder
from pdf_maker import make_pdf

REPORT = """# Report on the Neutral Commission

## Custody

The Neutral Nations Repatriation Commission took custody of the prisoners at Panmunjom in September 1953.

The Indian custodial force guarded the camps in the demilitarized zone for ninety days.

## Explanations

Explainers from each side had ninety days to persuade the prisoners who refused repatriation.
"""


@pytest.fixture
def settings(tmp_path, tiny_seeds) -> Settings:
    return Settings(seeds_dir=tiny_seeds, index_dir=tmp_path / "index", abstain_below=0.0)


@pytest.fixture
def assistant(settings, fake_embedder) -> Assistant:
    return Assistant.load(settings=settings, embedder=fake_embedder)


def long_report() -> str:
    """REPORT, then enough further sections for a few pages."""
    more = [f"## Session {i}\n\nOn day {i} of the explanations the delegates of both sides met again in the "
            f"tents at the camps, and the commission recorded {i * 7} interviews with prisoners who were "
            "asked whether they wished to return home or to stay, with observers present throughout.\n"
            for i in range(1, 40)]  # fmt: skip
    return REPORT + "\n" + "\n".join(more)


def pdf_bytes(tmp_path, markdown=None, **options) -> bytes:
    return make_pdf(markdown or long_report(), tmp_path / "made.pdf", **options).read_bytes()


def snapshot(settings: Settings) -> dict:
    """What a refused file must leave as it was: the library's files and the live index."""
    library = settings.library_dir
    files = {p.name: p.read_bytes() for p in library.iterdir() if p.name != ".lock"} if library.is_dir() else {}
    return {"library": files, "current": (settings.index_dir / "CURRENT").read_text()}


def test_an_added_pdf_is_answered_and_cited_to_its_page(assistant, tmp_path):
    stats = assistant.add_documents([("neutral.pdf", pdf_bytes(tmp_path))])
    rows = {row["path"]: row for row in assistant.documents()}
    row = rows["neutral.pdf"]
    assert (row["format"], row["source"], row["title"]) == ("pdf", "added", "Report on the Neutral Commission")
    assert row["pages"] >= 2 and row["chunks"] > 0 and row["added"]
    assert stats.embedded == row["chunks"]  # only the new document's chunks were embedded

    answer = assistant.ask("Who guarded the camps in the demilitarized zone?")
    cited = [c for c in answer.citations if c.doc == "neutral.pdf"]
    assert cited and all(c.pages is not None and c.page_label.startswith("p") for c in cited)
    looked_up = assistant.cite(cited[0].id)
    assert looked_up.pages == cited[0].pages and looked_up.quote == cited[0].quote
    assert answer.to_dict()["citations"][0]["pages"] == list(answer.citations[0].pages or []) or \
        answer.citations[0].pages is None  # fmt: skip


def test_a_later_load_finds_the_added_document_and_a_removal_takes_it_out(settings, assistant, tmp_path,
                                                                         fake_embedder):  # fmt: skip
    assistant.add_documents([("neutral.pdf", pdf_bytes(tmp_path))], title="The NNRC")
    again = Assistant.load(settings=settings, embedder=fake_embedder)
    assert again.build_stats is None  # nothing to rebuild: the saved index has it
    assert {r["path"]: r["title"] for r in again.documents()}["neutral.pdf"] == "The NNRC"

    again.remove_document("neutral.pdf")
    assert "neutral.pdf" not in {r["path"] for r in again.documents()}
    assert not (settings.library_dir / "neutral.pdf").exists()
    assert all(c.doc != "neutral.pdf" for c in again.index.chunks)


@pytest.mark.parametrize("name, message", [
    ("../evil.pdf", "not a plain file name"),
    ("sub/evil.pdf", "not a plain file name"),
    ("evil\x00.pdf", "control characters"),
    ("x" * 500 + ".pdf", "500 characters" if False else "504 characters long"),
    (".hidden.pdf", "not a plain file name"),
    ("report.exe", "the name must end in one of"),
    ("library.json", "the name must end in one of"),
])  # fmt: skip
def test_a_bad_file_name_is_refused_and_changes_nothing(assistant, settings, tmp_path, name, message):
    before = snapshot(settings)
    with pytest.raises(DocumentError, match=message) as caught:
        assistant.add_documents([(name, pdf_bytes(tmp_path))])
    assert "\n" not in str(caught.value)
    assert snapshot(settings) == before


def test_a_file_over_the_size_limit_is_refused_and_changes_nothing(settings, fake_embedder, tmp_path):
    small = Assistant.load(settings=settings.with_(max_binary_bytes=1000), embedder=fake_embedder)
    before = snapshot(settings)
    with pytest.raises(DocumentError, match="over the 1000-byte limit"):
        small.add_documents([("neutral.pdf", pdf_bytes(tmp_path))])
    assert snapshot(settings) == before


def test_one_bad_file_among_several_adds_none_of_them(assistant, settings, tmp_path):
    before = snapshot(settings)
    with pytest.raises(DocumentError, match="bad.pdf: its name says PDF"):
        assistant.add_documents([("good.pdf", pdf_bytes(tmp_path)), ("bad.pdf", b"plain words")])
    assert snapshot(settings) == before
    assert "good.pdf" not in {r["path"] for r in assistant.documents()}


def test_a_name_taken_by_the_seeds_or_an_earlier_add_is_refused(assistant, settings, tmp_path):
    seeds_name = next(r["path"] for r in assistant.documents())
    with pytest.raises(DocumentError, match="seeds/ already has"):
        assistant.add_documents([(seeds_name, b"The delegations met again in 1954.\n")])
    assistant.add_documents([("neutral.pdf", pdf_bytes(tmp_path))])
    before = snapshot(settings)
    with pytest.raises(DocumentError, match="already added"):
        assistant.add_documents([("neutral.pdf", pdf_bytes(tmp_path))])
    assert snapshot(settings) == before
    with pytest.raises(DocumentError, match="delete the file there"):
        assistant.remove_document(seeds_name)


def test_a_build_that_fails_puts_the_library_back(assistant, settings, tmp_path, monkeypatch):
    before = snapshot(settings)

    def broken(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Assistant, "refresh", broken)
    with pytest.raises(OSError):
        assistant.add_documents([("neutral.pdf", pdf_bytes(tmp_path))])
    assert snapshot(settings) == before


def test_markdown_and_html_files_are_added_too(assistant):
    html = ("<html><head><title>Custody at Panmunjom</title></head><body><nav>Home | About</nav>"
            "<article><p>The Indian custodial force guarded the prisoners who refused to go home "
            "in camps near Panmunjom.</p></article></body></html>").encode()  # fmt: skip
    assistant.add_documents([("custody.html", html), ("notes.md", b"# Notes\n\nThe explainers met the prisoners.\n")])
    rows = {r["path"]: r for r in assistant.documents()}
    assert (rows["custody.html"]["format"], rows["custody.html"]["title"]) == ("html", "Custody at Panmunjom")
    assert rows["notes.md"]["format"] == "markdown" and rows["notes.md"]["pages"] is None


# ---- the command line --------------------------------------------------------------


@pytest.fixture
def fake_model(monkeypatch):
    monkeypatch.setattr(pipeline, "SentenceTransformerEmbedder", lambda *args, **kwargs: FakeEmbedder())


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_add_docs_ask_remove(tiny_seeds, tmp_path, capsys, fake_model):
    pdf = tmp_path / "neutral.pdf"
    pdf.write_bytes(pdf_bytes(tmp_path))
    where = ["--seeds", tiny_seeds, "--index", tmp_path / "index"]
    code, out, _ = run(capsys, "add", pdf, *where)
    assert code == 0 and "added neutral.pdf: “Report on the Neutral Commission” (pdf, " in out
    code, out, _ = run(capsys, "docs", "--json", *where)
    assert code == 0 and "neutral.pdf" in {row["path"] for row in json.loads(out)}
    code, out, _ = run(capsys, "cite", f"neutral.pdf:0-1", *where)  # the nearest passage, stale
    assert code == 0 and ", p. 1" in out
    code, out, _ = run(capsys, "remove", "neutral.pdf", *where)
    assert code == 0 and out.startswith("removed neutral.pdf")
    code, out, _ = run(capsys, "docs", *where)
    assert code == 0 and "neutral.pdf" not in out


@pytest.mark.parametrize("content, message", [
    (b"not a pdf", "its name says PDF but its content is plain text"),
    (b"%PDF-1.7\n" + b"\0" * 50, "cannot be read as a PDF"),
])  # fmt: skip
def test_cli_add_of_a_bad_file_is_one_line(tiny_seeds, tmp_path, capsys, fake_model, content, message):
    bad = tmp_path / "bad.pdf"
    bad.write_bytes(content)
    code, _, err = run(capsys, "add", bad, "--seeds", tiny_seeds, "--index", tmp_path / "index")
    assert code == 2 and err.count("\n") == 1 and message in err and "Traceback" not in err
    assert not (tmp_path / "index" / "library" / "bad.pdf").exists()


def test_citation_ids_of_an_added_pdf_stay_the_same_across_a_full_rebuild(settings, assistant, tmp_path,
                                                                           fake_embedder):  # fmt: skip
    assistant.add_documents([("neutral.pdf", pdf_bytes(tmp_path))])
    question = "Who guarded the camps in the demilitarized zone?"
    before = [(c.id, c.pages) for c in assistant.ask(question).citations]
    import shutil

    shutil.rmtree(settings.extracted_dir)  # extracted again, from the kept original
    rebuilt = Assistant.load(settings=settings, embedder=fake_embedder, rebuild=True)
    assert rebuilt.build_stats is not None
    assert [(c.id, c.pages) for c in rebuilt.ask(question).citations] == before and before
