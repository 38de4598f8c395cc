"""How commands talk to the user: each takes a `Printer` (click.echo from the CLI, a list's append in tests)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any

Printer = Callable[[str], None]  # prints one line (no trailing newline) to the user


def report(out: Printer, as_json: bool, data: Callable[[], Any], lines: Callable[[], Iterable[str]]) -> int:
    """A command's result as indented JSON (`--json`) or as text lines; the exit status 0."""
    if as_json:
        out(json.dumps(data(), indent=2, ensure_ascii=False))
    else:
        for line in lines():
            out(line)
    return 0
