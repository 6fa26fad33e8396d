"""ann.py: the index type by corpus size, exact re-scoring, save/load, padding rows."""

from __future__ import annotations

import numpy as np
import pytest

from assistant.store import ann


def unit_vectors(n: int, dimension: int = 32, *, seed: int = 0) -> np.ndarray:
    x = np.random.default_rng(seed).standard_normal((n, dimension)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


@pytest.mark.parametrize(
    ("n", "kind"),
    [(0, "flat-ip"), (1, "flat-ip"), (ann.EXACT_LIMIT - 1, "flat-ip"),
     (ann.EXACT_LIMIT, "pq4fs-refine"), (1_000_000, "pq4fs-refine")],
)  # fmt: skip
def test_choose_params_by_size(n, kind):
    params = ann.choose_params(n)
    assert params["type"] == kind
    if kind == "pq4fs-refine":
        assert params == {"type": kind, "dims_per_code": ann.DIMS_PER_CODE,
                          "k_factor": ann.K_FACTOR, "train_size": min(n, ann.TRAIN_SIZE)}  # fmt: skip


def test_flat_search_is_exact_and_drops_padding():
    x = np.eye(3, 4, dtype=np.float32)  # three orthogonal unit vectors
    index = ann.build(x, {"type": "flat-ip"})
    query = np.array([[0.6, 0.8, 0.0, 0.0]], dtype=np.float32)
    # Hand-worked: cosines 0.6, 0.8, 0.0; k=10 > 3 rows, FAISS pads with -1.
    result = ann.search(index, query, 10)[0]
    assert [row for row, _ in result] == [1, 0, 2]
    assert [round(score, 6) for _, score in result] == [0.8, 0.6, 0.0]


def test_empty_index_and_zero_k():
    index = ann.build(np.zeros((0, 8), dtype=np.float32), {"type": "flat-ip"})
    assert ann.search(index, np.ones((2, 8), dtype=np.float32), 5) == [[], []]


def test_quantized_index_rescores_exactly_and_survives_save_load(tmp_path):
    x = unit_vectors(3_000)
    params = ann.choose_params(len(x), exact_limit=1_000)
    assert params["type"] == "pq4fs-refine"
    index = ann.build(x, params)
    queries = unit_vectors(20, seed=1)
    got = ann.search(index, queries, 10)
    exact = ann.search(ann.build(x, {"type": "flat-ip"}), queries, 10)
    recall = np.mean([len({r for r, _ in g} & {r for r, _ in e}) / 10 for g, e in zip(got, exact)])
    assert recall >= 0.9  # 3k random vectors, 32-d, shortlist of 320: in practice 1.0
    for row_hits, query in zip(got, queries):  # scores are exact cosines, not estimates
        for row, score in row_hits:
            assert score == pytest.approx(float(x[row] @ query), abs=1e-5)
    ann.save(index, tmp_path / "dense.faiss")
    loaded = ann.load(tmp_path / "dense.faiss", params)
    assert loaded.k_factor == params["k_factor"]
    assert ann.search(loaded, queries, 10) == got


def test_quantized_build_is_deterministic():
    x = unit_vectors(2_000)
    params = ann.choose_params(len(x), exact_limit=1_000)
    queries = unit_vectors(5, seed=2)
    first = ann.search(ann.build(x, params), queries, 5)
    assert ann.search(ann.build(x, params), queries, 5) == first


@pytest.mark.parametrize("params", [{"type": "nope"},
                                    {"type": "pq4fs-refine", "dims_per_code": 3,
                                     "k_factor": 8, "train_size": 100}])  # fmt: skip
def test_bad_params_raise(params):
    with pytest.raises(ValueError):
        ann.build(unit_vectors(100), params)


def test_single_query_search_leaves_the_thread_count_as_it_was():
    import faiss

    before = faiss.omp_get_max_threads()
    x = unit_vectors(2_000)
    index = ann.build(x, ann.choose_params(len(x), exact_limit=1_000))
    ann.search(index, x[:1], 5)
    ann.search(index, x[:3], 5)
    assert faiss.omp_get_max_threads() == before
