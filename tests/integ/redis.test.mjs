// Limits shared by two gateway instances through a real Redis (started by
// this test on a free loopback port, so it can kill and restart it): RPM and
// budgets hold across instances; while Redis is away requests go on,
// counted per instance (fail open), and sharing resumes when it is back.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import net from 'node:net';
import { join } from 'node:path';
import { startSim, startGateway, config, chat, tmpDir, MASTER_KEY } from './lib.mjs';

const haveRedis = spawnSync('redis-server', ['--version']).status === 0;
const skip = haveRedis ? false : 'redis-server is not installed (scripts/test installs it)';
let sim, a, b, redis, port, dir;

function freePort() {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => { const p = s.address().port; s.close(() => resolve(p)); });
  });
}

async function startRedis() {
  redis = spawn('redis-server', ['--bind', '127.0.0.1', '--port', String(port), '--save', '', '--appendonly', 'no'],
    { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  await new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`redis did not start: ${out}`)), 10000);
    redis.stdout.on('data', (d) => { out += d; if (/Ready to accept connections/.test(out)) { clearTimeout(t); resolve(); } });
  });
}

async function stopRedis() {
  if (redis && redis.exitCode === null) { redis.kill('SIGKILL'); await once(redis, 'exit'); }
}

// Resolves once re has matched count lines of the gateway's log (each
// worker has its own Redis connection and logs its own outage and return).
function waitLog(gw, re, what, ms = 10000, count = 1) {
  const g = new RegExp(re.source, 'g');
  return new Promise((resolve, reject) => {
    const check = () => { if ((gw.stderr().match(g) || []).length >= count) { done(); resolve(); } };
    const t = setTimeout(() => { done(); reject(new Error(`no ${what} in the log`)); }, ms);
    const done = () => { clearTimeout(t); gw.proc.stderr.off('data', check); };
    gw.proc.stderr.on('data', check);
    check();
  });
}

before(async () => {
  if (skip) return;
  port = await freePort();
  await startRedis();
  sim = await startSim();
  dir = tmpDir();
  const yaml = config({
    providers: { openai: { base_url: sim.url } },
    models: [{ id: 'gpt-4o', routes: [{ provider: 'openai' }] }],
    storage: `sqlite://${join(dir, 'shared.db')}`, // both instances: one key store
  }).replace(/(storage:\n  url: [^\n]+\n)/, `$1  redis_url: redis://127.0.0.1:${port}\n`);
  a = await startGateway(yaml);
  b = await startGateway(yaml);
});

after(async () => {
  if (skip) return;
  await a.stop(); await b.stop(); await sim.stop(); await stopRedis(); a.cleanup(); b.cleanup();
});

const hi = { model: 'gpt-4o', messages: [{ role: 'user', content: 'hi' }] };
const newKey = async (gw, body) => {
  const r = await fetch(`${gw.base}/admin/keys`, {
    method: 'POST', headers: { authorization: `Bearer ${MASTER_KEY}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  assert.equal(r.status, 201);
  return (await r.json()).key;
};

test('RPM holds across two instances', { skip }, async () => {
  const key = await newKey(a, { name: 'rpm-shared', rpm: 4 });
  const statuses = [];
  for (let i = 0; i < 3; i++) statuses.push((await chat(a, hi, { key })).status, (await chat(b, hi, { key })).status);
  assert.equal(statuses.filter((s) => s === 200).length, 4, statuses.join(','));
  assert.equal(statuses.filter((s) => s === 429).length, 2);
});

test('a budget holds across two instances under concurrency', { skip }, async () => {
  const key = await newKey(b, { name: 'budget-shared', budgets: { total: 0.0105 } });
  // each request really costs what the gateway reserves for it: its prompt
  // estimate (body bytes / 4) and all of max_tokens
  const body = { ...hi, max_tokens: 100 };
  const usage = { prompt_tokens: Math.floor(Buffer.byteLength(JSON.stringify(body)) / 4), completion_tokens: 100 };
  await sim.script(Array.from({ length: 40 }, () => ({ headers_delay_ms: 150, usage })));
  const rs = await Promise.all(Array.from({ length: 40 }, (_, i) => chat(i % 2 ? a : b, body, { key })));
  const ok = rs.filter((r) => r.status === 200).length;
  console.log(`# budget across 2 instances: ${ok} of 40 admitted`);
  assert.ok(ok >= 5 && ok <= 11, `${ok} admitted`);
  assert.ok(rs.every((r) => r.status === 200 || r.status === 429));
});

test('Redis killed mid-load: requests go on (per instance), then sharing resumes', { skip }, async () => {
  const key = await newKey(a, { name: 'outage', rpm: 1000 });
  const load = Promise.all(Array.from({ length: 30 }, (_, i) => chat(i % 2 ? a : b, hi, { key })));
  await stopRedis();
  const rs = await load;
  assert.ok(rs.every((r) => r.status === 200), rs.map((r) => r.status).join(','));
  await waitLog(a, /redis 127\.0\.0\.1:\d+ unavailable/, 'the outage');
  // during the outage each instance counts alone: still served
  assert.equal((await chat(a, hi, { key })).status, 200);
  assert.equal((await chat(b, hi, { key })).status, 200);
  await startRedis();
  // every worker of both instances (2 each) is back: one still counting
  // alone would admit the third request below
  await waitLog(a, /redis 127\.0\.0\.1:\d+ is back/, 'the recovery of both workers', 10000, 2);
  await waitLog(b, /redis 127\.0\.0\.1:\d+ is back/, 'the recovery of both workers', 10000, 2);
  const k2 = await newKey(a, { name: 'after', rpm: 2 });
  const st = [(await chat(a, hi, { key: k2 })).status, (await chat(b, hi, { key: k2 })).status,
    (await chat(a, hi, { key: k2 })).status];
  assert.deepEqual(st, [200, 200, 429], 'shared again');
  assert.equal(a.proc.exitCode, null, 'no crash');
  assert.equal(b.proc.exitCode, null, 'no crash');
});
