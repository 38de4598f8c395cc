"""Running a shell command for a run: its own process group, a time limit, output kept in a file.

Used for the command backend and the check. The whole process group is killed at the time limit or on
cancel, so nothing the command started outlives the run.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class ShellResult:
    returncode: int
    timed_out: bool
    seconds: float
    output_tail: str  # the last part of stdout+stderr, for messages and the next prompt


def tail(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return f"[… {len(text) - limit} characters cut …]\n" + text[-limit:]


def kill_group(pgid: int) -> None:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(pgid, sig)
        except (ProcessLookupError, PermissionError):
            return
        time.sleep(0.2)


def run_shell(
    command: str,
    cwd: Path,
    env: Mapping[str, str],
    log_path: Path,
    timeout: float,
    stdin_text: str | None = None,
    tail_chars: int = 20_000,
    prefix: tuple[str, ...] = (),
) -> ShellResult:
    """Run `command` with bash in `cwd`; stdout+stderr go to `log_path` (appended)."""
    start = time.monotonic()
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        offset = log.tell()
        proc = subprocess.Popen(
            [*prefix, "bash", "-c", command],
            cwd=cwd,
            env=dict(env),
            stdin=subprocess.PIPE if stdin_text is not None else subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        timed_out = False
        try:
            if stdin_text is not None and proc.stdin is not None:
                try:
                    proc.stdin.write(stdin_text.encode())
                    proc.stdin.close()
                except BrokenPipeError:
                    pass
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
        finally:
            # The command may be gone while its children still run: kill the group either way.
            kill_group(proc.pid)
            proc.wait()
    with log_path.open("rb") as f:
        # Only the tail is wanted: a command that printed gigabytes must not be read back into memory.
        end = f.seek(0, os.SEEK_END)
        start = max(offset, end - tail_chars * 4)
        f.seek(start)
        data = f.read()
    text = data.decode("utf-8", "replace")
    if start > offset:
        text = f"[… {start - offset} bytes before this cut …]\n" + text
    return ShellResult(proc.returncode, timed_out, time.monotonic() - start, tail(text, tail_chars))
