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
from collections.abc import Iterator
from types import FrameType


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
