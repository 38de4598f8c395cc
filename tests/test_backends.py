"""The command backend (mdspec/backends.py): prompt in, answer and usage out, limits, environment."""

from __future__ import annotations

import dataclasses
import json
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import fakeclis
import pytest
from conftest import Repo, agent_script
from runhelpers import last_run, reconfigure, run_fg, runs, set_agent, spec_commit

from mdspec.agents import backends, cliout
from mdspec.agents.session import RunContext, Usage
from mdspec.config import AgentConfig
from mdspec.errors import BackendError
from mdspec.exec import sandbox
from mdspec.exec.procs import run_shell
from mdspec.fast import trailers
from mdspec.fast.globs import Globs
from mdspec.run import runner

needs_bwrap = pytest.mark.skipif(sandbox.bwrap_path() is None, reason="bubblewrap is not usable on this machine")


def make_ctx(
    tmp_path: Path,
    command: str = "",
    preset: str = "",
    max_minutes: float = 1.0,
    max_cost_usd: float = 5.0,
    env: Mapping[str, str] | None = None,
) -> tuple[RunContext, list[Any]]:
    wt = tmp_path / "wt"
    wt.mkdir(exist_ok=True)
    rdir = tmp_path / "run"
    rdir.mkdir(exist_ok=True)
    events: list[Any] = []
    agent = AgentConfig(
        backend="command", command=command, preset=preset, max_minutes=max_minutes, max_cost_usd=max_cost_usd
    )
    ctx = RunContext(
        wt,
        rdir,
        "SYSTEM PROMPT",
        "TASK PROMPT",
        agent,
        ("spec/**",),
        env if env is not None else runner.backend_env(),
        events.append,
    )
    return ctx, events


def test_prompt_arrives_on_stdin_and_in_a_file(tmp_path: Path) -> None:
    seen = tmp_path / "seen.json"
    cmd = agent_script(
        tmp_path,
        f"""
        import json, os, sys
        json.dump({{"stdin": sys.stdin.read(), "file": open(os.environ["MDSPEC_PROMPT_FILE"]).read(),
                   "cwd": os.getcwd()}}, open({str(seen)!r}, "w"))
        open(os.environ["MDSPEC_SUMMARY_FILE"], "w").write("Did it\\n\\nDetails.\\n")
    """,
    )
    ctx, events = make_ctx(tmp_path, cmd)
    result = backends.CommandSession(ctx).start()
    data = json.loads(seen.read_text())
    assert data["stdin"] == data["file"] == "SYSTEM PROMPT\n\nTASK PROMPT"
    assert data["cwd"] == str(ctx.worktree)
    assert result.final_text == "Did it\n\nDetails.\n"
    assert result.stopped_by is None
    assert result.turns == 1
    assert [e["event"] for e in events] == ["tool", "turn"]


def test_fix_round_appends_the_check_output(tmp_path: Path) -> None:
    seen = tmp_path / "prompts.txt"
    cmd = agent_script(
        tmp_path,
        f"""
        import sys
        open({str(seen)!r}, "a").write(sys.stdin.read() + "\\n=====\\n")
    """,
    )
    ctx, _ = make_ctx(tmp_path, cmd)
    session = backends.CommandSession(ctx)
    session.start()
    result = session.fix("FAILED test_x - assert 1 == 2")
    first, second = seen.read_text().split("\n=====\n")[:2]
    assert "The check failed" not in first
    assert second.startswith("SYSTEM PROMPT\n\nTASK PROMPT\n\n## The check failed after your previous attempt")
    assert "FAILED test_x - assert 1 == 2" in second
    assert result.turns == 2


