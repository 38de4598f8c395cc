"""Spec commits and the pending set (DESIGN §3.2).

Walk first-parent history from the tip back to (not including) the commit that introduced the mdspec
config, or the history bound; collect spec commits, and subtract every commit a generated commit in that window says
it implements. Spec commits whose generated commit was later reverted with plain git are reported apart:
they are pending again, but only an explicit `mdspec run` implements them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from mdspec import trailers
from mdspec.config import Config
from mdspec.git import CommitInfo, Repo
from mdspec.globs import Globs

HISTORY_LIMIT = 20000
TASK_FILE = "TASK.md"
# SHA-1 (40) or SHA-256 (64) object names, whichever the repository uses.
_REVERTS = re.compile(r"This reverts commit ([0-9a-f]{64}|[0-9a-f]{40})\b")


@dataclass(frozen=True)
class SpecCommit:
    info: CommitInfo
    paths: tuple[str, ...]  # the watched paths it changed

    @property
    def sha(self) -> str:
        return self.info.sha


@dataclass(frozen=True)
class PendingSet:
    pending: tuple[SpecCommit, ...]  # oldest first; these start runs
    reverted: tuple[SpecCommit, ...]  # oldest first; pending again after a git revert, run only by hand
    implemented: dict[str, str]  # spec sha -> generated sha, within the window
    order: tuple[str, ...] = ()  # every spec commit in the window, oldest first

    @property
    def all_pending(self) -> tuple[SpecCommit, ...]:
        """Pending plus reverted, oldest first (what an explicit `mdspec run` implements)."""
        pos = {sha: i for i, sha in enumerate(self.order)}
        return tuple(sorted(self.pending + self.reverted, key=lambda s: pos.get(s.sha, -1)))


def spec_paths(repo: Repo, info: CommitInfo, watch: Globs) -> tuple[str, ...]:
    """The watched paths a commit changes; () for generated and merge commits."""
    if len(info.parents) > 1 or trailers.is_generated(info.message):
        return ()
    paths = tuple(repo.changed_matching(info, watch))
    if paths == (TASK_FILE,) and not repo.tree_has(info.sha, TASK_FILE):
        return ()  # deleting TASK.md (the task is done) asks for nothing
    return paths


def find(repo: Repo, tip: str, cfg: Config, limit: int = HISTORY_LIMIT) -> PendingSet:
    watch = Globs(cfg.watch)
    config_path = (
        str(cfg.path.resolve().relative_to(repo.top)) if cfg.path and cfg.path.is_relative_to(repo.top) else None
    )
    specs: list[SpecCommit] = []  # newest first while walking
    implemented: dict[str, str] = {}
    reverted_generated: set[str] = set()
    for info in repo.first_parent_walk(tip, limit):
        # "This reverts commit X" (git revert, mdspec revert): X's effect is gone. Newest first, so a
        # revert is always seen before what it reverts.
        for m in _REVERTS.finditer(info.message):
            reverted_generated.add(m.group(1))
        if trailers.is_generated(info.message):
            if info.sha not in reverted_generated:
                for sha in trailers.values(info.message, trailers.IMPLEMENTS):
                    implemented.setdefault(sha, info.sha)
            continue
        if info.sha in reverted_generated:
            continue  # a reverted spec commit asks for nothing any more (its revert is the spec change)
        # The commit that introduced the config is the set-up commit: it and what came before it bound the
        # window (its starter spec/README.md is no change to implement; `mdspec run REV` can still do it).
        if config_path and (not info.parents or not repo.tree_has(info.parents[0], config_path)):
            break
        paths = spec_paths(repo, info, watch)
        if paths:
            specs.append(SpecCommit(info, paths))
    reverted_specs = _reverted_specs(repo, reverted_generated)
    pending: list[SpecCommit] = []
    reverted: list[SpecCommit] = []
    for s in reversed(specs):
        if s.sha in implemented:
            continue
        (reverted if s.sha in reverted_specs else pending).append(s)
    return PendingSet(tuple(pending), tuple(reverted), implemented, tuple(s.sha for s in reversed(specs)))


def _reverted_specs(repo: Repo, generated: set[str]) -> set[str]:
    out: set[str] = set()
    for sha in generated:
        if repo.has_commit(sha):
            out.update(trailers.values(repo.commit(sha).message, trailers.IMPLEMENTS))
    return out
