# shellcheck shell=bash
# Shared helpers for the deployment scripts: PASS/FAIL bookkeeping, waiting for HTTP servers,
# free ports. Source it; it defines functions and counters and changes no shell options.

HSQ_PASSED=0
HSQ_FAILED=0
HSQ_SKIPPED=0
HSQ_FAILURES=()

pass() {
    HSQ_PASSED=$((HSQ_PASSED + 1))
    printf 'PASS  %s\n' "$*"
}

fail() {
    HSQ_FAILED=$((HSQ_FAILED + 1))
    HSQ_FAILURES+=("$*")
    printf 'FAIL  %s\n' "$*"
}

skip() {
    HSQ_SKIPPED=$((HSQ_SKIPPED + 1))
    printf 'SKIP  %s\n' "$*"
}

info() {
    printf '      %s\n' "$*"
}

section() {
    printf '\n== %s\n' "$*"
}

# check "description" command args... : PASS when the command succeeds, FAIL otherwise.
check() {
    local description=$1
    shift
    if "$@"; then
        pass "$description"
    else
        fail "$description"
    fi
}

# Prints the closing summary ("N passed, M failed[, K skipped]") and returns non-zero when
# anything failed. The last line is the one CI reads.
summary() {
    if ((HSQ_FAILED > 0)); then
        printf '\nFailed checks:\n'
        printf '  - %s\n' "${HSQ_FAILURES[@]}"
    fi
    printf '\n'
    if ((HSQ_SKIPPED > 0)); then
        printf '%d passed, %d failed, %d skipped\n' "$HSQ_PASSED" "$HSQ_FAILED" "$HSQ_SKIPPED"
    else
        printf '%d passed, %d failed\n' "$HSQ_PASSED" "$HSQ_FAILED"
    fi
    ((HSQ_FAILED == 0))
}

# absent TEXT FILE: FILE does not contain TEXT.
absent() {
    ! grep -qF -- "$1" "$2"
}

# absent_regex REGEX PATH: no line of PATH (a file, or every file under a directory) matches
# the extended regular expression REGEX.
absent_regex() {
    ! grep -rqE -- "$1" "$2"
}

# between VALUE LOW HIGH: LOW <= VALUE <= HIGH (integers).
between() {
    (($1 >= $2 && $1 <= $3))
}

# abort MESSAGE: a failure that stops the run; prints the summary so the counts still show.
abort() {
    fail "$*"
    summary || true
    exit 1
}

die() {
    printf 'error: %s\n' "$*" >&2
    exit 2
}

need() {
    local tool
    for tool in "$@"; do
        command -v "$tool" >/dev/null 2>&1 || die "$tool is required but not installed"
    done
}

# resolve_api_token ROOT: the admin bearer token for operator commands: API_TOKEN, else
# ADMIN_API_TOKEN, else ADMIN_API_TOKEN in ROOT/.env, else ROOT/secrets/admin_api_token.txt
# (when readable). Prints nothing when there is none.
resolve_api_token() {
    local root=$1 value=${API_TOKEN:-${ADMIN_API_TOKEN:-}}
    if [[ -z $value && -r $root/.env ]]; then
        value=$(sed -n 's/^ADMIN_API_TOKEN=//p' "$root/.env" | tail -n 1)
        value=${value#[\"\']}
        value=${value%[\"\']}
    fi
    if [[ -z $value && -r $root/secrets/admin_api_token.txt ]]; then
        value=$(head -n 1 "$root/secrets/admin_api_token.txt")
    fi
    printf '%s' "$value"
}

# A TCP port nobody listens on right now (the kernel picks it).
free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

random_hex() {
    openssl rand -hex "${1:-16}"
}

# wait_for_http URL [SECONDS] [PID]: polls until URL answers at all (any HTTP status), the
# deadline passes, or PID (the server's process) dies. Extra curl options may follow in
# WAIT_CURL_OPTS (an array).
wait_for_http() {
    local url=$1 seconds=${2:-60} pid=${3:-}
    local deadline=$((SECONDS + seconds))
    while ((SECONDS < deadline)); do
        if [[ -n $pid ]] && ! kill -0 "$pid" 2>/dev/null; then
            return 1
        fi
        if curl -sk -o /dev/null --max-time 2 "${WAIT_CURL_OPTS[@]}" "$url"; then
            return 0
        fi
        sleep 0.2
    done
    return 1
}
WAIT_CURL_OPTS=()

# wait_for_status URL STATUS [SECONDS]: polls until URL answers with STATUS.
wait_for_status() {
    local url=$1 want=$2 seconds=${3:-60}
    local deadline=$((SECONDS + seconds)) got
    while ((SECONDS < deadline)); do
        got=$(curl -sk -o /dev/null -w '%{http_code}' --max-time 3 "$url" || true)
        [[ $got == "$want" ]] && return 0
        sleep 0.3
    done
    return 1
}

# header_value FILE NAME: the value of header NAME (case-insensitive) in a curl -D dump; the
# last one when there are several (redirects).
header_value() {
    local file=$1 name=$2
    awk -v n="$(printf '%s' "$name" | tr '[:upper:]' '[:lower:]')" '
        BEGIN { IGNORECASE = 1 }
        {
            sub(/\r$/, "")
            i = index($0, ":")
            if (i > 0 && tolower(substr($0, 1, i - 1)) == n) {
                v = substr($0, i + 1)
                sub(/^[ \t]+/, "", v)
                last = v
            }
        }
        END { print last }' "$file"
}

# header_count FILE NAME: how many times header NAME appears.
header_count() {
    local file=$1 name=$2
    grep -ci "^${name}:" "$file" || true
}
