"""The Assistant: where documents, index, retrieval and answers meet.

`Assistant.load` reads the seeds, loads the saved index and brings it up to date
(only changed documents' chunks are embedded again); `ask` answers; `cite`
looks a citation ID up. The live index is swapped in one assignment, so a
rebuild never disturbs questions being answered. Does not parse arguments or
render anything.
"""

from __future__ import annotations

import re
from collections import ChainMap
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from .answer.citations import NOT_IN_DOCUMENTS, Answer, Citation, answer_text, citation_id, clean_citation_id
from .answer.compose import compose_answer
from .answer.confidence import DEFAULT_WEIGHTS, feature_matrix, type_gate
from .answer.phrases import PHRASE_FEATURES, RIGHT_F1
from .answer.selection import selector_names
from .config import Settings, load_settings
from .embed import adapter
from .embed.base import Embedder, bundled_model_dir
from .embed.sbert import SentenceTransformerEmbedder
from .errors import CitationNotFoundError, DocumentError, UsageError
from .ingest import library
from .ingest.documents import Document, decode_bytes
from .search.aliases import NAMES, WRITTEN
from .search.query import Query, make_query, pooled_without, relation_pieces
from .search.retrieval import MODES, Hit, retrieve
from .store.build import BuildStats
from .store.index import Index
from .store.stores import check_store_uri, open_store
from .store.sync import sync_index
from .text.terms import words

# What the layers above (web/, evaluation/, cli.py) may use besides the Assistant: the
# values it hands out and the confidence model calibration refits. They import the
# stages only through this module (pyproject.toml, [tool.importlinter]).
__all__ = [
    "DEFAULT_WEIGHTS", "NOT_IN_DOCUMENTS", "PHRASE_FEATURES", "RIGHT_F1", "Answer", "Assistant", "BuildStats", "Citation", "Hit",
    "Query", "answer_text", "bundled_model_dir", "check_question", "check_store_uri", "check_turns",
    "decode_bytes",
    "feature_matrix", "prepare_files", "selector_names", "type_gate",
]  # fmt: skip

_CITATION_ID = re.compile(r"^(?P<doc>.+):(?P<start>\d+)-(?P<end>\d+)(?:#(?P<hash>[0-9a-f]{6}))?$")


@dataclass(frozen=True)
class _State:
    index: Index
    documents: dict[str, Document]
    surface_words: tuple[str, ...]
    texts: dict[str, str]  # document path -> original text, for verbatim quotes


