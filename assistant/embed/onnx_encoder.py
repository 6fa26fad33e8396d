"""Encode questions with onnxruntime on weights exported once from the bundled model.

A question should not pay for importing torch (seconds) to get one vector. The
model's transformer is exported with `torch.onnx.export` the first time torch is
loaded anyway (an index build) and cached as `<cache_dir>/<fingerprint>/model.onnx`;
after that a question costs one tokenizer call and one onnxruntime run. Mean
pooling over real tokens and L2 normalisation are done here in numpy, exactly as
the model folder's modules.json and 1_Pooling/config.json prescribe, and an export
is checked against the torch model before it is kept, and its sha256 is kept beside it
and checked whenever it is opened (a damaged export is exported again).

Does not embed documents for the index (sentence-transformers does that), never
quantizes (per-channel dynamic int8 took a question from 3.1 to 1.5 ms but moved
vectors to cosine 0.993 and dropped dev hit@3 0.931 -> 0.914, citation hit@1
0.793 -> 0.776 on tests/data/questions.jsonl), and supports only
Transformer -> mean Pooling -> Normalize pipelines (anything else raises
UnsupportedModelError so the caller keeps sentence-transformers).
"""

from __future__ import annotations

import json
import os
import shutil
import threading
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..files import sha256_file
from .base import max_seq_length, text_tokens

# Bump when the exported graph changes, so old caches are not reused
# (2: exported with eager attention instead of SDPA).
EXPORT_VERSION = 2
ONNX_FILE = "model.onnx"
_INPUTS = ("input_ids", "attention_mask", "token_type_ids")
_CHECK_TEXTS = ("When was the armistice signed?", "", "word " * 300)


class UnsupportedModelError(Exception):
    """The model folder's pipeline is not Transformer -> mean Pooling (-> Normalize)."""


def onnx_path(cache_dir: Path, fingerprint: str) -> Path:
    """Where the export of the model with this fingerprint lives."""
    safe = "".join(ch if ch.isalnum() or ch in "@-_." else "_" for ch in fingerprint)
    return Path(cache_dir) / f"{safe}-onnx{EXPORT_VERSION}" / ONNX_FILE


def _remove_older_exports(target: Path) -> None:
    """Delete the same model's exports of earlier EXPORT_VERSIONs (90 MB each)."""
    stem = target.parent.name.rsplit("-onnx", 1)[0]
    for folder in target.parent.parent.glob(f"{stem}-onnx*"):
        if folder != target.parent and folder.name[len(stem) + 5:].isdigit():
            shutil.rmtree(folder, ignore_errors=True)


def checksum_path(target: Path) -> Path:
    """Where the export's sha256 is kept: beside it, written when it was exported."""
    return Path(target).with_name(Path(target).name + ".sha256")


def export_is_intact(target: Path) -> bool:
    """Whether the export is the file that was exported: its sha256 is the one recorded.
    A missing checksum (an export from before checksums, or a crash) counts as damaged."""
    try:
        return sha256_file(target) == checksum_path(target).read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        return False


def discard_export(target: Path) -> None:
    for path in (Path(target), checksum_path(target)):
        path.unlink(missing_ok=True)


def _write_atomically(path: Path, data: bytes) -> None:
    partial = path.with_name(f".tmp-{os.getpid()}-{path.name}")
    partial.write_bytes(data)
    os.replace(partial, path)


def read_pipeline(model_dir: Path) -> bool:
    """Check the sentence-transformers modules; True when a Normalize step ends them."""
    modules = json.loads((Path(model_dir) / "modules.json").read_text())
    kinds = [m["type"].rsplit(".", 1)[-1] for m in sorted(modules, key=lambda m: m["idx"])]
    if kinds not in (["Transformer", "Pooling"], ["Transformer", "Pooling", "Normalize"]):
        raise UnsupportedModelError(f"modules {kinds} are not Transformer, Pooling[, Normalize]")
    pooling_dir = next(m["path"] for m in modules if m["type"].endswith("Pooling"))
    pooling = json.loads((Path(model_dir) / pooling_dir / "config.json").read_text())
    modes = {key for key, on in pooling.items() if key.startswith("pooling_mode") and on}
    if modes != {"pooling_mode_mean_tokens"}:
        raise UnsupportedModelError(f"pooling {sorted(modes)} is not mean over tokens")
    return kinds[-1] == "Normalize"


