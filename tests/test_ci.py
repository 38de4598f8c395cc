"""`mdspec ci` and `[ci] mode = "ci"`: a bare repository as the team's remote, two teammates' clones, and
clones as CI runners running `mdspec ci` with a command-backend agent (a script)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

from conftest import Repo, agent_script, make_repo
from fakeapi import FAKE_KEY, FakeAPI
from runhelpers import QUIET, runs, wait_for

from mdspec.fast import trailers

AGENT = """
import os, pathlib, sys
sys.stdin.read()
with open({log!r}, "a") as f:
    f.write(os.environ.get("MDSPEC_RUN_ID", "?") + "\\n")
for p in sorted(pathlib.Path("spec").glob("*.md")):
    out = pathlib.Path("code") / (p.stem + ".txt")
    out.parent.mkdir(exist_ok=True)
    out.write_text(p.read_text().upper())
pathlib.Path(os.environ["MDSPEC_SUMMARY_FILE"]).write_text("Compile the spec\\n\\nWrote code/ from spec/.\\n")
"""

# Records every update of a ref and every push option the server receives.
PRE_RECEIVE = """#!/bin/sh
while read old new ref; do
  echo "$old $new $ref" >> "{log}"
done
i=0
while [ "$i" -lt "${{GIT_PUSH_OPTION_COUNT:-0}}" ]; do
  eval "echo \\"option \\$GIT_PUSH_OPTION_$i\\"" >> "{log}"
  i=$((i + 1))
