"""The web app over HTTP: server start to /readyz, round trips, throughput, batching
(the app's /ask batched vs one at a time, and a minimal Gradio app likewise).

`assistant serve` runs in a child process (stopped by its own pid); clients run in
this process. Throughput clients speak Gradio's REST protocol with httpx, because
gradio_client costs ~50-70 ms of client CPU a request on the same 2 cores.
Asserts nothing.
"""

from __future__ import annotations

import importlib.util
import signal
import statistics
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

from measure import figure, percentile, process_cpu_seconds, self_cpu_seconds, time_calls
from seeds_bench import cli


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return 0


class Server:
    """`assistant serve` in a child process; stopped with SIGINT, then SIGKILL, by pid."""

    def __init__(self, bench, index_dir: Path, *extra: str):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        args = cli(bench, "serve", "--seeds", str(bench.seeds), "--index", str(index_dir),
                   "--host", "127.0.0.1", "--port", str(self.port), *extra)  # fmt: skip
        self.started = time.perf_counter()
        self.process = subprocess.Popen(args, cwd=bench.root, stdout=subprocess.DEVNULL,
                                        stderr=subprocess.PIPE, text=True)  # fmt: skip

    def wait_ready(self, timeout: float = 120) -> float:
        while time.perf_counter() - self.started < timeout:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited: {self.process.stderr.read()[-500:]}")
            if http_status(self.url + "readyz") == 200:
                return time.perf_counter() - self.started
            time.sleep(0.02)
        raise RuntimeError("server not ready in time")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)


def app_available(root: Path) -> str | None:
    """None when the web app can be served, else why not."""
    if not (root / "assistant" / "web" / "app.py").exists():
        return "assistant/web/app.py does not exist"
    for module in ("gradio", "gradio_client", "assistant.web.app"):
        try:
            if importlib.util.find_spec(module) is None:
                return f"{module} is not installed"
        except Exception as exc:  # noqa: BLE001 - a half-written app.py
            return f"{module}: {exc}"
    return None


def server_ready(bench, index_dir: Path) -> Server | None:
    """Start to /readyz 200, repeated; returns a running server for the HTTP figures."""
    reason = app_available(Path(bench.root))
    if reason:
        bench.skip("seeds", "server start to /readyz 200", reason)
        return None
    times = []
    server = None
    runs = bench.repeat(3, 1)
    for i in range(runs):
        server = Server(bench, index_dir)
        try:
            times.append(server.wait_ready())
        except RuntimeError as exc:
            server.stop()
            bench.skip("seeds", "server start to /readyz 200", str(exc))
            return None
        if i < runs - 1:
            server.stop()
    bench.add(figure("seeds", "server start to /readyz 200", times, "s", "target <= 4 s"))
    return server


def http_figures(bench, server: Server, qs: list[str], library_ask_ms: list[float]) -> None:
    """Round trip through gradio_client, then throughput with 1, 4 and 16 clients."""
    from gradio_client import Client

    client = Client(server.url, verbose=False)
    for q in qs[:3]:
        client.predict(q, api_name="/ask")
    server_cpu, client_cpu = process_cpu_seconds(server.process.pid), self_cpu_seconds()
    rtt = [t for _ in range(bench.repeat(2, 1)) for q in qs
           for t in time_calls(lambda q=q: client.predict(q, api_name="/ask"), 1)]  # fmt: skip
    server_cpu = (process_cpu_seconds(server.process.pid) - server_cpu) * 1000 / len(rtt)
    client_cpu = (self_cpu_seconds() - client_cpu) * 1000 / len(rtt)
    bench.add(figure("http", "round trip through gradio_client (/ask)", rtt, "ms",
                     f"CPU per request: server {server_cpu:.0f} ms, client {client_cpu:.0f} ms"))  # fmt: skip
    if library_ask_ms:
        bench.ratio("HTTP round trip (gradio_client) vs library ask", rtt, library_ask_ms)
    raw = raw_http_round_trips(server.url, qs, bench.repeat(2, 1))
    bench.add(figure("http", "round trip, plain HTTP (POST /call/ask + SSE GET, httpx)", raw, "ms",
                     "no gradio_client: its result loop polls every 50 ms"))  # fmt: skip
    if library_ask_ms:
        bench.ratio("HTTP round trip (plain) vs library ask", raw, library_ask_ms)
    bench.results["http_cpu_ms_per_request"] = {"server": server_cpu, "client": client_cpu}
    json_api_figures(bench, server, qs, library_ask_ms)
    for clients in CLIENTS:
        rates, latencies = throughput(server.url, qs, clients, seconds=bench.repeat(4.0, 3.0),
                                      windows=bench.repeat(2, 1))  # fmt: skip
        bench.add(figure("http", f"Gradio API /ask throughput, {clients} concurrent client(s)", rates,
                         "req/s", f"latency p50 {percentile(latencies, 50):.0f} ms, "
                         f"p95 {percentile(latencies, 95):.0f} ms"))  # fmt: skip
        bench.results.setdefault("http_latency_ms", {})[str(clients)] = latencies


