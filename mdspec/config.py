"""Load and validate `.mdspec.toml` (or `[tool.mdspec]` in pyproject.toml) into one frozen Config.

Every error names the file and the key (`.mdspec.toml: agent.max_turns: expected an integer, got "ten"`).
"""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from mdspec.errors import ConfigError
from mdspec.fast.globs import GlobError, check_glob

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

CONFIG_FILE = ".mdspec.toml"
PYPROJECT = "pyproject.toml"
ALWAYS_PROTECTED = ("AGENTS.md", "CLAUDE.md")
BACKENDS = ("anthropic", "command")
PRESETS = ("", "claude-code", "codex")
SANDBOX_MODES = ("auto", "bwrap", "off")
CI_MODES = ("local", "ci")
PROVIDERS = ("anthropic", "bedrock", "vertex")


@dataclass(frozen=True)
class Price:
    """US dollars per million tokens."""

    input: float
    output: float
    cache_write: float
    cache_read: float


DEFAULT_MODEL = "claude-sonnet-5-5"
# Each provider names the same model its own way; `model` defaults to the provider's name for it. Bedrock
# and Vertex AI keep their ids for the model before the default (the ids they serve the newer one under
# are not known here): set `model` to use another.
PROVIDER_MODELS = {
    "anthropic": DEFAULT_MODEL,
    "bedrock": "global.anthropic.claude-sonnet-4-5-20250929-v1:0",
    "vertex": "claude-sonnet-4-5@20250929",
}

# Published list prices (USD per million tokens) as read on PRICES_AS_OF; `[agent.prices."<model>"]` in
# .mdspec.toml overrides or adds one. Cache writes are the 5-minute tier (what the built-in agent writes).
# A model missing here has an unknown cost, never $0: Haiku 5.5 is billed in two bands by prompt length,
# which one price cannot say, and no price was published for the Fable/Mythos 5.2 ids when these were read.
PRICES_AS_OF = "2026-11-29"
DEFAULT_PRICES: Mapping[str, Price] = {
    "claude-opus-5-5": Price(4.0, 20.0, 5.0, 0.20),
    "claude-sonnet-5-5": Price(2.0, 10.0, 2.50, 0.10),  # cache reads cut from $0.20 on 2026-10-07
    "claude-fable-5-1": Price(10.0, 50.0, 12.50, 0.25),
    "claude-mythos-5-1": Price(10.0, 50.0, 12.50, 0.25),
    "claude-fable-5": Price(10.0, 50.0, 12.50, 1.0),
    "claude-mythos-5": Price(10.0, 50.0, 12.50, 1.0),
    "claude-opus-5": Price(5.0, 25.0, 6.25, 0.50),
    "claude-sonnet-5": Price(2.0, 10.0, 2.50, 0.20),
    "claude-opus-4-8": Price(5.0, 25.0, 6.25, 0.50),
    "claude-opus-4-7": Price(5.0, 25.0, 6.25, 0.50),
    "claude-opus-4-6": Price(5.0, 25.0, 6.25, 0.50),
    "claude-opus-4-5": Price(5.0, 25.0, 6.25, 0.50),
    "claude-sonnet-4-6": Price(3.0, 15.0, 3.75, 0.30),
    "claude-sonnet-4-5": Price(3.0, 15.0, 3.75, 0.30),
    "claude-haiku-4-5": Price(1.0, 5.0, 1.25, 0.10),
}


def price_key(model: str) -> str:
    """The table to set in .mdspec.toml for `model`'s price (quoted: model ids may hold dots)."""
    return f'[agent.prices."{model}"]'


def is_dated(name: str, known: str) -> bool:
    """`name` is `known` with a release date appended (claude-sonnet-4-5-20250929)."""
    rest = name[len(known) :]
    return name.startswith(known) and len(rest) == 9 and rest[0] == "-" and rest[1:].isdigit()


