"""Cancelling a run (`mdspec cancel`) and killing what a run left behind.

`mdspec cancel` sends SIGTERM to the lock holder. The handler installed by `cancellable()` raises
`Cancelled` (a BaseException, so no `except Exception` on the way swallows it) in the main thread; the
`finally` blocks on the way up kill the process groups the run started (procs.run_shell, the agent's
Toolbox), the run is recorded `cancelled`, and the worker drains nothing more. Landing is `shielded()`: a
SIGTERM that arrives while the branch and checkout are being updated takes effect after them.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import FrameType

from mdspec.fast import triggers
from mdspec.git import Repo
from mdspec.printer import Printer
from mdspec.run import records
from mdspec.run.lock import lock_holder


class Cancelled(BaseException):
    """Raised in the worker's main thread when `mdspec cancel` (SIGTERM) arrives."""


class _CancelState:
    requested = False  # a SIGTERM arrived; the worker stops after the current step
    shield = 0  # > 0 while landing: the SIGTERM waits until the branch and checkout agree again


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    if _CancelState.requested:
        return  # already on the way out: a second signal must not interrupt the clean-up
    _CancelState.requested = True
    if not _CancelState.shield:
        raise Cancelled()


def cancel_requested() -> bool:
    return _CancelState.requested


def mark_cancelled() -> None:
    """A cancel (or Ctrl-C) is being handled: a second signal must not interrupt the clean-up."""
    _CancelState.requested = True


@contextlib.contextmanager
def cancellable() -> Iterator[None]:
    """Turn SIGTERM into `Cancelled` for the duration (main thread only; elsewhere a no-op)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    _CancelState.requested = False
    old = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)


@contextlib.contextmanager
def shielded() -> Iterator[None]:
    """Defer a cancel until the block is done (landing must never stop half way)."""
    _CancelState.shield += 1
    try:
        yield
    finally:
        _CancelState.shield -= 1


RUN_ID_VAR = "MDSPEC_RUN_ID"


def kill_leftovers(run_id: str) -> int:
    """Kill every process still carrying `MDSPEC_RUN_ID=<run_id>` (what a killed worker's run started).

    Each is killed with its whole process group, unless that group is ours. Returns how many were found.
    """
    marker = f"{RUN_ID_VAR}={run_id}".encode()
    me, mine = os.getpid(), os.getpgid(0)
    found = 0
    try:
        names = os.listdir("/proc")
    except OSError:
        return 0
    for name in names:
        if not name.isdigit() or int(name) == me:
            continue
        try:
            with open(f"/proc/{name}/environ", "rb") as f:
                env = f.read()
        except OSError:
            continue
        if marker not in env.split(b"\0"):
            continue
        pid = int(name)
        try:
            pgid = os.getpgid(pid)
            if pgid != mine:
                os.killpg(pgid, signal.SIGKILL)
            else:
                os.kill(pid, signal.SIGKILL)
            found += 1
        except OSError:
            pass
    return found


def cancel(start: Path, out: Printer, wait: float = 30.0) -> int:
    """`mdspec cancel`: stop the running run and everything it started; land nothing; keep the queue."""
    repo = Repo(start)
    state = repo.state_dir
    pid = lock_holder(state)
    if pid is None or pid <= 0 or not _is_mdspec(pid):
        out("mdspec: nothing to cancel: no run is going on")
        return 0
    running = next((r for r in records.all_runs(state) if r.get("status") == records.RUNNING), None)
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        out("mdspec: nothing to cancel: no run is going on")
        return 0
    deadline = time.monotonic() + wait
    while lock_holder(state) == pid and time.monotonic() < deadline:
        time.sleep(0.05)
    if lock_holder(state) == pid:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        if running:
            kill_leftovers(str(running["id"]))
        out(f"mdspec: the worker (pid {pid}) did not stop within {wait:g}s and was killed; the next run "
            "recovers (`mdspec run`)")
        return 1
    if running is None:
        out(f"mdspec: stopped the worker (pid {pid}) before its run started; queued spec commits stay queued")
        return 0
    rec = records.read(records.runs_dir(state) / str(running["id"]))
    queued = len(triggers.entries(str(state)))
    more = f"; {queued} spec commit(s) stay queued (`mdspec run` starts them)" if queued else ""
    out(f"mdspec: run {rec.get('id')} {rec.get('status')}: {rec.get('reason', '')}{more}")
    return 0


def _is_mdspec(pid: int) -> bool:
    """The lock file names the worker; make sure the pid is still an mdspec process, not a reused pid."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return b"mdspec" in f.read()
    except FileNotFoundError:
        return False
    except OSError:
        return True  # no /proc to ask: trust the lock, which is held
