"""`mdspec doctor`: one line per check, OK or what to do; exit 1 when something needs fixing."""

from __future__ import annotations

import pytest
from conftest import Repo


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
