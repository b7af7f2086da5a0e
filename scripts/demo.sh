#!/usr/bin/env bash
# The demo: build the component and the host, start the AWS emulator with a demo account
# (request signatures checked), sync it into sync.c1z, and list what was synced.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh
echo "building the component (aws_connector.wasm) and the host..." >&2
(cd guest && cargo build --release --target wasm32-wasip2 --quiet)
cp guest/target/wasm32-wasip2/release/aws_connector.wasm aws_connector.wasm
cargo build --release --quiet -p host

echo "starting the AWS emulator and seeding a demo account..." >&2
source scripts/emulator.sh
start_emulator iam
trap 'kill "$EMU_PID" 2>/dev/null || true' EXIT

target/release/host run aws_connector.wasm -f sync.c1z
echo
target/release/host resources -f sync.c1z
