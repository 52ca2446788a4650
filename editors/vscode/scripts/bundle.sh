#!/usr/bin/env bash
# A .vsix that carries its own ckptlint (bundled/libs), used when the interpreter has none
# (or always, with ckptlint.importStrategy = useBundled). The copy holds compiled wheels
# (LibCST), so that .vsix runs only with this platform and Python version.
#   PYTHON=python3.11 editors/vscode/scripts/bundle.sh
set -euo pipefail
HERE="$(cd "$(dirname "$0")/.." && pwd)"
PYTHON="${PYTHON:-python3}"
rm -rf "$HERE/bundled/libs"
"$PYTHON" -m pip install --quiet --target "$HERE/bundled/libs" "$HERE/../..[lsp]"
cd "$HERE"
[ -d node_modules ] || npm ci --no-audit --no-fund
npm run --silent package
echo "bundled: $HERE/ckptlint.vsix (with $("$PYTHON" --version) libraries)"