@dataclass(frozen=True)
class AgentConfig:
    backend: str = "anthropic"
    provider: str = "anthropic"  # where the built-in agent's model runs: the Anthropic API, Bedrock, Vertex AI
    model: str = DEFAULT_MODEL
    max_turns: int = 60
    max_cost_usd: float = 5.0
    max_minutes: float = 30.0
    max_tokens: int = 16000
    tool_minutes: float = 2.0  # one command of the built-in agent's bash tool
    command: str = ""
    preset: str = ""
    prices: Mapping[str, Price] = field(default_factory=lambda: dict(DEFAULT_PRICES))

    def price(self, model: str | None = None) -> Price | None:
        """The price of `model` (default: the configured one), or None: unknown. A dated id takes the price
        of its undated one, and nothing else does (claude-opus-5-5 is not priced as claude-opus-5)."""
        name = model or self.model
        if name in self.prices:
            return self.prices[name]
        # Bedrock names a model [<geo>.]anthropic.<model>[-<date>]-v<n>:<m>, Vertex <model>@<date>.
        bare = (name.partition("anthropic.")[2] or name).partition("@")[0]
        version = bare.rfind("-v")
        if version > 0 and ":" in bare[version:]:
            bare = bare[:version]
        if bare in self.prices:
            return self.prices[bare]
        return next((self.prices[k] for k in self.prices if is_dated(bare, k)), None)


@dataclass(frozen=True)
class CiConfig:
    """`[ci]`: who compiles spec commits (this machine, or the team's CI) and how `mdspec ci` pushes."""

    mode: str = "local"  # "ci": the local hook starts no run; the spec commit waits for CI
    remote: str = "origin"
    push_retries: int = 5  # a push the branch outran is rebased and tried again this many times


@dataclass(frozen=True)
class Config:
    path: Path | None  # the file it came from; None means built-in defaults
    watch: tuple[str, ...] = ("spec/**", "TASK.md")
    protected: tuple[str, ...] = ()
    notes_dir: str = "notes"
    check: str = ""
    check_rounds: int = 2
    check_minutes: float = 10.0
    max_file_mb: float = 50.0  # larger new or changed files are not committed (0: no limit)
    land_failing: bool = True
    background: bool = True
    sandbox: str = "auto"
    network: bool = False
    keep_task: bool = False  # keep TASK.md after its run lands (default: the generated commit removes it)
    agent: AgentConfig = field(default_factory=AgentConfig)
    ci: CiConfig = field(default_factory=CiConfig)

    @property
    def config_name(self) -> str:
        return self.path.name if self.path else CONFIG_FILE

    @property
    def protected_globs(self) -> tuple[str, ...]:
        """Everything the agent may read but never change."""
        seen: dict[str, None] = {}
        for g in (*self.watch, *ALWAYS_PROTECTED, self.config_name, *self.protected):
            seen.setdefault(g, None)
        return tuple(seen)


# --- validation -------------------------------------------------------------------------------------


def _type_name(value: Any) -> str:
    return {bool: "a boolean", int: "an integer", float: "a number", str: "a string"}.get(
        type(value), type(value).__name__
    )


