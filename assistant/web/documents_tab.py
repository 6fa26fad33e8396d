"""The web app's Documents tab: the documents answers are drawn from, and, where the
operator allows it, adding files (PDF, Word, HTML, Markdown, text) and removing them.

Uploading is off unless the server was started with `assistant serve --allow-uploads`:
on a shared server a reader must not change what everyone's answers are drawn from.
With a token set (ASSISTANT_UPLOAD_TOKEN; required for a server reachable by others),
adding and removing need it. Only a file inside Gradio's upload folder is read,
whatever path a client sends. A document is answerable as soon as its upload is
indexed (Assistant.add_documents swaps the new index in whole). Never renders a
document's title or text as HTML: the table's cells are plain strings.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from pathlib import Path

import gradio as gr

from ..errors import AssistantError
from ..text.markdown import escape_markdown
from .handlers import upload_folder, uploaded_path
from .server import AssistantSlot

FILE_TYPES = [".pdf", ".docx", ".html", ".htm", ".md", ".txt"]
COLUMNS = ["Title", "Cited as", "Format", "Pages", "Passages", "From", "Added"]
UPLOADS_OFF = ("Adding and removing documents is turned off on this server: the operator "
               "turns it on with `assistant serve --allow-uploads`.")  # fmt: skip
WRONG_TOKEN = "the upload token is missing or wrong"
NOT_UPLOADED = "only a file uploaded through this page can be added"
UPLOAD_TOKEN_VARIABLE = "ASSISTANT_UPLOAD_TOKEN"


@dataclass(frozen=True)
class Uploads:
    """Whether this server takes uploads, and the token they need (None: no token)."""

    allowed: bool = False
    token: str | None = None

    def check(self, given: str | None) -> None:
        if not self.allowed:
            raise AssistantError(UPLOADS_OFF)
        if self.token is not None and not hmac.compare_digest((given or "").encode(), self.token.encode()):
            raise AssistantError(WRONG_TOKEN)


def document_rows(assistant) -> list[list]:
    return [[row["title"], row["path"], row["format"], row["pages"] or "", row["chunks"],
             "added" if row["source"] == "added" else "seeds/", row["added"][:10]]
            for row in assistant.documents()]  # fmt: skip


def added_names(assistant) -> list[str]:
    return [row["path"] for row in assistant.documents() if row["source"] == "added"]


def add_uploaded(slot: AssistantSlot, uploads: Uploads, files, title: str = "", token: str = "",
                 progress=None, *, upload_dir: str | Path | None = None) -> str:  # fmt: skip
    """Add the uploaded files; a one-line status. AssistantError for a refusal."""
    uploads.check(token)
    paths = [uploaded_path(f, upload_dir, NOT_UPLOADED) for f in (files or [])]
    paths = [p for p in paths if p]
    if not paths:
        raise AssistantError("choose one or more files to add")
    if title.strip() and len(paths) > 1:
        raise AssistantError("a title names one document: add the files one at a time")
    data = []
    for path in paths:
        try:
            data.append((Path(path).name, Path(path).read_bytes()))
        except OSError as exc:
            raise AssistantError(f"cannot read the upload {Path(path).name}: {exc.strerror}") from None
    assistant = slot.get()
    report = None if progress is None else (lambda label, done, total: progress(done / max(total, 1), desc=label))
    stats = assistant.add_documents(data, title=title, progress=report)
    names = ", ".join(escape_markdown(name, one_line=True) for name, _ in data)
    took = f" in {stats.seconds:.1f} s ({stats.embedded} passages embedded)" if stats else ""
    return f"**Added** {names}{took}. Its passages are answered from now on."


def remove_added(slot: AssistantSlot, uploads: Uploads, name: str | None, token: str = "") -> str:
    uploads.check(token)
    if not name:
        raise AssistantError("choose an added document to remove")
    slot.get().remove_document(name)
    return f"**Removed** {escape_markdown(name, one_line=True)}."


def build_documents_tab(slot: AssistantSlot, uploads: Uploads) -> dict:
    gr.Markdown("The documents every answer is drawn from. *Cited as* is the name that "
                "starts each of its citation IDs.")  # fmt: skip
    table = gr.Dataframe(headers=COLUMNS, datatype=["str"] * len(COLUMNS), interactive=False,
                         wrap=True, elem_id="documents-table", label="Documents")  # fmt: skip
    refresh = gr.Button("Refresh the list", size="sm", elem_id="documents-refresh")
    parts = {"table": table, "refresh": refresh}

    def listing():
        try:
            assistant = slot.get()
        except AssistantError as exc:
            return [[str(exc), "", "", "", "", "", ""]], gr.Dropdown(choices=[], value=None)
        return document_rows(assistant), gr.Dropdown(choices=added_names(assistant), value=None)

    if not uploads.allowed:
        gr.Markdown(UPLOADS_OFF, elem_id="uploads-off")
        parts["show"] = (lambda: listing()[0], [table])
        refresh.click(parts["show"][0], None, parts["show"][1], api_visibility="private")
        return parts

    with gr.Group():
        files = gr.File(label="Add documents: PDF (with a text layer), Word .docx, HTML, Markdown, text",
                        file_count="multiple", file_types=FILE_TYPES, type="filepath",
                        elem_id="upload-files")  # fmt: skip
        title = gr.Textbox(label="Title (optional, for one file; else the document's own)",
                           max_lines=1, elem_id="upload-title")  # fmt: skip
        token = gr.Textbox(label="Upload token", type="password", max_lines=1, elem_id="upload-token",
                           visible=uploads.token is not None)  # fmt: skip
        add = gr.Button("Add to the documents", variant="primary", elem_id="add-documents")
    status = gr.Markdown(elem_id="documents-status", latex_delimiters=[])
    with gr.Row():
        pick = gr.Dropdown([], value=None, label="Remove an added document", elem_id="remove-pick", scale=4)
        remove = gr.Button("Remove", variant="stop", elem_id="remove-document", scale=1)

    def on_add(chosen, title_text, token_text, progress=gr.Progress()):
        cleared = None  # the file box empties once its files are in; a refusal keeps them
        try:
            message = add_uploaded(slot, uploads, chosen, title_text, token_text, progress,
                                   upload_dir=upload_folder())  # fmt: skip
        except AssistantError as exc:
            message, cleared = f"**Not added.** {escape_markdown(str(exc), one_line=True)}", gr.skip()
        rows, choices = listing()
        return message, rows, choices, cleared

    def on_remove(name, token_text):
        try:
            message = remove_added(slot, uploads, name, token_text)
        except AssistantError as exc:
            message = f"**Not removed.** {escape_markdown(str(exc), one_line=True)}"
        rows, choices = listing()
        return message, rows, choices

    private = {"api_visibility": "private"}
    # One change to the documents at a time, whatever else the server is answering.
    add.click(on_add, [files, title, token], [status, table, pick, files], concurrency_limit=1,
              concurrency_id="documents", show_progress_on=[status], **private)  # fmt: skip
    remove.click(on_remove, [pick, token], [status, table, pick], concurrency_limit=1,
                 concurrency_id="documents", **private)  # fmt: skip
    refresh.click(listing, None, [table, pick], **private)
    parts.update(files=files, title=title, token=token, add=add, status=status, pick=pick, remove=remove,
                 show=(listing, [table, pick]))  # fmt: skip
    return parts
