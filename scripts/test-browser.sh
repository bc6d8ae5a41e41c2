#!/usr/bin/env bash
# Browser tests of the settings console: headless Chromium (Debian's `chromium`) driven by
# playwright-core (tests/browser, its own package.json and lock file) against the real
# binary, the local PostgreSQL and Redis, and provider fakes (Stripe's account endpoint,
# Intuit's authorization server). Installs chromium and the npm packages when missing, builds
# the binary, runs the suite and ends with one line: `N passed, M failed`.
#
# Screenshots of the overview, a provider page and the audit page land in
# tests/browser/output/ (SCREENSHOT_DIR to change); docs/console-*.png are copies of them.
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ ! -x /usr/bin/chromium ]]; then
    echo "installing chromium (Debian package)"
    if [[ $EUID -eq 0 ]]; then
        apt-get update -qq && apt-get install -y -qq chromium >/dev/null
    else
        sudo apt-get update -qq && sudo apt-get install -y -qq chromium >/dev/null
    fi
fi
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    echo "node and npm are needed: apt-get install -y nodejs npm" >&2
    echo "0 passed, 1 failed"
    exit 1
fi
if [[ ! -d tests/browser/node_modules/playwright-core ]]; then
    (cd tests/browser && npm ci --no-audit --no-fund --loglevel=error)
fi
if [[ -z ${HSQ_CONFIG_BIN:-} ]]; then
    cargo build --locked --bin hsq-config
    export HSQ_CONFIG_BIN=$PWD/target/debug/hsq-config
fi

log=$(mktemp "${TMPDIR:-/tmp}/hsq-browser.XXXXXX")
trap 'rm -f "$log"' EXIT
set +e
(cd tests/browser && node --test --test-concurrency=1 --test-reporter=spec console.test.mjs) 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e
# The spec reporter's summary lines: "ℹ pass N" and "ℹ fail M".
passed=$(sed -n 's/^ℹ pass \([0-9]*\)$/\1/p' "$log" | tail -n1)
failed=$(sed -n 's/^ℹ fail \([0-9]*\)$/\1/p' "$log" | tail -n1)
if [[ -z $passed || -z $failed ]]; then
    passed=${passed:-0}
    failed=$((${failed:-0} > 0 ? ${failed:-0} : 1))
fi
if [[ $status -ne 0 && $failed -eq 0 ]]; then
    failed=1
fi
echo "$passed passed, $failed failed"
[[ $failed -eq 0 ]]
