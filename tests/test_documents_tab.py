"""Issue 21: the Documents tab's rules, without a browser: uploads off unless the
operator turns them on, the token, only Gradio's own uploads read, and the upload
route's larger size limit (test_browser.py drives the real page)."""

from __future__ import annotations

import argparse

import pytest

from assistant import Assistant
from assistant.errors import AssistantError, UsageError
from assistant.web.documents_tab import UPLOADS_OFF, WRONG_TOKEN, Uploads, add_uploaded, remove_added
from assistant.web.serve import upload_policy
from assistant.web.server import AssistantSlot

TEXT = b"# Custody\n\nThe Indian custodial force guarded the camps in the demilitarized zone.\n"


@pytest.fixture
def slot(tiny_settings, fake_embedder):
    return AssistantSlot(Assistant.load(settings=tiny_settings, embedder=fake_embedder))


@pytest.fixture
def uploaded(tmp_path):
    folder = tmp_path / "gradio"
    (folder / "abc").mkdir(parents=True)
    path = folder / "abc" / "custody.md"
    path.write_bytes(TEXT)
    return folder, path


def names(slot) -> set[str]:
    return {row["path"] for row in slot.get().documents()}


def test_uploads_are_off_unless_the_operator_allows_them(slot, uploaded):
    folder, path = uploaded
    with pytest.raises(AssistantError, match="turned off"):
        add_uploaded(slot, Uploads(), [str(path)], upload_dir=folder)
    with pytest.raises(AssistantError, match="turned off"):
        remove_added(slot, Uploads(), "custody.md")
    assert "custody.md" not in names(slot) and "assistant serve --allow-uploads" in UPLOADS_OFF


def test_with_a_token_only_the_right_one_adds_and_removes(slot, uploaded):
    folder, path = uploaded
    uploads = Uploads(True, "the-operators-token")
    for wrong in ("", "the-operators-toke", None):
        with pytest.raises(AssistantError, match=WRONG_TOKEN):
            add_uploaded(slot, uploads, [str(path)], token=wrong, upload_dir=folder)
    assert "custody.md" not in names(slot)
    assert add_uploaded(slot, uploads, [str(path)], token="the-operators-token",
                        upload_dir=folder).startswith("**Added** custody.md")  # fmt: skip
    assert "custody.md" in names(slot)  # answerable now: the slot's Assistant has it
    with pytest.raises(AssistantError, match=WRONG_TOKEN):
        remove_added(slot, uploads, "custody.md", token="guess")
    remove_added(slot, uploads, "custody.md", token="the-operators-token")
    assert "custody.md" not in names(slot)


def test_a_path_outside_the_upload_folder_is_never_read(slot, uploaded, tmp_path):
    folder, _ = uploaded
    elsewhere = tmp_path / "secret.md"
    elsewhere.write_bytes(TEXT)
    for sent in (str(elsewhere), str(folder / ".." / "secret.md")):
        with pytest.raises(AssistantError, match="only a file uploaded through this page"):
            add_uploaded(slot, Uploads(True), [sent], upload_dir=folder)
    assert "secret.md" not in names(slot)


def args(host: str, allow: bool = True):
    return argparse.Namespace(host=host, allow_uploads=allow)


def test_a_server_others_can_reach_needs_an_upload_token():
    assert upload_policy(args("127.0.0.1", allow=False), {}) == Uploads()
    assert upload_policy(args("127.0.0.1"), {}) == Uploads(True, None)
    with pytest.raises(UsageError, match="needs a token: set ASSISTANT_UPLOAD_TOKEN"):
        upload_policy(args("0.0.0.0"), {})
    with pytest.raises(UsageError, match="too short"):
        upload_policy(args("0.0.0.0"), {"ASSISTANT_UPLOAD_TOKEN": "short"})
    token = "a-long-enough-token"
    assert upload_policy(args("0.0.0.0"), {"ASSISTANT_UPLOAD_TOKEN": token}) == Uploads(True, token)


def test_only_the_upload_route_takes_a_large_body_and_only_with_uploads_on(tiny_settings, fake_embedder):
    from fastapi.testclient import TestClient

    from assistant.web.serve import MAX_REQUEST_BYTES, create_server_app

    assistant = Assistant.load(settings=tiny_settings, embedder=fake_embedder)
    big = b"x" * (MAX_REQUEST_BYTES + 1)
    for uploads, upload_status in ((Uploads(), 413), (Uploads(True), None)):
        client = TestClient(create_server_app(assistant, uploads=uploads))
        assert client.post("/api/ask", content=big, headers={"content-type": "application/json"}).status_code == 413
        status = client.post("/gradio_api/upload", files={"files": ("big.txt", big)}).status_code
        assert status == 413 if upload_status == 413 else status != 413
