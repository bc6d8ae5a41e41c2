#!/usr/bin/env bash
# The compose stack's pieces as plain processes, for machines without a Docker engine:
# hsq-config on a fresh database of the local PostgreSQL and a private prefix of the local
# Redis, nginx rendered from nginx/templates in front of it (HTTP and HTTPS, self-signed), and
# a stand-in dashboard. Then runs COMMAND with the stack's coordinates in its environment, and
# removes everything afterwards (processes, database, Redis keys, temp files).
#
#   scripts/run-local-stack.sh scripts/test-config-workflow.sh
#   scripts/run-local-stack.sh            # no command: prints the URLs and waits for Ctrl-C
#
# COMMAND gets: API_URL, NGINX_URL, NGINX_TLS_URL, API_TOKEN, DATABASE_URL, REDIS_URL,
# REDIS_KEY_PREFIX, BACKUP_DIR, STACK=local, DASHBOARD_REQUIRED=true.
# Needs what scripts/test-nginx.sh needs.
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

stack_init
trap stack_cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

app_port=$(free_port)
dashboard_port=$(free_port)
http_port=$(free_port)
https_port=$(free_port)
database="hsq_local_stack_$(random_hex 4)"
create_database "$database"
token=$(random_hex 24)
prefix=$(new_redis_prefix)
backups="$HSQ_STACK_DIR/backups"
mkdir -p "$backups"
make_cert "$HSQ_STACK_DIR/certs"

APP_ENV=(
    [DATABASE_URL]="$PG_BASE_URL/$database"
    [REDIS_URL]="$LOCAL_REDIS_URL"
    [REDIS_KEY_PREFIX]="$prefix"
    [ENCRYPTION_KEY]="$(openssl rand -base64 32)"
    [ADMIN_API_TOKEN]="$token"
    [TRUSTED_PROXIES]="127.0.0.1/32"
    [BACKUP_DIR]="$backups"
    [LOG_FORMAT]=json
    [LOG_LEVEL]=info
)
start_dashboard "$dashboard_port" ||
    abort "dashboard stand-in did not start"
start_app app "$app_port" ||
    abort "hsq-config did not start"
(
    export NGINX_HTTP_PORT=$http_port NGINX_HTTPS_PORT=$https_port NGINX_HTTP_MODE=proxy
    export SERVER_NAME=localhost APP_UPSTREAM="127.0.0.1:$app_port"
    export SETTINGS_UPSTREAM="127.0.0.1:$app_port" NGINX_RESOLVER=127.0.0.1
    export NGINX_HSTS_MAX_AGE=63072000 NGINX_CLIENT_MAX_BODY_SIZE=1m
    export NGINX_ACCESS_LOG="$HSQ_STACK_DIR/nginx/logs/access.log"
    export TLS_CERT="$HSQ_STACK_DIR/certs/tls.crt" TLS_KEY="$HSQ_STACK_DIR/certs/tls.key"
    render_nginx "$HSQ_STACK_DIR/nginx"
)
nginx_test_config "$HSQ_STACK_DIR/nginx" ||
    abort "nginx -t failed"
NGINX_HTTP_PORT=$http_port start_nginx "$HSQ_STACK_DIR/nginx" ||
    abort "nginx did not start"

export API_URL="http://127.0.0.1:$app_port"
export NGINX_URL="http://127.0.0.1:$http_port"
export NGINX_TLS_URL="https://127.0.0.1:$https_port"
export API_TOKEN=$token
export DATABASE_URL="$PG_BASE_URL/$database"
export REDIS_URL=$LOCAL_REDIS_URL
export REDIS_KEY_PREFIX=$prefix
export BACKUP_DIR=$backups
export STACK=local
export DASHBOARD_REQUIRED=true

if (($# == 0)); then
    printf 'app      %s\nnginx    %s  %s\ntoken    %s\nlogs     %s\nCtrl-C stops and removes everything.\n' \
        "$API_URL" "$NGINX_URL" "$NGINX_TLS_URL" "$API_TOKEN" "$HSQ_STACK_DIR"
    wait
else
    "$@"
fi
