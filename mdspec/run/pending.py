"""Spec commits and the pending set (DESIGN §3.2).

Walk first-parent history from the tip back to (not including) the commit that introduced the mdspec
config, or the history bound; collect spec commits, and subtract every one a generated commit in that
window implements. Spec commits whose generated commit was later reverted with plain git are reported
apart: they are pending again, but only an explicit `mdspec run` implements them.

A spec commit's identity is its content: rebase, reword, cherry-pick and squash change its sha but not
its change on watched paths. So a generated commit names each spec commit by sha *and* by patch-id
(`git patch-id --stable` of its change on the watched paths; trailers.PATCH_ID). A spec commit no
generated commit names by sha is implemented when a generated commit newer than it names, by a sha no
longer in the window, a spec commit with the same patch-id. Each name implements at most one spec commit,
so a later spec commit that repeats an old change (a change undone, then made again) is still pending.
Patch-ids are computed only when a sha match fails and some name is left over to match, for those
commits only, in one batch through one `git patch-id` process.
"""

from __future__ import annotations

import re
import subprocess
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from mdspec import git
from mdspec.config import Config
from mdspec.fast import trailers
from mdspec.fast.globs import Globs
from mdspec.git import CommitInfo, Repo

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
    implemented: dict[str, str]  # spec sha -> generated sha, within the window (by sha or by content)
    order: tuple[str, ...] = ()  # every spec commit in the window, oldest first

    @property
    def all_pending(self) -> tuple[SpecCommit, ...]:
        """Pending plus reverted, oldest first (what an explicit `mdspec run` implements)."""
        pos = {sha: i for i, sha in enumerate(self.order)}
        return tuple(sorted(self.pending + self.reverted, key=lambda s: pos.get(s.sha, -1)))


@dataclass(frozen=True)
class _Name:
    """One spec commit a live generated commit implements, as it names it."""

    newer_specs: int  # how many spec commits of the window are newer than the generated commit
    generated: str
    sha: str
    patch_id: str | None


def spec_paths(repo: Repo, info: CommitInfo, watch: Globs) -> tuple[str, ...]:
    """The watched paths a commit changes; () for generated and merge commits."""
    if len(info.parents) > 1 or trailers.is_generated(info.message):
        return ()
    paths = tuple(repo.changed_matching(info, watch))
    if paths == (TASK_FILE,) and not repo.tree_has(info.sha, TASK_FILE):
        return ()  # deleting TASK.md (the task is done) asks for nothing
    return paths


def _config_path(repo: Repo, cfg: Config) -> str | None:
    if cfg.path and cfg.path.is_relative_to(repo.top):
        return str(cfg.path.resolve().relative_to(repo.top))
    return None


def _is_setup(repo: Repo, info: CommitInfo, config_path: str | None) -> bool:
    """The commit that introduced the config: it and what came before it bound the window."""
    return bool(config_path) and (not info.parents or not repo.tree_has(info.parents[0], str(config_path)))


