"""Where the index lives: a folder (the default, persist.py) or a shared Milvus store.

Both hold the same thing, one complete version at a time that readers see change
atomically: the chunks, sentences, their vectors, the BM25 side and the token
vectors. A store is named in the settings (`Settings.store`, `--store` on the command
line):

    ""                          the index folder (index/): FAISS and files, one machine
    milvus://HOST:PORT[/DB]     a Milvus server (a cluster, or `milvus-lite server`), in
                                its database DB (made if missing; default: "default")
    milvus-lite:PATH            Milvus Lite in this process, its data in a local file

A shared store (Milvus) also keeps every document's extracted text, so that a replica
answers and cites a document another replica added without having its file.
Does not build indexes (build.py) or decide when to (sync.py).
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

from ..errors import SettingsError
from ..ingest.documents import Document
from .index import Index
from .persist import build_lock, load_index, save_index

_MILVUS_URI = re.compile(r"^milvus://(?P<host>\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+):(?P<port>\d{1,5})"
                         r"(?:/(?P<database>[A-Za-z_][A-Za-z0-9_]{0,63})?)?$")


class Store(Protocol):
    """The live version of one index, read and replaced whole."""

    uri: str
    shared: bool  # documents live in the store (several replicas), not only in folders

    def load(self) -> Index:
        """The live version; IndexLoadError when there is none or it is unreadable."""

    def version(self) -> str | None:
        """The live version's name, cheaply (what a replica polls); None: no index yet."""

    def save(self, index: Index, documents: Sequence[Document], *, sources: dict | None = None,
             base: str | None = ...) -> Index:  # fmt: skip
        """Store `index` as the new live version; the index as readers now load it.
        A shared store keeps `documents` too, with their `sources` ({"source", "added"}),
        and raises StoreConflict when the live version is no longer `base`."""

    def lock(self) -> contextlib.AbstractContextManager:
        """One builder at a time (per machine; a shared store also checks, when it
        switches versions, that no other builder switched it first)."""


class FolderStore:
    """The index folder: FAISS and files (persist.py), one process's memory."""

    shared = False

    def __init__(self, index_dir: Path):
        self.index_dir = Path(index_dir)
        self.uri = str(self.index_dir)

    def load(self) -> Index:
        return load_index(self.index_dir)

    def version(self) -> str | None:
        try:  # "" (not None) for a CURRENT that is there but empty: an index, damaged
            return (self.index_dir / "CURRENT").read_text(errors="replace").strip()
        except OSError:
            return None

    def save(self, index: Index, documents: Sequence[Document], *, sources: dict | None = None,
             base: str | None = ...) -> Index:  # fmt: skip
        save_index(index, self.index_dir)  # one process builds per folder (lock): no conflict
        return index

    def lock(self):
        return build_lock(self.index_dir)


def check_store_uri(uri: str) -> str:
    """The URI as given when it names a store this program can open; SettingsError
    (one line) otherwise."""
    uri = (uri or "").strip()
    if not uri or _MILVUS_URI.match(uri):
        if uri:
            port = int(_MILVUS_URI.match(uri)["port"])
            if not 0 < port < 65536:
                raise SettingsError(f"store {uri!r}: the port must be from 1 to 65535")
        return uri
    if uri.startswith("milvus-lite:") and uri[len("milvus-lite:"):].strip():
        return uri
    raise SettingsError(f"store {uri!r} is not one of: milvus://HOST:PORT[/DATABASE], milvus-lite:PATH "
                        "(or nothing, for the index folder)")  # fmt: skip


_OPEN: dict[tuple[str, str], Store] = {}  # one client per store and cache, reused by every call


def open_store(settings) -> Store:
    """The store the settings name (the index folder when they name none)."""
    uri = check_store_uri(getattr(settings, "store", ""))
    if not uri:
        return FolderStore(Path(settings.index_dir))
    cache = Path(settings.index_dir) / "store-cache"
    key = (uri, str(cache.resolve()))
    if key not in _OPEN:
        from .milvus import MilvusStore  # pymilvus only where a Milvus store is asked for

        _OPEN[key] = MilvusStore(uri, cache_dir=cache)
    return _OPEN[key]


__all__ = ["FolderStore", "Store", "check_store_uri", "open_store"]
