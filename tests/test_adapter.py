"""The query adapter: fitting, applying, saving and loading, and ask going through it."""

from __future__ import annotations

import json

import numpy as np
import pytest

from assistant import Assistant, matrix_file
from assistant.embed import adapter
from assistant.config import load_settings
from assistant.errors import SettingsError
from assistant.evaluation import (
    DEFAULT_QUESTIONS,
    calibration_warning,
    in_sample_note,
    load_questions,
    with_settings,
)


def unit(rows: np.ndarray) -> np.ndarray:
    return (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)


def test_apply_maps_to_unit_vectors_and_passes_through_without_a_matching_matrix():
    vectors = unit(np.random.default_rng(0).normal(size=(3, 4)))
    scale = np.diag([2.0, 1.0, 1.0, 1.0]).astype(np.float32)
    mapped = adapter.apply(scale, vectors)
    assert np.allclose(np.linalg.norm(mapped, axis=1), 1.0)
    assert np.allclose(mapped, unit(vectors * [2.0, 1.0, 1.0, 1.0]))
    assert adapter.apply(None, vectors) is not None and np.array_equal(adapter.apply(None, vectors), vectors)
    assert np.array_equal(adapter.apply(np.eye(8, dtype=np.float32), vectors), vectors)  # other width


def test_fit_learns_a_map_that_carries_over_to_new_questions():
    """Questions are their passage's vector turned by a fixed rotation plus noise: the
    model's vectors rank the right passage first for few of them. Fitted on 60, the
    adapter ranks it first for most of 40 questions it never saw."""
    rng = np.random.default_rng(1)
    dim, n_chunks = 16, 30
    chunks = unit(rng.normal(size=(n_chunks, dim)))
    rotation, _ = np.linalg.qr(rng.normal(size=(dim, dim)))
    turn = (0.3 * np.eye(dim) + 0.7 * rotation).astype(np.float32)

    def questions(n):
        rows = rng.integers(0, n_chunks, size=n)
        return unit(chunks[rows] @ turn + 0.1 * rng.normal(size=(n, dim))), rows

    train, train_rows = questions(60)
    test, test_rows = questions(40)

    def top1(vectors, rows):
        return float(np.mean(np.argmax(vectors @ chunks.T, axis=1) == rows))

    matrix = adapter.fit(train, [[r] for r in train_rows], [[] for _ in train_rows], chunks,
                         np.zeros((0, dim), np.float32), l2=0.001, temperature=0.05)  # fmt: skip
    before, after = top1(test, test_rows), top1(adapter.apply(matrix, test), test_rows)
    assert before < 0.2 and after > 0.85
    # Deterministic: the same inputs give the same matrix.
    again = adapter.fit(train, [[r] for r in train_rows], [[] for _ in train_rows], chunks,
                        np.zeros((0, dim), np.float32), l2=0.001, temperature=0.05)  # fmt: skip
    assert np.array_equal(matrix, again)


def test_a_strong_penalty_keeps_the_identity():
    rng = np.random.default_rng(2)
    chunks = unit(rng.normal(size=(5, 4)))
    matrix = adapter.fit(unit(rng.normal(size=(6, 4))), [[0]] * 6, [[]] * 6, chunks, chunks,
                         l2=1e6, temperature=0.05)  # fmt: skip
    assert np.allclose(matrix, np.eye(4), atol=1e-3)


def test_saved_matrix_is_checked_on_load(tmp_path):
    matrix = np.arange(9, dtype=np.float32).reshape(3, 3)
    path = tmp_path / "a.npy"
    sha256 = matrix_file.save(matrix, path)
    assert [p.name for p in tmp_path.iterdir()] == ["a.npy"]  # no temporary left
    assert np.array_equal(matrix_file.load(path, sha256), matrix)
    with pytest.raises(SettingsError, match="does not match its checksum"):
        matrix_file.load(path, "0" * 64)
    np.save(path, np.zeros((2, 3), np.float32))
    with pytest.raises(SettingsError, match="not a square float32 matrix"):
        matrix_file.load(path, sha256)
    with open(path, "wb") as f:  # an object array's header: its data would be unpickled
        np.lib.format.write_array_header_1_0(f, {"descr": "|O", "fortran_order": False, "shape": (1,)})
        f.write(b"payload")
    with pytest.raises(SettingsError, match="a.npy is unreadable"):
        matrix_file.load(path, sha256)
    path.write_bytes(b"not numpy")
    with pytest.raises(SettingsError, match="a.npy is unreadable"):
        matrix_file.load(path, sha256)
    with pytest.raises(SettingsError, match="missing.npy is unreadable"):
        matrix_file.load(tmp_path / "missing.npy", sha256)


