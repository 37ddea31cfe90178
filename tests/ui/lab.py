"""Helpers that drive a notebook in JupyterLab through playwright, as a person would.

:class:`KernelTraffic` listens to the kernel's websocket in the page: it sees every request the
page sends and every ``error`` message the kernel publishes, also those of widget callbacks
(which JupyterLab never shows outside the widget). :class:`NotebookPage` opens a notebook, runs
all cells from the Run menu, finds sliders by their description, moves them with the keyboard
and reads the images of a widget's figure.
"""

import base64
import hashlib
import io
import json
import re
import time
from dataclasses import dataclass

ANSI = re.compile(r"\x1b\[[0-9;]*m")
TRACEBACK = re.compile(r"Traceback \(most recent call last\)|^\w*(Error|Exception)\b", re.M)


def strip_ansi(text):
    return ANSI.sub("", text)


def _parse_frame(payload):
    """(channel, header, parent_header, content) of a kernel websocket frame, or None.

    JupyterLab 4 speaks the binary v1 protocol: a little-endian uint64 count of offsets, the
    offsets, then channel, header, parent_header, metadata, content and buffers. A text frame is
    the older JSON protocol.
    """
    try:
        if isinstance(payload, str):
            msg = json.loads(payload)
            return msg.get("channel"), msg["header"], msg.get("parent_header") or {}, msg["content"]
        data = bytes(payload)
        n = int.from_bytes(data[:8], "little")
        offsets = [int.from_bytes(data[8 * (i + 1) : 8 * (i + 2)], "little") for i in range(n)]
        offsets.append(len(data))
        parts = [data[offsets[i] : offsets[i + 1]] for i in range(min(n, 5))]
        channel = parts[0].decode()
        header, parent, _, content = (json.loads(p or b"{}") for p in parts[1:5])
        return channel, header, parent, content
    except (ValueError, KeyError, IndexError, UnicodeDecodeError, TypeError):
        return None


@dataclass
class KernelError:
    ename: str
    evalue: str
    traceback: str
    parent_type: str  # execute_request for a cell, comm_msg for a widget callback

    def __str__(self):
        return f"{self.ename}: {self.evalue} (from {self.parent_type})\n{self.traceback}"


class KernelTraffic:
    """What went over the kernel websockets of one page."""

    def __init__(self, page):
        self.pending = {}  # msg_id -> msg_type of shell requests without their idle status yet
        self.sent = []  # (msg_type, time) of every shell request
        self.errors = []  # KernelError
        self.sockets = 0
        self.last_socket = 0.0
        self.other_states = []
        self.last_activity = time.monotonic()
        page.on("websocket", self._attach)

    def _attach(self, ws):
        if "/api/kernels/" not in ws.url:
            return
        self.sockets += 1
        self.last_socket = time.monotonic()
        ws.on("framesent", self._sent)
        ws.on("framereceived", self._received)

    def _sent(self, payload):
        frame = _parse_frame(payload)
        if frame is None or frame[0] != "shell":
            return
        header = frame[1]
        self.pending[header["msg_id"]] = header["msg_type"]
        self.sent.append((header["msg_type"], time.monotonic()))
        self.last_activity = time.monotonic()

    def _received(self, payload):
        frame = _parse_frame(payload)
        if frame is None or frame[0] != "iopub":
            return
        _, header, parent, content = frame
        self.last_activity = time.monotonic()
        if header.get("msg_type") == "error":
            self.errors.append(
                KernelError(
                    content.get("ename", ""),
                    content.get("evalue", ""),
                    strip_ansi("\n".join(content.get("traceback", []))),
                    parent.get("msg_type", "?"),
                )
            )
        elif header.get("msg_type") == "status":
            state = content.get("execution_state")
            if state == "idle":
                self.pending.pop(parent.get("msg_id"), None)
            elif state != "busy":
                self.other_states.append(state)  # starting, restarting, dead, ...

    def count(self, msg_type):
        return sum(1 for t, _ in self.sent if t == msg_type)

    def settled(self, quiet_s=0.5):
        """True when every request has its idle status and nothing arrived for quiet_s."""
        return not self.pending and time.monotonic() - self.last_activity >= quiet_s


def png_digest(src):
    """sha1 of a data: URI's bytes (or of the address itself)."""
    if src and src.startswith("data:"):
        raw = base64.b64decode(src.split(",", 1)[1])
    else:
        raw = (src or "").encode()
    return hashlib.sha1(raw).hexdigest()