def test_claude_code_json_output_gives_answer_turns_and_cost(tmp_path: Path) -> None:
    out = {
        "type": "result",
        "result": "Implement greeting\n\nAdded hello().",
        "num_turns": 7,
        "total_cost_usd": 0.42,
        "usage": {
            "input_tokens": 10,
            "output_tokens": 20,
            "cache_creation_input_tokens": 30,
            "cache_read_input_tokens": 40,
        },
    }
    cmd = agent_script(tmp_path, f"print('starting'); print({json.dumps(json.dumps(out))})\n")
    ctx, _ = make_ctx(tmp_path, cmd)
    result = backends.CommandSession(ctx).start()
    assert result.final_text == "Implement greeting\n\nAdded hello()."
    assert result.usage.cost_usd == 0.42
    assert result.usage.total_input == 80
    assert result.usage.output_tokens == 20
    assert result.cost_unknown is None  # the CLI said what it cost


def test_the_model_is_the_one_claude_code_reports_doing_most_of_the_work(tmp_path: Path) -> None:
    out = {
        "type": "result",
        "result": "Done",
        "num_turns": 2,
        "total_cost_usd": 0.1,
        "modelUsage": {
            "claude-haiku-4-5": {"inputTokens": 900, "outputTokens": 10},
            "claude-opus-4-1": {"inputTokens": 5, "outputTokens": 400, "cacheReadInputTokens": 9000},
        },
    }
    cmd = agent_script(tmp_path, f"print({json.dumps(json.dumps(out))})\n")
    ctx, _ = make_ctx(tmp_path, cmd)
    session = backends.CommandSession(ctx)
    assert session.start().model == "claude-opus-4-1"
    # A CLI that names no model leaves it to the configured one (the run record keeps its own value).
    ctx, _ = make_ctx(tmp_path, agent_script(tmp_path, 'print(\'{"result": "Done"}\')\n'))
    assert backends.CommandSession(ctx).start().model == ""


def box_for(tmp_path: Path, ctx: RunContext) -> RunContext:
    """`ctx` with the real bubblewrap sandbox of a worktree at ctx.worktree."""
    common = tmp_path / "gitdir"
    common.mkdir(exist_ok=True)
    box = sandbox.build("bwrap", ctx.worktree, common, Globs(["spec/**"]), network=True)
    return dataclasses.replace(ctx, sandbox=box.prefix)


@needs_bwrap
def test_a_command_in_the_sandbox_is_told_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Claude Code refuses --dangerously-skip-permissions as root unless IS_SANDBOX says it is confined.
    monkeypatch.delenv("IS_SANDBOX", raising=False)
    say = 'echo "IS_SANDBOX=$IS_SANDBOX" > "$MDSPEC_SUMMARY_FILE"'
    ctx, _ = make_ctx(tmp_path, say)
    assert backends.CommandSession(box_for(tmp_path, ctx)).start().final_text == "IS_SANDBOX=1\n"
    assert backends.CommandSession(ctx).start().final_text == "IS_SANDBOX=\n"  # not without a sandbox


@needs_bwrap
def test_a_cli_installed_under_tmp_stays_visible_in_the_sandbox(tmp_path: Path) -> None:
    # As npm installs one: node_modules/.bin/tool links to the package's own bin/ (here all under /tmp,
    # which the sandbox replaces with an empty one).
    pkg = tmp_path / "ci" / "node_modules" / "tool" / "bin"
    pkg.mkdir(parents=True)
    (pkg / "tool.exe").write_text('#!/bin/sh\necho "ran $1" > "$MDSPEC_SUMMARY_FILE"\n')
    (pkg / "tool.exe").chmod(0o755)
    dotbin = tmp_path / "ci" / "node_modules" / ".bin"
    dotbin.mkdir()
    (dotbin / "tool").symlink_to("../tool/bin/tool.exe")
    env = {**runner.backend_env(), "PATH": f"{dotbin}:{os.environ['PATH']}"}
    ctx, _ = make_ctx(tmp_path, "LANG=C tool --fast", env=env)
    result = backends.CommandSession(box_for(tmp_path, ctx)).start()
    assert (result.error, result.final_text) == (None, "ran --fast\n")
    # Nothing else of /tmp comes along.
    ctx, _ = make_ctx(tmp_path, f'ls {tmp_path / "ci"} > "$MDSPEC_SUMMARY_FILE"', env=env)
    assert backends.CommandSession(box_for(tmp_path, ctx)).start().final_text == ""


