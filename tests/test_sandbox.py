"""The bubblewrap sandbox, exercised for real (CI installs bubblewrap)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import Repo

from mdspec.exec import procs, sandbox
from mdspec.fast.globs import Globs

needs_bwrap = pytest.mark.skipif(sandbox.bwrap_path() is None, reason="bubblewrap is not usable on this machine")


@pytest.fixture
def box(repo: Repo, git_env: Path) -> tuple[Repo, Path, sandbox.Sandbox]:
    wt = repo.top.parent / "wt"
    repo.write("spec/a.md", "spec\n")
    repo.commit("spec")
    repo.git("worktree", "add", "-q", "--detach", str(wt), "HEAD")
    (git_env / ".ssh").mkdir()
    (git_env / ".ssh" / "id_ed25519").write_text("PRIVATE KEY\n")
    (git_env / ".netrc").write_text("machine x password y\n")
    sb = sandbox.build("auto", wt, repo.top / ".git", Globs(["spec/**", "AGENTS.md"]), network=False)
    return repo, wt, sb


def sh(sb: sandbox.Sandbox, wt: Path, script: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(sb.wrap(["bash", "-c", script]), cwd=wt, capture_output=True, text=True, timeout=30)


@needs_bwrap
def test_worktree_writable_protected_and_git_dir_not(box: tuple[Repo, Path, sandbox.Sandbox]) -> None:
    repo, wt, sb = box
    assert sb.mode == "bwrap"
    assert sh(sb, wt, "echo code > main.py").returncode == 0
    assert (wt / "main.py").read_text() == "code\n"
    assert sh(sb, wt, "echo evil > spec/a.md").returncode != 0
    assert sh(sb, wt, "echo evil > spec/new.md").returncode != 0
    assert (wt / "spec" / "a.md").read_text() == "spec\n"
    hook = repo.top / ".git" / "hooks" / "post-commit"
    assert sh(sb, wt, f"mkdir -p {hook.parent}; echo evil > {hook}").returncode != 0
    assert not hook.exists()
    assert sh(sb, wt, f"echo '[core]' >> {repo.top / '.git' / 'config'}").returncode != 0
    assert sh(sb, wt, f"echo x > {repo.top / 'README.md'}").returncode != 0  # the user's checkout
    assert sh(sb, wt, "git status --short").returncode == 0  # git still works read-mostly


@needs_bwrap
def test_home_secrets_hidden_and_tmp_private(box: tuple[Repo, Path, sandbox.Sandbox], git_env: Path) -> None:
    _, wt, sb = box
    out = sh(sb, wt, f"cat {git_env}/.ssh/id_ed25519; cat {git_env}/.netrc; echo done")
    assert "PRIVATE KEY" not in out.stdout
    assert "password" not in out.stdout
    marker = Path("/tmp") / "mdspec-sandbox-probe"
    sh(sb, wt, f"echo x > {marker}")
    assert not marker.exists()


@needs_bwrap
def test_no_network(box: tuple[Repo, Path, sandbox.Sandbox]) -> None:
    _, wt, sb = box
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    port = server.getsockname()[1]
    probe = f"python3 -c \"import socket; socket.create_connection(('127.0.0.1', {port}), timeout=3)\""
    assert sh(sb, wt, probe).returncode != 0
    server.close()


@needs_bwrap
def test_process_tree_dies_with_the_sandbox(box: tuple[Repo, Path, sandbox.Sandbox]) -> None:
    _, wt, sb = box
    sh(sb, wt, "sleep 4321 & disown; echo started")
    ps = subprocess.run(["pgrep", "-f", "sleep 4321"], capture_output=True, text=True)
    assert ps.stdout.strip() == ""


def test_off_and_required_without_bwrap(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    assert sandbox.build("off", tmp_path, tmp_path, Globs(["spec/**"]), False).prefix == ()
    monkeypatch.setattr(sandbox, "bwrap_path", lambda: None)
    auto = sandbox.build("auto", tmp_path, tmp_path, Globs(["spec/**"]), False)
    assert auto.prefix == ()
    assert auto.warning
    assert "not installed" in auto.warning
    with pytest.raises(sandbox.SandboxUnavailable, match="apt-get install bubblewrap"):
        sandbox.build("bwrap", tmp_path, tmp_path, Globs(["spec/**"]), False)


@needs_bwrap
@pytest.mark.parametrize("target", ["/nonexistent/secret", "../../outside.txt", "spec/a.md"])
def test_a_protected_symlink_does_not_stop_the_sandbox(repo: Repo, git_env: Path, target: str) -> None:
    outside = repo.top.parent / "outside.txt"
    outside.write_text("the user's file outside the repository\n")
    repo.write("spec/a.md", "spec\n")
    (repo.top / "TASK.md").symlink_to(target)
    (repo.top / "docs").symlink_to("/nonexistent/dir")  # a protected directory that is a dangling link
    repo.commit("spec and a linked task")
    wt = repo.top.parent / "wt"
    repo.git("worktree", "add", "-q", "--detach", str(wt), "HEAD")
    sb = sandbox.build("bwrap", wt, repo.top / ".git", Globs(["spec/**", "TASK.md", "docs/**"]), network=False)
    proc = sh(sb, wt, "echo started; echo pwned > ../outside.txt; echo x > spec/a.md; true")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("started"), proc.stderr
    assert outside.read_text() == "the user's file outside the repository\n"  # not bound writable through the link
    assert (wt / "spec/a.md").read_text() == "spec\n"


# --- sandbox off: the worker's own environment --------------------------------------------------------

WORKER = """
import ctypes, os, subprocess, sys
from mdspec.exec import procs
if os.geteuid() == 0:
    # Root reads every process's environ: become an ordinary user, as people run mdspec. Changing the uid
    # clears the dumpable flag, so set it back as an ordinary process has it.
    os.setgid(65534)
    os.setuid(65534)
    ctypes.CDLL(None).prctl(procs.PR_SET_DUMPABLE, 1, 0, 0, 0)
