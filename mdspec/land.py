"""Landing results on the user's branch, or holding them (DESIGN §3.5); `mdspec apply`.

Landing never overwrites anything of the user's: the checkout is updated with git's own two-tree merge
(`read-tree -m -u`, the same rules as switching branches: it refuses when an edited file would be
overwritten and leaves unrelated edits alone), and the branch moves with a compare-and-swap.

The branch moves before the checkout does, so a worker killed between the two would leave HEAD ahead of
the index and files. The landing journal (`.git/mdspec/landing.json`: branch, old and new tip, result, run
id) is written before the ref update and removed after the checkout update; `recover` (run by the next
worker under the lock) finds it and either finishes the checkout update or puts the branch back.
"""

from __future__ import annotations

import json
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mdspec import git, paths, records
from mdspec.git import Repo

RESULTS = "refs/mdspec/results/"
JOURNAL = "landing.json"
_QUOTED = re.compile(r"'(.+)'")


@dataclass(frozen=True)
class Landing:
    landed: bool
    commit: str  # the commit on the branch when landed (rebased if the branch had moved), else the result
    reason: str  # why it was held, or how it landed


@dataclass(frozen=True)
class Recovery:
    """What `recover` did about a landing the worker did not finish."""

    run_id: str
    landed: bool  # the result is on the branch and the checkout matches it
    commit: str  # the commit on the branch when landed, else the result
    result: str
    reason: str


def journal_path(repo: Repo) -> Path:
    return repo.common_dir / "mdspec" / JOURNAL


