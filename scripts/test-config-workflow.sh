#!/usr/bin/env bash
# End-to-end check of a running hsq-config stack — docker compose or plain processes — as an
# operator runs it after a deploy or an upgrade. Each step prints PASS, FAIL or SKIP; the script
# exits non-zero when any step fails.
#
#   make test-config-workflow                       # the compose stack, from .env
#   API_URL=http://127.0.0.1:13000 NGINX_URL=http://127.0.0.1:18080 \
#   API_TOKEN=... DATABASE_URL=postgres://... REDIS_URL=redis://... \
#   BACKUP_DIR=/var/lib/hsq/backups scripts/test-config-workflow.sh
#
# Settings (environment):
#   API_URL           the app (default: through nginx, http://127.0.0.1:18080, since the compose
#                     app has no fixed host port; a single process: http://127.0.0.1:13000); in
#                     production, where only nginx is published, the public URL
#   NGINX_URL         nginx (default http://127.0.0.1:18080); empty skips the nginx checks
#   API_TOKEN         an admin bearer token (default: ADMIN_API_TOKEN, from the environment,
#                     .env, or secrets/admin_api_token.txt)
#   DATABASE_URL      PostgreSQL, for the schema check (compose: through cw_hsq_postgres)
#   REDIS_URL         Redis, for the Redis checks (compose: through cw_hsq_redis)
#   REDIS_KEY_PREFIX  the app's key prefix (default hsq:)
#   BACKUP_DIR        backup directory to check (compose: /app/backups in cw_hsq_app)
#   STACK             compose | local | auto (default: compose when its containers run)
#   COMPOSE           compose command (default "docker compose"), with any -f options
#   DASHBOARD_REQUIRED  true: /settings/ must answer 200 (default false: any answer from
#                     nginx with the security headers passes, the dashboard may be elsewhere)
#   CHECK_RATE_LIMITS true (default): send bursts through nginx to see 429s
#   WORKFLOW_FORCE    true: run the create/delete workflow even if stripe/sandbox exists
#                     (it would be replaced and then deleted)
#   CURL_INSECURE     true: accept a self-signed certificate on NGINX_URL/API_URL
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=scripts/lib/common.sh
source "$here/lib/common.sh"

