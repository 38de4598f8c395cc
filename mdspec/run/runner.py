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
import errno
import json
import os
import shutil
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mdspec import config, git
from mdspec.agents import prompt
from mdspec.agents.session import STOP_LIMITS, BackendResult, RunContext, Session, Usage
from mdspec.config import Config
from mdspec.errors import FatalError, SigningError
from mdspec.exec import sandbox
from mdspec.fast import trailers, triggers
from mdspec.fast.globs import Globs
from mdspec.git import Identity, Repo, clean_env
from mdspec.printer import Printer
from mdspec.run import guards, land, pending, records, usergit, worktree
from mdspec.run.cancel import (
    RUN_ID_VAR,
    Cancelled,
    cancel_requested,
    cancellable,
    kill_leftovers,
    mark_cancelled,
    shielded,
)
from mdspec.run.check import run_check
from mdspec.run.costs import add_note, record_cost, require_price, spec_files, usage_fields
from mdspec.run.handmerge import settle_merges
from mdspec.run.lock import wait_for_pid, worker_lock
from mdspec.run.pending import SpecCommit
from mdspec.run.records import RunRecord

TASK_REMOVED = f"removed {pending.TASK_FILE}: the task is done (`keep_task = true` keeps it)"
TASK_KEPT = f"kept {pending.TASK_FILE}: it changed on the branch while the run went on (a new task)"
SUBJECT_MAX = 72

# Variables that carry credentials: the agent's own commands never see them.
_SECRET_HINTS = ("KEY", "TOKEN", "SECRET", "PASSWORD", "CREDENTIAL", "AUTH", "ASKPASS")
# Configuration passed to git in the environment may carry credentials (an `http.extraHeader`), and the
# hints above would take its keys and leave its count (git then refuses to run): it goes as a whole.
_SECRET_PREFIXES = (
    "ANTHROPIC_",
    "AWS_",
    "OPENAI_",
    "GOOGLE_",
    "AZURE_",
    "SSH_AUTH",
    "GIT_CONFIG_COUNT",
    "GIT_CONFIG_KEY_",
    "GIT_CONFIG_VALUE_",
    "GIT_CONFIG_PARAMETERS",
)


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
        from mdspec.agents import agent  # late: imports the SDK only for runs that use it

        return agent.AnthropicSession(ctx, shell_prefix=ctx.sandbox, bash_timeout=ctx.agent.tool_minutes * 60)
    from mdspec.agents.backends import CommandSession

    return CommandSession(ctx)


def check_backend_ready(cfg: Config) -> None:
    if cfg.agent.backend == "anthropic":
        from mdspec.agents import agent

        agent.check_ready(os.environ, cfg.agent.provider)
    else:
        from mdspec.agents import backends

        backends.check_ready(cfg.agent, sandbox.will_confine(cfg.sandbox), os.environ)


def commit_message(
    result: BackendResult | None,
    specs: Sequence[SpecCommit],
    run_id: str,
    check: str,
    notes: Sequence[str],
    patch_ids: dict[str, str] | None = None,
) -> str:
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
    parts.append(trailers.render([s.sha for s in specs], run_id, check, patch_ids))
    return "\n\n".join(parts) + "\n"


@dataclass(frozen=True)
class _Stage:
    """What a run's later stages need of its preparation."""

    wt: Path
    base: str
    user: Identity
    protected: Globs
    prefix: tuple[str, ...]  # the check's sandbox
    check_env: dict[str, str]
    gitdir_before: guards.GitDirSnapshot
    session: Session
    rdir: Path


@dataclass(frozen=True)
class _Made:
    """The generated commit as made: its sha, tree and message."""

    sha: str
    tree: str
    message: str


