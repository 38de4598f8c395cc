"""`mdspec revert [SPEC-REV | RUN] [--with-spec]`: undo what a spec commit's run(s) did, as one commit.

The revert is computed in memory and landed like a run's result (same safety: nothing of the user's is
overwritten). It carries an `Mdspec-Reverts` trailer, so it never starts a run; with `--with-spec` the spec
commit is reverted in the same commit, so spec and code go back together.
"""

from __future__ import annotations

from pathlib import Path

from mdspec import config
from mdspec.errors import FatalError, SigningError
from mdspec.fast import trailers
from mdspec.git import CommitInfo, Repo
from mdspec.printer import Printer
from mdspec.run import land, pending
from mdspec.run.lock import worker_lock
from mdspec.run.pending import HISTORY_LIMIT


def _generated_on_branch(repo: Repo, tip: str) -> list[CommitInfo]:
    out = []
    for info in repo.first_parent_walk(tip, HISTORY_LIMIT):
        if trailers.values(info.message, trailers.RUN):
            out.append(info)
    return out  # newest first


def _targets(repo: Repo, tip: str, target: str | None) -> list[CommitInfo]:
    generated = _generated_on_branch(repo, tip)
    reverted = set()
    for info in repo.first_parent_walk(tip, HISTORY_LIMIT):
        reverted.update(trailers.values(info.message, trailers.REVERTS))
    live = [g for g in generated if g.sha not in reverted]
    if target is None:
        if not live:
            raise FatalError("no generated commit on this branch to revert")
        return live[:1]
    by_run = [g for g in live if any(r.startswith(target) for r in trailers.values(g.message, trailers.RUN))]
    if by_run:
        return by_run
    sha = repo.rev_parse(target)
    hits = [g for g in live if g.sha == sha or sha in trailers.values(g.message, trailers.IMPLEMENTS)]
    if not hits:
        # A rebased or cherry-picked spec commit: its generated commit names the old sha, and the pending
        # set knows which generated commit implements it by content.
        by_content = pending.find(repo, tip, config.load(repo.top)).implemented.get(sha)
        hits = [g for g in live if g.sha == by_content]
    if not hits:
        raise FatalError(
            f"{target} is neither a run id nor a spec or generated commit with a live generated commit on this "
            "branch: `mdspec status` lists runs; `git log --grep Mdspec-Implements` lists generated commits"
        )
    return hits


def revert(start: Path, target: str | None, with_spec: bool, out: Printer) -> int:
    repo = Repo(start)
    config.load(repo.top)
    # Under the worker lock: a run landing at the same moment would race this landing (and its journal).
    with worker_lock(repo.state_dir) as got:
        if not got:
            raise FatalError("a run is in progress: wait for it (`mdspec status`) or `mdspec cancel` it, then revert")
        from mdspec.run.runner import recover  # first: an interrupted landing may have moved the branch

        recover(repo, out)
        return _revert(repo, target, with_spec, out)


def _revert(repo: Repo, target: str | None, with_spec: bool, out: Printer) -> int:
    branch = repo.head_branch()
    tip = repo.resolve_ref(branch) if branch else None
    if branch is None or tip is None:
        raise FatalError("HEAD is detached or the branch has no commits: check out the branch to revert on")
    gens = _targets(repo, tip, target)
    specs: list[str] = []
    for g in gens:
        for s in trailers.values(g.message, trailers.IMPLEMENTS):
            if s not in specs:
                specs.append(s)
    undo = [g.sha for g in gens]  # newest first, so each revert applies on top of the later ones' undo
    if with_spec:
        known = [s for s in specs if repo.has_commit(s)]
        undo += sorted(known, key=lambda s: _depth(repo, tip, s))  # newest first
    tree = repo.revert_tree(undo, tip)
    if tree is None:
        raise FatalError(
            "the revert does not apply cleanly on the branch as it is now (later commits changed the same "
            "lines): revert by hand with `git revert " + " ".join(c[:10] for c in undo) + "`"
        )
    subjects = {c: repo.commit(c).subject for c in undo}
    title = gens[0].subject if len(gens) == 1 else f"{len(gens)} generated commits"
    body = "\n".join(f"This reverts commit {c} ({subjects[c]})." for c in undo)
    msg = f"Revert {title}\n\n{body}\n\n" + "\n".join(f"{trailers.REVERTS}: {c}" for c in undo) + "\n"
    user = repo.identity()
    try:
        commit = repo.create_commit(tree, tip, msg, user, user)  # signed when the user's commits are
    except SigningError as exc:
        raise SigningError(f"revert not made: {exc}; nothing changed") from None
    landing = land.land(repo, branch, commit, "revert", kind=land.Kind.REVERT)
    if not landing.landed:
        raise FatalError(f"revert not applied: {landing.reason}; nothing changed")
    out(f"mdspec: reverted {', '.join(c[:10] for c in undo)} as {landing.commit[:10]}")
    if not with_spec:
        out("mdspec: the spec commit(s) now show as pending (reverted); `mdspec run` implements them again")
    return 0


def _depth(repo: Repo, tip: str, sha: str) -> int:
    """How far back along first parents `sha` is from `tip` (newest = 0)."""
    for n, info in enumerate(repo.first_parent_walk(tip, HISTORY_LIMIT)):
        if info.sha == sha:
            return n
    return HISTORY_LIMIT
