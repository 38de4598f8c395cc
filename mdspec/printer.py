"""How commands talk to the user: each takes a `Printer` (click.echo from the CLI, a list's append in tests)."""

from __future__ import annotations

from collections.abc import Callable

Printer = Callable[[str], None]  # prints one line (no trailing newline) to the user
