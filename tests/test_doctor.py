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
