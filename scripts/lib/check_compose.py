#!/usr/bin/env python3
"""Checks what the compose files promise, on the model Docker Compose itself resolved.

Usage: check_compose.py DEV.json PROD.json MONITORING.json TEMPLATES_DIR PROMETHEUS_YML COMPOSE_YML

Each JSON file is the output of `docker compose ... config --format json` (development; with
docker-compose.prod.yml; with --profile monitoring), so merging, !reset and !override are
Compose's own. Prints PASS/FAIL per promise and a closing "N passed, M failed" line; exits 1 on
any failure.
"""

import json
import pathlib
import re
import sys

import yaml

PASSED = 0
FAILED = 0

SERVICES = {"cw_hsq_app", "cw_hsq_postgres", "cw_hsq_redis", "cw_hsq_nginx"}
SECRETS = {"DATABASE_URL", "REDIS_URL", "ENCRYPTION_KEY", "ADMIN_API_TOKEN", "METRICS_TOKEN"}
LIMITS = {  # service: (bytes, cpus)
    "cw_hsq_app": (1 << 30, 2.0),
    "cw_hsq_postgres": (2 << 30, 2.0),
    "cw_hsq_redis": (512 << 20, 1.0),
    "cw_hsq_nginx": (128 << 20, 0.5),
}


def check(ok, description, detail=""):
    global PASSED, FAILED
    if ok:
        PASSED += 1
        print(f"PASS  {description}")
    else:
        FAILED += 1
        print(f"FAIL  {description}" + (f": {detail}" if detail else ""))


def published(service):
    """(published, target) pairs of a service's ports, as strings."""
    return {(str(p.get("published")), str(p.get("target"))) for p in service.get("ports", [])}


def duration_seconds(value):
    """Seconds in a compose duration such as 30s, 1m30s or 90 (already seconds)."""
    if isinstance(value, (int, float)):
        return float(value)
    units = {"h": 3600, "m": 60, "s": 1, "ms": 0.001}
    parts = re.findall(r"(\d+(?:\.\d+)?)(h|ms|m|s)", str(value))
    if not parts:
        return float(value)
    return sum(float(number) * units[unit] for number, unit in parts)


def env(service):
    return {k: ("" if v is None else str(v)) for k, v in (service.get("environment") or {}).items()}


