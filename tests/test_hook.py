"""The post-commit fast path: when it skips (silently), when it complains (one line), and what it imports."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import FOREGROUND, Repo

from mdspec.commands import hook as commands_hook
from mdspec.fast import hook, paths, trailers

RUNNING = {"MDSPEC_RUNNING": "1"}
# What the fast path must never import on a commit that starts nothing.
HEAVY = (
    "click",
    "pygit2",
    "anthropic",
    "httpx",
    "httpx2",
    "pydantic",
    "subprocess",
    "tomllib",
    "tomli",
    "re",
    "yaml",
    "pathlib",
)


def run_hook(repo: Repo, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """`mdspec hook post-commit` in the repository, as git would run it (at the top of the work tree)."""
    return subprocess.run(
        [sys.executable, "-m", "mdspec", "hook", "post-commit"],
        cwd=repo.top,
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
    )


def queued(repo: Repo) -> list[str]:
    return sorted(p.name for p in (repo.state / "queue").glob("*"))


def runs(repo: Repo) -> list[str]:
    return sorted(p.name for p in (repo.state / "runs").glob("*"))


def assert_silent_skip(repo: Repo, env: dict[str, str] | None = None) -> None:
    head = repo.head()
    proc = run_hook(repo, {**FOREGROUND, **(env or {})})  # foreground: a run, if started, would show here
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "", "")
    assert repo.head() == head
    assert queued(repo) == []
    assert runs(repo) == []


@pytest.fixture
def spec_head(mdrepo: Repo) -> str:
    """HEAD is a spec commit that started nothing (made under MDSPEC_RUNNING)."""
    return mdrepo.commit("spec: greet", {"spec/app.md": "# App\nSay hello.\n"}, env=RUNNING)


def test_control_a_spec_commit_does_start_a_run(mdrepo: Repo, spec_head: str) -> None:
    # The same direct invocation the skip tests use, on a plain spec commit: it runs (foreground).
    proc = run_hook(mdrepo, FOREGROUND)
    assert proc.returncode == 0, proc.stderr
    assert f"spec commit {spec_head[:10]}" in proc.stdout
    assert trailers.values(mdrepo.message(), trailers.IMPLEMENTS) == [spec_head]
    assert len(runs(mdrepo)) == 1


def test_skips_when_mdspec_is_running(mdrepo: Repo, spec_head: str) -> None:
    assert_silent_skip(mdrepo, RUNNING)
    assert not mdrepo.state.exists()  # decided before reading anything


@pytest.mark.parametrize("name", paths.IN_PROGRESS)
def test_skips_while_an_operation_is_in_progress(mdrepo: Repo, spec_head: str, name: str) -> None:
    target = mdrepo.top / ".git" / name
    if name in ("rebase-merge", "rebase-apply", "sequencer"):
        target.mkdir()
    else:
        target.write_text(spec_head + "\n")
    assert_silent_skip(mdrepo)
    assert not mdrepo.state.exists()


def _logging_legacy_hook(repo: Repo, log: Path) -> None:
    """A post-commit.legacy (chained by mdspec's shim) logging each call: `+name` per operation state file."""
    legacy = repo.top / ".git" / "hooks" / "post-commit.legacy"
    legacy.write_text(
        "#!/bin/sh\n"
        'd="$(git rev-parse --git-dir)"\n'
        "state=\n"
        f"for f in {' '.join(paths.IN_PROGRESS)}; do\n"
        '  [ -e "$d/$f" ] && state="$state+$f"\n'
        "done\n"
        f'echo "${{state:-+normal}}" >> "{log}"\n'
    )
    legacy.chmod(0o755)


def test_real_rebase_of_spec_commits_starts_nothing(mdrepo: Repo, tmp_path: Path) -> None:
    log = tmp_path / "hook-calls"
    _logging_legacy_hook(mdrepo, log)
    mdrepo.git("checkout", "-q", "-b", "feature")
    mdrepo.commit("spec: one", {"spec/one.md": "# One\n"}, env=RUNNING)
    mdrepo.commit("spec: two", {"spec/two.md": "# Two\n"}, env=RUNNING)
    mdrepo.git("checkout", "-q", "main")
    mdrepo.commit("code", {"src/a.py": "a = 1\n"}, env=RUNNING)
    mdrepo.git("checkout", "-q", "feature")
    log.unlink()
    mdrepo.git("rebase", "main", env=FOREGROUND)
    calls = log.read_text().split()
    assert len(calls) == 2, calls  # the hook ran, mid-rebase
    assert all("+rebase-merge" in c for c in calls), calls
    assert mdrepo.log(4) == ["spec: two", "spec: one", "code", "set up mdspec"]
    assert not mdrepo.state.exists()  # no run, no queue, not even the hook cache


def test_real_cherry_pick_of_several_spec_commits_starts_nothing(mdrepo: Repo, tmp_path: Path) -> None:
    log = tmp_path / "hook-calls"
    _logging_legacy_hook(mdrepo, log)
    mdrepo.git("checkout", "-q", "-b", "feature")
    one = mdrepo.commit("spec: one", {"spec/one.md": "# One\n"}, env=RUNNING)
    two = mdrepo.commit("spec: two", {"spec/two.md": "# Two\n"}, env=RUNNING)
    mdrepo.git("checkout", "-q", "main")
    log.unlink()
    mdrepo.git("cherry-pick", one, two, env=FOREGROUND)
    calls = log.read_text().split()
    assert len(calls) == 2, calls
    assert all("+sequencer" in c for c in calls), calls
    assert mdrepo.log(2) == ["spec: two", "spec: one"]
    assert not mdrepo.state.exists()


def test_merge_commit_concluding_a_conflict_starts_nothing(mdrepo: Repo, tmp_path: Path) -> None:
    log = tmp_path / "hook-calls"
    _logging_legacy_hook(mdrepo, log)
    mdrepo.git("checkout", "-q", "-b", "feature")
    mdrepo.commit("spec: theirs", {"spec/app.md": "# theirs\n"}, env=RUNNING)
    mdrepo.git("checkout", "-q", "main")
    mdrepo.commit("spec: ours", {"spec/app.md": "# ours\n"}, env=RUNNING)
    log.unlink()
    assert "CONFLICT" in mdrepo.git("merge", "feature", check=False)
    mdrepo.write("spec/app.md", "# both\n")
    mdrepo.git("add", "spec/app.md")
    mdrepo.git("commit", "--no-edit", env=FOREGROUND)
    assert log.read_text().split() == ["+normal"]  # git has removed MERGE_HEAD by now: two parents decide it
    assert len(mdrepo.git("log", "-1", "--format=%P").split()) == 2
    assert queued(mdrepo) == []
    assert runs(mdrepo) == []


def test_skips_on_detached_head(mdrepo: Repo, spec_head: str) -> None:
    mdrepo.git("checkout", "-q", "--detach")
    assert_silent_skip(mdrepo)
    # A real spec commit on a detached HEAD, through the installed hook.
    sha = mdrepo.commit("spec: detached", {"spec/b.md": "# B\n"}, env=FOREGROUND)
    assert mdrepo.head() == sha
    assert queued(mdrepo) == []
    assert runs(mdrepo) == []


def test_skips_a_generated_commit(mdrepo: Repo) -> None:
    message = f"mdspec: something\n\nbody\n\n{trailers.render(['0' * 40], 'run-1', 'skipped')}\n"
    mdrepo.write("spec/app.md", "# App\n")
    mdrepo.git("add", "-A")
    mdrepo.git("commit", "-q", "-m", message, env=RUNNING)
    assert_silent_skip(mdrepo)
    # And through git: a generated-looking commit that touches a watched path starts nothing.
    mdrepo.write("spec/app.md", "# App v2\n")
    mdrepo.git("add", "-A")
    mdrepo.git("commit", "-q", "-m", message.replace("something", "more"), env=FOREGROUND)
    assert mdrepo.log(1) == ["mdspec: more"]
    assert queued(mdrepo) == []
    assert runs(mdrepo) == []


def test_skips_a_commit_that_touches_no_watched_path(mdrepo: Repo) -> None:
    mdrepo.commit("code", {"src/a.py": "a = 1\n", "docs/spec.md": "not the spec dir\n"}, env=RUNNING)
    assert_silent_skip(mdrepo)


def test_an_empty_commit_is_skipped_quietly(mdrepo: Repo) -> None:
    """`git commit --allow-empty` changes nothing: git describes no diff, and the hook says nothing."""
    out = mdrepo.git("commit", "--allow-empty", "-m", "empty", env=FOREGROUND)
    assert "mdspec" not in out
    assert mdrepo.log(1) == ["empty"]
    assert queued(mdrepo) == []
    assert runs(mdrepo) == []
    assert not (mdrepo.state / "error.log").exists()


def test_amend_of_a_non_spec_commit_starts_nothing(mdrepo: Repo) -> None:
    mdrepo.commit("code", {"src/a.py": "a = 1\n"}, env=FOREGROUND)
    mdrepo.write("src/a.py", "a = 2\n")
    mdrepo.git("add", "-A")
    mdrepo.git("commit", "--amend", "-m", "code, amended", env=FOREGROUND)
    assert mdrepo.log(2) == ["code, amended", "set up mdspec"]
    assert queued(mdrepo) == []
    assert runs(mdrepo) == []


def test_sets_up_commit_is_announced_not_run(repo: Repo) -> None:
    repo.mdspec("init", "--git-hook")
    sha = repo.commit("set up mdspec", env=FOREGROUND)
    assert repo.head() == sha
    assert repo.log(1) == ["set up mdspec"]
    assert "sets mdspec up" in repo.last_output
    assert runs(repo) == []
    assert queued(repo) == []


# --- complaints: one line, non-zero --------------------------------------------------------------------


def _one_line(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode != 0
    assert proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("mdspec: error: "), proc.stderr
    return lines[0]


def test_without_mdspec_init(repo: Repo) -> None:
    repo.commit("spec", {"spec/app.md": "# App\n"})
    line = _one_line(run_hook(repo))
    assert ".mdspec.toml" in line
    assert "mdspec init" in line
    assert not repo.state.exists()


@pytest.mark.parametrize(
    ("file", "text", "needles"),
    [
        (".mdspec.toml", 'background = "yes"\n', (".mdspec.toml", "background", "true or false")),
        (".mdspec.toml", '[agent]\nmax_turns = "ten"\n', (".mdspec.toml", "agent.max_turns")),
        (".mdspec.toml", 'watch = ["spec/**", "a/**b"]\n', (".mdspec.toml", "watch", "a/**b")),
        (".mdspec.toml", "colour = 1\n", (".mdspec.toml", "colour", "unknown key")),
        (".mdspec.toml", "watch = [\n", (".mdspec.toml", "TOML")),
        ("pyproject.toml", "[tool.mdspec]\ncheck = 3\n", ("pyproject.toml", "check", "string")),
    ],
)
def test_bad_config_names_file_and_key(mdrepo: Repo, file: str, text: str, needles: tuple[str, ...]) -> None:
    mdrepo.commit("code", {"src/a.py": "a = 1\n"}, env=RUNNING)
    assert run_hook(mdrepo).returncode == 0  # the good config is cached now
    if file == "pyproject.toml":
        (mdrepo.top / ".mdspec.toml").unlink()
    mdrepo.write(file, text)
    line = _one_line(run_hook(mdrepo))
    for n in needles:
        assert n in line, line
    assert "Traceback" not in line


# --- the cache and the imports ---------------------------------------------------------------------------


def test_cache_follows_the_config(mdrepo: Repo) -> None:
    cfg = mdrepo.top / ".mdspec.toml"
    base = cfg.read_text()
    mdrepo.commit("docs", {"docs/a.md": "# A\n"}, env=RUNNING)
    assert_silent_skip(mdrepo)
    cache = mdrepo.state / hook.CACHE_NAME
    assert "spec/**" in cache.read_text()

    # Watch docs/ instead: the very next hook call sees it (HEAD changes docs/a.md).
    cfg.write_text('watch = ["docs/**"]\n' + base)
    proc = run_hook(mdrepo, FOREGROUND)
    assert proc.returncode == 0, proc.stderr
    assert "spec commit" in proc.stdout
    assert "docs/**" in cache.read_text()
    assert trailers.values(mdrepo.message(), trailers.IMPLEMENTS) == [mdrepo.head("HEAD~1")]

    # A same-size edit that keeps the old mtime (a coarse clock, or a copy that preserves it) is seen too.
    mdrepo.commit("more docs", {"docs/b.md": "# B\n"}, env=RUNNING)
    st = cfg.stat()
    cfg.write_text('watch = ["dxcs/**"]\n' + base)
    os.utime(cfg, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert cfg.stat().st_size == st.st_size
    head = mdrepo.head()
    assert_silent_skip_keeps_runs(mdrepo, head)
    assert "dxcs/**" in cache.read_text()


def assert_silent_skip_keeps_runs(repo: Repo, head: str) -> None:
    before = runs(repo)
    proc = run_hook(repo, FOREGROUND)
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "", "")
    assert repo.head() == head
    assert runs(repo) == before
    assert queued(repo) == []


def _modules_after_hook(repo: Repo) -> tuple[int, set[str], str]:
    code = (
        "import sys\n"
        "sys.argv = ['mdspec', 'hook', 'post-commit']\n"
        "import mdspec.__main__\n"
        "rc = mdspec.__main__.main()\n"
        "print('MODULES', ' '.join(sorted(sys.modules)))\n"
        "sys.exit(rc)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=repo.top, capture_output=True, text=True)
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("MODULES ")), "MODULES")
    rest = "\n".join(ln for ln in proc.stdout.splitlines() if not ln.startswith("MODULES")) + proc.stderr
    return proc.returncode, set(line.split()[1:]), rest


def _baseline_modules(cwd: Path) -> set[str]:
    proc = subprocess.run(
        [sys.executable, "-c", "import sys; print(' '.join(sys.modules))"],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=True,
    )
    return set(proc.stdout.split())


@pytest.mark.parametrize("kind", ["non-spec", "generated"])
def test_fast_path_imports_nothing_heavy(mdrepo: Repo, kind: str) -> None:
    if kind == "non-spec":
        mdrepo.commit("code", {"src/a.py": "a = 1\n"}, env=RUNNING)
    else:
        mdrepo.commit("spec: greet", {"spec/app.md": "# App\n"}, env=FOREGROUND)
        assert trailers.is_generated(mdrepo.message())
    assert run_hook(mdrepo).returncode == 0  # warms the cache
    assert (mdrepo.state / hook.CACHE_NAME).is_file()
    rc, modules, output = _modules_after_hook(mdrepo)
    assert (rc, output.strip()) == (0, "")
    new = modules - _baseline_modules(mdrepo.top)
    heavy = sorted(m for m in new if m.split(".")[0] in HEAVY)
    assert heavy == [], f"the fast path imported {heavy}"
    ours = sorted(m for m in new if m.startswith("mdspec"))
    assert set(ours) <= {
        "mdspec",
        "mdspec.__main__",
        "mdspec.commands",
        "mdspec.commands.hook",
        "mdspec.fast",
        "mdspec.fast.hook",
        "mdspec.fast.paths",
        "mdspec.fast.trailers",
        "mdspec.fast.triggers",
        "mdspec.fast.globs",
        "mdspec.fast.atomic",
        "mdspec.fast.gitenv",
    }, ours
    assert "mdspec.fast.hook" in ours  # the fast path really ran


def test_cold_cache_still_answers(mdrepo: Repo) -> None:
    mdrepo.commit("code", {"src/a.py": "a = 1\n"}, env=RUNNING)
    (mdrepo.state / hook.CACHE_NAME).unlink(missing_ok=True)
    (mdrepo.state).mkdir(exist_ok=True)
    (mdrepo.state / hook.CACHE_NAME).write_text("garbage\twithout\tshape\n")
    assert_silent_skip(mdrepo)
    assert (mdrepo.state / hook.CACHE_NAME).read_text().startswith(str(mdrepo.top / ".mdspec.toml") + "\t")


# --- failures inside `git commit`: one line naming what to fix, exit 0, the commit made ------------------


def _git_commit(
    repo: Repo, message: str, files: dict[str, str], env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    for path, text in files.items():
        repo.write(path, text)
    repo.git("add", "-A")
    return repo.try_commit(message, env)


def _mdspec_lines(proc: subprocess.CompletedProcess[str]) -> list[str]:
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout + proc.stderr
    assert "Traceback" not in out, out
    assert "internal error" not in out, out
    return [ln for ln in out.splitlines() if ln.startswith("mdspec:")]


def _state_as_file(repo: Repo) -> None:
    import shutil

    shutil.rmtree(repo.state, ignore_errors=True)
    repo.state.write_text("not a directory\n")


def test_state_dir_that_is_a_file_is_one_line_and_the_commit_stands(mdrepo: Repo) -> None:
    _state_as_file(mdrepo)
    before = mdrepo.head()
    proc = _git_commit(mdrepo, "spec: app", {"spec/app.md": "# App\n"})
    lines = _mdspec_lines(proc)
    assert len(lines) == 1, proc.stdout + proc.stderr
    assert lines[0].startswith("mdspec: error: spec commit ")
    assert "not queued" in lines[0]
    assert str(mdrepo.state) in lines[0]
    assert "mdspec run" in lines[0]
    assert mdrepo.head("HEAD~1") == before
    assert mdrepo.log(1) == ["spec: app"]
    # A commit that starts nothing says only that the cache cannot be written, once.
    proc = _git_commit(mdrepo, "code", {"src/a.py": "a = 1\n"})
    lines = _mdspec_lines(proc)
    assert len(lines) == 1, lines
    assert lines[0].startswith("mdspec: warning: cannot write the hook cache"), lines
    assert mdrepo.log(1) == ["code"]


def test_queue_that_is_a_file_is_one_line(mdrepo: Repo) -> None:
    mdrepo.state.mkdir(exist_ok=True)
    (mdrepo.state / "queue").write_text("oops\n")
    proc = _git_commit(mdrepo, "spec: app", {"spec/app.md": "# App\n"})
    lines = _mdspec_lines(proc)
    assert len(lines) == 1, lines
    assert "not queued" in lines[0], lines
    assert "queue" in lines[0], lines
    assert mdrepo.log(1) == ["spec: app"]
    assert runs(mdrepo) == []


def test_worker_that_cannot_start_is_one_line_and_stays_queued(mdrepo: Repo) -> None:
    mdrepo.state.mkdir(exist_ok=True)
    (mdrepo.state / "worker.log").mkdir()  # the worker's log cannot be opened
    proc = _git_commit(mdrepo, "spec: app", {"spec/app.md": "# App\n"})
    lines = _mdspec_lines(proc)
    assert len(lines) == 1, lines
    assert "queued but no worker started" in lines[0], lines
    assert "worker.log" in lines[0], lines
    sha = mdrepo.head()
    assert queued(mdrepo) == [sha]


def test_a_bug_in_the_hook_is_one_line_and_exit_0(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    def broken(slow: hook.SlowPath) -> int:
        raise KeyError("surprise")

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(hook, "post_commit", broken)
    assert commands_hook.post_commit() == 0
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith("mdspec: internal error in the post-commit hook: KeyError")
    assert "Traceback" not in err
    log = err.split("traceback in ", 1)[1].split(")", 1)[0]
    assert "surprise" in Path(log).read_text()


# --- SKIP=mdspec: pre-commit's own switch commits a spec change without a run -----------------------------


def test_skip_mdspec_commits_a_spec_change_without_a_run(repo: Repo, tmp_path: Path) -> None:
    import yaml

    from mdspec import templates

    hooks = yaml.safe_load(templates.read("pre-commit-local.yaml"))
    assert hooks[0]["hooks"][0]["id"] == "mdspec"
    project = Path(__file__).resolve().parent.parent
    assert yaml.safe_load((project / ".pre-commit-hooks.yaml").read_text())[0]["id"] == "mdspec"
    assert "installed the post-commit hook with pre-commit" in repo.mdspec("init").stdout
    repo.configure('[agent]\nbackend = "command"\ncommand = "true"\n')
    repo.commit("set up", env=RUNNING)
    proc = _git_commit(repo, "spec: quiet", {"spec/a.md": "# A\n"}, env={"SKIP": "mdspec"})
    assert proc.returncode == 0, proc.stderr
    assert "Skipped" in proc.stdout + proc.stderr  # pre-commit says it skipped the hook
    assert repo.log(1) == ["spec: quiet"]
    assert queued(repo) == []
    assert runs(repo) == []
    # The control: the same kind of commit without SKIP queues a run.
    proc = _git_commit(repo, "spec: loud", {"spec/b.md": "# B\n"}, env={"MDSPEC_RUNNING": ""})
    assert "queued" in proc.stdout + proc.stderr, proc.stdout + proc.stderr


def test_hook_cache_in_the_way_is_a_warning_and_the_spec_commit_still_queues(mdrepo: Repo) -> None:
    mdrepo.state.mkdir(exist_ok=True)
    cache = mdrepo.state / hook.CACHE_NAME
    if cache.exists():
        cache.unlink()
    cache.mkdir()
    proc = _git_commit(mdrepo, "code", {"src/a.py": "a = 1\n"})
    lines = _mdspec_lines(proc)
    assert len(lines) == 1
    assert lines[0].startswith("mdspec: warning:")
    assert f"{cache}: Is a directory" in lines[0]
    assert [p.name for p in mdrepo.state.iterdir() if p.name.startswith("hook-cache.")] == []  # no litter
    _git_commit(mdrepo, "spec: app", {"spec/app.md": "# App\n"}, env=RUNNING)
    proc = run_hook(mdrepo, {"MDSPEC_FOREGROUND": ""})
    assert queued(mdrepo) == [mdrepo.head()]
    assert "queued" in proc.stdout
