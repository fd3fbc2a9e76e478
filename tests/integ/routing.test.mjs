// Resilient routing across requests: what a client sees, how many upstream
// attempts each route got, and within which time, when providers misbehave.
import { test, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync, renameSync } from 'node:fs';
import http from 'node:http';
import { startSim, startGateway, chat, sseData, MASTER_KEY } from './lib.mjs';

let a, b, gw, yaml;

before(async () => {
  a = await startSim();
  b = await startSim();
  yaml = `server:
  listen: 127.0.0.1:0
  master_key: \${YOUROUTER_MASTER_KEY}
  workers: 2
storage:
  url: sqlite://yourouter.db
providers:
  a: {kind: openai, base_url: '${a.url}', api_key: key-a}
  b: {kind: openai, base_url: '${b.url}', api_key: key-b}
  down: {kind: openai, base_url: 'http://127.0.0.1:1/v1', connect_timeout_ms: 500}
models:
  - id: m
    routes: [{provider: a, model: up-a, first_byte_timeout_ms: 300}, {provider: b, model: up-b}]
  - id: retrying
    retries: 1
    routes: [{provider: a, model: r-a}, {provider: b, model: r-b}]
  - id: ejecting
    failure_threshold: 2
    cooldown_ms: 60000
    routes: [{provider: a, model: e-a}, {provider: b, model: e-b}]
  - id: connect
    routes: [{provider: down, model: c-down}, {provider: b, model: c-b}]
  - id: only429
    retry_on: [429]
    routes: [{provider: a, model: o-a}, {provider: b, model: o-b}]
  - id: capped
    max_wait_ms: 150
    routes: [{provider: a, model: cap-a, max_concurrency: 1}]
  - id: probing
    failure_threshold: 2
    cooldown_ms: 300
    routes: [{provider: a, model: p-a}, {provider: b, model: p-b}, {provider: b, model: p-b2}]
  - id: onebad
    routes: [{provider: a, model: ob-a}, {provider: b, model: ob-b}]
  - id: amp
    retries: 2
    routes: [{provider: a, model: amp-a}, {provider: b, model: amp-b}]
`;
  gw = await startGateway(yaml);
});

after(async () => {
  assert.equal(await gw.stop(), 0);
  await a.stop();
  await b.stop();
  gw.cleanup();
});

beforeEach(async () => { await a.reset(); await b.reset(); await gw.resetRoutes(); });

// A request on a connection of its own: the kernel spreads new connections
// over the workers (SO_REUSEPORT), so a run of these reaches both.
function chatFresh(body) {
  return new Promise((resolve, reject) => {
    const data = JSON.stringify(body);
    const req = http.request({ host: '127.0.0.1', port: gw.port, path: '/v1/chat/completions', method: 'POST', agent: false,
      headers: { 'content-type': 'application/json', authorization: `Bearer ${MASTER_KEY}`, 'content-length': Buffer.byteLength(data) } },
    (res) => { let t = ''; res.on('data', (d) => { t += d; }); res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, text: t })); });
    req.on('error', reject);
    req.end(data);
  });
}

const ask = (model, extra = {}) => ({ model, messages: [{ role: 'user', content: 'Reply with exactly: ok' }], ...extra });

test('a 429 with retry-after moves to the next route, and no request calls it again before its time', async () => {
  await a.script([{ status: 429, retry_after: 30 }]);
  let r = await chat(gw, ask('m'));
  assert.equal(r.status, 200, r.text);
  assert.equal(r.headers.get('x-yourouter-provider'), 'b');
  assert.equal(r.headers.get('x-yourouter-attempts'), 'a/up-a=rate_limited:429, b/up-b=ok:200');
  for (let i = 0; i < 12; i++) {
    const f = await chatFresh(ask('m'));
    assert.equal(f.status, 200);
    assert.equal(f.headers['x-yourouter-attempts'], 'b/up-b=ok:200');
  }
  assert.equal((await a.requests()).length, 1, 'the cooling route was not called again, on any worker');
  assert.equal((await b.requests()).length, 13);
  const [h] = (await gw.routes()).filter((x) => x.upstream_model === 'up-a');
  assert.ok(h.available_in_ms > 25000, JSON.stringify(h));
});

test('quota exhaustion is not retried on that route and cools it for a long time', async () => {
  await a.script([{ status: 429, error_code: 'insufficient_quota', error_type: 'insufficient_quota',
    error_message: 'You exceeded your current quota' }]);
  let r = await chat(gw, ask('retrying'));
  assert.equal(r.status, 200, r.text);
  assert.equal(r.headers.get('x-yourouter-attempts'), 'a/r-a=quota_exhausted:429, b/r-b=ok:200');
  r = await chat(gw, ask('retrying'));
  assert.equal(r.headers.get('x-yourouter-attempts'), 'b/r-b=ok:200');
  assert.equal((await a.requests()).length, 1);
  const [h] = (await gw.routes()).filter((x) => x.upstream_model === 'r-a');
  assert.ok(h.available_in_ms > 500000, JSON.stringify(h));
});

