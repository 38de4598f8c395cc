"""Finding a repository's git dirs and mdspec's state dir with plain file reads.

The hook fast path needs these on every commit, so this uses `os.path` only (no pathlib, no pygit2, no git
process). `.git` may be a directory, or a file `gitdir: …` in a linked worktree or submodule; the
`commondir` file leads from a linked worktree's git dir to the shared one.
"""

from __future__ import annotations

import os

STATE_DIRNAME = "mdspec"
# Present in the git dir while an operation is half done; a commit made then is part of that operation.
IN_PROGRESS = (
    "rebase-merge",
    "rebase-apply",
    "CHERRY_PICK_HEAD",
    "REVERT_HEAD",
    "MERGE_HEAD",
    "BISECT_LOG",
    "sequencer",
)


class RepoDirs(tuple):  # type: ignore[type-arg]  # a plain tuple: NamedTuple would import typing
    """(top, git_dir, common_dir) as absolute path strings."""

    __slots__ = ()

    @property
    def top(self) -> str:
        return str(self[0])

    @property
    def git_dir(self) -> str:
        return str(self[1])

    @property
    def common_dir(self) -> str:
        return str(self[2])

    @property
    def state_dir(self) -> str:
        return os.path.join(self.common_dir, STATE_DIRNAME)


def _read_gitfile(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read().strip()
    except OSError:
        return None
    if not text.startswith("gitdir:"):
        return None
    target = text[len("gitdir:") :].strip()
    return os.path.normpath(os.path.join(os.path.dirname(path), target))


def discover(start: str) -> RepoDirs | None:
    """The non-bare repository containing `start`, or None."""
    cur = os.path.realpath(start)
    while True:
        dotgit = os.path.join(cur, ".git")
        git_dir: str | None = None
        if os.path.isdir(dotgit):
            git_dir = dotgit
        elif os.path.isfile(dotgit):
            git_dir = _read_gitfile(dotgit)
        if git_dir is not None:
            common = git_dir
            try:
                with open(os.path.join(git_dir, "commondir"), encoding="utf-8") as f:
                    common = os.path.normpath(os.path.join(git_dir, f.read().strip()))
            except OSError:
                pass
            return RepoDirs((cur, os.path.realpath(git_dir), os.path.realpath(common)))
        parent = os.path.dirname(cur)
        if parent == cur:
            return None
        cur = parent


def head_ref(git_dir: str) -> str | None:
    """The branch HEAD points at (`refs/heads/x`), or None when HEAD is detached or unreadable."""
    try:
        with open(os.path.join(git_dir, "HEAD"), encoding="utf-8") as f:
            head = f.read().strip()
    except OSError:
        return None
    if head.startswith("ref: "):
        return head[5:].strip()
    return None


def operation_in_progress(git_dir: str) -> str | None:
    """The name of the state file of an unfinished rebase/merge/cherry-pick/revert/bisect, if any."""
    for name in IN_PROGRESS:
        if os.path.exists(os.path.join(git_dir, name)):
            return name
    return None


def find_state_dir(start: str) -> str | None:
    dirs = discover(start)
    return dirs.state_dir if dirs else None
