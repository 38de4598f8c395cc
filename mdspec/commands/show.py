"""`mdspec show SPEC-REV`: a spec change and everything it produced."""

from __future__ import annotations

import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from mdspec import config, printer
from mdspec.git import Repo
from mdspec.printer import Printer
from mdspec.run.costs import TOKEN_KEYS, TOKEN_LABELS
from mdspec.trace import show as tracing
from mdspec.trace.show import Generated, Run, SpecReport

STATE_TEXT = {
    "implemented": "implemented",
    "reverted": "reverted: every generated commit of it was reverted; `mdspec run` implements it again",
    "pending": "pending: no generated commit implements it yet (`mdspec status` says why)",
    "not on the branch": "not on the branch: HEAD does not contain it (amended, rebased away or on another branch)",
}


def show(start: Path, rev: str, as_json: bool, out: Printer) -> int:
    repo = Repo(start)
    cfg = config.load(repo.top, required=False)
    found = tracing.report(repo, cfg, rev)
    return printer.report(out, as_json, lambda: as_dict(found), lambda: render(found))


def _when(t: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(t)) if t else "?"


def _run_line(r: Run) -> str:
    cost = f"${r.cost_usd:.4f}" if r.cost_usd is not None else f"cost unknown ({r.cost_unknown})"
    tokens = ", ".join(f"{n:,} {label}" for n, label in zip(r.tokens, TOKEN_LABELS, strict=True))
    check = f", check {r.check}" if r.check else ""
    where = " (from the git note)" if r.source == "note" else ""
    turns = f"{r.turns} turn{'s' * (r.turns != 1)}"
    return f"run {r.id}: {r.status}, {_when(r.started)}, {turns}, tokens {tokens}, {cost}{check}{where}"


def _generated_lines(g: Generated) -> list[str]:
    i = g.impl
    mark = "current" if g.current else f"reverted by {i.reverted_by[:10]}" if i.reverted_by else "not current"
    lines = [f"  {i.sha[:10]} {i.subject!r} ({_when(i.time)}) [{mark}]"]
    if g.files:
        width = max(len(f.path) for f in g.files)
        lines += [f"      {f.path:<{width}}  +{f.added} -{f.removed}" for f in g.files]
    else:
        lines.append("      (no files changed: the agent found nothing to do)")
    if g.run:
        lines.append(f"      {_run_line(g.run)}")
    elif i.run_id:
        lines.append(f"      run {i.run_id}: no record or note of it in this clone (fetch refs/notes/mdspec)")
    return lines


def render(r: SpecReport) -> list[str]:
    lines = [
        f"spec commit {r.sha[:10]} {r.subject!r} ({r.author}, {_when(r.time)})",
        f"state: {STATE_TEXT[r.state]}",
        "",
        r.diff.rstrip("\n") or "(no textual change)",
        "",
    ]
    if r.generated:
        lines.append(f"generated commit{'s' * (len(r.generated) != 1)} that implemented it:")
        for g in r.generated:
            lines += _generated_lines(g)
    else:
        lines.append("no generated commit implemented it")
    if r.other_runs:
        lines.append("runs that landed no generated commit here:")
        for run in r.other_runs:
            lines.append(f"  {_run_line(run)}")
            if run.result:
                lines.append(f"      result {run.result[:10]} (kept under refs/mdspec/results/{run.id})")
            if run.reason:
                lines.append(f"      {run.reason}")
    return lines


def _run_dict(r: Run | None) -> dict[str, Any] | None:
    if r is None:
        return None
    d = asdict(r)
    d["tokens"] = dict(zip(TOKEN_KEYS, r.tokens, strict=True))
    return d


def as_dict(r: SpecReport) -> dict[str, Any]:
    return {
        "sha": r.sha,
        "subject": r.subject,
        "author": r.author,
        "time": r.time,
        "state": r.state,
        "on_branch": r.on_branch,
        "paths": list(r.paths),
        "hunks": [asdict(h) for h in r.hunks],
        "diff": r.diff,
        "generated": [
            {
                "sha": g.impl.sha,
                "subject": g.impl.subject,
                "time": g.impl.time,
                "run": g.impl.run_id or None,
                "check": g.impl.check or None,
                "current": g.current,
                "reverted_by": g.impl.reverted_by,
                "files": [asdict(f) for f in g.files],
                "run_record": _run_dict(g.run),
            }
            for g in r.generated
        ],
        "other_runs": [_run_dict(run) for run in r.other_runs],
    }
