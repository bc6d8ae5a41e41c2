# shellcheck shell=bash
# The deployment's pieces as plain processes, for machines without a Docker engine: nginx
# rendered from nginx/templates exactly as the image's entrypoint does, hsq-config on a fresh
# PostgreSQL database and a private Redis key prefix, and small stand-ins for the dashboard
# and for a header-echoing upstream. Used by scripts/test-nginx.sh and scripts/ci-deploy.sh.
#
# Source scripts/lib/common.sh first, call stack_init, and `trap stack_cleanup EXIT`.

HSQ_ROOT=${HSQ_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
HSQ_CONFIG_BIN=${HSQ_CONFIG_BIN:-$HSQ_ROOT/target/debug/hsq-config}
# Where test databases are created and dropped (the local PostgreSQL, trust auth).
PG_ADMIN_URL=${PG_ADMIN_URL:-postgres://postgres@127.0.0.1:5432/postgres}
PG_BASE_URL=${PG_BASE_URL:-postgres://postgres@127.0.0.1:5432}
LOCAL_REDIS_URL=${LOCAL_REDIS_URL:-redis://127.0.0.1:6379}

HSQ_STACK_DIR=""
HSQ_PIDS=()
HSQ_DATABASES=()
HSQ_REDIS_PREFIXES=()

stack_init() {
    HSQ_STACK_DIR=$(mktemp -d "${TMPDIR:-/tmp}/hsq-stack.XXXXXX")
    # nginx workers run as an unprivileged user when the master is root: let them in.
    chmod 755 "$HSQ_STACK_DIR"
}

stack_cleanup() {
    local status=$? pid db prefix i
    set +e
    for ((i = ${#HSQ_PIDS[@]} - 1; i >= 0; i--)); do
        pid=${HSQ_PIDS[i]}
        kill -TERM "$pid" 2>/dev/null
    done
    for pid in "${HSQ_PIDS[@]}"; do
        for _ in $(seq 50); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
    done
    HSQ_PIDS=()
    for db in "${HSQ_DATABASES[@]}"; do
        psql -q "$PG_ADMIN_URL" -c "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)" >/dev/null 2>&1 ||
            printf 'warning: could not drop database %s\n' "$db" >&2
    done
    HSQ_DATABASES=()
    for prefix in "${HSQ_REDIS_PREFIXES[@]}"; do
        redis-cli -u "$LOCAL_REDIS_URL" --scan --pattern "${prefix}*" 2>/dev/null |
            xargs -r redis-cli -u "$LOCAL_REDIS_URL" del >/dev/null 2>&1
    done
    HSQ_REDIS_PREFIXES=()
    if [[ -n $HSQ_STACK_DIR && -d $HSQ_STACK_DIR ]]; then
        if [[ ${KEEP_STACK_DIR:-} == 1 || ($status -ne 0 && ${KEEP_STACK_DIR_ON_FAILURE:-} == 1) ]]; then
            printf 'kept %s\n' "$HSQ_STACK_DIR" >&2
        else
            rm -rf "$HSQ_STACK_DIR"
        fi
    fi
    return "$status"
}

# Registers a background process for cleanup.
track_pid() {
    HSQ_PIDS+=("$1")
}

# --- nginx ---------------------------------------------------------------------------------

# The ${NAMES} the templates use, one per line.
nginx_template_vars() {
    # shellcheck disable=SC2016 # literal ${ and } are what is searched for and removed
    grep -rhoE '\$\{[A-Z][A-Z0-9_]*\}' "$HSQ_ROOT/nginx/templates" | tr -d '${}' | sort -u
}

# render_nginx DIR: renders every nginx/templates/**/*.template into DIR/conf.d the way the
# image's 20-envsubst-on-templates.sh does (same relative paths, envsubst restricted to a
# variable list), after checking that every variable the templates use is set. Then writes
# DIR/nginx.conf, the stand-in for the image's /etc/nginx/nginx.conf: same http-level include
# of conf.d/*.conf, with pid, logs and temp files inside DIR.
render_nginx() {
    local dir=$1 name names="" template relative output missing=()
    mkdir -p "$dir/conf.d" "$dir/logs" "$dir/tmp"
    chmod 1777 "$dir/tmp"
    while IFS= read -r name; do
        if [[ -z ${!name+set} ]]; then
            missing+=("$name")
        fi
        names+="\${$name} "
    done < <(nginx_template_vars)
    if ((${#missing[@]} > 0)); then
        printf 'error: nginx template variables not set: %s\n' "${missing[*]}" >&2
        return 1
    fi
    while IFS= read -r template; do
        relative=${template#"$HSQ_ROOT/nginx/templates/"}
        output="$dir/conf.d/${relative%.template}"
        mkdir -p "$(dirname "$output")"
        envsubst "$names" <"$template" >"$output"
    done < <(find "$HSQ_ROOT/nginx/templates" -type f -name '*.template' | sort)
    # shellcheck disable=SC2016 # a literal ${ is what must not be left
    if grep -rn '\${' "$dir/conf.d" >&2; then
        # shellcheck disable=SC2016
        printf 'error: unrendered ${...} left in %s/conf.d (above)\n' "$dir" >&2
        return 1
    fi
    cp /etc/nginx/mime.types "$dir/mime.types"
    local user_line=""
    if ((EUID == 0)); then
        user_line="user nobody nogroup;"
    fi
    cat >"$dir/nginx.conf" <<CONF
# Stand-in for the image's nginx.conf (written by scripts/lib/local-stack.sh).
$user_line
worker_processes 1;
pid $dir/nginx.pid;
error_log $dir/logs/error.log info;

events {
    worker_connections 512;
}

http {
    include mime.types;
    default_type application/octet-stream;
    sendfile on;
    keepalive_timeout 65;
    client_body_temp_path $dir/tmp/client_temp;
    proxy_temp_path $dir/tmp/proxy_temp;
    fastcgi_temp_path $dir/tmp/fastcgi_temp;
    uwsgi_temp_path $dir/tmp/uwsgi_temp;
    scgi_temp_path $dir/tmp/scgi_temp;

    include conf.d/*.conf;
}
CONF
}

nginx_test_config() {
    local dir=$1
    nginx -t -q -p "$dir/" -c "$dir/nginx.conf" -e "$dir/logs/error.log"
}

# start_nginx DIR: runs nginx in the foreground (daemon off) as a tracked background process
# and waits until the HTTP port answers. NGINX_HTTP_PORT must be the port it listens on.
start_nginx() {
    local dir=$1 pid
    nginx -p "$dir/" -c "$dir/nginx.conf" -e "$dir/logs/error.log" -g 'daemon off;' \
        >>"$dir/logs/stdout.log" 2>&1 &
    pid=$!
    track_pid "$pid"
    if ! wait_for_http "http://127.0.0.1:$NGINX_HTTP_PORT/nginx-health" 20 "$pid"; then
        printf 'error: nginx did not start; its error log:\n' >&2
        cat "$dir/logs/error.log" >&2
        return 1
    fi
}

# make_cert DIR: a throwaway self-signed certificate for 127.0.0.1/localhost.
make_cert() {
    local dir=$1
    mkdir -p "$dir"
    openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=localhost" \
        -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
        -keyout "$dir/tls.key" -out "$dir/tls.crt" >/dev/null 2>&1
}

# --- PostgreSQL and Redis ------------------------------------------------------------------

# create_database NAME: a fresh database on the local server, dropped by stack_cleanup.
create_database() {
    local db=$1
    psql -q -v ON_ERROR_STOP=1 "$PG_ADMIN_URL" -c "CREATE DATABASE \"$db\"" >/dev/null
    HSQ_DATABASES+=("$db")
}

# A key prefix no other run uses; its keys are deleted by stack_cleanup.
new_redis_prefix() {
    local prefix
    prefix="hsq-test-$(random_hex 6):"
    HSQ_REDIS_PREFIXES+=("$prefix")
    printf '%s' "$prefix"
}

# --- hsq-config ----------------------------------------------------------------------------

# start_app NAME PORT [VAR=VALUE ...]: runs `hsq-config serve` with a clean environment made
# of APP_ENV (an associative array of defaults the caller fills) and the VAR=VALUE arguments,
# logs to $HSQ_STACK_DIR/NAME.log, and waits until /health answers 200. It listens on
# 127.0.0.1 unless a BIND_ADDRESS=... argument names another loopback address. The process id
# is left in APP_PID.
declare -A APP_ENV=()
APP_PID=""
start_app() {
    local name=$1 port=$2
    shift 2
    local -a env_args=(PATH="$PATH" HOME="${HOME:-/root}")
    local key pid arg host=127.0.0.1
    for key in "${!APP_ENV[@]}"; do
        env_args+=("$key=${APP_ENV[$key]}")
    done
    for arg in "$@"; do
        [[ $arg == BIND_ADDRESS=* ]] && host=${arg#BIND_ADDRESS=}
    done
    env_args+=(PORT="$port" BIND_ADDRESS=127.0.0.1 "$@")
    [[ -x $HSQ_CONFIG_BIN ]] || die "no hsq-config binary at $HSQ_CONFIG_BIN (run cargo build)"
    env -i "${env_args[@]}" "$HSQ_CONFIG_BIN" serve >"$HSQ_STACK_DIR/$name.log" 2>&1 &
    pid=$!
    # shellcheck disable=SC2034 # read by the scripts that source this file
    APP_PID=$pid
    track_pid "$pid"
    if ! wait_for_status "http://$host:$port/health" 200 90 || ! kill -0 "$pid" 2>/dev/null; then
        printf 'error: hsq-config (%s) did not become healthy; last log lines:\n' "$name" >&2
        tail -n 40 "$HSQ_STACK_DIR/$name.log" >&2
        return 1
    fi
}

# --- stand-ins -----------------------------------------------------------------------------

# start_dashboard PORT: python's http.server with a page at /settings/.
start_dashboard() {
    local port=$1 root="$HSQ_STACK_DIR/dashboard" pid
    mkdir -p "$root/settings"
    printf '<!doctype html><title>settings</title><p>hsq dashboard stand-in</p>\n' \
        >"$root/settings/index.html"
    python3 -m http.server "$port" --bind 127.0.0.1 --directory "$root" \
        >"$HSQ_STACK_DIR/dashboard.log" 2>&1 &
    pid=$!
    track_pid "$pid"
    wait_for_http "http://127.0.0.1:$port/settings/" 20 "$pid"
}

# start_echo PORT: answers every request with 200 and a JSON object of the request headers it
# received (lower-case names), so a test can see what nginx sends upstream.
start_echo() {
    local port=$1 pid
    python3 - "$port" >"$HSQ_STACK_DIR/echo.log" 2>&1 <<'PY' &
import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Echo(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def answer(self):
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        body = json.dumps({"path": self.path, "headers": {k.lower(): v for k, v in self.headers.items()}})
        data = body.encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = answer

    def log_message(self, *args):
        pass


ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Echo).serve_forever()
PY
    pid=$!
    track_pid "$pid"
    wait_for_http "http://127.0.0.1:$port/" 20 "$pid"
}

# wait_for_file FILE SECONDS PID: polls until FILE exists, the deadline passes or PID dies.
wait_for_file() {
    local file=$1 seconds=$2 pid=$3
    local deadline=$((SECONDS + seconds))
    while ((SECONDS < deadline)); do
        [[ -e $file ]] && return 0
        kill -0 "$pid" 2>/dev/null || return 1
        sleep 0.1
    done
    return 1
}

# start_dns PORT NAME=IP[,IP...]...: a DNS server on 127.0.0.1:PORT (UDP) that answers A
# queries for each NAME with all its addresses, as Docker's embedded DNS answers for a scaled
# service, and NXDOMAIN for any other name. For nginx's `resolver`.
start_dns() {
    local port=$1 ready="$HSQ_STACK_DIR/dns-$1.ready" pid
    shift
    python3 - "$port" "$ready" "$@" >"$HSQ_STACK_DIR/dns-$port.log" 2>&1 <<'PY' &
import pathlib
import socket
import struct
import sys

port, ready, *entries = sys.argv[1:]
records = {}
for entry in entries:
    name, addresses = entry.split("=", 1)
    records[name.lower().rstrip(".")] = [socket.inet_aton(a) for a in addresses.split(",")]

sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sock.bind(("127.0.0.1", int(port)))
pathlib.Path(ready).touch()
while True:
    query, peer = sock.recvfrom(512)
    if len(query) < 17:
        continue
    ident, flags = struct.unpack(">HH", query[:4])
    labels, i = [], 12
    while i < len(query) and query[i]:
        labels.append(query[i + 1:i + 1 + query[i]].decode("ascii", "replace"))
        i += 1 + query[i]
    qtype, _ = struct.unpack(">HH", query[i + 1:i + 5])
    question = query[12:i + 5]
    name = ".".join(labels).lower()
    answers = records.get(name, []) if qtype == 1 else []
    rcode = 0 if name in records else 3
    # A response (QR), the client's RD bit, RA; the question echoed; each answer a pointer to
    # the question's name, type A, class IN, TTL 5 s.
    header = struct.pack(">HHHHHH", ident, 0x8080 | (flags & 0x0100) | rcode, 1, len(answers), 0, 0)
    body = b"".join(struct.pack(">HHHIH", 0xC00C, 1, 1, 5, 4) + a for a in answers)
    sock.sendto(header + question + body, peer)
PY
    pid=$!
    track_pid "$pid"
    wait_for_file "$ready" 20 "$pid"
}

# start_crasher PORT LOG ADDRESS...: on each ADDRESS:PORT, accepts a connection, reads one
# whole request (headers and Content-Length body), appends "ADDRESS METHOD PATH" to LOG and
# closes the connection without answering: a replica that dies holding the request.
start_crasher() {
    local port=$1 log=$2 ready="$HSQ_STACK_DIR/crasher-$1.ready" pid
    shift 2
    : >"$log"
    python3 - "$port" "$log" "$ready" "$@" >"$HSQ_STACK_DIR/crasher-$port.log" 2>&1 <<'PY' &
import pathlib
import socketserver
import sys
import threading

port, log, ready, *addresses = sys.argv[1:]
lock = threading.Lock()


class Crash(socketserver.BaseRequestHandler):
    def handle(self):
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = self.request.recv(65536)
            if not chunk:
                return
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        length = 0
        for line in lines[1:]:
            key, _, value = line.partition(":")
            if key.strip().lower() == "content-length":
                length = int(value.strip())
        while len(body) < length:
            chunk = self.request.recv(65536)
            if not chunk:
                break
            body += chunk
        method, path = lines[0].split(" ")[:2]
        with lock, open(log, "a") as out:
            out.write(f"{self.server.server_address[0]} {method} {path}\n")
        self.request.close()


class Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


for address in addresses:
    server = Server((address, int(port)), Crash)
    threading.Thread(target=server.serve_forever, daemon=True).start()
pathlib.Path(ready).touch()
threading.Event().wait()
PY
    pid=$!
    track_pid "$pid"
    wait_for_file "$ready" 20 "$pid"
}
