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
coproc EMU { exec python3 tests/emulator/emulator.py --scenario iam 2>/dev/null; }
trap 'kill "$EMU_PID" 2>/dev/null || true' EXIT
read -r info <&"${EMU[0]}"
field() { python3 -c 'import json,sys; d=json.loads(sys.argv[1]); print(eval(sys.argv[2], {}, {"d": d}))' "$info" "$1"; }

export AWS_ENDPOINT_URL BATON_GLOBAL_ACCESS_KEY_ID BATON_GLOBAL_SECRET_ACCESS_KEY
AWS_ENDPOINT_URL=$(field 'd["endpoint"]')
BATON_GLOBAL_ACCESS_KEY_ID=$(field 'd["reader"]["access_key_id"]')
BATON_GLOBAL_SECRET_ACCESS_KEY=$(field 'd["reader"]["secret_access_key"]')

target/release/host run aws_connector.wasm -f sync.c1z
echo
target/release/host resources -f sync.c1z
