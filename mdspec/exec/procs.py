"""Running a shell command for a run: its own process group, a time limit, output kept in a file.

Used for the command backend and the check. The whole process group is killed at the time limit or on
cancel, so nothing the command started outlives the run. The API key's value never reaches the output
log: when the worker holds one, the output passes through a pipe that replaces it on the way.

Also here: keeping the worker's own environment (which holds the API key) away from the commands it
starts when there is no sandbox to hide it (`protect_environ`).
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

KEY_VARS = ("ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN")
REDACTED = b"[redacted]"
PR_SET_DUMPABLE = 4  # linux/prctl.h
MIN_SECRET = 8  # shorter values would match ordinary text


def secret_values(env: Mapping[str, str] | None = None) -> list[bytes]:
    """The credential values in `env` (default: the worker's environment) worth redacting."""
    env = os.environ if env is None else env
    return sorted({env[k].encode() for k in KEY_VARS if len(env.get(k) or "") >= MIN_SECRET}, key=len, reverse=True)


def redact(data: bytes, secrets: Sequence[bytes]) -> bytes:
    for s in secrets:
        data = data.replace(s, REDACTED)
    return data


def protect_environ() -> bool:
    """Make this process non-dumpable, so that other processes of the same user can no longer read its
    /proc/<pid>/environ (nor ptrace it): without a sandbox, that file is where a command would find the
    API key. Children get their own dumpable state back at exec. Root (CAP_SYS_PTRACE) reads it anyway.
    True when the flag was set."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return int(libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)) == 0
    except (OSError, AttributeError):
        return False


def environ_exposed() -> bool:
    """Whether unsandboxed commands can still read the worker's environment: as root nothing prevents it."""
    return not sys.platform.startswith("linux") or os.geteuid() == 0


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


TERM_GRACE = 0.2  # seconds a group gets to exit on SIGTERM before SIGKILL
KILL_WAIT = 1.0  # seconds to wait for the group to be gone after SIGKILL


def group_alive(pgid: int) -> bool:
    """Whether a live process is left in the group. Zombies do not count: a dead member whose parent is
    gone waits for init to reap it, which can take a second (bwrap's own child ends that way), and it
    can run nothing nor hold any file. The leader, our child, is reaped by the caller (`reap`)."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # a member we may not signal (it changed user): it is there
        return True
    return _live_member(pgid)


def _live_member(pgid: int) -> bool:
    try:
        names = os.listdir("/proc")
    except OSError:
        return True  # no /proc to tell zombies apart: a member is there
    for name in names:
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue  # it ended meanwhile
        # "pid (comm) state ppid pgrp ...": comm may hold spaces and parentheses, so split after the last ")"
        fields = stat[stat.rfind(b")") + 2 :].split()
        if len(fields) > 2 and int(fields[2]) == pgid and fields[0] not in (b"Z", b"X"):
            return True
    return False


def wait_group(pgid: int, timeout: float, reap: Callable[[], object] | None = None) -> bool:
    """Poll until no member of the group is left, at most `timeout` seconds; True when it is gone.

    The group can outlive its leader, so the group is polled, not the leader. `reap` reaps the leader
    when it is our child (its zombie would keep the group alive). The first polls come quickly, since a
    group usually ends within milliseconds of its signal; the interval then grows to spare the CPU."""
    deadline = time.monotonic() + timeout
    delay = 0.001
    while True:
        if reap is not None:
            reap()
        if not group_alive(pgid):
            if reap is not None:
                reap()  # the leader may have died since the call above: not left a zombie
            return True
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        time.sleep(min(delay, left))
        delay = min(delay * 2, 0.05)


def kill_group(pgid: int, reap: Callable[[], object] | None = None) -> None:
    """End every process of the group: SIGTERM, up to TERM_GRACE to exit, then SIGKILL and up to KILL_WAIT
    for the last member to go. Returns as soon as the group is empty."""
    for sig, wait in ((signal.SIGTERM, TERM_GRACE), (signal.SIGKILL, KILL_WAIT)):
        try:
            os.killpg(pgid, sig)
        except (ProcessLookupError, PermissionError):
            return
        if wait_group(pgid, wait, reap):
            return


def run_shell(
    command: str,
    cwd: Path,
    env: Mapping[str, str],
    log_path: Path,
    timeout: float,
    stdin_text: str | None = None,
    tail_chars: int = 20_000,
    prefix: tuple[str, ...] = (),
    secrets: Sequence[bytes] | None = None,
) -> ShellResult:
    """Run `command` with bash in `cwd`; stdout+stderr go to `log_path` (appended), with the API key's
    value (`secrets`, default: the worker's own) replaced."""
    began = time.monotonic()
    log_path.parent.mkdir(parents=True, exist_ok=True)
    hidden = secret_values() if secrets is None else [s for s in secrets if len(s) >= MIN_SECRET]
    with log_path.open("ab") as log:
        offset = log.tell()
        proc = subprocess.Popen(
            [*prefix, "bash", "-c", command],
            cwd=cwd,
            env=dict(env),
            stdin=subprocess.PIPE if stdin_text is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE if hidden else log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        pump = None
        if hidden:
            assert proc.stdout is not None
            pump = threading.Thread(target=_pump, args=(proc.stdout, log, hidden), name="mdspec-output", daemon=True)
            pump.start()
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
            kill_group(proc.pid, reap=proc.poll)
            proc.wait()
            if pump is not None:
                # EOF comes once the whole group is gone; a process that left the group with setsid and
                # still holds the pipe is not waited for (its output is lost, never written unredacted).
                pump.join(timeout=5)
    with log_path.open("rb") as f:
        # Only the tail is wanted: a command that printed gigabytes must not be read back into memory.
        end = f.seek(0, os.SEEK_END)
        cut = max(offset, end - tail_chars * 4)
        f.seek(cut)
        data = f.read()
    text = data.decode("utf-8", "replace")
    if cut > offset:
        text = f"[… {cut - offset} bytes before this cut …]\n" + text
    return ShellResult(proc.returncode, timed_out, time.monotonic() - began, tail(text, tail_chars))


def _pump(src: IO[bytes], log: IO[bytes], secrets: Sequence[bytes]) -> None:
    """Copy `src` to `log` with every secret replaced; the last bytes of each read wait for the next one,
    so a value split across two reads is still found."""
    keep = max(len(s) for s in secrets) - 1
    held = b""
    try:
        while True:
            chunk = os.read(src.fileno(), 1 << 16)
            if not chunk:
                break
            data = redact(held + chunk, secrets)
            cut = max(0, len(data) - keep)
            log.write(data[:cut])
            held = data[cut:]
        log.write(redact(held, secrets))
        log.flush()
    except (OSError, ValueError):  # the log or the pipe closed under us: the run is ending anyway
        pass
