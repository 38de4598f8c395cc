"""The history behind traceability: which spec commits the history holds, which generated commits
implemented them, and which of those were undone since.

Built from git's own data only (commit messages and their trailers), so it reads the same on any clone.
A generated commit names its spec commits by sha and by content (trailers.PATCH_ID); a name whose sha is
not a spec commit of this history (rebased, reworded, cherry-picked, squashed) is matched by content to the
newest spec commit older than the generated commit with the same patch-id, as the pending set does
(DESIGN §3.2). Patch-ids are computed only when such a name is left over, in one batch.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

from mdspec.config import Config
from mdspec.fast import trailers
from mdspec.fast.globs import Globs
from mdspec.git import CommitInfo, Repo
from mdspec.run import pending

HISTORY_LIMIT = 100_000  # commits read at most: traceability looks further back than the pending set
_REVERTS = re.compile(r"This reverts commit ([0-9a-f]{64}|[0-9a-f]{40})\b")


@dataclass(frozen=True)
class SpecChange:
    """A spec commit: a commit that changed watched paths (not a generated commit, not a merge)."""

    sha: str
    subject: str
    time: int  # committer time, epoch seconds
    author: str
    paths: tuple[str, ...]  # the watched paths it changed


@dataclass(frozen=True)
class Implementation:
    """A generated commit in the history and what it implements."""

    sha: str
    subject: str
    time: int
    run_id: str
    check: str
    named: tuple[str, ...]  # the spec shas its trailers name
    specs: tuple[str, ...]  # the spec commits of this history it implements (by sha, else by content)
    reverted_by: str | None  # the commit of this history that reverts it (git revert, mdspec revert)


@dataclass(frozen=True)
class History:
    tip: str
    specs: tuple[SpecChange, ...]  # oldest first
    generated: tuple[Implementation, ...]  # oldest first
    _by_spec: dict[str, tuple[Implementation, ...]] = field(default_factory=dict, repr=False, compare=False)

    def spec(self, sha: str) -> SpecChange | None:
        return next((s for s in self.specs if s.sha == sha), None)

    def implementations(self, spec_sha: str) -> tuple[Implementation, ...]:
        """The generated commits that implemented a spec commit, oldest first."""
        return self._by_spec.get(spec_sha, ())


@dataclass(frozen=True)
class _Gen:
    info: CommitInfo
    named: tuple[tuple[str, str | None], ...]  # (sha, patch-id) as the trailers name them
    order: int  # position in the walk, newest first
    run: str
    check: str


def load(
    repo: Repo,
    tip: str,
    cfg: Config,
    limit: int = HISTORY_LIMIT,
    progress: Callable[[int], None] | None = None,
    stop_at: str | None = None,
) -> History:
    """Read the history reachable from `tip` (merged branches too). `progress` is told how many commits
    have been read, every 1,000. With `stop_at` (a commit reachable from `tip`), only what does not come
    before it is read: the commit and everything since (its descendants, and branches merged in after
    it), which is all that can implement or revert it; and when every generated commit there names its
    spec commits by a sha of that window, only those and `stop_at` are read as spec commits (`specs`
    holds just them): no name is left to match by content, so the rest cannot matter."""
    watch = Globs(cfg.watch)
    specs: list[tuple[int, SpecChange]] = []  # newest first
    raw: dict[str, tuple[str, ...]] = {}  # spec sha -> its watched paths as the pending set names them
    gens: list[_Gen] = []  # newest first
    others: list[tuple[int, CommitInfo]] = []  # newest first
    reverted_by: dict[str, str] = {}
    hide = repo.commit(stop_at).parents if stop_at else ()
    for n, info in enumerate(repo.walk(tip, limit, hide)):
        if progress and n and n % 1000 == 0:
            progress(n)
        # Newest first: a revert is seen before what it reverts, and a reverted revert counts for nothing.
        if info.sha not in reverted_by:
            for undone in _REVERTS.findall(info.message):
                reverted_by.setdefault(undone, info.sha)
        named = tuple(trailers.implements(info.message))  # each message's trailers are parsed once or twice
        if named:
            gens.append(_Gen(info, named, n, *trailers.run_and_check(info.message)))
        elif not trailers.is_generated(info.message):
            others.append((n, info))
    wanted = _wanted(others, gens, stop_at)
    for n, info in others:
        if wanted is not None and info.sha not in wanted:
            continue
        paths = pending.spec_paths(repo, info, watch)
        if paths and not _reverts_generated(repo, info.message):
            files = _files(repo, info, paths)
            raw[info.sha] = paths
            specs.append((n, SpecChange(info.sha, info.subject, info.time, info.author_name, files)))
    resolved = _resolve(repo, specs, raw, gens, watch)
    _reverts_by_run(repo, gens, reverted_by)
    impls = tuple(
        Implementation(
            sha=g.info.sha,
            subject=g.info.subject,
            time=g.info.time,
            run_id=g.run,
            check=g.check,
            named=tuple(sha for sha, _ in g.named),
            specs=resolved.get(g.info.sha, ()),
            reverted_by=reverted_by.get(g.info.sha),
        )
        for g in reversed(gens)
    )
    by_spec: dict[str, list[Implementation]] = {}
    for impl in impls:
        for s in impl.specs:
            by_spec.setdefault(s, []).append(impl)
    return History(
        tip=tip,
        specs=tuple(s for _, s in reversed(specs)),
        generated=impls,
        _by_spec={k: tuple(v) for k, v in by_spec.items()},
    )


def _wanted(others: list[tuple[int, CommitInfo]], gens: list[_Gen], stop_at: str | None) -> set[str] | None:
    """The commits worth reading as spec commits when only `stop_at` matters: those the generated commits
    name, when each name is a commit of the window older than its generated commit. None: read them all."""
    if stop_at is None:
        return None
    order = {info.sha: n for n, info in others}
    names = {sha for g in gens for sha, _ in g.named}
    if any(order.get(sha, -1) <= g.order for g in gens for sha, _ in g.named):
        return None  # a name to match by content: every spec commit of the window may be the one
    return names | {stop_at}


def _reverts_by_run(repo: Repo, gens: list[_Gen], reverted_by: dict[str, str]) -> None:
    """A revert made before a rebase names the generated commit's old sha; the old commit's run id (one
    run, one generated commit) names the same generated commit in this history."""
    here = {g.info.sha for g in gens}
    by_run = {g.run: g.info.sha for g in gens}
    for old, revert in list(reverted_by.items()):
        if old in here or not repo.has_commit(old):
            continue
        run = trailers.run_and_check(repo.commit(old).message)[0]
        if run and by_run.get(run) and by_run[run] not in reverted_by:
            reverted_by[by_run[run]] = revert


def _files(repo: Repo, info: CommitInfo, paths: tuple[str, ...]) -> tuple[str, ...]:
    """The paths that are files on one side or the other: a directory the commit made or removed whole is
    listed with its files by the watched-path walk, and only the files are a change to show."""
    parent = info.parents[0] if info.parents else None
    return tuple(
        p
        for p in paths
        if repo.entry_at(info.sha, p) is not None or (parent is not None and repo.entry_at(parent, p) is not None)
    )


def _reverts_generated(repo: Repo, message: str) -> bool:
    """A `git revert` of a generated commit changes the spec only by undoing a run: no spec change."""
    return any(
        repo.has_commit(sha) and trailers.is_generated(repo.commit(sha).message) for sha in _REVERTS.findall(message)
    )


def _resolve(
    repo: Repo,
    specs: list[tuple[int, SpecChange]],
    raw: dict[str, tuple[str, ...]],
    gens: list[_Gen],
    watch: Globs,
) -> dict[str, tuple[str, ...]]:
    """generated sha -> the spec commits of this history it implements, oldest first."""
    known = {s.sha: n for n, s in specs}
    out: dict[str, list[str]] = {}
    leftover: list[tuple[_Gen, str, str | None]] = []
    for g in gens:
        for sha, pid in g.named:
            # A name counts only for a spec commit older than the generated commit (an ancestor, in a
            # topological walk: later in it).
            if sha in known and known[sha] > g.order:
                out.setdefault(g.info.sha, []).append(sha)
            else:
                leftover.append((g, sha, pid))
    if leftover:
        taken = {s for v in out.values() for s in v}
        _match_by_content(repo, specs, raw, leftover, taken, watch, out)
    return {k: tuple(sorted(v, key=lambda s: -known[s])) for k, v in out.items()}


def _match_by_content(
    repo: Repo,
    specs: list[tuple[int, SpecChange]],
    raw: dict[str, tuple[str, ...]],
    leftover: list[tuple[_Gen, str, str | None]],
    taken: set[str],
    watch: Globs,
    out: dict[str, list[str]],
) -> None:
    """Each name left over implements the newest spec commit older than its generated commit with its
    content that no other name has taken."""
    candidates = [(n, s) for n, s in specs if s.sha not in taken]
    old = [sha for _, sha, pid in leftover if pid is None and repo.has_commit(sha)]
    # The same paths the runner computed the trailers' patch-ids from, so equal content gives equal ids.
    changes = [(s.sha, raw[s.sha]) for _, s in candidates]
    changes += [(sha, tuple(repo.changed_matching(repo.commit(sha), watch))) for sha in old]
    ids = pending.patch_ids(repo, changes)
    for g, sha, pid in sorted(leftover, key=lambda x: x[0].order):  # newest generated commit first
        content = pid or ids.get(sha)
        if not content:
            continue
        for n, s in candidates:  # newest first
            if n > g.order and s.sha not in taken and ids.get(s.sha) == content:
                taken.add(s.sha)
                out.setdefault(g.info.sha, []).append(s.sha)
                break
