"""`assistant eval`: question files, running through ask, JSON, reports, calibration, the tab."""

from __future__ import annotations

import json

import numpy as np
import pytest

from assistant import Assistant, cli, evaluation
from assistant.evaluation import command, fitting, report, runner
from assistant.answer.confidence import DEFAULT_WEIGHTS
from assistant.answer.selection import selector_names
from assistant.config import load_settings
from assistant.errors import AssistantError, SettingsError, UsageError
from assistant.evaluation import (
    DEFAULT_QUESTIONS,
    load_questions,
    parse_questions,
    run_questions,
    select_split,
)

TINY_QUESTIONS = [
    {"id": "t1", "question": "Where did the talks begin in 1951?", "answerable": True,
     "evidence": ["Talks began at Kaesong in July 1951"], "split": "dev"},
    {"id": "t2", "question": "When was the armistice signed?", "answerable": True,
     "evidence": ["armistice was signed at Panmunjom on July 27, 1953"], "split": "test"},
    {"id": "t3", "question": "What is the best recipe for kimchi pancakes?", "answerable": False,
     "evidence": [], "split": "dev"},
    {"id": "t4", "question": "When did Operation Little Switch exchange sick prisoners?",
     "answerable": True, "evidence": ["Little Switch exchanged sick prisoners in April 1953"],
     "split": "dev", "note": "extra fields are ignored"},
    {"id": "t5", "question": "<script>alert(1)</script> who won the 1966 World Cup?",
     "answerable": False, "evidence": [], "split": "test"},
    {"id": "t6", "question": "And the later summits?", "answerable": True,
     "evidence": ["Leaders met in 2000 and in 2007"], "history": ["When was the armistice signed?"],
     "split": "dev"},
]  # fmt: skip


def write_jsonl(path, records) -> str:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return str(path)


@pytest.fixture
def tiny_assistant(tiny_seeds, tiny_settings, fake_embedder):
    return Assistant.load(tiny_seeds, tiny_settings.index_dir, settings=tiny_settings,
                          embedder=fake_embedder)  # fmt: skip


@pytest.fixture
def use_tiny_assistant(monkeypatch, tiny_assistant):
    """eval_command loads this assistant instead of the real model."""
    monkeypatch.setattr(command, "load_assistant", lambda args, **kw: tiny_assistant)
    return tiny_assistant


@pytest.fixture
def questions_file(tmp_path):
    return write_jsonl(tmp_path / "questions.jsonl", TINY_QUESTIONS)


# Question files.

GOOD = '{"id": "a", "question": "Q?", "answerable": true, "evidence": ["x"]}'


@pytest.mark.parametrize(
    "lines, message",
    [
        ([GOOD, '{"id": "b", "answerable": false, "evidence": []}'],
         "qs.jsonl line 2: missing field 'question'"),
        ([GOOD, "", '{"id": "b", "question": "Q?", "answerable": false'],
         "qs.jsonl line 3: not valid JSON"),
        (["[1, 2]"], "qs.jsonl line 1: expected a JSON object"),
        (['{"id": "a", "question": "Q?", "answerable": "yes", "evidence": []}'],
         "line 1: field 'answerable' must be true or false"),
        (['{"id": "a", "question": "  ", "answerable": false, "evidence": []}'],
         "line 1: field 'question' must be a non-empty string"),
        (['{"id": "a", "question": "Q?", "answerable": true, "evidence": "x"}'],
         "line 1: field 'evidence' must be a list of non-empty strings"),
        (['{"id": "a", "question": "Q?", "answerable": true, "evidence": []}'],
         "line 1: an answerable question needs at least one evidence string"),
        (['{"id": "a", "question": "Q?", "answerable": false, "evidence": ["x"]}'],
         "line 1: an unanswerable question must have no evidence"),
        ([GOOD.replace('"evidence"', '"history": "Q0", "evidence"')],
         "line 1: field 'history' must be a list of strings"),
        ([GOOD.replace('"evidence"', '"split": 3, "evidence"')],
         "line 1: field 'split' must be a non-empty string"),
        ([GOOD.replace('"a"', "null", 1)], "line 1: field 'id' must be a non-empty string"),
        ([GOOD, "", GOOD], "qs.jsonl line 3: duplicate id 'a' (first on line 1)"),
        (['{"id": "a", "question": "Q?", "answerable": true}'], "line 1: missing field 'evidence'"),
        (["", "  "], "qs.jsonl: no questions"),
    ],
)  # fmt: skip
def test_malformed_lines_name_their_line(lines, message):
    with pytest.raises(UsageError) as info:
        parse_questions("\n".join(lines), source="qs.jsonl")
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_extra_fields_ignored_and_defaults():
    text = GOOD.replace("}", ', "answer": "A", "history": ["Q0"], "split": "dev", "x": {"y": 1}}')
    text += "\n\n" + '{"id": 7, "question": "Q?", "answerable": false}\n'
    first, second = parse_questions(text)
    assert (first.id, first.answer, first.history, first.split, first.line) == ("a", "A", ("Q0",), "dev", 1)
    assert (second.id, second.answerable, second.evidence, second.split, second.line) == ("7", False, (), None, 3)


