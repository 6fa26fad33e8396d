"""Serving plumbing: the Assistant slot filled in the background, health and readiness.

`AssistantSlot` lets the server start listening before the model and index are
loaded (handlers and /readyz report "still loading" meanwhile). Does not build
the page (app.py does) and does not answer questions.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path

from ..config import Settings, load_settings
from ..errors import AssistantError, UsageError
from ..pipeline import Assistant

log = logging.getLogger(__name__)


class NotReadyError(AssistantError):
    """The model and index are still loading, or failed to load."""


class AssistantSlot:
    """Holds the server's Assistant; a background thread may fill it in after start-up."""

    def __init__(self, assistant: Assistant | None = None, *, settings: Settings | None = None):
        self._assistant = assistant
        self.settings = assistant.settings if assistant is not None else settings or load_settings()
        self.error: str | None = None
        self.done = threading.Event()
        if assistant is not None:
            self.done.set()

    @property
    def ready(self) -> bool:
        return self._assistant is not None

    def get(self) -> Assistant:
        if self._assistant is not None:
            return self._assistant
        if self.error is not None:
            raise NotReadyError(f"the assistant failed to load: {self.error}")
        raise NotReadyError("still loading the model and the index; try again in a few seconds")

    def load_in_background(self, load: Callable[[], Assistant], *,
                           on_done: Callable[[AssistantSlot], None] | None = None) -> threading.Thread:  # fmt: skip
        """Run `load` in a thread, then warm the model up so the first question is fast."""

        def run() -> None:
            try:
                assistant = load()
                # Questions use encode_queries (onnxruntime, no torch import) when the
                # embedder has it: warming `encode` would import torch for nothing (~3-5 s).
                warm = getattr(assistant.embedder, "encode_queries", assistant.embedder.encode)
                warm(["warm up"])  # loads the question encoder's weights now
            except AssistantError as exc:
                self.error = str(exc)
            except Exception as exc:  # noqa: BLE001 - reported by /readyz, logged here
                log.exception("loading the assistant failed")
                self.error = f"internal error ({type(exc).__name__})"
            else:
                self.settings, self._assistant = assistant.settings, assistant
            finally:
                self.done.set()
                if on_done is not None:
                    on_done(self)

        thread = threading.Thread(target=run, name="load-assistant", daemon=True)
        thread.start()
        return thread


def watch_documents(slot: AssistantSlot, *, stop: threading.Event, debounce_ms: int = 500,
                    on_refresh: Callable[[str], None] | None = None) -> threading.Thread:  # fmt: skip
    """Watch the documents folder (watchfiles: the OS's change notifications) and, after
    each burst of changes, bring the index up to date in this background thread; the new
    index is swapped in whole (Assistant.refresh), so questions in flight finish on the
    one they started with, and /readyz reports the new version. Stops when `stop` is set.
    `on_refresh` is told, in one line, what each update did."""

    def run() -> None:
        import watchfiles

        folders = [Path(slot.settings.seeds_dir), Path(slot.settings.library_dir)]
        with contextlib.suppress(OSError):  # documents added later land here
            folders[1].mkdir(parents=True, exist_ok=True)
        folders = [f for f in folders if f.is_dir()]
        for _changes in watchfiles.watch(*folders, stop_event=stop, debounce=debounce_ms, rust_timeout=500,
                                         yield_on_timeout=False, raise_interrupt=False):  # fmt: skip
            if not slot.ready:
                continue
            try:
                stats = slot.get().refresh()
            except AssistantError as exc:
                message = f"documents changed; the index was not updated: {exc}"
            except Exception as exc:  # noqa: BLE001 - the server keeps serving the old index
                log.exception("updating the index after a document change failed")
                message = f"documents changed; the index was not updated (internal error: {type(exc).__name__})"
            else:
                message = ("documents changed; nothing to update" if stats is None else
                           f"documents changed; index updated: {stats.chunks} chunks "
                           f"({stats.embedded} embedded) in {stats.seconds:.1f} s")  # fmt: skip
            log.info(message)
            if on_refresh is not None:
                on_refresh(message)

    thread = threading.Thread(target=run, name="watch-documents", daemon=True)
    thread.start()
    return thread


def follow_store(slot: AssistantSlot, *, stop: threading.Event, every: float = 2.0,
                 on_change: Callable[[str], None] | None = None) -> threading.Thread:
    """With a shared store (Milvus), look every `every` seconds for a version another
    replica stored (a document added or removed through it) and swap it in whole
    (Assistant.follow_store). An unreachable store is told once, then retried; the
    server keeps answering from the version it has."""

    def run() -> None:
        failing = False
        while not stop.wait(every):
            if not slot.ready:
                continue
            try:
                changed = slot.get().follow_store()
            except AssistantError as exc:
                if not failing and on_change is not None:
                    on_change(f"cannot follow the store, answering from the version loaded: {exc}")
                failing = True
                continue
            except Exception:  # noqa: BLE001 - the server keeps serving the old index
                log.exception("following the store failed")
                failing = True
                continue
            failing = False
            if changed and on_change is not None:
                counts = slot.get().index.manifest["counts"]
                on_change(f"the store has a new version: {counts['documents']} documents, "
                          f"{counts['chunks']} passages")  # fmt: skip

    thread = threading.Thread(target=run, name="follow-store", daemon=True)
    thread.start()
    return thread


