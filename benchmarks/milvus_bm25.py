"""Does Milvus's own BM25 full-text search rank the seeds' chunks as the project's bm25s
index does?

Starts a milvus-lite gRPC server (127.0.0.1, a free port, a temporary data dir), puts the
seeds' chunks into collections with a BM25 Function, and asks every question of
tests/data/questions.jsonl of both the project's BM25 (retrieval.bm25_search over the
Query's terms, as `retrieve` does) and Milvus:

  A       raw `indexed_text`, Milvus's standard analyzer, the question as typed
  A+      the same collection, queried with the Query's text (follow-up joined,
          spelling fixed, aliases expanded, talk about the text stripped)
  A-stop  raw `indexed_text`, standard analyzer + a stop filter with the project's
          STOPWORDS, the question as typed (no stemming: milvus-lite has no stemmer)
  B       each chunk's `terms()` joined by spaces, a whitespace tokenizer (or, where the
          server has none, the standard one on text where it splits the same), no
          filters, bm25_k1/bm25_b = the index's bm25s values; queried with the Query's
          terms joined by spaces: only the BM25 formula differs.

Prints per variant: mean overlap@10, identical top-1, identical top-10 order (as returned,
and with score ties broken by row on both sides), Spearman/Kendall over the union of the
two top-10s (full score vectors on both sides), the mean |score difference| for B where
ids match, and the median Milvus search latency (one top-10 search per call, gRPC round
trip included).

Run from the project root:  .venv/bin/python benchmarks/milvus_bm25.py
"""

from __future__ import annotations

import json
import logging
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from scipy.stats import kendalltau, spearmanr

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from assistant import Assistant  # noqa: E402
from assistant.search.retrieval import bm25_search  # noqa: E402
from assistant.text.terms import STOPWORDS, terms  # noqa: E402

K = 10
MILVUS_LITE = ROOT / ".venv" / "bin" / "milvus-lite"
_NOT_WORD = re.compile(r"\W", re.UNICODE)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, proc: subprocess.Popen, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"milvus-lite server exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError("milvus-lite server did not open its port")


def as_word(term: str) -> str:
    """A term the standard analyzer (\\w+, lower case) keeps whole: a non-word character
    (an apostrophe: "o'brien") becomes the modifier letter apostrophe U+02BC, a word
    character; terms are lower case already. Same mapping on chunks and queries."""
    return _NOT_WORD.sub("\u02bc", term)


def create_collection(client, name: str, analyzer: dict, index_params: dict) -> None:
    from pymilvus import DataType, Function, FunctionType, MilvusClient

    schema = MilvusClient.create_schema(auto_id=False)
    schema.add_field("row", DataType.INT64, is_primary=True)
    schema.add_field("text", DataType.VARCHAR, max_length=65535, enable_analyzer=True,
                     analyzer_params=analyzer)  # fmt: skip
    schema.add_field("sparse", DataType.SPARSE_FLOAT_VECTOR)
    schema.add_function(Function(name=f"{name}_bm25", function_type=FunctionType.BM25,
                                 input_field_names=["text"], output_field_names=["sparse"]))  # fmt: skip
    client.create_collection(name, schema=schema)
    params = client.prepare_index_params()
    params.add_index(field_name="sparse", index_type="SPARSE_INVERTED_INDEX", metric_type="BM25",
                     params=index_params)  # fmt: skip
    client.create_index(name, params)


def fill(client, name: str, texts: list[str]) -> None:
    client.insert(name, [{"row": i, "text": t} for i, t in enumerate(texts)])
    client.flush(name)  # one immutable segment: milvus-lite's BM25 statistics are per segment
    client.load_collection(name)


def milvus_search(client, name: str, text: str, limit: int) -> tuple[list[tuple[int, float]], float]:
    """(row, score) best first, and the call's seconds. An empty text is not sent."""
    if not text.strip():
        return [], 0.0
    started = time.perf_counter()
    result = client.search(name, data=[text], anns_field="sparse", limit=limit,
                           output_fields=["row"], search_params={"metric_type": "BM25"})  # fmt: skip
    seconds = time.perf_counter() - started
    # milvus-lite 3.2.2's gRPC adapter sends BM25 hits with distance = -score (best first).
    return [(int(hit.id), -float(hit.distance)) for hit in result[0]], seconds


