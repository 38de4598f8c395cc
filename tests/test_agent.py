"""The Anthropic agent loop (mdspec/agent.py), driving the real SDK against the fake Messages API."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from conftest import Repo
from fakeapi import FAKE_KEY, FakeAPI, PromptCache, fake_api  # noqa: F401
from test_attacks import KEY, QUIET, Attack, Outcome, configure, snapshot, transcript

from mdspec.agents.agent import TOOLS, AnthropicSession, check_ready, make_client
from mdspec.agents.session import BackendResult, RunContext, Session
from mdspec.config import DEFAULT_MODEL, AgentConfig, Price
from mdspec.errors import BackendError
from mdspec.run import runner

EDITOR = "str_replace_based_edit_tool"
pytestmark = pytest.mark.filterwarnings("ignore:The model .* is deprecated:DeprecationWarning")
SYSTEM = "You implement specs. " * 50
TASK = "Implement the change in spec/a.md."


class Harness:
    def __init__(self, tmp_path: Path, api: FakeAPI) -> None:
        self.api = api
        self.wt = tmp_path / "wt"
        self.run_dir = tmp_path / "run"
        self.wt.mkdir()
        self.run_dir.mkdir()
        (self.wt / "spec").mkdir()
        (self.wt / "spec" / "a.md").write_text("# A\n\nGreet the world.\n")
        (self.wt / ".git").write_text("gitdir: /elsewhere\n")
        self.events: list[Mapping[str, Any]] = []
        self.outside = tmp_path / "outside"
        self.outside.mkdir()

    def session(
        self,
        agent: AgentConfig | None = None,
        retries: int = 2,
        clock: Callable[[], float] | None = None,
        env: Mapping[str, str] | None = None,
    ) -> AnthropicSession:
        ctx = RunContext(
            worktree=self.wt,
            run_dir=self.run_dir,
            system_prompt=SYSTEM,
            task_prompt=TASK,
            agent=agent or AgentConfig(),
            protected=("spec/**", "AGENTS.md", ".mdspec.toml"),
            env=env or {"PATH": os.environ["PATH"], "HOME": str(self.wt.parent)},
            on_progress=self.events.append,
        )
        extra: dict[str, Any] = {"clock": clock} if clock else {}
        return AnthropicSession(ctx, lambda: make_client(max_retries=retries, timeout=10), bash_timeout=10, **extra)

    def bodies(self) -> list[dict[str, Any]]:
        return [r.body for r in self.api.requests]

    def last_user_blocks(self, n: int = -1) -> list[dict[str, Any]]:
        msg = self.api.requests[n].body["messages"][-1]
        assert msg["role"] == "user"
        return list(msg["content"])

    def transcript(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in (self.run_dir / "transcript.jsonl").read_text().splitlines()]

    def tools_events(self) -> list[Mapping[str, Any]]:
        return [e for e in self.events if e["event"] == "tool"]


@pytest.fixture
def h(tmp_path: Path, fake_api: FakeAPI) -> Harness:  # noqa: F811 - the fixture imported above
    return Harness(tmp_path, fake_api)


def results_of(body: dict[str, Any]) -> list[dict[str, Any]]:
    return [b for b in body["messages"][-1]["content"] if b["type"] == "tool_result"]


# --- readiness --------------------------------------------------------------------------------------------


def test_check_ready_needs_a_credential_and_does_not_import_the_sdk() -> None:
    with pytest.raises(BackendError) as info:
        check_ready({"PATH": "/bin"})
    assert "ANTHROPIC_API_KEY is not set" in str(info.value)
    assert "\n" not in str(info.value)
    check_ready({"ANTHROPIC_API_KEY": "k"})
    check_ready({"ANTHROPIC_AUTH_TOKEN": "t"})
    code = (
        "import sys, mdspec.agents.agent as a; a.check_ready({'ANTHROPIC_API_KEY': 'x'}); "
        "assert 'anthropic' not in sys.modules, 'imported the SDK'"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


# --- a whole run ------------------------------------------------------------------------------------------


def test_multi_turn_run_edits_files_and_ends_with_final_text(h: Harness) -> None:
    api = h.api
    api.edit("view", "spec/a.md")
    api.edit("create", "hello.py", file_text="def greet():\n    return 'hello'\n")
    api.edit("str_replace", "hello.py", old_str="'hello'", new_str="'hello world'")
    api.edit("insert", "hello.py", insert_line=0, insert_text='"""Greetings."""')
    api.bash("python3 -c 'import hello; print(hello.greet())'")
    api.edit("view", ".")
    api.text("Add hello.greet\n\nImplements the greeting from spec/a.md.")
    r = h.session().start()
    assert r.stopped_by is None
    assert r.error is None
    assert r.final_text == "Add hello.greet\n\nImplements the greeting from spec/a.md."
    assert r.turns == 7
    assert len(api.requests) == 7
    assert (h.wt / "hello.py").read_text() == '"""Greetings."""\ndef greet():\n    return \'hello world\'\n'
    bodies = h.bodies()
    assert results_of(bodies[1])[0]["content"] == "     1\t# A\n     2\t\n     3\tGreet the world."
    assert results_of(bodies[5])[0]["content"] == "hello world"
    listing = results_of(bodies[6])[0]["content"]
    assert "hello.py" in listing
    assert "spec/a.md" in listing
    assert ".git" not in listing
    assert all("is_error" not in res for b in bodies[1:] for res in results_of(b))
    # the whole conversation goes back each time, roles alternating, tool_use answered by tool_result
    last = bodies[-1]["messages"]
    assert [m["role"] for m in last] == ["user", "assistant"] * 6 + ["user"]
    assert last[0]["content"][0]["text"] == TASK
    assert bodies[0]["model"] == DEFAULT_MODEL
    assert bodies[0]["max_tokens"] == 16000
    assert bodies[0]["stream"] is True
    # progress: a turn event per response, a tool event per call, cumulative usage
    turns = [e for e in h.events if e["event"] == "turn"]
    assert [e["turn"] for e in turns] == list(range(1, 8))
    assert turns[-1]["usage"]["output_tokens"] == r.usage.output_tokens
    assert turns[-1]["cost_usd"] == pytest.approx(r.usage.cost_usd, abs=1e-6)
    assert r.usage.cost_usd > 0
    assert [e["summary"] for e in h.tools_events()] == [
        "view spec/a.md",
        "create hello.py",
        "str_replace hello.py",
        "insert hello.py",
        "python3 -c 'import hello; print(hello.greet())'",
        "view .",
    ]
    kinds = [line["kind"] for line in h.transcript()]
    assert kinds.count("request") == 7
    assert kinds.count("response") == 7
    assert kinds.count("tool_call") == 6
    assert kinds.count("tool_result") == 6
    assert kinds[-1] == "result"


def test_cache_breakpoints_and_byte_stable_prefix(h: Harness) -> None:
    for i in range(4):
        h.api.bash(f"echo turn {i}")
    h.api.text("Done\n\nNothing to add.")
    r = h.session().start()
    assert r.stopped_by is None
    bodies = h.bodies()
    tools = {json.dumps(b["tools"], sort_keys=False) for b in bodies}
    assert tools == {json.dumps(TOOLS)}
    assert TOOLS == [{"type": "text_editor_20250728", "name": EDITOR}, {"type": "bash_20250124", "name": "bash"}]
    assert {json.dumps(b["system"]) for b in bodies} == {
        json.dumps([{"type": "text", "text": SYSTEM, "cache_control": {"type": "ephemeral"}}])
    }
    for body in bodies:
        marked = [
            (i, j)
            for i, m in enumerate(body["messages"])
            for j, blk in enumerate(m["content"])
            if "cache_control" in blk
        ]
        newest = len(body["messages"]) - 1
        assert marked == [(newest, len(body["messages"][newest]["content"]) - 1)]
        assert marked
        assert body["messages"][newest]["content"][-1]["cache_control"] == {"type": "ephemeral"}
    usages = [req.usage for req in h.api.requests]
    assert usages[0]["cache_read_input_tokens"] == 0
    assert all(u["cache_read_input_tokens"] > 0 for u in usages[1:])
    assert r.usage.cache_read_input_tokens > r.usage.cache_creation_input_tokens


def test_fake_cache_reads_the_longest_written_prefix() -> None:
    cache = PromptCache()
    bp = {"type": "ephemeral"}
    first = {
        "system": [{"type": "text", "text": "s" * 400, "cache_control": bp}],
        "messages": [{"role": "user", "content": [{"type": "text", "text": "u" * 400, "cache_control": bp}]}],
    }
    u1 = cache.bill(first)
    assert u1 == {
        "input_tokens": 0,
        "cache_creation_input_tokens": u1["cache_creation_input_tokens"],
        "cache_read_input_tokens": 0,
    }
    second = json.loads(json.dumps(first))
    del second["messages"][0]["content"][0]["cache_control"]
    second["messages"] += [
        {"role": "assistant", "content": [{"type": "text", "text": "a" * 400}]},
        {"role": "user", "content": [{"type": "text", "text": "v" * 400, "cache_control": bp}]},
    ]
    u2 = cache.bill(second)
    assert u2["cache_read_input_tokens"] == u1["cache_creation_input_tokens"]
    assert u2["input_tokens"] == 0
    assert 200 <= u2["cache_creation_input_tokens"] <= 250  # two blocks of 400 chars
    no_bp = json.loads(json.dumps(second))
    del no_bp["messages"][-1]["content"][0]["cache_control"]
    u3 = cache.bill(no_bp)  # only the system breakpoint: reads the system prefix, the rest is plain input
    assert 0 < u3["cache_read_input_tokens"] < u1["cache_creation_input_tokens"]
    assert u3["input_tokens"] > 300


# --- limits -----------------------------------------------------------------------------------------------


def test_max_turns_stops_cleanly(h: Harness) -> None:
    for _ in range(5):
        h.api.bash("true")
    r = h.session(AgentConfig(max_turns=3)).start()
    assert (r.stopped_by, r.turns, r.error) == ("max_turns", 3, None)
    assert len(h.api.requests) == 3
    assert len(h.tools_events()) == 3


def test_max_cost_stops_cleanly(h: Harness) -> None:
    for _ in range(5):
        h.api.bash("true")
    dear = Price(input=1000.0, output=1000.0, cache_write=1000.0, cache_read=1000.0)
    r = h.session(AgentConfig(max_cost_usd=0.1, prices={DEFAULT_MODEL: dear})).start()
    assert r.stopped_by == "max_cost_usd"
    # max_tokens of output alone could cost $16: the first request is never sent
    assert r.turns == 0
    assert h.api.requests == []
    assert r.usage.cost_usd == 0.0
    assert r.error is not None
    assert "could cost up to $16" in r.error
    assert "\n" not in r.error


def test_max_cost_stops_before_the_turn_that_could_exceed_it(h: Harness) -> None:
    for _ in range(30):
        h.api.bash("true")
    # Output is what costs here: max_tokens = 100 bounds a turn's output at $0.10.
    price = Price(input=1.0, output=1000.0, cache_write=1.0, cache_read=1.0)
    cap = 0.25
    r = h.session(AgentConfig(max_cost_usd=cap, max_tokens=100, prices={DEFAULT_MODEL: price})).start()
    assert r.stopped_by == "max_cost_usd"
    assert 2 <= r.turns < 30
    assert len(h.api.requests) == r.turns  # stopped before sending, not after
    assert r.usage.cost_usd <= cap  # never over: each turn was affordable at its worst
    assert r.error is not None
    assert f"stopped before turn {r.turns + 1}" in r.error


def test_a_turn_billed_above_its_estimate_overruns_by_that_turn_only(h: Harness) -> None:
    for _ in range(5):
        h.api.bash("true")
    # The fake API ignores max_tokens = 1 and bills ~20 output tokens: more than estimated.
    price = Price(input=0.0, output=10_000.0, cache_write=0.0, cache_read=0.0)
    r = h.session(AgentConfig(max_cost_usd=0.05, max_tokens=1, prices={DEFAULT_MODEL: price})).start()
    assert r.stopped_by == "max_cost_usd"
    assert r.turns == 1
    assert len(h.api.requests) == 1
    assert r.usage.cost_usd > 0.05  # the overrun is this one turn's, and the record says so (runner)


def test_max_minutes_with_an_injected_clock(h: Harness) -> None:
    for _ in range(5):
        h.api.bash("true")
    ticks = itertools.count(0.0, 25.0)  # every reading of the clock is 25 s later
    r = h.session(AgentConfig(max_minutes=1.0), clock=lambda: next(ticks)).start()
    assert r.stopped_by == "max_minutes"
    assert 1 <= r.turns < 5


def test_an_unpriced_model_stops_before_the_first_request(h: Harness) -> None:
    h.api.text("Done\n\nbody")
    r = h.session(AgentConfig(model="claude-future-9")).start()
    assert r.stopped_by == "max_cost_usd"
    assert r.turns == 0
    assert h.api.requests == []
    assert r.error == (
        "cost unknown (no price for claude-future-9): max_cost_usd = $5 cannot be enforced; "
        'set [agent.prices."claude-future-9"] in .mdspec.toml'
    )
    # A dated id takes its family's price; a newer family never takes an older one's.
    h.api.text("Done\n\nbody")
    r = h.session(AgentConfig(model="claude-sonnet-5-5-20261001")).start()
    assert r.stopped_by is None
    assert r.cost_unknown is None
    assert r.usage.cost_usd > 0


def test_a_reply_from_an_unpriced_model_makes_the_cost_unknown_and_stops(h: Harness) -> None:
    h.api.response_model = "claude-future-9"  # the API answered with another model than the one asked for
    h.api.bash("echo hi")
    h.api.text("never asked for")
    r = h.session().start()
    assert r.turns == 1
    assert len(h.api.requests) == 1
    assert r.model == "claude-future-9"
    assert r.stopped_by == "max_cost_usd"
    assert r.error is not None
    assert "no price for claude-future-9" in r.error
    assert r.cost_unknown == "no price for claude-future-9"
    assert r.usage.output_tokens > 0
    turn = [e for e in h.events if e["event"] == "turn"][-1]
    assert turn["cost_usd"] is None
    assert turn["cost_unknown"] == "no price for claude-future-9"
    assert turn["price_known"] is False
    result = h.transcript()[-1]
    assert result["kind"] == "result"
    assert result["cost_usd"] is None
    assert result["price_known"] is False


# --- stop reasons -----------------------------------------------------------------------------------------


def test_max_tokens_text_is_continued(h: Harness) -> None:
    h.api.text("The first half of a long", stop_reason="max_tokens")
    h.api.text("Finish it\n\nsecond half.")
    r = h.session().start()
    assert r.stopped_by is None
    assert r.final_text == "Finish it\n\nsecond half."
    msgs = h.bodies()[1]["messages"]
    assert msgs[1] == {"role": "assistant", "content": [{"type": "text", "text": "The first half of a long"}]}
    assert "cut off by the output token limit" in msgs[2]["content"][0]["text"]


def test_max_tokens_inside_a_tool_call_drops_it(h: Harness) -> None:
    complete = {"type": "tool_use", "name": "bash", "input": {"command": "echo first"}}
    cut = {"type": "tool_use", "name": EDITOR, "partial_json": '{"command": "create", "path": "big.py", "file_te'}
    h.api.reply("Writing it.", complete, cut, stop_reason="max_tokens")
    h.api.text("Gave up\n\nToo big.")
    r = h.session().start()
    assert r.stopped_by is None
    assert not (h.wt / "big.py").exists()
    msgs = h.bodies()[1]["messages"]
    assert [b["type"] for b in msgs[1]["content"]] == ["text", "tool_use"]  # the cut call is gone
    answer = msgs[2]["content"]
    assert answer[0]["type"] == "tool_result"
    assert answer[0]["content"] == "first"
    assert answer[1]["type"] == "text"
    assert f"last {EDITOR} call was cut off" in answer[1]["text"]


def test_pause_turn_sends_the_conversation_back(h: Harness) -> None:
    h.api.text("Searching, still going", stop_reason="pause_turn")
    h.api.text("Finished\n\nafter a pause.")
    r = h.session().start()
    assert r.stopped_by is None
    assert r.turns == 2
    assert r.final_text == "Finished\n\nafter a pause."
    msgs = h.bodies()[1]["messages"]
    assert [m["role"] for m in msgs] == ["user", "assistant"]
    assert msgs[-1]["content"] == [
        {"type": "text", "text": "Searching, still going", "cache_control": {"type": "ephemeral"}}
    ]


@pytest.mark.parametrize(("reason", "stopped"), [("refusal", "refusal"), ("model_context_window_exceeded", "context")])
def test_refusal_and_context_stop(h: Harness, reason: str, stopped: str) -> None:
    h.api.bash("true")
    h.api.text("I won't", stop_reason=reason)
    r = h.session().start()
    assert (r.stopped_by, r.turns, r.error) == (stopped, 2, None)


def test_prompt_too_long_is_context(h: Harness) -> None:
    h.api.error(400, "prompt is too long: 212345 tokens > 200000 maximum")
    r = h.session().start()
    assert r.stopped_by == "context"
    assert "prompt is too long" in (r.error or "")


# --- API errors -------------------------------------------------------------------------------------------


def test_rate_limit_and_overload_are_retried_by_the_sdk(h: Harness) -> None:
    h.api.error(429, "slow down", retry_after_ms=20)
    h.api.error(529, "overloaded", retry_after_ms=20)
    h.api.text("Done\n\nafter retries.")
    r = h.session(retries=2).start()
    assert r.stopped_by is None
    assert r.turns == 1
    assert r.final_text == "Done\n\nafter retries."
    assert [req.status for req in h.api.requests] == [429, 529, 200]


def test_retries_exhausted_is_an_error_with_the_request_id(h: Harness) -> None:
    for _ in range(3):
        h.api.error(500, "internal trouble", retry_after_ms=10)
    r = h.session(retries=2).start()
    assert r.stopped_by == "error"
    assert len(h.api.requests) == 3
    assert r.error is not None
    assert "\n" not in r.error
    assert "InternalServerError" in r.error
    assert "500" in r.error
    assert "internal trouble" in r.error
    assert "req_fake" in r.error


def test_refused_key_is_a_one_line_error(h: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-wrong-key-123456")
    h.api.text("never sent")
    r = h.session().start()
    assert r.stopped_by == "error"
    assert len(h.api.requests) == 1  # 401 is not retried
    assert r.error is not None
    assert "\n" not in r.error
    assert r.error.startswith("the API key was refused")
    assert "401" in r.error
    assert "req_fake" in r.error


def test_no_server_is_an_error_not_an_exception(h: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_BASE_URL", "http://127.0.0.1:9")  # discard port: nothing listens
    r = h.session(retries=0).start()
    assert r.stopped_by == "error"
    assert "APIConnectionError" in (r.error or "")


# --- a broken stream and mdspec's own deadline -----------------------------------------------------------


@pytest.mark.parametrize("events", [2, 6, -1])  # after message_start, inside the tool call, all but the stop
def test_a_stream_ending_without_message_stop_is_an_error(h: Harness, events: int) -> None:
    h.api.truncate(
        {
            "type": "tool_use",
            "name": EDITOR,
            "input": {"command": "create", "path": "half.py", "file_text": "x = 1\n" * 20},
        },
        events=events,
    )
    h.api.text("never reached")
    r = h.session().start()
    assert r.stopped_by == "error"
    assert r.turns == 0
    assert r.final_text == ""
    assert r.error is not None
    assert "\n" not in r.error
    assert r.error.startswith("the Messages API stream ended without message_stop")
    assert "req_fake" in r.error
    assert not (h.wt / "half.py").exists()  # the cut tool call never ran
    assert len(h.api.requests) == 1
    assert h.tools_events() == []


def test_a_text_stream_cut_cleanly_is_not_an_end_of_turn(h: Harness) -> None:
    h.api.bash("echo one")
    h.api.truncate("Done\n\nThis answer looks complete but the stream never finished.", events=5)
    r = h.session().start()
    assert r.stopped_by == "error"
    assert r.turns == 1
    assert r.final_text == ""


def test_a_malformed_stream_event_is_one_line_naming_the_api(h: Harness) -> None:
    h.api.malformed("Some text that is long enough to need a few deltas. " * 3, bad=3)
    r = h.session().start()
    assert r.stopped_by == "error"
    assert r.error is not None
    assert "\n" not in r.error
    assert r.error.startswith("the Messages API sent a malformed stream event:")
    assert "req_fake" in r.error
    assert "JSONDecodeError" not in r.error
    assert "AssertionError" not in r.error


def test_a_json_body_where_a_stream_was_asked(h: Harness) -> None:
    h.api.json_body("Done\n\nsent as JSON")
    r = h.session().start()
    assert r.stopped_by == "error"
    assert r.turns == 0
    assert r.error is not None
    assert r.error.startswith(
        "the Messages API sent a body of type application/json where a stream was asked (request id req_fake"
    )


DEADLINE = AgentConfig(max_minutes=0.05)  # 3 seconds


def deadline_case(h: Harness, retries: int = 2) -> BackendResult:
    t0 = time.monotonic()
    r = h.session(DEADLINE, retries=retries).start()
    assert time.monotonic() - t0 < 60  # only guards against hanging; the deadline is what is asserted
    assert r.stopped_by == "max_minutes"
    assert r.error is not None
    assert "\n" not in r.error
    assert r.error.startswith("the 0.05-minute deadline (max_minutes) passed while waiting for the Messages API")
    return r


def test_a_stream_of_pings_ends_at_the_deadline(h: Harness) -> None:
    h.api.pings()
    deadline_case(h)
    assert len(h.api.requests) == 1


def test_a_server_that_never_sends_headers_ends_at_the_deadline(h: Harness) -> None:
    for _ in range(3):
        h.api.silent()
    deadline_case(h)


def test_a_retry_after_of_an_hour_ends_at_the_deadline(h: Harness) -> None:
    h.api.error(429, "come back in an hour", retry_after=3600)
    h.api.text("Done\n\ntoo late")
    deadline_case(h)
    assert [req.status for req in h.api.requests] == [429]


def test_bash_time_limit_is_cut_to_the_deadline(h: Harness) -> None:
    h.api.bash("sleep 30; echo woke")
    h.api.text("Done\n\nslept")
    t0 = time.monotonic()
    r = h.session(AgentConfig(max_minutes=0.05)).start()
    assert time.monotonic() - t0 < 25  # the 10 s bash limit would not hang it; 30 s of sleep would
    assert r.stopped_by == "max_minutes"
    assert r.turns == 1
    result = next(line for line in h.transcript() if line["kind"] == "tool_result")
    assert result["is_error"]
    assert "the command timed out" in result["content"]
    assert "woke" not in result["content"]


# --- the guard inside a run -------------------------------------------------------------------------------


def test_escaping_tool_calls_are_refused_and_the_run_goes_on(h: Harness) -> None:
    (h.wt / "out").symlink_to(h.outside)
    api = h.api
    api.edit("view", "../outside")
    api.edit("create", "/etc/passwd", file_text="root::0:0::/:/bin/sh\n")
    api.edit("create", "out/evil.txt", file_text="x")
    api.edit("view", ".git/config")
    api.edit("str_replace", "spec/a.md", old_str="Greet", new_str="Ignore")
    api.edit("create", "ok.txt", file_text="fine\n")
    api.text("Done\n\nSome calls were refused.")
    r = h.session().start()
    assert r.stopped_by is None
    assert r.turns == 7
    bodies = h.bodies()
    for n in range(1, 6):
        res = results_of(bodies[n])[0]
        assert res["is_error"] is True, res
        assert res["content"].startswith("Refused:"), res
    assert "is_error" not in results_of(bodies[6])[0]
    assert len(r.refusals) == 5
    assert all("\n" not in x for x in r.refusals)
    assert (h.wt / "spec/a.md").read_text() == "# A\n\nGreet the world.\n"
    assert not (h.outside / "evil.txt").exists()
    assert (h.wt / "ok.txt").read_text() == "fine\n"
    assert [e["is_error"] for e in h.tools_events()] == [True] * 5 + [False]


def test_unknown_tool_is_an_error_result(h: Harness) -> None:
    h.api.tool("computer", action="screenshot")
    h.api.text("Done\n\nok")
    r = h.session().start()
    assert r.stopped_by is None
    res = results_of(h.bodies()[1])[0]
    assert res["is_error"] is True
    assert "unknown tool" in res["content"]


# --- fix rounds -------------------------------------------------------------------------------------------


def test_fix_continues_the_same_conversation_and_limits_are_cumulative(h: Harness) -> None:
    h.api.edit("create", "app.py", file_text="x = 1\n")
    h.api.text("Add app\n\nFirst try.")
    h.api.edit("str_replace", "app.py", old_str="x = 1", new_str="x = 2")
    h.api.bash("true")  # the fourth turn is over the limit
    s = h.session(AgentConfig(max_turns=3))
    first: BackendResult = s.start()
    assert first.stopped_by is None
    assert first.turns == 2
    second = s.fix("FAILED test_app.py::test_x - assert 1 == 2")
    assert second.stopped_by == "max_turns"
    assert second.turns == 3
    assert second.final_text == "Add app\n\nFirst try."  # the last finished answer stands
    assert (h.wt / "app.py").read_text() == "x = 2\n"
    msgs = h.bodies()[2]["messages"]
    assert [m["role"] for m in msgs] == ["user", "assistant", "user", "assistant", "user"]
    assert msgs[:3] == [*h.bodies()[1]["messages"][:2], msgs[2]]
    assert msgs[0]["content"][0]["text"] == TASK
    assert "FAILED test_app.py::test_x" in msgs[4]["content"][0]["text"]
    assert second.usage.output_tokens > first.usage.output_tokens


# --- the transcript ---------------------------------------------------------------------------------------


def test_the_key_never_reaches_the_run_dir(h: Harness) -> None:
    h.api.bash("echo key=$ANTHROPIC_API_KEY")
    h.api.text("Done\n\nok")
    leaky_env = {"PATH": os.environ["PATH"], "ANTHROPIC_API_KEY": FAKE_KEY}  # as if the scrubbing failed
    r = h.session(env=leaky_env).start()
    assert r.stopped_by is None
    sent = h.api.requests[0].headers
    assert FAKE_KEY in sent.get("x-api-key", sent.get("authorization", ""))  # the key did travel, in a header
    files = [p for p in h.run_dir.rglob("*") if p.is_file()]
    assert files
    for p in files:
        assert FAKE_KEY not in p.read_text(errors="replace"), p
    lines = h.transcript()
    assert any(line["kind"] == "tool_result" and "key=[redacted]" in line["content"] for line in lines)
    assert results_of(h.bodies()[1])[0]["content"] == "key=[redacted]"  # the model never saw it either
    assert all(FAKE_KEY not in json.dumps(r.body) for r in h.api.requests)
    req = next(line for line in lines if line["kind"] == "request")
    assert req["params"]["system"][0]["text"] == SYSTEM
    assert req["messages"][0]["content"][0]["text"] == TASK


def test_a_failing_progress_callback_ends_the_session_cleanly(h: Harness) -> None:
    h.api.bash("true")
    s = h.session()

    def boom(event: Mapping[str, Any]) -> None:
        raise RuntimeError("progress sink broke")

    s.ctx = RunContext(**{**s.ctx.__dict__, "on_progress": boom})
    r = s.start()
    assert r.stopped_by == "error"
    assert r.error == "internal error: RuntimeError: progress sink broke"
    assert any("Traceback" in line.get("traceback", "") for line in h.transcript())


# --- the same faults end to end: a real run against the fake server ----------------------------------------


@pytest.fixture
def e2e(repo: Repo, git_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Attack]:
    """A repository with a spec commit waiting and the built-in agent, run through run_now."""
    server = FakeAPI(api_key=KEY).start()
    monkeypatch.setenv("ANTHROPIC_BASE_URL", server.base_url)
    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")

    def make_session(ctx: RunContext) -> Session:
        return AnthropicSession(
            ctx, lambda: make_client(max_retries=2, timeout=30), bash_timeout=10, shell_prefix=ctx.sandbox
        )

    monkeypatch.setattr(runner, "make_session", make_session)
    repo.commit("project", {"AGENTS.md": "# rules\n", "src/app.py": "print('app')\n"}, env=QUIET)
    configure(repo, "off")
    repo.commit("spec: greet", {"spec/app.md": "# App\n\nGreet the world.\n"}, env=QUIET)
    try:
        yield Attack(repo, server, git_env, tmp_path)
    finally:
        server.close()


def failed_with(e2e: Attack, out: Outcome, start: str) -> None:
    assert out.code == 1, out.rec
    assert out.rec["status"] == "failed", out.rec
    assert "\n" not in out.rec["reason"], out.rec["reason"]
    assert out.rec["reason"].startswith(start), out.rec["reason"]
    e2e.assert_untouched(out)  # nothing landed, nothing of the user's changed


def test_run_with_a_stream_cut_cleanly_fails_and_holds_the_partial_work(e2e: Attack) -> None:
    e2e.api.edit("create", "partial.py", file_text="x = 1\n")
    e2e.api.truncate("Done\n\nLooks finished, but the stream never ended.", events=-1)
    out = e2e.run()
    failed_with(e2e, out, "the Messages API stream ended without message_stop")
    assert out.rec["stopped_by"] == "error"
    assert out.rec["turns"] == 1
    assert "partial work held as refs/mdspec/results/" in out.rec["reason"]
    held = e2e.repo.git("rev-parse", f"refs/mdspec/results/{out.rec['id']}").strip()
    assert e2e.repo.git("show", f"{held}:partial.py") == "x = 1\n"
    assert "Looks finished" not in e2e.repo.git("log", "-1", "--format=%B", held)  # nothing from the cut stream
    assert any(e["kind"] == "error" for e in transcript(out.run_dir))


@pytest.mark.parametrize("fault", ["malformed", "json_body"])
def test_run_with_a_broken_stream_fails_with_one_line(e2e: Attack, fault: str) -> None:
    getattr(e2e.api, fault)("Done\n\nnever used. " * 10)
    out = e2e.run()
    failed_with(e2e, out, "the Messages API sent a")
    assert "Error" not in out.rec["reason"]
    assert (out.run_dir / "run.json").is_file()


def test_run_deadline_with_a_stream_of_pings(e2e: Attack) -> None:
    e2e.repo.configure('sandbox = "off"\n[agent]\nmax_minutes = 0.05\n')
    e2e.repo.commit("configure mdspec", env=QUIET)
    e2e.api.pings()
    t0 = time.monotonic()
    out = e2e.run()
    assert time.monotonic() - t0 < 60
    failed_with(e2e, out, "stopped at the max_minutes limit (the 0.05-minute deadline (max_minutes) passed")


def test_run_record_says_by_how_much_the_cost_cap_was_overrun(e2e: Attack) -> None:
    e2e.repo.configure(
        'sandbox = "off"\n[agent]\nmax_cost_usd = 0.05\nmax_tokens = 1\n'
        "[agent.prices.claude-sonnet-5-5]\ninput = 0\noutput = 10000\ncache_write = 0\ncache_read = 0\n"
    )
    e2e.repo.commit("configure mdspec", env=QUIET)
    e2e.api.edit("create", "partial.py", file_text="x = 1\n")
    e2e.api.text("never sent")
    out = e2e.run()
    assert out.rec["status"] == "held", out.rec
    assert out.rec["stopped_by"] == "max_cost_usd", out.rec
    assert out.rec["cost_overrun_usd"] == pytest.approx(out.rec["cost_usd"] - 0.05, abs=1e-6)
    assert out.rec["cost_overrun_usd"] > 0
    assert len(e2e.api.requests) == 1


# --- what runs cost: records, notes, status and log ---------------------------------------------------------


def test_run_record_note_status_and_log_carry_tokens_and_cost(e2e: Attack) -> None:
    e2e.finish()
    out = e2e.run()
    rec = out.rec
    assert out.code == 0, rec
    assert rec["status"] == "landed", rec
    u = rec["usage"]
    assert set(u) == {"input_tokens", "output_tokens", "cache_read_input_tokens", "cache_creation_input_tokens"}
    # The fake API's own bills, summed: the record keeps what the API said, turn by turn.
    billed = {k: sum(r.usage[k] for r in e2e.api.requests) for k in u}
    assert u == billed
    assert u["cache_read_input_tokens"] > 0
    assert u["cache_creation_input_tokens"] > 0
    p = Price(2.0, 10.0, 2.5, 0.10)  # claude-sonnet-5-5's list price
    dollars = (
        u["input_tokens"] * p.input
        + u["output_tokens"] * p.output
        + u["cache_read_input_tokens"] * p.cache_read
        + u["cache_creation_input_tokens"] * p.cache_write
    ) / 1e6
    assert rec["cost_usd"] == pytest.approx(dollars, abs=1e-6)
    assert rec["cost_unknown"] is None
    assert rec["spec_files"] == ["spec/app.md"]
    note = e2e.repo.git("notes", "--ref=refs/notes/mdspec", "show", rec["landed_as"])
    for line in (
        f"input tokens: {u['input_tokens']}",
        f"output tokens: {u['output_tokens']}",
        f"cache read tokens: {u['cache_read_input_tokens']}",
        f"cache write tokens: {u['cache_creation_input_tokens']}",
        "spec file: spec/app.md",
        "model: claude-sonnet-5-5",
    ):
        assert line in note.splitlines(), (line, note)
    noted = next(ln for ln in note.splitlines() if ln.startswith("cost: $"))
    assert float(noted.removeprefix("cost: $")) == pytest.approx(dollars, abs=1e-6)  # to the fraction of a cent
    info = json.loads(e2e.repo.mdspec("status", "--json").stdout)
    assert info["runs"][0]["usage"] == u
    assert info["runs"][0]["cost_usd"] == rec["cost_usd"]
    assert info["runs"][0]["cost_unknown"] is None
    log = e2e.repo.mdspec("log", rec["id"]).stdout.splitlines()
    assert (
        f"  usage: 2 turns, tokens {u['input_tokens']:,} in, {u['output_tokens']:,} out, "
        f"{u['cache_read_input_tokens']:,} cache read, {u['cache_creation_input_tokens']:,} cache write, "
        f"${dollars:.4f}"
    ) in log
    status = e2e.repo.mdspec("status").stdout
    assert f"  {rec['id']}  landed" in status
    assert f"${dollars:.2f}" in status


def test_an_unpriced_model_does_not_start_a_run(e2e: Attack) -> None:
    repo = e2e.repo
    repo.mdspec("init", "--git-hook")
    repo.configure('sandbox = "off"\n[agent]\nmodel = "claude-future-9"\n')
    repo.commit("configure mdspec", env=QUIET)
    spec = repo.commit("spec: more", {"spec/more.md": "# More\n"}, env=QUIET)
    before, tip = snapshot(repo), repo.head()
    line = (
        "mdspec: error: .mdspec.toml: agent.model: no price for claude-future-9, so max_cost_usd = $5 cannot be "
        'enforced: set [agent.prices."claude-future-9"] in .mdspec.toml (input, output, cache_write, cache_read: '
        "USD per million tokens)\n"
    )
    for args in (["run", "--foreground"], ["run"]):
        proc = repo.mdspec(*args, check=False)
        assert proc.returncode == 1, proc
        assert proc.stderr == line, proc
        assert proc.stdout == "", proc
    assert not (repo.state / "runs").exists()
    assert e2e.api.requests == []  # nothing started, nothing recorded
    assert snapshot(repo) == before
    assert repo.head() == tip
    # Through the hook: the commit is made, no request is sent, and the failure is recorded with the reason.
    newer = repo.commit("spec: even more", {"spec/even.md": "# Even\n"}, env={"MDSPEC_FOREGROUND": "1"})
    assert repo.head() == newer
    assert e2e.api.requests == []
    rec = json.loads(next((repo.state / "runs").glob("*/run.json")).read_text())
    assert rec["status"] == "failed"
    assert '[agent.prices."claude-future-9"]' in rec["reason"]
    pending = [s["commit"] for s in json.loads(repo.mdspec("status", "--json").stdout)["spec_commits"]]
    assert spec in pending
    assert newer in pending  # still waiting to be implemented
    # Once priced, the same commits run.
    repo.configure(
        'sandbox = "off"\n[agent]\nmodel = "claude-future-9"\n[agent.prices."claude-future-9"]\n'
        "input = 1\noutput = 2\ncache_write = 1.25\ncache_read = 0.1\n"
    )
    repo.commit("price the model", env=QUIET)
    e2e.finish()
    out = e2e.run()
    assert out.rec["status"] == "landed", out.rec
    assert out.rec["cost_usd"] > 0, out.rec


def test_a_run_whose_cost_is_unknown_says_so_everywhere(e2e: Attack) -> None:
    e2e.api.response_model = "claude-future-9"
    e2e.api.edit("create", "hello.py", file_text="x = 1\n")
    out = e2e.run()
    rec = out.rec
    assert rec["status"] == "held", rec
    assert rec["stopped_by"] == "max_cost_usd", rec
    assert rec["cost_usd"] is None
    assert rec["cost_unknown"] == "no price for claude-future-9"
    assert rec["usage"]["output_tokens"] > 0
    assert rec["model"] == "claude-future-9"
    assert "cost_overrun_usd" not in rec
    info = json.loads(e2e.repo.mdspec("status", "--json").stdout)
    assert info["runs"][0]["cost_usd"] is None
    assert info["runs"][0]["cost_unknown"] == rec["cost_unknown"]
    assert "cost unknown (no price for claude-future-9)" in e2e.repo.mdspec("status").stdout
    log = e2e.repo.mdspec("log", rec["id"]).stdout
    assert ", cost unknown (no price for claude-future-9)" in log
    assert "$0.0000" not in log
    assert "so far, cost unknown (no price for claude-future-9)" in log  # the turn's own line
    # Landed by hand, its note says the same.
    assert e2e.repo.mdspec("apply", rec["id"], check=False).returncode == 0
    note = e2e.repo.git("notes", "--ref=refs/notes/mdspec", "show", "HEAD").splitlines()
    assert "cost: unknown (no price for claude-future-9)" in note
    assert "cost: $0.0000" not in note