done
exit 0
"""


@dataclass
class Team:
    tmp: Path
    bare: Path
    alice: Repo
    bob: Repo
    calls: Path  # one line per agent run
    pushes: Path  # what the server received

    def clone(self, name: str, who: str = "CI") -> Repo:
        path = self.tmp / name
        subprocess.run(["git", "clone", "-q", str(self.bare), str(path)], check=True, capture_output=True)
        r = Repo(path)
        r.git("config", "user.name", who)
        r.git("config", "user.email", f"{who.lower()}@example.com")
        r.git("config", "commit.gpgsign", "false")
        return r

    def ci(self, runner: Repo, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        # A bound, so a job that waits for a lock forever fails the test instead of hanging it.
        return subprocess.run(
            [sys.executable, "-m", "mdspec", "ci", *args],
            cwd=runner.top,
            capture_output=True,
            text=True,
            env={**os.environ, **(env or {})},
            timeout=900,
        )

    def remote_log(self, n: int = 20) -> list[str]:
        return git_bare(self.bare, "log", f"-{n}", "--format=%s", "main").splitlines()

    def agent_runs(self) -> list[str]:
        return self.calls.read_text().split() if self.calls.exists() else []


def git_bare(bare: Path, *args: str) -> str:
    return subprocess.run(["git", f"--git-dir={bare}", *args], check=True, capture_output=True, text=True).stdout


def make_team(tmp_path: Path, mode: str = "ci") -> Team:
    bare = tmp_path / "remote.git"
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(bare)], check=True)
    pushes = tmp_path / "pushes.log"
    hook = bare / "hooks" / "pre-receive"
    hook.parent.mkdir(exist_ok=True)
    hook.write_text(PRE_RECEIVE.format(log=pushes))
    hook.chmod(0o755)
    git_bare(bare, "config", "receive.advertisePushOptions", "true")
    calls = tmp_path / "calls.log"
    alice = make_repo(tmp_path / "alice")
    alice.mdspec("init", "--git-hook")
    cmd = agent_script(tmp_path, AGENT.format(log=str(calls)))
    alice.configure(f'[ci]\nmode = "{mode}"\n\n[agent]\nbackend = "command"\ncommand = "{cmd}"\n')
    alice.commit("set up mdspec", env=QUIET)
    alice.git("remote", "add", "origin", str(bare))
    alice.git("push", "-q", "-u", "origin", "main")
    team = Team(tmp_path, bare, alice, Repo(tmp_path), calls, pushes)
    team.bob = team.clone("bob", "Bob")
    team.bob.mdspec("init", "--git-hook")
    return team


def spec(repo: Repo, name: str, text: str) -> str:
    """A spec commit made the way a teammate makes it: `git commit`, with the hook."""
    return repo.commit(f"spec: {name}", {f"spec/{name}.md": text})


def implemented(repo: Repo, ref: str = "HEAD") -> list[str]:
    """Every spec sha named by a generated commit on `ref`, oldest first (repeats kept)."""
    shas: list[str] = []
    for msg in reversed(repo.git("log", "--format=%B%x00", ref).split("\0")):
        shas += trailers.values(msg, trailers.IMPLEMENTS)
    return shas


def pending_lines(repo: Repo) -> list[str]:
    out = repo.mdspec("status").stdout
    return [ln for ln in out.splitlines() if ln.startswith(("pending", "waiting for CI"))]


def main_updates(team: Team) -> list[tuple[str, str]]:
    lines = team.pushes.read_text().splitlines() if team.pushes.exists() else []
    return [(ln.split()[0], ln.split()[1]) for ln in lines if ln.endswith(" refs/heads/main")]


def assert_no_force_push(team: Team) -> None:
    """Every update of main the server took was a fast-forward."""
    for old, new in main_updates(team):
        if set(old) == {"0"}:
            continue
        ok = subprocess.run(["git", f"--git-dir={team.bare}", "merge-base", "--is-ancestor", old, new])
        assert ok.returncode == 0, f"main went from {old} to {new}: not a fast-forward"


def paused_job(job: Repo, stage: str, what: str) -> tuple[subprocess.Popen[str], Path]:
    """`mdspec ci` in `job`, started and held at `stage` until the returned marker file is removed."""
    env = {**os.environ, "MDSPEC_TEST_PAUSE": stage}
    proc = subprocess.Popen(
        [sys.executable, "-m", "mdspec", "ci"],
        cwd=job.top,
        env=env,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    marker = job.state / f"paused-{stage}"
    wait_for(marker.exists, 240, what)
    return proc, marker


# --- ci mode, locally ----------------------------------------------------------------------------------


def test_ci_mode_hook_starts_nothing_and_status_says_waiting_for_ci(tmp_path: Path) -> None:
    team = make_team(tmp_path)
    sha = spec(team.alice, "app", "# App\nSay hello.\n")
    assert f"spec commit {sha[:10]} will be compiled by CI when pushed" in team.alice.last_output
    assert not (team.alice.state / "queue").is_dir() or not list((team.alice.state / "queue").iterdir())
    assert runs(team.alice) == []
    assert team.agent_runs() == []
    assert pending_lines(team.alice) == [f"waiting for CI: {sha[:10]} spec: app"]
    # `mdspec run` still compiles by hand.
    team.alice.mdspec("run", "--foreground")
    assert implemented(team.alice) == [sha]
    assert pending_lines(team.alice) == ["pending: nothing: every spec commit on this branch is implemented"]


def test_local_mode_still_runs_in_the_hook(tmp_path: Path) -> None:
    team = make_team(tmp_path, mode="local")
    sha = spec(team.alice, "app", "# App\n")
    assert "will be compiled by CI" not in team.alice.last_output
    wait_for(lambda: implemented(team.alice) == [sha], 240, "the local run")


# --- mdspec ci --push ----------------------------------------------------------------------------------


def test_ci_push_lands_on_the_remote_and_teammates_pull_it(tmp_path: Path) -> None:
    team = make_team(tmp_path)
    sha = spec(team.alice, "app", "# App\nSay hello.\n")
    team.alice.git("push", "-q", "origin", "main")
    # Bob pulls the spec commit before CI compiled it: waiting for CI, nothing runs on his machine.
    team.bob.git("pull", "-q", "--ff-only")
    assert pending_lines(team.bob) == [f"waiting for CI: {sha[:10]} spec: app"]

    ci = team.clone("ci")
    summary = tmp_path / "summary.md"
    proc = team.ci(ci, env={"GITHUB_STEP_SUMMARY": str(summary)})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    assert any("turn 1" in ln for ln in lines)
    assert lines[-1].startswith("mdspec ci: main: run ")
    assert " landed: 1 spec commit, 1 turns" in lines[-1]
    assert "check skipped" in lines[-1]
    assert "## mdspec ci: main: run" in summary.read_text()
    assert sha[:10] in summary.read_text()

    top = git_bare(team.bare, "rev-parse", "main").strip()
    assert git_bare(team.bare, "show", f"{top}:code/app.txt") == "# APP\nSAY HELLO.\n"
    assert team.agent_runs()
    assert len(team.agent_runs()) == 1

    for mate in (team.alice, team.bob):
        mate.git("pull", "-q", "--ff-only")
        assert mate.head() == top
        assert implemented(mate) == [sha]
        assert pending_lines(mate) == ["pending: nothing: every spec commit on this branch is implemented"]
        assert runs(mate) == []  # the pull started nothing
    # A second job finds nothing to do, and says so.
    again = team.ci(team.clone("ci2"))
    assert again.returncode == 0
    assert "nothing pending on origin/main" in again.stdout
    assert len(team.agent_runs()) == 1
    assert_no_force_push(team)


def test_the_note_is_pushed_and_mdspec_log_reads_it_in_a_fresh_clone(tmp_path: Path) -> None:
    team = make_team(tmp_path)
    spec(team.alice, "app", "# App\n")
    team.alice.git("push", "-q", "origin", "main")
    ci = team.clone("ci")
    assert team.ci(ci).returncode == 0
    run_id = runs(ci)[0]["id"]
    fresh = team.clone("fresh", "Carol")
    note = fresh.git("fetch", "-q", "origin", "refs/notes/mdspec:refs/notes/mdspec")
    assert note == ""
    assert f"mdspec run {run_id}" in fresh.git("log", "-1", "--notes=mdspec", "main")
    # `mdspec log` in another clone that never fetched the notes reads them from the remote.
    other = team.clone("other", "Dave")
    out = other.mdspec("log").stdout
    assert f"run {run_id}: generated commit" in out
    assert f"mdspec run {run_id}" in out
    assert "turns: 1" in out
    by_id = other.mdspec("log", run_id[:8]).stdout
    assert f"mdspec run {run_id}" in by_id
    assert other.mdspec("log", "nosuchrun", check=False).returncode == 1


def test_two_ci_jobs_racing_on_one_branch_compile_each_spec_commit_once(tmp_path: Path) -> None:
    team = make_team(tmp_path)
    first = spec(team.alice, "one", "# One\n")
    team.alice.git("push", "-q", "origin", "main")
    job1 = team.clone("ci1")
    p1, marker = paused_job(job1, "before-backend", "job 1 to start its run")
    # A second spec commit is pushed while job 1 runs; job 2 starts at once.
    team.bob.git("pull", "-q", "--ff-only")
    second = spec(team.bob, "two", "# Two\n")
    team.bob.git("push", "-q", "origin", "main")
    job2 = team.clone("ci2")
    out2 = tmp_path / "job2.out"
    with out2.open("w") as f:
        p2 = subprocess.Popen(
            [sys.executable, "-m", "mdspec", "ci"], cwd=job2.top, text=True, stdout=f, stderr=subprocess.STDOUT
        )
    wait_for(lambda: "another mdspec ci job is working on main" in out2.read_text(), 240, "job 2 to wait")
    marker.unlink()
    out1, _ = p1.communicate(timeout=600)
    assert p2.wait(timeout=600) == 0, out2.read_text()
    assert p1.returncode == 0, out1
    assert len(team.agent_runs()) == 2
    mainline = team.clone("check", "Eve")
    assert implemented(mainline) == [first, second]  # each once, in order
    history = mainline.git("log", "--format=%P", "main").splitlines()
    assert all(len(parents.split()) <= 1 for parents in history)  # linear
    assert_no_force_push(team)
    assert git_bare(team.bare, "for-each-ref", "refs/mdspec/") == ""  # the lock is gone


def test_a_teammate_push_during_a_run_is_rebased_over(tmp_path: Path) -> None:
    team = make_team(tmp_path)
    sha = spec(team.alice, "app", "# App\n")
    team.alice.git("push", "-q", "origin", "main")
    job = team.clone("ci")
    p, marker = paused_job(job, "after-commit", "the run's commit")
    team.bob.git("pull", "-q", "--ff-only")
    team.bob.commit("docs", {"docs.md": "unrelated\n"})
    team.bob.git("push", "-q", "origin", "main")
    marker.unlink()
    out, _ = p.communicate(timeout=600)
    assert p.returncode == 0, out
    assert "main moved on origin meanwhile" in out
    assert "rebased onto" in out
    check = team.clone("check", "Eve")
    assert check.log(3)[1] == "docs"
    assert implemented(check) == [sha]
    assert_no_force_push(team)


def test_a_conflicting_teammate_push_sends_the_result_to_a_results_branch(tmp_path: Path) -> None:
    team = make_team(tmp_path)
    spec(team.alice, "app", "# App\n")
    team.alice.git("push", "-q", "origin", "main")
    job = team.clone("ci")
    p, marker = paused_job(job, "after-commit", "the run's commit")
    team.bob.git("pull", "-q", "--ff-only")
    team.bob.commit("hand-written code", {"code/app.txt": "mine\n"})
    team.bob.git("push", "-q", "origin", "main")
    bob_tip = team.bob.head()
    marker.unlink()
    out, _ = p.communicate(timeout=600)
    assert p.returncode == 1, out
    run_id = runs(job)[0]["id"]
    branch = f"mdspec/results/{run_id}"
    assert f"branch {branch}" in out
    assert git_bare(team.bare, "rev-parse", "main").strip() == bob_tip  # main untouched
    result = git_bare(team.bare, "rev-parse", branch).strip()
    assert git_bare(team.bare, "show", f"{result}:code/app.txt") == "# APP\n"
    assert runs(job)[0]["status"] == "held"
    assert runs(job)[0]["pushed_to"] == branch
    assert_no_force_push(team)


# --- mdspec ci --pull-request ---------------------------------------------------------------------------


def test_pull_request_on_gitlab_sends_push_options(tmp_path: Path) -> None:
    team = make_team(tmp_path)
    sha = spec(team.alice, "app", "# App\n")
    team.alice.git("push", "-q", "origin", "main")
    before = git_bare(team.bare, "rev-parse", "main").strip()
    proc = team.ci(team.clone("ci"), "--pull-request", env={"GITLAB_CI": "true"})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    branch = f"mdspec/{sha[:10]}"
    assert git_bare(team.bare, "rev-parse", "main").strip() == before  # main untouched
    head = git_bare(team.bare, "rev-parse", branch).strip()
    assert trailers.values(git_bare(team.bare, "log", "-1", "--format=%B", head), trailers.IMPLEMENTS) == [sha]
    log = team.pushes.read_text().splitlines()
    assert f"0000000000000000000000000000000000000000 {head} refs/heads/{branch}" in log
    options = [ln.removeprefix("option ") for ln in log if ln.startswith("option ")]
    assert "merge_request.create" in options
    assert "merge_request.target=main" in options
    title = next(o for o in options if o.startswith("merge_request.title="))
    assert title == "merge_request.title=mdspec: Compile the spec"
    description = next(o for o in options if o.startswith("merge_request.description="))
    assert sha[:10] in description
    assert "1 turns" in description
    assert "check skipped" in description
    # The next job leaves the spec commit to its open merge request: compiled once.
    again = team.ci(team.clone("ci2"), "--pull-request", env={"GITLAB_CI": "true"})
    assert again.returncode == 0
    assert f"already in {branch}" in again.stdout
    assert "nothing pending" in again.stdout
    assert len(team.agent_runs()) == 1


def test_pull_request_on_github_uses_gh_when_there(tmp_path: Path) -> None:
    team = make_team(tmp_path)
    sha = spec(team.alice, "app", "# App\n")
    team.alice.git("push", "-q", "origin", "main")
    bindir = tmp_path / "bin"
    bindir.mkdir()
    seen = tmp_path / "gh.args"
    gh = bindir / "gh"
    gh.write_text(
        textwrap.dedent(f"""\
        #!{sys.executable}
        import json, sys
        args = sys.argv[1:]
        body = open(args[args.index("--body-file") + 1]).read()
        json.dump({{"args": args, "body": body}}, open({str(seen)!r}, "w"))
        print("https://github.example/acme/app/pull/7")
    """)
    )
    gh.chmod(0o755)
    env = {"PATH": f"{bindir}{os.pathsep}{os.environ['PATH']}", "GITHUB_ACTIONS": "true"}
    proc = team.ci(team.clone("ci"), "--pull-request", env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    import json

    data = json.loads(seen.read_text())
    args = data["args"]
    assert args[:2] == ["pr", "create"]
    assert args[args.index("--base") + 1] == "main"
    assert args[args.index("--head") + 1] == f"mdspec/{sha[:10]}"
    assert args[args.index("--title") + 1] == "mdspec: Compile the spec"
    assert f"- {sha[:10]} spec: app" in data["body"]
    assert "Wrote code/ from spec/." in data["body"]
    assert "1 turns" in data["body"]
    assert "check skipped" in data["body"]
    assert "https://github.example/acme/app/pull/7" in proc.stdout


def test_pull_request_without_gh_prints_the_compare_url(tmp_path: Path) -> None:
    team = make_team(tmp_path)
    sha = spec(team.alice, "app", "# App\n")
    team.alice.git("push", "-q", "origin", "main")
    env = {
        "GITHUB_ACTIONS": "true",
        "GITHUB_SERVER_URL": "https://github.com",
        "GITHUB_REPOSITORY": "acme/app",
        "PATH": str(Path(sys.executable).parent) + os.pathsep + "/usr/bin:/bin",
    }
    proc = team.ci(team.clone("ci"), "--pull-request", env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"https://github.com/acme/app/compare/main...mdspec/{sha[:10]}?expand=1" in proc.stdout


# --- exit status ---------------------------------------------------------------------------------------


def test_usage_and_config_errors_exit_2(tmp_path: Path) -> None:
    team = make_team(tmp_path)
    ci = team.clone("ci")
    no_remote = ci.mdspec("ci", "--remote", "upstream", check=False)
    assert no_remote.returncode == 2
    assert "no git remote 'upstream'" in no_remote.stderr
    no_branch = ci.mdspec("ci", "--branch", "nope", check=False)
    assert no_branch.returncode == 2
    assert "origin has no branch nope" in no_branch.stderr
    ci.write(".mdspec.toml", '[ci]\nmode = "sometimes"\n')
    bad = ci.mdspec("ci", check=False)
    assert bad.returncode == 2
    assert "ci.mode" in bad.stderr
    assert "Traceback" not in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1


def test_a_missing_api_key_is_a_config_error_and_leaves_no_lock(tmp_path: Path) -> None:
    team = make_team(tmp_path)
    team.alice.configure('[ci]\nmode = "ci"\n')  # the built-in agent: it needs ANTHROPIC_API_KEY
    team.alice.commit("use the built-in agent", env=QUIET)
    spec(team.alice, "app", "# App\n")
    team.alice.git("push", "-q", "origin", "main")
    proc = team.ci(team.clone("ci"))
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "ANTHROPIC_API_KEY is not set" in proc.stderr, proc.stdout + proc.stderr
    assert git_bare(team.bare, "for-each-ref", "refs/mdspec/") == ""


def test_a_result_held_before_delivery_goes_to_a_results_branch(tmp_path: Path) -> None:
    team = make_team(tmp_path)
    text = team.alice.top.joinpath(".mdspec.toml").read_text()
    team.alice.configure('check = "false"\nland_failing = false\ncheck_rounds = 0\n\n' + text)
    team.alice.commit("a check that fails", env=QUIET)
    spec(team.alice, "app", "# App\n")
    team.alice.git("push", "-q", "origin", "main")
    job = team.clone("ci")
    proc = team.ci(job)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    rec = runs(job)[0]
    assert rec["status"] == "held"
    assert "check failed" in rec["reason"]
    branch = f"mdspec/results/{rec['id']}"
    assert rec["pushed_to"] == branch
    assert f"branch {branch}" in proc.stdout
    assert git_bare(team.bare, "show", f"{branch}:code/app.txt") == "# APP\n"


def test_a_dead_jobs_expired_lock_is_taken_over(tmp_path: Path) -> None:
    team = make_team(tmp_path)
    sha = spec(team.alice, "app", "# App\n")
    team.alice.git("push", "-q", "origin", "main")
    # What a killed job leaves: its lock, its time long past.
    tree = team.alice.git("write-tree").strip()
    dead = subprocess.run(
        ["git", "commit-tree", tree, "-m", "mdspec ci lock for main\n\nexpires: 1"],
        cwd=team.alice.top,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    team.alice.git("push", "-q", "origin", f"{dead}:refs/mdspec/ci-lock/main")
    proc = team.ci(team.clone("ci"))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "the CI lock of main expired" in proc.stdout
    assert implemented(team.clone("check", "Eve"), "main") == [sha]
    assert git_bare(team.bare, "for-each-ref", "refs/mdspec/") == ""


def test_ci_push_with_the_built_in_agent_against_the_messages_api(tmp_path: Path) -> None:
    # The CI job's agent is mdspec's own loop on the Messages API (the fake server, in its wire format).
    team = make_team(tmp_path)
    team.alice.configure('[ci]\nmode = "ci"\n')  # the built-in agent, the default backend
    team.alice.commit("use the built-in agent", env=QUIET)
    sha = spec(team.alice, "app", "# App\nSay hello.\n")
    team.alice.git("push", "-q", "origin", "main")
    api = FakeAPI().start()
    try:
        api.edit("create", "code/app.txt", file_text="HELLO\n")
        api.text("Compile the spec\n\nWrote code/app.txt.")
        ci = team.clone("ci")
        env = {"ANTHROPIC_BASE_URL": api.base_url, "ANTHROPIC_API_KEY": FAKE_KEY, "NO_PROXY": "127.0.0.1"}
        proc = team.ci(ci, env=env)
    finally:
        api.close()
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert len(api.requests) == 2  # one turn that wrote the file, one that ended
    assert FAKE_KEY not in proc.stdout + proc.stderr
    last = proc.stdout.splitlines()[-1]
    assert last.startswith("mdspec ci: main: run "), last
    assert " landed: 1 spec commit, 2 turns" in last, last
    team.bob.git("pull", "-q", "--ff-only")
    assert (team.bob.top / "code" / "app.txt").read_text() == "HELLO\n"
    assert implemented(team.bob) == [sha]
    assert pending_lines(team.bob) == ["pending: nothing: every spec commit on this branch is implemented"]
    assert team.agent_runs() == []  # the command backend never ran
    assert_no_force_push(team)
