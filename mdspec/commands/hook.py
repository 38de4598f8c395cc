"""`mdspec hook post-commit`: the fast path of mdspec/fast, with the slow path it may need handed in.

Imported on every commit (by `__main__` before click), so it imports only the fast package at the top;
the rest of mdspec is imported inside the methods, when a commit needs it.
"""

from __future__ import annotations

from mdspec.fast import hook


class _SlowPath(hook.SlowPath):
    def load_config(self, cfg_path: str) -> tuple[list[str], str]:
        from pathlib import Path

        from mdspec import config

        cfg = config.load_file(Path(cfg_path))
        return list(cfg.watch), "ci" if cfg.ci.mode == "ci" else "1" if cfg.background else "0"

    def run_foreground(self, top: str) -> int:
        from pathlib import Path

        from mdspec.errors import run_guarded
        from mdspec.run import runner

        return run_guarded(lambda: runner.work(Path(top), None, lambda s: print(s, flush=True)))

    def write_traceback(self, exc: BaseException) -> str:
        from mdspec.errors import write_traceback

        return str(write_traceback(exc))


def post_commit() -> int:
    """The hook's exit status: 0 unless the user must act (no config, a bad config)."""
    return hook.post_commit_guarded(_SlowPath())
