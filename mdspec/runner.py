"""One run end to end, and the worker that drains the queue (DESIGN §3).

worker: take the per-repository lock (a second worker leaves its trigger in the queue and exits; the
running one picks it up), wait for the committing git process to finish, then for each queued branch:
pending set → persistent worktree at the tip → backend → protected paths restored → check and fix rounds
→ generated commit → land or hold → record.

Cancel: see cancel.py; a cancelled run is recorded `cancelled` and the worker drains nothing more.

Recovery: every worker (and `mdspec run`/`apply`) first calls `recover` under the lock: it finishes or
undoes an interrupted landing (land.recover), marks runs left `running` as interrupted, kills what they
left running, and resets the worktree.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mdspec import config, git, guards, land, pending, prompt, records, sandbox, trailers, triggers, worktree
from mdspec.cancel import RUN_ID_VAR, Cancelled, cancel_requested, cancellable, kill_leftovers, mark_cancelled, shielded
from mdspec.check import run_check
from mdspec.config import Config
from mdspec.errors import FatalError, SigningError
from mdspec.git import Identity, Repo, clean_env
from mdspec.globs import Globs
from mdspec.lock import lock_holder, wait_for_pid, worker_lock
from mdspec.pending import SpecCommit
from mdspec.session import STOP_LIMITS, BackendResult, RunContext, Session

NOTES_REF = "refs/notes/mdspec"
SUBJECT_MAX = 72
Printer = Callable[[str], None]

# Variables that carry credentials: the agent's own commands never see them.
_SECRET_HINTS = ("KEY", "TOKEN", "SECRET", "PASSWORD", "CREDENTIAL", "AUTH")
_SECRET_PREFIXES = ("ANTHROPIC_", "AWS_", "OPENAI_", "GOOGLE_", "AZURE_", "SSH_AUTH")


def agent_env(base: Mapping[str, str] | None = None) -> dict[str, str]:
    """What the agent's commands and the check run with: no git hook variables, no credentials."""
    env = clean_env(base)
    for k in list(env):
        up = k.upper()
        if up.startswith(_SECRET_PREFIXES) or any(h in up for h in _SECRET_HINTS):
            del env[k]
    env["MDSPEC_RUNNING"] = "1"
    return env


def backend_env() -> dict[str, str]:
    """What an external agent CLI runs with: it needs its own credentials, but no git hook variables."""
    env = clean_env()
    env["MDSPEC_RUNNING"] = "1"
    return env


# --- one run ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RunRequest:
    branch: str  # refs/heads/x
    specs: tuple[SpecCommit, ...]  # oldest first


def make_session(ctx: RunContext) -> Session:
    if ctx.agent.backend == "anthropic":
        from mdspec import agent  # late: imports the SDK only for runs that use it

        return agent.AnthropicSession(ctx, shell_prefix=ctx.sandbox, bash_timeout=ctx.agent.tool_minutes * 60)
    from mdspec.backends import CommandSession

    return CommandSession(ctx)


def check_backend_ready(cfg: Config) -> None:
    if cfg.agent.backend == "anthropic":
        from mdspec import agent

        agent.check_ready(os.environ)


def commit_message(result: BackendResult | None, specs: Sequence[SpecCommit], run_id: str, check: str,
                   notes: Sequence[str]) -> str:
    text = (result.final_text if result else "").strip()
    lines = text.splitlines()
    subject = lines[0].strip() if lines else ""
    subject = subject.lstrip("#").strip().removeprefix("mdspec:").strip()
    if not subject:
        subject = "implement " + specs[-1].info.subject
    if len(subject) > SUBJECT_MAX:
        subject = subject[: SUBJECT_MAX - 1].rstrip() + "…"
    body = "\n".join(lines[1:]).strip()[:6000]
    extra = "\n".join(f"- {n}" for n in notes)
    parts = [f"mdspec: {subject}"]
    if body:
        parts.append(body)
    if extra:
        parts.append("mdspec notes:\n" + extra)
    parts.append(trailers.render([s.sha for s in specs], run_id, check))
    return "\n\n".join(parts) + "\n"


