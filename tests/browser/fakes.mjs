// Stand-ins for the outside world, as real HTTP servers on 127.0.0.1:
// - Stripe's `GET /v1/account` (validation): 200 for the accepted secret key, Stripe's 401
//   error body for anything else;
// - Intuit's authorization server: `GET /authorize` sends the browser straight back to the
//   redirect URI with a code, the state and a realmId (consent granted); `POST /token` answers
//   the code exchange like Intuit (Basic client auth, rolling refresh token); `POST /revoke`;
// - an "evil" page on another origin that posts a form to the console.
import http from "node:http";
import { randomBytes } from "node:crypto";

export const REALM_ID = "9130357036489236";

function body(req) {
  return new Promise((resolve) => {
    const chunks = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
  });
}

function json(res, status, value) {
  res.writeHead(status, { "content-type": "application/json" });
  res.end(JSON.stringify(value));
}

export async function startFakes() {
  const state = {
    stripeKey: null,
    codes: new Map(),
    issued: [], // every access and refresh token handed out: they must never reach a page
    calls: { account: 0, authorize: 0, token: 0 },
    evilForm: null,
    hooks: [], // webhook deliveries received: { headers, body }
  };
  const server = http.createServer(async (req, res) => {
    const url = new URL(req.url, "http://127.0.0.1");
    if (req.method === "POST" && url.pathname === "/hooks/console") {
      const chunks = [];
      for await (const chunk of req) chunks.push(chunk);
      state.hooks.push({ headers: req.headers, body: Buffer.concat(chunks).toString() });
      res.writeHead(204);
      return res.end();
    }
    if (req.method === "GET" && url.pathname === "/stripe/v1/account") {
      state.calls.account += 1;
      const auth = req.headers.authorization || "";
      if (state.stripeKey && auth === `Bearer ${state.stripeKey}`) {
        return json(res, 200, { id: "acct_1FakeBrowserTest", object: "account", charges_enabled: true });
      }
      return json(res, 401, {
        error: { type: "invalid_request_error", message: "Invalid API Key provided." },
      });
    }
    if (req.method === "GET" && url.pathname === "/intuit/authorize") {
      state.calls.authorize += 1;
      const redirect = url.searchParams.get("redirect_uri");
      const flowState = url.searchParams.get("state");
      if (!redirect || !flowState || url.searchParams.get("response_type") !== "code") {
        res.writeHead(400, { "content-type": "text/plain" });
        return res.end("bad authorize request");
      }
      const code = `code_${randomBytes(12).toString("hex")}`;
      state.codes.set(code, redirect);
      const back = new URL(redirect);
      back.searchParams.set("code", code);
      back.searchParams.set("state", flowState);
      back.searchParams.set("realmId", REALM_ID);
      res.writeHead(302, { location: back.toString() });
      return res.end();
    }
    if (req.method === "POST" && url.pathname === "/intuit/token") {
      state.calls.token += 1;
      const form = new URLSearchParams(await body(req));
      if (!(req.headers.authorization || "").startsWith("Basic ")) {
        return json(res, 401, { error: "invalid_client" });
      }
      if (form.get("grant_type") === "authorization_code") {
        const code = form.get("code");
        if (!state.codes.has(code) || state.codes.get(code) !== form.get("redirect_uri")) {
          return json(res, 400, { error: "invalid_grant" });
        }
        state.codes.delete(code);
      }
      const access = `qb_access_${randomBytes(16).toString("hex")}`;
      const refresh = `qb_refresh_${randomBytes(16).toString("hex")}`;
      state.issued.push(access, refresh);
      return json(res, 200, {
        access_token: access,
        refresh_token: refresh,
        token_type: "bearer",
        expires_in: 3600,
        x_refresh_token_expires_in: 8726400,
      });
    }
    if (req.method === "POST" && url.pathname === "/intuit/revoke") {
      await body(req);
      res.writeHead(200);
      return res.end();
    }
    if (req.method === "GET" && url.pathname === "/evil" && state.evilForm) {
      const { action, fields } = state.evilForm;
      const inputs = Object.entries(fields)
        .map(([k, v]) => `<input type="hidden" name="${k}" value="${v}">`)
        .join("");
      res.writeHead(200, { "content-type": "text/html" });
      return res.end(
        `<!doctype html><title>evil</title><form id="f" method="post" action="${action}">${inputs}<button>go</button></form>`,
      );
    }
    res.writeHead(404, { "content-type": "text/plain" });
    res.end("not found");
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  const base = `http://127.0.0.1:${server.address().port}`;
  return { base, state, close: () => new Promise((r) => server.close(r)) };
}
