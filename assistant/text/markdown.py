"""Markdown that shows text literally: what document text goes through before any
Markdown renderer (the chat, the sources, the lookup, the export, report.md).

Does not render anything and does not decide what is shown.
"""

from __future__ import annotations

import re

# Backslash-escaped anywhere: emphasis, code, links/images, tables, strike, maths.
_INLINE = re.compile(r"([\\`*_\[\]{}|~$])")
# Escaped only where a line starts: headings, quotes, lists, setext underlines.
_BLOCK_MARK = re.compile(r"^([#>+=-])", re.MULTILINE)
_ORDERED = re.compile(r"^(\d+)([.)])", re.MULTILINE)


def escape_markdown(text: str, *, one_line: bool = False) -> str:
    """Text that renders literally in Markdown: no HTML, links, images or formatting.

    `&`, `<` and `>` become entities (a Markdown renderer passes entities through and the
    browser shows the characters); other Markdown punctuation is backslash-escaped.
    """
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    text = _INLINE.sub(r"\\\1", text)
    if one_line:
        text = " ".join(text.split())
    else:
        text = "\n".join(line.strip() for line in text.splitlines())
    text = _BLOCK_MARK.sub(r"\\\1", text)
    return _ORDERED.sub(r"\1\\\2", text)