class Runner:
    def __init__(self, repo: Repo, out: Printer) -> None:
        self.repo = repo
        self.state = repo.common_dir / "mdspec"
        self.out = out
        self.max_file_bytes: int | None = None

    def run(self, req: RunRequest, cfg: Config) -> dict[str, Any]:
        """Implement `req.specs` on `req.branch`; returns the final run record (never raises FatalError)."""
        repo = self.repo
        run_id = records.new_run_id()
        rdir = records.runs_dir(self.state) / run_id
        base = repo.resolve_ref(req.branch) or ""
        rec: dict[str, Any] = {
            "id": run_id,
            "status": records.RUNNING,
            "branch": req.branch,
            "base": base,
            "spec_commits": [s.sha for s in req.specs],
            "spec_subjects": [s.info.subject for s in req.specs],
            "backend": cfg.agent.backend if cfg.agent.backend == "anthropic" else (cfg.agent.preset or "command"),
            "model": cfg.agent.model if cfg.agent.backend == "anthropic" else "",
            "pid": os.getpid(),
            "started": time.time(),
            "turns": 0,
            "usage": {},
            "cost_usd": 0.0,
            "check": "skipped",
            "check_rounds": [],
            "violations": [],
            "refusals": [],
            "tool_calls": 0,
            "stage": "preparing",
        }
        records.write(rdir, rec)
        events = (rdir / "events.jsonl").open("a", encoding="utf-8")

        def progress(event: Mapping[str, Any]) -> None:
            line = {"t": round(time.time(), 3), **event}
            events.write(json.dumps(line, default=str) + "\n")
            events.flush()
            if event.get("event") == "turn":
                rec["turns"] = event.get("turn", rec["turns"])
                rec["usage"] = event.get("usage", rec["usage"])
                rec["cost_usd"] = event.get("cost_usd", rec["cost_usd"])
                records.write(rdir, rec)
            elif event.get("event") == "tool":
                rec["tool_calls"] = rec.get("tool_calls", 0) + 1
                records.write(rdir, rec)
                self.out(f"mdspec: [{run_id}] {event.get('name')}: {str(event.get('summary', ''))[:100]}")
            elif event.get("event") == "stage":
                rec["stage"] = event.get("stage")
                records.write(rdir, rec)

        n = len(req.specs)
        self.out(f"mdspec: run {run_id} started: {n} spec commit{'s' * (n != 1)} on "
                 f"{req.branch.removeprefix('refs/heads/')} with the {rec['backend']} backend")
        try:
            self._run(req, cfg, rec, rdir, progress)
        except (Cancelled, KeyboardInterrupt):
            # The finally blocks below the raise point have killed what the run started; nothing landed.
            mark_cancelled()
            with shielded():
                rec.update(status=records.CANCELLED, reason="cancelled (`mdspec cancel`); nothing landed")
                kill_leftovers(run_id)
        except FatalError as exc:
            rec.update(status=records.FAILED, reason=str(exc))
        except Exception as exc:  # a bug must not lose the record or kill the queue
            rec.update(status=records.FAILED, reason=f"internal error: {type(exc).__name__}: {exc}")
            (rdir / "error.log").write_text(traceback.format_exc(), encoding="utf-8")
        finally:
            with shielded():
                events.close()
                rec["ended"] = time.time()
                rec["seconds"] = round(rec["ended"] - rec["started"], 1)
                rec.pop("stage", None)
                records.write(rdir, rec)
        self.out(f"mdspec: run {run_id} {rec['status']}: {rec.get('reason', '')}".rstrip(": "))
        return rec

    def _run(self, req: RunRequest, cfg: Config, rec: dict[str, Any], rdir: Path,
             progress: Callable[[Mapping[str, Any]], None]) -> None:
        repo, base = self.repo, rec["base"]
        user = repo.identity()
        self.max_file_bytes = int(cfg.max_file_mb * (1 << 20)) if cfg.max_file_mb else None
        check_backend_ready(cfg)
        wt = worktree.prepare(repo, self.state, base)
        p = prompt.render(repo, cfg, base, req.specs)
        protected = Globs(cfg.protected_globs)
        # The check and the built-in agent's shell get the network only with `network = true`; an external
        # agent CLI always does (it talks to its own model), but its filesystem is confined all the same.
        box = sandbox.build(cfg.sandbox, wt, repo.common_dir, protected, cfg.network)
        rec["sandbox"] = box.mode
        if box.warning:
            rec.setdefault("warnings", []).append(box.warning)
            progress({"event": "warning", "message": box.warning})
        # Every process the run starts carries its run id, so a later worker can find and kill what a
        # killed one left running (kill_leftovers).
        tag = {RUN_ID_VAR: rec["id"]}
        check_env = {**agent_env(), **tag}
        if cfg.agent.backend == "anthropic":
            env, backend_box = {**agent_env(), **tag}, box
        else:
            env = {**backend_env(), **tag}
            backend_box = sandbox.build(cfg.sandbox, wt, repo.common_dir, protected, True)
        ctx = RunContext(wt, rdir, p.system, p.task, cfg.agent, cfg.protected_globs, env, progress,
                         backend_box.prefix)
        gitdir_before = guards.snapshot_git_dir(repo.common_dir)
        session = make_session(ctx)
        records.pause_point(self.state, "before-backend")
        progress({"event": "stage", "stage": "backend"})
        result = session.start()
        violations = self._guard(wt, base, protected, gitdir_before)
        check = "skipped"
        if cfg.check and result.stopped_by is None:
            for round_no in range(cfg.check_rounds + 1):
                progress({"event": "stage", "stage": "check"})
                cr = run_check(cfg.check, wt, check_env, rdir / "check.log", cfg.check_minutes, box.prefix)
                rec["check_rounds"].append(cr.summary)
                progress({"event": "check", "round": round_no + 1, "passed": cr.passed, "summary": cr.summary})
                check = "passed" if cr.passed else "failed"
                if cr.passed or round_no == cfg.check_rounds:
                    break
                progress({"event": "stage", "stage": "backend"})
                result = session.fix(cr.output)
                violations += self._guard(wt, base, protected, gitdir_before)
                if result.stopped_by is not None:
                    break
        rec.update(
            turns=result.turns,
            usage=result.usage.__dict__,
            cost_usd=round(result.usage.cost_usd, 6),
            check=check,
            violations=violations,
            refusals=list(result.refusals),
            model=result.model or rec["model"],
            stopped_by=result.stopped_by,
        )
        tree = worktree.snapshot_tree(wt)
        notes = [f"restored {v}" for v in violations]
        if result.stopped_by:
            notes.append(f"the run stopped early: {result.stopped_by}" + (f" ({result.error})" if result.error else ""))
        if tree == repo.tree_of(base):
            status = records.EMPTY if result.stopped_by is None else records.FAILED
            reason = "the agent changed nothing" if status == records.EMPTY else _stop_reason(result)
            rec.update(status=status, reason=reason)
            return
        msg = commit_message(result, req.specs, rec["id"], check, notes)
        author = Identity(f"{user.name} (mdspec)", user.email)
        try:
            commit = repo.create_commit(tree, base, msg, author, user)
        except SigningError as exc:
            # Never land unsigned: keep the work as an unsigned result; `mdspec apply` signs it first.
            commit = repo.create_commit(tree, base, msg, author, user, sign=False)
            land.hold(repo, rec["id"], commit)
            rec.update(result=commit, status=records.HELD,
                       reason=f"{exc}; fix signing, then `mdspec apply {rec['id']}` lands it signed")
            return
        rec["result"] = commit
        records.write(rdir, rec)
        records.pause_point(self.state, "after-commit")
        if result.stopped_by is not None:
            land.hold(repo, rec["id"], commit)
            rec.update(status=records.HELD if result.stopped_by in STOP_LIMITS else records.FAILED,
                       reason=_stop_reason(result) + f"; partial work held as {land.result_ref(rec['id'])}")
            return
        if check == "failed" and not cfg.land_failing:
            land.hold(repo, rec["id"], commit)
            rec.update(status=records.HELD, reason="the check failed and land_failing = false")
            return
        progress({"event": "stage", "stage": "landing"})
        self.land_result(rec, commit)

    def land_result(self, rec: dict[str, Any], commit: str) -> None:
        with shielded():
            self._land_result(rec, commit)

    def _land_result(self, rec: dict[str, Any], commit: str) -> None:
        repo = self.repo
        landing = land.land(repo, rec["branch"], commit, rec["id"])
        if landing.landed:
            rec.update(status=records.LANDED, landed_as=landing.commit, reason=landing.reason)
            self._note(rec, landing.commit)
            land_ref = land.result_ref(rec["id"])
            if repo.resolve_ref(land_ref):
                repo.delete_ref(land_ref)
        else:
            if not repo.resolve_ref(land.result_ref(rec["id"])):
                land.hold(repo, rec["id"], commit)
            rec.update(status=records.HELD, reason=f"{landing.reason}; `mdspec apply {rec['id']}` lands it")

    def _note(self, rec: dict[str, Any], sha: str) -> None:
        u = rec.get("usage") or {}
        text = (
            f"mdspec run {rec['id']}\nbackend: {rec['backend']}\nmodel: {rec.get('model') or '-'}\n"
            f"turns: {rec.get('turns', 0)}\ninput tokens: {u.get('input_tokens', 0)}\n"
            f"output tokens: {u.get('output_tokens', 0)}\ncache read tokens: {u.get('cache_read_input_tokens', 0)}\n"
            f"cost: ${rec.get('cost_usd', 0.0):.4f}\ncheck: {rec.get('check')}\n"
            f"duration: {time.time() - rec['started']:.0f}s\n"
        )
        with contextlib.suppress(Exception):
            self.repo.add_note(sha, text, NOTES_REF, self.repo.identity(), f"mdspec: note for run {rec['id']}")

    def _guard(self, wt: Path, base: str, protected: Globs, gitdir_before: guards.GitDirSnapshot) -> list[str]:
        found = guards.enforce_protected(wt, base, protected, self.max_file_bytes)
        found += [f"{p} (git dir)" for p in guards.restore_git_dir(self.repo.common_dir, gitdir_before)]
        return found


