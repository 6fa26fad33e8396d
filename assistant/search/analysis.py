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
from ..text.terms import CASED_WORD, STOPWORDS, name_key, stem, terms, words, written_name

@dataclass(frozen=True)
class Asked:
    """What a question asks for, read once (`analyse_question`) and then only read."""

    answer_type: str | None  # "date" | "number" | "place" | "person" | "agent" | None
    why: bool  # asks for a reason
    recased: str  # the question with lower-case names written as the documents write them
    entities: tuple[str, ...]  # the names and numbers `recased` holds (question_entities)
    # The kind of answer (answer_kind): a span kind (person, place, date, time, number,
    # name, organisation, agent) or reason, process, definition, list, yes-no, thing; None.
    kind: str | None = None
    # The stems of what the question says about its subject, the relation asked ("signed"
    # in "Where was the armistice signed?", "capital" in "the capital of Japan"): its
    # own content words less its names and the words that only name the kind of answer.
    relation: tuple[str, ...] = ()
    relation_words: tuple[str, ...] = ()  # the same words as written (lower case, spelling fixed)
    several: bool = False  # asks for more than one ("which countries", "who were"): asks_several
    # The part of a date asked for ("year" in "In what year ..."; "month", "day"), or None
    # ("When ...?": any date answers): date_part.
    date_part: str | None = None


def analyse_question(question: str, names: Mapping[str, str] | None = None,
                     corrections: dict[str, str] | None = None) -> Asked:  # fmt: skip
    """What the question asks for. `names` and `corrections` are `recase`'s."""
    recased = recase(question, names or {}, corrections)
    entities = tuple(question_entities(recased))
    answer_type, why = expected_type(question), asks_why(question)
    relation = relation_words(question, entities, corrections)
    return Asked(answer_type, why, recased, entities, answer_kind(question, answer_type, why),
                 tuple(stem(w) for w in relation), relation, asks_several(question),
                 date_part(question))  # fmt: skip


# Which kind of answer a question wants, past expected_type's five: the first match wins.
_TIME = re.compile(r"\b(?:at )?what time\b|\bwhat hour\b|\btime of (?:the )?day\b", re.I)
_ORGANISATION = re.compile(r"\b(?:what|which) (?:organi[sz]ations?|agenc(?:y|ies)|bod(?:y|ies)|committees?|"
                           r"commissions?|groups?|part(?:y|ies)|institutions?)\b", re.I)
_REASON = re.compile(r"\b(?:what|which) (?:was|were|is|are) (?:the )?(?:main |chief |key )?(?:reasons?|causes?|"
                     r"motives?|rationale)\b|\bwhat (?:caused|led to|prompted|motivated)\b|\bfor what reason\b", re.I)
_YES_NO = re.compile(r"^\s*(?:is|are|was|were|did|does|do|can|could|has|have|had|will|would|should)\b", re.I)
_LIST = re.compile(r"\b(?:list|name (?:the|all|some|three|two|four))\b|\b(?:what|which) (?:were|are) (?:the |some )?"
                   r"(?:main |key |major |principal )?[a-z-]+s\b", re.I)
_DEFINITION = re.compile(r"^\s*(?:what|who) (?:is|was|are|were) (?:a |an |the )?[\w'’ -]{1,40}\??\s*$|\bwhat does\b[^?]*\bmean\b|"
                         r"^\s*define\b", re.I)
_SPAN_TYPES = {"date", "number", "place", "person"}
# A question after what something is called: "What was the name of ...", "what were they
# officially called" (not "Which countries are named as ...": that asks which).
_NAME = re.compile(r"\b(?:what|which)(?:'s| is| was| are| were)? (?:the )?(?:[\w-]+ )?names? (?:of|for)\b|"
                   r"\bwhat (?:is|was|are|were) (?:[\w'’-]+ ){1,8}?(?:officially |formally |commonly |then )?called\b",
                   re.I)
# "what exact day", "on what date", "which yr": a date, with a word between or shortened.
_DATE_WORDS = re.compile(r"\b(?:what|which)\s+(?:\w+\s+)?(?:years?|yrs?|dates?|days?|months?|decades?)\b", re.I)
# Keyword queries name the kind they want: "armistice signing date", "dmz width km".
_KEYWORD_KINDS = [
    ("date", re.compile(r"\b(?:dates?|years?|when|day)\b", re.I)),
    ("number", re.compile(r"\b(?:how many|number|count|toll|figures?|totals?|width|length)\b", re.I)),
    ("place", re.compile(r"\b(?:where|location|place|site)\b", re.I)),
    ("person", re.compile(r"\b(?:who|leaders?|negotiators?|commanders?)\b", re.I)),
]


_DATE_PARTS = [
    # "On what date" is often any date ("in October 1951"); "what day", "the exact date" a day.
    ("day", re.compile(r"\b(?:what|which)\s+(?:exact\s+|precise\s+|specific\s+)?day\b|\bexact (?:day|date)\b", re.I)),
    ("month", re.compile(r"\b(?:what|which)\s+(?:\w+\s+)?months?\b", re.I)),
    ("year", re.compile(r"\b(?:what|which)\s+(?:\w+\s+)?(?:years?|yrs?|decades?)\b", re.I)),
]  # fmt: skip


def date_part(question: str) -> str | None:
    """Which part of a date the question asks for: "day" ("On what date ...?"), "month",
    "year" ("In what year ...?"), or None (a "when", or no date asked). A date without
    that part ("July 8" for a year, "1953" for a day) does not answer it."""
    for part, pattern in _DATE_PARTS:
        if pattern.search(question):
            return part
    return None


