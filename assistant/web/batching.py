"""The /ask API answering concurrent requests together: one encode call per batch.

Gradio's `batch=True` hands the endpoint the requests waiting at the same time;
`answer_requests` answers them with one `Assistant.ask_batch` per (k, mode), so a
batch makes one encode call and each answer equals `ask`'s for that request alone.
An invalid request, or one that fails on its own, gets its own error and never
fails the others: `answer_each_request_apart` makes Gradio's queue deliver it so.
Does not build the page or word the errors (app.py does both).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from ..pipeline import Answer
from ..errors import AssistantError, UsageError
from ..pipeline import Assistant, check_question, check_turns

log = logging.getLogger(__name__)

MAX_HISTORY = 8  # earlier user turns passed on (the engine only leans on the last)


def check_history(history) -> list[str]:
    if history is None:
        return []
    if not isinstance(history, (list, tuple)) or not all(isinstance(h, str) for h in history):
        raise UsageError("history must be a list of earlier questions (strings)")
    return list(history)[-MAX_HISTORY:]


def answer_requests(assistant: Assistant, requests: Sequence[Sequence]) -> list[dict | Exception]:
    """Answer API requests `(question, history, k, mode)` together.

    Returns, per request, the JSON of `assistant ask --json` or the exception that
    request alone raised. Each request is checked first (in the order `ask` checks),
    so an invalid one never reaches the model; the valid ones are answered with one
    `ask_batch` per (k, mode). Should a batch still fail, its requests are answered
    one at a time, so a failure stays with the request that caused it.
    """
    results: list[dict | Exception | None] = [None] * len(requests)
    groups: dict[tuple[int, str], list[tuple[int, str, list[str]]]] = {}
    limit = assistant.settings.max_question_chars
    for i, (question, history, k, mode) in enumerate(requests):
        try:
            turns = check_history(history)
            options = assistant.check_options(k, mode)
            item = (i, check_question(question, limit), check_turns(turns, limit))
        except AssistantError as exc:
            results[i] = exc
        else:
            groups.setdefault(options, []).append(item)
    for (k, mode), items in groups.items():
        try:
            answers: list[Answer | Exception] = assistant.ask_batch(
                [q for _, q, _ in items], [h for *_, h in items], k=k, mode=mode
            )
        except Exception:  # noqa: BLE001 - retried one by one below, where it is reported
            answers = [_ask_alone(assistant, q, h, k, mode) for _, q, h in items]
        for (i, _, _), answer in zip(items, answers, strict=True):
            results[i] = answer.to_dict() if isinstance(answer, Answer) else answer
    return results  # type: ignore[return-value]  # every slot is filled above


def _ask_alone(assistant: Assistant, question: str, history: list[str], k: int,
               mode: str) -> Answer | Exception:  # fmt: skip
    try:
        return assistant.ask(question, history, k=k, mode=mode)
    except AssistantError as exc:
        return exc
    except Exception as exc:  # noqa: BLE001 - becomes this request's generic error
        log.exception("answering a request of a batch failed")
        return exc


# --- Gradio: one request's failure is its own --------------------------------------


@dataclass(frozen=True)
class RequestFailed:
    """A batched endpoint's result for a request that failed: sent to it as its error."""

    message: str


def answer_each_request_apart(demo, api_name: str) -> None:
    """Make the batched endpoint `api_name` of `demo` behave, per request, as unbatched.

    Gradio 6 batches all or nothing, and its public `validator=` does not help: it
    passes a batched function's inputs mis-shaped, and its refusals are a 422 with a
    multi-line message. So two gaps are closed on `demo`'s queue (call after
    `demo.queue()`; `supported()` says whether this Gradio has what it needs):
    - Results: a `RequestFailed` among a batch's results becomes that request's own
      error event, the one a raised `gr.Error` gives; the batch's others complete.
    - Inputs: the queue zips the requests' inputs and cuts them to the shortest, so
      one raw call with fewer inputs would fail every request batched with it. Missing
      trailing inputs are filled with None (the endpoint's defaults) before queueing.
    """
    import gradio as gr
    from gradio.server_messages import ProcessCompletedMessage
    from gradio.utils import error_payload

    fn = next(f for f in demo.fns.values() if f.api_name == api_name)
    if not fn.batch:
        raise ValueError(f"/{api_name} is not batched")
    queue, width = demo._queue, len(fn.inputs)
    push, send_message = queue.push, queue.send_message

    async def push_with_defaults(body, request, username):
        if body.fn_index == fn._id and isinstance(body.data, list) and len(body.data) < width:
            body.data = [*body.data, *[None] * (width - len(body.data))]
        return await push(body=body, request=request, username=username)

    def send_failures_apart(event, event_message):
        if isinstance(event_message, ProcessCompletedMessage) and event_message.success:
            data = event_message.output.get("data")
            if data and isinstance(data[0], RequestFailed):
                content = error_payload(gr.Error(data[0].message, print_exception=False), False)
                event_message = ProcessCompletedMessage(output=content, success=False,
                                                        title=content.get("title", "Error"))  # fmt: skip
        send_message(event, event_message)

    queue.push, queue.send_message = push_with_defaults, send_failures_apart


def supported() -> bool:
    """Whether this Gradio has the queue internals `answer_each_request_apart` uses."""
    try:
        from gradio.queueing import Queue
        from gradio.server_messages import ProcessCompletedMessage  # noqa: F401
        from gradio.utils import error_payload  # noqa: F401
    except ImportError:
        return False
    return callable(getattr(Queue, "push", None)) and callable(getattr(Queue, "send_message", None))