def tie_sorted(ranking: list[tuple[int, float]], scale: float = 1.0) -> list[int]:
    """Rows sorted by score rounded to 5 decimals, then row: the order with ties broken
    the same way on both sides (bm25s keeps float32, milvus-lite computes in float64)."""
    return [r for r, _ in sorted(ranking, key=lambda p: (-round(p[1] * scale, 5), p[0]))]


def compare(project, project_full, milvus, milvus_full, scale):
    """Per-question agreement of a project top-10 with a Milvus top-10 (both best first)."""
    p, m = [r for r, _ in project], [r for r, _ in milvus]
    both_empty = not p and not m
    overlap = 1.0 if both_empty else len(set(p) & set(m)) / max(len(p), len(m))
    top1 = both_empty or (bool(p) and bool(m) and p[0] == m[0])
    same_order = p == m
    p_full = sorted(((r, s) for r, s in enumerate(project_full) if s > 0), key=lambda x: (-x[1], x[0]))
    same_tied = tie_sorted(p_full)[:K] == tie_sorted(milvus_full, scale)[:K]
    union = sorted(set(p) | set(m))
    rho = tau = None
    if len(union) >= 2:
        ms = dict(milvus_full)
        x = [float(project_full[r]) for r in union]
        y = [ms.get(r, 0.0) for r in union]
        if len(set(x)) > 1 and len(set(y)) > 1:
            rho, tau = spearmanr(x, y).statistic, kendalltau(x, y).statistic
    return overlap, top1, same_order, same_tied, rho, tau


