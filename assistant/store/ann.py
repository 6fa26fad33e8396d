"""FAISS behind four calls: build, search, save, load; the index type chosen by size.

Vectors are unit length, so inner product is cosine similarity; that is the only
metric used. Below `EXACT_LIMIT` vectors the search is exact (IndexFlatIP: a few
milliseconds, nothing to tune). Above it, a 4-bit product-quantizer scanned with
SIMD ("fast scan", 2 dimensions per code: d/2 bytes a vector) shortlists
`k * k_factor` candidates, which are re-scored exactly against the stored vectors
(IndexRefineFlat). Measured on 1M random unit 384-d vectors (benchmarks/run.py):
recall@10 about 0.98 at about 1.06x the raw vectors' memory. Graph (HNSW) and
inverted-list (IVF) indexes were measured too and rejected: on such vectors
neither reached recall 0.95 at comparable speed, and HNSW takes many minutes to
build 1M on 2 cores. The parameters go to the manifest.

Does not know about chunks or documents, and does not normalise vectors.
"""

from __future__ import annotations

from pathlib import Path

import faiss
import numpy as np

EXACT_LIMIT = 20_000
DIMS_PER_CODE = 2  # one 4-bit code per 2 dimensions: 192 bytes for 384-d
K_FACTOR = 32  # candidates re-scored exactly per result wanted
TRAIN_SIZE = 65_536  # vectors the quantizer is trained on (a fixed-seed sample)


def choose_params(n: int, *, exact_limit: int = EXACT_LIMIT) -> dict:
    """Exact inner product for small corpora; quantized shortlist + exact re-scoring above."""
    if n < exact_limit:
        return {"type": "flat-ip"}
    return {"type": "pq4fs-refine", "dims_per_code": DIMS_PER_CODE, "k_factor": K_FACTOR,
            "train_size": min(n, TRAIN_SIZE)}  # fmt: skip


def build(vectors: np.ndarray, params: dict) -> faiss.Index:
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    dimension = vectors.shape[1]
    kind = params["type"]
    if kind == "flat-ip":
        index = faiss.IndexFlatIP(dimension)
    elif kind == "pq4fs-refine":
        if dimension % params["dims_per_code"]:
            raise ValueError(f"dimension {dimension} is not a multiple of {params['dims_per_code']}")
        codes = dimension // params["dims_per_code"]
        base = faiss.IndexPQFastScan(dimension, codes, 4, faiss.METRIC_INNER_PRODUCT)
        rng = np.random.default_rng(0)  # the same sample, hence the same index, every build
        take = min(len(vectors), params["train_size"])
        sample = vectors[np.sort(rng.choice(len(vectors), take, replace=False))]
        # Training runs d/2 tiny k-means; with 2 OpenMP threads on a busy machine their
        # barriers dominated (1 s became 20-40 s). One thread (of this caller), for training.
        threads = faiss.omp_get_max_threads()
        faiss.omp_set_num_threads(1)
        try:
            base.train(sample)
        finally:
            faiss.omp_set_num_threads(threads)
        index = faiss.IndexRefineFlat(base)
        index.k_factor = float(params["k_factor"])
    else:
        raise ValueError(f"unknown ANN type {kind!r}")
    if len(vectors):
        index.add(vectors)
    return index


def search(index: faiss.Index, queries: np.ndarray, k: int) -> list[list[tuple[int, float]]]:
    """Top-k (row, cosine) per query. FAISS pads with -1 when k exceeds the corpus;
    those are dropped here, never used as row numbers."""
    k = min(k, index.ntotal)
    if k <= 0:
        return [[] for _ in range(len(queries))]
    queries = np.ascontiguousarray(queries, dtype=np.float32)
    if len(queries) == 1:
        # One query: an OpenMP team only adds barriers; on a busy 2-core machine the
        # re-scoring step took 4.7 ms wall for 0.7 ms of work. The setting is per thread.
        threads = faiss.omp_get_max_threads()
        faiss.omp_set_num_threads(1)
        try:
            scores, ids = index.search(queries, k)
        finally:
            faiss.omp_set_num_threads(threads)
    else:
        scores, ids = index.search(queries, k)
    return [
        [(i, s) for i, s in zip(row_ids, row_scores) if i >= 0]
        for row_ids, row_scores in zip(ids.tolist(), scores.tolist())
    ]


def save(index: faiss.Index, path: Path) -> None:
    faiss.write_index(index, str(path))


def load(path: Path, params: dict) -> faiss.Index:
    index = faiss.read_index(str(path))
    if params.get("type") == "pq4fs-refine":  # read_index returns IndexRefineFlat itself
        index.k_factor = float(params["k_factor"])
    return index
