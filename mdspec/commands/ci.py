"""`mdspec ci`: the worker's path with CI's trigger and delivery (DESIGN §3.7).

fetch → the branch's pending set as the remote has it (identity by content, so every clone agrees) → one
run of the same Runner → deliver: a plain push of the generated commit (rejected because the branch moved:
fetch, rebase in memory as local landing does, push again, a bounded number of times; a conflict pushes
the result to `mdspec/results/<run-id>` instead), or a pull/merge request. The run's note is pushed to
`refs/notes/mdspec`. Nothing is ever force-pushed to a shared branch.

Two jobs on one branch take turns through a lock ref on the remote (`refs/mdspec/ci-lock/<branch>`,
created by a push that fails while another job's lock is there), so a spec commit is never compiled twice
even where the CI's own one-job-per-branch control is missing or two people run `mdspec ci` by hand.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mdspec import config, git
from mdspec.config import Config
from mdspec.errors import ConfigError, FatalError
from mdspec.fast import trailers
from mdspec.git import Repo
from mdspec.printer import Printer
from mdspec.run import land, pending, records
from mdspec.run.cancel import Cancelled, cancellable
from mdspec.run.costs import NOTES_REF
from mdspec.run.lock import worker_lock
from mdspec.run.records import RunRecord
from mdspec.run.runner import Runner, RunRequest, check_backend_ready, recover

LOCK_PREFIX = "refs/mdspec/ci-lock/"
SEEN_LOCK_PREFIX = "refs/mdspec/ci-lock-seen/"
REQUESTS_PREFIX = "refs/mdspec/ci-requests/"  # the remote's mdspec/<sha> branches, fetched
RESULTS_BRANCH = "mdspec/results/"
LOCK_POLL = 1.0  # seconds between looks at another job's lock
LOCK_MARGIN_MINUTES = 10.0  # on top of a run's own limits, before a job's lock counts as abandoned
_MACHINE = {
    "GIT_AUTHOR_NAME": "mdspec",
    "GIT_AUTHOR_EMAIL": "mdspec@localhost",
    "GIT_COMMITTER_NAME": "mdspec",
    "GIT_COMMITTER_EMAIL": "mdspec@localhost",
}
_EXPIRES = re.compile(r"^expires: (\d+)$", re.MULTILINE)


class UsageError(FatalError):
    """A config or usage problem: `mdspec ci` exits 2 so a CI log tells it from a failed run."""

    exit_code = 2


@dataclass(frozen=True)
class Target:
    remote: str
    branch: str  # short name: main

    @property
    def head(self) -> str:
        return f"refs/heads/{self.branch}"

    @property
    def tracking(self) -> str:
        return f"refs/remotes/{self.remote}/{self.branch}"

    @property
    def lock(self) -> str:
        return LOCK_PREFIX + self.branch


@dataclass(frozen=True)
class Push:
    ok: bool
    retry: bool  # rejected because the ref moved on the remote: fetch and try again
    message: str


# --- git plumbing ------------------------------------------------------------------------------------


def _last(text: str, default: str) -> str:
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return lines[-1] if lines else default


def push(
    repo: Repo, remote: str, refspecs: Sequence[str], options: Sequence[str] = (), lease: str | None = None
) -> Push:
    """`git push` without force; `lease` (`ref:sha`) only for mdspec's own lock ref."""
    args = ["push", "--porcelain", "--no-verify"]
    args += [f"--push-option={o}" for o in options]
    if lease:
        args.append(f"--force-with-lease={lease}")
    proc = git.run([*args, remote, *refspecs], repo.top, check=False)
    if proc.returncode == 0:
        return Push(True, False, "")
    retry = any(
        ln.startswith("!") and ("fetch first" in ln or "non-fast-forward" in ln or "stale info" in ln)
        for ln in proc.stdout.splitlines()
    )
    rejected = [ln.split("\t")[-1] for ln in proc.stdout.splitlines() if ln.startswith("!")]
    return Push(False, retry, rejected[0] if rejected else _last(proc.stderr, f"git push exited {proc.returncode}"))