def as_slot(source: Assistant | AssistantSlot | Callable[[], Assistant]) -> AssistantSlot:
    if isinstance(source, AssistantSlot):
        return source
    if isinstance(source, Assistant):
        return AssistantSlot(source)
    slot = AssistantSlot()
    slot.load_in_background(source)
    return slot


def readiness(slot: AssistantSlot) -> tuple[int, dict]:
    """(HTTP status, body) for /readyz: 503 until the model and index are loaded."""
    if not slot.ready:
        if slot.error is not None:
            return 503, {"status": "failed", "error": slot.error}
        return 503, {"status": "loading"}
    index = slot.get().index
    manifest = index.manifest
    return 200, {
        "status": "ready",
        "index_version": index.path.name if index.path is not None else "in-memory",
        "index_format": manifest.get("format_version"),
        "documents": manifest.get("counts", {}).get("documents"),
        "chunks": manifest.get("counts", {}).get("chunks"),
        "model": manifest.get("model"),
        "built_at": manifest.get("built_at"),
    }


def protected_paths(settings: Settings) -> list[str]:
    """Folders the server must never serve: the documents, the index, the model."""
    from ..pipeline import bundled_model_dir

    paths = [settings.seeds_dir, settings.index_dir]
    try:
        paths.append(settings.model_dir or bundled_model_dir())
    except AssistantError:
        pass  # no model: loading will fail and say so
    return [str(Path(p).resolve()) for p in paths]


class RequestSizeLimit:
    """ASGI middleware: a request body over `max_bytes` is refused (413) before it is read.

    Gradio keeps each session's last inputs in memory, so without a limit every new
    session could leave a megabyte-long "question" behind. Chunked bodies (no length
    given up front) are refused with 411. Does not look at responses.
    """

    def __init__(self, app, max_bytes: int, larger: dict[str, int] | None = None):
        self.app, self.max_bytes, self.larger = app, max_bytes, larger or {}

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http":
            from starlette.responses import JSONResponse

            headers = dict(scope["headers"])
            length = headers.get(b"content-length", b"0")
            limit = self.larger.get(scope.get("path", ""), self.max_bytes)  # an upload route's own
            refusal = None
            if b"chunked" in headers.get(b"transfer-encoding", b"").lower():
                refusal = 411, "send the request with a Content-Length"
            elif not length.isdigit() or int(length) > limit:
                refusal = 413, f"request too large ({length.decode(errors='replace')[:20]} bytes; the limit is {limit})"
            if refusal is not None:
                response = JSONResponse({"detail": refusal[1]}, status_code=refusal[0],
                                        headers={"Connection": "close"})  # fmt: skip
                return await response(scope, receive, send)
        await self.app(scope, receive, send)


# Every response's security headers. Gradio's page runs inline scripts and styles and
# talks to its own origin only (the queue's server-sent events included); nothing loads
# from elsewhere (the machine is offline anyway) and nothing may frame the page.
CONTENT_SECURITY_POLICY = "; ".join((
    "default-src 'self'",
    "script-src 'self' 'unsafe-inline' 'unsafe-eval'",
    "style-src 'self' 'unsafe-inline'",
    "img-src 'self' data: blob:",
    "font-src 'self' data:",
    "media-src 'self' blob:",
    "connect-src 'self'",
    "worker-src 'self' blob:",
    "object-src 'none'",
    "base-uri 'self'",
    "form-action 'self'",
    "frame-ancestors 'none'",
))  # fmt: skip
SECURITY_HEADERS = {
    "content-security-policy": CONTENT_SECURITY_POLICY,
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
}


class SecurityHeaders:
    """ASGI middleware: SECURITY_HEADERS on every HTTP response (the app's own values
    for these names are replaced). Does not look at requests."""

    def __init__(self, app):
        self.app = app
        self._headers = [(k.encode(), v.encode()) for k, v in SECURITY_HEADERS.items()]

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                names = {k for k, _ in self._headers}
                kept = [(k, v) for k, v in message.get("headers", []) if k.lower() not in names]
                message = {**message, "headers": kept + self._headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


def make_server(app, host: str, port: int):
    """A uvicorn server and its already-bound socket (a busy port fails here, clearly)."""
    import uvicorn

    try:
        sock = socket.create_server((host, port), reuse_port=False)
    except (OSError, OverflowError) as exc:  # OverflowError: a port past 65535
        raise UsageError(f"cannot listen on {host}:{port}: {getattr(exc, 'strerror', None) or exc}") from None
    # Accepted connections inherit this. uvicorn sets it only on sockets it opens itself;
    # without it, Nagle's algorithm and the client's delayed ACK held every /ask reply
    # ~40 ms (round trip 58 ms -> ~17 ms; benchmarks/run.py).
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=2))
    return server, sock


@contextlib.contextmanager
def serve_in_thread(app, host: str = "127.0.0.1", port: int = 0, *, timeout: float = 30.0):
    """Run `app` in a background thread for tests and benchmarks; yields its base URL."""
    server, sock = make_server(app, host, port)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the test server did not start")
        time.sleep(0.02)
    try:
        yield f"http://{host}:{sock.getsockname()[1]}/"
    finally:
        # Clients' open event streams are cancelled, not waited for; uvicorn would log
        # each cancellation as an error, which here is expected.
        uvicorn_log = logging.getLogger("uvicorn.error")
        level = uvicorn_log.level
        uvicorn_log.setLevel(logging.CRITICAL)
        server.should_exit = server.force_exit = True
        thread.join(timeout)
        uvicorn_log.setLevel(level)
