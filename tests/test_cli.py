"""cli.py: the JSON of `ask --json`, `cite`, and exit codes with one-line errors.

`main([...])` runs in-process with capsys. The shell is checked with the fake
embedder standing in for the model (patched where the pipeline builds it), and
once with the real model over a copy of the session's index. Does not cover
`eval` or `serve` (test_evaluation.py, test_app*.py).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest

import assistant.loading as loading
import assistant.pipeline as pipeline
from assistant import cli
from assistant.cli import main
from assistant.config import load_settings

from conftest import ROOT, FakeEmbedder

ANSWER_KEYS = {"question", "answer", "abstained", "confidence", "short_answer", "closest", "citations", "retrieved"}
CITATION_KEYS = {"n", "id", "doc", "title", "section", "start", "end", "quote", "passage", "score", "pages"}
RETRIEVED_KEYS = {"id", "doc", "text", "score"}
QUESTION = "When was the armistice signed?"


@pytest.fixture
def fake_model(monkeypatch):
    """The CLI builds its embedder from the settings; give it the fake one instead, and
    the uncalibrated weights and threshold: the committed calibration is fitted to the real
    model, so under the fake one whether an answer clears it is chance, and moves with
    every refit (the real model's run below reads it)."""
    monkeypatch.setattr(pipeline, "SentenceTransformerEmbedder", lambda *args, **kwargs: FakeEmbedder())
    monkeypatch.setattr(loading, "load_settings", lambda: load_settings(None))


def run(capsys, *argv) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_error(code: int, err: str, *, expected_code: int = 2) -> None:
    assert code == expected_code
    assert err.endswith("\n") and err.count("\n") == 1 and err.startswith("error: ")
    assert "Traceback" not in err


def check_answer_json(out: str, seeds) -> dict:
    data = json.loads(out)  # exactly one JSON object on stdout
    assert set(data) == ANSWER_KEYS
    assert isinstance(data["abstained"], bool) and 0.0 <= data["confidence"] <= 1.0
    assert 1 <= len(data["retrieved"]) <= 10
    for hit in data["retrieved"]:
        assert set(hit) == RETRIEVED_KEYS
    for c in data["citations"]:
        assert set(c) == CITATION_KEYS
        assert c["quote"] == (seeds / c["doc"]).read_text(encoding="utf-8")[c["start"] : c["end"]]
    return data


# ---- with the fake embedder -------------------------------------------------------


def test_ask_json_has_exactly_the_documented_fields(tiny_seeds, tmp_path, capsys, fake_model):
    code, out, err = run(capsys, "ask", QUESTION, "--json", "--seeds", tiny_seeds,
                         "--index", tmp_path / "index")  # fmt: skip
    assert code == 0 and err == ""  # --json is quiet: no progress bar
    data = check_answer_json(out, tiny_seeds)
    assert data["question"] == QUESTION
    assert not data["abstained"] and [c["doc"] for c in data["citations"]] == ["alpha.txt", "beta.md"]
    # A date is asked for: the short answer is the date inside the quote, verbatim.
    short = data["short_answer"]
    assert short["text"] == "July 27, 1953" and short["doc"] == "alpha.txt"
    assert (tiny_seeds / "alpha.txt").read_text(encoding="utf-8")[short["start"] : short["end"]] == short["text"]


def test_ask_prints_the_answer_and_numbered_sources(tiny_seeds, tmp_path, capsys, fake_model):
    code, out, _ = run(capsys, "ask", QUESTION, "--seeds", tiny_seeds, "--index", tmp_path / "i")
    assert code == 0
    assert out.startswith("The armistice was signed at Panmunjom on July 27, 1953. [1][2]\n")
    assert "\n[1] " in out and "\n[2] " in out and "alpha.txt:" in out and "confidence: " in out


def test_ask_with_history_resolves_the_followup(tiny_seeds, tmp_path, capsys, fake_model):
    code, out, _ = run(capsys, "ask", "And when was it signed?", "--history",
                       "Tell me about the armistice at Panmunjom", "--json",
                       "--seeds", tiny_seeds, "--index", tmp_path / "index")  # fmt: skip
    assert code == 0 and "1953" in json.loads(out)["answer"]


def test_build_then_cite_json(tiny_seeds, tmp_path, capsys, fake_model):
    index = tmp_path / "index"
    code, out, _ = run(capsys, "build", "--seeds", tiny_seeds, "--index", index)
    assert code == 0 and out.startswith("built index: 2 documents, ")
    code, out, _ = run(capsys, "build", "--seeds", tiny_seeds, "--index", index)
    assert code == 0 and out.startswith("index up to date: 2 documents, ")
    _, out, _ = run(capsys, "ask", QUESTION, "--json", "--seeds", tiny_seeds, "--index", index)
    cited = json.loads(out)["citations"][0]
    code, out, _ = run(capsys, "cite", cited["id"], "--json", "--seeds", tiny_seeds, "--index", index)
    found = json.loads(out)
    assert code == 0 and found["stale"] is False
    assert {k: found[k] for k in ("id", "doc", "start", "end", "quote")} == {
        k: cited[k] for k in ("id", "doc", "start", "end", "quote")}  # fmt: skip
    code, out, _ = run(capsys, "cite", cited["id"], "--seeds", tiny_seeds, "--index", index)
    assert code == 0 and f"»{cited['quote']}«" in out


@pytest.mark.parametrize(
    "question",
    ["", "   ", "x" * 1001],
    ids=["empty", "blank", "over-long"],
)
def test_bad_questions_exit_2_with_one_line(tiny_seeds, tmp_path, capsys, fake_model, question):
    code, out, err = run(capsys, "ask", question, "--seeds", tiny_seeds, "--index", tmp_path / "i")
    assert_one_line_error(code, err)
    assert out == "" and ("empty" in err or "too long" in err)
    assert not (tmp_path / "i").exists()  # refused before anything was loaded or built


def test_a_missing_seeds_folder_exits_2_with_one_line(tmp_path, capsys, fake_model):
    code, out, err = run(capsys, "ask", QUESTION, "--seeds", tmp_path / "nowhere",
                         "--index", tmp_path / "index")  # fmt: skip
    assert_one_line_error(code, err)
    assert "seeds folder not found" in err and "nowhere" in err and out == ""


@pytest.mark.parametrize("bad", ["bogus", "alpha.txt", "gone.txt:0-10#abcdef"])
def test_cite_of_a_bad_id_exits_2_with_one_line(tiny_seeds, tmp_path, capsys, fake_model, bad):
    run(capsys, "build", "--seeds", tiny_seeds, "--index", tmp_path / "index")  # progress bars
    code, out, err = run(capsys, "cite", bad, "--seeds", tiny_seeds, "--index", tmp_path / "index")
    assert_one_line_error(code, err)
    assert out == ""


def test_a_corrupt_current_is_rebuilt_with_one_warning_line(tiny_seeds, tmp_path, capsys, fake_model):
    """The engine heals a damaged index (issue 6) rather than refusing: one warning
    line on stderr, then the normal answer."""
    index = tmp_path / "index"
    run(capsys, "build", "--seeds", tiny_seeds, "--index", index)
    (index / "CURRENT").write_text("../../etc/passwd")
    code, out, err = run(capsys, "ask", QUESTION, "--json", "--seeds", tiny_seeds, "--index", index)
    assert code == 0 and "Traceback" not in err
    assert err.count("\n") == 1 and err.startswith("warning: rebuilding the index: ")
    check_answer_json(out, tiny_seeds)


def test_an_index_path_that_is_a_file_exits_2(tiny_seeds, tmp_path, capsys, fake_model):
    index = tmp_path / "index"
    index.write_text("not a folder")
    code, _, err = run(capsys, "ask", QUESTION, "--seeds", tiny_seeds, "--index", index)
    assert_one_line_error(code, err)
    assert "internal error" not in err


def test_python_dash_m_assistant_exits_2_without_a_traceback(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "assistant", "ask", "", "--seeds", str(tmp_path), "--index",
         str(tmp_path / "index")],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr == "error: the question is empty\n"


# ---- the real model ---------------------------------------------------------------


@pytest.fixture(scope="module")
def real_copy(real_assistant, tmp_path_factory):
    """The session's seeds and index, copied once for this module's CLI runs."""
    base = tmp_path_factory.mktemp("cli-real")
    shutil.copytree(real_assistant.settings.seeds_dir, base / "seeds")
    shutil.copytree(real_assistant.settings.index_dir, base / "index",
                    ignore=shutil.ignore_patterns(".lock"))  # fmt: skip
    return base / "seeds", base / "index"


@pytest.mark.slow
def test_real_ask_json_matches_the_library_and_quotes_verbatim(real_copy, real_assistant, capsys):
    seeds, index = real_copy
    code, out, err = run(capsys, "ask", QUESTION, "--json", "--seeds", seeds, "--index", index)
    assert code == 0 and err == ""  # the saved index was used as it is: no rebuild
    data = check_answer_json(out, seeds)
    assert data == real_assistant.ask(QUESTION).to_dict()
    assert not data["abstained"] and "July 27, 1953" in data["answer"]
    assert len(data["retrieved"]) == 10


@pytest.mark.slow
def test_real_ask_json_for_an_off_topic_question(real_copy, capsys):
    seeds, index = real_copy
    code, out, _ = run(capsys, "ask", "How do I bake sourdough bread at home?", "--json",
                       "--seeds", seeds, "--index", index)  # fmt: skip
    data = check_answer_json(out, seeds)
    assert code == 0 and data["abstained"] is True and data["citations"] == []


def test_serve_takes_a_max_batch_of_at_least_one(capsys):
    from assistant.cli import build_parser

    assert build_parser().parse_args(["serve", "--max-batch", "4"]).max_batch == 4
    assert build_parser().parse_args(["serve"]).max_batch is None  # the app's default
    for bad in ("0", "-3", "many"):
        with pytest.raises(SystemExit) as info:
            build_parser().parse_args(["serve", "--max-batch", bad])
        assert info.value.code == 2
        assert "expected a whole number from 1 up" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv, message",
    [
        ([], "the following arguments are required: command"),
        (["ask"], "the following arguments are required: question"),
        (["ask", "x", "-k", "abc"], "argument -k: invalid int value: 'abc'"),
        (["ask", "x", "--mode", "fuzzy"], "invalid choice: 'fuzzy'"),
        (["nope"], "invalid choice: 'nope'"),
    ],
)
def test_usage_errors_are_one_line(argv, message, capsys):
    with pytest.raises(SystemExit) as info:
        cli.main(argv)
    err = capsys.readouterr().err
    assert info.value.code == cli.EXIT_USAGE
    assert err.startswith("error: ") and message in err and err.count("\n") == 1


@pytest.mark.parametrize("port", ["99999", "0", "-1", "http"])
def test_serve_refuses_a_port_out_of_range_as_a_usage_error(port, capsys):
    """Issue 18, item 5: `serve --port 99999` was an internal error (OverflowError), exit 1."""
    with pytest.raises(SystemExit) as exit_info:
        build_parser_for_test().parse_args(["serve", "--port", port])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "expected a port from 1 to 65535" in err


def build_parser_for_test():
    from assistant.cli import build_parser

    return build_parser()
