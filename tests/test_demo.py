"""`mdspec demo` end to end: the real SDK against the fake Messages API, through pre-commit and a
background worker, to a landed generated commit."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from fakeapi import FakeAPI, fake_api  # noqa: F401

from mdspec.fast import trailers

COUNTING = "def top_words(text, n):\n    return []\n"
TESTS = "import unittest\n\n\nclass T(unittest.TestCase):\n    def test_empty(self):\n        pass\n"


def demo(tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mdspec", "demo", *args],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=180,
    )


def test_demo_follows_the_run_to_its_generated_commit(tmp_path: Path, fake_api: FakeAPI) -> None:  # noqa: F811
    fake_api.edit("create", "counting.py", file_text=COUNTING)
    fake_api.edit("create", "wordfreq.py", file_text="import counting\n")
    fake_api.edit("create", "test_wordfreq.py", file_text=TESTS)
    fake_api.bash("python3 -m unittest -q")
    fake_api.text("Add wordfreq and its tests\n\nImplemented spec/wordfreq.md.")
    where = tmp_path / "demo"
    proc = demo(tmp_path, "--dir", str(where))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
    assert "queued; the agent runs in the background" in out  # the hook's one line, through pre-commit
    assert "str_replace_based_edit_tool: create counting.py" in out
    assert "bash: python3 -m unittest -q" in out
    assert "landed" in out
    log = subprocess.run(["git", "log", "-2", "--format=%B%x00"], cwd=where, capture_output=True, text=True).stdout
    generated = log.split("\0")[0]
    assert generated.startswith("mdspec: Add wordfreq and its tests")
    assert trailers.values(generated, trailers.CHECK) == ["passed"]
    spec_sha = subprocess.run(["git", "rev-parse", "HEAD~1"], cwd=where, capture_output=True, text=True).stdout
    assert trailers.values(generated, trailers.IMPLEMENTS) == [spec_sha.strip()]
    assert (where / "counting.py").read_text() == COUNTING
    assert len(fake_api.requests) == 5


def test_demo_without_a_key_stops_before_anything(tmp_path: Path) -> None:
    where = tmp_path / "demo"
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANTHROPIC_")}
    proc = subprocess.run(
        [sys.executable, "-m", "mdspec", "demo", "--dir", str(where)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [proc.stderr.strip()]
    assert "ANTHROPIC_API_KEY" in proc.stderr
    assert not where.exists()
