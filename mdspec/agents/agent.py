"""The built-in backend: mdspec's own agent loop on the Anthropic Messages API (DESIGN §4).

The loop is send → run the tools the model asked for → append their results → repeat, until the model
ends its turn, a limit (turns, minutes, dollars; cumulative over start() and fix()) is reached, or the API
fails after the SDK's own retries. Nothing but KeyboardInterrupt escapes start()/fix(): every other way of
stopping is a BackendResult with `stopped_by` set.

Prompt caching: the tools and the system prompt are byte-identical on every request and the system block
carries a breakpoint; the newest message's last block carries the only other one, so each request reads
the previous request's prefix from cache and writes one turn more.

This is the only module that imports `anthropic`, and only inside functions: the SDK takes over a second
to import and the hook's fast path must not pay for it.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import threading
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from mdspec.agents.providers import SECRET_VARS, readiness
from mdspec.agents.session import BackendResult, RunContext, Usage
from mdspec.agents.tools import BASH, EDITOR, Toolbox, summary
from mdspec.config import Price, price_key
from mdspec.errors import BackendError
from mdspec.exec.procs import KEY_VARS, protect_environ

# The Anthropic-defined client tools; constant so that the cached prefix never changes.
TOOLS: list[dict[str, Any]] = [
    {"type": "text_editor_20250728", "name": EDITOR},
    {"type": "bash_20250124", "name": BASH},
]
EPHEMERAL = {"type": "ephemeral"}
DEFAULT_RETRIES = 2
REQUEST_TIMEOUT = 600.0  # seconds per request; a streamed response keeps the connection busy throughout
UNCACHEABLE = ("thinking", "redacted_thinking")  # blocks that cannot carry cache_control
# A streamed answer: server-sent events, or on Bedrock AWS's binary event stream framing the same events.
STREAM_TYPES = ("text/event-stream", "application/vnd.amazon.eventstream")

CONTINUE = "Your last response was cut off by the output token limit. Continue exactly where it stopped."
CUT_TOOL = (
    " Its last {name} call was cut off before it was complete and was not run: make it again, and if it"
    " carried a large file_text, write the file in smaller pieces (create, then insert or str_replace)."
)
FIX = (
    "The check command failed on your changes. Fix the code (never the spec) so that it passes, then end "
    "your turn with a final answer in the same form as before: a one-line summary, then a short body.\n\n"
    "The check's output:\n\n```\n"
)

ClientFactory = Callable[[], Any]
CHARS_PER_TOKEN = 3  # for estimating a request's new tokens before sending it; real text averages nearer 4


class StreamFault(Exception):
    """The Messages API broke the stream's wire format: the message is one line naming the API's fault."""


class DeadlineReached(Exception):
    """The run's max_minutes passed while a request was still in flight (mdspec's own deadline)."""


def check_ready(env: Mapping[str, str], provider: str = "anthropic") -> None:
    """Fail early, in one line, when the provider's libraries are missing or the SDK would find no
    credentials (or, on Bedrock and Vertex AI, no region)."""
    ready = readiness(provider, env)
    if not ready.ok:
        raise BackendError(ready.line)


def make_client(
    max_retries: int = DEFAULT_RETRIES, timeout: float = REQUEST_TIMEOUT, provider: str = "anthropic"
) -> Any:
    """An SDK client for `provider`, configured from the environment as the SDK documents it: the
    Anthropic API (ANTHROPIC_API_KEY, ANTHROPIC_BASE_URL), Bedrock (AWS_REGION and the AWS credential
    chain, ANTHROPIC_BEDROCK_BASE_URL) or Vertex AI (CLOUD_ML_REGION, ANTHROPIC_VERTEX_PROJECT_ID, Google
    application default credentials, ANTHROPIC_VERTEX_BASE_URL)."""
    import anthropic  # late: see the module docstring

    if provider == "bedrock":
        return anthropic.AnthropicBedrock(max_retries=max_retries, timeout=timeout)
    if provider == "vertex":
        return anthropic.AnthropicVertex(max_retries=max_retries, timeout=timeout)
    return anthropic.Anthropic(max_retries=max_retries, timeout=timeout)


def cost_of(usage: Usage, price: Price | None) -> float | None:
    """Dollars for `usage`; None when the price is unknown (never 0: that would hide the spending)."""
    if price is None:
        return None
    return (
        usage.input_tokens * price.input
        + usage.output_tokens * price.output
        + usage.cache_creation_input_tokens * price.cache_write
        + usage.cache_read_input_tokens * price.cache_read
    ) / 1_000_000


def list_models(env: Mapping[str, str], timeout: float = 20.0) -> list[str]:
    """Every model id the API lists for the key in `env` (all pages); raises the SDK's errors."""
    import anthropic  # late: see the module docstring

    key = env.get("ANTHROPIC_API_KEY") or None
    token = None if key else env.get("ANTHROPIC_AUTH_TOKEN") or None
    client = anthropic.Anthropic(
        api_key=key, auth_token=token, base_url=env.get("ANTHROPIC_BASE_URL") or None, max_retries=1, timeout=timeout
    )
    try:
        return [m.id for m in client.models.list(limit=1000)]
    finally:
        client.close()


