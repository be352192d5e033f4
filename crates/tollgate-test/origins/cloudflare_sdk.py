"""Drives tollgate's admin API with Cloudflare's own Python SDK (`cloudflare`, pinned in
requirements.txt), then checks on tollgate's public listener that bots get in, or not, as the
API said. Run by crates/tollgate-cli/tests/admin_sdk.rs against a real `tollgate serve`:

    python cloudflare_sdk.py --admin URL --account ID --token TOKEN --read-token TOKEN --public URL

Every step prints one line `step: detail`; the last line is a JSON report. Any surprise raises
(exit status 1) with what was expected and what came back.
"""

import argparse
import json
import time
from datetime import datetime, timedelta, timezone

import cloudflare
import httpx
from cloudflare import Cloudflare

parser = argparse.ArgumentParser()
for flag in ("--admin", "--account", "--token", "--read-token", "--public"):
    parser.add_argument(flag, required=True)
args = parser.parse_args()

# Strict response validation: every field tollgate returns must have the SDK's type.
cf = Cloudflare(api_token=args.token, base_url=args.admin, max_retries=0, _strict_response_validation=True)
reader = Cloudflare(api_token=args.read_token, base_url=args.admin, max_retries=0)
acct = args.account
st = cf.zero_trust.access.service_tokens
report = {}


def as_time(value):
    """A datetime from the SDK's models, which type some times as strings."""
    if isinstance(value, str):
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    return value


def step(name, detail=""):
    print(f"{name}: {detail}", flush=True)


def exchange(client_id, secret):
    """Status of a bot's request at the public listener, and its refusal reason."""
    r = httpx.get(args.public, headers={"CF-Access-Client-Id": client_id, "CF-Access-Client-Secret": secret})
    reason = None
    if r.status_code != 200:
        try:
            reason = r.json().get("reason")
        except ValueError:
            reason = r.text[:80]
    return r.status_code, reason


def expect_exchange(what, client_id, secret, status, reason=None, within=1.0):
    """The public listener answers `status` within `within` seconds (other instances reload
    within their poll interval; this one at once)."""
    deadline = time.monotonic() + within
    while True:
        got = exchange(client_id, secret)
        if got[0] == status and (reason is None or got[1] == reason):
            step(what, f"{got[0]} {got[1] or ''}".strip())
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: expected {status} {reason}, got {got}")
        time.sleep(0.05)


def eventually(what, check, within=1.0):
    """`check()` answers a true value within `within` seconds: the public listener may be
    another instance, which sees a change at its next reload (every 250 ms)."""
    deadline = time.monotonic() + within
    while True:
        got = check()
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {within} s")
        time.sleep(0.05)


def expect_error(what, error_class, status, call, needle=None):
    try:
        call()
    except error_class as e:
        assert e.status_code == status, f"{what}: status {e.status_code}, body {e.body}"
        message = " ".join(err.message for err in e.errors) if e.errors else str(e.body)
        assert e.errors and e.errors[0].code >= 1000, f"{what}: no v4 errors[] in {e.body}"
        if needle:
            assert needle in message, f"{what}: {needle!r} not in {message!r}"
        step(what, f"{status} {e.errors[0].code} {message}")
        return message
    raise AssertionError(f"{what}: no {error_class.__name__}")


# --- service tokens ------------------------------------------------------------------------
tok = st.create(account_id=acct, name="ci-bot", duration="8760h")
assert tok.client_secret and tok.client_id.endswith(".access"), tok
assert tok.expires_at is not None and tok.duration == "8760h", tok
step("created", f"{tok.id} {tok.client_id}")
expect_exchange("exchange with the new token", tok.client_id, tok.client_secret, 200)
got = st.get(tok.id, account_id=acct)
assert got.client_id == tok.client_id and getattr(got, "client_secret", None) is None, got
assert got.to_dict().get("client_secret_version") == 1, got.to_dict()

for i in range(24):
    st.create(account_id=acct, name=f"bulk-{i:02d}", duration="720h")
listed = list(st.list(account_id=acct))  # auto-paginates, 20 a page, until a page is empty
listed_by_5 = list(st.list(account_id=acct, per_page=5))
names = sorted(t.name for t in listed)
assert len(listed) == len(listed_by_5) == len(set(t.id for t in listed)), (len(listed), len(listed_by_5))
assert names.count("ci-bot") == 1 and sum(n.startswith("bulk-") for n in names) == 24, names
step("listed", f"{len(listed)} tokens over pages of 20 and of 5")
report["listed"] = len(listed)
page = st.list(account_id=acct, page=1000)
assert list(page) == [], "a page past the end is empty"
assert [t.name for t in st.list(account_id=acct, name="bulk-07")] == ["bulk-07"]
duplicate = st.create(account_id=acct, name="ci-bot")
assert duplicate.id != tok.id, "duplicate names are allowed"
st.delete(duplicate.id, account_id=acct)