def test_cost_over_the_limit_stops(tmp_path: Path) -> None:
    cmd = agent_script(tmp_path, 'print(\'{"result": "x", "total_cost_usd": 9.5}\')\n')
    ctx, _ = make_ctx(tmp_path, cmd, max_cost_usd=1.0)
    assert backends.CommandSession(ctx).start().stopped_by == "max_cost_usd"


def test_exit_statuses(tmp_path: Path) -> None:
    ctx, _ = make_ctx(tmp_path, "definitely-not-installed-agent -p")
    r = backends.CommandSession(ctx).start()
    assert (r.stopped_by, r.error) == (
        "error",
        "agent command not found: 'definitely-not-installed-agent' (exit 127); see output.log",
    )
    ctx, _ = make_ctx(tmp_path, "echo first; echo 'rate limited' >&2; exit 2")
    r = backends.CommandSession(ctx).start()
    assert r.stopped_by == "error"
    assert r.error == "agent command exited with status 2: rate limited"
    assert "rate limited" in (ctx.run_dir / "output.log").read_text()


def test_time_limit_kills_the_whole_group_and_a_later_round_does_not_start(tmp_path: Path) -> None:
    pidfile = tmp_path / "child.pid"
    ctx, _ = make_ctx(tmp_path, f"sleep 30 & echo $! > {pidfile}; wait", max_minutes=0.01)
    session = backends.CommandSession(ctx)
    t0 = time.monotonic()
    assert session.start().stopped_by == "max_minutes"
    assert time.monotonic() - t0 < 20  # not the 30 s sleep: the limit ended it (a bound, not a timing)
    pid = int(pidfile.read_text())
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            break
        if stat.rsplit(")", 1)[1].split()[0] in ("Z", "X"):
            break
        time.sleep(0.02)
    else:
        raise AssertionError("the backgrounded sleep outlived the run")
    pidfile.unlink()
    assert session.fix("check output").stopped_by == "max_minutes"
    assert not pidfile.exists()  # the fix round never started


def test_presets() -> None:
    ctx = RunContext(Path("."), Path("."), "", "", AgentConfig(backend="command", preset="claude-code"), (), {})
    assert backends.command_for(ctx).startswith("claude -p --output-format json")
    ctx = RunContext(Path("."), Path("."), "", "", AgentConfig(backend="command", preset="codex"), (), {})
    assert backends.command_for(ctx).startswith("codex exec")


def test_environment_of_the_agent_command(mdrepo: Repo, tmp_path: Path) -> None:
    dump = tmp_path / "env.json"
    set_agent(
        tmp_path,
        f"""
        import json, os, pathlib
        json.dump(dict(os.environ), open({str(dump)!r}, "w"))
        pathlib.Path("out.txt").write_text("x\\n")
    """,
    )
    spec_commit(mdrepo)
    proc = mdrepo.mdspec(
        "run",
        "--foreground",
        env={
            "GIT_DIR": str(mdrepo.top / ".git"),
            "GIT_INDEX_FILE": ".git/index",
            "GIT_WORK_TREE": str(mdrepo.top),
            "ANTHROPIC_API_KEY": "sk-ant-held-by-mdspec",
            "ANTHROPIC_AUTH_TOKEN": "token-held-by-mdspec",
            "OPENAI_API_KEY": "sk-openai-for-the-cli",
            "MY_CLI_TOKEN": "cli-token",
        },
    )
    assert proc.returncode == 0, proc.stderr
    env = json.loads(dump.read_text())
    assert not [k for k in env if k.startswith("GIT_") and k != "GIT_CONFIG_NOSYSTEM"]
    assert env["MDSPEC_RUNNING"] == "1"
    # An agent CLI keeps its own credentials; the Anthropic key mdspec holds is not one of them.
    assert env["OPENAI_API_KEY"] == "sk-openai-for-the-cli"
    assert env["MY_CLI_TOKEN"] == "cli-token"
    assert "ANTHROPIC_API_KEY" not in env
    assert "ANTHROPIC_AUTH_TOKEN" not in env
    assert last_run(mdrepo)["status"] == "landed"
    assert mdrepo.status() == ""


