#!/usr/bin/env bash
# The test command: unit tests of the connector and the host, then the end-to-end tests
# (they build aws_connector.wasm and start the AWS emulator themselves).
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh
cargo test --release --workspace
