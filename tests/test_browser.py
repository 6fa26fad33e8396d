"""The real page in headless Chromium: ask, read a cited answer, open the citation, and
check that hostile document text is shown literally and never runs. Takes the README's
screenshot (docs/screenshot.png)."""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import pytest
from conftest import ROOT, FakeEmbedder

from assistant import Assistant
from assistant.web.serve import create_server_app
from assistant.config import Settings
from assistant.web.server import serve_in_thread
from assistant.web.formatting import cite_link

CHROMIUM = Path("/usr/bin/chromium")
if not CHROMIUM.exists() or shutil.which("chromium") is None:
    pytest.skip("no /usr/bin/chromium: install Debian's chromium (`apt-get install chromium`; "
                ".ci/run does) to run the browser tests", allow_module_level=True)  # fmt: skip

from playwright.sync_api import expect, sync_playwright  # noqa: E402

pytestmark = [pytest.mark.browser, pytest.mark.slow]
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
SCREENSHOT = ROOT / "docs" / "screenshot.png"
PAYLOADS = {
    "What hostile glyph was painted on the armistice map?": "<img src=x onerror=alert(1)>",
    "What did the scribe write beside the treaty line?": "<script>alert(2)</script>",
    "What note was near the border markers?": "[x](javascript:alert(3))",
    # bare addresses a Markdown renderer would make links of (issue 18, item 3)
    "Which address was stamped on the ceasefire leaflet?": "www.example.test",
    "Which link was printed on the truce poster?": "https://example.test/phish",
}
HOSTILE_DOC = (
    "Hostile Notes\n\nMarkers\n"
    "The hostile glyph <img src=x onerror=alert(1)> was painted on the armistice map.\n"
    "The scribe wrote <script>alert(2)</script> beside the treaty line on the map.\n"
    "A note read [x](javascript:alert(3)) near the border markers of the map.\n"
    "The address www.example.test was stamped on the ceasefire leaflet.\n"
    "The link https://example.test/phish was printed on the truce poster.\n"
)


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=FLAGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1400, "height": 1050})
    page = context.new_page()
    page.dialogs, page.console_errors = [], []
    page.on("dialog", lambda dialog: (page.dialogs.append(dialog.message), dialog.dismiss()))
    page.on("console", lambda message: message.type == "error" and page.console_errors.append(message.text))
    yield page
    context.close()


@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    base = tmp_path_factory.mktemp("hostile")
    (base / "seeds").mkdir()
    (base / "seeds" / "hostile.txt").write_text(HOSTILE_DOC, encoding="utf-8")
    (base / "seeds" / "plain.txt").write_text("Plain\n\nTalks\nTalks began at Kaesong in 1951.\n")
    assistant = Assistant.load(base / "seeds", base / "index", settings=Settings(),
                               embedder=FakeEmbedder())  # fmt: skip
    with serve_in_thread(create_server_app(assistant)) as url:
        yield url, assistant


def ask(page, question: str) -> None:
    rows = page.locator("#chat .message-row")
    before = rows.count()
    page.fill("#question textarea", question)
    page.click("#ask")
    expect(rows).to_have_count(before + 2, timeout=20_000)  # the question and its answer
    expect(rows.last).to_contain_text("Confidence")


def highlighted(locator) -> str:
    """The first passage's highlighted text: its quote, with the short answer inside it
    (consecutive highlighted spans)."""
    passages = locator.locator(".passage")
    first = passages.first if passages.count() else locator
    return " ".join("".join(first.locator(".highlighted .text").all_inner_texts()).split())


def test_ask_read_the_cited_answer_and_open_its_citation(page, real_server_url, real_assistant, tmp_path):
    question = "When was the armistice signed?"
    expected = real_assistant.ask(question)
    first = expected.citations[0]
    page.goto(real_server_url)
    ask(page, question)
    expect(page.locator("#chat")).to_contain_text("[1]")
    expect(page.locator("#sources")).to_contain_text(f"[1] {first.title}")
    assert highlighted(page.locator("#sources")) == " ".join(first.quote.split())
    # The README's picture: written only on request, so a test run leaves the tree clean.
    shot = SCREENSHOT if os.environ.get("UPDATE_SCREENSHOT") else tmp_path / "screenshot.png"
    shot.parent.mkdir(exist_ok=True)
    page.screenshot(path=str(shot))
    assert shot.stat().st_size > 10_000

    page.click("#open-1")  # the source's button: the lookup tab, ID filled, quote highlighted
    expect(page.locator("#cite-id textarea")).to_have_value(first.id)
    expect(page.locator("#lookup-passage .highlighted")).to_be_visible()
    assert highlighted(page.locator("#lookup-passage")) == " ".join(first.quote.split())

    page.get_by_role("tab", name="Ask").click()  # the [1] marker: a link to ?cite=ID
    with page.context.expect_page() as opened:
        page.locator("#chat a", has_text="[1]").first.click()
    linked = opened.value
    expect(linked.locator("#lookup-passage .highlighted")).to_be_visible(timeout=20_000)
    assert highlighted(linked.locator("#lookup-passage")) == " ".join(first.quote.split())
    assert page.dialogs == []
    # The page works under the server's Content-Security-Policy (issue 18, item 6): it
    # answered above, and the browser reported no violation.
    assert not [e for e in page.console_errors if "Content Security Policy" in e]


