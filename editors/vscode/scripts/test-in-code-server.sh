#!/usr/bin/env bash
# The extension in a real VS Code in a real browser, in one command:
#
#   editors/vscode/scripts/test-in-code-server.sh
#
# Builds the .vsix, installs code-server from npm (scripts/install-code-server.sh, once, into
# ~/.cache/ckptlint-editors), installs the .vsix into a fresh code-server profile, serves a
# folder with one Python file on 127.0.0.1 (--auth none), and drives it with Debian's Chromium
# through playwright-core (scripts/e2e.mjs): trust the folder, open the file, see CKPT002 in
# the Problems panel, apply its quick fix, save with ckptlint.fixAll on, compare the file on
# disk with `ckptlint check --fix`. Screenshots go to $E2E_SHOTS (default
# editors/vscode/.e2e/screenshots).
#
# Exit 0: passed. Exit 1: failed. Exit 3: NOT RUN (a tool is missing; the reason is printed).
# PYTHON: the interpreter with ckptlint and its lsp extra (default: python3 on PATH).
# CHROMIUM: the browser (default /usr/bin/chromium). CODE_SERVER_HOME: see install-code-server.sh.
set -uo pipefail
HERE="$(cd "$(dirname "$0")/.." && pwd)"
PYTHON="${PYTHON:-python3}"
CHROMIUM="${CHROMIUM:-/usr/bin/chromium}"
SHOTS="${E2E_SHOTS:-$HERE/.e2e/screenshots}"
not_run() { echo "VS Code e2e: NOT RUN: $*" >&2; exit 3; }

command -v node >/dev/null && command -v npm >/dev/null || not_run "node and npm are needed (apt-get install nodejs npm)"
[ -x "$CHROMIUM" ] || not_run "no Chromium at $CHROMIUM (apt-get install chromium, or set CHROMIUM)"
command -v rg >/dev/null || not_run "code-server needs ripgrep (apt-get install ripgrep)"
"$PYTHON" -c "import ckptlint.lsp.server" 2>/dev/null || not_run "$PYTHON has no ckptlint with the lsp extra (pip install '.[lsp]'), or set PYTHON"

set -e
cd "$HERE"
if [ ! -d node_modules ]; then
  npm ci --no-audit --no-fund >&2
fi
npm run --silent package >&2
ENTRY="$(scripts/install-code-server.sh)" || { rc=$?; [ "$rc" = 3 ] && not_run "code-server could not be installed (see above)"; exit 1; }

WORK="$(mktemp -d "${TMPDIR:-/tmp}/ckptlint-vscode-e2e.XXXXXX")"
SERVER_PID=""
cleanup() {
  if [ -n "$SERVER_PID" ]; then kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT

# the folder VS Code opens: one file with a torch.load finding (CKPT002, an unsafe quick fix)
# and a legacy-format save (CKPT009, a safe fix that fix-all on save applies)
WS="$WORK/project"
mkdir -p "$WS/.vscode" "$WORK/data/User" "$WORK/extensions"
printf '[tool.ckptlint]\n' > "$WS/pyproject.toml"
cat > "$WS/train.py" <<'PY'
import torch


def restore(model, path):
    state = torch.load(path, map_location="cpu")
    model.load_state_dict(state)
    return model


def export(model, path):
    torch.save(model.state_dict(), path, _use_new_zipfile_serialization=False)
PY
PYTHON_PATH="$(command -v "$PYTHON")"
printf '{"ckptlint.interpreter": ["%s"], "ckptlint.fixAll": true}\n' "$PYTHON_PATH" > "$WS/.vscode/settings.json"
cat > "$WORK/data/User/settings.json" <<'JSON'
{"workbench.startupEditor": "none", "telemetry.telemetryLevel": "off", "update.mode": "none",
 "extensions.autoCheckUpdates": false, "extensions.autoUpdate": false, "workbench.enableExperiments": false,
 "workbench.tips.enabled": false, "chat.disableAIFeatures": true}
JSON
# what the file must be after the quick fix and a fix-all save: `ckptlint check --fix` of the
# quick-fixed text
sed 's/map_location="cpu")/map_location="cpu", weights_only=True)/' "$WS/train.py" > "$WORK/expected.py"
"$PYTHON" -m ckptlint check --fix --no-cache "$WORK/expected.py" >/dev/null || true

PORT="$("$PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
printf 'auth: none\nbind-addr: 127.0.0.1:%s\ncert: false\n' "$PORT" > "$WORK/config.yaml"
common=(--config "$WORK/config.yaml" --user-data-dir "$WORK/data" --extensions-dir "$WORK/extensions")
node "$ENTRY" "${common[@]}" --install-extension "$HERE/ckptlint.vsix" >&2
node "$ENTRY" "${common[@]}" --disable-telemetry --disable-update-check "$WS" > "$WORK/code-server.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 1 120); do
  curl -s -o /dev/null "http://127.0.0.1:$PORT/healthz" && break
  kill -0 "$SERVER_PID" 2>/dev/null || { cat "$WORK/code-server.log" >&2; echo "VS Code e2e: code-server exited" >&2; exit 1; }
  sleep 0.5
done

mkdir -p "$SHOTS"
rm -f "$SHOTS"/*.png
set +e
CHROMIUM="$CHROMIUM" node scripts/e2e.mjs "http://127.0.0.1:$PORT/?folder=$WS" "$WS" "$SHOTS" "$WORK/expected.py"
rc=$?
set -e
if [ "$rc" = 0 ]; then
  echo "VS Code e2e: passed (code-server $(node -p "require('$(dirname "$ENTRY")/../../package.json').version"), $("$CHROMIUM" --version 2>/dev/null | head -1)); screenshots in $SHOTS" >&2
else
  echo "VS Code e2e: FAILED; code-server's log:" >&2
  tail -40 "$WORK/code-server.log" >&2
  exit 1
fi
