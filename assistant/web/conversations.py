"""Conversations kept in the browser (Gradio's BrowserState), several at once, across reloads.

The saved value is plain JSON in the browser's localStorage: {"current": id or None,
"conversations": [{"id", "title", "chat", "turns"}, ...]}, newest first. Gradio
encrypts it with a key that the page itself receives, which keeps it from other
scripts' casual reading but not from the user: so everything restored is checked
here again (`restore`), and a chat message can hold no HTML and no link but one to
the citation lookup. Does not answer anything or lay out the page.
"""

from __future__ import annotations

import logging
import os
import re
import secrets
import uuid
from pathlib import Path

log = logging.getLogger(__name__)

STORAGE_KEY = "korea-talks-assistant-conversations"
KEY_FILE = "browser-state.key"  # beside the index; the same key after a server restart
MAX_CONVERSATIONS = 20
MAX_MESSAGES = 200
MAX_MESSAGE_CHARS = 20_000
MAX_TITLE_CHARS = 80
EMPTY = {"current": None, "conversations": []}
# A Markdown link or image whose target is not this page's ?cite=...
_FOREIGN_LINK = re.compile(r"(!?)\[((?:\\.|[^\]\\])*)\]\((?!\?cite=)[^)]*\)")
_ID = re.compile(r"^[0-9a-f]{12}$")


def browser_secret(folder: Path) -> str:
    """The key BrowserState encrypts with: kept in `folder` so that a restarted server
    still reads what browsers saved; a fresh random one when the folder is not writable."""
    path = Path(folder) / KEY_FILE
    try:
        key = path.read_text(encoding="ascii").strip()
        if len(key) >= 16:
            return key
    except (OSError, UnicodeDecodeError):
        pass
    key = secrets.token_urlsafe(24)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{KEY_FILE}.{os.getpid()}")
        tmp.write_text(key, encoding="ascii")
        os.replace(tmp, path)
    except OSError as exc:
        log.warning("cannot keep the browser-state key in %s (%s): conversations saved in "
                    "browsers will not survive a server restart", folder, exc)  # fmt: skip
    return key


def _clean_message(message) -> dict | None:
    if not isinstance(message, dict) or message.get("role") not in ("user", "assistant"):
        return None
    content = message.get("content")
    if isinstance(content, list):  # Gradio 6 hands the chat back as parts: [{"type": "text", ...}]
        content = "".join(part["text"] for part in content if isinstance(part, dict)
                          and part.get("type") == "text" and isinstance(part.get("text"), str))  # fmt: skip
    if not isinstance(content, str) or not content:
        return None
    # What this server writes holds no raw "<" (formatting.py writes entities) and links
    # only to ?cite=: anything else was not written here, and is shown as text.
    content = content[:MAX_MESSAGE_CHARS].replace("<", "&lt;")
    content = _FOREIGN_LINK.sub(lambda m: f"{m[1]}\\[{m[2]}\\]", content)
    return {"role": message["role"], "content": content}


def _clean_conversation(item) -> dict | None:
    if not isinstance(item, dict) or not isinstance(item.get("id"), str) or not _ID.match(item["id"]):
        return None
    raw_chat = item.get("chat") if isinstance(item.get("chat"), list) else []
    chat = [m for m in map(_clean_message, raw_chat[-MAX_MESSAGES:]) if m is not None]
    raw_turns = item.get("turns") if isinstance(item.get("turns"), list) else []
    turns = [t for t in raw_turns if isinstance(t, str)]
    title = item.get("title") if isinstance(item.get("title"), str) else ""
    if not chat:
        return None
    return {"id": item["id"], "title": " ".join(title.split())[:MAX_TITLE_CHARS] or "Conversation",
            "chat": chat, "turns": turns}  # fmt: skip


def clean(saved) -> dict:
    """The saved value with everything malformed dropped (a tampered or old value)."""
    if not isinstance(saved, dict):
        return {"current": None, "conversations": []}
    items = saved.get("conversations") if isinstance(saved.get("conversations"), list) else []
    conversations, seen = [], set()
    for item in items[:MAX_CONVERSATIONS]:
        conversation = _clean_conversation(item)
        if conversation is not None and conversation["id"] not in seen:
            seen.add(conversation["id"])
            conversations.append(conversation)
    current = saved.get("current") if saved.get("current") in seen else None
    return {"current": current, "conversations": conversations}


def record(saved, conversation_id: str | None, chat: list, turns: list, first_question: str
           ) -> tuple[dict, str]:  # fmt: skip
    """Save a conversation's chat and turns as the newest (a new one when the id is None);
    the oldest beyond MAX_CONVERSATIONS are dropped. Returns (saved, its id)."""
    saved = clean(saved)
    others = [c for c in saved["conversations"] if c["id"] != conversation_id]
    previous = next((c for c in saved["conversations"] if c["id"] == conversation_id), None)
    if previous is None:
        conversation_id = uuid.uuid4().hex[:12]
    title = previous["title"] if previous else " ".join(first_question.split())[:MAX_TITLE_CHARS]
    messages = [m for m in map(_clean_message, list(chat)[-MAX_MESSAGES:]) if m is not None]
    entry = {"id": conversation_id, "title": title, "chat": messages, "turns": list(turns)}
    return {"current": conversation_id, "conversations": [entry, *others][:MAX_CONVERSATIONS]}, conversation_id


def restore(saved, conversation_id: str | None) -> tuple[dict, dict | None]:
    """(the cleaned saved value with this conversation current, the conversation or None)."""
    saved = clean(saved)
    found = next((c for c in saved["conversations"] if c["id"] == conversation_id), None)
    return {**saved, "current": found["id"] if found else None}, found


def forget(saved, conversation_id: str | None) -> dict:
    """The saved value without this conversation."""
    saved = clean(saved)
    kept = [c for c in saved["conversations"] if c["id"] != conversation_id]
    return {"current": None, "conversations": kept}


def choices(saved) -> list[tuple[str, str]]:
    """(title, id) of every saved conversation, newest first, for a dropdown."""
    return [(c["title"], c["id"]) for c in clean(saved)["conversations"]]
