"""`mdspec init`: the starter files, and the hook installed through pre-commit or as a plain git hook.

Nothing is overwritten and nothing is committed; running it twice changes nothing the second time. The
user's `.pre-commit-config.yaml` is edited as text (so their comments and layout survive) and the edit is
verified by parsing the result.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from mdspec import config, git, templates
from mdspec.errors import FatalError
from mdspec.git import Repo
from mdspec.printer import Printer

PRE_COMMIT_CONFIG = ".pre-commit-config.yaml"
SHIM_MARKER = "mdspec post-commit hook"

STARTERS = (
    ("spec/README.md", "spec-README.md"),
    ("{notes}/README.md", "notes-README.md"),
    ("AGENTS.md", "AGENTS.md"),
    ("CLAUDE.md", "CLAUDE.md"),
)


class InstallError(FatalError):
    pass


def write_starters(top: Path, out: Printer) -> list[str]:
    created = []
    existing = config.find(top)
    notes = config.load_file(existing).notes_dir if existing else "notes"
    todo = [(dst.format(notes=notes), src) for dst, src in STARTERS]
    if existing is None:
        todo.append((config.CONFIG_FILE, "mdspec.toml"))
    for dst, src in todo:
        path = top / dst
        if path.exists() or path.is_symlink():
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(templates.read(src), encoding="utf-8")
        created.append(dst)
        out(f"  created {dst}")
    return created


# --- .pre-commit-config.yaml as text ----------------------------------------------------------------


def _has_mdspec_hook(data: Any) -> bool:
    for repo in (data or {}).get("repos") or []:
        for hook in (repo or {}).get("hooks") or []:
            if isinstance(hook, dict) and hook.get("id") == "mdspec":
                return True
    return False


def _indent_snippet(snippet: str, indent: str) -> str:
    lines = snippet.splitlines(keepends=True)
    # The template's items start at two spaces; shift them to the file's own indentation.
    return "".join(indent + ln[2:] if ln.startswith("  ") else ln for ln in lines)


def _add_repo(lines: list[str], snippet: str) -> list[str]:
    at = next((i for i, ln in enumerate(lines) if ln.startswith("repos:")), None)
    if at is None:
        tail = [] if not lines or lines[-1].endswith("\n") else ["\n"]
        return [*lines, *tail, "repos:\n", snippet]
    rest = lines[at][len("repos:") :].split("#", 1)[0].strip()
    if rest == "[]":
        return [*lines[:at], "repos:\n", snippet, *lines[at + 1 :]]
    if rest:
        raise InstallError(
            f"{PRE_COMMIT_CONFIG}: repos: written in flow style; add the mdspec hook by hand:\n{snippet}"
        )
    first_item = next((ln for ln in lines[at + 1 :] if ln.strip() and not ln.lstrip().startswith("#")), "")
    indent = first_item[: len(first_item) - len(first_item.lstrip())] if first_item.lstrip().startswith("- ") else "  "
    end = next(
        (
            i
            for i in range(at + 1, len(lines))
            if lines[i].strip() and not lines[i][0].isspace() and not lines[i].startswith(("#", "-"))
        ),
        len(lines),
    )
    while end > at + 1 and (not lines[end - 1].strip() or lines[end - 1].startswith("#")):
        end -= 1  # keep blank lines and comments that introduce the next key with that key
    body = _indent_snippet(snippet, indent)
    if end and not lines[end - 1].endswith("\n"):
        lines = [*lines[: end - 1], lines[end - 1] + "\n", *lines[end:]]
    return [*lines[:end], body, *lines[end:]]


def _add_hook_type(lines: list[str]) -> list[str]:
    key = "default_install_hook_types:"
    at = next((i for i, ln in enumerate(lines) if ln.startswith(key)), None)
    if at is None:
        repos = next((i for i, ln in enumerate(lines) if ln.startswith("repos:")), 0)
        return [*lines[:repos], "default_install_hook_types: [pre-commit, post-commit]\n", *lines[repos:]]
    value = lines[at][len(key) :].split("#", 1)[0].strip()
    if value.startswith("["):
        items = [v.strip() for v in value.strip("[]").split(",") if v.strip()]
        if "post-commit" in items:
            return lines
        comment = lines[at][len(key) :].partition("#")[2]
        new = f"{key} [{', '.join([*items, 'post-commit'])}]" + (f"  #{comment}" if comment else "\n")
        return [*lines[:at], new if new.endswith("\n") else new + "\n", *lines[at + 1 :]]
    if value:
        raise InstallError(f"{PRE_COMMIT_CONFIG}: default_install_hook_types: add post-commit to it by hand")
    last = at
    indent = "  "
    for i in range(at + 1, len(lines)):
        if lines[i].lstrip().startswith("- "):
            last = i
            indent = lines[i][: len(lines[i]) - len(lines[i].lstrip())]
        elif lines[i].strip() and not lines[i][0].isspace():
            break
    return [*lines[: last + 1], f"{indent}- post-commit\n", *lines[last + 1 :]]


def edit_pre_commit_config(text: str | None, snippet: str) -> str | None:
    """The new file text with the mdspec hook and the post-commit hook type, or None if nothing to add."""
    try:
        data = yaml.safe_load(text) if text else {}
    except yaml.YAMLError as exc:
        why = " ".join(str(exc).split())  # PyYAML's messages span lines; errors are one line
        msg = f"{PRE_COMMIT_CONFIG}: not valid YAML ({why}); fix it, then run `mdspec init` again"
        raise InstallError(msg) from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise InstallError(f"{PRE_COMMIT_CONFIG}: expected a mapping at the top level")
    types = data.get("default_install_hook_types")
    has_type = isinstance(types, list) and "post-commit" in types
    has_hook = _has_mdspec_hook(data)
    if has_hook and has_type:
        return None
    lines = (text or "").splitlines(keepends=True)
    if not has_hook:
        lines = _add_repo(lines, snippet)
    if not has_type:
        lines = _add_hook_type(lines)
    new = "".join(lines)
    parsed = yaml.safe_load(new)
    # The edit must keep everything the user had and add exactly our parts.
    ok = _has_mdspec_hook(parsed) and "post-commit" in (parsed.get("default_install_hook_types") or [])
    for k, v in data.items():
        if k == "repos":
            ok = ok and parsed.get("repos", [])[: len(v or [])] == (v or [])
        elif k != "default_install_hook_types":
            ok = ok and parsed.get(k) == v
    if not ok:
        raise InstallError(f"{PRE_COMMIT_CONFIG}: could not add the mdspec hook safely; add this by hand:\n{snippet}")
    return new


def _yaml_string(value: str) -> str:
    """`value` as a YAML scalar that reads back as that string: a tag like `1.10` must not become a float."""
    try:
        if value and value.strip() == value and "#" not in value and yaml.safe_load(value) == value:
            return value
    except yaml.YAMLError:
        pass
    return json.dumps(value)  # a JSON string is a valid double-quoted YAML scalar


def hook_snippet(remote_url: str | None, rev: str | None) -> str:
    if remote_url:
        return templates.render(
            templates.read("pre-commit-remote.yaml"), url=_yaml_string(remote_url), rev=_yaml_string(rev or "")
        )
    return templates.read("pre-commit-local.yaml")


def install_pre_commit(repo: Repo, remote_url: str | None, rev: str | None, out: Printer) -> None:
    path = repo.top / PRE_COMMIT_CONFIG
    text = path.read_text(encoding="utf-8") if path.exists() else None
    new = edit_pre_commit_config(text, hook_snippet(remote_url, rev))
    if new is not None:
        path.write_text(new, encoding="utf-8")
        out(f"  {'updated' if text is not None else 'created'} {PRE_COMMIT_CONFIG}")
    proc = subprocess.run(
        [sys.executable, "-m", "pre_commit", "install", "--hook-type", "post-commit"],
        cwd=repo.top,
        env=git.clean_env(),
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        msg = " ".join(ln.strip() for ln in (proc.stdout + proc.stderr).splitlines() if ln.strip())
        raise InstallError(f"pre-commit install failed: {msg or f'exit status {proc.returncode}'}")
    out("  installed the post-commit hook with pre-commit")
    if not remote_url and shutil.which("mdspec") is None:
        out("  warning: `mdspec` is not on PATH; the local hook calls it by name, so commit from a shell where it is")


# --- plain git hook ---------------------------------------------------------------------------------


HOOK_LINE = "mdspec hook post-commit"


def hooks_dir(repo: Repo) -> tuple[Path, str | None]:
    """(the directory git runs hooks from, core.hooksPath when it is set): husky, lefthook or a team's
    hooks directory move hooks out of .git/hooks; git resolves a relative path from the top."""
    hooks_path = git.run(["config", "--get", "core.hooksPath"], repo.top, check=False).stdout.strip() or None
    where = Path(git.run(["rev-parse", "--git-path", "hooks"], repo.top).stdout.strip())
    return (where if where.is_absolute() else (repo.top / where)).resolve(), hooks_path


def install_git_hook(repo: Repo, out: Printer) -> None:
    hooks, _ = hooks_dir(repo)
    hooks.mkdir(parents=True, exist_ok=True)
    target, legacy = hooks / "post-commit", hooks / "post-commit.legacy"
    exe = shutil.which("mdspec") or str(Path(sys.argv[0]).resolve())
    shim = templates.hook_shim().replace("@MDSPEC@", exe)
    if target.exists():
        current = target.read_text(encoding="utf-8", errors="replace")
        if current == shim:
            return
        if SHIM_MARKER not in current:
            if HOOK_LINE in current:
                out(f"  {target} already calls `{HOOK_LINE}`; left as it is")
                return
            if legacy.exists():
                raise InstallError(f"{target} and {legacy} both exist: merge them by hand, then run init again")
            os.replace(target, legacy)
            out(f"  kept the existing hook as {legacy.name}; it still runs after mdspec's")
    target.write_text(shim, encoding="utf-8")
    target.chmod(0o755)
    out(f"  installed the plain git hook {target}")


def explain_hooks_path(hooks: Path, hooks_path: str, out: Printer) -> None:
    """pre-commit refuses to install while core.hooksPath is set: say what to add instead, in one line."""
    out(
        f"  core.hooksPath is {hooks_path}, where pre-commit does not install hooks: add the line "
        f"`{HOOK_LINE}` to {hooks / 'post-commit'} (or run `mdspec init --git-hook`, which adds it)"
    )


def init(
    start: Path, git_hook: bool, remote_url: str | None, rev: str | None, out: Printer, ci: str | None = None
) -> int:
    if remote_url and not rev:
        raise InstallError("--pre-commit-repo needs --rev (a tag or commit of that repository)")
    if git_hook and remote_url:
        raise InstallError("--git-hook and --pre-commit-repo exclude each other: choose one way to install")
    repo = Repo(start)
    out(f"mdspec init in {repo.top}")
    write_starters(repo.top, out)
    hooks, hooks_path = hooks_dir(repo)
    if git_hook:
        install_git_hook(repo, out)
    elif hooks_path:
        explain_hooks_path(hooks, hooks_path, out)
    else:
        install_pre_commit(repo, remote_url, rev, out)
    if ci:
        from mdspec.commands import ciconfig  # the CI file: written where absent, like the starters

        ciconfig.write(repo.top, ci, config.load(repo.top), out)
    out("Next: describe your application in spec/, then `git add -A && git commit`. mdspec commits nothing itself.")
    return 0
