#!/usr/bin/env bash
# The service-mode demo: `host serve --config examples/host.toml` runs the AWS connector
# against the emulator and a third-party test connector against a local upstream, side by
# side. After two sync cycles it prints the metrics, kills the test connector's upstream,
# shows that only that connector fails, and stops the host with SIGTERM.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh
echo "building the components and the host..." >&2
(cd guest && cargo build --release --target wasm32-wasip2 --quiet)
(cd tests/components && cargo build --release --target wasm32-wasip2 --quiet)
cargo build --release --quiet -p host

echo "starting the AWS emulator and the test connector's upstream..." >&2
source scripts/emulator.sh
start_emulator iam
upstream_dir=$(mktemp -d)
printf 'alpha\nbeta\ngamma\n' > "$upstream_dir/things.txt"
python3 -m http.server 8765 --bind 127.0.0.1 --directory "$upstream_dir" >/dev/null 2>&1 &
UPSTREAM_PID=$!
HOST_PID=
cleanup() {
  kill "$EMU_PID" "$UPSTREAM_PID" 2>/dev/null || true
  [ -n "$HOST_PID" ] && kill "$HOST_PID" 2>/dev/null || true
  rm -rf "$upstream_dir"
}
trap cleanup EXIT
export BATON_HOST_API_TOKEN=demo-token

metrics() {
  python3 - <<'PY'
import urllib.request
text = urllib.request.urlopen("http://127.0.0.1:9090/metrics").read().decode()
keep = ("baton_connector_up", "baton_syncs_total", "baton_last_sync_duration_seconds",
        "baton_errors_total", "baton_aws_calls_total", "baton_uploads_total", "baton_resources")
for line in text.splitlines():
    if line.startswith(keep):
        print("  " + line)
PY
}

rm -rf demo-state demo-out
target/release/host serve --config examples/host.toml &
HOST_PID=$!
sleep 22
echo; echo "== /metrics after two sync cycles of each connector =="; metrics

echo; echo "== killing the test connector's upstream ==" >&2
kill "$UPSTREAM_PID"
# The failing connector retries each page a few times (2 + 4 + 8 s) before giving up.
sleep 30
echo; echo "== /metrics: 'things' fails, 'aws' goes on =="; metrics

echo; echo "== SIGTERM ==" >&2
kill -TERM "$HOST_PID"
wait "$HOST_PID"
HOST_PID=
echo; echo "== uploaded files =="
find demo-out -name '*.c1z' | sort
