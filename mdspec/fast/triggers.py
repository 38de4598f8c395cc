"""The trigger queue: one small file per queued spec commit under `<state>/queue/`.

The hook fast path writes here with nothing but `os`; the worker reads and removes entries. A file per
commit needs no lock: writers never touch each other's files and `atomic.write_atomic` makes each write
whole or absent.
"""

from __future__ import annotations

import os

from mdspec.fast import atomic


def queue_dir(state_dir: str) -> str:
    return os.path.join(state_dir, "queue")


def enqueue(state_dir: str, sha: str, ref: str) -> None:
    d = queue_dir(state_dir)
    os.makedirs(d, exist_ok=True)
    # Durable: a queue entry lost to a crash is a spec commit nobody implements (atomic.py's rule).
    # Queued at: the file's mtime, so the fast path needs no `time`.
    atomic.write_atomic(os.path.join(d, sha), f"{ref}\n", durable=True)


def entries(state_dir: str) -> list[tuple[str, str, float]]:
    """(sha, ref, queued_at) oldest first; unreadable or malformed entries are skipped."""
    d = queue_dir(state_dir)
    try:
        names = os.listdir(d)
    except FileNotFoundError:
        return []
    out = []
    for name in names:
        if len(name) not in (40, 64) or name.startswith("."):  # SHA-1 or SHA-256 object names
            continue
        try:
            with open(os.path.join(d, name), encoding="utf-8") as f:
                text, at = f.read(), os.fstat(f.fileno()).st_mtime
        except (OSError, ValueError):
            text, at = "", 0.0
        # Only a whole first line names the branch; a truncated entry still names its commit (the file
        # name), and the worker checks the rest.
        ref = text.split("\n", 1)[0] if "\n" in text else ""
        out.append((name, ref, at))
    out.sort(key=lambda e: e[2])
    return out


def remove(state_dir: str, sha: str) -> None:
    try:  # noqa: SIM105 - contextlib is one import more on the hook's path
        os.unlink(os.path.join(queue_dir(state_dir), sha))
    except FileNotFoundError:
        pass
