# hsq-config — operator commands. `make` lists them.
#
# Development:  make env certs start config-health
# Production:   make secrets && sudo make secrets-owner && make start PROD=1
# Targets that call the API use API_URL (default: nginx, http://127.0.0.1:18080, which reaches
# every app replica; in production the public URL; with `make dev` http://127.0.0.1:13000) and
# API_TOKEN (default: ADMIN_API_TOKEN from .env, else secrets/admin_api_token.txt).

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

COMPOSE ?= docker compose
# PROD=1 adds docker-compose.prod.yml; PROFILES="monitoring" enables compose profiles.
PROD ?=
PROFILES ?=
COMPOSE_FILES := -f docker-compose.yml $(if $(filter 1 true yes,$(PROD)),-f docker-compose.prod.yml)
DC := $(COMPOSE) $(COMPOSE_FILES) $(foreach p,$(PROFILES),--profile $(p))

NGINX_URL ?= http://127.0.0.1:18080
# The app has no fixed host port under compose (it scales), so the API is reached through nginx.
API_URL ?= $(NGINX_URL)
# SCALE=3: run that many app replicas (make start).
SCALE ?=
export API_URL NGINX_URL
API := scripts/api.sh

TAIL ?= 200
AUDIT_LIMIT ?= 50
DASHBOARD_CONTAINER ?= cw_hsq_dashboard
CONFIG_FILE ?=
RESTORE_ARGS ?=
BACKUP_ARGS ?=

.PHONY: help env keygen secrets secrets-owner certs build start stop restart clean clean-volumes \
	ps logs-app logs-dashboard health health-detailed config-health config-status config-audit \
	backup-config restore-config migrate db-shell redis-cli test test-config test-config-workflow \
	test-nginx ci-deploy local-stack dev bench

help: ## List the targets
	@awk 'BEGIN { FS = ":.*## " } /^[a-zA-Z_-]+:.*## / { printf "  %-22s %s\n", $$1, $$2 }' $(MAKEFILE_LIST)
	@echo
	@echo "  Variables: PROD=1 (production compose file), PROFILES=monitoring, SCALE=3, API_URL,"
	@echo "             API_TOKEN, CONFIG_FILE, RESTORE_ARGS, AUDIT_LIMIT, PROVIDER, TAIL"

## --- setup -------------------------------------------------------------------------------

env: ## Create .env from .env.example with a fresh ENCRYPTION_KEY and ADMIN_API_TOKEN (never overwrites)
	@if [ -e .env ]; then echo ".env exists; left as it is"; exit 0; fi; \
	umask 077; \
	sed -e "s|^ENCRYPTION_KEY=$$|ENCRYPTION_KEY=$$(openssl rand -base64 32)|" \
	    -e "s|^ADMIN_API_TOKEN=$$|ADMIN_API_TOKEN=$$(openssl rand -hex 32)|" .env.example > .env; \
	echo "created .env (mode 600) with a new ENCRYPTION_KEY and ADMIN_API_TOKEN"

keygen: ## Print a fresh ENCRYPTION_KEY (32 random bytes, base64)
	@openssl rand -base64 32

secrets: ## Create secrets/*.txt for production (chmod 600, never overwrites)
	@scripts/make-secrets.sh

secrets-owner: ## (as root) Give each secrets/*.txt to the container user that reads it
	@scripts/make-secrets.sh --owners

certs: certs/tls.crt ## Self-signed TLS certificate for development (certs/tls.crt, certs/tls.key)

certs/tls.crt:
	@mkdir -p certs
	openssl req -x509 -newkey rsa:2048 -nodes -days 365 -subj "/CN=localhost" \
	    -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
	    -keyout certs/tls.key -out certs/tls.crt 2>/dev/null
	@# Development only: nginx runs as uid 101 and reads the key through the bind mount.
	@chmod 644 certs/tls.key
	@echo "self-signed certificate in certs/ (development only)"

## --- lifecycle ---------------------------------------------------------------------------

build: ## Build the hsq-config image
	$(DC) build

start: ## Start the stack (PROD=1 for production, SCALE=3 for three app replicas) and wait until healthy
	@if [ -n "$(filter 1 true yes,$(PROD))" ]; then \
	    test -s certs/tls.crt && test -s certs/tls.key || { echo "put the certificate chain and key in certs/tls.crt and certs/tls.key first"; exit 1; }; \
	    test -e secrets/encryption_key.txt || { echo "run 'make secrets' (and 'sudo make secrets-owner') first"; exit 1; }; \
	else \
	    $(MAKE) --no-print-directory certs; \
	fi
	$(DC) up -d --wait $(if $(SCALE),--scale cw_hsq_app=$(SCALE))

stop: ## Stop the containers (data volumes are kept)
	$(DC) stop

restart: ## Restart the app container
	$(DC) restart cw_hsq_app

ps: ## Show containers and their health
	$(DC) ps

