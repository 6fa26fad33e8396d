"""Late interaction: token vectors in the index, MaxSim scoring, the rerank."""

from __future__ import annotations

import math

import numpy as np
import pytest
from conftest import FakeEmbedder, TokenFakeEmbedder

from assistant import Assistant
from assistant.errors import IndexLoadError
from assistant.store.build import build_index, fit_token_basis, pack_tokens
from assistant.store.index import Index
from assistant.store.persist import load_index, save_index
from assistant.search.retrieval import late_interaction


def hand_index(per_chunk: list[tuple[list[int], list[list[float]]]]) -> Index:
    """An Index with only what late interaction reads: tokens in 2-d, identity basis."""
    ids, vectors, offsets = pack_tokens(
        [(np.array(i, dtype=np.int32), np.array(v, dtype=np.float32).reshape(-1, 2)) for i, v in per_chunk], 2
    )
    index = Index(chunks=[None] * len(per_chunk), chunk_vectors=np.zeros((len(per_chunk), 2), np.float32),
                  sentences=[], sentence_vectors=np.zeros((0, 2), np.float32), chunk_sentence_rows=[],
                  dense=None, bm25=None, manifest={})  # fmt: skip
    index.token_ids, index.token_vectors, index.token_offsets = ids, vectors, offsets
    index.token_basis = np.eye(2, dtype=np.float32)
    return index


def test_maxsim_hand_worked():
    index = hand_index([([1, 3], [[1, 0], [0.6, 0.8]]), ([2], [[0, 1]]), ([], [])])
    question = (np.array([1, 2]), np.array([[1, 0], [0, 1]], dtype=np.float32))
    # Each of ids 1, 2 is in one chunk of 3: idf log(4 / 1.5) for both, so equal weights.
    # Chunk 0: best for token 1 is 1.0, for token 2 is 0.8 -> 0.9. Chunk 1: 0.0 and 1.0 -> 0.5.
    # Chunk 2 has no tokens -> 0. Rows come back in the order asked.
    scores = late_interaction(index, question, [2, 1, 0]).tolist()
    assert scores == pytest.approx([0.0, 0.5, 0.9], abs=1e-3)  # float16 storage: 0.8 -> 0.7998
    assert late_interaction(index, (np.array([]), np.zeros((0, 2))), [0, 1]).tolist() == [0.0, 0.0]


def test_idf_weights_rare_word_pieces_most():
    index = hand_index([([1, 2], [[1, 0], [0, 1]]), ([1], [[1, 0]]), ([1, 3], [[1, 0], [0, 1]])])
    idf = index.token_idf(np.array([1, 2, 99]))
    assert idf.tolist() == pytest.approx([math.log(4 / 3.5), math.log(4 / 1.5), math.log(4 / 0.5)])
    # A common piece barely counts: chunk 1 matches only id 1 and scores low for [1, 2].
    question = (np.array([1, 2]), np.array([[1, 0], [0, 1]], dtype=np.float32))
    weights = idf[:2] / idf[:2].sum()
    assert late_interaction(index, question, [1]).tolist() == pytest.approx([weights[0]])


def test_token_basis_is_deterministic_orthonormal_and_sized():
    rng = np.random.default_rng(3)
    parts = [rng.standard_normal((n, 16)).astype(np.float16) for n in (200, 0, 300)]
    basis = fit_token_basis(parts, 16, 4)
    assert basis.shape == (16, 4) and basis.dtype == np.float32
    assert np.allclose(basis.T @ basis, np.eye(4), atol=1e-5)
    assert np.array_equal(basis, fit_token_basis([p.copy() for p in parts], 16, 4))
    # The first axis is the direction of greatest spread.
    data = np.concatenate(parts).astype(np.float64)
    spread = np.var((data - data.mean(axis=0)) @ basis, axis=0)
    assert list(spread) == sorted(spread, reverse=True)
    # A sample of the tokens still finds the dominant axis of a stretched cloud.
    stretched = [np.concatenate(parts).astype(np.float32) * np.r_[10.0, np.ones(15)]]
    assert abs(fit_token_basis(stretched, 16, 1, sample=100)[0, 0]) > 0.99
    assert fit_token_basis([parts[0][:3]], 16, 8).shape == (16, 3)  # no more axes than tokens
    assert np.array_equal(fit_token_basis([], 16, 4), np.eye(16, 4, dtype=np.float32))


@pytest.fixture
def token_settings(tiny_settings):
    return tiny_settings.with_(token_dims=8)


