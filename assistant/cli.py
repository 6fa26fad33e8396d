"""The `assistant` command: build | add | remove | docs | ask | cite | eval | serve.

A thin shell: check the arguments, make one library call, print the result.
Library errors become one line on stderr and exit code 2; nothing prints a
traceback. Does no retrieval or formatting logic of its own beyond printing.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from .config import MODES, load_settings
from .errors import AssistantError, UsageError
from .loading import load_assistant, prepare_question_encoder, print_progress

EXIT_USAGE = 2


class OneLineParser(argparse.ArgumentParser):
    """argparse whose usage errors are one line on stderr, like every other error."""

    def error(self, message: str):
        self.exit(EXIT_USAGE, f"error: {message} (see `{self.prog} --help`)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="assistant", description=__doc__.splitlines()[0])
    common = OneLineParser(add_help=False)
    common.add_argument("--seeds", type=Path, default=Path("seeds"), help="documents folder")
    common.add_argument("--index", type=Path, default=Path("index"), help="index folder")
    common.add_argument("--store", default=os.environ.get("ASSISTANT_STORE", ""), metavar="URI",
                        help="where the index lives: milvus://HOST:PORT[/DB] or milvus-lite:PATH, "
                             "shared by replicas (default: the index folder; env ASSISTANT_STORE)")
    sub = parser.add_subparsers(dest="command", required=True)

    build = sub.add_parser("build", parents=[common], help="build or update the index")
    build.add_argument("--full", action="store_true", help="re-embed everything")

    add = sub.add_parser("add", parents=[common],
                         help="add PDF, Word (.docx), HTML, Markdown or text files and index them")
    add.add_argument("files", type=Path, nargs="+", metavar="FILE")
    add.add_argument("--title", default="", help="the title to show (default: the document's own)")

    remove = sub.add_parser("remove", parents=[common], help="remove an added document")
    remove.add_argument("document", metavar="DOC", help="its name, as `assistant docs` lists it")

    docs = sub.add_parser("docs", parents=[common], help="list the documents")
    docs.add_argument("--json", action="store_true")

    ask = sub.add_parser("ask", parents=[common], help="answer a question with citations")
    ask.add_argument("question")
    ask.add_argument("--json", action="store_true")
    ask.add_argument("-k", type=int, default=None, help="passages to retrieve (default 10)")
    ask.add_argument("--mode", choices=MODES, default=None)
    ask.add_argument("--history", action="append", default=[], help="an earlier user turn")

    cite = sub.add_parser("cite", parents=[common], help="show a cited passage in context")
    cite.add_argument("citation_id")
    cite.add_argument("--json", action="store_true")

    evaluate = sub.add_parser("eval", parents=[common], help="evaluate on a question set")
    evaluate.add_argument("file", type=Path, nargs="?", default=None)
    evaluate.add_argument("--suite", type=Path, default=None,
                          help="a suite file: several corpora, each with its question sets")
    evaluate.add_argument("--json", action="store_true")
    evaluate.add_argument("--report", type=Path, default=None, help="write report.md/html here")
    evaluate.add_argument("-k", type=int, default=10)
    evaluate.add_argument("--mode", choices=MODES, default=None)
    evaluate.add_argument("--compare", choices=MODES, default=None,
                          help="a second retrieval mode to run side by side")  # fmt: skip
    evaluate.add_argument("--split", default=None, help="only questions of this split")
    evaluate.add_argument("--no-adapter", action="store_true",
                          help="answer without the query adapter (with --calibrate: fit none)")
    evaluate.add_argument("--calibrate", action="store_true",
                          help="fit the query adapter, confidence weights and abstention "
                               "threshold on the dev split and save them")  # fmt: skip

    serve = sub.add_parser("serve", parents=[common], help="serve the web UI")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=port_number, default=7860)
    serve.add_argument("--allow-uploads", action="store_true",
                       help="let the Documents tab add and remove documents (off by default; "
                            "on a host others can reach, set the token in ASSISTANT_UPLOAD_TOKEN)")  # fmt: skip
    serve.add_argument("--max-batch", type=positive_int, default=None, metavar="N",
                       help="/ask requests answered together, one encode call (default 16; "
                            "1: one at a time)")  # fmt: skip
    return parser


def port_number(text: str) -> int:
    """A TCP port, 1-65535 (a usage error otherwise, before anything is loaded)."""
    if not text.isdigit() or not 1 <= int(text) <= 65535:
        raise argparse.ArgumentTypeError(f"expected a port from 1 to 65535, got {text!r}")
    return int(text)


def positive_int(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number from 1 up, got {text!r}")
    return int(text)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except AssistantError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except BrokenPipeError:  # the reader went away (`assistant ask ... | head`): not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # the last line of defence: no traceback for users
        print(f"error: internal error ({type(exc).__name__}): {exc}", file=sys.stderr)
        return 1


def cmd_build(args) -> int:
    assistant = load_assistant(args, rebuild=args.full)
    stats = assistant.build_stats
    manifest = assistant.index.manifest
    if stats is None:
        print(f"index up to date: {manifest['counts']['documents']} documents, "
              f"{manifest['counts']['chunks']} chunks")  # fmt: skip
    else:
        print(f"built index: {stats.documents} documents, {stats.chunks} chunks "
              f"({stats.embedded} embedded, {stats.reused} reused) in {stats.seconds:.1f} s")  # fmt: skip
    prepare_question_encoder(assistant)  # so that the server's first start is quick
    return 0


def cmd_add(args) -> int:
    files = []
    for path in args.files:
        try:
            files.append((path.name, path.read_bytes()))
        except OSError as exc:
            raise UsageError(f"cannot read {path}: {exc.strerror or exc}") from None
    if args.title and len(files) > 1:
        raise UsageError("--title names one document: add the files one at a time")
    from .pipeline import prepare_files

    prepared = prepare_files(files, load_settings(), title=args.title)  # fail before loading
    assistant = load_assistant(args)
    stats = assistant.add_documents(prepared, progress=print_progress)
    rows = {row["path"]: row for row in assistant.documents()}
    for name, _ in files:
        row = rows[name]
        pages = f", {row['pages']} pages" if row["pages"] else ""
        print(f"added {name}: “{row['title']}” ({row['format']}{pages}, {row['chunks']} chunks)")
    if stats is not None:
        print(f"index updated: {stats.chunks} chunks ({stats.embedded} embedded) in {stats.seconds:.1f} s")
    return 0


def cmd_remove(args) -> int:
    assistant = load_assistant(args)
    stats = assistant.remove_document(args.document)
    print(f"removed {args.document}" + (f"; index updated: {stats.chunks} chunks" if stats else ""))
    return 0


def cmd_docs(args) -> int:
    assistant = load_assistant(args, quiet=args.json)
    rows = assistant.documents()
    if args.json:
        print(json.dumps(rows, ensure_ascii=False))
        return 0
    for row in rows:
        pages = f"{row['pages']} pages" if row["pages"] else "no pages"
        added = f"added {row['added']}" if row["source"] == "added" else "in seeds/"
        print(f"{row['path']}\n    {row['title']}\n    {row['format']}, {pages}, {row['chunks']} chunks, {added}")
    return 0


def cmd_ask(args) -> int:
    from .pipeline import check_question

    check_question(args.question, load_settings().max_question_chars)  # fail before loading
    assistant = load_assistant(args, quiet=args.json)
    answer = assistant.ask(args.question, args.history, k=args.k, mode=args.mode)
    if args.json:
        print(json.dumps(answer.to_dict(), ensure_ascii=False))
        return 0
    print(answer.answer)
    if answer.closest:
        print("\nclosest passages, for you to check (not an answer):")
        for c in answer.closest:
            print(f"    {c.title} — {c.section}\n    {c.id}")
    if answer.short_answer is not None:
        print(f"short answer: {answer.short_answer.text}")
    for c in answer.citations:
        where = f"{c.section}, {c.page_label}" if c.page_label else c.section
        print(f"\n[{c.n}] {c.title} — {where}\n    {c.id}\n    “{c.quote}”")
    print(f"\nconfidence: {answer.confidence:.2f}")
    return 0


def cmd_cite(args) -> int:
    assistant = load_assistant(args, quiet=args.json)
    citation = assistant.cite(args.citation_id)
    if args.json:
        print(json.dumps(citation.lookup_dict(), ensure_ascii=False))
        return 0
    if citation.stale:
        print(f"stale: {args.citation_id} no longer matches its document; nearest current passage:")
    where = f"{citation.section}, {citation.page_label}" if citation.page_label else citation.section
    print(f"{citation.title} — {where}\n{citation.id}\n")
    print(mark_quote(citation))
    return 0


def mark_quote(citation) -> str:
    """The passage with the quote between »« marks."""
    passage, offset = citation.passage, citation.start - citation.passage_start
    if citation.quote and passage.find(citation.quote) >= 0:
        offset = passage.find(citation.quote)
        return f"{passage[:offset]}»{citation.quote}«{passage[offset + len(citation.quote):]}"
    return passage


def cmd_eval(args) -> int:
    from .evaluation.command import eval_command

    return eval_command(args)


def cmd_serve(args) -> int:
    from .web.serve import serve

    return serve(args)


COMMANDS = {"build": cmd_build, "add": cmd_add, "remove": cmd_remove, "docs": cmd_docs, "ask": cmd_ask, "cite": cmd_cite, "eval": cmd_eval, "serve": cmd_serve}
