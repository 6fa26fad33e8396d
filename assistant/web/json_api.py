"""The plain JSON API beside the Gradio page: `POST /api/ask`, `GET /api/cite/{id}`, and
their OpenAPI schema (served at /api/openapi.json by serve.py's FastAPI app).

The same JSON as `assistant ask --json` / `cite --json` and the Gradio API, the same
request-size limit (serve.py's middleware) and question checks, and the same error
shape: `{"error": "one line"}` with 400 (a bad request), 404 (no such citation), 503
(loading, or too many waiting) or 500 (a bug, logged). Requests that wait at the same
time are answered together, up to MAX_BATCH with one encode call
(batching.answer_requests), each answer equal to the one it gets alone. Does not
answer anything itself or lay out the page.
"""

import asyncio
import logging
from typing import Literal

from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from ..errors import AssistantError, CitationNotFoundError, StoreError
from .batching import answer_requests
from .handlers import GENERIC_ERROR, api_cite, error_message
from .server import AssistantSlot, NotReadyError

log = logging.getLogger(__name__)

MAX_BATCH = 16  # requests answered together (one encode call)
MAX_WAITING = 64  # beyond this, a request is told the server is busy (503)
WORKERS = 2  # batches answered at once (a 2-core machine)


class AskRequest(BaseModel):
    question: str = Field(description="the question, at most 1,000 characters",
                          examples=["When was the armistice signed?"])  # fmt: skip
    history: list[str] | None = Field(None, description="earlier questions of the conversation, "
                                      "oldest first (the last 8 are used)")  # fmt: skip
    k: int | None = Field(None, description="passages to retrieve, 1-100 (default 10)")
    mode: Literal["hybrid", "dense", "bm25"] | None = Field(None, description="retrieval mode (default hybrid)")


class Span(BaseModel):
    text: str
    doc: str
    start: int = Field(description="offset of the first character in the document file")
    end: int


class CitationOut(BaseModel):
    n: int
    id: str = Field(description="doc:start-end#hash; GET /api/cite/{id} shows it in context")
    doc: str
    title: str
    section: str
    start: int
    end: int
    quote: str = Field(description="the document's characters start..end, verbatim")
    passage: str
    score: float
    pages: list[int] | None = Field(description="[first, last] page of the quote in a PDF; null for "
                                    "documents without pages")  # fmt: skip


class Closest(BaseModel):
    id: str
    doc: str
    title: str
    section: str
    start: int
    end: int
    pages: list[int] | None


class Retrieved(BaseModel):
    id: str
    doc: str
    text: str
    score: float


class AskResponse(BaseModel):
    question: str
    answer: str = Field(description="quoted statements with [n] markers, or the abstention")
    abstained: bool
    confidence: float
    short_answer: Span | None = Field(description="the span that answers a who/where/when/how-many "
                                      "question, inside the first quote; null where none applies")  # fmt: skip
    closest: list[Closest] = Field(description="when abstaining: the nearest passages, to check (not citations)")
    citations: list[CitationOut]
    retrieved: list[Retrieved]


class LookupResponse(CitationOut):
    stale: bool = Field(description="the document changed since: this is the nearest current passage")
    passage_start: int
    passage_end: int


class ErrorResponse(BaseModel):
    error: str = Field(description="what went wrong, one line")


ERRORS = {400: {"model": ErrorResponse}, 503: {"model": ErrorResponse}, 500: {"model": ErrorResponse}}


class AskBatcher:
    """Answers queued /api/ask requests in batches: a worker takes every request waiting
    (up to MAX_BATCH) at once. Workers start with the first request, on its event loop."""

    def __init__(self, slot: AssistantSlot, *, max_batch: int = MAX_BATCH, workers: int = WORKERS):
        self.slot, self.max_batch, self.workers = slot, max_batch, workers
        self._queue: asyncio.Queue | None = None
        self._tasks: list[asyncio.Task] = []

    async def ask(self, request: tuple) -> dict | Exception:
        if self._queue is None:
            self._queue = asyncio.Queue(MAX_WAITING)
            self._tasks = [asyncio.create_task(self._work()) for _ in range(self.workers)]
        future = asyncio.get_running_loop().create_future()
        try:
            self._queue.put_nowait((request, future))
        except asyncio.QueueFull:
            return NotReadyError(f"the server is busy ({MAX_WAITING} questions waiting); try again shortly")
        return await future

    async def _work(self) -> None:
        queue = self._queue
        while True:
            items = [await queue.get()]
            while len(items) < self.max_batch and not queue.empty():
                items.append(queue.get_nowait())
            try:
                results = await run_in_threadpool(self._answer, [r for r, _ in items])
            except Exception as exc:  # noqa: BLE001 - every request of the batch is told
                results = [exc] * len(items)
            for (_, future), result in zip(items, results, strict=True):
                if not future.done():  # the client may have gone
                    future.set_result(result)

    def _answer(self, requests: list[tuple]) -> list[dict | Exception]:
        return answer_requests(self.slot.get(), requests)


def error_response(exc: BaseException) -> JSONResponse:
    """The one-line error and its status: 503 not ready or busy (or the store away), 404
    no such citation,
    400 any other engine error, 500 anything else (logged)."""
    if isinstance(exc, (NotReadyError, StoreError)):
        status = 503
    elif isinstance(exc, CitationNotFoundError):
        status = 404
    elif isinstance(exc, AssistantError):
        status = 400
    else:
        log.error("an /api request failed", exc_info=exc)
        return JSONResponse({"error": GENERIC_ERROR}, status_code=500)
    return JSONResponse({"error": error_message(exc)}, status_code=status)


def add_json_api(app: FastAPI, slot: AssistantSlot, *, max_batch: int = MAX_BATCH) -> None:
    """Mount the /api routes on `app`, and one-line 400s for requests that do not parse."""
    router = APIRouter(prefix="/api", tags=["answers"])
    batcher = AskBatcher(slot, max_batch=max(1, max_batch))

    @router.post("/ask", response_model=AskResponse, responses=ERRORS,
                 summary="Answer a question from the documents, with citations")  # fmt: skip
    async def ask(body: AskRequest) -> JSONResponse:
        """The JSON of `assistant ask --json`. When the documents don't answer, `abstained`
        is true, nothing is cited, and `closest` lists the passages nearest the question."""
        result = await batcher.ask((body.question, body.history, body.k, body.mode))
        return error_response(result) if isinstance(result, Exception) else JSONResponse(result)

    @router.get("/cite/{citation_id:path}", response_model=LookupResponse,
                responses={**ERRORS, 404: {"model": ErrorResponse}},
                summary="Show a cited passage in context")  # fmt: skip
    async def cite(citation_id: str) -> JSONResponse:
        """The JSON of `assistant cite --json`. An ID whose document changed since it was
        cited gives the nearest current passage with `stale: true`. The ID is URL-encoded
        (`#` is `%23`); escapes or backticks copied with it are ignored."""
        try:
            return JSONResponse(await run_in_threadpool(api_cite, slot, citation_id[:500]))
        except Exception as exc:  # noqa: BLE001 - error_response words and logs it
            return error_response(exc)

    app.include_router(router)

    @app.exception_handler(RequestValidationError)
    async def one_line(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = "; ".join(f"{'.'.join(str(p) for p in e.get('loc', ())[1:]) or 'body'}: {e.get('msg')}"
                             for e in exc.errors()[:3])  # fmt: skip
        return JSONResponse({"error": " ".join(f"bad request: {problems}".split())[:300]}, status_code=400)