def fetch(repo: Repo, t: Target) -> str:
    """Fetch the branch into its remote-tracking ref; its tip. A clone made shallow gets its history."""
    if git.run(["rev-parse", "--is-shallow-repository"], repo.top, check=False).stdout.strip() == "true":
        git.run(["fetch", "--quiet", "--no-tags", "--unshallow", t.remote], repo.top, check=False)
    proc = git.run(["fetch", "--quiet", "--no-tags", t.remote, f"+{t.head}:{t.tracking}"], repo.top, check=False)
    if proc.returncode != 0:
        why = _last(proc.stderr, "git fetch failed")
        if "couldn't find remote ref" in proc.stderr:
            raise UsageError(f"{t.remote} has no branch {t.branch}: push it first, or name another with --branch")
        raise FatalError(f"git fetch {t.remote} {t.branch} failed: {why}")
    tip = repo.resolve_ref(t.tracking)
    if tip is None:  # pragma: no cover - a successful fetch always writes the ref
        raise FatalError(f"git fetch wrote no {t.tracking}")
    return tip


def notes_mirror(remote: str) -> str:
    """Where the remote's notes are fetched to (a notes ref of its own: `git log --notes=mdspec-origin`)."""
    return f"{NOTES_REF}-{remote}"


def fetch_notes(repo: Repo, remote: str) -> str | None:
    mirror = notes_mirror(remote)
    proc = git.run(["fetch", "--quiet", "--no-tags", remote, f"+{NOTES_REF}:{mirror}"], repo.top, check=False)
    if proc.returncode != 0:
        old = repo.resolve_ref(mirror)
        if old is not None and "couldn't find remote ref" in proc.stderr:
            repo.delete_ref(mirror)  # the remote has none (any more): a stale copy would be merged back
        return None
    return repo.resolve_ref(mirror)


def _held_here(rec: RunRecord, why: str) -> None:
    """Nothing reached the remote: the result stays in this clone, under its ref."""
    rec.update({"status": records.HELD, "reason": f"{why}; the result is {land.result_ref(rec['id'])} in this clone"})


def push_notes(repo: Repo, remote: str, retries: int, out: Printer) -> bool:
    """Push refs/notes/mdspec: fetch the remote's, merge (notes of other runs never conflict with ours;
    `cat_sort_uniq` settles the rest), push without force; again if another job pushed meanwhile."""
    for _ in range(retries + 1):
        theirs = fetch_notes(repo, remote)
        ours = repo.resolve_ref(NOTES_REF)
        if ours is None:
            return False
        if theirs is not None and theirs != ours and not repo.is_ancestor(theirs, ours):
            who = repo.identity()
            env = git.identity_env(who, who)
            merged = git.run(
                ["notes", f"--ref={NOTES_REF}", "merge", "-q", "-s", "cat_sort_uniq", notes_mirror(remote)],
                repo.top,
                check=False,
                env=env,
            )
            if merged.returncode != 0:
                out(f"mdspec: warning: the run's note was not pushed: git notes merge: {_last(merged.stderr, '?')}")
                return False
        pushed = push(repo, remote, [f"{NOTES_REF}:{NOTES_REF}"])
        if pushed.ok:
            return True
        if not pushed.retry:
            out(f"mdspec: warning: the run's note was not pushed to {remote}: {pushed.message}")
            return False
    out(f"mdspec: warning: the run's note was not pushed to {remote}: its notes kept moving")
    return False


# --- the per-branch lock on the remote ---------------------------------------------------------------