class Assistant:
    def __init__(self, index: Index, documents: Sequence[Document], embedder: Embedder,
                 settings: Settings, *, warnings: Sequence[str] = (),
                 build_stats: BuildStats | None = None):  # fmt: skip
        self.embedder = embedder
        self.settings = settings
        self.warnings = list(warnings)
        self.build_stats = build_stats
        self._state = _make_state(index, documents)

    @classmethod
    def load(
        cls,
        seeds_dir: str | Path | None = None,
        index_dir: str | Path | None = None,
        *,
        settings: Settings | None = None,
        embedder: Embedder | None = None,
        progress=None,
        rebuild: bool = False,
    ) -> Assistant:
        """Load the index of seeds_dir from index_dir, building or updating it as needed.

        A folder not given is the settings' (by default `seeds/` and `index/`): settings
        naming their own folders are not overridden by this method's defaults.
        """
        settings = settings or load_settings()
        settings = settings.with_(seeds_dir=Path(seeds_dir or settings.seeds_dir),
                                  index_dir=Path(index_dir or settings.index_dir))  # fmt: skip
        # Questions are encoded with onnxruntime on an export kept beside the index.
        embedder = embedder or SentenceTransformerEmbedder(
            settings.model_dir, query_cache_dir=Path(settings.index_dir) / "encoder"
        )
        index, documents, warnings, stats = sync_index(settings, embedder, progress=progress,
                                                       rebuild=rebuild)  # fmt: skip
        return cls(index, documents, embedder, settings, warnings=warnings, build_stats=stats)

    @property
    def index(self) -> Index:
        return self._state.index

    def refresh(self, *, progress=None, remove=(), add=()) -> BuildStats | None:
        """Re-read the seeds and update the index; swap it in only once it is complete.
        With a shared store: `add`, library documents to put in it (add_documents);
        `remove`, documents it holds that are to go (remove_document)."""
        index, documents, warnings, stats = sync_index(
            self.settings, self.embedder, current=self._state.index, progress=progress, remove=remove,
            add=add,
        )  # fmt: skip
        self.warnings = warnings
        self._state = _make_state(index, documents)
        return stats

    @property
    def shared_store(self) -> bool:
        """The index lives in a store other replicas share (a Milvus store)."""
        return bool(self.settings.store)

    def follow_store(self) -> bool:
        """Load the shared store's live version if another replica replaced this one's;
        True when it did. Questions in flight finish on the index they started with."""
        if not self.shared_store:
            return False
        store = open_store(self.settings)
        current = self._state.index
        live = store.version()
        if live is None or (current.path is not None and Path(current.path).name == live):
            return False
        index = store.load()
        self._state = _make_state(index, [doc for doc, _ in index.stored_documents])
        return True

    def ask(self, question: str, history: Sequence[str] = (), *, k: int | None = None,
            mode: str | None = None) -> Answer:  # fmt: skip
        """Answer from the documents, with citations, or abstain."""
        return self.ask_batch([question], [history], k=k, mode=mode)[0]

    def ask_batch(self, questions: Sequence[str], histories: Sequence[Sequence[str]] | None = None,
                  *, k: int | None = None, mode: str | None = None) -> list[Answer]:  # fmt: skip
        """Answer several questions with ONE encode call for all their query vectors
        (what concurrent web requests share), then retrieve and answer each: every
        Answer is the one `ask` gives for that question alone.

        Raises UsageError if any question, history or option is invalid; then nothing
        is answered, so callers serving many users check each question first.
        """
        k, mode = self.check_options(k, mode)
        state = self._state  # one consistent snapshot for the whole request
        queries = self.queries(questions, histories, state=state)
        matrix = self.settings.query_adapter
        answers = []
        for query in queries:
            if matrix is not None:
                query = replace(query, model_vectors=(query.vector, query.own_vector),
                                vector=adapter.apply(matrix, query.vector[None])[0],
                                own_vector=None if query.own_vector is None
                                else adapter.apply(matrix, query.own_vector[None])[0])  # fmt: skip
            hits = retrieve(state.index, query, mode=mode, k=k, settings=self.settings)
            answer = compose_answer(state.index, query, hits, state.texts, self.settings)
            answer.citations = [_paged(c, state.documents) for c in answer.citations]
            answer.closest = [_paged(c, state.documents) for c in answer.closest]
            answers.append(answer)
        return answers

    def queries(self, questions: Sequence[str], histories: Sequence[Sequence[str]] | None = None,
                *, state: _State | None = None) -> list[Query]:  # fmt: skip
        """The questions as the engine reads them (follow-ups joined, spelling, aliases),
        embedded in ONE encode call, before the query adapter: what `ask_batch` answers
        and what `--calibrate` fits the adapter on. Raises UsageError as `ask_batch` does."""
        histories = [()] * len(questions) if histories is None else list(histories)
        if len(histories) != len(questions):
            raise UsageError("give one history per question")
        limit = self.settings.max_question_chars
        questions = [check_question(q, limit) for q in questions]
        histories = [check_turns(turns, limit) for turns in histories]
        state = state or self._state
        texts_to_embed: list[str] = []
        per_query: list[int] = []

        def defer(texts: Sequence[str]) -> np.ndarray:  # vectors come below, in one call
            texts_to_embed.extend(texts)
            per_query.append(len(texts))
            return np.zeros((len(texts), self.embedder.dimension), dtype=np.float32)

        is_word = getattr(self.embedder, "is_word", None)
        names = ChainMap(state.index.proper_names, WRITTEN)
        queries = [make_query(q, h, encode=defer, known_stems=state.index.vocabulary,
                              surface_words=state.surface_words, is_word=is_word, names=names)
                   for q, h in zip(questions, histories)]  # fmt: skip
        if len(per_query) != len(queries):  # make_query calls encode exactly once
            raise RuntimeError("make_query did not embed once per question")
        vectors, tokens = _query_encoder(self.embedder)(texts_to_embed) if queries else ([], [])
        starts = np.cumsum([0, *per_query[:-1]]).tolist()
        piece = getattr(getattr(self.embedder, "tokenizer", None), "id_to_token", lambda i: None)
        out = []
        for query, start, count in zip(queries, starts, per_query):
            ids = tokens[start][0] if tokens[start] is not None else ()
            groups = relation_pieces(ids, query.asked.relation, piece)
            pooled = pooled_without(tokens[start], groups)
            out.append(replace(query, vector=vectors[start], tokens=tokens[start],
                               relation_groups=tuple(tuple(g) for g in groups),
                               own_vector=vectors[start + 1] if count == 2 else None,
                               raw_vector=None if pooled is None else pooled[0],
                               ablated_vector=None if pooled is None else pooled[1]))
        return out

    def fit_query_adapter(self, vectors: np.ndarray, chunk_rows: Sequence[Sequence[int]],
                          sentence_rows: Sequence[Sequence[int]]) -> np.ndarray:  # fmt: skip
        """A query adapter (embed/adapter.py) fitted on these question vectors (as
        `queries` gives them) and the index rows holding each one's evidence."""
        index, settings = self.index, self.settings
        return adapter.fit(vectors, chunk_rows, sentence_rows, index.chunk_vectors,
                           index.sentence_vectors, l2=settings.adapter_l2,
                           temperature=settings.adapter_temperature)  # fmt: skip

    def check_options(self, k: int | None = None, mode: str | None = None) -> tuple[int, str]:
        """(k, mode) with the settings' defaults filled in; UsageError if either is invalid."""
        k = self.settings.top_k if k is None else k
        mode = mode or self.settings.mode
        if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= 100:
            raise UsageError("k must be a whole number from 1 to 100")
        if mode not in MODES:
            raise UsageError(f"mode must be one of: {', '.join(MODES)}")
        return k, mode

    def add_documents(self, files: Sequence[tuple[str, bytes]], *, title: str = "",
                      progress=None) -> BuildStats | None:  # fmt: skip
        """Add files (name, bytes) to the managed library and index them: only their
        chunks are embedded, and the new index is swapped in whole. All or nothing:
        DocumentError for the first file that cannot be added (its type, size, name or
        content), before anything is written; a failed build puts the library back."""
        settings = self.settings
        ready = files and all(isinstance(f, library.NewDocument) for f in files)  # from prepare_files
        prepared = list(files) if ready else prepare_files(files, settings, title=title)
        with library.locked(settings.library_dir):
            if self.shared_store:
                self._forget_removed_elsewhere({d.name for d in prepared})
            before = library.add(settings.library_dir, prepared, taken=self._seeds_names())
            try:
                stats = self.refresh(progress=progress, add={d.name for d in prepared})
                missing = [d.name for d in prepared if d.name not in self._state.documents]
                if missing:
                    reason = next((w for w in self.warnings if missing[0] in w), "it holds no text")
                    raise DocumentError(f"{missing[0]} was not added: {reason}")
            except BaseException:
                library.restore(settings.library_dir, before)
                if any(d.name in self._state.documents for d in prepared):
                    self.refresh()
                raise
        return stats

    def remove_document(self, name: str, *, progress=None) -> BuildStats | None:
        """Take an added document out of the library and the index."""
        name = (name or "").strip()
        if name in self._seeds_names():
            raise DocumentError(f"{name} is in the seeds folder ({self.settings.seeds_dir}): "
                                "delete the file there to remove it")  # fmt: skip
        settings = self.settings
        with library.locked(settings.library_dir):
            entries, _ = library.read_entries(settings.library_dir)
            if self.shared_store and name not in entries and name in self._state.documents:
                return self.refresh(progress=progress, remove={name})  # added by another replica
            before = library.remove(settings.library_dir, name)
            try:
                stats = self.refresh(progress=progress, remove={name})
            except BaseException:
                library.restore(settings.library_dir, before)
                raise
            library.collect(settings.library_dir)
        return stats

    def documents(self) -> list[dict]:
        """One row per document: path (the name citations use), title, format, pages,
        chunks, where it came from and when it was added."""
        state = self._state
        entries, _ = library.read_entries(self.settings.library_dir)
        entries = {**{path: info for path, (_, info) in state.index.stored_added.items()},
                   **entries}  # another replica's too
        chunks: dict[str, int] = {}
        for chunk in state.index.chunks:
            chunks[chunk.doc] = chunks.get(chunk.doc, 0) + 1
        return [{"path": d.path, "title": d.title, "format": d.format,
                 "pages": len(d.pages) or None, "chunks": chunks.get(d.path, 0),
                 "source": "added" if d.path in entries else "seeds",
                 "added": entries.get(d.path, {}).get("added", "")}
                for d in state.documents.values()]  # fmt: skip

    def _forget_removed_elsewhere(self, names: set[str]) -> None:
        """Of `names` (being added), the library entries of documents the shared store no
        longer holds (another replica removed them): dropped, so the new file replaces
        the old. Other such entries stay as they are: inert, never put back in the store."""
        entries, _ = library.read_entries(self.settings.library_dir)
        stale = [n for n in entries if n in names and n not in self._state.documents]
        for name in stale:
            library.remove(self.settings.library_dir, name)
        if stale:
            library.collect(self.settings.library_dir)

    def _seeds_names(self) -> set[str]:
        entries, _ = library.read_entries(self.settings.library_dir)
        added = self._state.index.stored_added
        return {path for path in self._state.documents if path not in entries and path not in added}

    def cite(self, citation: str) -> Citation:
        """The passage behind a citation ID; `stale=True` with the nearest current
        passage when the document changed under it."""
        state = self._state
        given = (citation or "").strip()
        # As given when that names a document (a path may hold anything), else as copied
        # out of Markdown (clean_citation_id: stray escapes, backticks, line breaks).
        match = _CITATION_ID.match(given)
        if match is None or match["doc"] not in state.documents:
            match = _CITATION_ID.match(clean_citation_id(given)) or match
        if not match:
            shown = " ".join(given.split())[:200]
            raise CitationNotFoundError(f"not a citation ID: “{shown}” (expected doc:start-end#hash)")
        doc_path, start, end = match["doc"], int(match["start"]), int(match["end"])
        doc = state.documents.get(doc_path)
        if doc is None:
            raise CitationNotFoundError(f"no document {doc_path!r} in the index (removed or renamed)")
        quote = doc.text[start:end]
        current = end <= len(doc.text) and start < end and (
            match["hash"] is None or citation_id(doc_path, start, end, quote) == match[0]
        )
        # Judged against the file as it is now, too: an edit the index has not caught up
        # with yet makes the cited span stale at once unless it still reads the same.
        live = _live_text(Path(self.settings.seeds_dir) / doc_path)
        if current and live is not None and live != doc.text:
            current = live[start:end] == quote
        chunks = [c for c in state.index.chunks if c.doc == doc_path]
        if current:
            chunk = _containing_chunk(chunks, start, end)
            if chunk is not None:
                return _citation(doc, chunk, start, end)
        nearest = _nearest_sentence(chunks, start, end)
        if nearest is None:
            raise CitationNotFoundError(f"{doc_path!r} has no passages")
        chunk, sentence = nearest
        return replace(_citation(doc, chunk, sentence.start, sentence.end), stale=True)


