"""MkDocs hooks: the generated pages of the site and its navigation (mkdocs.yml, ``hooks``).

- ``api/<module>.md`` for every public module of lifsg, found by walking the package folder
  (names starting with ``_`` are private); mkdocstrings renders each from its docstrings.
- ``notebooks/<name>.md`` for every notebook of notebooks/, converted with nbconvert from the
  copy that the tests' QUICK run executed, kept in ``LIFSG_EXECUTED_NOTEBOOKS`` (default
  ``build/executed``; tests/notebook_runner.py writes it). Where that copy is missing or its
  code differs from the committed notebook, the page shows the notebook without outputs and
  says so; with ``LIFSG_DOCS_REQUIRE_OUTPUTS=1`` (CI) that is a warning, so a strict build fails.
- ``results.md``: the MNIST, Fashion-MNIST and speed tables, made at build time from the
  committed results by the table functions of ``lifsg.figures.mnist`` and ``benchmarks/run.py``.
"""

import importlib.util
import json
import os
import sys
from pathlib import Path

from mkdocs.plugins import get_plugin_logger
from mkdocs.structure.files import File

log = get_plugin_logger("lifsg-pages")

PACKAGE = "lifsg"
WIDGET = "application/vnd.jupyter.widget-view+json"
QUICK_NOTE = """!!! note "QUICK run"
    The outputs below come from the tests' QUICK execution of this notebook (small sizes,
    short training), not from paper mode. The paper-mode figures and tables are in the
    repository's `figures/` and `results/` folders (`make figures`).
"""
EMPTY_NOTE = """!!! warning "Without outputs"
    {why}, so this page shows the notebook without outputs. The
    tests keep their QUICK runs there: `LIFSG_EXECUTED_NOTEBOOKS=build/executed make test`,
    then `make docs`. The paper-mode figures are in the repository's `figures/` folder.
"""


def _repo(config):
    return Path(config.config_file_path).resolve().parent


def public_modules(folder, prefix=PACKAGE):
    """Dotted names of the package at ``folder`` and of its public modules, package first."""
    yield prefix
    for path in sorted(folder.iterdir()):
        if path.name.startswith(("_", ".")):
            continue
        if path.is_dir() and (path / "__init__.py").is_file():
            yield from public_modules(path, f"{prefix}.{path.name}")
        elif path.suffix == ".py":
            yield f"{prefix}.{path.stem}"


def api_page(module, modules):
    """Markdown of the reference page of ``module``; the package page lists the modules."""
    if module != PACKAGE:
        return f"::: {module}\n"
    links = "\n".join(f"- [`{m}`]({m}.md)" for m in modules if m != PACKAGE)
    return f"::: {module}\n    options:\n      members: false\n\n## Modules\n\n{links}\n"


