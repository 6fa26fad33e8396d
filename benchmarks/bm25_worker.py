"""BM25 (bm25s, as the engine uses it) at one corpus size: build, memory, query latency.

Run by run.py in a fresh process per size:

    python benchmarks/bm25_worker.py --n 1000000 [--queries 100]

Documents are recombined seed sentences, about a chunk long (5-7 sentences), given
to bm25s already analysed (the engine's `terms`: lower case, stop words, stems):
the analyser's own rate is measured apart, so the build figure is bm25s's. Queries
are the question set's questions, analysed the same way. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import gc
import json
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402

from assistant.text.terms import terms  # noqa: E402
from corpus import seed_sentences  # noqa: E402
from measure import percentile, rss_mb  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, required=True)
    parser.add_argument("--queries", type=int, default=100)
    args = parser.parse_args()
    import bm25s

    sentences = seed_sentences(ROOT / "seeds")
    start = time.perf_counter()
    analysed = [terms(s) for s in sentences * 20]
    tokens = sum(len(a) for a in analysed)
    analyse_rate = tokens / (time.perf_counter() - start)
    analysed = analysed[: len(sentences)]

    rng = random.Random(7)
    docs = []
    for _ in range(args.n):
        doc = []
        for _ in range(rng.randint(5, 7)):
            doc.extend(analysed[rng.randrange(len(analysed))])
        docs.append(doc or [""])
    doc_tokens = sum(len(d) for d in docs)
    start = time.perf_counter()
    bm25 = bm25s.BM25()
    bm25.index(docs, show_progress=False)
    build_s = time.perf_counter() - start
    del docs
    gc.collect()
    # The score matrix (CSC arrays) is the index; RSS would mostly show the token lists.
    index_mb = sum(a.nbytes for a in bm25.scores.values() if hasattr(a, "nbytes")) / 2**20

    vocabulary = {t for t in bm25.vocab_dict if t}
    path = ROOT / "tests" / "data" / "questions.jsonl"
    qs = [json.loads(line)["question"] for line in open(path, encoding="utf-8") if line.strip()]
    query_terms = [[t for t in terms(q) if t in vocabulary] for q in qs[: args.queries]]
    query_terms = [q for q in query_terms if q]
    walls = []
    for q in query_terms:
        start = time.perf_counter()
        bm25.retrieve([q], k=50, show_progress=False, n_threads=1)
        walls.append((time.perf_counter() - start) * 1000)
    print(json.dumps({"n": args.n, "doc_tokens": doc_tokens, "build_s": build_s,
                      "index_mb": index_mb, "process_rss_mb": rss_mb(), "query_ms_p50": float(np.median(walls)),
                      "query_ms_p95": percentile(walls, 95), "queries": len(walls),
                      "analyser_tokens_per_s": analyse_rate}))  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
