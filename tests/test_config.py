"""Loading and validating the config (mdspec/config.py): every error one line naming the file and key."""

from __future__ import annotations

import time
from pathlib import Path
from typing import get_args

import pytest
from conftest import Repo

from mdspec import config
from mdspec.errors import ConfigError


def validate(repo: Repo) -> tuple[int, str, str]:
    proc = repo.mdspec("validate-config", check=False)
    return proc.returncode, proc.stdout, proc.stderr


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("colour = 1\n", ".mdspec.toml: colour: unknown key (known keys: agent, background, check"),
        ("[agent]\nmax_turn = 5\n", ".mdspec.toml: agent.max_turn: unknown key (known keys: backend, command"),
        ('[agent]\nmax_turns = "ten"\n', ".mdspec.toml: agent.max_turns: expected an integer, got a string 'ten'"),
        ("[agent]\nmax_turns = 0\n", ".mdspec.toml: agent.max_turns: must be at least 1, got 0"),
        ("[agent]\nmax_minutes = -1\n", ".mdspec.toml: agent.max_minutes: must be greater than 0, got -1"),
        ("[agent]\nmax_minutes = nan\n", ".mdspec.toml: agent.max_minutes: expected a finite number, got nan"),
        ("[agent]\nmax_minutes = inf\n", ".mdspec.toml: agent.max_minutes: expected a finite number, got inf"),
        ("[agent]\nmax_cost_usd = -inf\n", ".mdspec.toml: agent.max_cost_usd: expected a finite number, got -inf"),
        ("[agent]\nmax_cost_usd = nan\n", ".mdspec.toml: agent.max_cost_usd: expected a finite number, got nan"),
        ("[agent]\ntool_minutes = -0.5\n", ".mdspec.toml: agent.tool_minutes: must be greater than 0, got -0.5"),
        ("[agent]\nmax_turns = nan\n", ".mdspec.toml: agent.max_turns: expected an integer, got a number nan"),
        ("[agent]\nmax_tokens = -5\n", ".mdspec.toml: agent.max_tokens: must be at least 1, got -5"),
        ("check_minutes = inf\n", ".mdspec.toml: check_minutes: expected a finite number, got inf"),
        ("check_rounds = -1\n", ".mdspec.toml: check_rounds: must be at least 0, got -1"),
        ("max_file_mb = nan\n", ".mdspec.toml: max_file_mb: expected a finite number, got nan"),
        ("max_file_mb = -1\n", ".mdspec.toml: max_file_mb: must be 0 or more, got -1"),
        (
            "[agent.prices.claude-sonnet-4-5]\ninput = -3.0\n",
            ".mdspec.toml: agent.prices.claude-sonnet-4-5.input: must be 0 or more, got -3",
        ),
        (
            "[agent.prices.claude-sonnet-4-5]\noutput = nan\n",
            ".mdspec.toml: agent.prices.claude-sonnet-4-5.output: expected a finite number, got nan",
        ),
        (
            "[agent.prices.my-model]\ninput = 1\noutput = inf\ncache_write = 1\ncache_read = 1\n",
            ".mdspec.toml: agent.prices.my-model.output: expected a finite number, got inf",
        ),
        ("land_failing = 1\n", ".mdspec.toml: land_failing: expected true or false, got an integer 1"),
        ("check = false\n", ".mdspec.toml: check: expected a string, got a boolean False"),
        ("watch = 5\n", ".mdspec.toml: watch: expected a list of glob strings, got 5"),
        ('watch = ["spec/a**"]\n', ".mdspec.toml: watch: bad glob 'spec/a**': '**' must be a whole path segment"),
        ('protected = ["src/[ab"]\n', ".mdspec.toml: protected: bad glob 'src/[ab': unbalanced '['"),
        ('sandbox = "maybe"\n', ".mdspec.toml: sandbox: expected one of 'auto', 'bwrap', 'off'; got 'maybe'"),
        ('notes_dir = "../notes"\n', ".mdspec.toml: notes_dir: expected a relative directory inside the repository"),
        ("agent = 5\n", ".mdspec.toml: agent: expected a table, got an integer 5"),
        ('[agent]\nbackend = "command"\n', ".mdspec.toml: agent.command: the command backend needs"),
        ('[agent]\ncommand = "x"\npreset = "codex"\n', ".mdspec.toml: agent.command: set either command or preset"),
        ('[agent]\npreset = "aider"\n', ".mdspec.toml: agent.preset: expected one of '', 'claude-code', 'codex'"),
        (
            "[agent.prices.my-model]\ninput = 1.0\n",
            ".mdspec.toml: agent.prices.my-model: missing output, cache_write, cache_read",
        ),
        (
            '[agent.prices.claude-sonnet-4-5]\ninput = "cheap"\n',
            ".mdspec.toml: agent.prices.claude-sonnet-4-5.input: expected a number, got a string 'cheap'",
        ),
        ("check = \n", ".mdspec.toml: not valid TOML: "),
        ("[agent\n", ".mdspec.toml: not valid TOML: "),
    ],
)
def test_config_errors_are_one_line_naming_file_and_key(repo: Repo, text: str, message: str) -> None:
    repo.configure(text)
    code, out, err = validate(repo)
    assert code == 1
    assert out == ""
    assert err.startswith("mdspec: error: " + message), err
    assert err.count("\n") == 1
    assert "Traceback" not in err