refreshed = st.refresh(tok.id, account_id=acct)
assert as_time(refreshed.expires_at) >= as_time(tok.expires_at), (refreshed.expires_at, tok.expires_at)
step("refreshed", as_time(refreshed.expires_at).isoformat())

grace = datetime.now(timezone.utc) + timedelta(hours=1)
rot = st.rotate(tok.id, account_id=acct, previous_client_secret_expires_at=grace)
assert rot.client_id == tok.client_id and rot.client_secret and rot.client_secret != tok.client_secret
assert rot.to_dict().get("client_secret_version") == 2, rot.to_dict()
step("rotated with an hour of grace", "")
expect_exchange("old secret in its grace period", tok.client_id, tok.client_secret, 200)
expect_exchange("new secret", tok.client_id, rot.client_secret, 200)
rot2 = st.rotate(tok.id, account_id=acct)
expect_exchange("old secret after a rotation without grace", tok.client_id, rot.client_secret, 401, "invalid_credentials")
expect_exchange("newest secret", tok.client_id, rot2.client_secret, 200)
secret = rot2.client_secret

# Terraform's rotation: PUT with client_secret_version + 1 answers the new secret.
bumped = st.update(tok.id, account_id=acct, name="ci-bot", client_secret_version=4,
                   previous_client_secret_expires_at=datetime.now(timezone.utc) + timedelta(minutes=30))
assert bumped.client_secret and bumped.client_secret != secret, bumped
expect_exchange("secret from a version bump", tok.client_id, bumped.client_secret, 200)
expect_exchange("previous secret in the bump's grace", tok.client_id, secret, 200)
secret = bumped.client_secret
plain = st.update(tok.id, account_id=acct, duration="720h")
assert getattr(plain, "client_secret", None) is None and plain.duration == "720h", plain

st.update(tok.id, account_id=acct, enabled=False)
expect_exchange("disabled token", tok.client_id, secret, 401, "service_token_disabled")
st.update(tok.id, account_id=acct, enabled=True)
expect_exchange("enabled again", tok.client_id, secret, 200)

deleted = st.delete(tok.id, account_id=acct)
assert deleted.id == tok.id
expect_exchange("deleted token", tok.client_id, secret, 401)
expect_error("get of a deleted token", cloudflare.NotFoundError, 404, lambda: st.get(tok.id, account_id=acct))

# --- bad input: a clear 400 naming the field, nothing changed --------------------------------
before = len(list(st.list(account_id=acct, per_page=1000)))
expect_error("empty name", cloudflare.BadRequestError, 400, lambda: st.create(account_id=acct, name=""), "name")
expect_error("bad duration", cloudflare.BadRequestError, 400,
             lambda: st.create(account_id=acct, name="x", duration="soon"), "duration")
expect_error("grace too long", cloudflare.BadRequestError, 400,
             lambda: st.rotate(listed[0].id, account_id=acct,
                               previous_client_secret_expires_at=datetime.now(timezone.utc) + timedelta(days=31)),
             "previous_client_secret_expires_at")
expect_error("version going down", cloudflare.BadRequestError, 400,
             lambda: st.update(listed[0].id, account_id=acct, client_secret_version=0), "client_secret_version")
assert len(list(st.list(account_id=acct, per_page=1000))) == before, "refused calls changed nothing"

# --- who may call ----------------------------------------------------------------------------
assert len(list(reader.zero_trust.access.service_tokens.list(account_id=acct))) == before
expect_error("read-only token creating", cloudflare.PermissionDeniedError, 403,
             lambda: reader.zero_trust.access.service_tokens.create(account_id=acct, name="nope"), "read")
nobody = Cloudflare(api_token="tga_not-a-token", base_url=args.admin, max_retries=0)
expect_error("unknown API token", cloudflare.AuthenticationError, 401,
             lambda: nobody.zero_trust.access.service_tokens.list(account_id=acct))
expect_error("another account", cloudflare.PermissionDeniedError, 403,
             lambda: st.list(account_id="0" * 32))