def _stop_reason(result: BackendResult) -> str:
    if result.stopped_by in STOP_LIMITS:
        return f"stopped at the {result.stopped_by} limit"
    if result.error:
        return result.error
    return f"stopped: {result.stopped_by}"


# --- the worker ------------------------------------------------------------------------------------


def mark_interrupted(state: Path, landing: land.Recovery | None = None) -> list[dict[str, Any]]:
    """Runs left `running` by a worker that died (we hold the lock, so none is really running).

    The run whose landing `land.recover` finished or undid gets that outcome instead: landed, or held.
    """
    done = []
    for rec in records.all_runs(state):
        if rec.get("status") != records.RUNNING:
            continue
        rec.update(status=records.INTERRUPTED, reason="the worker stopped before the run finished",
                   interrupted=True)
        rec.pop("stage", None)
        if landing is not None and landing.run_id == rec.get("id"):
            rec["recovery"] = landing.reason
            if landing.landed:
                rec.update(status=records.LANDED, landed_as=landing.commit,
                           reason=f"the worker stopped while landing; {landing.reason}")
            elif landing.result and rec.get("result"):
                rec.update(reason=f"the worker stopped while landing; {landing.reason}")
                if "put the branch back" in landing.reason:
                    rec.update(status=records.HELD,
                               reason=f"{rec['reason']}; `mdspec apply {rec['id']}` lands it")
        records.write(records.runs_dir(state) / rec["id"], rec)
        done.append(rec)
    return done