clean: ## Remove containers, networks and the locally built image (keeps the data volumes)
	$(DC) down --remove-orphans --rmi local

clean-volumes: ## Remove containers AND the data volumes (database, Redis, backups): CONFIRM=yes
	@test "$(CONFIRM)" = yes || { echo "this deletes the database and the backups volume; run: make clean-volumes CONFIRM=yes"; exit 1; }
	$(DC) down --remove-orphans --volumes

logs-app: ## Follow the app's logs (TAIL=200)
	$(DC) logs -f --tail=$(TAIL) cw_hsq_app

logs-dashboard: ## Follow the dashboard's logs (its own compose project; DASHBOARD_CONTAINER=cw_hsq_dashboard)
	@docker logs -f --tail=$(TAIL) $(DASHBOARD_CONTAINER) || \
	    { echo "no container $(DASHBOARD_CONTAINER): the dashboard runs from its own project"; exit 1; }

migrate: ## Apply database migrations (one-off container)
	$(DC) run --rm cw_hsq_app hsq-config migrate

db-shell: ## psql in the PostgreSQL container
	$(DC) exec cw_hsq_postgres sh -c 'exec psql -U "$$POSTGRES_USER" -d "$$POSTGRES_DB"'

redis-cli: ## redis-cli in the Redis container (uses the production password when there is one)
	$(DC) exec cw_hsq_redis sh -c 'if [ -r /run/secrets/redis_password ]; then REDISCLI_AUTH="$$(cat /run/secrets/redis_password)"; export REDISCLI_AUTH; fi; exec redis-cli'

## --- health and configuration ------------------------------------------------------------

health: ## Liveness and readiness (GET /health, /health/ready)
	@$(API) --no-auth GET /health
	@$(API) --no-auth GET /health/ready

health-detailed: ## Component health and the containers' state
	@$(API) --no-auth GET /api/config/health || true
	@$(DC) ps 2>/dev/null || true

config-health: ## Configuration-management health (GET /api/config/health)
	@$(API) --no-auth GET /api/config/health

config-status: ## Every provider x environment: configured, enabled, connection (GET /api/config/status)
	@$(API) GET /api/config/status

config-audit: ## Recent audit records (AUDIT_LIMIT=50, PROVIDER=stripe|hubspot|quickbooks)
	@$(API) GET "/api/config/audit?limit=$(AUDIT_LIMIT)$(if $(PROVIDER),&provider=$(PROVIDER))"

backup-config: ## Back up configuration to /app/backups/hsq-config-<UTC time>.json (BACKUP_ARGS=...)
	@file=/app/backups/hsq-config-$$(date -u +%Y%m%dT%H%M%SZ).json; \
	$(DC) exec -T cw_hsq_app hsq-config backup --out "$$file" $(BACKUP_ARGS); \
	echo "backup written to $$file (volume cw_hsq_config_backups)"

restore-config: ## Restore: make restore-config CONFIG_FILE=<host file or /app/backups/...> [RESTORE_ARGS=--dry-run]
	@test -n "$(CONFIG_FILE)" || { echo "usage: make restore-config CONFIG_FILE=backup.json [RESTORE_ARGS=--dry-run]"; exit 2; }
	@if [ -f "$(CONFIG_FILE)" ]; then \
	    target=/app/backups/restore-$$(date -u +%Y%m%dT%H%M%SZ)-$$(basename "$(CONFIG_FILE)"); \
	    $(DC) exec -T cw_hsq_app sh -c 'umask 077; cat > "$$1"' sh "$$target" < "$(CONFIG_FILE)"; \
	    echo "copied $(CONFIG_FILE) to $$target"; \
	else \
	    target="$(CONFIG_FILE)"; \
	fi; \
	$(DC) exec -T cw_hsq_app hsq-config restore "$$target" $(RESTORE_ARGS)

## --- tests -------------------------------------------------------------------------------

test: ## The project's test suite (what CI runs)
	bash .ci/run

test-config: ## The Rust tests (cargo nextest when installed)
	@if cargo nextest --version >/dev/null 2>&1; then cargo nextest run; else cargo test; fi

test-config-workflow: ## End-to-end check of the running stack (scripts/test-config-workflow.sh)
	COMPOSE="$(DC)" scripts/test-config-workflow.sh

test-nginx: ## nginx config tested for real in front of a local app (scripts/test-nginx.sh)
	scripts/test-nginx.sh

ci-deploy: ## Everything CI checks for the deployment files (scripts/ci-deploy.sh)
	scripts/ci-deploy.sh

local-stack: ## Without Docker: app + nginx + stand-in dashboard as local processes, until Ctrl-C
	scripts/run-local-stack.sh

dev: ## Without Docker: the service alone on the local PostgreSQL and Redis (scripts/dev.sh)
	scripts/dev.sh

bench: ## Load benchmark in ratios to a bare axum ceiling (ROUNDS=, BENCH_PEER=openbao; docs/benchmarks.md)
	scripts/bench.sh