def test_agent_committing_in_the_worktree_starts_no_run(mdrepo: Repo, tmp_path: Path) -> None:
    set_agent(
        tmp_path,
        """
        import pathlib, subprocess
        pathlib.Path("spec/app.md").write_text("changed spec\\n")
        pathlib.Path("out.txt").write_text("x\\n")
        subprocess.run(["git", "add", "-A"], check=True)
        subprocess.run(["git", "-c", "user.name=a", "-c", "user.email=a@b", "commit", "-qm", "agent"], check=True)
    """,
    )
    spec_commit(mdrepo)
    assert run_fg(mdrepo).returncode == 0
    assert len(runs(mdrepo)) == 1
    rec = last_run(mdrepo)
    assert rec["status"] == "landed"
    assert rec["violations"] == ["spec/app.md (protected)"]


def test_commit_message_from_the_answer(mdrepo: Repo, tmp_path: Path) -> None:
    long = "x" * 100
    set_agent(
        tmp_path,
        f"""
        import os, pathlib
        pathlib.Path("out.txt").write_text("x\\n")
        pathlib.Path(os.environ["MDSPEC_SUMMARY_FILE"]).write_text("# mdspec: {long}\\n\\nWhat changed.\\n")
    """,
    )
    spec = spec_commit(mdrepo)
    run_fg(mdrepo)
    msg = mdrepo.message()
    subject, body = msg.split("\n", 1)
    assert subject == "mdspec: " + "x" * 71 + "…"
    assert "What changed." in body
    assert trailers.values(msg, trailers.IMPLEMENTS) == [spec]
    assert trailers.values(msg, trailers.RUN) == [last_run(mdrepo)["id"]]
    # No answer at all: the subject names the spec commit.
    set_agent(tmp_path, "import pathlib; pathlib.Path('out.txt').write_text('y\\n')\n")
    spec_commit(mdrepo, "# B\n", "spec/b.md")
    run_fg(mdrepo)
    assert mdrepo.message().startswith("mdspec: implement spec: spec/b.md 4\n")


def test_cost_from_json_output_is_recorded(mdrepo: Repo, tmp_path: Path) -> None:
    reconfigure(
        mdrepo,
        tmp_path,
        agent_extra="max_cost_usd = 1.0",
        body="""
        import json, pathlib
        pathlib.Path("out.txt").write_text("x\\n")
        print(json.dumps({"result": "Add out.txt", "num_turns": 3, "total_cost_usd": 0.25,
                          "usage": {"input_tokens": 100, "output_tokens": 50}}))
    """,
    )
    spec_commit(mdrepo)
    run_fg(mdrepo)
    rec = last_run(mdrepo)
    assert rec["status"] == "landed"
    assert rec["cost_usd"] == 0.25
    assert rec["usage"]["input_tokens"] == 100
    assert mdrepo.message().startswith("mdspec: Add out.txt\n")
    assert "$0.25" in mdrepo.mdspec("status").stdout
    assert "Add out.txt" in (mdrepo.state / "runs" / rec["id"] / "output.log").read_text()


# --- the API key and the claude-code preset ------------------------------------------------------------

KEY = "sk-ant-preset-test-5e2d9c7b1a-SECRET"


def claude_repo(mdrepo: Repo, tmp_path: Path) -> dict[str, str]:
    """mdrepo configured with the claude-code preset, a fake `claude` first on PATH; the env to run with.
    Unsandboxed as root, Claude Code runs only when told the machine is a sandbox (a container)."""
    bin_dir = fakeclis.install(tmp_path / "bin")
    mdrepo.configure('[agent]\npreset = "claude-code"\n')
    mdrepo.commit("configure mdspec", env={"MDSPEC_RUNNING": "1"})
    return {
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "ANTHROPIC_API_KEY": KEY,
        "FAKE_LOG": str(tmp_path / "env.txt"),
        "IS_SANDBOX": "1",
    }


