#!/usr/bin/env python3
"""Checks what the Kubernetes manifests promise, on what kustomize rendered.

Usage: check_k8s.py OVERLAY=RENDERED.yaml... (e.g. dev=/tmp/dev.yaml prod=/tmp/prod.yaml)

Schemas (kubernetes-validate) and general hardening (checkov) are checked elsewhere; this holds
the promises docs/kubernetes.md makes about hsq-config itself: replicas, rollout, probes,
shutdown timing, secrets as files, migrations in a Job, limits on the Ingresses, the
NetworkPolicy's ports, backups. Prints PASS/FAIL per promise and a closing "N passed,
M failed" line; exits 1 on any failure.
"""

import re
import sys

import yaml

PASSED = 0
FAILED = 0

REPLICAS = {"dev": 1, "prod": 3}
SECRETS = ("DATABASE_URL", "REDIS_URL", "ENCRYPTION_KEY", "ADMIN_API_TOKEN", "METRICS_TOKEN")
SECRET_DIR = "/run/secrets/hsq"
PORT = 13000


def check(ok, description, detail=""):
    global PASSED, FAILED
    if ok:
        PASSED += 1
        print(f"PASS  {description}")
    else:
        FAILED += 1
        print(f"FAIL  {description}" + (f": {detail}" if detail else ""))


def load(path):
    objects = {}
    for doc in yaml.safe_load_all(open(path)):
        if doc:
            objects[(doc["kind"], doc["metadata"]["name"])] = doc
    return objects


def one(objects, kind, name_prefix=""):
    found = [o for (k, n), o in objects.items() if k == kind and n.startswith(name_prefix)]
    return found[0] if len(found) == 1 else None


def pod_spec(workload):
    spec = workload["spec"]
    if workload["kind"] == "CronJob":
        spec = spec["jobTemplate"]["spec"]
    return spec["template"]["spec"]


def container_env(container, settings):
    """The container's environment: the ConfigMap it loads, then its own env entries."""
    env = {}
    for source in container.get("envFrom", []):
        name = (source.get("configMapRef") or {}).get("name")
        if name == settings["metadata"]["name"]:
            env.update(settings.get("data", {}))
    for entry in container.get("env", []):
        env[entry["name"]] = entry.get("value", "<from " + str(entry.get("valueFrom")) + ">")
    return env


def check_hardened(overlay, what, spec):
    pod = spec.get("securityContext", {})
    check(spec.get("automountServiceAccountToken") is False
          and spec.get("serviceAccountName") not in (None, "default"),
          f"{overlay}: {what} runs under its own service account without a token")
    check(pod.get("runAsNonRoot") is True and int(pod.get("runAsUser", 0)) >= 10000
          and (pod.get("seccompProfile") or {}).get("type") == "RuntimeDefault",
          f"{overlay}: {what} runs as non-root (uid >= 10000) with seccomp RuntimeDefault", pod)
    for container in spec["containers"]:
        sc = container.get("securityContext", {})
        check(sc.get("readOnlyRootFilesystem") is True and sc.get("allowPrivilegeEscalation") is False
              and (sc.get("capabilities") or {}).get("drop") == ["ALL"],
              f"{overlay}: {what} container {container['name']}: read-only root, no privilege "
              "escalation, all capabilities dropped", sc)
        resources = container.get("resources", {})
        check(all(resources.get(k, {}).get(r) for k in ("requests", "limits") for r in ("cpu", "memory")),
              f"{overlay}: {what} container {container['name']} has CPU and memory requests and limits",
              resources)
        mounts = {m["mountPath"]: m for m in container.get("volumeMounts", [])}
        check("/tmp" in mounts, f"{overlay}: {what} has a writable /tmp (emptyDir)")


def check_secrets_as_files(overlay, what, spec, container, settings):
    env = container_env(container, settings)
    volumes = {v["name"]: v for v in spec.get("volumes", [])}
    mounts = {m["mountPath"]: m for m in container.get("volumeMounts", [])}
    mount = mounts.get(SECRET_DIR)
    secret = (volumes.get(mount["name"], {}) if mount else {}).get("secret", {})
    check(mount is not None and mount.get("readOnly") is True and secret.get("secretName") == "hsq-config-secrets",
          f"{overlay}: {what} mounts Secret hsq-config-secrets read-only on {SECRET_DIR}")
    plain = [name for name in SECRETS if env.get(name)]
    check(not plain, f"{overlay}: {what} has no secret in its environment", ", ".join(plain))
    wanted = ("DATABASE_URL", "ENCRYPTION_KEY") if what != "server" else SECRETS
    wrong = [n for n in wanted if env.get(f"{n}_FILE") != f"{SECRET_DIR}/{n.lower()}"]
    check(not wrong, f"{overlay}: {what} reads {', '.join(wanted)} through *_FILE from the mount",
          ", ".join(wrong))


