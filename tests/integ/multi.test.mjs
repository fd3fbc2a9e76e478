// Two gateway instances sharing one PostgreSQL database (a real server:
// scripts/test starts it and sets YR_TEST_PG_URL): a key created on one
// works on the other, a revoke on one is honoured by both within a second,
// and both write their usage rows to the shared database.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { startSim, startGateway, config, chat, MASTER_KEY } from './lib.mjs';

const PG = process.env.YR_TEST_PG_URL;
const skip = PG ? false : 'YR_TEST_PG_URL is not set (scripts/test starts PostgreSQL)';
const suffix = `${process.pid}-${Date.now()}`;
let sim, a, b;

before(async () => {
  if (skip) return;
  sim = await startSim();
  const yaml = config({
    providers: { openai: { base_url: sim.url } },
    models: [{ id: 'gpt-4o', routes: [{ provider: 'openai' }] }],
    storage: PG,
  });
  a = await startGateway(yaml);
  b = await startGateway(yaml);
});

after(async () => {
  if (skip) return;
  await a.stop(); await b.stop(); await sim.stop(); a.cleanup(); b.cleanup();
});

const hi = { model: 'gpt-4o', messages: [{ role: 'user', content: 'Reply with exactly: shared' }] };
const admin = async (gw, method, path, body) => {
  const r = await fetch(`${gw.base}${path}`, {
    method, headers: { authorization: `Bearer ${MASTER_KEY}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: r.status, json: await r.json() };
};
const psql = (sql) => {
  const q = spawnSync('psql', [PG, '-At', '-c', sql], { encoding: 'utf8' });
  assert.equal(q.status, 0, q.stderr);
  return q.stdout.trim();
};

test('a key created on one instance works on the other; a revoke holds on both within a second', { skip }, async () => {
  const c = await admin(a, 'POST', '/admin/keys', { name: `shared-${suffix}` });
  assert.equal(c.status, 201);
  const key = c.json.key;
  const ra = await chat(a, hi, { key });
  const rb = await chat(b, hi, { key });
  assert.equal(ra.status, 200);
  assert.equal(rb.status, 200);
  assert.equal((await admin(b, 'GET', `/admin/keys/shared-${suffix}`)).json.api_key.name, `shared-${suffix}`);

  assert.equal((await admin(b, 'DELETE', `/admin/keys/shared-${suffix}`)).status, 200);
  const t0 = Date.now();
  let sa = 200, sb = 200;
  while ((sa !== 401 || sb !== 401) && Date.now() - t0 < 2000) {
    sa = (await chat(a, hi, { key })).status;
    sb = (await chat(b, hi, { key })).status;
  }
  assert.equal(sa, 401);
  assert.equal(sb, 401);
  assert.ok(Date.now() - t0 < 1000, `revoked everywhere after ${Date.now() - t0} ms`);

  // both instances wrote their usage rows to the shared database
  for (const id of [ra.headers.get('x-request-id'), rb.headers.get('x-request-id')]) {
    let n = '0';
    for (let i = 0; i < 200 && n === '0'; i++) {
      n = psql(`SELECT count(*) FROM usage WHERE request_id = '${id}'`);
      if (n === '0') await new Promise((r) => setTimeout(r, 10)); // the writer is off the request path
    }
    assert.equal(n, '1', `usage row for ${id}`);
  }
});

test('the CLI on PostgreSQL: create with limits, show, usage', { skip }, async () => {
  const cr = a.cli(['keys', 'create', '--name', `cli-${suffix}`, '--rpm', '5']);
  assert.equal(cr.status, 0, cr.stderr);
  const sh = b.cli(['keys', 'show', `cli-${suffix}`]);
  assert.equal(sh.status, 0, sh.stderr);
  assert.equal(JSON.parse(sh.stdout).rpm, 5);
  const u = a.cli(['usage', '--by', 'model', '--since', '1h', '--json']);
  assert.equal(u.status, 0, u.stderr);
  assert.ok(u.stdout.split('\n').some((l) => l.includes('"group":"gpt-4o"')));
});

test('a stored response made on one instance is read and continued on the other', { skip }, async () => {
  const post = async (gw, body) => {
    const r = await fetch(`${gw.url}/responses`, { method: 'POST', headers: { authorization: `Bearer ${MASTER_KEY}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });
    return { status: r.status, json: await r.json() };
  };
  const first = await post(a, { model: 'gpt-4o', input: 'Reply with exactly: on a' });
  assert.equal(first.status, 200, JSON.stringify(first.json));
  let got;
  for (let i = 0; i < 200; i++) { // written off the request path
    got = await fetch(`${b.url}/responses/${first.json.id}`, { headers: { authorization: `Bearer ${MASTER_KEY}` } });
    if (got.status === 200) break;
    await new Promise((r) => setTimeout(r, 10));
  }
  assert.equal(got.status, 200);
  assert.equal((await got.json()).id, first.json.id);
  const second = await post(b, { model: 'gpt-4o', previous_response_id: first.json.id, input: 'Reply with exactly: on b' });
  assert.equal(second.status, 200, JSON.stringify(second.json));
  assert.ok(JSON.stringify((await sim.requests()).at(-1).body).includes('on a'), 'the first turn is sent again');
});