def test_undecodable_config_file(repo: Repo) -> None:
    (repo.top / ".mdspec.toml").write_bytes(b'check = "\xff\xfe"\n')
    code, _, err = validate(repo)
    assert code == 1
    assert err.startswith("mdspec: error: .mdspec.toml: cannot read: ")
    assert err.count("\n") == 1


def test_config_in_pyproject(repo: Repo) -> None:
    repo.write(
        "pyproject.toml",
        '[project]\nname = "x"\n\n[tool.mdspec]\ncheck = "pytest -q"\n[tool.mdspec.agent]\ncommand = "my-agent"\n',
    )
    code, out, err = validate(repo)
    assert (code, err) == (0, "")
    assert out == "pyproject.toml: OK (backend command, watching spec/**, TASK.md)\n"
    cfg = config.load(repo.top)
    assert cfg.check == "pytest -q"
    assert cfg.agent.backend == "command"
    assert "pyproject.toml" in cfg.protected_globs
    repo.write("pyproject.toml", "[tool.mdspec]\nbogus = 1\n")
    code, _, err = validate(repo)
    assert code == 1
    assert err.startswith("mdspec: error: pyproject.toml [tool.mdspec]: bogus: unknown key")
    repo.write("pyproject.toml", "[tool.mdspec.agent]\nmax_turns = 1.5\n")
    _, _, err = validate(repo)
    assert err.startswith("mdspec: error: pyproject.toml [tool.mdspec]: agent.max_turns: expected an integer")


def test_own_file_wins_over_pyproject(repo: Repo) -> None:
    repo.write("pyproject.toml", "[tool.mdspec]\nbogus = 1\n")
    repo.configure('check = "make test"\n')
    assert config.load(repo.top).check == "make test"


def test_missing_config(repo: Repo) -> None:
    code, _, err = validate(repo)
    assert code == 1
    assert err == f"mdspec: error: no .mdspec.toml in {repo.top}: run `mdspec init` there first\n"
    assert config.load(repo.top, required=False) == config.Config(path=None)


def test_validate_a_named_file(repo: Repo, tmp_path: Path) -> None:
    f = tmp_path / "other.toml"
    f.write_text("[agent]\nmax_turns = []\n")
    proc = repo.mdspec("validate-config", str(f), check=False)
    assert proc.returncode == 1
    assert proc.stderr.startswith("mdspec: error: other.toml: agent.max_turns: expected an integer, got list []")


def test_defaults_and_derived_values(repo: Repo) -> None:
    repo.configure('protected = ["docs/**"]\n[agent]\ncommand = "run-agent"\nmax_cost_usd = 2\n')
    cfg = config.load(repo.top)
    assert cfg.agent.backend == "command"  # a command alone means the command backend
    assert cfg.agent.max_cost_usd == 2.0
    assert cfg.protected_globs == ("spec/**", "TASK.md", "AGENTS.md", "CLAUDE.md", ".mdspec.toml", "docs/**")
    assert cfg.land_failing is True
    assert cfg.background is True
    assert cfg.check_rounds == 2


def test_template_config_is_valid(repo: Repo) -> None:
    repo.mdspec("init", "--git-hook")
    code, out, _ = validate(repo)
    assert code == 0
    assert out.startswith(".mdspec.toml: OK (backend anthropic")


