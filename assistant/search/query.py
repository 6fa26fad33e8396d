"""Turn a user's question (and earlier turns) into the one `Query` that retrieval and
answer composition read.

Resolves elliptical follow-ups ("And who led the South?") by joining the last
user turn, corrects misspellings against the corpus vocabulary and the alias
names, then adds the documents' names for aliases ("Pyongyang" -> North Korea),
and embeds; reads what the question asks for (analysis.py) once, here.
Does not retrieve; uses no language model.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from ..text.terms import STOPWORDS, correct_terms, stem, terms, words
from .aliases import aliased, expand_aliases
from .analysis import Asked, analyse_question

_FOLLOWUP_START = re.compile(
    r"^\s*(and|but|also|so|or|then|what about|how about|what of|and what about)\b", re.IGNORECASE
)
# Talk about the documents rather than their subject ("according to the text", "how
# does the article describe ..."): it says nothing the passages say, so it is not embedded.
_SOURCE = r"(?:the |this |that )?(?:[\w-]+ )?(?:text|article|document|passage|source|author|overview|writer)s?"
_META = re.compile(
    rf"\b(?:according to {_SOURCE}|(?:as )?(?:stated|described|mentioned|explained) (?:in|by) {_SOURCE}"
    rf"|(?:in|from) {_SOURCE}(?=\s*[,?.]|\s*$)"
    rf"|(?:how|what) (?:does|do|did) {_SOURCE} (?:say|describe|sum up|summari[sz]e|characteri[sz]e|portray|explain|present|put|call)(?: about)?)\b[,:]?\s*",
    re.IGNORECASE,
)
_REFERRING = frozenset("he she they it its his her their them that this those these there".split())


@dataclass(frozen=True)
class Query:
    question: str  # as the user typed it
    text: str  # what is embedded: the question, joined with context for a follow-up
    vector: np.ndarray  # unit length
    terms: tuple[str, ...]  # stemmed, spell-corrected: what BM25 sees
    focus_terms: tuple[str, ...]  # the question's own terms (a subset of terms)
    corrections: tuple[tuple[str, str], ...] = ()
    followup_of: str | None = None
    aliased_terms: tuple[str, ...] = ()  # terms standing for a name the documents use instead
    # A follow-up's own words embedded alone: what is new in it ("Where were they held?"
    # after "When did the talks begin?"), for choosing the statement to quote.
    own_vector: np.ndarray | None = field(default=None, compare=False, repr=False)
    # The embedded text's word-piece vectors (embed.base.TokenVectors), for late interaction.
    tokens: tuple[np.ndarray, np.ndarray] | None = field(default=None, compare=False, repr=False)
    # What the question's own words ask for (analysis.py), read once.
    asked: Asked = field(default_factory=lambda: analyse_question(""))
    # The question's word pieces pooled with and without the relation asked (pooled_without;
    # the model's own vectors, never the query adapter's): a statement about the relation
    # is closer to the first than to the second (answer/verify.py).
    raw_vector: np.ndarray | None = field(default=None, compare=False, repr=False)
    ablated_vector: np.ndarray | None = field(default=None, compare=False, repr=False)
    # Per relation word, the positions of its pieces among `tokens` (relation_pieces).
    relation_groups: tuple[tuple[int, ...], ...] = field(default=(), compare=False, repr=False)
    # `vector` and `own_vector` as the model gave them, before the query adapter: the
    # confidence reads cosines to these, which mean the same whatever the adapter was
    # fitted on (None: the vectors are the model's own).
    model_vectors: tuple[np.ndarray, np.ndarray | None] | None = field(default=None, compare=False, repr=False)


def is_followup(question: str) -> bool:
    """Elliptical or referring back: a connector start, a pronoun, or <= 1 content word."""
    tokens = words(question)
    content = [w for w in tokens if w not in STOPWORDS]
    return bool(
        _FOLLOWUP_START.match(question) or _REFERRING.intersection(tokens) or len(content) <= 1
    )


def resolve_followup(question: str, history: Sequence[str]) -> str | None:
    """The earlier user turn a follow-up leans on, or None when it stands alone."""
    earlier = [turn for turn in history if isinstance(turn, str) and turn.strip()]
    if not earlier or not is_followup(question):
        return None
    return earlier[-1].strip()


def strip_meta(question: str) -> str:
    """The question without its talk about the documents; unchanged if nothing else is left."""
    stripped = " ".join(_META.sub(" ", question).split())
    stripped = re.sub(r"[\s,;:]+(?=[?.!]|$)", "", stripped).lstrip(",;: ")  # no dangling commas
    return stripped if words(stripped) else question


def make_query(
    question: str,
    history: Sequence[str],
    *,
    encode,
    known_stems,
    surface_words,
    is_word=None,
    names: Mapping[str, str] | None = None,
) -> Query:
    """Build the Query: context for follow-ups, spelling fixed, text embedded once
    (a follow-up's own words a second time, in the same encode call), and what the
    question asks for.

    is_word: word -> whether it is English the model knows (spared from spelling fixes).
    names: lower-cased name -> as the documents write it (analysis.recase).
    """
    context = resolve_followup(question, history)
    asked = f"{context} {question}" if context else question
    # Spelling first, then aliases: "Beijng" -> "beijing" -> (China).
    fixes = correct_terms(words(asked), known_stems=known_stems, surface_words=surface_words,
                          is_word=is_word)  # fmt: skip

    def respell(value: str) -> str:
        for wrong, right in fixes.items():
            value = re.sub(rf"\b{re.escape(wrong)}\b", right, value, flags=re.IGNORECASE)
        return value

    text = strip_meta(expand_aliases(respell(asked)))
    own_words = strip_meta(expand_aliases(respell(question)))
    own = own_words if context else None
    asked = analyse_question(strip_meta(question), names, fixes)  # talk about the text asks nothing
    own_texts = [] if own is None else [own]
    vectors = encode([text, *own_texts])
    return Query(
        question=question,
        text=text,
        vector=vectors[0],
        own_vector=None if own is None else vectors[1],
        terms=tuple(terms(text, replace=fixes)),
        focus_terms=tuple(terms(own_words, replace=fixes)),
        corrections=tuple(sorted(fixes.items())),
        followup_of=context,
        aliased_terms=tuple(terms(" ".join(aliased(text)))),
        asked=asked,
    )


def relation_pieces(ids, relation: Sequence[str], piece) -> list[list[int]]:
    """Per word of the text whose stem is in `relation`, the positions of its word pieces
    (`piece` maps a word-piece id to its text; "##ed" continues a word)."""
    wanted, groups, word, members = set(relation), [], "", []
    for i, token_id in enumerate(ids):
        text = piece(int(token_id)) or ""
        if text.startswith("##") and members:
            word += text[2:]
            members.append(i)
            continue
        if members and stem(word) in wanted:
            groups.append(members)
        word, members = text.lower(), [i]
    if members and stem(word) in wanted:
        groups.append(members)
    return groups


def pooled_without(tokens, groups: list[list[int]]) -> tuple[np.ndarray, np.ndarray] | None:
    """(the mean of the text's word-piece vectors, the same mean without the pieces in
    `groups`), both unit length: the question with and without the relation it asks,
    from the one forward pass already made. None without tokens or relation pieces."""
    if tokens is None or not groups:
        return None
    ids, vectors = tokens
    drop = {i for group in groups for i in group}
    keep = np.array([i not in drop for i in range(len(ids))], dtype=bool)
    if keep.all() or not keep.any():
        return None
    vectors = np.asarray(vectors, dtype=np.float32)
    whole, rest = vectors.mean(axis=0), vectors[keep].mean(axis=0)
    return whole / (np.linalg.norm(whole) or 1.0), rest / (np.linalg.norm(rest) or 1.0)