class Runner:
    def __init__(self, repo: Repo, out: Printer, defer_to: int | None = None) -> None:
        self.repo = repo
        self.state = repo.state_dir
        self.out = out
        self.max_file_bytes: int | None = None
        self.guarded_tree: str | None = None  # the worktree's tree as the last guard staged it, if still current
        # The pid of a git command of the user's that this process runs inside (a foreground run in the
        # post-commit hook): landing now would act under that command, so results wait for it to return.
        self.defer_to = defer_to
        self.deferred = False

    def run(self, req: RunRequest, cfg: Config) -> RunRecord:
        """Implement `req.specs` on `req.branch`; returns the final run record (never raises FatalError)."""
        repo = self.repo
        run_id = records.new_run_id()
        rdir = records.runs_dir(self.state) / run_id
        base = repo.resolve_ref(req.branch) or ""
        rec: RunRecord = {
            "id": run_id,
            "status": records.RUNNING,
            "branch": req.branch,
            "base": base,
            "spec_commits": [s.sha for s in req.specs],
            "spec_subjects": [s.info.subject for s in req.specs],
            "spec_files": spec_files(p for s in req.specs for p in s.paths),
            "backend": cfg.agent.backend if cfg.agent.backend == "anthropic" else (cfg.agent.preset or "command"),
            "model": cfg.agent.model if cfg.agent.backend == "anthropic" else "",
            "pid": os.getpid(),
            "started": time.time(),
            "turns": 0,
            "usage": usage_fields(Usage()),
            "cost_usd": 0.0,
            "cost_unknown": None,
            "check": "skipped",
            "check_rounds": [],
            "violations": [],
            "refusals": [],
            "tool_calls": 0,
            "stage": "preparing",
        }
        try:
            records.write(rdir, rec)
            events = (rdir / "events.jsonl").open("a", encoding="utf-8")
        except OSError as exc:  # a full disk, say: the run cannot even be recorded, so it does not start
            shutil.rmtree(rdir, ignore_errors=True)
            why = (exc.strerror or str(exc)).lower()
            rec.update(
                {
                    "status": records.FAILED,
                    "pid": None,
                    "reason": f"could not start the run: {why} ({self.state}); free some space, then `mdspec run`",
                }
            )
            self.out(f"mdspec: error: {rec['reason']}")
            return rec

        def progress(event: Mapping[str, Any]) -> None:
            line = {"t": round(time.time(), 3), **event}
            events.write(json.dumps(line, default=str) + "\n")
            events.flush()
            if event.get("event") == "turn":
                rec["turns"] = event.get("turn", rec["turns"])
                rec["usage"] = event.get("usage", rec["usage"])
                rec["cost_usd"] = event.get("cost_usd", rec["cost_usd"])
                rec["cost_unknown"] = event.get("cost_unknown", rec.get("cost_unknown"))
                records.write(rdir, rec)
            elif event.get("event") == "tool":
                rec["tool_calls"] = rec.get("tool_calls", 0) + 1
                records.write(rdir, rec)
                self.out(f"mdspec: [{run_id}] {event.get('name')}: {str(event.get('summary', ''))[:100]}")
            elif event.get("event") == "stage":
                rec["stage"] = str(event.get("stage"))
                records.write(rdir, rec)

        n = len(req.specs)
        self.out(
            f"mdspec: run {run_id} started: {n} spec commit{'s' * (n != 1)} on "
            f"{req.branch.removeprefix('refs/heads/')} with the {rec['backend']} backend"
        )
        try:
            self._run(req, cfg, rec, rdir, progress)
        except (Cancelled, KeyboardInterrupt):
            # The finally blocks below the raise point have killed what the run started; nothing landed.
            mark_cancelled()
            with shielded():
                rec.update({"status": records.CANCELLED, "reason": "cancelled (`mdspec cancel`); nothing landed"})
                kill_leftovers(run_id)
        except FatalError as exc:
            rec.update({"status": records.FAILED, "reason": str(exc)})
            _log_details(rdir, exc)
        except OSError as exc:
            if exc.errno in (errno.ENOSPC, errno.EDQUOT):  # expected on a full disk: say so, no traceback
                rec.update(
                    {
                        "status": records.FAILED,
                        "reason": f"no space left on device ({exc.filename or exc}); "
                        "free some space, then `mdspec run`",
                    }
                )
            else:
                _internal_error(rec, rdir, exc)
        except Exception as exc:  # noqa: BLE001 - a bug must not lose the record or kill the queue
            _internal_error(rec, rdir, exc)
        finally:
            with shielded():
                events.close()
                rec["ended"] = time.time()
                rec["seconds"] = round(rec["ended"] - rec["started"], 1)
                rec.pop("stage", None)
                records.write(rdir, rec)
        if rec.get("auto_land") and self.deferred:
            self.out(
                f"mdspec: run {run_id} finished; its result lands as soon as this git command returns "
                "(`mdspec status` shows it)"
            )
        else:
            self.out(f"mdspec: run {run_id} {rec['status']}: {rec.get('reason', '')}".rstrip(": "))
        return rec

    def _run(
        self, req: RunRequest, cfg: Config, rec: RunRecord, rdir: Path, progress: Callable[[Mapping[str, Any]], None]
    ) -> None:
        # The run's stages in order; a stage that ends the run early (None, or held back) leaves why in rec.
        # A helper thread does what needs neither the worktree nor the agent while they are busy (git
        # processes, mostly: the thread waits on them without holding the interpreter).
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="mdspec-run") as aside:
            stage = self._prepare(req, cfg, rec, rdir, progress, aside)
            # The generated commit's patch-ids depend only on the spec commits: found while the agent works.
            ids = aside.submit(pending.patch_ids, self.repo, [(s.sha, s.paths) for s in req.specs])
            result, check, violations = self._backend_and_check(stage, cfg, rec, progress)
            self._record_backend(rec, cfg, result, check, violations)
            made = self._result_tree(stage, req, cfg, rec, result, violations)
            if made is None:
                return
            commit = self._commit(stage, req, rec, result, check, *made, ids.result())
        if commit is None:
            return
        if self._held_back(stage, cfg, rec, result, check, commit):
            return
        progress({"event": "stage", "stage": "landing"})
        self.land_result(rec, commit.sha)

    def _prepare(
        self,
        req: RunRequest,
        cfg: Config,
        rec: RunRecord,
        rdir: Path,
        progress: Callable[[Mapping[str, Any]], None],
        aside: ThreadPoolExecutor,
    ) -> _Stage:
        """The worktree at the base, the prompt, the sandboxes and the backend's session."""
        repo, base = self.repo, rec["base"]
        user = repo.identity()  # first: without one there is no commit to make, so no run to pay for
        self.max_file_bytes = int(cfg.max_file_mb * (1 << 20)) if cfg.max_file_mb else None
        check_backend_ready(cfg)
        # The worktree is reset by git processes while the prompt is read from the repository's objects
        # here: the two share nothing.
        ready = aside.submit(worktree.prepare, repo, self.state, base)
        try:
            p = prompt.render(repo, cfg, base, req.specs)
        except Exception:
            ready.result()  # the worktree's failure first, as when one ran after the other
            raise
        except BaseException:  # cancelled: the reset finishes (it is short), then the run stops
            wait([ready])
            raise
        wt = ready.result()
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
        ctx = RunContext(wt, rdir, p.system, p.task, cfg.agent, cfg.protected_globs, env, progress, backend_box.prefix)
        gitdir_before = guards.snapshot_git_dir(repo.common_dir)
        session = make_session(ctx)
        return _Stage(wt, base, user, protected, box.prefix, check_env, gitdir_before, session, rdir)

    def _backend_and_check(
        self, st: _Stage, cfg: Config, rec: RunRecord, progress: Callable[[Mapping[str, Any]], None]
    ) -> tuple[BackendResult, records.CheckOutcome, list[str]]:
        """The backend, the guard after it, and the check with its fix rounds."""
        records.pause_point(self.state, "before-backend")
        progress({"event": "stage", "stage": "backend"})
        result = st.session.start()
        violations = self._guard(st.wt, st.base, st.protected, st.gitdir_before)
        check: records.CheckOutcome = "skipped"
        if not cfg.check or result.stopped_by is not None:
            return result, check, violations
        for round_no in range(cfg.check_rounds + 1):
            progress({"event": "stage", "stage": "check"})
            self.guarded_tree = None  # the check may write files
            cr = run_check(cfg.check, st.wt, st.check_env, st.rdir / "check.log", cfg.check_minutes, st.prefix)
            rec["check_rounds"].append(cr.summary)
            progress({"event": "check", "round": round_no + 1, "passed": cr.passed, "summary": cr.summary})
            check = "passed" if cr.passed else "failed"
            if cr.passed or round_no == cfg.check_rounds:
                break
            progress({"event": "stage", "stage": "backend"})
            result = st.session.fix(cr.output)
            violations += self._guard(st.wt, st.base, st.protected, st.gitdir_before)
            if result.stopped_by is not None:
                break
        return result, check, violations

    @staticmethod
    def _record_backend(
        rec: RunRecord, cfg: Config, result: BackendResult, check: records.CheckOutcome, violations: list[str]
    ) -> None:
        record_cost(rec, result.usage, result.cost_unknown)
        rec.update(
            {
                "turns": result.turns,
                "check": check,
                "violations": violations,
                "refusals": list(result.refusals),
                "model": result.model or rec["model"],
                "stopped_by": result.stopped_by,
            }
        )
        overrun = result.usage.cost_usd - cfg.agent.max_cost_usd
        # The cap stops before a turn where it can; a turn billed above its estimate shows here.
        if overrun > 0 and result.cost_unknown is None:
            rec["cost_overrun_usd"] = round(overrun, 6)

    def _result_tree(
        self, st: _Stage, req: RunRequest, cfg: Config, rec: RunRecord, result: BackendResult, violations: list[str]
    ) -> tuple[str, list[str]] | None:
        """The generated commit's tree and the notes for its message; None when a stopped run changed nothing."""
        # Staged by the last guard, and nothing ran since: the same files, no second scan of the tree.
        synced = self.guarded_tree is not None
        tree = self.guarded_tree or worktree.snapshot_tree(st.wt)
        notes = [f"restored {v}" for v in violations]
        if result.stopped_by:
            notes.append(f"the run stopped early: {result.stopped_by}" + (f" ({result.error})" if result.error else ""))
        unchanged = tree == self.repo.tree_of(st.base)
        if unchanged and result.stopped_by is not None:
            rec.update({"status": records.FAILED, "reason": _stop_reason(result)})
            return None
        if result.stopped_by is None and _finish_task(st.wt, req.specs, cfg):
            # The index matches the files but for TASK.md, when the tree above came from it.
            tree = worktree.snapshot_tree(st.wt, [pending.TASK_FILE] if synced else None)
            notes.append(TASK_REMOVED)
        if unchanged:
            # Still a commit (with no changes): every clone and CI must see these spec commits implemented.
            rec["empty"] = True
            notes.append("nothing needed to change: this commit records the spec commits as implemented")
        return tree, notes

    def _commit(
        self,
        st: _Stage,
        req: RunRequest,
        rec: RunRecord,
        result: BackendResult,
        check: records.CheckOutcome,
        tree: str,
        notes: list[str],
        ids: dict[str, str],
    ) -> _Made | None:
        """The generated commit, referenced under its result ref at once; None when signing failed (held)."""
        repo, base, user = self.repo, st.base, st.user
        msg = commit_message(result, req.specs, rec["id"], check, notes, ids)
        author = Identity(f"{user.name} (mdspec)", user.email)
        try:
            commit = repo.create_commit(tree, base, msg, author, user)
        except SigningError as exc:
            # Never land unsigned: keep the work as an unsigned result; `mdspec apply` signs it first.
            commit = repo.create_commit(tree, base, msg, author, user, sign=False)
            land.hold(repo, rec["id"], commit)
            rec.update(
                {
                    "result": commit,
                    "status": records.HELD,
                    "reason": f"{exc}; fix signing, then `mdspec apply {rec['id']}` lands it signed",
                }
            )
            return None
        rec["result"] = commit
        # Referenced at once: a `git gc --prune=now` of the user's may run at any moment, and an unreferenced
        # commit is what it deletes. Landing removes the ref again.
        land.hold(repo, rec["id"], commit)
        return _Made(commit, tree, msg)

    def _held_back(
        self,
        st: _Stage,
        cfg: Config,
        rec: RunRecord,
        result: BackendResult,
        check: records.CheckOutcome,
        made: _Made,
    ) -> bool:
        """Whether the result must not land: a secret in it, a stopped run, a failed check (rec says why)."""
        repo, commit = self.repo, made.sha
        records.write(st.rdir, rec)
        records.pause_point(self.state, "after-commit")
        # The API key's value never lands, whatever put it in the files (guards.secret_leaks).
        leaks = guards.secret_leaks(st.wt, st.base, made.tree, made.message)
        if leaks:
            rec.update(
                {
                    "status": records.FAILED,
                    "secret_in": leaks,
                    "reason": f"the result contains the API key's value (in {', '.join(leaks)}): not landed; "
                    f"held as {land.result_ref(rec['id'])} for inspection only (remove the key before "
                    "using it)",
                }
            )
            return True
        if result.stopped_by is not None:
            land.hold(repo, rec["id"], commit)
            rec.update(
                {
                    "status": records.HELD if result.stopped_by in STOP_LIMITS else records.FAILED,
                    "reason": _stop_reason(result) + f"; partial work held as {land.result_ref(rec['id'])}",
                }
            )
            return True
        if check == "failed" and not cfg.land_failing:
            land.hold(repo, rec["id"], commit)
            rec.update({"status": records.HELD, "reason": "the check failed and land_failing = false"})
            return True
        return False

    def land_result(self, rec: RunRecord, commit: str) -> land.Landing | None:
        with shielded():
            return self._land_result(rec, commit)

    def _land_result(self, rec: RunRecord, commit: str) -> land.Landing | None:
        repo = self.repo
        rec.pop("auto_land", None)
        try:
            land.hold(repo, rec["id"], commit)  # referenced until it is on the branch, whatever happens
        except FatalError as exc:
            rec.update({"status": records.FAILED, "reason": f"{exc}; the result was not landed"})
            return None
        if self.defer_to is not None:
            self.deferred = True
            rec.update(
                {
                    "status": records.HELD,
                    "auto_land": True,
                    "reason": f"waiting for the git command that ran this hook (pid {self.defer_to}) to finish; "
                    "it lands by itself then",
                }
            )
            return None
        commit = self._keep_new_task(rec, commit)
        try:
            landing = land.land(repo, rec["branch"], commit, rec["id"], gone=self._gone(rec))
        except land.LandingStuck as exc:
            rec.update({"status": records.FAILED, "reason": str(exc), "landing_stuck": True})  # recovery settles it
            return None
        if landing.landed:
            rec.update({"status": records.LANDED, "landed_as": landing.commit, "reason": landing.reason})
            rec["landed_at"] = time.time()  # on the branch and in the checkout; the note and the record follow
            if rec.get("empty"):
                rec.update(
                    {
                        "status": records.EMPTY,
                        "reason": f"the agent changed nothing; {landing.commit[:10]} "
                        "records the spec commits as implemented",
                    }
                )
            self._note(rec, landing.commit)
            repo.delete_ref(land.result_ref(rec["id"]))
        elif landing.superseded:
            rec.update(
                {
                    "status": records.SUPERSEDED,
                    "superseded": list(landing.superseded),
                    "reason": f"{landing.reason}: not landed; the result stays as {land.result_ref(rec['id'])}",
                }
            )
        else:
            rec.update({"status": records.HELD, "reason": f"{landing.reason}; `mdspec apply {rec['id']}` lands it"})
            if landing.busy:
                rec["auto_land"] = True  # the next worker tries again by itself
        return landing

    def _gone(self, rec: RunRecord) -> Callable[[str], list[str]]:
        """Which of the run's spec commits no longer stand at a tip (amended, dropped): landing asks under
        the index lock and never lands such a result as if they did. The amended commit runs by itself."""
        try:
            cfg = config.load(self.repo.top)
        except FatalError:
            cfg = config.Config(path=None)
        specs = list(rec.get("spec_commits", []))
        return lambda tip: pending.not_standing(self.repo, tip, cfg, specs)

    def _keep_new_task(self, rec: RunRecord, commit: str) -> str:
        """The result removes TASK.md (its task is done), but TASK.md changed on the branch meanwhile: that
        is a new task, for the next run. Keep it, rather than hold the result on a modify/delete conflict."""
        repo, task = self.repo, pending.TASK_FILE
        tip = repo.resolve_ref(rec["branch"])
        info = repo.commit(commit)
        base = info.parents[0]
        before = repo.blob_at(base, task)
        if tip is None or before is None or repo.tree_has(commit, task) or repo.blob_at(tip, task) == before:
            return commit
        try:
            tree = _tree_with_path(repo, info.tree, base, task)
            message = info.message.replace(TASK_REMOVED, TASK_KEPT)
            new = repo.create_commit(
                tree, base, message, Identity(info.author_name, info.author_email), repo.identity()
            )
            land.hold(repo, rec["id"], new)
        except FatalError:
            return commit  # landing as it is: at worst the conflict holds it, and nothing is lost
        rec["result"] = new
        return new

    def _note(self, rec: RunRecord, sha: str) -> None:
        add_note(self.repo, rec, sha)

    def _guard(self, wt: Path, base: str, protected: Globs, gitdir_before: guards.GitDirSnapshot) -> list[str]:
        found, self.guarded_tree = guards.guard_worktree(wt, base, protected, self.max_file_bytes)
        gitdir = guards.restore_git_dir(self.repo.common_dir, gitdir_before)
        if gitdir:
            self.guarded_tree = None  # staged under the changed info/exclude or config: stage again
        return found + [f"{p} (git dir)" for p in gitdir]