CLIENTS = (1, 8, 40)


class JsonClient:
    """The JSON API: POST /api/ask, the answer in the response (httpx, one connection)."""

    def __init__(self, url: str, **_):
        import httpx

        self.http = httpx.Client(base_url=url, timeout=60)
        self.answers: dict[str, str] = {}

    def ask(self, question: str) -> None:
        reply = self.http.post("api/ask", json={"question": question})
        reply.raise_for_status()
        self.answers.setdefault(question, reply.text)
        if self.answers[question] != reply.text:
            self.answers[question] = "DIFFERS"

    def close(self) -> None:
        self.http.close()


def json_api_figures(bench, server: Server, qs: list[str], library_ask_ms: list[float]) -> None:
    """The JSON API: one client's round trip against the engine's own ask, then throughput
    at 1, 8 and 40 clients, every answer compared with the single client's."""
    single = JsonClient(server.url)
    try:
        for q in qs[:3]:
            single.ask(q)
        rtt = [t for _ in range(bench.repeat(3, 1)) for q in qs
               for t in time_calls(lambda q=q: single.ask(q), 1)]  # fmt: skip
    finally:
        single.close()
    bench.add(figure("http", "JSON API round trip (POST /api/ask, httpx)", rtt, "ms"))
    if library_ask_ms:
        gap = percentile(rtt, 50) - percentile(library_ask_ms, 50)
        bench.add_raw("http", "JSON API p50 - library ask p50 (target <= 15 ms)", len(rtt), gap, gap, "ms")
        bench.results["json_api_overhead_ms"] = gap
    for clients in CLIENTS:
        pool: list[JsonClient] = []
        rates, latencies = throughput(server.url, qs, clients, seconds=bench.repeat(4.0, 3.0),
                                      windows=bench.repeat(2, 1), client=JsonClient, pool_out=pool)  # fmt: skip
        seen = [(q, text) for c in pool for q, text in c.answers.items()]
        same = sum(single.answers.get(q) == text for q, text in seen)
        bench.add(figure("http", f"JSON API throughput, {clients} concurrent client(s)", rates, "req/s",
                         f"latency p50 {percentile(latencies, 50):.0f} ms, p95 {percentile(latencies, 95):.0f} "
                         f"ms; answers equal to one client's: {same}/{len(seen)}"
                         + (" (target >= 60 req/s)" if clients == 40 else "")))  # fmt: skip
        bench.results.setdefault("json_api", {})[str(clients)] = {
            "rates": rates, "latency_ms": latencies, "answers_equal": [same, len(seen)]}


class RestClient:
    """Gradio's REST protocol by hand (httpx): POST the question, read the SSE stream to
    its end. Much less client CPU than gradio_client, whose result loop also polls
    every 50 ms; the server does exactly the same work for both."""

    def __init__(self, url: str, *, optional_args: int = 3):
        import httpx

        self.http = httpx.Client(base_url=url, timeout=60)
        self.optional = [None] * optional_args  # /ask's history, k, mode

    def ask(self, question: str) -> None:
        reply = self.http.post("gradio_api/call/ask", json={"data": [question, *self.optional]})
        event_id = reply.json()["event_id"]
        with self.http.stream("GET", f"gradio_api/call/ask/{event_id}") as stream:
            for line in stream.iter_lines():
                if line.startswith("event:") and line[6:].strip() in ("complete", "error"):
                    break

    def close(self) -> None:
        self.http.close()


def raw_http_round_trips(url: str, qs: list[str], passes: int) -> list[float]:
    client = RestClient(url)
    try:
        for q in qs[:3]:
            client.ask(q)
        return [t for _ in range(passes) for q in qs for t in time_calls(lambda q=q: client.ask(q), 1)]
    finally:
        client.close()


def throughput(url: str, qs: list[str], clients: int, *, seconds: float, windows: int,
               optional_args: int = 3, client=None, pool_out: list | None = None):  # fmt: skip
    """Requests/s of `clients` threads, each with its own client, asking in a loop.

    The clients share the machine's 2 cores with the server, so they are light: the
    REST client (the Gradio API) by default, not gradio_client (~50 ms of client CPU a
    request, measured above), or `client` (JsonClient). `pool_out` receives the clients.
    """
    pool = [(client or RestClient)(url, optional_args=optional_args) for _ in range(clients)]
    if pool_out is not None:
        pool_out.extend(pool)
    rates, latencies = [], []
    for _ in range(windows):
        done = []
        stop_at = time.perf_counter() + seconds

        def worker(client, offset):
            i = offset
            while time.perf_counter() < stop_at:
                start = time.perf_counter()
                client.ask(qs[i % len(qs)])
                done.append((time.perf_counter() - start) * 1000)
                i += 1

        threads = [threading.Thread(target=worker, args=(c, n)) for n, c in enumerate(pool)]
        start = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        rates.append(len(done) / (time.perf_counter() - start))
        latencies.extend(done)
    for c in pool:
        c.close()
    return rates, latencies


