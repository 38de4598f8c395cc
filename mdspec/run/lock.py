"""The per-repository worker lock: one worker runs at a time; a killed worker's lock never goes stale."""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def worker_lock(state_dir: Path) -> Iterator[bool]:
    """Hold the repository's worker lock; yields False when another worker has it.

    flock is released by the kernel when its holder dies, even by SIGKILL, so a lock never goes stale.
    """
    state_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(state_dir / "lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()} {time.time():.0f}\n".encode())
        try:
            yield True
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def lock_holder(state_dir: Path) -> int | None:
    """The pid of the running worker, or None when no worker holds the lock."""
    path = state_dir / "lock"
    if not path.exists():
        return None
    fd = os.open(path, os.O_RDONLY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            try:
                return int(path.read_text().split()[0])
            except (OSError, ValueError, IndexError):
                return -1
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def wait_for_pid(pid: int | None, git_dir: Path, limit: float = 30.0) -> None:
    """Wait until the committing git process has exited and released the index."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        alive = False
        if pid:
            try:
                os.kill(pid, 0)
                alive = True
            except ProcessLookupError:
                pass
            except PermissionError:
                alive = True
        if not alive and not (git_dir / "index.lock").exists():
            return
        time.sleep(0.05)