def _query_encoder(embedder: Embedder):
    """texts -> (vectors, token vectors per text or None): the embedder's question
    encoder (no torch import) if it has one, else `encode`."""
    with_tokens = getattr(embedder, "encode_queries_with_tokens", None)
    if with_tokens is not None:
        return with_tokens
    plain = getattr(embedder, "encode_queries", embedder.encode)
    return lambda texts: (plain(texts), [None] * len(texts))


def prepare_files(files: Sequence[tuple[str, bytes]], settings: Settings, *, title: str = ""
                  ) -> list[library.NewDocument]:  # fmt: skip
    """Files (name, bytes) checked and read, ready for `Assistant.add_documents`; nothing
    is written. DocumentError for the first that cannot be added."""
    if not files:
        raise UsageError("no files to add")
    prepared = []
    for name, data in files:
        textual = str(name).lower().endswith((".txt", ".md", ".markdown"))
        cap = settings.max_file_bytes if textual else settings.max_binary_bytes
        prepared.append(library.prepare(name, data, max_bytes=cap, title=title))
    return prepared


def check_question(question, limit: int) -> str:
    if question is None or not isinstance(question, str):
        raise UsageError("the question must be text")
    question = question.replace("\x00", " ")
    question = question.encode("utf-8", "replace").decode("utf-8")  # lone surrogates
    if not question.strip():
        raise UsageError("the question is empty")
    if len(question) > limit:
        raise UsageError(f"the question is too long ({len(question)} characters; the limit is {limit})")
    return question.strip()