API_URL=${API_URL:-http://127.0.0.1:18080}
API_URL=${API_URL%/}
NGINX_URL=${NGINX_URL-http://127.0.0.1:18080}
NGINX_URL=${NGINX_URL%/}
API_TOKEN=$(resolve_api_token "$(cd "$here/.." && pwd)")
REDIS_KEY_PREFIX=${REDIS_KEY_PREFIX:-hsq:}
STACK=${STACK:-auto}
COMPOSE=${COMPOSE:-docker compose}
DASHBOARD_REQUIRED=${DASHBOARD_REQUIRED:-false}
CHECK_RATE_LIMITS=${CHECK_RATE_LIMITS:-true}
WORKFLOW_FORCE=${WORKFLOW_FORCE:-false}

need curl python3 openssl
[[ -n $API_TOKEN ]] || die "set API_TOKEN (an admin bearer token), or ADMIN_API_TOKEN in .env"

work=$(mktemp -d "${TMPDIR:-/tmp}/hsq-workflow.XXXXXX")
created_config=false
cleanup() {
    local status=$?
    if [[ $created_config == true ]]; then
        # The workflow stopped half-way: do not leave its test configuration behind.
        api DELETE /api/config/integrations/stripe/sandbox >/dev/null 2>&1 || true
    fi
    rm -rf "$work"
    return "$status"
}
trap cleanup EXIT

curl_opts=(-sS --max-time 20)
if [[ ${CURL_INSECURE:-false} == true ]]; then
    curl_opts+=(-k)
fi

read -r -a compose_cmd <<<"$COMPOSE"
compose() { "${compose_cmd[@]}" "$@"; }

if [[ $STACK == auto ]]; then
    STACK=local
    if command -v docker >/dev/null 2>&1 && [[ -n $(compose ps -q cw_hsq_app 2>/dev/null) ]]; then
        STACK=compose
    fi
fi

# --- helpers -------------------------------------------------------------------------------

STATUS=""
# Through nginx (production: API_URL is the nginx URL) the calls below can outrun the `config`
# zone; a 429 is then waited out (Retry-After) and the call repeated, except where 429s are what
# is being checked (RETRY_ON_429=false).
RETRY_ON_429=true

# send ID AUTH METHOD URL [curl options...]: one request, with the admin token when AUTH is
# true (handed to curl on stdin, never on a command line); headers in $work/ID.h, body in
# $work/ID.b, status code in $STATUS.
send() {
    local id=$1 auth=$2 method=$3 url=$4 attempt config="" delay
    shift 4
    if [[ $auth == true ]]; then
        config=$(printf 'header = "Authorization: Bearer %s"\n' "$API_TOKEN")
    fi
    for attempt in 1 2 3 4; do
        STATUS=$(printf '%s\n' "$config" |
            curl "${curl_opts[@]}" -K - -X "$method" -D "$work/$id.h" -o "$work/$id.b" \
                -w '%{http_code}' "$@" "$url" 2>"$work/$id.err" || true)
        [[ -n $STATUS ]] || STATUS=000
        if [[ $STATUS != 429 || $RETRY_ON_429 != true || $attempt == 4 ]]; then
            return 0
        fi
        delay=$(header_value "$work/$id.h" Retry-After)
        delay=${delay//[^0-9]/}
        sleep "$((${delay:-1} > 5 ? 5 : ${delay:-1}))"
    done
}

request() {
    local id=$1
    shift
    send "$id" false "$@"
}

authed() {
    local id=$1
    shift
    send "$id" true "$@"
}

# api METHOD PATH [curl options...]: an authenticated call to API_URL; prints the body.
api() {
    local method=$1 path=$2
    shift 2
    printf 'header = "Authorization: Bearer %s"\n' "$API_TOKEN" |
        curl "${curl_opts[@]}" -K - -X "$method" "$@" "$API_URL$path"
}

h() { header_value "$work/$1.h" "$2"; }

# expect ID WANT DESCRIPTION: PASS when the last status is WANT (several allowed: "200|201").
expect() {
    local id=$1 want=$2 description=$3
    if [[ "|$want|" == *"|$STATUS|"* ]]; then
        pass "$description ($STATUS)"
        return 0
    fi
    fail "$description: expected $want, got $STATUS"
    if [[ -s $work/$id.err ]]; then
        info "curl: $(head -c 200 "$work/$id.err")"
    fi
    info "body: $(head -c 300 "$work/$id.b" 2>/dev/null || true)"
    return 1
}

# json ID PYTHON-EXPRESSION: evaluates the expression with d = the parsed body of ID.
json() {
    python3 - "$work/$1.b" "$2" <<'PY'
import json
import sys

with open(sys.argv[1]) as f:
    d = json.load(f)
result = eval(sys.argv[2], {"d": d})
print(result if not isinstance(result, (dict, list)) else json.dumps(result))
PY
}

contains() { grep -qF -- "$2" "$work/$1.b"; }

security_headers_ok() {
    local id=$1
    [[ $(h "$id" X-Content-Type-Options) == nosniff ]] &&
        [[ $(h "$id" X-Frame-Options) == DENY ]] &&
        [[ -n $(h "$id" Referrer-Policy) ]]
}

# Component statuses of /api/config/health, as "name=status" lines, whatever the shape
# (objects next to "status", under "components", or a list of objects with a name).
health_components() {
    python3 - "$work/$1.b" <<'PY'
import json
import sys

with open(sys.argv[1]) as f:
    d = json.load(f)
components = d.get("components", d.get("checks"))
if components is None:  # components as top-level objects next to "status"
    components = {k: v for k, v in d.items() if isinstance(v, dict) and "status" in v}
if isinstance(components, list):
    components = {c.get("name", c.get("component", "?")): c for c in components}
for name, value in components.items():
    status = value.get("status") if isinstance(value, dict) else value
    print(f"{name}={status}")
PY
}

section "hsq-config workflow check ($STACK stack; API $API_URL; nginx ${NGINX_URL:-none})"

# --- 1. services healthy -------------------------------------------------------------------

section "services healthy"
if [[ $STACK == compose ]]; then
    for service in cw_hsq_app cw_hsq_postgres cw_hsq_redis cw_hsq_nginx; do
        container=$(compose ps -q "$service" 2>/dev/null | head -n 1 || true)
        if [[ -z $container ]]; then
            fail "container $service is running"
            continue
        fi
        health=$(docker inspect --format '{{if .State.Health}}{{.State.Health.Status}}{{else}}no healthcheck{{end}}' "$container" 2>&1 || true)
        if [[ $health == healthy ]]; then
            pass "container $service is healthy"
        else
            fail "container $service is healthy: $health"
        fi
    done
else
    skip "container health (not a compose stack; checking the processes over HTTP)"
fi

request health GET "$API_URL/health"
expect health 200 "GET /health" &&
    check "GET /health says {\"status\":\"ok\"}" test "$(json health 'd.get("status")')" = ok
request ready GET "$API_URL/health/ready"
expect ready 200 "GET /health/ready (PostgreSQL and Redis answer)" || true
request config_health GET "$API_URL/api/config/health"
if expect config_health 200 "GET /api/config/health"; then
    overall=$(json config_health 'd.get("status")' || true)
    if [[ $overall == healthy || $overall == degraded ]]; then
        pass "overall health is $overall"
    else
        fail "overall health is ${overall:-missing}"
    fi
    health_components config_health >"$work/components" || true
    info "components: $(tr '\n' ' ' <"$work/components")"
    for component in database redis keyring migrations; do
        state=$(sed -n "s/^$component=//p" "$work/components")
        case $state in
            ok | healthy | up | pass) pass "health component $component is $state" ;;
            *) fail "health component $component is ${state:-missing}" ;;
        esac
    done
    if grep -qE '(postgres|postgresql|redis)://' "$work/config_health.b"; then
        fail "health report leaks a connection URL"
    else
        pass "health report holds no connection URL"
    fi
fi

# --- 2. config API -------------------------------------------------------------------------

section "configuration API"
authed list GET "$API_URL/api/config/integrations"
expect list 200 "GET /api/config/integrations with the admin token" || true
check "responses carry x-request-id" test -n "$(h list x-request-id)"
request anonymous GET "$API_URL/api/config/integrations"
expect anonymous 401 "GET /api/config/integrations without a token is refused" || true
request wrong_token GET "$API_URL/api/config/integrations" -H "Authorization: Bearer wrong-$(random_hex 20)"
expect wrong_token 401 "a wrong token is refused" || true
authed status GET "$API_URL/api/config/status"
expect status 200 "GET /api/config/status" || true

# --- 3. Redis ------------------------------------------------------------------------------

section "Redis"
redis_cmd=()
if [[ $STACK == compose ]]; then
    # In production Redis has a password, kept in a secret file inside its container.
    # shellcheck disable=SC2016 # expanded inside the container
    redis_cmd=("${compose_cmd[@]}" exec -T cw_hsq_redis sh -c \
        'if [ -r /run/secrets/redis_password ]; then REDISCLI_AUTH=$(cat /run/secrets/redis_password); export REDISCLI_AUTH; fi; exec redis-cli "$@"' redis-cli)
elif [[ -n ${REDIS_URL:-} ]] && command -v redis-cli >/dev/null 2>&1; then
    redis_cmd=(redis-cli -u "$REDIS_URL")
fi
if ((${#redis_cmd[@]} == 0)); then
    skip "Redis checks (set REDIS_URL and install redis-cli)"
else
    check "Redis answers PING" test "$("${redis_cmd[@]}" PING 2>&1)" = PONG
    key="${REDIS_KEY_PREFIX}oauth:state:workflow-check-$(random_hex 16)"
    value="workflow-check-$(random_hex 8)"
    check "an OAuth state key can be stored under the prefix ($REDIS_KEY_PREFIX) with a TTL" \
        test "$("${redis_cmd[@]}" SET "$key" "$value" EX 60 NX 2>&1)" = OK
    ttl=$("${redis_cmd[@]}" TTL "$key" 2>&1 || true)
    ttl=${ttl//[^0-9-]/}
    check "the key expires (TTL ${ttl:-none} s)" between "${ttl:-0}" 1 60
    check "the key is consumed once with GETDEL" test "$("${redis_cmd[@]}" GETDEL "$key" 2>&1)" = "$value"
    check "nothing is left after GETDEL" test "$("${redis_cmd[@]}" EXISTS "$key" 2>&1)" = 0
    policy=$("${redis_cmd[@]}" CONFIG GET maxmemory-policy 2>&1 | tail -n 1 || true)
    case $policy in
        noeviction) pass "Redis eviction policy is noeviction (OAuth state and locks are never evicted)" ;;
        *ERR* | *unknown*) skip "Redis eviction policy (CONFIG is disabled: $policy)" ;;
        *) fail "Redis eviction policy is $policy; it can evict OAuth state and locks (use noeviction)" ;;
    esac
fi

# --- 4. database schema --------------------------------------------------------------------

section "database schema"
psql_cmd=()
if [[ $STACK == compose ]]; then
    # shellcheck disable=SC2016 # expanded inside the container
    psql_cmd=("${compose_cmd[@]}" exec -T cw_hsq_postgres sh -c 'exec psql -X -U "$POSTGRES_USER" -d "$POSTGRES_DB" "$@"' psql)
elif [[ -n ${DATABASE_URL:-} ]] && command -v psql >/dev/null 2>&1; then
    psql_cmd=(psql -X "$DATABASE_URL")
fi
if ((${#psql_cmd[@]} == 0)); then
    skip "schema checks (set DATABASE_URL and install psql)"
else
    tables=$("${psql_cmd[@]}" -Atc "select table_name from information_schema.tables where table_schema = current_schema()" 2>&1 || true)
    for table in integration_configs oauth_tokens webhook_configurations configuration_audit_logs \
        api_tokens keyring_check _sqlx_migrations; do
        if grep -qx "$table" <<<"$tables"; then
            pass "table $table exists"
        else
            fail "table $table exists"
        fi
    done
    failed=$("${psql_cmd[@]}" -Atc "select count(*) from _sqlx_migrations where not success" 2>&1 || true)
    check "no migration is recorded as failed" test "$failed" = 0
    applied=$("${psql_cmd[@]}" -Atc "select count(*) from _sqlx_migrations" 2>&1 || true)
    info "$applied migrations applied"
fi

# --- 5. backup directory -------------------------------------------------------------------

section "backup directory"
if [[ $STACK == compose ]]; then
    # shellcheck disable=SC2016 # expanded inside the container
    if compose exec -T cw_hsq_app sh -c 'd=${BACKUP_DIR:-/app/backups}; p="$d/.workflow-check-$$"; : >"$p" && rm -f "$p"' 2>"$work/backup.err"; then
        pass "the backup directory in cw_hsq_app is writable by the service user"
    else
        fail "the backup directory in cw_hsq_app is writable: $(head -c 200 "$work/backup.err")"
    fi
elif [[ -n ${BACKUP_DIR:-} ]]; then
    probe="$BACKUP_DIR/.workflow-check-$$"
    if [[ -d $BACKUP_DIR ]] && : >"$probe" 2>/dev/null && rm -f "$probe"; then
        pass "BACKUP_DIR ($BACKUP_DIR) is writable"
    else
        fail "BACKUP_DIR ($BACKUP_DIR) exists and is writable"
    fi
else
    skip "backup directory (set BACKUP_DIR)"
fi

# --- 6. settings ---------------------------------------------------------------------------

section "required settings"
if [[ $STACK == compose ]]; then
    # Names only: never print a value.
    # shellcheck disable=SC2016 # expanded inside the container
    missing=$(compose exec -T cw_hsq_app sh -c '
        for name in DATABASE_URL REDIS_URL ENCRYPTION_KEY; do
            eval "value=\${$name:-}"; eval "file=\${${name}_FILE:-}"
            if [ -z "$value" ] && { [ -z "$file" ] || [ ! -s "$file" ]; }; then echo "$name"; fi
        done' 2>&1 || echo "(could not run a shell in cw_hsq_app)")
    if [[ -z $missing ]]; then
        pass "DATABASE_URL, REDIS_URL and ENCRYPTION_KEY (or their _FILE) are set in cw_hsq_app"
    else
        fail "settings missing in cw_hsq_app: $(tr '\n' ' ' <<<"$missing")"
    fi
fi
# What the running service reports proves its settings loaded and work.
if [[ -s $work/components ]]; then
    check "ENCRYPTION_KEY loaded and opens the stored data (keyring ok)" \
        grep -qE '^keyring=(ok|healthy|up|pass)$' "$work/components"
else
    fail "the keyring state is known (GET /api/config/health did not answer)"
fi

# --- 7. workflow: create -> read masked -> reveal -> audit -> delete -----------------------

section "workflow: create, read masked, reveal, audit, delete (stripe/sandbox)"
config_path=/api/config/integrations/stripe/sandbox
secret_key="sk_test_workflow$(random_hex 16)"
publishable_key="pk_test_workflow$(random_hex 8)"
run_workflow=true
authed before GET "$API_URL$config_path"
if [[ $STATUS == 200 && $WORKFLOW_FORCE != true ]]; then
    skip "workflow: stripe/sandbox is already configured here and would be replaced and deleted (set WORKFLOW_FORCE=true)"
    run_workflow=false
elif [[ $STATUS != 404 && $STATUS != 200 ]]; then
    expect before 404 "stripe/sandbox can be read before the workflow" || true
    run_workflow=false
fi

if [[ $run_workflow == true ]]; then
    started=$(date -u +%Y-%m-%dT%H:%M:%SZ)
    body=$(printf '{"enabled":true,"settings":{"publishable_key":"%s"},"secrets":{"secret_key":"%s"}}' \
        "$publishable_key" "$secret_key")
    authed create PUT "$API_URL$config_path" -H 'Content-Type: application/json' --data "$body"
    if expect create "201|200" "PUT $config_path creates the configuration"; then
        created_config=true
        if contains create "$secret_key"; then
            fail "the PUT response does not echo the secret"
        else
            pass "the PUT response does not echo the secret"
        fi
    fi

    authed read GET "$API_URL$config_path"
    if expect read 200 "GET $config_path"; then
        if contains read "$secret_key"; then
            fail "GET returns the secret masked (the plaintext is in the body)"
        else
            pass "GET returns no plaintext secret"
        fi
        masked=$(json read 'd.get("secrets", {}).get("secret_key", "")' 2>/dev/null || true)
        check "the secret is shown masked ($masked)" grep -q '\*' <<<"$masked"
        check "GET carries an ETag" test -n "$(h read ETag)"
        check "GET keeps the plain setting" contains read "$publishable_key"
    fi

    authed reveal POST "$API_URL$config_path/reveal"
    if expect reveal 200 "POST $config_path/reveal"; then
        check "reveal returns the plaintext secret" contains reveal "$secret_key"
        check "reveal is not cacheable (Cache-Control: no-store)" grep -qi 'no-store' <<<"$(h reveal Cache-Control)"
    fi

    authed audit GET "$API_URL/api/config/audit?provider=stripe&environment=sandbox&since=$started&limit=100"
    if expect audit 200 "GET /api/config/audit?provider=stripe"; then
        actions=$(json audit '" ".join(sorted({i.get("action", "") for i in d.get("items", [])}))' 2>/dev/null || true)
        info "audit actions since $started: ${actions:-none}"
        check "the audit log records config_created" grep -qw config_created <<<"$actions"
        check "the audit log records secret_revealed" grep -qw secret_revealed <<<"$actions"
        if contains audit "$secret_key"; then
            fail "the audit log holds no secret value"
        else
            pass "the audit log holds no secret value"
        fi
    fi

    authed delete DELETE "$API_URL$config_path"
    if expect delete 204 "DELETE $config_path"; then
        created_config=false
    fi
    authed gone GET "$API_URL$config_path"
    expect gone 404 "the configuration is gone after DELETE" || true
fi

# --- 8. nginx ------------------------------------------------------------------------------

if [[ -z $NGINX_URL ]]; then
    section "nginx"
    skip "nginx checks (NGINX_URL is empty)"
else
    section "nginx routes ($NGINX_URL)"
    tls=false
    [[ $NGINX_URL == https://* ]] && tls=true

    request n_health GET "$NGINX_URL/health"
    expect n_health 200 "nginx: /health reaches the app" || true
    check "nginx: security headers on /health" security_headers_ok n_health
    if [[ $tls == true ]]; then
        check "nginx: HSTS over TLS" test -n "$(h n_health Strict-Transport-Security)"
    fi

    authed n_config GET "$NGINX_URL/api/config/integrations"
    expect n_config 200 "nginx: /api/config/ reaches the app with the token" || true
    check "nginx: security headers on /api/config/" security_headers_ok n_config

    request n_anonymous GET "$NGINX_URL/api/config/integrations"
    expect n_anonymous 401 "nginx: the app's 401 passes through" || true
    check "nginx: security headers on a 401" security_headers_ok n_anonymous

    request n_oauth GET "$NGINX_URL/api/config/stripe/callback?state=workflow-check&code=workflow-check"
    # Whatever the app says to a made-up state, it must answer (not nginx's 429 or 5xx); the
    # Cache-Control below is set only by nginx's OAuth location, so it proves the route matched.
    if [[ $STATUS =~ ^[234] && $STATUS != 429 ]]; then
        pass "nginx: the OAuth callback is answered ($STATUS)"
    else
        fail "nginx: the OAuth callback is answered: got $STATUS"
    fi
    check "nginx: OAuth callback Cache-Control is no-cache, no-store, must-revalidate" \
        test "$(h n_oauth Cache-Control)" = "no-cache, no-store, must-revalidate"
    check "nginx: OAuth callback Referrer-Policy is no-referrer" test "$(h n_oauth Referrer-Policy)" = no-referrer
    check "nginx: security headers on the OAuth callback" security_headers_ok n_oauth

    request n_settings GET "$NGINX_URL/settings/signin"
    if [[ $STATUS == 200 ]]; then
        pass "nginx: /settings/ reaches the settings console (200)"
    elif [[ $DASHBOARD_REQUIRED != true && $STATUS =~ ^50[234]$ ]]; then
        pass "nginx: /settings/ is routed (dashboard not running: $STATUS from nginx)"
    else
        fail "nginx: /settings/ reaches the settings console: got $STATUS"
    fi
    check "nginx: security headers on /settings/" security_headers_ok n_settings

    request n_metrics GET "$NGINX_URL/metrics"
    expect n_metrics "404|403" "nginx: /metrics is not served publicly" || true
    check "nginx: security headers on the refusal" security_headers_ok n_metrics

    RETRY_ON_429=false
    if [[ $CHECK_RATE_LIMITS != true ]]; then
        skip "nginx rate limits (CHECK_RATE_LIMITS=false)"
    else
        burst_args=()
        for _ in $(seq 30); do burst_args+=(-o /dev/null "$NGINX_URL/api/config/health"); done
        curl "${curl_opts[@]}" -w '%{http_code}\n' "${burst_args[@]}" >"$work/burst" 2>/dev/null || true
        limited=$(grep -cx 429 "$work/burst" || true)
        check "nginx: 30 rapid /api/config/ requests get 429s after the burst ($limited limited)" test "$limited" -gt 0
        # The bucket refills at 5 r/s: one request may pass between two checks.
        for _ in 1 2 3 4 5; do
            request n_429 GET "$NGINX_URL/api/config/health"
            [[ $STATUS == 429 ]] && break
        done
        expect n_429 429 "nginx: requests stay limited" &&
            check "nginx: security headers on a 429" security_headers_ok n_429
        oauth_args=()
        for _ in $(seq 12); do oauth_args+=(-o /dev/null "$NGINX_URL/api/config/hubspot/callback?state=workflow-check"); done
        curl "${curl_opts[@]}" -w '%{http_code}\n' "${oauth_args[@]}" >"$work/oauth-burst" 2>/dev/null || true
        oauth_limited=$(grep -cx 429 "$work/oauth-burst" || true)
        check "nginx: 12 rapid OAuth callbacks get 429s ($oauth_limited limited)" test "$oauth_limited" -gt 0
    fi
fi

summary
