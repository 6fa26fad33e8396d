"""The benchmark suite: `make bench` (= .venv/bin/python benchmarks/run.py).

Measures the seeds (build, cold start, server readiness, ask latency, HTTP round
trip, throughput), txtai side by side, batching, embedding throughput, an
incremental rebuild in a 10k-chunk corpus, dense/BM25 search on random data
up to 1M, and the Milvus store beside the FAISS folder store (the seeds; random
vectors to 1M in a milvus-lite server). Prints a table, writes
benchmarks/results.json and draws benchmarks/scaling.png. Every figure is a median
with its p95 over repeated runs (n says how many); ratios compare figures measured
in this same run. Nothing is asserted: these are numbers to read, not tests.

    python benchmarks/run.py [--quick] [--only seeds,http,txtai,scale,incremental,ann,bm25,milvus]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))

from measure import Figure, load_average, machine, package_version  # noqa: E402

SECTIONS = ("seeds", "http", "txtai", "scale", "incremental", "ann", "bm25", "milvus")


class Bench:
    """What every step shares: options, the figures so far, extra results, a temp folder."""

    def __init__(self, args):
        from assistant import load_settings

        self.quick = args.quick
        self.hnsw = args.hnsw
        self.only = set(args.only.split(",")) if args.only else set(SECTIONS)
        self.root = str(ROOT)
        self.seeds = ROOT / "seeds"
        self.tmp = Path(tempfile.mkdtemp(prefix="assistant-bench-"))
        self.settings = load_settings()
        self.figures: list[Figure] = []
        self.ratios: list[dict] = []
        self.skipped: list[dict] = []
        self.results: dict = {}
        self.timings: dict[str, float] = {}

    def repeat(self, full, quick):
        return quick if self.quick else full

    def add(self, fig: Figure) -> None:
        self.figures.append(fig)
        print(f"  {fig.section:<12}{fig.name:<66}{fig.p50:>10.4g}{fig.p95:>10.4g} {fig.unit:<9}"
              f"n={fig.n:<5}{fig.note}", flush=True)  # fmt: skip

    def add_raw(self, section, name, n, p50, p95, unit, note="") -> None:
        self.add(Figure(section, name, n, p50, p95, unit, note))

    def skip(self, section: str, name: str, reason: str) -> None:
        self.skipped.append({"section": section, "name": name, "reason": reason})
        print(f"  {section:<12}{name:<66} SKIPPED: {reason}", flush=True)

    def ratio(self, name: str, values, baseline, *, higher_is_better: bool = False) -> None:
        value = statistics.median(values) / statistics.median(baseline)
        self.ratios.append({"name": name, "ratio": value, "higher_is_better": higher_is_better})
        print(f"  {'ratio':<12}{name:<66}{value:>10.3g}", flush=True)

    def version(self, package: str) -> str:
        return package_version(package) or "?"

    def wants(self, section: str) -> bool:
        return section in self.only


def run(bench: Bench) -> None:
    import http_bench
    import milvus_bench
    import scale_bench
    import seeds_bench

    def step(name: str, fn, *args):
        started = time.perf_counter()
        print(f"\n== {name} (load average {load_average()})", flush=True)
        try:
            return fn(*args)
        finally:
            bench.timings[name] = time.perf_counter() - started

    needs_seeds = bench.only & {"seeds", "http", "txtai", "scale", "milvus"}
    assistant = index_dir = None
    qs = seeds_bench.questions(ROOT, bench.repeat(60, 20))
    if needs_seeds:
        index_dir = step("seeds: builds", seeds_bench.seeds_builds, bench)
        from assistant import Assistant

        settings = bench.settings.with_(seeds_dir=bench.seeds, index_dir=index_dir)
        assistant = Assistant.load(bench.seeds, index_dir, settings=settings)
    ask = None
    if bench.wants("seeds"):
        step("seeds: cold start", seeds_bench.cold_ask, bench, index_dir)
        ask = step("seeds: ask in the library", seeds_bench.library_ask, bench, assistant, qs)
        step("concurrency: batching in the library", seeds_bench.batching, bench, assistant, qs)
    if bench.wants("http"):
        server = step("http: server start", http_bench.server_ready, bench, index_dir)
        if server is not None:
            try:
                library_ms = ask["ask_ms"] if ask else []
                step("http: round trip and throughput", http_bench.http_figures, bench, server, qs,
                     library_ms)  # fmt: skip
            finally:
                server.stop()
    if bench.wants("http"):
        step("concurrency: the app's /ask batched vs not", http_bench.batching_app, bench, index_dir, qs)
        step("concurrency: Gradio batch=True", http_bench.batching_http, bench, index_dir, qs)
    if bench.wants("txtai"):
        step("txtai side by side", seeds_bench.txtai_side_by_side, bench, assistant, qs,
             ask["ask_ms"] if ask else [float("nan")])  # fmt: skip
    sentences = scale_bench.synthetic_sentences(bench)
    if bench.wants("scale"):
        step("scale: embedding throughput", scale_bench.embedding_throughput, bench,
             assistant.embedder, sentences)  # fmt: skip
    if bench.wants("incremental"):
        step("incremental rebuild", scale_bench.incremental, bench, sentences,
             assistant.embedder if assistant else None)  # fmt: skip
    if bench.wants("ann"):
        step("random vectors", scale_bench.random_vectors, bench)
    if bench.wants("bm25"):
        step("BM25", scale_bench.bm25_sizes, bench)
    if bench.wants("milvus"):
        step("milvus: the seeds, FAISS folder vs Milvus store", milvus_bench.seeds_side_by_side, bench,
             assistant, qs)  # fmt: skip
        step("milvus: random vectors in milvus-lite", milvus_bench.million, bench)


def print_table(bench: Bench) -> None:
    print(f"\n{'section':<12}{'figure':<66}{'p50':>10}{'p95':>10} {'unit':<9}{'n':<7}note")
    for f in bench.figures:
        print(f"{f.section:<12}{f.name:<66}{f.p50:>10.4g}{f.p95:>10.4g} {f.unit:<9}{f.n:<7}{f.note}")
    for r in bench.ratios:
        print(f"{'ratio':<12}{r['name']:<66}{r['ratio']:>10.3g}")
    for s in bench.skipped:
        print(f"{s['section']:<12}{s['name']:<66} SKIPPED: {s['reason']}")


def write_outputs(bench: Bench, out: Path, plot: Path, started: float, load_before) -> None:
    data = {
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "quick": bench.quick,
        "machine": machine(),
        "load_average": {"start": load_before, "end": load_average()},
        "seconds": time.perf_counter() - started,
        "step_seconds": bench.timings,
        "figures": [f.to_dict() for f in bench.figures],
        "ratios": bench.ratios,
        "skipped": bench.skipped,
        "results": bench.results,
    }
    out.write_text(json.dumps(data, indent=1, default=float) + "\n")
    try:
        from plot import draw_scaling

        draw_scaling(data, plot)
    except Exception as exc:  # noqa: BLE001 - the numbers are written; say why no plot
        print(f"no plot: {exc}", file=sys.stderr)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes, fewer repeats")
    parser.add_argument("--only", default="", help=f"comma-separated subset of {','.join(SECTIONS)}")
    parser.add_argument("--hnsw", action="store_true",
                        help="also build HNSW at 100k (slow): FAISS (ann), milvus-lite (milvus)")
    parser.add_argument("--out", type=Path, default=HERE / "results.json")
    parser.add_argument("--plot", type=Path, default=HERE / "scaling.png")
    args = parser.parse_args()
    started, load_before = time.perf_counter(), load_average()
    bench = Bench(args)
    print(f"benchmarks: {bench.tmp} (load average {load_before}, {machine()['cores']} cores)")
    try:
        run(bench)
    finally:
        print_table(bench)
        write_outputs(bench, args.out, args.plot, started, load_before)
        shutil.rmtree(bench.tmp, ignore_errors=True)
    print(f"\n{time.perf_counter() - started:.0f} s; wrote {args.out} and {args.plot}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
