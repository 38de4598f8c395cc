"""Landing results on the user's branch, or holding them (DESIGN §3.5).

Landing never overwrites anything of the user's and never acts while a git command of the user's runs in
the checkout. The protocol, in the checkout (main or linked worktree) that has the branch:
1. wait while a user's git command that can write runs there (`usergit`: a `git commit` whose hooks still
   run — pre-commit has the unstaged changes hidden then — a `git pull`, …), then take the checkout's
   `index.lock` as git itself does: from here on no git command of the user's can start there;
2. rebase the result in memory if the branch moved;
3. write the landing journal; update the files with `read-tree -m -u` into a *copy* of the index. git
   checks every path by its branch-switch rules before it writes one, so a checkout that cannot take the
   change is refused with nothing touched, and the journal goes again (`_update_checkout`);
4. swap the new index into place, then move the branch with a compare-and-swap.
The branch moves last, so at every instant before it the user's HEAD still names the tree their index
was made from; a worker killed anywhere leaves `index.lock` behind, so git itself refuses to commit on a
half-landed checkout until `recover` (run by every mdspec command that takes the worker lock, and by
`mdspec status`) finishes or undoes the landing. The journal is removed only after the branch, the index
and the files agree.
"""

from __future__ import annotations

import contextlib
import enum
import errno
import json
import os
import re
import shutil
import signal
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mdspec import git
from mdspec.errors import FatalError, GitError
from mdspec.fast import atomic, paths
from mdspec.git import Repo
from mdspec.run import records, rollback, usergit

RESULTS = "refs/mdspec/results/"
KEEP_REF = "refs/mdspec/landing"  # keeps a rebased result alive while it lands (`git gc` may run any time)
JOURNAL = "landing.json"
UNDO_MARK = "undoing"  # in the landing's work dir while a landing is being undone
LAND_WAIT = 120.0  # seconds a landing waits for the user's git commands before it holds the result
ORPHAN_WAIT = 30.0  # seconds recovery waits for a git a killed landing left running, before ending it
_QUOTED = re.compile(r"'(.+)'")
_OPERATIONS = {
    "rebase-merge": "rebase",
    "rebase-apply": "rebase or am",
    "CHERRY_PICK_HEAD": "cherry-pick",
    "REVERT_HEAD": "revert",
    "MERGE_HEAD": "merge",
    "BISECT_LOG": "bisect",
    "sequencer": "cherry-pick or revert",
}


class Kind(enum.Enum):
    """What is being landed: it decides what happens to a landing that is undone."""

    RESULT = "result"  # a run's generated commit: an undone landing holds it under refs/mdspec/results/<run id>
    REVERT = "revert"  # `mdspec revert`'s commit: nothing is held; the user runs the revert again


@dataclass(frozen=True)
class Landing:
    landed: bool
    commit: str  # the commit on the branch when landed (rebased if the branch had moved), else the result
    reason: str  # why it was held, or how it landed
    busy: bool = False  # held only because a git command of the user's kept running: worth a retry later
    conflict: bool = False  # the branch has commits that change the same lines: git's own merge can do it
    superseded: tuple[str, ...] = ()  # spec commits of the run no longer on the branch (amended, dropped)


@dataclass(frozen=True)
class Recovery:
    """What `recover` did about a landing the worker did not finish."""

    run_id: str
    landed: bool  # the result is on the branch and the checkout matches it
    held: bool  # the landing was undone; the result is held for `mdspec apply`
    commit: str  # the commit on the branch when landed, else the result
    result: str
    reason: str


@dataclass(frozen=True)
class Checkout:
    """A working tree of the repository: the main one or a linked worktree (`git worktree add`)."""

    top: Path
    git_dir: Path  # its own git dir: HEAD, index, index.lock, rebase state

    @property
    def index(self) -> Path:
        return self.git_dir / "index"

    @property
    def lock(self) -> Path:
        return self.git_dir / "index.lock"


class LandingStuck(FatalError):
    """A landing that could neither finish nor be undone (the disk is full, say); its journal is kept."""


def short(branch: str) -> str:
    return branch.removeprefix("refs/heads/")


def result_ref(run_id: str) -> str:
    return RESULTS + run_id