# --- signing keys ----------------------------------------------------------------------------
keys = cf.zero_trust.access.keys
k = keys.get(account_id=acct)
assert k.key_rotation_interval_days == 42 and k.last_key_rotation_at is not None, k
assert keys.update(account_id=acct, key_rotation_interval_days=42).key_rotation_interval_days == 42
shorter = keys.update(account_id=acct, key_rotation_interval_days=30)
assert shorter.key_rotation_interval_days == 30 and shorter.days_until_next_rotation <= 30, shorter
assert keys.get(account_id=acct).key_rotation_interval_days == 30
step("rotation interval", f"30 days, next rotation in {shorter.days_until_next_rotation}")
expect_error("a rotation interval out of bounds", cloudflare.BadRequestError, 400,
             lambda: keys.update(account_id=acct, key_rotation_interval_days=400), "key_rotation_interval_days")
assert keys.update(account_id=acct, key_rotation_interval_days=42).key_rotation_interval_days == 42
rotated = keys.rotate(account_id=acct)
assert as_time(rotated.last_key_rotation_at) > as_time(k.last_key_rotation_at), (rotated.last_key_rotation_at, k.last_key_rotation_at)
step("keys rotated", as_time(rotated.last_key_rotation_at).isoformat())
report["kids"] = len(rotated.to_dict().get("keys", []))

# --- applications and policies (last: once an application has a domain, the demo fallback stops)
apps = cf.zero_trust.access.applications
policies = cf.zero_trust.access.policies
bot = st.create(account_id=acct, name="app-bot")
stranger = st.create(account_id=acct, name="stranger")
bots = policies.create(account_id=acct, name="bots", decision="non_identity",
                       include=[{"service_token": {"token_id": bot.id}}])
assert bots.reusable and bots.decision == "non_identity", bots
app = apps.create(account_id=acct, domain="app.example.com", type="self_hosted", name="api",
                  session_duration="24h", policies=[bots.id])
assert len(app.aud) == 64 and app.domain == "app.example.com", app
assert [p.id for p in app.policies] == [bots.id] and app.policies[0].precedence == 1, app.policies
got = apps.get(app.id, account_id=acct)
assert type(got).__name__ == "SelfHostedApplication" and got.aud == app.aud, got
upd = apps.update(app.id, account_id=acct, domain=got.domain, type=got.type, name=got.name,
                  session_duration="1h", read_service_tokens_from_header="Authorization")
assert upd.session_duration == "1h" and upd.read_service_tokens_from_header.lower() == "authorization", upd
assert [p.id for p in upd.policies] == [bots.id], "a replace without policies keeps them"
listed_apps = {a.name: a.id for a in apps.list(account_id=acct)}
assert listed_apps == {"demo": listed_apps.get("demo"), "api": app.id}, listed_apps  # demo: serve's first run
listed_policies = {p.name: p.to_dict().get("app_count") for p in policies.list(account_id=acct)}
assert listed_policies == {"bots": 1}, listed_policies
expect_error("an application on a taken domain", cloudflare.BadRequestError, 400,
             lambda: apps.create(account_id=acct, domain="APP.example.com.", type="self_hosted", name="twin"))
expect_error("an unknown application", cloudflare.NotFoundError, 404,
             lambda: apps.get("00000000-0000-4000-8000-000000000000", account_id=acct))
expect_error("a policy naming no token", cloudflare.BadRequestError, 400,
             lambda: policies.create(account_id=acct, name="ghost", decision="non_identity",
                                     include=[{"service_token": {"token_id": "00000000-0000-4000-8000-000000000000"}}]),
             "include")
expect_error("an unknown rule", cloudflare.BadRequestError, 400,
             lambda: policies.create(account_id=acct, name="odd", decision="non_identity",
                                     include=[{"login_method": {"id": "x"}}]), "include[0]")
host = {"Host": "app.example.com"}


def at_app(client_id, secret, status, reason=None, what=""):
    """The bot's exchange at the application, within a second."""
    deadline = time.monotonic() + 1.0
    while True:
        r = httpx.get(args.public, headers={**host, "CF-Access-Client-Id": client_id,
                                            "CF-Access-Client-Secret": secret})
        got_reason = None if r.status_code == 200 else r.json().get("reason")
        if r.status_code == status and (reason is None or got_reason == reason):
            step(what, f"{r.status_code} {got_reason or ''}".strip())
            return r
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: expected {status} {reason}, got {r.status_code} {r.text}")
        time.sleep(0.05)


