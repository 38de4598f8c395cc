"""History is rewritten all the time: rebase, reword, pull --rebase, cherry-pick, squash, amend.

A spec commit's identity is its content (DESIGN §3.2). Each rewrite below is done by real git with the
real post-commit hook installed (commits made with MDSPEC_FOREGROUND=1, so a run the hook started would
have finished — and left a run record — before git returns). None may start a run or leave anything
pending, a fresh clone (no old objects, no reflog) must agree, and the next spec commit implements itself
only.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
from pathlib import Path
from typing import Any

import pytest
from conftest import FOREGROUND, Repo
from runhelpers import QUIET, changed_paths, last_run, queued, runs, set_agent, spec_commit, wait_for

from mdspec.fast import trailers

# Every run adds a file of its own: results never conflict with each other or with the user's commits.
COUNTING_AGENT = """
import os, pathlib
n = len(list(pathlib.Path(".").glob("gen-*.txt")))
pathlib.Path(f"gen-{n}.txt").write_text("generated\\n")
pathlib.Path(os.environ["MDSPEC_SUMMARY_FILE"]).write_text(f"Add gen-{n}.txt\\n")
"""


@pytest.fixture
def hrepo(mdrepo: Repo, tmp_path: Path) -> Repo:
    set_agent(tmp_path, COUNTING_AGENT)
    return mdrepo


def status(repo: Repo) -> dict[str, Any]:
    info: dict[str, Any] = json.loads(repo.mdspec("status", "--json").stdout)
    return info


def assert_nothing_pending(repo: Repo) -> None:
    info = status(repo)
    assert (info["pending"], info["reverted"], info["spec_commits"]) == ([], [], []), info
    assert "pending: nothing" in repo.mdspec("status").stdout


def fresh_clone(repo: Repo, dest: Path, branch: str) -> Repo:
    """A clone over the git protocol's rules (file://): only reachable objects, no reflog, no mdspec state."""
    Repo(dest.parent).git("clone", "-q", "--no-local", "--single-branch", "-b", branch, f"file://{repo.top}", str(dest))
    return Repo(dest)


def assert_fresh_clone_agrees(repo: Repo, tmp_path: Path, branch: str, gone: list[str]) -> None:
    clone = fresh_clone(repo, tmp_path / f"clone-{len(list(tmp_path.glob('clone-*')))}", branch)
    for sha in gone:  # the rewritten commits are not there: the answer comes from the trailers alone
        assert "fatal" in clone.git("cat-file", "-t", sha, check=False), f"{sha} reached the clone"
    assert_nothing_pending(clone)


def assert_next_spec_runs_alone(repo: Repo) -> None:
    n = len(runs(repo))
    spec = spec_commit(repo, f"# next {n}\n", f"spec/next-{n}.md", env=FOREGROUND)
    assert len(runs(repo)) == n + 1
    rec = last_run(repo)
    assert rec["spec_commits"] == [spec], rec
    assert rec["status"] == "landed", rec
    assert trailers.values(repo.message(), trailers.IMPLEMENTS) == [spec]
    assert_nothing_pending(repo)


def implemented_work(repo: Repo, n: int = 2) -> list[str]:
    """n spec commits, each implemented by the hook's (foreground) run: spec, generated, spec, generated."""
    specs = [spec_commit(repo, f"# {i}\n", f"spec/s{i}.md", env=FOREGROUND) for i in range(n)]
    assert [r["status"] for r in runs(repo)] == ["landed"] * n
    assert repo.head("HEAD~1") == specs[-1]
    return specs


def shas_on(repo: Repo, rev: str = "HEAD", n: int = 20) -> list[str]:
    return repo.git("log", "--first-parent", f"-{n}", "--format=%H", rev).split()


# --- rebase, reword, pull --rebase, cherry-pick, squash ------------------------------------------------


def test_rebase_onto_a_moved_main(hrepo: Repo, tmp_path: Path) -> None:
    hrepo.git("switch", "-q", "-c", "feature")
    specs = implemented_work(hrepo)
    hrepo.git("switch", "-q", "main")
    hrepo.commit("user: code on main", {"src/main.py": "x = 1\n"}, env=QUIET)
    hrepo.git("switch", "-q", "feature")
    before = len(runs(hrepo))
    out = hrepo.git("rebase", "main", env=FOREGROUND)
    assert "mdspec" not in out  # the hook said nothing: nothing started
    assert len(runs(hrepo)) == before
    assert queued(hrepo) == []
    on_branch = shas_on(hrepo)
    assert not set(specs) & set(on_branch)  # every sha changed
    assert_nothing_pending(hrepo)
    assert_fresh_clone_agrees(hrepo, tmp_path, "feature", specs)
    assert_next_spec_runs_alone(hrepo)


