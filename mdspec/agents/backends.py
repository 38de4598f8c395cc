"""The command backend: an external agent CLI run in the worktree, and its presets (DESIGN §4).

The prompt goes to the command on stdin and in the file named by MDSPEC_PROMPT_FILE. The command may
write its final answer (first line the commit subject) to MDSPEC_SUMMARY_FILE. Presets read the CLI's own
JSON output for the answer, turns and cost where it gives them.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import stat
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mdspec.agents.session import BackendResult, RunContext, Usage
from mdspec.run.procs import KEY_VARS, protect_environ, run_shell
from mdspec.run.sandbox import allow_read, allow_write

PRESETS = {
    "claude-code": "claude -p --output-format json --dangerously-skip-permissions",
    "codex": 'codex exec --full-auto --skip-git-repo-check --output-last-message "$MDSPEC_SUMMARY_FILE" -',
}


PRESET_STATE = {"claude-code": (".claude", ".claude.json"), "codex": (".codex",)}
# Anthropic's own CLI may log in with the API key (it can also use its own login under ~/.claude); no
# other command gets it: Codex uses its own credentials, and an arbitrary command has no claim to the key
# mdspec holds for the built-in agent.
NEEDS_ANTHROPIC_KEY = ("claude-code",)


def command_env(env: Mapping[str, str], preset: str) -> dict[str, str]:
    """The command backend's environment: the CLI's own credentials stay, the Anthropic key only for a
    preset that signs in with it."""
    if preset in NEEDS_ANTHROPIC_KEY:
        return dict(env)
    return {k: v for k, v in env.items() if k not in KEY_VARS}


def command_for(ctx: RunContext) -> str:
    return ctx.agent.command or PRESETS[ctx.agent.preset]


@dataclass(frozen=True)
class _Parsed:
    text: str
    turns: int
    usage: Usage
    model: str = ""


def _main_model(model_usage: Any) -> str:
    """The model that did most of the work, from Claude Code's `modelUsage` (model id -> its token counts);
    a small model it uses on the side counts fewer tokens."""
    if not isinstance(model_usage, dict):
        return ""

    def tokens(item: tuple[Any, Any]) -> int:
        u = item[1] if isinstance(item[1], dict) else {}
        keys = ("inputTokens", "outputTokens", "cacheReadInputTokens", "cacheCreationInputTokens")
        return sum(int(u.get(k, 0) or 0) for k in keys)

    named = [(str(k), v) for k, v in model_usage.items() if k]
    return max(named, key=tokens)[0] if named else ""


def _parse_output(stdout_tail: str) -> _Parsed | None:
    """Claude Code's `--output-format json`: one JSON object with result, num_turns, usage, cost."""
    for line in reversed(stdout_tail.strip().splitlines()):
        line = line.strip()
        if not line.startswith("{"):
            continue
        try:
            data: Any = json.loads(line)
        except ValueError:
            continue
        if not isinstance(data, dict) or "result" not in data:
            continue
        u = data.get("usage") or {}
        usage = Usage(
            int(u.get("input_tokens", 0) or 0),
            int(u.get("output_tokens", 0) or 0),
            int(u.get("cache_creation_input_tokens", 0) or 0),
            int(u.get("cache_read_input_tokens", 0) or 0),
            float(data.get("total_cost_usd", 0.0) or 0.0),
        )
        return _Parsed(str(data.get("result") or ""), int(data.get("num_turns", 1) or 1), usage,
                       _main_model(data.get("modelUsage")))
    return None


def _program_dirs(command: str, env: Mapping[str, str]) -> list[Path]:
    """The directories of the command's program when they are under /tmp, which the sandbox replaces with
    an empty one (a CLI installed in a CI job's checkout there): the PATH entry it is found in and the
    directory of the file that links to (npm's node_modules/.bin links to the package's own bin/)."""
    try:
        words = shlex.split(command)
    except ValueError:
        return []
    program = next((w for w in words if not ("=" in w and w.partition("=")[0].isidentifier())), None)
    found = shutil.which(program, path=env.get("PATH")) if program else None
    if found is None:
        return []
    dirs = {os.path.dirname(os.path.abspath(found)), os.path.dirname(os.path.realpath(found))}
    return [Path(d) for d in sorted(dirs) if d.startswith("/tmp/")]


