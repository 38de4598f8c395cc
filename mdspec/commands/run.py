"""`mdspec run [REV…] [--foreground]`: implement pending (or given) spec commits now, or start a worker."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from mdspec import config
from mdspec.errors import FatalError
from mdspec.fast import hook, triggers
from mdspec.fast.globs import Globs
from mdspec.git import Repo
from mdspec.printer import Printer
from mdspec.run import land, pending, records, runner, usergit
from mdspec.run.cancel import Cancelled, cancellable
from mdspec.run.costs import require_price
from mdspec.run.lock import lock_holder, worker_lock
from mdspec.run.pending import SpecCommit


def run_now(start: Path, revs: Sequence[str], out: Printer) -> int:
    """`mdspec run [REV…] --foreground`: implement the given spec commits (default: all pending) now."""
    repo = Repo(start)
    cfg = config.load(repo.top)
    require_price(cfg)  # before anything is touched: the spec commits stay pending
    branch = repo.head_branch()
    if branch is None:
        raise FatalError("HEAD is detached: check out the branch to implement the spec on, then `mdspec run`")
    if repo.resolve_ref(branch) is None:
        raise FatalError(f"{branch.removeprefix('refs/heads/')} has no commits yet: commit a spec first")
    state = repo.state_dir
    with cancellable(), worker_lock(state) as got:
        if not got:
            raise FatalError("a run is in progress: wait for it (`mdspec status`), then try again")
        try:
            runner.recover(repo, out)  # first: an interrupted landing may have moved the branch
            tip = repo.resolve_ref(branch)
            if tip is None:
                raise FatalError(f"branch {branch} no longer exists")
            ps = pending.find(repo, tip, cfg)
            specs = list(ps.all_pending)
            if revs:
                watch = Globs(cfg.watch)
                specs = []
                for rev in revs:
                    info = repo.commit(repo.rev_parse(rev))
                    paths = pending.spec_paths(repo, info, watch)
                    if not paths:
                        raise FatalError(f"{rev} ({info.short}) is not a spec commit: it changes no watched path")
                    specs.append(SpecCommit(info, paths))
            if not specs:
                runner.drop_stale_triggers(repo, branch, set())
                out("mdspec: nothing pending: every spec commit on this branch is implemented")
                return 0
            engine = runner.Runner(repo, out, usergit.ancestor_git(repo.top))
            rec = engine.run(runner.RunRequest(branch, tuple(specs)), cfg)
            # As a worker would: the run's own triggers are done with, whatever the outcome; triggers for
            # spec commits made meanwhile stay queued.
            tip = repo.resolve_ref(branch) or tip
            keep = {s.sha for s in pending.find(repo, tip, cfg).all_pending} - {s.sha for s in specs}
            runner.drop_stale_triggers(repo, branch, keep)
        except Cancelled:
            out("mdspec: cancelled before the run started")
            return 1
    if engine.deferred and engine.defer_to is not None:
        runner.spawn_lander(repo, engine.defer_to)
    return 1 if rec["status"] in (records.FAILED, records.CANCELLED) else 0


def start_background(start: Path, revs: Sequence[str], out: Printer) -> int:
    """`mdspec run [REV…]` without --foreground: queue every pending spec commit and start a worker."""
    if revs:
        # Explicit commits: run them now in the foreground; a detached worker has no way to be told which.
        return run_now(start, revs, out)
    repo = Repo(start)
    branch = repo.head_branch()
    tip = repo.resolve_ref(branch) if branch else None
    if branch is None or tip is None:
        return run_now(start, revs, out)  # reports detached/unborn clearly
    state = repo.state_dir
    cfg = config.load(repo.top)
    todo = pending.find(repo, tip, cfg).all_pending
    if todo:
        require_price(cfg)
    if not todo:
        if land.journal_path(repo).exists() and lock_holder(state) is None:
            # An interrupted landing may be all there is to do: the worker finishes or undoes it first.
            return run_now(start, revs, out)
        out("mdspec: nothing pending: every spec commit on this branch is implemented")
        return 0
    for s in todo:
        triggers.enqueue(str(state), s.sha, branch)
    hook.spawn_worker(str(repo.top), str(state), None)
    out(f"mdspec: run started in the background for {len(todo)} spec commit(s); follow it with `mdspec log -f`")
    return 0
