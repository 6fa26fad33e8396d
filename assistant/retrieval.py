"""Rank chunks for a query: dense (FAISS), sparse (BM25), fused, de-duplicated.

Near-duplicates (cosine above a threshold) do not crowd the ranking: a repeat
from the same document is dropped, a repeat from another document is kept on
the hit it repeats as corroboration (`also_in`). Does not read sentences or
compose answers.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from . import ann
from .chunking import Chunk
from .index import Index
from .query import Query
from .terms import terms

MODES = ("hybrid", "dense", "bm25")


@dataclass
class Hit:
    row: int
    chunk: Chunk
    score: float  # fused score (the one the ranking is sorted by)
    rank: int = 0  # 1-based, after de-duplication
    dense_score: float | None = None  # cosine to the query
    dense_rank: int | None = None
    bm25_score: float | None = None
    bm25_rank: int | None = None
    matched_terms: tuple[str, ...] = ()
    also_in: list[Hit] = field(default_factory=list)


def dense_search(index: Index, vector: np.ndarray, n: int) -> list[tuple[int, float]]:
    return ann.search(index.dense, vector[None, :], n)[0]


def bm25_search(index: Index, query_terms, n: int) -> list[tuple[int, float]]:
    known = [t for t in query_terms if t in index.vocabulary]
    if not known or not index.chunks:
        return []
    n = min(n, len(index.chunks))
    ids, scores = index.bm25.retrieve([known], k=n, show_progress=False, n_threads=1)
    return [(int(i), float(s)) for i, s in zip(ids[0], scores[0]) if s > 0]


def fuse_rankings(
    rankings: list[list[tuple[int, float]]], weights: list[float], *, rrf_k: int = 60
) -> list[tuple[int, float]]:
    """Reciprocal rank fusion: sum of weight / (rrf_k + rank) over the rankings."""
    fused: dict[int, float] = {}
    for ranking, weight in zip(rankings, weights):
        for rank, (row, _) in enumerate(ranking, start=1):
            fused[row] = fused.get(row, 0.0) + weight / (rrf_k + rank)
    return sorted(fused.items(), key=lambda item: (-item[1], item[0]))


def retrieve(index: Index, query: Query, *, mode: str, k: int, settings) -> list[Hit]:
    """The top k distinct passages for the query, with the signals behind each."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}")
    n = max(settings.candidates, 3 * k)
    dense = dense_search(index, query.vector, n) if mode != "bm25" else []
    sparse = bm25_search(index, query.terms, n) if mode != "dense" else []
    if mode == "dense":
        fused = dense
    elif mode == "bm25":
        fused = sparse
    else:
        fused = fuse_rankings(
            [dense, sparse], [settings.dense_weight, settings.bm25_weight], rrf_k=settings.rrf_k
        )
    dense_info = {row: (rank, score) for rank, (row, score) in enumerate(dense, start=1)}
    sparse_info = {row: (rank, score) for rank, (row, score) in enumerate(sparse, start=1)}
    hits = []
    for row, score in fused:
        hit = Hit(row, index.chunks[row], score)
        if row in dense_info:
            hit.dense_rank, hit.dense_score = dense_info[row]
        else:
            hit.dense_score = float(index.chunk_vectors[row] @ query.vector)
        if row in sparse_info:
            hit.bm25_rank, hit.bm25_score = sparse_info[row]
        hits.append(hit)
    hits = _drop_duplicates(index, hits, k, settings.duplicate_cosine)
    query_terms = set(query.terms)
    for rank, hit in enumerate(hits, start=1):
        hit.rank = rank
        hit.matched_terms = tuple(sorted(query_terms & set(terms(hit.chunk.text))))
    return hits


def _drop_duplicates(index: Index, hits: list[Hit], k: int, threshold: float) -> list[Hit]:
    kept: list[Hit] = []
    for hit in hits:
        if len(kept) == k:
            break
        vector = index.chunk_vectors[hit.row]
        twin = next(
            (h for h in kept if float(index.chunk_vectors[h.row] @ vector) >= threshold), None
        )
        if twin is None:
            kept.append(hit)
        elif twin.chunk.doc != hit.chunk.doc and all(a.chunk.doc != hit.chunk.doc for a in twin.also_in):
            twin.also_in.append(hit)
    return kept
