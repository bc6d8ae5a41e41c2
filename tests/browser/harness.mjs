// The system under test: the real hsq-config binary on a fresh PostgreSQL database and a
// private Redis key prefix, pointed at the fakes; and headless Chromium (Debian's package)
// driven through playwright-core.
import { spawn, execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import net from "node:net";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const here = path.dirname(fileURLToPath(import.meta.url));
export const ROOT = path.resolve(here, "../..");
const BIN = process.env.HSQ_CONFIG_BIN || path.join(ROOT, "target/debug/hsq-config");
const PG = process.env.PG_BASE_URL || "postgres://postgres@127.0.0.1:5432";
const REDIS = process.env.REDIS_URL || "redis://127.0.0.1:6379";
export const CHROMIUM = process.env.CHROMIUM_PATH || "/usr/bin/chromium";

export const CHROMIUM_FLAGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--no-first-run",
];

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

function psql(sql) {
  execFileSync("psql", ["-q", `${PG}/postgres`, "-c", sql], { stdio: "ignore" });
}

async function waitFor(url, child, tries = 150) {
  for (let i = 0; i < tries; i += 1) {
    if (child.exitCode !== null) throw new Error(`hsq-config exited with ${child.exitCode}`);
    try {
      const r = await fetch(url);
      if (r.ok) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${url} did not answer`);
}

export async function startApp(fakes) {
  const port = await freePort();
  const suffix = randomBytes(6).toString("hex");
  const database = `hsq_browser_${suffix}`;
  psql(`CREATE DATABASE "${database}"`);
  const origin = `http://127.0.0.1:${port}`;
  const env = {
    PATH: process.env.PATH,
    DATABASE_URL: `${PG}/${database}`,
    REDIS_URL: REDIS,
    REDIS_KEY_PREFIX: `hsqbrowser:${suffix}:`,
    ENCRYPTION_KEY: randomBytes(32).toString("base64"),
    ADMIN_API_TOKEN: `admin-${randomBytes(24).toString("hex")}`,
    BIND_ADDRESS: "127.0.0.1",
    PORT: String(port),
    LOG_FORMAT: "json",
    LOG_LEVEL: process.env.HSQ_LOG_LEVEL || "warn",
    SETTINGS_PUBLIC_URL: origin,
    HEALTH_MONITOR_ENABLED: "false",
    OAUTH_REFRESHER_ENABLED: "false",
    CONFIGURATION_API_RATE_LIMIT: "1000",
    // The webhook receiver is one of the fakes, on loopback.
    WEBHOOK_ALLOW_PRIVATE_TARGETS: "true",
    STRIPE_API_BASE_URL: `${fakes.base}/stripe`,
    QUICKBOOKS_OAUTH_AUTHORIZE_URL: `${fakes.base}/intuit/authorize`,
    QUICKBOOKS_OAUTH_TOKEN_URL: `${fakes.base}/intuit/token`,
    QUICKBOOKS_OAUTH_REVOKE_URL: `${fakes.base}/intuit/revoke`,
    QUICKBOOKS_OAUTH_REDIRECT_URI: `${origin}/api/config/quickbooks/callback`,
  };
  const log = [];
  const child = spawn(BIN, ["serve"], { env, stdio: ["ignore", "pipe", "pipe"] });
  child.stdout.on("data", (d) => log.push(d.toString()));
  child.stderr.on("data", (d) => log.push(d.toString()));
  await waitFor(`${origin}/health`, child);
  return {
    origin,
    adminToken: env.ADMIN_API_TOKEN,
    log,
    /** A REST call as the bootstrap admin (or another token). */
    async api(method, route, bodyValue, token = env.ADMIN_API_TOKEN, headers = {}) {
      const r = await fetch(`${origin}${route}`, {
        method,
        headers: {
          authorization: `Bearer ${token}`,
          ...(bodyValue === undefined ? {} : { "content-type": "application/json" }),
          ...headers,
        },
        body: bodyValue === undefined ? undefined : JSON.stringify(bodyValue),
      });
      const text = await r.text();
      let value = null;
      try {
        value = JSON.parse(text);
      } catch {
        value = text;
      }
      return { status: r.status, headers: r.headers, body: value };
    },
    async stop() {
      child.kill("SIGTERM");
      await new Promise((r) => (child.exitCode !== null ? r() : child.once("exit", r)));
      try {
        psql(`DROP DATABASE IF EXISTS "${database}" WITH (FORCE)`);
      } catch {
        // best effort
      }
      try {
        execFileSync("sh", ["-c", `redis-cli -u ${REDIS} --scan --pattern 'hsqbrowser:${suffix}:*' | xargs -r redis-cli -u ${REDIS} del`], { stdio: "ignore" });
      } catch {
        // best effort
      }
    },
  };
}

export async function launchBrowser() {
  return chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_FLAGS, headless: true });
}
