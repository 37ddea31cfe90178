"""Execute a notebook of notebooks/ in QUICK mode, once per test session, with the guarded
runner of tools/notebook_exec.py (per-cell time limit, bounded waits, retry of a stalled run).

Each notebook writes its figures and CSVs into a temporary FIG_DIR / RESULTS_DIR, so a quick
run never touches figures/ or results/. Tests read what it saved from the returned folder.
A run that stalled (and was retried) or needed a re-poll for a reply is reported as a warning.

With the environment variable LIFSG_EXECUTED_NOTEBOOKS set to a folder, each executed notebook
is also copied there (``<name>.ipynb``): the documentation site (``make docs``) renders the
notebooks with these outputs, so they are never executed a second time.
"""

import functools
import os
import shutil
import sys
import tempfile
import warnings
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tools"))  # the runner shared with tools/run_notebooks.py
from notebook_exec import CellTimeout, KernelStall, run_notebook  # noqa: E402

__all__ = ["CellTimeout", "KernelStall", "execute", "notebook_names", "run_notebook"]

NOTEBOOKS = REPO / "notebooks"
CELL_TIMEOUT_S = 300
_ROOT = Path(tempfile.mkdtemp(prefix="lifsg-notebooks-"))


@functools.cache
def execute(name):
    """Run ``notebooks/<name>.ipynb`` in QUICK mode; return its output folder.

    The folder holds ``figures/`` (FIG_DIR), ``results/`` (RESULTS_DIR) and the executed
    notebook ``<name>.ipynb`` (also copied into LIFSG_EXECUTED_NOTEBOOKS when that is set).
    Raises papermill's PapermillExecutionError on a failing cell, and the runner's
    CellTimeout / KernelStall.
    """
    out = _ROOT / name
    (out / "figures").mkdir(parents=True)
    (out / "results").mkdir()
    os.environ["LIFSG_QUICK"] = "1"
    report = run_notebook(
        NOTEBOOKS / f"{name}.ipynb",
        out / f"{name}.ipynb",
        {"QUICK": True, "FIG_DIR": str(out / "figures"), "RESULTS_DIR": str(out / "results")},
        cell_timeout=CELL_TIMEOUT_S,
    )
    if report.stalls or report.late_replies:
        warnings.warn(f"notebook run needed the stall guards: {report}", stacklevel=2)
    kept = os.environ.get("LIFSG_EXECUTED_NOTEBOOKS")
    if kept:
        Path(kept).mkdir(parents=True, exist_ok=True)
        shutil.copy2(out / f"{name}.ipynb", Path(kept) / f"{name}.ipynb")
    return out


def notebook_names():
    """Names (without .ipynb) of every notebook in notebooks/, in reading order."""
    return sorted(p.stem for p in NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
