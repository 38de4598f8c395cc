"""What runs cost: the cost fields of a run record, the git note that carries them to every clone, and
`mdspec cost` (tokens and dollars per day and per spec file, from the run records and the notes).

A cost is a number of dollars or *unknown* (no price for the model): unknown is never counted as $0,
because a $0 that stands for "not priced" hides real spending and never stops a run at max_cost_usd.
"""

from __future__ import annotations

import calendar
import contextlib
import json
import re
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mdspec import config, git, records, trailers
from mdspec.errors import ConfigError, FatalError
from mdspec.git import Repo
from mdspec.globs import Globs
from mdspec.session import Usage

Printer = Callable[[str], None]
NOTES_REF = "refs/notes/mdspec"
# The four token counts of a record's `usage`, as the Messages API names them, and how they are shown.
TOKEN_KEYS = ("input_tokens", "output_tokens", "cache_read_input_tokens", "cache_creation_input_tokens")
TOKEN_LABELS = ("in", "out", "cache read", "cache write")
NOTE_LABELS = ("input tokens", "output tokens", "cache read tokens", "cache write tokens")


# --- one run -----------------------------------------------------------------------------------------


def unknown_reason(model: str) -> str:
    return f"no price for {model or 'the model'}"


def require_price(cfg: config.Config) -> None:
    """A built-in agent run needs its model's price, or max_cost_usd could not stop it: refuse to start."""
    a = cfg.agent
    if a.backend == "anthropic" and a.price() is None:
        raise ConfigError(f"{cfg.config_name}: agent.model: no price for {a.model}, so max_cost_usd = "
                          f"${a.max_cost_usd:g} cannot be enforced: set {config.price_key(a.model)} in "
                          f"{cfg.config_name} (input, output, cache_write, cache_read: USD per million tokens)")


def spec_files(paths: Iterable[str]) -> list[str]:
    """The files among a run's changed spec paths, once each: a directory added or removed as a whole is
    listed along with its files, and only the files count."""
    found = list(dict.fromkeys(paths))
    return [p for p in found if not any(q.startswith(p + "/") for q in found)]


def usage_fields(u: Usage) -> dict[str, int]:
    return {"input_tokens": u.input_tokens, "output_tokens": u.output_tokens,
            "cache_read_input_tokens": u.cache_read_input_tokens,
            "cache_creation_input_tokens": u.cache_creation_input_tokens}


def tokens(rec: Mapping[str, Any]) -> tuple[int, int, int, int]:
    """(input, output, cache read, cache write) of a record's `usage`; missing counts are 0."""
    u = rec.get("usage")
    u = u if isinstance(u, Mapping) else {}
    return tuple(_int(u.get(k)) for k in TOKEN_KEYS)  # type: ignore[return-value]


def _int(v: Any) -> int:
    return v if isinstance(v, int) and not isinstance(v, bool) and v >= 0 else 0


def cost_of(rec: Mapping[str, Any]) -> float | None:
    """The record's dollars; None when unknown. A record with no cost field and no tokens (a run that
    failed before its agent started) cost nothing."""
    if rec.get("cost_unknown"):
        return None
    v = rec.get("cost_usd")
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return float(v)
    return 0.0 if "cost_usd" not in rec and not any(tokens(rec)) else None


def unknown_why(rec: Mapping[str, Any]) -> str:
    return str(rec.get("cost_unknown") or unknown_reason(str(rec.get("model") or "")))


def describe(rec: Mapping[str, Any], digits: int = 4) -> str:
    """`$0.0123`, or `cost unknown (no price for MODEL)`."""
    c = cost_of(rec)
    return f"${c:.{digits}f}" if c is not None else f"cost unknown ({unknown_why(rec)})"


def tokens_text(rec: Mapping[str, Any]) -> str:
    """`1,200 in, 300 out, 5,000 cache read, 800 cache write`."""
    return ", ".join(f"{n:,} {label}" for n, label in zip(tokens(rec), TOKEN_LABELS, strict=True))


def record_fields(usage: Usage, unknown: str | None) -> dict[str, Any]:
    """The run record's usage and cost keys for a backend's result."""
    return {"usage": usage_fields(usage), "cost_usd": None if unknown else round(usage.cost_usd, 6),
            "cost_unknown": unknown}


# --- the git note ------------------------------------------------------------------------------------


def note_text(rec: Mapping[str, Any], now: float | None = None) -> str:
    """The note on a generated commit: the run's record in `key: value` lines, readable by people and by
    `parse_note` (a fresh clone has the notes but not the run records)."""
    started = rec.get("started")
    began = float(started) if isinstance(started, (int, float)) else time.time()
    lines = [f"mdspec run {rec['id']}", f"backend: {rec.get('backend')}", f"model: {rec.get('model') or '-'}",
             f"turns: {rec.get('turns', 0)}"]
    lines += [f"{label}: {n}" for label, n in zip(NOTE_LABELS, tokens(rec), strict=True)]
    c = cost_of(rec)
    lines.append(f"cost: ${_dollars(c)}" if c is not None else f"cost: unknown ({unknown_why(rec)})")
    lines += [f"check: {rec.get('check')}", f"duration: {(now or time.time()) - began:.0f}s",
              f"started: {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(began))}"]
    lines += [f"spec commit: {s}" for s in rec.get("spec_commits", [])]
    lines += [f"spec file: {p}" for p in rec.get("spec_files", [])]
    return "\n".join(lines) + "\n"


def _dollars(c: float) -> str:
    """Four places as people read dollars, six when that would drop a fraction of a cent the record has."""
    return f"{c:.4f}" if abs(c - round(c, 4)) < 5e-10 else f"{c:.6f}"


