#!/usr/bin/env bash
# The fault suite: three hsq-config replicas behind nginx, under a bounded mixed load, while
# the pieces under them fail one after another; then the ledger of every request is held
# against what PostgreSQL and the OAuth provider saw.
#
# It starts its own PostgreSQL cluster (initdb into a temporary directory, its own port, trust
# auth; as the `postgres` OS user when run as root) and its own Redis (its own port, no
# persistence), so it can restart and pause them without touching the machine's servers on
# 5432 and 6379; migrates with `hsq-config migrate`; starts three replicas (RUN_MIGRATIONS=false,
# as on Kubernetes), nginx in front of them with the project's retry rules (a GET or HEAD goes
# on to the next replica; a POST or PATCH only when no replica received it; PUT and DELETE
# never), and a fake QuickBooks OAuth provider whose access tokens expire every few seconds.
# It seeds through the public API (a Stripe sandbox config, a service-role API token, a
# QuickBooks sandbox connection made through a real authorize -> consent -> callback round
# trip), then drives scripts/scale/load.py (masked reads, reveals, token calls that refresh,
# PATCHes; SCALE_RATE a second) through nginx while it:
#
#   1. rolls the replicas one at a time: out of nginx's upstream (as Kubernetes removes an
#      endpoint before SIGTERM), SIGTERM, a new process on the same port, ready, back in:
#      zero failed requests;
#   2. kill -9s one replica: failures only among the requests in flight on it (counted), the
#      others carry on; then restarts it;
#   3. restarts PostgreSQL (pg_ctl restart -m fast, then -m immediate): 503s with Retry-After
#      allowed during the outage, no request beyond the request timeout, recovery without
#      restarting a replica;
#   4. restarts Redis: masked reads and reveals keep working, health reports Redis down and
#      the breakers local, an OAuth flow begun before fails with a clear reason, recovery by
#      itself;
#   5. SIGSTOPs Redis and PostgreSQL for PAUSE_SECS, then SIGCONT: bounded latency, no
#      pile-up afterwards.
#
# Then the ledger (scripts/scale/ledger.py): every PATCH answered 200 is in the config's
# history with exactly one audit row, every reveal and token call answered 200 has its audit
# row (by request id), the history has no lost update, no read was staler than the caches
# promise, `hsq-config audit verify` passes, and no expiring token was refreshed twice.
# Prints its counts and ends with `N passed, M failed`; about a minute of wall time.
#
# Needs: python3, curl, openssl, psql, initdb/pg_ctl (/usr/lib/postgresql/*/bin),
# redis-server, redis-cli, nginx (installed with apt-get when missing), and the app binary
# (HSQ_CONFIG_BIN, default target/debug/hsq-config; built with cargo when missing).
# Environment: SCALE_RATE (250 requests a second), SCALE_THREADS (24), PAUSE_SECS (4),
# ROLL_DEREGISTER (1; 0 rolls by SIGTERM alone), SCALE_TMPDIR (/dev/shm when writable, else
# TMPDIR), KEEP_SCALE_DIR=1 keeps the working directory (logs, ledger, nginx's access log).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)
# shellcheck source=scripts/lib/common.sh disable=SC1091
source "$here/lib/common.sh"

HSQ_CONFIG_BIN=${HSQ_CONFIG_BIN:-$root/target/debug/hsq-config}
SCALE_RATE=${SCALE_RATE:-250}
SCALE_THREADS=${SCALE_THREADS:-24}
PAUSE_SECS=${PAUSE_SECS:-4}
# 0: roll by SIGTERM alone, without taking the replica out of nginx first (docker compose
# does that); see docs/scaling.md for what that costs.
ROLL_DEREGISTER=${ROLL_DEREGISTER:-1}
# The app's own limits for the suite (its defaults are in src/config/mod.rs and .env.example).
REQUEST_TIMEOUT_SECS=10
SHUTDOWN_DRAIN_SECS=20
CACHE_TTL_SECS=5
# Access tokens live ACCESS_TTL seconds and are refreshed when they expire within
# REFRESH_MARGIN: a refresh every ACCESS_TTL - REFRESH_MARGIN seconds under load.
ACCESS_TTL=12
REFRESH_MARGIN=5
REPLICAS=3

