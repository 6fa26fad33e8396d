"""onnx_encoder.py: the question encoder gives sentence-transformers' vectors without torch."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from conftest import ROOT

from assistant.embed.base import bundled_model_dir

from assistant.embed.sbert import SentenceTransformerEmbedder
from assistant.embed.onnx_encoder import (UnsupportedModelError, checksum_path, export_is_intact, mean_pool,
                                          onnx_path, read_pipeline)

TEXTS = {
    "question": "When was the armistice signed?",
    "empty": "",
    "emoji": "🙂🇰🇷 ✌️",
    "one word": "Panmunjom",
    "hangul and accents": "판문점 선언 — naïve café",
    "over 256 word pieces": "The delegates argued about prisoners at Kaesong. " * 60,
}


def test_mean_pool_hand_worked():
    tokens = np.array([[[1.0, 0.0], [3.0, 0.0], [100.0, 100.0]]], dtype=np.float32)
    mask = np.array([[1, 1, 0]])  # the third position is padding and must not count
    assert mean_pool(tokens, mask, normalize=False).tolist() == [[2.0, 0.0]]
    assert mean_pool(tokens, mask, normalize=True).tolist() == [[1.0, 0.0]]


def test_bundled_model_is_mean_pooled_and_normalized():
    assert read_pipeline(bundled_model_dir()) is True


@pytest.mark.parametrize(
    ("modules", "pooling", "message"),
    [
        (["Transformer", "Pooling", "Dense", "Normalize"], {"pooling_mode_mean_tokens": True}, "modules"),
        (["Transformer", "Pooling"], {"pooling_mode_cls_token": True}, "pooling"),
        (["Transformer", "Pooling"], {"pooling_mode_mean_tokens": True,
                                      "pooling_mode_max_tokens": True}, "pooling"),
    ],
)  # fmt: skip
def test_unsupported_pipelines_are_refused(tmp_path, modules, pooling, message):
    entries = [{"idx": i, "name": str(i), "path": "1_Pooling" if kind == "Pooling" else "",
                "type": f"sentence_transformers.models.{kind}"} for i, kind in enumerate(modules)]  # fmt: skip
    (tmp_path / "modules.json").write_text(json.dumps(entries))
    (tmp_path / "1_Pooling").mkdir()
    (tmp_path / "1_Pooling" / "config.json").write_text(json.dumps(pooling))
    with pytest.raises(UnsupportedModelError, match=message):
        read_pipeline(tmp_path)


def test_cache_path_is_keyed_by_fingerprint(tmp_path):
    a, b = onnx_path(tmp_path, "model@abc"), onnx_path(tmp_path, "model@abd")
    assert a != b and a.parent.parent == tmp_path and a.name == "model.onnx"
    assert onnx_path(tmp_path, "../../etc@x").parent.parent == tmp_path  # no path escape


def test_an_export_removes_the_same_models_older_exports_only(tmp_path):
    from assistant.embed.onnx_encoder import _remove_older_exports

    current = onnx_path(tmp_path, "model@abc")
    older = current.parent.with_name("model@abc-onnx0")
    other_model = onnx_path(tmp_path, "model@abd").parent
    prefix_model = current.parent.with_name("model@abc-onnx1-copy")
    for folder in (current.parent, older, other_model, prefix_model):
        folder.mkdir(parents=True)
        (folder / "model.onnx").write_bytes(b"x")
    _remove_older_exports(current)
    assert not older.exists()
    assert current.exists() and other_model.exists() and prefix_model.exists()


@pytest.fixture(scope="module")
def embedder(real_assistant):
    """The session's real embedder; its build exported the ONNX model beside the index."""
    embedder = real_assistant.embedder
    assert embedder.query_cache_dir == real_assistant.settings.index_dir / "encoder"
    assert onnx_path(embedder.query_cache_dir, embedder.name).is_file()
    embedder.encode_queries(["warm up"])
    assert embedder._query_encoder is not None  # really onnxruntime, not the fallback
    return embedder


@pytest.mark.slow
@pytest.mark.parametrize("name", list(TEXTS))
def test_vectors_equal_sentence_transformers(embedder, name):
    onnx = embedder.encode_queries([TEXTS[name]])
    torch = embedder.encode([TEXTS[name]])
    assert onnx.shape == torch.shape == (1, embedder.dimension) and onnx.dtype == np.float32
    assert float(onnx[0] @ torch[0]) > 0.9999
    assert np.linalg.norm(onnx[0]) == pytest.approx(1.0, abs=1e-5)


@pytest.mark.slow
def test_long_text_is_truncated_at_256_word_pieces(embedder):
    long = TEXTS["over 256 word pieces"]
    assert embedder.count_tokens([long])[0] > 300
    longer = long + " Completely different words about summits in Pyongyang. " * 20
    a, b = embedder.encode_queries([long, longer])
    assert float(a @ b) > 0.9999  # only the first 256 pieces count, as in sentence-transformers