def check_dev(model, template_vars, compose_file):
    services = model["services"]
    check(set(services) == SERVICES, "dev: services are " + ", ".join(sorted(SERVICES)),
          ", ".join(sorted(services)))
    for name in sorted(SERVICES & set(services)):
        test = (services[name].get("healthcheck") or {}).get("test")
        check(bool(test), f"dev: {name} has a health check")
        logging = services[name].get("logging") or {}
        check(logging.get("options", {}).get("max-size") is not None,
              f"dev: {name} rotates its logs", str(logging))

    app, pg, redis, nginx = (services[n] for n in
                             ("cw_hsq_app", "cw_hsq_postgres", "cw_hsq_redis", "cw_hsq_nginx"))
    app_ports = app.get("ports", [])
    check(len(app_ports) == 1 and app_ports[0].get("host_ip") == "127.0.0.1"
          and str(app_ports[0].get("target")) == "13000" and not app_ports[0].get("published"),
          "dev: app published on loopback on a port Docker picks (no fixed host port: it scales)",
          app_ports)
    check("container_name" not in app, "dev: app has no container_name (it scales)",
          app.get("container_name"))
    drain = int(env(app).get("SHUTDOWN_DRAIN_SECS") or 20)
    grace = duration_seconds(app.get("stop_grace_period", "10s"))
    check(grace > drain, "dev: app's stop_grace_period is longer than SHUTDOWN_DRAIN_SECS",
          f"stop_grace_period {grace} s, SHUTDOWN_DRAIN_SECS {drain} s")
    check(env(nginx).get("APP_UPSTREAM", "").split(":")[0] == "cw_hsq_app",
          "dev: nginx reaches the app by service name (every replica)", env(nginx).get("APP_UPSTREAM"))
    check(("15432", "5432") in published(pg), "dev: PostgreSQL published on 15432",
          published(pg))
    check(("16379", "6379") in published(redis), "dev: Redis published on 16379",
          published(redis))
    check({("18080", "80"), ("18443", "443")} <= published(nginx),
          "dev: nginx published on 18080 -> 80 and 18443 -> 443", published(nginx))

    deps = app.get("depends_on", {})
    check(all(deps.get(d, {}).get("condition") == "service_healthy"
              for d in ("cw_hsq_postgres", "cw_hsq_redis")),
          "dev: app waits for healthy PostgreSQL and Redis", deps)
    check(nginx.get("depends_on", {}).get("cw_hsq_app", {}).get("condition") == "service_healthy",
          "dev: nginx waits for a healthy app")

    mounts = {(v.get("source"), v.get("target")) for v in app.get("volumes", [])}
    check(("cw_hsq_config_backups", "/app/backups") in mounts,
          "dev: volume cw_hsq_config_backups on /app/backups", mounts)
    check(any(v.get("target") == "/var/lib/postgresql/data" and v.get("type") == "volume"
              for v in pg.get("volumes", [])), "dev: PostgreSQL data on a named volume")
    check(any("pg_isready" in part for part in pg["healthcheck"]["test"]),
          "dev: PostgreSQL health check uses pg_isready")

    command = " ".join(redis.get("command") or [])
    for flag in ("--maxmemory 256mb", "--appendonly yes", "--save 300 10 60 1000"):
        check(flag in command, f"dev: Redis runs with {flag}", command)
    policy = re.search(r"--maxmemory-policy (\S+)", command)
    check(policy is not None and policy.group(1) in ("noeviction", "volatile-lru"),
          "dev: Redis eviction policy keeps OAuth state and locks (not allkeys-*)", command)

    # Compose folds env_file into environment when it resolves the model: read the source.
    raw = yaml.safe_load(pathlib.Path(compose_file).read_text())
    env_files = raw["services"]["cw_hsq_app"].get("env_file", [])
    check(any((e.get("path") if isinstance(e, dict) else e) == ".env" for e in env_files),
          "dev: app settings come from .env", env_files)
    app_env = env(app)
    check(app_env.get("TRUSTED_PROXIES", "").endswith("/32")
          and app_env["TRUSTED_PROXIES"].split("/")[0]
          == nginx["networks"]["cw_hsq"].get("ipv4_address"),
          "dev: TRUSTED_PROXIES names nginx's fixed address", app_env.get("TRUSTED_PROXIES"))

    nginx_env = env(nginx)
    missing = sorted(v for v in template_vars if not nginx_env.get(v))
    check(not missing, "dev: nginx's environment sets every variable the templates use",
          ", ".join(missing))
    check(nginx_env.get("NGINX_HTTP_MODE") == "proxy", "dev: nginx serves HTTP too (proxy mode)")
    mounts = {v.get("target") for v in nginx.get("volumes", [])}
    check("/etc/nginx/templates" in mounts, "dev: nginx/templates mounted on /etc/nginx/templates")


