"""What a question asks for, read from its words: the kind of answer it expects
(a "when" question wants a date, "who" a person), whether it asks why, and the
names and numbers it holds, with names typed in lower case written as the
documents write them.

Rules, not a model; a question with no recognisable type expects nothing.
search/query.py runs these once per question into the `Query`. Does not read
documents (answer/kinds.py checks sentences against what is asked).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from ..ingest.chunking import ABBREVIATIONS, ends_sentence
from ..text.terms import CASED_WORD, STOPWORDS, name_key, written_name

@dataclass(frozen=True)
class Asked:
    """What a question asks for, read once (`analyse_question`) and then only read."""

    answer_type: str | None  # "date" | "number" | "place" | "person" | "agent" | None
    why: bool  # asks for a reason
    recased: str  # the question with lower-case names written as the documents write them
    entities: tuple[str, ...]  # the names and numbers `recased` holds (question_entities)


def analyse_question(question: str, names: Mapping[str, str] | None = None,
                     corrections: dict[str, str] | None = None) -> Asked:  # fmt: skip
    """What the question asks for. `names` and `corrections` are `recase`'s."""
    recased = recase(question, names or {}, corrections)
    return Asked(expected_type(question), asks_why(question), recased,
                 tuple(question_entities(recased)))  # fmt: skip


_QUESTION_TYPES = [
    # "How far back does it go" and "how long ago" ask when, not how much ("how far back
    # did the troops retreat" is a distance).
    ("date", re.compile(r"\bhow far back\b(?=[^?.]*\b(go|goes|went|date|dates|reach|in time)\b)|\bhow long ago\b", re.I)),
    ("number", re.compile(r"\bhow (many|much|long|far|large|big|often|wide|deep|high|tall|old)\b|\b(what|which) (was |is |were |are )?(the )?(total |exact )?(number|percentage|share|size|death toll|toll|casualt(y|ies)|population|cost|width|length|distance)\b", re.I)),
    ("date", re.compile(r"\bwhen\b|\b(what|which|in what|in which) (years?|months?|dates?|days?|decades?)\b|\bwhat time\b", re.I)),
    ("place", re.compile(r"\bwhere\b|\b(what|which|in what|in which) (city|cities|towns?|places?|locations?|villages?|sites?|regions?|area)\b", re.I)),
    ("person", re.compile(r"\b(what|which|who)\b[\w\s'-]{0,30}?\b(leaders?|presidents?|generals?|officers?|persons?|commanders?|officials?|diplomats?|negotiators?|envoys?|ministers?)\b"
                          # what only a person does: heading, commanding, chairing a body, a
                          # post one holds after another, signing on an organisation's behalf
                          r"|\bwho\s+(headed|commanded|chaired|succeeded|replaced)\b|\bwho\b[^?]{0,60}\bon behalf of\b", re.I)),
    # "Who ...?" is answered by a person, a country or an organisation alike.
    ("agent", re.compile(r"\b(what|which) (country|countries|nation|nations|organi[sz]ations?|state|power)\b|\bwho\b(?! (is|are|was|were) (the )?(main |major |key )?(parties|countries|nations|sides|states|powers|actors))", re.I)),
]  # fmt: skip

_YEAR = re.compile(r"(1[5-9]\d\d|20\d\d)s?")
_WH = re.compile(r"\b(how|what|which|who|whom|whose|when|where|why)\b", re.I)


def expected_type(question: str) -> str | None:
    """'number' | 'date' | 'place' | 'person' | 'agent', or None when it has no type."""
    first = _WH.search(question)
    if first is None:  # keyword queries: "armistice signing date"
        first_at = 0
    else:
        first_at = first.start()
    # Only the question's own (first) interrogative decides: "How does the text
    # sum up where ..." is a how-question, not a where-question.
    for name, pattern in _QUESTION_TYPES:
        for m in pattern.finditer(question):
            if first is None or m.start() <= first_at <= m.end():
                return name
    return None


_WHY = re.compile(r"\bwhy\b", re.I)


def asks_why(question: str) -> bool:
    """Whether the question asks for a reason ("Why did ...", "explain why ...")."""
    return bool(_WHY.search(question))


# A whole number of 2-4 digits ("2019", "1950s"), not a piece of "1950-53" or "250,000".
_NUMBER = re.compile(r"(?<![\d.,'’-])\d{2,4}s?(?![\d]|[.,]\d)")


def question_entities(question: str) -> list[str]:
    """Names, acronyms and numbers in a question: capitalised words that do not open
    one of its sentences ("U.S." and "Gen." end none), and whole numbers ("Vietnam",
    "Six-Party", "2019"), possessives dropped."""
    found = []
    for m in CASED_WORD.finditer(question):
        word = written_name(m.group())  # "Washington's" names Washington
        if len(word) < 2 or not word[0].isupper() or word.lower() in STOPWORDS:
            continue
        if word.lower() in ABBREVIATIONS and question[m.end() : m.end() + 1] == ".":  # "Gen."
            continue
        before = question[: m.start()]
        if not before.strip() or ends_sentence(before):
            continue
        found.append(word)
    found += [m.group() for m in _NUMBER.finditer(question)]
    return list(dict.fromkeys(found))


def is_year(entity: str) -> bool:
    return bool(_YEAR.fullmatch(entity))


def recase(question: str, names: Mapping[str, str], corrections: dict[str, str] | None = None
           ) -> str:  # fmt: skip
    """A question written without names (all in lower case, or capitalised only where a
    sentence opens), with the names it holds written the way the documents write them
    ("when did talks move to panmunjom" -> "... Panmunjom", "dmz" -> "DMZ"), so they are
    found. `names` maps a lower-cased name to that form; a spelling fix is read first.
    A name neither the documents nor the aliases know stays unseen ("cheonan")."""
    if any(not e[0].isdigit() for e in question_entities(question)):
        return question
    corrections = corrections or {}

    def restore(m: re.Match) -> str:
        word = name_key(m.group())
        return names.get(corrections.get(word, word), m.group())

    return CASED_WORD.sub(restore, question)