def _finish_task(wt: Path, specs: Sequence[SpecCommit], cfg: Config) -> bool:
    """Remove TASK.md from the result when one of the run's spec commits set it: once the run lands the
    task is done, and the next run must not find it (unless `keep_task`)."""
    task = wt / pending.TASK_FILE
    if cfg.keep_task or not any(pending.TASK_FILE in s.paths for s in specs):
        return False
    if not (task.is_symlink() or task.is_file()):
        return False
    task.unlink()
    return True


def _tree_with_path(repo: Repo, tree: str, source: str, path: str) -> str:
    """`tree` with `path` as it is in commit `source`, built in a scratch index (never the user's)."""
    index = repo.state_dir / f"scratch-index-{os.getpid()}"
    env = {"GIT_INDEX_FILE": str(index)}
    try:
        git.run(["read-tree", tree], repo.top, env=env)
        entry = git.run(["ls-tree", "-z", source, "--", path], repo.top, errors="surrogateescape").stdout
        meta, _, name = entry.rstrip("\0").partition("\t")
        mode, _, sha = meta.split(" ")
        git.run(["update-index", "--add", "--cacheinfo", f"{mode},{sha},{name}"], repo.top, env=env)
        return git.run(["write-tree"], repo.top, env=env).stdout.strip()
    finally:
        index.unlink(missing_ok=True)


