#!/usr/bin/env bash
# The test command: starts the local PostgreSQL and Redis if they are down, runs every Rust
# test (unit and integration, against the real services), then the deployment checks
# (nginx in front of the real app, compose validation, the operator workflow script) and the
# API contract (schemathesis against the running service) and the settings console in headless
# Chromium (scripts/test-browser.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

ensure_services() {
  if ! pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null; then
    echo "starting PostgreSQL"
    pg_ctlcluster --skip-systemctl-redirect "$(find /etc/postgresql -mindepth 1 -maxdepth 1 -printf '%f\n' | sort | head -n1)" main start
  fi
  if ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
    echo "starting Redis"
    redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no
  fi
  for _ in $(seq 1 50); do
    pg_isready -h 127.0.0.1 -p 5432 -q && redis-cli -h 127.0.0.1 ping >/dev/null 2>&1 && return 0
    sleep 0.2
  done
  echo "PostgreSQL or Redis did not come up" >&2
  return 1
}

ensure_services

if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --locked --no-fail-fast
else
  cargo test --locked --no-fail-fast
fi

if [ "${SKIP_DEPLOY_CHECKS:-}" != "1" ]; then
  cargo build --locked --bin hsq-config
  bash scripts/ci-deploy.sh
  bash scripts/test-contract.sh
  HSQ_CONFIG_BIN=$PWD/target/debug/hsq-config bash scripts/test-browser.sh
fi
