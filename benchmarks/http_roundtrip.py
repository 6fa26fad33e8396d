"""HTTP round-trip of one question through the web app's /ask API, via gradio_client.

Starts the real server (real model, the given seeds and index) on 127.0.0.1 in this
process, then times `Client.predict(question, api_name="/ask")` and, for comparison,
the in-process `Assistant.ask`. Prints p50/p95 in milliseconds; asserts nothing.

    .venv/bin/python benchmarks/http_roundtrip.py [--requests 30] [--seeds seeds] [--index DIR]

The index defaults to a fresh temporary folder so the project's index/ is untouched.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from assistant import Assistant, load_settings  # noqa: E402
from assistant.web.serve import create_server_app  # noqa: E402
from assistant.web.server import serve_in_thread  # noqa: E402


def percentile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


def timed(fn, n: int) -> list[float]:
    out = []
    for _ in range(n):
        start = time.perf_counter()
        fn()
        out.append((time.perf_counter() - start) * 1000)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=30)
    parser.add_argument("--question", default="When was the armistice signed?")
    parser.add_argument("--seeds", type=Path, default=ROOT / "seeds")
    parser.add_argument("--index", type=Path, default=None)
    args = parser.parse_args()

    from gradio_client import Client

    index = args.index or Path(tempfile.mkdtemp(prefix="bench-index-"))
    start = time.perf_counter()
    assistant = Assistant.load(args.seeds, index, settings=load_settings())
    assistant.ask(args.question)  # loads the model weights
    print(f"load + first answer: {time.perf_counter() - start:.1f} s "
          f"({assistant.index.manifest['counts']['chunks']} chunks)")  # fmt: skip

    with serve_in_thread(create_server_app(assistant)) as url:
        client = Client(url, verbose=False)
        timed(lambda: client.predict(args.question, api_name="/ask"), 3)  # warm-up
        http = timed(lambda: client.predict(args.question, api_name="/ask"), args.requests)
        client.close()
    direct = timed(lambda: assistant.ask(args.question), args.requests)

    print(f"{'path':<34}{'n':>4}{'p50 ms':>10}{'p95 ms':>10}")
    for name, values in [("gradio_client -> /ask (HTTP)", http), ("Assistant.ask (in process)", direct)]:
        print(f"{name:<34}{len(values):>4}{percentile(values, 50):>10.1f}{percentile(values, 95):>10.1f}")
    overhead = percentile(http, 50) - percentile(direct, 50)
    print(f"HTTP + queue overhead at p50: {overhead:.1f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
