"""The command backend: an external agent CLI run in the worktree, and its presets (DESIGN §4).

The prompt goes to the command on stdin and in the file named by MDSPEC_PROMPT_FILE. The command may
write its final answer (first line the commit subject) to MDSPEC_SUMMARY_FILE. The CLI's own JSON output
(Claude Code's result object, Codex's JSONL events) gives the answer, turns, tokens, cost and the model
where it reports them; `cliout.py` reads it.
"""

from __future__ import annotations

import dataclasses
import os
import shlex
import shutil
import stat
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from mdspec.agents import cliout
from mdspec.agents.session import BackendResult, RunContext, Usage
from mdspec.config import AgentConfig
from mdspec.errors import BackendError
from mdspec.exec.procs import KEY_VARS, protect_environ, run_shell
from mdspec.exec.sandbox import allow_read, allow_write, hidden_secret


@dataclass(frozen=True)
class Preset:
    program: str  # the executable, looked up on PATH
    args: str  # when mdspec runs it without a sandbox: the CLI confines its own tools
    confined_args: str  # inside mdspec's bubblewrap sandbox, which does the confining
    state: tuple[str, ...]  # under ~: the CLI's own settings and login, writable inside the sandbox
    signs_in_with_key: bool  # gets the Anthropic API key mdspec holds


_CODEX_COMMON = '--skip-git-repo-check --output-last-message "$MDSPEC_SUMMARY_FILE" -'
PRESETS = {
    "claude-code": Preset(
        "claude",
        "-p --output-format json --dangerously-skip-permissions",
        "-p --output-format json --dangerously-skip-permissions",
        (".claude", ".claude.json"),
        True,
    ),
    # Codex's own sandbox (Landlock and seccomp) cannot nest inside bubblewrap: there mdspec's sandbox
    # is the one, and Codex is told so.
    "codex": Preset(
        "codex",
        f"exec --json --sandbox workspace-write {_CODEX_COMMON}",
        f"exec --json --dangerously-bypass-approvals-and-sandbox {_CODEX_COMMON}",
        (".codex",),
        False,
    ),
}
# Claude Code refuses this flag as root unless the environment says it is sandboxed (IS_SANDBOX=1).
SKIP_PERMISSIONS = "--dangerously-skip-permissions"


def command_env(env: Mapping[str, str], preset: str) -> dict[str, str]:
    """The command backend's environment: the CLI's own credentials stay, the Anthropic key only for a
    preset that signs in with it (Anthropic's own CLI; Codex uses its own credentials, and an arbitrary
    command has no claim to the key mdspec holds for the built-in agent)."""
    p = PRESETS.get(preset)
    if p is not None and p.signs_in_with_key:
        return dict(env)
    return {k: v for k, v in env.items() if k not in KEY_VARS}


def command_for(ctx: RunContext) -> str:
    return preset_command(ctx.agent, confined=bool(ctx.sandbox))


def preset_command(agent: AgentConfig, confined: bool) -> str:
    """The shell command a run executes: the configured one, or the preset's for the sandbox it runs in."""
    if agent.command:
        return agent.command
    p = PRESETS[agent.preset]
    return f"{p.program} {p.confined_args if confined else p.args}"


def program_of(command: str) -> str | None:
    """The program a shell command line starts (its first word after any VAR=value), or None."""
    try:
        words = shlex.split(command)
    except ValueError:
        return None
    words = [w for w in words if not (w.partition("=")[1] and w.partition("=")[0].isidentifier())] or [""]
    return words[0] or None


def effective_uid() -> int:
    """The effective uid; a function of its own so tests can stand in for an ordinary user or root."""
    return os.geteuid()


def refuses_root(agent: AgentConfig) -> bool:
    """Whether the agent command is Claude Code skipping its permission prompts, which it refuses as root
    outside a sandbox."""
    if agent.preset:
        return agent.preset == "claude-code"
    program = program_of(agent.command) or ""
    return os.path.basename(program) == "claude" and SKIP_PERMISSIONS in agent.command


def root_refusal(agent: AgentConfig, confined: bool, env: Mapping[str, str]) -> str | None:
    """Why this run cannot start as root, or None. IS_SANDBOX=1 in the user's environment says the whole
    machine is a throwaway sandbox (a container), which Claude Code accepts too."""
    if confined or env.get("IS_SANDBOX") == "1" or effective_uid() != 0 or not refuses_root(agent):
        return None
    return (
        "Claude Code refuses --dangerously-skip-permissions as root outside a sandbox: set "
        'sandbox = "bwrap" in .mdspec.toml (needs bubblewrap), or export IS_SANDBOX=1 if this '
        "machine is a disposable container"
    )


