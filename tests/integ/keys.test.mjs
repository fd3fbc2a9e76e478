// Client keys: created once on stdout, stored hashed, revocation takes effect
// within a second on a running gateway.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { startSim, startGateway, config, chat } from './lib.mjs';

let sim, gw;
before(async () => {
  sim = await startSim();
  gw = await startGateway(config({
    providers: { openai: { base_url: sim.url } },
    models: [{ id: 'gpt-4o', routes: [{ provider: 'openai' }] }],
  }));
});
after(async () => { await gw.stop(); await sim.stop(); gw.cleanup(); });

const body = { model: 'gpt-4o', messages: [{ role: 'user', content: 'hi' }] };

test('keys create prints a key that works at once; keys list never shows it', async () => {
  const c = gw.cli(['keys', 'create', '--name', 'ci-bot']);
  assert.equal(c.status, 0, c.stderr);
  const key = c.stdout.trim();
  assert.match(key, /^yr-[A-Za-z0-9_-]{43}$/);
  assert.equal((await chat(gw, body, { key })).status, 200);
  const l = gw.cli(['keys', 'list']);
  assert.equal(l.status, 0);
  assert.match(l.stdout, /ci-bot/);
  assert.ok(!l.stdout.includes(key));
  const files = readdirSync(gw.dir).filter((f) => f.startsWith('yourouter.db'));
  for (const f of files) assert.ok(!readFileSync(join(gw.dir, f)).includes(key), `${f} does not hold the key`);
  // The key is not forwarded upstream either.
  assert.ok(!JSON.stringify(await sim.requests()).includes(key));
});

test('a revoked key stops working within a second on the running gateway', async () => {
  const key = gw.cli(['keys', 'create', '--name', 'short-lived']).stdout.trim();
  assert.equal((await chat(gw, body, { key })).status, 200);
  const r = gw.cli(['keys', 'revoke', 'short-lived']);
  assert.equal(r.status, 0, r.stderr);
  const revokedAt = Date.now();
  // Every worker may hold the key in its cache for up to 500 ms: poll until
  // each request is refused, and require that within one second.
  let ok = 0;
  while (Date.now() - revokedAt < 1000) {
    const statuses = await Promise.all([1, 2, 3, 4].map(() => chat(gw, body, { key }).then((x) => x.status)));
    if (statuses.every((s) => s === 401)) { ok++; if (ok >= 3) break; } else ok = 0;
  }
  assert.ok(ok >= 3, 'refused consistently within one second');
  assert.match(gw.cli(['keys', 'list']).stdout, /short-lived.*revoked/);
});

test('revoking an unknown key fails with exit code 1', () => {
  const r = gw.cli(['keys', 'revoke', 'nobody']);
  assert.equal(r.status, 1);
});

test('duplicate active names are refused', () => {
  gw.cli(['keys', 'create', '--name', 'dup']);
  const r = gw.cli(['keys', 'create', '--name', 'dup']);
  assert.notEqual(r.status, 0);
  assert.equal(r.stdout, '');
});