def test_the_claude_code_preset_gets_the_key_and_its_output_is_redacted(mdrepo: Repo, tmp_path: Path) -> None:
    env = claude_repo(mdrepo, tmp_path)
    spec_commit(mdrepo)
    proc = mdrepo.mdspec("run", "--foreground", env=env, check=False)
    assert proc.returncode == 0, proc.stderr
    assert json.loads((tmp_path / "env.txt").read_text())["env"]["ANTHROPIC_API_KEY"] == KEY  # it signs in with it
    rec = last_run(mdrepo)
    assert rec["status"] == "landed"
    log = (mdrepo.state / "runs" / rec["id"] / "output.log").read_text()
    assert "debug: using key [redacted]" in log
    assert KEY not in log
    shown = mdrepo.mdspec("log", rec["id"], env=env).stdout
    assert "debug: using key [redacted]" in shown
    assert KEY not in shown
    for p in (mdrepo.state / "runs" / rec["id"]).rglob("*"):
        assert not p.is_file() or KEY.encode() not in p.read_bytes(), p


def test_a_result_carrying_the_key_is_held_not_landed(mdrepo: Repo, tmp_path: Path) -> None:
    env = {**claude_repo(mdrepo, tmp_path), "LEAK_INTO": "settings.py"}
    spec_commit(mdrepo)
    tip = mdrepo.head()
    proc = mdrepo.mdspec("run", "--foreground", env=env, check=False)
    assert proc.returncode == 1
    rec = last_run(mdrepo)
    assert rec["status"] == "failed", rec
    assert rec["secret_in"] == ["settings.py"], rec
    assert rec["reason"].startswith("the result contains the API key's value (in settings.py): not landed")
    assert mdrepo.head() == tip
    assert not (mdrepo.top / "settings.py").exists()
    held = mdrepo.git("rev-parse", f"refs/mdspec/results/{rec['id']}").strip()
    assert KEY in mdrepo.git("show", f"{held}:settings.py")  # kept for inspection, never on the branch
    assert mdrepo.mdspec("apply", check=False).returncode == 1  # not a held run `apply` would land


def test_command_env_keeps_the_key_only_for_claude_code() -> None:
    env = {
        "ANTHROPIC_API_KEY": "k" * 20,
        "ANTHROPIC_AUTH_TOKEN": "t" * 20,
        "ANTHROPIC_BASE_URL": "u",
        "OPENAI_API_KEY": "o",
    }
    assert backends.command_env(env, "claude-code") == env
    for preset in ("codex", ""):
        assert backends.command_env(env, preset) == {"ANTHROPIC_BASE_URL": "u", "OPENAI_API_KEY": "o"}


def test_output_log_redacts_a_key_split_across_reads(tmp_path: Path) -> None:
    key = "sk-ant-split-read-9f8e7d6c5b"
    log = tmp_path / "output.log"
    # Two writes with a pause between: the reader gets the key in two pieces.
    res = run_shell(
        f"printf 'start {key[:10]}'; sleep 0.3; printf '{key[10:]} end\\n'; head -c 200000 /dev/zero "
        f"| tr '\\0' x; echo; echo {key}",
        tmp_path,
        {"PATH": os.environ["PATH"]},
        log,
        30,
        secrets=[key.encode()],
    )
    text = log.read_text()
    assert res.returncode == 0
    assert key not in text
    assert key[:10] not in text
    assert text.startswith("start [redacted] end\n")
    assert text.endswith("[redacted]\n")
    assert len(text) > 200_000
    assert key not in res.output_tail


# --- presets as the CLIs are today ---------------------------------------------------------------------

needs_bwrap = pytest.mark.skipif(sandbox.bwrap_path() is None, reason="bubblewrap is not usable on this machine")
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="the real root path needs root")


