"""Lexical analysis shared by BM25 indexing, query parsing and answer scoring.

Lower-cases, drops English stopwords (question words included) and applies the
Snowball stemmer, so "negotiated" and "negotiations" meet. Does not score anything.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Container, Mapping, Sequence
from functools import lru_cache

import numpy as np
import Stemmer
from rapidfuzz import fuzz, process

WORD = re.compile(r"[^\W_]+(?:['’][^\W_]+)?", re.UNICODE)  # a word: letters or digits, one apostrophe
_POSSESSIVE = re.compile(r"['’]s$")
# A word as written, letters first, any script, hyphens and apostrophes kept ("Il-sung",
# "Korea’s"): what names are read from (answer_types.recase, Index.proper_names).
CASED_WORD = re.compile(r"(?<![\w'’-])[^\W\d_][\w'’-]*")
_STEMMER = Stemmer.Stemmer("english")

STOPWORDS = frozenset(
    """a about above after again against all also am an and any are as at be because been
    before being below between both but by can could did do does doing down during each
    else ever few for from further had has have having he her here hers herself him himself
    his how i if in into is it its itself just let me more most my myself no nor not now of
    off on once only or other our ours ourselves out over own same shall she should so some
    such than that the their theirs them themselves then there these they this those through
    to too under until up upon us very was we were what whatever when where which while who
    whom whose why will with would you your yours yourself yourselves tell explain describe
    please know say said did does mean meant according document documents text there's
    what's who's""".split()
)


def words(text: str) -> list[str]:
    """Lower-cased word tokens, possessives dropped."""
    return [drop_possessive(w).replace("’", "'") for w in WORD.findall(text.lower())]


def drop_possessive(word: str) -> str:
    """ "Washington's" -> "Washington": the name without its possessive ending."""
    return _POSSESSIVE.sub("", word)


def written_name(word: str) -> str:
    """A name as written, without possessive or trailing apostrophe or hyphen
    ("Washington's" -> "Washington", "Koreas’" -> "Koreas")."""
    return drop_possessive(word).rstrip("-'’")


def name_key(word: str) -> str:
    """How a written name is looked up: lower case ("Koreas’" -> "koreas")."""
    return written_name(word).lower()


@lru_cache(maxsize=65536)
def stem(word: str) -> str:
    return _STEMMER.stemWord(word)


def terms(text: str, *, replace: Mapping[str, str] | None = None) -> list[str]:
    """Stemmed content terms, in order, duplicates kept (what BM25 indexes).

    `replace` maps words to others first (a query's spelling fixes)."""
    found = (replace.get(w, w) for w in words(text)) if replace else words(text)
    return [stem(w) for w in found if w not in STOPWORDS and (len(w) > 1 or w.isdigit())]


def correct_terms(
    query_words: list[str], *, known_stems: Container[str], surface_words: Sequence[str],
    is_word: Callable[[str], bool] | None = None,
) -> dict[str, str]:
    """Map misspelt query words to a close surface word ("armistace" -> "armistice"; the
    pipeline passes the corpus words and the alias names).

    Only words of four letters or more whose stem the corpus does not know, and that
    `is_word` (the model's vocabulary) does not know as English, are considered:
    without that check "table" became "stable", "landing" "leading" and "northern"
    "another" in 64 of the question set's 281 questions. Only a close match
    (rapidfuzz's ratio >= 0.8: 2 x longest common
    subsequence / total length) is taken; on a tie the word that sorts last wins, as
    difflib.get_close_matches picks. It replaced difflib (1.2 -> 0.05 ms a question)
    and gave the same fixes on the question set and 1,477 random one-edit typos.
    """
    fixes: dict[str, str] = {}
    for word in query_words:
        if len(word) < 4 or not word.isalpha() or word in STOPWORDS or stem(word) in known_stems:
            continue
        if is_word is not None and is_word(word):
            continue
        scores = process.cdist([word], surface_words, scorer=fuzz.ratio, score_cutoff=80, workers=1)[0]
        if len(scores) and scores.max() > 0:
            best = surface_words[len(scores) - 1 - int(np.argmax(scores[::-1]))]
            if best != word:  # an alias name is a target even where it is spelt right
                fixes[word] = best
    return fixes
