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
_REVERTS = re.compile(r"This reverts commit ([0-9a-f]{40})")


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

    @property
    def all_pending(self) -> tuple[SpecCommit, ...]:
        """Pending plus reverted, oldest first (what an explicit `mdspec run` implements)."""
        order = {s.sha: i for i, s in enumerate(self.pending + self.reverted)}
        return tuple(sorted(self.pending + self.reverted, key=lambda s: -order[s.sha]))


def spec_paths(repo: Repo, info: CommitInfo, watch: Globs) -> tuple[str, ...]:
    """The watched paths a commit changes; () for generated and merge commits."""
    if len(info.parents) > 1 or trailers.is_generated(info.message):
        return ()
    return tuple(p for p in repo.changed_paths(info) if watch.matches(p))


def find(repo: Repo, tip: str, cfg: Config, limit: int = HISTORY_LIMIT) -> PendingSet:
    watch = Globs(cfg.watch)
    config_path = (
        str(cfg.path.resolve().relative_to(repo.top)) if cfg.path and cfg.path.is_relative_to(repo.top) else None
    )
    specs: list[SpecCommit] = []  # newest first while walking
    implemented: dict[str, str] = {}
    reverted_generated: set[str] = set()
    for info in repo.first_parent_walk(tip, limit):
        if trailers.is_generated(info.message):
            if info.sha not in reverted_generated:
                for sha in trailers.values(info.message, trailers.IMPLEMENTS):
                    implemented.setdefault(sha, info.sha)
            continue
        for m in _REVERTS.finditer(info.message):
            reverted_generated.add(m.group(1))
        # The commit that introduced the config is the set-up commit: it and what came before it bound the
        # window (its starter spec/README.md is no change to implement; `mdspec run REV` can still do it).
        if config_path and (not info.parents or not repo.tree_has(info.parents[0], config_path)):
            break
        paths = spec_paths(repo, info, watch)
        if paths:
            specs.append(SpecCommit(info, paths))
    reverted_specs = _reverted_specs(repo, reverted_generated)
    pending, reverted = [], []
    for s in reversed(specs):
        if s.sha in implemented:
            continue
        (reverted if s.sha in reverted_specs else pending).append(s)
    return PendingSet(tuple(pending), tuple(reverted), implemented)


def _reverted_specs(repo: Repo, generated: set[str]) -> set[str]:
    out: set[str] = set()
    for sha in generated:
        if repo.has_commit(sha):
            out.update(trailers.values(repo.commit(sha).message, trailers.IMPLEMENTS))
    return out
