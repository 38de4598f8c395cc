"""Which `GIT_*` variables a child process of mdspec keeps (DESIGN §3.1).

git exports variables into hooks that aim every git below at the committing repository and its index
(`GIT_DIR`, `GIT_INDEX_FILE` as a relative path, `GIT_WORK_TREE`, `GIT_PREFIX`, `GIT_AUTHOR_*`, …); mdspec
runs git in other directories and other indexes, so those must go. What says *how* the user's git reaches
remotes and credentials is the user's setup, not the hook's aim, and stays (pre-commit keeps the same
kind of list):

- `GIT_EXEC_PATH`: where git's own helper programs live (a relocated or self-built git needs it).
- `GIT_SSH`, `GIT_SSH_COMMAND`, `GIT_SSH_VARIANT`: how to reach ssh remotes (a deploy key, a jump host).
- `GIT_ASKPASS`, `GIT_TERMINAL_PROMPT`: how credentials are asked for; a detached worker has no terminal,
  and `GIT_TERMINAL_PROMPT=0` is what keeps a fetch from hanging on a prompt.
- `GIT_SSL_CAINFO`, `GIT_SSL_CAPATH`, `GIT_SSL_CERT`, `GIT_SSL_KEY`, `GIT_SSL_NO_VERIFY`, `GIT_HTTP_*`,
  `GIT_PROXY_*`: the TLS trust and proxy settings of a corporate network.
- `GIT_CONFIG_COUNT`, `GIT_CONFIG_KEY_<n>`, `GIT_CONFIG_VALUE_<n>`, `GIT_CONFIG_PARAMETERS`: configuration
  given on the command line or the environment (`git -c …`, a CI's injected credential helper); they
  change settings, never which repository or index is used.
- `GIT_CONFIG_GLOBAL`, `GIT_CONFIG_SYSTEM`, `GIT_CONFIG_NOSYSTEM`: which config files the user's git
  reads (a CI's or a test's isolated `~/.gitconfig`); without them mdspec's git would sign, name and
  reach remotes differently from the user's own.

Everything else starting with `GIT_` is dropped: repository and index selection (`GIT_DIR`,
`GIT_COMMON_DIR`, `GIT_INDEX_FILE`, `GIT_WORK_TREE`, `GIT_OBJECT_DIRECTORY`,
`GIT_ALTERNATE_OBJECT_DIRECTORIES`, `GIT_NAMESPACE`, `GIT_PREFIX`), identities and dates
(`GIT_AUTHOR_*`, `GIT_COMMITTER_*`: mdspec sets its own), `GIT_EDITOR`, `GIT_REFLOG_ACTION`,
`GIT_TRACE*` and `GIT_CURL_VERBOSE` (they write into the stderr mdspec reads git's errors from), and any
we do not know. `GIT_CONFIG` (no suffix) is dropped too: old gits read it as *the* config file, replacing
the repository's own.

Only `os` is imported: the hook fast path uses this for the git it runs and the worker it spawns.
"""

from __future__ import annotations

import os

TYPE_CHECKING = False  # mypy reads the import below; at run time the fast path is spared `collections.abc`
if TYPE_CHECKING:
    from collections.abc import Mapping

KEEP = frozenset(
    {
        "GIT_EXEC_PATH",
        "GIT_SSH",
        "GIT_SSH_COMMAND",
        "GIT_SSH_VARIANT",
        "GIT_ASKPASS",
        "GIT_TERMINAL_PROMPT",
        "GIT_SSL_CAINFO",
        "GIT_SSL_CAPATH",
        "GIT_SSL_CERT",
        "GIT_SSL_KEY",
        "GIT_SSL_NO_VERIFY",
        "GIT_CONFIG_COUNT",
        "GIT_CONFIG_PARAMETERS",
        "GIT_CONFIG_GLOBAL",
        "GIT_CONFIG_SYSTEM",
        "GIT_CONFIG_NOSYSTEM",
    }
)
KEEP_PREFIXES = ("GIT_HTTP_", "GIT_PROXY_", "GIT_CONFIG_KEY_", "GIT_CONFIG_VALUE_")


def keeps(name: str) -> bool:
    """Does a child process keep the variable `name`? (Anything not starting with `GIT_` is kept.)"""
    if not name.startswith("GIT_"):
        return True
    return name in KEEP or name.startswith(KEEP_PREFIXES)


def clean(base: Mapping[str, str] | None = None) -> dict[str, str]:
    """`base` (default: this process's environment) without the hook's `GIT_*` variables."""
    src = os.environ if base is None else base
    return {k: v for k, v in src.items() if keeps(k)}
