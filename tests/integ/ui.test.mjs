// The admin web UI (docs/ui.md), in a real browser: Debian's chromium driven
// by playwright-core. Scripted traffic through the simulator feeds the
// charts; a key is created, used, revoked in the UI and then refused by the
// API; the login, the cookie, the CSRF check and the security headers are
// checked over plain HTTP too; and no secret appears in any page or answer
// except the new key's, once. Screenshots go to <build>/artifacts/ui-*.png.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { startSim, startGateway, config, chat, MASTER_KEY, YR_BIN } from './lib.mjs';

const CHROMIUM = process.env.YR_CHROMIUM || '/usr/bin/chromium';
const ARTIFACTS = join(dirname(YR_BIN), 'artifacts');
const PROVIDER_KEY = 'sk-provider-ui-' + 'p'.repeat(24);
const PG = process.env.YR_TEST_PG_URL;
let sim, gw, pgGw, pgDb;
let sent;

const gatewayConfig = (storage) => config({
  providers: { openai: { base_url: sim.url, api_key: PROVIDER_KEY } },
  models: [
    { id: 'gpt-4o', routes: [{ provider: 'openai' }] },
    { id: 'gpt-4o-mini', routes: [{ provider: 'openai' }] },
  ],
  server: { trust_forwarded_proto: 'true' },
  ...(storage ? { storage } : {}),
});

// Scripted traffic: two models and one upstream failure. What the client
// was told is what the aggregates must add up to.
async function traffic(g) {
  const s = { requests: 0, prompt: 0, completion: 0 };
  for (let i = 0; i < 6; i++) {
    const model = i % 2 ? 'gpt-4o-mini' : 'gpt-4o';
    const r = await chat(g, { model, messages: [{ role: 'user', content: `hello number ${i}` }] });
    assert.equal(r.status, 200, r.text);
    s.requests++;
    s.prompt += r.json.usage.prompt_tokens;
    s.completion += r.json.usage.completion_tokens;
  }
  await sim.script([{ status: 500 }]);
  const bad = await chat(g, { model: 'gpt-4o', messages: [{ role: 'user', content: 'this one fails' }] });
  assert.equal(bad.status, 502, bad.text);
  s.requests++;
  return s;
}

before(async () => {
  sim = await startSim(['--require-key', PROVIDER_KEY]);
  gw = await startGateway(gatewayConfig());
  sent = await traffic(gw);
});

after(async () => {
  await gw?.stop();
  gw?.cleanup();
  await pgGw?.stop();
  pgGw?.cleanup();
  if (pgDb) spawnSync('psql', [PG, '-c', `DROP DATABASE IF EXISTS ${pgDb}`]);
  await sim?.stop();
});

const asMaster = { authorization: `Bearer ${MASTER_KEY}` };

async function login(password = MASTER_KEY, headers = {}) {
  return fetch(`${gw.base}/ui/login`, {
    method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify({ password }),
  });
}

// The session cookie ("yr_session=...") and CSRF token of a fresh login.
async function session() {
  const r = await login();
  assert.equal(r.status, 200);
  const cookie = r.headers.get('set-cookie').split(';')[0];
  return { cookie, csrf: (await r.json()).csrf };
}

// Usage rows are written by the store thread in batches: wait until every
// request sent is counted (the admin API is the thing under test anyway).
async function waitForRows(n, g = gw) {
  const deadline = Date.now() + 10000;
  for (;;) {
    const r = await fetch(`${g.base}/admin/stats/series?since=1h&bucket=1m&by=none`, { headers: asMaster });
    const body = await r.json();
    const got = body.data.reduce((a, x) => a + x.requests, 0);
    if (got >= n) return body;
    if (Date.now() > deadline) assert.fail(`only ${got} of ${n} requests in the usage series`);
    await new Promise((res) => setTimeout(res, 50));
  }
}

