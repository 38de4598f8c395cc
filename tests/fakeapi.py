"""A fake Anthropic Messages API on 127.0.0.1 for driving the real SDK in tests and benchmarks.

It speaks the wire format: `POST /v1/messages` answered with JSON, or with server-sent events when the
body has `"stream": true`; errors carry their real status, the `{"type": "error", "error": {...}}` body, a
`request-id` header and, when scripted, `retry-after-ms`. Tests script it with a queue of replies and
failures and read back every request it received.

Usage imitates the prompt cache: a request's input is cut into units (each tool, each system block, each
message content block), tokens are about a quarter of the characters of each unit's canonical JSON, and a
block carrying `cache_control` writes the prefix that ends with it. A later request reads the longest
written prefix that ends at one of the 20 block boundaries at or before one of its own breakpoints, as the
real cache looks back. Like the real API it also rejects a few malformed requests (a tool_use without its
tool_result, more than 4 breakpoints, empty text blocks), so a bookkeeping bug in the loop shows up here.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import socket
import threading
import time
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

FAKE_KEY = "sk-ant-fake-0123456789-DO-NOT-LEAK-q7Zx"
LOOKBACK = 20  # block boundaries the cache checks before each breakpoint
ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    529: "overloaded_error",
}


@dataclass
class Reply:
    content: list[dict[str, Any]]  # text {"type","text"} or tool_use {"type","name","input"} (or "partial_json")
    stop_reason: str = "end_turn"


@dataclass
class Failure:
    status: int
    message: str
    error_type: str
    retry_after_ms: int | None = None
    retry_after: int | None = None  # seconds, the `retry-after` header


@dataclass
class Drop:
    """A streamed reply whose connection is closed after `keep` of its bytes (a network cut mid-stream)."""

    reply: Reply
    keep: float = 0.5


@dataclass
class Truncated:
    """A streamed reply that ends cleanly (chunked encoding, final empty chunk) after its first `events`
    events (negative: all but the last -events): no `message_stop`, as when a proxy ends the response early."""

    reply: Reply
    events: int


@dataclass
class Malformed:
    """A streamed reply whose `bad`-th event carries data that is not JSON."""

    reply: Reply
    bad: int = 3


@dataclass
class JsonBody:
    """A reply sent as one JSON body although the request asked for a stream."""

    reply: Reply


@dataclass
class Pings:
    """Stream headers, then only `ping` events every `every` seconds, for up to `seconds` (or until the
    client goes away or the server closes)."""

    seconds: float = 120.0
    every: float = 0.2


@dataclass
class Silent:
    """Read the request and never answer, not even the headers, for up to `seconds`."""

    seconds: float = 120.0


Scripted = Reply | Failure | Drop | Truncated | Malformed | JsonBody | Pings | Silent


@dataclass
class Answer:
    """What the handler sends: a whole body (cut short after `cut` bytes when set), or `chunks` in chunked
    transfer encoding, or nothing at all for `silent` seconds."""

    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    payload: bytes = b""
    cut: int | None = None
    chunks: Iterable[bytes] | None = None
    silent: float | None = None


@dataclass
class Recorded:
    headers: dict[str, str]
    body: dict[str, Any]
    status: int = 200
    usage: dict[str, int] = field(default_factory=dict)


def _canon(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _tokens(chars: int) -> int:
    return (chars + 3) // 4


def _units(body: dict[str, Any]) -> list[tuple[str, bool]]:
    """Each cacheable unit of the prompt, in cache order (tools, system, messages), as canonical JSON
    without cache_control, and whether it carries a breakpoint."""
    out: list[tuple[str, bool]] = []

    def add(prefix: str, block: dict[str, Any]) -> None:
        bare = {k: v for k, v in block.items() if k != "cache_control"}
        out.append((prefix + _canon(bare), "cache_control" in block))

    for tool in body.get("tools") or []:
        add("tool:", tool)
    system = body.get("system") or []
    for block in [{"type": "text", "text": system}] if isinstance(system, str) else system:
        add("system:", block)
    for msg in body.get("messages") or []:
        content = msg.get("content")
        blocks = [{"type": "text", "text": content}] if isinstance(content, str) else content
        for i, block in enumerate(blocks):
            add(f"{msg.get('role')}:" if i == 0 else "", block)
    return out


class PromptCache:
    def __init__(self) -> None:
        self.written: dict[str, int] = {}  # prefix hash -> its tokens

    def bill(self, body: dict[str, Any]) -> dict[str, int]:
        units = _units(body)
        hashes, tokens = [""], [0]
        chars = 0
        for text, _ in units:
            chars += len(text)
            hashes.append(hashlib.sha256((hashes[-1] + "\x00" + text).encode()).hexdigest())
            tokens.append(_tokens(chars))
        breakpoints = [i + 1 for i, (_, bp) in enumerate(units) if bp]
        read = 0
        for b in breakpoints:
            for j in range(b, max(0, b - LOOKBACK), -1):
                if hashes[j] in self.written:
                    read = max(read, tokens[j])
                    break
        last = tokens[breakpoints[-1]] if breakpoints else 0
        for b in breakpoints:
            self.written[hashes[b]] = tokens[b]
        created = max(0, last - read)
        return {
            "input_tokens": tokens[-1] - max(read, last),
            "cache_creation_input_tokens": created,
            "cache_read_input_tokens": read,
        }


def _invalid(body: dict[str, Any]) -> str | None:
    """What the real API would reject in this request, if anything (a few checks that catch loop bugs)."""
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return "messages: at least one message is required"
    if messages[0].get("role") != "user":
        return "messages: first message must use the \"user\" role"
    breakpoints = sum(bp for _, bp in _units(body))
    if breakpoints > 4:
        return f"A maximum of 4 blocks with cache_control may be provided. Found {breakpoints}."
    for n, msg in enumerate(messages):
        content = msg.get("content")
        if isinstance(content, list):
            for block in content:
                if block.get("type") == "text" and not block.get("text"):
                    return f"messages.{n}: text content blocks must be non-empty"
        if msg.get("role") == "assistant" and isinstance(content, list):
            ids = [b["id"] for b in content if b.get("type") == "tool_use"]
            if not ids:
                continue
            nxt = messages[n + 1] if n + 1 < len(messages) else None
            got = {b.get("tool_use_id") for b in (nxt or {}).get("content", []) if isinstance(b, dict)
                   and b.get("type") == "tool_result"} if nxt and isinstance(nxt.get("content"), list) else set()
            missing = [i for i in ids if i not in got]
            if missing:
                return (f"messages.{n + 1}: `tool_use` ids were found without `tool_result` blocks immediately "
                        f"after: {', '.join(missing)}. Each `tool_use` block must have a corresponding "
                        "`tool_result` block in the next message.")
    return None


class FakeAPI:
    """The server; script it with `reply`/`text`/`tool`/`error`, read `requests` afterwards."""

    def __init__(self, api_key: str = FAKE_KEY) -> None:
        self.api_key = api_key
        self.script: deque[Scripted] = deque()
        self.closed = threading.Event()  # ends the handlers that stall (Pings, Silent)
        self.requests: list[Recorded] = []
        self.cache = PromptCache()
        self.lock = threading.Lock()
        self._ids = 0
        # GET /v1/models lists these (newest first, as the real API does), `models_page` to a page.
        self.models = ["claude-opus-5-5", "claude-sonnet-5-5", "claude-haiku-5-5", "claude-sonnet-4-5-20250929"]
        self.models_page = 2
        self.model_lists = 0  # GET /v1/models requests answered
        self.response_model: str | None = None  # the `model` a reply names (default: the one requested)
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), name="fake-anthropic",
                                       daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> FakeAPI:
        self.thread.start()
        return self

    def close(self) -> None:
        self.closed.set()
        self.server.shutdown()
        self.server.server_close()

    # --- scripting ------------------------------------------------------------------------------------

    def reply(self, *blocks: dict[str, Any] | str, stop_reason: str | None = None) -> None:
        """Queue a reply; strings are text blocks. The stop reason defaults to tool_use when there is one."""
        content = [{"type": "text", "text": b} if isinstance(b, str) else b for b in blocks]
        if stop_reason is None:
            stop_reason = "tool_use" if any(b["type"] == "tool_use" for b in content) else "end_turn"
        self.script.append(Reply(content, stop_reason))

    def text(self, text: str, stop_reason: str = "end_turn") -> None:
        self.reply(text, stop_reason=stop_reason)

    def tool(self, name: str, text: str | None = None, **tool_input: Any) -> None:
        """Queue one tool call: `tool("bash", command="ls")`, `tool("str_replace_based_edit_tool", ...)`."""
        block = {"type": "tool_use", "name": name, "input": tool_input}
        self.reply(*([text] if text else []), block)

    def edit(self, command: str, path: str, **kw: Any) -> None:
        self.tool("str_replace_based_edit_tool", command=command, path=path, **kw)

    def bash(self, command: str) -> None:
        self.tool("bash", command=command)

    def error(self, status: int, message: str | None = None, retry_after_ms: int | None = None,
              error_type: str | None = None, retry_after: int | None = None) -> None:
        etype = error_type or ERROR_TYPES.get(status, "api_error")
        self.script.append(Failure(status, message or f"fake {etype}", etype, retry_after_ms, retry_after))

    def _last_reply(self, blocks: tuple[dict[str, Any] | str, ...]) -> Reply:
        self.reply(*blocks)
        last = self.script.pop()
        assert isinstance(last, Reply)
        return last

    def truncate(self, *blocks: dict[str, Any] | str, events: int = 4) -> None:
        """Queue a streamed reply that ends cleanly after `events` events, without `message_stop`."""
        self.script.append(Truncated(self._last_reply(blocks), events))

    def malformed(self, *blocks: dict[str, Any] | str, bad: int = 3) -> None:
        """Queue a streamed reply whose `bad`-th event's data is not JSON."""
        self.script.append(Malformed(self._last_reply(blocks), bad))

    def json_body(self, *blocks: dict[str, Any] | str) -> None:
        """Queue a reply sent as a JSON body even to a request that asked for a stream."""
        self.script.append(JsonBody(self._last_reply(blocks)))

    def pings(self, seconds: float = 120.0) -> None:
        self.script.append(Pings(seconds))

    def silent(self, seconds: float = 120.0) -> None:
        self.script.append(Silent(seconds))

    def drop(self, *blocks: dict[str, Any] | str, keep: float = 0.5) -> None:
        """Queue a streamed reply cut off after `keep` of its bytes: the server closes the connection."""
        self.script.append(Drop(self._last_reply(blocks), keep))

    # --- serving --------------------------------------------------------------------------------------

    def _next_id(self, prefix: str) -> str:
        self._ids += 1
        return f"{prefix}_fake{self._ids:05d}"

    def handle(self, headers: dict[str, str], body: dict[str, Any]) -> Answer:
        with self.lock:
            rec = Recorded(headers, body)
            self.requests.append(rec)
            request_id = self._next_id("req")
            hdrs = {"request-id": request_id}
            problem: Failure | None = None
            item: Scripted | None = None
            key = headers.get("x-api-key") or headers.get("authorization", "").removeprefix("Bearer ")
            if key != self.api_key:
                problem = Failure(401, "invalid x-api-key", "authentication_error")
            elif (bad := _invalid(body)) is not None:
                problem = Failure(400, bad, "invalid_request_error")
            elif not self.script:
                problem = Failure(400, "fake API: no scripted response left", "invalid_request_error")
            else:
                item = self.script.popleft()
                if isinstance(item, Failure):
                    problem = item
            if problem is not None:
                rec.status = problem.status
                if problem.retry_after_ms is not None:
                    hdrs["retry-after-ms"] = str(problem.retry_after_ms)
                if problem.retry_after is not None:
                    hdrs["retry-after"] = str(problem.retry_after)
                err = {"type": "error", "error": {"type": problem.error_type, "message": problem.message},
                       "request_id": request_id}
                return Answer(problem.status, {**hdrs, "content-type": "application/json"}, json.dumps(err).encode())
            if isinstance(item, Silent):
                return Answer(silent=item.seconds)
            sse_headers = {**hdrs, "content-type": "text/event-stream", "cache-control": "no-cache"}
            if isinstance(item, Pings):
                return Answer(200, sse_headers, chunks=self._pings(item))
            reply = item.reply if isinstance(item, (Drop, Truncated, Malformed, JsonBody)) else item
            assert isinstance(reply, Reply)
            message, content = self._message(body, reply, rec)
            if body.get("stream") and not isinstance(item, JsonBody):
                events = _events(message, content)
                if isinstance(item, Truncated):
                    return Answer(200, sse_headers, chunks=[_sse_bytes(e) for e in events[: item.events]])
                if isinstance(item, Malformed):
                    chunks = [_sse_bytes(e) for e in events]
                    chunks[item.bad] = f"event: {events[item.bad][0]}\ndata: {{\"type\": \"content_bl\n\n".encode()
                    return Answer(200, sse_headers, chunks=chunks)
                sse = b"".join(_sse_bytes(e) for e in events)
                cut = int(len(sse) * item.keep) if isinstance(item, Drop) else None
                return Answer(200, sse_headers, sse, cut)
            payload = json.dumps(message).encode()
            cut = int(len(payload) * item.keep) if isinstance(item, Drop) else None
            return Answer(200, {**hdrs, "content-type": "application/json"}, payload, cut)

    def _message(self, body: dict[str, Any], item: Reply, rec: Recorded) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        usage = self.cache.bill(body)
        content = []
        for block in item.content:
            b = dict(block)
            if b["type"] == "tool_use":
                b.setdefault("id", self._next_id("toolu"))
                b.setdefault("input", {})
            content.append(b)
        usage["output_tokens"] = max(1, _tokens(len(_canon(content))))
        rec.usage = usage
        message = {
            "id": self._next_id("msg"),
            "type": "message",
            "role": "assistant",
            "model": self.response_model or body.get("model", "claude-sonnet-4-5"),
            "content": [{k: v for k, v in b.items() if k != "partial_json"} for b in content],
            "stop_reason": item.stop_reason,
            "stop_sequence": None,
            "usage": usage,
        }
        return message, content

    def models_list(self, params: dict[str, str]) -> dict[str, Any]:
        """One page of the model list in the wire format: data, has_more, first_id, last_id; `after_id`
        continues after an id."""
        ids = list(self.models)
        if params.get("after_id") in ids:
            ids = ids[ids.index(params["after_id"]) + 1 :]
        page = ids[: min(self.models_page, int(params.get("limit") or 20))]
        data = [{"type": "model", "id": m, "display_name": m.replace("-", " ").title(),
                 "created_at": "2026-06-01T00:00:00Z", "lifecycle": "active"} for m in page]
        return {"data": data, "has_more": len(ids) > len(page), "first_id": page[0] if page else None,
                "last_id": page[-1] if page else None}

    def _pings(self, item: Pings) -> Iterator[bytes]:
        end = time.monotonic() + item.seconds
        while time.monotonic() < end and not self.closed.is_set():
            yield _sse_bytes(("ping", {"type": "ping"}))
            self.closed.wait(item.every)