test('a 400 is exactly one attempt, even with retries configured', async () => {
  await a.script([{ status: 400, error_message: 'bad temperature' }]);
  const r = await chat(gw, ask('retrying'));
  assert.equal(r.status, 400);
  assert.match(r.json.error.message, /bad temperature/);
  assert.equal((await a.requests()).length, 1);
  assert.equal((await b.requests()).length, 0);
});

test('every route failing: one 5xx that lists every attempt, each route retried once', async () => {
  await a.script([{ status: 500 }, { status: 500 }]);
  await b.script([{ status: 503 }, { status: 502 }]);
  const t0 = Date.now();
  const r = await chat(gw, ask('retrying'));
  assert.equal(r.status, 502, r.text);
  const attempts = r.headers.get('x-yourouter-attempts').split(', ');
  assert.equal(attempts.length, 4, attempts.join(' | '));
  assert.deepEqual(attempts.map((x) => x.split('=')[0]).sort(), ['a/r-a', 'a/r-a', 'b/r-b', 'b/r-b']);
  assert.equal((await a.requests()).length, 2);
  assert.equal((await b.requests()).length, 2);
  assert.ok(Date.now() - t0 < 2000, 'backoff between tries is short (full jitter, 100 ms base)');
});

test('retry_on is the model\'s: a 500 is not failed over when only 429 is listed', async () => {
  await a.script([{ status: 500 }]);
  let r = await chat(gw, ask('only429'));
  assert.equal(r.status, 502);
  assert.equal((await b.requests()).length, 0);
  await a.script([{ status: 429 }]);
  r = await chat(gw, ask('only429'));
  assert.equal(r.status, 200);
  assert.equal(r.headers.get('x-yourouter-provider'), 'b');
});

test('connection refused fails over within the connect timeout', async () => {
  const t0 = Date.now();
  const r = await chat(gw, ask('connect'));
  assert.equal(r.status, 200, r.text);
  assert.equal(r.headers.get('x-yourouter-attempts'), 'down/c-down=connect_error:0, b/c-b=ok:200');
  assert.ok(Date.now() - t0 < 1500);
});

test('no head before the route\'s first-byte timeout: the next route, and one clean stream', async () => {
  await a.script([{ headers_delay_ms: 5000 }]);
  const t0 = Date.now();
  const r = await chat(gw, ask('m', { stream: true }));
  const took = Date.now() - t0;
  assert.equal(r.status, 200);
  const data = sseData(r.text);
  assert.equal(data.at(-1), '[DONE]');
  assert.equal(data.filter((d) => d !== '[DONE]').map((d) => JSON.parse(d).choices[0]?.delta?.content ?? '').join(''), 'ok');
  assert.equal(r.headers.get('x-yourouter-attempts'), 'a/up-a=timeout:0, b/up-b=ok:200');
  assert.ok(took >= 290 && took < 2000, `failover at the timeout, took ${took} ms`);
});

test('repeated failures eject a route for every request; the admin view shows it', async () => {
  await a.script([{ status: 500 }, { status: 500 }]);
  for (let i = 0; i < 2; i++) assert.equal((await chat(gw, ask('ejecting'))).status, 200);
  let [h] = (await gw.routes()).filter((x) => x.upstream_model === 'e-a');
  assert.equal(h.circuit, 'open');
  assert.equal(h.ejections, 1);
  for (let i = 0; i < 4; i++) {
    const r = await chat(gw, ask('ejecting'));
    assert.equal(r.headers.get('x-yourouter-attempts'), 'b/e-b=ok:200');
  }
  assert.equal((await a.requests()).length, 2, 'an ejected route gets no traffic');
  await gw.resetRoutes();
  [h] = (await gw.routes()).filter((x) => x.upstream_model === 'e-a');
  assert.equal(h.circuit, 'closed');
});

test('a route at its concurrency cap queues briefly, then 429 with Retry-After', async () => {
  await a.script([{ headers_delay_ms: 250 }]); // scripts apply to the first request only
  const first = chat(gw, ask('capped'));
  await a.wait({ requests: 1 });
  const t0 = Date.now();
  const second = await chat(gw, ask('capped'));
  const waited = Date.now() - t0;
  // the first holds the only slot for 250 ms; the second waits 150 ms at most
  assert.equal(second.status, 429, second.text);
  assert.equal(second.json.error.code, 'routes_unavailable');
  assert.equal(second.headers.get('retry-after'), '1');
  assert.ok(waited >= 140 && waited < 1000, `waited ${waited} ms`);
  assert.equal((await first).status, 200);
  // once it is free the next one goes through at once
  assert.equal((await chat(gw, ask('capped'))).status, 200);
});

test('the admin view needs the master key', async () => {
  const r = await fetch(`${gw.base}/admin/routes`, { headers: { authorization: 'Bearer sk-not-a-key' } });
  assert.equal(r.status, 401);
});

