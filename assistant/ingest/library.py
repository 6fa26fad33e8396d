"""The managed folder of documents added with `assistant add` or an upload.

    index/library/library.json   {"documents": {name: {"added", "title", "sha256", "bytes"}}}
    index/library/<name>         the original file, as it was added

`library.json` is the commit point: a document is in the library once its entry is
written (atomically, after its file), and out once the entry is gone. A file without
an entry is ignored. Names are checked before anything is written; `seeds/` is never
written to. Does not extract text (formats.py) or index anything (store/).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import time
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from ..errors import DocumentError
from ..files import write_atomically
from .formats import FORMATS, Extracted, extract

LIBRARY_FILE = "library.json"
MAX_NAME_CHARS = 200


@dataclass(frozen=True)
class NewDocument:
    name: str
    data: bytes
    extracted: Extracted
    title: str = ""  # set by whoever adds it; "" keeps the document's own


def check_name(name: object) -> str:
    """The file name a document is kept and cited under; DocumentError when it is no
    plain file name (a path, `..`, NUL or control characters, over 200 characters)."""
    if not isinstance(name, str) or not name.strip():
        raise DocumentError("the file needs a name")
    shown = "".join(ch if ch.isprintable() else "?" for ch in name)[:80]
    if len(name) > MAX_NAME_CHARS:
        raise DocumentError(f"the file name is {len(name)} characters long; the limit is {MAX_NAME_CHARS}")
    if any(unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp") for ch in name):
        raise DocumentError(f"the file name “{shown}” holds control characters")
    if "/" in name or "\\" in name or name in (".", "..") or name.startswith("."):
        raise DocumentError(f"“{shown}” is not a plain file name (no folders, no leading dot)")
    if name == LIBRARY_FILE or Path(name).suffix.lower() not in FORMATS:
        raise DocumentError(f"“{shown}”: the name must end in one of {', '.join(sorted(FORMATS))}")
    return name


def prepare(name: str, data: bytes, *, max_bytes: int, title: str = "") -> NewDocument:
    """A file checked and read, ready to be added; nothing is written."""
    name = check_name(name)
    if len(data) > max_bytes:
        raise DocumentError(f"{name}: {len(data)} bytes is over the {max_bytes}-byte limit")
    title = " ".join((title or "").split())[:200]
    return NewDocument(name, data, extract(name, data), title)


def read_entries(library_dir: Path) -> tuple[dict[str, dict], list[str]]:
    """The library's entries by name, and a warning when library.json cannot be read."""
    path = Path(library_dir) / LIBRARY_FILE
    if not path.is_file():
        return {}, []
    try:
        entries = json.loads(path.read_text(encoding="utf-8"))["documents"]
        if not isinstance(entries, dict):
            raise TypeError("documents is not a table")
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return {}, [f"ignored the added documents' list {path}: {' '.join(str(exc).split())[:200]}"]
    good = {}
    for name, entry in entries.items():
        try:
            good[check_name(name)] = entry if isinstance(entry, dict) else {}
        except DocumentError:
            continue
    return good, []


@contextlib.contextmanager
def locked(library_dir: Path):
    """One writer at a time (advisory lock, freed on crash)."""
    Path(library_dir).mkdir(parents=True, exist_ok=True)
    with open(Path(library_dir) / ".lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def add(library_dir: Path, documents: list[NewDocument], *, taken: set[str]) -> dict[str, dict]:
    """Write the documents' files, then their entries; the entries as they were before,
    for `restore`. A name already in the library or in `taken` (the seeds') is refused
    before anything is written."""
    library_dir = Path(library_dir)
    before, _ = read_entries(library_dir)
    names = [d.name for d in documents]
    for name in names:
        if name in taken:
            raise DocumentError(f"{name}: seeds/ already has a document of that name")
        if name in before:
            raise DocumentError(f"{name}: already added (`assistant remove {name}` first to replace it)")
    if len(set(names)) != len(names):
        raise DocumentError("the same file name is given twice")
    written = []
    try:
        for doc in documents:
            write_atomically(library_dir / doc.name, doc.data)
            written.append(library_dir / doc.name)
        added = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        after = {**before}
        for doc in documents:
            after[doc.name] = {"added": added, "title": doc.title, "bytes": len(doc.data),
                               "format": doc.extracted.format}  # fmt: skip
        _write_entries(library_dir, after)
    except OSError as exc:
        for path in written:
            path.unlink(missing_ok=True)
        raise DocumentError(f"cannot write to {library_dir}: {exc.strerror or exc}") from None
    return before


def remove(library_dir: Path, name: str) -> dict[str, dict]:
    """Drop the entry, then the file; the entries as they were before."""
    library_dir = Path(library_dir)
    before, _ = read_entries(library_dir)
    if name not in before:
        raise DocumentError(f"no added document {name!r} (see `assistant docs`)")
    _write_entries(library_dir, {k: v for k, v in before.items() if k != name})
    return before


def restore(library_dir: Path, entries: dict[str, dict]) -> None:
    """Put the entries back as they were (an add or remove whose index build failed);
    files no entry names are deleted."""
    if entries:
        _write_entries(Path(library_dir), entries)
    else:
        (Path(library_dir) / LIBRARY_FILE).unlink(missing_ok=True)
    collect(library_dir)


def collect(library_dir: Path) -> None:
    """Delete the files that no entry names (what a removal leaves)."""
    entries, warnings = read_entries(library_dir)
    if warnings or not Path(library_dir).is_dir():
        return  # an unreadable list: delete nothing
    for path in Path(library_dir).iterdir():
        if path.is_file() and path.name not in entries and path.name not in (LIBRARY_FILE, ".lock"):
            path.unlink(missing_ok=True)


def _write_entries(library_dir: Path, entries: dict[str, dict]) -> None:
    body = json.dumps({"documents": entries}, ensure_ascii=False, indent=1, sort_keys=True)
    write_atomically(Path(library_dir) / LIBRARY_FILE, body.encode("utf-8"))
