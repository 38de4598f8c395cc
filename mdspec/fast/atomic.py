"""Write a file whole or not at all: write a temporary file beside it, then rename it over the target.

The durability rule, one for all of mdspec: `durable=True` (fsync the file before the rename and its
directory after it) wherever losing the file after a crash would lose a user's result or a queue entry —
the landing journal, the pending queue (triggers), held-result records and the final run record. Files
rewritten again and again while a run goes on (run.json's progress, caches, test markers) are written
without it: a crash loses at most the last rewrite, which the next one (or recovery) replaces anyway.

Only `os` is imported: the hook fast path writes its queue entries and cache through this module.
"""

from __future__ import annotations

import os


def _fsync_dir(directory: str) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return  # some filesystems refuse to open a directory; the rename stands all the same
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_atomic(
    path: str | os.PathLike[str], data: str | bytes, durable: bool, mode: int | None = None, suffix: str = "tmp"
) -> None:
    """Replace `path` with `data` (text is written as UTF-8), atomically; see the module's rule for `durable`.

    The temporary file `.<name>.<pid>.<suffix>` is in the same directory (a rename across filesystems is
    not atomic) and is removed again when anything fails (a full disk). `mode` sets the file's permission
    bits whatever the umask (default: 0o644 less the umask).
    """
    target = os.fspath(path)
    directory, name = os.path.split(target)
    tmp = os.path.join(directory, f".{name}.{os.getpid()}.{suffix}")
    raw = data.encode("utf-8") if isinstance(data, str) else data
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644 if mode is None else mode)
        try:
            view = memoryview(raw)
            while view:
                view = view[os.write(fd, view) :]
            if mode is not None:
                os.fchmod(fd, mode)  # the umask must not narrow what was asked for
            if durable:
                os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, target)
    finally:
        try:  # noqa: SIM105 - contextlib is one import more on the hook's path
            os.unlink(tmp)  # gone after the rename; left only by a failed write
        except FileNotFoundError:
            pass
    if durable:
        _fsync_dir(directory or ".")
