"""`mdspec cost`: tokens and dollars per day and per spec file, from the run records and the git notes.

A cost is a number of dollars or *unknown* (no price for the model): unknown is never counted as $0.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mdspec import config
from mdspec.errors import FatalError
from mdspec.fast.globs import Globs
from mdspec.git import Repo
from mdspec.printer import Printer
from mdspec.run.costs import TOKEN_KEYS, cost_of, every_run, spec_files, tokens, unknown_why


@dataclass
class Tally:
    """Runs, tokens and dollars of a group of runs; `unknown` counts the runs whose cost is unknown."""

    runs: int = 0
    tokens: list[int] = field(default_factory=lambda: [0, 0, 0, 0])
    known_usd: float = 0.0
    unknown: int = 0

    def add(self, rec: Mapping[str, Any]) -> None:
        self.runs += 1
        self.tokens = [a + b for a, b in zip(self.tokens, tokens(rec), strict=True)]
        c = cost_of(rec)
        if c is None:
            self.unknown += 1
        else:
            self.known_usd += c

    def as_json(self) -> dict[str, Any]:
        d: dict[str, Any] = {"runs": self.runs, **dict(zip(TOKEN_KEYS, self.tokens, strict=True))}
        d.update(
            cost_usd=None if self.unknown else round(self.known_usd, 6),
            known_cost_usd=round(self.known_usd, 6),
            unknown_cost_runs=self.unknown,
        )
        return d

    def cost_text(self) -> str:
        if not self.unknown:
            return f"${self.known_usd:.4f}"
        if self.unknown == self.runs:
            return "unknown"
        return f"${self.known_usd:.4f} + {self.unknown} unknown"


def parse_since(value: str, now: float | None = None) -> str:
    """`--since`: a day as YYYY-MM-DD, or `Nd` for the last N days (today counts as one); the first day."""
    v = value.strip()
    m = re.fullmatch(r"(\d{1,5})d", v)
    if m:
        days = int(m.group(1))
        if days < 1:
            raise FatalError(f"--since {value!r}: expected at least 1d (1d is today)")
        return time.strftime("%Y-%m-%d", time.localtime((now or time.time()) - (days - 1) * 86400))
    try:
        return time.strftime("%Y-%m-%d", time.strptime(v, "%Y-%m-%d"))
    except ValueError:
        raise FatalError(
            f"--since {value!r}: expected a day as YYYY-MM-DD (such as 2026-11-01) or a number of days (such as 7d)"
        ) from None


def _day(rec: Mapping[str, Any]) -> str:
    started = rec.get("started")
    return time.strftime("%Y-%m-%d", time.localtime(float(started))) if isinstance(started, (int, float)) else "?"


def _spec_files(repo: Repo, rec: Mapping[str, Any], watch: Globs) -> list[str]:
    """The watched files the run's spec commits changed: from the record, else from the commits."""
    files = rec.get("spec_files")
    if isinstance(files, list) and files:
        return [str(f) for f in files]
    from mdspec.run import pending  # late: only records from before `spec_files` need it

    found: dict[str, None] = {}
    for sha in rec.get("spec_commits", []) or []:
        try:
            found.update(dict.fromkeys(pending.spec_paths(repo, repo.commit(str(sha)), watch)))
        except (FatalError, ValueError, KeyError):
            continue
    return spec_files(found) or ["(unknown)"]


def summarize(repo: Repo, since: str | None) -> dict[str, Any]:
    try:
        watch = Globs(config.load(repo.top, required=False).watch)
    except FatalError:
        watch = Globs(config.Config(path=None).watch)
    days: dict[str, Tally] = {}
    files: dict[str, Tally] = {}
    total = Tally()
    unknown: list[dict[str, Any]] = []
    for rec in every_run(repo):
        day = _day(rec)
        if since and (day == "?" or day < since):
            continue
        total.add(rec)
        days.setdefault(day, Tally()).add(rec)
        for f in _spec_files(repo, rec, watch):
            files.setdefault(f, Tally()).add(rec)
        if cost_of(rec) is None:
            unknown.append({"run": rec["id"], "reason": unknown_why(rec)})
    return {
        "since": since,
        "days": [{"day": d, **t.as_json()} for d, t in sorted(days.items())],
        "spec_files": [{"file": f, **t.as_json()} for f, t in sorted(files.items())],
        "total": total.as_json(),
        "unknown_cost": unknown,
        "_tallies": (days, files, total),
    }


def _table(rows: Iterable[tuple[str, Tally]], first: str) -> list[str]:
    rows = list(rows)
    width = max([len(first), *(len(name) for name, _ in rows)])
    head = f"{first:<{width}}  {'runs':>4}  {'in':>10}  {'out':>10}  {'cache read':>12}  {'cache write':>12}  cost"
    lines = [head]
    for name, t in rows:
        i, o, r, w = t.tokens
        lines.append(f"{name:<{width}}  {t.runs:>4}  {i:>10,}  {o:>10,}  {r:>12,}  {w:>12,}  {t.cost_text()}")
    return lines


def report(start: Path, since: str | None, as_json: bool, out: Printer) -> int:
    first = parse_since(since) if since is not None else None
    repo = Repo(start)
    info = summarize(repo, first)
    days, files, total = info.pop("_tallies")
    if as_json:
        out(json.dumps(info, indent=2, sort_keys=True))
        return 0
    span = f"since {first}" if first else "all runs"
    if not total.runs:
        out(f"mdspec cost: no runs ({span})")
        return 0
    out(f"mdspec cost: {total.runs} run{'s' * (total.runs != 1)} ({span}), tokens and US dollars")
    out("")
    for line in _table(sorted(days.items()), "day"):
        out(line)
    out("")
    for line in _table(sorted(files.items()), "spec file"):
        out(line)
    out("")
    for line in _table([("total", total)], "")[1:]:
        out(line)
    if len(files) > 1:
        out("(a run that changed several spec files counts under each of them)")
    for u in info["unknown_cost"]:
        out(f"cost unknown: run {u['run']} ({u['reason']})")
    return 0
