"""Is a git command of the user's still running in a checkout? (DESIGN §3.5: never land while one does.)

`git commit` holds `index.lock` only while it writes the commit; its post-commit hooks run after the lock is
released, and pre-commit hides the user's unstaged changes in a patch file for as long as they run. The
only sign of that window is the `git commit` process itself, still alive. So landing looks at the running
processes (Linux `/proc`): a `git` whose working directory is inside the checkout and whose subcommand can
write the index, the branch or the files means "wait". Read-only commands (`git log` sitting in a pager,
an editor polling `git status`) never hold a landing up.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

# Subcommands that never write the index, HEAD or the checkout: a landing need not wait for them.
READ_ONLY = frozenset(
    {
        "blame",
        "branch",
        "cat-file",
        "check-attr",
        "check-ignore",
        "check-ref-format",
        "config",
        "count-objects",
        "describe",
        "diff",
        "diff-files",
        "diff-index",
        "diff-tree",
        "fetch",
        "for-each-ref",
        "fsck",
        "grep",
        "help",
        "hash-object",
        "log",
        "ls-files",
        "ls-remote",
        "ls-tree",
        "merge-base",
        "name-rev",
        "notes",
        "patch-id",
        "reflog",
        "remote",
        "rev-list",
        "rev-parse",
        "shortlog",
        "show",
        "show-branch",
        "show-ref",
        "status",
        "symbolic-ref",
        "tag",
        "var",
        "verify-commit",
        "verify-tag",
        "version",
        "whatchanged",
        "worktree",
    }
)
# Global options that take a separate value (`git -C dir commit`).
_VALUED = frozenset(
    {
        "-C",
        "-c",
        "--git-dir",
        "--work-tree",
        "--namespace",
        "--super-prefix",
        "--config-env",
        "--exec-path",
        "--list-cmds",
    }
)
# The environment variable every git command a landing starts carries, so recovery can find and wait for a
# git that outlived a killed worker.
LANDING_VAR = "MDSPEC_LANDING"


@dataclass(frozen=True)
class GitProcess:
    pid: int
    argv: tuple[str, ...]

    @property
    def subcommand(self) -> str:
        return subcommand(self.argv)

    def describe(self) -> str:
        return f"`git {self.subcommand or ''}`".replace(" `", "`") + f" (pid {self.pid})"


def subcommand(argv: tuple[str, ...]) -> str:
    """`commit` for `git -C x -c a=b commit -m y`; '' when there is none."""
    args = list(argv[1:])
    while args:
        a = args.pop(0)
        if a in _VALUED:
            if args:
                args.pop(0)
            continue
        if a.startswith("-"):
            continue
        return a
    return ""


def _stat(pid: int) -> tuple[str, int] | None:
    """(comm, parent pid) of a process, or None when it is gone."""
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8", errors="replace") as f:
            stat = f.read()
    except OSError:
        return None
    comm = stat[stat.index("(") + 1 : stat.rindex(")")]
    fields = stat[stat.rindex(")") + 2 :].split()
    if fields and fields[0] in ("Z", "X"):
        return None  # a zombie runs no more
    return comm, int(fields[1])


def ancestors(pid: int | None = None) -> list[int]:
    """The parent chain of `pid` (default: this process), nearest first."""
    out: list[int] = []
    cur = os.getppid() if pid is None else pid
    while cur > 1 and len(out) < 64:
        out.append(cur)
        st = _stat(cur)
        if st is None:
            break
        cur = st[1]
    return out


def ancestor_git(within: Path) -> int | None:
    """The pid of a `git` process above this one running in the checkout `within` (we run inside its hook)."""
    top = within.resolve()
    for pid in ancestors():
        st = _stat(pid)
        if st is not None and st[0] == "git" and _inside(_cwd(pid), top):
            return pid
    return None


def _cwd(pid: int) -> Path | None:
    try:
        return Path(os.readlink(f"/proc/{pid}/cwd"))
    except OSError:
        return None


def _inside(path: Path | None, top: Path) -> bool:
    return path is not None and (path == top or top in path.parents)


def _argv(pid: int) -> tuple[str, ...]:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            raw = f.read()
    except OSError:
        return ()
    return tuple(a.decode("utf-8", "replace") for a in raw.split(b"\0") if a)


def running(top: Path, git_dir: Path, ignore: frozenset[int] = frozenset()) -> list[GitProcess]:
    """Git commands that may write the checkout at `top`, other than ours; [] where /proc is not there.

    Commands running in mdspec's own worktree (inside the git dir) are not the user's.
    """
    top, git_dir = top.resolve(), git_dir.resolve()
    me = os.getpid()
    try:
        pids = [int(n) for n in os.listdir("/proc") if n.isdigit()]
    except OSError:
        return []
    found = []
    for pid in pids:
        if pid == me or pid in ignore:
            continue
        st = _stat(pid)
        if st is None or st[0] != "git":
            continue
        cwd = _cwd(pid)
        if not _inside(cwd, top) or _inside(cwd, git_dir):
            continue
        proc = GitProcess(pid, _argv(pid))
        if proc.subcommand in READ_ONLY or _is_ours(pid):
            continue
        found.append(proc)
    return sorted(found, key=lambda p: p.pid)


def _is_ours(pid: int) -> bool:
    """A git a landing started (tagged in its environment): recovery waits for those separately."""
    try:
        with open(f"/proc/{pid}/environ", "rb") as f:
            env = f.read()
    except OSError:
        return False
    return (LANDING_VAR + "=").encode() in env


def tagged(run_id: str) -> list[int]:
    """Processes still alive that a landing of `run_id` started (a killed worker leaves them orphaned)."""
    needle = f"{LANDING_VAR}={run_id}".encode()
    out = []
    try:
        pids = [int(n) for n in os.listdir("/proc") if n.isdigit()]
    except OSError:
        return []
    for pid in pids:
        if pid == os.getpid() or _stat(pid) is None:
            continue
        try:
            with open(f"/proc/{pid}/environ", "rb") as f:
                env = f.read().split(b"\0")
        except OSError:
            continue
        if needle in env:
            out.append(pid)
    return out
