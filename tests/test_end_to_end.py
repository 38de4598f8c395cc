"""A spec commit becomes a generated commit through the plain git hook, in the foreground."""

from __future__ import annotations

from conftest import FOREGROUND, Repo

from mdspec.fast import trailers


def test_spec_commit_gets_a_generated_commit(mdrepo: Repo) -> None:
    spec = mdrepo.commit("spec: greet", {"spec/app.md": "# App\nSay hello.\n"}, env=FOREGROUND)
    assert mdrepo.head() != spec
    msg = mdrepo.message()
    assert msg.startswith("mdspec: Add out.txt")
    assert trailers.values(msg, trailers.IMPLEMENTS) == [spec]
    assert trailers.values(msg, trailers.CHECK) == ["skipped"]
    assert mdrepo.head("HEAD~1") == spec
    assert (mdrepo.top / "out.txt").read_text() == "implemented\n"
    assert mdrepo.status() == ""
    author = mdrepo.git("log", "-1", "--format=%an <%ae> / %cn").strip()
    assert author == "Ada Lovelace (mdspec) <ada@example.com> / Ada Lovelace"


def test_non_spec_commit_starts_nothing(mdrepo: Repo) -> None:
    before = mdrepo.head()
    code = mdrepo.commit("code", {"src/x.py": "x = 1\n"}, env=FOREGROUND)
    assert mdrepo.head() == code
    assert mdrepo.head("HEAD~1") == before
    assert not (mdrepo.state / "runs").exists()


def test_revert_of_generated_commit_starts_no_run(mdrepo: Repo) -> None:
    mdrepo.commit("spec: greet", {"spec/app.md": "# App\n"}, env=FOREGROUND)
    runs = len(list((mdrepo.state / "runs").iterdir()))
    mdrepo.git("revert", "--no-edit", "HEAD", env=FOREGROUND)
    assert mdrepo.log(1) == ['Revert "mdspec: Add out.txt"']
    assert not (mdrepo.top / "out.txt").exists()
    assert len(list((mdrepo.state / "runs").iterdir())) == runs
    status = mdrepo.mdspec("status").stdout
    assert "generated commit reverted" in status


def test_task_md_is_the_task_and_deleting_it_starts_nothing(mdrepo: Repo) -> None:
    mdrepo.configure("keep_task = true\n" + (mdrepo.top / ".mdspec.toml").read_text())  # deleted by hand below
    mdrepo.commit("keep TASK.md", env={"MDSPEC_RUNNING": "1"})
    task = mdrepo.commit("task: fix", {"TASK.md": "Fix the thing.\n"}, env=FOREGROUND)
    assert trailers.values(mdrepo.message(), trailers.IMPLEMENTS) == [task]
    prompt = next((mdrepo.state / "runs").iterdir()) / "prompt.md"
    assert "Fix the thing." in prompt.read_text()
    head = mdrepo.head()
    mdrepo.git("rm", "-q", "TASK.md")
    done = mdrepo.commit("task done", env=FOREGROUND)
    assert mdrepo.head() == done
    assert mdrepo.head("HEAD~1") == head
    assert "pending: nothing" in mdrepo.mdspec("status").stdout