def _lock_commit(repo: Repo, t: Target, expires: float) -> str:
    """A root commit of its own: pushed where another job's lock is, it is a non-fast-forward and refused."""
    tree = git.run(["mktree"], repo.top, input="").stdout.strip()
    msg = (
        f"mdspec ci lock for {t.branch}\n\nholder: {socket.gethostname()} pid {os.getpid()} "
        f"{secrets.token_hex(4)}\nexpires: {int(expires)}\n"
    )
    return git.run(["commit-tree", tree, "-F", "-"], repo.top, input=msg, env=_MACHINE).stdout.strip()


def _lock_expiry(repo: Repo, sha: str) -> float:
    m = _EXPIRES.search(repo.commit(sha).message)
    return float(m.group(1)) if m else 0.0


def lock_minutes(cfg: Config) -> float:
    """How long one job may take at most: its run, its checks, and a margin for landing and pushing."""
    rounds = cfg.check_rounds + 1 if cfg.check else 0
    return cfg.agent.max_minutes * (1 + rounds) + cfg.check_minutes * rounds + LOCK_MARGIN_MINUTES


@contextlib.contextmanager
def remote_lock(repo: Repo, t: Target, cfg: Config, out: Printer) -> Iterator[None]:
    """Hold `refs/mdspec/ci-lock/<branch>` on the remote: one `mdspec ci` at a time per branch.

    A job that died leaves its lock until the time written in it; the next job then removes exactly that
    lock (a lease on its sha) and takes its turn.
    """
    said = False
    while True:
        mine = _lock_commit(repo, t, time.time() + lock_minutes(cfg) * 60)
        got = push(repo, t.remote, [f"{mine}:{t.lock}"])
        if got.ok:
            break
        if not got.retry:
            raise FatalError(f"could not take the CI lock {t.lock} on {t.remote}: {got.message}")
        seen = SEEN_LOCK_PREFIX + t.branch
        proc = git.run(["fetch", "--quiet", "--no-tags", t.remote, f"+{t.lock}:{seen}"], repo.top, check=False)
        theirs = repo.resolve_ref(seen) if proc.returncode == 0 else None
        if theirs is None:
            continue  # released meanwhile
        expires = _lock_expiry(repo, theirs)
        if time.time() > expires:
            out(f"mdspec: the CI lock of {t.branch} expired (its job died?); removing it")
            push(repo, t.remote, [f":{t.lock}"], lease=f"{t.lock}:{theirs}")
            continue
        if not said:
            until = time.strftime("%H:%M UTC", time.gmtime(expires))
            out(
                f"mdspec: another mdspec ci job is working on {t.branch} (lock {t.lock}, until {until} at most); "
                "waiting for it"
            )
            said = True
        time.sleep(LOCK_POLL)
    try:
        yield
    finally:
        released = push(repo, t.remote, [f":{t.lock}"], lease=f"{t.lock}:{mine}")
        if not released.ok:
            out(
                f"mdspec: warning: could not remove the CI lock {t.lock} on {t.remote}: {released.message} "
                "(it expires by itself)"
            )


# --- pull/merge requests ------------------------------------------------------------------------------


def detect_forge(repo: Repo, remote: str, forge: str, env: Mapping[str, str]) -> str:
    if forge != "auto":
        return forge
    if env.get("GITLAB_CI"):
        return "gitlab"
    if env.get("GITHUB_ACTIONS"):
        return "github"
    url = git.run(["remote", "get-url", remote], repo.top, check=False).stdout.strip()
    return "gitlab" if "gitlab" in url.lower() else "github"


def compare_url(repo: Repo, remote: str, base: str, head: str, env: Mapping[str, str]) -> str | None:
    """GitHub's page that opens a pull request from `head` into `base`, when the remote is on GitHub."""
    if env.get("GITHUB_SERVER_URL") and env.get("GITHUB_REPOSITORY"):
        site = f"{env['GITHUB_SERVER_URL'].rstrip('/')}/{env['GITHUB_REPOSITORY']}"
    else:
        url = git.run(["remote", "get-url", remote], repo.top, check=False).stdout.strip()
        m = re.match(r"^(?:https://(?:[^@/]+@)?|ssh://git@|git@)(github\.com)[:/](.+?)(?:\.git)?/?$", url)
        if not m:
            return None
        site = f"https://{m.group(1)}/{m.group(2)}"
    return f"{site}/compare/{base}...{head}?expand=1"


