"""`assistant serve`: the Gradio page mounted in FastAPI with /healthz and /readyz,
a request-size limit, and the index loaded in the background while it listens.

Does not lay out the page (app.py) or answer anything itself.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Sequence
from pathlib import Path

import gradio as gr
from fastapi import Request  # module level: FastAPI reads the routes' annotations by name
from fastapi.responses import JSONResponse

from ..errors import UsageError
from ..loading import load_assistant, prepare_question_encoder, settings_from_args
from ..pipeline import Assistant
from .app import CSS, MAX_BATCH, build_app
from .documents_tab import UPLOAD_TOKEN_VARIABLE, Uploads
from .handlers import api_ask
from .json_api import add_json_api, error_response
from .server import (
    AssistantSlot, RequestSizeLimit, SecurityHeaders, as_slot, follow_store, make_server,
    protected_paths, readiness, watch_documents,
)  # fmt: skip

# Request bodies past this are refused (413) before Gradio parses and keeps them: a
# question is at most 1,000 characters; the page also sends its chat (~1 KB a turn).
MAX_REQUEST_BYTES = 256 * 1024
UPLOAD_ROUTE = "/gradio_api/upload"
LOOPBACK = ("127.0.0.1", "::1", "localhost")


def upload_policy(args, environ=os.environ) -> Uploads:
    """`--allow-uploads`, with the token in ASSISTANT_UPLOAD_TOKEN (an environment
    variable, not an argument other users of the machine could read in `ps`). A server
    reachable by others (any host but loopback) needs the token: UsageError without."""
    if not getattr(args, "allow_uploads", False):
        return Uploads()
    token = environ.get(UPLOAD_TOKEN_VARIABLE) or None
    if token is None and args.host not in LOOPBACK:
        raise UsageError(f"--allow-uploads on {args.host}, which others can reach, needs a token: "
                         f"set {UPLOAD_TOKEN_VARIABLE}")  # fmt: skip
    if token is not None and len(token) < 12:
        raise UsageError(f"{UPLOAD_TOKEN_VARIABLE} is too short to guard uploads (12 characters at least)")
    return Uploads(True, token)


def package_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("korea-talks-assistant")
    except PackageNotFoundError:
        return "0"


def create_server_app(source: Assistant | AssistantSlot, *, blocked: Sequence[str] = (),
                      max_batch: int = MAX_BATCH, uploads: Uploads = Uploads()):  # fmt: skip
    """FastAPI with /healthz, /readyz and the Gradio page mounted at /. With uploads
    allowed, Gradio's upload route takes files up to the settings' size cap."""
    from fastapi import FastAPI
    from starlette.concurrency import run_in_threadpool

    slot = as_slot(source)
    # The OpenAPI schema describes the JSON API (/api/...) and the health routes; the
    # Gradio page has its own ("Use via API" in its footer).
    app = FastAPI(title="Korea talks assistant", version=package_version(), docs_url=None,
                  redoc_url=None, openapi_url="/api/openapi.json")  # fmt: skip
    upload_cap = max(slot.settings.max_binary_bytes, slot.settings.max_file_bytes) + 64 * 1024
    app.add_middleware(RequestSizeLimit, max_bytes=MAX_REQUEST_BYTES,
                       larger={UPLOAD_ROUTE: upload_cap} if uploads.allowed else None)  # fmt: skip
    app.add_middleware(SecurityHeaders)  # outermost: refusals get the headers too

    @app.get("/healthz")
    def healthz() -> dict:
        return {"status": "alive"}

    @app.get("/readyz")
    def readyz() -> JSONResponse:
        status, body = readiness(slot)
        return JSONResponse(body, status_code=status)

    add_json_api(app, slot, max_batch=max_batch)

    @app.post("/gradio_api/run/ask", include_in_schema=False)
    async def run_ask(request: Request) -> JSONResponse:
        """Gradio's direct (queue-less) route for /ask, answered here: Gradio 6 passes a
        batched endpoint's inputs to it mis-shaped (every call a 500 with no message), and
        any error there is a 500 with "error": null. One request, one answer or a one-line
        error (400; 503 while loading), with trailing inputs defaulted as on the queue."""
        try:
            body = await request.json()
        except ValueError:
            body = None
        data = body.get("data") if isinstance(body, dict) else None
        if not isinstance(data, list) or not 1 <= len(data) <= 4:
            return JSONResponse({"error": 'send {"data": [question, history, k, mode]} (history, k, mode '
                                          "may be left out)"}, status_code=400)  # fmt: skip
        question, history, k, mode = [*data, None, None, None][:4]
        try:
            answer = await run_in_threadpool(api_ask, slot, question, history, k, mode)
            return JSONResponse({"data": [answer]})
        except Exception as exc:  # noqa: BLE001 - the JSON API's statuses and one line (logged if a bug)
            return error_response(exc)

    blocked = list(blocked) or protected_paths(slot.settings)
    demo = build_app(slot, max_batch=max_batch, uploads=uploads)
    # Gradio checks that a file input was uploaded (not any server path a client names)
    # only once `has_launched`, which launch() sets and mount_gradio_app does not: without
    # this it copies the named file into its cache and hands that to the handler.
    demo.has_launched = True
    return gr.mount_gradio_app(
        app, demo, path="/", show_error=False, allowed_paths=[],
        blocked_paths=blocked, footer_links=["api", "settings"], run_history=False, ssr_mode=False,
        mcp_server=False, css=CSS, max_file_size=upload_cap if uploads.allowed else MAX_REQUEST_BYTES,
    )  # fmt: skip


def serve(args) -> int:
    """`assistant serve`: start listening, load or update the index in the background."""
    settings = settings_from_args(args)
    uploads = upload_policy(args)
    slot = AssistantSlot(settings=settings)
    app = create_server_app(slot, blocked=protected_paths(settings),
                            max_batch=args.max_batch or MAX_BATCH, uploads=uploads)  # fmt: skip
    server, sock = make_server(app, args.host, args.port)

    def say(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    def load() -> Assistant:
        say("loading the index (built or updated first if the documents changed)...")
        assistant = load_assistant(args)
        counts = assistant.index.manifest["counts"]
        say(f"index: {counts['documents']} documents, {counts['chunks']} passages; "
            "loading the question encoder...")  # fmt: skip
        prepare_question_encoder(assistant)
        return assistant

    stop_watching = threading.Event()

    def loaded(done: AssistantSlot) -> None:
        if done.error is not None:
            server.should_exit = True  # nothing to serve: stop, serve() reports it
        else:
            say(f"ready: http://{args.host}:{args.port}/")
            watch_documents(done, stop=stop_watching, on_refresh=say)
            if done.get().shared_store:
                follow_store(done, stop=stop_watching, on_change=say)

    say(f"listening on http://{args.host}:{args.port}/ (/readyz answers 200 once ready)")
    if uploads.allowed:
        say("uploads are on: the Documents tab adds and removes documents"
            + (f" (with the token in {UPLOAD_TOKEN_VARIABLE})" if uploads.token else " (no token: loopback only)"))
    slot.load_in_background(load, on_done=loaded)
    try:
        server.run(sockets=[sock])
    except KeyboardInterrupt:  # uvicorn re-raises Ctrl-C after shutting down cleanly
        print("stopped", file=sys.stderr)
        return 0
    finally:
        stop_watching.set()
    if slot.error is not None:
        print(f"error: {slot.error}", file=sys.stderr)
        return 2
    return 0