if sys.argv[1] == "protect":
    assert procs.protect_environ()
# What an unsandboxed command of the same user tries: the worker's environment holds the API key.
r = subprocess.run(["cat", f"/proc/{os.getpid()}/environ"], capture_output=True)
print(r.returncode, os.environ["ANTHROPIC_API_KEY"].encode() in r.stdout)
"""


@pytest.mark.parametrize(("mode", "readable"), [("protect", False), ("plain", True)])
def test_the_worker_environment_is_unreadable_to_its_commands(tmp_path: Path, mode: str, readable: bool) -> None:
    env = {
        **os.environ,
        "ANTHROPIC_API_KEY": "sk-ant-worker-env-3b8d1f-SECRET",
        "PYTHONPATH": str(Path(sandbox.__file__).parent.parent),
    }
    proc = subprocess.run(
        [sys.executable, "-c", WORKER, mode], capture_output=True, text=True, env=env, cwd="/", timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    code, seen = proc.stdout.split()
    assert (code == "0", seen == "True") == (readable, readable), proc.stdout


def test_environ_exposed_says_so_for_root() -> None:
    assert procs.environ_exposed() == (os.geteuid() == 0)


def test_doctor_says_whether_sandbox_off_exposes_the_key(mdrepo: Repo) -> None:
    proc = mdrepo.mdspec("doctor", check=False, env={"MDSPEC_SANDBOX": "off"})
    line = next(ln for ln in proc.stdout.splitlines() if "sandbox off" in ln)
    assert ("can read the API key in the worker's /proc/<pid>/environ" in line) == (os.geteuid() == 0), line


def test_hidden_because_names_what_hides_a_path() -> None:
    home = "/home/ada"
    assert sandbox.hidden_because("/tmp/x/bin/claude", home) == "the sandbox has a private /tmp"
    assert sandbox.hidden_because("/home/ada/.config/agents/run.py", home) == "the sandbox hides ~/.config"
    assert sandbox.hidden_because("/home/ada/.local/bin/claude", home) is None
    assert sandbox.hidden_because("/usr/bin/env", home) is None
    assert sandbox.hidden_because("/home/ada/.configs/x", home) is None  # a prefix of the name is not the dir


def test_will_confine_follows_the_mode_and_bwrap(monkeypatch: pytest.MonkeyPatch) -> None:
    assert not sandbox.will_confine("off")
    monkeypatch.setattr(sandbox, "bwrap_path", lambda: "/usr/bin/bwrap")
    assert sandbox.will_confine("auto")
    assert sandbox.will_confine("bwrap")
    monkeypatch.setattr(sandbox, "bwrap_path", lambda: None)
    assert not sandbox.will_confine("auto")
