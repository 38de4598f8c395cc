"""The persistent worktree (DESIGN §3.3): one linked worktree per repository under the state dir.

For each run it is reset to the run's base commit: tracked files reset, untracked files removed, ignored
files (build caches) kept so incremental builds stay warm. The agent never works in the user's checkout.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path

from mdspec import git
from mdspec.fast import paths
from mdspec.git import Repo

LOCK_REASON = "mdspec"
# mdspec's own worktree keeps a split index: the entries sit in a shared file written once, and each
# write of the index (a reset, staging the agent's changes, writing the tree) writes only what changed,
# not every entry of a large repository. Given on the command line, so no config file changes; git keeps
# the split index when it finds no setting, so the agent's own git commands leave it as it is.
SPLIT_INDEX = ("-c", "core.splitIndex=true")


def path_for(state_dir: Path) -> Path:
    return state_dir / "worktree"


def prepare(repo: Repo, state_dir: Path, base: str) -> Path:
    """A clean checkout of `base` (detached) in the persistent worktree, created on first use."""
    wt = path_for(state_dir)
    gitdir = _own_git_dir(repo, wt)
    if gitdir is None:
        _remove(repo, wt)
        git.run(["worktree", "add", "--force", "--detach", str(wt), base], repo.top)
        _lock(repo, wt)
        return wt
    # A run may have left git state behind (a half-done rebase, commits, a staged mess): start over.
    if not Path(gitdir, "locked").exists():
        _lock(repo, wt)  # made before worktrees were locked
    if paths.operation_in_progress(gitdir):
        for op in (
            ["rebase", "--quit"],
            ["am", "--quit"],
            ["cherry-pick", "--quit"],
            ["revert", "--quit"],
            ["merge", "--quit"],
            ["bisect", "reset"],
        ):
            git.run(op, wt, check=False)
    # One command resets HEAD (detached, whatever branch the agent switched to), index and tracked files:
    # --force discards every change and unmerged entry as `reset --hard` would.
    git.run([*SPLIT_INDEX, "checkout", "--force", "--quiet", "--detach", base], wt)
    # -ff removes nested repositories the agent made too; not -x: ignored build caches stay.
    git.run(["clean", "-d", "--force", "--force", "--quiet"], wt)
    return wt


def healthy(repo: Repo, wt: Path) -> bool:
    return _own_git_dir(repo, wt) is not None


def _own_git_dir(repo: Repo, wt: Path) -> str | None:
    """The worktree's own git dir, when `wt` is a working linked worktree of `repo` (one git command)."""
    if not (wt / ".git").is_file():
        return None
    proc = git.run(["rev-parse", "--git-common-dir", "--absolute-git-dir"], wt, check=False)
    lines = proc.stdout.splitlines()
    if proc.returncode != 0 or len(lines) != 2:
        return None
    common = Path(lines[0])
    if not common.is_absolute():
        common = (wt / common).resolve()
    return lines[1] if common == repo.common_dir else None


def _lock(repo: Repo, wt: Path) -> None:
    """Lock the worktree, so `git worktree prune` (and gc's prune) never drops it: its directory sits
    inside .git, where a user's clean-up or a tool may remove it, and mdspec recreates it then."""
    git.run(["worktree", "lock", "--reason", LOCK_REASON, str(wt)], repo.top, check=False)


def _remove(repo: Repo, wt: Path) -> None:
    git.run(["worktree", "unlock", str(wt)], repo.top, check=False)  # a locked entry is never pruned
    if wt.exists() or wt.is_symlink():
        git.run(["worktree", "remove", "--force", str(wt)], repo.top, check=False)
        if wt.exists() or wt.is_symlink():
            if wt.is_symlink() or wt.is_file():
                wt.unlink()
            else:
                shutil.rmtree(wt, ignore_errors=True)
    git.run(["worktree", "prune"], repo.top, check=False)