def check_overlay(overlay, objects):
    settings = one(objects, "ConfigMap", "hsq-config-settings")
    check(settings is not None, f"{overlay}: one settings ConfigMap (hsq-config-settings-<hash>)")
    if settings is None:
        return
    data = settings.get("data", {})
    secret_keys = [k for k in data if k in SECRETS or k in ("ENCRYPTION_KEYS_PREVIOUS", "BACKUP_PASSPHRASE")]
    check(not secret_keys, f"{overlay}: the ConfigMap holds no secret", ", ".join(secret_keys))
    check(not any(kind == "Secret" for kind, _ in objects),
          f"{overlay}: no Secret is rendered (created out of band, examples/ are templates)")
    namespaces = [n for (k, n) in objects if k == "Namespace"]
    check(len(namespaces) == 1 and all(o["metadata"].get("namespace") == namespaces[0]
                                       for (k, _), o in objects.items() if k != "Namespace"),
          f"{overlay}: every object is in the overlay's namespace", namespaces)

    sa = objects.get(("ServiceAccount", "hsq-config"), {})
    check(sa.get("automountServiceAccountToken") is False,
          f"{overlay}: ServiceAccount hsq-config does not automount a token")

    deployment = objects.get(("Deployment", "hsq-config"))
    check(deployment is not None, f"{overlay}: Deployment hsq-config")
    if deployment is None:
        return
    spec = deployment["spec"]
    pod = pod_spec(deployment)
    container = pod["containers"][0]
    env = container_env(container, settings)
    check(spec.get("replicas") == REPLICAS[overlay], f"{overlay}: {REPLICAS[overlay]} replica(s)",
          spec.get("replicas"))
    rolling = spec.get("strategy", {}).get("rollingUpdate", {})
    check(spec.get("strategy", {}).get("type") == "RollingUpdate" and rolling.get("maxUnavailable") == 0,
          f"{overlay}: rolling update with maxUnavailable 0", rolling)
    check(container.get("command") == ["hsq-config"] and container.get("args") == ["serve"],
          f"{overlay}: the server runs `hsq-config serve`")
    check(env.get("RUN_MIGRATIONS") == "false", f"{overlay}: RUN_MIGRATIONS=false on the Deployment")

    def probe(name):
        get = (container.get(name) or {}).get("httpGet", {})
        port = get.get("port")
        named = {p.get("name"): p["containerPort"] for p in container.get("ports", [])}
        return get.get("path"), named.get(port, port)

    check(probe("startupProbe") == ("/health/ready", PORT), f"{overlay}: startupProbe on /health/ready:{PORT}")
    check(probe("readinessProbe") == ("/health/ready", PORT), f"{overlay}: readinessProbe on /health/ready:{PORT}")
    check(probe("livenessProbe") == ("/health", PORT), f"{overlay}: livenessProbe on /health:{PORT}")

    pause = ((container.get("lifecycle") or {}).get("preStop") or {}).get("sleep", {}).get("seconds", 0)
    drain = int(env.get("SHUTDOWN_DRAIN_SECS", 20))
    grace = int(pod.get("terminationGracePeriodSeconds", 30))
    check(pause > 0, f"{overlay}: preStop sleep action pauses before SIGTERM ({pause} s)")
    check("SHUTDOWN_DRAIN_SECS" in data, f"{overlay}: SHUTDOWN_DRAIN_SECS is in the ConfigMap ({drain} s)")
    check(grace > pause + drain,
          f"{overlay}: terminationGracePeriodSeconds ({grace}) > preStop ({pause}) + drain ({drain})")
    annotations = deployment["spec"]["template"]["metadata"].get("annotations", {})
    check(annotations.get("prometheus.io/scrape") == "true" and annotations.get("prometheus.io/port") == str(PORT)
          and annotations.get("prometheus.io/path") == "/metrics",
          f"{overlay}: pods carry the Prometheus scrape annotations (port {PORT}, /metrics)", annotations)
    keys = {c.get("topologyKey") for c in pod.get("topologySpreadConstraints", [])}
    check("kubernetes.io/hostname" in keys, f"{overlay}: replicas spread across nodes", keys)
    check_hardened(overlay, "server", pod)
    check_secrets_as_files(overlay, "server", pod, container, settings)

    service = objects.get(("Service", "hsq-config"), {})
    selector = service.get("spec", {}).get("selector", {})
    check(bool(selector) and pod_labels_match(deployment, selector),
          f"{overlay}: the Service selects the server pods", selector)

    hpa = objects.get(("HorizontalPodAutoscaler", "hsq-config"), {})
    metrics = hpa.get("spec", {}).get("metrics", [])
    check(hpa.get("apiVersion") == "autoscaling/v2"
          and any(m.get("resource", {}).get("name") == "cpu" for m in metrics)
          and hpa["spec"].get("minReplicas") == REPLICAS[overlay],
          f"{overlay}: autoscaling/v2 HPA on CPU, minimum = the Deployment's replicas",
          hpa.get("spec", {}).get("minReplicas"))
    pdb = objects.get(("PodDisruptionBudget", "hsq-config"), {})
    check(bool(pdb) and pod_labels_match(deployment, pdb["spec"]["selector"]["matchLabels"]),
          f"{overlay}: a PodDisruptionBudget covers the server pods")

    check_ingresses(overlay, objects)
    check_network_policy(overlay, objects, deployment)

    job = objects.get(("Job", "hsq-config-migrate"))
    check(job is not None, f"{overlay}: Job hsq-config-migrate")
    if job is not None:
        job_pod = pod_spec(job)
        job_container = job_pod["containers"][0]
        check(job_container.get("command") == ["hsq-config"] and job_container.get("args") == ["migrate"],
              f"{overlay}: the Job runs `hsq-config migrate`")
        check(job_container.get("image") == container.get("image"),
              f"{overlay}: the Job migrates with the Deployment's image", job_container.get("image"))
        check_hardened(overlay, "migrate", job_pod)
        check_secrets_as_files(overlay, "migrate", job_pod, job_container, settings)
        needed = {("Job", "hsq-config-migrate"), ("ServiceAccount", job_pod["serviceAccountName"]),
                  ("ConfigMap", settings["metadata"]["name"])}
        selected = {key for key, o in objects.items()
                    if o["metadata"].get("labels", {}).get("app.kubernetes.io/component") in ("settings", "migrate")}
        check(needed <= selected,
              f"{overlay}: `-l 'app.kubernetes.io/component in (settings,migrate)'` selects all the Job needs",
              sorted(needed - selected))

    cron = objects.get(("CronJob", "hsq-config-backup"))
    check(cron is not None, f"{overlay}: CronJob hsq-config-backup")
    if cron is not None:
        cron_pod = pod_spec(cron)
        cron_container = cron_pod["containers"][0]
        cron_env = container_env(cron_container, settings)
        script = " ".join(cron_container.get("args", []))
        check(cron["spec"].get("concurrencyPolicy") == "Forbid", f"{overlay}: one backup at a time")
        check("hsq-config backup" in script and cron_env.get("BACKUP_DIR") == "/backups",
              f"{overlay}: the CronJob runs `hsq-config backup` into BACKUP_DIR=/backups")
        claims = {v.get("persistentVolumeClaim", {}).get("claimName") for v in cron_pod.get("volumes", [])}
        mounts = {m["mountPath"]: m["name"] for m in cron_container.get("volumeMounts", [])}
        check("hsq-config-backups" in claims and "/backups" in mounts
              and ("PersistentVolumeClaim", "hsq-config-backups") in objects,
              f"{overlay}: backups land on PVC hsq-config-backups")
        check(data.get("CONFIG_BACKUP_ENABLED") == "false",
              f"{overlay}: the replicas' own backup scheduler is off (the CronJob backs up)")
        check_hardened(overlay, "backup", cron_pod)
        check_secrets_as_files(overlay, "backup", cron_pod, cron_container, settings)

    for (kind, name), o in objects.items():
        for key, value in (o["metadata"].get("annotations") or {}).items():
            if key.startswith("checkov.io/skip"):
                check(re.fullmatch(r"CKV2?_[A-Z0-9]+_\d+=[^=]{20,}", value) is not None,
                      f"{overlay}: {kind}/{name} skips {value.split('=')[0]} with a reason", value)


