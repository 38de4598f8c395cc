"""What an agent CLI's own output says: its answer, turns, tokens, cost, model and errors.

Two shapes are understood, whichever preset (or none) ran the command:
- Claude Code's `-p --output-format json`: one JSON object, `type` "result", with `result`, `is_error`,
  `subtype`, `num_turns`, `total_cost_usd`, `usage` (snake_case token counts) and `modelUsage` (per
  model, camelCase counts; its keys are the models actually used).
- Codex's `exec --json`: JSONL events `thread.started`, `turn.started`, `item.*`, `turn.completed`
  (with `usage`: input, cached input and output tokens; cached tokens are part of the input count),
  `turn.failed` and `error`. No cost; the model is read where Codex reports it.

Also here: the one line that says why a command failed, out of everything it printed.
"""

from __future__ import annotations

import json
import os
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mdspec.agents.session import Usage

LINE_LIMIT = 4 << 20  # a longer line is not JSON worth reading (and must not be read into memory whole)
FAILURE_WORDS = re.compile(r"error|unexpected|denied|not found", re.IGNORECASE)
CODEX_EVENTS = ("thread.started", "turn.started", "turn.completed", "turn.failed", "error")


@dataclass(frozen=True)
class CliOutput:
    text: str = ""  # the final answer
    turns: int = 0  # 0: the CLI did not say
    usage: Usage = field(default_factory=Usage)
    cost_known: bool = False  # the CLI reported its dollar cost (usage.cost_usd)
    model: str = ""
    error: str | None = None  # the CLI says the work failed (Claude Code's is_error, Codex's turn.failed)
    complaint: str | None = None  # the last error message it printed, failed or not (retries, say)


def read(log: Path, offset: int = 0) -> CliOutput:
    """What the output in `log` from byte `offset` on says (one round of the command)."""
    claude: dict[str, Any] | None = None
    codex = _Codex()
    try:
        f = log.open("rb")
    except OSError:
        return CliOutput()
    with f:
        f.seek(offset)
        for data in _json_lines(f):
            kind = data.get("type")
            if isinstance(kind, str) and (kind in CODEX_EVENTS or kind.startswith("item.")):
                codex.add(kind, data)
            elif "result" in data and kind in ("result", None):
                claude = data
    if claude is not None:
        return _claude(claude)
    if codex.seen:
        return codex.output()
    return CliOutput()


def _json_lines(f: Any) -> Any:
    while True:
        line = f.readline(LINE_LIMIT)
        if not line:
            return
        if len(line) == LINE_LIMIT and not line.endswith(b"\n"):
            while (rest := f.readline(LINE_LIMIT)) and not rest.endswith(b"\n"):
                pass
            continue
        if not line.lstrip().startswith(b"{"):
            continue
        try:
            data = json.loads(line)
        except ValueError:
            continue
        if isinstance(data, dict):
            yield data


def _int(d: Any, key: str) -> int:
    v = d.get(key) if isinstance(d, dict) else None
    return int(v) if isinstance(v, (int, float)) and not isinstance(v, bool) and v >= 0 else 0


def _claude(data: dict[str, Any]) -> CliOutput:
    models = data.get("modelUsage")
    models = models if isinstance(models, dict) else {}
    # modelUsage counts every model the session used (a small one for housekeeping as well), so it is the
    # complete count; `usage` is the fallback when it is missing or carries no counts.
    per_model = {
        str(name): Usage(
            _int(m, "inputTokens"),
            _int(m, "outputTokens"),
            _int(m, "cacheCreationInputTokens"),
            _int(m, "cacheReadInputTokens"),
            float(_num(m, "costUSD")),
        )
        for name, m in models.items()
    }
    total = Usage()
    for one in per_model.values():
        total = total + one
    if not (
        total.input_tokens or total.output_tokens or total.cache_read_input_tokens or total.cache_creation_input_tokens
    ):
        u = data.get("usage")
        total = Usage(
            _int(u, "input_tokens"),
            _int(u, "output_tokens"),
            _int(u, "cache_creation_input_tokens"),
            _int(u, "cache_read_input_tokens"),
        )
    cost = data.get("total_cost_usd")
    known = isinstance(cost, (int, float)) and not isinstance(cost, bool) and cost >= 0
    usage = Usage(
        total.input_tokens,
        total.output_tokens,
        total.cache_creation_input_tokens,
        total.cache_read_input_tokens,
        _num(data, "total_cost_usd"),
    )
    # The model that did the work: the one that cost the most (then wrote the most).
    model = max(per_model, key=lambda n: (per_model[n].cost_usd, per_model[n].output_tokens), default="")
    text = str(data.get("result") or "")
    error = None
    if data.get("is_error") is True:
        errors = data.get("errors")
        first = text.strip().splitlines()[:1] or ([str(errors[0])] if isinstance(errors, list) and errors else [])
        error = f"{data.get('subtype') or 'error'}" + (f": {first[0].strip()}" if first else "")
    return CliOutput(text, _int(data, "num_turns"), usage, known, model, error, error)