def test_revert_names_a_rebased_spec_commit_by_its_new_sha(hrepo: Repo) -> None:
    """`mdspec revert SPEC` finds the generated commit of a rewritten spec commit by content."""
    hrepo.git("switch", "-q", "-c", "feature")
    implemented_work(hrepo, 1)
    hrepo.git("switch", "-q", "main")
    hrepo.commit("user: code on main", {"src/main.py": "x = 1\n"}, env=QUIET)
    hrepo.git("switch", "-q", "feature")
    hrepo.git("rebase", "-q", "main", env=QUIET)
    spec, generated = hrepo.head("HEAD~1"), hrepo.head()
    assert trailers.values(hrepo.message(), trailers.IMPLEMENTS) != [spec]  # it names the old sha
    out = hrepo.mdspec("revert", spec).stdout
    assert f"reverted {generated[:10]}" in out
    assert trailers.values(hrepo.message(), trailers.REVERTS) == [generated]
    assert [s["commit"] for s in status(hrepo)["reverted"]] == [spec]


def test_rebase_i_reword_of_spec_commits(hrepo: Repo, tmp_path: Path) -> None:
    specs = implemented_work(hrepo)
    before = len(runs(hrepo))
    # Reword both spec commits (1st and 3rd lines of the todo: spec, generated, spec, generated).
    editors = {
        **FOREGROUND,
        "GIT_SEQUENCE_EDITOR": "sed -i -e '1s/^pick/reword/' -e '3s/^pick/reword/'",
        "GIT_EDITOR": "sed -i -e '1s/^/reworded: /'",
    }
    hrepo.git("rebase", "-i", "HEAD~4", env=editors)
    subjects = hrepo.log(4)
    assert subjects[1].startswith("reworded: spec:"), subjects
    assert subjects[3].startswith("reworded: spec:"), subjects
    assert len(runs(hrepo)) == before
    assert queued(hrepo) == []
    assert_nothing_pending(hrepo)
    assert_fresh_clone_agrees(hrepo, tmp_path, "main", specs)
    assert_next_spec_runs_alone(hrepo)


def test_pull_rebase_in_a_second_clone(hrepo: Repo, tmp_path: Path) -> None:
    origin = tmp_path / "origin.git"
    hrepo.git("clone", "-q", "--bare", str(hrepo.top), str(origin))
    hrepo.git("remote", "add", "origin", str(origin))
    hrepo.git("fetch", "-q", "origin")
    hrepo.git("branch", "-q", "-u", "origin/main")
    second = Repo(tmp_path / "second")
    hrepo.git("clone", "-q", str(origin), str(second.top))
    for key, value in (("user.name", "Grace Hopper"), ("user.email", "grace@example.com")):
        second.git("config", key, value)
    (second.top / ".git/hooks").mkdir(exist_ok=True)
    shutil.copy(hrepo.top / ".git/hooks/post-commit", second.top / ".git/hooks/post-commit")
    # The second clone implements two spec commits (its hook, its runs) before it pushes ...
    specs = implemented_work(second)
    # ... while the first pushed a commit of its own.
    hrepo.commit("user: code", {"src/first.py": "x = 1\n"}, env=QUIET)
    hrepo.git("push", "-q", "origin", "main")
    before = len(runs(second))
    second.git("pull", "-q", "--rebase", env=FOREGROUND)
    assert second.head("HEAD~4") == hrepo.head()  # replayed on top of the first clone's commit
    assert not set(specs) & set(shas_on(second))
    assert len(runs(second)) == before
    assert queued(second) == []
    assert_nothing_pending(second)
    second.git("push", "-q", "origin", "main")
    # The first clone brings them back with a pull of its own: nothing pending there either, no run.
    hrepo.git("pull", "-q", "--rebase", env=FOREGROUND)
    assert hrepo.head() == second.head()
    assert runs(hrepo) == []
    assert_nothing_pending(hrepo)
    assert_fresh_clone_agrees(second, tmp_path, "main", specs)
    assert_next_spec_runs_alone(second)


