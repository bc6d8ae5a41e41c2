#!/usr/bin/env python3
"""A stand-in QuickBooks (Intuit) OAuth server for scripts/test-scale.sh: the same consent
and code exchange as scripts/bench/fake_oauth.py (whose Fake and handler it reuses for
/authorize), but access tokens that expire ACCESS_TTL seconds after they are issued, so the
service refreshes them under load, and a ledger of every token it issued and every refresh
token presented, so the suite can tell a second refresh of the same token from a new one.

    fake_provider.py PORT CLIENT_ID CLIENT_SECRET REALM_ID ACCESS_TTL

GET  /authorize  as fake_oauth.py: redirects to redirect_uri with code, state and realmId
POST /token      authorization_code and refresh_token grants (HTTP Basic client auth); every
                 refresh token it ever issued stays valid (Intuit keeps the previous one
                 valid for a while), so a refresh whose result the service lost is retried
                 rather than ending the connection, and shows in the ledger as a refresh
                 token presented twice
POST /revoke     accepted
GET  /calls      JSON counts of exchanges and refreshes
GET  /ledger     JSON: every grant answered, in order: {"grant", "presented" (refresh token,
                 or null), "access" and "refresh" (issued), "at" (unix time)}

Standard library only; one line on stderr per refused request, nothing else.
"""

import json
import os
import secrets
import sys
import time
from http.server import ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "bench"))
import fake_oauth  # noqa: E402  (scripts/bench/fake_oauth.py: Fake, and /authorize)

REFRESH_TTL = 100 * 86_400


def handler_for(fake, access_ttl):
    base = fake_oauth.handler_for(fake)

    class Handler(base):
        def do_GET(self):
            if urlsplit(self.path).path == "/ledger":
                with fake.lock:
                    return self.send_json(200, fake.ledger)
            return base.do_GET(self)

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
            access = "at-scale-" + secrets.token_hex(16)
            refresh = "rt-scale-" + secrets.token_hex(16)
            with fake.lock:
                if grant == "authorization_code":
                    fake.calls["exchange"] += 1
                    redirect_uri = fake.codes.pop(form.get("code", ""), None)
                    if redirect_uri is None or redirect_uri != form.get("redirect_uri"):
                        return self.refuse(400, "invalid_grant")
                    presented = None
                elif grant == "refresh_token":
                    fake.calls["refresh"] += 1
                    presented = form.get("refresh_token", "")
                    if presented not in fake.issued_refresh:
                        return self.refuse(400, "invalid_grant")
                else:
                    return self.refuse(400, "unsupported_grant_type")
                fake.issued_refresh.add(refresh)
                fake.ledger.append(
                    {
                        "grant": grant,
                        "presented": presented,
                        "access": access,
                        "refresh": refresh,
                        "at": time.time(),
                    }
                )
            self.send_json(
                200,
                {
                    "access_token": access,
                    "refresh_token": refresh,
                    "token_type": "bearer",
                    "expires_in": access_ttl,
                    "x_refresh_token_expires_in": REFRESH_TTL,
                },
            )

    return Handler


def main():
    if len(sys.argv) != 6:
        print("usage: fake_provider.py PORT CLIENT_ID CLIENT_SECRET REALM_ID ACCESS_TTL", file=sys.stderr)
        return 2
    port, client_id, client_secret, realm_id, access_ttl = sys.argv[1:]
    fake = fake_oauth.Fake(client_id, client_secret, realm_id)
    fake.ledger = []
    fake.issued_refresh = set()
    server = ThreadingHTTPServer(("127.0.0.1", int(port)), handler_for(fake, int(access_ttl)))
    server.daemon_threads = True
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
