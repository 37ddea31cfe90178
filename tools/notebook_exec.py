"""Execute a notebook with papermill so that a run never hangs; used by tools/run_notebooks.py
(paper mode) and the tests (tests/notebook_runner.py).

papermill waits for each cell's ``execute_reply`` with no time limit. Under load that reply
sometimes never shows up although the kernel has finished the cell (it reported "idle" on
IOPub and answers other clients), and the run hangs for good. Three guards:

- A **per-cell time limit** (``cell_timeout``, seconds): a longer cell fails the run with
  :class:`CellTimeout` naming the cell.
- **No unbounded waits**: replies and IOPub messages are polled in slices of ``POLL_S``. The
  kernel sends a cell's reply before its idle status, so a reply that a poll missed after the
  idle status and a later poll found is counted as a *late reply* (a lost wake-up, recovered
  within ``POLL_S``). A reply still missing ``reply_grace`` seconds after the idle status (or
  an idle status missing that long after the reply) is a :class:`KernelStall`.
- A **retry**: a stalled run is executed again from the start with a fresh kernel, up to
  ``attempts`` times in all.

:func:`run_notebook` returns a :class:`Report` of what happened; genuine cell errors still
raise papermill's ``PapermillExecutionError`` and are never retried.
"""

import asyncio
import time
from dataclasses import dataclass, field
from pathlib import Path
from queue import Empty

import papermill
from nbclient.client import timestamp
from nbclient.exceptions import CellExecutionComplete
from nbclient.util import ensure_async, run_sync
from papermill.clientwrap import PapermillNotebookClient
from papermill.engines import NBClientEngine, papermill_engines
from traitlets import Float

POLL_S = 1.0  # longest single wait for a kernel message
CELL_TIMEOUT_S = 3600  # default per-cell limit (paper mode trains for minutes per cell)
REPLY_GRACE_S = 30.0  # how long a reply may lag behind the kernel's idle status
ATTEMPTS = 3  # runs of a notebook in all, when they stall
ENGINE = "lifsg-guarded"


class KernelStall(RuntimeError):
    """The kernel finished a request but its reply or its idle status never arrived."""


class CellTimeout(TimeoutError):
    """A cell ran longer than the per-cell limit."""


class _GuardedClient(PapermillNotebookClient):
    """papermill's client with bounded waits (see the module docstring)."""

    reply_grace = Float(REPLY_GRACE_S).tag(config=True)

    def __init__(self, nb_man, late_replies=None, **kwargs):
        super().__init__(nb_man, **kwargs)
        self.late_replies = [] if late_replies is None else late_replies  # appended to
        self._cell_index = None

    async def async_execute_cell(self, cell, cell_index, *args, **kwargs):
        self._cell_index = cell_index
        return await super().async_execute_cell(cell, cell_index, *args, **kwargs)

    # nbclient binds the sync wrappers to its own coroutines at class creation
    execute_cell = run_sync(async_execute_cell)

    async def _async_poll_output_msg(self, parent_msg_id, cell, cell_index):
        while True:
            try:
                msg = await ensure_async(self.kc.iopub_channel.get_msg(timeout=POLL_S))
            except Empty:
                continue
            if msg["parent_header"].get("msg_id") == parent_msg_id:
                try:
                    self.process_message(msg, cell, cell_index)
                except CellExecutionComplete:
                    return

    async def _async_poll_for_reply(
        self, msg_id, cell, timeout, task_poll_output_msg, task_poll_kernel_alive
    ):
        try:
            msg = await self._reply_to_cell(msg_id, cell, timeout, task_poll_output_msg)
            if self.record_timing:
                cell["metadata"]["execution"]["shell.execute_reply"] = timestamp(msg)
            try:
                await asyncio.wait_for(task_poll_output_msg, self.reply_grace)
            except TimeoutError:
                raise KernelStall(
                    f"{self._where(cell)}: the execute_reply arrived but the kernel's idle "
                    f"status did not within {self.reply_grace:g} s"
                ) from None
            return msg
        finally:
            task_poll_kernel_alive.cancel()

    async def _reply_to_cell(self, msg_id, cell, timeout, output_task):
        start = time.monotonic()
        idle_at = []
        output_task.add_done_callback(lambda _: idle_at.append(time.monotonic()))
        repolled = False  # a poll came back empty after the kernel reported the cell idle
        while True:
            try:
                msg = await ensure_async(self.kc.shell_channel.get_msg(timeout=POLL_S))
            except Empty:
                await self._async_check_alive()
                now = time.monotonic()
                repolled = bool(idle_at)
                if idle_at and now - idle_at[0] > self.reply_grace:
                    raise KernelStall(
                        f"{self._where(cell)}: the kernel reported it idle, but its "
                        f"execute_reply did not arrive within {self.reply_grace:g} s"
                    ) from None
                if timeout is not None and now - start > timeout:
                    raise CellTimeout(
                        f"{self._where(cell)} ran longer than the per-cell limit of {timeout} s"
                    ) from None
                continue
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            if repolled:  # the kernel sends the reply before its idle status: it was missed
                self.late_replies.append((self._cell_index, time.monotonic() - idle_at[0]))
            return msg

    def _where(self, cell):
        """``cell N ('first line')``; N counts the cells of the executed copy, where papermill
        puts its injected-parameters cell after the parameters cell."""
        return f"cell {self._cell_index} ({cell.source.strip().splitlines()[0]!r})"

    async def async_wait_for_reply(self, msg_id, cell=None):
        """Reply to a request the kernel answers at once (papermill's final kernel_info)."""
        deadline = time.monotonic() + self.reply_grace
        while time.monotonic() < deadline:
            try:
                msg = await ensure_async(self.kc.shell_channel.get_msg(timeout=POLL_S))
            except Empty:
                await self._async_check_alive()
                continue
            if msg["parent_header"].get("msg_id") == msg_id:
                return msg
        raise KernelStall(
            f"after the last cell: no reply to request {msg_id} within {self.reply_grace:g} s"
        )

    wait_for_reply = run_sync(async_wait_for_reply)  # as execute_cell