def pod_labels_match(workload, selector):
    labels = workload["spec"]["template"]["metadata"].get("labels", {})
    return all(labels.get(k) == v for k, v in selector.items())


def check_ingresses(overlay, objects):
    ingresses = {n: o for (k, n), o in objects.items() if k == "Ingress"}
    expected = {"hsq-config-api": ("5", "/api/config"), "hsq-config-oauth": ("2", "/api/config/stripe/callback")}
    for name, (rps, path) in expected.items():
        ingress = ingresses.get(name)
        check(ingress is not None, f"{overlay}: Ingress {name}")
        if ingress is None:
            continue
        annotations = ingress["metadata"].get("annotations", {})
        paths = [p["path"] for rule in ingress["spec"]["rules"] for p in rule["http"]["paths"]]
        check(annotations.get("nginx.ingress.kubernetes.io/limit-rps") == rps and path in paths,
              f"{overlay}: {name} limits {path} to {rps} r/s per client", annotations)
    for name, ingress in ingresses.items():
        spec = ingress["spec"]
        hosts = {rule.get("host") for rule in spec["rules"]}
        tls_hosts = {h for t in spec.get("tls", []) for h in t.get("hosts", [])}
        check(spec.get("ingressClassName") == "nginx" and hosts and hosts <= tls_hosts,
              f"{overlay}: {name} is for class nginx with TLS on its host {sorted(hosts)}")
        annotations = ingress["metadata"].get("annotations", {})
        retry = annotations.get("nginx.ingress.kubernetes.io/proxy-next-upstream", "")
        check("non_idempotent" not in retry, f"{overlay}: {name} never retries a sent POST/PATCH", retry)
        snippets = [k for k in annotations if "snippet" in k]
        check(not snippets, f"{overlay}: {name} uses no configuration snippet", snippets)
        paths = [p["path"] for rule in spec["rules"] for p in rule["http"]["paths"]]
        check(not any(p.startswith("/metrics") for p in paths), f"{overlay}: {name} does not route /metrics")
    api = ingresses.get("hsq-config-api", {})
    check(api.get("metadata", {}).get("annotations", {}).get("nginx.ingress.kubernetes.io/proxy-next-upstream") == "off",
          f"{overlay}: the API Ingress never sends a request to a second replica (writes reach one)")


