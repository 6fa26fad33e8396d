"""The index in Milvus, through pymilvus: one store for several app replicas.

Four collections, named `<prefix>_<kind>`:

    chunks, sentences   one row per chunk (sentence): key, doc_key, vector. Keyed by
                        content (the document's path and sha256, the span, the model and
                        chunking): a rebuild upserts only rows not there yet, and a
                        document's rows are deleted by its doc_key. Searched by Milvus
                        (FLAT, inner product: exact, as FAISS's flat index).
    files               the rest of one version, as the index folder holds it
                        (persist.write_version: chunks.jsonl, sentences.jsonl, the vectors,
                        bm25/, token vectors) and every document's extracted text
                        (documents.jsonl), checksummed by its manifest.json, in parts.
    meta                the row "live": which version readers load. Written last, in one
                        upsert, so readers see the whole new version or the old one.

A replica loads the live version's files into a local cache (index/store-cache/) once,
checks their checksums, and sends its vector searches to Milvus, filtered to that
version's documents. BM25 stays bm25s's, loaded from the version's files: Milvus's own
BM25 analyses text its own way (docs/deploy.md). The version live before the newest is
kept (its files and rows) for readers still on it; older ones are deleted.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import logging
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..errors import IndexLoadError, StoreConflict, StoreError
from ..ingest.documents import Document, Paragraph
from . import ann
from .index import _VERSION_NAME, Index
from .persist import build_lock, read_version, version_name, write_version

PREFIX = "korea_talks"
PART_BYTES = 45_000  # of a file per row: 60,000 base64 characters, under VARCHAR's 65,535
BATCH_ROWS = 256  # rows per insert
KEY_CHARS = 32
RETRY_SECONDS = 5.0  # while the store is away, how long searches skip it before trying again
_DUMMY_DIM = 2  # Milvus wants a vector field in every collection; files and meta hold zeros
log = logging.getLogger(__name__)


class MilvusVectors:
    """One version's vectors in a Milvus collection, searched as FAISS is searched
    (`search(queries, k) -> (scores, ids)`, ids are rows of the version), so that
    ann.search and retrieval use it unchanged.

    When Milvus cannot be reached, the version's own copy of the vectors is searched
    exactly instead (the same top-k as Milvus's FLAT index), told once in the log: a
    replica keeps answering while the store is away; adding documents waits for it."""

    def __init__(self, store: MilvusStore, collection: str, keys: Sequence[str], doc_keys: Sequence[str],
                 vectors: np.ndarray):  # fmt: skip
        self._store, self._collection = store, collection
        self._rows = {key: row for row, key in enumerate(keys)}
        self.ntotal = len(keys)
        self._filter = _in_filter("doc_key", sorted(set(doc_keys)))
        self._vectors = vectors
        self._local = None  # faiss.IndexFlatIP over the copy, made at the first outage
        self.away = False
        self._retry_at = 0.0  # while away, Milvus is tried again only after this

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        queries = np.asarray(queries, dtype=np.float32)
        scores = np.full((len(queries), k), -np.inf, dtype=np.float32)
        ids = np.full((len(queries), k), -1, dtype=np.int64)
        if not len(queries) or k <= 0:
            return scores, ids
        if self.away and time.monotonic() < self._retry_at:
            return self._search_copy(queries, k)
        try:
            hits = self._store.call(
                "search", collection_name=self._collection, data=queries.tolist(), limit=k,
                filter=self._filter, output_fields=["key"], anns_field="vector",
                search_params={"metric_type": "IP"},
            )  # fmt: skip
        except StoreError as exc:
            if not self.away:
                log.warning("%s; searching this replica's copy of the vectors until it is back", exc)
            self.away, self._retry_at = True, time.monotonic() + RETRY_SECONDS
            return self._search_copy(queries, k)
        if self.away:
            log.warning("the store %s answers again", self._store.uri)
            self.away = False
        for i, row in enumerate(hits):
            j = 0
            for hit in row:
                found = self._rows.get(hit.get("key", hit.get("id")))
                if found is None or j >= k:  # not of this version: never a row number
                    continue
                scores[i, j], ids[i, j] = hit["distance"], found
                j += 1
        return scores, ids

    def _search_copy(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        if self._local is None:
            self._local = ann.build(self._vectors, {"type": "flat-ip"})
        return self._local.search(queries, min(k, self.ntotal))


class MilvusStore:
    shared = True

    def __init__(self, uri: str, *, cache_dir: Path, prefix: str = PREFIX, timeout: float = 60.0):
        self.uri = uri
        self._database = ""
        if uri.startswith("milvus://"):
            address, _, self._database = uri[len("milvus://"):].partition("/")
            self._address = "http://" + address
        else:  # milvus-lite:PATH, Milvus Lite inside this process
            self._address = str(Path(uri[len("milvus-lite:"):]).expanduser().resolve())
        self.cache_dir = Path(cache_dir)
        self.prefix = prefix
        self.timeout = timeout
        self._client = None
        self._connect_lock = threading.Lock()
        self._loaded: str | None = None  # the version last opened (kept in the cache)

    # -- the client ------------------------------------------------------------------

    def call(self, method: str, **kwargs):
        """A pymilvus call; StoreError (one line) when the server cannot be reached or
        refuses."""
        client = self._connect()
        try:
            return getattr(client, method)(timeout=self.timeout, **kwargs)
        except StoreError:
            raise
        except Exception as exc:  # pymilvus and grpc errors both mean the store failed
            raise StoreError(f"the store {self.uri} failed ({method}): {_one_line(exc)}") from None

    def _connect(self):
        with self._connect_lock:
            if self._client is None:
                try:
                    from pymilvus import MilvusClient

                    # Its iterators warn on every call that Milvus Lite gives them no
                    # timestamp, and it logs a traceback for every failed call, which
                    # StoreError already tells in one line (its loggers' levels are set
                    # when it is imported, hence here).
                    logging.getLogger("pymilvus").setLevel(logging.CRITICAL)
                    if not self._address.startswith("http"):
                        Path(self._address).parent.mkdir(parents=True, exist_ok=True)
                    client = MilvusClient(uri=self._address, timeout=min(self.timeout, 10.0), dedicated=True)
                    if self._database:
                        if self._database not in client.list_databases():
                            with contextlib.suppress(Exception):  # made meanwhile by another replica
                                client.create_database(self._database)
                        client.use_database(self._database)
                    self._client = client
                except Exception as exc:
                    raise StoreError(f"cannot reach the store {self.uri}: {_one_line(exc)}") from None
            return self._client

    def close(self) -> None:
        with self._connect_lock:
            if self._client is not None:
                with contextlib.suppress(Exception):
                    self._client.close()
                self._client = None

    def _name(self, kind: str) -> str:
        return f"{self.prefix}_{kind}"

    def _ensure_collections(self, dimension: int) -> None:
        from pymilvus import DataType, MilvusClient

        for kind, dim in (("chunks", dimension), ("sentences", dimension), ("files", _DUMMY_DIM),
                          ("meta", _DUMMY_DIM)):  # fmt: skip
            name = self._name(kind)
            if self.call("has_collection", collection_name=name):
                continue
            schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
            if kind in ("chunks", "sentences"):
                schema.add_field("key", DataType.VARCHAR, is_primary=True, max_length=KEY_CHARS)
                schema.add_field("doc_key", DataType.VARCHAR, max_length=KEY_CHARS)
            elif kind == "files":
                schema.add_field("key", DataType.VARCHAR, is_primary=True, max_length=600)
                schema.add_field("version", DataType.VARCHAR, max_length=64)
                schema.add_field("name", DataType.VARCHAR, max_length=512)
                schema.add_field("part", DataType.INT64)
                schema.add_field("data", DataType.VARCHAR, max_length=65_535)
            else:
                schema.add_field("key", DataType.VARCHAR, is_primary=True, max_length=64)
                schema.add_field("value", DataType.VARCHAR, max_length=65_535)
            schema.add_field("vector", DataType.FLOAT_VECTOR, dim=dim)
            indexes = MilvusClient.prepare_index_params()
            indexes.add_index(field_name="vector", index_type="FLAT", metric_type="IP")
            self.call("create_collection", collection_name=name, schema=schema, index_params=indexes,
                      consistency_level="Strong")  # fmt: skip
            self.call("load_collection", collection_name=name)

    # -- reading ---------------------------------------------------------------------

    def live(self) -> dict:
        """The live row's value ({"version": ...}); {} when the store holds no index."""
        if not self.call("has_collection", collection_name=self._name("meta")):
            return {}
        rows = self.call("query", collection_name=self._name("meta"), filter='key == "live"',
                         output_fields=["value"], consistency_level="Strong")  # fmt: skip
        if not rows:
            return {}
        try:
            value = json.loads(rows[0]["value"])
        except (ValueError, KeyError, TypeError):
            raise IndexLoadError(f"the store {self.uri} has an unreadable live version") from None
        if not _VERSION_NAME.fullmatch(str(value.get("version", ""))):
            raise IndexLoadError(f"the store {self.uri} names no index version")
        return value

    def version(self) -> str | None:
        return self.live().get("version")

    def load(self) -> Index:
        version = self.version()
        if version is None:
            raise IndexLoadError(f"no index in the store {self.uri} yet")
        folder = self.cache_dir / version
        for attempt in (1, 2):
            if not (folder / "manifest.json").exists():
                self._download(version, folder)
            try:
                return self._open(folder)
            except IndexLoadError:
                shutil.rmtree(folder, ignore_errors=True)  # a damaged cache: fetch it again
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def _open(self, folder: Path) -> Index:
        index = read_version(folder, searchers=self._searchers)
        self._loaded = folder.name
        try:
            records = [json.loads(line) for line in (folder / "documents.jsonl").read_text("utf-8").splitlines()
                       if line.strip()]  # fmt: skip
            index.stored_documents = tuple((document_from_record(r), dict(r.get("info", {}))) for r in records)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise IndexLoadError(f"cannot read the documents of {folder.name}: {exc}") from None
        return index

    def _searchers(self, index: Index):
        doc_keys = _doc_keys(index.manifest)
        chunk_keys = [_row_key(doc_keys[c.doc], c.start, c.end, "c") for c in index.chunks]
        sentence_keys = [_row_key(doc_keys[d], s.start, s.end, "s") for d, s in index.sentences]
        return (MilvusVectors(self, self._name("chunks"), chunk_keys, doc_keys.values(), index.chunk_vectors),
                MilvusVectors(self, self._name("sentences"), sentence_keys, doc_keys.values(),
                              index.sentence_vectors))  # fmt: skip

    def _download(self, version: str, folder: Path) -> None:
        parts: dict[str, dict[int, str]] = {}
        iterator = self.call("query_iterator", collection_name=self._name("files"), batch_size=64,
                             filter=f'version == "{version}"', output_fields=["name", "part", "data"])  # fmt: skip
        try:
            while batch := iterator.next():
                for row in batch:
                    parts.setdefault(row["name"], {})[int(row["part"])] = row["data"]
        except Exception as exc:
            raise StoreError(f"the store {self.uri} failed (reading {version}): {_one_line(exc)}") from None
        finally:
            iterator.close()
        if "manifest.json" not in parts:
            raise IndexLoadError(f"the store {self.uri} holds no files of {version}")
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=self.cache_dir))
        try:
            for name, pieces in parts.items():
                path = tmp / name
                if tmp.resolve() not in path.resolve().parents:
                    raise IndexLoadError(f"the store {self.uri} names a file outside its version: {name!r}")
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(b"".join(base64.b64decode(pieces[i]) for i in sorted(pieces)))
            shutil.rmtree(folder, ignore_errors=True)
            os.rename(tmp, folder)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        self._prune_cache(keep={version, *(v for v in [self._loaded] if v)})

    # -- writing ---------------------------------------------------------------------

    def lock(self):
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        return build_lock(self.cache_dir)

    def save(self, index: Index, documents: Sequence[Document], *, sources: dict | None = None,
             base: str | None = ...) -> Index:  # fmt: skip
        """Upsert the new rows, write the version's files, then switch the live row.
        StoreConflict when the live version is not `base` (the version this build started
        from, None for an empty store): another builder switched it meanwhile."""
        sources = sources or {}
        self._ensure_collections(int(index.chunk_vectors.shape[1]))
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        records = "".join(json.dumps({**document_record(d), "info": sources.get(d.path, {})},
                                     ensure_ascii=False) + "\n" for d in documents)  # fmt: skip
        tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=self.cache_dir))
        try:
            manifest, manifest_bytes = write_version(index, tmp, vector_indexes=False,
                                                     extra={"documents.jsonl": records.encode("utf-8")})  # fmt: skip
            version = version_name(manifest_bytes)
            index.manifest = manifest
            doc_keys = _doc_keys(manifest)
            self._upsert_vectors("chunks", [(_row_key(doc_keys[c.doc], c.start, c.end, "c"), doc_keys[c.doc])
                                            for c in index.chunks], index.chunk_vectors)  # fmt: skip
            self._upsert_vectors("sentences", [(_row_key(doc_keys[d], s.start, s.end, "s"), doc_keys[d])
                                               for d, s in index.sentences], index.sentence_vectors)  # fmt: skip
            self._write_files(version, tmp)
            live = self.live()
            if base is not ... and live.get("version") != base:
                raise StoreConflict(f"another replica changed the store {self.uri} during this build")
            self.call("upsert", collection_name=self._name("meta"),
                      data=[{"key": "live", "value": json.dumps({"version": version,
                                                                  "previous": live.get("version")}),
                             "vector": [0.0] * _DUMMY_DIM}])  # fmt: skip
            folder = self.cache_dir / version
            os.rename(tmp, folder)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        self._collect(keep=[version, live.get("version")], keep_docs=set(doc_keys.values()))
        self._prune_cache(keep={version, live.get("version")})
        return self._open(folder)

    def _prune_cache(self, keep: set) -> None:
        """The cache keeps the versions in `keep` (the new one and the one in use)."""
        for old in self.cache_dir.glob("v-*"):
            if old.name not in keep:
                shutil.rmtree(old, ignore_errors=True)

    def _upsert_vectors(self, kind: str, rows: list[tuple[str, str]], vectors: np.ndarray) -> None:
        have = set()
        for group in _groups(sorted({doc for _, doc in rows}), 200):
            iterator = self.call("query_iterator", collection_name=self._name(kind), batch_size=4096,
                                 filter=_in_filter("doc_key", group), output_fields=["key"])  # fmt: skip
            try:
                while batch := iterator.next():
                    have.update(r["key"] for r in batch)
            finally:
                iterator.close()
        new = [i for i, (key, _) in enumerate(rows) if key not in have]
        seen: set[str] = set()
        for group in _groups(new, BATCH_ROWS):
            data = []
            for i in group:
                key, doc = rows[i]
                if key not in seen:  # a span twice in one version (never expected): once
                    seen.add(key)
                    data.append({"key": key, "doc_key": doc, "vector": vectors[i].astype(np.float32).tolist()})
            if data:
                self.call("upsert", collection_name=self._name(kind), data=data)

    def _write_files(self, version: str, folder: Path) -> None:
        data = []
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            name = path.relative_to(folder).as_posix()
            content = path.read_bytes()
            for part, start in enumerate(range(0, max(len(content), 1), PART_BYTES)):
                data.append({"key": f"{version}/{name}/{part}", "version": version, "name": name,
                             "part": part, "vector": [0.0] * _DUMMY_DIM,
                             "data": base64.b64encode(content[start:start + PART_BYTES]).decode()})  # fmt: skip
                if len(data) >= 32:
                    self.call("upsert", collection_name=self._name("files"), data=data)
                    data = []
        if data:
            self.call("upsert", collection_name=self._name("files"), data=data)

    def _collect(self, *, keep: list, keep_docs: set[str]) -> None:
        """Delete the files of versions not kept and the rows of documents that no kept
        version holds. Best effort: what stays is only space, never a wrong answer."""
        keep = [v for v in keep if v]
        with contextlib.suppress(StoreError, IndexLoadError):
            for version in keep[1:]:  # the previous live version's documents stay too
                manifest = self._read_manifest(version)
                keep_docs |= set(_doc_keys(manifest).values()) if manifest else set()
            self.call("delete", collection_name=self._name("files"), filter=f"not ({_in_filter('version', keep)})")
            for kind in ("chunks", "sentences"):
                self.call("delete", collection_name=self._name(kind),
                          filter=f"not ({_in_filter('doc_key', sorted(keep_docs))})")  # fmt: skip

    def _read_manifest(self, version: str) -> dict | None:
        cached = self.cache_dir / version / "manifest.json"
        if cached.exists():
            return json.loads(cached.read_text())
        rows = self.call("query", collection_name=self._name("files"), limit=10_000,
                         filter=f'version == "{version}" and name == "manifest.json"',
                         output_fields=["part", "data"])  # fmt: skip
        if not rows:
            return None
        return json.loads(b"".join(base64.b64decode(r["data"]) for r in sorted(rows, key=lambda r: r["part"])))


