"""Build an index from documents: chunk, embed (reusing an earlier index's vectors by
text hash), fit the token basis, build FAISS and BM25, write the manifest.

Does not save (persist.py does) and does not decide when to build (pipeline.py).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..embed.base import Embedder, TokenVectors
from ..ingest.chunking import Chunk, Sentence, chunk_document, text_hash
from ..ingest.documents import Document
from ..ingest.entities import analyse_sentences
from ..text.terms import terms
from . import ann
from .index import FORMAT_VERSION, Index, Progress, project_tokens


@dataclass(frozen=True)
class BuildStats:
    documents: int
    chunks: int
    embedded: int  # chunk texts embedded in this build
    reused: int  # chunk vectors taken from the previous index
    seconds: float
    changed_documents: tuple[str, ...] = ()


def build_index(
    documents: Sequence[Document],
    embedder: Embedder,
    settings,
    *,
    previous: Index | None = None,
    progress: Progress | None = None,
) -> tuple[Index, BuildStats]:
    """Chunk, embed (reusing the previous index's vectors by text hash), index."""
    started = time.perf_counter()
    chunks: list[Chunk] = []
    for doc in documents:
        chunks.extend(
            chunk_document(
                doc,
                embedder.count_tokens,
                chunk_tokens=settings.chunk_tokens,
                max_chunk_tokens=min(settings.max_chunk_tokens, embedder.max_tokens - 2),
                overlap_sentences=settings.overlap_sentences,
            )
        )
    cache_ok = previous is not None and (previous.manifest.get("model"),
               previous.manifest.get("dimension")) == (embedder.name, embedder.dimension)  # fmt: skip
    chunk_cache = (
        _vector_cache([c.indexed_text for c in previous.chunks], previous.chunk_vectors)
        if cache_ok
        else {}
    )
    # Token vectors: an update keeps the previous build's basis and reuses its
    # projected vectors by text hash, as a trained FAISS index keeps its training;
    # unless that basis is narrower than asked (fitted on fewer word pieces than
    # dimensions) or under half of the chunks are still there: then all is refitted.
    hashes = [text_hash(c.indexed_text) for c in chunks]
    token_cache, basis = None, None
    if hasattr(embedder, "encode_with_tokens"):
        token_cache = {}
        width = min(settings.token_dims, embedder.dimension)
        if (cache_ok and previous.has_tokens and previous.manifest.get("token_dims") == settings.token_dims
                and previous.token_basis.shape[1] == width):  # fmt: skip
            old = {text_hash(c.indexed_text): i for i, c in enumerate(previous.chunks)}
            kept = {h: old[h] for h in hashes if h in old}
            if 2 * len(kept) >= len(chunks):
                basis = previous.token_basis
                token_cache = {h: previous.chunk_tokens(i) for h, i in kept.items()}
    reused_tokens = set(token_cache or ())
    chunk_vectors, embedded, chunk_tokens = _embed_with_cache(
        [c.indexed_text for c in chunks], chunk_cache, embedder, progress, "chunks",
        token_cache=token_cache,
    )
    if chunk_tokens is not None:
        fresh = [i for i, h in enumerate(hashes) if h not in reused_tokens]
        if basis is None:
            basis = fit_token_basis([chunk_tokens[i][1] for i in fresh], embedder.dimension, settings.token_dims)
        for i in fresh:
            chunk_tokens[i] = (chunk_tokens[i][0], project_tokens(chunk_tokens[i][1], basis))

    rows: dict[tuple[str, int, int], int] = {}
    sentences: list[tuple[str, Sentence]] = []
    chunk_sentence_rows = []
    for chunk in chunks:
        own = []
        for s in chunk.sentences:
            key = (chunk.doc, s.start, s.end)
            if key not in rows:
                rows[key] = len(sentences)
                sentences.append((chunk.doc, s))
            own.append(rows[key])
        chunk_sentence_rows.append(own)
    sentence_cache = (
        _vector_cache([s.text for _, s in previous.sentences], previous.sentence_vectors)
        if cache_ok
        else {}
    )
    sentence_vectors, _, _ = _embed_with_cache(
        [s.text for _, s in sentences], sentence_cache, embedder, progress, "sentences"
    )
    originals = {d.path: d.text for d in documents}
    sentence_entities, sentence_tokens = _analysed_with_cache(
        [(s.text, originals[doc][s.start : s.end]) for doc, s in sentences],
        _analysis_cache(previous) if cache_ok else {}, progress,
    )

    params = ann.choose_params(len(chunks))
    dense = ann.build(chunk_vectors, params)
    sentence_params = ann.choose_params(len(sentences))
    sentence_dense = ann.build(sentence_vectors, sentence_params)
    bm25 = build_bm25([c.indexed_text for c in chunks])
    previous_hashes = previous.manifest["documents"] if previous else {}
    changed = tuple(
        d.path for d in documents if previous_hashes.get(d.path, {}).get("sha256") != d.sha256
    )
    manifest = {
        "format_version": FORMAT_VERSION,
        "model": embedder.name,
        "dimension": embedder.dimension,
        "max_tokens": embedder.max_tokens,
        "chunking": settings.chunking_signature,
        "ann": params,
        "sentence_ann": sentence_params,
        "documents": {
            d.path: {"sha256": d.sha256, "title": d.title, "encoding": d.encoding}
            for d in documents
        },
        "counts": {"documents": len(documents), "chunks": len(chunks), "sentences": len(sentences)},
        "token_vectors": chunk_tokens is not None,
        "token_dims": settings.token_dims,
        "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    index = Index(chunks, chunk_vectors, sentences, sentence_vectors, chunk_sentence_rows,
                  dense, bm25, manifest, sentence_dense=sentence_dense,
                  sentence_entities=sentence_entities, sentence_tokens=sentence_tokens)  # fmt: skip
    if chunk_tokens is not None:
        index.token_basis = basis
        index.token_ids, index.token_vectors, index.token_offsets = pack_tokens(chunk_tokens, basis.shape[1])
    stats = BuildStats(len(documents), len(chunks), embedded, len(chunks) - embedded,
                       time.perf_counter() - started, changed)  # fmt: skip
    return index, stats


def build_bm25(texts: Sequence[str]):
    import bm25s

    bm25 = bm25s.BM25()
    bm25.index([terms(t) or [""] for t in texts], show_progress=False)
    return bm25


def _analysis_cache(previous: Index | None) -> dict[str, tuple[list, list]]:
    """The previous index's entities and tokens by the hash of the sentence's original text."""
    if previous is None or not len(previous.sentence_entities) == len(previous.sentence_tokens) == len(
            previous.sentences):  # fmt: skip
        return {}
    return {text_hash(s.text): (e, t) for (_, s), e, t in zip(previous.sentences, previous.sentence_entities,
                                                               previous.sentence_tokens)}  # fmt: skip


def _analysed_with_cache(texts: Sequence[tuple[str, str]], cache: dict[str, tuple[list, list]], progress
                         ) -> tuple[list[list], list[list]]:  # fmt: skip
    """Each sentence's entities and tokens, in its original text (the second of each
    pair): from the cache, by the hash of its cleaned text (the first), when an earlier
    build found them."""
    hashes = [text_hash(cleaned) for cleaned, _ in texts]
    todo = list(dict.fromkeys(h for h in hashes if h not in cache))
    if todo:
        by_hash = {h: original for h, (_, original) in zip(hashes, texts)}
        found = analyse_sentences([by_hash[h] for h in todo])
        cache = {**cache, **dict(zip(todo, found))}
        if progress:
            progress("finding entities", len(todo), len(todo))
    return ([[tuple(e) for e in cache[h][0]] for h in hashes],
            [[tuple(t) for t in cache[h][1]] for h in hashes])


def _vector_cache(texts, vectors: np.ndarray) -> dict[str, np.ndarray]:
    return {text_hash(text): vectors[i] for i, text in enumerate(texts)}


def pack_tokens(per_text: Sequence[TokenVectors], dimension: int):
    """Texts' token vectors -> (ids int32, vectors float16, offsets int64) in order."""
    offsets = np.zeros(len(per_text) + 1, dtype=np.int64)
    offsets[1:] = np.cumsum([len(ids) for ids, _ in per_text])
    ids = np.concatenate([np.asarray(i, dtype=np.int32) for i, _ in per_text] or
                         [np.zeros(0, dtype=np.int32)])  # fmt: skip
    vectors = np.concatenate([np.asarray(v, dtype=np.float16).reshape(-1, dimension) for _, v in per_text]
                             or [np.zeros((0, dimension), dtype=np.float16)])  # fmt: skip
    return ids, vectors, offsets


def fit_token_basis(parts: Sequence[np.ndarray], dimension: int, dims: int, *,
                    sample: int = 50_000) -> np.ndarray:  # fmt: skip
    """(dimension, k) top principal axes of the texts' token vectors, k = min(dims,
    dimension, tokens).

    Late interaction in 64 of the model's 384 dimensions costs a sixth and ranked
    the dev questions no worse (hit@3 0.944 either way). Fitted on at most `sample`
    tokens drawn with a fixed seed, so the same texts always give the same basis.
    """
    lengths = np.array([len(p) for p in parts], dtype=np.int64)
    total = int(lengths.sum())
    if total == 0:
        return np.eye(dimension, min(dims, dimension), dtype=np.float32)
    rows = np.sort(np.random.default_rng(0).choice(total, min(total, sample), replace=False))
    starts = np.cumsum(lengths) - lengths
    owner = np.searchsorted(starts, rows, side="right") - 1
    data = np.stack([parts[o][r - starts[o]] for o, r in zip(owner, rows)]).astype(np.float64)
    _, _, axes = np.linalg.svd(data - data.mean(axis=0), full_matrices=False)
    axes = axes[: min(dims, dimension, total)]
    # Fix each axis's sign (SVD's is arbitrary): its largest component is positive.
    axes *= np.where(axes[np.arange(len(axes)), np.abs(axes).argmax(axis=1)] < 0, -1.0, 1.0)[:, None]
    return np.ascontiguousarray(axes.T, dtype=np.float32)


def _embed_with_cache(texts, cache, embedder: Embedder, progress, label, *, token_cache=None):
    """(vectors, how many texts were embedded, token vectors per text or None).

    Texts whose hash is in the cache (and, with a token_cache, in that too) reuse
    what an earlier build computed; the rest are embedded in batches.
    """
    with_tokens = token_cache is not None
    hashes = [text_hash(t) for t in texts]
    missing = list(dict.fromkeys(
        h for h in hashes if h not in cache or (with_tokens and h not in token_cache)))  # fmt: skip
    if missing:
        by_hash = dict(zip(hashes, texts))
        todo = [by_hash[h] for h in missing]
        vectors, tokens = [], []
        step = 256
        for i in range(0, len(todo), step):
            if with_tokens:  # float16 until projected: half the memory of a big build
                batch_vectors, batch_tokens = embedder.encode_with_tokens(todo[i : i + step])
                vectors.append(batch_vectors)
                tokens.extend((ids, np.asarray(v, dtype=np.float16)) for ids, v in batch_tokens)
            else:
                vectors.append(embedder.encode(todo[i : i + step]))
            if progress:
                progress(f"embedding {label}", min(i + step, len(todo)), len(todo))
        cache = {**cache, **dict(zip(missing, np.concatenate(vectors)))}
        if with_tokens:
            token_cache = {**token_cache, **dict(zip(missing, tokens))}
    out = np.zeros((len(texts), embedder.dimension), dtype=np.float32)
    for i, h in enumerate(hashes):
        out[i] = cache[h]
    return out, len(missing), [token_cache[h] for h in hashes] if with_tokens else None