def find(repo: Repo, tip: str, cfg: Config, limit: int = HISTORY_LIMIT) -> PendingSet:
    watch = Globs(cfg.watch)
    config_path = _config_path(repo, cfg)
    specs: list[SpecCommit] = []  # newest first while walking
    names: list[_Name] = []  # newest first
    reverted_generated: set[str] = set()
    for info in repo.first_parent_walk(tip, limit):
        # A merge brings in what its other parents made: a generated commit merged from a pull request's
        # branch (with a merge commit, not squashed or rebased) implements its spec commits all the same.
        names += _merged_names(repo, info, limit, reverted_generated, len(specs))
        # "This reverts commit X" (git revert, mdspec revert): X's effect is gone. Newest first, so a
        # revert is always seen before what it reverts.
        undone = _REVERTS.findall(info.message)
        reverted_generated.update(undone)
        if trailers.is_generated(info.message):
            if info.sha not in reverted_generated:
                names += [_Name(len(specs), info.sha, sha, pid) for sha, pid in trailers.implements(info.message)]
            continue
        if info.sha in reverted_generated:
            continue  # a reverted spec commit asks for nothing any more (its revert is the spec change)
        # The set-up commit's starter spec/README.md is no change to implement; `mdspec run REV` can still.
        if _is_setup(repo, info, config_path):
            break
        paths = spec_paths(repo, info, watch)
        # A plain `git revert` of a generated commit that removed TASK.md brings TASK.md back: that asks
        # for nothing new (its spec commit shows as reverted), like any revert of a generated commit.
        if paths and not any(_generated_commit(repo, sha) for sha in undone):
            specs.append(SpecCommit(info, paths))

    implemented: dict[str, str] = {}
    for n in names:
        implemented.setdefault(n.sha, n.generated)
    in_window = {s.sha for s in specs}
    unmatched = [s for s in specs if s.sha not in implemented]
    leftover = [n for n in names if n.sha not in in_window]  # names a rewrite left without their commit
    reverted_shas, reverted_ids = _reverted_names(repo, reverted_generated)
    ids: dict[str, str] = {}
    if unmatched and (leftover or reverted_ids):
        # Old generated commits name spec commits by sha only: their content is that commit's, if it exists.
        old = [n.sha for n in leftover if n.patch_id is None and repo.has_commit(n.sha)]
        ids = patch_ids(repo, [(s.sha, s.paths) for s in unmatched] + _spec_changes(repo, old, watch))
        leftover = [_Name(n.newer_specs, n.generated, n.sha, n.patch_id or ids.get(n.sha)) for n in leftover]
        implemented.update(_match_by_content(specs, leftover, ids))
    pending: list[SpecCommit] = []
    reverted: list[SpecCommit] = []
    for s in reversed(specs):
        if s.sha in implemented:
            continue
        was_reverted = s.sha in reverted_shas or (ids.get(s.sha) or "") in reverted_ids
        (reverted if was_reverted else pending).append(s)
    return PendingSet(tuple(pending), tuple(reverted), implemented, tuple(s.sha for s in reversed(specs)))


def _merged_names(repo: Repo, merge: CommitInfo, limit: int, reverted: set[str], newer_specs: int) -> list[_Name]:
    """What the generated commits a merge brings in (not reverted since) implement."""
    return [
        _Name(newer_specs, merged.sha, sha, pid)
        for merged in repo.merged_in(merge, limit)
        if trailers.is_generated(merged.message) and merged.sha not in reverted
        for sha, pid in trailers.implements(merged.message)
    ]


def _match_by_content(specs: list[SpecCommit], names: list[_Name], ids: dict[str, str]) -> dict[str, str]:
    """spec sha -> generated sha for spec commits equal in content to a name left over.

    `specs` and `names` are newest first. A name can only implement a spec commit older than its generated
    commit, and only one: the newest such commit with that content.
    """
    out: dict[str, str] = {}
    available: dict[str, list[str]] = {}  # patch-id -> generated shas not used yet
    todo = sorted((n for n in names if n.patch_id), key=lambda n: n.newer_specs)
    k = 0
    for i, s in enumerate(specs):
        while k < len(todo) and todo[k].newer_specs <= i:
            available.setdefault(str(todo[k].patch_id), []).append(todo[k].generated)
            k += 1
        pid = ids.get(s.sha)
        if pid and available.get(pid) and s.sha not in out:
            out[s.sha] = available[pid].pop(0)
    return out


def _generated_commit(repo: Repo, sha: str) -> bool:
    return repo.has_commit(sha) and trailers.is_generated(repo.commit(sha).message)


def _reverted_names(repo: Repo, generated: set[str]) -> tuple[set[str], set[str]]:
    """The shas and patch-ids of the spec commits that reverted generated commits implemented."""
    shas: set[str] = set()
    ids: set[str] = set()
    for sha in generated:
        if repo.has_commit(sha):
            for spec, pid in trailers.implements(repo.commit(sha).message):
                shas.add(spec)
                if pid:
                    ids.add(pid)
    return shas, ids


def _spec_changes(repo: Repo, shas: Iterable[str], watch: Globs) -> list[tuple[str, tuple[str, ...]]]:
    out = []
    for sha in shas:
        info = repo.commit(sha)
        paths = tuple(repo.changed_matching(info, watch)) if len(info.parents) <= 1 else ()
        if paths:
            out.append((sha, paths))
    return out