@pytest.fixture(autouse=True)
def no_sandbox_claim(monkeypatch: pytest.MonkeyPatch) -> None:
    """The machine's own IS_SANDBOX (a CI container may set it) must not decide these tests."""
    monkeypatch.delenv("IS_SANDBOX", raising=False)


def preset_repo(mdrepo: Repo, tmp_path: Path, preset: str, mode: str = "off") -> tuple[dict[str, str], Path]:
    """mdrepo with `preset` and sandbox `mode`; the fake CLIs first on PATH. Inside bubblewrap the tmp dirs
    are private, so the CLIs live in the git dir (read-only there) and log under their own ~ state."""
    bin_dir = fakeclis.install(mdrepo.top / ".git" / "fake-bin" if mode == "bwrap" else tmp_path / "bin")
    state = Path(os.environ["HOME"]) / (".codex" if preset == "codex" else ".claude")
    state.mkdir(exist_ok=True)
    mdrepo.configure(f'sandbox = "{mode}"\n[agent]\npreset = "{preset}"\n')
    mdrepo.commit("configure mdspec", env={"MDSPEC_RUNNING": "1"})
    log = state / "fake-log.jsonl"
    return {"PATH": f"{bin_dir}:{os.environ['PATH']}", "FAKE_LOG": str(log), "MDSPEC_SANDBOX": mode}, log


