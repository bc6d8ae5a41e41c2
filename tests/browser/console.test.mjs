// The settings console in a real browser: every step a person takes, against the real binary.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { startFakes, REALM_ID } from "./fakes.mjs";
import { startApp, launchBrowser, ROOT } from "./harness.mjs";

const LIVE_KEY = "sk_live_51BrowserTestLiveKey0000000001";
const TEST_KEY = "sk_test_51BrowserTestZq8hG2vX0pLmN4242";
const QB_CLIENT_SECRET = "qb-client-secret-BrowserTest-7731";
const SHOTS = process.env.SCREENSHOT_DIR || path.join(ROOT, "tests/browser/output");

let fakes;
let app;
let browser;
let admin; // { context, page }
const seen = []; // every console response: { url, status, headers, body, allowed }
const pending = [];

function record(context, allowSecretsOn) {
  context.on("response", (response) => {
    const url = response.url();
    if (!url.startsWith(app.origin) || (!url.includes("/settings") && !url.includes("/callback"))) return;
    pending.push(
      (async () => {
        let body = "";
        try {
          body = await response.text();
        } catch {
          // redirects have no body to read
        }
        const pathname = new URL(url).pathname;
        seen.push({
          url,
          status: response.status(),
          headers: await response.allHeaders(),
          body,
          allowed: allowSecretsOn(pathname, response.request().method()),
        });
      })(),
    );
  });
}

// The reveal response shows secrets by design, and the token-creation response shows the new
// token once; nothing else may.
const allowSecrets = (pathname, method) =>
  method === "POST" && (/\/reveal$/.test(pathname) || pathname === "/settings/tokens");

async function signIn(page, token) {
  await page.goto(`${app.origin}/settings`);
  await page.waitForURL(/\/settings\/signin/);
  await page.getByLabel("API token").fill(token);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.waitForURL(`${app.origin}/settings/`);
}

async function newSession(token) {
  const context = await browser.newContext();
  record(context, allowSecrets);
  const page = await context.newPage();
  await signIn(page, token);
  return { context, page };
}

before(async () => {
  fs.mkdirSync(SHOTS, { recursive: true });
  fakes = await startFakes();
  fakes.state.stripeKey = TEST_KEY;
  app = await startApp(fakes);
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await app?.stop();
  await fakes?.close();
});

test("an admin signs in with the bootstrap token; the session cookie has the right flags", async () => {
  admin = await newSession(app.adminToken);
  await assert.doesNotReject(admin.page.getByRole("heading", { name: "Integrations" }).waitFor());
  const cookies = await admin.context.cookies();
  const session = cookies.find((c) => c.name === "hsq_console");
  assert.ok(session, `a session cookie, got ${cookies.map((c) => c.name)}`);
  assert.equal(session.httpOnly, true);
  assert.equal(session.sameSite, "Strict");
  assert.equal(session.secure, false, "plain http in this test: Secure and __Host- come with https");
  assert.equal(session.path, "/settings");
  assert.ok(!session.value.includes(app.adminToken));
});

test("a live key in sandbox is refused beside the field; the fixed key saves", async () => {
  const { page } = admin;
  await page.getByRole("link", { name: "Stripe" }).first().click();
  await page.waitForURL(/\/settings\/stripe/);
  await page.getByLabel(/Publishable key/).fill("pk_test_51BrowserTestPublishable");
  await page.getByLabel(/^Secret key/).fill(LIVE_KEY);
  await page.getByRole("button", { name: "Save" }).click();
  const error = page.locator("#e-secret_key");
  await error.waitFor();
  assert.match(await error.innerText(), /live-mode key/);
  assert.equal(await page.getByLabel(/^Secret key/).getAttribute("aria-invalid"), "true");
  assert.equal((await app.api("GET", "/api/config/integrations/stripe/sandbox")).status, 404, "nothing saved");

  await page.getByLabel(/^Secret key/).fill(TEST_KEY);
  await page.getByRole("button", { name: "Save" }).click();
  await page.getByText("Saved.").waitFor();
  assert.match(await page.locator("#m-secret_key").innerText(), /sk_te\*+/);
  const stored = await app.api("GET", "/api/config/integrations/stripe/sandbox");
  assert.equal(stored.status, 200);
  assert.equal(stored.body.settings.publishable_key, "pk_test_51BrowserTestPublishable");
});

