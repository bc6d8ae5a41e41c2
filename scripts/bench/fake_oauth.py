#!/usr/bin/env python3
"""A stand-in QuickBooks (Intuit) OAuth server for the benchmark, so the token endpoint has a
real connection to serve: hsq-config seals what a token exchange returns, and no other way
of putting a row in oauth_tokens produces something it can open.

    fake_oauth.py PORT CLIENT_ID CLIENT_SECRET REALM_ID

GET  /authorize  consent: redirects to redirect_uri with code, state and realmId
POST /token      authorization_code grant (client authenticated with HTTP Basic, as Intuit
                 does); the access token lives ten years, so the benchmark never refreshes
POST /revoke     accepted
GET  /calls      JSON counts of exchanges and refreshes, for the report

Standard library only; one line on stderr per refused request, nothing else.
"""

import base64
import json
import secrets
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

TEN_YEARS = 10 * 365 * 86_400


class Fake:
    def __init__(self, client_id, client_secret, realm_id):
        self.client_id = client_id
        self.basic = "Basic " + base64.b64encode(
            f"{client_id}:{client_secret}".encode()
        ).decode()
        self.realm_id = realm_id
        self.codes = {}
        self.calls = {"authorize": 0, "exchange": 0, "refresh": 0, "revoke": 0}
        self.lock = threading.Lock()


def handler_for(fake):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *_args):
            pass

        def send_json(self, status, body):
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def refuse(self, status, code):
            print(f"fake_oauth: {self.command} {self.path.split('?')[0]}: {code}", file=sys.stderr)
            self.send_json(status, {"error": code})

        def do_GET(self):
            url = urlsplit(self.path)
            query = {k: v[0] for k, v in parse_qs(url.query).items()}
            if url.path == "/calls":
                with fake.lock:
                    return self.send_json(200, fake.calls)
            if url.path != "/authorize":
                return self.refuse(404, "not_found")
            wanted = ("client_id", "redirect_uri", "state", "code_challenge")
            if query.get("client_id") != fake.client_id or not all(k in query for k in wanted):
                return self.refuse(400, "invalid_request")
            code = "code-" + secrets.token_hex(8)
            with fake.lock:
                fake.calls["authorize"] += 1
                fake.codes[code] = query["redirect_uri"]
            target = urlsplit(query["redirect_uri"])
            params = urlencode({"code": code, "state": query["state"], "realmId": fake.realm_id})
            joined = f"{target.query}&{params}" if target.query else params
            self.send_response(302)
            self.send_header("Location", urlunsplit(target._replace(query=joined)))
            self.send_header("Content-Length", "0")
            self.end_headers()

        def do_POST(self):
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length).decode()
            path = urlsplit(self.path).path
            if path == "/revoke":
                with fake.lock:
                    fake.calls["revoke"] += 1
                return self.send_json(200, {})
            if path != "/token":
                return self.refuse(404, "not_found")
            if self.headers.get("Authorization") != fake.basic:
                return self.refuse(401, "invalid_client")
            form = {k: v[0] for k, v in parse_qs(raw).items()}
            grant = form.get("grant_type")
            with fake.lock:
                if grant == "authorization_code":
                    fake.calls["exchange"] += 1
                    redirect_uri = fake.codes.pop(form.get("code", ""), None)
                    if redirect_uri is None or redirect_uri != form.get("redirect_uri"):
                        return self.refuse(400, "invalid_grant")
                elif grant == "refresh_token":
                    fake.calls["refresh"] += 1
                else:
                    return self.refuse(400, "unsupported_grant_type")
            self.send_json(
                200,
                {
                    "access_token": "at-bench-" + secrets.token_hex(16),
                    "refresh_token": "rt-bench-" + secrets.token_hex(16),
                    "token_type": "bearer",
                    "expires_in": TEN_YEARS,
                    "x_refresh_token_expires_in": TEN_YEARS,
                },
            )

    return Handler


def main():
    if len(sys.argv) != 5:
        print("usage: fake_oauth.py PORT CLIENT_ID CLIENT_SECRET REALM_ID", file=sys.stderr)
        return 2
    port, client_id, client_secret, realm_id = sys.argv[1:]
    fake = Fake(client_id, client_secret, realm_id)
    server = ThreadingHTTPServer(("127.0.0.1", int(port)), handler_for(fake))
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