def main() -> int:
    a = Assistant.load(ROOT / "seeds", ROOT / "index")
    index = a.index
    chunks = index.chunks
    k1, b = float(index.bm25.k1), float(index.bm25.b)
    print(f"index: {len(chunks)} chunks; bm25s method={index.bm25.method} "
          f"idf={index.bm25.idf_method} k1={k1} b={b}")  # fmt: skip

    with open(ROOT / "tests" / "data" / "questions.jsonl", encoding="utf-8") as handle:
        rows = [json.loads(line) for line in handle if line.strip()]
    questions = [r["question"] for r in rows]
    histories = [[t for t in r.get("history", []) if isinstance(t, str)] for r in rows]
    queries = a.queries(questions, histories)
    print(f"questions: {len(questions)} ({sum(1 for h in histories if h)} with history)")

    raw_texts = [c.indexed_text for c in chunks]
    term_texts = [" ".join(as_word(t) for t in terms(c.indexed_text)) for c in chunks]

    data_dir = Path(tempfile.mkdtemp(prefix="milvus_bm25_"))
    port = free_port()
    server = subprocess.Popen(
        [str(MILVUS_LITE), "server", "--data-dir", str(data_dir), "--host", "127.0.0.1",
         "--port", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    client = None
    try:
        wait_for_port(port, server)
        from pymilvus import MilvusClient
        from pymilvus.exceptions import MilvusException

        client = MilvusClient(uri=f"http://127.0.0.1:{port}")
        defaults = {"bm25_k1": k1, "bm25_b": b}
        create_collection(client, "raw_standard", {"tokenizer": "standard"}, {})
        create_collection(client, "raw_stop", {"tokenizer": "standard", "filter": [
            {"type": "stop", "stop_words": sorted(STOPWORDS)}]}, {})  # fmt: skip
        quiet = logging.getLogger("pymilvus")
        level, quiet.level = quiet.level, logging.CRITICAL  # the refusal below is expected
        try:
            create_collection(client, "terms", {"tokenizer": "whitespace"}, defaults)
            tokenizer_b = "whitespace"
        except MilvusException as error:
            print(f"B: whitespace tokenizer refused ({str(error).strip()[:160]}); using "
                  "standard (\\w+, lower case): on space-joined terms it splits the same")  # fmt: skip
            client.drop_collection("terms") if client.has_collection("terms") else None
            create_collection(client, "terms", {"tokenizer": "standard"}, defaults)
            tokenizer_b = "standard"
        finally:
            quiet.setLevel(level)
        fill(client, "raw_standard", raw_texts)
        fill(client, "raw_stop", raw_texts)
        fill(client, "terms", term_texts)
        segments = {name: len(list((data_dir).rglob(f"*{name}*/**/*.parquet")))
                    for name in ("raw_standard", "raw_stop", "terms")}  # fmt: skip
        print(f"B tokenizer: {tokenizer_b}; k1={k1} b={b} on B (Milvus defaults 1.5/0.75 on A)")
        print(f"parquet files per collection after flush: {segments}")

        # Every chunk is in Milvus (65 rows per collection).
        sanity = client.query("terms", filter="row >= 0", output_fields=["row", "text"], limit=len(chunks))
        assert len(sanity) == len(chunks), "not every chunk is in Milvus"

        variants = {
            "A": ("raw_standard", lambda q: q.question, 1.0),
            "A+": ("raw_standard", lambda q: q.text, 1.0),
            "A-stop": ("raw_stop", lambda q: q.question, 1.0),
            # Milvus multiplies the term part by (k1 + 1); bm25s's "lucene" does not.
            "B": ("terms", lambda q: " ".join(as_word(t) for t in q.terms), 1.0 / (k1 + 1.0)),
        }
        stats = {name: {"overlap": [], "top1": [], "order": [], "tied": [], "rho": [], "tau": [],
                        "latency": [], "diff": [], "diff_scaled": [], "rel": [], "empty": 0}
                 for name in variants}  # fmt: skip
        project_empty, project_seconds = 0, []
        for query in queries:
            started = time.perf_counter()
            project = bm25_search(index, query.terms, K)
            project_seconds.append(time.perf_counter() - started)
            known = [t for t in query.terms if t in index.vocabulary]
            project_full = index.bm25.get_scores(known) if known else np.zeros(len(chunks))
            project_empty += not project
            for name, (collection, text_of, scale) in variants.items():
                text = text_of(query)
                milvus, seconds = milvus_search(client, collection, text, K)
                if text.strip():
                    stats[name]["latency"].append(seconds)
                milvus_full, _ = milvus_search(client, collection, text, len(chunks))
                if [r for r, _ in milvus_full[:K]] != [r for r, _ in milvus]:
                    print(f"note: {name} top-{K} differs from the head of the full search "
                          f"for {query.question!r}")  # fmt: skip
                stats[name]["empty"] += not milvus
                overlap, top1, order, tied, rho, tau = compare(project, project_full, milvus,
                                                               milvus_full, scale)  # fmt: skip
                s = stats[name]
                s["overlap"].append(overlap)
                s["top1"].append(top1)
                s["order"].append(order)
                s["tied"].append(tied)
                if rho is not None and not np.isnan(rho):
                    s["rho"].append(rho)
                if tau is not None and not np.isnan(tau):
                    s["tau"].append(tau)
                if name == "B":
                    mine = dict(project)
                    for row, score in milvus:
                        if row in mine:
                            s["diff"].append(abs(score - mine[row]))
                            s["diff_scaled"].append(abs(score * scale - mine[row]))
                            s["rel"].append(abs(score * scale - mine[row]) / mine[row])

        n = len(queries)
        print(f"\nproject BM25 (retrieval.bm25_search, bm25s get_scores): "
              f"{project_empty} of {n} questions with no known term (empty ranking); "
              f"median {1000 * statistics.median(project_seconds):.3f} ms in process")  # fmt: skip
        header = (f"{'variant':8} {'overlap@10':>10} {'top-1 =':>8} {'top-10 =':>9} "
                  f"{'ties->row':>9} {'Spearman':>8} {'Kendall':>8} {'empty':>6} {'median ms':>9}")  # fmt: skip
        print(header)
        for name, s in stats.items():
            print(f"{name:8} {np.mean(s['overlap']):10.4f} {np.mean(s['top1']):8.3f} "
                  f"{np.mean(s['order']):9.3f} {np.mean(s['tied']):9.3f} "
                  f"{np.mean(s['rho']) if s['rho'] else float('nan'):8.4f} "
                  f"{np.mean(s['tau']) if s['tau'] else float('nan'):8.4f} {s['empty']:6d} "
                  f"{1000 * statistics.median(s['latency']):9.2f}")  # fmt: skip
        s = stats["B"]
        print(f"\nB, ids in both top-10s ({len(s['diff'])} pairs):")
        print(f"  mean |Milvus score - bm25s score|            = {np.mean(s['diff']):.6f} "
              f"(max {np.max(s['diff']):.6f})")  # fmt: skip
        print(f"  mean |Milvus score/(k1+1) - bm25s score|     = {np.mean(s['diff_scaled']):.3e} "
              f"(max {np.max(s['diff_scaled']):.3e}; mean relative {np.mean(s['rel']):.3e})")  # fmt: skip
        return 0
    finally:
        if client is not None:
            try:
                client.close()
            except Exception:
                pass
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
