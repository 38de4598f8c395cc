"""Faults injected into runs: API storms and cut connections, a full disk, damaged state files, a config
broken while a run waits, a burst of spec commits, and the user working during landing.

Each test ends with nothing of the user's lost and the next run working. Faults already covered
elsewhere are cited in docs/security.md (two workers at once: test_runner.py::
test_two_workers_started_at_once_run_one_at_a_time; edits, staged files and a branch switch during a
run: tests/test_land.py).
"""

from __future__ import annotations

import errno
import json
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import Repo
from fakeapi import FakeAPI
from runhelpers import set_agent, user_state, wait_for
from test_attacks import QUIET, Attack, api, configure, transcript  # noqa: F401 - api is a fixture
from test_land import APP, BlockedRun

from mdspec.agents import agent
from mdspec.agents.session import RunContext, Session
from mdspec.fast import trailers, triggers
from mdspec.run import runner

pytestmark = pytest.mark.filterwarnings("ignore:The model .* is deprecated:DeprecationWarning")


@pytest.fixture
def flt(
    repo: Repo,
    api: FakeAPI,  # noqa: F811 - the fixture imported above
    git_env: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Attack:
    """A repository with a spec commit waiting, the built-in agent with the SDK's usual two retries."""

    def make_session(ctx: RunContext) -> Session:
        return agent.AnthropicSession(
            ctx, lambda: agent.make_client(max_retries=2, timeout=30), bash_timeout=10, shell_prefix=ctx.sandbox
        )

    monkeypatch.setattr(runner, "make_session", make_session)
    repo.commit("project", {"AGENTS.md": "# rules\n", "src/app.py": "print('app')\n"}, env=QUIET)
    configure(repo, "off")  # faults, not confinement: these run wherever bubblewrap is missing too
    repo.commit("spec: greet", {"spec/app.md": "# App\n\nGreet the world.\n"}, env=QUIET)
    return Attack(repo, api, git_env, tmp_path)


def assert_failed_cleanly(flt: Attack, out: Any, *needles: str) -> None:
    assert out.code == 1, out.rec
    assert out.rec["status"] == "failed", out.rec
    reason = out.rec["reason"]
    assert "\n" not in reason, reason
    assert all(n in reason for n in needles), reason
    flt.assert_untouched(out)  # nothing landed, nothing of the user's changed


def assert_next_run_lands(flt: Attack, name: str = "again.py") -> None:
    flt.api.script.clear()
    flt.finish(name)
    out = flt.run()
    assert out.code == 0, out.rec
    assert out.rec["status"] == "landed", out.rec
    assert (flt.repo.top / name).is_file()
    flt.assert_untouched(out)


# --- the API ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [429, 529, 500])
def test_api_error_storm(flt: Attack, status: int) -> None:
    flt.api.edit("create", "partial.py", file_text="x = 1\n")
    for _ in range(8):
        flt.api.error(status, retry_after_ms=5)
    out = flt.run()
    assert [r.status for r in flt.api.requests] == [200, status, status, status]  # the SDK retried twice
    assert_failed_cleanly(flt, out, f"status {status}", "req_fake", "partial work held as refs/mdspec/results/")
    held = flt.repo.git("rev-parse", f"refs/mdspec/results/{out.rec['id']}").strip()
    assert flt.repo.git("show", f"{held}:partial.py") == "x = 1\n"
    assert any(e["kind"] == "error" for e in transcript(out.run_dir))
    assert_next_run_lands(flt)


def test_connection_dropped_mid_stream(flt: Attack) -> None:
    flt.api.bash("echo first turn")
    flt.api.drop("A long explanation that never arrives in full. " * 40, keep=0.4)
    out = flt.run()
    assert len(flt.api.requests) == 2
    assert_failed_cleanly(flt, out)
    assert out.rec["stopped_by"] == "error"
    assert_next_run_lands(flt)


def test_disk_full_while_writing_the_transcript(flt: Attack, monkeypatch: pytest.MonkeyPatch) -> None:
    real_open = Path.open
    writes = {"n": 0}

    def full_after_three(self: Path, *args: Any, **kwargs: Any) -> Any:
        if self.name == "transcript.jsonl" and "a" in (args[0] if args else kwargs.get("mode", "r")):
            writes["n"] += 1
            if writes["n"] > 3:  # request, response and tool_call fit; the tool result does not
                raise OSError(errno.ENOSPC, "No space left on device", str(self))
        return real_open(self, *args, **kwargs)

    monkeypatch.setattr(Path, "open", full_after_three)
    flt.api.bash("echo hello")
    flt.api.text("never reached")
    out = flt.run()
    assert_failed_cleanly(flt, out, "No space left on device")
    assert out.rec["stopped_by"] == "error"  # the session ended itself; no exception escaped it
    assert len(transcript(out.run_dir)) == 3  # what was written before the disk filled stays readable
    monkeypatch.setattr(Path, "open", real_open)
    assert flt.repo.mdspec("status").returncode == 0
    assert_next_run_lands(flt)


# --- damaged state ------------------------------------------------------------------------------------------


def test_corrupted_run_json_and_queue_file(flt: Attack) -> None:
    flt.finish()
    first = flt.run()
    assert first.rec["status"] == "landed"
    data = (first.run_dir / "run.json").read_bytes()
    (first.run_dir / "run.json").write_bytes(data[: len(data) // 2])  # truncated mid-write
    broken = first.run_dir.parent / "20200101-000000-badbad"
    broken.mkdir()
    (broken / "run.json").write_bytes(b"\x00\xff{not json")
    spec = flt.repo.commit("spec: more", {"spec/more.md": "# More\n"}, env=QUIET)
    state = flt.git_dir / "mdspec"
    triggers.enqueue(str(state), spec, "refs/heads/main")
    (state / "queue" / spec).write_text("refs/heads/ma")  # truncated: no time line
    (state / "queue" / "garbage").write_text("\x00\x01")
    for args in (["status"], ["log"], ["status", "--json"]):
        proc = flt.repo.mdspec(*args)
        assert proc.returncode == 0, proc.stderr
        assert "Traceback" not in proc.stderr, proc.stderr
    assert "unreadable" in flt.repo.mdspec("status").stdout
    flt.finish("more.py")
    lines: list[str] = []
    assert runner.work(flt.repo.top, None, lines.append) == 0, lines
    assert trailers.values(flt.repo.message(), trailers.IMPLEMENTS) == [spec]
    assert (flt.repo.top / "more.py").is_file()
    assert [e[0] for e in triggers.entries(str(state))] == []
    assert "pending: nothing" in flt.repo.mdspec("status").stdout


def test_config_made_invalid_while_a_run_waits_in_the_queue(flt: Attack) -> None:
    state = flt.git_dir / "mdspec"
    spec = flt.repo.head()
    triggers.enqueue(str(state), spec, "refs/heads/main")
    good = (flt.repo.top / ".mdspec.toml").read_text()
    (flt.repo.top / ".mdspec.toml").write_text(good + "\nsandbox = 12\n")  # uncommitted, as the user typed it
    before = user_state(flt.repo)
    lines: list[str] = []
    assert runner.work(flt.repo.top, None, lines.append) == 1
    errors = [ln for ln in lines if ln.startswith("mdspec: error:")]
    assert len(errors) == 1, lines
    assert ".mdspec.toml" in errors[0], lines
    assert "sandbox" in errors[0], lines
    assert user_state(flt.repo) == before  # the user's half-edited config is theirs
    assert flt.api.requests == []
    status = flt.repo.mdspec("status").stdout
    assert "config: .mdspec.toml" in status
    # Not lost: once the config is fixed the spec commit is still pending and `mdspec run` implements it.
    (flt.repo.top / ".mdspec.toml").write_text(good)
    pending = json.loads(flt.repo.mdspec("status", "--json").stdout)["pending"]
    assert [p["commit"] for p in pending] == [spec]
    flt.finish()
    out = flt.run()
    assert out.rec["status"] == "landed"
    assert out.rec["spec_commits"] == [spec]


# --- concurrency ---------------------------------------------------------------------------------------------

SLOW_AGENT = """
import os, pathlib, time
time.sleep(0.3)
name = f"gen-{time.time_ns()}.txt"
pathlib.Path(name).write_text("generated\\n")
pathlib.Path(os.environ["MDSPEC_SUMMARY_FILE"]).write_text("Add " + name + "\\n")
"""


def _commit_retrying(repo: Repo, n: int) -> str:
    """A spec commit through the real hook, retried as a user would when git refuses for a moment: a landing
    holds the index lock, as any git command does. Nothing else may go wrong: the branch only moves under
    that lock, so git never finds HEAD moved under its own commit ("cannot lock ref")."""
    for _ in range(100):
        try:
            return repo.commit(f"spec: burst {n}", {f"spec/burst-{n}.md": f"# Burst {n}\n"}, env={})
        except AssertionError as exc:
            if "index.lock" not in str(exc):
                raise
            time.sleep(0.05)
    raise AssertionError("the index stayed locked")


def _settled(repo: Repo) -> bool:
    info = json.loads(repo.mdspec("status", "--json").stdout)
    return not info["worker_pid"] and not info["queued"] and not info["pending"]


def test_twenty_spec_commits_in_two_seconds(mdrepo: Repo, tmp_path: Path) -> None:
    set_agent(tmp_path, SLOW_AGENT)
    made: list[tuple[str, float]] = []  # each spec commit and when its `git commit` returned
    for n in range(20):
        made.append((_commit_retrying(mdrepo, n), time.time()))
    shas = [sha for sha, _ in made]
    wait_for(lambda: _settled(mdrepo), 120, "every spec commit to be implemented")
    implemented = [
        sha
        for msg in mdrepo.git("log", "--format=%B%x00").split("\0")
        for sha in trailers.values(msg.strip(), trailers.IMPLEMENTS)
    ]
    assert sorted(set(implemented)) == sorted(shas), "a spec commit was lost"
    runs = [json.loads(p.read_text()) for p in (mdrepo.state / "runs").glob("*/run.json")]
    assert all(r["status"] == "landed" for r in runs), [(r["status"], r.get("reason")) for r in runs]
    # Coalescing, however slow the machine made the burst: a run takes every spec commit on the branch when
    # it starts, and the next run starts after the previous one ended. So a spec commit made before a run
    # ended is implemented by that run or the next one, never later.
    runs.sort(key=lambda r: float(r["started"]))
    done: set[str] = set()
    for i, run in enumerate(runs):
        done.update(run["spec_commits"])
        before = {sha for sha, when in made if i > 0 and when < float(runs[i - 1]["ended"])}
        assert before <= done, f"run {i + 1} of {len(runs)} left {sorted(before - done)} for later"
    assert mdrepo.status() == ""


def test_edits_staged_files_and_branch_switch_while_landing(mdrepo: Repo, tmp_path: Path) -> None:
    """All three at once (each alone: tests/test_land.py); nothing of the user's is lost."""
    mdrepo.commit("add app", {"app.py": APP}, env=QUIET)
    mdrepo.commit("spec: change line 1", {"spec/app.md": "# App\nline 1 by the agent\n"}, env=QUIET)
    run = BlockedRun(mdrepo, tmp_path)
    mdrepo.write("README.md", "# project\nedited, not staged\n")
    mdrepo.write("staged.txt", "staged by the user\n")
    mdrepo.git("add", "staged.txt")
    mdrepo.git("switch", "-q", "-c", "topic")
    before = user_state(mdrepo)
    run.release()
    assert user_state(mdrepo) == before
    rec = json.loads((mdrepo.state / "runs" / mdspec_newest(mdrepo) / "run.json").read_text())
    assert rec["status"] == "held"
    assert "main is not checked out (now topic)" in rec["reason"]
    mdrepo.git("switch", "-q", "main")  # the edits and the staged file come along
    assert mdrepo.mdspec("apply").returncode == 0
    assert (mdrepo.top / "app.py").read_text().startswith("line 1 by the agent\n")
    assert (mdrepo.top / "README.md").read_text() == "# project\nedited, not staged\n"
    assert mdrepo.status() == " M README.md\nA  staged.txt\n"


def mdspec_newest(repo: Repo) -> str:
    return max((p for p in (repo.state / "runs").iterdir()), key=lambda p: p.stat().st_mtime).name


def test_status_and_log_survive_a_missing_state_dir(mdrepo: Repo) -> None:
    subprocess.run(["rm", "-rf", str(mdrepo.state)], check=True)
    assert mdrepo.mdspec("status").returncode == 0
    log = mdrepo.mdspec("log", check=False)
    assert log.returncode == 1
    assert log.stderr.startswith("mdspec: error: no run yet")
    assert "Traceback" not in log.stderr
