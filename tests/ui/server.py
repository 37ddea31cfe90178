"""A JupyterLab server for the browser tests, and where Chromium is.

The server runs on 127.0.0.1 with a random token and port, with its own settings, workspaces,
config, runtime and IPython folders under a temporary root, and the news and update checks
switched off (server options and user settings). Its kernels run in QUICK mode.
"""

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
NOTEBOOKS = REPO / "notebooks"
SERVER_START_TIMEOUT_S = 90

# Flags for a headless Chromium on a closed network (no sandbox as root: it cannot start).
CHROMIUM_ARGS = [
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--disable-extensions",
    "--no-first-run",
    "--no-default-browser-check",
    "--metrics-recording-only",
    "--password-store=basic",
]

# User settings of the temporary JupyterLab: no news or update pop-ups.
LAB_SETTINGS = {
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {
        "fetchNews": "false",
        "checkForUpdates": False,
    },
    # every cell in the DOM; start the notebook's own kernel without asking (under load
    # JupyterLab otherwise sometimes shows its "Select Kernel" dialog)
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {
        "windowingMode": "none",
        "autoStartDefaultKernel": True,
    },
    "@jupyterlab/docmanager-extension/plugin.jupyterlab-settings": {"autosave": False},
}


def find_chromium():
    """(path of the Chromium binary, None) or (None, why there is none)."""
    named = os.environ.get("LIFSG_CHROMIUM")
    if named:
        if os.access(named, os.X_OK):
            return named, None
        return None, f"LIFSG_CHROMIUM={named} is not an executable file"
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found, None
    return None, (
        "Debian's chromium is not installed (apt-get install chromium; .ci/run does it): "
        "the browser tests of the notebooks need it"
    )


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LabServer:
    """A running JupyterLab: ``url(path)`` gives an address with the token."""

    def __init__(self, root, port, token, process, log):
        self.root = root
        self.notebooks = root / "notebooks"
        self.port = port
        self.token = token
        self.process = process
        self.log = log
        self.base = f"http://127.0.0.1:{port}"

    def url(self, path):
        sep = "&" if "?" in path else "?"
        return f"{self.base}/{path.lstrip('/')}{sep}token={self.token}"

    def api(self, path, post=None):
        data = None if post is None else json.dumps(post).encode()
        request = urllib.request.Request(
            self.url(f"api/{path}"), data=data, headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=60) as r:
            return json.load(r)

    def log_tail(self, n=4000):
        return self.log.read_text(errors="replace")[-n:]


def lab_command(root):
    """The command line of the test's JupyterLab (port and token are added by start_lab)."""
    cmd = [
        sys.executable,
        "-m",
        "jupyterlab",
        f"--ServerApp.root_dir={root}",
        "--LabApp.news_url=None",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        "--MappingKernelManager.cull_idle_timeout=0",
    ]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.append("--allow-root")
    return cmd


def start_lab(cmd, root, env, cwd=None, log=None):
    """Start ``cmd`` (a jupyter lab command line) on 127.0.0.1, a free port and a new token,
    logging to ``log`` (default root/jupyterlab.log); return the LabServer once it answers."""
    port = _free_port()
    token = secrets.token_hex(16)
    log = Path(log or Path(root) / "jupyterlab.log")
    cmd = [
        *cmd,
        "--no-browser",
        "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={token}",
        "--ServerApp.shutdown_no_activity_timeout=900",  # never outlives a stuck run for long
    ]
    with open(log, "wb") as out:
        process = subprocess.Popen(
            cmd,
            cwd=cwd or root,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = LabServer(Path(root), port, token, process, log)
    deadline = time.monotonic() + SERVER_START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"JupyterLab exited ({process.returncode}):\n{server.log_tail()}")
        try:
            server.api("status")
            return server
        except OSError:
            time.sleep(0.3)
    stop_lab(process)
    raise RuntimeError(
        f"JupyterLab did not answer in {SERVER_START_TIMEOUT_S} s:\n{server.log_tail()}"
    )


def lab_env(root):
    """Environment for a JupyterLab of the tests: its own settings (no news or update
    pop-ups), workspaces, config, runtime and IPython folders under root; QUICK kernels."""
    root = Path(root)
    settings = root / "lab-settings"
    for rel, values in LAB_SETTINGS.items():
        path = settings / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))
    env = dict(os.environ)
    env.update(
        JUPYTERLAB_SETTINGS_DIR=str(settings),
        JUPYTERLAB_WORKSPACES_DIR=str(root / "lab-workspaces"),
        JUPYTER_CONFIG_DIR=str(root / "jupyter-config"),
        JUPYTER_RUNTIME_DIR=str(root / "jupyter-runtime"),
        IPYTHONDIR=str(root / "ipython"),
        LIFSG_QUICK="1",
        TF_CPP_MIN_LOG_LEVEL="3",
        CUDA_VISIBLE_DEVICES="",
        # small models on a small machine: one thread per pool, no spinning thread pools
        TF_NUM_INTEROP_THREADS="1",
        TF_NUM_INTRAOP_THREADS="1",
        OMP_NUM_THREADS="1",
        PYTHONWARNINGS="ignore::DeprecationWarning",
    )
    env.pop("JUPYTER_TOKEN", None)
    return env


def stop_lab(process):
    """Stop the server we started (it shuts down its kernels), then its process group."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(process.pid, signal.SIGKILL)  # the group of the server started above
    except (ProcessLookupError, PermissionError):
        pass
    process.wait(timeout=10)
