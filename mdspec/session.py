"""What the runner and a backend exchange: the run context going in, usage and result coming out.

A backend is a `Session`: `start()` does the work for the prompt, `fix(check_output)` does one more round
after a failed check (the Anthropic loop continues its conversation; a command re-runs with the failure
appended). Limits (turns, minutes, cost) are cumulative over one session.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from mdspec.config import AgentConfig


@dataclass(frozen=True)
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0
    cache_creation_input_tokens: int = 0
    cache_read_input_tokens: int = 0
    cost_usd: float = 0.0

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.input_tokens + other.input_tokens,
            self.output_tokens + other.output_tokens,
            self.cache_creation_input_tokens + other.cache_creation_input_tokens,
            self.cache_read_input_tokens + other.cache_read_input_tokens,
            self.cost_usd + other.cost_usd,
        )

    @property
    def total_input(self) -> int:
        return self.input_tokens + self.cache_creation_input_tokens + self.cache_read_input_tokens


# Why a session stopped before the agent ended its turn by itself.
STOP_LIMITS = ("max_turns", "max_minutes", "max_cost_usd")
STOP_OTHER = ("refusal", "context", "error", "cancelled")


@dataclass(frozen=True)
class BackendResult:
    final_text: str  # the agent's final answer: first line the commit subject, the rest the body
    turns: int  # cumulative over the session
    usage: Usage  # cumulative over the session
    stopped_by: str | None = None  # None: the agent finished; else one of STOP_LIMITS / STOP_OTHER
    error: str | None = None  # one line for the record when stopped_by is "error" (type, request id)
    refusals: tuple[str, ...] = ()  # guard refusals during this session, one line each
    model: str = ""
    # Set when the session's dollar cost is not known (no price for the model it ran): one line, such as
    # "no price for claude-x". usage.cost_usd then counts only what was priced and must not be shown as the cost.
    cost_unknown: str | None = None


@dataclass(frozen=True)
class RunContext:
    worktree: Path  # the agent works here and nowhere else
    run_dir: Path  # transcript.jsonl and other run files go here
    system_prompt: str  # byte-stable across runs
    task_prompt: str  # the first user message: pending spec commits, file listing, notes index
    agent: AgentConfig
    protected: tuple[str, ...]  # globs relative to the worktree root the agent must not change
    env: Mapping[str, str]  # scrubbed environment for every command the agent runs
    on_progress: Callable[[Mapping[str, Any]], None] = field(default=lambda event: None)
    # Called after every turn / tool call with a small JSON-able dict (`{"event": "turn", "turn": 3,
    # "usage": {...}}`, `{"event": "tool", "name": "bash", "summary": "pytest -q"}`); the runner uses it to
    # rewrite run.json and show live progress.
    sandbox: tuple[str, ...] = ()  # argv prefix every command the backend runs goes through (empty: none)


class Session(Protocol):
    def start(self) -> BackendResult: ...

    def fix(self, check_output: str) -> BackendResult: ...
