"""`mdspec cancel`: stop the running run through the worker's lock, and say what stays queued."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from pathlib import Path

from mdspec.fast import triggers
from mdspec.git import Repo
from mdspec.printer import Printer
from mdspec.run import records
from mdspec.run.cancel import kill_leftovers
from mdspec.run.lock import lock_holder


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
        out(
            f"mdspec: the worker (pid {pid}) did not stop within {wait:g}s and was killed; the next run "
            "recovers (`mdspec run`)"
        )
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
