"""The package's import rules (docs/architecture.md), read from the source rather than trusted."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from conftest import PROJECT

PACKAGE = PROJECT / "mdspec"


def _runtime_nodes(tree: ast.AST) -> list[ast.AST]:
    """Every node, except what sits under `if TYPE_CHECKING:` (read by mypy, never imported)."""
    nodes: list[ast.AST] = []
    todo = [tree]
    while todo:
        node = todo.pop()
        nodes.append(node)
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            todo.extend(node.orelse)
            continue
        todo.extend(ast.iter_child_nodes(node))
    return nodes


def _imports(path: Path) -> set[str]:
    """Every module a file imports at run time, at any depth (a late import inside a function counts too)."""
    found: set[str] = set()
    for node in _runtime_nodes(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            if node.module == "mdspec":
                found.update(f"mdspec.{alias.name}" for alias in node.names)
    return found


def _modules(package: str) -> list[Path]:
    return sorted((PACKAGE / package).glob("*.py"))


@pytest.mark.parametrize("path", _modules("fast"), ids=lambda p: p.name)
def test_the_fast_path_imports_only_os_sys_and_itself(path: Path) -> None:
    outside = {m for m in _imports(path) if m not in ("__future__", "os", "sys") and not m.startswith("mdspec.fast")}
    assert outside == set(), f"{path.name} imports {sorted(outside)}"


def test_only_the_git_module_imports_pygit2() -> None:
    users = {p.relative_to(PACKAGE).as_posix() for p in PACKAGE.rglob("*.py") if "pygit2" in _imports(p)}
    assert users == {"git.py"}


def test_only_the_built_in_agent_imports_anthropic() -> None:
    users = {
        p.relative_to(PACKAGE).as_posix()
        for p in PACKAGE.rglob("*.py")
        if any(m.split(".")[0] == "anthropic" for m in _imports(p))
    }
    assert users == {"agents/agent.py"}


def test_nothing_imports_the_commands_but_the_cli_and_the_entry_point() -> None:
    # Commands sit on top: the engine never calls back into a command (that is how import cycles start).
    allowed = {"cli.py", "__main__.py"}
    users = {
        p.relative_to(PACKAGE).as_posix()
        for p in PACKAGE.rglob("*.py")
        if p.parent.name != "commands" and any(m.startswith("mdspec.commands") for m in _imports(p))
    }
    assert users <= allowed, sorted(users - allowed)


def test_the_run_engine_does_not_import_the_agents_at_module_level() -> None:
    # The worker imports an agent only for the run that needs it: the SDK is not paid by `mdspec status`.
    for path in _modules("run"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        top = {node.module for node in tree.body if isinstance(node, ast.ImportFrom) and node.module}
        assert not {m for m in top if m in ("mdspec.agents.agent", "mdspec.agents.backends")}, path.name


# Imports go one way: cli -> commands -> trace -> run -> agents -> exec -> (git, config, errors) -> fast.
BELOW = {
    "trace": ("mdspec.commands", "mdspec.cli"),
    "run": ("mdspec.commands", "mdspec.cli", "mdspec.trace"),
    "agents": ("mdspec.commands", "mdspec.cli", "mdspec.trace", "mdspec.run"),
    "exec": ("mdspec.commands", "mdspec.cli", "mdspec.trace", "mdspec.run", "mdspec.agents"),
}


@pytest.mark.parametrize("package", sorted(BELOW))
def test_no_package_imports_one_above_it(package: str) -> None:
    above = BELOW[package]
    found = {f"{path.name} -> {m}" for path in _modules(package) for m in _imports(path) if m.startswith(above)}
    assert found == set()


@pytest.mark.parametrize("module", ["git.py", "config.py", "errors.py", "templates.py", "printer.py"])
def test_the_ground_floor_imports_no_package_of_mdspec_but_the_fast_path(module: str) -> None:
    packages = ("mdspec.commands", "mdspec.trace", "mdspec.run", "mdspec.agents", "mdspec.exec", "mdspec.cli")
    assert {m for m in _imports(PACKAGE / module) if m.startswith(packages)} == set()
