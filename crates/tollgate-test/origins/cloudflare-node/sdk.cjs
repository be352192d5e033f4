// Drives tollgate's admin API with Cloudflare's TypeScript SDK (npm `cloudflare`, pinned in
// package.json), then checks on tollgate's public listener that bots get in, or not, as the API
// said. Run by crates/tollgate-cli/tests/admin_sdk.rs against a real `tollgate serve`, with
// NODE_PATH naming the node_modules scripts/test-deps.sh installed:
//
//     node sdk.cjs --admin URL --account ID --token TOKEN --public URL
//
// Every step prints one line `step: detail`; the last line is a JSON report. Any surprise throws
// (exit status 1) with what was expected and what came back.
'use strict';

const assert = require('node:assert/strict');
const http = require('node:http');
const CloudflareModule = require('cloudflare');

const Cloudflare = CloudflareModule.default || CloudflareModule;
const args = {};
for (let i = 2; i < process.argv.length; i += 2) {
  args[process.argv[i].replace(/^--/, '')] = process.argv[i + 1];
}
for (const flag of ['admin', 'account', 'token', 'public']) {
  assert.ok(args[flag], `--${flag} is required`);
}
const cf = new Cloudflare({ apiToken: args.token, baseURL: args.admin, maxRetries: 0 });
const account_id = args.account;
const access = cf.zeroTrust.access;
const report = {};

function step(name, detail = '') {
  console.log(`${name}: ${detail}`);
}

/** The public listener's answer to a bot's credentials at `host`: [status, reason]. (node's
 * http, not fetch: fetch may not set `Host`.) */
function exchange(host, clientId, secret) {
  return new Promise((resolve, reject) => {
    const request = http.get(args.public, {
      headers: { host, 'CF-Access-Client-Id': clientId, 'CF-Access-Client-Secret': secret },
    }, (response) => {
      let body = '';
      response.setEncoding('utf8');
      response.on('data', (chunk) => { body += chunk; });
      response.on('end', () => {
        const reason = response.statusCode === 200 ? null : JSON.parse(body).reason;
        resolve([response.statusCode, reason]);
      });
    });
    request.on('error', reject);
  });
}

/** The public listener answers `status` (and `reason`) within a second. */
async function expectExchange(what, host, clientId, secret, status, reason) {
  const deadline = Date.now() + 1000;
  for (;;) {
    const [got, gotReason] = await exchange(host, clientId, secret);
    if (got === status && (reason === undefined || gotReason === reason)) {
      step(what, `${got} ${gotReason || ''}`.trim());
      return;
    }
    if (Date.now() > deadline) {
      throw new Error(`${what}: expected ${status} ${reason}, got ${got} ${gotReason}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** `call` fails with an APIError of `status` whose v4 errors[] has `code`. */
async function expectError(what, status, code, call) {
  try {
    await call();
  } catch (error) {
    assert.ok(error instanceof Cloudflare.APIError, `${what}: ${error}`);
    assert.equal(error.status, status, `${what}: ${error.message}`);
    assert.equal(error.errors[0].code, code, `${what}: ${JSON.stringify(error.errors)}`);
    step(what, `${status} ${code} ${error.errors[0].message}`);
    return;
  }
  throw new Error(`${what}: no error`);
}

async function main() {
  // --- service tokens ----------------------------------------------------------------------
  const st = access.serviceTokens;
  const bot = await st.create({ account_id, name: 'ts-bot', duration: '8760h' });
  assert.ok(bot.client_secret && bot.client_id.endsWith('.access'), JSON.stringify(bot));
  assert.equal(bot.duration, '8760h');
  step('created', `${bot.id} ${bot.client_id}`);
  for (let i = 0; i < 6; i += 1) {
    await st.create({ account_id, name: `ts-bulk-${i}`, duration: '720h' });
  }
  const listed = [];
  for await (const token of st.list({ account_id, per_page: 4 })) {
    listed.push(token.id);
  }
  assert.equal(new Set(listed).size, listed.length, 'no token twice across pages');
  assert.ok(listed.includes(bot.id), 'the new token is listed');
  report.listed = listed.length;
  step('listed', `${listed.length} tokens over pages of 4`);
  const got = await st.get(bot.id, { account_id });
  assert.equal(got.client_id, bot.client_id);
  assert.equal(got.client_secret, undefined, 'the secret is shown once');
  const grace = new Date(Date.now() + 3600 * 1000).toISOString();
  const rotated = await st.rotate(bot.id, { account_id, previous_client_secret_expires_at: grace });
  assert.ok(rotated.client_secret && rotated.client_secret !== bot.client_secret);
  step('rotated with an hour of grace');

  // --- a policy, and an application using it ------------------------------------------------
  const stranger = await st.create({ account_id, name: 'ts-stranger' });
  const policy = await access.policies.create({
    account_id,
    name: 'ts-bots',
    decision: 'non_identity',
    include: [{ service_token: { token_id: bot.id } }],
  });
  assert.equal(policy.reusable, true);
  const app = await access.applications.create({
    account_id,
    domain: 'ts.example.com',
    type: 'self_hosted',
    name: 'ts-api',
    policies: [{ id: policy.id, precedence: 1 }],
  });
  assert.equal(app.aud.length, 64);
  assert.deepEqual(app.policies.map((p) => p.id), [policy.id]);
  const host = 'ts.example.com';
  await expectExchange('the rotated secret', host, bot.client_id, rotated.client_secret, 200);
  await expectExchange('the old secret in its grace', host, bot.client_id, bot.client_secret, 200);
  await expectExchange('a token the policy leaves out', host, stranger.client_id,
    stranger.client_secret, 403, 'forbidden');
  await expectError('deleting a token a policy names', 400, 12139,
    () => st.delete(bot.id, { account_id }));

  const own = await access.applications.policies.create(app.id, {
    account_id,
    name: 'ts-stranger-too',
    decision: 'non_identity',
    include: [{ service_token: { token_id: stranger.id } }],
    precedence: 2,
  });
  assert.equal(own.precedence, 2);
  const appPolicies = [];
  for await (const p of access.applications.policies.list(app.id, { account_id })) {
    appPolicies.push(p.id);
  }
  assert.deepEqual(appPolicies, [policy.id, own.id]);
  await expectExchange('the stranger, admitted by the application\'s own policy', host,
    stranger.client_id, stranger.client_secret, 200);

  // --- keys and the log ---------------------------------------------------------------------
  const keys = await access.keys.get({ account_id });
  assert.equal(keys.key_rotation_interval_days, 42);
  const requests = await access.logs.accessRequests.list({ account_id, limit: 10 });
  assert.ok(Array.isArray(requests), 'access requests are an array');
  step('keys and log', `${keys.days_until_next_rotation} days to the next rotation, ${requests.length} requests`);

  // --- cleaning up --------------------------------------------------------------------------
  assert.equal((await access.applications.delete(app.id, { account_id })).id, app.id);
  assert.equal((await access.policies.delete(policy.id, { account_id })).id, policy.id);
  await st.delete(bot.id, { account_id });
  await expectExchange('the deleted token', host, bot.client_id, rotated.client_secret, 401);
  step('cleaned up', 'application, policy and token deleted');
  console.log(JSON.stringify(report));
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