def check_turns(turns: Sequence[str], limit: int) -> list[str]:
    """Earlier user turns as `ask` uses them: blank ones dropped, each checked as a question."""
    return [check_question(h, limit) for h in turns if isinstance(h, str) and h.strip()]


def _make_state(index: Index, documents: Sequence[Document]) -> _State:
    surface = {w for c in index.chunks for w in words(c.text) if w.isalpha() and len(w) >= 4}
    # Names the documents call otherwise are spelling targets too: "Beijng" -> "beijing".
    surface = sorted(surface | {w for w in map(str.lower, NAMES) if w.isalpha() and len(w) >= 4})
    index.proper_names  # computed here, not by the first question (0.3 s at 10k chunks)
    return _State(index, {d.path: d for d in documents}, tuple(surface),
                  {d.path: d.text for d in documents})  # fmt: skip


def _live_text(path: Path) -> str | None:
    """The document file's text now (decoded as the index decodes it); None if unreadable."""
    try:
        decoded = decode_bytes(path.read_bytes())
    except OSError:
        return None
    return decoded[0] if decoded else None


def _containing_chunk(chunks, start: int, end: int):
    """The chunk holding the span; for a quote that runs on past its chunk (a list),
    the chunk it starts in."""
    inside = [c for c in chunks if c.start <= start and end <= c.end]
    inside = inside or [c for c in chunks if c.start <= start < c.end]
    return min(inside, key=lambda c: (abs((c.start + c.end) / 2 - (start + end) / 2), c.start), default=None)


def _nearest_sentence(chunks, start: int, end: int):
    pairs = [(c, s) for c in chunks for s in c.sentences]
    return min(pairs, key=lambda p: (abs(p[1].start - start) + abs(p[1].end - end), p[0].start), default=None)


def _citation(doc: Document, chunk, start: int, end: int) -> Citation:
    quote = doc.text[start:end]
    return Citation(0, citation_id(doc.path, start, end, quote), doc.path, doc.title, chunk.section,
                    start, end, quote, chunk.text, 1.0, chunk.id, chunk.start, chunk.end,
                    pages=doc.page_span(start, end))  # fmt: skip


def _paged(citation: Citation, documents: dict[str, Document]) -> Citation:
    """The citation with the pages its quote lies on, for a document that has pages."""
    doc = documents.get(citation.doc)
    span = doc.page_span(citation.start, citation.end) if doc is not None else None
    return citation if span is None else replace(citation, pages=span)
