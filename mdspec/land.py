"""Landing results on the user's branch, or holding them (DESIGN §3.5); `mdspec apply`.

Landing never overwrites anything of the user's: the checkout is updated with git's own two-tree merge
(`read-tree -m -u`, the same rules as switching branches: it refuses when an edited file would be
overwritten and leaves unrelated edits alone), and the branch moves with a compare-and-swap.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from mdspec import git, paths
from mdspec.git import Repo

RESULTS = "refs/mdspec/results/"
_QUOTED = re.compile(r"'(.+)'")


@dataclass(frozen=True)
class Landing:
    landed: bool
    commit: str  # the commit on the branch when landed (rebased if the branch had moved), else the result
    reason: str  # why it was held, or how it landed


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
        if not repo.update_ref(branch, commit, tip, f"mdspec: {run_id}"):
            continue  # the branch moved between our read and our write
        refused = _checkout_update(repo, tip, commit, dry_run=False)
        if refused:
            # Put the branch back so HEAD, index and files agree again; the result stays held.
            repo.update_ref(branch, tip, commit, f"mdspec: undo {run_id}")
            return Landing(False, result, refused)
        how = "fast-forward" if commit == result else f"rebased onto {tip[:10]}"
        return Landing(True, commit, how)
    return Landing(False, result, "the branch kept moving while landing")
