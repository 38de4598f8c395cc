"""Stand-ins for the agent CLIs the presets run: the same flags, JSON output shapes and refusals.

`claude`: `-p --output-format json`; as root, `--dangerously-skip-permissions` is refused unless
IS_SANDBOX=1; prints one result object with usage, modelUsage and total_cost_usd.
`codex`: `codex exec` parsed strictly, clap style (an unknown flag is `error: unexpected argument …`,
usage, `For more information, try '--help'.`, exit 2); `--json` prints thread/turn/item events;
`--output-last-message FILE` gets the answer; the session log under $CODEX_HOME/sessions records the model.

Both write out.txt in the working directory (the work) and append their argv and environment to
$FAKE_LOG when it is set.
"""

from __future__ import annotations

from pathlib import Path

CLAUDE = r"""#!/usr/bin/env python3
import json, os, sys
args = sys.argv[1:]
if os.environ.get("FAKE_LOG"):
    with open(os.environ["FAKE_LOG"], "a") as f:
        f.write(json.dumps({"argv": args, "env": dict(os.environ), "uid": os.geteuid()}) + "\n")
if "--dangerously-skip-permissions" in args and os.geteuid() == 0 and os.environ.get("IS_SANDBOX") != "1":
    sys.stderr.write("--dangerously-skip-permissions cannot be used with root/sudo privileges for security reasons\n")
    sys.exit(1)
if "-p" not in args:
    sys.stderr.write("Error: Input must be provided either through stdin or as a prompt argument when using --print\n")
    sys.exit(1)
prompt = sys.stdin.read()
print("debug: using key " + os.environ.get("ANTHROPIC_API_KEY", ""))
open("out.txt", "w").write("x\n")
if os.environ.get("LEAK_INTO"):
    open(os.environ["LEAK_INTO"], "w").write("API_KEY = '%s'\n" % os.environ.get("ANTHROPIC_API_KEY", ""))
result = {
    "type": "result", "subtype": "success", "is_error": False, "duration_ms": 5120, "num_turns": 6,
    "result": "Add out.txt\n\nDone.", "session_id": "0b1c-fake", "total_cost_usd": 0.0721,
    "usage": {"input_tokens": 14, "cache_creation_input_tokens": 5100, "cache_read_input_tokens": 40200,
              "output_tokens": 880},
    "modelUsage": {
        "claude-haiku-4-5-20251001": {"inputTokens": 300, "outputTokens": 20, "cacheReadInputTokens": 0,
                                      "cacheCreationInputTokens": 0, "costUSD": 0.0004},
        "claude-sonnet-4-5-20250929": {"inputTokens": 14, "outputTokens": 880, "cacheReadInputTokens": 40200,
                                       "cacheCreationInputTokens": 5100, "costUSD": 0.0717},
    },
}
if os.environ.get("FAKE_CLAUDE_ERROR"):
    result.update(subtype="success", is_error=True, result=os.environ["FAKE_CLAUDE_ERROR"])
    print(json.dumps(result))
    sys.exit(1)
print(json.dumps(result))
"""

