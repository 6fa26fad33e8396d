"""The in-memory index: chunks, sentence and chunk vectors, FAISS, BM25 and the
per-index tables read by retrieval and answers (terms, names, token vectors).

Built by build.py, saved and loaded by persist.py (which documents the folder
layout). Does not decide what to rebuild (pipeline.py does) and does not rank anything.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..embed.base import TokenVectors
from ..ingest.chunking import Chunk, Sentence
from ..text.terms import CASED_WORD, terms, written_name

FORMAT_VERSION = 7  # 4: token vectors for late interaction; 5: only their projection kept;
# 6: each sentence's named entities (ingest/entities.py); 7: and its parse
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
    # Per sentence row, its named entities (start, end, label) in the sentence's characters
    # of the original text (ingest/entities.py).
    sentence_entities: list[list[tuple[int, int, str]]] = field(default_factory=list)
    # Per sentence row, its tokens (start, end, part of speech, dependency, head's position
    # among them), in the same characters (ingest/entities.py; answer/phrases.py reads them).
    sentence_tokens: list[list[tuple[int, int, str, str, int]]] = field(default_factory=list)
    # A shared store's copy of the documents (store/milvus.py): (Document, {"source",
    # "added"}) per document; empty for the index folder, whose documents are files.
    stored_documents: tuple = ()
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
    def stored_added(self) -> dict[str, tuple]:
        """Of stored_documents, those added (not the seeds): path -> (Document, info)."""
        return {doc.path: (doc, info) for doc, info in self.stored_documents if info.get("source") == "added"}

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


def project_tokens(vectors: np.ndarray, basis: np.ndarray) -> np.ndarray:
    """Token vectors in the basis, each row of unit length (float32)."""
    projected = np.asarray(vectors, dtype=np.float32) @ basis
    projected /= np.clip(np.linalg.norm(projected, axis=1, keepdims=True), 1e-12, None)
    return projected
