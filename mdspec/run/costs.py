"""What runs cost: the cost fields of a run record, and the git note that carries them to every clone.

A cost is a number of dollars or *unknown* (no price for the model): unknown is never counted as $0,
because a $0 that stands for "not priced" hides real spending and never stops a run at max_cost_usd.
"""

from __future__ import annotations

import calendar
import contextlib
import re
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from mdspec import config, git
from mdspec.agents.session import Usage
from mdspec.errors import ConfigError, FatalError
from mdspec.fast import trailers
from mdspec.git import Repo
from mdspec.run.records import RunRecord, UsageRecord, all_runs

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
        raise ConfigError(
            f"{cfg.config_name}: agent.model: no price for {a.model}, so max_cost_usd = "
            f"${a.max_cost_usd:g} cannot be enforced: set {config.price_key(a.model)} in "
            f"{cfg.config_name} (input, output, cache_write, cache_read: USD per million tokens)"
        )


def spec_files(paths: Iterable[str]) -> list[str]:
    """The files among a run's changed spec paths, once each: a directory added or removed as a whole is
    listed along with its files, and only the files count."""
    found = list(dict.fromkeys(paths))
    return [p for p in found if not any(q.startswith(p + "/") for q in found)]


def usage_fields(u: Usage) -> UsageRecord:
    return {
        "input_tokens": u.input_tokens,
        "output_tokens": u.output_tokens,
        "cache_read_input_tokens": u.cache_read_input_tokens,
        "cache_creation_input_tokens": u.cache_creation_input_tokens,
    }


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


def record_cost(rec: RunRecord, usage: Usage, unknown: str | None) -> None:
    """Set the run record's usage and cost keys from a backend's result (the cost None when unknown)."""
    rec["usage"] = usage_fields(usage)
    rec["cost_usd"] = None if unknown else round(usage.cost_usd, 6)
    rec["cost_unknown"] = unknown


# --- the git note ------------------------------------------------------------------------------------


def add_note(repo: Repo, rec: RunRecord, sha: str) -> None:
    """The run's note on the commit that carries its result; it only informs, so a failure is no failure."""
    with contextlib.suppress(Exception):
        repo.add_note(sha, note_text(rec), NOTES_REF, repo.identity(), f"mdspec: note for run {rec['id']}")


def note_text(rec: Mapping[str, Any], now: float | None = None) -> str:
    """The note on a generated commit: the run's record in `key: value` lines, readable by people and by
    `parse_note` (a fresh clone has the notes but not the run records)."""
    started = rec.get("started")
    began = float(started) if isinstance(started, (int, float)) else time.time()
    lines = [
        f"mdspec run {rec['id']}",
        f"backend: {rec.get('backend')}",
        f"model: {rec.get('model') or '-'}",
        f"turns: {rec.get('turns', 0)}",
    ]
    lines += [f"{label}: {n}" for label, n in zip(NOTE_LABELS, tokens(rec), strict=True)]
    c = cost_of(rec)
    lines.append(f"cost: ${_dollars(c)}" if c is not None else f"cost: unknown ({unknown_why(rec)})")
    lines += [
        f"check: {rec.get('check')}",
        f"duration: {(now or time.time()) - began:.0f}s",
        f"started: {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(began))}",
    ]
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
    rec: dict[str, Any] = {
        "id": lines[0].removeprefix("mdspec run ").strip(),
        "usage": {},
        "spec_commits": [],
        "spec_files": [],
        "source": "note",
    }
    for line in lines[1:]:
        key, sep, value = line.partition(": ")
        if sep:
            _note_field(rec, key, value)
    if "cost_usd" not in rec:
        rec.update(cost_usd=None, cost_unknown="no cost in the note")
    return rec if rec["id"] else None


def _note_field(rec: dict[str, Any], key: str, value: str) -> None:
    """One `key: value` line of a note into the record."""
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
    elif key in ("spec commit", "spec file"):
        rec["spec_commits" if key == "spec commit" else "spec_files"].append(value)
    elif key in ("model", "backend"):
        rec[key] = "" if value == "-" else value
    elif key == "turns" and value.isdigit():
        rec["turns"] = int(value)
    elif key == "check":
        rec["check"] = value


def noted_runs(repo: Repo) -> list[dict[str, Any]]:
    """Every run recorded in refs/notes/mdspec, with `commit` (the noted commit) and, for notes written
    before they carried it, `started` from that commit's date."""
    if repo.resolve_ref(NOTES_REF) is None:
        return []
    pairs = [ln.split() for ln in git.run(["notes", f"--ref={NOTES_REF}", "list"], repo.top).stdout.splitlines()]
    pairs = [p for p in pairs if len(p) == 2]
    if not pairs:
        return []
    out = git.run(
        ["cat-file", "--batch"], repo.top, input="\n".join(b for b, _ in pairs) + "\n", errors="surrogateescape"
    ).stdout.encode("utf-8", "surrogateescape")
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


def every_run(repo: Repo) -> list[Mapping[str, Any]]:
    """Every run, once: the run records, then the runs that only the notes know (a fresh clone)."""
    state = repo.state_dir
    runs: list[Mapping[str, Any]] = [r for r in all_runs(state) if r.get("id") and r.get("status") != "unreadable"]
    seen = {str(r["id"]) for r in runs}
    for rec in noted_runs(repo):
        if rec["id"] not in seen:
            seen.add(rec["id"])
            runs.append(rec)
    return runs