test("validate against the fake Stripe shows ok", async () => {
  const { page } = admin;
  await page.getByRole("button", { name: "Validate" }).click();
  await page.getByText("Validation finished").waitFor();
  assert.equal(await page.locator("#validation-status").innerText(), "ok");
  assert.equal(fakes.state.calls.account, 1);
  await page.screenshot({ path: path.join(SHOTS, "provider.png"), fullPage: true });
});

test("QuickBooks connects through a real browser redirect round trip", async () => {
  const { page } = admin;
  await page.goto(`${app.origin}/settings/quickbooks?environment=sandbox`);
  await page.getByLabel(/Client ID/).fill("ABbrowserTestClientId");
  await page.getByLabel(/Client secret/).fill(QB_CLIENT_SECRET);
  await page.getByRole("button", { name: "Save" }).click();
  await page.getByText("Saved.").waitFor();
  await page.getByRole("button", { name: "Connect with QuickBooks Online" }).click();
  await page.waitForURL(/\/settings\/quickbooks\?environment=sandbox.*oauth=success/);
  await page.getByText("QuickBooks Online is connected.").waitFor();
  assert.equal(await page.locator("#connection-status").innerText(), "connected");
  assert.equal(await page.locator("#connection-account").innerText(), REALM_ID);
  assert.equal(fakes.state.calls.authorize, 1);
  assert.equal(fakes.state.calls.token, 1);
  await page.goto(`${app.origin}/settings/`);
  const card = page.locator("article", { hasText: "QuickBooks Online" }).filter({ hasText: "sandbox" });
  assert.match(await card.innerText(), new RegExp(`realm_id\\s+${REALM_ID}`));
  await page.screenshot({ path: path.join(SHOTS, "overview.png"), fullPage: true });
});

test("reveal asks first, shows the value, then hides it again", async () => {
  const { page } = admin;
  await page.clock.install();
  await page.goto(`${app.origin}/settings/stripe?environment=sandbox`);
  await page.getByRole("link", { name: "Reveal secrets…" }).click();
  await page.getByRole("button", { name: "Yes, reveal the secrets" }).click();
  const value = page.locator(".secret-value").first();
  await value.waitFor();
  assert.equal(await value.innerText(), TEST_KEY);
  await page.clock.runFor(31_000);
  await page.getByText("The secrets are hidden again.").waitFor();
  assert.equal(await page.locator("#revealed").isHidden(), true);
  assert.ok(!(await page.content()).includes(TEST_KEY), "the value left the page");
});

test("a concurrent change is reported, not overwritten", async () => {
  const { page } = admin;
  await page.goto(`${app.origin}/settings/stripe?environment=sandbox`);
  const before = await app.api("GET", "/api/config/integrations/stripe/sandbox");
  const changed = await app.api(
    "PATCH",
    "/api/config/integrations/stripe/sandbox",
    { settings: { api_version: "2024-06-20" } },
    app.adminToken,
    { "if-match": `"${before.body.version}"` },
  );
  assert.equal(changed.status, 200);
  await page.getByLabel(/Publishable key/).fill("pk_test_51OverwriteAttempt");
  await page.getByRole("button", { name: "Save" }).click();
  await page.getByText(/changed since you opened it — review and save again/).waitFor();
  const after = await app.api("GET", "/api/config/integrations/stripe/sandbox");
  assert.equal(after.body.settings.publishable_key, "pk_test_51BrowserTestPublishable");
  assert.equal(after.body.settings.api_version, "2024-06-20");
  assert.equal(after.body.version, changed.body.version);
});

