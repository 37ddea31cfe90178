"""Browser tests of the notebooks: a JupyterLab server and headless Chromium driven by playwright.

The server (server.py) runs on 127.0.0.1 with a random token and port, from a temporary root
folder that holds copies of the notebooks (so a run never writes into notebooks/, figures/ or
results/), with its own settings and workspaces and no news or update pop-ups. Its kernels run
in QUICK mode (LIFSG_QUICK=1).

Chromium is Debian's package (``apt-get install chromium``), passed to playwright as
``executable_path``; playwright's own browser download is never used. Without it every browser
test here is skipped with the reason, never passed (LIFSG_REQUIRE_BROWSER=1 makes that a
failure). LIFSG_CHROMIUM names another binary.

Screenshots go to LIFSG_UI_ARTIFACTS (a folder; created) or to a temporary folder; the path is
printed at the end of the run.
"""

import os
import shutil
import tempfile
import time
from pathlib import Path

import pytest

from .server import (
    CHROMIUM_ARGS,
    NOTEBOOKS,
    find_chromium,
    lab_command,
    lab_env,
    start_lab,
    stop_lab,
)

_artifact_dir = None


def pytest_collection_modifyitems(config, items):
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.ui)


def pytest_terminal_summary(terminalreporter):
    if _artifact_dir is not None and any(_artifact_dir.iterdir()):
        terminalreporter.write_line(
            f"UI test artefacts (screenshots, jupyterlab.log): {_artifact_dir}"
        )


@pytest.fixture(scope="session")
def chromium_path():
    """Chromium for playwright. Missing: the tests are skipped with the reason, or fail when
    LIFSG_REQUIRE_BROWSER=1 (for a CI that must run them)."""
    path, why = find_chromium()
    if path is None:
        if os.environ.get("LIFSG_REQUIRE_BROWSER") == "1":
            pytest.fail(f"{why} (and LIFSG_REQUIRE_BROWSER=1)")
        pytest.skip(why)
    return path


@pytest.fixture(scope="session")
def artifact_dir(tmp_path_factory):
    global _artifact_dir
    named = os.environ.get("LIFSG_UI_ARTIFACTS")
    path = Path(named) if named else tmp_path_factory.mktemp("ui-artifacts")
    path.mkdir(parents=True, exist_ok=True)
    _artifact_dir = path.resolve()
    return _artifact_dir


@pytest.fixture(scope="session")
def lab_server(chromium_path, artifact_dir):
    """JupyterLab on a temporary root holding copies of notebooks/*.ipynb in notebooks/; its
    log goes to the artefact folder."""
    pytest.importorskip("jupyterlab", reason="jupyterlab is not installed")
    root = Path(tempfile.mkdtemp(prefix="lifsg-ui-"))
    (root / "notebooks").mkdir()
    for nb in NOTEBOOKS.glob("*.ipynb"):
        shutil.copy2(nb, root / "notebooks" / nb.name)
    for sub in ("figures", "results"):
        (root / sub).mkdir()
    server = start_lab(lab_command(root), root, lab_env(root), log=artifact_dir / "jupyterlab.log")
    yield server
    stop_lab(server.process)
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def browser(chromium_path):
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    args = list(CHROMIUM_ARGS)
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        args.insert(0, "--no-sandbox")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=chromium_path, headless=True, args=args)
        yield b
        b.close()


# The notebooks the tests drive: the real ones and the synthetic one of test_detector.py.
REAL_NOTEBOOKS = ("02_operating_modes", "01_lif_neuron")


@pytest.fixture(scope="session")
def ran_notebooks(lab_server, browser, artifact_dir):
    """Every notebook the tests drive, opened in its own page and run (Run > Run All Cells),
    all at once so their kernels start and compute side by side. Maps a name (``detector``
    for the synthetic one) to its NotebookPage, or to the exception that stopped it."""
    from . import synthetic
    from .lab import NotebookPage

    paths = {name: f"notebooks/{name}.ipynb" for name in REAL_NOTEBOOKS}
    paths["detector"] = synthetic.write(lab_server.root)
    contexts, ran = [], {}
    for name, path in paths.items():
        context = browser.new_context(viewport={"width": 1280, "height": 1400})
        context.set_default_timeout(30_000)
        contexts.append(context)
        ran[name] = NotebookPage(context.new_page(), lab_server, path)
    t0 = time.monotonic()
    for step in ("start_open", "wait_open", "start_run_all", "wait_run_all"):
        for name, notebook in ran.items():
            if isinstance(notebook, NotebookPage):
                try:
                    getattr(notebook, step)()
                    print(f"{name}: {step} done at {time.monotonic() - t0:.0f} s")
                except Exception as e:  # noqa: BLE001 - reported by the notebook's own tests
                    shot = artifact_dir / f"{name}-FAILED-{step}.png"
                    notebook.page.screenshot(path=str(shot), full_page=True)
                    ran[name] = RuntimeError(f"{name}: {step} failed ({shot}):\n{e}")
    yield ran
    for context in contexts:
        context.close()


@pytest.fixture
def notebook_of(ran_notebooks, artifact_dir, request):
    """``notebook_of(name)``: the opened and run notebook; on a test failure a screenshot of
    its page lands in the artefact folder."""
    used = []

    def get(name):
        notebook = ran_notebooks[name]
        if isinstance(notebook, Exception):
            raise AssertionError(str(notebook))
        used.append(notebook)
        return notebook

    yield get
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        for notebook in used:
            shot = artifact_dir / f"{request.node.name}-FAILED.png"
            try:
                notebook.page.screenshot(path=str(shot), full_page=True)
                print(f"screenshot of the failure: {shot}")
            except Exception as e:  # noqa: BLE001 - a screenshot must not hide the real failure
                print(f"no screenshot of the failure: {e}")


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report