def hold(repo: Repo, run_id: str, result: str) -> None:
    """Keep `result` under refs/mdspec/results/<run-id>; raises GitError when git cannot write the ref."""
    if repo.resolve_ref(result_ref(run_id)) == result:
        return
    proc = git.run(["update-ref", "-m", f"mdspec: hold {run_id}", result_ref(run_id), result], repo.top, check=False)
    if proc.returncode != 0:
        msg = (proc.stderr.strip() or proc.stdout.strip() or "git update-ref failed").splitlines()[-1]
        raise GitError(f"could not keep the result {result[:12]} as {result_ref(run_id)}: {msg}")


# --- where the branch is checked out ---------------------------------------------------------------


def checkout_of(repo: Repo, branch: str) -> Checkout | None:
    """The working tree that has `branch` checked out, if any (mdspec's own worktree is detached)."""
    proc = git.run(["worktree", "list", "--porcelain"], repo.top, check=False)
    path: str | None = None
    for line in [*proc.stdout.splitlines(), ""]:
        if line.startswith("worktree "):
            path = line[len("worktree ") :]
        elif line == f"branch {branch}" and path is not None:
            dirs = paths.discover(path)
            if dirs is not None and os.path.realpath(dirs.top) == os.path.realpath(path):
                return Checkout(Path(dirs.top), Path(dirs.git_dir))
        elif not line:
            path = None
    return None


# --- the journal -------------------------------------------------------------------------------------


def journal_path(repo: Repo) -> Path:
    return repo.state_dir / JOURNAL


def _work_dir(repo: Repo) -> Path:
    return repo.state_dir / "landing"


def _write_journal(repo: Repo, entry: Mapping[str, Any]) -> None:
    path = journal_path(repo)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic.write_atomic(path, json.dumps(entry), durable=True)  # recovery cannot undo what it cannot find


def _clear_journal(repo: Repo) -> None:
    journal_path(repo).unlink(missing_ok=True)


def _journal_kind(entry: Mapping[str, Any]) -> Kind:
    try:
        return Kind(entry["kind"])
    except (KeyError, ValueError):
        # A journal from before `kind` was recorded: reverts landed under the name "revert" then.
        return Kind.REVERT if entry.get("run_id") == "revert" else Kind.RESULT