def recover(repo: Repo, out: Printer) -> None:
    """Clean up after a worker that died; the caller holds the lock. Cheap when there is nothing to do."""
    state = repo.common_dir / "mdspec"
    landing = land.recover(repo)
    interrupted = mark_interrupted(state, landing)
    for rec in interrupted:
        kill_leftovers(str(rec["id"]))
        if rec.get("status") == records.LANDED and rec.get("landed_as"):
            Runner(repo, out)._note(rec, rec["landed_as"])
        out(f"mdspec: run {rec['id']} was interrupted: {rec['status']}: {rec.get('reason', '')}")
    if interrupted:
        _reset_worktree(repo, state, str(interrupted[-1].get("base") or ""))


def _reset_worktree(repo: Repo, state: Path, base: str) -> None:
    """Put the persistent worktree back to a clean checkout after a killed run (a stale index.lock too)."""
    wt = worktree.path_for(state)
    if not wt.exists():
        return
    proc = git.run(["rev-parse", "--absolute-git-dir"], wt, check=False)
    if proc.returncode == 0:
        Path(proc.stdout.strip(), "index.lock").unlink(missing_ok=True)
    if base and repo.has_commit(base):
        with contextlib.suppress(FatalError, OSError):
            worktree.prepare(repo, state, base)


