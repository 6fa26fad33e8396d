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
from ..errors import IndexLoadError
from ..ingest.documents import load_documents
from .build import build_index
from .index import Index
from .persist import build_lock, load_index, save_index

log = logging.getLogger(__name__)


def sync_index(settings: Settings, embedder: Embedder, *, current: Index | None = None,
               progress=None, rebuild: bool = False):  # fmt: skip
    """Documents and an index that matches them, building only what changed.

    Returns (index, documents, warnings, stats); stats is None when nothing was built.
    """
    if Path(settings.index_dir).exists() and not Path(settings.index_dir).is_dir():
        raise IndexLoadError(f"index path {settings.index_dir} is not a folder")
    documents, warnings = load_documents(
        settings.seeds_dir, max_file_bytes=settings.max_file_bytes, library_dir=settings.library_dir,
        cache_dir=settings.extracted_dir, max_binary_bytes=settings.max_binary_bytes,
    )  # fmt: skip
    index = current
    if index is None and not rebuild:
        try:
            index = load_index(settings.index_dir)
        except IndexLoadError as exc:
            if (Path(settings.index_dir) / "CURRENT").exists():
                warnings.append(f"rebuilding the index: {exc}")
    reason = None if rebuild else _stale_reason(index, documents, embedder, settings)
    if not rebuild and reason is None:
        return index, documents, warnings, None
    log.info("building index: %s", reason or "rebuild requested")
    with build_lock(Path(settings.index_dir)):
        previous = None if rebuild else index
        index, stats = build_index(documents, embedder, settings, previous=previous, progress=progress)
        try:
            save_index(index, Path(settings.index_dir))
        except OSError as exc:
            warnings.append(f"index kept in memory only, cannot write {settings.index_dir}: {exc}")
    return index, documents, warnings, stats


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