CODEX = r"""#!/usr/bin/env python3
import json, os, sys, time, uuid
args = sys.argv[1:]
if os.environ.get("FAKE_LOG"):
    with open(os.environ["FAKE_LOG"], "a") as f:
        f.write(json.dumps({"argv": args, "env": dict(os.environ)}) + "\n")

def usage_error(msg, tip=None):
    sys.stderr.write("error: " + msg + "\n\n")
    if tip:
        sys.stderr.write("  tip: " + tip + "\n\n")
    sys.stderr.write("Usage: codex exec [OPTIONS] [PROMPT]\n       codex exec [OPTIONS] <COMMAND> [ARGS]\n\n"
                     "For more information, try '--help'.\n")
    sys.exit(2)

if not args or args[0] not in ("exec", "e"):
    usage_error("unrecognized subcommand")
flags = {"--json": False, "--skip-git-repo-check": False, "--dangerously-bypass-approvals-and-sandbox": False}
values = {"--sandbox": None, "--output-last-message": None, "--model": None, "--cd": None}
short = {"-s": "--sandbox", "-o": "--output-last-message", "-m": "--model", "-C": "--cd"}
prompt = None
rest = args[1:]
i = 0
while i < len(rest):
    a = rest[i]
    name = short.get(a, a)
    if name in flags:
        flags[name] = True
    elif name in values or name == "-c":
        if i + 1 >= len(rest):
            usage_error(f"a value is required for '{a} <VALUE>' but none was supplied")
        if name == "--sandbox" and rest[i + 1] not in ("read-only", "workspace-write", "danger-full-access"):
            usage_error(f"invalid value '{rest[i + 1]}' for '--sandbox <SANDBOX_MODE>'")
        if name != "-c":
            values[name] = rest[i + 1]
        i += 1
    elif a.startswith("-") and a != "-":
        usage_error(f"unexpected argument '{a}' found", f"to pass '{a}' as a value, use '-- {a}'")
    elif prompt is None:
        prompt = a
    else:
        usage_error(f"unexpected argument '{a}' found")
    i += 1
if prompt in (None, "-"):
    prompt = sys.stdin.read()
model = values["--model"] or "gpt-5.1-codex"
thread = str(uuid.uuid4())
home = os.environ.get("CODEX_HOME") or os.path.join(os.path.expanduser("~"), ".codex")
day = time.strftime("%Y/%m/%d")
os.makedirs(os.path.join(home, "sessions", day), exist_ok=True)
name = f"rollout-{time.strftime('%Y-%m-%dT%H-%M-%S')}-{thread}.jsonl"
with open(os.path.join(home, "sessions", day, name), "w") as f:
    f.write(json.dumps({"type": "session_meta", "payload": {"id": thread, "cwd": os.getcwd()}}) + "\n")
    f.write(json.dumps({"type": "turn_context", "payload": {"cwd": os.getcwd(), "model": model}}) + "\n")

def event(e):
    if flags["--json"]:
        print(json.dumps(e), flush=True)

event({"type": "thread.started", "thread_id": thread})
event({"type": "turn.started"})
event({"type": "item.completed", "item": {"id": "item_0", "type": "reasoning", "text": "**Writing out.txt**"}})
if os.environ.get("FAKE_CODEX_FAIL"):
    event({"type": "error", "message": "Reconnecting... 1/5"})
    event({"type": "turn.failed", "error": {"message": os.environ["FAKE_CODEX_FAIL"]}})
    sys.exit(1)
event({"type": "item.started", "item": {"id": "item_1", "type": "command_execution", "command": "bash -lc ls",
                                         "aggregated_output": "", "exit_code": None, "status": "in_progress"}})
event({"type": "item.completed", "item": {"id": "item_1", "type": "command_execution", "command": "bash -lc ls",
                                           "aggregated_output": "README.md\n", "exit_code": 0, "status": "completed"}})
open("out.txt", "w").write("x\n")
event({"type": "item.completed", "item": {"id": "item_2", "type": "file_change",
                                           "changes": [{"path": "out.txt", "kind": "add"}], "status": "completed"}})
answer = "Add out.txt\n\nWrote out.txt."
event({"type": "item.completed", "item": {"id": "item_3", "type": "agent_message", "text": answer}})
event({"type": "turn.completed", "usage": {"input_tokens": 12000, "cached_input_tokens": 9000, "output_tokens": 450}})
if values["--output-last-message"]:
    open(values["--output-last-message"], "w").write(answer)
if not flags["--json"]:
    print(answer)
"""


def install(bin_dir: Path) -> Path:
    """Write `claude` and `codex` into `bin_dir`; returns it (put it first on PATH)."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    for name, text in (("claude", CLAUDE), ("codex", CODEX)):
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    return bin_dir
