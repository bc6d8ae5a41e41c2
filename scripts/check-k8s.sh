#!/usr/bin/env bash
# The Kubernetes manifests (deploy/k8s), checked without a cluster:
#   1. `kubectl kustomize` renders each overlay (dev, prod);
#   2. kubernetes-validate checks every rendered object, and the example Secret and restore
#      Job, against the Kubernetes schemas in strict mode (unknown fields refused): the oldest
#      version the manifests promise (K8S_MIN_VERSION, 1.33) and the newest the tool bundles;
#   3. checkov scans the rendered manifests and must pass; a check is only ever skipped in the
#      manifest itself (a checkov.io/skipN annotation with its reason), never on this command
#      line, and the skips are listed;
#   4. scripts/lib/check_k8s.py checks what docs/kubernetes.md promises on the rendered objects
#      (replicas, rollout, probes, shutdown timing, secrets as files, migration Job, limits,
#      NetworkPolicy, backups).
# Ends with "N passed, M failed[, K skipped]" and exits non-zero on any failure.
#
# Tools: kubectl (its built-in kustomize); kubernetes-validate and checkov from PyPI, pinned,
# installed on first use into a virtualenv under HSQ_TOOLS_DIR (default
# ~/.cache/hsq-config-tools), named by their versions so a version change gets a fresh one.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)
# shellcheck source=scripts/lib/common.sh
source "$here/lib/common.sh"

KUBERNETES_VALIDATE_VERSION=1.37.0
CHECKOV_VERSION=3.3.30
K8S_MIN_VERSION=${K8S_MIN_VERSION:-1.33.0}
OVERLAYS=(dev prod)
TOOLS_DIR=${HSQ_TOOLS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/hsq-config-tools}
venv="$TOOLS_DIR/k8s-venv-kv$KUBERNETES_VALIDATE_VERSION-checkov$CHECKOV_VERSION"
k8s="$root/deploy/k8s"
work=$(mktemp -d "${TMPDIR:-/tmp}/hsq-check-k8s.XXXXXX")
trap 'rm -rf "$work"' EXIT
started=$SECONDS

# --- tools ---------------------------------------------------------------------------------

section "tools"
if ! command -v kubectl >/dev/null 2>&1; then
    # Debian's kubernetes-client carries kubectl (with kustomize built in).
    sudo_if_needed() { if ((EUID == 0)); then "$@"; else sudo "$@"; fi; }
    sudo_if_needed apt-get update -qq
    sudo_if_needed env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq kubernetes-client
fi
need kubectl python3
has_kustomize() { kubectl kustomize --help >/dev/null 2>&1; }
check "kubectl with kustomize ($(kubectl version --client 2>/dev/null | sed -n 's/^Kustomize Version: //p'))" \
    has_kustomize

# installed: "kubernetes-validate VERSION checkov VERSION" as the venv's package metadata says
# (read there, not from `checkov --version`, which asks PyPI for a newer release).
installed() {
    "$venv/bin/python" -c 'from importlib.metadata import version as v
print("kubernetes-validate", v("kubernetes-validate"), "checkov", v("checkov"))' 2>/dev/null
}
wanted="kubernetes-validate $KUBERNETES_VALIDATE_VERSION checkov $CHECKOV_VERSION"
if [[ $(installed) != "$wanted" ]]; then
    info "pip: installing kubernetes-validate==$KUBERNETES_VALIDATE_VERSION checkov==$CHECKOV_VERSION into $venv"
    rm -rf "$venv"
    mkdir -p "$TOOLS_DIR"
    python3 -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
        "kubernetes-validate==$KUBERNETES_VALIDATE_VERSION" "checkov==$CHECKOV_VERSION"
fi
check "$wanted (PyPI, in ${venv#"$HOME/"})" test "$(installed)" = "$wanted"

# The newest Kubernetes version whose strict schemas the installed kubernetes-validate bundles.
schemas=$("$venv/bin/python" -c 'import kubernetes_validate, os; print(os.path.join(os.path.dirname(kubernetes_validate.__file__), "kubernetes-json-schema"))')
newest=$(find "$schemas" -maxdepth 1 -name 'v*-local-strict' -printf '%f\n' |
    sed -e 's/^v//' -e 's/-local-strict$//' | sort -V | tail -n 1)
versions=("$K8S_MIN_VERSION")
[[ -n $newest && $newest != "$K8S_MIN_VERSION" ]] && versions+=("$newest")
info "schemas bundled: $(find "$schemas" -maxdepth 1 -name 'v*-local-strict' -printf '%f\n' |
    sed -e 's/^v//' -e 's/-local-strict$//' | sort -V | tr '\n' ' ')"
check "kubernetes-validate bundles the $K8S_MIN_VERSION strict schemas" test -d "$schemas/v$K8S_MIN_VERSION-local-strict"

# --- render --------------------------------------------------------------------------------

