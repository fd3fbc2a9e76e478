// Usage rows survive what operators do to a gateway: SIGTERM under load
// (every row of every answered request is written before exit), and a
// PostgreSQL restart mid-load (503 for what needs the database while it is
// down, and no row lost once it is back). The PostgreSQL here is this
// test's own server (scripts/test-servers), so stopping it disturbs nobody.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, readdirSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startSim, startGateway, config, chat, MASTER_KEY } from './lib.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const servers = join(here, '..', '..', 'scripts', 'test-servers');
const havePg = existsSync('/usr/lib/postgresql') && readdirSync('/usr/lib/postgresql').length > 0;
const cleanups = [];
after(async () => { for (const c of cleanups.reverse()) await c(); });

const hi = (extra = {}) => ({ model: 'gpt-4o', messages: [{ role: 'user', content: 'Reply with exactly: kept' }], ...extra });

test('SIGTERM under load: every answered request has its usage row', async () => {
  const sim = await startSim();
  cleanups.push(() => sim.stop());
  const gw = await startGateway(config({
    providers: { openai: { base_url: sim.url } },
    models: [{ id: 'gpt-4o', routes: [{ provider: 'openai' }] }],
  }));
  cleanups.push(() => gw.cleanup());
  await sim.script(Array.from({ length: 60 }, () => ({ chunk_delay_ms: 20, chunks: 4 })));
  const ids = [];
  let stop = false;
  const clients = [0, 1, 2, 3].map(async () => {
    while (!stop) {
      try {
        const r = await chat(gw, hi({ stream: true }));
        if (r.status === 200) ids.push(r.headers.get('x-request-id'));
      } catch { break; } // the listener closed
    }
  });
  await sim.wait({ completed: 12 });
  stop = true;
  const exited = once(gw.proc, 'exit');
  gw.proc.kill('SIGTERM'); // in-flight streams drain, queued rows are written, then exit 0
  await Promise.all(clients);
  await exited;
  assert.equal(gw.proc.exitCode, 0, gw.stderr().slice(-1000));
  const q = spawnSync('sqlite3', [join(gw.dir, 'yourouter.db'), 'SELECT request_id FROM usage'], { encoding: 'utf8' });
  assert.equal(q.status, 0, q.stderr);
  const rows = new Set(q.stdout.trim().split('\n'));
  assert.ok(ids.length >= 12);
  for (const id of ids) assert.ok(rows.has(id), `usage row for ${id}`);
});

test('PostgreSQL restarted mid-load: 503 while it is down, no row lost after', { skip: havePg ? false : 'no PostgreSQL server binaries' }, async () => {
  const start = spawnSync(servers, ['start'], { encoding: 'utf8', env: { ...process.env, YR_NO_REDIS: '1' } });
  assert.equal(start.status, 0, start.stderr);
  const env = Object.fromEntries([...start.stdout.matchAll(/(\w+)=(\S+)/g)].map((m) => [m[1], m[2]]));
  cleanups.push(() => spawnSync(servers, ['stop', env.YR_TEST_SERVERS_DIR], { env: { ...process.env, ...env } }));
  const sim = await startSim();
  cleanups.push(() => sim.stop());
  const gw = await startGateway(config({
    providers: { openai: { base_url: sim.url } },
    models: [{ id: 'gpt-4o', routes: [{ provider: 'openai' }] }],
    storage: env.YR_TEST_PG_URL,
  }));
  cleanups.push(() => gw.cleanup());
  const mk = await fetch(`${gw.base}/admin/keys`, {
    method: 'POST', headers: { authorization: `Bearer ${MASTER_KEY}`, 'content-type': 'application/json' },
    body: JSON.stringify({ name: 'durable' }),
  });
  const key = (await mk.json()).key;
  const ok = [];
  const send = async (k) => {
    const r = await chat(gw, hi(), { key: k });
    if (r.status === 200) ok.push(r.headers.get('x-request-id'));
    return r.status;
  };
  for (let i = 0; i < 5; i++) assert.equal(await send(key), 200);

  assert.equal(spawnSync(servers, ['pg-stop', env.YR_TEST_SERVERS_DIR], { env: { ...process.env, ...env } }).status, 0);
  // the master key needs no database: still answered, its rows wait in the queue
  for (let i = 0; i < 5; i++) assert.equal(await send(MASTER_KEY), 200);
  // a client key's lookup needs it (once its 500 ms cache entry is gone): 503, never 401
  let status = 200;
  const t0 = Date.now();
  while (status === 200 && Date.now() - t0 < 3000) status = await send(key);
  assert.equal(status, 503);

  assert.equal(spawnSync(servers, ['pg-start', env.YR_TEST_SERVERS_DIR], { env: { ...process.env, ...env } }).status, 0);
  status = 503;
  while (status !== 200 && Date.now() - t0 < 15000) status = await send(key);
  assert.equal(status, 200, 'the key works again once the database is back');
  assert.equal(await gw.stop(), 0); // flushes every queued row
  const q = spawnSync('psql', [env.YR_TEST_PG_URL, '-At', '-c', 'SELECT request_id FROM usage'], { encoding: 'utf8' });
  assert.equal(q.status, 0, q.stderr);
  const rows = new Set(q.stdout.trim().split('\n'));
  for (const id of ok) assert.ok(rows.has(id), `usage row for ${id}`);
  assert.ok(ok.length >= 11);
});