def test_lines_end_at_newline_only():
    # U+2028 and U+0085 are line breaks to str.splitlines() but may stand raw in JSON strings.
    text = GOOD.replace("Q?", "Q\u2028still Q\u0085?") + "\n" + GOOD.replace('"a"', '"b"') + "\n"
    first, second = parse_questions(text)
    assert (first.question, first.line, second.line) == ("Q\u2028still Q\u0085?", 1, 2)


def test_load_questions_file_errors(tmp_path):
    with pytest.raises(UsageError, match="question file not found"):
        load_questions(tmp_path / "missing.jsonl")
    bad = tmp_path / "latin.jsonl"
    bad.write_bytes(GOOD.encode() + b"\n" + '{"id": "b", "question": "Caf\u00e9?"}'.encode("latin-1"))
    with pytest.raises(UsageError, match=r"latin.jsonl line 2: not UTF-8 text"):
        load_questions(bad)
    bom = tmp_path / "bom.jsonl"
    bom.write_bytes(b"\xef\xbb\xbf" + GOOD.encode())
    assert load_questions(bom)[0].id == "a"


def test_select_split():
    qs = parse_questions(GOOD.replace("}", ', "split": "dev"}'))
    assert select_split(qs, None) == qs and select_split(qs, "dev") == qs
    with pytest.raises(UsageError, match=r"no questions with split 'test' \(splits in the file: dev\)"):
        select_split(qs, "test")


def test_shipped_set_loads():
    questions = load_questions(DEFAULT_QUESTIONS)
    assert len(questions) == 731  # 146 by the team + 13 x 45 written outside it (tests/data/README.md)
    assert {q.split for q in questions} == {"dev", "test"}


def test_malformed_file_stops_before_any_work(tmp_path, monkeypatch, capsys):
    def must_not_load(*args, **kwargs):
        raise AssertionError("the assistant was loaded")

    monkeypatch.setattr(command, "load_assistant", must_not_load)
    path = tmp_path / "bad.jsonl"
    path.write_text(GOOD + "\n" + GOOD.replace('"a"', '"b"') + "\n{oops\n", encoding="utf-8")
    assert cli.main(["eval", str(path)]) == cli.EXIT_USAGE
    err = capsys.readouterr().err
    assert err.startswith("error: bad.jsonl line 3: not valid JSON") and err.count("\n") == 1
    long = tmp_path / "long.jsonl"
    long.write_text(GOOD.replace("Q?", "Q" * 1001) + "\n", encoding="utf-8")
    assert cli.main(["eval", str(long)]) == cli.EXIT_USAGE
    assert "long.jsonl line 1: the question is too long (1001 characters" in capsys.readouterr().err
    # The file check is ask()'s own: padding counts, a question of NULs is empty.
    padded = tmp_path / "padded.jsonl"
    padded.write_text(GOOD.replace("Q?", "  " + "Q" * 999) + "\n", encoding="utf-8")
    assert cli.main(["eval", str(padded)]) == cli.EXIT_USAGE
    assert "padded.jsonl line 1: the question is too long" in capsys.readouterr().err
    nuls = tmp_path / "nuls.jsonl"
    nuls.write_text(GOOD.replace("Q?", "\\u0000\\u0000") + "\n", encoding="utf-8")
    assert cli.main(["eval", str(nuls)]) == cli.EXIT_USAGE
    assert "nuls.jsonl line 1: the question is empty" in capsys.readouterr().err
    assert cli.main(["eval", str(long), "-k", "0"]) == cli.EXIT_USAGE


