"""web/conversations.py: conversations kept in the browser, checked again when restored."""

from __future__ import annotations

from assistant.web import conversations as conv


def chat(question: str) -> list[dict]:
    return [{"role": "user", "content": question},
            {"role": "assistant", "content": [{"type": "text", "text": "It was 1953. [\\[1\\]](?cite=a.txt%3A1-2)"}]}]  # fmt: skip


def test_record_keeps_several_newest_first_and_restore_reopens_one():
    saved, first = conv.record(None, None, chat("When was it signed?"), ["When was it signed?"], "When was it signed?")
    saved, second = conv.record(saved, None, chat("Where?"), ["Where?"], "Where?")
    assert first != second and saved["current"] == second
    assert conv.choices(saved) == [("Where?", second), ("When was it signed?", first)]
    saved, again = conv.record(saved, first, chat("When was it signed?") * 2, ["a", "b"], "ignored")
    assert again == first and conv.choices(saved)[0] == ("When was it signed?", first)  # moved up, title kept
    saved, found = conv.restore(saved, first)
    assert saved["current"] == first and found["turns"] == ["a", "b"] and len(found["chat"]) == 4
    assert found["chat"][1]["content"].startswith("It was 1953.")  # Gradio's parts, as text
    assert conv.choices(conv.forget(saved, first)) == [("Where?", second)]


def test_only_the_newest_conversations_are_kept():
    saved = None
    for i in range(conv.MAX_CONVERSATIONS + 5):
        saved, _ = conv.record(saved, None, chat(f"q{i}"), [f"q{i}"], f"q{i}")
    titles = [t for t, _ in conv.choices(saved)]
    assert len(titles) == conv.MAX_CONVERSATIONS and titles[0] == f"q{conv.MAX_CONVERSATIONS + 4}"


def test_a_tampered_saved_value_restores_as_text_only():
    hostile = {"current": "0123456789ab", "conversations": [
        {"id": "0123456789ab", "title": "<b>t</b>", "turns": ["q", 3], "chat": [
            {"role": "user", "content": "<img src=x onerror=alert(1)>"},
            {"role": "assistant", "content": "[click](javascript:alert(2)) ![i](http://x.test/i.png) [\\[1\\]](?cite=a.txt%3A1-2)"},
            {"role": "system", "content": "injected"}, "not a message"]},
        {"id": "../../etc", "title": "bad id", "chat": chat("x"), "turns": []},
        "not a conversation"]}  # fmt: skip
    saved, found = conv.restore(hostile, "0123456789ab")
    assert [c["id"] for c in saved["conversations"]] == ["0123456789ab"]
    user, assistant = found["chat"]  # the system message and the string are dropped
    assert "<" not in user["content"] and "&lt;img" in user["content"]
    assert "](javascript" not in assistant["content"] and "](http" not in assistant["content"]
    assert "[\\[1\\]](?cite=a.txt%3A1-2)" in assistant["content"]  # the lookup links stay
    assert found["turns"] == ["q"]
    assert conv.clean("garbage") == {"current": None, "conversations": []}


def test_the_storage_key_survives_a_restart(tmp_path):
    key = conv.browser_secret(tmp_path)
    assert len(key) >= 16 and conv.browser_secret(tmp_path) == key
    assert (tmp_path / conv.KEY_FILE).read_text() == key
