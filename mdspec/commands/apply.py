"""`mdspec apply [RUN]`: land a held result with the same safety as a run, or hand it to git cherry-pick."""

from __future__ import annotations

from pathlib import Path

from mdspec.errors import FatalError, SigningError
from mdspec.git import Repo
from mdspec.printer import Printer
from mdspec.run import land, records, runner
from mdspec.run.cancel import cancellable
from mdspec.run.handmerge import merge_by_hand
from mdspec.run.lock import worker_lock


def apply(start: Path, run_prefix: str | None, out: Printer) -> int:
    """`mdspec apply [RUN]`: land a held result with the same safety as a run."""
    repo = Repo(start)
    state = repo.state_dir
    with cancellable(), worker_lock(state) as got:
        if not got:
            raise FatalError("a run is in progress: wait for it (`mdspec status`), then try again")
        runner.recover(repo, out)
        held = [r for r in records.all_runs(state) if r.get("status") == records.HELD and r.get("result")]
        if run_prefix:
            held = [r for r in held if str(r.get("id", "")).startswith(run_prefix)]
        if not held:
            what = f"matching {run_prefix!r}" if run_prefix else "at all"
            raise FatalError(f"no held result {what}: `mdspec status` lists runs and their results")
        rec = held[0]
        if rec.get("merging"):
            raise FatalError(
                f"run {rec['id']} is being merged by `git cherry-pick`: finish it with "
                "`git cherry-pick --continue` (or `--abort`), then `mdspec status`"
            )
        result = repo.resolve_ref(land.result_ref(rec["id"])) or rec["result"]
        if not repo.has_commit(result):
            raise FatalError(f"the result of run {rec['id']} is gone (was refs/mdspec/results/{rec['id']} deleted?)")
        try:
            result = repo.ensure_signed(result)  # held unsigned because signing failed: never land it so
        except SigningError as exc:
            raise SigningError(f"{exc}; run {rec['id']} stays held") from None
        landing = runner.Runner(repo, out).land_result(rec, result)
        if landing is not None and landing.conflict:
            # The user is here: let git's own 3-way merge do it, conflict markers and all.
            merge_by_hand(repo, rec, result, out)
        records.write(records.runs_dir(state) / rec["id"], rec)
    out(f"mdspec: run {rec['id']} {rec['status']}: {rec.get('reason', '')}")
    return 0 if rec["status"] in (records.LANDED, records.EMPTY) else 1
