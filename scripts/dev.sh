#!/usr/bin/env bash
# Runs hsq-config against the local PostgreSQL and Redis on http://127.0.0.1:13000, with the
# settings console at http://127.0.0.1:13000/settings (sign in with the admin token printed
# below). Starts PostgreSQL and Redis when they are installed but stopped; when one is missing,
# says in one line what to install (or to use `docker compose up` instead).
# The first run creates the database `hsq_config` and `.env.dev` with a fresh ENCRYPTION_KEY
# and ADMIN_API_TOKEN; later runs reuse them, so the same data keeps opening.
set -euo pipefail
cd "$(dirname "$0")/.."

ensure_postgres() {
  pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null && return 0
  local version
  version=$(find /etc/postgresql -mindepth 1 -maxdepth 1 -printf '%f\n' 2>/dev/null | sort | head -n1)
  if [ -z "$version" ] || ! command -v pg_ctlcluster >/dev/null; then
    echo "PostgreSQL is not installed: apt-get install -y postgresql (or run the whole stack with docker compose up)" >&2
    exit 1
  fi
  echo "starting PostgreSQL $version"
  pg_ctlcluster --skip-systemctl-redirect "$version" main start
}

ensure_redis() {
  redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 && return 0
  if ! command -v redis-server >/dev/null; then
    echo "Redis is not installed: apt-get install -y redis-server (or run the whole stack with docker compose up)" >&2
    exit 1
  fi
  echo "starting Redis"
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no >/dev/null
}

ensure_postgres
ensure_redis
for _ in $(seq 1 50); do
  pg_isready -h 127.0.0.1 -p 5432 -q && redis-cli -h 127.0.0.1 ping >/dev/null 2>&1 && break
  sleep 0.2
done

if [ ! -f .env.dev ]; then
  umask 077
  cat > .env.dev <<ENV
DATABASE_URL=postgres://postgres@127.0.0.1:5432/hsq_config
REDIS_URL=redis://127.0.0.1:6379
REDIS_KEY_PREFIX=hsq:dev:
ENCRYPTION_KEY=$(openssl rand -base64 32)
ADMIN_API_TOKEN=$(openssl rand -hex 32)
BIND_ADDRESS=127.0.0.1
LOG_FORMAT=pretty
SETTINGS_PUBLIC_URL=http://127.0.0.1:13000
ENV
  echo "wrote .env.dev (keep it: its ENCRYPTION_KEY opens the data)"
fi
set -a
# shellcheck source=/dev/null
. ./.env.dev
set +a

if ! psql -h 127.0.0.1 -U postgres -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname = 'hsq_config'" | grep -q 1; then
  psql -h 127.0.0.1 -U postgres -d postgres -qc 'CREATE DATABASE hsq_config'
fi

echo "admin token: ${ADMIN_API_TOKEN}"
echo "settings console: http://127.0.0.1:${PORT:-13000}/settings (paste the admin token to sign in)"
echo "try: curl -s -H \"Authorization: Bearer \$ADMIN_API_TOKEN\" http://127.0.0.1:${PORT:-13000}/api/config/status"
exec cargo run --locked --bin hsq-config -- serve