def tokens_line(rec: Mapping[str, Any]) -> str:
    u = rec.get("usage") or {}
    into = sum(
        int(u.get(k, 0) or 0) for k in ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")
    )
    return (
        f"{into:,} tokens in ({int(u.get('cache_read_input_tokens', 0) or 0):,} cached), "
        f"{int(u.get('output_tokens', 0) or 0):,} out"
    )


def request_body(repo: Repo, rec: Mapping[str, Any], result: str) -> tuple[str, str]:
    """(title, markdown body) of the pull/merge request for a run's result."""
    message = repo.commit(result).message
    title = message.splitlines()[0].strip() if message.strip() else f"mdspec run {rec['id']}"
    paragraphs = [p.strip() for p in message.split("\n\n")[1:] if p.strip()]
    summary = "\n\n".join(p for p in paragraphs if not p.startswith("Mdspec-"))
    lines = ["Implements:"]
    for sha, subj in zip(rec.get("spec_commits", []), rec.get("spec_subjects", []), strict=False):
        lines.append(f"- {sha[:10]} {subj}")
    lines += [
        "",
        summary or "(no summary)",
        "",
        f"Run {rec['id']}: {rec.get('turns', 0)} turns, {tokens_line(rec)}, "
        f"${float(rec.get('cost_usd') or 0.0):.4f}, check {rec.get('check', 'skipped')}.",
    ]
    return title, "\n".join(lines) + "\n"


