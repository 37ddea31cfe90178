"""A small notebook written into the temporary workspace to prove the browser checks work.

Four sliders are wired with the real :func:`lifsg.widgets.interactive_figure` to a quick
matplotlib figure: ``ok`` works, ``raises`` has a callback that raises, ``frozen`` draws the
same figure whatever the value, and ``unwired`` lost its observer (the slider no longer redraws).
The last cell fails on purpose when run.
``lifsg/widgets.py`` is loaded from its file, so this kernel does not import TensorFlow.
"""

import nbformat

from .server import REPO

PATH = "notebooks/ui_detector_check.ipynb"
MODES = ("ok", "raises", "frozen", "unwired")

SETUP = f"""\
%matplotlib inline
import importlib.util

from matplotlib.figure import Figure

WIDGETS = {str(REPO / "lifsg" / "widgets.py")!r}
spec = importlib.util.spec_from_file_location("lifsg_widgets", WIDGETS)
w = importlib.util.module_from_spec(spec)
spec.loader.exec_module(w)


def toy(a, mode):
    if mode == "raises" and a != 0.5:
        raise ValueError(f"toy callback broke at a={{a}}")
    if mode == "frozen":
        a = 0.5
    fig = Figure(figsize=(3, 2), dpi=60)
    ax = fig.subplots()
    ax.plot([0, 1], [0, a])
    ax.set_ylim(0, 1)
    ax.set_title(f"a = {{a:.2f}}")
    return fig
"""


def widget_cell(mode):
    src = (
        f"box_{mode} = w.interactive_figure(\n"
        f'    toy, {{"a": w.float_slider("{mode}", 0.5, 0, 1, 0.05)}}, fixed={{"mode": "{mode}"}}\n'
        ")\n"
    )
    if mode == "unwired":
        src += "box_unwired.controls['a'].unobserve_all()\n"
    return src + f"box_{mode}"


FAILING_CELL = 'raise ZeroDivisionError("a cell that fails on purpose")'


def write(root):
    """Write the notebook under ``root``; return its path relative to root."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nb.cells = [nbformat.v4.new_code_cell(SETUP)] + [
        nbformat.v4.new_code_cell(widget_cell(m)) for m in MODES
    ]
    nb.cells.append(nbformat.v4.new_code_cell(FAILING_CELL))
    nbformat.write(nb, root / PATH)
    return PATH