def test_price_lookup_and_override() -> None:
    cfg = config.from_mapping({"agent": {"prices": {"claude-sonnet-4-5": {"input": 1.0}}}}, None, "x.toml")
    assert cfg.agent.price("claude-sonnet-4-5-20250929") == config.Price(1.0, 15.0, 3.75, 0.30)
    assert cfg.agent.price("gpt-9") is None
    with pytest.raises(ConfigError, match=r"^x\.toml: agent\.prices\.claude-sonnet-4-5\.colour: unknown key"):
        config.from_mapping({"agent": {"prices": {"claude-sonnet-4-5": {"colour": 1}}}}, None, "x.toml")


def test_default_model_is_current_and_every_priced_id_is_a_real_one() -> None:
    from anthropic.types.model_param import ModelParam

    known = set(get_args(get_args(ModelParam)[0]))  # the Literal of the SDK's model ids
    assert config.DEFAULT_MODEL == config.AgentConfig().model == "claude-sonnet-5-5"
    assert config.DEFAULT_MODEL in known
    assert set(config.DEFAULT_PRICES) <= known, set(config.DEFAULT_PRICES) - known
    assert {"claude-opus-5-5", "claude-sonnet-5-5"} <= set(config.DEFAULT_PRICES)
    assert time.strptime(config.PRICES_AS_OF, "%Y-%m-%d")
    for p in config.DEFAULT_PRICES.values():  # the 5-minute cache write costs more than input, a read less
        assert p.cache_write > p.input > p.cache_read > 0
        assert p.output > p.input


def test_a_model_without_its_own_price_is_unknown_not_a_neighbours() -> None:
    a = config.AgentConfig()
    assert a.price("claude-sonnet-5-5") == config.Price(2.0, 10.0, 2.5, 0.10)
    assert a.price("claude-sonnet-5-5-20261001") == a.price("claude-sonnet-5-5")  # a dated id: its family
    assert a.price("claude-opus-5-5") != a.price("claude-opus-5")
    # Unpriced ids are never priced by a prefix they happen to share.
    for model in ("claude-haiku-5-5", "claude-fable-5-2", "claude-opus-5-5-preview", "claude-opus-5-9"):
        assert a.price(model) is None, model
    assert config.price_key("claude-haiku-5-5") == '[agent.prices."claude-haiku-5-5"]'


def test_a_price_is_set_for_a_new_model_in_the_config(repo: Repo) -> None:
    repo.configure(
        '[agent]\nmodel = "claude-haiku-5-5"\n[agent.prices."claude-haiku-5-5"]\n'
        "input = 0.1\noutput = 0.5\ncache_write = 0.125\ncache_read = 0.01\n"
    )
    cfg = config.load(repo.top)
    assert cfg.agent.price() == config.Price(0.1, 0.5, 0.125, 0.01)
    assert cfg.agent.price("claude-sonnet-5-5") == config.DEFAULT_PRICES["claude-sonnet-5-5"]  # the rest stay
    repo.configure('[agent.prices."claude-haiku-5-5"]\ninput = 0.1\n')
    code, _, err = validate(repo)
    assert code == 1
    assert err == (
        "mdspec: error: .mdspec.toml: agent.prices.claude-haiku-5-5: missing output, "
        "cache_write, cache_read (USD per million tokens)\n"
    )


def test_bad_config_stops_a_run_and_the_hook_cleanly(mdrepo: Repo) -> None:
    mdrepo.configure("[agent]\nmax_turns = 'lots'\n")
    mdrepo.commit("break the config", env={"MDSPEC_RUNNING": "1"})
    before = mdrepo.head()
    out = mdrepo.commit("spec", {"spec/a.md": "# a\n"}, env={"MDSPEC_FOREGROUND": "1"})
    assert mdrepo.head() == out != before  # the commit itself is never blocked
    assert "mdspec: error: .mdspec.toml: agent.max_turns: expected an integer" in mdrepo.last_output
    proc = mdrepo.mdspec("run", "--foreground", check=False)
    assert proc.returncode == 1
    assert proc.stderr.startswith("mdspec: error: .mdspec.toml: agent.max_turns: expected an integer")
    status = mdrepo.mdspec("status").stdout
    assert "config: .mdspec.toml: agent.max_turns: expected an integer" in status