def run_preset(mdrepo: Repo, tmp_path: Path, preset: str, mode: str = "off") -> dict[str, Any]:
    """A spec commit run in the foreground through `preset`, which must succeed; the CLI's one call."""
    env, log = preset_repo(mdrepo, tmp_path, preset, mode)
    spec_commit(mdrepo)
    proc = mdrepo.mdspec("run", "--foreground", env=env, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (call,) = calls(log)
    return call


def calls(log: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


@needs_root
def test_claude_code_as_root_without_a_sandbox_is_refused_before_it_starts(mdrepo: Repo, tmp_path: Path) -> None:
    env, log = preset_repo(mdrepo, tmp_path, "claude-code")
    spec_commit(mdrepo)
    tip, status = mdrepo.head(), mdrepo.status()
    proc = mdrepo.mdspec("run", "--foreground", env=env, check=False)
    assert proc.returncode == 1
    rec = last_run(mdrepo)
    assert rec["status"] == "failed"
    assert rec["reason"].startswith(
        "Claude Code refuses --dangerously-skip-permissions as root outside a sandbox: "
        'set sandbox = "bwrap" in .mdspec.toml'
    ), rec
    assert "\n" not in rec["reason"]
    assert f"failed: {rec['reason']}" in proc.stdout
    assert calls(log) == []  # the CLI never started
    assert (mdrepo.head(), mdrepo.status()) == (tip, status)
    assert "spec/app.md" in mdrepo.mdspec("status", env=env).stdout  # still pending
    # doctor says the same, as a FIX
    doc = mdrepo.mdspec("doctor", env=env, check=False)
    assert doc.returncode == 1
    assert "FIX  agent command as root: Claude Code refuses --dangerously-skip-permissions" in doc.stdout


@needs_bwrap
def test_claude_code_in_the_sandbox_is_told_so_and_reports_model_and_usage(mdrepo: Repo, tmp_path: Path) -> None:
    call = run_preset(mdrepo, tmp_path, "claude-code", "bwrap")
    assert call["env"]["IS_SANDBOX"] == "1"
    assert call["uid"] == os.geteuid()
    assert call["argv"] == ["-p", "--output-format", "json", "--dangerously-skip-permissions"]
    rec = last_run(mdrepo)
    assert rec["status"] == "landed"
    assert rec["sandbox"] == "bwrap"
    assert rec["model"] == "claude-sonnet-4-5-20250929"  # the costliest of modelUsage's keys
    assert rec["turns"] == 6
    assert rec["cost_usd"] == 0.0721
    u = rec["usage"]
    assert (u["input_tokens"], u["output_tokens"], u["cache_read_input_tokens"], u["cache_creation_input_tokens"]) == (
        314,
        900,
        40200,
        5100,
    )  # every model's tokens, the housekeeping model's too
    assert mdrepo.message().startswith("mdspec: Add out.txt\n")


def test_root_refusal_reads_the_uid_and_the_sandbox(monkeypatch: pytest.MonkeyPatch) -> None:
    claude = AgentConfig(backend="command", preset="claude-code")
    monkeypatch.setattr(backends, "effective_uid", lambda: 1000)
    assert backends.root_refusal(claude, False, {}) is None  # an ordinary user: Claude Code runs
    backends.check_ready(claude, False, {})
    monkeypatch.setattr(backends, "effective_uid", lambda: 0)
    assert 'sandbox = "bwrap"' in (backends.root_refusal(claude, False, {}) or "")
    with pytest.raises(BackendError, match="refuses --dangerously-skip-permissions as root"):
        backends.check_ready(claude, False, {})
    assert backends.root_refusal(claude, True, {}) is None  # inside bubblewrap: IS_SANDBOX=1 is set for it
    assert backends.root_refusal(claude, False, {"IS_SANDBOX": "1"}) is None  # a container says it is one
    own = AgentConfig(backend="command", command="FOO=1 /opt/bin/claude -p --dangerously-skip-permissions")
    assert backends.root_refusal(own, False, {}) is not None
    for other in (AgentConfig(backend="command", preset="codex"), AgentConfig(backend="command", command="claude -p")):
        assert backends.root_refusal(other, False, {}) is None


def test_codex_preset_uses_the_current_flags(mdrepo: Repo, tmp_path: Path) -> None:
    call = run_preset(mdrepo, tmp_path, "codex")
    argv = call["argv"]
    assert argv[0] == "exec"
    assert argv[-1] == "-"
    assert "--full-auto" not in argv
    assert argv[argv.index("--sandbox") + 1] == "workspace-write"
    assert "--json" in argv
    assert "--skip-git-repo-check" in argv
    assert argv[argv.index("--output-last-message") + 1].endswith("/answer/summary.txt")
    assert "IS_SANDBOX" not in call["env"]  # not sandboxed by mdspec: Codex's own sandbox confines its tools
    rec = last_run(mdrepo)
    assert rec["status"] == "landed"
    assert rec["model"] == "gpt-5.1-codex"  # from Codex's session log
    u = rec["usage"]
    assert (u["input_tokens"], u["cache_read_input_tokens"], u["output_tokens"]) == (3000, 9000, 450)
    assert rec["cost_usd"] is None  # Codex reports no cost: unknown, never $0
    assert rec["cost_unknown"] == "codex reported no cost"
    assert mdrepo.message().startswith("mdspec: Add out.txt\n\nWrote out.txt.")


@needs_bwrap
def test_codex_inside_the_sandbox_leaves_sandboxing_to_mdspec(mdrepo: Repo, tmp_path: Path) -> None:
    call = run_preset(mdrepo, tmp_path, "codex", "bwrap")
    assert "--dangerously-bypass-approvals-and-sandbox" in call["argv"]
    assert "--sandbox" not in call["argv"]
    rec = last_run(mdrepo)
    assert rec["status"] == "landed"
    assert rec["sandbox"] == "bwrap"
    assert rec["model"] == "gpt-5.1-codex"


def test_codex_model_from_the_command_line_and_a_failed_turn(tmp_path: Path) -> None:
    bin_dir = fakeclis.install(tmp_path / "bin")
    env = {**runner.backend_env(), "PATH": f"{bin_dir}:{os.environ['PATH']}", "CODEX_HOME": str(tmp_path / "nowhere")}
    cmd = "codex exec --json -m gpt-5.2 --skip-git-repo-check -"
    ctx, _ = make_ctx(tmp_path, cmd, env=env)
    (tmp_path / "nowhere").mkdir()
    r = backends.CommandSession(ctx).start()
    assert (r.stopped_by, r.model, r.final_text) == (None, "gpt-5.2", "Add out.txt\n\nWrote out.txt.")
    assert r.cost_unknown == "the agent command reported no cost"
    assert r.usage.cost_usd == 0
    ctx, _ = make_ctx(tmp_path, cmd, env={**env, "FAKE_CODEX_FAIL": "You've hit your usage limit."})
    r = backends.CommandSession(ctx).start()
    assert r.stopped_by == "error"
    assert r.error == "agent command exited with status 1: You've hit your usage limit."


def test_a_usage_error_names_the_line_that_says_what_is_wrong(mdrepo: Repo, tmp_path: Path) -> None:
    bin_dir = fakeclis.install(tmp_path / "bin")
    # The preset as it was: today's `codex exec` has no --full-auto.
    old = 'codex exec --full-auto --skip-git-repo-check --output-last-message "$MDSPEC_SUMMARY_FILE" -'
    mdrepo.configure(f"[agent]\ncommand = '{old}'\n")
    mdrepo.commit("configure mdspec", env={"MDSPEC_RUNNING": "1"})
    spec_commit(mdrepo)
    proc = mdrepo.mdspec("run", "--foreground", env={"PATH": f"{bin_dir}:{os.environ['PATH']}"}, check=False)
    assert proc.returncode == 1
    rec = last_run(mdrepo)
    assert rec["reason"] == "agent command exited with status 2: error: unexpected argument '--full-auto' found"
    log = (mdrepo.state / "runs" / rec["id"] / "output.log").read_text()
    assert "tip: to pass '--full-auto' as a value" in log
    assert log.rstrip().endswith("For more information, try '--help'.")


def test_failure_line() -> None:
    clap = (
        "error: unexpected argument '--full-auto' found\n\n  tip: to pass it as a value, use '-- --full-auto'\n\n"
        "Usage: codex exec [OPTIONS] [PROMPT]\n\nFor more information, try '--help'.\n"
    )
    assert cliout.failure_line(clap) == "error: unexpected argument '--full-auto' found"
    assert cliout.failure_line("starting\nopen(): Permission DENIED\nbye\n") == "open(): Permission DENIED"
    assert cliout.failure_line("npm: claude: command Not Found\n") == "npm: claude: command Not Found"
    assert cliout.failure_line('{"type":"error","message":"x"}\nrate limited\n\n') == "rate limited"
    assert cliout.failure_line("\n\n") == ""


def test_claude_code_result_parsing(tmp_path: Path) -> None:
    log = tmp_path / "output.log"
    one = {
        "type": "result",
        "subtype": "success",
        "is_error": False,
        "result": "Done",
        "num_turns": 3,
        "usage": {
            "input_tokens": 5,
            "output_tokens": 7,
            "cache_creation_input_tokens": 11,
            "cache_read_input_tokens": 13,
        },
    }
    log.write_text("noise\n" + json.dumps(one) + "\n")
    out = cliout.read(log)
    assert (out.text, out.turns, out.model, out.error) == ("Done", 3, "", None)
    assert out.usage == Usage(5, 7, 11, 13, 0.0)
    assert not out.cost_known  # no total_cost_usd
    failed = {
        **one,
        "is_error": True,
        "subtype": "error_during_execution",
        "result": "",
        "errors": ["Invalid API key"],
        "total_cost_usd": 0,
        "modelUsage": {"claude-opus-4-5": {}},
    }
    with log.open("a") as f:
        f.write(json.dumps(failed) + "\n")
    out = cliout.read(log, len(json.dumps(one)) + 7)  # the second round's output only
    assert out.error == "error_during_execution: Invalid API key"
    assert out.model == "claude-opus-4-5"
    assert out.usage == Usage(5, 7, 11, 13, 0.0)
    assert out.cost_known  # modelUsage without counts: `usage` counts
    assert cliout.read(tmp_path / "missing.log") == cliout.CliOutput()