def check_prod(model):
    services = model["services"]
    for name in sorted(SERVICES):
        service = services[name]
        ports = published(service)
        if name == "cw_hsq_nginx":
            check(ports == {("80", "80"), ("443", "443")}, "prod: nginx publishes exactly 80 and 443",
                  ports)
        else:
            check(not ports, f"prod: {name} publishes no port", ports)
            check(bool(service.get("expose")), f"prod: {name} exposes its port on the network")
        check(service.get("read_only") is True, f"prod: {name} has a read-only root filesystem")
        check(service.get("cap_drop") == ["ALL"], f"prod: {name} drops all capabilities",
              service.get("cap_drop"))
        check("no-new-privileges:true" in (service.get("security_opt") or []),
              f"prod: {name} sets no-new-privileges")
        check(service.get("restart") in ("unless-stopped", "always"),
              f"prod: {name} has a restart policy", service.get("restart"))
        limits = ((service.get("deploy") or {}).get("resources") or {}).get("limits") or {}
        want_memory, want_cpus = LIMITS[name]
        check(int(limits.get("memory", 0)) == want_memory and float(limits.get("cpus", 0)) == want_cpus,
              f"prod: {name} limited to {want_memory >> 20} MB / {want_cpus} CPU", limits)

    app_env = env(services["cw_hsq_app"])
    app_secrets = {s["source"] for s in services["cw_hsq_app"].get("secrets", [])}
    for name in sorted(SECRETS):
        check(app_env.get(name, "") == "" and app_env.get(f"{name}_FILE", "").startswith("/run/secrets/"),
              f"prod: app reads {name} from a secret file ({name}_FILE), not the environment",
              f"{name}={'<set>' if app_env.get(name) else '<empty>'}, "
              f"{name}_FILE={app_env.get(name + '_FILE')}")
    check(len(app_secrets) == len(SECRETS), "prod: app mounts its five secrets", app_secrets)

    pg_env = env(services["cw_hsq_postgres"])
    check("POSTGRES_PASSWORD" not in pg_env and pg_env.get("POSTGRES_PASSWORD_FILE"),
          "prod: PostgreSQL password from a secret file")
    check(env(services["cw_hsq_nginx"]).get("NGINX_HTTP_MODE") == "redirect",
          "prod: nginx redirects HTTP to HTTPS")
    for name, secret in (model.get("secrets") or {}).items():
        check(re.search(r"/secrets/[a-z_]+\.txt$", secret.get("file", "")) is not None,
              f"prod: secret {name} comes from secrets/*.txt", secret.get("file"))
    check("cw_hsq_prometheus" not in services, "prod: Prometheus only with --profile monitoring")


def check_monitoring(model, prometheus_yml):
    services = model["services"]
    prometheus = services.get("cw_hsq_prometheus")
    check(prometheus is not None, "monitoring: the profile adds cw_hsq_prometheus")
    if prometheus is None:
        return
    check(prometheus.get("profiles") == ["monitoring"], "monitoring: Prometheus is in that profile")
    check(not published(prometheus), "monitoring: Prometheus publishes no port")
    targets = {s.get("target") for s in prometheus.get("secrets", [])}
    config = yaml.safe_load(pathlib.Path(prometheus_yml).read_text())
    jobs = {job["job_name"]: job for job in config.get("scrape_configs", [])}
    job = jobs.get("hsq-config", {})
    credentials = (job.get("authorization") or {}).get("credentials_file", "")
    check(job.get("metrics_path") == "/metrics", "monitoring: Prometheus scrapes /metrics")
    check(credentials.startswith("/run/secrets/") and credentials.rsplit("/", 1)[1] in targets,
          "monitoring: Prometheus sends METRICS_TOKEN from a mounted secret", credentials)
    check(any("cw_hsq_app" in json.dumps(sd) for sd in job.get("dns_sd_configs", []))
          or any("cw_hsq_app" in json.dumps(sc) for sc in job.get("static_configs", [])),
          "monitoring: Prometheus targets cw_hsq_app")


def template_variables(directory):
    names = set()
    for path in pathlib.Path(directory).rglob("*.template"):
        names.update(re.findall(r"\$\{([A-Z][A-Z0-9_]*)\}", path.read_text()))
    return names


def main():
    dev, prod, monitoring, templates, prometheus_yml, compose_file = sys.argv[1:7]
    load = lambda path: json.loads(pathlib.Path(path).read_text())  # noqa: E731
    check_dev(load(dev), template_variables(templates), compose_file)
    check_prod(load(prod))
    check_monitoring(load(monitoring), prometheus_yml)
    print(f"{PASSED} passed, {FAILED} failed")
    return 1 if FAILED else 0


if __name__ == "__main__":
    sys.exit(main())