APP_VARIANTS = {"batched (--max-batch 16)": (), "one at a time (--max-batch 1)": ("--max-batch", "1")}


def batching_app(bench, index_dir: Path, qs: list[str]) -> None:
    """The product's /ask (`assistant serve`) batched vs one at a time, 1 / 4 / 16 clients.

    Both servers run side by side and their windows alternate (the order flipping each
    round), so a burst of load from elsewhere on the machine hits both alike. Also the
    server CPU per request, which is what batching saves.
    """
    reason = app_available(Path(bench.root))
    if reason:
        bench.skip("concurrency", "the app's /ask batched vs not", reason)
        return
    servers = {name: Server(bench, index_dir, *args) for name, args in APP_VARIANTS.items()}
    try:
        for server in servers.values():
            server.wait_ready()
            raw_http_round_trips(server.url, qs[:5], 1)  # warm up
        rates: dict[str, dict[int, list[float]]] = {name: {} for name in servers}
        for clients in (1, 4, 16):
            latencies: dict[str, list[float]] = {name: [] for name in servers}
            cpu: dict[str, list[float]] = {name: [] for name in servers}
            for round_ in range(bench.repeat(3, 1)):
                names = list(servers) if round_ % 2 == 0 else list(reversed(servers))
                for name in names:
                    server = servers[name]
                    before = process_cpu_seconds(server.process.pid)
                    r, lat = throughput(server.url, qs, clients, seconds=bench.repeat(4.0, 3.0), windows=1)
                    cpu[name].append((process_cpu_seconds(server.process.pid) - before) * 1000 / len(lat))
                    rates[name].setdefault(clients, []).extend(r)
                    latencies[name].extend(lat)
            for name in servers:
                lat = latencies[name]
                bench.add(figure("concurrency", f"the app's /ask, {name}, {clients} client(s)",
                                 rates[name][clients], "req/s",
                                 f"latency p50 {percentile(lat, 50):.0f} ms, p95 {percentile(lat, 95):.0f} ms; "
                                 f"server CPU {statistics.median(cpu[name]):.1f} ms/request"))  # fmt: skip
                bench.results.setdefault("app_batching", {}).setdefault(name, {})[str(clients)] = {
                    "rates": rates[name][clients], "latency_ms": lat, "server_cpu_ms": cpu[name]}
        batched, single = list(servers)
        for clients in (1, 4, 16):
            bench.ratio(f"the app's /ask throughput, batched vs one at a time, {clients} client(s)",
                        rates[batched][clients], rates[single][clients], higher_is_better=True)  # fmt: skip
    finally:
        for server in servers.values():
            server.stop()


def batching_http(bench, index_dir: Path, qs: list[str]) -> None:
    """Throughput of the same minimal Gradio /ask with and without batch=True (ask_batch)."""
    reason = app_available(Path(bench.root))
    if reason and "app.py" not in reason:  # the rig needs gradio only, not the product app
        bench.skip("concurrency", "Gradio batch=True vs not", reason)
        return
    rates: dict[str, dict[int, list[float]]] = {}
    for variant in ("one at a time", "batch=True"):
        port = free_port()
        args = [sys.executable, str(Path(__file__).with_name("batch_server.py")), "--seeds",
                str(bench.seeds), "--index", str(index_dir), "--port", str(port)]  # fmt: skip
        if variant == "batch=True":
            args.append("--batch")
        process = subprocess.Popen(args, cwd=bench.root, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL)  # fmt: skip
        url = f"http://127.0.0.1:{port}/"
        try:
            deadline = time.perf_counter() + 120
            while http_status(url) != 200:
                if process.poll() is not None or time.perf_counter() > deadline:
                    raise RuntimeError(f"batch_server.py ({variant}) did not start")
                time.sleep(0.1)
            for clients in (1, 4, 16):
                r, latencies = throughput(url, qs, clients, seconds=bench.repeat(4.0, 3.0),
                                          windows=bench.repeat(2, 1), optional_args=0)  # fmt: skip
                rates.setdefault(variant, {})[clients] = r
                bench.add(figure("concurrency", f"minimal Gradio /ask, {variant}, {clients} client(s)",
                                 r, "req/s", f"latency p50 {sorted(latencies)[len(latencies) // 2]:.0f} ms"))  # fmt: skip
        finally:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)
    for clients in (4, 16):
        bench.ratio(f"Gradio throughput, batch=True vs not, {clients} clients",
                    rates["batch=True"][clients], rates["one at a time"][clients], higher_is_better=True)