def usage_dict(u: Usage) -> dict[str, int]:
    return {
        "input_tokens": u.input_tokens,
        "output_tokens": u.output_tokens,
        "cache_creation_input_tokens": u.cache_creation_input_tokens,
        "cache_read_input_tokens": u.cache_read_input_tokens,
    }


class Transcript:
    """transcript.jsonl: one JSON object per line, appended and flushed as things happen.

    Credentials never reach it: they travel in request headers, which are not logged, and any line that
    still contains a key's value (a command that printed its environment) has it replaced.
    """

    def __init__(self, path: Path, secrets: list[str]) -> None:
        self.path = path
        self.secrets = [s for s in secrets if len(s) >= 8]
        self.failed = False

    def write(self, kind: str, **data: Any) -> None:
        """Append one line. A failed write (disk full) raises once, which ends the session as an error;
        after that writes are skipped, so recording that error cannot fail in turn."""
        if self.failed:
            return
        line = json.dumps({"t": round(time.time(), 3), "kind": kind, **data}, ensure_ascii=False, default=str)
        for s in self.secrets:
            line = line.replace(s, "[redacted]")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a", encoding="utf-8", errors="backslashreplace") as f:
                f.write(line + "\n")
                f.flush()
        except OSError:
            self.failed = True
            raise


def _as_param(block: Any) -> dict[str, Any] | None:
    """A response content block as a request block (response-only fields dropped; empty text dropped)."""
    d: dict[str, Any] = block.model_dump(mode="json", exclude_none=True)
    kind = d.get("type")
    if kind == "text":
        return {"type": "text", "text": d["text"]} if d.get("text", "").strip() else None
    if kind == "tool_use":
        return {"type": "tool_use", "id": d["id"], "name": d["name"], "input": d.get("input", {})}
    if kind == "thinking":
        return {"type": "thinking", "thinking": d.get("thinking", ""), "signature": d.get("signature", "")}
    return d  # redacted thinking and server-side blocks go back as received


def _text_of(blocks: list[dict[str, Any]]) -> str:
    return "\n\n".join(b["text"] for b in blocks if b["type"] == "text").strip()