def test_hostile_document_text_is_shown_literally_and_never_runs(page, hostile):
    url, assistant = hostile
    page.goto(url)
    for question, payload in PAYLOADS.items():
        ask(page, question)
        expect(page.locator("#chat .message-row").last).to_contain_text(payload)
        expect(page.locator("#sources")).to_contain_text(payload)
    assert page.locator("a[href*='example.test']").count() == 0  # no bare address became a link
    ask(page, "Was <img src=x onerror=alert(5)> on the armistice map?")  # the user's own text
    expect(page.locator("#chat")).to_contain_text("<img src=x onerror=alert(5)>")
    page.click("#open-1")
    expect(page.locator("#lookup-passage")).to_contain_text(PAYLOADS[next(iter(PAYLOADS))])

    script = assistant.ask(next(q for q, p in PAYLOADS.items() if "script" in p)).citations[0]
    page.goto(url + cite_link(script.id))
    expect(page.locator("#lookup-passage")).to_contain_text("<script>alert(2)</script>")
    page.goto(url + cite_link("<img src=x onerror=alert(6)>"))
    expect(page.get_by_text("not a citation ID")).to_contain_text("<img src=x onerror=alert(6)>")

    page.wait_for_timeout(500)  # give any injected handler time to fire
    assert page.dialogs == []
    assert page.locator("img[src='x'], a[href^='javascript'], script:text('alert')").count() == 0


# ---- what a newcomer meets (issue 19) ------------------------------------------------

HASH_LIKE = re.compile(r"\b\d{3}_[0-9a-f]{16}\b")


def answer_rows(page) -> int:
    return page.locator("#chat .message-row").count()


def test_an_example_runs_and_titles_are_human(page, real_server_url, real_assistant):
    page.goto(real_server_url)
    page.get_by_role("button", name="When was the armistice signed?").click()  # runs, not only fills
    expect(page.locator("#chat .message-row").last).to_contain_text("Confidence", timeout=20_000)
    # the sources panel is a second output: it may render a moment after the chat
    first = "The Korean War: Negotiations and Peace Talks"
    expect(page.locator("#sources")).to_contain_text(first, timeout=10_000)
    titles = page.locator("#sources strong").all_inner_texts()
    assert any(first in t for t in titles)
    assert not [t for t in titles if HASH_LIKE.search(t)]  # the ID may hold the stem; a title never
    # why this passage, in words; the numbers one click away
    expect(page.locator("#sources")).to_contain_text("it holds your words")
    expect(page.locator("#sources").get_by_text("dense cosine").first).to_be_hidden()


def test_an_id_copied_from_the_export_opens_in_the_lookup_and_a_bad_one_clears_it(page, real_server_url):
    page.goto(real_server_url)
    expect(page.locator("#export")).to_be_hidden()  # no Markdown box before an answer
    ask(page, "When was the armistice signed?")
    page.locator("#export").get_by_text("Answer as Markdown (copy)").click()
    exported = page.locator("#export-box textarea").input_value()
    copied = re.search(r"Citation ID: (.+)", exported)[1]  # as a user selects it: a code span
    assert copied.startswith("`") and "\\" not in copied
    page.get_by_role("tab", name="Citation lookup").click()
    for pasted in (copied, copied.strip("`").replace("_", "\\_") + "  "):  # stray escapes, spaces
        page.fill("#cite-id textarea", pasted)
        page.click("#lookup-btn")
        expect(page.locator("#lookup-passage .highlighted").first).to_be_visible(timeout=10_000)
        expect(page.locator("#lookup-header")).to_contain_text("The Korean War")
    page.fill("#cite-id textarea", "no-such.txt:1-2#abcdef")
    page.click("#lookup-btn")
    expect(page.locator("#lookup-header")).to_contain_text("no document")
    expect(page.locator("#lookup-passage .highlighted")).to_have_count(0)  # the old one is gone


def test_a_reload_keeps_the_conversation_and_older_ones_reopen(page, real_server_url):
    page.goto(real_server_url)
    ask(page, "When was the armistice signed?")
    ask(page, "Where did the armistice talks begin?")
    page.reload()
    expect(page.locator("#chat")).to_contain_text("Where did the armistice talks begin?", timeout=20_000)
    expect(page.locator("#chat .message-row")).to_have_count(4)
    page.click("#clear")  # a new conversation; the first stays saved in the browser
    expect(page.locator("#chat .message-row")).to_have_count(0)
    ask(page, "What did the Panmunjom Declaration say?")
    page.reload()
    expect(page.locator("#chat")).to_contain_text("Panmunjom Declaration", timeout=20_000)
    page.locator("#conversations input").click()
    page.get_by_role("option", name="When was the armistice signed?").click()
    expect(page.locator("#chat")).to_contain_text("Where did the armistice talks begin?")
    expect(page.locator("#chat .message-row")).to_have_count(4)
    with page.context.expect_page() as opened:  # its citations still open in the lookup
        page.locator("#chat a", has_text="[1]").first.click()
    expect(opened.value.locator("#lookup-passage .highlighted").first).to_be_visible(timeout=20_000)


