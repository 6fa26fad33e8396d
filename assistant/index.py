"""The persisted index: chunks, sentence and chunk vectors, FAISS, BM25, manifest.

Layout of the index folder (no pickle anywhere: JSON, .npy without objects,
FAISS's own format, bm25s's JSON + .npy):

    index/CURRENT            name of the live version folder, replaced atomically
    index/v-<hash>-<nonce>/  one complete version, <hash> of its manifest.json (written last)
        manifest.json        format, model, dimension, chunking, documents, files+sha256
        chunks.jsonl  sentences.jsonl  chunk_vectors.npy  sentence_vectors.npy
        dense.faiss  bm25/
        token_ids.npy  token_offsets.npy  token_basis.npy  token_vectors.npy
                             (when the embedder gives token vectors: every chunk's word
                             pieces in order, float16, on the corpus's top principal axes)

A build writes a new version folder beside the live one and only then points
CURRENT at it, so a crash at any moment leaves the previous index loadable.
Does not decide what to rebuild (pipeline.py does) and does not rank anything.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import shutil
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import ann
from .chunking import Chunk, Sentence, chunk_document, text_hash
from .documents import Document
from .embedding import Embedder, TokenVectors
from .errors import IndexLoadError
from .terms import CASED_WORD, terms, written_name

FORMAT_VERSION = 5  # 4: token vectors for late interaction; 5: only their projection kept
_VERSION_NAME = re.compile(r"v-[0-9a-f]{16}-[0-9a-f]{8}")
Progress = Callable[[str, int, int], None]


@dataclass
class Index:
    chunks: list[Chunk]
    chunk_vectors: np.ndarray
    sentences: list[tuple[str, Sentence]]  # (doc, sentence), one row per unique span
    sentence_vectors: np.ndarray
    chunk_sentence_rows: list[list[int]]
    dense: object  # faiss.Index
    bm25: object  # bm25s.BM25
    manifest: dict
    path: Path | None = None
    sentence_dense: object = None  # faiss.Index over sentence_vectors
    # Late interaction (retrieval.late_interaction): chunk i's word pieces are rows
    # token_offsets[i]:token_offsets[i+1] of the token arrays. None: not built.
    token_ids: np.ndarray | None = None  # int32 (T,)
    token_offsets: np.ndarray | None = None  # int64 (chunks + 1,)
    token_basis: np.ndarray | None = None  # float32 (dim, k): top principal axes
    token_vectors: np.ndarray | None = None  # float16 (T, k): unit rows in that basis
    _token_matrix: np.ndarray | None = field(default=None, repr=False)
    _token_df: np.ndarray | None = field(default=None, repr=False)
    _vocabulary: dict | None = field(default=None, repr=False)
    _sentence_chunks: list | None = field(default=None, repr=False)
    _content_vectors: np.ndarray | None = field(default=None, repr=False)
    _chunk_sentence_flat: tuple | None = field(default=None, repr=False)
    _chunk_terms: dict = field(default_factory=dict, repr=False)
    _sentence_terms: dict = field(default_factory=dict, repr=False)
    _proper_names: dict | None = field(default=None, repr=False)

    @property
    def vocabulary(self) -> dict[str, int]:
        """BM25 term -> column."""
        if self._vocabulary is None:
            self._vocabulary = {t: i for t, i in self.bm25.vocab_dict.items() if t}
        return self._vocabulary

    @property
    def proper_names(self) -> dict[str, str]:
        """Lower-cased name -> how the sentences write it ("kaesong" -> "Kaesong", "dmz"
        -> "DMZ"): words past a sentence's first that are always capitalised, never in
        lower case. For reading a question typed in lower case."""
        if self._proper_names is None:
            forms: dict[str, Counter] = {}
            lower: set[str] = set()
            for _, sentence in self.sentences:
                for word in CASED_WORD.findall(sentence.text)[1:]:
                    form = written_name(word)
                    if len(form) < 2:
                        continue
                    if form[0].isupper():
                        forms.setdefault(form.lower(), Counter())[form] += 1
                    else:
                        lower.add(form.lower())
            self._proper_names = {key: seen.most_common(1)[0][0] for key, seen in forms.items()
                                  if key not in lower}  # fmt: skip
        return self._proper_names

    @property
    def sentence_chunks(self) -> list[list[int]]:
        """Sentence row -> the chunk rows that contain it (overlap makes it several)."""
        if self._sentence_chunks is None:
            table: list[list[int]] = [[] for _ in self.sentences]
            for chunk_row, rows in enumerate(self.chunk_sentence_rows):
                for row in rows:
                    table[row].append(chunk_row)
            self._sentence_chunks = table
        return self._sentence_chunks

    @property
    def chunk_sentence_flat(self) -> tuple[np.ndarray, np.ndarray]:
        """chunk_sentence_rows as one int64 array and each chunk's count."""
        if self._chunk_sentence_flat is None:
            lengths = np.array([len(r) for r in self.chunk_sentence_rows], dtype=np.int64)
            flat = np.array([s for rows in self.chunk_sentence_rows for s in rows], dtype=np.int64)
            self._chunk_sentence_flat = (flat, lengths)
        return self._chunk_sentence_flat

    @property
    def content_vectors(self) -> np.ndarray:
        """Per chunk, the normalized mean of its sentence vectors: what the chunk says,
        without the section heading its own vector includes (for near-duplicates)."""
        if self._content_vectors is None:
            means = np.stack([self.sentence_vectors[rows].mean(axis=0)
                              for rows in self.chunk_sentence_rows]) if self.chunks else \
                np.zeros((0, self.sentence_vectors.shape[1]), dtype=np.float32)  # fmt: skip
            norms = np.linalg.norm(means, axis=1, keepdims=True)
            self._content_vectors = (means / np.where(norms == 0, 1, norms)).astype(np.float32)
        return self._content_vectors

    def chunk_terms(self, row: int) -> frozenset[str]:
        """The chunk's analysed terms, computed once per index (not once per question)."""
        found = self._chunk_terms.get(row)
        if found is None:
            found = self._chunk_terms[row] = frozenset(terms(self.chunks[row].text))
        return found

    def sentence_terms(self, row: int) -> frozenset[str]:
        found = self._sentence_terms.get(row)
        if found is None:
            found = self._sentence_terms[row] = frozenset(terms(self.sentences[row][1].text))
        return found

    @property
    def has_tokens(self) -> bool:
        return self.token_vectors is not None

    @property
    def token_matrix(self) -> np.ndarray:
        """token_vectors as float32 (BLAS has no float16 product), made once."""
        if self._token_matrix is None:
            self._token_matrix = np.ascontiguousarray(self.token_vectors, dtype=np.float32)
        return self._token_matrix

    def project_tokens(self, vectors: np.ndarray) -> np.ndarray:
        """Model token vectors -> unit rows in the index's token basis (float32)."""
        return project_tokens(vectors, self.token_basis)

    def chunk_tokens(self, row: int) -> TokenVectors:
        start, end = self.token_offsets[row], self.token_offsets[row + 1]
        return self.token_ids[start:end], self.token_vectors[start:end]

    def token_idf(self, ids: np.ndarray) -> np.ndarray:
        """log((N + 1) / (df + 0.5)) per word piece, df = chunks containing it."""
        if self._token_df is None:
            chunk_of = np.repeat(np.arange(len(self.chunks)), np.diff(self.token_offsets))
            pairs = np.unique(np.stack([chunk_of, self.token_ids.astype(np.int64)]), axis=1)
            self._token_df = np.bincount(pairs[1], minlength=int(self.token_ids.max(initial=0)) + 1)
        ids = np.asarray(ids, dtype=np.int64)
        df = np.where(ids < len(self._token_df), self._token_df[np.minimum(ids, len(self._token_df) - 1)], 0)
        return np.log((len(self.chunks) + 1) / (df + 0.5))

    def document_frequency(self, term_id: int) -> int:
        indptr = self.bm25.scores["indptr"]
        return int(indptr[term_id + 1] - indptr[term_id])


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
                  dense, bm25, manifest, sentence_dense=sentence_dense)  # fmt: skip
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


