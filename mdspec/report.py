"""`mdspec status` and `mdspec log`: what is running, queued, pending, and what past runs did."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mdspec import config, pending, records, triggers
from mdspec.errors import FatalError
from mdspec.git import Repo
from mdspec.runner import lock_holder

Printer = Callable[[str], None]
LAST_RUNS = 10


def _age(seconds: float) -> str:
    s = int(seconds)
    return f"{s // 3600}h{s % 3600 // 60:02d}m" if s >= 3600 else f"{s // 60}m{s % 60:02d}s"


def gather(repo: Repo) -> dict[str, Any]:
    state = repo.common_dir / "mdspec"
    runs = records.all_runs(state)
    holder = lock_holder(state)
    running = next((r for r in runs if r.get("status") == records.RUNNING), None) if holder else None
    branch = repo.head_branch()
    info: dict[str, Any] = {
        "repository": str(repo.top),
        "branch": branch.removeprefix("refs/heads/") if branch else None,
        "worker_pid": holder,
        "running": running,
        # A trigger stays queued until its run ends: the one being implemented now is not waiting.
        "queued": [{"commit": sha, "branch": ref, "queued_at": at} for sha, ref, at in triggers.entries(str(state))
                   if not running or sha not in running.get("spec_commits", [])],
        "pending": [],
        "reverted": [],
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
    return info


def status(start: Path, as_json: bool, out: Printer) -> int:
    repo = Repo(start)
    info = gather(repo)
    if as_json:
        out(json.dumps(info, indent=2, sort_keys=True, default=str))
        return 0
    out(f"mdspec status: {info['repository']} (branch {info['branch'] or 'detached HEAD'})")
    if info["config_error"]:
        out(f"config: {info['config_error']}")
    r = info["running"]
    if r:
        out(
            f"running: run {r['id']} ({r.get('backend')}, {_age(time.time() - r.get('started', time.time()))}, "
            f"turn {r.get('turns', 0)}, ${r.get('cost_usd', 0.0):.2f}) — follow: mdspec log -f"
        )
    elif info["worker_pid"]:
        out(f"worker: pid {info['worker_pid']} is starting a run")
    else:
        out("running: nothing")
    if info["queued"]:
        out(f"queued: {len(info['queued'])} spec commit(s): " + ", ".join(q["commit"][:10] for q in info["queued"]))
    now = set(r.get("spec_commits", [])) if r else set()
    for p in info["pending"]:
        out(f"pending{' (running now)' if p['commit'] in now else ''}: {p['commit'][:10]} {p['subject']}")
    for p in info["reverted"]:
        out(f"pending (generated commit reverted; `mdspec run` implements it again): {p['commit'][:10]} {p['subject']}")
    if not info["pending"] and not info["reverted"] and not info["config_error"]:
        out("pending: nothing: every spec commit on this branch is implemented")
    if info["runs"]:
        out("last runs:")
    for run in info["runs"]:
        n = len(run.get("spec_commits", []))
        line = f"  {run.get('id')}  {run.get('status', '?'):<11} {n} spec commit{'s' * (n != 1)}"
        if run.get("landed_as"):
            line += f" → {run['landed_as'][:10]}"
        if run.get("cost_usd"):
            line += f"  ${run['cost_usd']:.2f}"
        if run.get("seconds") is not None:
            line += f"  {run['seconds']}s"
        if run.get("status") not in (records.LANDED, records.RUNNING) and run.get("reason"):
            line += f"  — {run['reason']}"
        out(line)
    return 0


def _print_run(rdir: Path, out: Printer) -> dict[str, Any]:
    rec = records.read(rdir)
    out(f"run {rec.get('id')}: {rec.get('status')}" + (f" — {rec['reason']}" if rec.get("reason") else ""))
    for key in ("branch", "base", "backend", "model", "sandbox", "turns", "cost_usd", "check", "result", "landed_as",
                "seconds"):
        if rec.get(key) not in (None, ""):
            out(f"  {key}: {rec[key]}")
    for sha, subj in zip(rec.get("spec_commits", []), rec.get("spec_subjects", []), strict=False):
        out(f"  implements: {sha[:10]} {subj}")
    for v in rec.get("violations", []):
        out(f"  restored: {v}")
    for v in rec.get("refusals", []):
        out(f"  refused: {v}")
    for c in rec.get("check_rounds", []):
        out(f"  check: {c}")
    for w in rec.get("warnings", []):
        out(f"  warning: {w}")
    return rec


def _event_line(ev: dict[str, Any]) -> str | None:
    kind = ev.get("event")
    if kind == "turn":
        return f"  turn {ev.get('turn')}: {ev.get('stop_reason', '')} ${float(ev.get('cost_usd') or 0):.3f}"
    if kind == "tool":
        mark = " (refused/error)" if ev.get("is_error") else ""
        return f"  {ev.get('name')}: {str(ev.get('summary', ''))[:160]}{mark}"
    if kind == "warning":
        return f"  warning: {ev.get('message')}"
    if kind == "check":
        return f"  check round {ev.get('round')}: {ev.get('summary')}"
    return None


def log(start: Path, run: str | None, follow: bool, out: Printer) -> int:
    repo = Repo(start)
    state = repo.common_dir / "mdspec"
    rdir = records.find_run(state, run)
    if rdir is None:
        raise FatalError(f"no run {'matching ' + repr(run) if run else 'yet'}: `mdspec status` lists the runs")
    rec = _print_run(rdir, out)
    events = rdir / "events.jsonl"
    pos = 0
    while True:
        if events.exists():
            with events.open(encoding="utf-8") as f:
                f.seek(pos)
                for line in f:
                    if not line.endswith("\n"):
                        break  # a line being written; read it next time round
                    pos += len(line.encode())
                    try:
                        text = _event_line(json.loads(line))
                    except ValueError:
                        continue
                    if text:
                        out(text)
        if not follow or rec.get("status") != records.RUNNING or lock_holder(state) is None:
            break
        time.sleep(0.5)
        rec = records.read(rdir)
    if follow:
        rec = records.read(rdir)
        out(f"run {rec.get('id')}: {rec.get('status')}" + (f" — {rec['reason']}" if rec.get("reason") else ""))
    for name in ("output.log", "check.log", "error.log"):
        p = rdir / name
        if p.exists() and not follow:
            text = p.read_text(encoding="utf-8", errors="replace")
            out(f"--- {name} ({len(text)} chars{', last 4000' if len(text) > 4000 else ''})")
            out(text[-4000:].rstrip())
    if (rdir / "transcript.jsonl").exists() and not follow:
        out(f"--- transcript: {rdir / 'transcript.jsonl'}")
    return 0
