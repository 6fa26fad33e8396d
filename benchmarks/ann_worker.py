"""One corpus size of random unit vectors: build, memory, search latency, recall@10.

Run by run.py in a fresh process per size, so resident memory is the index's own:

    python benchmarks/ann_worker.py --n 1000000 [--queries 100] [--compare]

Prints one JSON object. The index is the one `assistant.ann.choose_params` picks
for that size; `--compare` adds the alternatives that were rejected (IVF, and
HNSW, whose build is slow) at the same size. Queries are fresh random unit
vectors, the hardest case for approximate search: no cluster structure to
exploit. Ground truth is exact inner product. Asserts nothing.
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import faiss  # noqa: E402

from assistant.store import ann  # noqa: E402
from measure import percentile, rss_mb  # noqa: E402

DIMENSION = 384


def unit_rows(rng: np.random.Generator, n: int, d: int) -> np.ndarray:
    out = np.empty((n, d), dtype=np.float32)
    step = 100_000
    for i in range(0, n, step):  # in slices: no float64 copy of a 1M x 384 array
        block = rng.standard_normal((min(step, n - i), d), dtype=np.float32)
        out[i : i + len(block)] = block / np.linalg.norm(block, axis=1, keepdims=True)
    return out


def exact_top(x: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    scores = x @ queries.T  # (n, q)
    top = np.argpartition(-scores, k, axis=0)[:k].T
    order = np.take_along_axis(scores.T, top, axis=1).argsort(axis=1)[:, ::-1]
    return np.take_along_axis(top, order, axis=1)


def time_searches(index, queries: np.ndarray, k: int) -> tuple[list[float], list[float], list]:
    """Per single-query search: wall ms, CPU ms of this thread, result rows."""
    walls, cpus, rows = [], [], []
    for q in queries:
        start, cpu = time.perf_counter(), time.thread_time()
        hits = ann.search(index, q[None, :], k)[0]
        cpus.append((time.thread_time() - cpu) * 1000)
        walls.append((time.perf_counter() - start) * 1000)
        rows.append([row for row, _ in hits])
    return walls, cpus, rows


def recall(rows, truth) -> float:
    k = truth.shape[1]
    return float(np.mean([len(set(r[:k]) & set(t.tolist())) / k for r, t in zip(rows, truth)]))


def summary(walls, cpus, rows, truth) -> dict:
    return {"search_ms_p50": float(np.median(walls)), "search_ms_p95": percentile(walls, 95),
            "search_cpu_ms_p50": float(np.median(cpus)), "search_cpu_ms_p95": percentile(cpus, 95),
            "recall_at_10": recall(rows, truth), "queries": len(walls)}  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, required=True)
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument("--exact-queries", type=int, default=20)
    parser.add_argument("--compare", action="store_true")
    parser.add_argument("--hnsw", action="store_true", help="with --compare: HNSW too (slow build)")
    args = parser.parse_args()
    faiss.omp_set_num_threads(2)
    rng = np.random.default_rng(12345)
    base_rss = rss_mb()
    x = unit_rows(rng, args.n, DIMENSION)
    queries = unit_rows(rng, args.queries, DIMENSION)
    truth = exact_top(x, queries, 10)
    raw_mb = x.nbytes / 2**20

    params = ann.choose_params(args.n)
    gc.collect()
    before = rss_mb()  # the vectors are resident already: the growth is the index
    start = time.perf_counter()
    index = ann.build(x, params)
    build_s = time.perf_counter() - start
    gc.collect()
    rss_growth_mb = rss_mb() - before  # can undercount: freed temporaries get reused
    index_mb = faiss.serialize_index(index).nbytes / 2**20  # the structure's own bytes
    gc.collect()
    walls, cpus, rows = time_searches(index, queries, 10)
    result = {"n": args.n, "dimension": DIMENSION, "params": params, "build_s": build_s,
              "raw_mb": raw_mb, "index_mb": index_mb, "memory_ratio": index_mb / raw_mb,
              "rss_growth_mb": rss_growth_mb,
              "process_rss_mb": rss_mb() - base_rss, **summary(walls, cpus, rows, truth)}  # fmt: skip
    if params["type"] == "flat-ip":
        result["exact"] = summary(walls, cpus, rows, truth)
    else:
        del index
        gc.collect()
        exact = ann.build(x, {"type": "flat-ip"})
        w, c, r = time_searches(exact, queries[: args.exact_queries], 10)
        result["exact"] = summary(w, c, r, truth[: args.exact_queries])
        del exact
        gc.collect()
    if args.compare:
        result["alternatives"] = compare(x, queries, truth, hnsw=args.hnsw)
    print(json.dumps(result))
    return 0


def compare(x: np.ndarray, queries: np.ndarray, truth: np.ndarray, *, hnsw: bool) -> list[dict]:
    """The rejected designs at the same size, each at a few settings."""
    out = []
    d = x.shape[1]
    nlist = int(4 * np.sqrt(len(x)))
    start = time.perf_counter()
    quantizer = faiss.IndexFlatIP(d)
    ivf = faiss.IndexIVFFlat(quantizer, d, nlist, faiss.METRIC_INNER_PRODUCT)
    ivf.train(x[np.random.default_rng(0).choice(len(x), min(len(x), 50 * nlist), replace=False)])
    ivf.add(x)
    build = time.perf_counter() - start
    for nprobe in (16, 64, 256):
        ivf.nprobe = nprobe
        w, c, r = time_searches(ivf, queries, 10)
        out.append({"index": f"IVF{nlist},Flat nprobe={nprobe}", "build_s": build,
                    **summary(w, c, r, truth)})  # fmt: skip
    del ivf, quantizer
    if hnsw:
        start = time.perf_counter()
        graph = faiss.IndexHNSWFlat(d, 32, faiss.METRIC_INNER_PRODUCT)
        graph.hnsw.efConstruction = 80
        graph.add(x)
        build = time.perf_counter() - start
        for ef in (128, 512, 1024):
            graph.hnsw.efSearch = ef
            w, c, r = time_searches(graph, queries, 10)
            out.append({"index": f"HNSW32 efSearch={ef}", "build_s": build, **summary(w, c, r, truth)})
    return out


if __name__ == "__main__":
    raise SystemExit(main())