# Running questions (fake embedder, tiny corpus).


def test_run_questions_judges_every_answer(tiny_assistant, questions_file):
    questions = load_questions(questions_file)
    run = run_questions(tiny_assistant, questions, k=5)
    assert [r.id for r in run.results] == ["t1", "t2", "t3", "t4", "t5", "t6"]
    by_id = {r.id: r for r in run.results}
    # Hand-checked on the tiny corpus: the Kaesong passage ranks first for t1 and is cited.
    assert by_id["t1"].rank == 1 and by_id["t1"].citation_relevant[0] and by_id["t1"].supported
    assert by_id["t2"].relevant_total == 2  # the signing sentence is in both documents
    assert by_id["t3"].abstained and by_id["t3"].rank is None
    m = run.metrics
    assert m["quote_verbatim_rate"] == 1.0
    assert (m["questions"], m["answerable"], m["unanswerable"]) == (6, 4, 2)
    assert set(m["by_split"]) == {"dev", "test"} and m["by_split"]["test"]["questions"] == 2
    # The same ask as the UI: citations/retrieved are exactly Answer.to_dict()'s.
    direct = tiny_assistant.ask("And the later summits?", ["When was the armistice signed?"], k=5)
    assert by_id["t6"].citations == direct.to_dict()["citations"]
    assert by_id["t6"].retrieved == direct.to_dict()["retrieved"]


def test_quote_check_reads_the_file_itself(tiny_assistant, questions_file, tiny_seeds):
    """A citation that no longer matches the file on disk is counted as not verbatim."""
    questions = load_questions(questions_file)[:1]
    text = (tiny_seeds / "alpha.txt").read_text(encoding="utf-8")
    (tiny_seeds / "alpha.txt").write_text(text.replace("Kaesong", "Kaesxng"), encoding="utf-8")
    run = run_questions(tiny_assistant, questions, k=5)  # the index still holds the old text
    assert run.metrics["quote_verbatim_rate"] == 0.0


def test_eval_json_compare_and_report(use_tiny_assistant, questions_file, tmp_path, capsys):
    report = tmp_path / "report"
    code = cli.main(["eval", questions_file, "--json", "-k", "5", "--compare", "bm25",
                     "--report", str(report)])  # fmt: skip
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    assert {"metrics", "results", "compare"} <= set(out)
    first = out["results"][0]
    assert {"id", "question", "answerable", "abstained", "confidence", "answer", "citations",
            "retrieved"} <= set(first)  # fmt: skip
    assert set(first["citations"][0]) == {"n", "id", "doc", "title", "section", "start", "end",
                                          "quote", "passage", "score", "pages"}  # fmt: skip
    assert set(first["retrieved"][0]) == {"id", "doc", "text", "score"}
    assert out["compare"]["mode"] == "bm25" and len(out["compare"]["results"]) == 6
    assert out["metrics"]["by_split"]["dev"]["questions"] == 4
    md = (report / "report.md").read_text(encoding="utf-8")
    page = (report / "report.html").read_text(encoding="utf-8")
    assert "hybrid all" in md and "bm25 test" in md
    assert page.count("data:image/png;base64,") == 2 and "<img" in page
    assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<script>" not in md
    assert (report / "rank_distribution.png").read_bytes().startswith(b"\x89PNG")