def _write_journal(repo: Repo, entry: dict[str, Any]) -> None:
    path = journal_path(repo)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{JOURNAL}.{os.getpid()}.tmp")
    with tmp.open("w", encoding="utf-8") as f:
        json.dump(entry, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _clear_journal(repo: Repo) -> None:
    journal_path(repo).unlink(missing_ok=True)


def read_journal(repo: Repo) -> dict[str, Any] | None:
    try:
        data = json.loads(journal_path(repo).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def result_ref(run_id: str) -> str:
    return RESULTS + run_id


def hold(repo: Repo, run_id: str, result: str) -> None:
    repo.update_ref(result_ref(run_id), result, None, f"mdspec: hold {run_id}")


def _checkout_update(repo: Repo, old: str, new: str, dry_run: bool) -> str | None:
    """Move the user's index and files from `old` to `new`; an error line when git refuses."""
    # Refresh the index's stat data first, as git's porcelain does: a file touched but unchanged
    # (same content, new mtime) would otherwise count as an uncommitted edit and block landing.
    git.run(["update-index", "-q", "--refresh"], repo.top, check=False)
    args = ["read-tree", "-m", "-u", *(["--dry-run"] if dry_run else []), old, new]
    proc = git.run(args, repo.top, check=False)
    if proc.returncode == 0:
        return None
    lines = [ln.strip() for ln in (proc.stderr or proc.stdout).splitlines() if ln.strip()]
    # read-tree names each file in an error line ("error: Entry 'app.py' not uptodate. Cannot merge.",
    # "error: Untracked working tree file 'x' would be overwritten by merge."); checkout-style output
    # lists them on lines of their own.
    files = [m.group(1) for ln in lines if ln.startswith("error:") and (m := _QUOTED.search(ln))]
    files += [ln for ln in lines if not ln.startswith(("error:", "fatal:", "Please", "Aborting"))]
    if files:
        return "your uncommitted changes touch files the run changed: " + ", ".join(files[:5])
    return lines[0] if lines else "git refused to update the checkout"


def land(repo: Repo, branch: str, result: str, run_id: str) -> Landing:
    """Land `result` (a commit whose parent is the run's base) on `branch`, or say why it cannot."""
    for _ in range(5):  # the user may commit while we land: retry with the new tip
        if not _index_free(repo):
            return Landing(False, result, "the index stayed locked (.git/index.lock): is a git command still running?")
        if paths.operation_in_progress(str(repo.git_dir)):
            return Landing(False, result, "a merge, rebase, cherry-pick, revert or bisect is in progress")
        if repo.head_branch() != branch:
            now = (repo.head_branch() or "a detached HEAD").removeprefix("refs/heads/")
            return Landing(False, result, f"{branch.removeprefix('refs/heads/')} is not checked out (now {now})")
        tip = repo.resolve_ref(branch)
        if tip is None:
            return Landing(False, result, f"branch {branch} no longer exists")
        base = repo.commit(result).parents[0]
        commit = result
        if tip != base:
            rebased = repo.rebase_commit(result, tip, repo.identity())
            if rebased is None:
                return Landing(False, result, "conflicts with commits made on the branch since the run started")
            commit = rebased
        refused = _checkout_update(repo, tip, commit, dry_run=True)
        if refused:
            return Landing(False, result, refused)
        _write_journal(repo, {"branch": branch, "old": tip, "new": commit, "result": result, "run_id": run_id})
        if not repo.update_ref(branch, commit, tip, f"mdspec: {run_id}"):
            _clear_journal(repo)
            continue  # the branch moved between our read and our write
        records.pause_point(repo.common_dir / "mdspec", "landing")
        refused = _checkout_update(repo, tip, commit, dry_run=False)
        if refused:
            # Put the branch back so HEAD, index and files agree again; the result stays held.
            repo.update_ref(branch, tip, commit, f"mdspec: undo {run_id}")
            _clear_journal(repo)
            return Landing(False, result, refused)
        _clear_journal(repo)
        how = "fast-forward" if commit == result else f"rebased onto {tip[:10]}"
        return Landing(True, commit, how)
    return Landing(False, result, "the branch kept moving while landing")


def _index_free(repo: Repo, wait: float = 15.0) -> bool:
    """Wait while a git command holds the user's index (`git commit` does, from start to end).

    Moving the branch under a commit in progress would make that commit fail ("cannot lock ref"), and
    read-tree would be refused: landing waits for the user's git instead.
    """
    lock = repo.git_dir / "index.lock"
    deadline = time.monotonic() + wait
    while lock.exists():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def _is_ancestor(repo: Repo, ancestor: str, tip: str) -> bool:
    return git.run(["merge-base", "--is-ancestor", ancestor, tip], repo.top, check=False).returncode == 0


def recover(repo: Repo) -> Recovery | None:
    """Finish or undo a landing a killed worker left half done; None when there was none.

    The caller holds the worker lock, so no landing is really in progress. Reading the journal:
    - the branch still at `old`: the worker died before moving it; nothing landed;
    - the branch at `new`: move the checkout from `old` to `new` with the same two-tree merge landing
      uses (a no-op when the worker had already done it); if git refuses (the user edited a file the
      result changes since), put the branch back to `old` with a compare-and-swap and hold the result;
    - the branch anywhere else: the user moved it since; leave it as it is.
    """
    entry = read_journal(repo)
    if entry is None:
        return None
    try:
        branch, old, new = str(entry["branch"]), str(entry["old"]), str(entry["new"])
        result, run_id = str(entry.get("result") or new), str(entry.get("run_id") or "")
    except KeyError:
        _clear_journal(repo)
        return None
    tip = repo.resolve_ref(branch)
    if tip == old:
        out = Recovery(run_id, False, result, result, "the worker stopped before it moved the branch; nothing landed")
    elif tip != new:
        landed = tip is not None and _is_ancestor(repo, new, tip)
        out = Recovery(run_id, landed, new if landed else result, result,
                       "the branch moved on after the interrupted landing; left as it is")
    elif repo.head_branch() != branch:
        out = Recovery(run_id, True, new, result, "landed on the branch; it is not checked out, so no files changed")
    else:
        refused = _checkout_update(repo, old, new, dry_run=False)
        if refused is None:
            out = Recovery(run_id, True, new, result, "recovery finished updating the checkout")
        elif repo.update_ref(branch, old, new, f"mdspec: undo {run_id}"):
            if run_id and run_id != "revert":
                hold(repo, run_id, result)
            out = Recovery(run_id, False, result, result, f"recovery put the branch back ({refused})")
        else:
            out = Recovery(run_id, True, new, result, "the branch moved during recovery; left as it is")
    _clear_journal(repo)
    return out
