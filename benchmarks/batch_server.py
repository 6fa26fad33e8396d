"""A minimal Gradio app with one /ask API, batched or not: what batching buys over HTTP.

    python benchmarks/batch_server.py --index DIR --port N [--batch]

Both variants answer with `Assistant.ask_batch` / `Assistant.ask` over the same
index, behind the same Gradio queue (concurrency 2, like assistant/app.py); only
`batch=True` differs. run.py measures their throughput side by side. This is a
measuring rig, not the product's web app (assistant/app.py).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import gradio as gr  # noqa: E402

from assistant import Assistant, load_settings  # noqa: E402
from assistant.errors import AssistantError  # noqa: E402
from assistant.pipeline import check_question  # noqa: E402


def answer_many(assistant: Assistant, questions: list[str]) -> list[dict]:
    """One encode call for the valid questions; an error entry for each invalid one."""
    limit = assistant.settings.max_question_chars
    valid, out = [], []
    for q in questions:
        try:
            valid.append(check_question(q, limit))
            out.append(None)
        except AssistantError as exc:
            out.append({"error": str(exc)})
    answers = iter(assistant.ask_batch(valid))
    return [item if item is not None else next(answers).to_dict() for item in out]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=Path, default=ROOT / "seeds")
    parser.add_argument("--index", type=Path, required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--batch", action="store_true")
    args = parser.parse_args()
    assistant = Assistant.load(args.seeds, args.index, settings=load_settings())
    assistant.ask("warm up")
    with gr.Blocks() as demo:
        if args.batch:

            def ask(question: list[str]) -> tuple[list[dict]]:
                return (answer_many(assistant, question),)

            gr.api(ask, api_name="ask", batch=True, max_batch_size=16)
        else:

            def ask(question: str) -> dict:
                return assistant.ask(question).to_dict()

            gr.api(ask, api_name="ask")
    demo.queue(max_size=64, default_concurrency_limit=2)
    demo.launch(server_name="127.0.0.1", server_port=args.port, quiet=True, show_error=False,
                ssr_mode=False, mcp_server=False)  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