def _internal_error(rec: RunRecord, rdir: Path, exc: Exception) -> None:
    rec.update({"status": records.FAILED, "reason": f"internal error: {type(exc).__name__}: {exc}"})
    with contextlib.suppress(OSError):  # the disk may be full: the record matters more than the traceback
        (rdir / "error.log").write_text(traceback.format_exc(), encoding="utf-8")


def _log_details(rdir: Path, exc: FatalError) -> None:
    """What the one-line reason leaves out (a failed git's command and output) goes to the run's error.log."""
    more = exc.details()
    if more is not None:
        with contextlib.suppress(OSError), (rdir / "error.log").open("a", encoding="utf-8") as f:
            f.write(f"{type(exc).__name__}: {exc}\n{more}")


def _stop_reason(result: BackendResult) -> str:
    if result.stopped_by in STOP_LIMITS:
        return f"stopped at the {result.stopped_by} limit" + (f" ({result.error})" if result.error else "")
    if result.error:
        return result.error
    return f"stopped: {result.stopped_by}"


# --- the worker ------------------------------------------------------------------------------------


def mark_interrupted(state: Path, landing: land.Recovery | None = None) -> list[RunRecord]:
    """Runs left `running` by a worker that died (we hold the lock, so none is really running).

    The run whose landing `land.recover` finished or undid gets that outcome instead: landed, or held.
    """
    done = []
    for rec in records.all_runs(state):
        stuck = landing is not None and landing.run_id == rec.get("id") and rec.pop("landing_stuck", False)
        if rec.get("status") != records.RUNNING and not stuck:
            continue
        # A landing that failed and could not be undone then (a full disk) is settled by recovery now.
        what = "the landing could not be undone at first" if stuck else "the worker stopped while landing"
        if not stuck:
            rec.update(
                {
                    "status": records.INTERRUPTED,
                    "reason": "the worker stopped before the run finished",
                    "interrupted": True,
                }
            )
        rec.pop("stage", None)
        if landing is not None and landing.run_id == rec.get("id"):
            rec["recovery"] = landing.reason
            if landing.landed:
                rec.update(
                    {"status": records.LANDED, "landed_as": landing.commit, "reason": f"{what}; {landing.reason}"}
                )
            elif landing.result and rec.get("result"):
                rec.update({"reason": f"{what}; {landing.reason}"})
                if landing.held:
                    rec.update(
                        {"status": records.HELD, "reason": f"{rec['reason']}; `mdspec apply {rec['id']}` lands it"}
                    )
        records.write(records.runs_dir(state) / rec["id"], rec)
        done.append(rec)
    return done


