#!/usr/bin/env bash
# Production secrets for docker-compose.prod.yml, one file each under secrets/.
#
#   scripts/make-secrets.sh            # create the missing files (chmod 600); never overwrite
#   sudo scripts/make-secrets.sh --owners
#                                      # give each file to the container user that reads it
#
# Compose (without Swarm) bind-mounts secret files with their host owner and mode, so a file
# that is 600 and owned by you cannot be read by a container running as another user. --owners
# hands each file to its reader: hsq-config (10001), PostgreSQL and Redis (999), Prometheus
# (65534). After that you read them with sudo.
#
# POSTGRES_USER and POSTGRES_DB (from the environment, else .env, else hsq / hsq_config) go
# into database_url.txt.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
dir="$root/secrets"

declare -A owner_of=(
    [database_url.txt]=10001 [redis_url.txt]=10001 [encryption_key.txt]=10001
    [admin_api_token.txt]=10001 [metrics_token.txt]=10001
    [postgres_password.txt]=999 [redis_password.txt]=999
    [prometheus_metrics_token.txt]=65534
)

if [[ ${1:-} == --owners ]]; then
    ((EUID == 0)) || {
        echo "--owners changes file owners: run it as root (sudo)" >&2
        exit 1
    }
    for file in "${!owner_of[@]}"; do
        if [[ -f $dir/$file ]]; then
            chown "${owner_of[$file]}:${owner_of[$file]}" "$dir/$file"
            chmod 600 "$dir/$file"
            echo "secrets/$file -> uid ${owner_of[$file]}"
        fi
    done
    exit 0
fi

from_env_file() {
    local name=$1 default=$2 value=${!1:-}
    if [[ -z $value && -r $root/.env ]]; then
        value=$(sed -n "s/^$name=//p" "$root/.env" | tail -n 1)
    fi
    printf '%s' "${value:-$default}"
}

umask 077
mkdir -p "$dir"

# write NAME VALUE: creates secrets/NAME with VALUE unless it exists.
write() {
    local file="$dir/$1"
    if [[ -e $file ]]; then
        echo "kept     secrets/$1"
        return
    fi
    printf '%s\n' "$2" >"$file"
    chmod 600 "$file"
    echo "created  secrets/$1"
}

# read_secret NAME: the value of an existing secret file (fails clearly if it is not ours to read).
read_secret() {
    local file="$dir/$1"
    [[ -r $file ]] || {
        echo "cannot read secrets/$1 (owned by a container user? run with sudo)" >&2
        exit 1
    }
    head -n 1 "$file"
}

# Hex, so passwords can go into URLs unescaped.
write postgres_password.txt "$(openssl rand -hex 24)"
write redis_password.txt "$(openssl rand -hex 24)"
write encryption_key.txt "$(openssl rand -base64 32)"
write admin_api_token.txt "$(openssl rand -hex 32)"
write metrics_token.txt "$(openssl rand -hex 32)"
if [[ ! -e $dir/prometheus_metrics_token.txt ]]; then
    # The same token, in a second file that Prometheus's user can own.
    write prometheus_metrics_token.txt "$(read_secret metrics_token.txt)"
else
    echo "kept     secrets/prometheus_metrics_token.txt"
fi
if [[ ! -e $dir/database_url.txt ]]; then
    user=$(from_env_file POSTGRES_USER hsq)
    db=$(from_env_file POSTGRES_DB hsq_config)
    write database_url.txt "postgres://$user:$(read_secret postgres_password.txt)@cw_hsq_postgres:5432/$db"
else
    echo "kept     secrets/database_url.txt"
fi
if [[ ! -e $dir/redis_url.txt ]]; then
    write redis_url.txt "redis://:$(read_secret redis_password.txt)@cw_hsq_redis:6379"
else
    echo "kept     secrets/redis_url.txt"
fi
echo "Keep a copy of secrets/encryption_key.txt apart from the backups: without it they do not open."
