"""The real Claude Code CLI behind the `claude-code` preset, as root, in mdspec's bubblewrap sandbox.

tests/tools/install-claude-code.sh (which .ci/run calls) installs the pinned CLI from the npm registry into
.tools/claude-code. The CLI talks to tests/fakeapi.py through ANTHROPIC_BASE_URL with a dummy key; the fake
model answers with calls to Claude Code's own tools (Write, Bash) as the CLI declares them in its requests,
the CLI carries them out in the worktree, and mdspec lands what they wrote as the generated commit.
CI and the project's machines run as root, where the CLI refuses the preset's --dangerously-skip-permissions
unless mdspec tells it that it runs in a sandbox (IS_SANDBOX=1).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import FOREGROUND, PROJECT, Repo
from fakeapi import FAKE_KEY, FakeAPI, point_sdk_at
from runhelpers import QUIET, last_run, spec_commit

from mdspec.exec import sandbox
from mdspec.fast import trailers

TOOLS = PROJECT / ".tools" / "claude-code"
CLAUDE = TOOLS / "node_modules" / ".bin" / "claude"
INSTALL = "tests/tools/install-claude-code.sh"
MODEL = "claude-sonnet-4-5-20250929"


def _installed() -> str | None:
    """Why the CLI cannot be used (None when it can): never installed, or an install that failed."""
    status = TOOLS / "status"
    if CLAUDE.is_file():
        try:
            proc = subprocess.run([str(CLAUDE), "--version"], capture_output=True, text=True, timeout=60)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return f"{CLAUDE} does not run: {exc}"
        if proc.returncode == 0:
            return None
        return f"{CLAUDE} --version exited {proc.returncode}: {(proc.stdout + proc.stderr).strip()[:200]}"
    if status.is_file():
        return f"{INSTALL} did not install Claude Code: {status.read_text().strip()}"
    return f"Claude Code is not installed here: run {INSTALL} (needs npm and the npm registry)"


@pytest.fixture
def claude_code(monkeypatch: pytest.MonkeyPatch) -> Path:
    """The installed CLI's directory, put first on PATH; a skip when it is not installed, and a failure
    under CI when the install script ran and did not leave a working CLI."""
    problem = _installed()
    if problem is not None:
        if os.environ.get("CI") == "true" and (TOOLS / "status").is_file():
            pytest.fail(problem)
        pytest.skip(problem)
    if sandbox.bwrap_path() is None:
        pytest.skip("bubblewrap is not usable on this machine")
    bindir = CLAUDE.parent
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")
    return bindir


@pytest.fixture
def root_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Path]:
    """A HOME as root's /root is in a container: outside /tmp, so the sandbox shows it read-only (under
    /tmp, the sandbox's private /tmp would stand in for it, empty and writable)."""
    base = Path("/var/tmp")
    home = Path(tempfile.mkdtemp(prefix="mdspec-home-", dir=base if base.is_dir() else tmp_path))
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    try:
        yield home
    finally:
        shutil.rmtree(home, ignore_errors=True)


@pytest.fixture
def cc_api(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeAPI]:
    api = FakeAPI(check_tools=True).start()
    point_sdk_at(monkeypatch, api)
    monkeypatch.setenv("ANTHROPIC_MODEL", MODEL)
    # No traffic to anything but the API it is pointed at (this machine has no internet).
    monkeypatch.setenv("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC", "1")
    monkeypatch.setenv("DISABLE_TELEMETRY", "1")
    monkeypatch.setenv("DISABLE_AUTOUPDATER", "1")
    monkeypatch.delenv("MDSPEC_SANDBOX")  # the config's sandbox = "bwrap" decides
    yield api
    api.close()


GREET = 'def greet(name: str) -> str:\n    return f"Hello, {name}!"\n'
CONFIG = """sandbox = "bwrap"
check = '''python3 -c 'import sys; sys.path[:0] = ["src"]; import greet; assert greet.greet("Ada") == "Hello, Ada!"' '''

[agent]
preset = "claude-code"
"""