def _read_answer(path: Path, limit: int = 64_000) -> str | None:
    """The answer file's text, or None when there is none. A symlink is not followed: the command could
    point it at a file it cannot read itself (a key under ~/.ssh) to have it copied into the commit message."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        return f.read(limit).decode("utf-8", "replace")


class CommandSession:
    def __init__(self, ctx: RunContext) -> None:
        self.ctx = ctx
        self.turns = 0
        self.usage = Usage()
        self.model = ""  # as the CLI reports it, when it does
        self.started = time.monotonic()
        self.prompt_file = ctx.run_dir / "prompt.md"
        # The one place in the git dir the sandboxed command may write: a directory of its own for the answer.
        self.answer_dir = ctx.run_dir / "answer"
        self.summary_file = self.answer_dir / "summary.txt"
        self.sandbox = allow_write(ctx.sandbox, self.answer_dir)
        protect_environ()  # without a sandbox, the command could read the key from the worker's /proc entry
        for d in _program_dirs(command_for(ctx), ctx.env):
            self.sandbox = allow_read(self.sandbox, d)
        # A preset's CLI keeps its own state and login under ~ (read-only in the sandbox otherwise).
        for name in PRESET_STATE.get(ctx.agent.preset, ()):
            path = Path.home() / name
            if path.exists():
                self.sandbox = allow_write(self.sandbox, path)

    def start(self) -> BackendResult:
        return self._run(self.ctx.task_prompt)

    def fix(self, check_output: str) -> BackendResult:
        prompt = (
            self.ctx.task_prompt
            + "\n\n## The check failed after your previous attempt\n\nFix the code so that it passes. "
            + "Its output:\n\n```\n"
            + check_output
            + "\n```\n"
        )
        return self._run(prompt)

    def _run(self, prompt: str) -> BackendResult:
        ctx = self.ctx
        full = ctx.system_prompt + "\n\n" + prompt
        self.prompt_file.write_text(full, encoding="utf-8")
        self.answer_dir.mkdir(parents=True, exist_ok=True)
        self.summary_file.unlink(missing_ok=True)
        env = {**command_env(ctx.env, ctx.agent.preset), "MDSPEC_PROMPT_FILE": str(self.prompt_file),
               "MDSPEC_SUMMARY_FILE": str(self.summary_file)}
        if self.sandbox:
            # Claude Code refuses --dangerously-skip-permissions as root unless told it runs in a sandbox;
            # inside bwrap it does (the filesystem confined as for every command of a run).
            env["IS_SANDBOX"] = "1"
        remaining = ctx.agent.max_minutes * 60 - (time.monotonic() - self.started)
        command = command_for(ctx)
        ctx.on_progress({"event": "tool", "name": "command", "summary": command, "is_error": False})
        if remaining <= 0:
            return self._result("", "max_minutes", None)
        res = run_shell(command, ctx.worktree, env, ctx.run_dir / "output.log", remaining, stdin_text=full,
                        prefix=self.sandbox)
        parsed = _parse_output(res.output_tail) if ctx.agent.preset == "claude-code" or not ctx.agent.preset else None
        self.turns += parsed.turns if parsed else 1
        if parsed:
            self.usage = self.usage + parsed.usage
            self.model = parsed.model or self.model
        text = _read_answer(self.summary_file)
        if text is None:
            text = parsed.text if parsed else ""
        ctx.on_progress({"event": "turn", "turn": self.turns, "cost_usd": self.usage.cost_usd})
        if res.timed_out:
            return self._result(text, "max_minutes", None)
        if res.returncode == 127:
            first = command.split()[0] if command.split() else command
            return self._result(text, "error", f"agent command not found: {first!r} (exit 127); see output.log")
        if res.returncode != 0:
            last = res.output_tail.strip().splitlines()[-1:] or [""]
            return self._result(text, "error", f"agent command exited with status {res.returncode}: {last[0][:200]}")
        if self.usage.cost_usd > ctx.agent.max_cost_usd:
            return self._result(text, "max_cost_usd", None)
        return self._result(text, None, None)

    def _result(self, text: str, stopped_by: str | None, error: str | None) -> BackendResult:
        # The model is whatever the external CLI is set to use (mdspec's `model` key is not passed to it),
        # as the CLI reports it.
        return BackendResult(text, self.turns, self.usage, stopped_by, error, (), self.model)