@pytest.mark.parametrize("record_origin", [False, True], ids=["plain", "with -x"])
def test_cherry_pick_spec_and_generated_onto_another_branch(hrepo: Repo, tmp_path: Path, record_origin: bool) -> None:
    spec = implemented_work(hrepo, 1)[0]
    generated = hrepo.head()
    hrepo.git("switch", "-q", "-c", "release", "HEAD~2")
    hrepo.commit("user: release notes", {"RELEASE.md": "1.0\n"}, env=QUIET)
    before = len(runs(hrepo))
    hrepo.git("cherry-pick", *(["-x"] if record_origin else []), spec, generated, env=FOREGROUND)
    picked = hrepo.message()
    assert trailers.is_generated(picked)
    if record_origin:
        assert f"(cherry picked from commit {generated})" in picked
    assert len(runs(hrepo)) == before
    assert queued(hrepo) == []
    assert hrepo.head() != generated
    assert_nothing_pending(hrepo)
    hrepo.git("branch", "-q", "-D", "main")  # the originals are gone from this repository's branches too
    assert_fresh_clone_agrees(hrepo, tmp_path, "release", [spec, generated])
    assert_next_spec_runs_alone(hrepo)


def test_merge_squash_of_implemented_work(hrepo: Repo, tmp_path: Path) -> None:
    hrepo.git("switch", "-q", "-c", "feature")
    specs = implemented_work(hrepo)
    hrepo.git("switch", "-q", "main")
    before = len(runs(hrepo))
    hrepo.git("merge", "-q", "--squash", "feature")
    out = hrepo.git("commit", "-q", "--no-edit", env=FOREGROUND)
    message = hrepo.message()
    assert message.startswith("Squashed commit of the following:")
    assert f"    {trailers.IMPLEMENTS}: {specs[0]}" in message  # git indents the squashed messages
    assert "mdspec" not in out  # the hook started nothing and said nothing
    assert len(runs(hrepo)) == before
    assert queued(hrepo) == []
    assert {"spec/s0.md", "spec/s1.md", "gen-0.txt", "gen-1.txt"} <= set(changed_paths(hrepo, "HEAD"))
    assert_nothing_pending(hrepo)
    hrepo.git("branch", "-q", "-D", "feature")
    assert_fresh_clone_agrees(hrepo, tmp_path, "main", specs)
    assert_next_spec_runs_alone(hrepo)


def test_a_change_undone_and_made_again_is_pending_again(hrepo: Repo) -> None:
    """Content identity must not hide a new spec commit that repeats an old, implemented change."""
    spec_commit(hrepo, "# App\n", "spec/app.md", env=FOREGROUND)
    first = spec_commit(hrepo, "# App\nSay hello.\n", "spec/app.md", env=FOREGROUND)
    spec_commit(hrepo, "# App\n", "spec/app.md", env=FOREGROUND)  # undone (and implemented)
    again = spec_commit(hrepo, "# App\nSay hello.\n", "spec/app.md", env=QUIET)
    assert hrepo.git("diff", f"{first}~1", first) == hrepo.git("diff", f"{again}~1", again)
    assert [p["commit"] for p in status(hrepo)["pending"]] == [again]
    # Rewritten, so that every implemented commit is matched by content: still only the last one.
    editors = {
        **FOREGROUND,
        "GIT_SEQUENCE_EDITOR": "sed -i -e '1s/^pick/reword/'",
        "GIT_EDITOR": "sed -i -e '1s/^/reworded: /'",
    }
    hrepo.git("rebase", "-i", f"{first}~1", env=editors)
    assert hrepo.log(7)[4].startswith("reworded: ")
    assert [p["commit"] for p in status(hrepo)["pending"]] == [hrepo.head()]
    assert hrepo.head() != again
    assert len(runs(hrepo)) == 3


# --- amend while a run goes on --------------------------------------------------------------------------

WAITING_AGENT = """
import os, pathlib, time
pathlib.Path({started!r}).write_text("started")
deadline = time.time() + 30
while not pathlib.Path({flag!r}).exists() and time.time() < deadline:
    time.sleep(0.02)
n = len(list(pathlib.Path(".").glob("gen-*.txt")))
pathlib.Path(f"gen-{{n}}.txt").write_text("generated\\n")
pathlib.Path(os.environ["MDSPEC_SUMMARY_FILE"]).write_text(f"Add gen-{{n}}.txt\\n")
"""