@pytest.mark.parametrize("used_before", [False, True], ids=["first-use", "with-its-state"])
def test_claude_code_preset_as_root_in_the_sandbox_lands_a_generated_commit(
    repo: Repo, claude_code: Path, cc_api: FakeAPI, root_home: Path, used_before: bool
) -> None:
    if used_before:  # the CLI ran here before: mdspec gives it its state under ~ to write
        (root_home / ".claude").mkdir()
        (root_home / ".claude.json").write_text("{}\n")
    repo.mdspec("init", "--git-hook")
    repo.configure(CONFIG)
    repo.commit("set up mdspec", env=QUIET)
    wt = (repo.state / "worktree").resolve()
    cc_api.tool("Write", "I'll write the module.", file_path=str(wt / "src" / "greet.py"), content=GREET)
    cc_api.tool(
        "Bash",
        command="mkdir -p docs && printf 'greet(name) says hello\\n' > docs/usage.txt",
        description="Write the usage note",
    )
    cc_api.text("Add greet()\n\nsrc/greet.py greets by name; docs/usage.txt says how.")

    spec = spec_commit(repo, "# App\nGreet people by name.\n", env=FOREGROUND)

    rec = last_run(repo)
    assert rec["status"] == "landed", (rec, repo.last_output)
    assert (rec["backend"], rec["sandbox"]) == ("claude-code", "bwrap")
    head = repo.head()
    assert head != spec
    assert repo.git("rev-parse", "HEAD~1").strip() == spec
    msg = repo.message()
    assert msg.startswith("mdspec: Add greet()\n\nsrc/greet.py greets by name")
    assert trailers.values(msg, trailers.IMPLEMENTS) == [spec]
    assert trailers.values(msg, trailers.RUN) == [rec["id"]]
    assert trailers.values(msg, trailers.CHECK) == ["passed"]
    # The files the fake model's tool calls wrote, through Claude Code, in the sandboxed worktree.
    assert repo.git("show", "HEAD:src/greet.py") == GREET
    assert repo.git("show", "HEAD:docs/usage.txt") == "greet(name) says hello\n"
    assert sorted(repo.git("diff-tree", "-r", "--no-commit-id", "--name-only", "HEAD~1", "HEAD").split()) == [
        "docs/usage.txt",
        "src/greet.py",
    ]
    assert (repo.top / "src" / "greet.py").read_text() == GREET  # landed in the user's checkout

    # The conversation Claude Code held with the fake: every turn on the configured model with the dummy
    # key, each tool result a success.
    reqs = cc_api.requests
    assert len(reqs) == 3, [(r.status, r.body.get("model")) for r in reqs]
    assert all(r.status == 200 for r in reqs), [(r.status, r.body.get("model")) for r in reqs]
    assert {r.body["model"] for r in reqs} == {MODEL}
    assert {r.headers["x-api-key"] for r in reqs} == {FAKE_KEY}
    first = json.dumps(reqs[0].body["messages"])
    assert "Greet people by name." in first
    assert "## Spec commit 1 of 1" in first  # mdspec's prompt, on stdin
    results = [
        b
        for r in reqs[1:]
        for m in r.body["messages"][-1:]
        for b in m["content"]
        if isinstance(b, dict) and b.get("type") == "tool_result"
    ]
    assert len(results) == 2, results
    assert not any(b.get("is_error") for b in results), results

    # The record: the model Claude Code reported and the usage it counted, which is what the fake billed.
    billed = {
        k: sum(r.usage[k] for r in reqs)
        for k in ("input_tokens", "output_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")
    }
    assert rec["model"] == MODEL
    assert f"model: {MODEL}" in repo.git("notes", "--ref=mdspec", "show", "HEAD")
    assert {k: rec["usage"][k] for k in billed} == billed
    reported = _cli_result(repo.state / "runs" / rec["id"] / "output.log")
    assert rec["turns"] == reported["num_turns"] == 3
    assert rec["cost_usd"] == round(reported["total_cost_usd"], 6) > 0
    # Its own state: written where mdspec let it write (~/.claude when it was there), nowhere else in ~.
    sessions = list((root_home / ".claude" / "projects").glob("*/*.jsonl"))
    assert len(sessions) == (1 if used_before else 0)
    assert sorted(p.name for p in root_home.iterdir()) == ([".claude", ".claude.json"] if used_before else [])


def _cli_result(log: Path) -> dict[str, Any]:
    for line in reversed(log.read_text().splitlines()):
        if line.startswith("{"):
            data: dict[str, Any] = json.loads(line)
            return data
    raise AssertionError(f"no JSON result in {log}:\n{log.read_text()[-2000:]}")


# --- the fake API's check of scripted tool calls against the tools a client declares -----------------------

WRITE = {
    "name": "Write",
    "description": "Write a file",
    "input_schema": {
        "type": "object",
        "additionalProperties": False,
        "required": ["file_path", "content"],
        "properties": {"file_path": {"type": "string"}, "content": {"type": "string"}},
    },
}
BASH = {
    "name": "Bash",
    "description": "Run a command",
    "input_schema": {
        "type": "object",
        "additionalProperties": False,
        "required": ["command"],
        "properties": {
            "command": {"type": "string"},
            "timeout": {"type": "number"},
            "run_in_background": {"type": "boolean"},
        },
    },
}


@pytest.mark.parametrize(
    ("name", "tool_input", "problem"),
    [
        ("Write", {"file_path": "/w/a.py", "content": "x"}, None),
        ("Bash", {"command": "ls", "timeout": 5}, None),
        ("Edit", {"file_path": "/w/a.py"}, "scripted tool_use 'Edit' is not among the request's tools (Bash, Write)"),
        ("Write", {"path": "/w/a.py", "content": "x"}, "Write input: missing required 'file_path'"),
        ("Write", {"file_path": "/w/a.py", "content": "x", "mode": "w"}, "Write input: 'mode' is not a declared"),
        ("Bash", {"command": ["ls"]}, "Bash input.command: expected string, got list"),
        ("Bash", {"command": "ls", "timeout": True}, "Bash input.timeout: expected number, got bool"),
    ],
)
def test_fake_checks_scripted_tool_calls_against_the_declared_tools(
    name: str, tool_input: dict[str, Any], problem: str | None
) -> None:
    api = FakeAPI(check_tools=True)  # not started: handle() is what the HTTP handler calls
    try:
        api.tool(name, **tool_input)
        body = {
            "model": MODEL,
            "max_tokens": 100,
            "tools": [BASH, WRITE],
            "messages": [{"role": "user", "content": "go"}],
        }
        answer = api.handle({"x-api-key": FAKE_KEY}, body)
        if problem is None:
            assert answer.status == 200
            assert json.loads(answer.payload)["content"][0]["input"] == tool_input
        else:
            assert answer.status == 400
            assert problem in json.loads(answer.payload)["error"]["message"]
        # Without the check the same script is served as it is (the built-in loop's own tests rely on it).
        unchecked = FakeAPI()
        unchecked.tool(name, **tool_input)
        assert unchecked.handle({"x-api-key": FAKE_KEY}, body).status == 200
        unchecked.server.server_close()
    finally:
        api.server.server_close()
