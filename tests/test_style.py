"""The code stays ruff and mypy clean (DESIGN §7); both come with the test extras."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest
from conftest import PROJECT


def _tool(name: str) -> list[str]:
    if (
        shutil.which(name) is None
        and subprocess.run([sys.executable, "-m", name, "--version"], capture_output=True).returncode != 0
    ):
        pytest.skip(f"{name} is not installed (pip install '.[test]')")
    return [sys.executable, "-m", name]


def test_ruff_is_clean() -> None:
    proc = subprocess.run(
        [*_tool("ruff"), "check", "mdspec", "tests", "benchmarks"], cwd=PROJECT, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_mypy_is_clean() -> None:
    proc = subprocess.run(
        [*_tool("mypy"), "mdspec", "tests", "benchmarks"], cwd=PROJECT, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_ruff_format_is_clean() -> None:
    proc = subprocess.run(
        [*_tool("ruff"), "format", "--check", "mdspec", "tests", "benchmarks"],
        cwd=PROJECT,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_the_state_dir_printer_and_temp_renames_are_spelled_once() -> None:
    """`.git/mdspec` is paths.STATE_DIRNAME, a printer is printer.Printer, and a write-to-temp-then-rename
    goes through atomic.write_atomic (the index swaps of a landing rename files git wrote, and the
    symlink case of a rollback cannot take bytes)."""
    allowed_replace = {"atomic.py": 1, "land.py": 2, "rollback.py": 1, "install.py": 1}
    for path in sorted((PROJECT / "mdspec").glob("*.py")):
        text = path.read_text(encoding="utf-8")
        assert '/ "mdspec"' not in text, f"{path.name} spells the state dir itself: use Repo.state_dir"
        if path.name != "printer.py":
            assert "Callable[[str], None]" not in text, f"{path.name}: use mdspec.printer.Printer"
        assert text.count("os.replace(") <= allowed_replace.get(path.name, 0), f"{path.name}: use atomic.write_atomic"
