"""Bring the saved index up to date with the documents folder, building only what changed.

Loads the live version, compares its manifest with the documents and the
settings, and rebuilds (reusing unchanged chunks' vectors) under the folder's
build lock when they differ. Does not answer questions.
"""

from __future__ import annotations

import logging
from pathlib import Path

from ..config import Settings
from ..embed.base import Embedder
from ..errors import IndexLoadError, StoreConflict
from ..ingest import library
from ..ingest.documents import Document, load_documents
from .build import build_index
from .index import Index
from .stores import open_store

CONFLICT_RETRIES = 3  # a shared store switched by another replica during a build

log = logging.getLogger(__name__)


def sync_index(settings: Settings, embedder: Embedder, *, current: Index | None = None,
               progress=None, rebuild: bool = False, remove=(), add=()):  # fmt: skip
    """Documents and an index that matches them, building only what changed.

    The documents are the seeds folder's and the library's. With a shared store, the
    added documents are the store's (whichever replica added them), less `remove`, and
    the library's only when the store holds them or they are in `add` (being added now):
    a document another replica removed does not come back from this one's library.
    Returns (index, documents, warnings, stats); stats is None when nothing was built.
    """
    if Path(settings.index_dir).exists() and not Path(settings.index_dir).is_dir():
        raise IndexLoadError(f"index path {settings.index_dir} is not a folder")
    store = open_store(settings)
    local, warnings = load_documents(
        settings.seeds_dir, max_file_bytes=settings.max_file_bytes, library_dir=settings.library_dir,
        cache_dir=settings.extracted_dir, max_binary_bytes=settings.max_binary_bytes,
    )  # fmt: skip
    index = current
    if index is None and not rebuild:
        try:
            index = store.load()
        except IndexLoadError as exc:
            if _live_version(store) is not None:
                warnings.append(f"rebuilding the index: {exc}")
    for attempt in range(CONFLICT_RETRIES):
        documents, sources = _with_stored(local, index, settings, remove, add) if store.shared else (local, {})
        reason = None if rebuild else _stale_reason(index, documents, embedder, settings)
        if not rebuild and reason is None:
            return index, documents, warnings, None
        log.info("building index: %s", reason or "rebuild requested")
        # The version this build starts from: a shared store refuses the switch if another
        # replica has switched it since (None: the store was empty).
        base = Path(index.path).name if index is not None and index.path else _live_version(store)
        with store.lock():
            previous = None if rebuild else index
            built, stats = build_index(documents, embedder, settings, previous=previous, progress=progress)
            try:
                return store.save(built, documents, sources=sources, base=base), documents, warnings, stats
            except StoreConflict:
                if attempt == CONFLICT_RETRIES - 1:
                    raise
                index, rebuild = store.load(), False  # build again on what the other replica stored
            except OSError as exc:
                if store.shared:
                    raise
                warnings.append(f"index kept in memory only, cannot write {settings.index_dir}: {exc}")
                return built, documents, warnings, stats
    raise AssertionError("unreachable")


def _live_version(store) -> str | None:
    try:
        return store.version()
    except IndexLoadError:  # an unreadable live row: replaced by this build
        return None


def _with_stored(local: list[Document], index: Index | None, settings: Settings, remove, add
                 ) -> tuple[list, dict]:  # fmt: skip
    """The seeds, the store's added documents and the library's being added (`add`),
    without `remove`; and each one's source ("seeds" or "added", with when)."""
    entries, _ = library.read_entries(settings.library_dir)
    removed, adding = set(remove), set(add)
    stored = index.stored_added if index is not None else {}
    documents = [d for d in local if d.path not in removed
                 and (d.path not in entries or d.path in stored or d.path in adding)]  # fmt: skip
    sources = {d.path: {"source": "added", "added": entries[d.path].get("added", "")} if d.path in entries
               else {"source": "seeds"} for d in documents}  # fmt: skip
    for path, (doc, info) in stored.items():
        if path not in sources and path not in removed:
            documents.append(doc)
            sources[path] = dict(info)
    return documents, sources


def _stale_reason(index: Index | None, documents, embedder: Embedder, settings) -> str | None:
    if index is None:
        return "no index yet"
    manifest = index.manifest
    if manifest.get("model") != embedder.name or manifest.get("dimension") != embedder.dimension:
        return "the configured model differs from the index's"
    if manifest.get("chunking") != settings.chunking_signature:
        return "chunking settings changed"
    if hasattr(embedder, "encode_with_tokens") and (
        not index.has_tokens or manifest.get("token_dims") != settings.token_dims
    ):
        return "the index has no token vectors of the configured size"
    saved = {path: info["sha256"] for path, info in manifest.get("documents", {}).items()}
    if saved != {d.path: d.sha256 for d in documents}:
        return "documents added, changed or removed"
    if any(manifest["documents"][d.path].get("title") != d.title for d in documents):
        return "document titles changed"
    return None
