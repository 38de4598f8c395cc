"""`mdspec cost` (mdspec/cost.py): runs, tokens and dollars per day and per spec file, from real runs of the
built-in agent against the fake Messages API, read from the run records and from the git notes of a clone."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import Repo
from fakeapi import FakeAPI, fake_api  # noqa: F401
from runhelpers import QUIET, last_run

from mdspec.run import costs

TOKENS = ("input_tokens", "output_tokens", "cache_read_input_tokens", "cache_creation_input_tokens")
UNPRICED = "claude-future-9"


@pytest.fixture
def crepo(repo: Repo, fake_api: FakeAPI) -> Repo:  # noqa: F811 - the fixture imported above
    repo.mdspec("init", "--git-hook")
    repo.configure("[agent]\nmax_turns = 10\n")  # the built-in agent with the default (priced) model
    repo.commit("set up mdspec", env=QUIET)
    return repo


def run_spec(repo: Repo, api: FakeAPI, files: dict[str, str], code: str = "src/x.py") -> dict[str, Any]:
    """Commit a spec change and run the built-in agent on it in the foreground: it writes `code`."""
    api.edit("create", code, file_text=f"# {time.time_ns()}\n")
    api.text("Add code\n\nWrote it.")
    repo.commit(f"spec: {', '.join(files)}", files, env=QUIET)
    repo.mdspec("run", "--foreground", check=False)
    return last_run(repo)


def cost_json(repo: Repo, *args: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(repo.mdspec("cost", "--json", *args).stdout)
    return data


def clone_with_notes(repo: Repo, tmp_path: Path) -> Repo:
    dest = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(repo.top), str(dest)], check=True)
    clone = Repo(dest)
    assert cost_json(clone)["total"]["runs"] == 0  # no run records here, no notes yet
    clone.git("fetch", "-q", "origin", "refs/notes/mdspec:refs/notes/mdspec")
    return clone


def summed(recs: list[dict[str, Any]]) -> dict[str, int]:
    return {k: sum(r["usage"][k] for r in recs) for k in TOKENS}


def test_per_day_per_spec_file_and_total_from_records_and_from_a_fresh_clone(
    crepo: Repo,
    fake_api: FakeAPI,  # noqa: F811
    tmp_path: Path,
) -> None:
    first = run_spec(crepo, fake_api, {"spec/a.md": "# A\n"}, "src/a.py")
    second = run_spec(crepo, fake_api, {"spec/a.md": "# A\nmore\n", "spec/b.md": "# B\n"}, "src/b.py")
    assert first["status"] == second["status"] == "landed", (first, second)
    assert second["spec_files"] == ["spec/a.md", "spec/b.md"]
    today = time.strftime("%Y-%m-%d", time.localtime(second["started"]))
    dollars = first["cost_usd"] + second["cost_usd"]
    assert dollars > 0

    info = cost_json(crepo)
    total = info["total"]
    assert total["runs"] == 2  # found in the records and in the notes: counted once
    assert {k: total[k] for k in TOKENS} == summed([first, second])
    assert total["cost_usd"] == pytest.approx(dollars, abs=1e-6)
    assert total["unknown_cost_runs"] == 0
    assert [d["day"] for d in info["days"]] == [today]
    assert info["days"][0]["runs"] == 2
    files = {f["file"]: f for f in info["spec_files"]}
    assert set(files) == {"spec/a.md", "spec/b.md"}
    assert files["spec/a.md"]["runs"] == 2
    assert files["spec/b.md"]["runs"] == 1
    assert files["spec/b.md"]["cost_usd"] == pytest.approx(second["cost_usd"], abs=1e-6)
    assert {k: files["spec/b.md"][k] for k in TOKENS} == summed([second])

    text = crepo.mdspec("cost").stdout.splitlines()
    assert text[0] == "mdspec cost: 2 runs (all runs), tokens and US dollars"
    t = summed([first, second])
    row = next(ln for ln in text if ln.startswith("total "))
    assert row.split() == [
        "total",
        "2",
        f"{t['input_tokens']:,}",
        f"{t['output_tokens']:,}",
        f"{t['cache_read_input_tokens']:,}",
        f"{t['cache_creation_input_tokens']:,}",
        f"${dollars:.4f}",
    ]
    assert any(ln.startswith(today) for ln in text)
    assert any(ln.startswith("spec/b.md ") for ln in text)

    clone = clone_with_notes(crepo, tmp_path)
    again = cost_json(clone)
    assert again["total"]["runs"] == 2
    assert again["days"] == info["days"]
    assert {k: again["total"][k] for k in TOKENS} == {k: total[k] for k in TOKENS}
    assert again["total"]["cost_usd"] == pytest.approx(dollars, abs=1e-6)
    assert {f["file"]: f["runs"] for f in again["spec_files"]} == {"spec/a.md": 2, "spec/b.md": 1}


def test_unknown_costs_are_counted_never_summed_as_zero(
    crepo: Repo,
    fake_api: FakeAPI,  # noqa: F811
    tmp_path: Path,
) -> None:
    priced = run_spec(crepo, fake_api, {"spec/a.md": "# A\n"}, "src/a.py")
    fake_api.response_model = UNPRICED  # the API answers with a model that has no price
    fake_api.edit("create", "src/b.py", file_text="b = 1\n")
    crepo.commit("spec: b", {"spec/b.md": "# B\n"}, env=QUIET)
    crepo.mdspec("run", "--foreground", check=False)
    unknown = last_run(crepo)
    assert unknown["status"] == "held", unknown
    assert unknown["cost_usd"] is None, unknown
    crepo.mdspec("apply", unknown["id"])  # landed by hand: its note says the cost is unknown

    def check(info: dict[str, Any]) -> None:
        total = info["total"]
        assert total["runs"] == 2
        assert total["unknown_cost_runs"] == 1
        assert total["cost_usd"] is None  # not the priced run's dollars passed off as the whole
        assert total["known_cost_usd"] == pytest.approx(priced["cost_usd"], abs=1e-6)
        assert info["unknown_cost"] == [{"run": unknown["id"], "reason": f"no price for {UNPRICED}"}]
        files = {f["file"]: f for f in info["spec_files"]}
        assert files["spec/b.md"]["cost_usd"] is None
        assert files["spec/b.md"]["unknown_cost_runs"] == 1
        assert files["spec/a.md"]["cost_usd"] == pytest.approx(priced["cost_usd"], abs=1e-6)

    check(cost_json(crepo))
    text = crepo.mdspec("cost").stdout.splitlines()
    assert next(ln for ln in text if ln.startswith("total ")).endswith(f"${priced['cost_usd']:.4f} + 1 unknown")
    assert next(ln for ln in text if ln.startswith("spec/b.md ")).endswith("  unknown")
    assert f"cost unknown: run {unknown['id']} (no price for {UNPRICED})" in text
    check(cost_json(clone_with_notes(crepo, tmp_path)))


def test_since_picks_the_days_and_a_bad_one_is_one_line(crepo: Repo, fake_api: FakeAPI) -> None:  # noqa: F811
    old = run_spec(crepo, fake_api, {"spec/a.md": "# A\n"}, "src/a.py")
    new = run_spec(crepo, fake_api, {"spec/b.md": "# B\n"}, "src/b.py")
    # The first run's record says it started three days ago (the record wins over its note's date).
    path = crepo.state / "runs" / old["id"] / "run.json"
    rec = json.loads(path.read_text())
    rec["started"] -= 3 * 86400
    path.write_text(json.dumps(rec))
    then = time.strftime("%Y-%m-%d", time.localtime(rec["started"]))
    today = time.strftime("%Y-%m-%d", time.localtime(new["started"]))
    info = cost_json(crepo)
    assert [(d["day"], d["runs"]) for d in info["days"]] == [(then, 1), (today, 1)]
    assert info["total"]["runs"] == 2
    for since in (today, "1d", "2d"):
        got = cost_json(crepo, "--since", since)
        assert got["total"]["runs"] == 1, since
        assert got["days"][0]["day"] == today, since
        assert got["total"]["cost_usd"] == pytest.approx(new["cost_usd"], abs=1e-6)
    assert cost_json(crepo, "--since", "4d")["total"]["runs"] == 2
    assert cost_json(crepo, "--since", "2999-01-01")["total"]["runs"] == 0
    assert crepo.mdspec("cost", "--since", "2999-01-01").stdout == "mdspec cost: no runs (since 2999-01-01)\n"
    for bad in ("yesterday", "2026-13-01", "0d", "2026/11/01", ""):
        proc = crepo.mdspec("cost", "--since", bad, check=False)
        assert proc.returncode == 1, (bad, proc)
        assert proc.stdout == "", (bad, proc)
        assert proc.stderr.startswith(f"mdspec: error: --since {bad!r}: expected ")
        assert proc.stderr.count("\n") == 1


def test_help_answers_what_it_shows_and_where_from(repo: Repo) -> None:
    text = " ".join(repo.mdspec("cost", "--help").stdout.split())
    for words in (
        "per day, per spec file, and in total",
        "input, output, cache read and cache write",
        "refs/notes/mdspec",
        "git fetch origin 'refs/notes/mdspec:refs/notes/mdspec'",
        "never as $0",
        '[agent.prices."MODEL"]',
        "--since DATE",
        "7d",
        "--json",
    ):
        assert words in text, words
    assert "mdspec cost" in repo.mdspec("--help").stdout


def test_no_runs_yet(repo: Repo) -> None:
    assert repo.mdspec("cost").stdout == "mdspec cost: no runs (all runs)\n"
    info = cost_json(repo)
    assert info["total"] == {
        "runs": 0,
        **dict.fromkeys(TOKENS, 0),
        "cost_usd": 0.0,
        "known_cost_usd": 0.0,
        "unknown_cost_runs": 0,
    }


def test_note_round_trip_and_a_note_from_before_it_had_every_field() -> None:
    rec = {
        "id": "20261129-101010-abcdef",
        "backend": "anthropic",
        "model": "claude-sonnet-5-5",
        "turns": 3,
        "usage": dict(zip(TOKENS, (10, 20, 30, 40), strict=True)),
        "cost_usd": 0.01234,
        "cost_unknown": None,
        "check": "passed",
        "started": 1_780_000_000.0,
        "spec_commits": ["a" * 40],
        "spec_files": ["spec/x y.md"],
    }
    back = costs.parse_note(costs.note_text(rec, now=1_780_000_042.0))
    assert back is not None
    for key in ("id", "usage", "started", "spec_commits", "spec_files", "model"):
        assert back[key] == rec[key], key
    assert back["cost_usd"] == 0.01234
    assert costs.cost_of(back) == 0.01234
    unknown = costs.parse_note(costs.note_text({**rec, "cost_usd": None, "cost_unknown": "no price for m"}))
    assert unknown is not None
    assert costs.cost_of(unknown) is None
    assert costs.unknown_why(unknown) == "no price for m"
    older = costs.parse_note(
        "mdspec run r1\nbackend: anthropic\nmodel: claude-sonnet-4-5\nturns: 2\n"
        "input tokens: 5\noutput tokens: 6\ncache read tokens: 7\ncost: $0.5000\n"
    )
    assert older is not None
    assert costs.tokens(older) == (5, 6, 7, 0)
    assert costs.cost_of(older) == 0.5
    assert costs.parse_note("a note someone else wrote\n") is None
