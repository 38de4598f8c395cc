"""A fake Anthropic Messages API on 127.0.0.1 for driving the real SDK in tests and benchmarks.

It speaks the wire format: `POST /v1/messages` answered with JSON, or with server-sent events when the
body has `"stream": true`; and the same Messages API as Amazon Bedrock and Google Vertex AI serve it (see
"cloud providers" below: their paths, their authentication, Bedrock's binary event stream). Errors carry
their real status, the `{"type": "error", "error": {...}}` body, a
`request-id` header and, when scripted, `retry-after-ms`. Tests script it with a queue of replies and
failures and read back every request it received.

Usage imitates the prompt cache: a request's input is cut into units (each tool, each system block, each
message content block), tokens are about a quarter of the characters of each unit's canonical JSON, and a
block carrying `cache_control` writes the prefix that ends with it. A later request reads the longest
written prefix that ends at one of the 20 block boundaries at or before one of its own breakpoints, as the
real cache looks back. Like the real API it also rejects a few malformed requests (a tool_use without its
tool_result, more than 4 breakpoints, empty text blocks), so a bookkeeping bug in the loop shows up here.

For an external client that declares its own tools (Claude Code), `FakeAPI(check_tools=True)` checks each
scripted tool call against the request's `tools` — the name declared, the input valid for its
`input_schema` — and answers a scripted call that is not with an error naming what is wrong, so a test's
script cannot drift from what the client really offers the model. `HEAD` (a client's connectivity probe)
is answered with an empty 200.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import re
import socket
import struct
import threading
import time
import urllib.parse
import zlib
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

FAKE_KEY = "sk-ant-fake-0123456789-DO-NOT-LEAK-q7Zx"
AWS_KEY_ID = "AKIAFAKE0123456789QZ"
AWS_SECRET = "fake/aws+Secret0123456789-DO-NOT-LEAK-b3Kp"
VERTEX_TOKEN = "ya29.fake-vertex-token-0123456789-DO-NOT-LEAK"
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
    path: str = "/v1/messages"
    provider: str = "anthropic"


@dataclass(frozen=True)
class Route:
    """Which API a request came in through: the model and streaming come from the path on Bedrock, and
    `auth_error` is the cloud's own refusal of its credentials (checked by the handler, which has the raw
    request)."""

    provider: str = "anthropic"
    path: str = "/v1/messages"
    model: str | None = None
    stream: bool | None = None
    auth_error: str | None = None


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


_JSON_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "array": (list,),
    "object": (dict,),
    "null": (type(None),),
}


def _schema_problem(schema: dict[str, Any], value: Any, where: str) -> str | None:
    """Why `value` does not fit the JSON schema (the subset tool schemas use: type, enum, properties,
    required, additionalProperties, items), or None."""
    types = schema.get("type")
    if types is not None:
        names = [types] if isinstance(types, str) else list(types)
        ok = any(
            isinstance(value, _JSON_TYPES.get(t, ())) and not (t in ("integer", "number") and isinstance(value, bool))
            for t in names
        )
        if not ok:
            return f"{where}: expected {'/'.join(names)}, got {type(value).__name__}"
    if "enum" in schema and value not in schema["enum"]:
        return f"{where}: {value!r} is not one of {schema['enum']}"
    if isinstance(value, dict):
        props = schema.get("properties") or {}
        for key in schema.get("required") or []:
            if key not in value:
                return f"{where}: missing required {key!r}"
        for key, v in value.items():
            if key in props:
                if (bad := _schema_problem(props[key], v, f"{where}.{key}")) is not None:
                    return bad
            elif schema.get("additionalProperties") is False:
                return f"{where}: {key!r} is not a declared property (declared: {', '.join(props)})"
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        for i, v in enumerate(value):
            if (bad := _schema_problem(schema["items"], v, f"{where}[{i}]")) is not None:
                return bad
    return None


def _undeclared_tool_use(body: dict[str, Any], reply: Reply) -> str | None:
    """Why a scripted tool call is not one the request offers the model, or None."""
    declared = {t.get("name"): t for t in body.get("tools") or [] if isinstance(t, dict)}
    for block in reply.content:
        if block.get("type") != "tool_use":
            continue
        tool = declared.get(block["name"])
        if tool is None:
            return (
                f"fake API: scripted tool_use {block['name']!r} is not among the request's tools "
                f"({', '.join(sorted(str(n) for n in declared))})"
            )
        schema = tool.get("input_schema")
        if isinstance(schema, dict):
            bad = _schema_problem(schema, block.get("input", {}), f"{block['name']} input")
            if bad is not None:
                return f"fake API: scripted tool_use does not fit the declared schema: {bad}"
    return None


def _invalid(body: dict[str, Any]) -> str | None:
    """What the real API would reject in this request, if anything (a few checks that catch loop bugs)."""
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return "messages: at least one message is required"
    if messages[0].get("role") != "user":
        return 'messages: first message must use the "user" role'
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
            got = (
                {
                    b.get("tool_use_id")
                    for b in (nxt or {}).get("content", [])
                    if isinstance(b, dict) and b.get("type") == "tool_result"
                }
                if nxt and isinstance(nxt.get("content"), list)
                else set()
            )
            missing = [i for i in ids if i not in got]
            if missing:
                return (
                    f"messages.{n + 1}: `tool_use` ids were found without `tool_result` blocks immediately "
                    f"after: {', '.join(missing)}. Each `tool_use` block must have a corresponding "
                    "`tool_result` block in the next message."
                )
    return None


class FakeAPI:
    """The server; script it with `reply`/`text`/`tool`/`error`, read `requests` afterwards."""

    def __init__(self, api_key: str = FAKE_KEY, check_tools: bool = False) -> None:
        self.api_key = api_key
        self.check_tools = check_tools
        self.script: deque[Scripted] = deque()
        self.closed = threading.Event()  # ends the handlers that stall (Pings, Silent)
        self.requests: list[Recorded] = []
        self.cache = PromptCache()
        self.lock = threading.Lock()
        self._ids = 0
        self.service_account: ServiceAccount | None = None
        self.token_requests = 0
        # GET /v1/models lists these (newest first, as the real API does), `models_page` to a page.
        self.models = ["claude-opus-5-5", "claude-sonnet-5-5", "claude-haiku-5-5", "claude-sonnet-4-5-20250929"]
        self.models_page = 2
        self.model_lists = 0  # GET /v1/models requests answered
        self.response_model: str | None = None  # the `model` a reply names (default: the one requested)
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.server.daemon_threads = True
        self.thread = threading.Thread(
            target=self.server.serve_forever, args=(0.05,), name="fake-anthropic", daemon=True
        )

    @property
    def base_url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}"

    def service_account_info(self, project: str = "fake-project") -> dict[str, str]:
        """A service account key file's contents whose token endpoint is this server's /token."""
        if self.service_account is None:
            self.service_account = ServiceAccount()
        return self.service_account.info(f"{self.base_url}/token", project)

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

    def error(
        self,
        status: int,
        message: str | None = None,
        retry_after_ms: int | None = None,
        error_type: str | None = None,
        retry_after: int | None = None,
    ) -> None:
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

    def handle(self, headers: dict[str, str], body: dict[str, Any], route: Route | None = None) -> Answer:
        route = route or Route()
        with self.lock:
            rec = Recorded(headers, body, path=route.path, provider=route.provider)
            self.requests.append(rec)
            request_id = self._next_id("req")
            hdrs = {"x-amzn-requestid": request_id} if route.provider == "bedrock" else {"request-id": request_id}
            problem: Failure | None = None
            item: Scripted | None = None
            key = headers.get("x-api-key") or headers.get("authorization", "").removeprefix("Bearer ")
            if route.provider == "bedrock" and route.auth_error:
                problem = Failure(403, route.auth_error, "InvalidSignatureException")
            elif route.provider == "vertex" and key != VERTEX_TOKEN:
                problem = Failure(401, "Request had invalid authentication credentials.", "UNAUTHENTICATED")
            elif route.provider == "anthropic" and key != self.api_key:
                problem = Failure(401, "invalid x-api-key", "authentication_error")
            elif (bad := _platform_invalid(route, body) or _invalid(body)) is not None:
                problem = Failure(400, bad, "invalid_request_error")
            elif not self.script:
                problem = Failure(400, "fake API: no scripted response left", "invalid_request_error")
            else:
                item = self.script.popleft()
                if isinstance(item, Failure):
                    problem = item
                elif self.check_tools and isinstance(item, Reply) and (bad := _undeclared_tool_use(body, item)):
                    problem = Failure(400, bad, "invalid_request_error")
            if problem is not None:
                rec.status = problem.status
                if problem.retry_after_ms is not None:
                    hdrs["retry-after-ms"] = str(problem.retry_after_ms)
                if problem.retry_after is not None:
                    hdrs["retry-after"] = str(problem.retry_after)
                return _error_answer(route, problem, hdrs, request_id)
            if isinstance(item, Silent):
                return Answer(silent=item.seconds)
            sse_headers = {**hdrs, "content-type": "text/event-stream", "cache-control": "no-cache"}
            if isinstance(item, Pings):
                return Answer(200, sse_headers, chunks=self._pings(item))
            reply = item.reply if isinstance(item, (Drop, Truncated, Malformed, JsonBody)) else item
            assert isinstance(reply, Reply)
            message, content = self._message({**body, "model": route.model or body.get("model")}, reply, rec)
            stream = body.get("stream") if route.stream is None else route.stream
            if stream and route.provider == "bedrock" and not isinstance(item, JsonBody):
                frames = [_chunk_frame(data) for _, data in _events(message, content)]
                if isinstance(item, Truncated):
                    frames = frames[: item.events]
                es_headers = {**hdrs, "content-type": EVENTSTREAM, "x-amzn-bedrock-content-type": "application/json"}
                if isinstance(item, Drop):
                    raw = b"".join(frames)
                    return Answer(200, es_headers, raw, int(len(raw) * item.keep))
                return Answer(200, es_headers, chunks=frames)
            if stream and not isinstance(item, JsonBody):
                events = _events(message, content)
                if isinstance(item, Truncated):
                    return Answer(200, sse_headers, chunks=[_sse_bytes(e) for e in events[: item.events]])
                if isinstance(item, Malformed):
                    chunks = [_sse_bytes(e) for e in events]
                    chunks[item.bad] = f'event: {events[item.bad][0]}\ndata: {{"type": "content_bl\n\n'.encode()
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
        data = [
            {
                "type": "model",
                "id": m,
                "display_name": m.replace("-", " ").title(),
                "created_at": "2026-06-01T00:00:00Z",
                "lifecycle": "active",
            }
            for m in page
        ]
        return {
            "data": data,
            "has_more": len(ids) > len(page),
            "first_id": page[0] if page else None,
            "last_id": page[-1] if page else None,
        }

    def _pings(self, item: Pings) -> Iterator[bytes]:
        end = time.monotonic() + item.seconds
        while time.monotonic() < end and not self.closed.is_set():
            yield _sse_bytes(("ping", {"type": "ping"}))
            self.closed.wait(item.every)


# --- cloud providers -----------------------------------------------------------------------------------
#
# Vertex AI: POST [/v1]/projects/{project}/locations/{region}/publishers/anthropic/models/{model}:rawPredict
# (or :streamRawPredict, answered with the same server-sent events), `Authorization: Bearer <token>`, the
# body without `model` and with `anthropic_version`. The token comes from Google's OAuth token endpoint,
# imitated at POST /token for a service account whose key `service_account_info` hands out.
#
# Bedrock: POST /model/{model}/invoke (or /invoke-with-response-stream), signed with AWS Signature V4
# (verified here against AWS_SECRET), the body without `model` and `stream`. The stream is AWS's binary
# event stream: one frame per event, each a `chunk` whose JSON payload carries the event's JSON in base64.

EVENTSTREAM = "application/vnd.amazon.eventstream"
VERTEX_PATH = re.compile(
    r"^(?:/v1)?/projects/([^/]+)/locations/([^/]+)/publishers/anthropic/models/([^/:]+)"
    r":(rawPredict|streamRawPredict)$"
)
BEDROCK_PATH = re.compile(r"^/model/([^/]+)/(invoke|invoke-with-response-stream)$")


def _platform_invalid(route: Route, body: dict[str, Any]) -> str | None:
    """What Bedrock or Vertex AI would reject in a body the SDK prepared for them."""
    if route.provider == "anthropic":
        return None
    if not isinstance(body.get("anthropic_version"), str) or not body["anthropic_version"]:
        return "anthropic_version: field required"
    if "model" in body:
        return "model: the model is named in the path, not in the body"
    if route.provider == "bedrock" and "stream" in body:
        return "#: extraneous key [stream] is not permitted"
    if route.provider == "vertex" and bool(body.get("stream")) != bool(route.stream):
        return "stream: streamRawPredict is for streamed requests, rawPredict for the others"
    return None


def _error_answer(route: Route, problem: Failure, hdrs: dict[str, str], request_id: str) -> Answer:
    """An error in the provider's own format."""
    if route.provider == "bedrock":  # AWS's JSON protocol: the type in a header, the body a bare message
        hdrs = {
            **hdrs,
            "x-amzn-errortype": f"{problem.error_type}:http://internal.amazon.com/coral/com.amazon.bedrock/",
        }
        payload: dict[str, Any] = {"message": problem.message}
    elif route.provider == "vertex" and problem.status == 401:  # Google's own refusal, before the model
        payload = {"error": {"code": 401, "message": problem.message, "status": problem.error_type}}
    else:
        payload = {
            "type": "error",
            "error": {"type": problem.error_type, "message": problem.message},
            "request_id": request_id,
        }
    return Answer(problem.status, {**hdrs, "content-type": "application/json"}, json.dumps(payload).encode())


