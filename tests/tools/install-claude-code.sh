#!/usr/bin/env bash
# Installs the pinned Claude Code CLI from the npm registry into .tools/claude-code (git-ignored), for
# tests/test_claude_code.py. Idempotent: an install that already answers with the pinned version is kept.
#
# The npm package is a thin wrapper: its platform binary comes from an optional dependency
# (@anthropic-ai/claude-code-linux-x64, ...) on the same registry, and its postinstall links it in place,
# so nothing is downloaded from anywhere else and node is not needed to run it afterwards.
#
# Writes .tools/claude-code/status: "ok <version>" or "failed: <why>", which the test reads to tell an
# install that failed (an error under CI) from one that never ran (a skip).
set -uo pipefail

VERSION=2.1.332
cd "$(dirname "$0")/../.."
dir=.tools/claude-code
bin=$dir/node_modules/.bin/claude
mkdir -p "$dir"

fail() {
    echo "failed: $*" > "$dir/status"
    echo "install-claude-code: $*" >&2
    exit 1
}

if [ -x "$bin" ] && [ "$("$bin" --version 2>/dev/null | cut -d' ' -f1)" = "$VERSION" ]; then
    echo "ok $VERSION" > "$dir/status"
    exit 0
fi
command -v npm >/dev/null 2>&1 || fail "npm is not installed (Debian: apt-get install npm)"
rm -rf "$dir/node_modules" "$dir/package.json" "$dir/package-lock.json"
# --include=optional: the platform binary is an optional dependency, so a user or CI npm config that
# omits optional dependencies would install the wrapper without it.
npm install --prefix "$dir" --no-audit --no-fund --no-save --include=optional --loglevel=error \
    "@anthropic-ai/claude-code@$VERSION" >&2 || fail "npm install @anthropic-ai/claude-code@$VERSION failed"
# An npm set to skip install scripts leaves the package's placeholder in place of the binary; running the
# package's own postinstall is its documented remedy.
if ! "$bin" --version >/dev/null 2>&1 && command -v node >/dev/null 2>&1; then
    node "$dir/node_modules/@anthropic-ai/claude-code/install.cjs" >&2 || true
fi
got=$("$bin" --version 2>&1) || fail "installed, but \`claude --version\` failed: ${got:0:200}"
[ "${got%% *}" = "$VERSION" ] || fail "installed, but \`claude --version\` says: ${got:0:200}"
echo "ok $VERSION" > "$dir/status"
echo "install-claude-code: Claude Code $VERSION in $dir"
