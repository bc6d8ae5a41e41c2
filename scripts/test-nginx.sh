#!/usr/bin/env bash
# The nginx configuration, tested for real: nginx/templates rendered for local upstreams the
# way the nginx image renders them, `nginx -t`, then real nginx processes in front of a real
# hsq-config (local PostgreSQL and Redis), a stand-in dashboard and a header-echoing upstream.
#
# Proves: routing (config API, OAuth, health, docs, settings, /metrics refused), security
# headers on 2xx/3xx/4xx/429/5xx, HSTS only over TLS, TLS protocol floor, Cache-Control on
# OAuth routes, the `config` (5 r/s) and `oauth` (2 r/s) zones, the 1 MiB body limit, the
# headers upstreams receive, that a client's X-Forwarded-For cannot change the key the app
# rate-limits on, and with the app's name resolving to two replicas: requests reach both, a
# read goes on to the live replica when one dies, and a write (POST, PATCH, PUT, DELETE) that
# a replica received is never sent to another.
#
# Needs: nginx, envsubst, openssl, curl, python3, psql, redis-cli, and the app binary
# (HSQ_CONFIG_BIN, default target/debug/hsq-config; built with `cargo build` when missing).
# Environment: PG_ADMIN_URL (postgres://postgres@127.0.0.1:5432/postgres), LOCAL_REDIS_URL
# (redis://127.0.0.1:6379), KEEP_STACK_DIR=1 to keep the temp dir with logs.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=scripts/lib/common.sh
source "$here/lib/common.sh"
# shellcheck source=scripts/lib/local-stack.sh
source "$here/lib/local-stack.sh"

need nginx envsubst openssl curl python3 psql redis-cli
if [[ ! -x $HSQ_CONFIG_BIN && $HSQ_CONFIG_BIN == "$HSQ_ROOT/target/debug/hsq-config" ]]; then
    (cd "$HSQ_ROOT" && cargo build --quiet --bin hsq-config)
fi
[[ -x $HSQ_CONFIG_BIN ]] || die "no hsq-config binary at $HSQ_CONFIG_BIN"

stack_init
trap stack_cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
responses="$HSQ_STACK_DIR/responses"
mkdir -p "$responses"

# --- helpers -------------------------------------------------------------------------------

STATUS=""
# fetch ID URL [curl options...]: one request; headers in $responses/ID.h, body in ID.b, the
# status code in $STATUS.
fetch() {
    local id=$1 url=$2
    shift 2
    STATUS=$(curl -sk --max-time 20 -D "$responses/$id.h" -o "$responses/$id.b" \
        -w '%{http_code}' "$@" "$url" || true)
}

h() { header_value "$responses/$1.h" "$2"; }
body() { cat "$responses/$1.b"; }

# expect_status ID WANT DESCRIPTION
expect_status() {
    local id=$1 want=$2 description=$3
    if [[ $STATUS == "$want" ]]; then
        pass "$description ($STATUS)"
    else
        fail "$description: expected $want, got ${STATUS:-no answer}"
        info "body: $(head -c 300 "$responses/$id.b" 2>/dev/null)"
    fi
}