def _num(d: Any, key: str) -> float:
    v = d.get(key) if isinstance(d, dict) else None
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) and v >= 0 else 0.0


class _Codex:
    def __init__(self) -> None:
        self.seen = False
        self.thread = ""
        self.turns = 0
        self.usage = Usage()  # Codex reports tokens, never dollars
        self.text = ""
        self.model = ""
        self.failed: str | None = None
        self.complaint: str | None = None

    def add(self, kind: str, data: dict[str, Any]) -> None:
        self.seen = True
        if isinstance(data.get("model"), str) and data["model"]:
            self.model = data["model"]
        if kind == "thread.started":
            self.thread = str(data.get("thread_id") or "")
        elif kind in ("turn.completed", "turn.failed"):
            self.turns += 1
            u = data.get("usage")
            cached = _int(u, "cached_input_tokens")
            # OpenAI counts cached tokens inside input_tokens; mdspec keeps them apart, as Anthropic does.
            self.usage = self.usage + Usage(
                max(0, _int(u, "input_tokens") - cached), _int(u, "output_tokens"), 0, cached
            )
            if kind == "turn.failed":
                self.failed = _message(data.get("error")) or "turn failed"
                self.complaint = self.failed
        elif kind == "error":
            self.complaint = _message(data) or self.complaint
        elif kind == "item.completed":
            item = data.get("item")
            if isinstance(item, dict) and item.get("type") == "agent_message" and isinstance(item.get("text"), str):
                self.text = item["text"]

    def output(self) -> CliOutput:
        model = self.model or (_codex_session_model(self.thread) if self.thread else "")
        return CliOutput(self.text, self.turns, self.usage, False, model, self.failed, self.complaint)


def _message(d: Any) -> str | None:
    m = d.get("message") if isinstance(d, dict) else None
    return m.strip().splitlines()[0] if isinstance(m, str) and m.strip() else None


def _codex_session_model(thread: str, max_lines: int = 200) -> str:
    """The model Codex recorded for this thread in its session log ($CODEX_HOME/sessions/…), or ""."""
    if not re.fullmatch(r"[0-9A-Za-z-]+", thread):
        return ""
    home = Path(os.environ.get("CODEX_HOME") or Path.home() / ".codex")
    for path in sorted((home / "sessions").glob(f"*/*/*/rollout-*{thread}.jsonl")):
        try:
            with path.open("rb") as f:
                for n, data in enumerate(_json_lines(f)):
                    payload = data.get("payload")
                    if isinstance(payload, dict) and isinstance(payload.get("model"), str) and payload["model"]:
                        return str(payload["model"])
                    if n >= max_lines:
                        break
        except OSError:
            continue
    return ""


def model_in_command(command: str) -> str:
    """The model a command line asks for (`-m X`, `--model X`, `-c model=X`), or ""."""
    try:
        words = shlex.split(command)
    except ValueError:
        return ""
    for i, w in enumerate(words):
        nxt = words[i + 1] if i + 1 < len(words) else ""
        if w in ("-m", "--model") and nxt:
            return nxt
        if w.startswith("--model="):
            return w.split("=", 1)[1]
        if w in ("-c", "--config") and nxt.startswith("model="):
            return nxt.split("=", 1)[1].strip("\"'")
    return ""


def failure_line(output: str) -> str:
    """The line of a failed command's output that says what went wrong: the first that mentions an
    error (clap prints `error: unexpected argument …` first and `For more information, try '--help'.`
    last), else the last non-empty one. JSON event lines are left to `read`."""
    lines = [ln.strip() for ln in output.splitlines()]
    lines = [ln for ln in lines if ln and not ln.startswith("{") and not ln.startswith("[… ")]
    for ln in lines:
        if FAILURE_WORDS.search(ln):
            return ln
    return lines[-1] if lines else ""