def _chunks(text: str, size: int = 40) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size)] or [""]


def _events(message: dict[str, Any], content: list[dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    """The event stream for `message`: start, each block as start/deltas/stop, delta with usage, stop."""
    events: list[tuple[str, dict[str, Any]]] = []
    usage = message["usage"]
    start = {**message, "content": [], "stop_reason": None, "usage": {**usage, "output_tokens": 1}}
    events.append(("message_start", {"type": "message_start", "message": start}))
    events.append(("ping", {"type": "ping"}))
    for i, block in enumerate(content):
        if block["type"] == "text":
            events.append(("content_block_start", {"type": "content_block_start", "index": i,
                                                   "content_block": {"type": "text", "text": ""}}))
            for piece in _chunks(block["text"]):
                events.append(("content_block_delta", {"type": "content_block_delta", "index": i,
                                                       "delta": {"type": "text_delta", "text": piece}}))
        else:
            raw = block.get("partial_json", json.dumps(block.get("input", {})))
            head = {"type": "tool_use", "id": block["id"], "name": block["name"], "input": {}}
            events.append(("content_block_start", {"type": "content_block_start", "index": i, "content_block": head}))
            for piece in _chunks(raw):
                events.append(("content_block_delta", {"type": "content_block_delta", "index": i,
                                                       "delta": {"type": "input_json_delta", "partial_json": piece}}))
        events.append(("content_block_stop", {"type": "content_block_stop", "index": i}))
    events.append(("message_delta", {"type": "message_delta",
                                     "delta": {"stop_reason": message["stop_reason"], "stop_sequence": None},
                                     "usage": {"output_tokens": usage["output_tokens"]}}))
    events.append(("message_stop", {"type": "message_stop"}))
    return events


def _sse_bytes(event: tuple[str, dict[str, Any]]) -> bytes:
    name, data = event
    return f"event: {name}\ndata: {json.dumps(data)}\n\n".encode()


def _handler(api: FakeAPI) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # quiet test output
            pass

        def do_GET(self) -> None:
            path, _, query = self.path.partition("?")
            headers = {k.lower(): v for k, v in self.headers.items()}
            key = headers.get("x-api-key") or headers.get("authorization", "").removeprefix("Bearer ")
            if path != "/v1/models":
                status, body = 404, {"type": "error", "error": {"type": "not_found_error", "message": "not found"}}
            elif key != api.api_key:
                status, body = 401, {"type": "error", "error": {"type": "authentication_error",
                                                                "message": "invalid x-api-key"}}
            else:
                status, body = 200, api.models_list(dict(p.partition("=")[::2] for p in query.split("&") if p))
            with api.lock:
                api.model_lists += 1
            self._send(status, {"content-type": "application/json", "request-id": "req_fakemodels"},
                       json.dumps(body).encode(), None)

        def do_POST(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            raw = self.rfile.read(length)
            if self.path.split("?")[0] != "/v1/messages":
                self._send(404, {"content-type": "application/json"},
                           b'{"type":"error","error":{"type":"not_found_error","message":"not found"}}', None)
                return
            try:
                body = json.loads(raw)
            except ValueError:
                self._send(400, {"content-type": "application/json"},
                           b'{"type":"error","error":{"type":"invalid_request_error","message":"bad JSON"}}', None)
                return
            headers = {k.lower(): v for k, v in self.headers.items()}
            self._answer(api.handle(headers, body))

        def _send(self, status: int, headers: dict[str, str], payload: bytes, cut: int | None) -> None:
            self._answer(Answer(status, headers, payload, cut))

        def _answer(self, a: Answer) -> None:
            if a.silent is not None:  # the client waits for headers that never come
                api.closed.wait(a.silent)
                self.close_connection = True
                return
            self.send_response(a.status)
            for k, v in a.headers.items():
                self.send_header(k, v)
            if a.chunks is not None:
                self._chunked(a.chunks)
                return
            self.send_header("content-length", str(len(a.payload)))
            self.end_headers()
            if a.cut is None:
                self.wfile.write(a.payload)
                return
            # The promised length never arrives: the client sees the connection close mid-body.
            self.wfile.write(a.payload[: a.cut])
            self.wfile.flush()
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)

        def _chunked(self, chunks: Iterable[bytes]) -> None:
            """Chunked transfer encoding, as the real API streams; the final empty chunk ends it cleanly."""
            self.send_header("transfer-encoding", "chunked")
            self.end_headers()
            try:
                for chunk in chunks:
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                    self.wfile.flush()
                self.wfile.write(b"0\r\n\r\n")
                self.wfile.flush()
            except OSError:  # the client went away (closed at its deadline)
                self.close_connection = True

    return Handler


@pytest.fixture
def fake_api(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeAPI]:
    """A started FakeAPI with ANTHROPIC_BASE_URL and a fake ANTHROPIC_API_KEY pointing the SDK at it."""
    api = FakeAPI().start()
    monkeypatch.setenv("ANTHROPIC_BASE_URL", api.base_url)
    monkeypatch.setenv("ANTHROPIC_API_KEY", FAKE_KEY)
    monkeypatch.delenv("ANTHROPIC_AUTH_TOKEN", raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")  # a proxy in the environment must not see it
    try:
        yield api
    finally:
        api.close()