// Resolves when the gateway's log has the line (events, not a sleep: the
// timer only fires when the line never comes).
function waitStderr(pred, what, timeoutMs = 10000) {
  return new Promise((resolve, reject) => {
    const check = () => { if (pred(gw.stderr())) { done(); resolve(); } };
    const timer = setTimeout(() => { done(); reject(new Error(`timed out waiting for ${what}`)); }, timeoutMs);
    const done = () => { clearTimeout(timer); gw.proc.stderr.off('data', check); };
    gw.proc.stderr.on('data', check);
    check();
  });
}

test('route health survives a config reload that keeps the route', async () => {
  await a.script([{ status: 429, retry_after: 40 }]);
  assert.equal((await chat(gw, ask('m'))).status, 200);
  writeFileSync(`${gw.cfgPath}.tmp`, `${yaml}  - id: added\n    routes: [{provider: b}]\n`);
  renameSync(`${gw.cfgPath}.tmp`, gw.cfgPath);
  gw.proc.kill('SIGHUP');
  await waitStderr((s) => s.includes('config generation 2 in effect'), 'the reload');
  const [h] = (await gw.routes()).filter((x) => x.upstream_model === 'up-a');
  assert.ok(h.available_in_ms > 30000, JSON.stringify(h));
  const r = await chat(gw, ask('m'));
  assert.equal(r.headers.get('x-yourouter-attempts'), 'b/up-b=ok:200');
  assert.equal((await a.requests()).length, 1);
});

test('one route of three failing: ejected after the threshold, no traffic while cooling, probed and re-admitted', async () => {
  await a.script([{ status: 502 }, { status: 503 }]);
  for (let i = 0; i < 2; i++) assert.equal((await chat(gw, ask('probing'))).status, 200);
  let [h] = (await gw.routes()).filter((x) => x.upstream_model === 'p-a');
  assert.equal(h.circuit, 'open');
  for (let i = 0; i < 5; i++) {
    const r = await chat(gw, ask('probing'));
    assert.equal(r.status, 200);
    assert.ok(!r.headers.get('x-yourouter-attempts').includes('p-a'), 'no traffic during the cool-down');
  }
  assert.equal((await a.requests()).length, 2);
  // the cool-down is a time: wait for the route layer to call it over
  const t0 = Date.now();
  while (Date.now() - t0 < 3000) {
    [h] = (await gw.routes()).filter((x) => x.upstream_model === 'p-a');
    if (h.circuit === 'half_open') break;
    await new Promise((r) => setTimeout(r, 25));
  }
  assert.equal(h.circuit, 'half_open');
  const probe = await chat(gw, ask('probing'));
  assert.equal(probe.headers.get('x-yourouter-attempts'), 'a/p-a=ok:200', 'the probe goes to the recovered route');
  [h] = (await gw.routes()).filter((x) => x.upstream_model === 'p-a');
  assert.equal(h.circuit, 'closed');
  assert.equal((await chat(gw, ask('probing'))).headers.get('x-yourouter-provider'), 'a', 're-admitted');
});

test('a 100 % failing route under load: upstream attempts per client request <= 1.2', async (t) => {
  const N = 120;
  await a.script(Array.from({ length: N }, () => ({ status: 500 })));
  let next = 0;
  const statuses = [];
  await Promise.all([0, 1, 2, 3].map(async () => {
    while (next < N) { next++; statuses.push((await chat(gw, ask('onebad'))).status); }
  }));
  const upstream = (await a.stats()).requests + (await b.stats()).requests;
  const amp = upstream / N;
  t.diagnostic(`one failing route of two: ${upstream} upstream attempts for ${N} requests = ${amp.toFixed(2)}x`);
  console.log(`# amplification with one dead route of two: ${amp.toFixed(3)}x (${(await a.stats()).requests} to the dead one)`);
  assert.ok(statuses.every((s) => s === 200), 'every client request served');
  assert.ok(amp <= 1.2, `${amp}`);
});

// Last: it spends the process's retry budget.
test('retry amplification is bounded when every route fails', async (t) => {
  const N = 100;
  const body = { ...ask('amp'), x_sim: { status: 500 } }; // every attempt fails
  const statuses = [];
  for (let i = 0; i < N; i += 4)
    statuses.push(...await Promise.all([0, 1, 2, 3].map(async () => (await chat(gw, body)).status)));
  const upstream = (await a.stats()).requests + (await b.stats()).requests;
  const amp = upstream / N;
  t.diagnostic(`retry amplification: ${upstream} upstream attempts for ${N} failing requests = ${amp.toFixed(2)}x ` +
    `(without budget and circuits: ${N * 6})`);
  console.log(`# retry amplification ${amp.toFixed(2)}x (${upstream}/${N})`);
  assert.ok(statuses.every((s) => s === 502), statuses.join(','));
  // retries <= 20 % of requests + a floor of 10 (the window also holds this
  // file's earlier requests, which only lowers what is left)
  assert.ok(upstream <= N * 1.2 + 10 + 4, `${upstream} attempts`);
});
