"""Entry point. `mdspec hook post-commit` takes a short way around click: it runs on every commit."""

from __future__ import annotations

import sys


def main() -> int:
    if sys.argv[1:3] == ["hook", "post-commit"] and len(sys.argv) == 3:
        from mdspec.hook import post_commit

        return post_commit()
    from mdspec.cli import main as cli_main

    return cli_main()


if __name__ == "__main__":
    sys.exit(main())
