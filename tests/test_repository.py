"""Repository hygiene: README table vs notebooks, environment.yml vs requirements, CI script."""

import re
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]


def _readme_notebooks():
    text = (REPO / "README.md").read_text()
    return set(re.findall(r"\|\s*\[?`?(?:notebooks/)?(\d\d_[a-z0-9_]+)\.ipynb", text))


def test_readme_table_lists_exactly_the_notebooks():
    on_disk = {p.stem for p in (REPO / "notebooks").glob("[0-9][0-9]_*.ipynb")}
    assert on_disk, "no notebooks found"
    assert _readme_notebooks() == on_disk


def test_environment_yml_follows_requirements():
    env = yaml.safe_load((REPO / "environment.yml").read_text())
    deps = env["dependencies"]
    assert "python=3.11" in deps
    pip = next(d["pip"] for d in deps if isinstance(d, dict) and "pip" in d)
    assert pip == ["-r requirements.txt", "-e ."]
    requirements = (REPO / "requirements.txt").read_text().splitlines()
    pins = [line for line in requirements if line and not line.startswith("#")]
    assert pins and all(re.fullmatch(r"[A-Za-z0-9_.\-]+==[0-9][0-9A-Za-z.]*", p) for p in pins)


def test_ci_runs_the_readme_test_command():
    readme = (REPO / "README.md").read_text()
    assert "make test" in readme and "make figures" in readme
    assert "make test" in (REPO / ".ci" / "run").read_text()


def test_no_module_of_the_package_exceeds_500_lines():
    sizes = {p: len(p.read_text().splitlines()) for p in (REPO / "lifsg").rglob("*.py")}
    assert len(sizes) > 20
    assert not {str(p.relative_to(REPO)): n for p, n in sizes.items() if n > 500}
