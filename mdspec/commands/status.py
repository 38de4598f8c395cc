"""`mdspec status`: what is running, queued, pending and waiting for CI, and what the last runs did."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mdspec import config
from mdspec.errors import FatalError
from mdspec.fast import triggers
from mdspec.git import Repo
from mdspec.printer import Printer
from mdspec.run import costs as cost
from mdspec.run import land, pending, records
from mdspec.run.lock import lock_holder
from mdspec.run.records import RunRecord

LAST_RUNS = 10


def _age(seconds: float) -> str:
    s = int(seconds)
    return f"{s // 3600}h{s % 3600 // 60:02d}m" if s >= 3600 else f"{s // 60}m{s % 60:02d}s"


def tokens_line(rec: Mapping[str, Any]) -> str:
    """The four token counts, or "" before the first turn."""
    return f"tokens {cost.tokens_text(rec)}" if any(cost.tokens(rec)) else ""


def summary_line(rec: Mapping[str, Any]) -> str:
    """Turns, the four token counts and the cost (or that it is unknown) of a run."""
    n = int(rec.get("turns", 0) or 0)
    return f"{n} turn{'s' * (n != 1)}, tokens {cost.tokens_text(rec)}, {cost.describe(rec)}"


def livesummary_line(rec: RunRecord) -> str:
    """One line on a running run: stage, elapsed, turns, tool calls, tokens and cost so far."""
    n = int(rec.get("tool_calls", 0) or 0)
    parts = [
        str(rec.get("backend")),
        str(rec.get("stage") or "running"),
        _age(time.time() - float(rec.get("started") or time.time())),
        f"turn {rec.get('turns', 0)}",
        f"{n} tool call{'s' * (n != 1)}",
    ]
    tokens = tokens_line(rec)
    if tokens:
        parts.append(tokens)
    parts.append(cost.describe(rec, 2))
    return f"run {rec['id']} ({', '.join(parts)})"


def _spec_states(
    runs: list[RunRecord], pending_specs: list[dict[str, Any]], reverted: set[str], running: RunRecord | None
) -> list[dict[str, Any]]:
    """Every spec commit still waiting, with what its newest run made of it: running, held, failed, …"""
    out = []
    for spec in pending_specs:
        sha = spec["commit"]
        last = next((r for r in runs if sha in r.get("spec_commits", [])), None)
        entry: dict[str, Any] = {**spec, "state": "pending", "run": None, "reason": None}
        if last is not None:
            entry["run"] = last.get("id")
            entry["last_status"] = last.get("status")
        if running is not None and sha in running.get("spec_commits", []):
            entry.update(state="running", run=running.get("id"))
        elif sha in reverted:
            entry.update(state="reverted", reason="its generated commit was reverted")
        elif last is not None and last.get("status") in (records.HELD, records.FAILED):
            entry.update(state=last["status"], reason=last.get("reason"))
        elif last is not None and last.get("status") in (records.CANCELLED, records.INTERRUPTED):
            entry.update(reason=f"run {last.get('id')} was {last['status']}")
        out.append(entry)
    return out


def gather(repo: Repo) -> dict[str, Any]:
    state = repo.state_dir
    runs = records.all_runs(state)
    holder = lock_holder(state)
    running = next((r for r in runs if r.get("status") == records.RUNNING), None) if holder else None
    branch = repo.head_branch()
    queued = [
        {"commit": sha, "branch": ref, "queued_at": at}
        for sha, ref, at in triggers.entries(str(state))
        # A trigger stays queued until its run ends: the one being implemented now is not waiting.
        if not running or sha not in running.get("spec_commits", [])
    ]
    info: dict[str, Any] = {
        "repository": str(repo.top),
        "branch": branch.removeprefix("refs/heads/") if branch else None,
        "worker_pid": holder,
        "running": running,
        "live": livesummary_line(running) if running else None,
        "queued": queued,
        "queued_without_worker": bool(queued) and holder is None,
        "landing_interrupted": holder is None and land.journal_path(repo).exists(),
        "pending": [],
        "reverted": [],
        "spec_commits": [],
        "held": [
            {
                "run": r.get("id"),
                "result": r.get("result"),
                "reason": r.get("reason"),
                "spec_commits": r.get("spec_commits", []),
            }
            for r in runs
            if r.get("status") == records.HELD and repo.resolve_ref(land.result_ref(str(r["id"])))
        ],
        "runs": runs[:LAST_RUNS],
        "config_error": None,
    }
    try:
        cfg = config.load(repo.top)
    except FatalError as exc:
        info["config_error"] = str(exc)
        return info
    tip = repo.resolve_ref(branch) if branch else None
    if tip:
        ps = pending.find(repo, tip, cfg)
        info["pending"] = [{"commit": s.sha, "subject": s.info.subject} for s in ps.pending]
        info["reverted"] = [{"commit": s.sha, "subject": s.info.subject} for s in ps.reverted]
        waiting = [{"commit": s.sha, "subject": s.info.subject} for s in ps.all_pending]
        info["spec_commits"] = _spec_states(runs, waiting, {s.sha for s in ps.reverted}, running)
        if cfg.ci.mode == "ci":  # the team's CI compiles them once pushed
            for entry in info["spec_commits"]:
                if entry["state"] == "pending" and entry["run"] is None:
                    entry["state"] = "waiting for CI"
    return info


def status(start: Path, as_json: bool, out: Printer) -> int:
    repo = Repo(start)
    from mdspec.run import runner  # late: only when a landing was interrupted is there anything to do

    try:
        runner.recover_now(repo, out if not as_json else lambda _: None)
    except FatalError as exc:
        out(f"mdspec: error: {exc}")
    info = gather(repo)
    if as_json:
        out(json.dumps(info, indent=2, sort_keys=True, default=str))
        return 0
    _print_header(info, out)
    _print_activity(info, out)
    _print_spec_commits(info, out)
    _print_runs(info["runs"], out)
    return 0


def _print_header(info: dict[str, Any], out: Printer) -> None:
    """The repository and branch, and anything that stops mdspec from working normally."""
    out(f"mdspec status: {info['repository']} (branch {info['branch'] or 'detached HEAD'})")
    if info["config_error"]:
        out(f"config: {info['config_error']}")
    if info["landing_interrupted"]:
        out(
            "landing: a worker was stopped while landing a result and it could not be finished or undone yet; "
            "`mdspec status` tries again"
        )


def _print_activity(info: dict[str, Any], out: Printer) -> None:
    """What the worker does now, and what is queued for it."""
    if info["running"]:
        out(f"running: {info['live']} — follow: mdspec log -f; stop: mdspec cancel")
    elif info["worker_pid"]:
        out(f"worker: pid {info['worker_pid']} is starting a run")
    else:
        out("running: nothing")
    if info["queued"]:
        line = f"queued: {len(info['queued'])} spec commit(s): " + ", ".join(q["commit"][:10] for q in info["queued"])
        if info["queued_without_worker"]:
            line += " (no worker is running: `mdspec run` starts one)"
        out(line)


def _print_spec_commits(info: dict[str, Any], out: Printer) -> None:
    for s in info["spec_commits"]:
        out(_spec_line(s))
    if not info["spec_commits"] and not info["config_error"]:
        out("pending: nothing: every spec commit on this branch is implemented")


def _spec_line(s: Mapping[str, Any]) -> str:
    """One spec commit still waiting, worded by its state."""
    what = f"{s['commit'][:10]} {s['subject']}"
    state = s["state"]
    if state == "running":
        return f"pending (running now): {what}"
    if state == "waiting for CI":
        return f"waiting for CI: {what}"
    if state == "reverted":
        return f"pending (generated commit reverted; `mdspec run` implements it again): {what}"
    if state == "held":
        return f"held: {what} — run {s['run']}: {s['reason']}"
    if state == "failed":
        return f"failed: {what} — run {s['run']}: {s['reason']}; `mdspec run` tries again"
    if s.get("reason"):
        return f"pending ({s['reason']}): {what}"
    return f"pending: {what}"


def _print_runs(runs: list[RunRecord], out: Printer) -> None:
    if runs:
        out("last runs:")
    for run in runs:
        out(_run_line(run))


def _run_line(run: RunRecord) -> str:
    """One of the last runs: id, status, spec commits, what it landed as, cost, time and why."""
    n = len(run.get("spec_commits", []))
    line = f"  {run.get('id')}  {run.get('status', '?'):<11} {n} spec commit{'s' * (n != 1)}"
    if run.get("landed_as"):
        line += f" → {run['landed_as'][:10]}"
    if cost.cost_of(run) != 0.0:  # a run that spent something, or whose spending is unknown
        line += f"  {cost.describe(run, 2)}"
    if run.get("seconds") is not None:
        line += f"  {run['seconds']}s"
    quiet = run.get("status") in (records.LANDED, records.RUNNING) and not run.get("recovery")
    if run.get("reason") and not quiet:
        line += f"  — {run['reason']}"
    return line