async function checkStats(gw, sent) {
  const s = await waitForRows(sent.requests, gw);
  const sum = (f) => s.data.reduce((a, x) => a + x[f], 0);
  assert.equal(sum('requests'), sent.requests);
  assert.equal(sum('attempts'), sent.requests);
  assert.equal(sum('prompt_tokens'), sent.prompt);
  assert.equal(sum('completion_tokens'), sent.completion);
  assert.equal(sum('errors'), 1);
  // Whole-hour buckets come from the hourly rollups: the same totals.
  const hourly = await (await fetch(`${gw.base}/admin/stats/series?since=24h&bucket=1h&by=none`, { headers: asMaster })).json();
  for (const f of ['requests', 'attempts', 'prompt_tokens', 'completion_tokens', 'cost_usd', 'errors']) {
    assert.equal(hourly.data.reduce((a, x) => a + x[f], 0).toFixed(6), sum(f).toFixed(6), `rollup ${f}`);
  }
  const hourlyClass = await (await fetch(`${gw.base}/admin/stats/series?since=24h&bucket=1h&by=class`, { headers: asMaster })).json();
  assert.deepEqual([...hourlyClass.groups].sort(), ['ok', 'server_error']);
  const hourlyLat = await (await fetch(`${gw.base}/admin/stats/latency?since=24h&bucket=1h`, { headers: asMaster })).json();
  const rawLat = await (await fetch(`${gw.base}/admin/stats/latency?since=1h&bucket=1m`, { headers: asMaster })).json();
  assert.deepEqual(hourlyLat.overall, rawLat.overall);
  const byModel = await (await fetch(`${gw.base}/admin/stats/series?since=1h&bucket=1m&by=model`, { headers: asMaster })).json();
  assert.deepEqual([...byModel.groups].sort(), ['gpt-4o', 'gpt-4o-mini']);
  const byClass = await (await fetch(`${gw.base}/admin/stats/series?since=1h&bucket=1m&by=class`, { headers: asMaster })).json();
  const classes = Object.fromEntries(byClass.groups.map((g) => [g, byClass.data.filter((x) => x.group === g).reduce((a, x) => a + x.attempts, 0)]));
  assert.equal(classes.ok, sent.requests - 1);
  assert.equal(Object.values(classes).reduce((a, b) => a + b, 0), sent.requests);
  const lat = await (await fetch(`${gw.base}/admin/stats/latency?since=1h&bucket=1m`, { headers: asMaster })).json();
  assert.equal(lat.overall.count, sent.requests - 1);
  assert.ok(lat.overall.latency_ms.p50 >= 0 && lat.overall.latency_ms.p99 >= lat.overall.latency_ms.p50);
  // Pages of 3, newest first, every request exactly once.
  const ids = [];
  let next = null;
  do {
    const q = new URLSearchParams({ limit: '3', ...(next ? { before: next } : {}) });
    const page = await (await fetch(`${gw.base}/admin/requests?${q}`, { headers: asMaster })).json();
    for (const r of page.data) {
      ids.push(r.request_id);
      assert.ok(r.attempts.length >= 1);
    }
    next = page.next;
  } while (next);
  assert.equal(ids.length, sent.requests);
  assert.equal(new Set(ids).size, ids.length);
  const failed = await (await fetch(`${gw.base}/admin/requests?errors=1`, { headers: asMaster })).json();
  assert.equal(failed.data.length, 1);
  assert.equal(failed.data[0].status, 502);
  assert.equal(failed.data[0].attempts[0].upstream_status, 500);
  for (const p of ['/admin/stats/series?by=nope', '/admin/stats/series?since=1h&bucket=1s', '/admin/requests?limit=0', '/admin/requests?before=x']) {
    assert.equal((await fetch(gw.base + p, { headers: asMaster })).status, 400, p);
  }
  // A page of keys with their spend.
  const k = await (await fetch(`${gw.base}/admin/keys`, { method: 'POST', headers: { ...asMaster, 'content-type': 'application/json' }, body: JSON.stringify({ name: 'spender', budgets: { daily: 1 } }) })).json();
  assert.equal((await chat(gw, { model: 'gpt-4o', messages: [{ role: 'user', content: 'spend a little' }] }, { key: k.key })).status, 200);
  sent.requests++;
  await waitForRows(sent.requests, gw);
  const keys = await (await fetch(`${gw.base}/admin/keys?limit=1&q=spend`, { headers: asMaster })).json();
  assert.equal(keys.data.length, 1);
  assert.equal(keys.data[0].name, 'spender');
  assert.ok(keys.data[0].spent_usd.daily > 0 && keys.data[0].spent_usd.daily === keys.data[0].spent_usd.total, JSON.stringify(keys.data[0]));
  assert.ok(!JSON.stringify(keys).includes(k.key));
  const byKey = await (await fetch(`${gw.base}/admin/stats/series?since=1h&bucket=1m&by=key`, { headers: asMaster })).json();
  assert.deepEqual([...byKey.groups].sort(), ['master', 'spender']);
  const byKeyHourly = await (await fetch(`${gw.base}/admin/stats/series?since=24h&bucket=1h&by=key`, { headers: asMaster })).json();
  const reqs = (r, g) => r.data.filter((x) => x.group === g).reduce((a, x) => a + x.requests, 0);
  for (const g of ['master', 'spender']) assert.equal(reqs(byKeyHourly, g), reqs(byKey, g), `hourly ${g}`);
  const oneKey = await (await fetch(`${gw.base}/admin/stats/series?since=24h&bucket=1h&by=none&key=spender`, { headers: asMaster })).json();
  assert.equal(reqs(oneKey, ''), 1);
  assert.equal((await fetch(`${gw.base}/admin/keys/spender`, { method: 'DELETE', headers: asMaster })).status, 200);
}