class _Checker:
    def __init__(self, file: str) -> None:
        self.file = file

    def fail(self, key: str, msg: str) -> ConfigError:
        return ConfigError(f"{self.file}: {key}: {msg}")

    def string(self, key: str, v: Any, choices: tuple[str, ...] | None = None) -> str:
        if not isinstance(v, str):
            raise self.fail(key, f"expected a string, got {_type_name(v)} {v!r}")
        if choices is not None and v not in choices:
            raise self.fail(key, f"expected one of {', '.join(repr(c) for c in choices)}; got {v!r}")
        return v

    def boolean(self, key: str, v: Any) -> bool:
        if not isinstance(v, bool):
            raise self.fail(key, f"expected true or false, got {_type_name(v)} {v!r}")
        return v

    def integer(self, key: str, v: Any, minimum: int = 0) -> int:
        if isinstance(v, bool) or not isinstance(v, int):
            raise self.fail(key, f"expected an integer, got {_type_name(v)} {v!r}")
        if v < minimum:
            raise self.fail(key, f"must be at least {minimum}, got {v}")
        return v

    def number(self, key: str, v: Any, positive: bool = True) -> float:
        """A finite number, greater than 0 (`positive`) or at least 0: TOML's nan and inf, and negative
        amounts, would silently disable a limit or a price."""
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise self.fail(key, f"expected a number, got {_type_name(v)} {v!r}")
        if not math.isfinite(v):
            raise self.fail(key, f"expected a finite number, got {v}")
        if positive and v <= 0:
            raise self.fail(key, f"must be greater than 0, got {v:g}")
        if v < 0:
            raise self.fail(key, f"must be 0 or more, got {v:g}")
        return float(v)

    def globs(self, key: str, v: Any) -> tuple[str, ...]:
        if isinstance(v, str):
            v = [v]
        if not isinstance(v, list) or not all(isinstance(g, str) for g in v):
            raise self.fail(key, f"expected a list of glob strings, got {v!r}")
        for g in v:
            try:
                check_glob(g)
            except GlobError as exc:
                raise self.fail(key, f"bad glob {g!r}: {exc}") from None
        return tuple(v)

    def table(self, key: str, v: Any) -> dict[str, Any]:
        if not isinstance(v, dict):
            raise self.fail(key, f"expected a table, got {_type_name(v)} {v!r}")
        return v

    def unknown(self, prefix: str, data: Mapping[str, Any], known: set[str]) -> None:
        for k in data:
            if k not in known:
                hint = ", ".join(sorted(known))
                raise self.fail(prefix + k, f"unknown key (known keys: {hint})")


def _validate_prices(c: _Checker, raw: dict[str, Any]) -> dict[str, Price]:
    prices = dict(DEFAULT_PRICES)
    names = [f.name for f in fields(Price)]
    for model, table in raw.items():
        key = f"agent.prices.{model}"
        t = c.table(key, table)
        c.unknown(key + ".", t, set(names))
        missing = [n for n in names if n not in t]
        base = prices.get(model)
        if missing and base is None:
            raise c.fail(key, f"missing {', '.join(missing)} (USD per million tokens)")
        values = {n: c.number(f"{key}.{n}", t[n], positive=False) if n in t else getattr(base, n) for n in names}
        prices[model] = Price(**values)
    return prices


def _validate_agent(c: _Checker, raw: dict[str, Any]) -> AgentConfig:
    d = AgentConfig()
    c.unknown("agent.", raw, {f.name for f in fields(AgentConfig)})
    get: Callable[[str, Any], Any] = lambda k, default: raw.get(k, default)  # noqa: E731
    provider = c.string("agent.provider", get("provider", d.provider), PROVIDERS)
    agent = AgentConfig(
        backend=c.string("agent.backend", get("backend", d.backend), BACKENDS),
        provider=provider,
        model=c.string("agent.model", get("model", PROVIDER_MODELS[provider])),
        max_turns=c.integer("agent.max_turns", get("max_turns", d.max_turns), minimum=1),
        max_cost_usd=c.number("agent.max_cost_usd", get("max_cost_usd", d.max_cost_usd)),
        max_minutes=c.number("agent.max_minutes", get("max_minutes", d.max_minutes)),
        max_tokens=c.integer("agent.max_tokens", get("max_tokens", d.max_tokens), minimum=1),
        tool_minutes=c.number("agent.tool_minutes", get("tool_minutes", d.tool_minutes)),
        command=c.string("agent.command", get("command", d.command)),
        preset=c.string("agent.preset", get("preset", d.preset), PRESETS),
        prices=_validate_prices(c, c.table("agent.prices", get("prices", {}))),
    )
    if agent.command and agent.preset:
        raise c.fail("agent.command", "set either command or preset, not both")
    if "backend" not in raw and (agent.command or agent.preset):
        agent = AgentConfig(**{**{f.name: getattr(agent, f.name) for f in fields(agent)}, "backend": "command"})
    if agent.backend == "command" and provider != "anthropic":
        raise c.fail(
            "agent.provider",
            'only the built-in agent (backend = "anthropic") uses it; an agent CLI chooses its provider itself',
        )
    if agent.backend == "command" and not (agent.command or agent.preset):
        raise c.fail("agent.command", 'the command backend needs `command = "..."` or `preset = "claude-code"`')
    return agent


