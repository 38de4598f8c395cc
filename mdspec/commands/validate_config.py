"""`mdspec validate-config`: load the config the way a run would, and say what it found."""

from __future__ import annotations

from pathlib import Path

from mdspec import config
from mdspec.git import Repo
from mdspec.printer import Printer


def validate_config(start: Path, file: Path | None, out: Printer) -> int:
    """0 when the config loads; a bad one raises ConfigError (one line naming the file and key)."""
    cfg = config.load_file(file) if file is not None else config.load(Repo(start).top)
    out(f"{cfg.config_name}: OK (backend {cfg.agent.backend}, watching {', '.join(cfg.watch)})")
    return 0