test('series, latency, recent requests and key spend add up to the simulated traffic (SQLite)', async () => {
  await checkStats(gw, sent);
});

test('the same on PostgreSQL', { skip: !PG && 'YR_TEST_PG_URL is not set (scripts/test starts PostgreSQL)' }, async () => {
  // A database of its own: the aggregates count every row in it.
  pgDb = `yr_ui_${process.pid}`;
  const mk = spawnSync('psql', [PG, '-c', `CREATE DATABASE ${pgDb}`], { encoding: 'utf8' });
  assert.equal(mk.status, 0, mk.stderr);
  const url = new URL(PG);
  url.pathname = '/' + pgDb;
  pgGw = await startGateway(gatewayConfig(url.toString()));
  await checkStats(pgGw, await traffic(pgGw));
});

test('login: a bad password, a missing or bogus cookie and a missing CSRF token are refused', async () => {
  const page = await fetch(`${gw.base}/ui`, { redirect: 'manual' });
  assert.equal(page.status, 303);
  assert.equal(page.headers.get('location'), '/ui/login');
  const bad = await login('not-the-master-key');
  assert.equal(bad.status, 401);
  assert.equal(bad.headers.get('set-cookie'), null);
  assert.equal((await login(MASTER_KEY, { origin: 'http://evil.example' })).status, 403);
  const form = await fetch(`${gw.base}/ui/login`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: `password=${MASTER_KEY}` });
  assert.equal(form.status, 400, 'a form post (forgeable cross-site) is not a login');
  assert.equal((await fetch(`${gw.base}/admin/keys`)).status, 401);
  const bogus = { cookie: 'yr_session=' + 'a'.repeat(64), 'x-csrf-token': 'b'.repeat(64) };
  assert.equal((await fetch(`${gw.base}/admin/keys`, { headers: bogus })).status, 401);
  assert.equal((await fetch(`${gw.base}/ui`, { headers: bogus, redirect: 'manual' })).status, 303);

  const ok = await login();
  assert.equal(ok.status, 200);
  const setCookie = ok.headers.get('set-cookie');
  assert.match(setCookie, /^yr_session=[0-9a-f]{64}; /);
  for (const attr of ['HttpOnly', 'SameSite=Strict', 'Path=/']) assert.ok(setCookie.includes(attr), setCookie);
  assert.ok(!setCookie.includes('Secure'), 'plain http: no Secure flag');
  const tls = await login(MASTER_KEY, { 'x-forwarded-proto': 'https' });
  assert.ok(tls.headers.get('set-cookie').includes('; Secure'), 'behind a TLS proxy the config trusts: Secure');

  const { cookie, csrf } = await session();
  const create = (headers) => fetch(`${gw.base}/admin/keys`, {
    method: 'POST', headers: { cookie, 'content-type': 'application/json', ...headers }, body: JSON.stringify({ name: 'csrf-probe' }),
  });
  assert.equal((await create({})).status, 403, 'no CSRF token');
  assert.equal((await create({ 'x-csrf-token': 'c'.repeat(64) })).status, 403, 'a wrong CSRF token');
  assert.equal((await create({ 'x-csrf-token': csrf, origin: 'http://evil.example' })).status, 403, 'another origin');
  const made = await create({ 'x-csrf-token': csrf, origin: gw.base });
  assert.equal(made.status, 201);
  assert.equal(made.headers.get('cache-control'), 'no-store');
  assert.equal((await fetch(`${gw.base}/admin/keys/csrf-probe`, { method: 'DELETE', headers: { cookie, 'x-csrf-token': csrf } })).status, 200);

  const app = await fetch(`${gw.base}/ui`, { headers: { cookie } });
  assert.equal(app.status, 200);
  const csp = app.headers.get('content-security-policy');
  assert.match(csp, /script-src 'self'/);
  assert.ok(!csp.includes('unsafe-inline'));
  assert.equal(app.headers.get('x-frame-options'), 'DENY');
  assert.equal(app.headers.get('cache-control'), 'no-store');
  const html = await app.text();
  assert.ok(!/<script>|<script [^>]*>[^<]/.test(html) && !/ on[a-z]+="/.test(html), 'no inline script');

  const out = await fetch(`${gw.base}/ui/logout`, { method: 'POST', headers: { cookie, 'x-csrf-token': csrf } });
  assert.equal(out.status, 200);
  assert.match(out.headers.get('set-cookie'), /Max-Age=0/);
  assert.equal((await fetch(`${gw.base}/admin/keys`, { headers: { cookie, 'x-csrf-token': csrf } })).status, 401, 'logged out');
});

