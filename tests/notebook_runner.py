"""Execute a notebook of notebooks/ with papermill in QUICK mode, once per test session.

Each notebook writes its figures and CSVs into a temporary FIG_DIR / RESULTS_DIR, so a quick
run never touches figures/ or results/. Tests read what it saved from the returned folder.
"""

import functools
import os
import tempfile
from pathlib import Path

import papermill

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = REPO / "notebooks"
CELL_TIMEOUT_S = 300
_ROOT = Path(tempfile.mkdtemp(prefix="lifsg-notebooks-"))


@functools.cache
def execute(name):
    """Run ``notebooks/<name>.ipynb`` in QUICK mode; return its output folder.

    The folder holds ``figures/`` (FIG_DIR), ``results/`` (RESULTS_DIR) and the executed
    notebook ``<name>.ipynb``. Raises papermill's PapermillExecutionError on a failing cell.
    """
    out = _ROOT / name
    (out / "figures").mkdir(parents=True)
    (out / "results").mkdir()
    os.environ["LIFSG_QUICK"] = "1"
    papermill.execute_notebook(
        str(NOTEBOOKS / f"{name}.ipynb"),
        str(out / f"{name}.ipynb"),
        parameters={
            "QUICK": True,
            "FIG_DIR": str(out / "figures"),
            "RESULTS_DIR": str(out / "results"),
        },
        cwd=str(NOTEBOOKS),
        kernel_name="python3",
        execution_timeout=CELL_TIMEOUT_S,
        progress_bar=False,
    )
    return out


def notebook_names():
    """Names (without .ipynb) of every notebook in notebooks/, in reading order."""
    return sorted(p.stem for p in NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