UNTRACKED = "?"  # the tag an untracked file gets
# The scan after a run is `git status` rather than `ls-files --modified --others`: only status reads the
# untracked cache, which remembers each directory's stat data, so the walk of an unchanged tree opens no
# directory; and it checks the tracked files' stat data in parallel threads. The cache is kept in the
# worktree's index (as the split index is: given here, never in a config file), and git itself guards it
# against directories changed within the same timestamp as the index (racy entries are read again).
SCAN = (
    *SPLIT_INDEX,
    "-c",
    "core.untrackedCache=true",
    "-c",
    "status.showUntrackedFiles=all",
    "status",
    "--porcelain",
    "-z",
    "--no-renames",
    "--untracked-files=all",
)


def changes(wt: Path) -> list[tuple[str, str]]:
    """(tag, path) for every file that differs from the worktree's index (changed, deleted, unmerged: tag
    other than "?") and every untracked file .gitignore does not exclude (tag "?"): one scan of the tree.

    A nested repository the agent made shows as its directory, with a trailing "/"."""
    proc = git.run(list(SCAN), wt, check=False, errors="surrogateescape")
    if proc.returncode != 0:
        # status writes the index (its cache) as it goes, and dies when it cannot (a full disk): the scan
        # that writes nothing then, so the step that must write says why it could not.
        return _changes_read_only(wt)
    found: list[tuple[str, str]] = []
    for item in proc.stdout.split("\0"):
        # "XY path": X compares the index with HEAD, Y the files with the index; "??" is untracked.
        if item[:2] == "??":
            found.append((UNTRACKED, item[3:]))
        elif len(item) > 3 and item[1] != " ":
            found.append((item[1], item[3:]))
    return found


def _changes_read_only(wt: Path) -> list[tuple[str, str]]:
    out = git.run(
        ["ls-files", "-z", "-t", "--modified", "--others", "--exclude-standard"], wt, errors="surrogateescape"
    ).stdout
    found: dict[str, str] = {}
    for item in out.split("\0"):
        if item:
            found.setdefault(item[2:], item[0])  # an unmerged path is listed once per stage
    return [(tag, path) for path, tag in found.items()]


def snapshot_tree(wt: Path, changed: Sequence[str] | None = None) -> str:
    """Stage everything in the worktree (honouring .gitignore) and return the tree id.

    Whatever the agent did with git in the worktree (commits, resets) does not matter: the tree is the
    files as they are now. `changed` are the paths that differ from the worktree's index (from `changes`,
    when the caller has scanned already); only those are staged, so the tree is scanned once, not twice
    as `git add --all` after a scan would.
    """
    paths = [p for _, p in changes(wt)] if changed is None else list(changed)
    if any(p.endswith("/") or _real_dir(wt / p) for p in paths):
        # A nested repository, or a tracked file now a directory: `git add` knows how each is recorded.
        git.run([*SPLIT_INDEX, "add", "--all"], wt)
    elif paths:
        # --replace: a file that became a directory (or the reverse) swaps its entries, as `git add` does.
        git.run(
            [*SPLIT_INDEX, "update-index", "-z", "--add", "--remove", "--replace", "--stdin"],
            wt,
            input="\0".join(paths) + "\0",
            errors="surrogateescape",
        )
    return git.run([*SPLIT_INDEX, "write-tree"], wt).stdout.strip()


def _real_dir(path: Path) -> bool:
    return path.is_dir() and not path.is_symlink()


def changed_between(wt: Path, base: str, tree: str) -> list[tuple[str, str]]:
    """(status letter, path) for every path differing between `base`'s tree and `tree`: "A" (added), "D"
    (deleted) or "M". Path names that are not UTF-8 come back with surrogate escapes, to pass back to git
    byte for byte (restore)."""
    return Repo(wt).changed_paths(base, tree)


def restore(wt: Path, base: str, changes: list[tuple[str, str]]) -> None:
    """Put the listed paths back as they are in `base` (delete the ones `base` does not have)."""
    for status, path in changes:
        target = wt / path
        if status == "A":
            git.run([*SPLIT_INDEX, "rm", "--cached", "--quiet", "--force", "--", path], wt, check=False)
            if target.is_symlink() or target.is_file():
                target.unlink()
        else:
            if target.is_dir() and not target.is_symlink():
                shutil.rmtree(target)
            git.run([*SPLIT_INDEX, "checkout", base, "--", path], wt)