@pytest.mark.slow
def test_a_padded_batch_gives_each_text_its_own_vector(embedder):
    texts = list(TEXTS.values())
    batch = embedder.encode_queries(texts)
    singles = np.concatenate([embedder.encode_queries([t]) for t in texts])
    assert np.allclose(batch, singles, atol=1e-5)
    assert embedder.encode_queries([]).shape == (0, embedder.dimension)


@pytest.mark.slow
def test_an_export_that_cannot_be_made_falls_back_to_sentence_transformers(embedder, tmp_path, caplog,
                                                                          monkeypatch):  # fmt: skip
    import assistant.embed.onnx_encoder as onnx_module

    def cannot_export(*args, **kwargs):
        raise RuntimeError("exported model disagrees with torch")

    monkeypatch.setattr(onnx_module, "export_onnx", cannot_export)
    fallback = SentenceTransformerEmbedder(embedder.model_dir, query_cache_dir=tmp_path)
    fallback._model = embedder._load()  # share the loaded weights: no second load
    vector = fallback.encode_queries([TEXTS["question"]])
    assert fallback._query_encoder is None and "ONNX" in caplog.text
    assert float(vector[0] @ embedder.encode([TEXTS["question"]])[0]) > 0.9999


@pytest.mark.slow
@pytest.mark.parametrize("where", ["start", "middle", "end"])
def test_a_flipped_byte_in_the_export_is_detected(embedder, tmp_path, where):
    """Issue 18, item 1: a byte changed anywhere in model.onnx (a changed weight loads
    fine and silently changes answers) no longer matches the checksum written with it."""
    exported = onnx_path(embedder.query_cache_dir, embedder.name)
    copy = tmp_path / "model.onnx"
    copy.write_bytes(exported.read_bytes())
    checksum_path(copy).write_bytes(checksum_path(exported).read_bytes())
    assert export_is_intact(copy)
    data = bytearray(copy.read_bytes())
    at = {"start": 0, "middle": len(data) // 2, "end": len(data) - 1}[where]
    data[at] ^= 0xFF
    copy.write_bytes(bytes(data))
    assert not export_is_intact(copy)
    checksum_path(copy).unlink()
    assert not export_is_intact(copy)  # no checksum: not trusted either


@pytest.mark.slow
def test_a_damaged_export_is_exported_again_with_one_warning(embedder, tmp_path, caplog):
    path = onnx_path(tmp_path, embedder.name)
    path.parent.mkdir(parents=True)
    path.write_bytes(onnx_path(embedder.query_cache_dir, embedder.name).read_bytes()[:-4096] + b"\0" * 4096)
    checksum_path(path).write_bytes(checksum_path(onnx_path(embedder.query_cache_dir, embedder.name)).read_bytes())
    fresh = SentenceTransformerEmbedder(embedder.model_dir, query_cache_dir=tmp_path)
    fresh._model = embedder._load()  # share the loaded weights: no second load
    vector = fresh.encode_queries([TEXTS["question"]])
    assert fresh._query_encoder is not None and export_is_intact(path)
    assert [r.message for r in caplog.records if "damaged" in r.getMessage()]
    assert float(vector[0] @ embedder.encode_queries([TEXTS["question"]])[0]) > 0.9999


@pytest.mark.slow
def test_asking_from_a_built_index_imports_neither_torch_nor_gradio(real_assistant):
    settings = real_assistant.settings
    script = (
        "import sys\n"
        "from assistant import Assistant\n"
        f"a = Assistant.load({str(settings.seeds_dir)!r}, {str(settings.index_dir)!r})\n"
        "assert a.build_stats is None, 'the index should have been up to date'\n"
        "a.ask('When was the armistice signed?')\n"
        "print(sorted(m for m in ('torch', 'sentence_transformers', 'transformers', 'gradio')"
        " if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True,
                         text=True, timeout=300)  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


@pytest.mark.slow
def test_concurrent_questions_get_the_same_vectors_as_one_alone(embedder):
    """A question alone runs on the multi-threaded session; questions arriving while
    another is encoded run on a single-threaded one: the vectors must not differ."""
    from concurrent.futures import ThreadPoolExecutor

    from assistant.embed.onnx_encoder import OnnxQueryEncoder

    texts = [t for t in TEXTS.values() if t] * 8
    encoder = OnnxQueryEncoder(embedder.model_dir, onnx_path(embedder.query_cache_dir, embedder.name),
                               threads=2)  # fmt: skip
    alone = np.concatenate([encoder.encode([t]) for t in texts])
    assert encoder._narrow is None  # never needed one at a time
    with ThreadPoolExecutor(4) as pool:
        together = np.concatenate(list(pool.map(lambda t: encoder.encode([t]), texts)))
    assert encoder._narrow is not None and encoder._narrow is not encoder._wide
    assert np.allclose(alone, together, atol=1e-5)
    assert encoder._in_flight == 0