def project_tokens(vectors: np.ndarray, basis: np.ndarray) -> np.ndarray:
    """Token vectors in the basis, each row of unit length (float32)."""
    projected = np.asarray(vectors, dtype=np.float32) @ basis
    projected /= np.clip(np.linalg.norm(projected, axis=1, keepdims=True), 1e-12, None)
    return projected


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


# ---- persistence -------------------------------------------------------------


@contextlib.contextmanager
def build_lock(index_dir: Path):
    """One builder at a time per index folder (advisory lock, freed on crash).

    Raises IndexLoadError when the folder cannot be made or the lock file opened.
    """
    try:
        index_dir.mkdir(parents=True, exist_ok=True)
        handle = open(index_dir / ".lock", "w")
    except OSError as exc:  # e.g. a path under a file: /dev/null/index
        raise IndexLoadError(f"index path {index_dir} cannot be used: {exc.strerror}") from None
    with handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def save_index(index: Index, index_dir: Path) -> Path:
    """Write a new version folder, then switch CURRENT to it atomically."""
    index_dir = Path(index_dir)
    index_dir.mkdir(parents=True, exist_ok=True)
    for stale in index_dir.glob(".tmp-*"):
        shutil.rmtree(stale, ignore_errors=True)
    tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=index_dir))
    try:
        _write_jsonl(tmp / "chunks.jsonl", (_chunk_record(c, r) for c, r in
                                            zip(index.chunks, index.chunk_sentence_rows)))  # fmt: skip
        _write_jsonl(tmp / "sentences.jsonl",
                     ({"doc": d, "start": s.start, "end": s.end, "text": s.text}
                      for d, s in index.sentences))  # fmt: skip
        np.save(tmp / "chunk_vectors.npy", index.chunk_vectors, allow_pickle=False)
        np.save(tmp / "sentence_vectors.npy", index.sentence_vectors, allow_pickle=False)
        ann.save(index.dense, tmp / "dense.faiss")
        ann.save(index.sentence_dense, tmp / "sentences.faiss")
        index.bm25.save(str(tmp / "bm25"), show_progress=False)
        if index.has_tokens:
            for name in ("token_ids", "token_offsets", "token_basis", "token_vectors"):
                np.save(tmp / f"{name}.npy", getattr(index, name), allow_pickle=False)
        files = {}
        for path in sorted(p for p in tmp.rglob("*") if p.is_file()):
            _fsync_file(path)
            files[path.relative_to(tmp).as_posix()] = _sha256_file(path)
        manifest = {**index.manifest, "files": files}
        manifest_bytes = json.dumps(manifest, indent=2).encode()
        _write_bytes(tmp / "manifest.json", manifest_bytes)
        _fsync_dir(tmp)
        # Named by the manifest's hash, which load_index checks, plus a nonce: a
        # rebuild of identical content never lands on an old (perhaps damaged) folder.
        version = f"v-{hashlib.sha256(manifest_bytes).hexdigest()[:16]}-{os.urandom(4).hex()}"
        final = index_dir / version
        previous = _current_version(index_dir)
        os.rename(tmp, final)
        _write_bytes(index_dir / "CURRENT.tmp", version.encode())
        os.replace(index_dir / "CURRENT.tmp", index_dir / "CURRENT")
        _fsync_dir(index_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    # The version live until now stays: another process may be loading it this moment.
    for old in index_dir.glob("v-*"):
        if old.name not in (version, previous):
            shutil.rmtree(old, ignore_errors=True)
    index.manifest, index.path = manifest, final
    return final


def load_index(index_dir: Path, *, verify: bool = True) -> Index:
    """Load the live version. Checksums are verified before FAISS reads a byte.

    A build elsewhere may switch CURRENT and delete the version being read; then
    the new live version is read instead (once).
    Raises IndexLoadError (missing, corrupt, or of another format version).
    """
    index_dir = Path(index_dir)
    version = _read_current(index_dir)
    try:
        return _load_version(index_dir, version, verify=verify)
    except IndexLoadError:
        now = _current_version(index_dir)
        if now in (None, version):
            raise
        return _load_version(index_dir, now, verify=verify)


def _read_current(index_dir: Path) -> str:
    try:
        version = (index_dir / "CURRENT").read_text().strip()
    except (OSError, ValueError):
        raise IndexLoadError(f"no index in {index_dir}") from None
    if not _VERSION_NAME.fullmatch(version):
        raise IndexLoadError(f"{index_dir / 'CURRENT'} does not name an index version")
    return version


def _current_version(index_dir: Path) -> str | None:
    """The version CURRENT names, or None when there is none or it is unreadable."""
    try:
        return _read_current(index_dir)
    except IndexLoadError:
        return None


def _load_version(index_dir: Path, version: str, *, verify: bool) -> Index:
    folder = index_dir / version
    try:
        manifest_bytes = (folder / "manifest.json").read_bytes()
        manifest = json.loads(manifest_bytes)
    except (OSError, ValueError) as exc:
        raise IndexLoadError(f"unreadable manifest in {folder}: {exc}") from None
    if verify and version[2:18] != hashlib.sha256(manifest_bytes).hexdigest()[:16]:
        raise IndexLoadError("index file manifest.json is corrupt (checksum)")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise IndexLoadError(f"index format {manifest.get('format_version')} is not {FORMAT_VERSION}")
    if verify:
        for name, digest in manifest.get("files", {}).items():
            try:
                intact = _sha256_file(folder / name) == digest
            except OSError:  # missing, or deleted while being read
                intact = False
            if not intact:
                raise IndexLoadError(f"index file {name} is missing or corrupt (checksum)")
    try:
        import bm25s

        chunk_records = _read_jsonl(folder / "chunks.jsonl")
        sentence_records = _read_jsonl(folder / "sentences.jsonl")
        sentences = [(r["doc"], Sentence(r["text"], r["start"], r["end"])) for r in sentence_records]
        docs = manifest["documents"]
        chunks = [
            Chunk(r["doc"], docs[r["doc"]]["title"], r["section"], r["start"], r["end"], r["text"],
                  tuple(sentences[k][1] for k in r["sentences"]))  # fmt: skip
            for r in chunk_records
        ]
        index = Index(
            chunks=chunks,
            chunk_vectors=np.load(folder / "chunk_vectors.npy", allow_pickle=False),
            sentences=sentences,
            sentence_vectors=np.load(folder / "sentence_vectors.npy", allow_pickle=False),
            chunk_sentence_rows=[r["sentences"] for r in chunk_records],
            dense=ann.load(folder / "dense.faiss", manifest["ann"]),
            sentence_dense=ann.load(folder / "sentences.faiss", manifest["sentence_ann"]),
            bm25=bm25s.BM25.load(str(folder / "bm25"), show_progress=False, verbosity=0),
            manifest=manifest,
            path=folder,
        )
        if manifest.get("token_vectors"):
            for name in ("token_ids", "token_offsets", "token_basis", "token_vectors"):
                setattr(index, name, np.load(folder / f"{name}.npy", allow_pickle=False))
    except Exception as exc:  # any parse failure means the same to the user
        raise IndexLoadError(f"cannot read index in {folder}: {exc}") from None
    if index.dense.ntotal != len(chunks) or len(index.chunk_vectors) != len(chunks):
        raise IndexLoadError(f"index in {folder} is inconsistent (counts differ)")
    if index.has_tokens:
        offsets = index.token_offsets
        if (len(offsets) != len(chunks) + 1 or offsets[0] != 0 or np.any(np.diff(offsets) < 0)
                or offsets[-1] != len(index.token_ids)
                or index.token_basis.shape[0] != index.chunk_vectors.shape[1]
                or index.token_vectors.shape != (len(index.token_ids), index.token_basis.shape[1])):  # fmt: skip
            raise IndexLoadError(f"index in {folder} is inconsistent (token vectors)")
    return index


def _chunk_record(chunk: Chunk, sentence_rows: list[int]) -> dict:
    return {"doc": chunk.doc, "section": chunk.section, "start": chunk.start, "end": chunk.end,
            "text": chunk.text, "sentences": sentence_rows}  # fmt: skip


def _write_jsonl(path: Path, records) -> None:
    data = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
    _write_bytes(path, data.encode("utf-8"))


def _read_jsonl(path: Path) -> list[dict]:
    with open(path, encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def _write_bytes(path: Path, data: bytes) -> None:
    with open(path, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


def _fsync_file(path: Path) -> None:
    with open(path, "rb+") as handle:
        os.fsync(handle.fileno())


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
