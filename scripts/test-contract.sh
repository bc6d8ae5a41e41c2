#!/usr/bin/env bash
# The API contract, tested from outside: schemathesis (pinned, in a cached venv) runs every
# check against the running service with an admin and a viewer token, and must find nothing.
# Uses the local PostgreSQL and Redis with a throwaway database and key prefix.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
# shellcheck source=scripts/lib/common.sh
source "$here/lib/common.sh"

SCHEMATHESIS_VERSION=4.32.5
EXAMPLES=${CONTRACT_MAX_EXAMPLES:-25}
venv=${XDG_CACHE_HOME:-$HOME/.cache}/hsq-config/schemathesis-$SCHEMATHESIS_VERSION
if [[ ! -x $venv/bin/st ]]; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q "schemathesis==$SCHEMATHESIS_VERSION"
fi

bin=$root/target/debug/hsq-config
[[ -x $bin ]] || (cd "$root" && cargo build --locked --bin hsq-config)

work=$(mktemp -d)
db=hsq_contract_$(random_hex 6)
port=$(free_port)
admin=admin-$(random_hex 24)
prefix="hsqcontract:$(random_hex 6):"
cleanup() {
    [[ -n ${app_pid:-} ]] && kill "$app_pid" 2>/dev/null && wait "$app_pid" 2>/dev/null
    psql -h 127.0.0.1 -U postgres -qc "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)" >/dev/null 2>&1 || true
    redis-cli -h 127.0.0.1 --scan --pattern "${prefix}*" | xargs -r redis-cli -h 127.0.0.1 del >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT
psql -h 127.0.0.1 -U postgres -qc "CREATE DATABASE \"$db\"" >/dev/null

closed=http://127.0.0.1:9  # nothing listens: provider calls fail fast as "unreachable"
env DATABASE_URL="postgres://postgres@127.0.0.1:5432/$db" REDIS_URL=redis://127.0.0.1:6379 \
    REDIS_KEY_PREFIX="$prefix" ENCRYPTION_KEY="$(openssl rand -base64 32)" ADMIN_API_TOKEN="$admin" \
    PORT="$port" BIND_ADDRESS=127.0.0.1 LOG_FORMAT=json LOG_LEVEL=warn \
    CONFIGURATION_API_RATE_LIMIT=100000 CONFIGURATION_API_RATE_BURST=100000 \
    HEALTH_MONITOR_ENABLED=false OAUTH_REFRESHER_ENABLED=false CONFIG_VALIDATION_TIMEOUT=2 \
    OAUTH_PROVIDER_TIMEOUT=2 BACKUP_DIR="$work/backups" \
    OAUTH_RETURN_ALLOWED_ORIGINS=https://dashboard.example.test \
    STRIPE_API_BASE_URL=$closed HUBSPOT_API_BASE_URL=$closed QUICKBOOKS_API_BASE_URL=$closed \
    QUICKBOOKS_SANDBOX_API_BASE_URL=$closed \
    QUICKBOOKS_OAUTH_REDIRECT_URI="http://127.0.0.1:$port/api/config/quickbooks/callback" \
    HUBSPOT_OAUTH_REDIRECT_URI="http://127.0.0.1:$port/api/config/hubspot/callback" \
    STRIPE_OAUTH_REDIRECT_URI="http://127.0.0.1:$port/api/config/stripe/callback" \
    QUICKBOOKS_OAUTH_TOKEN_URL=$closed/token HUBSPOT_OAUTH_TOKEN_URL=$closed/token \
    STRIPE_OAUTH_TOKEN_URL=$closed/token \
    "$bin" serve >"$work/app.log" 2>&1 &
app_pid=$!
wait_for_http "http://127.0.0.1:$port/health/ready" 30 "$app_pid" || abort "the service did not start"

api() {
    curl -fsS -o /dev/null -X "$1" -H "Authorization: Bearer $admin" \
        -H 'Content-Type: application/json' -d "$3" "http://127.0.0.1:$port$2"
}
# Something to read: configs with OAuth apps, and a webhook.
api PUT /api/config/integrations/quickbooks/sandbox '{"settings":{"client_id":"ABclient"},"secrets":{"client_secret":"qb-secret-value"}}'
api PUT /api/config/integrations/stripe/sandbox '{"settings":{"connect_client_id":"ca_contract"},"secrets":{"secret_key":"sk_test_contract0123456789"}}'
api POST /api/config/webhooks '{"url":"https://hooks.example.com/contract","events":["config.updated"]}'
viewer=$(curl -fsS -X POST -H "Authorization: Bearer $admin" -H 'Content-Type: application/json' \
    -d '{"name":"contract-viewer","role":"viewer"}' "http://127.0.0.1:$port/api/config/api-tokens" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')

run() {
    local who=$1 token=$2
    section "schemathesis as $who ($EXAMPLES examples per operation, every check)"
    if (cd "$root/tests/contract" && "$venv/bin/st" run "http://127.0.0.1:$port/api/openapi.json" \
        --checks all --max-examples "$EXAMPLES" --workers 1 --seed 20261202 \
        -H "Authorization: Bearer $token") >"$work/st-$who.log" 2>&1; then
        pass "schemathesis as $who: no failures ($(grep -oE '[0-9]+ generated' "$work/st-$who.log" | head -1))"
    else
        fail "schemathesis as $who found failures"
        tail -n 120 "$work/st-$who.log"
    fi
}
run admin "$admin"
run viewer "$viewer"
summary
