"""The agent's tools: the text editor and a bash session, confined to the worktree (DESIGN §3.4, §4).

`Toolbox.call(name, input)` is the one entry point the agent loop uses. It never raises: a refused path,
a bad argument or a crashed shell becomes a `ToolResult` with `is_error` set, which goes back to the model
as an `is_error` tool_result so it can correct itself. Only the file tools are guarded; commands can write
wherever the operating system lets them, which is why the runner still restores protected paths afterwards.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import selectors
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mdspec.fast.globs import Globs

EDITOR = "str_replace_based_edit_tool"
BASH = "bash"
MAX_OUTPUT = 30_000  # characters per tool result; larger results cost tokens on every later turn
MAX_LISTING = 1_000  # entries in a directory view
SNIPPET_CONTEXT = 4  # lines shown around an edit


class ToolError(Exception):
    """A tool call that cannot be carried out; the message is written for the model to read."""


class Refused(ToolError):
    """The guard refused a path: outside the worktree, inside .git, or a protected path written."""


@dataclass(frozen=True)
class ToolResult:
    text: str
    is_error: bool = False
    refused: bool = False  # a guard refusal, kept for the run record


def printable(text: str) -> str:
    """`text` without lone surrogates: file names that are not UTF-8 come back from the OS with them
    (surrogateescape), and they cannot be encoded into the transcript or the next request."""
    try:
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    except UnicodeEncodeError:
        return text.encode("utf-8", "replace").decode("utf-8")


def cap(text: str, limit: int = MAX_OUTPUT) -> str:
    """Keep the head and the tail of `text` (errors tend to be at the end), saying how much was cut."""
    if len(text) <= limit:
        return text
    head = limit * 2 // 5
    tail = limit - head
    cut = len(text) - head - tail
    return f"{text[:head]}\n[… {cut} characters cut …]\n{text[-tail:]}"


# --- the guard ----------------------------------------------------------------------------------------


def resolve(worktree: Path, path: str, protected: Globs, write: bool) -> Path:
    """The real path `path` names inside `worktree`, or `Refused` saying why not.

    `Path.resolve` follows every existing symlink (the final one too, even when dangling) before applying
    `..`, as the kernel does, so a link pointing out of the worktree is caught here.
    """
    if not isinstance(path, str) or not path.strip():
        raise ToolError("a non-empty `path` is required")
    if "\0" in path:
        raise Refused(f"{path!r}: NUL in path")
    root = worktree.resolve()
    given = Path(path)
    target = (given if given.is_absolute() else root / given).resolve()
    try:
        rel = target.relative_to(root)
    except ValueError:
        raise Refused(f"{path}: outside the worktree {root}; only paths inside it can be used") from None
    literal = Path(os.path.normpath(given if given.is_absolute() else root / given))
    try:
        literal_rel: Path | None = literal.relative_to(root)
    except ValueError:
        literal_rel = None
    for r in (rel, literal_rel):
        if r is not None and ".git" in r.parts:
            raise Refused(f"{path}: inside .git; git's own files are off limits")
    if write:
        for r in (rel, literal_rel):
            if r is not None and r.parts and protected.matches(r.as_posix()):
                raise Refused(f"{r.as_posix()}: a protected path (spec, project config): read it, never change it")
        if target == root:
            raise Refused(f"{path}: the worktree root itself cannot be written")
    return target


# --- the text editor ------------------------------------------------------------------------------------


def _read_text(p: Path) -> str:
    if p.is_dir():
        raise ToolError(f"{p}: is a directory")
    if not p.exists():
        raise ToolError(f"{p}: no such file")
    data = p.read_bytes()
    if b"\0" in data:
        raise ToolError(f"{p}: a binary file ({len(data)} bytes); not shown or edited as text")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise ToolError(f"{p}: not UTF-8 text ({len(data)} bytes); not shown or edited as text") from None


def _write_text(p: Path, text: str) -> None:
    with p.open("w", encoding="utf-8", newline="") as f:
        f.write(text)


def _numbered(lines: list[str], first: int) -> str:
    return "\n".join(f"{i:6}\t{line}" for i, line in enumerate(lines, start=first))


def _snippet(text: str, start_line: int, n_lines: int) -> str:
    lines = text.split("\n")
    lo = max(0, start_line - 1 - SNIPPET_CONTEXT)
    hi = min(len(lines), start_line - 1 + n_lines + SNIPPET_CONTEXT)
    return _numbered(lines[lo:hi], lo + 1)


class Editor:
    """text_editor_20250728: view, create, str_replace, insert."""

    def __init__(self, worktree: Path, protected: Globs) -> None:
        self.worktree = worktree
        self.protected = protected

    def run(self, args: Mapping[str, Any]) -> str:
        command = args.get("command")
        path = args.get("path")
        if not isinstance(path, str):
            raise ToolError("`path` (a string) is required")
        if command == "view":
            return self.view(resolve(self.worktree, path, self.protected, write=False), args.get("view_range"))
        p = resolve(self.worktree, path, self.protected, write=True)
        if command == "create":
            return self.create(p, args.get("file_text"))
        if command == "str_replace":
            return self.str_replace(p, args.get("old_str"), args.get("new_str", ""))
        if command == "insert":
            text = args.get("insert_text", args.get("new_str"))
            return self.insert(p, args.get("insert_line"), text)
        raise ToolError(f"unknown command {command!r}: use view, create, str_replace or insert")

    def _show(self, p: Path) -> str:
        try:
            return p.relative_to(self.worktree.resolve()).as_posix() or "."
        except ValueError:
            return str(p)

    def view(self, p: Path, view_range: Any) -> str:
        if p.is_dir():
            if view_range is not None:
                raise ToolError("view_range applies to files, not directories")
            return self._listing(p)
        lines = _read_text(p).split("\n")
        if lines and lines[-1] == "":
            lines.pop()  # the final newline does not start another line
        first, last = 1, len(lines)
        if view_range is not None:
            if (
                not isinstance(view_range, list)
                or len(view_range) != 2
                or not all(isinstance(v, int) and not isinstance(v, bool) for v in view_range)
            ):
                raise ToolError("view_range must be two integers [start, end]; end -1 means to the end")
            first, last = view_range
            if last == -1:
                last = len(lines)
            if not 1 <= first <= max(len(lines), 1) or not first <= last <= len(lines):
                raise ToolError(f"view_range {view_range} is outside the file's lines 1..{len(lines)}")
        shown = _numbered(lines[first - 1 : last], first)
        if len(shown) > MAX_OUTPUT:
            keep = shown[:MAX_OUTPUT].rsplit("\n", 1)[0]
            upto = first + keep.count("\n")
            shown = keep + f"\n[… output cut at line {upto} of {len(lines)}: use view_range to see the rest …]"
        return shown if shown else f"{self._show(p)} is empty"

    def _listing(self, d: Path) -> str:
        out: list[str] = []
        total = 0

        def walk(cur: Path, depth: int) -> None:
            nonlocal total
            try:
                entries = sorted(os.scandir(cur), key=lambda e: e.name)
            except OSError as exc:
                out.append(f"{self._show(cur)}/  [cannot list: {exc.strerror}]")
                return
            for e in entries:
                if e.name.startswith("."):
                    continue
                total += 1
                is_dir = e.is_dir(follow_symlinks=False)
                if len(out) < MAX_LISTING:
                    out.append(self._show(Path(e.path)) + ("/" if is_dir else ""))
                if is_dir and depth < 2:
                    walk(Path(e.path), depth + 1)

        walk(d, 1)
        head = f"Files and directories up to 2 levels deep in {self._show(d)}, hidden entries skipped:\n"
        more = f"\n[… {total - MAX_LISTING} more entries not shown …]" if total > MAX_LISTING else ""
        return head + "\n".join(out) + more

    def create(self, p: Path, file_text: Any) -> str:
        if not isinstance(file_text, str):
            raise ToolError("create needs `file_text` (a string)")
        if p.is_dir():
            raise ToolError(f"{self._show(p)} is a directory")
        existed = p.exists()
        p.parent.mkdir(parents=True, exist_ok=True)
        _write_text(p, file_text)
        return f"{'Overwrote' if existed else 'Created'} {self._show(p)} ({len(file_text)} characters)"

    def str_replace(self, p: Path, old: Any, new: Any) -> str:
        if not isinstance(old, str) or old == "":
            raise ToolError("str_replace needs a non-empty `old_str`")
        if new is None:
            new = ""
        if not isinstance(new, str):
            raise ToolError("`new_str` must be a string")
        text = _read_text(p)
        count = text.count(old)
        if count == 0:
            raise ToolError(f"old_str was not found in {self._show(p)}; it must match exactly, whitespace included")
        if count > 1:
            at, lines, start = [], [], 0
            while (i := text.find(old, start)) >= 0:
                at.append(i)
                start = i + 1
            lines = [text.count("\n", 0, i) + 1 for i in at]
            raise ToolError(
                f"old_str occurs {count} times in {self._show(p)} (lines {', '.join(map(str, lines))}); "
                "include more context so it matches exactly once"
            )
        i = text.find(old)
        updated = text[:i] + new + text[i + len(old) :]
        _write_text(p, updated)
        line = text.count("\n", 0, i) + 1
        return f"Edited {self._show(p)}. The changed region:\n" + _snippet(updated, line, new.count("\n") + 1)

    def insert(self, p: Path, insert_line: Any, text: Any) -> str:
        if isinstance(insert_line, bool) or not isinstance(insert_line, int):
            raise ToolError("insert needs `insert_line` (an integer; 0 inserts at the top)")
        if not isinstance(text, str):
            raise ToolError("insert needs `insert_text` (a string)")
        old = _read_text(p)
        lines = old.splitlines(keepends=True)
        if not 0 <= insert_line <= len(lines):
            raise ToolError(f"insert_line {insert_line} is outside 0..{len(lines)} (the file has {len(lines)} lines)")
        if lines and insert_line == len(lines) and not lines[-1].endswith("\n"):
            lines[-1] += "\n"
        block = text if text.endswith("\n") else text + "\n"
        updated = "".join([*lines[:insert_line], block, *lines[insert_line:]])
        _write_text(p, updated)
        return f"Inserted after line {insert_line} of {self._show(p)}:\n" + _snippet(
            updated, insert_line + 1, block.count("\n")
        )


# --- bash -------------------------------------------------------------------------------------------------


class Bash:
    """One persistent `bash --noprofile --norc` in the worktree, in its own process group.

    Each command travels in a quoted heredoc into a variable and runs with `eval` (so an unclosed quote or
    heredoc in it cannot swallow what follows) with stdin from /dev/null; then a sentinel carrying its exit
    status is printed. Output is read until the sentinel, not until EOF, so a background process holding
    stdout open does not block the tool. `prefix` (e.g. a bubblewrap command line) wraps the shell.
    """

    def __init__(
        self,
        worktree: Path,
        env: Mapping[str, str],
        timeout: float = 120.0,
        max_output: int = MAX_OUTPUT,
        prefix: Sequence[str] = (),
    ) -> None:
        self.worktree = worktree
        self.env = dict(env)
        self.timeout = timeout
        self.max_output = max_output
        self.prefix = tuple(prefix)
        self.proc: subprocess.Popen[bytes] | None = None
        self.sentinel = f"__mdspec_done_{secrets.token_hex(8)}__"

    def _start(self) -> subprocess.Popen[bytes]:
        self.proc = subprocess.Popen(
            [*self.prefix, "bash", "--noprofile", "--norc"],
            cwd=self.worktree,
            env=self.env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, so a kill reaches everything it started
        )
        return self.proc

    def _kill(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        for stream in (proc.stdin, proc.stdout):
            try:
                if stream is not None:
                    stream.close()
            except OSError:
                pass
        proc.wait()

    def close(self) -> None:
        self._kill()

    def run(self, args: Mapping[str, Any]) -> ToolResult:
        if args.get("restart"):
            self._kill()
            self._start()
            return ToolResult("The bash session was restarted.")
        command = args.get("command")
        if not isinstance(command, str) or not command.strip():
            raise ToolError("bash needs `command` (a non-empty string), or `restart: true`")
        proc = self.proc if self.proc is not None and self.proc.poll() is None else self._start()
        end = f"__mdspec_end_{secrets.token_hex(8)}__"  # fresh each time, so no command can contain it
        line = (
            f"IFS= read -r -d '' __mdspec_cmd <<'{end}'\n{command.replace(chr(0), '')}\n{end}\n"
            f"eval \"$__mdspec_cmd\" </dev/null\nprintf '\\n{self.sentinel}:%d\\n' $?\n"
        )
        assert proc.stdin is not None
        assert proc.stdout is not None
        try:
            proc.stdin.write(line.encode())
            proc.stdin.flush()
        except (BrokenPipeError, OSError):
            self._kill()
            raise ToolError("the bash session had died; it was restarted: run the command again") from None
        data, status, ended = self._read_until_sentinel(proc)
        output = self._decode(data).removesuffix("\n")
        if status is not None:
            if status != 0:
                output += f"\n[exit status {status}]"
            return ToolResult(output or "(no output)")
        self._kill()
        if ended:
            note = "[the shell exited; a new one starts with the next command]"
        else:
            note = (
                f"[the command timed out after {self.timeout:g} s: the shell and everything it started were "
                "killed and a new shell started; the working directory and variables were reset. Run long "
                "jobs with a time limit or in the background with output redirected to a file]"
            )
            self._start()
        return ToolResult((output + "\n" if output else "") + note, is_error=not ended)

    def _read_until_sentinel(self, proc: subprocess.Popen[bytes]) -> tuple[bytearray, int | None, bool]:
        """(output, exit status or None, whether the shell ended) — stops at the sentinel or the timeout."""
        assert proc.stdout is not None
        fd = proc.stdout.fileno()
        mark = f"\n{self.sentinel}:".encode()
        buf = bytearray()
        dropped = 0
        keep = self.max_output * 4  # bytes kept at each end while reading: bounds memory for huge outputs
        deadline = time.monotonic() + self.timeout
        scan = 0  # where the sentinel may start: searching only new bytes keeps long outputs linear
        with selectors.DefaultSelector() as sel:
            sel.register(fd, selectors.EVENT_READ)
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    return self._with_dropped(buf, dropped), None, False
                if not sel.select(timeout=min(left, 1.0)):
                    continue
                chunk = os.read(fd, 65536)
                if not chunk:
                    return self._with_dropped(buf, dropped), None, True
                buf += chunk
                i = buf.find(mark, scan)
                if i >= 0:
                    end = buf.find(b"\n", i + len(mark))
                    if end >= 0:
                        status = int(buf[i + len(mark) : end] or b"0")
                        return self._with_dropped(buf[:i], dropped), status, False
                    scan = i  # the status line is still on its way
                    continue
                if len(buf) > 3 * keep:
                    dropped += len(buf) - 2 * keep
                    buf = buf[:keep] + buf[-keep:]
                scan = max(0, len(buf) - len(mark))

    @staticmethod
    def _with_dropped(buf: bytearray, dropped: int) -> bytearray:
        if dropped:
            half = len(buf) // 2
            buf = buf[:half] + f"\n[… {dropped} bytes cut …]\n".encode() + buf[half:]
        return buf

    def _decode(self, data: bytearray) -> str:
        return cap(data.decode("utf-8", "replace"), self.max_output)


# --- the toolbox ----------------------------------------------------------------------------------------


def summary(name: str, args: Mapping[str, Any]) -> str:
    """A one-line description of a call for progress output."""
    if name == BASH:
        if args.get("restart"):
            return "restart"
        first = str(args.get("command", "")).strip().splitlines()
        return (first[0][:200] + (" …" if len(first) > 1 else "")) if first else ""
    return f"{args.get('command', '?')} {args.get('path', '')}".strip()


class Toolbox:
    """Dispatches the model's tool calls; the bash session starts on first use."""

    def __init__(
        self,
        worktree: Path,
        protected: tuple[str, ...] | list[str],
        env: Mapping[str, str],
        bash_timeout: float = 120.0,
        shell_prefix: Sequence[str] = (),
    ) -> None:
        self.worktree = worktree
        self.editor = Editor(worktree, Globs(protected))
        self.env = env
        self.bash_timeout = bash_timeout
        self.shell_prefix = tuple(shell_prefix)
        self._bash: Bash | None = None

    def call(self, name: str, args: Any, time_left: float | None = None) -> ToolResult:
        """Run one tool call; `time_left` (seconds before the run's deadline) shortens the bash time limit."""
        try:
            if not isinstance(args, Mapping):
                raise ToolError("the tool input must be a JSON object")
            if name == EDITOR:
                return ToolResult(cap(printable(self.editor.run(args))))
            if name == BASH:
                if self._bash is None:
                    self._bash = Bash(self.worktree, self.env, self.bash_timeout, prefix=self.shell_prefix)
                limit = self.bash_timeout if time_left is None else min(self.bash_timeout, time_left)
                self._bash.timeout = max(1.0, limit)
                return self._bash.run(args)
            raise ToolError(f"unknown tool {name!r}: the tools are {EDITOR} and {BASH}")
        except Refused as exc:
            return ToolResult(printable(f"Refused: {exc}"), is_error=True, refused=True)
        except ToolError as exc:
            return ToolResult(printable(f"Error: {exc}"), is_error=True)
        except KeyboardInterrupt:
            raise
        except Exception as exc:  # noqa: BLE001 - a tool failure is the model's to handle, never the run's end
            return ToolResult(printable(f"Error: {type(exc).__name__}: {exc}"), is_error=True)

    def close(self) -> None:
        if self._bash is not None:
            self._bash.close()
            self._bash = None
