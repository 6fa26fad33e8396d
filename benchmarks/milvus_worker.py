"""One corpus size of random unit vectors in a Milvus server: insert, index, search, recall@10.

Run by milvus_bench.py in a fresh process per size, against a milvus-lite server that
milvus_bench.py started (and stops) on 127.0.0.1:

    python benchmarks/milvus_worker.py --uri http://127.0.0.1:PORT --server-pid PID \
        --data-dir D --n 1000000 [--queries 100] [--index IVF_FLAT[,HNSW]]

Prints one JSON object. The vectors and queries are ann_worker.py's (same generator,
same seed, same order), so its FAISS figures at the same size are for the same data.
Everything goes through pymilvus over gRPC, as the app's Milvus store does: inserts in
batches, a flush, then `create_index` on the loaded collection, which builds one index
per stored segment before it returns (milvus-lite keeps segments of at most 100,000
rows); with several --index types, each is dropped before the next is built on the
same rows. Searches are single queries, limit 10, inner product, only the id returned.
Ground truth is exact inner product (numpy). The server's CPU seconds and resident
memory are read from /proc. Stops early (non-zero exit, the reason on stderr) when the
server's memory passes --max-server-gb. Asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from ann_worker import DIMENSION, exact_top, recall, unit_rows  # noqa: E402
from measure import percentile, process_cpu_seconds, rss_mb  # noqa: E402

COLLECTION = "random_vectors"
BUILD_PARAMS = {"HNSW": {"M": 16, "efConstruction": 40}, "IVF_FLAT": {"nlist": 256}, "FLAT": {}}
SEARCH_PARAMS = {"HNSW": [{"ef": 64}, {"ef": 256}],
                 "IVF_FLAT": [{"nprobe": 16}, {"nprobe": 64}, {"nprobe": 128}], "FLAT": [{}]}  # fmt: skip


def folder_mb(path: Path) -> tuple[float, int]:
    """Bytes under `path` (MB) and how many data (segment) files it holds."""
    total, segments = 0, 0
    for root, _, files in os.walk(path):
        for name in files:
            try:
                total += os.path.getsize(os.path.join(root, name))
            except OSError:
                continue
            segments += name.startswith("data_") and name.endswith(".parquet")
    return total / 2**20, segments


def time_searches(client, queries: np.ndarray, params: dict) -> tuple[list[float], list[list[int]]]:
    walls, rows = [], []
    for q in queries:
        start = time.perf_counter()
        hits = client.search(COLLECTION, data=[q.tolist()], limit=10, anns_field="vector",
                             search_params={"metric_type": "IP", "params": params},
                             output_fields=["id"])[0]  # fmt: skip
        walls.append((time.perf_counter() - start) * 1000)
        rows.append([int(h["id"]) for h in hits])
    return walls, rows


def build_and_search(client, pid: int, kind: str, queries: np.ndarray, truth: np.ndarray,
                     data_dir: Path) -> dict:  # fmt: skip
    """Build `kind` on the collection (timed), then its searches at each setting."""
    from pymilvus import MilvusClient

    indexes = MilvusClient.prepare_index_params()
    # Nested under "params": pymilvus 3 sends a flat params dict as separate key-value
    # pairs, which milvus-lite 3.2 ignores (it reads only "params"), building with its
    # defaults (IVF_FLAT nlist=128; HNSW M=16, efConstruction=200) instead.
    indexes.add_index(field_name="vector", index_type=kind, metric_type="IP",
                      params={"params": BUILD_PARAMS[kind]})  # fmt: skip
    cpu, start = process_cpu_seconds(pid), time.perf_counter()
    client.create_index(COLLECTION, indexes)  # builds every segment's index, then returns
    client.load_collection(COLLECTION)
    build_s, build_cpu = time.perf_counter() - start, process_cpu_seconds(pid) - cpu
    after_build_mb = rss_mb(pid)
    described = client.describe_index(COLLECTION, "vector")  # what the server built with
    disk_mb, segments = folder_mb(data_dir)
    searches = []
    for params in SEARCH_PARAMS[kind]:
        time_searches(client, queries[:3], params)  # warm-up
        cpu = process_cpu_seconds(pid)
        walls, rows = time_searches(client, queries, params)
        server_cpu_ms = (process_cpu_seconds(pid) - cpu) * 1000 / len(queries)
        start = time.perf_counter()
        batched = client.search(COLLECTION, data=queries.tolist(), limit=10, anns_field="vector",
                                search_params={"metric_type": "IP", "params": params},
                                output_fields=["id"])  # fmt: skip
        batch_ms = (time.perf_counter() - start) * 1000
        batch_rows = [[int(h["id"]) for h in r] for r in batched]
        searches.append({"params": params, "search_ms_p50": float(np.median(walls)),
                         "search_ms_p95": percentile(walls, 95), "search_ms": walls,
                         "server_cpu_ms_per_query": server_cpu_ms,
                         "recall_at_10": recall(rows, truth), "queries": len(walls),
                         "batch_of": len(queries), "batch_ms_per_query": batch_ms / len(queries),
                         "batch_recall_at_10": recall(batch_rows, truth)})  # fmt: skip
    return {"index": kind, "build_params": BUILD_PARAMS[kind],
            "described_index": {k: str(v) for k, v in (described or {}).items()},
            "build_s": build_s, "build_server_cpu_s": build_cpu, "server_rss_after_build_mb": after_build_mb,
            "segments": segments, "disk_mb": disk_mb, "searches": searches}  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--uri", required=True, help="http://127.0.0.1:PORT of a running server")
    parser.add_argument("--server-pid", type=int, required=True)
    parser.add_argument("--data-dir", type=Path, required=True, help="the server's --data-dir")
    parser.add_argument("--n", type=int, required=True)
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument("--index", default="IVF_FLAT",
                        help=f"comma-separated, built in turn on the same rows: {', '.join(BUILD_PARAMS)}")
    parser.add_argument("--batch", type=int, default=5000, help="rows per insert call")
    parser.add_argument("--max-server-gb", type=float, default=16.0)
    args = parser.parse_args()
    unknown = set(args.index.split(",")) - set(BUILD_PARAMS)
    if unknown:
        parser.error(f"unknown --index {', '.join(sorted(unknown))}")

    import logging

    from pymilvus import DataType, MilvusClient

    logging.getLogger("pymilvus").setLevel(logging.ERROR)
    pid = args.server_pid
    client = MilvusClient(uri=args.uri, timeout=3600)
    if client.has_collection(COLLECTION):
        client.drop_collection(COLLECTION)
    schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("vector", DataType.FLOAT_VECTOR, dim=DIMENSION)
    client.create_collection(COLLECTION, schema=schema, consistency_level="Strong")
    server_start_mb = rss_mb(pid)

    rng = np.random.default_rng(12345)  # ann_worker.py's seed and order: the same data
    x = unit_rows(rng, args.n, DIMENSION)
    queries = unit_rows(rng, args.queries, DIMENSION)

    cpu, start = process_cpu_seconds(pid), time.perf_counter()
    peak_mb = 0.0
    for i in range(0, args.n, args.batch):
        block = x[i : i + args.batch]
        client.insert(COLLECTION, [{"id": i + j, "vector": row} for j, row in enumerate(block)])
        if (i // args.batch) % 20 == 0:
            peak_mb = max(peak_mb, rss_mb(pid))
            if peak_mb > args.max_server_gb * 1024:
                print(f"milvus-lite server at {peak_mb / 1024:.1f} GB resident after {i + len(block):,} "
                      f"rows, over the {args.max_server_gb:.0f} GB limit", file=sys.stderr)  # fmt: skip
                return 3
    client.flush(COLLECTION)
    insert_s, insert_cpu = time.perf_counter() - start, process_cpu_seconds(pid) - cpu
    after_insert_mb = rss_mb(pid)

    truth = exact_top(x, queries, 10)
    raw_mb = x.nbytes / 2**20
    del x
    built = []
    for kind in args.index.split(","):
        if built:  # the next index on the same rows: Milvus drops one only when released
            client.release_collection(COLLECTION)
            client.drop_index(COLLECTION, "vector")
        built.append(build_and_search(client, pid, kind, queries, truth, args.data_dir))
    count = client.query(COLLECTION, filter="", output_fields=["count(*)"])[0]["count(*)"]
    result = {"n": args.n, "dimension": DIMENSION, "batch_rows": args.batch, "rows_counted": int(count),
              "insert_s": insert_s, "insert_rows_per_s": args.n / insert_s, "insert_server_cpu_s": insert_cpu,
              "raw_mb": raw_mb,
              "server_rss_mb": {"empty": server_start_mb, "insert_peak": max(peak_mb, after_insert_mb),
                                "after_insert": after_insert_mb, "after_search": rss_mb(pid)},
              "worker_rss_mb": rss_mb(), "indexes": built}  # fmt: skip
    client.drop_collection(COLLECTION)
    client.close()
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
