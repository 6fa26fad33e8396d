"""Issue 6, line 13: no code path deserialises pickles or runs a model's own code.

Reads the syntax tree of every .py file under assistant/, benchmarks/ and tests/
and fails on: importing pickle (or dill, cloudpickle, joblib, shelve, marshal),
calling one of their load functions, torch.load without weights_only=True,
pandas.read_pickle, and any call with allow_pickle=True or trust_remote_code=True
(as a keyword or in a **{...} dict). Working on the tree, not the text, means
strings and comments (like this docstring) never count, so no file is exempt.
Does not look inside installed packages.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from conftest import ROOT

SCANNED = ("assistant", "benchmarks", "tests")
UNSAFE_MODULES = {"pickle", "cPickle", "_pickle", "dill", "cloudpickle", "joblib", "shelve", "marshal"}
UNSAFE_KEYWORDS = {"allow_pickle", "trust_remote_code"}


def python_files() -> list[Path]:
    files = [p for folder in SCANNED for p in sorted((ROOT / folder).rglob("*.py"))]
    return [p for p in files if ".venv" not in p.parts and "node_modules" not in p.parts]


def unsafe_uses(source: str) -> list[str]:
    """One line per unsafe use found in the source: 'line N: what'."""
    found = []
    for node in ast.walk(ast.parse(source)):
        line = getattr(node, "lineno", 0)
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] in UNSAFE_MODULES:
                    found.append(f"line {line}: import {alias.name}")
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in UNSAFE_MODULES:
            found.append(f"line {line}: from {node.module} import ...")
        elif isinstance(node, ast.Call):
            found.extend(f"line {line}: {what}" for what in _unsafe_call(node))
    return found


def _unsafe_call(call: ast.Call) -> list[str]:
    found = []
    keywords = {k.arg: k.value for k in call.keywords if k.arg}
    for k in call.keywords:  # f(**{"trust_remote_code": True})
        if k.arg is None and isinstance(k.value, ast.Dict):
            keywords.update({key.value: value for key, value in zip(k.value.keys, k.value.values)
                             if isinstance(key, ast.Constant) and isinstance(key.value, str)})  # fmt: skip
    for name in UNSAFE_KEYWORDS & set(keywords):
        if not (isinstance(keywords[name], ast.Constant) and keywords[name].value in (False, None)):
            found.append(f"{name}={ast.unparse(keywords[name])}")
    func = ast.unparse(call.func)
    if func.rsplit(".", 1)[-1] in ("read_pickle", "Unpickler"):
        found.append(f"{func}()")
    if func == "torch.load":
        weights_only = keywords.get("weights_only")
        if not (isinstance(weights_only, ast.Constant) and weights_only.value is True):
            found.append("torch.load without weights_only=True")
    return found


@pytest.mark.parametrize(
    "source",
    [
        "import pickle",
        "import pickle as p",
        "import cloudpickle",
        "import joblib.numpy_pickle",
        "from pickle import loads",
        "from dill import load",
        "np.load('x.npy', allow_pickle=True)",
        "numpy.load(path, mmap_mode='r', allow_pickle=1)",
        "np.load(path, allow_pickle=flag)",  # not provably off
        "SentenceTransformer(path, trust_remote_code=True)",
        "AutoModel.from_pretrained(p, **{'trust_remote_code': True})",
        "torch.load(path)",
        "torch.load(path, weights_only=False)",
        "pd.read_pickle('frame.pkl')",
        "def f():\n    return x.Unpickler(handle).load()",
    ],
)
def test_the_check_catches(source):
    assert unsafe_uses(source), source


@pytest.mark.parametrize(
    "source",
    [
        "np.load('x.npy', allow_pickle=False)",
        "np.load('x.npy')",
        "SentenceTransformer(path, trust_remote_code=False)",
        "torch.load(path, weights_only=True)",
        "json.loads(text)",
        "text = 'allow_pickle=True and import pickle are only words here'",
        "# trust_remote_code=True in a comment",
        "bm25s.BM25.load(path)",
    ],
)
def test_the_check_lets_through(source):
    assert unsafe_uses(source) == []


def test_the_scan_covers_the_package_and_the_tests():
    names = {p.relative_to(ROOT).as_posix() for p in python_files()}
    assert {"assistant/index.py", "assistant/pipeline.py", "tests/conftest.py",
            "tests/test_static_checks.py"} <= names  # fmt: skip


def test_no_code_loads_pickles_or_trusts_remote_code():
    problems = [f"{path.relative_to(ROOT)} {use}" for path in python_files()
                for use in unsafe_uses(path.read_text(encoding="utf-8"))]  # fmt: skip
    assert problems == [], "\n".join(problems)