def test_load_settings_reads_the_adapter_beside_the_calibration(tmp_path):
    matrix = np.eye(4, dtype=np.float32) * 2
    sha256 = matrix_file.save(matrix, tmp_path / "m.npy")
    target = tmp_path / "calibration.json"

    def write(entry):
        target.write_text(json.dumps({"weights": {}, "threshold": 0.5, "adapter": entry}))

    write({"file": "m.npy", "sha256": sha256})
    assert np.array_equal(load_settings(calibration_file=target).query_adapter, matrix)
    write({"file": "../m.npy", "sha256": sha256})
    with pytest.raises(SettingsError, match="must sit beside the calibration"):
        load_settings(calibration_file=target)
    write({"file": "gone.npy", "sha256": sha256})  # a missing adapter is set aside, like a damaged one
    settings = load_settings(calibration_file=target)
    assert settings.query_adapter is None and settings.calibration == {}
    write(None)
    assert load_settings(calibration_file=target).query_adapter is None


def test_ask_goes_through_the_adapter(tiny_settings, fake_embedder):
    assistant = Assistant.load(settings=tiny_settings, embedder=fake_embedder)
    assert (tiny_settings.index_dir / "CURRENT").exists()  # the settings' folders, not ./index
    question = "When was the armistice signed?"
    raw = assistant.queries([question])[0].vector
    dim = raw.shape[0]
    matrix = np.linalg.qr(np.random.default_rng(3).normal(size=(dim, dim)))[0].astype(np.float32)
    adapted = with_settings(assistant, query_adapter=matrix).ask(question)
    assert np.allclose(adapted.query.vector, adapter.apply(matrix, raw[None])[0])
    assert not np.allclose(adapted.query.vector, raw)
    assert np.allclose(assistant.ask(question).query.vector, raw)  # the original is untouched


def test_an_adapter_for_another_model_width_is_reported(tiny_settings):
    settings = tiny_settings.with_(query_adapter=np.eye(384, dtype=np.float32))
    assert "fitted for 384-d vectors and the model gives 64-d" in calibration_warning(settings, 64)
    assert calibration_warning(settings, 384) is None


def test_dev_figures_of_the_shipped_set_are_flagged_in_sample(tiny_settings, tmp_path):
    questions = load_questions(DEFAULT_QUESTIONS)
    adapted = tiny_settings.with_(query_adapter=np.eye(4, dtype=np.float32))
    assert "in-sample" in in_sample_note(adapted, DEFAULT_QUESTIONS, questions)
    assert in_sample_note(tiny_settings, DEFAULT_QUESTIONS, questions) is None  # no adapter
    test_only = [q for q in questions if q.split == "test"]
    assert in_sample_note(adapted, DEFAULT_QUESTIONS, test_only) is None
    assert in_sample_note(adapted, tmp_path / "other.jsonl", questions) is None  # not what was fitted


@pytest.mark.parametrize("where", ["start", "middle", "end"])
def test_a_changed_adapter_or_calibration_is_set_aside_with_one_warning(tmp_path, caplog, where):
    """Issue 18, item 1: the calibration records its own checksum and its adapter's; a
    byte changed in either (at the start, middle or end of the adapter; in a weight of
    the calibration) is one warning and the uncalibrated defaults, never a silent change."""
    from assistant.evaluation import write_calibration

    target = tmp_path / "calibration.json"
    matrix = np.eye(4, dtype=np.float32) * 0.5
    write_calibration({"weights": {"bias": -1.25}, "threshold": 0.375, "fitted_on": "x", "dev_metrics": {},
                       "query_adapter": matrix}, target)  # fmt: skip
    assert load_settings(calibration_file=target).abstain_below == 0.375
    adapter = next(tmp_path.glob("query_adapter-*.npy"))
    data = bytearray(adapter.read_bytes())
    data[{"start": 0, "middle": len(data) // 2, "end": len(data) - 1}[where]] ^= 0x01
    adapter.write_bytes(bytes(data))
    settings = load_settings(calibration_file=target)
    assert settings.query_adapter is None and settings.calibration == {} and settings.abstain_below == 0.5
    assert len([r for r in caplog.records if "answering uncalibrated" in r.getMessage()]) == 1
    caplog.clear()
    adapter.unlink()
    text = target.read_text(encoding="utf-8").replace('"adapter"', '"adapter_"')  # no adapter now
    target.write_text(text.replace("-1.25", "-1.26"), encoding="utf-8")  # one digit of a weight
    assert load_settings(calibration_file=target).calibration == {}
    assert "does not match its checksum" in caplog.text