class OnnxQueryEncoder:
    """Texts -> unit vectors with onnxruntime; the same vectors as sentence-transformers."""

    def __init__(self, model_dir: Path, onnx_file: Path, *, threads: int | None = None):
        from tokenizers import Tokenizer

        self.normalize = read_pipeline(model_dir)
        self.max_tokens = max_seq_length(model_dir)
        tokenizer = Tokenizer.from_file(str(Path(model_dir) / "tokenizer.json"))
        # The bundled tokenizer.json pads and truncates to 128; sentence-transformers
        # truncates at max_seq_length (256) and pads only to the longest in a batch.
        tokenizer.no_padding()
        tokenizer.enable_truncation(max_length=self.max_tokens)
        self._tokenizer = tokenizer
        self._tokenizer_lock = threading.Lock()  # the Rust tokenizer is not shareable
        self._onnx_file = str(onnx_file)
        # A question alone runs on every core (2.2 ms instead of 3.1 ms on 2 cores);
        # while another is being encoded, further ones run single-threaded on a second
        # session, so concurrent requests each get a core instead of fighting over two.
        self.threads = threads or min(2, os.cpu_count() or 1)
        self._wide = self._open_session(self.threads)
        self._narrow = self._wide if self.threads == 1 else None  # opened when first needed
        self._in_flight = 0
        self._lock = threading.Lock()
        self._inputs = [i.name for i in self._wide.get_inputs()]
        self.dimension = int(self._wide.get_outputs()[0].shape[-1])

    def _open_session(self, threads: int):
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        # Workers that spin between operators held a core the machine's other work
        # wanted: with one core busy elsewhere, 2 spinning threads took 8-10 ms a
        # question, 2 sleeping ones 3.2-4.0 ms (1 thread: 3.2-3.4 ms).
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        return onnxruntime.InferenceSession(self._onnx_file, options, providers=["CPUExecutionProvider"])

    def _run(self, feed: dict) -> np.ndarray:
        with self._lock:
            self._in_flight += 1
            if self._in_flight == 1:
                session = self._wide
            else:
                if self._narrow is None:
                    self._narrow = self._open_session(1)
                session = self._narrow
        try:
            return session.run(None, feed)[0]
        finally:
            with self._lock:
                self._in_flight -= 1

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """(len(texts), dimension) float32; padded to the longest text, never beyond."""
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        tokens, feed = self._forward(texts)
        return mean_pool(tokens, feed["attention_mask"], normalize=self.normalize)

    def encode_with_tokens(self, texts: Sequence[str]):
        """`encode` plus each text's token vectors (embedding.text_tokens), one run."""
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32), []
        tokens, feed = self._forward(texts)
        vectors = mean_pool(tokens, feed["attention_mask"], normalize=self.normalize)
        return vectors, [text_tokens(t, ids, mask) for t, ids, mask in
                         zip(tokens, feed["input_ids"], feed["attention_mask"])]  # fmt: skip

    def _forward(self, texts: Sequence[str]) -> tuple[np.ndarray, dict]:
        with self._tokenizer_lock:
            encodings = self._tokenizer.encode_batch(list(texts))
        length = max(len(e.ids) for e in encodings)
        feed = {name: np.zeros((len(encodings), length), dtype=np.int64) for name in _INPUTS}
        for row, e in enumerate(encodings):
            n = len(e.ids)
            feed["input_ids"][row, :n] = e.ids
            feed["attention_mask"][row, :n] = e.attention_mask
            feed["token_type_ids"][row, :n] = e.type_ids
        return self._run({name: feed[name] for name in self._inputs}), feed


def mean_pool(tokens: np.ndarray, mask: np.ndarray, *, normalize: bool) -> np.ndarray:
    """Mean of the token vectors where mask is 1, then (optionally) unit length."""
    weights = mask[..., None].astype(np.float32)
    vectors = (tokens * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
    if normalize:
        vectors /= np.clip(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12, None)
    return np.ascontiguousarray(vectors, dtype=np.float32)


def export_onnx(model_dir: Path, target: Path, *, model=None) -> Path:
    """Export the transformer of a sentence-transformers folder to `target` (imports torch).

    `model` is an already loaded SentenceTransformer, to avoid loading it twice.
    The file is written beside the target and renamed into place only after its
    vectors matched the torch model's on a few texts, so readers never see half a file.
    """
    import torch

    read_pipeline(model_dir)
    if model is None:
        from sentence_transformers import SentenceTransformer

        model = SentenceTransformer(str(model_dir), device="cpu")
    transformer = model[0].auto_model.eval()
    # Eager attention exports as plain MatMul/Softmax: 516 graph nodes instead of the
    # SDPA export's 669, the same vectors, the same time for one question and ~25 %
    # more questions/s when two are encoded at once (measured on 2 cores).
    attention = getattr(transformer.config, "_attn_implementation", None)

    class TokenEmbeddings(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, input_ids, attention_mask, token_type_ids):
            return self.inner(input_ids=input_ids, attention_mask=attention_mask,
                              token_type_ids=token_type_ids).last_hidden_state  # fmt: skip

    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".tmp-{os.getpid()}-{threading.get_ident()}-{target.name}")
    sample = torch.ones((1, 8), dtype=torch.long)
    dynamic = {name: {0: "batch", 1: "tokens"} for name in (*_INPUTS, "token_embeddings")}
    try:
        if attention not in (None, "eager"):
            transformer.set_attn_implementation("eager")
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # tracer and deprecation notes, not errors
            # dynamo=False: the TorchScript exporter needs no onnxscript.
            torch.onnx.export(
                TokenEmbeddings(transformer), (sample, torch.ones_like(sample), torch.zeros_like(sample)),
                str(tmp), dynamo=False, input_names=list(_INPUTS), output_names=["token_embeddings"],
                dynamic_axes=dynamic, opset_version=17, do_constant_folding=True,
            )  # fmt: skip
        encoder = OnnxQueryEncoder(model_dir, tmp)
        expected = model.encode(list(_CHECK_TEXTS), normalize_embeddings=encoder.normalize,
                                convert_to_numpy=True, show_progress_bar=False)  # fmt: skip
        cosine = np.sum(encoder.encode(_CHECK_TEXTS) * expected, axis=1)
        if not np.all(cosine > 0.9999):
            raise RuntimeError(f"exported model disagrees with torch (cosine {cosine.min():.5f})")
        # The checksum is written first: a crash between the two leaves a file whose
        # checksum does not match, which is exported again, never trusted.
        _write_atomically(checksum_path(target), sha256_file(tmp).encode())
        os.replace(tmp, target)
        _remove_older_exports(target)
    finally:
        if attention not in (None, "eager"):
            transformer.set_attn_implementation(attention)
        tmp.unlink(missing_ok=True)
    return target