def png_is_blank(src):
    """True if the PNG has a single colour (a figure that drew nothing)."""
    from PIL import Image

    image = Image.open(io.BytesIO(base64.b64decode(src.split(",", 1)[1]))).convert("RGB")
    lo, hi = zip(*image.getextrema())
    return lo == hi


class NotebookPage:
    """One notebook open in JupyterLab in a playwright page."""

    def __init__(self, page, server, path, timeout_s=180):
        self.page = page
        self.server = server
        self.path = path
        self.timeout_s = timeout_s
        self.traffic = KernelTraffic(page)
        self.page_errors = []
        page.on("pageerror", lambda e: self.page_errors.append(str(e)))
        self._executes_before_run = None
        self._states_before_run = 0

    # -- opening and running -------------------------------------------------------------
    # Each step has a start and a wait half, so several notebooks can open and run at once.

    def open(self):
        """Open the notebook and wait until its cells show and its kernel is idle."""
        self.start_open()
        return self.wait_open()

    def start_open(self):
        # a workspace of its own: pages sharing one would reopen each other's notebooks
        workspace = "ui-" + re.sub(r"\W", "-", self.path)
        url = self.server.url(f"lab/workspaces/{workspace}/tree/{self.path}?reset")
        self.page.goto(url, wait_until="commit")
        return self

    def wait_open(self):
        self.page.wait_for_selector(".jp-NotebookPanel .jp-Notebook .jp-Cell", timeout=90_000)
        n_code = self.n_code_cells_in_file()
        self.wait_until(
            lambda: self.code_cells().count() == n_code,
            f"the {n_code} code cells of {self.path} to show",
            60,
        )
        self.wait_until(self._kernel_ready, "the kernel to start (status bar: Idle)", 90)
        return self

    def _kernel_ready(self):
        # JupyterLab at times replaces the kernel it just started (a new websocket): wait
        # until the connection has been stable for a few seconds
        return (
            not self.accept_kernel_dialog()
            and self._kernel_idle_shown()
            and time.monotonic() - self.traffic.last_socket > 3
        )

    def accept_kernel_dialog(self):
        """If JupyterLab asks which kernel to start (the settings say it should not), accept
        the proposed one, as a person would; True if there was such a dialog."""
        dialog = self.page.locator(".jp-Dialog", has_text="Select Kernel")
        if not dialog.count():
            return False
        print(f"{self.path}: accepted JupyterLab's 'Select Kernel' dialog")
        dialog.locator(".jp-mod-accept").click()
        return True

    def n_code_cells_in_file(self):
        cells = json.loads((self.server.root / self.path).read_text())["cells"]
        return sum(1 for c in cells if c["cell_type"] == "code")

    def _kernel_idle_shown(self):
        status = self.page.locator(".jp-NotebookPanel-toolbar .jp-Notebook-ExecutionIndicator")
        if status.count():
            return status.first.get_attribute("data-status") == "idle"
        return "Idle" in self.page.locator("#jp-main-statusbar").inner_text()

    def wait_until(self, condition, what, timeout_s=None, poll_s=0.4):
        deadline = time.monotonic() + (timeout_s or self.timeout_s)
        while time.monotonic() < deadline:
            if condition():
                return
            self.page.wait_for_timeout(poll_s * 1000)
        raise AssertionError(
            f"timed out after {timeout_s or self.timeout_s} s waiting for {what}\n{self.state()}"
        )

    def state(self):
        """A few lines on the page and the kernel, for failure messages."""
        t = self.traffic
        prompts = self.page.locator(".jp-CodeCell .jp-InputArea-prompt").all_inner_texts()
        return (
            f"  prompts: {' '.join(p.strip() for p in prompts)}\n"
            f"  requests sent: {len(t.sent)}, still without idle: {sorted(t.pending.values())}, "
            f"kernel errors: {len(t.errors)}, websockets: {t.sockets}, "
            f"other kernel states: {t.other_states}\n"
            f"  page errors: {self.page_errors}"
        )

    def code_cells(self):
        return self.page.locator(".jp-Notebook .jp-CodeCell")

    def run_all(self):
        """Run > Run All Cells, then wait until every code cell ran and the kernel is idle."""
        self.start_run_all()
        return self.wait_run_all()

    def start_run_all(self):
        """Click Run > Run All Cells (retried while the entry is inactive)."""
        before = self._executes_before_run = self.traffic.count("execute_request")
        self._states_before_run = len(self.traffic.other_states)
        for _ in range(3):  # the menu entry is inactive until the notebook and kernel are ready
            if self.accept_kernel_dialog():
                self.wait_until(self._kernel_idle_shown, "the kernel to start", 90)
            self.page.locator(".jp-NotebookPanel .jp-InputArea-prompt").first.click()
            self.page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^Run$")).click()
            item = self.page.locator('.lm-Menu-item[data-command="runmenu:run-all"]')
            if "lm-mod-disabled" in (item.get_attribute("class") or ""):
                self.page.keyboard.press("Escape")
                self.page.wait_for_timeout(2000)
                continue
            item.click()
            try:
                self.wait_until(
                    lambda: self.traffic.count("execute_request") > before, "Run All Cells", 10
                )
                break
            except AssertionError:
                continue
        else:
            raise AssertionError(f"Run > Run All Cells did not start\n{self.state()}")
        return self

    def wait_run_all(self, retries=1):
        """Wait until every code cell ran and the kernel is idle, or until a cell failed (the
        kernel skips the cells after it) and the kernel is quiet. Errors are left to
        :meth:`assert_no_errors`. If Run All stops early with neither an error nor a busy
        kernel (JupyterLab dropped the queue, seen when it swapped the kernel at start), it
        is clicked again, as a person would."""
        n_code = self.n_code_cells_in_file()
        before = self._executes_before_run
        self.wait_until(
            lambda: (
                (
                    self.traffic.count("execute_request") - before >= n_code
                    and self.traffic.settled()
                    and (self._all_prompts_done() or self.traffic.errors)
                )
                or (self.traffic.errors and self.traffic.settled(quiet_s=3))
                or self._kernel_lost()
                or self._run_stopped()
            ),
            f"all {n_code} code cells to run",
        )
        if self._kernel_lost():
            raise AssertionError(f"the kernel died or restarted during Run All\n{self.state()}")
        if self._run_stopped():
            if retries <= 0:
                raise AssertionError(f"Run All stopped early without an error\n{self.state()}")
            print(f"{self.path}: Run All stopped early without an error; running all again")
            self.start_run_all()
            self.wait_run_all(retries - 1)

    def _run_stopped(self):
        if self.traffic.errors or not self.traffic.settled(quiet_s=5):
            return False
        prompts = self.page.locator(".jp-CodeCell .jp-InputArea-prompt").all_inner_texts()
        return not any("*" in p for p in prompts) and not self._all_prompts_done()

    def _kernel_lost(self):
        since_run = self.traffic.other_states[self._states_before_run :]
        return bool({"dead", "restarting", "autorestarting"} & set(since_run))

    def _all_prompts_done(self):
        prompts = self.page.locator(".jp-CodeCell .jp-InputArea-prompt").all_inner_texts()
        return all(re.search(r"\[\d+\]", p) for p in prompts)

    # -- errors ----------------------------------------------------------------------------

    def error_outputs(self, scope=None):
        """Texts of the error outputs (tracebacks) shown in the page or in ``scope``, also
        those inside widget Output areas."""
        root = scope if scope is not None else self.page.locator(".jp-Notebook")
        texts = root.locator(
            '.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]'
        ).all_inner_texts()
        return [t for t in texts if TRACEBACK.search(t)]

    def stderr_outputs(self):
        return self.page.locator(
            '.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]'
        ).all_inner_texts()

    def assert_no_errors(self, since=0, scope=None):
        """No error message from the kernel (cells or widget callbacks) after index ``since`` of
        the kernel's errors, and no traceback shown in the notebook (or in ``scope``)."""
        problems = [str(e) for e in self.traffic.errors[since:]]
        problems += [f"shown in the page:\n{t}" for t in self.error_outputs(scope)]
        if problems:
            raise AssertionError("error output in the notebook:\n" + "\n\n".join(problems))

    # -- widgets -----------------------------------------------------------------------------

    def slider(self, description):
        """The ipywidgets slider labelled ``description``."""
        slider = self.page.locator(".widget-slider").filter(
            has=self.page.locator(
                ".widget-label", has_text=re.compile(f"^{re.escape(description)}$")
            )
        )
        if slider.count() != 1:
            raise AssertionError(f"expected one slider '{description}', found {slider.count()}")
        return slider

    def widget_cell(self, description):
        """The code cell whose output holds the slider ``description``."""
        return self.code_cells().filter(has=self.slider(description))

    def readout(self, description):
        return self.slider(description).locator(".widget-readout").inner_text().strip()

    def figure_images(self, description):
        """``src`` of every image in the widget Output areas of the slider's cell."""
        cell = self.widget_cell(description)
        return [img.get_attribute("src") for img in cell.locator(".widget-output img").all()]

    def press(self, description, key, times=1):
        """Focus the slider's handle and press ``key`` (ArrowRight, PageUp, Home, ...)."""
        handle = self.slider(description).locator(".noUi-handle").first
        handle.focus()
        for _ in range(times):
            handle.press(key)

    def kernel_value(self, description):
        """The value the kernel holds for the slider ``description``, printed by a cell added
        at the end of the notebook (its output is read back from the page). Uses the widget
        registry of ipywidgets 8 (``ipywidgets.widgets.widget._instances``)."""
        marker = "UI-PROBE"
        code = (
            "from ipywidgets.widgets.widget import _instances\n"
            f"print({marker!r}, [w.value for w in list(_instances.values()) "
            f"if getattr(w, 'description', None) == {description!r}])"
        )
        last = self.code_cells().last
        last.locator(".jp-InputArea-prompt").click()
        self.page.keyboard.press("Escape")
        self.page.keyboard.press("b")
        self.wait_until(
            lambda: self.code_cells().count() > self.n_code_cells_in_file(), "a new cell", 10
        )
        probe = self.code_cells().nth(self.code_cells().count() - 1)
        probe.locator(".cm-content").click()
        self.page.keyboard.insert_text(code)
        self.page.keyboard.press("Control+Enter")  # run, stay on the cell
        out = probe.locator(".jp-OutputArea-output")
        self.wait_until(lambda: marker in " ".join(out.all_inner_texts()), "the probe cell", 30)
        text = " ".join(out.all_inner_texts())
        values = json.loads(text.split(marker, 1)[1].strip())
        if len(values) != 1:
            raise AssertionError(f"the kernel has {len(values)} sliders '{description}': {text}")
        return values[0]

    def screenshot(self, path, description=None):
        target = self.widget_cell(description) if description else self.page
        if description:
            target.screenshot(path=str(path))
        else:
            target.screenshot(path=str(path), full_page=True)
        return path

    def move_slider_and_check(self, description, key="ArrowRight", times=1, expect=None):
        """Move a slider with the keyboard and check the figure followed it.

        Asserts: the readout changed (to ``expect`` if given), the kernel got the change and
        finished, no error (message or traceback) appeared, the widget shows exactly one
        figure, and its image differs from the one before the move. Returns (old, new)
        readouts.
        """
        old_readout = self.readout(description)
        old_images = self.figure_images(description)
        if len(old_images) != 1:
            raise AssertionError(
                f"before the move the '{description}' widget shows {len(old_images)} figures, "
                "expected one"
            )
        old_digest = png_digest(old_images[0])
        errors_before = len(self.traffic.errors)
        comm_before = self.traffic.count("comm_msg")
        self.press(description, key, times)
        self.wait_until(
            lambda: self.readout(description) != old_readout,
            f"the readout of '{description}' to change from {old_readout}",
            10,
        )
        new_readout = self.readout(description)
        if expect is not None and new_readout != expect:
            raise AssertionError(
                f"'{description}' reads {new_readout} after the move, not {expect}"
            )
        self.wait_until(
            lambda: self.traffic.count("comm_msg") > comm_before,
            f"the page to send the new value of '{description}' to the kernel",
            10,
        )

        cell = self.widget_cell(description)
        self.wait_until(
            lambda: len(self.traffic.errors) > errors_before or self.traffic.settled(),
            f"the kernel to finish the redraw of '{description}'",
        )

        def shown():  # what arrived is on the page: an error, or one new figure
            if len(self.traffic.errors) > errors_before:
                return bool(self.error_outputs(cell))
            images = self.figure_images(description)
            return len(images) == 1 and png_digest(images[0]) != old_digest

        try:  # the page renders what arrived with a delay; unchanged after that is a failure
            self.wait_until(shown, f"the '{description}' widget to show the redraw", 5)
        except AssertionError:
            pass
        self.assert_no_errors(since=errors_before, scope=cell)
        new_images = self.figure_images(description)
        if len(new_images) != 1:
            raise AssertionError(
                f"after the move the '{description}' widget shows {len(new_images)} figures, "
                "expected one"
            )
        if png_digest(new_images[0]) == old_digest:
            raise AssertionError(
                f"moving '{description}' from {old_readout} to {new_readout} did not change the "
                "figure: the image is the same"
            )
        if png_is_blank(new_images[0]):
            raise AssertionError(f"after moving '{description}' the figure is blank")
        return old_readout, new_readout