# expect_security_headers ID tls|plain DESCRIPTION: the three headers exactly once each, with
# the expected values; HSTS on TLS only.
expect_security_headers() {
    local id=$1 scheme=$2 description=$3 problems=() file="$responses/$1.h"
    [[ $(h "$id" X-Content-Type-Options) == nosniff ]] || problems+=("X-Content-Type-Options")
    [[ $(h "$id" X-Frame-Options) == DENY ]] || problems+=("X-Frame-Options")
    local referrer
    referrer=$(h "$id" Referrer-Policy)
    [[ $referrer == strict-origin-when-cross-origin || $referrer == no-referrer ]] ||
        problems+=("Referrer-Policy=$referrer")
    local name
    for name in X-Content-Type-Options X-Frame-Options Referrer-Policy; do
        [[ $(header_count "$file" "$name") -le 1 ]] || problems+=("$name twice")
    done
    if [[ $scheme == tls ]]; then
        [[ $(h "$id" Strict-Transport-Security) == max-age=[1-9]* ]] || problems+=("HSTS missing")
    else
        [[ -z $(h "$id" Strict-Transport-Security) ]] || problems+=("HSTS over plain HTTP")
    fi
    if ((${#problems[@]} == 0)); then
        pass "security headers on $description"
    else
        fail "security headers on $description: ${problems[*]}"
    fi
}

# burst FILE URL COUNT [curl options...]: COUNT requests as fast as one curl can send them
# (one connection, back to back); one status code per line in FILE.
burst() {
    local file=$1 url=$2 count=$3
    shift 3
    local -a args=()
    local i
    for ((i = 0; i < count; i++)); do
        args+=(-o /dev/null "$url")
    done
    curl -sk --max-time 30 -w '%{http_code}\n' "$@" "${args[@]}" >"$file" || true
}

count_of() { grep -cx "$2" "$1" || true; }

# fetch_limited ID URL [curl options...]: like fetch, repeated (up to 5 times, back to back)
# until a 429 comes: a bucket that refills at 5 r/s may let one request through between two
# checks, and that one is not what is being looked at.
fetch_limited() {
    for _ in 1 2 3 4 5; do
        fetch "$@"
        [[ $STATUS == 429 ]] && return 0
    done
}

# --- the stack -----------------------------------------------------------------------------

section "setup"
dashboard_port=$(free_port)
echo_port=$(free_port)
app_port=$(free_port)
app_low_port=$(free_port)
make_cert "$HSQ_STACK_DIR/certs"

database="hsq_nginx_test_$(random_hex 4)"
create_database "$database"
admin_token=$(random_hex 24)
metrics_token=$(random_hex 16)
APP_ENV=(
    [DATABASE_URL]="$PG_BASE_URL/$database"
    [REDIS_URL]="$LOCAL_REDIS_URL"
    [REDIS_KEY_PREFIX]="$(new_redis_prefix)"
    [ENCRYPTION_KEY]="$(openssl rand -base64 32)"
    [ADMIN_API_TOKEN]="$admin_token"
    [METRICS_TOKEN]="$metrics_token"
    [TRUSTED_PROXIES]="127.0.0.1/32"
    [LOG_FORMAT]=json
    [LOG_LEVEL]=info
    [BACKUP_DIR]="$HSQ_STACK_DIR/backups"
)
mkdir -p "$HSQ_STACK_DIR/backups"

start_dashboard "$dashboard_port" ||
    abort "dashboard stand-in did not start"
start_echo "$echo_port" ||
    abort "echo upstream did not start"
# The app's own limit high, so only nginx limits in the main instance.
start_app app "$app_port" CONFIGURATION_API_RATE_LIMIT=1000 CONFIGURATION_API_RATE_BURST=1000 ||
    abort "hsq-config did not start"
# A second instance on the same database with a low limit, for the X-Forwarded-For check.
start_app app-low "$app_low_port" RUN_MIGRATIONS=false \
    CONFIGURATION_API_RATE_LIMIT=1 CONFIGURATION_API_RATE_BURST=3 ||
    abort "hsq-config (low limit) did not start"
info "app on :$app_port, low-limit app on :$app_low_port, dashboard on :$dashboard_port"

# render_instance NAME MODE APP SETTINGS RESOLVER: renders and starts one nginx; sets
# ${NAME}_http and ${NAME}_https to its ports.
render_instance() {
    local name=$1 mode=$2 app=$3 settings=$4 resolver=$5
    local dir="$HSQ_STACK_DIR/nginx-$name" http https
    http=$(free_port)
    https=$(free_port)
    (
        export NGINX_HTTP_PORT=$http NGINX_HTTPS_PORT=$https NGINX_HTTP_MODE=$mode
        export SERVER_NAME=localhost APP_UPSTREAM=$app SETTINGS_UPSTREAM=$settings
        export NGINX_RESOLVER=$resolver NGINX_HSTS_MAX_AGE=63072000
        export NGINX_CLIENT_MAX_BODY_SIZE=1m NGINX_ACCESS_LOG="$dir/logs/access.log"
        export TLS_CERT="$HSQ_STACK_DIR/certs/tls.crt" TLS_KEY="$HSQ_STACK_DIR/certs/tls.key"
        render_nginx "$dir"
    )
    printf -v "${name}_http" '%s' "$http"
    printf -v "${name}_https" '%s' "$https"
    if nginx_test_config "$dir" 2>"$HSQ_STACK_DIR/nginx-t-$name.log"; then
        pass "nginx -t accepts the rendered config ($name, NGINX_HTTP_MODE=$mode)"
    else
        fail "nginx -t rejects the rendered config ($name)"
        cat "$HSQ_STACK_DIR/nginx-t-$name.log"
        return 1
    fi
    NGINX_HTTP_PORT=$http start_nginx "$dir"
}

# A resolver that answers nothing: upstream names cannot resolve, IP literals need none.
dead_resolver="127.0.0.1:$(free_port)"
main_http="" main_https="" edge_http="" edge_https="" low_http=""
# main: development mode in front of the real app, which also serves /settings/ (the default).
render_instance main proxy "127.0.0.1:$app_port" "127.0.0.1:$app_port" "$dead_resolver" ||
    abort "nginx (main) did not start"
# edge: production mode (HTTP redirects) in front of the echo upstream; its dashboard is a name
# nobody can resolve, so this instance also shows nginx starts without the dashboard.
render_instance edge redirect "127.0.0.1:$echo_port" "cw-hsq-dashboard.invalid:3000" "$dead_resolver" ||
    abort "nginx (edge) did not start"
# low: development mode in front of the low-limit app, /settings/ on a separate dashboard.
render_instance low proxy "127.0.0.1:$app_low_port" "127.0.0.1:$dashboard_port" "$dead_resolver" ||
    abort "nginx (low) did not start"
plain="http://127.0.0.1:$main_http"
tls="https://127.0.0.1:$main_https"
auth=(-H "Authorization: Bearer $admin_token")

# --- routing -------------------------------------------------------------------------------

section "routing"
fetch health "$plain/health"
expect_status health 200 "/health reaches the app"
check "/health body is {\"status\":\"ok\"}" grep -q '"status": *"ok"' "$responses/health.b"
expect_security_headers health plain "200 /health (HTTP)"

fetch ready "$plain/health/ready"
expect_status ready 200 "/health/ready reaches the app"

fetch cfg_health "$plain/api/config/health"
expect_status cfg_health 200 "/api/config/health reaches the app"

fetch openapi "$plain/api/openapi.json"
expect_status openapi 200 "/api/openapi.json reaches the app"
check "/api/openapi.json is an OpenAPI document" grep -q '"openapi"' "$responses/openapi.b"

fetch docs "$plain/api/docs"
expect_status docs 200 "/api/docs reaches the app"

fetch list "$plain/api/config/integrations" "${auth[@]}"
expect_status list 200 "/api/config/integrations with the admin token reaches the app"

fetch unauthorized "$plain/api/config/integrations"
expect_status unauthorized 401 "/api/config/integrations without a token: the app's 401"
expect_security_headers unauthorized plain "401 from the app"

fetch settings "$plain/settings/signin"
expect_status settings 200 "/settings/signin reaches the app's console"
check "/settings/signin is the console's sign-in page" grep -q 'Sign in to the settings console' "$responses/settings.b"
expect_security_headers settings plain "200 /settings/signin"
check "/settings/ keeps the app's Cache-Control: no-store" test "$(h settings Cache-Control)" = "no-store"
settings_csp=$(h settings Content-Security-Policy)
check "/settings/ keeps the app's CSP" grep -q "default-src 'none'" <<<"$settings_csp"
check "the console's CSP has no unsafe-inline" test "${settings_csp//unsafe-inline/}" = "$settings_csp"
fetch settings_home "$plain/settings/"
expect_status settings_home 303 "/settings/ without a session: the app sends the browser to sign in"
fetch settings_dashboard "http://127.0.0.1:$low_http/settings/"
expect_status settings_dashboard 200 "SETTINGS_UPSTREAM can name a separate dashboard instead"
check "/settings/ body is the dashboard's page" grep -q 'hsq dashboard stand-in' "$responses/settings_dashboard.b"

fetch settings_bare "$plain/settings"
expect_status settings_bare 301 "/settings redirects to /settings/"
check "/settings redirect is relative (works behind published ports)" \
    test "$(h settings_bare Location)" = "/settings/"

fetch metrics "$plain/metrics"
expect_status metrics 404 "/metrics is not served through nginx (HTTP)"
expect_security_headers metrics plain "404 from nginx"
check "nginx's 404 is problem+json" \
    test "$(h metrics Content-Type)" = "application/problem+json"
fetch metrics_tls "$tls/metrics" -H "Authorization: Bearer $metrics_token"
expect_status metrics_tls 404 "/metrics is not served through nginx even with the token (HTTPS)"
fetch metrics_direct "http://127.0.0.1:$app_port/metrics" -H "Authorization: Bearer $metrics_token"
if [[ $STATUS == 200 ]]; then
    pass "the app itself serves /metrics (so nginx is what refuses it)"
else
    skip "the app answers $STATUS on /metrics directly (metrics not implemented yet?)"
fi

fetch unknown "$plain/wp-login.php"
expect_status unknown 404 "unknown paths get 404 from nginx"

fetch nginx_health "$plain/nginx-health"
expect_status nginx_health 200 "/nginx-health answers on loopback"

# --- TLS -----------------------------------------------------------------------------------

section "TLS"
fetch tls_health "$tls/health"
expect_status tls_health 200 "/health over HTTPS"
expect_security_headers tls_health tls "200 /health (HTTPS)"
fetch tls12 "$tls/health" --tlsv1.2 --tls-max 1.2
expect_status tls12 200 "TLS 1.2 accepted"
fetch tls13 "$tls/health" --tlsv1.3
expect_status tls13 200 "TLS 1.3 accepted"
if curl -sk -o /dev/null --max-time 5 --tlsv1 --tls-max 1.1 --ciphers 'DEFAULT:@SECLEVEL=0' "$tls/health"; then
    fail "TLS 1.1 refused"
else
    pass "TLS 1.1 refused"
fi
fetch tls_unauthorized "$tls/api/config/integrations"
expect_security_headers tls_unauthorized tls "401 from the app (HTTPS)"

# --- production mode: redirect, upstream headers, dashboard down ---------------------------

section "production mode (edge: redirect, echo upstream, dashboard not running)"
edge_plain="http://127.0.0.1:$edge_http"
edge_tls="https://127.0.0.1:$edge_https"
fetch redirect "$edge_plain/api/config/integrations?x=1"
expect_status redirect 301 "plain HTTP redirects to HTTPS"
check "the redirect keeps path and query" \
    test "$(h redirect Location)" = "https://127.0.0.1/api/config/integrations?x=1"
expect_security_headers redirect plain "301 redirect"

fetch echo "$edge_tls/api/config/integrations" --interface 127.0.0.4 \
    -H "X-Forwarded-For: 203.0.113.7, 10.0.0.1" -H "X-Real-IP: 203.0.113.8" \
    -H "Forwarded: for=203.0.113.9" -H "X-Forwarded-Proto: http" -H "X-Request-Id: client-chosen"
expect_status echo 200 "HTTPS request reaches the upstream"
upstream_header() {
    python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["headers"].get(sys.argv[2], "<absent>"))' \
        "$responses/echo.b" "$1"
}
check "upstream X-Forwarded-For is the client's address only (spoofed value dropped)" \
    test "$(upstream_header x-forwarded-for)" = "127.0.0.4"
check "upstream X-Real-IP is the client's address" \
    test "$(upstream_header x-real-ip)" = "127.0.0.4"
check "upstream X-Forwarded-Proto is https" test "$(upstream_header x-forwarded-proto)" = "https"
check "the client's Forwarded header does not reach the upstream" \
    test "$(upstream_header forwarded)" = "<absent>"
check "upstream gets nginx's request id" \
    test "$(upstream_header x-request-id)" != "client-chosen"
expect_security_headers echo tls "200 via HTTPS (edge)"
fetch echo_query "$edge_tls/api/config/audit?limit=5&cursor=a%2Fb"
check "the upstream gets the path and query string as the client sent them" \
    test "$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["path"])' "$responses/echo_query.b")" \
    = "/api/config/audit?limit=5&cursor=a%2Fb"

fetch dashboard_down "$edge_tls/settings/"
expect_status dashboard_down 502 "/settings/ with the dashboard unresolvable: 502, nginx still up"
expect_security_headers dashboard_down tls "502 from nginx"
check "nginx's 502 is problem+json with code upstream_unavailable" \
    grep -q '"code":"upstream_unavailable"' "$responses/dashboard_down.b"

# --- body limit ----------------------------------------------------------------------------

section "body limit (client_max_body_size 1m = REQUEST_BODY_LIMIT_BYTES)"
head -c $((2 * 1024 * 1024)) /dev/zero | tr '\0' 'a' >"$HSQ_STACK_DIR/2mib.json"
head -c $((512 * 1024)) /dev/zero | tr '\0' 'a' >"$HSQ_STACK_DIR/512kib.json"
fetch too_large "$plain/api/config/integrations/stripe/sandbox" -X PUT "${auth[@]}" \
    -H 'Content-Type: application/json' --data-binary "@$HSQ_STACK_DIR/2mib.json" --interface 127.0.0.9
expect_status too_large 413 "a 2 MiB body is refused by nginx"
expect_security_headers too_large plain "413 from nginx"
fetch small_enough "$plain/api/config/integrations/stripe/sandbox" -X PUT "${auth[@]}" \
    -H 'Content-Type: application/json' --data-binary "@$HSQ_STACK_DIR/512kib.json" --interface 127.0.0.9
if [[ $STATUS != 413 && $STATUS != 000 && $STATUS != 5* ]]; then
    pass "a 512 KiB body passes nginx to the app (app answered $STATUS)"
else
    fail "a 512 KiB body should pass nginx; got $STATUS"
fi

# --- rate limits ---------------------------------------------------------------------------
# Each check uses its own loopback source address (curl --interface), so each starts with a
# full bucket of its own.

section "rate limit: zone config (5 r/s, burst 10)"
burst "$HSQ_STACK_DIR/config-burst" "$plain/api/config/health" 30 --interface 127.0.0.2
ok=$(count_of "$HSQ_STACK_DIR/config-burst" 200)
limited=$(count_of "$HSQ_STACK_DIR/config-burst" 429)
info "30 rapid requests: $ok answered 200, $limited answered 429"
check "the first 11 (1 + burst 10) pass" \
    test "$(head -n 11 "$HSQ_STACK_DIR/config-burst" | grep -cx 200)" = 11
check "then 429s: at least 15 of 30 limited" test "$limited" -ge 15
fetch_limited config_429 "$plain/api/config/health" --interface 127.0.0.2
expect_status config_429 429 "the next request is limited too"
expect_security_headers config_429 plain "429 from nginx"
check "nginx's 429 carries Retry-After" test -n "$(h config_429 Retry-After)"
check "nginx's 429 is problem+json with code proxy_rate_limited" \
    grep -q '"code":"proxy_rate_limited"' "$responses/config_429.b"
burst "$HSQ_STACK_DIR/config-other" "$plain/api/config/health" 3 --interface 127.0.0.12
check "another client address is not limited meanwhile" \
    test "$(count_of "$HSQ_STACK_DIR/config-other" 200)" = 3
fetch_limited config_429_tls "$tls/api/config/health" --interface 127.0.0.2
expect_status config_429_tls 429 "the same client over HTTPS shares its bucket"
expect_security_headers config_429_tls tls "429 from nginx (HTTPS)"
sleep 1.1
burst "$HSQ_STACK_DIR/config-refill" "$plain/api/config/health" 10 --interface 127.0.0.2
refilled=$(count_of "$HSQ_STACK_DIR/config-refill" 200)
info "1.1 s later, $refilled of 10 rapid requests pass"
check "config refills at about 5 r/s (4-8 pass after 1.1 s)" between "$refilled" 4 8

section "rate limit: zone oauth (2 r/s, burst 5) and OAuth headers"
callback="$plain/api/config/stripe/callback?state=nope&code=nope"
fetch oauth_first "$callback" --interface 127.0.0.3
if [[ $STATUS != 429 && $STATUS != 000 && $STATUS != 5* ]]; then
    pass "the OAuth callback reaches the app ($STATUS)"
else
    fail "the OAuth callback should reach the app; got $STATUS"
fi
check "the OAuth callback was proxied to the app (nginx access log)" \
    grep -qE '"uri":"/api/config/stripe/callback".*"upstream":"127\.0\.0\.1:'"$app_port"'"' \
    "$HSQ_STACK_DIR/nginx-main/logs/access.log"
check "the access log leaves out the callback's query string (code, state)" \
    absent "code=nope" "$HSQ_STACK_DIR/nginx-main/logs/access.log"
check "OAuth callback: Cache-Control is no-cache, no-store, must-revalidate" \
    test "$(h oauth_first Cache-Control)" = "no-cache, no-store, must-revalidate"
check "OAuth callback: only nginx's Cache-Control (the app's is replaced, not doubled)" \
    test "$(header_count "$responses/oauth_first.h" Cache-Control)" = 1
check "OAuth callback: Referrer-Policy is no-referrer" \
    test "$(h oauth_first Referrer-Policy)" = "no-referrer"
expect_security_headers oauth_first plain "the OAuth callback"
fetch oauth_authorize "$plain/api/config/hubspot/oauth/authorize" -X POST --interface 127.0.0.13 \
    -H 'Content-Type: application/json' --data '{"environment":"sandbox","return_to":"http://localhost/"}'
check "OAuth authorize: Cache-Control is no-cache, no-store, must-revalidate" \
    test "$(h oauth_authorize Cache-Control)" = "no-cache, no-store, must-revalidate"
fetch not_oauth "$plain/api/config/health" --interface 127.0.0.14
check "a non-OAuth config route does not get the OAuth Cache-Control" \
    test "$(h not_oauth Cache-Control)" != "no-cache, no-store, must-revalidate"

burst "$HSQ_STACK_DIR/oauth-burst" "$callback" 20 --interface 127.0.0.3
oauth_ok=$(grep -cvx 429 "$HSQ_STACK_DIR/oauth-burst" || true)
oauth_limited=$(count_of "$HSQ_STACK_DIR/oauth-burst" 429)
info "20 rapid callbacks after the first: $oauth_ok passed, $oauth_limited answered 429"
check "OAuth burst: 5 more pass (6-7 if tokens refilled meanwhile), the rest are 429" between "$oauth_ok" 5 7
fetch_limited oauth_429 "$callback" --interface 127.0.0.3
expect_status oauth_429 429 "the OAuth route stays limited"
expect_security_headers oauth_429 plain "429 on the OAuth route"
check "429 on the OAuth route is not cacheable" grep -qi '^Cache-Control: no-store' "$responses/oauth_429.h"
sleep 1.1
burst "$HSQ_STACK_DIR/oauth-refill" "$callback" 10 --interface 127.0.0.3
oauth_refilled=$(grep -cvx 429 "$HSQ_STACK_DIR/oauth-refill" || true)
info "1.1 s later, $oauth_refilled of 10 rapid callbacks pass"
check "oauth refills at about 2 r/s (1-3 pass after 1.1 s)" between "$oauth_refilled" 1 3

# --- X-Forwarded-For spoofing against the app's own limit ----------------------------------

section "spoofed X-Forwarded-For does not change the app's rate-limit key"
# The low-limit app allows 3 requests then 1 r/s per client. Ten requests from one client,
# each claiming another address in X-Forwarded-For, through nginx (whose own burst of 10
# lets all ten through): the app must still see one client and limit it.
: >"$HSQ_STACK_DIR/spoof"
# One curl process, one request per --next group, so the ten go out back to back.
spoof_args=()
for i in $(seq 1 10); do
    ((i > 1)) && spoof_args+=(--next)
    spoof_args+=(-s --interface 127.0.0.5 "${auth[@]}" -H "X-Forwarded-For: 198.51.100.$i"
        -o "$responses/spoof_$i.b" -w '%{http_code}\n' "http://127.0.0.1:$low_http/api/config/integrations")
done
curl "${spoof_args[@]}" >"$HSQ_STACK_DIR/spoof-codes" || true
i=0
while read -r code; do
    i=$((i + 1))
    if [[ $code == 429 ]] && grep -q proxy_rate_limited "$responses/spoof_$i.b"; then
        echo "nginx-429" >>"$HSQ_STACK_DIR/spoof"
    else
        echo "$code" >>"$HSQ_STACK_DIR/spoof"
    fi
done <"$HSQ_STACK_DIR/spoof-codes"
app_limited=$(count_of "$HSQ_STACK_DIR/spoof" 429)
info "through nginx: $(tr '\n' ' ' <"$HSQ_STACK_DIR/spoof")"
check "no request was limited by nginx itself (the app's limit is what is tested)" \
    test "$(count_of "$HSQ_STACK_DIR/spoof" nginx-429)" = 0
check "the app limits the client despite 10 different spoofed X-Forwarded-For values" \
    test "$app_limited" -ge 5
fetch spoof_other "http://127.0.0.1:$low_http/api/config/integrations" "${auth[@]}" --interface 127.0.0.6
check "another real client is not limited by that (the app keys on the real client)" \
    test "$STATUS" = 200

# Control: the app does honour X-Forwarded-For from a trusted proxy (127.0.0.1 here), so had
# nginx passed the client's header along, each spoofed value would have been a fresh key.
control_args=()
for i in $(seq 1 10); do
    ((i > 1)) && control_args+=(--next)
    control_args+=(-s --interface 127.0.0.1 "${auth[@]}" -H "X-Forwarded-For: 192.0.2.$i"
        -o /dev/null -w '%{http_code}\n' "http://127.0.0.1:$app_low_port/api/config/integrations")
done
curl "${control_args[@]}" >"$HSQ_STACK_DIR/control" || true
info "direct from the trusted address with distinct X-Forwarded-For: $(tr '\n' ' ' <"$HSQ_STACK_DIR/control")"
check "control: the app keys on X-Forwarded-For from a trusted proxy (no 429 for 10 distinct values)" \
    test "$(count_of "$HSQ_STACK_DIR/control" 429)" = 0

# --- replicas: every replica gets requests; reads retried on the next, writes never ---------

section "replicas (one name, several addresses: reads move on, writes never repeat)"
# The app's name resolves to two addresses, as Docker's DNS answers for `--scale cw_hsq_app=2`;
# two real replicas listen on the same port at those addresses.
dns_port=$(free_port)
pair_port=$(free_port)
crash_port=$(free_port)
start_dns "$dns_port" "hsq-app.test=127.0.0.21,127.0.0.22" "hsq-crash.test=127.0.0.23,127.0.0.24" ||
    abort "DNS stand-in did not start"
start_app replica-a "$pair_port" BIND_ADDRESS=127.0.0.21 RUN_MIGRATIONS=false \
    CONFIGURATION_API_RATE_LIMIT=1000 CONFIGURATION_API_RATE_BURST=1000 ||
    abort "hsq-config (replica a) did not start"
start_app replica-b "$pair_port" BIND_ADDRESS=127.0.0.22 RUN_MIGRATIONS=false \
    CONFIGURATION_API_RATE_LIMIT=1000 CONFIGURATION_API_RATE_BURST=1000 ||
    abort "hsq-config (replica b) did not start"
replica_b_pid=$APP_PID
# Two "replicas" that read each request whole and hang up without answering.
crash_log="$HSQ_STACK_DIR/crasher-requests.log"
start_crasher "$crash_port" "$crash_log" 127.0.0.23 127.0.0.24 ||
    abort "crashing upstream stand-in did not start"
pair_http="" crash_http=""
render_instance pair proxy "hsq-app.test:$pair_port" "127.0.0.1:$dashboard_port" "127.0.0.1:$dns_port" ||
    abort "nginx (pair) did not start"
render_instance crash proxy "hsq-crash.test:$crash_port" "127.0.0.1:$dashboard_port" "127.0.0.1:$dns_port" ||
    abort "nginx (crash) did not start"
pair="http://127.0.0.1:$pair_http"
pair_log="$HSQ_STACK_DIR/nginx-pair/logs/access.log"

check "no proxy_next_upstream in the rendered config allows non_idempotent" \
    absent_regex '^[[:space:]]*proxy_next_upstream[[:space:]][^#]*non_idempotent' "$HSQ_STACK_DIR/nginx-pair/conf.d"

# upstreams_of METHOD URI: the $upstream_addr of each logged request, one per line.
upstreams_of() {
    python3 - "$pair_log" "$1" "$2" <<'PY'
import json, sys
for line in open(sys.argv[1]):
    entry = json.loads(line)
    if entry["method"] == sys.argv[2] and entry["uri"] == sys.argv[3]:
        print(entry["upstream"])
PY
}

burst "$HSQ_STACK_DIR/pair-health" "$pair/health" 20
check "both replicas up: 20 of 20 GET /health answered 200" \
    test "$(count_of "$HSQ_STACK_DIR/pair-health" 200)" = 20
served=$(upstreams_of GET /health | sort | uniq -c | tr -s ' ' | tr '\n' ';')
info "GET /health served by: $served"
check "nginx spreads requests over both addresses the name resolves to" \
    test "$(upstreams_of GET /health | sort -u | wc -l)" = 2

kill -KILL "$replica_b_pid" 2>/dev/null || true
wait "$replica_b_pid" 2>/dev/null || true
info "replica b (127.0.0.22) killed"
: >"$pair_log"
burst "$HSQ_STACK_DIR/pair-dead-health" "$pair/health" 16
check "one replica dead: 16 of 16 GET /health still 200" \
    test "$(count_of "$HSQ_STACK_DIR/pair-dead-health" 200)" = 16
check "a GET that met the dead replica went on to the live one (two upstreams in the log)" \
    grep -q "127.0.0.22:$pair_port, 127.0.0.21:$pair_port" <(upstreams_of GET /health)
burst "$HSQ_STACK_DIR/pair-dead-list" "$pair/api/config/integrations" 8 "${auth[@]}" --interface 127.0.0.31
check "one replica dead: 8 of 8 GET /api/config/integrations answered 200" \
    test "$(count_of "$HSQ_STACK_DIR/pair-dead-list" 200)" = 8
reveal_path=/api/config/integrations/stripe/sandbox/reveal
burst "$HSQ_STACK_DIR/pair-dead-reveal" "$pair$reveal_path" 8 -X POST "${auth[@]}" --interface 127.0.0.32
info "POST reveal with one replica dead: $(sort "$HSQ_STACK_DIR/pair-dead-reveal" | uniq -c | tr -s ' ' | tr '\n' ';')"
check "one replica dead: no POST reveal gets nginx's 502 (refused, so never received: passed on)" \
    test "$(count_of "$HSQ_STACK_DIR/pair-dead-reveal" 502)" = 0
put_path=/api/config/integrations/hubspot/sandbox
burst "$HSQ_STACK_DIR/pair-dead-put" "$pair$put_path" 8 -X PUT "${auth[@]}" --interface 127.0.0.33 \
    -H 'Content-Type: application/json' --data '{"enabled":false,"settings":{},"secrets":{}}'
info "PUT with one replica dead: $(sort "$HSQ_STACK_DIR/pair-dead-put" | uniq -c | tr -s ' ' | tr '\n' ';')"
check "one replica dead: a PUT is never passed to a second replica (one upstream per request)" \
    absent ", " <(upstreams_of PUT "$put_path")
api_delete() {
    curl -s -o /dev/null -X DELETE "${auth[@]}" "http://127.0.0.1:$app_port$put_path" || true
}
api_delete

# Both addresses take the request and hang up: what nginx does next is the retry policy.
# count_crashed METHOD: how many replicas received requests of METHOD.
count_crashed() { grep -c " $1 " "$crash_log" || true; }
crash="http://127.0.0.1:$crash_http"
fetch crash_get "$crash/api/config/integrations" "${auth[@]}" --interface 127.0.0.34
expect_status crash_get 502 "replicas that hang up: GET ends in nginx's 502"
check "a GET is sent on to the next replica after one hung up (2 received it)" \
    test "$(count_crashed GET)" = 2
fetch crash_post "$crash$reveal_path" -X POST "${auth[@]}" --interface 127.0.0.34
expect_status crash_post 502 "replicas that hang up: POST reveal ends in nginx's 502"
check "a POST reveal is never sent again once a replica received it (1 received it)" \
    test "$(count_crashed POST)" = 1
fetch crash_patch "$crash$put_path" -X PATCH "${auth[@]}" --interface 127.0.0.34 \
    -H 'Content-Type: application/merge-patch+json' --data '{"enabled":true}'
check "a PATCH is never sent again once a replica received it (1 received it)" \
    test "$(count_crashed PATCH)" = 1
fetch crash_put "$crash$put_path" -X PUT "${auth[@]}" --interface 127.0.0.34 \
    -H 'Content-Type: application/json' --data '{"enabled":false,"settings":{},"secrets":{}}'
check "a PUT is never sent again once a replica received it (1 received it)" \
    test "$(count_crashed PUT)" = 1
fetch crash_delete "$crash$put_path" -X DELETE "${auth[@]}" --interface 127.0.0.34
check "a DELETE is never sent again once a replica received it (1 received it)" \
    test "$(count_crashed DELETE)" = 1
expect_security_headers crash_post plain "502 after a replica hung up"

summary