def _one_line(text: str, limit: int = 900) -> str:
    """Push options cannot carry newlines."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def open_requests(repo: Repo, t: Target) -> dict[str, str]:
    """Spec commits a pull/merge request branch (`mdspec/<sha>`) on the remote already implements, with
    the branch: a later job leaves them to that request rather than compile them again."""
    for ref in git.run(["for-each-ref", "--format=%(refname)", REQUESTS_PREFIX], repo.top).stdout.split():
        repo.delete_ref(ref)  # a branch merged and deleted since must not count
    git.run(
        ["fetch", "--quiet", "--no-tags", t.remote, f"+refs/heads/mdspec/*:{REQUESTS_PREFIX}*"], repo.top, check=False
    )
    found: dict[str, str] = {}
    listing = git.run(["for-each-ref", "--format=%(refname) %(objectname)", REQUESTS_PREFIX], repo.top).stdout
    for line in listing.splitlines():
        ref, sha = line.split()
        name = "mdspec/" + ref.removeprefix(REQUESTS_PREFIX)
        if name.startswith(RESULTS_BRANCH):
            continue  # a result a conflict held is no request: the next job tries again on the new tip
        for spec in trailers.values(repo.commit(sha).message, trailers.IMPLEMENTS):
            found.setdefault(spec, name)
    return found


# --- the runner, delivering to the remote ---------------------------------------------------------


class CiRunner(Runner):
    """The Runner with CI's delivery: push (or a pull/merge request) instead of landing in a checkout."""

    def __init__(
        self, repo: Repo, out: Printer, target: Target, cfg: Config, deliver: str, forge: str, env: Mapping[str, str]
    ) -> None:
        super().__init__(repo, out)
        self.target, self.cfg, self.deliver, self.forge, self.env = target, cfg, deliver, forge, env

    def _run(
        self, req: RunRequest, cfg: Config, rec: RunRecord, rdir: Path, progress: Callable[[Mapping[str, Any]], None]
    ) -> None:
        def loud(event: Mapping[str, Any]) -> None:
            progress(event)
            kind = event.get("event")
            if kind == "turn":  # one line a turn: a CI log shows how the run goes, no live redraw
                self.out(
                    f"mdspec: [{rec['id']}] turn {event.get('turn')}: ${float(event.get('cost_usd') or 0.0):.4f} so far"
                )
            elif kind == "check":
                self.out(f"mdspec: [{rec['id']}] check round {event.get('round')}: {event.get('summary')}")
            elif kind == "warning":
                self.out(f"mdspec: [{rec['id']}] warning: {event.get('message')}")

        rec["ci"] = {"remote": self.target.remote, "branch": self.target.branch, "deliver": self.deliver}
        super()._run(req, cfg, rec, rdir, loud)

    def _land_result(self, rec: RunRecord, commit: str) -> land.Landing | None:
        rec["delivery"] = self.deliver
        try:
            land.hold(self.repo, rec["id"], commit)  # referenced until it is pushed, whatever happens
        except FatalError as exc:
            rec.update({"status": records.FAILED, "reason": f"{exc}; the result was not pushed"})
            return None
        if self.deliver == "pull-request":
            self._request(rec, commit)
        else:
            self._push(rec, commit)
        return None

    def _push(self, rec: RunRecord, result: str) -> None:
        repo, t = self.repo, self.target
        result = self._keep_new_task(rec, result)
        specs = list(rec.get("spec_commits", []))
        for attempt in range(self.cfg.ci.push_retries + 1):
            tip = repo.resolve_ref(t.tracking) or ""
            gone = pending.not_standing(repo, tip, self.cfg, specs)
            if gone:
                self._aside(
                    rec,
                    result,
                    records.SUPERSEDED,
                    f"spec commit {gone[0][:10]} is no longer on {t.branch} (amended or dropped)",
                )
                rec["superseded"] = gone
                return
            base = repo.commit(result).parents[0]
            candidate = result
            if tip != base:
                rebased = repo.rebase_commit(result, tip, repo.identity())
                if rebased is None:
                    self._aside(
                        rec, result, records.HELD, f"conflicts with commits pushed to {t.branch} since the run started"
                    )
                    return
                candidate = rebased
                land.hold(repo, rec["id"], candidate)
            pushed = push(repo, t.remote, [f"{candidate}:{t.head}"])
            if pushed.ok:
                repo.update_ref(t.tracking, candidate, tip, f"mdspec: pushed {rec['id']}")
                how = "fast-forward" if candidate == result else f"rebased onto {tip[:10]}"
                where = f"{t.remote}/{t.branch}"
                rec.update({"status": records.LANDED, "landed_as": candidate, "reason": f"pushed to {where} ({how})"})
                if rec.get("empty"):
                    rec.update(
                        {
                            "status": records.EMPTY,
                            "reason": f"the agent changed nothing; {candidate[:10]}, pushed to {where}, records "
                            "the spec commits as implemented",
                        }
                    )
                repo.delete_ref(land.result_ref(rec["id"]))
                self._note(rec, candidate)
                rec["note_pushed"] = push_notes(repo, t.remote, self.cfg.ci.push_retries, self.out)
                return
            if not pushed.retry:
                _held_here(rec, f"git push to {t.remote}/{t.branch} failed: {pushed.message}")
                return
            self.out(
                f"mdspec: {t.branch} moved on {t.remote} meanwhile: fetching and rebasing "
                f"(push {attempt + 1} of {self.cfg.ci.push_retries + 1})"
            )
            fetch(repo, t)
        self._aside(
            rec,
            result,
            records.HELD,
            f"{t.branch} kept moving on {t.remote} ({self.cfg.ci.push_retries + 1} pushes refused)",
        )

    def _aside(self, rec: RunRecord, result: str, status: records.Status, why: str) -> None:
        """Push the result to `mdspec/results/<run-id>` for a person to merge: the CI's clone is thrown away."""
        t, name = self.target, RESULTS_BRANCH + str(rec["id"])
        pushed = push(self.repo, t.remote, [f"{result}:refs/heads/{name}"])
        if pushed.ok:
            rec.update(
                {
                    "status": status,
                    "pushed_to": name,
                    "reason": f"{why}: the result is on branch {name} of {t.remote}; merge it by hand "
                    f"(e.g. `git fetch {t.remote} {name} && git cherry-pick FETCH_HEAD`)",
                }
            )
            self._note(rec, result)
            rec["note_pushed"] = push_notes(self.repo, t.remote, self.cfg.ci.push_retries, self.out)
        else:
            rec.update(
                {
                    "status": status,
                    "reason": f"{why}; pushing it to {name} failed too ({pushed.message}): it is "
                    f"{land.result_ref(rec['id'])} in this clone only",
                }
            )

    def _request(self, rec: RunRecord, result: str) -> None:
        repo, t = self.repo, self.target
        forge = detect_forge(repo, t.remote, self.forge, self.env)
        title, body = request_body(repo, rec, result)
        newest = str(rec["spec_commits"][-1])[:10]
        options: list[str] = []
        if forge == "gitlab":
            options = [
                "merge_request.create",
                f"merge_request.target={t.branch}",
                f"merge_request.title={_one_line(title, 250)}",
                f"merge_request.description={_one_line(body)}",
                "merge_request.remove_source_branch",
            ]
        name = f"mdspec/{newest}"
        pushed = push(repo, t.remote, [f"{result}:refs/heads/{name}"], options)
        if not pushed.ok and pushed.retry:  # a branch of an earlier run of this spec commit: keep it
            name = f"mdspec/{newest}-{rec['id']}"
            pushed = push(repo, t.remote, [f"{result}:refs/heads/{name}"], options)
        if not pushed.ok:
            _held_here(rec, f"git push of {name} to {t.remote} failed: {pushed.message}")
            return
        rec.update({"status": records.HELD, "pushed_to": name, "delivered": "pull-request"})
        if forge == "gitlab":
            rec["reason"] = f"pushed to {name}; {t.remote} opens a merge request into {t.branch}"
        else:
            rec["reason"] = self._github_request(rec, name, title, body)
        self._note(rec, result)
        rec["note_pushed"] = push_notes(repo, t.remote, self.cfg.ci.push_retries, self.out)

    def _github_request(self, rec: RunRecord, name: str, title: str, body: str) -> str:
        t = self.target
        gh = shutil.which("gh", path=self.env.get("PATH"))
        if gh:
            with tempfile.NamedTemporaryFile("w", suffix=".md", encoding="utf-8", delete=False) as f:
                f.write(body)
            try:
                proc = subprocess.run(
                    [gh, "pr", "create", "--base", t.branch, "--head", name, "--title", title, "--body-file", f.name],
                    cwd=self.repo.top,
                    capture_output=True,
                    text=True,
                    env=git.clean_env(self.env),
                    check=False,
                )
            finally:
                os.unlink(f.name)
            if proc.returncode == 0:
                url = _last(proc.stdout, "")
                rec["pull_request"] = url
                return f"pushed to {name}; pull request {url}".rstrip()
            return (
                f"pushed to {name}; `gh pr create` failed ({_last(proc.stderr, 'no message')}): open the pull "
                f"request from {name} into {t.branch} by hand"
            )
        compare = compare_url(self.repo, t.remote, t.branch, name, self.env)
        if compare:
            rec["pull_request"] = compare
            return f"pushed to {name}; open the pull request: {compare}"
        return f"pushed to {name}; open a pull request from {name} into {t.branch}"