def _validate_ci(c: _Checker, raw: dict[str, Any]) -> CiConfig:
    d = CiConfig()
    c.unknown("ci.", raw, {f.name for f in fields(CiConfig)})
    remote = c.string("ci.remote", raw.get("remote", d.remote))
    if not remote or remote.startswith("-") or any(ch.isspace() for ch in remote):
        raise c.fail("ci.remote", f"expected the name of a git remote, got {remote!r}")
    return CiConfig(
        mode=c.string("ci.mode", raw.get("mode", d.mode), CI_MODES),
        remote=remote,
        push_retries=c.integer("ci.push_retries", raw.get("push_retries", d.push_retries)),
    )


def _sandbox_mode(c: _Checker, value: Any) -> str:
    """The `sandbox` key; MDSPEC_SANDBOX in the environment overrides it (e.g. `off` to debug a run)."""
    mode = c.string("sandbox", value, SANDBOX_MODES)
    override = os.environ.get("MDSPEC_SANDBOX")
    if override:
        if override not in SANDBOX_MODES:
            raise ConfigError(f"MDSPEC_SANDBOX: expected one of {', '.join(SANDBOX_MODES)}; got {override!r}")
        return override
    return mode


def from_mapping(raw: Mapping[str, Any], path: Path | None, file_label: str) -> Config:
    c = _Checker(file_label)
    d = Config(path=None)
    known = {f.name for f in fields(Config)} - {"path"}
    c.unknown("", raw, known)
    get = raw.get
    notes_dir = c.string("notes_dir", get("notes_dir", d.notes_dir)).strip("/")
    if not notes_dir or notes_dir.startswith(".") or ".." in notes_dir.split("/"):
        raise c.fail("notes_dir", f"expected a relative directory inside the repository, got {notes_dir!r}")
    return Config(
        path=path,
        watch=c.globs("watch", get("watch", list(d.watch))),
        protected=c.globs("protected", get("protected", [])),
        notes_dir=notes_dir,
        check=c.string("check", get("check", d.check)),
        check_rounds=c.integer("check_rounds", get("check_rounds", d.check_rounds)),
        check_minutes=c.number("check_minutes", get("check_minutes", d.check_minutes)),
        max_file_mb=c.number("max_file_mb", get("max_file_mb", d.max_file_mb), positive=False),
        land_failing=c.boolean("land_failing", get("land_failing", d.land_failing)),
        background=c.boolean("background", get("background", d.background)),
        sandbox=_sandbox_mode(c, get("sandbox", d.sandbox)),
        network=c.boolean("network", get("network", d.network)),
        keep_task=c.boolean("keep_task", get("keep_task", d.keep_task)),
        agent=_validate_agent(c, c.table("agent", get("agent", {}))),
        ci=_validate_ci(c, c.table("ci", get("ci", {}))),
    )


def find(top: Path) -> Path | None:
    """The config file of the repository at `top`: `.mdspec.toml`, else a pyproject with [tool.mdspec]."""
    own = top / CONFIG_FILE
    if own.is_file():
        return own
    py = top / PYPROJECT
    try:
        if py.is_file() and "[tool.mdspec" in py.read_text(encoding="utf-8"):
            return py
    except (OSError, UnicodeDecodeError):
        return None
    return None


def load_file(path: Path) -> Config:
    label = path.name
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{label}: cannot read: {exc}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{label}: not valid TOML: {exc}") from None
    if path.name == PYPROJECT:
        tool = data.get("tool", {})
        data = tool.get("mdspec", {}) if isinstance(tool, dict) else {}
        if not isinstance(data, dict):
            raise ConfigError(f"{label}: tool.mdspec: expected a table")
        label = f"{label} [tool.mdspec]"
    return from_mapping(data, path, label)


def load(top: Path, required: bool = True) -> Config:
    """The repository's config; with `required`, a missing one is an error telling to run `mdspec init`."""
    path = find(top)
    if path is None:
        if required:
            raise ConfigError(f"no {CONFIG_FILE} in {top}: run `mdspec init` there first")
        return Config(path=None)
    return load_file(path)
