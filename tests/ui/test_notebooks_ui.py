"""The interactive notebooks work for a person in JupyterLab (issue 6).

The notebooks are opened in headless Chromium and run from the Run menu (all together, see
``ran_notebooks`` in conftest.py). Each test then checks that no cell and no widget callback
produced an error, moves one slider with the keyboard and checks that the figure redrew: the
readout shows the new value, the kernel holds that value (printed by a cell added at the end),
the widget shows exactly one figure and its image differs from the one before. Screenshots
after the run, and of the widget before and after the move, go to the artefact folder.
"""

import time

import pytest

# notebook, slider moved, key, readout expected after the move
CASES = [
    ("02_operating_modes", "w_leak", "PageUp", "0.070"),
    ("01_lif_neuron", "w_leak", "PageUp", "0.150"),
]


@pytest.mark.parametrize(("name", "slider", "key", "expect"), CASES, ids=[c[0] for c in CASES])
def test_slider_redraws_figure(notebook_of, artifact_dir, name, slider, key, expect):
    notebook = notebook_of(name)
    notebook.assert_no_errors()
    for text in notebook.stderr_outputs():  # warnings are allowed, but shown in the report
        print(f"{name}: stderr output (not an error):\n{text[:500]}")
    # JupyterLab scrolls inside its own panel: a page shot shows the top, the cell shot the widget
    for shot in (
        notebook.screenshot(artifact_dir / f"{name}-0-after-run-all.png"),
        notebook.screenshot(
            artifact_dir / f"{name}-1-{slider}-{notebook.readout(slider)}.png", slider
        ),
    ):
        print(f"screenshot: {shot}")

    t0 = time.monotonic()
    old, new = notebook.move_slider_and_check(slider, key, expect=expect)
    shot = notebook.screenshot(artifact_dir / f"{name}-2-{slider}-{new}.png", slider)
    print(f"screenshot: {shot}")

    value = notebook.kernel_value(slider)
    assert value == pytest.approx(float(new)), (
        f"the kernel holds {slider}={value}, page shows {new}"
    )
    notebook.assert_no_errors()
    print(
        f"{name}: {slider} {old} -> {new}, figure redrawn in {time.monotonic() - t0:.0f} s, "
        f"kernel value {value}"
    )