def answer_kind(question: str, answer_type: str | None, why: bool) -> str | None:
    """person | place | date | time | number | name | organisation | agent | reason |
    process | definition | list | yes-no | thing, or None (a keyword query with no clue)."""
    if _TIME.search(question):
        return "time"
    if answer_type in _SPAN_TYPES:
        return answer_type
    if _DATE_WORDS.search(question):
        return "date"
    if _NAME.search(question):
        return "name"
    if _ORGANISATION.search(question):
        return "organisation"
    if answer_type == "agent":
        return "agent"
    if why or _REASON.search(question):
        return "reason"
    first = _WH.search(question)
    if first is not None and first.group().lower() == "how":
        return "process"
    if _YES_NO.search(question):
        return "yes-no"
    if _LIST.search(question):
        return "list"
    if _DEFINITION.search(question):
        return "definition"
    if first is not None and first.group().lower() in ("what", "which"):
        return "thing"
    for kind, pattern in _KEYWORD_KINDS:
        if pattern.search(question):
            return kind
    return None


# Words that only say what kind of answer is wanted, or nothing about the subject.
_KIND_WORDS = frozenset(stem(w) for w in """
    year years yr yrs date dates day days month months decade decades century time times hour hours
    number numbers many much total count place places city cities town towns village villages
    location locations site sites region area country countries nation nations state person
    people persons leader leaders name names organisation organization organisations group
    reason reasons cause causes way ways kind kinds type types sort role roles main key major
    principal exact exactly specific specifically particular happen happened happens thing
    things part parts mean means meaning call called important importance significance
    significant role purpose describe described explain explained list give overall general
    """.split())  # fmt: skip


def relation_words(question: str, entities: tuple[str, ...] = (),
                   corrections: Mapping[str, str] | None = None) -> tuple[str, ...]:  # fmt: skip
    """The words of what the question asks about its subject (Asked.relation), one per
    stem, in order: its content words less its names and the words that only name the
    kind of answer."""
    named = {t for entity in entities for t in terms(entity)}
    corrections = corrections or {}
    found: dict[str, str] = {}
    for word in words(question):
        word = corrections.get(word, word)
        if word in STOPWORDS or len(word) < 2 or word.isdigit() or not word[0].isalpha():
            continue
        key = stem(word)
        if key not in named and key not in _KIND_WORDS:
            found.setdefault(key, word)
    return tuple(found.values())


_QUESTION_TYPES = [
    # "How far back does it go" and "how long ago" ask when, not how much ("how far back
    # did the troops retreat" is a distance).
    ("date", re.compile(r"\bhow far back\b(?=[^?.]*\b(go|goes|went|date|dates|reach|in time)\b)|\bhow long ago\b", re.I)),
    ("number", re.compile(r"\bhow (many|much|long|far|large|big|often|wide|deep|high|tall|old)\b|\b(what|which) (was |is |were |are )?(the )?(total |exact )?(number|percentage|share|size|death toll|toll|casualt(y|ies)|population|cost|width|length|distance)\b", re.I)),
    ("date", re.compile(r"\bwhen\b|\b(what|which|in what|in which) (years?|months?|dates?|days?|decades?)\b|\bwhat time\b", re.I)),
    ("place", re.compile(r"\bwhere\b|\b(what|which|in what|in which) (city|cities|towns?|places?|locations?|villages?|sites?|regions?|area)\b", re.I)),
    ("person", re.compile(r"\b(what|which|who)\b[\w\s'-]{0,30}?\b(leaders?|presidents?|generals?|officers?|persons?|commanders?|officials?|diplomats?|negotiators?|envoys?|ministers?)\b"
                          # "which" and a title a few words on, no verb between ("Which northern
                          # premier", not "What does the author say")
                          r"|\bwhich\s+(?:(?!(?:does|did|do|is|was|were|are|has|have|had)\b)[\w'’-]+\s+){0,4}?(?:chiefs?|admirals?|"
                          r"marshals?|colonels?|premiers?|chairm[ae]n|chairpersons?|delegates?|ambassadors?|secretar(?:y|ies)|"
                          r"spokes(?:man|men|person)|kings?|emperors?|dictators?|chancellors?|mediators?|interpreters?|"
                          r"translators?|statesm[ae]n|politicians?)\b"
                          # what only a person does: heading, commanding, chairing a body, a
                          # post one holds after another, signing on an organisation's behalf
                          r"|\bwho\s+(headed|commanded|chaired|succeeded|replaced)\b|\bwho\b[^?]{0,60}\bon behalf of\b", re.I)),
    # "Who ...?" is answered by a person, a country or an organisation alike.
    ("agent", re.compile(r"\b(what|which) (country|countries|nation|nations|organi[sz]ations?|state|power)\b|\bwho\b(?! (is|are|was|were) (the )?(main |major |key )?(parties|countries|nations|sides|states|powers|actors))", re.I)),
]  # fmt: skip

YEAR = re.compile(r"(1[5-9]\d\d|20\d\d)s?")  # a year or decade: 1953, 1970s
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
# A question after more than one thing of a kind: "Which countries took part?", "Who were
# the negotiators?", "what cities".
_SEVERAL = re.compile(r"\b(?:which|what)\b[\w\s'-]{0,30}?\b(?:countries|nations|states|powers|parties|sides|"
                      r"leaders|presidents|generals|officers|commanders|officials|diplomats|negotiators|ministers|"
                      r"chiefs|people|persons|cities|towns|villages|places|locations|sites|regions|"
                      r"organi[sz]ations|agencies|groups|bodies|members)\b|\bwho (?:were|are)\b", re.I)


def asks_several(question: str) -> bool:
    """Whether the question asks for several things of its kind (a plural: "which
    countries", "who were"), so that a list of them answers it, not the first."""
    return bool(_SEVERAL.search(question))


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
    return bool(YEAR.fullmatch(entity))


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