_COST = re.compile(r"^\$(\d+(?:\.\d+)?)$")
_UNKNOWN = re.compile(r"^unknown(?: \((.*)\))?$")


def parse_note(text: str) -> dict[str, Any] | None:
    """A record (id, model, usage, cost, started, spec commits and files) from a note; None if it is not one."""
    lines = text.splitlines()
    if not lines or not lines[0].startswith("mdspec run "):
        return None
    rec: dict[str, Any] = {"id": lines[0].removeprefix("mdspec run ").strip(), "usage": {}, "spec_commits": [],
                           "spec_files": [], "source": "note"}
    for line in lines[1:]:
        key, sep, value = line.partition(": ")
        if not sep:
            continue
        if key in NOTE_LABELS:
            rec["usage"][TOKEN_KEYS[NOTE_LABELS.index(key)]] = int(value) if value.isdigit() else 0
        elif key == "cost":
            known, unknown = _COST.match(value), _UNKNOWN.match(value)
            if known:
                rec["cost_usd"] = float(known.group(1))
            else:
                rec["cost_usd"] = None
                rec["cost_unknown"] = (unknown.group(1) if unknown else None) or "unreadable cost in the note"
        elif key == "started":
            with contextlib.suppress(ValueError):
                rec["started"] = float(calendar.timegm(time.strptime(value, "%Y-%m-%dT%H:%M:%SZ")))
        elif key == "spec commit":
            rec["spec_commits"].append(value)
        elif key == "spec file":
            rec["spec_files"].append(value)
        elif key in ("model", "backend"):
            rec[key] = "" if value == "-" else value
    if "cost_usd" not in rec:
        rec.update(cost_usd=None, cost_unknown="no cost in the note")
    return rec if rec["id"] else None


def noted_runs(repo: Repo) -> list[dict[str, Any]]:
    """Every run recorded in refs/notes/mdspec, with `commit` (the noted commit) and, for notes written
    before they carried it, `started` from that commit's date."""
    if repo.resolve_ref(NOTES_REF) is None:
        return []
    pairs = [ln.split() for ln in git.run(["notes", f"--ref={NOTES_REF}", "list"], repo.top).stdout.splitlines()]
    pairs = [p for p in pairs if len(p) == 2]
    if not pairs:
        return []
    out = git.run(["cat-file", "--batch"], repo.top, input="\n".join(b for b, _ in pairs) + "\n",
                  errors="surrogateescape").stdout.encode("utf-8", "surrogateescape")
    found = []
    pos = 0
    for _, commit in pairs:
        end = out.index(b"\n", pos)
        head = out[pos:end].split()
        size = int(head[2]) if len(head) == 3 and head[2].isdigit() else 0
        body = out[end + 1 : end + 1 + size].decode("utf-8", "replace")
        pos = end + 1 + size + 1
        rec = parse_note(body)
        if rec is None:
            continue
        rec["commit"] = commit
        if "started" not in rec or not rec["spec_commits"]:  # a note from before they were in it
            with contextlib.suppress(FatalError, ValueError):
                when, _, message = git.run(["log", "-1", "--format=%ct%n%B", commit], repo.top).stdout.partition("\n")
                rec.setdefault("started", float(when))
                rec["spec_commits"] = rec["spec_commits"] or trailers.values(message, trailers.IMPLEMENTS)
        found.append(rec)
    return found


# --- `mdspec cost` -----------------------------------------------------------------------------------


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
        d.update(cost_usd=None if self.unknown else round(self.known_usd, 6),
                 known_cost_usd=round(self.known_usd, 6), unknown_cost_runs=self.unknown)
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
        raise FatalError(f"--since {value!r}: expected a day as YYYY-MM-DD (such as 2026-11-01) or a number "
                         "of days (such as 7d)") from None


def _day(rec: Mapping[str, Any]) -> str:
    started = rec.get("started")
    return time.strftime("%Y-%m-%d", time.localtime(float(started))) if isinstance(started, (int, float)) else "?"


def _spec_files(repo: Repo, rec: Mapping[str, Any], watch: Globs) -> list[str]:
    """The watched files the run's spec commits changed: from the record, else from the commits."""
    files = rec.get("spec_files")
    if isinstance(files, list) and files:
        return [str(f) for f in files]
    from mdspec import pending  # late: only records from before `spec_files` need it

    found: dict[str, None] = {}
    for sha in rec.get("spec_commits", []) or []:
        try:
            found.update(dict.fromkeys(pending.spec_paths(repo, repo.commit(str(sha)), watch)))
        except (FatalError, ValueError, KeyError):
            continue
    return spec_files(found) or ["(unknown)"]


def gather(repo: Repo) -> list[dict[str, Any]]:
    """Every run, once: the run records, then the runs that only the notes know (a fresh clone)."""
    state = repo.common_dir / "mdspec"
    runs = [r for r in records.all_runs(state) if r.get("id") and r.get("status") != "unreadable"]
    seen = {str(r["id"]) for r in runs}
    for rec in noted_runs(repo):
        if rec["id"] not in seen:
            seen.add(rec["id"])
            runs.append(rec)
    return runs


def summarize(repo: Repo, since: str | None) -> dict[str, Any]:
    try:
        watch = Globs(config.load(repo.top, required=False).watch)
    except FatalError:
        watch = Globs(config.Config(path=None).watch)
    days: dict[str, Tally] = {}
    files: dict[str, Tally] = {}
    total = Tally()
    unknown: list[dict[str, Any]] = []
    for rec in gather(repo):
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
