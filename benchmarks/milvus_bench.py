"""The Milvus store (store/milvus.py) beside the default FAISS folder store.

`seeds_side_by_side`: the seeds asked through both stores in one run, alternating
question by question. `million`: random unit vectors in a Milvus server up to 1M
(milvus_worker.py, a fresh process), beside FAISS at the same size (ann_worker.py,
same data). The servers are milvus-lite (`milvus-lite server`, a Python Milvus with
a gRPC server), started here on 127.0.0.1 and always stopped. Asserts nothing.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

from measure import figure, process_cpu_seconds, run_process

HERE = Path(__file__).resolve().parent
BATCH = 16  # questions per ask_batch


@contextlib.contextmanager
def milvus_server(data_dir: Path):
    """store/milvus.local_server, as (HOST:PORT, process)."""
    from assistant.store.milvus import local_server

    with local_server(data_dir) as (uri, process):
        yield uri[len("milvus://"):], process


def _quoted(answer) -> tuple:
    return tuple((c.doc, c.start, c.end) for c in answer.citations), answer.abstained


def seeds_side_by_side(bench, assistant, qs: list[str]) -> None:
    """The seeds through the FAISS folder store (`assistant`, loaded by run.py) and
    through a Milvus store (a milvus-lite server started here), in one run.

    The Milvus replica reuses the loaded embedder; loading it builds the seeds into the
    empty store (embedding, upload), then a second replica loads that version (download
    to its own cache). Then, per question, `ask` on both stores back to back, which one
    first alternating, so machine load hits both alike; the same for `ask_batch` of 16
    (time per question) and for the dense search alone (ann.search, 50 candidates: the
    part the store changes; each question's search is 2 of these, chunks and sentences).
    Every pair of answers is compared (citations as (doc, start, end), abstained); the
    count of differences is printed and kept in results["milvus_seeds"].
    """
    from assistant import Assistant
    from assistant.store import ann
    from assistant.store.stores import open_store

    data = bench.tmp / "milvus-seeds"
    try:
        with milvus_server(data) as (address, server):
            uri = f"milvus://{address}/seeds"
            replicas = [assistant.settings.with_(store=uri, index_dir=bench.tmp / f"milvus-{name}")
                        for name in ("a", "b")]  # fmt: skip
            start = time.perf_counter()
            shared = Assistant.load(settings=replicas[0], embedder=assistant.embedder)
            first_s = time.perf_counter() - start
            start = time.perf_counter()
            Assistant.load(settings=replicas[1], embedder=assistant.embedder)
            second_s = time.perf_counter() - start
            counts = shared.index.manifest["counts"]
            searched_by = type(shared.index.dense).__name__

            stores = {"faiss": assistant, "milvus": shared}
            for q in qs[:5]:  # warm-up: ONNX session, caches, the gRPC channel
                for a in stores.values():
                    a.ask(q)
            passes = bench.repeat(3, 1)
            ask_ms = {name: [] for name in stores}
            batch_ms = {name: [] for name in stores}
            dense_ms = {name: [] for name in stores}
            compared, differing = 0, []
            server_cpu = process_cpu_seconds(server.pid)
            for p in range(passes):
                for i, q in enumerate(qs):
                    got = {}
                    for name in _order(stores, i + p):
                        start = time.perf_counter()
                        got[name] = _quoted(stores[name].ask(q))
                        ask_ms[name].append((time.perf_counter() - start) * 1000)
                    compared += 1
                    if got["faiss"] != got["milvus"]:
                        differing.append(q)
            server_ms_per_ask = (process_cpu_seconds(server.pid) - server_cpu) * 1000 / len(ask_ms["milvus"])
            batches = [qs[i : i + BATCH] for i in range(0, len(qs), BATCH)]
            for p in range(passes):
                for i, batch in enumerate(batches):
                    got = {}
                    for name in _order(stores, i + p):
                        start = time.perf_counter()
                        got[name] = [_quoted(a) for a in stores[name].ask_batch(batch)]
                        batch_ms[name].append((time.perf_counter() - start) * 1000 / len(batch))
                    for q, here, there in zip(batch, got["faiss"], got["milvus"]):
                        compared += 1
                        if here != there:
                            differing.append(q)
            vectors = assistant.embedder.encode_queries(qs)
            rows_differ = 0
            for p in range(passes):
                for i, vector in enumerate(vectors):
                    got = {}
                    for name in _order(stores, i + p):
                        start = time.perf_counter()
                        got[name] = [row for row, _ in ann.search(stores[name].index.dense, vector[None], 50)[0]]
                        dense_ms[name].append((time.perf_counter() - start) * 1000)
                    rows_differ += got["faiss"] != got["milvus"]
            for settings in replicas:  # the stores' gRPC clients, before their server goes
                open_store(settings).close()
    finally:
        shutil.rmtree(data, ignore_errors=True)

    print(f"  milvus      answers differing between the FAISS and Milvus stores: {len(differing)} of {compared} "
          f"(ask and ask_batch); dense candidate lists differing: {rows_differ} of {len(dense_ms['faiss'])}",
          flush=True)  # fmt: skip
    same = f"answers identical {compared - len(differing)}/{compared}"
    note = f"{len(qs)} questions x {passes}, alternated"
    bench.add(figure("milvus", "seeds: first replica loads an empty Milvus store (build, upload)", [first_s], "s",
                     f"{counts['chunks']} chunks, {counts['sentences']} sentences; model already loaded"))  # fmt: skip
    bench.add(figure("milvus", "seeds: second replica loads the stored version (download to cache)", [second_s],
                     "s", f"vectors searched by {searched_by}"))  # fmt: skip
    bench.add(figure("milvus", "seeds: ask, FAISS folder store", ask_ms["faiss"], "ms", note))
    bench.add(figure("milvus", "seeds: ask, Milvus store (milvus-lite over gRPC, FLAT/IP)", ask_ms["milvus"], "ms",
                     f"{same}; server CPU {server_ms_per_ask:.1f} ms/question"))  # fmt: skip
    bench.add(figure("milvus", f"seeds: ask_batch of {BATCH}, per question, FAISS folder store", batch_ms["faiss"],
                     "ms", f"{len(batches)} batches x {passes}"))  # fmt: skip
    bench.add(figure("milvus", f"seeds: ask_batch of {BATCH}, per question, Milvus store", batch_ms["milvus"], "ms"))
    bench.add(figure("milvus", "seeds:   dense search alone (ann.search, 50 candidates), FAISS", dense_ms["faiss"],
                     "ms", "2 of these per question: chunks, sentences"))  # fmt: skip
    lists = len(dense_ms["faiss"])
    bench.add(figure("milvus", "seeds:   dense search alone (ann.search, 50 candidates), Milvus", dense_ms["milvus"],
                     "ms", f"candidate lists identical {lists - rows_differ}/{lists}"))  # fmt: skip
    bench.ratio("milvus / faiss ask p50", ask_ms["milvus"], ask_ms["faiss"])
    bench.ratio(f"milvus / faiss ask_batch({BATCH}) per-question p50", batch_ms["milvus"], batch_ms["faiss"])
    bench.ratio("milvus / faiss dense search p50", dense_ms["milvus"], dense_ms["faiss"])
    bench.results["milvus_seeds"] = {
        "uri": "milvus://127.0.0.1:PORT/seeds (milvus-lite server)", "first_load_s": first_s,
        "second_load_s": second_s, "answers_compared": compared, "answers_differing": len(differing),
        "differing_questions": sorted(set(differing)), "dense_lists_compared": len(dense_ms["faiss"]),
        "dense_lists_differing": rows_differ, "server_cpu_ms_per_ask": server_ms_per_ask,
    }  # fmt: skip


def _order(stores: dict, turn: int) -> list[str]:
    names = list(stores)
    return names if turn % 2 == 0 else names[::-1]


def million(bench) -> None:
    """Random unit 384-d vectors in a milvus-lite server: 1,000,000 (100,000 with --quick).

    milvus_worker.py (a fresh process; the server is another, started here) inserts them
    over gRPC in batches of 5,000, builds the index, times 100 single fresh random
    queries (limit 10) per search setting and one call with all 100, and measures
    recall@10 against exact inner product. Then ann_worker.py runs FAISS on the same
    vectors and queries (same seed, after the server is stopped): the index the folder
    store picks for that size (ann.choose_params) and exact search.

    The index is IVF_FLAT, nlist=256 per segment (milvus-lite keeps segments of at most
    100,000 rows and builds one FAISS index per segment), searched at nprobe 16, 64 and
    128. Why not HNSW: measured at 100k on this 2-core machine, milvus-lite's HNSW
    (M=16, efConstruction=40, FAISS's default; built on one core) took 37 s (~6-7
    minutes at 1M; its default efConstruction=200 took 66 s) and reached recall@10 of
    only 0.11 at ef=64 and 0.28 at ef=256 (0.14 / 0.34 with efConstruction=200): random
    vectors are the hardest case for a graph. IVF_FLAT built in 2 s and reached 0.20 /
    0.52 / 0.74 at nprobe 16 / 64 / 128, and single-query time is milvus-lite's
    per-query Python work over every row more than the index's (~55-75 ms at 100k
    either way). `--hnsw` builds HNSW too, on the same rows after IVF_FLAT. If a size
    fails (time, or memory: the worker stops when the server passes 16 GB), the next
    smaller one (300k, 100k) is measured and the failure recorded with bench.skip.
    """
    n = bench.repeat(1_000_000, 100_000)
    queries = 100
    kinds = "IVF_FLAT,HNSW" if bench.hnsw else "IVF_FLAT"
    sizes = [n] + [s for s in (300_000, 100_000) if s < n]
    row = None
    for size in sizes:
        row, wall, reason = _milvus_worker(bench, size, queries, kinds)
        if row is not None:
            break
        bench.skip("milvus", f"random {size:,} in milvus-lite", reason)
    if row is None:
        return
    _million_figures(bench, row, wall)
    faiss = _faiss_same_size(bench, row["n"], queries)
    if faiss is not None:
        for s in row["indexes"][0]["searches"]:
            if s["params"].get("nprobe") == 64:
                bench.ratio(f"milvus IVF nprobe=64 / faiss folder index search p50, {row['n']:,}",
                            s["search_ms"], [faiss["search_ms_p50"]])  # fmt: skip
                bench.ratio(f"milvus IVF nprobe=64 / faiss exact search p50, {row['n']:,}",
                            s["search_ms"], [faiss["exact"]["search_ms_p50"]])  # fmt: skip
    bench.results["milvus_random"] = {"milvus": row, "faiss": faiss}


def _milvus_worker(bench, size: int, queries: int, kinds: str) -> tuple[dict | None, float, str | None]:
    """milvus_worker.py against a fresh milvus-lite server: (its JSON, wall s, why it failed)."""
    data = bench.tmp / f"milvus-random-{size}"
    timeout = max(600.0, size / 1_000_000 * 2400 * len(kinds.split(",")))  # 40 minutes an index at 1M
    row, wall, reason = None, 0.0, None
    try:
        with milvus_server(data) as (address, server):
            args = [sys.executable, str(HERE / "milvus_worker.py"), "--uri", f"http://{address}",
                    "--server-pid", str(server.pid), "--data-dir", str(data / "data"), "--n", str(size),
                    "--queries", str(queries), "--index", kinds]  # fmt: skip
            try:
                wall, _, result = run_process(args, cwd=bench.root, timeout=timeout)
                if result.returncode != 0:
                    reason = " ".join(result.stderr.split())[-300:] or f"exit code {result.returncode}"
                else:
                    row = json.loads(result.stdout.strip().splitlines()[-1])
            except subprocess.TimeoutExpired:
                reason = f"insert + index + search did not finish in {timeout / 60:.0f} minutes"
    except RuntimeError as exc:
        reason = str(exc)[-300:]
    finally:
        shutil.rmtree(data, ignore_errors=True)
    return row, wall, reason


def _params(params: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in params.items()) or "defaults"


def _million_figures(bench, row: dict, wall: float) -> None:
    n = f"random {row['n']:,}"
    rss = row["server_rss_mb"]
    bench.add_raw("milvus", f"{n}: insert over gRPC (batches of {row['batch_rows']:,}) + flush", 1,
                  row["insert_s"], row["insert_s"], "s",
                  f"{row['insert_rows_per_s']:,.0f} rows/s; server CPU {row['insert_server_cpu_s']:.0f} s; "
                  f"server RSS {rss['after_insert']:,.0f} MB ({row['raw_mb']:,.0f} MB raw); "
                  f"worker total {wall / 60:.1f} min")  # fmt: skip
    for i, built in enumerate(row["indexes"]):
        kind = built["index"]
        after = "" if i == 0 else f"after {row['indexes'][i - 1]['index']} was dropped, same rows; "
        bench.add_raw("milvus", f"{n}: build {kind} ({_params(built['build_params'])}), "
                      f"{built['segments']} segments", 1, built["build_s"], built["build_s"], "s",
                      f"{after}server CPU {built['build_server_cpu_s']:.0f} s; server RSS "
                      f"{built['server_rss_after_build_mb']:,.0f} MB; on disk {built['disk_mb']:,.0f} MB")  # fmt: skip
        for s in built["searches"]:
            note = f"recall@10 {s['recall_at_10']:.3f}; server CPU {s['server_cpu_ms_per_query']:.0f} ms/query"
            bench.add(figure("milvus", f"{n}: search one query, limit 10 ({kind} {_params(s['params'])})",
                             s["search_ms"], "ms", note))  # fmt: skip
            bench.add_raw("milvus", f"  same, {s['batch_of']} queries in one search call, per query", 1,
                          s["batch_ms_per_query"], s["batch_ms_per_query"], "ms",
                          f"recall@10 {s['batch_recall_at_10']:.3f}")  # fmt: skip


def _faiss_same_size(bench, n: int, queries: int) -> dict | None:
    """ann_worker.py at the same size and seed: the folder store's FAISS on the same data."""
    args = [sys.executable, str(HERE / "ann_worker.py"), "--n", str(n), "--queries", str(queries)]
    try:
        _, _, result = run_process(args, cwd=bench.root, timeout=1800)
    except subprocess.TimeoutExpired:
        bench.skip("milvus", f"random {n:,}: FAISS side by side", "ann_worker.py did not finish in 30 minutes")
        return None
    if result.returncode != 0:
        bench.skip("milvus", f"random {n:,}: FAISS side by side", result.stderr[-300:])
        return None
    row = json.loads(result.stdout.strip().splitlines()[-1])
    kind = row["params"]["type"]
    bench.add_raw("milvus", f"random {n:,}: FAISS, the folder store's index ({kind})", row["queries"],
                  row["search_ms_p50"], row["search_ms_p95"], "ms",
                  f"same vectors and queries; recall@10 {row['recall_at_10']:.3f}; build {row['build_s']:.1f} s; "
                  f"index {row['index_mb']:,.0f} MB")  # fmt: skip
    exact = row["exact"]
    bench.add_raw("milvus", f"random {n:,}: FAISS, exact (IndexFlatIP)", exact["queries"],
                  exact["search_ms_p50"], exact["search_ms_p95"], "ms", f"recall@10 {exact['recall_at_10']:.3f}")
    return row