# --- the command ----------------------------------------------------------------------------------


def _target(repo: Repo, cfg: Config, remote: str | None, branch: str | None, env: Mapping[str, str]) -> Target:
    name = remote or cfg.ci.remote
    if git.run(["remote", "get-url", name], repo.top, check=False).returncode != 0:
        raise UsageError(
            f"no git remote {name!r} here: add it (`git remote add {name} URL`) or name one with "
            "--remote or `[ci] remote`"
        )
    if not branch:
        ref = env.get("GITHUB_REF", "")
        if ref.startswith("refs/heads/"):
            branch = ref.removeprefix("refs/heads/")
        else:
            branch = env.get("CI_COMMIT_BRANCH") or (repo.head_branch() or "").removeprefix("refs/heads/")
    if not branch:
        raise UsageError("HEAD is detached and the CI names no branch: say which with --branch")
    if git.run(["check-ref-format", "--branch", branch], repo.top, check=False).returncode != 0:
        raise UsageError(f"--branch {branch!r} is not a valid branch name")
    return Target(name, branch)


def summary_line(rec: Mapping[str, Any], t: Target) -> str:
    n = len(rec.get("spec_commits", []))
    line = (
        f"mdspec ci: {t.branch}: run {rec.get('id')} {rec.get('status')}: {n} spec commit{'s' * (n != 1)}, "
        f"{rec.get('turns', 0)} turns, {tokens_line(rec)}, ${float(rec.get('cost_usd') or 0.0):.4f}, "
        f"check {rec.get('check', 'skipped')}"
    )
    if rec.get("landed_as"):
        line += f", landed as {str(rec['landed_as'])[:10]}"
    if rec.get("pushed_to"):
        line += f", on branch {rec['pushed_to']}"
    return line


