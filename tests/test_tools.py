"""The editor and bash tools and the path guard (mdspec/tools.py)."""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from mdspec.agents.tools import EDITOR, Bash, Refused, Toolbox, ToolError, cap, resolve
from mdspec.fast.globs import Globs

PROTECTED = ("spec/**", "TASK.md", "AGENTS.md", ".mdspec.toml")


@pytest.fixture
def wt(tmp_path: Path) -> Path:
    w = tmp_path / "wt"
    (w / "src" / "pkg" / "deep").mkdir(parents=True)
    (w / "spec").mkdir()
    (w / "spec" / "a.md").write_text("# spec\n")
    (w / "src" / "main.py").write_text("def main():\n    return 1\n")
    (w / "src" / "pkg" / "mod.py").write_text("x = 1\n")
    (w / "src" / "pkg" / "deep" / "hidden_level3.py").write_text("")
    (w / ".hidden").mkdir()
    (w / ".git").write_text("gitdir: /somewhere/else\n")  # a linked worktree's .git is a file
    return w


@pytest.fixture
def box(wt: Path) -> Iterator[Toolbox]:
    tb = Toolbox(wt, PROTECTED, {"PATH": os.environ["PATH"], "MY_VAR": "from-ctx-env"}, bash_timeout=3)
    yield tb
    tb.close()


