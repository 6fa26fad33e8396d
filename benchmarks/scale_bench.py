"""Scale: embedding throughput, incremental rebuilds, random vectors to 1M, BM25 to 1M.

Random-vector and BM25 sizes run in child processes (ann_worker.py, bm25_worker.py)
so each one's memory is its own. Asserts nothing.
"""

from __future__ import annotations

import json
import random
import shutil
import sys
import time
from pathlib import Path

from corpus import chunk_texts, seed_sentences, write_corpus
from measure import figure, run_process
from seeds_bench import warm_torch

HERE = Path(__file__).resolve().parent


def embedding_throughput(bench, embedder, sentences: list[str]) -> None:
    """Chunks/s of sentence-transformers (torch) vs onnxruntime on the same chunk texts."""
    from assistant.embed.onnx_encoder import OnnxQueryEncoder, onnx_path

    settings = bench.settings
    texts = chunk_texts(sentences, bench.repeat(512, 256), embedder.count_tokens, settings)
    texts.sort(key=len)  # both encoders get the same length-sorted batches of 32
    batches = [texts[i : i + 32] for i in range(0, len(texts), 32)]
    onnx = OnnxQueryEncoder(embedder.model_dir, onnx_path(embedder.query_cache_dir, embedder.name))
    warm_torch(embedder)
    onnx.encode(batches[0])
    torch_rates, onnx_rates = [], []
    for batch in batches:  # interleaved, so both see the same machine load
        start = time.perf_counter()
        embedder.encode(batch)
        torch_rates.append(len(batch) / (time.perf_counter() - start))
        start = time.perf_counter()
        onnx.encode(batch)
        onnx_rates.append(len(batch) / (time.perf_counter() - start))
    tokens = sum(embedder.count_tokens(texts)) / len(texts)
    note = f"{len(texts)} synthetic chunks, {tokens:.0f} word pieces each on average; per batch of 32"
    bench.add(figure("scale", "embed chunks: sentence-transformers (torch, 2 threads)", torch_rates,
                     "chunks/s", note))  # fmt: skip
    bench.add(figure("scale", "embed chunks: onnxruntime (1 thread)", onnx_rates, "chunks/s", note))
    bench.ratio("chunk embedding: onnxruntime vs torch", onnx_rates, torch_rates, higher_is_better=True)
    bench.results["embed_projection_20k_s"] = {
        "torch": 20_000 / sorted(torch_rates)[len(torch_rates) // 2],
        "onnxruntime": 20_000 / sorted(onnx_rates)[len(onnx_rates) // 2],
    }


def incremental(bench, sentences: list[str], embedder=None) -> None:
    """A 10k-chunk corpus: full build, then one document changed: only its chunks re-embedded."""
    from assistant import Assistant
    from assistant.embed.sbert import SentenceTransformerEmbedder

    target_chunks = bench.repeat(10_000, 1_000)
    corpus = bench.tmp / "synthetic"
    index_dir = bench.tmp / "synthetic-index"
    # The seeds' embedder, already loaded and warm: the build time is embedding, not loading.
    embedder = embedder or SentenceTransformerEmbedder(query_cache_dir=bench.tmp / "encoder-cache")
    counts = write_corpus(corpus, sentences, target_chunks, embedder.count_tokens, bench.settings)
    marks: list[tuple[float, str, int]] = []

    def progress(label: str, done: int, total: int) -> None:
        marks.append((time.perf_counter(), label, done))

    start = time.perf_counter()
    assistant = Assistant.load(corpus, index_dir, settings=bench.settings.with_(
        seeds_dir=corpus, index_dir=index_dir), embedder=embedder, progress=progress)  # fmt: skip
    full_s = time.perf_counter() - start
    stats = assistant.build_stats
    chunk_marks = [(t, d) for t, label, d in marks if label == "embedding chunks"]
    rates = [(d2 - d1) / (t2 - t1) for (t1, d1), (t2, d2) in zip(chunk_marks, chunk_marks[1:])]
    bench.add(figure("incremental", f"full build, {stats.chunks} chunks in {len(counts)} documents",
                     [full_s], "s", f"{stats.embedded} chunk texts embedded (model already loaded)"))  # fmt: skip
    if rates:
        bench.add(figure("scale", f"embed chunks in that full build (torch, {stats.chunks} chunks)",
                         rates, "chunks/s", "per batch of 256"))  # fmt: skip

    rng = random.Random(3)
    changed_s, embedded = [], []
    names = sorted(counts)
    for i in range(bench.repeat(3, 2)):
        name = names[(i * 7) % len(names)]
        path = corpus / name
        text = path.read_text(encoding="utf-8")
        extra = " ".join(rng.choice(sentences) for _ in range(4))
        path.write_text(text.replace("\nSession 2 Notes\n", f"\nSession 2 Notes\n{extra}\n", 1),
                        encoding="utf-8")  # fmt: skip
        start = time.perf_counter()
        stats = assistant.refresh()
        changed_s.append(time.perf_counter() - start)
        embedded.append(stats.embedded)
    bench.add(figure("incremental", "one document changed: refresh", changed_s, "s",
                     f"chunks re-embedded: {embedded} of {stats.chunks} "
                     f"(the document has ~{sum(counts.values()) // len(counts)})"))  # fmt: skip
    bench.ratio("one changed document vs full build", changed_s, [full_s])
    bench.results["incremental"] = {"full_build_s": full_s, "refresh_s": changed_s,
                                    "re_embedded": embedded, "chunks": stats.chunks,
                                    "documents": len(counts)}  # fmt: skip
    shutil.rmtree(corpus, ignore_errors=True)
    shutil.rmtree(index_dir, ignore_errors=True)


def random_vectors(bench) -> None:
    sizes = [10_000, 100_000, 1_000_000] if not bench.quick else [10_000, 100_000]
    rows = []
    for n in sizes:
        args = [sys.executable, str(HERE / "ann_worker.py"), "--n", str(n),
                "--queries", str(bench.repeat(200, 50))]  # fmt: skip
        if n == 100_000:
            args.append("--compare")
            if bench.hnsw:
                args.append("--hnsw")
        wall, _, result = run_process(args, cwd=bench.root, timeout=1800)
        if result.returncode != 0:
            bench.skip("ann", f"random vectors {n:,}", result.stderr[-300:])
            continue
        row = json.loads(result.stdout.strip().splitlines()[-1])
        rows.append(row)
        kind = row["params"]["type"]
        note = (f"{kind}; recall@10 {row['recall_at_10']:.3f}; build {row['build_s']:.1f} s; "
                f"index {row['index_mb']:.0f} MB = {row['memory_ratio']:.2f} x raw "
                f"(RSS growth {row['rss_growth_mb']:.0f} MB)")  # fmt: skip
        bench.add_raw("ann", f"dense search {n:,} random 384-d ({kind})", row["queries"],
                      row["search_ms_p50"], row["search_ms_p95"], "ms", note)  # fmt: skip
        bench.add_raw("ann", f"  same, CPU time of the search thread", row["queries"],
                      row["search_cpu_ms_p50"], row["search_cpu_ms_p95"], "ms")  # fmt: skip
        if kind != "flat-ip":
            exact = row["exact"]
            bench.add_raw("ann", f"  exact search {n:,} (IndexFlatIP) for comparison", exact["queries"],
                          exact["search_ms_p50"], exact["search_ms_p95"], "ms")  # fmt: skip
        for alt in row.get("alternatives", []):
            bench.add_raw("ann", f"  rejected: {alt['index']}", alt["queries"], alt["search_ms_p50"],
                          alt["search_ms_p95"], "ms",
                          f"recall@10 {alt['recall_at_10']:.3f}; build {alt['build_s']:.1f} s")  # fmt: skip
    bench.results["random_vectors"] = rows


def bm25_sizes(bench) -> None:
    sizes = [10_000, 100_000, 1_000_000] if not bench.quick else [10_000, 100_000]
    rows = []
    for n in sizes:
        args = [sys.executable, str(HERE / "bm25_worker.py"), "--n", str(n)]
        _, _, result = run_process(args, cwd=bench.root, timeout=1800)
        if result.returncode != 0:
            bench.skip("bm25", f"BM25 {n:,}", result.stderr[-300:])
            continue
        row = json.loads(result.stdout.strip().splitlines()[-1])
        rows.append(row)
        bench.add_raw("bm25", f"BM25 query {n:,} chunks (bm25s, k=50)", row["queries"],
                      row["query_ms_p50"], row["query_ms_p95"], "ms",
                      f"build {row['build_s']:.1f} s from analysed tokens; "
                      f"score matrix {row['index_mb']:.0f} MB")  # fmt: skip
    if rows:
        bench.results["analyser_tokens_per_s"] = rows[0]["analyser_tokens_per_s"]
    bench.results["bm25"] = rows


def synthetic_sentences(bench) -> list[str]:
    return seed_sentences(bench.seeds)
