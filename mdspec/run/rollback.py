"""Put a checkout's files back from a landing's new tree to its old one, file by file, losing nothing.

Used when a landing stopped half way (git failed while writing files, the disk filled up, the worker was
killed): each file the result changes is looked at on its own. A file that holds the new content
was written by the landing and gets the old content back; a file that already holds the old content is
left alone; a file that holds a beginning of the new content is one git was writing when the disk filled
up, and a missing file one git removed before writing it: both get the old content back too (nothing is
there to lose); a file that holds anything else was written by someone else since: it is left exactly as
it is and named in the outcome: nothing of anyone's is overwritten.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path

from mdspec import git
from mdspec.fast import atomic
from mdspec.git import Repo

_EXEC = 0o100755
_LINK = 0o120000


@dataclass(frozen=True)
class Entry:
    mode: int
    data: bytes


@dataclass(frozen=True)
class Undone:
    restored: tuple[str, ...]  # files put back to the old tree
    left: tuple[str, ...]  # files holding neither version: someone else's, left as they are


def changed_paths(repo: Repo, old: str, new: str) -> list[str]:
    proc = git.run(
        ["diff-tree", "-r", "-z", "--no-renames", "--name-only", old, new], repo.top, errors="surrogateescape"
    )
    return [p for p in proc.stdout.split("\0") if p]


def _entry(repo: Repo, commit: str, path: str) -> Entry | None:
    found = repo.entry_at(commit, path)
    return None if found is None else Entry(found[0], found[1])


def _on_disk(path: Path) -> Entry | None:
    try:
        st = path.lstat()
    except FileNotFoundError:
        return None
    except NotADirectoryError:
        return None
    if path.is_symlink():
        return Entry(_LINK, os.fsencode(os.readlink(path)))
    if not path.is_file():
        return Entry(0, b"")  # a directory where a file should be: never equal to a tree entry
    mode = _EXEC if st.st_mode & 0o100 else 0o100644
    return Entry(mode, path.read_bytes())


def _same(disk: Entry | None, want: Entry | None) -> bool:
    if disk is None or want is None:
        return disk is None and want is None
    if want.mode == _LINK or disk.mode == _LINK:
        return disk.mode == want.mode and disk.data == want.data
    return disk.data == want.data and (disk.mode == _EXEC) == (want.mode == _EXEC)


def _cut_short(disk: Entry | None, want: Entry | None) -> bool:
    """A file git was writing when the disk filled up: a strict beginning of the new content (a directory
    in the file's place, mode 0, is not one: it is someone else's)."""
    return (
        disk is not None
        and want is not None
        and disk.mode not in (_LINK, 0)
        and want.mode != _LINK
        and len(disk.data) < len(want.data)
        and want.data.startswith(disk.data)
    )


def _write(path: Path, entry: Entry | None) -> None:
    if entry is None:
        if path.is_symlink() or path.is_file():
            path.unlink()
        # Remove directories the landing created and left empty.
        parent = path.parent
        with contextlib.suppress(OSError):
            while parent.name and not any(parent.iterdir()):
                parent.rmdir()
                parent = parent.parent
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    # Written beside the file and renamed over it: on a full disk the file keeps its content (the new one,
    # which a later undo still recognises) instead of vanishing, and no half-written copy stays behind.
    # Not durable (atomic.py's rule): the landing's own writes are not either, and an undo cut short is
    # finished by recovery, which compares content file by file.
    if entry.mode != _LINK:
        atomic.write_atomic(
            path, entry.data, durable=False, mode=0o755 if entry.mode == _EXEC else 0o644, suffix="mdspec-undo"
        )
        return
    tmp = path.with_name(f".{path.name}.mdspec-undo")
    try:
        tmp.unlink(missing_ok=True)
        os.symlink(os.fsdecode(entry.data), tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def undo_files(repo: Repo, top: Path, old: str, new: str) -> Undone:
    """Give every file that holds `new`'s content `old`'s again; raises OSError when the disk refuses.

    Deletions come first: on a full disk they free the space the rewrites need.
    """
    plan: list[tuple[int, str, Entry | None]] = []
    left: list[str] = []
    for rel in changed_paths(repo, old, new):
        disk = _on_disk(top / rel)
        was, now = _entry(repo, old, rel), _entry(repo, new, rel)
        if _same(disk, was):
            continue
        # A missing file is one git removed before writing its new content (or the user deleted): putting
        # the old content there overwrites nothing.
        if _same(disk, now) or _cut_short(disk, now) or disk is None:
            plan.append((0 if was is None else 1, rel, was))
        else:
            left.append(rel)
    for _, rel, was in sorted(plan, key=lambda p: p[0]):
        _write(top / rel, was)
    return Undone(tuple(rel for _, rel, _ in plan), tuple(left))