def drain(repo: Repo, out: Printer) -> list[dict[str, Any]]:
    """Run every queued trigger; the caller holds the lock. Stops after a cancel."""
    state = repo.common_dir / "mdspec"
    done: list[dict[str, Any]] = []
    seen: set[str] = set()
    while not cancel_requested():
        queued = [e for e in triggers.entries(str(state)) if e[0] not in seen]
        if not queued:
            return done
        branch = queued[0][1] or repo.head_branch() or ""
        batch = [sha for sha, ref, _ in queued if (ref or branch) == branch]
        seen.update(batch)
        try:
            cfg = config.load(repo.top)
            tip = repo.resolve_ref(branch) if branch else None
            if tip is not None:
                ps = pending.find(repo, tip, cfg)
                # A reverted spec commit runs only when queued by hand (`mdspec run`), never along by itself.
                specs = tuple(s for s in ps.all_pending if s in ps.pending or s.sha in batch)
                if any(s.sha in batch for s in specs):
                    done.append(Runner(repo, out).run(RunRequest(branch, specs), cfg))
        except FatalError as exc:
            # Before a run could start (a config made invalid while the trigger waited, say): record it
            # as a failed run so `mdspec status` and `mdspec log` say why; the commits stay pending.
            out(f"mdspec: error: {exc}")
            done.append(_record_failure(state, branch, batch, f"{exc}; fix it, then `mdspec run`"))
        finally:
            # The batch's own triggers go (a cancelled run's spec commits stay pending all the same);
            # triggers queued meanwhile stay for the next worker.
            for sha in batch:
                triggers.remove(str(state), sha)
    return done


def _record_failure(state: Path, branch: str, shas: list[str], reason: str) -> dict[str, Any]:
    now = time.time()
    rec: dict[str, Any] = {"id": records.new_run_id(), "status": records.FAILED, "reason": reason, "branch": branch,
                           "spec_commits": shas, "spec_subjects": [], "started": now, "ended": now, "seconds": 0.0}
    records.write(records.runs_dir(state) / rec["id"], rec)
    return rec


def work(start: Path, wait_pid: int | None, out: Printer) -> int:
    """The worker: drain the queue under the lock; exit at once if another worker has it."""
    repo = Repo(start)
    state = repo.common_dir / "mdspec"
    with cancellable():
        try:
            while True:
                with worker_lock(state) as got:
                    if not got:
                        return 0  # the running worker will see our trigger
                    recover(repo, out)
                    wait_for_pid(wait_pid, repo.git_dir)
                    results = drain(repo, out)
                if cancel_requested():
                    return 1
                # A trigger queued between our last look and the unlock found the lock taken: look once more.
                if not triggers.entries(str(state)):
                    return 1 if any(r.get("status") == records.FAILED for r in results) else 0
        except Cancelled:
            out("mdspec: cancelled before a run started; queued spec commits stay queued")
            return 1


