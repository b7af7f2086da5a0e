#!/usr/bin/env bash
# Installs what building and testing need on a fresh machine: the WebAssembly target and
# the pinned AWS emulator. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

rustup target list --installed | grep -qx wasm32-wasip2 || rustup target add wasm32-wasip2
if ! python3 -c 'import moto, boto3, sys; sys.exit(moto.__version__ != "5.2.5")' 2>/dev/null; then
  python3 -m pip install --quiet --disable-pip-version-check -r tests/emulator/requirements.txt
fi
