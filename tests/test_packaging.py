"""Packaging: lazy `import lifsg`, Keras registration, the lean install, the declared
dependencies, the tooling configuration and the in-repository model document."""

import ast
import json
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

import lifsg

REPO = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())
STORED_MODEL = REPO / "results" / "mnist" / "dense_best_s0.keras"

HEAVY = ("tensorflow", "keras", "jax", "torch", "matplotlib", "scipy", "PIL", "ipywidgets")
# lifsg modules that need an extra, with the import names the extras provide.
EXTRA_MODULES = ("lifsg.figures", "lifsg.widgets", "lifsg.nir")
EXTRA_IMPORTS = (
    "matplotlib",
    "scipy",
    "PIL",
    "ipywidgets",
    "IPython",
    "ipykernel",
    "jupyterlab",
    "papermill",
    "nbformat",
    "nbclient",
    "nir",
)
# import name -> distribution, where they differ or the import is not a dependency.
DISTRIBUTION = {"PIL": "pillow", "IPython": "ipywidgets", "yaml": "pyyaml", "jax": None}


def _python(code, *argv):
    """Run ``code`` (with ``sys.argv[1:] == argv``) in a fresh interpreter at the repository
    root; return the last line it printed."""
    out = subprocess.run(
        [sys.executable, "-c", code, *argv],
        cwd=REPO,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout.strip().splitlines()[-1]


def _name(requirement):
    return re.match(r"[A-Za-z0-9_.\-]+", requirement).group(0).lower()


def _pins(filename):
    lines = (REPO / filename).read_text().splitlines()
    return {_name(x) for x in lines if x and not x.startswith(("#", "-r"))}


def _declared():
    core = {_name(r) for r in PYPROJECT["project"]["dependencies"]}
    extras = {
        extra: {_name(r) for r in reqs}
        for extra, reqs in PYPROJECT["project"].get("optional-dependencies", {}).items()
    }
    return core, extras


# -- lazy imports and registration ---------------------------------------------------------


def test_import_lifsg_and_lifsg_data_need_only_numpy():
    loaded = json.loads(
        _python(
            "import json, sys, lifsg, lifsg.data; lifsg.reference, lifsg.phase\n"
            f"print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))"
        )
    )
    assert loaded == []


def test_data_cli_starts_without_tensorflow():
    out = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "lifsg.data", "--help"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert "fetch" in out.stdout
    # -X importtime writes one "import time: ... | <module>" line per imported module.
    imported = {line.rsplit("|", 1)[-1].strip() for line in out.stderr.splitlines()}
    assert "lifsg.data.mnist" in imported
    assert not {m for m in imported if m.split(".")[0] in HEAVY}
    assert not [line for line in out.stderr.splitlines() if not line.startswith("import time")]


@pytest.mark.slow  # a fresh process that imports TensorFlow and every core module
def test_stored_model_loads_after_import_lifsg_without_the_extras():
    """The README's promise in a fresh process, with every notebook extra made unimportable:
    `import lifsg`, then Keras, then a stored model; then every core module imports."""
    code = f"""
import importlib, importlib.abc, json, pkgutil, sys

class Missing(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {EXTRA_IMPORTS!r}:
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)

sys.meta_path.insert(0, Missing())
import lifsg
import keras
import numpy as np

model = keras.models.load_model({str(STORED_MODEL)!r})
lif = [type(layer).__name__ for layer in model.layers if type(layer).__module__ == "lifsg.layers"]
y = model.predict(np.zeros((2, 28, 28), "float32"), verbose=0)
core = [m.name for m in pkgutil.walk_packages(lifsg.__path__, "lifsg.")
        if not m.name.endswith("__main__") and not m.name.startswith({EXTRA_MODULES!r})]
for name in core:
    importlib.import_module(name)
print(json.dumps({{"lif": lif, "shape": list(y.shape), "finite": bool(np.isfinite(y).all()),
                   "core": core, "extras": [m for m in {EXTRA_IMPORTS!r} if m in sys.modules]}}))
"""
    out = json.loads(_python(code))
    assert {"LIF", "LeakyReadout"} <= set(out["lif"])
    assert out["shape"] == [2, 10] and out["finite"]
    assert {"lifsg.layers", "lifsg.data", "lifsg.studies", "lifsg.studies.training"} <= set(
        out["core"]
    )
    assert out["extras"] == []


REGISTRY_CHECK = """
import importlib, json, sys
for name in sys.argv[1:]:
    importlib.import_module(name)
import keras
names = ["lifsg>LIF", "lifsg>DenseLIF", "lifsg>LeakyReadout", "lifsg>UnitInterval",
         "lifsg>PoissonEncoder", "lifsg>LatencyEncoder", "lifsg>ConstantEncoder", "lifsg>Custom"]
print(json.dumps([n for n in names if keras.saving.get_registered_object(n) is None]))
"""


@pytest.mark.slow
@pytest.mark.parametrize(
    "order",
    [
        ["keras", "lifsg"],  # registered at once
        # TensorFlow probes importlib.util.find_spec("keras") before it imports Keras itself:
        ["lifsg", "tensorflow"],
        ["lifsg.data", "keras"],
        # Keras imported by a lifsg module half-way through its own import:
        ["lifsg.surrogates"],
        ["lifsg.neuron"],
        ["lifsg.layers"],
        ["lifsg.encoders"],
        ["lifsg.fused"],
    ],
)
def test_registration_whatever_imports_keras_first(order):
    assert json.loads(_python(REGISTRY_CHECK, *order)) == []


def test_every_keras_registering_module_is_registered_on_import():
    registering = {
        ".".join(path.relative_to(REPO).with_suffix("").parts)
        for path in (REPO / "lifsg").rglob("*.py")
        if re.search(r"register_keras_serializable\(", path.read_text())
    }
    assert registering == {f"lifsg.{m}" for m in lifsg._KERAS_MODULES}


def test_public_names_and_readme_modules_resolve():
    for name in lifsg.__all__:
        assert getattr(lifsg, name) is not None
    assert lifsg.LIF.__module__ == "lifsg.layers"
    assert lifsg.PoissonEncoder.__module__ == "lifsg.encoders"
    named = set(re.findall(r"`lifsg\.([a-z_]+)", (REPO / "README.md").read_text()))
    assert {"data", "surrogates", "reference", "phase", "figures", "widgets"} <= named
    for name in named:
        assert getattr(lifsg, name).__name__ == f"lifsg.{name}"
        assert name in dir(lifsg)
    with pytest.raises(AttributeError, match="no attribute 'no_such_module'"):
        lifsg.no_such_module  # noqa: B018


# -- the lean install and the pinned set -----------------------------------------------------


def test_core_dependencies_are_what_the_layers_need():
    core, extras = _declared()
    assert core == {"keras", "tensorflow", "numpy"}
    assert {"matplotlib", "ipywidgets", "scipy", "pillow", "papermill"} <= extras["notebooks"]


def _third_party_imports(paths):
    """Top-level names of the non-stdlib, non-local imports in ``paths`` -> importing files."""
    local = {p.stem for d in ("tests", "tools", "benchmarks") for p in (REPO / d).glob("*.py")}
    local |= {"lifsg", "tests"}
    found = {}
    for path in paths:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top not in sys.stdlib_module_names and top not in local:
                    found.setdefault(top, set()).add(str(path.relative_to(REPO)))
    return found


def _distribution(top):
    return DISTRIBUTION.get(top, top.lower())


def test_every_import_of_the_package_is_declared():
    core, extras = _declared()
    declared = core.union(*extras.values())
    for top, files in _third_party_imports((REPO / "lifsg").rglob("*.py")).items():
        dist = _distribution(top)
        assert dist is None or dist in declared, f"{top} (imported in {sorted(files)})"


def test_pinned_requirements_are_complete_and_all_used():
    core, extras = _declared()
    pinned, dev = _pins("requirements.txt"), _pins("requirements-dev.txt")
    assert not pinned & dev
    # requirements.txt pins the core, the notebooks extra and what tests and tools import.
    assert core | extras["notebooks"] <= pinned
    assert core.union(*extras.values()) <= pinned | dev
    tests_and_tools = [*(REPO / "tests").rglob("*.py"), *(REPO / "tools").rglob("*.py")]
    for top, files in _third_party_imports(tests_and_tools).items():
        dist = _distribution(top) or top
        assert dist in pinned | dev, f"{dist} (imported in {sorted(files)}) is not pinned"
    # Nothing pinned that nothing uses: imported somewhere (also inside code strings and
    # notebooks), or a command, plugin or kernel.
    commands = {"ruff", "pre-commit", "nbstripout", "pytest-timeout", "jupyterlab", "ipykernel"}
    commands |= {"jaxlib"}  # jax's compiled half
    text = "\n".join(t for _, t in _repository_texts())
    used = set(re.findall(r"\bimport ([A-Za-z_]\w*)|\bfrom ([A-Za-z_]\w*)[\w.]* import", text))
    used = {_distribution(n) for pair in used for n in pair if n}
    used |= set(re.findall(r"importorskip\(\s*\"(\w+)", text))
    assert (pinned | dev) - used - commands == set()


def test_build_uses_a_pinned_setuptools_and_an_spdx_licence():
    requires = PYPROJECT["build-system"]["requires"]
    assert len(requires) == 1 and re.fullmatch(r"setuptools==\d+\.\d+\.\d+", requires[0])
    assert PYPROJECT["project"]["license"] == "MIT"
    assert all((REPO / f).is_file() for f in PYPROJECT["project"]["license-files"])
    assert "version" in PYPROJECT["project"]["dynamic"]


# -- tooling ---------------------------------------------------------------------------------


def test_lint_covers_code_tests_tools_benchmarks_and_notebooks_and_ci_runs_it():
    makefile = (REPO / "Makefile").read_text()
    paths = re.search(r"^LINT_PATHS := (.*)$", makefile, re.M).group(1).split()
    assert paths == ["lifsg", "tests", "tools", "benchmarks", "notebooks", "docs/hooks"]
    lint = re.search(r"^lint:.*?(?=^\S|\Z)", makefile, re.M | re.S).group(0)
    assert "ruff check $(LINT_PATHS)" in lint and "ruff format --check $(LINT_PATHS)" in lint
    ci = (REPO / ".ci" / "run").read_text()
    assert "set -euo pipefail" in ci
    assert 0 < ci.index("\nmake lint\n") < ci.index("\nmake test\n")


def test_pre_commit_hooks_use_the_pinned_tools():
    config = yaml.safe_load((REPO / ".pre-commit-config.yaml").read_text())
    hooks = {h["id"]: h for repo in config["repos"] for h in repo["hooks"]}
    assert set(hooks) == {"ruff", "ruff-format", "nbstripout"}
    dev = _pins("requirements-dev.txt")
    for hook in hooks.values():
        tool = hook["entry"].split()[0]
        assert tool.startswith(".venv/bin/") and tool.split("/")[-1] in dev


# -- the model document ----------------------------------------------------------------------

CITING = ("lifsg", "tests", "tools", "benchmarks", "notebooks", "docs", "README.md")


def _repository_texts():
    for root in CITING:
        path = REPO / root
        files = [path] if path.is_file() else path.rglob("*")
        for f in files:
            if f.suffix in (".py", ".md", ".ipynb") and ".venv" not in str(f):
                yield f, f.read_text()


def test_citations_point_to_the_model_document():
    model = (REPO / "docs" / "model.md").read_text()
    sections = set(re.findall(r"^## (\d+)\. ", model, re.M))
    items = set(re.findall(r"^\*\*(F\d)\. ", model, re.M))
    assert sections == {str(n) for n in range(1, 9)} and items == {f"F{n}" for n in range(1, 8)}
    outside = "paper" + "-notes"
    cited = 0
    for path, text in _repository_texts():
        assert outside not in text, f"{path.relative_to(REPO)} cites a document outside the repo"
        flat = re.sub(r"\\n\",\s*\"|\s+", " ", text)  # join lines, also inside notebook JSON
        for ref in re.findall(r"docs/model\.md(?:,| section) (F\d|\d)", flat):
            assert ref in (items if ref.startswith("F") else sections), f"{path}: {ref}"
            cited += 1
    assert cited >= 10