test("the audit page finds the console's rows and verifies the chain", async () => {
  const { page } = admin;
  await page.getByRole("link", { name: "Audit log" }).click();
  await page.getByLabel("Provider").selectOption("stripe");
  await page.getByRole("button", { name: "Filter" }).click();
  await page.waitForURL(/provider=stripe/);
  const table = page.locator("table.audit");
  for (const action of ["config_created", "config_validated", "secret_revealed", "config_patched"]) {
    await table.getByText(action, { exact: true }).first().waitFor();
  }
  assert.match(await page.locator("#chain-status").innerText(), /verifies/);
  const rows = await app.api("GET", "/api/config/audit?action=secret_revealed");
  assert.ok(rows.body.items[0].user_agent.startsWith("hsq-console"), "the row says it came from the console");
  const signins = await app.api("GET", "/api/config/audit?action=console_signed_in");
  assert.ok(signins.body.items.length >= 1);
  await page.screenshot({ path: path.join(SHOTS, "audit.png"), fullPage: true });
});

test("a webhook endpoint added in the console receives a signed test event", async () => {
  const { page } = admin;
  await page.getByRole("link", { name: "Webhooks" }).click();
  await page.getByLabel("URL").fill(`${fakes.base}/hooks/console`);
  await page.getByLabel("Events").fill("config.updated, oauth.*");
  await page.getByRole("button", { name: "Add endpoint" }).click();
  await page.getByText("shown only now").waitFor();
  await page.getByText("No deliveries to this endpoint yet").waitFor();
  await page.getByRole("button", { name: /Send a test event/ }).click();
  await page.getByText("Test event delivered: HTTP 204").waitFor();
  await page.locator("section[aria-labelledby=deliveries]").getByText("webhook.test").waitFor();
  assert.equal(fakes.state.hooks.length, 1, "one delivery reached the receiver");
  const [hook] = fakes.state.hooks;
  assert.match(hook.headers["webhook-signature"], /^v1,/);
  assert.equal(JSON.parse(hook.body).type, "webhook.test");
  await page.screenshot({ path: path.join(SHOTS, "webhooks.png"), fullPage: true });
});

test("a viewer sees no controls, and its posts are refused", async () => {
  const created = await app.api("POST", "/api/config/api-tokens", { name: "browser-viewer", role: "viewer" });
  assert.equal(created.status, 201);
  const viewer = await newSession(created.body.token);
  const { page, context } = viewer;
  await page.goto(`${app.origin}/settings/stripe?environment=sandbox`);
  await page.getByText("You are signed in as a viewer").waitFor();
  for (const name of ["Save", "Validate"]) {
    assert.equal(await page.getByRole("button", { name }).count(), 0, `${name} is absent`);
  }
  assert.equal(await page.getByRole("link", { name: /Reveal/ }).count(), 0);
  assert.equal(await page.locator("input[name^='secrets.']").count(), 0);
  await page.goto(`${app.origin}/settings/tokens`);
  assert.equal(await page.getByRole("button", { name: "Create token" }).count(), 0);
  const csrf = await page.locator("input[name=_csrf]").first().getAttribute("value");
  const headers = { origin: app.origin };
  const version = (await app.api("GET", "/api/config/integrations/stripe/sandbox")).body.version;
  const posts = [
    ["/settings/stripe/sandbox", { _csrf: csrf, version: String(version), "settings.publishable_key": "pk_test_viewer" }],
    ["/settings/stripe/sandbox/reveal", { _csrf: csrf }],
    ["/settings/tokens", { _csrf: csrf, name: "viewer-made", role: "admin" }],
  ];
  for (const [route, form] of posts) {
    const r = await context.request.post(`${app.origin}${route}`, { form, headers, maxRedirects: 0 });
    assert.equal(r.status(), 403, route);
    assert.ok(!(await r.text()).includes(TEST_KEY));
  }
  const after = await app.api("GET", "/api/config/integrations/stripe/sandbox");
  assert.equal(after.body.version, version, "nothing changed");
  const tokens = await app.api("GET", "/api/config/api-tokens");
  assert.ok(!tokens.body.some((t) => t.name === "viewer-made"));
  await context.close();
});