def notebook_names(repo):
    """Names (without .ipynb) of the notebooks of notebooks/, in reading order."""
    return sorted(p.stem for p in (repo / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def _code(nb):
    return [
        c.source
        for c in nb.cells
        if c.cell_type == "code" and "injected-parameters" not in c.metadata.get("tags", [])
    ]


def _executed(repo, name):
    """(notebook to render, note for the page): the kept QUICK run, else the committed one."""
    import nbformat

    committed = nbformat.read(repo / "notebooks" / f"{name}.ipynb", as_version=4)
    kept = Path(os.environ.get("LIFSG_EXECUTED_NOTEBOOKS", "build/executed"))
    kept = (kept if kept.is_absolute() else repo / kept) / f"{name}.ipynb"
    if not kept.is_file():
        why = f"No executed copy of {name} in `{kept.parent}`"
    else:
        executed = nbformat.read(kept, as_version=4)
        if _code(executed) == _code(committed):
            return executed, QUICK_NOTE
        why = f"The executed copy of {name} in `{kept.parent}` differs from the committed notebook"
    report = log.warning if os.environ.get("LIFSG_DOCS_REQUIRE_OUTPUTS") == "1" else log.info
    report(f"{why}: its page shows no outputs")
    return committed, EMPTY_NOTE.format(why=why)


def notebook_page(repo, name):
    """(markdown, {file name: bytes} of its images) of a notebook's page."""
    import nbformat
    from nbconvert import MarkdownExporter

    nb, note = _executed(repo, name)
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        outputs = []
        for out in cell.get("outputs", []):
            if out.output_type == "stream" and out.name == "stderr":
                continue  # TensorFlow's log lines
            if WIDGET in out.get("data", {}):
                out = nbformat.v4.new_output(
                    "stream", name="stdout", text="(sliders: run the notebook to use them)\n"
                )
            outputs.append(out)
        cell.outputs = outputs
    body, resources = MarkdownExporter().from_notebook_node(
        nb, resources={"output_files_dir": f"{name}_files", "unique_key": name}
    )
    lines = body.lstrip().splitlines()
    code = next((i for i, line in enumerate(lines) if line.startswith("```")), len(lines))
    title = next((i for i, line in enumerate(lines[:code]) if line.startswith("# ")), -1)
    lines.insert(title + 1, "\n" + note)  # after the title, or first without one
    return "\n".join(lines) + "\n", resources.get("outputs", {})


def _benchmarks(repo):
    spec = importlib.util.spec_from_file_location("_lifsg_benchmarks", repo / "benchmarks/run.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def speed_sections(bench, rows):
    """Markdown sections of the benchmark tasks that ``rows`` (results.json) holds."""
    sections = (
        ("Linear + LIF", "linear_lif", [bench.linear_table, bench.ratio_table]),
        (
            "A layer fed by spikes",
            "spike_input",
            [lambda r: bench.linear_table(r, "spike_input"), bench.spike_ratio_table],
        ),
        ("MNIST, original configuration", "mnist_epoch", [bench.mnist_table]),
        ("MNIST training step, 2 threads against 1", "multicore", [bench.multicore_table]),
        ("Peak memory (MiB) of Linear + LIF", "memory", [bench.memory_table]),
    )
    tasks = {r["task"] for r in rows}
    return [
        f"### {title}\n\n" + "\n\n".join(table(rows) for table in tables)
        for title, task, tables in sections
        if task in tasks
    ]


def results_page(repo):
    """Markdown of the results page, from results/ and benchmarks/results.json."""
    from lifsg.figures import mnist as f6
    from lifsg.studies.results import load_activity, load_results

    mnist_dir, fashion_dir = repo / "results" / "mnist", repo / "results" / "fashion_mnist"
    mnist, fashion = load_results(mnist_dir), load_results(fashion_dir)
    _, surrogates = f6.surrogate_table(mnist)
    rows = json.loads((repo / "benchmarks" / "results.json").read_text())
    return "\n\n".join(
        [
            "# Results",
            "Made when the site was built, from the committed result files: `results/mnist/`, "
            "`results/fashion_mnist/` (one JSON per finished run; accuracy on the test set "
            "as stored by the run; SynOps from `activity.json`: the first seed of each run"
            ") and `benchmarks/results.json` (`make benchmark`). "
            "The README discusses them.",
            "## MNIST",
            f6.table_markdown(f6.results_table(mnist, activity=load_activity(mnist_dir))),
            "Encoding x surrogate (test accuracy %, mean ± std (seeds)):",
            f6.surrogate_markdown(surrogates),
            "## Fashion-MNIST",
            f6.table_markdown(
                f6.results_table(
                    fashion,
                    published=f6.FASHION_PUBLISHED,
                    activity=load_activity(fashion_dir),
                )
            ),
            "## Speed",
            f"CPU: {rows[0]['cpu']}; method and caveats in `benchmarks/README.md`.",
            *speed_sections(_benchmarks(repo), rows),
        ]
    )


def on_config(config):
    """The navigation: home, model, results, the notebooks, then the API reference."""
    repo = _repo(config)
    if str(repo) not in sys.path:
        sys.path.insert(0, str(repo))  # this checkout's lifsg, not another installed one
    modules = list(public_modules(repo / PACKAGE))
    config["nav"] = [
        {"Home": "index.md"},
        {"Model": "model.md"},
        {"Results": "results.md"},
        {"Notebooks": [f"notebooks/{n}.md" for n in notebook_names(repo)]},
        {"API reference": [{m: f"api/{m}.md"} for m in modules]},
    ]
    return config


def on_files(files, config):
    """Add the generated pages (and the notebooks' images) to the site's files."""
    repo = _repo(config)
    modules = list(public_modules(repo / PACKAGE))
    for module in modules:
        files.append(File.generated(config, f"api/{module}.md", content=api_page(module, modules)))
    for name in notebook_names(repo):
        text, images = notebook_page(repo, name)
        files.append(File.generated(config, f"notebooks/{name}.md", content=text))
        for image, data in images.items():
            files.append(File.generated(config, f"notebooks/{image}", content=data))
    files.append(File.generated(config, "results.md", content=results_page(repo)))
    return files