def recover(repo: Repo, out: Printer) -> None:
    """Clean up after a worker that died; the caller holds the lock. Cheap when there is nothing to do."""
    state = repo.state_dir
    landing = land.recover(repo)
    settle_merges(repo)
    interrupted = mark_interrupted(state, landing)
    for rec in interrupted:
        kill_leftovers(str(rec["id"]))
        if rec.get("status") == records.LANDED and rec.get("landed_as"):
            Runner(repo, out)._note(rec, rec["landed_as"])
        how = "was interrupted" if rec.get("interrupted") else "was recovered"  # else: a landing stuck at first
        out(f"mdspec: run {rec['id']} {how}: {rec['status']}: {rec.get('reason', '')}")
    if interrupted:
        _reset_worktree(repo, state, str(interrupted[-1].get("base") or ""))


def recover_now(repo: Repo, out: Printer) -> None:
    """Finish or undo an interrupted landing now, and settle merges by hand, when no worker runs.

    Until then the checkout's index.lock, left by the killed landing, makes git refuse to commit.
    """
    merging = any(r.get("merging") for r in records.all_runs(repo.state_dir))
    if not land.journal_path(repo).exists() and not merging:
        return
    with worker_lock(repo.state_dir) as got:
        if not got:
            return
        recover(repo, out)
        # Triggers of spec commits the recovered landing implemented are done with.
        branch = repo.head_branch()
        tip = repo.resolve_ref(branch) if branch else None
        if branch and tip:
            with contextlib.suppress(FatalError):
                left = {s.sha for s in pending.find(repo, tip, config.load(repo.top)).all_pending}
                drop_stale_triggers(repo, branch, left)


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