def step_summary(rec: Mapping[str, Any] | None, t: Target, env: Mapping[str, str]) -> None:
    """The job summary GitHub Actions shows on the run's page ($GITHUB_STEP_SUMMARY, markdown)."""
    path = env.get("GITHUB_STEP_SUMMARY")
    if not path:
        return
    if rec is None:
        text = f"## mdspec ci: {t.branch}\n\nNothing pending: every spec commit is implemented.\n"
    else:
        rows = "\n".join(
            f"| `{sha[:10]}` | {subj} |"
            for sha, subj in zip(rec.get("spec_commits", []), rec.get("spec_subjects", []), strict=False)
        )
        text = (
            f"## mdspec ci: {t.branch}: run `{rec.get('id')}` {rec.get('status')}\n\n"
            f"{rec.get('reason', '')}\n\n| spec commit | subject |\n| --- | --- |\n{rows}\n\n"
            f"- turns: {rec.get('turns', 0)}\n- tokens: {tokens_line(rec)}\n"
            f"- cost: ${float(rec.get('cost_usd') or 0.0):.4f}\n- check: {rec.get('check', 'skipped')}\n"
        )
    try:
        with open(path, "a", encoding="utf-8") as f:
            f.write(text + "\n")
    except OSError:
        pass  # the summary is a courtesy; the log has everything


def _compile(
    repo: Repo, cfg: Config, t: Target, deliver: str, forge: str, env: Mapping[str, str], out: Printer
) -> tuple[RunRecord | None, int]:
    """Under this clone's worker lock and the branch's CI lock: fetch, the pending set, one run, delivery.
    (the run's record or None when nothing was pending, how many spec commits wait in open requests)"""
    state = repo.common_dir / "mdspec"
    rec: RunRecord | None = None
    in_review = 0
    with cancellable(), worker_lock(state) as got:
        if not got:
            raise FatalError("a run is in progress in this clone: wait for it (`mdspec status`), then try again")
        recover(repo, out)
        fetch(repo, t)
        with remote_lock(repo, t, cfg, out):
            tip = fetch(repo, t)  # again: the job before us may have pushed while we waited
            todo = pending.find(repo, tip, cfg).pending
            if deliver == "pull-request" and todo:
                asked = open_requests(repo, t)
                for s in todo:
                    if s.sha in asked:
                        out(f"mdspec ci: spec commit {s.sha[:10]} is already in {asked[s.sha]}, waiting for review")
                in_review = sum(1 for s in todo if s.sha in asked)
                todo = tuple(s for s in todo if s.sha not in asked)
            if todo:
                try:
                    check_backend_ready(cfg)
                except FatalError as exc:  # a secret missing from the CI's settings: a config error
                    raise UsageError(f"{exc} (in CI: add it to the CI's secrets)") from None
                runner = CiRunner(repo, out, t, cfg, deliver, forge, env)
                rec = runner.run(RunRequest(t.tracking, todo), cfg)
                kept = repo.resolve_ref(land.result_ref(str(rec["id"])))
                if rec.get("status") == records.HELD and "delivery" not in rec and kept and not rec.get("secret_in"):
                    # Held before delivery (a limit reached, a failing check): this clone is thrown away, so
                    # the partial work goes where people can see it.
                    runner._aside(rec, kept, records.HELD, str(rec.get("reason") or "held"))
                    records.write(records.runs_dir(state) / str(rec["id"]), rec)
    return rec, in_review