section "kustomize"
mkdir -p "$work/rendered"
rendered=()
for overlay in "${OVERLAYS[@]}"; do
    out="$work/rendered/$overlay.yaml"
    if kubectl kustomize "$k8s/overlays/$overlay" >"$out" 2>"$work/kustomize-$overlay.err"; then
        pass "kubectl kustomize deploy/k8s/overlays/$overlay ($(grep -c '^kind:' "$out") objects)"
        rendered+=("$overlay=$out")
    else
        fail "kubectl kustomize deploy/k8s/overlays/$overlay"
        sed 's/^/      /' "$work/kustomize-$overlay.err"
    fi
done
check "kubectl kustomize deploy/k8s/base" kubectl kustomize "$k8s/base" -o "$work/base.yaml"
# The Secret templates are not part of any kustomization: their values are never committed.
for kustomization in "$k8s"/base/kustomization.yaml "$k8s"/overlays/*/kustomization.yaml; do
    check "${kustomization#"$root/"} does not use examples/ (the Secret templates)" \
        absent_regex '^[^#]*examples/' "$kustomization"
done
((${#rendered[@]} == ${#OVERLAYS[@]})) || abort "an overlay did not render; nothing else is checked"

# --- schemas -------------------------------------------------------------------------------

section "kubernetes-validate --strict (${versions[*]})"
for version in "${versions[@]}"; do
    for name in "${OVERLAYS[@]}" examples/secret examples/restore-job; do
        case $name in
            examples/*) file="$k8s/$name.example.yaml" ;;
            *) file="$work/rendered/$name.yaml" ;;
        esac
        log="$work/validate-${name//\//-}-$version.log"
        if "$venv/bin/kubernetes-validate" --strict --kubernetes-version "$version" "$file" >"$log" 2>&1; then
            pass "$name: $(grep -c ' passed for resource ' "$log") objects valid against Kubernetes $version"
        else
            fail "$name: objects invalid against Kubernetes $version"
            grep -v ' passed for resource ' "$log" | sed 's/^/      /'
        fi
    done
done

# --- checkov -------------------------------------------------------------------------------

section "checkov (rendered manifests)"
# --skip-download: no call to the vendor's platform (nothing leaves the machine). No
# --skip-check here: skips live in the manifests.
checkov_status=0
"$venv/bin/checkov" --directory "$work/rendered" --framework kubernetes --skip-download \
    --output json >"$work/checkov.json" 2>"$work/checkov.err" || checkov_status=$?
if ! "$venv/bin/python" - "$work/checkov.json" "$checkov_status" <<'PY'; then
import json
import sys

report = json.load(open(sys.argv[1]))
reports = report if isinstance(report, list) else [report]
summary = {"passed": 0, "failed": 0, "skipped": 0}
failed, skipped = [], []
for r in reports:
    for key in summary:
        summary[key] += r.get("summary", {}).get(key, 0)
    results = r.get("results", {})
    failed += results.get("failed_checks", [])
    skipped += results.get("skipped_checks", [])
print(f"      checkov: {summary['passed']} passed, {summary['failed']} failed, {summary['skipped']} skipped")
for c in failed:
    print(f"      failed: {c['check_id']} {c['resource']} ({c['file_path']}): {c['check_name']}")
for c in skipped:
    reason = (c.get("check_result") or {}).get("suppress_comment", "")
    print(f"      skipped in the manifest: {c['check_id']} {c['resource']} ({c['file_path']}): {reason}")
sys.exit(0 if summary["failed"] == 0 and summary["passed"] > 0 and sys.argv[2] == "0" else 1)
PY
    fail "checkov found problems in the rendered manifests (exit status $checkov_status)"
    sed 's/^/      /' "$work/checkov.err" | tail -n 20
else
    pass "checkov passes on the rendered manifests of ${OVERLAYS[*]}"
fi

# --- promises ------------------------------------------------------------------------------

section "what docs/kubernetes.md promises (scripts/lib/check_k8s.py)"
promises_status=0
"$venv/bin/python" "$here/lib/check_k8s.py" "${rendered[@]}" >"$work/promises.log" || promises_status=$?
cat "$work/promises.log"
line=$(tail -n 1 "$work/promises.log")
if [[ $line =~ ^([0-9]+)\ passed,\ ([0-9]+)\ failed$ ]]; then
    # The checker's PASS and FAIL lines count in this script's summary.
    HSQ_PASSED=$((HSQ_PASSED + BASH_REMATCH[1]))
    if ((BASH_REMATCH[2] > 0)); then
        HSQ_FAILED=$((HSQ_FAILED + BASH_REMATCH[2]))
        HSQ_FAILURES+=("check_k8s.py: ${BASH_REMATCH[2]} failed (see above)")
    elif ((promises_status != 0)); then
        fail "check_k8s.py exited with status $promises_status"
    fi
else
    fail "check_k8s.py ended without a summary (exit status $promises_status)"
fi

section "Kubernetes manifests ($((SECONDS - started)) s)"
summary