def _one_line(text: str, limit: int = 300) -> str:
    line = " ".join(str(text).split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


# What to check when a cloud provider refuses the credentials (401 or 403).
CLOUD_REFUSED = {
    "bedrock": "check the AWS credentials and region, and that the account has access to the model",
    "vertex": "check the Google credentials, CLOUD_ML_REGION and the project's access to the model",
}


def describe_failure(exc: Exception, provider: str = "anthropic") -> tuple[str, str]:
    """(stopped_by, one line for the record) for an exception from the API call."""
    import anthropic

    name = type(exc).__name__
    if isinstance(exc, StreamFault):
        return "error", _one_line(str(exc))
    if isinstance(exc, anthropic.APIStatusError):
        rid = exc.request_id or exc.response.headers.get("x-amzn-requestid") or "none"
        msg = getattr(exc, "api_message", None) or exc.message
        refused = (anthropic.AuthenticationError, anthropic.PermissionDeniedError)
        if provider in CLOUD_REFUSED and isinstance(exc, refused):
            return "error", _one_line(
                f"the credentials were refused ({name}, status {exc.status_code}, request id "
                f"{rid}): {CLOUD_REFUSED[provider]}; the API said: {msg}"
            )
        if isinstance(exc, anthropic.AuthenticationError):
            return "error", _one_line(
                f"the API key was refused ({name}, status 401, request id {rid}): "
                f"check ANTHROPIC_API_KEY; the API said: {msg}"
            )
        low = str(msg).lower()
        if exc.status_code in (400, 413) and ("prompt is too long" in low or "context window" in low):
            return "context", _one_line(f"{name}: status {exc.status_code}, request id {rid}: {msg}")
        return "error", _one_line(f"{name}: status {exc.status_code}, request id {rid}: {msg}")
    if isinstance(exc, anthropic.APIConnectionError):
        return "error", _one_line(f"{name}: {exc} (no response; request id none)")
    return "error", _one_line(f"{name}: {exc}")


def _request_id(stream: Any) -> str:
    try:
        headers = stream.response.headers
        return str(headers.get("request-id") or headers.get("x-amzn-requestid") or "none")
    except Exception:  # noqa: BLE001 - asked while reporting a failure: a half-built stream must not replace it
        return "none"


def _stream_message(client: Any, params: dict[str, Any], timeout: float, box: dict[str, Any]) -> Any:
    """One streamed request; the final message only when the stream ended with `message_stop`.

    A stream cut short, even one the server closes cleanly, is a failure, never the end of the turn: the
    SDK would hand back whatever arrived, with no stop reason, as if the model had finished.
    """
    import anthropic  # late: see the module docstring

    with client.messages.stream(**params, timeout=timeout) as stream:
        box["stream"] = stream
        rid = _request_id(stream)
        kind = stream.response.headers.get("content-type", "")
        if not kind.startswith(STREAM_TYPES):
            raise StreamFault(
                f"the Messages API sent a body of type {kind or 'unknown'} where a stream was asked (request id {rid})"
            )
        stopped = False
        try:
            for event in stream:
                stopped = stopped or event.type == "message_stop"
        except (anthropic.APIError, OSError):
            raise
        except (ValueError, RuntimeError, LookupError, TypeError, AssertionError) as exc:
            # Only the SDK's parsing runs here: JSON or schema errors in an event's data, or events out of
            # order (a delta before message_start, an index with no block), which its accumulator rejects.
            raise StreamFault(
                _one_line(f"the Messages API sent a malformed stream event: {exc} (request id {rid})")
            ) from None
        if not stopped:
            raise StreamFault(
                f"the Messages API stream ended without message_stop (the connection was closed "
                f"mid-stream; request id {rid}): nothing from it was used"
            )
        return stream.get_final_message()


def _abandon(box: dict[str, Any], client: Any) -> None:
    """Close an in-flight request's stream and its client from another thread (best effort)."""
    for closer in (getattr(box.get("stream"), "close", None), getattr(client, "close", None)):
        if closer is not None:
            # Already closed, or closing races the reading thread: either way that thread ends.
            with contextlib.suppress(Exception):
                closer()


class AnthropicSession:
    """A `Session` (mdspec.agents.session) holding one conversation across start() and fix()."""

    def __init__(
        self,
        ctx: RunContext,
        client_factory: ClientFactory | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        bash_timeout: float = 120.0,
        shell_prefix: Sequence[str] = (),
    ) -> None:
        self.ctx = ctx
        self.client_factory = client_factory or functools.partial(make_client, provider=ctx.agent.provider)
        self.client: Any = None
        self.clock = clock
        self.system = [{"type": "text", "text": ctx.system_prompt, "cache_control": EPHEMERAL}]
        self.messages: list[dict[str, Any]] = []  # as sent, minus the moving cache breakpoint
        self.logged = 0  # messages[:logged] are already in the transcript
        self.turns = 0
        self.usage = Usage()
        self.last_prompt_tokens = 0  # the previous request's prompt plus its answer: the next prompt's prefix
        self.sent_messages = 0  # messages[:sent_messages] went out with the previous request
        self.spent = 0.0  # seconds spent inside earlier start()/fix() calls (not in the runner's checks)
        self.final_text = ""
        self.began: float | None = None  # when the current start()/fix() began
        self.model = ctx.agent.model
        self.price_known = True
        self.cost_unknown: str | None = None  # "no price for MODEL" once a turn could not be priced
        self.refusals: list[str] = []
        self.tools = Toolbox(ctx.worktree, ctx.protected, ctx.env, bash_timeout, shell_prefix)
        protect_environ()  # without a sandbox, a command could read the key from the worker's /proc entry
        secrets = [v for k in (*KEY_VARS, *SECRET_VARS) for v in (os.environ.get(k), ctx.env.get(k)) if v]
        self.transcript = Transcript(ctx.run_dir / "transcript.jsonl", secrets)

    # --- the Session interface ------------------------------------------------------------------------

    def start(self) -> BackendResult:
        return self._session(self.ctx.task_prompt)

    def fix(self, check_output: str) -> BackendResult:
        return self._session(FIX + check_output + "\n```\n")

    def _session(self, prompt: str) -> BackendResult:
        began = self.began = self.clock()
        self._add_user([{"type": "text", "text": prompt}])
        try:
            return self._loop(began)
        except KeyboardInterrupt:
            raise
        except Exception as exc:  # noqa: BLE001 - a bug here or in a callback: record it, end the session cleanly
            self.transcript.write("error", traceback=traceback.format_exc())
            return self._result("error", _one_line(f"internal error: {type(exc).__name__}: {exc}"))
        finally:
            self.spent += self.clock() - began
            self.tools.close()  # no shell outlives a call: the runner gives no other chance to stop it

    # --- the loop -------------------------------------------------------------------------------------

    def _loop(self, began: float) -> BackendResult:
        while True:
            limit = self._limit_reached(began)
            if limit:
                return self._result(*limit)
            try:
                response = self._send(began)
            except KeyboardInterrupt:
                raise
            except DeadlineReached as exc:
                self.transcript.write("error", error=str(exc), stopped_by="max_minutes")
                return self._result("max_minutes", str(exc))
            except Exception as exc:  # noqa: BLE001 - SDK, HTTP and cloud-auth errors alike end the session, with a record
                return self._failed(exc, began)
            done = self._take(response)
            if done is not None:
                return done

    def _take(self, response: Any) -> BackendResult | None:
        """Act on one response by its stop reason: the session's result when it ends here, else None."""
        content = self._account(response)
        reason = response.stop_reason
        if reason == "tool_use":
            self._answer_tools(content, cut=False)
        elif reason == "max_tokens":
            self._answer_tools(content, cut=True)
        elif reason == "pause_turn":
            if content:  # sent back as it is, the model carries on with its turn
                self._add_assistant(content)
        elif reason == "refusal":
            return self._result("refusal")
        elif reason == "model_context_window_exceeded":
            return self._result("context")
        else:  # end_turn, stop_sequence
            if content:
                self._add_assistant(content)
            self.final_text = _text_of(content)
            return self._result(None)
        return None

    def _answer_tools(self, content: list[dict[str, Any]], cut: bool) -> None:
        """Run the complete tool calls of `content` and append the results (and, if cut, a request to go on)."""
        dropped = content.pop() if cut and content and content[-1]["type"] == "tool_use" else None
        self._add_assistant(content or [{"type": "text", "text": "(cut off)"}])
        answer = [self._run_tool(b) for b in content if b["type"] == "tool_use"]
        if cut:
            note = CONTINUE + (CUT_TOOL.format(name=dropped["name"]) if dropped else "")
            answer.append({"type": "text", "text": note})
        elif not answer:
            answer.append({"type": "text", "text": "No tool call was found in your response; continue."})
        self._add_user(answer)

    def _limit_reached(self, began: float) -> tuple[str, str | None] | None:
        """(stopped_by, detail) when a limit stops the session before the next request, else None."""
        a = self.ctx.agent
        if self.turns >= a.max_turns:
            return "max_turns", None
        if self._elapsed(began) >= a.max_minutes * 60:
            return "max_minutes", None
        if a.price(self.model) is None:
            # An unpriced model's spending cannot be held to max_cost_usd: stop rather than run unbounded.
            return "max_cost_usd", (
                f"cost unknown (no price for {self.model}): max_cost_usd = ${a.max_cost_usd:g} "
                f"cannot be enforced; set {price_key(self.model)} in .mdspec.toml"
            )
        spent = self.usage.cost_usd
        if spent >= a.max_cost_usd:
            return "max_cost_usd", f"${spent:.4f} spent of max_cost_usd = ${a.max_cost_usd:g}"
        upto = self._next_cost()
        if spent + upto > a.max_cost_usd:
            return "max_cost_usd", (
                f"stopped before turn {self.turns + 1}: ${spent:.4f} spent, and the next request "
                f"could cost up to ${upto:.4f} (max_cost_usd = ${a.max_cost_usd:g})"
            )
        return None

    def _next_cost(self) -> float:
        """What the next request can cost at most, as far as it can be known before sending it: the previous
        request's prompt read from the cache, everything added since written to it, and max_tokens of output.
        (`_limit_reached` never gets here for an unpriced model.)"""
        price = self.ctx.agent.price(self.model)
        if price is None:
            return 0.0
        if self.last_prompt_tokens:
            new_chars = len(json.dumps(self.messages[self.sent_messages - 1 :], ensure_ascii=False))
        else:
            new_chars = len(json.dumps([TOOLS, self.system, self.messages], ensure_ascii=False))
        new_tokens = new_chars // CHARS_PER_TOKEN + 1
        return (
            self.last_prompt_tokens * price.cache_read
            + new_tokens * price.cache_write
            + self.ctx.agent.max_tokens * price.output
        ) / 1_000_000

    def _elapsed(self, began: float) -> float:
        return self.spent + self.clock() - began

    def _time_left(self) -> float:
        """Seconds before max_minutes, for the tools (the loop's own checks use `_elapsed`)."""
        began = self.began if self.began is not None else self.clock()
        return self.ctx.agent.max_minutes * 60 - self._elapsed(began)

    # --- one request ----------------------------------------------------------------------------------

    def _send(self, began: float) -> Any:
        params: dict[str, Any] = {
            "model": self.ctx.agent.model,
            "max_tokens": self.ctx.agent.max_tokens,
            "system": self.system,
            "tools": TOOLS,
            "messages": self._with_breakpoint(),
        }
        self.transcript.write(
            "request",
            turn=self.turns + 1,
            params={k: v for k, v in params.items() if k != "messages"},
            first_message=self.logged,
            messages=params["messages"][self.logged :],
        )
        self.logged = len(self.messages)
        self.sent_messages = len(self.messages)
        if self.client is None:
            self.client = self.client_factory()
        remaining = self.ctx.agent.max_minutes * 60 - self._elapsed(began)
        return self._call_with_deadline(params, remaining)

    def _call_with_deadline(self, params: dict[str, Any], remaining: float) -> Any:
        """The streamed response, or DeadlineReached once `remaining` seconds have passed, whatever the SDK
        does meanwhile (retry waits it takes from a `retry-after` header, a server that never answers, a
        stream of pings). The request runs in a thread the deadline abandons: its connection is closed and
        the client dropped, so the thread ends at its next read or retry."""
        client = self.client
        box: dict[str, Any] = {}
        done = threading.Event()
        # Each attempt's own timeout is bounded by the time left, so even an abandoned thread ends soon.
        timeout = max(1.0, min(REQUEST_TIMEOUT, remaining))

        def call() -> None:
            try:
                box["message"] = _stream_message(client, params, timeout, box)
            except BaseException as exc:  # noqa: BLE001 - whatever it is, the waiting thread re-raises it
                box["error"] = exc
            finally:
                done.set()

        worker = threading.Thread(target=call, name="mdspec-request", daemon=True)
        worker.start()
        try:
            finished = done.wait(min(max(0.0, remaining), threading.TIMEOUT_MAX))
        finally:
            if not done.is_set():  # the deadline, or a cancel arriving while waiting
                _abandon(box, client)
                self.client = None
        if not finished:
            minutes = self.ctx.agent.max_minutes
            raise DeadlineReached(
                f"the {minutes:g}-minute deadline (max_minutes) passed while waiting for the "
                "Messages API; the request was abandoned"
            )
        if "error" in box:
            raise box["error"]
        return box["message"]

    def _with_breakpoint(self) -> list[dict[str, Any]]:
        """The messages with one cache breakpoint, on the newest message's last cacheable block."""
        out = list(self.messages)
        last = out[-1]
        blocks = list(last["content"])
        for i in range(len(blocks) - 1, -1, -1):
            if blocks[i].get("type") not in UNCACHEABLE:
                blocks[i] = {**blocks[i], "cache_control": EPHEMERAL}
                out[-1] = {**last, "content": blocks}
                break
        return out

    def _account(self, response: Any) -> list[dict[str, Any]]:
        """Count the turn's usage and cost, log it, report progress; the content as request blocks."""
        self.turns += 1
        self.model = getattr(response, "model", None) or self.model
        u = response.usage
        turn = Usage(
            u.input_tokens or 0,
            u.output_tokens or 0,
            u.cache_creation_input_tokens or 0,
            u.cache_read_input_tokens or 0,
        )
        price = self.ctx.agent.price(self.model)
        self.price_known = self.price_known and price is not None
        if price is None and self.cost_unknown is None:
            self.cost_unknown = f"no price for {self.model}"
        cost = cost_of(turn, price)
        turn = replace(turn, cost_usd=cost or 0.0)
        self.usage = self.usage + turn
        self.last_prompt_tokens = turn.total_input + turn.output_tokens
        self.transcript.write(
            "response",
            turn=self.turns,
            message=response.model_dump(mode="json", exclude_none=True),
            usage=usage_dict(turn),
            cost_usd=cost,
            price_known=price is not None,
        )
        self.ctx.on_progress(
            {
                "event": "turn",
                "turn": self.turns,
                "stop_reason": response.stop_reason,
                "usage": usage_dict(self.usage),
                "cost_usd": self._cost(),
                "price_known": self.price_known,
                "cost_unknown": self.cost_unknown,
            }
        )
        return [p for p in (_as_param(b) for b in response.content) if p is not None]

    # --- tools and message bookkeeping ----------------------------------------------------------------

    def _run_tool(self, block: dict[str, Any]) -> dict[str, Any]:
        name, args = block["name"], block.get("input")
        self.transcript.write("tool_call", id=block["id"], name=name, input=args)
        result = self.tools.call(name, args, time_left=self._time_left())
        # A command that found the key (no sandbox, running as root) must not show it to the model either:
        # the model could write it into the code or its answer.
        text = result.text
        for secret in self.transcript.secrets:
            text = text.replace(secret, "[redacted]")
        result = replace(result, text=text)
        self.transcript.write("tool_result", id=block["id"], is_error=result.is_error, content=result.text)
        what = summary(name, args) if isinstance(args, Mapping) else ""
        if result.refused:
            self.refusals.append(_one_line(f"{name} {what}: {result.text}", 200))
        self.ctx.on_progress({"event": "tool", "name": name, "summary": what, "is_error": result.is_error})
        out = {"type": "tool_result", "tool_use_id": block["id"], "content": result.text or "(no output)"}
        return {**out, "is_error": True} if result.is_error else out

    def _add_assistant(self, content: list[dict[str, Any]]) -> None:
        self.messages.append({"role": "assistant", "content": content})

    def _add_user(self, content: list[dict[str, Any]]) -> None:
        """Append a user message, or extend the last one when it is already the user's (keeps roles alternating)."""
        if self.messages and self.messages[-1]["role"] == "user":
            self.messages[-1] = {"role": "user", "content": [*self.messages[-1]["content"], *content]}
            self.logged = min(self.logged, len(self.messages) - 1)  # log the changed message again
        else:
            self.messages.append({"role": "user", "content": content})

    # --- endings --------------------------------------------------------------------------------------

    def _failed(self, exc: Exception, began: float) -> BackendResult:
        stopped_by, line = describe_failure(exc, self.ctx.agent.provider)
        self.transcript.write("error", error=line, stopped_by=stopped_by)
        if self._elapsed(began) >= self.ctx.agent.max_minutes * 60:
            return self._result("max_minutes", line)  # a request cut short by the time limit
        return self._result(stopped_by, line)

    def _result(self, stopped_by: str | None, error: str | None = None) -> BackendResult:
        self.transcript.write(
            "result",
            stopped_by=stopped_by,
            error=error,
            turns=self.turns,
            usage=usage_dict(self.usage),
            cost_usd=self._cost(),
            price_known=self.price_known,
            final_text=self.final_text,
        )
        return BackendResult(
            self.final_text,
            self.turns,
            self.usage,
            stopped_by,
            error,
            tuple(self.refusals),
            self.model,
            self.cost_unknown,
        )

    def _cost(self) -> float | None:
        """The session's dollars so far, None once any turn could not be priced."""
        return None if self.cost_unknown else round(self.usage.cost_usd, 6)