def idle(repo: Repo) -> bool:
    info = status(repo)
    return not info["worker_pid"] and not info["queued"]


def settle(repo: Repo, n_runs: int) -> list[dict[str, Any]]:
    """Oldest first, once `n_runs` runs ended and the worker is gone."""
    wait_for(
        lambda: len(runs(repo)) == n_runs and runs(repo)[0]["status"] != "running" and idle(repo),
        30,
        f"{n_runs} runs to finish",
    )
    return list(reversed(runs(repo)))


@pytest.fixture
def waiting(mdrepo: Repo, tmp_path: Path) -> Any:
    started, flag = tmp_path / "started", tmp_path / "go"
    set_agent(tmp_path, WAITING_AGENT.format(started=str(started), flag=str(flag)))
    yield started, flag
    flag.write_text("go")
    info = status(mdrepo)
    if info["worker_pid"]:  # a failed test must not leave its worker running into the next one
        os.kill(info["worker_pid"], signal.SIGTERM)


def amend_during_its_run(repo: Repo, waiting: tuple[Path, Path]) -> tuple[str, str, dict[str, Any], dict[str, Any]]:
    """A spec commit amended while its run goes on: (spec, amended, the first run, the second run)."""
    started, flag = waiting
    spec = spec_commit(repo, "# App\nSay hello.\n", "spec/app.md", env={})  # the hook starts a worker
    wait_for(started.exists, what="the agent to start")
    repo.write("spec/app.md", "# App\nSay hello, world.\n")
    repo.git("add", "-A")
    repo.git("commit", "-q", "--amend", "-m", "spec: say hello, world")
    amended = repo.head()
    flag.write_text("go")
    first, second = settle(repo, 2)
    return spec, amended, first, second


def test_amend_of_the_spec_commit_during_its_run(mdrepo: Repo, waiting: tuple[Path, Path], tmp_path: Path) -> None:
    spec, amended, first, second = amend_during_its_run(mdrepo, waiting)
    assert first["spec_commits"] == [spec], first
    assert first["status"] == "superseded", first
    assert spec[:10] in first["reason"]
    assert "not landed" in first["reason"]
    # Nothing is lost: the superseded result stays under its ref.
    assert mdrepo.head(f"refs/mdspec/results/{first['id']}") == first["result"]
    # The amended commit got a run of its own, once, and is what the branch says is implemented.
    assert second["spec_commits"] == [amended], second
    assert second["status"] == "landed", second
    assert shas_on(mdrepo, n=3)[:2] == [mdrepo.head(), amended]
    assert trailers.values(mdrepo.message(), trailers.IMPLEMENTS) == [amended]
    assert mdrepo.git("log", "--format=%H", f"--grep={trailers.RUN}").split() == [mdrepo.head()]
    assert_nothing_pending(mdrepo)
    assert "superseded" in mdrepo.mdspec("status").stdout
    assert_fresh_clone_agrees(mdrepo, tmp_path, "main", [spec, first["result"]])


def test_reword_amend_during_the_run_lands_once(mdrepo: Repo, waiting: tuple[Path, Path], tmp_path: Path) -> None:
    started, flag = waiting
    spec = spec_commit(mdrepo, "# App\nSay hello.\n", "spec/app.md", env={})
    wait_for(started.exists, what="the agent to start")
    mdrepo.git("commit", "-q", "--amend", "-m", "spec: greet (reworded)")
    reworded = mdrepo.head()
    flag.write_text("go")
    (only,) = settle(mdrepo, 1)  # the reworded commit is the same change: implemented, no second run
    assert only["spec_commits"] == [spec], only
    assert only["status"] == "landed", only
    assert mdrepo.head("HEAD~1") == reworded
    assert_nothing_pending(mdrepo)
    assert_fresh_clone_agrees(mdrepo, tmp_path, "main", [spec])


