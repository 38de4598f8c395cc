"""mdspec/records.py: run.json is a RunRecord on disk in the same JSON as before; a torn file is `unreadable`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import get_type_hints

from mdspec.run import records


def _full() -> records.RunRecord:
    return {
        "id": "20260101-000000-abcdef",
        "status": records.HELD,
        "reason": "the check failed",
        "branch": "refs/heads/main",
        "base": "a" * 40,
        "spec_commits": ["b" * 40],
        "spec_subjects": ["spec: x"],
        "backend": "anthropic",
        "model": "m",
        "pid": None,
        "started": 1.5,
        "ended": 2.5,
        "seconds": 1.0,
        "turns": 2,
        "tool_calls": 3,
        "usage": {"input_tokens": 10, "output_tokens": 5, "cost_usd": 0.01},
        "cost_usd": 0.01,
        "check": "failed",
        "check_rounds": ["1 failed"],
        "violations": [],
        "refusals": [],
        "stopped_by": None,
        "result": "c" * 40,
        "auto_land": True,
    }


def test_written_as_sorted_indented_json_and_read_back(tmp_path: Path) -> None:
    rec = _full()
    records.write(tmp_path / rec["id"], rec)
    text = (tmp_path / rec["id"] / "run.json").read_text()
    assert text == json.dumps(rec, indent=2, sort_keys=True) + "\n"  # the format older versions wrote
    assert records.read(tmp_path / rec["id"]) == rec


def test_an_old_record_reads_as_it_is(tmp_path: Path) -> None:
    old = {"id": "20250101-000000-000000", "status": "landed", "landed_as": "d" * 40, "someday": "a key we drop"}
    (tmp_path / "r").mkdir()
    (tmp_path / "r" / "run.json").write_text(json.dumps(old))
    assert dict(records.read(tmp_path / "r")) == old


def test_torn_or_wrong_files_read_as_unreadable(tmp_path: Path) -> None:
    for name, text in (("torn", '{"id": "x", "sta'), ("list", "[1, 2]"), ("empty", "")):
        (tmp_path / name).mkdir()
        (tmp_path / name / "run.json").write_text(text)
        rec = records.read(tmp_path / name)
        assert (rec["id"], rec["status"]) == (name, records.UNREADABLE)
        assert rec.get("reason", "").startswith("run.json unreadable: ")
    (tmp_path / "nostatus").mkdir()
    (tmp_path / "nostatus" / "run.json").write_text('{"branch": "refs/heads/main"}')
    rec = records.read(tmp_path / "nostatus")
    assert (rec["id"], rec["status"], rec.get("branch")) == ("nostatus", records.UNREADABLE, "refs/heads/main")
    assert records.read(tmp_path / "missing")["status"] == records.UNREADABLE


def test_every_key_is_documented_with_a_comment() -> None:
    source = Path(records.__file__).read_text()
    body = source[source.index("class RunRecord(") : source.index("def pause_point")]
    keys = set(get_type_hints(records.RunRecord)) - {"id", "status"}
    assert keys
    for key in keys:
        line = next(ln for ln in body.splitlines() if ln.strip().startswith(f"{key}:"))
        assert "  # " in line, f"{key} has no comment"