def test_tokens_survive_save_and_load(tiny_seeds, token_settings):
    a = Assistant.load(tiny_seeds, token_settings.index_dir, settings=token_settings, embedder=TokenFakeEmbedder())
    loaded = load_index(token_settings.index_dir)
    assert loaded.has_tokens and loaded.manifest["token_dims"] == 8
    for name in ("token_ids", "token_offsets", "token_vectors", "token_basis"):
        assert np.array_equal(getattr(loaded, name), getattr(a.index, name)), name
    assert loaded.token_basis.shape == (FakeEmbedder.dimension, 8)
    assert loaded.token_offsets[-1] == len(loaded.token_ids) == len(loaded.token_vectors)
    assert loaded.token_vectors.dtype == np.float16 and loaded.token_vectors.shape[1] == 8


def test_an_update_keeps_the_basis_and_reuses_unchanged_chunks(tiny_seeds, token_settings):
    embedder = TokenFakeEmbedder()
    first = Assistant.load(tiny_seeds, token_settings.index_dir, settings=token_settings, embedder=embedder)
    before = first.index
    kept = {c.id: before.chunk_tokens(i) for i, c in enumerate(before.chunks) if c.doc == "alpha.txt"}
    (tiny_seeds / "beta.md").write_text("# Later Summits\n\nSummits\nLeaders met in 2000 again.\n")
    embedder.encoded.clear()
    first.refresh()
    after = first.index
    assert embedder.encoded and all("Leaders met in 2000 again" in t for t in embedder.encoded)
    assert np.array_equal(after.token_basis, before.token_basis)
    for i, c in enumerate(after.chunks):
        if c.doc == "alpha.txt":
            assert all(np.array_equal(a, b) for a, b in zip(after.chunk_tokens(i), kept[c.id]))
    # A full build of the same documents fits its own basis and gives the same token ids.
    fresh, _ = build_index(list(first._state.documents.values()), TokenFakeEmbedder(), token_settings)
    assert np.array_equal(fresh.token_ids, after.token_ids)
    assert np.array_equal(fresh.token_offsets, after.token_offsets)


def test_an_index_without_tokens_is_rebuilt_for_an_embedder_with_them(tiny_seeds, token_settings):
    Assistant.load(tiny_seeds, token_settings.index_dir, settings=token_settings, embedder=FakeEmbedder())
    assert not load_index(token_settings.index_dir).has_tokens
    again = Assistant.load(tiny_seeds, token_settings.index_dir, settings=token_settings,
                           embedder=TokenFakeEmbedder())  # fmt: skip
    assert again.build_stats is not None and again.index.has_tokens
    assert load_index(token_settings.index_dir).has_tokens


def test_inconsistent_token_arrays_are_refused(tiny_seeds, token_settings):
    a = Assistant.load(tiny_seeds, token_settings.index_dir, settings=token_settings, embedder=TokenFakeEmbedder())
    a.index.token_offsets = a.index.token_offsets[:-1]  # one chunk short
    save_index(a.index, token_settings.index_dir)
    with pytest.raises(IndexLoadError, match="inconsistent"):
        load_index(token_settings.index_dir)


def test_the_first_stage_head_is_reranked_with_late_interaction(tiny_seeds, token_settings):
    settings = token_settings.with_(rerank_depth=3)
    a = Assistant.load(tiny_seeds, settings.index_dir, settings=settings, embedder=TokenFakeEmbedder())
    hits = a.ask("When was the armistice signed at Panmunjom?").retrieved
    assert len(hits) > 3
    # The reranked hits lead (de-duplication may drop some and pull later ones up).
    head = [h for h in hits if h.token_score is not None]
    assert 1 <= len(head) <= 3 and hits[: len(head)] == head
    assert [h.score for h in head] == sorted((h.score for h in head), reverse=True)
    # The signing passage matches every part of the question: it leads.
    assert "signed at Panmunjom" in hits[0].chunk.text
    bm25 = a.ask("When was the armistice signed at Panmunjom?", mode="bm25").retrieved
    assert all(h.token_score is None for h in bm25)  # BM25 mode stays lexical only


@pytest.mark.slow
def test_question_token_vectors_equal_sentence_transformers(real_assistant):
    embedder = real_assistant.embedder
    text = "Who signed the armistice at Panmunjom?"
    vectors, [(ids, tokens)] = embedder.encode_queries_with_tokens([text])
    _, [(st_ids, st_tokens)] = embedder.encode_with_tokens([text])
    assert embedder._query_encoder is not None  # onnxruntime, not the fallback
    assert ids.tolist() == st_ids.tolist() and len(ids) == embedder.count_tokens([text])[0]
    assert np.min(np.sum(tokens * st_tokens, axis=1)) > 0.999
    assert float(vectors[0] @ embedder.encode([text])[0]) > 0.9999