def check_network_policy(overlay, objects, deployment):
    policies = [o for (k, _), o in objects.items() if k == "NetworkPolicy"]
    deny = [p for p in policies if p["spec"].get("podSelector") == {} and not p["spec"].get("ingress")
            and not p["spec"].get("egress") and set(p["spec"].get("policyTypes", [])) == {"Ingress", "Egress"}]
    check(bool(deny), f"{overlay}: a default-deny NetworkPolicy for the namespace")
    server = [p for p in policies
              if pod_labels_match(deployment, p["spec"].get("podSelector", {}).get("matchLabels", {}) or {"-": "-"})]
    check(len(server) == 1, f"{overlay}: one NetworkPolicy selects the server pods")
    if len(server) != 1:
        return
    spec = server[0]["spec"]
    egress_ports = {(p.get("port"), p.get("protocol", "TCP")) for rule in spec.get("egress", [])
                    for p in rule.get("ports", [])}
    want = {(53, "UDP"), (53, "TCP"), (5432, "TCP"), (6379, "TCP"), (443, "TCP")}
    check(egress_ports == want, f"{overlay}: server egress only to DNS 53, PostgreSQL 5432, Redis 6379, 443",
          sorted(egress_ports))
    sources = [peer for rule in spec.get("ingress", []) for peer in rule.get("from", [])]
    namespaces = {(peer.get("namespaceSelector") or {}).get("matchLabels", {}).get("kubernetes.io/metadata.name")
                  for peer in sources}
    ingress_ports = {p.get("port") for rule in spec.get("ingress", []) for p in rule.get("ports", [])}
    check(len(namespaces) == 2 and None not in namespaces and ingress_ports == {PORT},
          f"{overlay}: server ingress only from the ingress controller's and Prometheus's namespaces, "
          f"on {PORT}", sorted(map(str, namespaces)))


def main():
    for arg in sys.argv[1:]:
        overlay, path = arg.split("=", 1)
        check_overlay(overlay, load(path))
    print(f"{PASSED} passed, {FAILED} failed")
    return 1 if FAILED else 0


if __name__ == "__main__":
    sys.exit(main())
