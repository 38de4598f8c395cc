"""`mdspec log [RUN] [-f]`: what a run did, turn by turn, from its record and events (or its git note)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from mdspec.commands.status import summary_line, tokens_line
from mdspec.errors import FatalError
from mdspec.fast import triggers
from mdspec.git import Repo
from mdspec.printer import Printer
from mdspec.run import costs as cost
from mdspec.run import records
from mdspec.run.lock import lock_holder
from mdspec.run.records import RunRecord


def _print_run(rdir: Path, out: Printer) -> RunRecord:
    rec = records.read(rdir)
    out(f"run {rec.get('id')}: {rec.get('status')}" + (f" — {rec['reason']}" if rec.get("reason") else ""))
    out(f"  usage: {summary_line(rec)}")
    for key in ("branch", "base", "backend", "model", "sandbox", "check", "result", "landed_as", "seconds"):
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
        line = f"  turn {ev.get('turn')}"
        if ev.get("stop_reason"):
            line += f": {ev['stop_reason']}"
        tokens = tokens_line({"usage": ev.get("usage") or {}})
        return line + (f", {tokens} so far" if tokens else "") + f", {cost.describe(ev, 3)} so far"
    if kind == "tool":
        mark = " (refused/error)" if ev.get("is_error") else ""
        return f"  {ev.get('name')}: {str(ev.get('summary', ''))[:160]}{mark}"
    if kind == "warning":
        return f"  warning: {ev.get('message')}"
    if kind == "check":
        return f"  check round {ev.get('round')}: {ev.get('summary')}"
    if kind == "stage" and ev.get("stage") in ("check", "landing"):
        return f"  {ev['stage']}…"
    return None


FOLLOW_START = 30.0  # seconds `log -f` waits for a queued or starting run to appear


def _run_to_follow(state: Path, run: str | None) -> Path | None:
    """The run `log -f` follows: the named one, the running one, or the one a live worker is about to start."""
    if run is not None:
        return records.find_run(state, run)
    deadline = time.monotonic() + FOLLOW_START
    while True:
        newest = records.find_run(state, None)
        if newest is not None and records.read(newest).get("status") == records.RUNNING:
            return newest
        waiting = lock_holder(state) is not None or bool(triggers.entries(str(state)))
        if not waiting or time.monotonic() > deadline:
            return newest
        time.sleep(0.1)


def _notes_instead(repo: Repo, run: str | None, follow: bool, out: Printer) -> int:
    """No run record here: a clone where the run happened elsewhere (CI) has its git note, or nothing."""
    from mdspec.commands import ci

    local = records.runs_dir(repo.state_dir)
    ours = [d for d in local.iterdir() if d.name.startswith(run or "")] if local.is_dir() else []
    if not follow and not ours and ci.log_from_notes(repo, run, out):
        return 0
    raise FatalError(f"no run {'matching ' + repr(run) if run else 'yet'}: `mdspec status` lists the runs")


def _print_events(events: Path, pos: int, out: Printer) -> int:
    """The whole lines of events.jsonl from byte `pos` on; where the next read starts."""
    if not events.exists():
        return pos
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
    return pos


def _follow(rdir: Path, state: Path, follow: bool, out: Printer) -> None:
    """Print the run's events; with `follow`, until the run ends (or its worker is gone)."""
    rec = records.read(rdir)
    pos = 0
    while True:
        pos = _print_events(rdir / "events.jsonl", pos, out)
        if not follow or rec.get("status") != records.RUNNING:
            return
        if lock_holder(state) is None:
            rec = records.read(rdir)
            if rec.get("status") == records.RUNNING:
                out("  the worker stopped before the run finished; `mdspec run` recovers")
                return
            continue  # it ended between our reads: print the last events
        time.sleep(0.2)
        rec = records.read(rdir)


def _print_outputs(rdir: Path, out: Printer) -> None:
    for name in ("output.log", "check.log", "error.log"):
        p = rdir / name
        if p.exists():
            text = p.read_text(encoding="utf-8", errors="replace")
            out(f"--- {name} ({len(text)} chars{', last 4000' if len(text) > 4000 else ''})")
            out(text[-4000:].rstrip())
    if (rdir / "transcript.jsonl").exists():
        out(f"--- transcript: {rdir / 'transcript.jsonl'}")


def log(start: Path, run: str | None, follow: bool, out: Printer) -> int:
    repo = Repo(start)
    state = repo.state_dir
    rdir = _run_to_follow(state, run) if follow else records.find_run(state, run)
    if rdir is None:
        return _notes_instead(repo, run, follow, out)
    _print_run(rdir, out)
    _follow(rdir, state, follow, out)
    if not follow:
        _print_outputs(rdir, out)
        return 0
    rec = records.read(rdir)
    out(f"  usage: {summary_line(rec)}")
    out(f"run {rec.get('id')}: {rec.get('status')}" + (f" — {rec['reason']}" if rec.get("reason") else ""))
    if rec.get("landed_as"):
        out(f"  landed as {rec['landed_as'][:10]}")
    return 0
