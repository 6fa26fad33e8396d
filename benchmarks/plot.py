"""benchmarks/scaling.png: search latency and memory against corpus size, from results.json.

Does not measure anything; `python benchmarks/plot.py` redraws from the saved JSON.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def draw_scaling(data: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    dense = data["results"].get("random_vectors", [])
    bm25 = data["results"].get("bm25", [])
    if not dense and not bm25:
        raise ValueError("no scale results to plot")
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    if dense:
        n = [r["n"] for r in dense]
        p50 = [r["search_ms_p50"] for r in dense]
        p95 = [r["search_ms_p95"] for r in dense]
        left.errorbar(n, p50, yerr=[[0] * len(n), [b - a for a, b in zip(p50, p95)]], marker="o",
                      capsize=3, label="dense, index chosen by size (p50, bar to p95)")  # fmt: skip
        left.plot(n, [r["search_cpu_ms_p50"] for r in dense], "o:", label="dense, CPU time p50")
        left.plot(n, [r["exact"]["search_ms_p50"] for r in dense], "s--", label="dense, exact (flat) p50")
        for r in dense:
            left.annotate(f"{r['params']['type']}\nrecall {r['recall_at_10']:.2f}",
                          (r["n"], r["search_ms_p50"]), textcoords="offset points", xytext=(4, -22),
                          fontsize=7)  # fmt: skip
        right.plot(n, [r["index_mb"] for r in dense], "o-", label="dense index (serialized bytes)")
        right.plot(n, [r["raw_mb"] for r in dense], "k:", label="raw float32 vectors")
        right.plot(n, [1.3 * r["raw_mb"] for r in dense], "r--", lw=0.8, label="1.3 x raw (target)")
    if bm25:
        n = [r["n"] for r in bm25]
        left.plot(n, [r["query_ms_p50"] for r in bm25], "^-", label="BM25 (bm25s) p50")
        right.plot(n, [r["index_mb"] for r in bm25], "^-", label="BM25 score matrix")
    left.axhline(10, color="r", lw=0.8, ls="--", label="10 ms (target at 1M)")
    for ax, title, unit in ((left, "search latency, one query", "ms"), (right, "memory", "MB")):
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("corpus size (vectors / chunks)")
        ax.set_ylabel(unit)
        ax.set_title(title)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
    cores = data.get("machine", {}).get("cores")
    load = data.get("load_average", {})
    fig.suptitle(f"random unit 384-d vectors; {cores} cores; load average {load.get('start')} -> "
                 f"{load.get('end')}", fontsize=9)  # fmt: skip
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    here = Path(__file__).resolve().parent
    source = Path(sys.argv[1]) if len(sys.argv) > 1 else here / "results.json"
    draw_scaling(json.loads(source.read_text()), here / "scaling.png")
