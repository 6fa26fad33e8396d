"""Save and load an index folder: versioned, checksummed, switched atomically.

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
import errno
import fcntl
import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from ..errors import IndexLoadError
from ..files import sha256_file as _sha256_file  # a module global: tests wrap it
from ..ingest.chunking import Chunk, Sentence
from . import ann
from .index import _VERSION_NAME, FORMAT_VERSION, Index


@contextlib.contextmanager
def build_lock(index_dir: Path):
    """One builder at a time per index folder (advisory lock, freed on crash).

    Raises IndexLoadError when the folder cannot be made or the lock file opened, except
    for a folder that exists but cannot be written (read-only): nothing can be saved there
    and no other builder can write either, so the build goes on unlocked, in memory.
    """
    try:
        index_dir.mkdir(parents=True, exist_ok=True)
        handle = open(index_dir / ".lock", "w")
    except (PermissionError, OSError) as exc:  # e.g. a path under a file: /dev/null/index
        if index_dir.is_dir() and (isinstance(exc, PermissionError) or exc.errno == errno.EROFS):
            yield
            return
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
        manifest, manifest_bytes = write_version(index, tmp)
        _fsync_dir(tmp)
        version = version_name(manifest_bytes)
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


def write_version(index: Index, folder: Path, *, vector_indexes: bool = True,
                  extra: dict[str, bytes] | None = None) -> tuple[dict, bytes]:  # fmt: skip
    """Every file of one version into `folder`, manifest.json last; (manifest, its bytes).

    `vector_indexes=False` leaves out the FAISS files (a store that searches the vectors
    itself); `extra` files (name -> bytes) are written and checksummed with the rest.
    """
    _write_jsonl(folder / "chunks.jsonl", (_chunk_record(c, r) for c, r in
                                           zip(index.chunks, index.chunk_sentence_rows)))  # fmt: skip
    _write_jsonl(folder / "sentences.jsonl",
                 ({"doc": d, "start": s.start, "end": s.end, "text": s.text,
                   "entities": [list(e) for e in entities], "tokens": [list(t) for t in tokens]}
                  for (d, s), entities, tokens in zip(index.sentences, index.sentence_entities,
                                                      index.sentence_tokens)))  # fmt: skip
    np.save(folder / "chunk_vectors.npy", index.chunk_vectors, allow_pickle=False)
    np.save(folder / "sentence_vectors.npy", index.sentence_vectors, allow_pickle=False)
    if vector_indexes:
        ann.save(index.dense, folder / "dense.faiss")
        ann.save(index.sentence_dense, folder / "sentences.faiss")
    index.bm25.save(str(folder / "bm25"), show_progress=False)
    if index.has_tokens:
        for name in ("token_ids", "token_offsets", "token_basis", "token_vectors"):
            np.save(folder / f"{name}.npy", getattr(index, name), allow_pickle=False)
    for name, data in (extra or {}).items():
        _write_bytes(folder / name, data)
    files = {}
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        _fsync_file(path)
        files[path.relative_to(folder).as_posix()] = _sha256_file(path)
    manifest = {**index.manifest, "files": files}
    manifest_bytes = json.dumps(manifest, indent=2).encode()
    _write_bytes(folder / "manifest.json", manifest_bytes)
    return manifest, manifest_bytes


def version_name(manifest_bytes: bytes) -> str:
    """The manifest's hash, which loading checks, plus a nonce: a rebuild of identical
    content never lands on an old (perhaps damaged) version."""
    return f"v-{hashlib.sha256(manifest_bytes).hexdigest()[:16]}-{os.urandom(4).hex()}"


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
    return read_version(index_dir / version, verify=verify)


def read_version(folder: Path, *, verify: bool = True, searchers=None) -> Index:
    """One version folder as an Index, its checksums verified first. `searchers(index)`
    gives the (chunks, sentences) objects searched in place of the FAISS files: a store
    that searches the vectors itself (store/milvus.py)."""
    folder = Path(folder)
    version = folder.name
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
            dense=None if searchers else ann.load(folder / "dense.faiss", manifest["ann"]),
            sentence_dense=None if searchers else ann.load(folder / "sentences.faiss", manifest["sentence_ann"]),
            bm25=bm25s.BM25.load(str(folder / "bm25"), show_progress=False, verbosity=0),
            manifest=manifest,
            path=folder,
            sentence_entities=[[(int(a), int(b), str(label)) for a, b, label in r["entities"]]
                               for r in sentence_records],
            sentence_tokens=[[(int(a), int(b), str(pos), str(dep), int(head)) for a, b, pos, dep, head in r["tokens"]]
                             for r in sentence_records],
        )
        if manifest.get("token_vectors"):
            for name in ("token_ids", "token_offsets", "token_basis", "token_vectors"):
                setattr(index, name, np.load(folder / f"{name}.npy", allow_pickle=False))
        if searchers is not None:
            index.dense, index.sentence_dense = searchers(index)
    except Exception as exc:  # any parse failure means the same to the user
        raise IndexLoadError(f"cannot read index in {folder}: {exc}") from None
    if not len(index.sentence_entities) == len(index.sentence_tokens) == len(index.sentences):
        raise IndexLoadError(f"index in {folder} is inconsistent (entities)")
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
