"""`mdspec doctor`: one line per check, OK or what to do; exit 1 when something needs fixing."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import fakeclis
import pytest
from conftest import Repo
from fakeapi import FakeAPI, fake_api  # noqa: F401

from mdspec import config
from mdspec.agents import backends
from mdspec.commands import doctor
from mdspec.exec import sandbox


def test_all_ok_with_a_command_backend(mdrepo: Repo) -> None:
    proc = mdrepo.mdspec("doctor", check=False)
    lines = proc.stdout.splitlines()
    assert proc.returncode == 0, proc.stdout
    assert all(ln.startswith("OK") for ln in lines)
    assert any("plain git hook" in ln for ln in lines)
    assert any("command backend" in ln for ln in lines)
    assert any(ln.startswith("OK   state dir") for ln in lines)


def test_missing_key_hook_and_bad_command_are_reported(repo: Repo, monkeypatch: pytest.MonkeyPatch) -> None:
    repo.write(".mdspec.toml", "")
    proc = repo.mdspec("doctor", check=False)
    assert proc.returncode == 1
    fixes = [ln for ln in proc.stdout.splitlines() if ln.startswith("FIX")]
    assert any("ANTHROPIC_API_KEY" in ln for ln in fixes)
    assert any(ln.startswith("FIX  hook: no post-commit hook") for ln in fixes)
    repo.write(".mdspec.toml", '[agent]\ncommand = "no-such-agent-cli --go"\n')
    proc = repo.mdspec("doctor", check=False, env={"ANTHROPIC_API_KEY": "x"})
    assert "FIX  agent.command's program 'no-such-agent-cli' is not found" in proc.stdout


def test_bad_config_is_one_line(repo: Repo) -> None:
    repo.write(".mdspec.toml", "watch = 3\n")
    proc = repo.mdspec("doctor", check=False)
    assert proc.returncode == 1
    assert "FIX  config: .mdspec.toml: watch:" in proc.stdout
    assert "Traceback" not in proc.stderr


def test_hook_in_core_hooks_path_is_recognised(repo: Repo) -> None:
    repo.write(".mdspec.toml", "")
    repo.git("config", "core.hooksPath", "team-hooks")
    proc = repo.mdspec("doctor", check=False)
    assert "FIX  hook: no post-commit hook in core.hooksPath team-hooks" in proc.stdout
    hook = repo.write("team-hooks/post-commit", "#!/bin/sh\nrun-linters\n")
    proc = repo.mdspec("doctor", check=False)
    assert f"FIX  hook: {hook.resolve()} does not run mdspec" in proc.stdout
    hook.write_text("#!/bin/sh\nrun-linters\nmdspec hook post-commit\n")
    proc = repo.mdspec("doctor", check=False)
    assert f"OK   hook: called from your own {hook.resolve()}" in proc.stdout


def test_husky_and_lefthook_hooks_are_recognised(repo: Repo) -> None:
    repo.write(".mdspec.toml", "")
    # husky 9: core.hooksPath is .husky/_, whose generated scripts run .husky/<hook>.
    repo.git("config", "core.hooksPath", ".husky/_")
    repo.write(".husky/_/post-commit", '#!/usr/bin/env sh\n. "$(dirname "$0")/h"\n')
    proc = repo.mdspec("doctor", check=False)
    assert "FIX  hook:" in proc.stdout
    repo.write(".husky/post-commit", "mdspec hook post-commit\n")
    proc = repo.mdspec("doctor", check=False)
    assert f"OK   hook: called from {(repo.top / '.husky' / 'post-commit').resolve()}" in proc.stdout
    # lefthook writes .git/hooks/post-commit itself and keeps the commands in lefthook.yml.
    repo.git("config", "--unset", "core.hooksPath")
    repo.write(".git/hooks/post-commit", "#!/bin/sh\ncall_lefthook run post-commit\n")
    assert "FIX  hook:" in repo.mdspec("doctor", check=False).stdout
    repo.write("lefthook.yml", "post-commit:\n  commands:\n    mdspec:\n      run: mdspec hook post-commit\n")
    assert f"OK   hook: called from {repo.top / 'lefthook.yml'}" in repo.mdspec("doctor", check=False).stdout


# --- the agent command as the run will start it ------------------------------------------------------

needs_bwrap = pytest.mark.skipif(sandbox.bwrap_path() is None, reason="bubblewrap is not usable on this machine")


def agent_lines(proc: subprocess.CompletedProcess[str]) -> list[str]:
    return [ln for ln in proc.stdout.splitlines() if "agent command" in ln]


@needs_bwrap
def test_an_agent_cli_the_sandbox_cannot_see_is_a_fix(repo: Repo, git_env: Path) -> None:
    hidden = fakeclis.install(git_env / ".config" / "yarn" / "global" / "bin")  # ~/.config is hidden in there
    repo.write(".mdspec.toml", 'sandbox = "bwrap"\n[agent]\npreset = "codex"\n')
    env = {"MDSPEC_SANDBOX": "bwrap", "PATH": f"{hidden}:{os.environ['PATH']}"}
    proc = repo.mdspec("doctor", check=False, env=env)
    assert proc.returncode == 1
    assert agent_lines(proc) == [
        f"FIX  agent command in the sandbox: {hidden}/codex cannot be seen by the run (the "
        "sandbox hides ~/.config): install or move it elsewhere (e.g. /usr/local or "
        '~/.local), or set sandbox = "off" in .mdspec.toml'
    ]
    assert any(ln.startswith("OK   command backend, preset codex") for ln in proc.stdout.splitlines())
    seen = fakeclis.install(repo.top / ".git" / "fake-bin")  # the git dir is there, read-only
    proc = repo.mdspec("doctor", check=False, env={**env, "PATH": f"{seen}:{os.environ['PATH']}"})
    assert agent_lines(proc) == [
        "OK   agent command in the sandbox: codex is there (codex exec --json "
        "--dangerously-bypass-approvals-and-sandbox --skip-git-repo-check "
        '--output-last-message "$MDSPEC_SUMMARY_FILE" -)'
    ]


@needs_bwrap
def test_a_script_or_its_interpreter_the_sandbox_cannot_see_is_a_fix(repo: Repo, git_env: Path, tmp_path: Path) -> None:
    def line(command: str) -> str:
        repo.write(".mdspec.toml", f'sandbox = "bwrap"\n[agent]\ncommand = "{command}"\n')
        (found,) = agent_lines(repo.mdspec("doctor", check=False, env={"MDSPEC_SANDBOX": "bwrap"}))
        return found

    script = tmp_path / "agent.py"  # under /tmp: private inside the sandbox
    script.write_text("print('hi')\n")
    assert line(f"{sys.executable} {script}").startswith(
        f"FIX  agent command in the sandbox: {script} cannot be seen by the run (the sandbox has a private /tmp)"
    )
    config_script = git_env / ".config" / "agents" / "run.py"
    config_script.parent.mkdir(parents=True)
    config_script.write_text("print('hi')\n")
    assert line(f"{sys.executable} {config_script}").startswith(
        f"FIX  agent command in the sandbox: {config_script} cannot be seen by the run (the sandbox hides ~/.config)"
    )
    # A script the sandbox sees, run by an interpreter it does not.
    python = tmp_path / "py" / "python3"
    python.parent.mkdir()
    python.symlink_to(sys.executable)
    agent = repo.top / ".git" / "agent"
    agent.write_text(f"#!{python}\nprint('hi')\n")
    agent.chmod(0o755)
    assert line(f"{agent} --go").startswith(
        f"FIX  agent command in the sandbox: {python} cannot be seen by the run (the sandbox has a private /tmp)"
    )
    agent.write_text("#!/usr/bin/env bash\necho hi\n")
    assert line(f"{agent} --go").startswith(f"OK   agent command in the sandbox: {agent} is there")


@needs_bwrap
def test_the_sandbox_line_says_which_commands_get_the_network(repo: Repo) -> None:
    env = {"MDSPEC_SANDBOX": "bwrap", "ANTHROPIC_API_KEY": "x"}
    repo.write(".mdspec.toml", '[agent]\ncommand = "true"\n')
    line = next(ln for ln in repo.mdspec("doctor", check=False, env=env).stdout.splitlines() if "sandbox: " in ln)
    assert line.endswith(
        "network: the agent CLI has it (to reach its model; its own tools share it), the check: off "
        "(network = true turns it on)"
    ), line
    repo.write(".mdspec.toml", "network = true\n")
    line = next(ln for ln in repo.mdspec("doctor", check=False, env=env).stdout.splitlines() if "sandbox: " in ln)
    assert line.endswith("network for the agent's shell and the check: on (network = true)"), line


def test_claude_code_as_root_without_a_sandbox_is_a_fix(repo: Repo, monkeypatch: pytest.MonkeyPatch) -> None:
    repo.write(".mdspec.toml", '[agent]\npreset = "claude-code"\n')
    monkeypatch.delenv("IS_SANDBOX", raising=False)
    for uid, expected in (
        (1000, []),
        (
            0,
            [
                "FIX  agent command as root: Claude Code refuses "
                "--dangerously-skip-permissions as root outside a sandbox: set sandbox = "
                '"bwrap" in .mdspec.toml (needs bubblewrap), or export IS_SANDBOX=1 if '
                "this machine is a disposable container"
            ],
        ),
    ):
        monkeypatch.setattr(backends, "effective_uid", lambda uid=uid: uid)
        lines: list[str] = []
        doctor.doctor(repo.top, lines.append)
        assert [ln for ln in lines if "agent command" in ln] == expected


def lines_of(repo: Repo) -> tuple[int, list[str]]:
    proc = repo.mdspec("doctor", check=False)
    assert "Traceback" not in proc.stderr
    return proc.returncode, proc.stdout.splitlines()


def test_model_is_checked_against_the_apis_model_list(repo: Repo, fake_api: FakeAPI) -> None:  # noqa: F811
    repo.write(".mdspec.toml", "")
    _, lines = lines_of(repo)
    assert "OK   model: claude-sonnet-5-5 is available to this API key" in lines
    assert fake_api.model_lists == 2  # four models, two to a page: the SDK followed has_more/last_id
    price = next(ln for ln in lines if "price of claude-sonnet-5-5" in ln)
    assert price.startswith("OK ")
    assert f"as of {config.PRICES_AS_OF}" in price
    assert "$2 in, $10 out" in price
    # A dated id of a listed model is the same model.
    fake_api.models = ["claude-sonnet-5-5-20261001"]
    repo.write(".mdspec.toml", '[agent]\nmodel = "claude-sonnet-5-5"\n')
    assert "OK   model: claude-sonnet-5-5 is available to this API key" in lines_of(repo)[1]
    # A model the API does not list: what to do, and which ones it does list.
    fake_api.models = ["claude-opus-5-5", "claude-sonnet-5-5"]
    repo.write(
        ".mdspec.toml",
        '[agent]\nmodel = "claude-sonet-5-5"\n[agent.prices."claude-sonet-5-5"]\n'
        "input = 2\noutput = 10\ncache_write = 2.5\ncache_read = 0.1\n",
    )
    code, lines = lines_of(repo)
    assert code == 1
    assert (
        "FIX  model: claude-sonet-5-5 is not in the API's model list for this key: set [agent] model in "
        ".mdspec.toml to one that is (claude-opus-5-5, claude-sonnet-5-5)"
    ) in lines
    assert any(ln.startswith("OK   price of claude-sonet-5-5: $2 in") and "(from .mdspec.toml)" in ln for ln in lines)


def test_a_model_without_a_price_is_a_fix_naming_the_key(repo: Repo, fake_api: FakeAPI) -> None:  # noqa: F811
    repo.write(".mdspec.toml", '[agent]\nmodel = "claude-haiku-5-5"\n')
    code, lines = lines_of(repo)
    assert code == 1
    assert "OK   model: claude-haiku-5-5 is available to this API key" in lines
    fix = [ln for ln in lines if ln.startswith("FIX  price:")]
    assert fix == [
        "FIX  price: no price for claude-haiku-5-5, so runs do not start (max_cost_usd could not be "
        'enforced): set [agent.prices."claude-haiku-5-5"] in .mdspec.toml with input, output, cache_write '
        "and cache_read in USD per million tokens"
    ]


def test_model_list_failures_are_one_line(
    repo: Repo,
    fake_api: FakeAPI,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    repo.write(".mdspec.toml", "")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-wrong-key-0000")
    code, lines = lines_of(repo)
    assert code == 1
    bad = [ln for ln in lines if ln.startswith("FIX  model: could not list the API's models: ")]
    assert len(bad) == 1, lines
    assert "the API key was refused" in bad[0], lines
    assert "status 401" in bad[0], lines


def test_no_key_no_model_list_request(
    repo: Repo,
    fake_api: FakeAPI,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    repo.write(".mdspec.toml", "")
    monkeypatch.delenv("ANTHROPIC_API_KEY")
    _, lines = lines_of(repo)
    assert fake_api.model_lists == 0
    assert not any(ln.startswith(("OK   model:", "FIX  model:")) for ln in lines)
    assert any(ln.startswith("OK   price of claude-sonnet-5-5") for ln in lines)  # the price needs no key