at_app(stranger.client_id, stranger.client_secret, 403, "forbidden", "a token the policy leaves out")
first = at_app(bot.client_id, bot.client_secret, 200, what="the bot the policy names")
cookie = first.cookies.get("CF_Authorization")
assert cookie, first.headers
ride = httpx.get(args.public, headers=host, cookies={"CF_Authorization": cookie})
assert ride.status_code == 200, ride.text
apps.revoke_tokens(app.id, account_id=acct)
refused = eventually("the revoked cookie refused", lambda: (
    lambda r: r if r.status_code == 401 and r.json()["reason"] == "revoked" else None)(
    httpx.get(args.public, headers=host, cookies={"CF_Authorization": cookie})))
again = at_app(bot.client_id, bot.client_secret, 200, what="the bot exchanging again")
step("application", "created with a policy, replaced, host-routed, its cookies revoked, re-exchanged")

# The authentication log, as Cloudflare's access requests: the stranger's refusal is there
# (the log is written in batches: give it a few seconds).
log = cf.zero_trust.access.logs.access_requests
deadline = time.monotonic() + 5
while True:
    refused_logins = [r for r in log.list(account_id=acct, limit=100, direction="desc")
                      if r.action == "login" and r.allowed is False and r.app_uid == app.id]
    if refused_logins or time.monotonic() > deadline:
        break
    time.sleep(0.2)
assert refused_logins, "the stranger's refused exchange is logged"
assert refused_logins[0].connection == "nonidentity" and refused_logins[0].app_domain == "app.example.com", refused_logins[0]
assert refused_logins[0].to_dict().get("service_token_id") == stranger.id, refused_logins[0].to_dict()
oldest = list(log.list(account_id=acct, limit=1, direction="asc"))
assert len(oldest) == 1, oldest
expect_error("a bad access-request limit", cloudflare.BadRequestError, 400,
             lambda: log.list(account_id=acct, limit=5000), "limit")
step("access requests", f"the refused exchange of {stranger.client_id} is logged")

# Terraform's token rotation: create the new token, move the policy to it, delete the old one.
expect_error("deleting a token a policy names", cloudflare.BadRequestError, 400,
             lambda: st.delete(bot.id, account_id=acct), "service_token_in_use")
successor = st.create(account_id=acct, name="app-bot-v2")
both = [{"service_token": {"token_id": bot.id}}, {"service_token": {"token_id": successor.id}}]
policies.update(bots.id, account_id=acct, name="bots", decision="non_identity", include=both)
at_app(successor.client_id, successor.client_secret, 200, what="the successor, once the policy names it")
at_app(bot.client_id, bot.client_secret, 200, what="the old token, still named")
policies.update(bots.id, account_id=acct, name="bots", decision="non_identity",
                include=[{"service_token": {"token_id": successor.id}}])
at_app(bot.client_id, bot.client_secret, 403, "forbidden", "the old token, left out")
assert st.delete(bot.id, account_id=acct).id == bot.id
at_app(successor.client_id, successor.client_secret, 200, what="the successor after the delete")

# An application's own (legacy) policies: a bypass for loopback, then gone.
scoped = apps.policies.create(app.id, account_id=acct, name="loopback", decision="bypass",
                              include=[{"ip": {"ip": "127.0.0.0/8"}}], precedence=2)
assert scoped.precedence == 2 and scoped.decision == "bypass", scoped
open_door = eventually("a bare request bypassed", lambda: (
    lambda r: r if r.status_code == 200 else None)(httpx.get(args.public, headers=host)))
assert open_door.json() is None, open_door.text  # no identity
assert [p.id for p in apps.policies.list(app.id, account_id=acct)] == [bots.id, scoped.id]
apps.policies.delete(scoped.id, app_id=app.id, account_id=acct)
eventually("a bare request refused again",
           lambda: httpx.get(args.public, headers=host).status_code == 401)
step("application policy", "a loopback bypass let a bare request in, deleted it did not")

expect_error("deleting a policy an application uses", cloudflare.BadRequestError, 400,
             lambda: policies.delete(bots.id, account_id=acct), "in_use")
assert apps.delete(app.id, account_id=acct).id == app.id
expect_error("a deleted application", cloudflare.NotFoundError, 404, lambda: apps.get(app.id, account_id=acct))
assert policies.delete(bots.id, account_id=acct).id == bots.id
step("policy", "deleted once no application used it")

print(json.dumps(report), flush=True)
