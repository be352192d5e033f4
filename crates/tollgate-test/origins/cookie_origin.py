#!/usr/bin/env python3
"""Cloudflare's Python origin example, on the standard library's http.server.

Cloudflare's docs ("Validate JWTs", Python) show a Flask app that reads the CF_Authorization
cookie, fetches the team's JWK Set from <team domain>/cdn-cgi/access/certs, builds one key per
JWK with PyJWT's RSAAlgorithm.from_jwk and accepts the request when jwt.decode succeeds with one
of them (RS256, the application's AUD tag); otherwise it answers 403. This is that origin with
http.server in place of Flask and urllib in place of requests, so it needs only PyJWT[crypto].
It is a seed origin: tollgate must serve it unchanged, exactly as Cloudflare Access does.

Run with:
    target/test-venv/bin/python crates/tollgate-test/origins/cookie_origin.py \
        --issuer https://team.cloudflareaccess.com --aud <AUD tag> [--certs-url URL] [--port 0]

Every option also reads an environment variable: TEAM_DOMAIN (the issuer), POLICY_AUD,
CERTS_URL (default <issuer>/cdn-cgi/access/certs) and PORT (0, the default, binds a free port).

The first line on stdout is the bound port, alone, so a harness can read it. The keys are
fetched on every request, as in Cloudflare's example (the certs endpoint sees each one).

Answers:
  GET /__count      {"requests": N, "verified": M} without authentication: N requests reached
                    the authenticated paths so far (this one not counted), M passed.
  anything else     403 text when the cookie is missing or no key verifies it; else 200 JSON:
                    {"sub", "common_name", "email" (null when absent), "path", "method",
                     "assertion_present", "assertion_matches_cookie",
                     "header_names" (lowercase, one per header line, in arrival order),
                     "requests" (this request's number)}.
"""

import argparse
import http.cookies
import json
import os
import sys
import threading
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jwt

COOKIE = "CF_Authorization"
ASSERTION = "Cf-Access-Jwt-Assertion"


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--issuer", default=os.getenv("TEAM_DOMAIN"),
                        help="the team domain, the tokens' iss (env TEAM_DOMAIN)")
    parser.add_argument("--aud", default=os.getenv("POLICY_AUD"),
                        help="the application's AUD tag (env POLICY_AUD)")
    parser.add_argument("--certs-url", default=os.getenv("CERTS_URL"),
                        help="the JWK Set URL (env CERTS_URL; default <issuer>/cdn-cgi/access/certs)")
    parser.add_argument("--port", type=int, default=int(os.getenv("PORT", "0")),
                        help="the loopback port; 0 binds a free one (env PORT)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--exit-on-stdin-eof", action="store_true",
                        help="exit when stdin closes (a harness's pipe: its death ends this process)")
    args = parser.parse_args()
    if not args.issuer or not args.aud:
        parser.error("--issuer (TEAM_DOMAIN) and --aud (POLICY_AUD) are required")
    if not args.certs_url:
        args.certs_url = args.issuer.rstrip("/") + "/cdn-cgi/access/certs"
    return args


class Counter:
    def __init__(self):
        self.lock = threading.Lock()
        self.requests = 0
        self.verified = 0

    def request(self):
        with self.lock:
            self.requests += 1
            return self.requests

    def ok(self):
        with self.lock:
            self.verified += 1

    def snapshot(self):
        with self.lock:
            return {"requests": self.requests, "verified": self.verified}


def get_public_keys(certs_url):
    """One key per JWK of the certs document, as Cloudflare's _get_public_keys does."""
    with urllib.request.urlopen(certs_url, timeout=5) as response:
        jwk_set = json.load(response)
    return [jwt.algorithms.RSAAlgorithm.from_jwk(json.dumps(key)) for key in jwk_set["keys"]]


def make_handler(args, counter):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as behind a proxy

        def log_message(self, format, *log_args):  # noqa: A002 - http.server's signature
            pass

        def reply(self, status, body, content_type):
            data = body.encode()
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)

        def cookie_token(self):
            jar = http.cookies.SimpleCookie()
            for line in self.headers.get_all("Cookie") or []:
                try:
                    jar.load(line)
                except http.cookies.CookieError:
                    return None
            morsel = jar.get(COOKIE)
            return morsel.value if morsel is not None and morsel.value else None

        def verify(self, token):
            try:
                keys = get_public_keys(args.certs_url)
            except Exception as err:  # noqa: BLE001 - an unreachable certs URL is a refusal
                print(f"cookie_origin: cannot fetch {args.certs_url}: {err}", file=sys.stderr)
                return None
            for key in keys:
                try:
                    return jwt.decode(token, key=key, audience=args.aud, algorithms=["RS256"],
                                      issuer=args.issuer)
                except jwt.PyJWTError:
                    pass
            return None

        def handle_any(self):
            if self.path == "/__count":
                return self.reply(200, json.dumps(counter.snapshot()), "application/json")
            number = counter.request()
            token = self.cookie_token()
            if token is None:
                return self.reply(403, "missing required cf authorization token", "text/plain")
            claims = self.verify(token)
            if claims is None:
                return self.reply(403, "invalid token", "text/plain")
            counter.ok()
            assertion = self.headers.get(ASSERTION)
            seen = {
                "sub": claims.get("sub"),
                "common_name": claims.get("common_name"),
                "email": claims.get("email"),
                "path": self.path,
                "method": self.command,
                "assertion_present": assertion is not None,
                "assertion_matches_cookie": assertion == token,
                "header_names": [name.lower() for name in self.headers.keys()],
                "requests": number,
            }
            return self.reply(200, json.dumps(seen), "application/json")

        def do_GET(self):  # noqa: N802 - http.server's naming
            # Read any body first, so a kept-alive connection stays in step.
            length = int(self.headers.get("Content-Length") or 0)
            if length > 0:
                self.rfile.read(length)
            self.handle_any()

        do_HEAD = do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_GET

    return Handler


def exit_on_eof():
    sys.stdin.buffer.read()
    os._exit(0)


def main():
    args = parse_args()
    counter = Counter()
    server = ThreadingHTTPServer((args.host, args.port), make_handler(args, counter))
    server.daemon_threads = True
    print(server.server_address[1], flush=True)
    if args.exit_on_stdin_eof:
        threading.Thread(target=exit_on_eof, daemon=True).start()
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
