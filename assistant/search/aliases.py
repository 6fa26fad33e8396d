"""A small gazetteer of the names people use for the same actors and things.

Questions say "Pyongyang", "Washington" or "the DMZ" where the documents say
"North Korea", "the United States" or "Demilitarized Zone". The query is
expanded with the documents' wording (both the dense and the BM25 side see
it). General domain knowledge of Korean affairs, not fitted to any question
set. Does not touch document text.
"""

from __future__ import annotations

import re

# Case-insensitive names (metonyms, demonyms, old names).
NAMES = {
    "pyongyang": "North Korea",
    "dprk": "North Korea",
    "seoul": "South Korea",
    "beijing": "China",
    "peking": "China",
    "prc": "China",
    "chinese": "China",
    "washington": "United States",
    "america": "United States",
    "american": "United States",
    "americans": "United States",
    "usa": "United States",
    "moscow": "Soviet Union",
    "ussr": "Soviet Union",
    "soviets": "Soviet Union",
    "russia": "Soviet Union",
    "russian": "Soviet Union",
    "kremlin": "Soviet Union",
    "truce": "armistice ceasefire",
    "cease-fire": "ceasefire armistice",
    "nukes": "nuclear weapons",
    "pows": "prisoners of war",
    "ngos": "NGOs non-governmental organizations",
    "ngo": "NGOs non-governmental organizations",
    "demilitarised": "demilitarized",
}
# How the proper names among NAMES are written, for a question typed in lower case.
WRITTEN = {
    "pyongyang": "Pyongyang", "dprk": "DPRK", "seoul": "Seoul", "beijing": "Beijing",
    "peking": "Peking", "prc": "PRC", "chinese": "Chinese", "washington": "Washington",
    "america": "America", "american": "American", "americans": "Americans", "usa": "USA",
    "moscow": "Moscow", "ussr": "USSR", "soviets": "Soviets", "russia": "Russia",
    "russian": "Russian", "kremlin": "Kremlin",
}  # fmt: skip
# Upper-case acronyms that are ordinary words in lower case ("us", "un").
ACRONYMS = {
    "US": "United States",
    "U.S.": "United States",
    "UN": "United Nations",
    "U.N.": "United Nations",
    "ROK": "South Korea",
    "DMZ": "Demilitarized Zone DMZ",
    "MDL": "Military Demarcation Line MDL",
    "POW": "prisoners of war",
    "UNC": "United Nations Command",
}

_NAME_RE = re.compile(r"\b(" + "|".join(map(re.escape, NAMES)) + r")\b", re.IGNORECASE)
_ACRONYM_RE = re.compile(r"(?<![\w.])(" + "|".join(map(re.escape, ACRONYMS)) + r")(?![\w])")


def aliased(text: str) -> list[str]:
    """The words of the text that have a name in the documents ("Pyongyang", "UN")."""
    return [m.group(1) for m in _NAME_RE.finditer(text)] + [m.group(1) for m in _ACRONYM_RE.finditer(text)]


def expand_aliases(text: str) -> str:
    """The text followed by the documents' names for what it mentions, if any."""
    found = [NAMES[m.group(1).lower()] for m in _NAME_RE.finditer(text)]
    found += [ACRONYMS[m.group(1)] for m in _ACRONYM_RE.finditer(text)]
    extra = [name for name in dict.fromkeys(found) if name.lower() not in text.lower()]
    return f"{text} ({'; '.join(extra)})" if extra else text