def test_on_a_phone_the_sources_come_straight_under_the_answer(browser, real_server_url):
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    page = context.new_page()
    try:
        page.goto(real_server_url)
        ask(page, "When was the armistice signed?")
        chat, sources = page.locator("#chat").bounding_box(), page.locator("#sources").bounding_box()
        question = page.locator("#question").bounding_box()
        assert chat["y"] + chat["height"] <= sources["y"] <= chat["y"] + chat["height"] + 120
        assert sources["y"] < question["y"]  # examples and settings come after both
        assert sources["x"] + sources["width"] <= 390
        expect(page.locator("#chat")).not_to_contain_text("beside the chat")
    finally:
        context.close()


def test_the_evaluation_tab_fits_1280_px(browser, real_server_url, tmp_path):
    questions = tmp_path / "few.jsonl"
    questions.write_text("".join(json.dumps(q) + "\n" for q in [
        {"id": "f1", "question": "When was the armistice signed?", "answerable": True,
         "evidence": ["The most notable agreement was the Korean Armistice Agreement, signed on July 27, 1953."]},
        {"id": "f2", "question": "What is the capital of Peru?", "answerable": False},
    ]), encoding="utf-8")  # fmt: skip
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    try:
        page.goto(real_server_url)
        page.get_by_role("tab", name="Evaluation").click()
        expect(page.locator("#evaluation-questions")).to_be_hidden()  # no empty placeholder tables
        page.locator("input[type=file]").set_input_files(str(questions))
        page.wait_for_timeout(1000)
        page.click("#run-evaluation")
        table = page.locator("#evaluation-questions")
        expect(table).to_be_visible(timeout=60_000)
        for name in ("question", "outcome", "answer", "rank", "confidence"):
            header = table.locator("th", has_text=name).first
            box = header.bounding_box()
            assert box is not None and box["x"] + box["width"] <= 1280, name
            assert box["height"] < 60, name  # one line, not a word broken over four
    finally:
        context.close()


def test_upload_a_pdf_ask_it_see_the_page_and_remove_it(page, tmp_path):
    from assistant.web.documents_tab import Uploads
    from pdf_maker import make_pdf
    from test_library import long_report

    seeds = tmp_path / "seeds"
    seeds.mkdir()
    (seeds / "plain.txt").write_text("Plain\n\nTalks\nTalks began at Kaesong in 1951.\n", encoding="utf-8")
    assistant = Assistant.load(seeds, tmp_path / "index", settings=Settings(abstain_below=0.0),
                               embedder=FakeEmbedder())  # fmt: skip
    (tmp_path / "upload").mkdir()
    pdf = make_pdf(long_report(), tmp_path / "upload" / "neutral.pdf")
    token = "a-token-for-this-test"
    question = "Who guarded the camps in the demilitarized zone?"
    with serve_in_thread(create_server_app(assistant, uploads=Uploads(True, token))) as url:
        page.goto(url)
        page.get_by_role("tab", name="Documents").click()
        table = page.locator("#documents-table")
        expect(table).to_contain_text("plain.txt")
        page.locator("#upload-files input[type=file]").set_input_files(str(pdf))
        expect(page.locator("#upload-files")).to_contain_text("neutral.pdf", timeout=20_000)
        page.fill("#upload-token input", "wrong")
        page.click("#add-documents")
        expect(page.locator("#documents-status")).to_contain_text("Not added. the upload token is missing or wrong",
                                                                  timeout=20_000)  # fmt: skip
        page.fill("#upload-token input", token)
        page.click("#add-documents")
        expect(page.locator("#documents-status")).to_contain_text("Added neutral.pdf", timeout=60_000)
        expect(table).to_contain_text("Report on the Neutral Commission")

        page.get_by_role("tab", name="Ask").click()  # answerable at once, cited to its page
        ask(page, question)
        expect(page.locator("#sources")).to_contain_text("Report on the Neutral Commission")
        expect(page.locator("#sources")).to_contain_text(re.compile(r"Custody · p\. \d"))

        page.get_by_role("tab", name="Documents").click()
        page.locator("#remove-pick input").click()
        page.get_by_role("option", name="neutral.pdf").click()
        page.click("#remove-document")
        expect(page.locator("#documents-status")).to_contain_text("Removed neutral.pdf", timeout=60_000)
        expect(table).not_to_contain_text("neutral.pdf")
        page.get_by_role("tab", name="Ask").click()
        ask(page, question)
        expect(page.locator("#sources")).not_to_contain_text("Neutral Commission")