def _drop_stale_triggers(repo: Repo, branch: str, keep: set[str]) -> None:
    """Remove the queued triggers for `branch` except those in `keep` (spec commits still waiting)."""
    state = str(repo.common_dir / "mdspec")
    for sha, ref, _ in triggers.entries(state):
        if (ref or branch) == branch and sha not in keep:
            triggers.remove(state, sha)


def run_now(start: Path, revs: Sequence[str], out: Printer) -> int:
    """`mdspec run [REV…] --foreground`: implement the given spec commits (default: all pending) now."""
    repo = Repo(start)
    cfg = config.load(repo.top)
    branch = repo.head_branch()
    if branch is None:
        raise FatalError("HEAD is detached: check out the branch to implement the spec on, then `mdspec run`")
    if repo.resolve_ref(branch) is None:
        raise FatalError(f"{branch.removeprefix('refs/heads/')} has no commits yet: commit a spec first")
    state = repo.common_dir / "mdspec"
    with cancellable(), worker_lock(state) as got:
        if not got:
            raise FatalError("a run is in progress: wait for it (`mdspec status`), then try again")
        try:
            recover(repo, out)  # first: an interrupted landing may have moved the branch
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
                _drop_stale_triggers(repo, branch, set())
                out("mdspec: nothing pending: every spec commit on this branch is implemented")
                return 0
            rec = Runner(repo, out).run(RunRequest(branch, tuple(specs)), cfg)
            # As a worker would: the run's own triggers are done with, whatever the outcome; triggers for
            # spec commits made meanwhile stay queued.
            tip = repo.resolve_ref(branch) or tip
            keep = {s.sha for s in pending.find(repo, tip, cfg).all_pending} - {s.sha for s in specs}
            _drop_stale_triggers(repo, branch, keep)
        except Cancelled:
            out("mdspec: cancelled before the run started")
            return 1
    return 1 if rec["status"] in (records.FAILED, records.CANCELLED) else 0


def start_background(start: Path, revs: Sequence[str], out: Printer) -> int:
    """`mdspec run [REV…]` without --foreground: queue every pending spec commit and start a worker."""
    from mdspec import hook  # the spawning code lives with the hook that uses it on every commit

    if revs:
        # Explicit commits: run them now in the foreground; a detached worker has no way to be told which.
        return run_now(start, revs, out)
    repo = Repo(start)
    branch = repo.head_branch()
    tip = repo.resolve_ref(branch) if branch else None
    if branch is None or tip is None:
        return run_now(start, revs, out)  # reports detached/unborn clearly
    state = repo.common_dir / "mdspec"
    todo = pending.find(repo, tip, config.load(repo.top)).all_pending
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


def apply(start: Path, run_prefix: str | None, out: Printer) -> int:
    """`mdspec apply [RUN]`: land a held result with the same safety as a run."""
    repo = Repo(start)
    state = repo.common_dir / "mdspec"
    with cancellable(), worker_lock(state) as got:
        if not got:
            raise FatalError("a run is in progress: wait for it (`mdspec status`), then try again")
        recover(repo, out)
        held = [r for r in records.all_runs(state) if r.get("status") == records.HELD and r.get("result")]
        if run_prefix:
            held = [r for r in held if str(r.get("id", "")).startswith(run_prefix)]
        if not held:
            what = f"matching {run_prefix!r}" if run_prefix else "at all"
            raise FatalError(f"no held result {what}: `mdspec status` lists runs and their results")
        rec = held[0]
        result = repo.resolve_ref(land.result_ref(rec["id"])) or rec["result"]
        if not repo.has_commit(result):
            raise FatalError(f"the result of run {rec['id']} is gone (was refs/mdspec/results/{rec['id']} deleted?)")
        try:
            result = repo.ensure_signed(result)  # held unsigned because signing failed: never land it so
        except SigningError as exc:
            raise SigningError(f"{exc}; run {rec['id']} stays held") from None
        Runner(repo, out).land_result(rec, result)
        records.write(records.runs_dir(state) / rec["id"], rec)
    out(f"mdspec: run {rec['id']} {rec['status']}: {rec.get('reason', '')}")
    return 0 if rec["status"] == records.LANDED else 1
