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
# What GFM renderers turn into links unasked ("autolinks"): a scheme's "://", a "www.",
# an e-mail's "@". One backslash breaks each, and the text still reads the same.
_AUTOLINK = re.compile(r"(?i)(\b[a-z][a-z0-9+.-]*)(://)|(\bwww)(\.)|(?<=[\w.+-])(@)(?=[\w-])")


def escape_markdown(text: str, *, one_line: bool = False) -> str:
    """Text that renders literally in Markdown: no HTML, links, images or formatting.

    `&`, `<` and `>` become entities (a Markdown renderer passes entities through and the
    browser shows the characters); other Markdown punctuation is backslash-escaped.
    """
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    text = _INLINE.sub(r"\\\1", text)
    text = _AUTOLINK.sub(_break_autolink, text)
    if one_line:
        text = " ".join(text.split())
    else:
        text = "\n".join(line.strip() for line in text.splitlines())
    text = _BLOCK_MARK.sub(r"\\\1", text)
    return _ORDERED.sub(r"\1\\\2", text)


def _break_autolink(match: re.Match) -> str:
    if match.group(2):
        return match.group(1) + "\\://"
    if match.group(4):
        return match.group(3) + "\\."
    return "\\@"


def code_span(text: str) -> str:
    """Text as one Markdown code span: shown literally and copied exactly as it is
    (a citation ID), with a backtick fence longer than any run of backticks inside."""
    text = " ".join(text.split())
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"