# git diff options that pin the patch text, whatever the user's config says, so every clone computes the
# same patch-id: plain unified diff with 3 lines of context, no renames, binary changes in full.
_DIFF = [
    "-p",
    "--root",
    "--no-renames",
    "--binary",
    "-U3",
    "--diff-algorithm=myers",
    "--no-ext-diff",
    "--no-textconv",
    "--no-color",
]


def patch_ids(repo: Repo, changes: Sequence[tuple[str, Sequence[str]]]) -> dict[str, str]:
    """sha -> `git patch-id --stable` of each commit's change (against its first parent) on its paths.

    One `git diff-tree --stdin` writes every commit's patch into one `git patch-id` process. The
    pathspec is the union of the paths: every one of them a commit changes is one of its own watched
    paths (they were found with the same globs), so each patch is exactly its change on watched paths.
    (A union too long for one command line is split over a few batches.) A commit without a patch gets
    no patch-id.
    """
    ids: dict[str, str] = {}
    batch: dict[str, None] = {}
    union: set[str] = set()
    for sha, paths in changes:
        if not paths:
            continue
        if union and len(union | set(paths)) > _MAX_PATHS:
            ids.update(_patch_id_batch(repo, list(batch), union))
            batch, union = {}, set()
        batch[sha] = None
        union.update(paths)
    if batch:
        ids.update(_patch_id_batch(repo, list(batch), union))
    return ids


_MAX_PATHS = 2000  # paths in one pathspec: far below any command-line limit


def _patch_id_batch(repo: Repo, shas: list[str], paths: set[str]) -> dict[str, str]:
    env = git.clean_env()
    with tempfile.TemporaryFile() as todo:  # a file, not a pipe: no deadlock however long the output
        todo.write("".join(f"{s}\n" for s in shas).encode())
        todo.seek(0)
        diff = subprocess.Popen(
            [
                "git",
                "-c",
                "core.quotePath=true",
                "--literal-pathspecs",
                "diff-tree",
                "--stdin",
                *_DIFF,
                "--",
                *sorted(paths),
            ],
            cwd=repo.top,
            env=env,
            stdin=todo,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        try:
            ids = subprocess.run(
                ["git", "patch-id", "--stable"],
                cwd=repo.top,
                env=env,
                stdin=diff.stdout,
                capture_output=True,
                check=False,
            ).stdout
        finally:
            if diff.stdout is not None:
                diff.stdout.close()
            diff.wait()
    out: dict[str, str] = {}
    for line in ids.decode("ascii", "replace").splitlines():
        patch_id, _, sha = line.partition(" ")
        if sha:
            out[sha.strip()] = patch_id
    return out


# --- does a run's spec commit still stand? ----------------------------------------------------------------


def not_standing(repo: Repo, tip: str, cfg: Config, shas: Sequence[str], limit: int = HISTORY_LIMIT) -> list[str]:
    """The spec commits among `shas` that no longer stand on the branch at `tip` (amended, dropped).

    A spec commit stands when it is `tip` or an ancestor of it, or when a spec commit made since the branch
    and it parted (first-parent history from `tip` back to their merge base, within the window) has the
    same content: a rebase or reword moved it, and its implementation still applies.
    """
    moved = [s for s in shas if s != tip and not repo.is_ancestor(s, tip)]
    if not moved:
        return []
    watch = Globs(cfg.watch)
    mine = _spec_changes(repo, [s for s in moved if repo.has_commit(s)], watch)
    if not mine:
        return moved
    stops = {b for s, _ in mine if (b := _merge_base(repo, tip, s))}
    config_path = _config_path(repo, cfg)
    since: list[SpecCommit] = []
    for info in repo.first_parent_walk(tip, limit):
        if info.sha in stops or (not trailers.is_generated(info.message) and _is_setup(repo, info, config_path)):
            break
        paths = spec_paths(repo, info, watch)
        if paths:
            since.append(SpecCommit(info, paths))
    ids = patch_ids(repo, list(mine) + [(s.sha, s.paths) for s in since]) if since else {}
    present = {ids[s.sha] for s in since if s.sha in ids}
    return [s for s in moved if not (ids.get(s) and ids[s] in present)]


def _merge_base(repo: Repo, a: str, b: str) -> str | None:
    proc = git.run(["merge-base", a, b], repo.top, check=False)
    return proc.stdout.strip() or None if proc.returncode == 0 else None
