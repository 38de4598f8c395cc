"""Entry point. `mdspec hook post-commit` takes a short way around click: it runs on every commit."""

from __future__ import annotations

import sys


def main() -> int:
    if sys.argv[1:3] == ["hook", "post-commit"] and len(sys.argv) == 3:
        from mdspec.commands.hook import post_commit

        return post_commit()
    from mdspec.cli import main as cli_main

    code = cli_main()
    try:
        sys.stdout.flush()  # here, not at exit: a reader that went away is an ordinary end (`| head -1`)
    except BrokenPipeError:
        from mdspec.errors import BROKEN_PIPE_EXIT, silence_stdout

        silence_stdout()
        return BROKEN_PIPE_EXIT
    return code


if __name__ == "__main__":
    sys.exit(main())
