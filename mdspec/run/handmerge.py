"""A held result merged by hand: `mdspec apply` hands a conflicting result to `git cherry-pick` in the
user's checkout, and recovery later records which way that went (finished, or abandoned)."""

from __future__ import annotations

from mdspec import git
from mdspec.fast import trailers
from mdspec.git import Repo
from mdspec.printer import Printer
from mdspec.run import land, records
from mdspec.run.costs import add_note
from mdspec.run.records import RunRecord


def merge_by_hand(repo: Repo, rec: RunRecord, result: str, out: Printer) -> None:
    """`git cherry-pick` the held result onto the branch in the user's checkout (its trailers come along).

    On a conflict git leaves its markers and its usual `--continue`/`--abort` flow; `recover` later sees
    which way it went (a commit carrying the run's trailer on the branch, or none).
    """
    co = land.checkout_of(repo, str(rec["branch"]))
    if co is None:
        rec["reason"] = f"{land.short(str(rec['branch']))} is not checked out: check it out, then `mdspec apply`"
        return
    proc = git.run(
        ["cherry-pick", "--keep-redundant-commits", result], co.top, check=False, env={"MDSPEC_RUNNING": "1"}
    )
    if proc.returncode == 0:
        head = Repo(co.top).resolve_ref(str(rec["branch"])) or ""
        _merged(repo, rec, head)
        add_note(repo, rec, head)
        return
    text = (proc.stdout + proc.stderr).strip()
    if (co.git_dir / "CHERRY_PICK_HEAD").exists():
        conflicts = [ln.strip() for ln in text.splitlines() if ln.startswith("CONFLICT")]
        for line in conflicts:
            out(f"mdspec: {line}")
        rec.update(
            {
                "merging": True,
                "reason": "being merged by `git cherry-pick`: fix the conflicts, `git add` them, "
                "then `git cherry-pick --continue` (or `git cherry-pick --abort`)",
            }
        )
        return
    lines = [ln for ln in text.splitlines() if ln.startswith(("error:", "fatal:"))] or text.splitlines()[:1]
    rec["reason"] = f"git cherry-pick refused: {lines[0] if lines else 'unknown error'}; `mdspec apply` tries again"


def _merged(repo: Repo, rec: RunRecord, sha: str) -> None:
    """The held result is on the branch as `sha`, merged by `git cherry-pick`: landed, its ref done with."""
    rec.update({"status": records.LANDED, "landed_as": sha, "reason": "merged by git cherry-pick"})
    rec.pop("merging", None)
    repo.delete_ref(land.result_ref(str(rec["id"])))


def settle_merges(repo: Repo) -> None:
    """Results the user was merging by hand: landed once a commit with the run's trailer is on the branch."""
    state = repo.state_dir
    for rec in records.all_runs(state):
        if rec.get("status") != records.HELD or not rec.get("merging"):
            continue
        branch = str(rec.get("branch") or "")
        co = land.checkout_of(repo, branch)
        tip = repo.resolve_ref(branch)
        walk = repo.first_parent_walk(tip, 200) if tip is not None else iter(())
        landed = next((c.sha for c in walk if str(rec["id"]) in trailers.values(c.message, trailers.RUN)), None)
        if landed:
            _merged(repo, rec, landed)
        elif co is None or not (co.git_dir / "CHERRY_PICK_HEAD").exists():
            rec.pop("merging", None)
            rec["reason"] = f"the merge by hand was abandoned; `mdspec apply {rec['id']}` tries again"
        else:
            continue
        records.write(records.runs_dir(state) / str(rec["id"]), rec)