def land_waiting(repo: Repo, out: Printer) -> list[RunRecord]:
    """Land the results that wait to land by themselves, oldest first; the caller holds the lock.

    A foreground run inside `git commit` leaves its result waiting for that commit to return; a landing a
    user's long git command held up is tried again here too.
    """
    state = repo.state_dir
    done = []
    for rec in reversed(records.all_runs(state)):
        if rec.get("status") != records.HELD or not rec.get("auto_land"):
            continue
        result = repo.resolve_ref(land.result_ref(str(rec["id"]))) or str(rec.get("result") or "")
        if not result or not repo.has_commit(result):
            rec.pop("auto_land", None)
            rec["reason"] = f"its result {result[:12] or '(none)'} is gone; `mdspec run` implements the spec again"
        else:
            Runner(repo, out).land_result(rec, result)
        records.write(records.runs_dir(state) / str(rec["id"]), rec)
        out(f"mdspec: run {rec['id']} {rec['status']}: {rec.get('reason', '')}")
        done.append(rec)
    return done


def spawn_lander(repo: Repo, git_pid: int) -> None:
    """A detached worker that lands what waits, once the git command `git_pid` (our ancestor) has returned."""
    from mdspec.fast import hook

    hook.spawn_worker(str(repo.top), str(repo.state_dir), git_pid)