[[ $ROLL_DEREGISTER == [01] ]] || die "ROLL_DEREGISTER: got '$ROLL_DEREGISTER'; accepts 1 or 0"
for name in SCALE_RATE SCALE_THREADS PAUSE_SECS; do
    [[ ${!name} =~ ^[1-9][0-9]*$ ]] || die "$name: got '${!name}'; accepts a whole number from 1"
done
need python3 curl openssl psql redis-server redis-cli
if ! command -v nginx >/dev/null 2>&1; then
    echo "installing nginx" >&2
    (apt-get install -y -qq nginx >/dev/null 2>&1 ||
        (apt-get update -qq && apt-get install -y -qq nginx >/dev/null)) || die "nginx is required"
fi
pg_bin=$(find /usr/lib/postgresql -mindepth 2 -maxdepth 2 -name bin -type d 2>/dev/null | sort -V | tail -n 1)
[[ -n $pg_bin && -x $pg_bin/initdb && -x $pg_bin/pg_ctl ]] ||
    die "initdb and pg_ctl are required (/usr/lib/postgresql/*/bin; apt-get install postgresql)"
if [[ ! -x $HSQ_CONFIG_BIN && $HSQ_CONFIG_BIN == "$root/target/debug/hsq-config" ]]; then
    (cd "$root" && cargo build --locked --quiet --bin hsq-config)
fi
[[ -x $HSQ_CONFIG_BIN ]] || die "no hsq-config binary at $HSQ_CONFIG_BIN"

suite_start=$SECONDS
# In memory when the machine has a tmpfs: the logs, the cluster's WAL and nginx's access log
# are written at every request, and a disk busy with someone else's build (a CI machine)
# stalls appends to files for seconds, which would show here as latency that is not ours.
scratch=${SCALE_TMPDIR:-/dev/shm}
[[ -d $scratch && -w $scratch ]] || scratch=${TMPDIR:-/tmp}
work=$(mktemp -d "$scratch/hsq-scale.XXXXXX")
# PostgreSQL (as postgres) and nginx's workers (as nobody) need to reach into it.
chmod 755 "$work"
marks="$work/marks.jsonl"
: >"$marks"

# --- bookkeeping of what this script started ------------------------------------------------

pg_data="$work/pg/data"
pg_started=""
redis_pid="" nginx_pid="" fake_pid="" load_pid=""
replica_pids=()
paused_pids=()

