"""`mdspec show`'s data: a spec commit's change, everything that implemented it, and where it stands now.

The generated commits come from the history (any clone); the runs from the run records and, on a clone
without them, from the git notes. A run that made no generated commit on the branch (superseded, held,
failed, empty, cancelled) is found by the spec sha its record names.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from mdspec.config import Config
from mdspec.errors import FatalError
from mdspec.fast import trailers
from mdspec.fast.globs import Globs
from mdspec.git import FileChange, Repo
from mdspec.run import costs, pending, records
from mdspec.trace import history, sections
from mdspec.trace.history import Implementation
from mdspec.trace.sections import SpecHunk

DIFF_LIMIT = 200_000  # characters of the spec diff carried; a spec change is prose, this is plenty
State = Literal["implemented", "reverted", "pending", "not on the branch"]


@dataclass(frozen=True)
class Run:
    id: str
    status: str  # the run record's status; "landed" for a run only a note knows
    started: float | None
    turns: int
    tokens: tuple[int, int, int, int]  # input, output, cache read, cache write
    cost_usd: float | None
    cost_unknown: str  # why the cost is unknown, "" when known
    check: str
    reason: str
    result: str  # the result commit, kept under refs/mdspec/results/<id> when it did not land ("" if none)
    source: Literal["record", "note"]


@dataclass(frozen=True)
class Generated:
    impl: Implementation
    files: tuple[FileChange, ...]
    run: Run | None
    current: bool  # on the branch and not reverted


@dataclass(frozen=True)
class SpecReport:
    sha: str
    subject: str
    author: str
    time: int
    paths: tuple[str, ...]
    hunks: tuple[SpecHunk, ...]
    diff: str
    generated: tuple[Generated, ...]  # oldest first
    other_runs: tuple[Run, ...]  # runs of it that made no generated commit in this history, oldest first
    state: State
    on_branch: bool


class NotASpecCommit(FatalError):
    pass


def report(repo: Repo, cfg: Config, rev: str) -> SpecReport:
    sha = _resolve(repo, rev)
    info = repo.commit(sha)
    watch = Globs(cfg.watch)
    if trailers.is_generated(info.message):
        named = ", ".join(s[:10] for s, _ in trailers.implements(info.message)) or "none"
        raise NotASpecCommit(
            f"{rev}: {info.short} is a generated commit (it implements {named}): "
            "give a spec commit, or `mdspec blame` a file it changed"
        )
    paths = pending.spec_paths(repo, info, watch)
    if not paths:
        raise NotASpecCommit(
            f"{rev}: {info.short} changes no watched path ({', '.join(cfg.watch)}): give a commit that changes the spec"
        )
    tip = repo.rev_parse("HEAD")
    on_branch = repo.descends(tip, sha)
    hist = history.load(repo, tip, cfg, stop_at=sha if on_branch else None)
    impls = hist.implementations(sha) or tuple(g for g in hist.generated if sha in g.named)
    runs = _runs(repo)
    by_id = {r.id: r for r, _ in runs}
    if any(g.run_id not in by_id and _noted(repo, g) is None for g in impls):
        # A rebase leaves the note on the old commit: find the run among all the notes by its id.
        by_id.update({r.id: r for r in map(_run, costs.noted_runs(repo)) if r.id not in by_id})
    generated = tuple(
        Generated(g, tuple(repo.file_changes(g.sha)), by_id.get(g.run_id) or _noted(repo, g), g.reverted_by is None)
        for g in impls
    )
    used = {g.run_id for g in impls}
    others = tuple(sorted((r for r, specs in runs if r.id not in used and sha in specs), key=lambda r: r.started or 0))
    files = tuple(p for p in paths if repo.entry_at(sha, p) is not None or _in_parent(repo, info.parents, p))
    hunks = tuple(sections.spec_hunks(repo, sha, files))
    parent = info.parents[0] if info.parents else None
    return SpecReport(
        sha=sha,
        subject=info.subject,
        author=info.author_name,
        time=info.time,
        paths=files,
        hunks=hunks,
        diff=repo.diff_text(parent, sha, list(files), DIFF_LIMIT),
        generated=generated,
        other_runs=others,
        state=_state(generated, on_branch),
        on_branch=on_branch,
    )


def _resolve(repo: Repo, rev: str) -> str:
    try:
        return repo.rev_parse(rev)
    except FatalError:
        # a one-line error naming the revision beats git's "ambiguous argument" wording
        raise NotASpecCommit(
            f"{rev}: no such commit here (give a sha, branch or tag; fetch it if it is elsewhere)"
        ) from None


def _in_parent(repo: Repo, parents: tuple[str, ...], path: str) -> bool:
    return bool(parents) and repo.entry_at(parents[0], path) is not None


def _state(generated: tuple[Generated, ...], on_branch: bool) -> State:
    if any(g.current for g in generated):
        return "implemented"
    if not on_branch:
        return "not on the branch"
    return "reverted" if generated else "pending"


def _runs(repo: Repo) -> list[tuple[Run, tuple[str, ...]]]:
    """Every run on record in this clone, with the spec commits it names."""
    recs = [r for r in records.all_runs(repo.state_dir) if r.get("status") != records.UNREADABLE]
    return [(_run(rec), tuple(str(s) for s in rec.get("spec_commits", []) or [])) for rec in recs]


def _noted(repo: Repo, g: Implementation) -> Run | None:
    """The run of a generated commit from its git note (a clone without the run records): read for this
    commit alone, not the whole notes ref."""
    text = repo.note(g.sha, costs.NOTES_REF)
    rec = costs.parse_note(text) if text else None
    return _run(rec) if rec else None


def _run(rec: Mapping[str, Any]) -> Run:
    started = rec.get("started")
    from_note = rec.get("source") == "note"
    c = costs.cost_of(rec)
    return Run(
        id=str(rec["id"]),
        status="landed" if from_note else str(rec.get("status", "")),
        started=float(started) if isinstance(started, (int, float)) else None,
        turns=int(rec.get("turns", 0) or 0),
        tokens=costs.tokens(rec),
        cost_usd=c,
        cost_unknown="" if c is not None else costs.unknown_why(rec),
        check=str(rec.get("check") or ""),
        reason=str(rec.get("reason") or ""),
        result=str(rec.get("result") or ""),
        source="note" if from_note else "record",
    )