test("a form from another origin, or without the CSRF token, is refused and changes nothing", async () => {
  const { page, context } = admin;
  await page.goto(`${app.origin}/settings/stripe?environment=sandbox`);
  const csrf = await page.locator("input[name=_csrf]").first().getAttribute("value");
  const version = (await app.api("GET", "/api/config/integrations/stripe/sandbox")).body.version;
  // Another origin, even one holding the right token: same site (127.0.0.1), so the cookie goes
  // along; the Origin check refuses it.
  fakes.state.evilForm = {
    action: `${app.origin}/settings/stripe/sandbox`,
    fields: { _csrf: csrf, version: String(version), "settings.publishable_key": "pk_test_evil" },
  };
  const evil = await context.newPage();
  await evil.goto(`${fakes.base}/evil`);
  const [response] = await Promise.all([
    evil.waitForResponse((r) => r.url() === `${app.origin}/settings/stripe/sandbox`),
    evil.locator("#f button").click(),
  ]);
  assert.equal(response.status(), 403);
  await evil.getByText("not sent from this console").waitFor();
  await evil.close();
  // Same origin, no token.
  const r = await context.request.post(`${app.origin}/settings/stripe/sandbox`, {
    form: { version: String(version), "settings.publishable_key": "pk_test_nocsrf" },
    headers: { origin: app.origin },
    maxRedirects: 0,
  });
  assert.equal(r.status(), 403);
  const after = await app.api("GET", "/api/config/integrations/stripe/sandbox");
  assert.equal(after.body.version, version);
  assert.equal(after.body.settings.publishable_key, "pk_test_51BrowserTestPublishable");
  const refusals = await app.api("GET", "/api/config/audit?success=false");
  assert.ok(refusals.body.items.some((i) => i.action === "console_origin_refused"));
  assert.ok(refusals.body.items.some((i) => i.action === "console_csrf_refused"));
});

test("readable on a phone and usable from the keyboard", async () => {
  const { page } = admin;
  await page.setViewportSize({ width: 390, height: 844 });
  for (const route of ["/settings/", "/settings/stripe?environment=sandbox", "/settings/audit"]) {
    await page.goto(`${app.origin}${route}`);
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert.ok(overflow <= 0, `${route} scrolls sideways by ${overflow}px on a phone`);
  }
  await page.screenshot({ path: path.join(SHOTS, "phone-audit.png"), fullPage: false });
  await page.setViewportSize({ width: 1280, height: 800 });
  await page.goto(`${app.origin}/settings/stripe?environment=sandbox`);
  await page.keyboard.press("Tab");
  assert.equal(await page.evaluate(() => document.activeElement.textContent), "Skip to content");
  const unlabelled = await page.evaluate(() =>
    [...document.querySelectorAll("input:not([type=hidden]), select")]
      .filter((el) => !(el.labels && el.labels.length) && !el.getAttribute("aria-label"))
      .map((el) => el.name),
  );
  assert.deepEqual(unlabelled, [], "every control has a label");
});

test("signing out ends the session: the next page is the sign-in", async () => {
  const { page } = admin;
  await page.goto(`${app.origin}/settings/`);
  await page.getByRole("button", { name: "Sign out" }).click();
  await page.waitForURL(/\/settings\/signin\?notice=signed_out/);
  await page.goto(`${app.origin}/settings/audit`);
  await page.waitForURL(/\/settings\/signin/);
  await page.getByLabel("API token").waitFor();
});

test("no page holds a secret or token; every response is no-store with a strict CSP", async () => {
  await Promise.all(pending);
  const secrets = [TEST_KEY, LIVE_KEY, QB_CLIENT_SECRET, app.adminToken, ...fakes.state.issued];
  assert.ok(seen.length > 20, `responses recorded: ${seen.length}`);
  for (const r of seen) {
    if (!r.allowed) {
      for (const s of secrets) assert.ok(!r.body.includes(s), `${r.url} holds a secret`);
    }
    if (r.url.includes("/settings")) {
      assert.equal(r.headers["cache-control"], "no-store", `${r.url} cache-control`);
      const csp = r.headers["content-security-policy"] || "";
      assert.ok(csp.includes("default-src 'none'"), `${r.url} has a CSP`);
      assert.ok(!csp.includes("unsafe-inline") && !csp.includes("unsafe-eval"), `${r.url} CSP is strict`);
    }
  }
  assert.ok(seen.some((r) => r.allowed && r.body.includes(TEST_KEY)), "the reveal response was seen");
});
