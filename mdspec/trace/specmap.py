"""The spec map: for each spec file and each `## ` section in it, the code files its spec commits'
generated commits changed over history, with counts; and the inverse, the spec sections behind a code file.

A spec commit maps to every section its changed words sit in: an added line to the section it sits in the
version the commit made, a removed line to the one it sat in before (blank lines carry no words and map to
nothing, unless a hunk has nothing else). A generated commit's files count under every section of every
spec commit it implements, since the code cannot be split finer than the commit. A reverted generated
commit is counted apart: it produced nothing that stands. Files under the notes directory are the agent's
notes, not code, and are left out.

Per-commit work is done in process (tree diffs through mdspec.git) and each commit is diffed once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from mdspec import git
from mdspec.git import Repo
from mdspec.run import costs
from mdspec.trace.history import History, Implementation
from mdspec.trace.sections import Headings, spec_sections

Progress = Callable[[str], None]


@dataclass(frozen=True)
class Lines:
    """How many commits changed something, and the lines they added and removed."""

    commits: int = 0
    added: int = 0
    removed: int = 0

    def as_json(self) -> dict[str, int]:
        return {"commits": self.commits, "added": self.added, "removed": self.removed}


@dataclass(frozen=True)
class CodeFile:
    """A code file and what generated commits did to it: `produced` by those that stand, `reverted` by
    those undone since."""

    path: str
    produced: Lines
    reverted: Lines

    def as_json(self) -> dict[str, Any]:
        return {"path": self.path, "produced": self.produced.as_json(), "reverted": self.reverted.as_json()}


@dataclass(frozen=True)
class Section:
    name: str  # the `## ` heading's text; "" for the lines above the first heading
    present: bool  # whether the spec file has this heading at the tip
    spec_commits: int
    code: tuple[CodeFile, ...]

    def as_json(self) -> dict[str, Any]:
        return {
            "section": self.name,
            "present": self.present,
            "spec_commits": self.spec_commits,
            "code": [c.as_json() for c in self.code],
        }


@dataclass(frozen=True)
class RunEntry:
    """One run behind a spec file, for its cost and timeline."""

    run_id: str
    started: float | None  # epoch seconds
    generated: str | None  # its generated commit in this history
    subject: str  # the generated commit's subject ("" when not in this history)
    tokens: tuple[int, int, int, int] | None  # input, output, cache read, cache write; None: no record
    cost_usd: float | None  # None: unknown (no price for the model), never $0
    state: str  # landed, reverted, or the run record's status (held, failed, …)

    def as_json(self) -> dict[str, Any]:
        return {
            "run": self.run_id,
            "started": self.started,
            "generated": self.generated,
            "subject": self.subject,
            **dict(zip(costs.TOKEN_KEYS, self.tokens or (None,) * 4, strict=True)),
            "cost_usd": self.cost_usd,
            "state": self.state,
        }


@dataclass(frozen=True)
class SpecFile:
    path: str
    spec_commits: int
    sections: tuple[Section, ...]  # in the file's order at the tip, then those gone from it
    code: tuple[CodeFile, ...]  # the whole file's, each generated commit counted once
    runs: tuple[RunEntry, ...]  # oldest first

    @property
    def known_cost(self) -> float:
        return sum(r.cost_usd for r in self.runs if r.cost_usd is not None)

    @property
    def unknown_cost_runs(self) -> int:
        return sum(1 for r in self.runs if r.cost_usd is None)

    def as_json(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "spec_commits": self.spec_commits,
            "sections": [s.as_json() for s in self.sections],
            "code": [c.as_json() for c in self.code],
            "runs": [r.as_json() for r in self.runs],
            "cost_usd": None if self.unknown_cost_runs else round(self.known_cost, 6),
            "known_cost_usd": round(self.known_cost, 6),
            "unknown_cost_runs": self.unknown_cost_runs,
        }


@dataclass(frozen=True)
class Origin:
    """A spec section behind a code file, with what its generated commits did to the file."""

    spec_file: str
    section: str
    produced: Lines
    reverted: Lines

    def as_json(self) -> dict[str, Any]:
        return {
            "spec_file": self.spec_file,
            "section": self.section,
            "produced": self.produced.as_json(),
            "reverted": self.reverted.as_json(),
        }


@dataclass(frozen=True)
class CodeOrigins:
    """The inverse for one code file: the spec sections behind it, and the commits not made by a run."""

    path: str
    produced: Lines
    reverted: Lines
    origins: tuple[Origin, ...]
    other: Lines | None  # commits that are not generated commits (edits by hand, reverts); None: not read

    def as_json(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "produced": self.produced.as_json(),
            "reverted": self.reverted.as_json(),
            "specs": [o.as_json() for o in self.origins],
            "not_generated": self.other.as_json() if self.other is not None else None,
        }


@dataclass(frozen=True)
class SpecMap:
    tip: str
    files: tuple[SpecFile, ...]  # by path
    code: tuple[CodeFile, ...]  # every code file a generated commit changed, by path
    generated: int  # generated commits attributed to a spec commit of this history
    reverted: int  # of which reverted
    unattributed: int  # generated commits whose spec commits are not in this history
    # Filled on first use: path -> the sections behind it, and path -> its CodeFile.
    _by_code: dict[str, tuple[Origin, ...]] = field(default_factory=dict, repr=False, compare=False)
    _whole: dict[str, CodeFile] = field(default_factory=dict, repr=False, compare=False)

    def spec_file(self, path: str) -> SpecFile | None:
        return next((f for f in self.files if f.path == path), None)

    def code_file(self, path: str) -> CodeFile | None:
        if not self._whole:
            self._whole.update((c.path, c) for c in self.code)
        return self._whole.get(path)

    def origins(self, path: str, other: Lines | None = None) -> CodeOrigins:
        """The spec sections behind a code file, most generated commits first."""
        if not self._by_code:
            self._by_code.update(_index(self.files))
        whole = self.code_file(path)
        return CodeOrigins(
            path,
            whole.produced if whole else Lines(),
            whole.reverted if whole else Lines(),
            self._by_code.get(path, ()),
            other,
        )


def _index(files: Iterable[SpecFile]) -> dict[str, tuple[Origin, ...]]:
    found: dict[str, list[Origin]] = {}
    for f in files:
        for s in f.sections:
            for c in s.code:
                found.setdefault(c.path, []).append(Origin(f.path, s.name, c.produced, c.reverted))
    return {p: tuple(sorted(v, key=_origin_order)) for p, v in found.items()}


def _origin_order(o: Origin) -> tuple[int, int, str]:
    return (-o.produced.commits, -o.reverted.commits, o.spec_file)


# --- computing it --------------------------------------------------------------------------------------


@dataclass
class _Acc:
    """Counts being gathered: each generated commit once per key."""

    produced: dict[str, tuple[int, int]] = field(default_factory=dict)
    reverted: dict[str, tuple[int, int]] = field(default_factory=dict)

    def add(self, sha: str, added: int, removed: int, undone: bool) -> None:
        (self.reverted if undone else self.produced)[sha] = (added, removed)

    @staticmethod
    def _lines(d: Mapping[str, tuple[int, int]]) -> Lines:
        return Lines(len(d), sum(a for a, _ in d.values()), sum(r for _, r in d.values()))

    def code(self, path: str) -> CodeFile:
        return CodeFile(path, self._lines(self.produced), self._lines(self.reverted))


def _sorted_code(acc: Mapping[str, _Acc]) -> tuple[CodeFile, ...]:
    """Most produced first: the files a section is mostly about lead."""
    files = [a.code(p) for p, a in acc.items()]
    files.sort(
        key=lambda c: (-c.produced.commits, -(c.produced.added + c.produced.removed), -c.reverted.commits, c.path)
    )
    return tuple(files)


def compute(
    repo: Repo,
    history: History,
    runs: Iterable[Mapping[str, Any]] = (),
    notes_dir: str = "notes",
    progress: Progress | None = None,
) -> SpecMap:
    """The spec map of a history; `runs` are the run records and notes (costs.every_run) for the timeline."""
    heads = Headings(repo)
    sections_of: dict[str, set[tuple[str, str]]] = {}
    for spec in history.specs:
        sections_of[spec.sha] = spec_sections(repo, spec.sha, spec.paths, heads)
    spec_count: dict[tuple[str, str], int] = {}
    file_specs: dict[str, int] = {}
    for spec in history.specs:
        keys = sections_of[spec.sha]
        for key in keys:
            spec_count[key] = spec_count.get(key, 0) + 1
        for path in {p for p, _ in keys}:
            file_specs[path] = file_specs.get(path, 0) + 1

    by_section: dict[tuple[str, str], dict[str, _Acc]] = {}
    by_file: dict[str, dict[str, _Acc]] = {}
    whole: dict[str, _Acc] = {}
    attributed = reverted = unattributed = 0
    gens = [g for g in history.generated if g.specs]
    unattributed = len(history.generated) - len(gens)
    notes = notes_dir.strip("/") + "/"
    for n, g in enumerate(gens, 1):
        if progress:
            progress(f"diffed {n:,} of {len(gens):,} generated commits")
        attributed += 1
        undone = g.reverted_by is not None
        reverted += undone
        changes = [c for c in repo.file_changes(g.sha) if not c.path.startswith(notes)]
        keys = set().union(*(sections_of.get(s, set()) for s in g.specs))
        for c in changes:
            whole.setdefault(c.path, _Acc()).add(g.sha, c.added, c.removed, undone)
            for key in keys:
                by_section.setdefault(key, {}).setdefault(c.path, _Acc()).add(g.sha, c.added, c.removed, undone)
            for path in {p for p, _ in keys}:
                by_file.setdefault(path, {}).setdefault(c.path, _Acc()).add(g.sha, c.added, c.removed, undone)

    timeline = _timelines(history, runs)
    files = []
    for path in sorted(file_specs):
        tip_heads = [text for _, text in heads(history.tip, path)]
        names = {s for p, s in spec_count if p == path}
        order = sorted(names, key=lambda s: (s not in tip_heads, tip_heads.index(s) if s in tip_heads else 0, s))
        if "" in order:  # the lines above the first heading come first, as in the file
            order.remove("")
            order.insert(0, "")
        sections = tuple(
            Section(
                s,
                s in tip_heads or (s == "" and repo.tree_has(history.tip, path)),
                spec_count[(path, s)],
                _sorted_code(by_section.get((path, s), {})),
            )
            for s in order
        )
        files.append(
            SpecFile(path, file_specs[path], sections, _sorted_code(by_file.get(path, {})), timeline.get(path, ()))
        )
    code = tuple(sorted((a.code(p) for p, a in whole.items()), key=lambda c: c.path))
    return SpecMap(history.tip, tuple(files), code, attributed, reverted, unattributed)


def _timelines(history: History, runs: Iterable[Mapping[str, Any]]) -> dict[str, tuple[RunEntry, ...]]:
    """spec file -> the runs of this history that implemented its spec commits, oldest first."""
    by_run: dict[str, Implementation] = {g.run_id: g for g in history.generated if g.run_id}
    spec_paths = {s.sha: s.paths for s in history.specs}
    out: dict[str, list[RunEntry]] = {}
    seen: set[str] = set()
    for rec in runs:
        run_id = str(rec.get("id") or "")
        if not run_id or run_id in seen:
            continue
        impl = by_run.get(run_id)
        named = [str(s) for s in rec.get("spec_commits") or [] if str(s) in spec_paths]
        if impl is None and not named:
            continue  # a run of another branch, or of history this one no longer has
        seen.add(run_id)
        shas = impl.specs if impl is not None and impl.specs else tuple(named)
        paths = {p for s in shas for p in spec_paths.get(s, ())}
        if not paths:
            paths = {str(p) for p in rec.get("spec_files") or []}
        if impl is not None:
            state = "reverted" if impl.reverted_by else "landed"
        else:
            state = str(rec.get("status") or "not on this branch")
        started = rec.get("started")
        entry = RunEntry(
            run_id=run_id,
            started=float(started) if isinstance(started, (int, float)) else (float(impl.time) if impl else None),
            generated=impl.sha if impl else None,
            subject=impl.subject if impl else "",
            tokens=costs.tokens(rec),
            cost_usd=costs.cost_of(rec),
            state=state,
        )
        for p in paths:
            out.setdefault(p, []).append(entry)
    # A generated commit is a run's result even where no record or note of the run is at hand (a clone
    # whose notes were not fetched): shown with what the commit tells, its cost unknown.
    for g in history.generated:
        if (g.run_id and g.run_id in seen) or not g.specs:
            continue
        entry = RunEntry(
            run_id=g.run_id or "?",
            started=float(g.time),
            generated=g.sha,
            subject=g.subject,
            tokens=None,
            cost_usd=None,
            state="reverted" if g.reverted_by else "landed",
        )
        for p in {p for s in g.specs for p in spec_paths.get(s, ())}:
            out.setdefault(p, []).append(entry)
    # Notes keep a run's start to the second, records to the microsecond: within one second, runs are told
    # apart by where their generated commits stand in the history, so a clone with only the notes orders
    # them as the clone with the records does.
    position = {g.sha: n for n, g in enumerate(history.generated)}

    def order(r: RunEntry) -> tuple[int, int, float, str]:
        started = r.started or 0.0
        return (int(started), position.get(r.generated or "", len(position)), started, r.run_id)

    return {p: tuple(sorted(v, key=order)) for p, v in out.items()}


# --- the inverse's commits not made by a run ---------------------------------------------------------------


def other_changes(repo: Repo, tip: str, pathspecs: Sequence[str], generated: Iterable[str]) -> dict[str, Lines]:
    """file -> the commits reachable from `tip` that changed it and are not generated commits (edits by
    hand, reverts), with their lines; one `git log` for all of `pathspecs` (files or directories), merges
    left out."""
    skip = set(generated)
    out = git.run(
        [
            "-c",
            "core.quotePath=false",
            "log",
            "--no-merges",
            "--no-renames",
            "--numstat",
            "--format=@%H",
            tip,
            "--",
            *pathspecs,
        ],
        repo.top,
    ).stdout
    acc: dict[str, dict[str, tuple[int, int]]] = {}
    sha = ""
    for line in out.splitlines():
        if line.startswith("@"):
            sha = line[1:]
            continue
        parts = line.split("\t", 2)
        if len(parts) != 3 or sha in skip:
            continue
        a, r = (int(x) if x.isdigit() else 0 for x in parts[:2])
        acc.setdefault(parts[2], {})[sha] = (a, r)
    return {p: Lines(len(d), sum(x for x, _ in d.values()), sum(y for _, y in d.values())) for p, d in acc.items()}