def eventstream_frame(headers: dict[str, str], payload: bytes) -> bytes:
    """One message of AWS's event stream encoding: a prelude (total length, headers length, CRC32 of
    those 8 bytes), the headers (name length, name, type 7 = string, value length, value), the payload,
    and a CRC32 of everything before it."""
    encoded = b"".join(
        struct.pack(">B", len(k)) + k.encode() + b"\x07" + struct.pack(">H", len(v.encode())) + v.encode()
        for k, v in headers.items()
    )
    prelude = struct.pack(">II", 12 + len(encoded) + len(payload) + 4, len(encoded))
    prelude += struct.pack(">I", zlib.crc32(prelude))
    message = prelude + encoded + payload
    return message + struct.pack(">I", zlib.crc32(message))


def _chunk_frame(event: dict[str, Any]) -> bytes:
    data = base64.b64encode(json.dumps(event).encode()).decode()
    payload = json.dumps({"bytes": data, "p": "abcdefghijklmnopqrstuvwxyzABCD"[: 4 + len(data) % 20]})
    return eventstream_frame(
        {":event-type": "chunk", ":content-type": "application/json", ":message-type": "event"}, payload.encode()
    )


def _signing_key(secret: str, day: str, region: str, service: str) -> bytes:
    key = ("AWS4" + secret).encode()
    for part in (day, region, service, "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return key


def sigv4_problem(
    method: str, raw_path: str, headers: dict[str, str], body: bytes, key_id: str = AWS_KEY_ID, secret: str = AWS_SECRET
) -> str | None:
    """Why the request's AWS Signature Version 4 is not valid for `key_id`/`secret`, or None when it is."""
    auth = headers.get("authorization", "")
    m = re.fullmatch(
        r"AWS4-HMAC-SHA256 Credential=([^/]+)/(\d{8})/([^/]+)/([^/]+)/aws4_request, "
        r"SignedHeaders=([^,]+), Signature=([0-9a-f]{64})",
        auth,
    )
    if not m:
        return "Authorization header requires an AWS4-HMAC-SHA256 signature."
    got_key, day, region, service, signed, signature = m.groups()
    if got_key != key_id:
        return "The security token included in the request is invalid."
    if service != "bedrock":
        return f"Credential should be scoped to correct service: 'bedrock', not {service!r}."
    amz_date = headers.get("x-amz-date", "")
    if not amz_date.startswith(day):
        return "Date in Credential scope does not match YYYYMMDD from X-Amz-Date."
    names = signed.split(";")
    if "host" not in names or any(n not in headers for n in names):
        return "The request signature we calculated does not match the signature you provided."
    path, _, query = raw_path.partition("?")
    canonical = "\n".join(
        [
            method,
            urllib.parse.quote(path, safe="/~"),
            "&".join(sorted(query.split("&"))) if query else "",
            "".join(f"{n}:{' '.join(headers[n].split())}\n" for n in names),
            signed,
            hashlib.sha256(body).hexdigest(),
        ]
    )
    scope = f"{day}/{region}/{service}/aws4_request"
    to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()])
    expected = hmac.new(_signing_key(secret, day, region, service), to_sign.encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, signature):
        return "The request signature we calculated does not match the signature you provided."
    return None


