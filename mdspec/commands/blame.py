"""`mdspec blame FILE[:LINE[-LINE]]`: the spec words behind each line of code."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mdspec import printer
from mdspec.fast import paths
from mdspec.printer import Printer
from mdspec.trace import gitblame

if TYPE_CHECKING:
    from mdspec.trace.blame import Blame, Origin, SpecRef
    from mdspec.trace.sections import SpecHunk

HUNK_LINES = 6  # spec lines shown per hunk in text; --json has them all


def blame(start: Path, target: str, rev: str | None, as_json: bool, out: Printer) -> int:
    # git blame is the long part: start it first, and read the config and the repository while it works.
    dirs = paths.discover(str(start))
    started = None
    if dirs is not None:
        parsed = gitblame.parse_target(Path(dirs.top), target, start)
        started = gitblame.Blame(Path(dirs.top), parsed, rev)
    try:
        # Imported only now, while git works: pygit2 and the rest are most of mdspec's start-up.
        from mdspec import config
        from mdspec.git import Repo
        from mdspec.trace import blame as tracing

        repo = Repo(start)  # a repository mdspec cannot read says so here
        cfg = config.load(repo.top, required=False)
        found = tracing.blame(repo, cfg, gitblame.parse_target(repo.top, target, start), rev, started)
    except BaseException:
        if started is not None:
            started.close()
        raise
    return printer.report(out, as_json, lambda: as_dict(found), lambda: ["\n".join(render(found))])


def _day(t: int) -> str:
    return time.strftime("%Y-%m-%d", time.localtime(t)) if t else ""


def _where(h: SpecHunk) -> str:
    section = f" § {h.section}" if h.section else ""
    return f"{h.path}:{h.line}{section}"


def _spec_lines(spec: SpecRef) -> list[str]:
    moved = {
        "sha": "",
        "content": " (found by content: the history was rewritten)",
        "elsewhere": " (not on this branch: the trailer's commit, from another branch)",
        "squashed": " (squashed: the spec change came in this same commit)",
    }[spec.found]
    lines = [f"    implements {spec.sha[:10]} {spec.subject!r} ({spec.author}, {_day(spec.time)}){moved}"]
    for h in spec.hunks:
        lines.append(f"      {_where(h)}")
        shown = [f"        + {t}" for t in h.added if t.strip()] + [f"        - {t}" for t in h.removed if t.strip()]
        lines += shown[:HUNK_LINES]
        if len(shown) > HUNK_LINES:
            lines.append(f"        … {len(shown) - HUNK_LINES} more lines (--json has them all)")
    return lines


def _origin_lines(o: Origin) -> list[str]:
    if o.kind == "uncommitted":
        return ["    not committed yet: a change in the checkout"]
    if o.kind == "hand":
        return [f"    by hand: {o.sha[:10]} {o.subject!r} ({o.author}, {_day(o.time)}), not a generated commit"]
    check = f", check {o.check}" if o.check else ""
    lines = [f"    generated: {o.sha[:10]} {o.subject!r} (run {o.run_id or '?'}{check}, {_day(o.time)})"]
    for spec in o.specs:
        lines += _spec_lines(spec)
    lines += [f"    implements {s[:10]}: not in this clone's history (fetch it to see its words)" for s in o.missing]
    return lines


def render(b: Blame) -> list[str]:
    """Each group of lines with its code, then where it comes from; a commit seen before is referred back."""
    width = len(str(b.lines[-1].last)) if b.lines else 1
    seen: dict[str, str] = {}
    lines = [f"{b.path}" + (f" at {b.rev}" if b.rev else "")]
    for g in b.lines:
        span = f"{g.first}" if g.first == g.last else f"{g.first}-{g.last}"
        lines.append(f"lines {span}:" if g.first != g.last else f"line {span}:")
        lines += [f"  {n:>{width}}  {t}" for n, t in enumerate(g.text, g.first)]
        if g.sha and g.sha in seen:
            o = b.origins[g.sha]
            kind = "generated" if o.kind == "generated" else "by hand"
            lines.append(f"    {kind}: {g.sha[:10]} (as lines {seen[g.sha]} above)")
        else:
            lines += _origin_lines(b.origins[g.sha])
            seen.setdefault(g.sha, span)
    return lines


def _hunk(h: SpecHunk) -> dict[str, Any]:
    return {"path": h.path, "section": h.section, "line": h.line, "added": list(h.added), "removed": list(h.removed)}


def as_dict(b: Blame) -> dict[str, Any]:
    specs: dict[str, Any] = {}
    commits: dict[str, Any] = {}
    for sha, o in b.origins.items():
        if not sha:
            continue
        commits[sha] = {
            "kind": o.kind,
            "subject": o.subject,
            "author": o.author,
            "time": o.time,
            "run": o.run_id or None,
            "check": o.check or None,
            "implements": [s.sha for s in o.specs],
            "missing": list(o.missing),
        }
        for s in o.specs:
            specs[s.sha] = {
                "subject": s.subject,
                "author": s.author,
                "time": s.time,
                "found": s.found,
                "hunks": [_hunk(h) for h in s.hunks],
            }
    return {
        "file": b.path,
        "rev": b.rev,
        "lines": [{"first": g.first, "last": g.last, "commit": g.sha or None, "text": list(g.text)} for g in b.lines],
        "commits": commits,
        "specs": specs,
    }