def drain(repo: Repo, out: Printer, defer_to: int | None = None) -> list[RunRecord]:
    """Run every queued trigger; the caller holds the lock. Stops after a cancel."""
    state = repo.state_dir
    done: list[RunRecord] = []
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
                    require_price(cfg)
                    runner = Runner(repo, out, defer_to)
                    done.append(runner.run(RunRequest(branch, specs), cfg))
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


def _record_failure(state: Path, branch: str, shas: list[str], reason: str) -> RunRecord:
    now = time.time()
    rec: RunRecord = {
        "id": records.new_run_id(),
        "status": records.FAILED,
        "reason": reason,
        "branch": branch,
        "spec_commits": shas,
        "spec_subjects": [],
        "started": now,
        "ended": now,
        "seconds": 0.0,
    }
    records.write(records.runs_dir(state) / rec["id"], rec)
    return rec


def work(start: Path, wait_pid: int | None, out: Printer) -> int:
    """The worker: drain the queue under the lock; exit at once if another worker has it."""
    repo = Repo(start)
    state = repo.state_dir
    # Inside a git command of the user's (a foreground run in the post-commit hook): run now, land later.
    # A detached worker leads a session of its own and is inside nothing, even while the git command that
    # spawned it is still running (its landing waits for that command like for any other).
    defer_to = None if os.getsid(0) == os.getpid() else usergit.ancestor_git(repo.top)
    with cancellable():
        try:
            while True:
                with worker_lock(state) as got:
                    if not got:
                        return 0  # the running worker will see our trigger
                    recover(repo, out)
                    results = []
                    if defer_to is None:
                        wait_for_pid(wait_pid, repo.git_dir)
                        results += land_waiting(repo, out)
                    results += drain(repo, out, defer_to)
                if defer_to is not None and any(r.get("auto_land") for r in results):
                    spawn_lander(repo, defer_to)  # after the unlock, or it would find the lock taken
                if cancel_requested():
                    return 1
                # A trigger queued between our last look and the unlock found the lock taken: look once more.
                if not triggers.entries(str(state)):
                    return 1 if any(r.get("status") == records.FAILED for r in results) else 0
        except Cancelled:
            out("mdspec: cancelled before a run started; queued spec commits stay queued")
            return 1


def drop_stale_triggers(repo: Repo, branch: str, keep: set[str]) -> None:
    """Remove the queued triggers for `branch` except those in `keep` (spec commits still waiting)."""
    state = str(repo.state_dir)
    for sha, ref, _ in triggers.entries(state):
        if (ref or branch) == branch and sha not in keep:
            triggers.remove(state, sha)