class ServiceAccount:
    """A Google service account key pair made for the test, and the check of the JWT a client signs with
    it to get an access token (RS256, issued by the account, for the cloud-platform scope)."""

    email = "mdspec-test@fake-project.iam.gserviceaccount.com"

    def __init__(self) -> None:
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import rsa

        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.pem = self.key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ).decode()

    def info(self, token_uri: str, project: str) -> dict[str, str]:
        return {
            "type": "service_account",
            "project_id": project,
            "private_key_id": "fakekey0001",
            "private_key": self.pem,
            "client_email": self.email,
            "client_id": "1000000000001",
            "token_uri": token_uri,
        }

    def problem(self, form: dict[str, str]) -> str | None:
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import padding

        if form.get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer":
            return "unsupported_grant_type"
        try:
            head, claims, sig = form.get("assertion", "").split(".")
            self.key.public_key().verify(unb64(sig), f"{head}.{claims}".encode(), padding.PKCS1v15(), hashes.SHA256())
            payload = json.loads(unb64(claims))
        except (ValueError, InvalidSignature):
            return "invalid_grant: Invalid JWT Signature."
        if payload.get("iss") != self.email or "cloud-platform" not in str(payload.get("scope")):
            return "invalid_scope"
        return None


def unb64(text: str) -> bytes:
    """base64url without padding, as JWTs carry it."""
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


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
            events.append(
                (
                    "content_block_start",
                    {"type": "content_block_start", "index": i, "content_block": {"type": "text", "text": ""}},
                )
            )
            for piece in _chunks(block["text"]):
                events.append(
                    (
                        "content_block_delta",
                        {"type": "content_block_delta", "index": i, "delta": {"type": "text_delta", "text": piece}},
                    )
                )
        else:
            raw = block.get("partial_json", json.dumps(block.get("input", {})))
            head = {"type": "tool_use", "id": block["id"], "name": block["name"], "input": {}}
            events.append(("content_block_start", {"type": "content_block_start", "index": i, "content_block": head}))
            for piece in _chunks(raw):
                events.append(
                    (
                        "content_block_delta",
                        {
                            "type": "content_block_delta",
                            "index": i,
                            "delta": {"type": "input_json_delta", "partial_json": piece},
                        },
                    )
                )
        events.append(("content_block_stop", {"type": "content_block_stop", "index": i}))
    events.append(
        (
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": message["stop_reason"], "stop_sequence": None},
                "usage": {"output_tokens": usage["output_tokens"]},
            },
        )
    )
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

        def do_HEAD(self) -> None:
            self.send_response(200)
            self.send_header("content-length", "0")
            self.end_headers()

        def do_GET(self) -> None:
            path, _, query = self.path.partition("?")
            headers = {k.lower(): v for k, v in self.headers.items()}
            key = headers.get("x-api-key") or headers.get("authorization", "").removeprefix("Bearer ")
            if path != "/v1/models":
                status, body = 404, {"type": "error", "error": {"type": "not_found_error", "message": "not found"}}
            elif key != api.api_key:
                status, body = (
                    401,
                    {"type": "error", "error": {"type": "authentication_error", "message": "invalid x-api-key"}},
                )
            else:
                status, body = 200, api.models_list(dict(p.partition("=")[::2] for p in query.split("&") if p))
            with api.lock:
                api.model_lists += 1
            self._send(
                status,
                {"content-type": "application/json", "request-id": "req_fakemodels"},
                json.dumps(body).encode(),
                None,
            )

        def do_POST(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            raw = self.rfile.read(length)
            path = self.path.split("?")[0]
            if path == "/token":
                self._token(raw)
                return
            route = self._route(path, raw)
            if route is None:
                self._send(
                    404,
                    {"content-type": "application/json"},
                    b'{"type":"error","error":{"type":"not_found_error","message":"not found"}}',
                    None,
                )
                return
            try:
                body = json.loads(raw)
            except ValueError:
                self._send(
                    400,
                    {"content-type": "application/json"},
                    b'{"type":"error","error":{"type":"invalid_request_error","message":"bad JSON"}}',
                    None,
                )
                return
            headers = {k.lower(): v for k, v in self.headers.items()}
            if route.provider == "bedrock":
                route = Route(
                    route.provider,
                    route.path,
                    route.model,
                    route.stream,
                    sigv4_problem("POST", self.path, headers, raw),
                )
            self._answer(api.handle(headers, body, route))

        def _route(self, path: str, raw: bytes) -> Route | None:
            if path == "/v1/messages":
                return Route()
            if m := VERTEX_PATH.match(path):
                return Route("vertex", path, urllib.parse.unquote(m.group(3)), m.group(4) == "streamRawPredict")
            if m := BEDROCK_PATH.match(path):
                return Route("bedrock", path, urllib.parse.unquote(m.group(1)), m.group(2).endswith("stream"))
            return None

        def _token(self, raw: bytes) -> None:
            """Google's OAuth token endpoint, for the service account of `FakeAPI.service_account_info`."""
            form = dict(urllib.parse.parse_qsl(raw.decode()))
            with api.lock:
                api.token_requests += 1
            problem = api.service_account.problem(form) if api.service_account else "invalid_client"
            if problem:
                body = {"error": problem.split(":")[0], "error_description": problem}
                self._send(400, {"content-type": "application/json"}, json.dumps(body).encode(), None)
                return
            token = {"access_token": VERTEX_TOKEN, "expires_in": 3599, "token_type": "Bearer"}
            self._send(200, {"content-type": "application/json"}, json.dumps(token).encode(), None)

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


def point_sdk_at(monkeypatch: pytest.MonkeyPatch, api: FakeAPI) -> None:
    """ANTHROPIC_BASE_URL and ANTHROPIC_API_KEY aimed at `api`, for the SDK and the CLIs that read them."""
    monkeypatch.setenv("ANTHROPIC_BASE_URL", api.base_url)
    monkeypatch.setenv("ANTHROPIC_API_KEY", api.api_key)
    monkeypatch.delenv("ANTHROPIC_AUTH_TOKEN", raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")  # a proxy in the environment must not see it


@pytest.fixture
def fake_api(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeAPI]:
    """A started FakeAPI with ANTHROPIC_BASE_URL and a fake ANTHROPIC_API_KEY pointing the SDK at it."""
    api = FakeAPI().start()
    point_sdk_at(monkeypatch, api)
    try:
        yield api
    finally:
        api.close()
