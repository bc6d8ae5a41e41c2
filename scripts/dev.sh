#!/usr/bin/env bash
# Runs hsq-config against the local PostgreSQL and Redis on http://127.0.0.1:13000.
# The first run creates the database `hsq_config` and `.env.dev` with a fresh ENCRYPTION_KEY
# and ADMIN_API_TOKEN; later runs reuse them, so the same data keeps opening.
set -euo pipefail
cd "$(dirname "$0")/.."

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
echo "try: curl -s -H \"Authorization: Bearer \$ADMIN_API_TOKEN\" http://127.0.0.1:${PORT:-13000}/api/config/status"
exec cargo run --locked --bin hsq-config -- serve
