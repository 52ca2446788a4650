#!/usr/bin/env bash
# Install code-server (VS Code served to a browser) from the npm registry, without any download
# from elsewhere, into $CODE_SERVER_HOME (default ~/.cache/ckptlint-editors/code-server).
# Idempotent: a finished install is reused. Prints the path of the code-server entry point.
#
# Needs: node 20 and npm (code-server 4.100.x runs on node 20; 4.101+ needs node 22+), a C/C++
# toolchain and python3 for node-gyp, Debian's ripgrep and libkrb5-dev (the kerberos module).
#
# Why each step: the package's postinstall would `npm install` VS Code's own dependencies and
# run their install scripts; @vscode/ripgrep's downloads a binary from a host that is not a
# package registry. So scripts are skipped, ripgrep comes from Debian, and the native modules
# are built from source with `npm rebuild`; the two symlinks are what postinstall.sh makes.
set -euo pipefail
VERSION="${CODE_SERVER_VERSION:-4.100.3}"
HOME_DIR="${CODE_SERVER_HOME:-$HOME/.cache/ckptlint-editors/code-server}"
PKG="$HOME_DIR/node_modules/code-server"
say() { echo "install-code-server: $*" >&2; }

if [ -f "$HOME_DIR/.installed-$VERSION" ]; then
  echo "$PKG/out/node/entry.js"
  exit 0
fi
for tool in node npm rg make g++ python3; do
  command -v "$tool" >/dev/null || { say "missing $tool"; exit 3; }
done
major=$(node -p 'process.versions.node.split(".")[0]')
[ "$major" = 20 ] || { say "code-server $VERSION needs node 20 (found $(node --version))"; exit 3; }
[ -e /usr/include/krb5.h ] || [ -e /usr/include/gssapi/gssapi.h ] || { say "missing libkrb5-dev (apt-get install libkrb5-dev)"; exit 3; }

mkdir -p "$HOME_DIR"
cd "$HOME_DIR"
[ -f package.json ] || echo '{"name": "ckptlint-code-server", "private": true}' > package.json
say "npm install code-server@$VERSION (scripts skipped)"
npm install --ignore-scripts --no-audit --no-fund "code-server@$VERSION" >&2
say "building argon2 from source"
npm_config_yes=true npm rebuild argon2 --build-from-source >&2

cd "$PKG/lib/vscode"
say "VS Code's own dependencies (scripts skipped)"
npm install --omit=dev --ignore-scripts --no-audit --no-fund >&2
mkdir -p node_modules/@vscode/ripgrep/bin
cp "$(command -v rg)" node_modules/@vscode/ripgrep/bin/rg
say "building the native modules"
npm_config_yes=true npm rebuild >&2
# what code-server's postinstall.sh makes
ln -sfn node_modules node_modules.asar
(cd bin/remote-cli && ln -sfn code-linux.sh code-server)
(cd bin/helpers && ln -sfn browser-linux.sh browser.sh)

touch "$HOME_DIR/.installed-$VERSION"
echo "$PKG/out/node/entry.js"
