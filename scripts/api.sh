#!/usr/bin/env bash
# One call to the hsq-config HTTP API, printed readably (jq, else python3 -m json.tool).
#
#   scripts/api.sh GET /api/config/status
#   scripts/api.sh --no-auth GET /api/config/health
#
# API_URL (default http://127.0.0.1:13000). The bearer token: API_TOKEN, else ADMIN_API_TOKEN,
# else ADMIN_API_TOKEN in .env, else secrets/admin_api_token.txt. It is handed to curl on stdin,
# never on a command line. Exits 1 when the answer is an HTTP error (>= 400) or there is none.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)
# shellcheck source=scripts/lib/common.sh
source "$here/lib/common.sh"
auth=true
if [[ ${1:-} == --no-auth ]]; then
    auth=false
    shift
fi
(($# >= 2)) || {
    echo "usage: scripts/api.sh [--no-auth] METHOD PATH [curl options...]" >&2
    exit 2
}
method=$1
path=$2
shift 2
api_url=${API_URL:-http://127.0.0.1:13000}
api_url=${api_url%/}

config=""
if [[ $auth == true ]]; then
    value=$(resolve_api_token "$root")
    if [[ -z $value ]]; then
        echo "no API token: set API_TOKEN, or ADMIN_API_TOKEN in .env" >&2
        exit 2
    fi
    config=$(printf 'header = "Authorization: Bearer %s"\n' "$value")
fi

body=$(mktemp)
trap 'rm -f "$body"' EXIT
status=$(printf '%s\n' "$config" |
    curl -sS --max-time 30 -K - -X "$method" -o "$body" -w '%{http_code}' "$@" "$api_url$path") || {
    echo "no answer from $api_url$path" >&2
    exit 1
}

if command -v jq >/dev/null 2>&1 && jq . "$body" 2>/dev/null; then
    :
elif python3 -m json.tool "$body" 2>/dev/null; then
    :
else
    cat "$body"
    echo
fi
echo "HTTP $status  $method $api_url$path" >&2
((status < 400))