def test_report_markdown_cells_are_inert():
    cell = report._md_cell("[x](javascript:alert(3)) <b>bold</b> *a* | b\nc")
    assert "](" not in cell.replace("\\]", "")  # no live link
    assert "<b>" not in cell and "&lt;b&gt;" in cell
    assert "\\*a\\*" in cell and "\\|" in cell and "\n" not in cell


def test_eval_text_output_and_split(use_tiny_assistant, questions_file, capsys):
    assert cli.main(["eval", questions_file, "--split", "test", "--mode", "dense"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("questions.jsonl: 2 questions, k=10")
    assert "hit@3" in out and "quotes verbatim" in out and "dev" not in out
    assert out.splitlines()[1].split() == ["test"]  # one split: no duplicate "all" column
    assert cli.main(["eval", questions_file, "--compare", "hybrid"]) == cli.EXIT_USAGE
    assert "already being evaluated" in capsys.readouterr().err


def test_calibrate_writes_what_settings_read(use_tiny_assistant, questions_file, tmp_path,
                                             monkeypatch, capsys):  # fmt: skip
    target = tmp_path / "calibration.json"
    monkeypatch.setattr(command, "CALIBRATION_FILE", target)
    assert cli.main(["eval", questions_file, "--calibrate", "--split", "test"]) == 0
    out = capsys.readouterr().out
    assert "risk/coverage on dev" in out and "<- chosen" in out
    saved = json.loads(target.read_text())
    assert set(saved) == {"weights", "selector", "threshold", "relevance_floor", "fitted_on", "dev_metrics",
                          "adapter", "sha256"}
    assert set(saved["weights"]) == set(DEFAULT_WEIGHTS)  # the bias and every feature
    # The selector: a weight for the bias and each of its inputs, read back as written.
    assert set(saved["selector"]) == {"bias", *selector_names(DEFAULT_WEIGHTS)}
    # The query adapter sits beside it as .npy, named and checked by its checksum.
    assert saved["adapter"]["file"] == f"query_adapter-{saved['adapter']['sha256'][:12]}.npy"
    assert sorted(p.name for p in tmp_path.glob("query_adapter-*")) == [saved["adapter"]["file"]]
    assert "query adapter (features out of fold)" in saved["fitted_on"]
    assert saved["dev_metrics"]["questions"] == 4  # fitted and measured on dev only
    # On this tiny dev set the one unanswerable question is separable: F1 1.0, nothing lost.
    assert saved["dev_metrics"]["abstention_f1"] == 1.0
    assert saved["dev_metrics"]["false_abstention_rate"] == 0.0
    settings = load_settings(calibration_file=target)
    assert settings.abstain_below == saved["threshold"] and settings.calibration == saved["weights"]
    assert settings.selector == saved["selector"]
    dimension = use_tiny_assistant.embedder.dimension
    assert settings.query_adapter.shape == (dimension, dimension)
    assert not np.allclose(settings.query_adapter, np.eye(dimension))  # it was fitted
    # The original assistant was not changed by the calibration run.
    assert use_tiny_assistant.settings.abstain_below == 0.5
    assert use_tiny_assistant.settings.query_adapter is None
    # --no-adapter calibrates the engine without one, and the old file goes.
    assert cli.main(["eval", questions_file, "--calibrate", "--no-adapter", "--split", "test"]) == 0
    saved = json.loads(target.read_text())
    assert "adapter" not in saved and "no query adapter" in saved["fitted_on"]
    assert not list(tmp_path.glob("query_adapter-*"))
    assert load_settings(calibration_file=target).query_adapter is None


def test_the_run_after_calibrate_answers_as_the_written_file_does(tmp_path):
    """`eval --calibrate` measures the engine it wrote: the settings it answers with
    after fitting are the ones `load_settings` reads back from the file."""
    target = tmp_path / "calibration.json"
    record = {"weights": {"bias": -1.0, "passage_cosine": 2.0}, "threshold": 0.4, "relevance_floor": 0.1,
              "selector": {"bias": -3.0, "kind_met": 1.5}, "fitted_on": "x", "dev_metrics": {},
              "query_adapter": np.eye(4, dtype=np.float32)}  # fmt: skip
    evaluation.write_calibration(record, target)
    loaded = load_settings(calibration_file=target)
    for key, value in fitting.calibrated_settings(record).items():
        if key == "query_adapter":
            assert np.array_equal(loaded.query_adapter, value)
        else:
            assert getattr(loaded, key) == value, key


def test_calibration_file_is_replaced_whole_and_read_or_refused(tmp_path, capsys, monkeypatch):
    target = tmp_path / "calibration.json"
    record = {"weights": {"bias": -1.0}, "threshold": 0.5, "fitted_on": "x",
              "dev_metrics": {"hit@1": 0.123456}}  # fmt: skip
    evaluation.write_calibration(record, target)
    assert [p.name for p in tmp_path.iterdir()] == ["calibration.json"]  # no temporary left
    assert load_settings(calibration_file=target).abstain_below == 0.5
    target.write_text('{"weights": {"bias": -1', encoding="utf-8")  # a truncated file
    with pytest.raises(SettingsError, match=r"calibration.json is unreadable \(JSONDecodeError"):
        load_settings(calibration_file=target)
    target.write_text('{"weights": {}}', encoding="utf-8")  # no threshold
    with pytest.raises(SettingsError, match="KeyError"):
        load_settings(calibration_file=target)
    # The CLI says so in one line, exit 2, before any work.
    monkeypatch.setattr(cli, "load_settings", lambda: load_settings(calibration_file=target))
    assert cli.main(["ask", "When was the armistice signed?"]) == cli.EXIT_USAGE
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "is unreadable" in err and err.count("\n") == 1


def test_calibrate_needs_a_dev_split(use_tiny_assistant, tmp_path, monkeypatch):
    monkeypatch.setattr(command, "CALIBRATION_FILE", tmp_path / "calibration.json")
    path = write_jsonl(tmp_path / "nosplit.jsonl", [{**q, "split": "test"} for q in TINY_QUESTIONS])
    assert cli.main(["eval", path, "--calibrate"]) == cli.EXIT_USAGE
    assert not (tmp_path / "calibration.json").exists()


# The Evaluation tab.


def test_evaluation_tab_handler(tiny_assistant, questions_file):
    gr = pytest.importorskip("gradio")
    from assistant.web import evaluation_tab as eval_ui

    with gr.Blocks() as demo:
        with gr.Tab("Evaluation"):
            parts = eval_ui.build_evaluation_tab(lambda: tiny_assistant)
    assert isinstance(parts["metrics"], gr.Dataframe) and isinstance(parts["rank_plot"], gr.Plot)
    assert "evaluate" in {getattr(fn, "api_name", None) for fn in demo.fns.values()}

    status, metrics, rank_plot, confidence_plot, questions = eval_ui.run_evaluation(
        lambda: tiny_assistant, questions_file, "all", "hybrid"
    )
    assert "6 questions" in status
    assert list(metrics.columns) == ["metric", "all", "dev", "test"]
    assert metrics.set_index("metric").loc["quotes verbatim", "all"] == "1.000"
    assert len(questions) == 6 and "outcome" in questions.columns
    assert rank_plot.axes and confidence_plot.axes


def test_evaluation_tab_errors_are_one_line(tiny_assistant, tmp_path):
    gr = pytest.importorskip("gradio")
    from assistant.web import evaluation_tab as eval_ui

    bad = tmp_path / "bad.jsonl"
    bad.write_text(GOOD + "\n{oops\n", encoding="utf-8")
    with pytest.raises(gr.Error, match="bad.jsonl line 2: not valid JSON"):
        eval_ui.run_evaluation(lambda: tiny_assistant, str(bad), "all", "hybrid")

    def still_loading():
        raise AssistantError("the index is still loading")

    with pytest.raises(gr.Error, match="still loading"):
        eval_ui.run_evaluation(still_loading, None, "all", "hybrid")


# The real model: one small run over the shipped set.


@pytest.mark.slow
def test_real_model_small_run(real_assistant):
    questions = load_questions(DEFAULT_QUESTIONS)
    sample = [q for q in questions if q.split == "test"][::7]  # 11 test questions, fixed
    assert any(not q.answerable for q in sample) and any(q.history for q in sample)
    run = run_questions(real_assistant, sample, k=10)
    m = run.metrics
    assert m["quote_verbatim_rate"] == 1.0
    assert m["hit@5"] >= 0.5  # a floor against a broken join of evidence and passages
    # Every evidence string of the shipped set lies inside some passage of the real index.
    judge = runner._Judge(real_assistant)
    assert all(judge.relevant_total([e]) >= 1 for q in questions for e in q.evidence)


def test_stale_calibration_is_reported(tiny_settings):
    from assistant.evaluation import calibration_warning

    assert calibration_warning(tiny_settings) is None  # no calibration: the defaults
    fitted = dict.fromkeys(DEFAULT_WEIGHTS, 1.0)
    assert calibration_warning(tiny_settings.with_(calibration=fitted)) is None
    old = {k: v for k, v in fitted.items() if k != "sentence_cosine"} | {"retired_signal": 1.0}
    warning = calibration_warning(tiny_settings.with_(calibration=old))
    assert "no weight for sentence_cosine" in warning and "unknown retired_signal" in warning


def test_a_suite_reports_each_corpus_and_block_and_calibrates_on_all(use_tiny_assistant, tiny_seeds,
                                                                     tmp_path, monkeypatch, capsys):  # fmt: skip
    """`assistant eval --suite`: the shipped corpus and one with a document added, each
    with its blocks; --calibrate fits on both corpora's dev questions, never on those of a
    corpus held out whole ("fit": false), which is still reported."""
    extra = tmp_path / "extra"
    extra.mkdir()
    (extra / "gamma.txt").write_text("The Geneva Conference\nThe Geneva Conference of 1954 failed to "
                                     "unify Korea.\n", encoding="utf-8")  # fmt: skip
    added = {"id": "g1", "question": "When did the Geneva Conference fail to unify Korea?", "answerable": True,
             "evidence": ["The Geneva Conference of 1954 failed to unify Korea"], "answer": "1954",
             "split": "dev", "source": "added", "kind": "date"}  # fmt: skip
    write_jsonl(extra / "questions.jsonl", [added, {**added, "id": "g2", "split": "test"}])
    shipped = write_jsonl(tmp_path / "questions.jsonl", [{**q, "source": "tiny"} for q in TINY_QUESTIONS])
    suite = tmp_path / "suite.json"
    suite.write_text(json.dumps({"corpora": [
        {"name": "tiny", "documents": [str(tiny_seeds)], "questions": [shipped]},
        {"name": "tiny+1", "documents": [str(tiny_seeds), str(extra)],
         "questions": [shipped, str(extra / "questions.jsonl")]},
        {"name": "held-out", "fit": False, "documents": [str(tiny_seeds), str(extra)],
         "questions": [str(extra / "questions.jsonl")]},
    ]}), encoding="utf-8")  # fmt: skip
    monkeypatch.setattr(command, "CALIBRATION_FILE", tmp_path / "calibration.json")
    assert cli.main(["eval", "--suite", str(suite), "--split", "test", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)["rows"]
    assert [(r["corpus"], r["block"]) for r in rows] == [
        ("tiny", "tiny"), ("tiny", "all"), ("tiny+1", "added"), ("tiny+1", "tiny"), ("tiny+1", "all"),
        ("held-out", "added"), ("held-out", "all")]
    assert rows[2]["metrics"]["questions"] == 1 and rows[2]["metrics"]["citation_hit@1"] == 1.0
    assert cli.main(["eval", "--suite", str(suite), "--calibrate", "--no-adapter"]) == 0
    saved = json.loads((tmp_path / "calibration.json").read_text())
    assert saved["fitted_on"].startswith("4 dev questions + 5 about another corpus (")  # its 4, g1
    out = capsys.readouterr().out
    assert "by question kind:" in out and "\ntiny+1  " in out