def test_a_new_task_committed_during_the_run_is_kept_for_the_next_run(mdrepo: Repo, waiting: tuple[Path, Path]) -> None:
    started, flag = waiting
    first = mdrepo.commit("task: fix X", {"TASK.md": "Fix X.\n"}, env={})
    wait_for(started.exists, what="the agent to start")
    second = mdrepo.commit("task: fix Y", {"TASK.md": "Fix Y.\n"}, env={})
    flag.write_text("go")
    one, two = settle(mdrepo, 2)
    # The first result would remove TASK.md, which now holds a new task: it keeps it, and lands.
    assert one["spec_commits"] == [first], one
    assert one["status"] == "landed", one
    assert changed_paths(mdrepo, one["landed_as"]) == ["gen-0.txt"]
    assert "kept TASK.md" in mdrepo.message(one["landed_as"])
    assert two["spec_commits"] == [second], two
    assert two["status"] == "landed", two
    assert changed_paths(mdrepo, "HEAD") == ["TASK.md", "gen-1.txt"]  # the second task is done: removed
    assert not (mdrepo.top / "TASK.md").exists()
    assert mdrepo.status() == ""
    assert_nothing_pending(mdrepo)


# --- results that change nothing, and TASK.md ------------------------------------------------------------


def test_empty_result_is_committed_and_a_second_clone_agrees(mdrepo: Repo, tmp_path: Path) -> None:
    set_agent(tmp_path, "print('the code already does this')\n")
    spec = spec_commit(mdrepo, env=FOREGROUND)
    rec = last_run(mdrepo)
    assert rec["status"] == "empty"
    assert rec["landed_as"] == mdrepo.head()
    assert mdrepo.head("HEAD~1") == spec
    assert changed_paths(mdrepo, "HEAD") == []
    assert "nothing needed to change" in mdrepo.message()
    assert len(runs(mdrepo)) == 1
    assert queued(mdrepo) == []
    assert_nothing_pending(mdrepo)
    assert_fresh_clone_agrees(mdrepo, tmp_path, "main", [])
    set_agent(tmp_path, COUNTING_AGENT)
    assert_next_spec_runs_alone(mdrepo)


def test_task_md_is_removed_by_its_generated_commit(mdrepo: Repo, tmp_path: Path) -> None:
    task = mdrepo.commit("task: fix the greeting", {"TASK.md": "Fix the greeting.\n"}, env=FOREGROUND)
    rec = last_run(mdrepo)
    assert rec["status"] == "landed"
    assert rec["spec_commits"] == [task]
    assert mdrepo.head("HEAD~1") == task
    assert mdrepo.git("diff-tree", "-r", "--no-commit-id", "--name-status", "HEAD").split() == [
        "D",
        "TASK.md",
        "A",
        "out.txt",
    ]
    assert "removed TASK.md" in mdrepo.message()
    assert not (mdrepo.top / "TASK.md").exists()
    assert mdrepo.status() == ""
    # The generated commit that deletes TASK.md started nothing, and nothing is pending.
    assert len(runs(mdrepo)) == 1
    assert queued(mdrepo) == []
    assert_nothing_pending(mdrepo)
    assert_fresh_clone_agrees(mdrepo, tmp_path, "main", [])


def test_task_md_is_kept_with_keep_task(mdrepo: Repo) -> None:
    mdrepo.configure("keep_task = true\n" + (mdrepo.top / ".mdspec.toml").read_text())
    mdrepo.commit("keep TASK.md", env=QUIET)
    task = mdrepo.commit("task: fix the greeting", {"TASK.md": "Fix the greeting.\n"}, env=FOREGROUND)
    assert last_run(mdrepo)["spec_commits"] == [task]
    assert changed_paths(mdrepo, "HEAD") == ["out.txt"]
    assert (mdrepo.top / "TASK.md").read_text() == "Fix the greeting.\n"
    assert "removed TASK.md" not in mdrepo.message()
    assert_nothing_pending(mdrepo)


def test_git_revert_of_the_commit_that_removed_task_md_starts_nothing(mdrepo: Repo) -> None:
    task = mdrepo.commit("task: fix the greeting", {"TASK.md": "Fix the greeting.\n"}, env=FOREGROUND)
    assert not (mdrepo.top / "TASK.md").exists()
    # The revert brings TASK.md back; like any revert of a generated commit, it waits for `mdspec run`.
    mdrepo.git("revert", "--no-edit", "HEAD", env=FOREGROUND)
    assert (mdrepo.top / "TASK.md").read_text() == "Fix the greeting.\n"
    assert len(runs(mdrepo)) == 1
    assert queued(mdrepo) == []
    info = status(mdrepo)
    assert info["pending"] == []
    assert [r["commit"] for r in info["reverted"]] == [task]