# as_pg COMMAND...: runs a PostgreSQL binary as the postgres OS user when this is root
# (initdb and postgres refuse to run as root).
as_pg() {
    if ((EUID == 0)); then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

# stop_pid PID [SECONDS]: SIGTERM, then SIGKILL after SECONDS (5); reaps it.
stop_pid() {
    local pid=$1 seconds=${2:-5} i
    [[ -n $pid ]] || return 0
    kill -TERM "$pid" 2>/dev/null || return 0
    for ((i = 0; i < seconds * 10; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

cleanup() {
    local status=$? pid
    set +e
    # Anything still paused must run again before it can stop.
    for pid in "${paused_pids[@]}"; do
        kill -CONT "$pid" 2>/dev/null
    done
    stop_pid "$load_pid" 2
    for pid in "${replica_pids[@]}"; do
        kill -TERM "$pid" 2>/dev/null
    done
    for pid in "${replica_pids[@]}"; do
        stop_pid "$pid" 5
    done
    stop_pid "$nginx_pid" 5
    stop_pid "$fake_pid" 2
    stop_pid "$redis_pid" 5
    if [[ -n $pg_started ]]; then
        as_pg "$pg_bin/pg_ctl" -D "$pg_data" -m immediate -w -t 20 stop >/dev/null 2>&1
    fi
    if [[ ${KEEP_SCALE_DIR:-} == 1 ]]; then
        printf 'kept %s\n' "$work" >&2
    else
        rm -rf "$work"
    fi
    return "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

now() { printf '%s' "$EPOCHREALTIME"; }

# mark_phase NAME: requests the load starts from now on belong to phase NAME.
mark_phase() {
    printf '{"t": %s, "phase": "%s"}\n' "$(now)" "$1" >>"$marks"
    section "$1"
}

# mark_event NAME [JSON-FIELDS]: a moment the ledger checks refer to.
mark_event() {
    printf '{"t": %s, "event": "%s"%s}\n' "$(now)" "$1" "${2:+, $2}" >>"$marks"
}

# --- PostgreSQL -----------------------------------------------------------------------------

section "setup"
pg_port=$(free_port)
mkdir -p "$work/pg"
((EUID == 0)) && chown postgres: "$work/pg"
as_pg "$pg_bin/initdb" -D "$pg_data" -U postgres --auth=trust -E UTF8 --no-sync \
    >"$work/pg/initdb.log" 2>&1 || {
    cat "$work/pg/initdb.log" >&2
    abort "initdb failed"
}
# fsync off: this cluster's data is thrown away, and a process crash (what the suite does)
# loses nothing written. synchronous_commit stays on: a commit is in the WAL before it is
# acknowledged, so `-m immediate` loses no acknowledged change.
as_pg tee -a "$pg_data/postgresql.conf" >/dev/null <<CONF
port = $pg_port
listen_addresses = '127.0.0.1'
unix_socket_directories = '$work/pg'
max_connections = 100
fsync = off
log_min_messages = warning
CONF
as_pg "$pg_bin/pg_ctl" -D "$pg_data" -l "$work/pg/server.log" -w -t 30 start >/dev/null ||
    abort "PostgreSQL did not start (log: $(tail -n 5 "$work/pg/server.log"))"
pg_started=1
pg_admin="postgres://postgres@127.0.0.1:$pg_port/postgres"
db_url="postgres://postgres@127.0.0.1:$pg_port/hsq_scale"
psql -X -q -v ON_ERROR_STOP=1 "$pg_admin" -c 'CREATE DATABASE hsq_scale' >/dev/null ||
    abort "cannot create the database"
info "PostgreSQL $("$pg_bin/postgres" --version | awk '{ print $3 }') on 127.0.0.1:$pg_port ($pg_data)"

# The postmaster and its children, for SIGSTOP and SIGCONT.
pg_processes() {
    local master
    master=$(head -n 1 "$pg_data/postmaster.pid" 2>/dev/null) || return 0
    [[ -n $master ]] || return 0
    printf '%s\n' "$master"
    pgrep -P "$master" || true
}

# --- Redis ----------------------------------------------------------------------------------

redis_port=$(free_port)
mkdir -p "$work/redis"
start_redis() {
    redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no \
        --dir "$work/redis" --logfile "$work/redis/redis.log" --daemonize no &
    redis_pid=$!
    local i
    for ((i = 0; i < 100; i++)); do
        redis-cli -p "$redis_port" ping >/dev/null 2>&1 && return 0
        kill -0 "$redis_pid" 2>/dev/null || return 1
        sleep 0.1
    done
    return 1
}
start_redis || abort "Redis did not start"
info "Redis $(redis-server --version | grep -oE 'v=[0-9.]+' | cut -d= -f2) on 127.0.0.1:$redis_port"

# --- the fake OAuth provider ----------------------------------------------------------------

fake_port=$(free_port)
fake="http://127.0.0.1:$fake_port"
qb_client_id="scale-qb-client"
qb_secret="scaleQuickBooksSecret$(random_hex 8)"
python3 "$here/scale/fake_provider.py" "$fake_port" "$qb_client_id" "$qb_secret" 4620816365 \
    "$ACCESS_TTL" 2>>"$work/fake_provider.log" &
fake_pid=$!
wait_for_http "$fake/calls" 10 "$fake_pid" || abort "the fake OAuth provider did not start"

# --- the replicas ---------------------------------------------------------------------------

nginx_port=$(free_port)
base="http://127.0.0.1:$nginx_port"
admin_token=$(random_hex 32)
return_origin="https://dashboard.scale.invalid"
closed="http://127.0.0.1:9" # nothing listens: validation calls would fail fast
replica_ports=()
for ((i = 0; i < REPLICAS; i++)); do
    replica_ports+=("$(free_port)")
done
app_env=(
    "PATH=$PATH"
    "HOME=${HOME:-/root}"
    "DATABASE_URL=$db_url"
    "REDIS_URL=redis://127.0.0.1:$redis_port"
    "REDIS_KEY_PREFIX=hsqscale:"
    "ENCRYPTION_KEY=$(openssl rand -base64 32)"
    "ADMIN_API_TOKEN=$admin_token"
    "BIND_ADDRESS=127.0.0.1"
    # As on Kubernetes: `hsq-config migrate` runs once, replicas never migrate.
    "RUN_MIGRATIONS=false"
    "LOG_FORMAT=json"
    "LOG_LEVEL=info"
    # nginx's address, so the app keys its limits and audit rows on the real client.
    "TRUSTED_PROXIES=127.0.0.1/32"
    # The per-client limit would turn the load (one client address) into 429s.
    "CONFIGURATION_API_RATE_LIMIT=1000000"
    "CONFIGURATION_API_RATE_BURST=1000000"
    "REQUEST_TIMEOUT_SECS=$REQUEST_TIMEOUT_SECS"
    "SHUTDOWN_DRAIN_SECS=$SHUTDOWN_DRAIN_SECS"
    "CACHE_TTL_SECS=$CACHE_TTL_SECS"
    "HEALTH_MONITOR_ENABLED=false"
    "BACKUP_DIR=$work/backups"
    "STRIPE_API_BASE_URL=$closed"
    "HUBSPOT_API_BASE_URL=$closed"
    "QUICKBOOKS_API_BASE_URL=$closed"
    "QUICKBOOKS_SANDBOX_API_BASE_URL=$closed"
    "QUICKBOOKS_OAUTH_AUTHORIZE_URL=$fake/authorize"
    "QUICKBOOKS_OAUTH_TOKEN_URL=$fake/token"
    "QUICKBOOKS_OAUTH_REVOKE_URL=$fake/revoke"
    "QUICKBOOKS_OAUTH_REDIRECT_URI=$base/api/config/quickbooks/callback"
    "OAUTH_RETURN_ALLOWED_ORIGINS=$return_origin"
    "OAUTH_PROVIDER_TIMEOUT=5"
    # Refreshed on demand within REFRESH_MARGIN of expiry, and by every replica's background
    # refresher (same margin, every 2 s): both race for the same lock.
    "OAUTH_REFRESH_MARGIN=$REFRESH_MARGIN"
    "OAUTH_REFRESH_WINDOW=$REFRESH_MARGIN"
    "OAUTH_REFRESH_INTERVAL=2"
    "OAUTH_REFRESHER_ENABLED=true"
)
mkdir -p "$work/backups"

# migrate: the one-off `hsq-config migrate`, as the Kubernetes Job runs it.
if env -i "${app_env[@]}" "$HSQ_CONFIG_BIN" migrate >"$work/migrate.log" 2>&1; then
    pass "hsq-config migrate: $(grep -o 'migrations applied (latest version [0-9]*)' "$work/migrate.log" | tail -n 1)"
else
    cat "$work/migrate.log" >&2
    abort "hsq-config migrate failed"
fi

# start_replica I: a new `hsq-config serve` on replica I's port; its log is appended to.
start_replica() {
    local i=$1
    env -i "${app_env[@]}" "PORT=${replica_ports[i]}" "$HSQ_CONFIG_BIN" serve \
        >>"$work/replica-$i.log" 2>&1 &
    replica_pids[i]=$!
}

# wait_ready I [SECONDS]: replica I answers 200 on /health/ready (its process alive).
wait_ready() {
    local i=$1 seconds=${2:-30} deadline
    deadline=$((SECONDS + seconds))
    while ((SECONDS < deadline)); do
        kill -0 "${replica_pids[i]}" 2>/dev/null || return 1
        [[ $(curl -s -o /dev/null -w '%{http_code}' --max-time 2 \
            "http://127.0.0.1:${replica_ports[i]}/health/ready" || true) == 200 ]] && return 0
        sleep 0.2
    done
    return 1
}

# wait_all_ready SECONDS: every replica ready again, within SECONDS of now.
wait_all_ready() {
    local seconds=$1 deadline i
    deadline=$((SECONDS + seconds))
    for ((i = 0; i < REPLICAS; i++)); do
        wait_ready "$i" $((deadline - SECONDS > 0 ? deadline - SECONDS : 1)) || return 1
    done
}

for ((i = 0; i < REPLICAS; i++)); do
    start_replica "$i"
done
for ((i = 0; i < REPLICAS; i++)); do
    wait_ready "$i" 60 || {
        tail -n 30 "$work/replica-$i.log" >&2
        abort "replica $i did not become ready"
    }
done
info "replicas on 127.0.0.1:${replica_ports[*]} (pids ${replica_pids[*]})"

# --- nginx ----------------------------------------------------------------------------------
# The project's retry rules (nginx/templates/00-hsq-http.conf's map and snippets/app.conf's
# named locations, proxy.conf's tries and timeouts, errors.conf's own 502/503/504 answers)
# in front of an upstream block naming the three replicas. No rate limit zones (the load
# comes from one address) and no TLS. max_fails=0: the templates proxy to a name resolved per
# request, which keeps no memory of failed replicas between requests; an upstream block's
# default (max_fails=1) would take every replica that answered one 503 out for everyone.

ngx="$work/nginx"
mkdir -p "$ngx/logs" "$ngx/tmp"
chmod 1777 "$ngx/tmp"
# write_upstream [DOWN-INDEX]: the upstream block; the replica at DOWN-INDEX marked down.
write_upstream() {
    local down=${1:--1} i flag
    {
        echo "upstream hsq_replicas {"
        for ((i = 0; i < REPLICAS; i++)); do
            flag=""
            ((i == down)) && flag=" down"
            echo "    server 127.0.0.1:${replica_ports[i]} max_fails=0$flag;"
        done
        echo "}"
    } >"$ngx/upstream.conf"
}
write_upstream
user_line=""
((EUID == 0)) && user_line="user nobody nogroup;"
cat >"$ngx/nginx.conf" <<CONF
# Written by scripts/test-scale.sh.
$user_line
worker_processes 1;
pid $ngx/nginx.pid;
error_log $ngx/logs/error.log warn;
events {
    worker_connections 2048;
}
http {
    default_type application/octet-stream;
    client_body_temp_path $ngx/tmp/client_temp;
    proxy_temp_path $ngx/tmp/proxy_temp;
    fastcgi_temp_path $ngx/tmp/fastcgi_temp;
    uwsgi_temp_path $ngx/tmp/uwsgi_temp;
    scgi_temp_path $ngx/tmp/scgi_temp;
    log_format hsq_access escape=json
        '{"time":"\$msec","request_id":"\$request_id","method":"\$request_method",'
        '"uri":"\$uri","status":\$status,"request_time":\$request_time,'
        '"upstream":"\$upstream_addr","upstream_status":"\$upstream_status"}';
    access_log $ngx/logs/access.log hsq_access;

    include $ngx/upstream.conf;

    # As nginx/templates/00-hsq-http.conf: GET/HEAD retry, POST/PATCH only unsent, the rest never.
    map \$request_method \$hsq_retry_policy {
        GET     retry;
        HEAD    retry;
        POST    unsent;
        PATCH   unsent;
        default never;
    }

    server {
        listen 127.0.0.1:$nginx_port;
        root $ngx/empty;

        # As nginx/templates/snippets/proxy.conf.
        proxy_http_version 1.1;
        proxy_set_header Connection "";
        proxy_set_header Host \$host;
        proxy_set_header X-Real-IP \$remote_addr;
        proxy_set_header X-Forwarded-For \$remote_addr;
        proxy_set_header X-Forwarded-Proto \$scheme;
        proxy_set_header X-Request-Id \$request_id;
        proxy_connect_timeout 5s;
        proxy_send_timeout 35s;
        proxy_read_timeout 35s;
        proxy_next_upstream_tries 3;
        proxy_next_upstream_timeout 10s;

        location / {
            try_files /.hsq-no-such-file @hsq_app_\$hsq_retry_policy;
        }
        # As nginx/templates/snippets/errors.conf: nginx's own failures are problem documents
        # with Retry-After and the request id.
        error_page 502 @hsq_bad_gateway;
        error_page 503 @hsq_unavailable;
        error_page 504 @hsq_gateway_timeout;
        location @hsq_bad_gateway {
            default_type application/problem+json;
            add_header Retry-After "5" always;
            add_header X-Request-Id \$request_id always;
            return 502 '{"status":502,"code":"upstream_unavailable","request_id":"\$request_id"}\n';
        }
        location @hsq_unavailable {
            default_type application/problem+json;
            add_header Retry-After "5" always;
            add_header X-Request-Id \$request_id always;
            return 503 '{"status":503,"code":"upstream_unavailable","request_id":"\$request_id"}\n';
        }
        location @hsq_gateway_timeout {
            default_type application/problem+json;
            add_header Retry-After "5" always;
            add_header X-Request-Id \$request_id always;
            return 504 '{"status":504,"code":"upstream_timeout","request_id":"\$request_id"}\n';
        }
        # As nginx/templates/snippets/app.conf.
        location @hsq_app_retry {
            proxy_next_upstream error timeout http_502 http_503;
            proxy_pass http://hsq_replicas;
        }
        location @hsq_app_unsent {
            proxy_next_upstream error timeout;
            proxy_pass http://hsq_replicas;
        }
        location @hsq_app_never {
            proxy_next_upstream off;
            proxy_pass http://hsq_replicas;
        }
    }
}
CONF
mkdir -p "$ngx/empty"
nginx -t -q -p "$ngx/" -c "$ngx/nginx.conf" -e "$ngx/logs/error.log" 2>"$work/nginx-t.log" ||
    abort "nginx -t refused the config: $(cat "$work/nginx-t.log")"
nginx -p "$ngx/" -c "$ngx/nginx.conf" -e "$ngx/logs/error.log" -g 'daemon off;' \
    >>"$ngx/logs/stdout.log" 2>&1 &
nginx_pid=$!
wait_for_status "$base/health" 200 20 || abort "nginx did not start: $(tail -n 5 "$ngx/logs/error.log")"
info "nginx on $base"

# reload_nginx: nginx re-reads upstream.conf; returns once the workers of the previous
# configuration have finished their requests and exited, so no request reaches a replica
# the new configuration left out.
reload_nginx() {
    local old deadline pid alive
    old=$(pgrep -P "$nginx_pid" | tr '\n' ' ')
    kill -HUP "$nginx_pid"
    deadline=$((SECONDS + 15))
    while ((SECONDS < deadline)); do
        alive=0
        for pid in $old; do
            kill -0 "$pid" 2>/dev/null && alive=1
        done
        ((alive == 0)) && [[ -n $(pgrep -P "$nginx_pid") ]] && return 0
        sleep 0.1
    done
    return 1
}

# --- seeding, through nginx and the public API ----------------------------------------------

# api METHOD PATH TOKEN [JSON]: the response body; fails unless the status is 2xx.
api() {
    local method=$1 path=$2 token=$3 body=${4:-} status
    local args=(-sS -X "$method" -o "$work/response" -w '%{http_code}' --max-time 20
        -H "Authorization: Bearer $token")
    [[ -z $body ]] || args+=(-H 'Content-Type: application/json' --data-binary "$body")
    status=$(curl "${args[@]}" "$base$path" || true)
    if [[ $status != 2* ]]; then
        printf '%s %s answered %s: %s\n' "$method" "$path" "$status" "$(head -c 300 "$work/response")" >&2
        return 1
    fi
    cat "$work/response"
}

json_field() {
    python3 -c 'import json, sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"
}

api PUT /api/config/integrations/stripe/sandbox "$admin_token" \
    '{"settings":{"publishable_key":"pk_test_scale000000000000","account_id":"acct_seed"},"secrets":{"secret_key":"sk_test_scale00000000000000000000","webhook_secret":"whsec_scale000000000000000"}}' \
    >/dev/null || abort "seeding the Stripe sandbox config failed"
service_token=$(api POST /api/config/api-tokens "$admin_token" '{"name":"scale-service","role":"service"}' |
    json_field token) || abort "creating the service token failed"
api PUT /api/config/integrations/quickbooks/sandbox "$admin_token" \
    "{\"settings\":{\"client_id\":\"$qb_client_id\"},\"secrets\":{\"client_secret\":\"$qb_secret\"}}" \
    >/dev/null || abort "seeding the QuickBooks sandbox config failed"

# begin_oauth: an authorize through nginx and the provider's consent; prints the callback URL
# the browser would be sent to (not followed).
begin_oauth() {
    local consent
    consent=$(api POST /api/config/quickbooks/oauth/authorize "$admin_token" \
        "{\"environment\":\"sandbox\",\"return_to\":\"$return_origin/settings\"}" |
        json_field authorization_url) || return 1
    curl -sS -o /dev/null -w '%{redirect_url}' --max-time 10 "$consent"
}
# finish_oauth CALLBACK-URL: where the callback's 303 sends the browser.
finish_oauth() {
    curl -sS -o /dev/null -w '%{redirect_url}' --max-time 20 "$1"
}
callback=$(begin_oauth) || abort "the OAuth authorize step failed"
[[ $callback == "$base/api/config/quickbooks/callback?"* ]] ||
    abort "the fake consent screen sent the browser to '$callback'"
outcome=$(finish_oauth "$callback")
[[ $outcome == *oauth=success* ]] || abort "the OAuth callback ended in '$outcome'"
api POST "/api/config/quickbooks/token?environment=sandbox" "$service_token" >/dev/null ||
    abort "the first token call failed"
pass "seeded through the API: Stripe sandbox config, service token, QuickBooks connected through authorize + callback"

# --- the load and the faults ----------------------------------------------------------------

info "load: $SCALE_RATE requests/s from $SCALE_THREADS workers through nginx"
python3 "$here/scale/load.py" --base "$base" --admin "$admin_token" --service "$service_token" \
    --ledger "$work/ledger.jsonl" --stop-file "$work/stop" --rate "$SCALE_RATE" \
    --threads "$SCALE_THREADS" --max-seconds 150 >"$work/load.log" 2>&1 &
load_pid=$!

mark_phase baseline
sleep 5

mark_phase rolling
roll_ok=1
for ((i = 0; i < REPLICAS; i++)); do
    old_pid=${replica_pids[i]}
    # Out of the upstream first, as Kubernetes takes a terminating pod out of the endpoints.
    if [[ $ROLL_DEREGISTER == 1 ]]; then
        write_upstream "$i"
        reload_nginx || { roll_ok=0 && fail "nginx did not reload without replica $i"; }
    fi
    kill -TERM "$old_pid"
    drained=0
    for ((t = 0; t < (SHUTDOWN_DRAIN_SECS + 5) * 10; t++)); do
        kill -0 "$old_pid" 2>/dev/null || { drained=1 && break; }
        sleep 0.1
    done
    stopped_with=0
    wait "$old_pid" 2>/dev/null || stopped_with=$?
    if ((drained == 0)) || ((stopped_with != 0)); then
        roll_ok=0
        fail "replica $i did not stop cleanly after SIGTERM (exit $stopped_with)"
    fi
    start_replica "$i"
    if ! wait_ready "$i" 30; then
        roll_ok=0
        fail "replica $i (new process) did not become ready"
        tail -n 20 "$work/replica-$i.log" >&2
    fi
    if [[ $ROLL_DEREGISTER == 1 ]]; then
        write_upstream
        reload_nginx || { roll_ok=0 && fail "nginx did not reload with replica $i back"; }
    fi
    info "replica $i: pid $old_pid drained and exited, pid ${replica_pids[i]} ready on :${replica_ports[i]}"
done
if ((roll_ok == 1)); then
    if [[ $ROLL_DEREGISTER == 1 ]]; then
        pass "rolling restart: each replica left the upstream, drained on SIGTERM, came back on its port"
    else
        pass "rolling restart (SIGTERM only, ROLL_DEREGISTER=0): each replica drained, came back on its port"
    fi
fi
sleep 3

mark_phase kill
victim=1
victim_pid=${replica_pids[victim]}
kill -KILL "$victim_pid"
wait "$victim_pid" 2>/dev/null || true
# Marked once the process is gone: until then the kernel still queues connections on its
# listening socket, and those die with it.
mark_event kill "\"port\": ${replica_ports[victim]}"
sleep 3
start_replica "$victim"
if wait_ready "$victim" 30; then
    pass "kill -9: replica $victim restarted on :${replica_ports[victim]} (pid ${replica_pids[victim]})"
else
    fail "kill -9: replica $victim did not come back"
fi
sleep 3

pids_before="${replica_pids[*]}"
# pg_restart MODE PHASE: restarts the private cluster, waits for every replica to be ready.
pg_restart() {
    local mode=$1 phase=$2
    mark_phase "$phase"
    mark_event "$phase-down"
    if as_pg "$pg_bin/pg_ctl" -D "$pg_data" -l "$work/pg/server.log" -m "$mode" -w -t 60 restart >/dev/null; then
        mark_event "$phase-up"
        pass "$phase: pg_ctl restart -m $mode"
    else
        fail "$phase: pg_ctl restart -m $mode failed"
        return 0
    fi
    if wait_all_ready 30; then
        mark_event "$phase-recovered"
        pass "$phase: every replica ready again without a restart"
    else
        fail "$phase: not every replica became ready within 30 s"
    fi
    sleep 4
}
pg_restart fast pg-fast
pg_restart immediate pg-immediate

mark_phase redis
# An OAuth flow begun before the restart: its state lives only in Redis.
pending_callback=$(begin_oauth || true)
kill -TERM "$redis_pid"
wait "$redis_pid" 2>/dev/null || true
mark_event redis-down
sleep 0.5
health=$(curl -s --max-time 5 "http://127.0.0.1:${replica_ports[0]}/api/config/health" || true)
if python3 -c '
import json, sys
h = json.loads(sys.argv[1])
assert h["redis"]["status"] == "down", h["redis"]
assert h["status"] == "degraded", h["status"]
assert all(b.get("backend") == "local" for b in h["breakers"]), h["breakers"]
' "$health" 2>"$work/health-check.log"; then
    pass "Redis down: /api/config/health says degraded, Redis down, breakers on per-process state"
else
    fail "Redis down: /api/config/health did not report it ($(tail -n 1 "$work/health-check.log"))"
fi
sleep 1.5
start_redis || fail "Redis did not start again"
mark_event redis-up
if wait_all_ready 30; then
    mark_event redis-recovered
    pass "Redis restart: every replica ready again by itself"
else
    fail "Redis restart: not every replica became ready within 30 s"
fi
if [[ -n $pending_callback ]]; then
    outcome=$(finish_oauth "$pending_callback" || true)
    check "Redis restart: an OAuth flow begun before ends with a clear error (oauth=error&reason=invalid_state)" \
        grep -q 'oauth=error&reason=invalid_state' <<<"$outcome"
else
    fail "Redis restart: could not begin an OAuth flow before the restart"
fi
health=$(curl -s --max-time 5 "http://127.0.0.1:${replica_ports[0]}/api/config/health" || true)
check "Redis back: /api/config/health is healthy again, breakers back on Redis" python3 -c '
import json, sys
h = json.loads(sys.argv[1])
assert h["status"] == "healthy" and h["redis"]["status"] == "up", h
assert all(b.get("backend") == "redis" for b in h["breakers"]), h["breakers"]
' "$health"
sleep 4

mark_phase pause
mapfile -t paused_pids < <(pg_processes)
paused_pids+=("$redis_pid")
# The postmaster first, so it forks nothing new, then its children and Redis.
for pid in "${paused_pids[@]}"; do
    kill -STOP "$pid" 2>/dev/null || true
done
mark_event paused
sleep "$PAUSE_SECS"
for ((j = ${#paused_pids[@]} - 1; j >= 0; j--)); do
    kill -CONT "${paused_pids[j]}" 2>/dev/null || true
done
mark_event resumed
info "SIGSTOP of PostgreSQL (${#paused_pids[@]} processes with Redis) for $PAUSE_SECS s, then SIGCONT"
paused_pids=()
sleep 6

mark_phase after
sleep 4
touch "$work/stop"
if wait "$load_pid"; then
    info "$(cat "$work/load.log")"
else
    fail "the load driver failed: $(tail -n 5 "$work/load.log")"
fi
load_pid=""

section "replicas and nginx after the faults"
check "nginx kept running" kill -0 "$nginx_pid"
alive=0
for ((i = 0; i < REPLICAS; i++)); do
    kill -0 "${replica_pids[i]}" 2>/dev/null && alive=$((alive + 1))
done
check "all $REPLICAS replicas alive" test "$alive" = "$REPLICAS"
check "no replica was restarted by the PostgreSQL and Redis faults (same pids)" \
    test "$pids_before" = "${replica_pids[*]}"
check "every replica ready" wait_all_ready 10

# --- the ledger -----------------------------------------------------------------------------

section "ledger"
curl -fsS --max-time 10 "$fake/ledger" >"$work/provider-ledger.json" || fail "the fake provider's ledger is unreadable"
while IFS=$'\t' read -r kind text; do
    case $kind in
        pass) pass "$text" ;;
        fail) fail "$text" ;;
        *) info "$text" ;;
    esac
done < <(python3 "$here/scale/ledger.py" --ledger "$work/ledger.jsonl" --marks "$marks" \
    --access-log "$ngx/logs/access.log" --provider "$work/provider-ledger.json" --db "$db_url" \
    --request-timeout "$REQUEST_TIMEOUT_SECS" --stale-limit $((CACHE_TTL_SECS + 1)) 2>&1)

if env -i "${app_env[@]}" "$HSQ_CONFIG_BIN" audit verify >"$work/audit-verify.log" 2>&1; then
    pass "hsq-config audit verify: $(grep -o 'audit chain verified.*' "$work/audit-verify.log")"
else
    fail "hsq-config audit verify failed: $(tail -n 3 "$work/audit-verify.log")"
fi
panics=$(cat "$work"/replica-*.log | grep -c '"panic' || true)
check "no replica logged a panic" test "$panics" = 0

info "wall time: $((SECONDS - suite_start)) s"
summary