test('in chromium: log in, charts from the traffic, create and revoke a key, no secret in any page', { skip: !existsSync(CHROMIUM) && `no ${CHROMIUM}` }, async () => {
  const { chromium } = await import('playwright-core');
  mkdirSync(ARTIFACTS, { recursive: true });
  await waitForRows(sent.requests);
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'] });
  const bodies = []; // every answer the browser got, to search for secrets
  let newSecret = null;
  try {
    const ctx = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    const page = await ctx.newPage();
    page.on('response', async (r) => {
      try { bodies.push({ url: r.url(), method: r.request().method(), text: await r.text() }); } catch { /* redirects have no body */ }
    });
    const errors = [];
    page.on('pageerror', (e) => errors.push(String(e)));
    page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });

    await page.goto(`${gw.base}/ui`);
    assert.ok(page.url().endsWith('/ui/login'), page.url());
    await page.fill('#password', 'wrong-password');
    await page.click('button[type=submit]');
    await page.waitForSelector('#error:not([hidden])');
    assert.match(await page.textContent('#error'), /Wrong master key/);
    await page.screenshot({ path: join(ARTIFACTS, 'ui-login.png') });
    await page.fill('#password', MASTER_KEY);
    await page.click('button[type=submit]');
    await page.waitForSelector('body[data-loaded=usage]');
    errors.length = 0; // the refused login logged its 401
    const cookies = await ctx.cookies();
    assert.equal(cookies.length, 1);
    assert.equal(cookies[0].httpOnly, true);
    assert.equal(cookies[0].sameSite, 'Strict');
    // The request chart has one line per model, with points.
    assert.equal(await page.locator('#chart-requests path.line').count(), 2);
    assert.ok(await page.locator('#chart-requests circle').count() >= 2);
    assert.match(await page.textContent('#usage-cards'), new RegExp(`${sent.requests}\\s*requests`));
    await page.screenshot({ path: join(ARTIFACTS, 'ui-usage.png'), fullPage: true });

    await page.click('a[data-page=latency]');
    await page.waitForSelector('body[data-loaded=latency]');
    assert.ok(await page.locator('#chart-latency path.line').count() >= 1);
    assert.match(await page.textContent('#errors-table'), /server_error\s*1/);
    await page.screenshot({ path: join(ARTIFACTS, 'ui-latency.png'), fullPage: true });

    await page.click('a[data-page=routes]');
    await page.waitForSelector('body[data-loaded=routes]');
    assert.equal(await page.locator('#routes-table tbody tr').count(), 2);
    await page.screenshot({ path: join(ARTIFACTS, 'ui-routes.png'), fullPage: true });

    await page.click('a[data-page=keys]');
    await page.waitForSelector('body[data-loaded=keys]');
    await page.fill('#new-name', 'ui-made');
    await page.fill('#new-rpm', '100');
    await page.fill('#new-monthly', '5');
    await page.click('#key-create button[type=submit]');
    await page.waitForSelector('#secret-box:not([hidden])');
    newSecret = (await page.textContent('#secret-value')).trim();
    assert.match(newSecret, /^yr-[A-Za-z0-9_-]{43}$/);
    await page.waitForSelector('tr[data-key=ui-made]');
    await page.screenshot({ path: join(ARTIFACTS, 'ui-keys.png'), fullPage: true });
    const used = await chat(gw, { model: 'gpt-4o', messages: [{ role: 'user', content: 'from the new key' }] }, { key: newSecret });
    assert.equal(used.status, 200, used.text);
    await page.click('#secret-done');
    await page.click('tr[data-key=ui-made] button[data-act=edit]');
    await page.fill('#ed-rpm', '250');
    await page.fill('#ed-daily', '2');
    await page.click('#ed-save');
    await page.waitForSelector('tr[data-key=ui-made] >> text=250 rpm');
    const edited = await (await fetch(`${gw.base}/admin/keys/ui-made`, { headers: asMaster })).json();
    assert.equal(edited.api_key.rpm, 250);
    assert.equal(edited.api_key.budgets.daily, 2);
    assert.equal(edited.api_key.budgets.monthly, 5);
    page.once('dialog', (d) => d.accept());
    await page.click('tr[data-key=ui-made] button[data-act=revoke]');
    await page.waitForSelector('tr[data-key=ui-made] .pill.bad');
    // A revoke takes effect within the auth cache's 500 ms (polled on
    // /v1/models, which the key's RPM does not count).
    const deadline = Date.now() + 3000;
    while ((await fetch(`${gw.url}/models`, { headers: { authorization: `Bearer ${newSecret}` } })).status === 200 && Date.now() < deadline) {
      await new Promise((res) => setTimeout(res, 50));
    }
    const after = await chat(gw, { model: 'gpt-4o', messages: [{ role: 'user', content: 'revoked?' }] }, { key: newSecret });
    assert.equal(after.status, 401, after.text);

    await page.click('a[data-page=requests]');
    await page.waitForSelector('body[data-loaded=requests]');
    assert.ok(await page.locator('#requests-table tr.request').count() >= sent.requests);
    await page.screenshot({ path: join(ARTIFACTS, 'ui-requests.png'), fullPage: true });
    // Every page's source too, not only the answers.
    for (const name of ['usage', 'latency', 'routes', 'keys', 'requests']) {
      await page.click(`a[data-page=${name}]`);
      await page.waitForSelector(`body[data-loaded=${name}]`);
      bodies.push({ url: `dom:${name}`, method: 'GET', text: await page.content() });
    }
    await page.click('#logout');
    await page.waitForURL(/\/ui\/login$/);
    assert.deepEqual(errors, []);
  } finally {
    await browser.close();
  }
  assert.ok(bodies.length > 10);
  for (const b of bodies) {
    assert.ok(!b.text.includes(MASTER_KEY), `master key in ${b.url}`);
    assert.ok(!b.text.includes(PROVIDER_KEY), `provider key in ${b.url}`);
    const once = b.method === 'POST' && b.url.endsWith('/admin/keys');
    if (!once) assert.ok(!b.text.includes(newSecret), `the new key's secret in ${b.url}`);
  }
  assert.equal(bodies.filter((b) => b.text.includes(newSecret)).length, 1, 'the secret is shown once');
});
