"""A linear map of the question vector, fitted on the dev questions (a "query adapter").

The model was trained on web questions and answers, not on this corpus; users ask
about the armistice talks in words its passages do not use ("US role" against the
United States' part). `fit` learns a square matrix W, started at the identity and
held near it by an L2 penalty, so that a dev question's vector times W lands
nearest the passages and sentences that hold its evidence (softmax over every
chunk and every sentence of the index, at a temperature). Only the question side
moves: the index is unchanged, and `apply` is one matrix product per question.

It is fitted by `assistant eval FILE --calibrate` on the dev split (evaluation.py)
and saved as a plain .npy array beside calibration.json, never pickled
(matrix_file.py writes it and checks its shape and checksum when read). What it buys and where it does not help (facts
the dev questions never ask about) is measured in docs/design.md, "Query adapter".
Does not run the assistant or read questions (evaluation.py does).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np



def apply(matrix: np.ndarray | None, vectors: np.ndarray) -> np.ndarray:
    """Unit vectors of `vectors @ matrix`; unchanged when there is no matrix or it
    was fitted for vectors of another width (calibration_warning reports that)."""
    vectors = np.asarray(vectors, dtype=np.float32)
    if matrix is None or vectors.ndim != 2 or matrix.shape[0] != vectors.shape[1]:
        return vectors
    mapped = vectors @ matrix
    norms = np.linalg.norm(mapped, axis=1, keepdims=True)
    return (mapped / np.where(norms == 0, 1, norms)).astype(np.float32)


def fit(
    questions: np.ndarray,
    chunk_positives: Sequence[Sequence[int]],
    sentence_positives: Sequence[Sequence[int]],
    chunk_vectors: np.ndarray,
    sentence_vectors: np.ndarray,
    *,
    l2: float,
    temperature: float,
    epochs: int = 200,
    learning_rate: float = 0.01,
) -> np.ndarray:
    """W minimizing, over the questions, the softmax cross-entropy of their positive
    chunks (any of them) among all chunks and of their positive sentences among all
    sentences, on cosines / temperature, + l2 * |W - I|^2. Full-batch Adam from the
    identity: deterministic for the same inputs. A question with no positive of a
    kind adds nothing to that kind's term."""
    import torch

    dim = int(np.asarray(questions).shape[1])
    x = torch.tensor(np.asarray(questions, dtype=np.float32))
    targets = []
    for positives, vectors in ((chunk_positives, chunk_vectors), (sentence_positives, sentence_vectors)):
        mask = torch.zeros(len(x), len(vectors))
        for i, rows in enumerate(positives):
            mask[i, list(rows)] = 1.0
        targets.append((torch.tensor(np.asarray(vectors, dtype=np.float32)), mask))
    identity = torch.eye(dim)
    matrix = torch.eye(dim, requires_grad=True)
    optimizer = torch.optim.Adam([matrix], lr=learning_rate)

    def cross_entropy(logits, mask):
        has = mask.sum(dim=1) > 0
        if not bool(has.any()):
            return logits.sum() * 0.0
        logits, mask = logits[has], mask[has]
        positive = torch.logsumexp(logits + torch.log(mask.clamp_min(1e-30)), dim=1)
        return (torch.logsumexp(logits, dim=1) - positive).mean()

    for _ in range(epochs):
        mapped = torch.nn.functional.normalize(x @ matrix, dim=1)
        loss = l2 * ((matrix - identity) ** 2).sum()
        for vectors, mask in targets:
            loss = loss + cross_entropy(mapped @ vectors.T / temperature, mask)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return matrix.detach().numpy().astype(np.float32)