class _GuardedEngine(NBClientEngine):
    """papermill's nbclient engine with :class:`_GuardedClient`."""

    @classmethod
    def execute_managed_notebook(
        cls,
        nb_man,
        kernel_name,
        log_output=False,
        stdout_file=None,
        stderr_file=None,
        start_timeout=60,
        execution_timeout=None,
        reply_grace=REPLY_GRACE_S,
        late_replies=None,
        **kwargs,  # papermill's input_path: not used
    ):
        client = _GuardedClient(
            nb_man,
            kernel_name=kernel_name,
            timeout=execution_timeout,
            startup_timeout=start_timeout,
            reply_grace=reply_grace,
            log_output=log_output,
            stdout_file=stdout_file,
            stderr_file=stderr_file,
            late_replies=late_replies,
        )
        return client.execute()


papermill_engines.register(ENGINE, _GuardedEngine)


@dataclass
class Report:
    """What a guarded run went through.

    name: the notebook's stem. seconds: wall time of the attempt that succeeded. stalls: one
    message per stalled attempt. late_replies: ``(cell index, seconds after idle)`` of replies
    that arrived only on a re-poll (over all attempts).
    """

    name: str
    seconds: float = 0.0
    stalls: list = field(default_factory=list)
    late_replies: list = field(default_factory=list)

    def __str__(self):
        text = f"{self.name}: {self.seconds:.0f} s"
        if self.stalls:
            text += f", attempt {len(self.stalls) + 1} ({len(self.stalls)} stalled: "
            text += "; ".join(self.stalls) + ")"
        if self.late_replies:
            late = ", ".join(f"cell {i} after {s:.1f} s" for i, s in self.late_replies)
            text += f", {len(self.late_replies)} late repl(ies) recovered ({late})"
        return text


def run_notebook(
    path,
    output,
    parameters,
    cwd=None,
    cell_timeout=CELL_TIMEOUT_S,
    attempts=ATTEMPTS,
    reply_grace=REPLY_GRACE_S,
    log=None,
):
    """Execute notebook ``path`` into ``output`` with papermill and the guards; return a Report.

    parameters: papermill parameters. cwd: working directory of the kernel (default: the
    notebook's folder). cell_timeout: seconds per cell (None: no limit). attempts: runs in all
    when runs stall. reply_grace: seconds a reply may lag behind the kernel's idle status.
    log: optional callable given a line for each stalled attempt.

    Raises papermill's PapermillExecutionError for a failing cell, :class:`CellTimeout`,
    nbclient's DeadKernelError, and :class:`KernelStall` when every attempt stalled.
    """
    path = Path(path)
    report = Report(path.stem)
    for attempt in range(1, attempts + 1):
        start = time.perf_counter()
        try:
            papermill.execute_notebook(
                str(path),
                str(output),
                parameters=parameters,
                cwd=str(cwd or path.parent),
                kernel_name="python3",
                progress_bar=False,
                engine_name=ENGINE,
                execution_timeout=cell_timeout,
                reply_grace=reply_grace,
                late_replies=report.late_replies,
            )
        except KernelStall as err:
            report.stalls.append(f"attempt {attempt}: {err}")
            if log is not None:
                then = "retrying with a fresh kernel" if attempt < attempts else "giving up"
                log(f"{path.name}: attempt {attempt} of {attempts} stalled ({err}); {then}")
            continue
        except CellTimeout as err:
            err.add_note(f"notebook {path}; executed copy: {output}")
            raise
        report.seconds = time.perf_counter() - start
        return report
    raise KernelStall(f"{path.name}: all {attempts} attempts stalled: " + "; ".join(report.stalls))
