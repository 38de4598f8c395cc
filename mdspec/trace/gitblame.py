"""git blame, started before mdspec has imported what it needs to read the answer.

`mdspec blame` should cost little more than `git blame`: git's work is the long part, so the command
parses its target and starts git first, then imports pygit2 and the rest while git works. This module
imports only the standard library, the fast path and the errors, to keep that start early.
"""

from __future__ import annotations

import contextlib
import fcntl
import re
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from mdspec.errors import FatalError
from mdspec.fast import gitenv

_RANGE = re.compile(r"(\d+)(?:-(\d+))?")
_PIPE_SIZE = 1 << 20  # git's answer waits in the pipe while mdspec imports: room for a long file's


class BadTarget(FatalError):
    pass


@dataclass(frozen=True)
class Target:
    path: str  # relative to the repository's top, with "/"
    first: int | None  # the line range asked for, 1-based, inclusive; None: the whole file
    last: int | None


@dataclass(frozen=True)
class Entry:
    """One entry of `git blame --incremental`: lines of the file and the commit that last changed them."""

    sha: str  # "" for lines not committed yet
    first: int
    count: int
    head: dict[str, str]  # the commit's headers (author, summary, …) the first time it is named, else {}


def parse_target(top: Path, arg: str, cwd: Path) -> Target:
    """FILE, FILE:LINE or FILE:FIRST-LAST; a file whose own name ends in `:N` is taken as a file."""
    path, first, last = arg, None, None
    head, sep, tail = arg.rpartition(":")
    m = _RANGE.fullmatch(tail) if sep else None
    if m and not (cwd / arg).exists():
        path, first = head, int(m.group(1))
        last = int(m.group(2)) if m.group(2) else first
        if first < 1 or last < first:
            raise BadTarget(f"{arg}: expected FILE:LINE or FILE:FIRST-LAST with 1 <= FIRST <= LAST")
    full = (cwd / path).resolve()
    if full.is_dir():
        raise BadTarget(f"{path}: a directory; give a file in it (`mdspec spec-map {path}` maps a directory)")
    try:
        rel = full.relative_to(top.resolve())
    except ValueError:
        raise BadTarget(f"{path}: not inside the repository at {top}") from None
    return Target(rel.as_posix(), first, last)


class Blame:
    """A running `git blame --incremental`; read its entries, then `close`."""

    def __init__(self, top: Path, target: Target, rev: str | None) -> None:
        args = ["git", "blame", "--incremental"]
        if target.first is not None:
            args += ["-L", f"{target.first},{target.last}"]
        args += [rev] if rev else []
        self._err = tempfile.TemporaryFile()  # noqa: SIM115 - lives until close()
        self._closed: tuple[int, str] | None = None
        self._proc = subprocess.Popen(
            [*args, "--", target.path], cwd=top, env=gitenv.clean(), stdout=subprocess.PIPE, stderr=self._err
        )
        assert self._proc.stdout is not None
        self._out: IO[bytes] = self._proc.stdout
        with contextlib.suppress(OSError):  # a smaller pipe only makes git wait for the reader
            fcntl.fcntl(self._out.fileno(), fcntl.F_SETPIPE_SZ, _PIPE_SIZE)

    def entries(self) -> Iterator[Entry]:
        """The entries as git writes them; the commit of lines not committed yet is ""."""
        head: dict[str, str] = {}
        current: tuple[str, int, int] | None = None
        for raw in self._out:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            if current is None:
                parts = line.split(" ")
                if len(parts) == 4 and parts[2].isdigit() and parts[3].isdigit():
                    sha = "" if set(parts[0]) == {"0"} else parts[0]
                    current, head = (sha, int(parts[2]), int(parts[3])), {}
                continue
            key, _, value = line.partition(" ")
            if key == "filename":  # every entry ends with its file name
                yield Entry(*current, head)
                current = None
            else:
                head.setdefault(key, value)

    def close(self) -> tuple[int, str]:
        """Wait for git (ending it if it was left unread); its exit status and what it said on stderr.
        Closing again returns the same."""
        if self._closed is not None:
            return self._closed
        self._out.close()
        if self._proc.poll() is None:
            try:
                code = self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                code = self._proc.wait()
        else:
            code = self._proc.returncode
        self._err.seek(0)
        stderr = self._err.read().decode("utf-8", "replace")
        self._err.close()
        self._closed = (code, stderr)
        return self._closed