def ci(start: Path, deliver: str, remote: str | None, branch: str | None, forge: str, out: Printer) -> int:
    """`mdspec ci`: exit 0 when landed (or nothing pending, or a pull request opened), 1 when held or failed,
    2 on a config or usage error."""
    env = dict(os.environ)
    try:
        repo = Repo(start)
        cfg = config.load(repo.top)
    except ConfigError as exc:
        raise UsageError(str(exc)) from None
    t = _target(repo, cfg, remote, branch, env)
    try:
        rec, in_review = _compile(repo, cfg, t, deliver, forge, env, out)
    except Cancelled:  # SIGTERM from the CI (a job timeout, a cancel) before the run started
        out("mdspec ci: cancelled; nothing was pushed")
        return 1
    if rec is None:
        if in_review:
            out(
                f"mdspec ci: nothing pending on {t.remote}/{t.branch} but {in_review} spec commit(s) in open "
                "pull/merge requests"
            )
        else:
            out(f"mdspec ci: nothing pending on {t.remote}/{t.branch}: every spec commit is implemented")
        step_summary(None, t, env)
        return 0
    out(summary_line(rec, t))
    step_summary(rec, t, env)
    if rec.get("status") in (records.LANDED, records.EMPTY) or rec.get("delivered"):
        return 0
    return 1


# --- reading a run from its note (a clone where the run did not happen) -----------------------------


def _note(repo: Repo, ref: str, sha: str) -> str | None:
    proc = git.run(["notes", f"--ref={ref}", "show", sha], repo.top, check=False)
    return proc.stdout if proc.returncode == 0 else None


def log_from_notes(repo: Repo, run_prefix: str | None, out: Printer) -> bool:
    """`mdspec log` where the run's record is elsewhere (CI, a teammate): print its git note.

    The note is read from refs/notes/mdspec, else from the remote's (fetched to refs/notes/mdspec-<remote>).
    False when no generated commit on the branch matches.
    """
    try:
        head = repo.rev_parse("HEAD")
    except FatalError:
        return False
    found: tuple[str, str] | None = None
    for info in repo.first_parent_walk(head, 5000):
        if not trailers.is_generated(info.message):
            continue
        run_id = next(iter(trailers.values(info.message, trailers.RUN)), "")
        if run_prefix is None or run_id.startswith(run_prefix):
            found = (info.sha, run_id)
            break
    if found is None:
        return False
    sha, run_id = found
    text: str | None = _note(repo, NOTES_REF, sha)
    where = NOTES_REF
    if text is None:
        try:
            remote = config.load(repo.top, required=False).ci.remote
        except FatalError:
            remote = "origin"
        if fetch_notes(repo, remote) is not None:
            text, where = _note(repo, notes_mirror(remote), sha), f"{NOTES_REF} of {remote}"
    out(f"run {run_id or '?'}: generated commit {sha[:10]} {repo.commit(sha).subject}")
    if text is None:
        out("  no mdspec note for it here or on the remote: its run record stays with the clone that ran it")
    else:
        out(f"  (the run ran elsewhere; its note, from {where}:)")
        for line in text.rstrip().splitlines():
            out(f"  {line}")
    return True
