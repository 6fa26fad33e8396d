"""FAISS behind four calls: build, search, save, load.

Vectors are unit length, so inner product is cosine similarity; that is the
only metric used. The index type is picked by corpus size (exact search below
`exact_limit`, HNSW above) and its parameters go to the manifest. Does not know
about chunks or documents.
"""

from __future__ import annotations

from pathlib import Path

import faiss
import numpy as np

EXACT_LIMIT = 50_000


def choose_params(n: int, *, exact_limit: int = EXACT_LIMIT) -> dict:
    """Exact inner product for small corpora; HNSW (graph) for large ones."""
    if n < exact_limit:
        return {"type": "flat-ip"}
    return {"type": "hnsw-ip", "M": 32, "efConstruction": 80, "efSearch": 128}


def build(vectors: np.ndarray, params: dict) -> faiss.Index:
    dimension = vectors.shape[1]
    if params["type"] == "flat-ip":
        index = faiss.IndexFlatIP(dimension)
    elif params["type"] == "hnsw-ip":
        index = faiss.IndexHNSWFlat(dimension, params["M"], faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = params["efConstruction"]
        index.hnsw.efSearch = params["efSearch"]
    else:
        raise ValueError(f"unknown ANN type {params['type']!r}")
    if len(vectors):
        index.add(np.ascontiguousarray(vectors, dtype=np.float32))
    return index


def search(index: faiss.Index, queries: np.ndarray, k: int) -> list[list[tuple[int, float]]]:
    """Top-k (row, cosine) per query. FAISS pads with -1 when k exceeds the corpus;
    those are dropped here, never used as row numbers."""
    k = min(k, index.ntotal)
    if k <= 0:
        return [[] for _ in range(len(queries))]
    scores, ids = index.search(np.ascontiguousarray(queries, dtype=np.float32), k)
    return [
        [(int(i), float(s)) for i, s in zip(row_ids, row_scores) if i >= 0]
        for row_ids, row_scores in zip(ids, scores)
    ]


def save(index: faiss.Index, path: Path) -> None:
    faiss.write_index(index, str(path))


def load(path: Path, params: dict) -> faiss.Index:
    index = faiss.read_index(str(path))
    if params.get("type") == "hnsw-ip":
        index.hnsw.efSearch = params["efSearch"]
    return index