def read_journal(repo: Repo) -> dict[str, Any] | None:
    try:
        data = json.loads(journal_path(repo).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


# --- the checkout's index lock ---------------------------------------------------------------------


class IndexLock:
    """`index.lock`, taken the way git takes it (create-exclusive), so no git command can start meanwhile."""

    def __init__(self, co: Checkout) -> None:
        self.path = co.lock
        self.ino: int | None = None
        self.keep = False  # left in place on purpose: a landing that could not be undone

    def acquire(self) -> bool:
        try:
            fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            return False
        try:
            self.ino = os.fstat(fd).st_ino
        finally:
            os.close(fd)
        return True

    def release(self) -> None:
        if self.ino is not None and not self.keep:
            _unlink_if(self.path, self.ino)
            self.ino = None


def _unlink_if(path: Path, ino: int | None) -> None:
    """Remove `path` only if it is the very file we created (a git of the user's may own a new one)."""
    with contextlib.suppress(OSError):
        if ino is not None and path.stat().st_ino == ino:
            path.unlink()


# --- landing ---------------------------------------------------------------------------------------


def _git_env(index: Path, run_id: str) -> dict[str, str]:
    return {"GIT_INDEX_FILE": str(index), usergit.LANDING_VAR: run_id}


def _refusal(proc_out: str) -> str:
    lines = [ln.strip() for ln in proc_out.splitlines() if ln.strip()]
    # read-tree names each file in an error line ("error: Entry 'app.py' not uptodate. Cannot merge.",
    # "error: Untracked working tree file 'x' would be overwritten by merge."); checkout-style output
    # lists them on lines of their own, indented. Any other line is prose (git's "Another git process
    # seems to be running…" advice after a lock it could not take), never a file name.
    files = [
        m.group(1)
        for ln in lines
        if ln.startswith(("error: Entry ", "error: Untracked ")) and (m := _QUOTED.search(ln))
    ]
    files += [ln.strip() for ln in proc_out.splitlines() if ln[:1] in ("\t", " ") and ln.strip()]
    if files:
        return "your uncommitted changes touch files the run changed: " + ", ".join(files[:5])
    return lines[0] if lines else "git refused to update the checkout"


def land(
    repo: Repo,
    branch: str,
    result: str,
    run_id: str,
    wait: float = LAND_WAIT,
    gone: Callable[[str], list[str]] | None = None,
    kind: Kind = Kind.RESULT,
) -> Landing:
    """Land `result` (a commit whose parent is the run's base) on `branch`, or say why it cannot.

    `run_id` names the landing in the reflog and in its git processes' environment; `kind` says whether
    recovery holds the result when it undoes the landing.

    `gone(tip)` names the run's spec commits that no longer stand at `tip`; it is asked under the index
    lock, so an amend of the user's cannot slip in between the question and the landing.

    Raises LandingStuck when a landing failed half way and could not be undone (the journal is kept).
    """
    deadline = time.monotonic() + wait
    while True:
        co = checkout_of(repo, branch)
        if co is None:
            now = short(repo.head_branch() or "a detached HEAD")
            return Landing(False, result, f"{short(branch)} is not checked out (now {now})")
        op = paths.operation_in_progress(str(co.git_dir))
        if op:
            return Landing(False, result, f"a {_OPERATIONS.get(op, op)} is in progress in {co.top}")
        busy = usergit.running(co.top, repo.common_dir)
        lock = IndexLock(co)
        if not busy and lock.acquire():
            try:
                # A command that started before we took the lock is still to be waited for.
                busy = usergit.running(co.top, repo.common_dir)
                if not busy:
                    return _land_locked(repo, co, lock, branch, result, run_id, gone, kind)
            finally:
                lock.release()
        if time.monotonic() > deadline:
            if busy:
                return Landing(False, result, f"{busy[0].describe()} was still running in {co.top}", busy=True)
            return Landing(
                False, result, f"the index stayed locked ({co.lock}): is a git command still running?", busy=True
            )
        time.sleep(0.05)


def _land_locked(
    repo: Repo,
    co: Checkout,
    lock: IndexLock,
    branch: str,
    result: str,
    run_id: str,
    gone: Callable[[str], list[str]] | None,
    kind: Kind,
) -> Landing:
    """Steps 2-4 of the protocol, under the index lock: each step returns a Landing when it stops."""
    tip = _tip_to_land_on(repo, co, branch, result, gone)
    if isinstance(tip, Landing):
        return tip
    commit = _onto(repo, result, tip, run_id)
    if isinstance(commit, Landing):
        return commit
    prepared = _prepare(repo, co, lock, branch, tip, commit, result, run_id, kind)
    if isinstance(prepared, Landing):
        return prepared
    new_index, env, touched = prepared
    records.pause_point(repo.state_dir, "checkout")
    try:
        refused = _update_checkout(repo, co, tip, commit, touched, env)
        if refused is not None:
            # The journal first: recovery reads a journal without index.new as "the new index is in".
            _clear_journal(repo)
            _cleanup(repo)
            return Landing(False, result, refused)
        _fsync(new_index)
        os.replace(new_index, co.index)
    except OSError as exc:
        why = exc.strerror or str(exc)
        undone = _undo(repo, co, lock, tip, commit, index_swapped=False, why=why)
        return Landing(False, result, f"updating the checkout failed ({why}); {undone}")
    records.pause_point(repo.state_dir, "landing")
    return _move_branch(repo, co, lock, branch, tip, commit, result, run_id)


def _tip_to_land_on(
    repo: Repo, co: Checkout, branch: str, result: str, gone: Callable[[str], list[str]] | None
) -> str | Landing:
    """The branch's tip, checked under the lock: still checked out here, nothing in progress, the run's
    spec commits still on it."""
    op = paths.operation_in_progress(str(co.git_dir))
    if op:
        return Landing(False, result, f"a {_OPERATIONS.get(op, op)} is in progress in {co.top}")
    if paths.head_ref(str(co.git_dir)) != branch:
        return Landing(False, result, f"{short(branch)} is no longer checked out in {co.top}")
    tip = repo.resolve_ref(branch)
    if tip is None:
        return Landing(False, result, f"branch {short(branch)} no longer exists")
    superseded = gone(tip) if gone is not None else []
    if superseded:
        return Landing(
            False,
            result,
            f"spec commit {superseded[0][:10]} is no longer on {short(branch)} (amended or dropped)",
            superseded=tuple(superseded),
        )
    return tip


def _onto(repo: Repo, result: str, tip: str, run_id: str) -> str | Landing:
    """`result`, or `result` rebased in memory onto `tip` when the branch moved (kept alive by KEEP_REF)."""
    if repo.commit(result).parents[0] == tip:
        return result
    try:
        rebased = repo.rebase_commit(result, tip, repo.identity())
    except FatalError as exc:  # a signing program that refused, say: never land unsigned
        return Landing(False, result, str(exc))
    if rebased is None:
        return Landing(False, result, "conflicts with commits made on the branch since the run started", conflict=True)
    repo.update_ref(KEEP_REF, rebased, repo.resolve_ref(KEEP_REF), f"mdspec: landing {run_id}")
    return rebased


def _prepare(
    repo: Repo, co: Checkout, lock: IndexLock, branch: str, tip: str, commit: str, result: str, run_id: str, kind: Kind
) -> tuple[Path, dict[str, str], list[str]] | Landing:
    """The index copies and the journal: (the new index, git's environment for it, the paths changed)."""
    work = _work_dir(repo)
    work.mkdir(parents=True, exist_ok=True)
    orig, new_index = work / "index.orig", work / "index.new"
    try:
        for p in (orig, new_index):
            if co.index.exists():
                # With its mtime: git trusts an entry's stat data only when the file is older than the
                # index, so a copy stamped "now" would hide an edit made in the index's last second.
                shutil.copy2(co.index, p)
            else:
                p.unlink(missing_ok=True)
        env = _git_env(new_index, run_id)
        touched = _changed_paths(repo, tip, commit)
        _write_journal(
            repo,
            {
                "branch": branch,
                "old": tip,
                "new": commit,
                "result": result,
                "run_id": run_id,
                "kind": kind.value,
                "top": str(co.top),
                "git_dir": str(co.git_dir),
                "lock_ino": lock.ino,
                "pid": os.getpid(),
            },
        )
    except OSError as exc:  # nothing of the user's changed yet: the disk is full, say
        _cleanup(repo)
        _clear_journal(repo)
        return Landing(False, result, f"could not prepare the landing: {exc.strerror or exc}")
    return new_index, env, touched


def _move_branch(
    repo: Repo, co: Checkout, lock: IndexLock, branch: str, tip: str, commit: str, result: str, run_id: str
) -> Landing:
    """The last step: the branch from `tip` to `commit` by compare-and-swap; undone when that fails."""
    moved = git.run(["update-ref", "-m", f"mdspec: {run_id}", branch, commit, tip], repo.top, check=False)
    if moved.returncode != 0:
        # A compare-and-swap that lost, or git that could not write the ref (a full disk): tell them apart.
        if repo.resolve_ref(branch) != tip:
            why = "the branch moved while landing"
        else:
            why = "could not move the branch: " + _last_line(moved.stderr or moved.stdout, "git update-ref failed")
            if _short_of_space(co, 4096):
                why = f"no space left on device ({why})"
        undone = _undo(repo, co, lock, tip, commit, index_swapped=True, why=why)
        return Landing(False, result, f"{why}; {undone}")
    _cleanup(repo)
    _clear_journal(repo)
    how = "fast-forward" if commit == result else f"rebased onto {tip[:10]}"
    return Landing(True, commit, how)


def _changed_paths(repo: Repo, tip: str, commit: str) -> list[str]:
    """The paths `commit` changes against `tip`, the list `git diff-tree -r` gives, found in memory: only
    the subtrees the two do not share are read, so a large tree costs no git process and no full walk."""
    return [p for _, p in repo.changed_paths(tip, commit)]


def _update_checkout(
    repo: Repo, co: Checkout, tip: str, commit: str, paths: list[str], env: Mapping[str, str]
) -> str | None:
    """`read-tree -m -u tip commit` into the index copy; None when done, git's refusal when the checkout
    cannot take the change (nothing touched). Raises OSError when git failed after it began writing.

    git checks every path before it writes any (branch-switch rules: local changes, untracked files in
    the way), so a refusal leaves the files as they were; that the files the change touches are
    unchanged down to their inode and ctime tells a refusal from a failure half way. The index copy is
    not refreshed first (that reads every file of the checkout): an entry whose stat data alone is
    stale makes git refuse, so a refusal is confirmed on a refreshed copy, and tried once more when
    the refreshed copy is accepted."""
    for attempt in range(2):
        before = _stats(co.top, paths)
        proc = git.run(["read-tree", "-m", "-u", tip, commit], co.top, check=False, env=env)
        if proc.returncode == 0:
            return None
        if attempt == 1 or _stats(co.top, paths) != before:
            raise OSError(_git_failure(repo, co, tip, commit, proc.stderr or proc.stdout))
        git.run(["update-index", "-q", "--refresh"], co.top, check=False, env=env)
        dry = git.run(["read-tree", "-m", "-u", "--dry-run", tip, commit], co.top, check=False, env=env)
        if dry.returncode != 0:
            return _refusal(dry.stderr or dry.stdout)
    return None  # not reached: the second attempt returns or raises


def _stats(top: Path, paths: list[str]) -> list[tuple[int, int, int, int] | None]:
    """What a write leaves on each path: inode, size, mtime and ctime (None: no file)."""
    out: list[tuple[int, int, int, int] | None] = []
    for rel in paths:
        try:
            st = os.lstat(top / rel)
        except OSError:
            out.append(None)
            continue
        out.append((st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns))
    return out


def _fsync(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _last_line(text: str, default: str) -> str:
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return lines[-1] if lines else default


def _free_bytes(path: Path) -> int | None:
    try:
        st = os.statvfs(path)
    except OSError:
        return None
    return st.f_bavail * st.f_frsize


def _short_of_space(co: Checkout, needed: int) -> bool:
    """Has the checkout's or the git dir's filesystem less than `needed` bytes free (a full disk)?"""
    free = [f for f in (_free_bytes(co.top), _free_bytes(co.git_dir)) if f is not None]
    return bool(free) and min(free) < needed


def _git_failure(repo: Repo, co: Checkout, old: str, new: str, out: str) -> str:
    """Why `read-tree -m -u` failed. git says only "unable to write file x" when the disk fills up, so
    a filesystem with less room left than the landing writes names the cause."""
    text = _refusal(out)
    needed = co.index.stat().st_size if co.index.exists() else 0
    for rel in rollback.changed_paths(repo, old, new):
        found = repo.entry_at(new, rel)
        needed += len(found[1]) if found is not None else 0
    if _short_of_space(co, needed):
        return f"no space left on device ({text})"
    return text


def _cleanup(repo: Repo) -> None:
    work = _work_dir(repo)
    # The undo marker goes last: while it is there, recovery knows an undo was under way.
    for name in ("index.orig", "index.new", "index.new.lock", "index.back", UNDO_MARK):
        (work / name).unlink(missing_ok=True)
    with contextlib.suppress(OSError):
        work.rmdir()  # only when empty
    if repo.resolve_ref(KEEP_REF):
        repo.delete_ref(KEEP_REF)


def _undo(repo: Repo, co: Checkout, lock: IndexLock, old: str, new: str, *, index_swapped: bool, why: str) -> str:
    """Put the files (and the index) back from `new` to `old`; the branch is at `old`. Says what it did.

    When that fails too, the journal and the index lock stay, so neither git nor the user's next commit
    can act on the half-landed checkout, and LandingStuck says what to do.
    """
    try:
        # An empty file (a full disk still takes one): from now on recovery undoes, never finishes.
        _work_dir(repo).mkdir(parents=True, exist_ok=True)
        (_work_dir(repo) / UNDO_MARK).touch()
        done = rollback.undo_files(repo, co.top, old, new)
        orig, back = _work_dir(repo) / "index.orig", _work_dir(repo) / "index.back"
        if index_swapped and orig.exists():
            # Not through index.new: recovery reads "index.new is gone" as "the new index was swapped in".
            try:
                shutil.copy2(orig, back)  # its mtime too: see _land_locked
                os.replace(back, co.index)
            finally:
                back.unlink(missing_ok=True)
        _cleanup(repo)
    except OSError as exc:
        lock.keep = True
        cause = "free some disk space" if exc.errno in (errno.ENOSPC, errno.EDQUOT) else "remove the cause"
        raise LandingStuck(
            f"landing stopped half way ({why}) and could not be undone ({exc.strerror or exc}): the checkout "
            f"{co.top} is locked (index.lock) so nothing commits over it; {cause}, then run `mdspec status`: "
            "it finishes the undo"
        ) from exc
    _clear_journal(repo)
    text = "nothing landed; the checkout was put back"
    if done.left:
        text += (
            f" except {', '.join(done.left[:5])}, which held neither the old nor the new content and were "
            "left as they are"
        )
    return text


# --- recovery --------------------------------------------------------------------------------------


def _end_orphans(run_id: str) -> None:
    """Wait for the git a killed landing left running (it still writes files and its index), or end it."""
    deadline = time.monotonic() + ORPHAN_WAIT
    while usergit.tagged(run_id) and time.monotonic() < deadline:
        time.sleep(0.05)
    for pid in usergit.tagged(run_id):
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while usergit.tagged(run_id) and time.monotonic() < deadline:
        time.sleep(0.02)


def _keep(repo: Repo, run_id: str, kind: Kind, result: str) -> tuple[bool, str]:
    """Hold an undone landing's result: (held, what to add to the reason when it could not be)."""
    if not run_id or kind is not Kind.RESULT or not repo.has_commit(result):
        return False, ""
    try:
        hold(repo, run_id, result)
    except GitError as exc:  # never say `mdspec apply` lands a result that has no ref
        return False, f"; {exc}"
    return True, ""


def recover(repo: Repo) -> Recovery | None:
    """Finish or undo a landing a killed worker left half done; None when there was none.

    The caller holds the worker lock, so the journal's writer is dead; what it left running is waited for
    (or ended) first. A landing whose undo had begun (it failed, and the undo could not finish: a full
    disk) is undone, wherever the branch is. Otherwise, by where the branch is:
    - at `new`: the index was swapped before the branch moved, so the landing was complete;
    - at `old` with the new index in place: the files and index are done; move the branch (compare-and-swap);
    - at `old` otherwise: put back every file the landing wrote and hold the result;
    - anywhere else: the user moved it (after removing the lock by hand); left as it is.
    Raises LandingStuck, keeping the journal, when the undo itself fails.
    """
    entry = read_journal(repo)
    if entry is None:
        return None
    try:
        branch, old, new = str(entry["branch"]), str(entry["old"]), str(entry["new"])
        result, run_id = str(entry.get("result") or new), str(entry.get("run_id") or "")
        kind = _journal_kind(entry)
    except KeyError:
        _clear_journal(repo)
        return None
    if not repo.has_commit(new):
        _cleanup(repo)
        _clear_journal(repo)
        return Recovery(
            run_id, False, False, result, result, "the worker stopped before it moved the branch; nothing landed"
        )
    co = Checkout(Path(entry["top"]), Path(entry["git_dir"])) if entry.get("top") else checkout_of(repo, branch)
    ino = entry.get("lock_ino") if isinstance(entry.get("lock_ino"), int) else None
    if run_id:
        _end_orphans(run_id)
    tip = repo.resolve_ref(branch)
    swapped = not (_work_dir(repo) / "index.new").exists() and (_work_dir(repo) / "index.orig").exists()
    undoing = (_work_dir(repo) / UNDO_MARK).exists()  # a landing that failed and whose undo did not finish
    if undoing and co is not None:
        lock = IndexLock(co)
        lock.ino = ino
        undone = _undo(repo, co, lock, old, new, index_swapped=swapped, why="the landing had failed")
        held, kept = _keep(repo, run_id, kind, result)
        out = Recovery(run_id, False, held, result, result, f"recovery finished undoing the landing: {undone}{kept}")
    elif tip == new:
        out = Recovery(run_id, True, False, new, result, "the landing had finished; recovery tidied up")
    elif tip == old and co is not None and swapped and repo.update_ref(branch, new, old, f"mdspec: {run_id}"):
        out = Recovery(run_id, True, False, new, result, "recovery finished the landing")
    elif tip == old and co is not None:
        lock = IndexLock(co)
        lock.ino = ino
        undone = _undo(repo, co, lock, old, new, index_swapped=swapped, why="the worker was stopped")
        held, kept = _keep(repo, run_id, kind, result)
        out = Recovery(run_id, False, held, result, result, f"recovery undid the landing: {undone}{kept}")
    else:
        landed = tip is not None and repo.is_ancestor(new, tip)
        out = Recovery(
            run_id,
            landed,
            False,
            new if landed else result,
            result,
            "the branch moved on after the interrupted landing; left as it is",
        )
    if co is not None:
        _unlink_if(co.lock, ino)
    _cleanup(repo)
    _clear_journal(repo)
    return out
