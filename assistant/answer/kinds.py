"""Whether a sentence holds what a question asks for: a date for "when", a count for
"how many", a place, a person's or an agent's name; and whether a text names a
question's entities in any of their forms.

A classic extractive-QA check, used twice: a sentence of the expected type is
preferred when answers are selected, and a best sentence of the wrong type
lowers the confidence (a "which city" question answered by a sentence naming
no place is likely a fact the documents do not hold). Rules, not a model. Does
not analyse questions (search/analysis.py does).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from ..search.aliases import ACRONYMS, NAMES
from ..search.analysis import YEAR

MONTHS = "January|February|March|April|May|June|July|August|September|October|November|December"
_DATE = re.compile(rf"\b(1[5-9]\d\d|20\d\d)s?\b|\b({MONTHS})\b|\b(decade|century)\b")
_DIGITS = re.compile(r"\b\d[\d,.]*\b(?!(st|nd|rd|th)\b)")
_DAY_AFTER_MONTH = re.compile(rf"({MONTHS})\s+$")
# Small number words ("the two Koreas", "two distinct zones") are rarely the
# answer to "how many"; large ones ("thousands of troops") usually are.
_NUMBER_WORDS = re.compile(r"\b(hundreds|thousands|millions|dozens|tens of thousands)\b", re.I)


def _counts(sentence: str) -> list[str]:
    """Counts and measures: numbers that are neither years nor the day of a date."""
    found = [
        m.group()
        for m in _DIGITS.finditer(sentence)
        if not YEAR.fullmatch(m.group()) and not _DAY_AFTER_MONTH.search(sentence[: m.start()])
    ]
    return found + [m.group() for m in _NUMBER_WORDS.finditer(sentence)]


# Title-case words that name nothing (sentence openers, months).
_FUNCTION_WORDS = frozenset(
    """The This These Those Its It In On At As By For From Following During After Before While
    However Conversely Additionally Notably Ultimately Overall Despite Although Recent Early Both
    Each Such Some Many Most Other Another Their They There Thus Then When Where Which Who What
    January February March April May June July August September October November December""".split()
)
# Title-case words that are not people's names in this domain's prose (besides the above).
_NOT_NAMES = _FUNCTION_WORDS | frozenset(
    """North South East West Korea Korean Koreas United States Nations Soviet Union China Chinese
    Japan Japanese America American Cold War World Peninsula Armistice Agreement Demilitarized Zone
    Military Demarcation Line Declaration Policy Battle Reservoir Perimeter President General
    International Asian Asia Western Eastern Marxist Leninist Security Council Sunshine Summit
    Peace Talks Korea's Republic Democratic People's Allied Allies Germany Poland India Pakistan
    Panmunjom Inchon Pusan Chosin Kaesong Seoul Pyongyang Beijing Moscow Washington DMZ MDL UN
    CBMs NGOs Confidence Building Measures Key Initial Frequent Large Efforts Examples Lessons
    Command Commands Forces Coalition Delegation Delegations Representatives Headquarters""".split()
)
_CAPITALISED = re.compile(r"\b[A-Z][a-z]+(?:-[a-z]+)?\b")
# Where a word is capitalised because it opens something: the text, a line, a list item
# ("- Creation of the DMZ", "2. Frequency of drills").
_OPENS = re.compile(r"(\A|\n)\s*([-*•–]|\d+[.)])?\s*\Z")
# An organisation is not a place: "representatives from the United Nations Command".
_ORGANISATION = r"(?!United Nations\b|[A-Z][a-z]+ (?:Command|Council|Forces|Nations|Organi[sz]ation)\b)"
PLACE = re.compile(r"\b(in|at|near|from|to|along|across|on|inside|within|into|outside|around)\s+(the\s+)?"
                    + _ORGANISATION + r"([A-Z][a-z]+)")
# "the village of Kaesong", "the port city of Inchon": a place named by what it is.
PLACE_OF = re.compile(r"\b(village|town|city|port|capital|island|province|county|region|district)\s+of\s+([A-Z][a-z]+)")
def matches_type(sentence: str, answer_type: str | None, question: str = "") -> bool:
    """Whether the sentence holds something of the expected type (True when none).

    What the question itself names does not count: "before the 1953 signing" is
    not answered by a sentence whose only date is 1953.
    """
    if answer_type is None:
        return True
    asked = {w.lower() for w in re.findall(r"[\w'’-]+", question)}

    def new(values) -> bool:
        return any(v.lower() not in asked for v in values)

    if answer_type == "date":
        return new(m.group() for m in _DATE.finditer(sentence))
    if answer_type == "number":
        return new(_counts(sentence))
    if answer_type == "place":
        places = [m.group(3) for m in PLACE.finditer(sentence)] + [m.group(2) for m in PLACE_OF.finditer(sentence)]
        return new(p for p in places if p not in MONTHS.split("|"))
    words = [m.group() for m in _CAPITALISED.finditer(sentence)
             if m.group() not in _FUNCTION_WORDS and not _OPENS.search(sentence[: m.start()])]
    if answer_type == "agent":
        return new(words) or new(re.findall(r"\b[A-Z]{2,}\b", sentence))
    if answer_type == "person":
        # A name: a capitalised word that is neither sentence-initial nor a known non-name.
        return new(w for w in words if w.split("-")[0] not in _NOT_NAMES)
    return True


def entity_coverage(entities: Sequence[str], text: str, corrections: dict[str, str] | None = None
                    ) -> float:  # fmt: skip
    """Share of the question's entities the text mentions (1.0 when it names none).

    A question about something the passages never name ("the Six-Party Talks")
    is likely one the documents do not answer. Aliases and spelling fixes count.
    """
    if not entities:
        return 1.0
    haystack = text.lower()
    return sum(mentions(haystack, entity, corrections) for entity in entities) / len(entities)


def name_forms(entity: str, corrections: dict[str, str] | None = None) -> set[str]:
    """The entity as written, as spell-fixed and as the documents call it ("Beijing" ->
    "China"), each also without a plural "s"."""
    corrections = corrections or {}
    fixed = corrections.get(entity.lower(), entity)
    names = {entity, fixed, ACRONYMS.get(entity, entity)}
    names |= {NAMES.get(name.lower(), name) for name in (entity, fixed)}
    names |= {n[:-1] for n in names if n.endswith("s") and not n.endswith(("ss", "us", "is"))
              and len(n) > 3}  # fmt: skip
    return {n for n in names if n.strip()}


def mentions(haystack: str, entity: str, corrections: dict[str, str] | None = None) -> bool:
    """Whether lower-cased text names the entity in one of its forms. Only each form's
    first word is looked for, at the start of a word ("korea" finds "Korean", "il"
    does not find "military")."""
    return any(re.search(r"(?<!\w)" + re.escape(n.lower().split()[0]), haystack)
               for n in name_forms(entity, corrections))