def check_ready(agent: AgentConfig, confined: bool, env: Mapping[str, str]) -> None:
    """Fail before the run starts, in one line, when the command would refuse to run at all."""
    why = root_refusal(agent, confined, env)
    if why:
        raise BackendError(why)


def sandbox_for(
    prefix: tuple[str, ...],
    agent: AgentConfig,
    answer_dir: Path | None = None,
    command: str = "",
    env: Mapping[str, str] | None = None,
) -> tuple[str, ...]:
    """The run's bwrap prefix (empty: none) as the agent command gets it: its answer directory and the
    preset CLI's own state and login under ~ writable (read-only in the sandbox otherwise), the command's
    program visible when it is installed under /tmp. `mdspec doctor` probes with the same prefix, so what
    it finds is what the run gets."""
    if answer_dir is not None:
        prefix = allow_write(prefix, answer_dir)
    if prefix:
        for d in _program_dirs(command, env if env is not None else os.environ):
            prefix = allow_read(prefix, d)
    p = PRESETS.get(agent.preset)
    for name in p.state if p else ():
        path = Path.home() / name
        if path.exists():
            prefix = allow_write(prefix, path)
    return prefix


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
    # Under /tmp only; never a directory the sandbox hides on purpose (a home under /tmp, in tests).
    return [Path(d) for d in sorted(dirs) if d.startswith("/tmp/") and hidden_secret(d, env.get("HOME")) is None]


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
        self.model = ""
        self.cost_unknown: str | None = None
        self.started = time.monotonic()
        self.prompt_file = ctx.run_dir / "prompt.md"
        # The one place in the git dir the sandboxed command may write: a directory of its own for the answer.
        self.answer_dir = ctx.run_dir / "answer"
        self.summary_file = self.answer_dir / "summary.txt"
        self.sandbox = sandbox_for(ctx.sandbox, ctx.agent, self.answer_dir, command_for(ctx), ctx.env)
        protect_environ()  # without a sandbox, the command could read the key from the worker's /proc entry

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
        env = {
            **command_env(ctx.env, ctx.agent.preset),
            "MDSPEC_PROMPT_FILE": str(self.prompt_file),
            "MDSPEC_SUMMARY_FILE": str(self.summary_file),
        }
        if ctx.sandbox:
            env["IS_SANDBOX"] = "1"  # true: bubblewrap confines it (Claude Code needs this to run as root)
        remaining = ctx.agent.max_minutes * 60 - (time.monotonic() - self.started)
        command = command_for(ctx)
        ctx.on_progress({"event": "tool", "name": "command", "summary": command, "is_error": False})
        if remaining <= 0:
            return self._result("", "max_minutes", None)
        log = ctx.run_dir / "output.log"
        offset = log.stat().st_size if log.exists() else 0
        res = run_shell(command, ctx.worktree, env, log, remaining, stdin_text=full, prefix=self.sandbox)
        out = cliout.read(log, offset)
        self.turns += out.turns or 1
        self.usage = self.usage + out.usage
        self.model = out.model or cliout.model_in_command(command) or self.model
        if not out.cost_known:
            self.cost_unknown = f"{ctx.agent.preset or 'the agent command'} reported no cost"
        text = _read_answer(self.summary_file)
        if text is None:
            text = out.text
        ctx.on_progress(
            {
                "event": "turn",
                "turn": self.turns,
                "usage": dataclasses.asdict(self.usage),
                "cost_usd": self.usage.cost_usd,
                "cost_unknown": self.cost_unknown,
            }
        )
        if res.timed_out:
            return self._result(text, "max_minutes", None)
        if res.returncode == 127:
            first = program_of(command) or command
            return self._result(text, "error", f"agent command not found: {first!r} (exit 127); see output.log")
        if res.returncode != 0:
            why = out.error or cliout.failure_line(res.output_tail)
            return self._result(text, "error", f"agent command exited with status {res.returncode}: {why[:200]}")
        if out.error:
            return self._result(text, "error", f"the agent CLI reported an error: {out.error[:200]}")
        if self.usage.cost_usd > ctx.agent.max_cost_usd:
            return self._result(text, "max_cost_usd", None)
        return self._result(text, None, None)

    def _result(self, text: str, stopped_by: str | None, error: str | None) -> BackendResult:
        # mdspec's `model` key is not passed to an external CLI: the model is whatever the CLI says it used.
        return BackendResult(text, self.turns, self.usage, stopped_by, error, (), self.model, self.cost_unknown)
