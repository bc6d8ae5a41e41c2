#!/usr/bin/env bash
# Load benchmark: a release build of hsq-config on a fresh database of the local PostgreSQL and a
# private Redis prefix, driven by wrk over loopback. Prints a Markdown report: throughput and
# latency percentiles per endpoint, and the process's peak resident memory. A benchmark, not a
# test: it asserts nothing and is not part of scripts/test.sh.
#
#   scripts/bench.sh                      # DURATION=15s CONNECTIONS=32 THREADS=2
#   DURATION=30s scripts/bench.sh > report.md
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-15s}
CONNECTIONS=${CONNECTIONS:-32}
THREADS=${THREADS:-2}
PG=${PG:-postgres://postgres@127.0.0.1:5432}

if ! command -v wrk >/dev/null; then
  apt-get update -qq && apt-get install -y -qq wrk >/dev/null
fi
cargo build --release --locked --quiet --bin hsq-config >&2

work=$(mktemp -d)
db="hsq_bench_$(openssl rand -hex 4)"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
token=$(openssl rand -hex 32)
prefix="hsqbench:$(openssl rand -hex 4):"
pid=""
cleanup() {
  if [ -n "$pid" ]; then
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  fi
  psql "$PG/postgres" -qc "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)" >/dev/null 2>&1 || true
  redis-cli --scan --pattern "${prefix}*" | xargs -r redis-cli del >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
psql "$PG/postgres" -qc "CREATE DATABASE \"$db\"" >/dev/null

DATABASE_URL="$PG/$db" REDIS_KEY_PREFIX="$prefix" ENCRYPTION_KEY=$(openssl rand -base64 32) \
ADMIN_API_TOKEN="$token" PORT="$port" BIND_ADDRESS=127.0.0.1 LOG_LEVEL=warn \
CONFIGURATION_API_RATE_LIMIT=1000000 CONFIGURATION_API_RATE_BURST=1000000 \
HEALTH_MONITOR_ENABLED=false OAUTH_REFRESHER_ENABLED=false \
  ./target/release/hsq-config serve >"$work/app.log" 2>&1 &
pid=$!
base="http://127.0.0.1:$port"
for _ in $(seq 1 100); do curl -fs "$base/health/ready" >/dev/null && break; sleep 0.1; done

config="$base/api/config/integrations/stripe/sandbox"
curl -fs -X PUT "$config" -H "Authorization: Bearer $token" -H 'Content-Type: application/json' \
  -d '{"settings":{"publishable_key":"pk_test_bench0000000000"},"secrets":{"secret_key":"sk_test_bench000000000000000000","webhook_secret":"whsec_bench00000000000000"}}' >/dev/null

cat >"$work/post.lua" <<LUA
wrk.method = "POST"
wrk.headers["Authorization"] = "Bearer $token"
LUA
cat >"$work/get.lua" <<LUA
wrk.headers["Authorization"] = "Bearer $token"
LUA

rss_kb() { awk '/VmRSS/ {print $2}' "/proc/$pid/status"; }
idle_rss=$(rss_kb)

echo "# hsq-config load benchmark"
echo
echo "$(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, wrk -t$THREADS -c$CONNECTIONS -d$DURATION over loopback,"
echo "release build, app and PostgreSQL and Redis on the same machine."
echo
echo "| endpoint | what it does | requests/s | p50 | p90 | p99 |"
echo "|---|---|---|---|---|---|"
run() {
  local name=$1 what=$2 script=$3 url=$4 out
  out=$(wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency -s "$script" "$url")
  local rps p50 p90 p99 errors
  rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
  p50=$(awk '$1=="50%" {print $2}' <<<"$out")
  p90=$(awk '$1=="90%" {print $2}' <<<"$out")
  p99=$(awk '$1=="99%" {print $2}' <<<"$out")
  errors=$(awk '/Non-2xx/ {print $NF}' <<<"$out")
  echo "| \`$name\` | $what${errors:+ ($errors non-2xx)} | $rps | $p50 | $p90 | $p99 |"
}
run "GET /health/ready" "PostgreSQL and Redis round trips" "$work/get.lua" "$base/health/ready"
run "GET …/stripe/sandbox" "masked read (no decryption)" "$work/get.lua" "$config"
run "POST …/stripe/sandbox/reveal" "decrypt + audit row on the hash chain, one transaction" "$work/post.lua" "$config/reveal"
echo
echo "Resident memory: $((idle_rss / 1024)) MiB idle, $(( $(awk '/VmHWM/ {print $2}' "/proc/$pid/status") / 1024 )) MiB peak."
audit_rows=$(psql "$PG/$db" -tAc "SELECT count(*) FROM configuration_audit_logs")
echo "Audit rows written during the run: $audit_rows (every reveal is audited)."
