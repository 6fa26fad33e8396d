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
    # get_scores, not retrieve: retrieve starts a thread pool on every call.
    scores = index.bm25.get_scores(known)
    n = min(n, len(scores))
    top = np.argpartition(-scores, n - 1)[:n] if n < len(scores) else np.arange(len(scores))
    top = sorted(top.tolist(), key=lambda row: (-scores[row], row))
    return [(row, float(scores[row])) for row in top if scores[row] > 0]


def fuse_rankings(
    rankings: list[list[tuple[int, float]]], weights: list[float], *, rrf_k: int = 60
) -> list[tuple[int, float]]:
    """Reciprocal rank fusion: sum of weight / (rrf_k + rank) over the rankings."""
    fused: dict[int, float] = {}
    for ranking, weight in zip(rankings, weights):
        for rank, (row, _) in enumerate(ranking, start=1):
            fused[row] = fused.get(row, 0.0) + weight / (rrf_k + rank)
    return sorted(fused.items(), key=lambda item: (-item[1], item[0]))


def sentence_search(index: Index, vector: np.ndarray, n: int) -> dict[int, float]:
    """Chunk row -> the best cosine of any of its sentences, over the top-n sentences."""
    best: dict[int, float] = {}
    for sentence_row, score in ann.search(index.sentence_dense, vector[None, :], n)[0]:
        for chunk_row in index.sentence_chunks[sentence_row]:
            best[chunk_row] = max(best.get(chunk_row, -1.0), score)
    return best


def retrieve(index: Index, query: Query, *, mode: str, k: int, settings) -> list[Hit]:
    """The top k distinct passages for the query, with the signals behind each.

    Candidates come from three searches (chunk vectors, sentence vectors, BM25);
    each candidate is then scored on all of its signals, so a passage found by one
    search is not penalised for being missed by another's cut-off.
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}")
    n = max(settings.candidates, 3 * k)
    use_dense, use_bm25 = mode != "bm25", mode != "dense"
    dense = dense_search(index, query.vector, n) if use_dense else []
    sparse = bm25_search(index, query.terms, n) if use_bm25 else []
    sentence_best = sentence_search(index, query.vector, 2 * n) if use_dense else {}
    rows = dict.fromkeys([r for r, _ in dense] + list(sentence_best) + [r for r, _ in sparse])
    if not rows:
        return []
    rows = list(rows)
    chunk_cosine = index.chunk_vectors[rows] @ query.vector
    best_sentence = [
        sentence_best.get(row)
        if row in sentence_best
        else max(float(index.sentence_vectors[r] @ query.vector) for r in index.chunk_sentence_rows[row])
        for row in rows
    ] if use_dense else [0.0] * len(rows)  # fmt: skip
    bm25 = dict(sparse)
    bm25_max = max(bm25.values(), default=0.0) or 1.0
    dense_rank = {row: rank for rank, (row, _) in enumerate(dense, start=1)}
    bm25_rank = {row: rank for rank, (row, _) in enumerate(sparse, start=1)}

    hits = []
    for row, cosine, sentence in zip(rows, chunk_cosine, best_sentence):
        hit = Hit(row, index.chunks[row], 0.0, dense_score=float(cosine),
                  dense_rank=dense_rank.get(row), bm25_score=bm25.get(row),
                  bm25_rank=bm25_rank.get(row))  # fmt: skip
        lexical = bm25.get(row, 0.0) / bm25_max
        if mode == "bm25":
            hit.score = bm25.get(row, 0.0)
        elif mode == "dense":
            hit.score = settings.dense_weight * float(cosine) + settings.sentence_weight * sentence
        else:
            hit.score = (settings.dense_weight * float(cosine) + settings.sentence_weight * sentence
                         + settings.bm25_weight * lexical)  # fmt: skip
        hits.append(hit)
    if mode == "hybrid" and settings.fusion == "rrf":
        by_sentence = sorted(zip(rows, best_sentence), key=lambda p: -p[1])
        fused = dict(fuse_rankings([dense, by_sentence, sparse], [1.0, 1.0, 1.0], rrf_k=settings.rrf_k))
        for hit in hits:
            hit.score = fused.get(hit.row, 0.0)
    hits.sort(key=lambda h: (-h.score, h.row))
    hits = _drop_duplicates(index, hits, k, settings.duplicate_cosine)
    query_terms = set(query.terms)
    for rank, hit in enumerate(hits, start=1):
        hit.rank = rank
        # A corroborating passage shares the rank of the passage it repeats.
        for each in (hit, *hit.also_in):
            each.rank = rank
            each.matched_terms = tuple(sorted(query_terms & index.chunk_terms(each.row)))
    return hits


def _drop_duplicates(index: Index, hits: list[Hit], k: int, threshold: float) -> list[Hit]:
    kept: list[Hit] = []
    for hit in hits:
        if len(kept) == k:
            break
        vector = index.content_vectors[hit.row]
        twin = next(
            (h for h in kept if float(index.content_vectors[h.row] @ vector) >= threshold), None
        )
        if twin is None:
            kept.append(hit)
        elif twin.chunk.doc != hit.chunk.doc and all(a.chunk.doc != hit.chunk.doc for a in twin.also_in):
            twin.also_in.append(hit)
    return kept
