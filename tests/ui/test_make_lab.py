"""``make lab`` opens the notebooks in JupyterLab for a person: the target's own command line
(read with ``make -n lab``) starts a JupyterLab that serves notebooks/, has the widget
extension and a python3 kernel from this environment. Needs no browser, so it also runs where
chromium is missing."""

import json
import shlex
import shutil
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from .server import REPO, lab_env, start_lab, stop_lab


def make_lab_command():
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    out = subprocess.run(
        ["make", "-n", "lab"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout
    lines = [line for line in out.splitlines() if "jupyter lab" in line]
    assert len(lines) == 1, f"`make -n lab` has no single `jupyter lab` line:\n{out}"
    return shlex.split(lines[0])


def test_make_lab_serves_the_notebooks(tmp_path):
    cmd = make_lab_command()
    print("make lab runs:", shlex.join(cmd))
    server = start_lab(cmd, tmp_path, lab_env(tmp_path), cwd=REPO)
    try:
        names = {item["name"] for item in server.api("contents")["content"]}
        assert {"01_lif_neuron.ipynb", "02_operating_modes.ipynb"} <= names, names

        with urllib.request.urlopen(server.url("lab"), timeout=10) as r:
            page = r.read().decode()
        assert "@jupyter-widgets/jupyterlab-manager" in page, "no ipywidgets extension in lab"

        spec = server.api("kernelspecs")["kernelspecs"]["python3"]["spec"]
        # a bare "python" is run by jupyter_client as the server's own interpreter (.venv)
        first = spec["argv"][0]
        assert first == "python" or Path(first).parent == Path(sys.executable).parent, spec
        print("kernel:", json.dumps(spec["argv"]))
    finally:
        stop_lab(server.process)