@pytest.mark.slow
def test_the_real_index_reranks_with_its_token_vectors(real_assistant):
    index = real_assistant.index
    assert index.has_tokens and index.token_basis.shape == (384, real_assistant.settings.token_dims)
    hits = real_assistant.ask("When was the armistice signed?").retrieved
    head = [h for h in hits if h.token_score is not None]
    assert head and hits[: len(head)] == head and 0.0 < head[0].token_score <= 1.0


def test_best_sentence_cosines_agree_whether_computed_for_some_chunks_or_all(tiny_seeds, tiny_settings):
    from assistant.search.retrieval import best_sentence

    a = Assistant.load(tiny_seeds, tiny_settings.index_dir, settings=tiny_settings, embedder=FakeEmbedder())
    index, vector = a.index, a.index.sentence_vectors[0]
    everything = best_sentence(index, vector, list(range(len(index.chunks))))
    expected = [max(float(index.sentence_vectors[s] @ vector) for s in rows) for rows in index.chunk_sentence_rows]
    assert everything.tolist() == pytest.approx(expected, abs=1e-6)
    some = [len(index.chunks) - 1, 0]  # fewer than half: the gathered path
    assert best_sentence(index, vector, some).tolist() == pytest.approx([expected[r] for r in some], abs=1e-6)


def test_the_source_card_says_how_well_the_word_pieces_matched(tiny_seeds, token_settings):
    from assistant.web.formatting import why_this_passage

    a = Assistant.load(tiny_seeds, token_settings.index_dir, settings=token_settings, embedder=TokenFakeEmbedder())
    answer = a.ask("When was the armistice signed at Panmunjom?")
    top = answer.retrieved[0]
    assert f"word-piece match {top.token_score:.3f}" in why_this_passage(top, None, answer)[1]
    plain = Assistant.load(tiny_seeds, token_settings.index_dir.parent / "plain", settings=token_settings,
                           embedder=FakeEmbedder()).ask("When was the armistice signed at Panmunjom?")  # fmt: skip
    assert "word-piece" not in why_this_passage(plain.retrieved[0], None, plain)[1]


def test_a_basis_fitted_on_too_few_word_pieces_is_refitted_when_the_corpus_grows(tmp_path, token_settings):
    seeds = tmp_path / "grow"
    seeds.mkdir()
    (seeds / "one.txt").write_text("Talks began.\n", encoding="utf-8")
    settings = token_settings.with_(token_dims=8, seeds_dir=seeds, index_dir=tmp_path / "grow-index")
    a = Assistant.load(seeds, settings.index_dir, settings=settings, embedder=TokenFakeEmbedder())
    assert a.index.token_basis.shape[1] < 8  # two word pieces cannot span eight axes
    from conftest import TINY_DOCS

    for name, text in TINY_DOCS.items():
        (seeds / name).write_text(text, encoding="utf-8")
    a.refresh()
    assert a.index.token_basis.shape == (FakeEmbedder.dimension, 8)


def test_a_corpus_mostly_replaced_gets_a_new_basis(tiny_seeds, token_settings):
    a = Assistant.load(tiny_seeds, token_settings.index_dir, settings=token_settings, embedder=TokenFakeEmbedder())
    before = a.index.token_basis.copy()
    for path in tiny_seeds.iterdir():
        path.unlink()
    (tiny_seeds / "new.txt").write_text(
        "Summits\n\nLeaders met at the border in 2018 and signed a declaration on peace and family "
        "reunions. Economic projects were planned and a liaison office opened near the border.\n",
        encoding="utf-8",
    )
    a.refresh()
    fresh, _ = build_index(list(a._state.documents.values()), TokenFakeEmbedder(), token_settings)
    assert np.array_equal(a.index.token_basis, fresh.token_basis)
    assert not np.array_equal(a.index.token_basis, before)


@pytest.mark.slow
def test_the_word_check_does_not_wait_for_a_build_holding_the_model(real_assistant):
    import threading

    embedder, found = real_assistant.embedder, []
    with embedder._lock:  # what a build holds while it embeds a batch of documents
        worker = threading.Thread(target=lambda: found.append(embedder.is_word("table")))
        worker.start()
        worker.join(timeout=10)
    assert found == [True]