def alive(pid: int) -> bool:
    """True for a running process; a killed one may linger as a zombie until init reaps it."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"


def edit(box: Toolbox, **args: object) -> tuple[str, bool]:
    r = box.call(EDITOR, args)
    return r.text, r.is_error


def bash(box: Toolbox, command: str) -> tuple[str, bool]:
    r = box.call("bash", {"command": command})
    return r.text, r.is_error


# --- the guard ------------------------------------------------------------------------------------------


def test_resolve_accepts_relative_and_absolute_paths_inside(wt: Path) -> None:
    g = Globs(PROTECTED)
    assert resolve(wt, "src/main.py", g, write=True) == (wt / "src/main.py").resolve()
    assert resolve(wt, str(wt / "src" / "new" / "x.py"), g, write=True) == (wt / "src/new/x.py").resolve()
    assert resolve(wt, "src/../README.md", g, write=True) == (wt / "README.md").resolve()
    assert resolve(wt, "spec/a.md", g, write=False) == (wt / "spec/a.md").resolve()  # reading is fine


@pytest.mark.parametrize(
    ("path", "write", "why"),
    [
        ("../x", True, "outside the worktree"),
        ("../x", False, "outside the worktree"),
        ("/etc/passwd", True, "outside the worktree"),
        ("src/../../x", True, "outside the worktree"),
        (".git", False, ".git"),
        (".git/config", False, ".git"),
        ("sub/../.git/config", True, ".git"),
        ("spec/a.md", True, "protected"),
        ("spec/new/b.md", True, "protected"),
        ("TASK.md", True, "protected"),
        ("./AGENTS.md", True, "protected"),
    ],
)
def test_resolve_refuses(wt: Path, path: str, write: bool, why: str) -> None:
    with pytest.raises(Refused, match=re.escape(why)):
        resolve(wt, path, Globs(PROTECTED), write=write)


def test_resolve_follows_symlinks(wt: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (wt / "out").symlink_to(outside)
    (wt / "dangling").symlink_to(tmp_path / "nowhere" / "file")
    (wt / "specs").symlink_to(wt / "spec")
    (wt / "gitlink").symlink_to(wt / ".git")
    (wt / "ok").symlink_to(wt / "src")
    g = Globs(PROTECTED)
    for path in ("out/x.py", "out", "dangling", str(wt / "out" / "y")):
        with pytest.raises(Refused, match="outside the worktree"):
            resolve(wt, path, g, write=True)
    with pytest.raises(Refused, match="protected"):
        resolve(wt, "specs/a.md", g, write=True)
    with pytest.raises(Refused, match=r"\.git"):
        resolve(wt, "gitlink", g, write=False)
    assert resolve(wt, "ok/main.py", g, write=True) == (wt / "src/main.py").resolve()


def test_refusal_is_an_error_result(box: Toolbox, tmp_path: Path) -> None:
    r = box.call(EDITOR, {"command": "create", "path": "../escape.txt", "file_text": "x"})
    assert r.is_error
    assert r.refused
    assert "outside the worktree" in r.text
    assert not (tmp_path / "escape.txt").exists()
    r = box.call(EDITOR, {"command": "str_replace", "path": "spec/a.md", "old_str": "spec", "new_str": "x"})
    assert r.is_error
    assert r.refused
    assert (box.worktree / "spec/a.md").read_text() == "# spec\n"


# --- the editor -----------------------------------------------------------------------------------------


def test_view_file_with_line_numbers_and_range(box: Toolbox) -> None:
    text, err = edit(box, command="view", path="src/main.py")
    assert not err
    assert text == "     1\tdef main():\n     2\t    return 1"
    text, err = edit(box, command="view", path="src/main.py", view_range=[2, -1])
    assert (text, err) == ("     2\t    return 1", False)
    text, err = edit(box, command="view", path="src/main.py", view_range=[3, 9])
    assert err
    assert "outside the file's lines 1..2" in text


def test_view_directory_two_levels_skipping_hidden(box: Toolbox) -> None:
    text, err = edit(box, command="view", path=".")
    assert not err
    lines = text.splitlines()[1:]
    assert "src/" in lines
    assert "src/main.py" in lines
    assert "src/pkg/" in lines
    assert "spec/a.md" in lines
    assert not any(".hidden" in x or ".git" in x for x in lines)
    assert not any("hidden_level3" in x for x in lines)  # three levels down


def test_view_binary_and_missing_and_large(box: Toolbox, wt: Path) -> None:
    (wt / "blob.bin").write_bytes(b"\x89PNG\x00\x01\x02")
    text, err = edit(box, command="view", path="blob.bin")
    assert err
    assert "binary file (7 bytes)" in text
    assert "PNG" not in text
    (wt / "latin.txt").write_bytes(b"caf\xe9\n")
    text, err = edit(box, command="view", path="latin.txt")
    assert err
    assert "not UTF-8" in text
    text, err = edit(box, command="view", path="nope.txt")
    assert err
    assert "no such file" in text
    (wt / "big.txt").write_text("".join(f"line {i}\n" for i in range(20_000)))
    text, err = edit(box, command="view", path="big.txt")
    assert not err
    assert len(text) < 31_000
    assert "use view_range to see the rest" in text


def test_create_makes_parents_and_overwrites(box: Toolbox, wt: Path) -> None:
    text, err = edit(box, command="create", path="new/dir/f.py", file_text="a = 1\n")
    assert not err
    assert "Created new/dir/f.py" in text
    assert (wt / "new/dir/f.py").read_text() == "a = 1\n"
    text, err = edit(box, command="create", path="new/dir/f.py", file_text="a = 2\n")
    assert not err
    assert "Overwrote" in text
    assert (wt / "new/dir/f.py").read_text() == "a = 2\n"
    text, err = edit(box, command="create", path="new/dir/g.py")
    assert err
    assert "file_text" in text


def test_str_replace(box: Toolbox, wt: Path) -> None:
    (wt / "f.txt").write_text("alpha\nbeta\ngamma\nbeta\n")
    text, err = edit(box, command="str_replace", path="f.txt", old_str="alpha", new_str="ALPHA")
    assert not err
    assert "     1\tALPHA" in text
    assert (wt / "f.txt").read_text() == "ALPHA\nbeta\ngamma\nbeta\n"
    text, err = edit(box, command="str_replace", path="f.txt", old_str="beta", new_str="x")
    assert err
    assert "occurs 2 times" in text
    assert "lines 2, 4" in text
    text, err = edit(box, command="str_replace", path="f.txt", old_str="delta", new_str="x")
    assert err
    assert "not found" in text
    text, err = edit(box, command="str_replace", path="f.txt", old_str="gamma\n")  # new_str defaults to ""
    assert not err
    assert (wt / "f.txt").read_text() == "ALPHA\nbeta\nbeta\n"


def test_insert(box: Toolbox, wt: Path) -> None:
    (wt / "f.txt").write_text("one\ntwo")  # no final newline
    assert not edit(box, command="insert", path="f.txt", insert_line=0, insert_text="zero")[1]
    assert not edit(box, command="insert", path="f.txt", insert_line=3, new_str="three\n")[1]
    assert not edit(box, command="insert", path="f.txt", insert_line=1, insert_text="half\n")[1]
    assert (wt / "f.txt").read_text() == "zero\nhalf\none\ntwo\nthree\n"
    text, err = edit(box, command="insert", path="f.txt", insert_line=9, insert_text="x")
    assert err
    assert "outside 0..5" in text


def test_editor_bad_calls_are_errors(box: Toolbox) -> None:
    assert box.call(EDITOR, {"command": "undo_edit", "path": "f"}).is_error
    assert box.call(EDITOR, {"command": "view"}).is_error
    assert box.call(EDITOR, "not an object").is_error
    assert box.call("computer", {"action": "screenshot"}).is_error


# --- bash -----------------------------------------------------------------------------------------------


def test_bash_is_persistent_and_uses_given_env(box: Toolbox, wt: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LEAKY_PROCESS_VAR", "should-not-be-seen")
    assert bash(box, "pwd") == (str(wt), False)
    bash(box, "cd src && export FOO=bar")
    assert bash(box, 'pwd; echo "$FOO $MY_VAR [$LEAKY_PROCESS_VAR]"') == (f"{wt / 'src'}\nbar from-ctx-env []", False)
    text, err = bash(box, "echo out; echo err >&2; exit_code() { return 3; }; exit_code")
    assert text == "out\nerr\n[exit status 3]"
    assert not err
    text, _ = bash(box, 'echo "unclosed')  # a syntax error must not swallow the next command
    assert "unexpected EOF" in text
    assert bash(box, "echo fine") == ("fine", False)
    assert bash(box, "cat") == ("(no output)", False)  # stdin is /dev/null, not the tool's pipe


def test_bash_timeout_kills_group_and_restarts(wt: Path) -> None:
    b = Bash(wt, {"PATH": os.environ["PATH"]}, timeout=1)
    try:
        b.run({"command": "cd src; X=1"})
        t0 = time.monotonic()
        r = b.run({"command": "sleep 60 & echo $! > ../child.pid; echo started; sleep 30"})
        assert time.monotonic() - t0 < 20  # not the 30 s sleep: the 1 s limit ended it
        assert r.is_error
        assert "timed out after 1 s" in r.text
        assert r.text.startswith("started")
        child = int((wt / "child.pid").read_text())
        time.sleep(0.1)
        assert not alive(child)  # the background child went with the group
        assert b.run({"command": 'pwd; echo "[$X]"'}).text == f"{wt}\n[]"  # a fresh shell
    finally:
        b.close()


def test_bash_background_process_does_not_hang(box: Toolbox) -> None:
    t0 = time.monotonic()
    assert bash(box, "sleep 30 & echo started") == ("started", False)
    assert bash(box, "(sleep 30; echo late) & echo again") == ("again", False)
    assert time.monotonic() - t0 < 20  # neither waited for its 30 s sleep


def test_bash_restart_and_exit(box: Toolbox) -> None:
    bash(box, "export FOO=1")
    assert box.call("bash", {"restart": True}).text == "The bash session was restarted."
    assert bash(box, 'echo "[$FOO]"') == ("[]", False)
    text, _ = bash(box, "exit 4")
    assert "the shell exited" in text
    assert bash(box, "echo alive") == ("alive", False)
    assert box.call("bash", {}).is_error


def test_bash_output_is_capped_head_and_tail(box: Toolbox) -> None:
    text, err = bash(box, "for i in $(seq 1 20000); do echo line$i; done")
    assert not err
    assert len(text) < 30_200
    assert text.startswith("line1\n")
    assert text.endswith("line20000")
    assert "characters cut" in text


def test_bash_close_kills_background_jobs(wt: Path) -> None:
    b = Bash(wt, {"PATH": os.environ["PATH"]}, timeout=5)
    b.run({"command": "sleep 60 & echo $! > child.pid"})
    child = int((wt / "child.pid").read_text())
    assert alive(child)
    b.close()
    time.sleep(0.1)
    assert not alive(child)


def test_cap_keeps_head_and_tail() -> None:
    text = "a" * 50 + "b" * 50
    out = cap(text, 20)
    assert out.startswith("a" * 8)
    assert out.endswith("b" * 12)
    assert "[… 80 characters cut …]" in out
    assert cap("short", 20) == "short"


def test_tool_error_message_reaches_the_model(box: Toolbox) -> None:
    r = box.call(EDITOR, {"command": "view", "path": "src", "view_range": [1, 2]})
    assert r.is_error
    assert r.text.startswith("Error: ")
    assert not r.refused
    assert issubclass(Refused, ToolError)


def test_unexpected_tool_exceptions_become_error_results(box: Toolbox, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(args: object) -> str:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(box.editor, "run", broken)
    r = box.call(EDITOR, {"command": "view", "path": "."})
    assert r.is_error
    assert r.text == "Error: RuntimeError: disk on fire"


def test_bash_passes_commands_verbatim_and_can_be_wrapped(wt: Path) -> None:
    b = Bash(wt, {"PATH": os.environ["PATH"]}, timeout=5, prefix=["env", "WRAPPED=yes"])
    try:
        script = "cat <<'EOF'\nraw $HOME \\n 'quoted' \"double\"\nEOF\nprintf '%s\\n' a\\\\b"
        assert b.run({"command": script}).text == "raw $HOME \\n 'quoted' \"double\"\na\\b"
        assert b.run({"command": "echo $WRAPPED; echo  spaced   out  "}).text == "yes\nspaced out"
        assert b.run({"command": "  leading() { echo kept; }\nleading"}).text == "kept"
    finally:
        b.close()