@contextlib.contextmanager
def local_server(data_dir: Path, *, start_timeout: float = 60.0):
    """`milvus-lite server` on a free 127.0.0.1 port (never all interfaces), its data
    and log (server.log) in `data_dir`, until the block ends: yields ("milvus://127.0.0.1:
    PORT", the process). For the tests and the benchmarks; a deployment runs its own."""
    import socket
    import subprocess
    import sys

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    data_dir = Path(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    command = [str(Path(sys.executable).with_name("milvus-lite")), "server", "--data-dir", str(data_dir / "data"),
               "--host", "127.0.0.1", "--port", str(port)]  # fmt: skip
    log_path = data_dir / "server.log"  # a file, not a pipe: nothing blocks on a full pipe
    with open(log_path, "wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + start_timeout
        while True:
            with socket.socket() as attempt:
                if attempt.connect_ex(("127.0.0.1", port)) == 0:
                    break
            if process.poll() is not None or time.monotonic() > deadline:
                tail = log_path.read_text(errors="replace")[-500:]
                raise StoreError(f"milvus-lite server did not start: {_one_line(RuntimeError(tail))}")
            time.sleep(0.1)
        yield f"milvus://127.0.0.1:{port}", process
    finally:
        process.terminate()
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


def document_record(doc: Document) -> dict:
    """A Document as JSON: everything answers and citations read of it."""
    return {"path": doc.path, "title": doc.title, "text": doc.text, "sha256": doc.sha256,
            "encoding": doc.encoding, "format": doc.format, "pages": list(doc.pages),
            "paragraphs": [[p.section, p.text, p.start, None if p.offsets is None else list(p.offsets),
                            p.end_offset] for p in doc.paragraphs]}  # fmt: skip


def document_from_record(record: dict) -> Document:
    return Document(
        path=str(record["path"]), title=str(record["title"]), text=str(record["text"]),
        sha256=str(record["sha256"]), encoding=str(record["encoding"]),
        paragraphs=tuple(Paragraph(str(s), str(t), int(start), None if o is None else tuple(o),
                                   None if end is None else int(end))
                         for s, t, start, o, end in record["paragraphs"]),
        format=str(record.get("format", "text")), pages=tuple(int(p) for p in record.get("pages", ())),
    )  # fmt: skip


def _doc_keys(manifest: dict) -> dict[str, str]:
    """Document path -> its rows' key: the path, its bytes' sha256 and what its vectors
    depend on (model, dimension, chunking), so that no two builds' rows mix."""
    space = json.dumps([manifest.get("model"), manifest.get("dimension"), manifest.get("chunking")],
                       sort_keys=True)  # fmt: skip
    return {path: hashlib.sha256(json.dumps([space, path, info["sha256"]]).encode()).hexdigest()[:KEY_CHARS]
            for path, info in manifest["documents"].items()}  # fmt: skip


def _row_key(doc_key: str, start: int, end: int, kind: str) -> str:
    return hashlib.sha256(f"{doc_key}:{kind}:{start}:{end}".encode()).hexdigest()[:KEY_CHARS]


def _in_filter(field: str, values) -> str:
    """`field in ["a", "b"]` for values of hex digits and version names (nothing to escape)."""
    return f"{field} in {json.dumps([str(v) for v in values])}"


def _groups(items: list, size: int):
    for start in range(0, len(items), size):
        yield items[start:start + size]


def _one_line(exc: Exception) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text[:300]
