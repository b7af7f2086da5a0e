# Sourced by the demo scripts: starts the AWS emulator (request signatures checked) as a
# coprocess (EMU_PID), and exports its endpoint and the read-only user's keys.
start_emulator() {
  coproc EMU { exec python3 tests/emulator/emulator.py --scenario "$1" 2>/dev/null; }
  read -r EMULATOR_INFO <&"${EMU[0]}"
  export AWS_ENDPOINT_URL BATON_GLOBAL_ACCESS_KEY_ID BATON_GLOBAL_SECRET_ACCESS_KEY
  AWS_ENDPOINT_URL=$(emulator_field 'd["endpoint"]')
  BATON_GLOBAL_ACCESS_KEY_ID=$(emulator_field 'd["reader"]["access_key_id"]')
  BATON_GLOBAL_SECRET_ACCESS_KEY=$(emulator_field 'd["reader"]["secret_access_key"]')
}

emulator_field() {
  python3 -c 'import json,sys; d=json.loads(sys.argv[1]); print(eval(sys.argv[2], {}, {"d": d}))' "$EMULATOR_INFO" "$1"
}
