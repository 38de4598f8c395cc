"""`mdspec init`: starters only where absent, the hook through pre-commit or git, idempotent, never commits."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from dataclasses import fields
from pathlib import Path

import pytest
import yaml
from conftest import Repo, make_repo

from mdspec import config
from mdspec.commands import init as install
from mdspec.commands.init import InstallError, edit_pre_commit_config, hook_snippet

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

LOCAL = hook_snippet(None, None)
REMOTE = hook_snippet("https://example.invalid/mdspec.git", "v1.2.3")

USER_CONFIG = """\
# Our hooks. Keep this comment.
minimum_pre_commit_version: "3.0"

repos:
  # the formatter, pinned
  - repo: local
    hooks:
      - id: noop  # does nothing
        name: noop
        entry: "true"
        language: system

# Settings after the repos stay where they are.
fail_fast: false
"""


def _tree_hashes(repo: Repo) -> dict[str, str]:
    """Every file of the work tree, .git/hooks and the index, by content (and mode for the hooks)."""
    out: dict[str, str] = {}
    for root, dirs, files in os.walk(repo.top):
        rel_root = os.path.relpath(root, repo.top)
        if rel_root == ".git":
            dirs[:] = [d for d in dirs if d == "hooks"]
            files = [f for f in files if f == "index"]
        for f in files:
            p = Path(root) / f
            out[str(p.relative_to(repo.top))] = f"{p.stat().st_mode:o} {hashlib.sha256(p.read_bytes()).hexdigest()}"
    return out


def _one_line_error(proc: subprocess.CompletedProcess[str], *needles: str) -> str:
    assert proc.returncode == 1, (proc.returncode, proc.stdout, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("mdspec: error: "), lines[0]
    assert "Traceback" not in proc.stdout + proc.stderr
    for n in needles:
        assert n in lines[0], lines[0]
    return lines[0]


# --- starters --------------------------------------------------------------------------------------


def test_init_creates_starters_and_commits_nothing(repo: Repo) -> None:
    head, index = repo.head(), repo.git("ls-files", "--stage")
    out = repo.mdspec("init").stdout
    for path in (
        "spec/README.md",
        "notes/README.md",
        "AGENTS.md",
        "CLAUDE.md",
        ".mdspec.toml",
        ".pre-commit-config.yaml",
    ):
        assert (repo.top / path).is_file(), path
        assert f"created {path}" in out
    assert repo.head() == head
    assert repo.git("ls-files", "--stage") == index
    assert repo.git("diff", "--cached", "--name-only") == ""
    assert repo.log() == ["initial"]
    hook = repo.top / ".git" / "hooks" / "post-commit"
    assert os.access(hook, os.X_OK)
    assert "pre-commit" in hook.read_text()


def test_config_starter_shows_every_key_commented(repo: Repo, monkeypatch: pytest.MonkeyPatch) -> None:
    repo.mdspec("init")
    monkeypatch.delenv("MDSPEC_SANDBOX")  # compare the file's defaults, not the tests' override
    path = repo.top / ".mdspec.toml"
    text = path.read_text()
    data = tomllib.loads(text)
    assert data == {"agent": {}}, "every key in the starter must be commented out"
    assert config.load_file(path) == config.Config(path=path)
    for f in fields(config.Config):
        if f.name not in ("path", "agent"):
            assert f"# {f.name} = " in text, f.name
    for f in fields(config.AgentConfig):
        key = "# [agent.prices." if f.name == "prices" else f"# {f.name} = "
        assert key in text, f.name
    # Uncommenting every `# key = value` line (not the prose) gives a valid config with the defaults.
    uncommented = "\n".join(
        ln[2:] if ln.startswith("# ") and (" = " in ln or ln.startswith("# [agent.prices")) else ln
        for ln in text.splitlines()
    )
    defaults = config.from_mapping(tomllib.loads(uncommented), path, ".mdspec.toml")
    assert defaults.watch == config.Config(path=None).watch
    assert defaults.agent.max_turns == config.AgentConfig().max_turns


def test_existing_files_are_not_overwritten(repo: Repo) -> None:
    repo.write("AGENTS.md", "# our own agent rules\n")
    repo.write("spec/README.md", "# our spec\n")
    repo.write(".mdspec.toml", 'notes_dir = "docs/agent-notes"\n')
    out = repo.mdspec("init").stdout
    assert (repo.top / "AGENTS.md").read_text() == "# our own agent rules\n"
    assert (repo.top / "spec/README.md").read_text() == "# our spec\n"
    assert (repo.top / ".mdspec.toml").read_text() == 'notes_dir = "docs/agent-notes"\n'
    assert "created AGENTS.md" not in out
    assert "created .mdspec.toml" not in out
    # The notes starter goes where the existing config says notes live.
    assert (repo.top / "docs/agent-notes/README.md").is_file()
    assert not (repo.top / "notes").exists()


@pytest.mark.parametrize("args", [(), ("--git-hook",)], ids=["pre-commit", "git-hook"])
def test_init_twice_changes_nothing(repo: Repo, args: tuple[str, ...]) -> None:
    repo.mdspec("init", *args)
    before = _tree_hashes(repo)
    head = repo.head()
    assert ".pre-commit-config.yaml" in before or args
    assert ".git/hooks/post-commit" in before
    out = repo.mdspec("init", *args).stdout
    assert _tree_hashes(repo) == before
    assert repo.head() == head
    assert "created" not in out
    assert "updated" not in out


# --- .pre-commit-config.yaml -------------------------------------------------------------------------


def _is_subsequence(old: list[str], new: list[str]) -> bool:
    it = iter(new)
    return all(line in it for line in old)


def test_existing_pre_commit_config_keeps_comments_and_repos(repo: Repo) -> None:
    repo.write(".pre-commit-config.yaml", USER_CONFIG)
    repo.mdspec("init")
    text = (repo.top / ".pre-commit-config.yaml").read_text()
    assert _is_subsequence(USER_CONFIG.splitlines(), text.splitlines()), text
    data = yaml.safe_load(text)
    before = yaml.safe_load(USER_CONFIG)
    assert data["repos"][0] == before["repos"][0]
    assert data["repos"][1]["hooks"][0]["id"] == "mdspec"
    assert data["fail_fast"] is False
    assert data["minimum_pre_commit_version"] == "3.0"
    assert data["default_install_hook_types"] == ["pre-commit", "post-commit"]
    check = subprocess.run(
        [sys.executable, "-m", "pre_commit", "validate-config", ".pre-commit-config.yaml"],
        cwd=repo.top,
        capture_output=True,
        text=True,
    )
    assert check.returncode == 0, check.stdout + check.stderr


def test_block_list_of_hook_types_gains_post_commit() -> None:
    text = "default_install_hook_types:\n  - pre-commit\n  - pre-push  # and push\nrepos:\n- repo: local\n  hooks: []\n"
    new = edit_pre_commit_config(text, LOCAL)
    assert new is not None
    assert "  - pre-push  # and push\n  - post-commit\n" in new
    data = yaml.safe_load(new)
    assert data["default_install_hook_types"] == ["pre-commit", "pre-push", "post-commit"]
    assert [r["repo"] for r in data["repos"]] == ["local", "local"]
    assert data["repos"][1]["hooks"][0]["id"] == "mdspec"


def test_flow_list_of_hook_types_gains_post_commit() -> None:
    text = "default_install_hook_types: [pre-commit, commit-msg]  # ours\nrepos: []\n"
    new = edit_pre_commit_config(text, LOCAL)
    assert new is not None
    assert new.startswith("default_install_hook_types: [pre-commit, commit-msg, post-commit]  # ours\n")
    data = yaml.safe_load(new)
    assert data["default_install_hook_types"] == ["pre-commit", "commit-msg", "post-commit"]
    assert data["repos"][0]["hooks"][0]["entry"] == "mdspec hook post-commit"


def test_edit_of_empty_or_missing_file() -> None:
    for text in (None, "", "# just a comment\n"):
        new = edit_pre_commit_config(text, LOCAL)
        assert new is not None
        data = yaml.safe_load(new)
        assert data["default_install_hook_types"] == ["pre-commit", "post-commit"]
        assert data["repos"][0]["repo"] == "local"
        assert data["repos"][0]["hooks"][0]["stages"] == ["post-commit"]
        if text:
            assert new.startswith(text)


def test_edit_is_idempotent_and_partial() -> None:
    once = edit_pre_commit_config(USER_CONFIG, LOCAL)
    assert once is not None
    assert edit_pre_commit_config(once, LOCAL) is None
    # The hook present but not the hook type: only the type is added.
    no_type = "\n".join(ln for ln in once.splitlines() if not ln.startswith("default_install_hook_types")) + "\n"
    again = edit_pre_commit_config(no_type, LOCAL)
    assert again is not None
    assert again.count("id: mdspec") == 1
    assert "post-commit" in yaml.safe_load(again)["default_install_hook_types"]
    # The type present but not the hook: only the hook is added.
    only_type = "default_install_hook_types: [post-commit]\nrepos:\n  - repo: local\n    hooks: []\n"
    added = edit_pre_commit_config(only_type, LOCAL)
    assert added is not None
    assert added.count("default_install_hook_types") == 1
    assert yaml.safe_load(added)["default_install_hook_types"] == ["post-commit"]


def test_edit_unindented_repos_and_no_final_newline() -> None:
    text = "repos:\n- repo: local\n  hooks:\n  - id: noop\n    name: noop\n    entry: 'true'\n    language: system"
    new = edit_pre_commit_config(text, LOCAL)
    assert new is not None
    data = yaml.safe_load(new)
    assert data["repos"][0]["hooks"][0]["id"] == "noop"
    assert data["repos"][1]["hooks"][0]["id"] == "mdspec"
    assert "\n- repo: local\n  hooks:\n    - id: mdspec\n" in new  # shifted to the file's indentation


def test_edit_refuses_what_it_cannot_do_safely() -> None:
    with pytest.raises(InstallError, match="not valid YAML"):
        edit_pre_commit_config("repos: [\n", LOCAL)
    with pytest.raises(InstallError, match="flow style"):
        edit_pre_commit_config("repos: [{repo: local, hooks: []}]\n", LOCAL)
    with pytest.raises(InstallError, match="mapping"):
        edit_pre_commit_config("- just\n- a list\n", LOCAL)
    with pytest.raises(InstallError, match="default_install_hook_types"):
        edit_pre_commit_config("default_install_hook_types: pre-commit\nrepos: []\n", LOCAL)


def test_remote_form_is_pinned(repo: Repo) -> None:
    repo.mdspec("init", "--pre-commit-repo", "https://example.invalid/mdspec.git", "--rev", "v1.2.3")
    data = yaml.safe_load((repo.top / ".pre-commit-config.yaml").read_text())
    assert data["repos"] == [
        {"repo": "https://example.invalid/mdspec.git", "rev": "v1.2.3", "hooks": [{"id": "mdspec"}]}
    ]
    assert "post-commit" in data["default_install_hook_types"]
    assert edit_pre_commit_config(None, REMOTE) is not None


def test_remote_form_needs_rev(repo: Repo) -> None:
    proc = repo.mdspec("init", "--pre-commit-repo", "https://example.invalid/mdspec.git", check=False)
    _one_line_error(proc, "--rev")
    assert not (repo.top / ".mdspec.toml").exists()
    assert not (repo.top / ".pre-commit-config.yaml").exists()


# --- the plain git hook ----------------------------------------------------------------------------


def test_git_hook_installs_the_shim(repo: Repo) -> None:
    repo.mdspec("init", "--git-hook")
    hook = repo.top / ".git" / "hooks" / "post-commit"
    text = hook.read_text()
    assert install.SHIM_MARKER in text
    assert "hook post-commit" in text
    assert "@MDSPEC@" not in text
    assert os.access(hook, os.X_OK)
    assert not (repo.top / ".pre-commit-config.yaml").exists()


def test_git_hook_keeps_and_chains_an_existing_hook(repo: Repo, tmp_path: Path) -> None:
    marker = tmp_path / "legacy-ran"
    hook = repo.top / ".git" / "hooks" / "post-commit"
    hook.parent.mkdir(exist_ok=True)
    legacy_text = f"#!/bin/sh\necho ran >> '{marker}'\n"
    hook.write_text(legacy_text)
    hook.chmod(0o755)
    out = repo.mdspec("init", "--git-hook").stdout
    assert "post-commit.legacy" in out
    assert (hook.parent / "post-commit.legacy").read_text() == legacy_text
    assert install.SHIM_MARKER in hook.read_text()
    repo.commit("set up", env={"MDSPEC_RUNNING": "1"})
    repo.commit("code", {"src/a.py": "a = 1\n"})
    assert marker.read_text() == "ran\nran\n"
    # Running init again neither wraps the shim in itself nor touches the kept hook.
    repo.mdspec("init", "--git-hook")
    assert (hook.parent / "post-commit.legacy").read_text() == legacy_text


# --- core.hooksPath (husky, lefthook, a team's hooks directory) -------------------------------------


def test_git_hook_goes_to_core_hooks_path_and_chains_what_is_there(repo: Repo, tmp_path: Path) -> None:
    marker = tmp_path / "team-hook-ran"
    hooks = repo.top / "githooks"
    hooks.mkdir()
    team = f"#!/bin/sh\necho ran >> '{marker}'\n"
    (hooks / "post-commit").write_text(team)
    (hooks / "post-commit").chmod(0o755)
    repo.git("config", "core.hooksPath", "githooks")
    out = repo.mdspec("init", "--git-hook").stdout
    assert "post-commit.legacy" in out
    assert (repo.top / ".mdspec.toml").is_file()
    assert (repo.top / "spec" / "README.md").is_file()
    shim = hooks / "post-commit"
    assert install.SHIM_MARKER in shim.read_text()
    assert os.access(shim, os.X_OK)
    assert (hooks / "post-commit.legacy").read_text() == team
    assert not (repo.top / ".git" / "hooks" / "post-commit").exists()
    # git runs the shim from core.hooksPath: the spec commit is queued, and the team's hook still runs.
    repo.configure('[agent]\nbackend = "command"\ncommand = "true"\n')
    sha = repo.commit("set up", env={"MDSPEC_RUNNING": "1"})
    assert sha
    repo.commit("spec", {"spec/app.md": "# App\n"})
    assert "queued" in repo.last_output
    assert marker.read_text() == "ran\n" * 2
    repo.mdspec("init", "--git-hook")  # again: changes nothing
    assert (hooks / "post-commit.legacy").read_text() == team
    doctor = repo.mdspec("doctor", check=False).stdout
    assert f"OK   hook: installed as a plain git hook in {hooks.resolve()}" in doctor


def test_git_hook_creates_the_hook_in_a_new_hooks_path(repo: Repo) -> None:
    repo.git("config", "core.hooksPath", ".husky/_")
    repo.mdspec("init", "--git-hook")
    shim = repo.top / ".husky" / "_" / "post-commit"
    assert install.SHIM_MARKER in shim.read_text()
    assert os.access(shim, os.X_OK)


def test_git_hook_leaves_a_hook_that_already_calls_mdspec(repo: Repo) -> None:
    hooks = repo.top / "githooks"
    hooks.mkdir()
    mine = "#!/bin/sh\nmake lint\nmdspec hook post-commit\n"
    (hooks / "post-commit").write_text(mine)
    repo.git("config", "core.hooksPath", "githooks")
    out = repo.mdspec("init", "--git-hook").stdout
    assert "already calls" in out
    assert (hooks / "post-commit").read_text() == mine
    assert not (hooks / "post-commit.legacy").exists()


def test_without_git_hook_prints_the_line_to_add(repo: Repo) -> None:
    repo.git("config", "core.hooksPath", "githooks")
    proc = repo.mdspec("init")
    assert proc.returncode == 0
    assert "Traceback" not in proc.stderr
    assert (repo.top / ".mdspec.toml").is_file()
    assert (repo.top / "AGENTS.md").is_file()
    lines = [ln for ln in proc.stdout.splitlines() if "core.hooksPath" in ln]
    assert len(lines) == 1, proc.stdout
    assert "`mdspec hook post-commit`" in lines[0]
    assert str(repo.top / "githooks" / "post-commit") in lines[0]
    # pre-commit would refuse to install here, so nothing of its kind is written.
    assert not (repo.top / install.PRE_COMMIT_CONFIG).exists()
    assert not (repo.top / "githooks").exists()
    # The user adds the line to their own hook; doctor sees it and git runs it.
    hooks = repo.top / "githooks"
    hooks.mkdir()
    (hooks / "post-commit").write_text("#!/bin/sh\nmdspec hook post-commit\n")
    (hooks / "post-commit").chmod(0o755)
    doctor = repo.mdspec("doctor", check=False).stdout
    assert f"OK   hook: called from your own {hooks.resolve() / 'post-commit'}" in doctor


def test_outside_a_repository(tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    proc = subprocess.run([sys.executable, "-m", "mdspec", "init"], cwd=plain, capture_output=True, text=True)
    _one_line_error(proc, "not inside a git repository")
    assert list(plain.iterdir()) == []


def test_bare_repository(tmp_path: Path) -> None:
    bare = tmp_path / "bare.git"
    subprocess.run(["git", "init", "-q", "--bare", str(bare)], check=True)
    before = sorted(p.name for p in bare.iterdir())
    proc = subprocess.run([sys.executable, "-m", "mdspec", "init"], cwd=bare, capture_output=True, text=True)
    _one_line_error(proc, "bare")
    assert sorted(p.name for p in bare.iterdir()) == before


def test_init_in_a_subdirectory_sets_up_the_top(tmp_path: Path) -> None:
    r = make_repo(tmp_path / "top")
    sub = r.top / "src" / "pkg"
    sub.mkdir(parents=True)
    proc = subprocess.run([sys.executable, "-m", "mdspec", "init"], cwd=sub, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert (r.top / ".mdspec.toml").is_file()
    assert (r.top / ".pre-commit-config.yaml").is_file()
    assert not (sub / ".mdspec.toml").exists()


def test_invalid_pre_commit_config_is_a_one_line_error(repo: Repo) -> None:
    repo.write(".pre-commit-config.yaml", "repos:\n  - repo: local\n    hooks: [\n")
    proc = repo.mdspec("init", check=False)
    _one_line_error(proc, ".pre-commit-config.yaml", "not valid YAML")
    assert (repo.top / ".pre-commit-config.yaml").read_text() == "repos:\n  - repo: local\n    hooks: [\n"


@pytest.mark.parametrize("rev", ["1.10", "2024", "true", "v1.0 # not a comment", "0" * 39 + "1"])
def test_remote_rev_stays_a_string(repo: Repo, rev: str) -> None:
    url = "https://example.invalid/mdspec.git"
    repo.mdspec("init", "--pre-commit-repo", url, "--rev", rev)
    data = yaml.safe_load((repo.top / ".pre-commit-config.yaml").read_text())
    assert data["repos"][0]["rev"] == rev
    assert data["repos"][0]["repo"] == url
    check = subprocess.run(
        [sys.executable, "-m", "pre_commit", "validate-config", ".pre-commit-config.yaml"],
        cwd=repo.top,
        capture_output=True,
        text=True,
    )
    assert check.returncode == 0, check.stdout + check.stderr
