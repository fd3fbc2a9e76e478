// Headroom-aware routing, benchmark style: two keys of one provider, the
// provider announcing how many requests each key has left in its window.
// With headroom on, traffic moves to the second key before the first is
// rate limited; with it off (plain priority) the first key's 429 is what
// moves it. Same load, same simulator; the upstream 429 counts are compared.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startSim, startGateway, chat } from './lib.mjs';

let sim, gw;
const LIMIT = 5, WINDOW_MS = 400, REQUESTS = 40, CONCURRENCY = 2;

before(async () => {
  sim = await startSim(['--rate-limit', `${LIMIT}/${WINDOW_MS}`]);
  const model = (id, headroom, keys) => `  - id: ${id}
    headroom: ${headroom}
    routes:
      - {provider: p, model: ${id}-up, api_key: ${keys[0]}}
      - {provider: p, model: ${id}-up, api_key: ${keys[1]}}
`;
  gw = await startGateway(`server:
  listen: 127.0.0.1:0
  master_key: \${YOUROUTER_MASTER_KEY}
  workers: 1
providers:
  p: {kind: openai, base_url: '${sim.url}'}
models:
${model('with', true, ['k-1', 'k-2'])}${model('without', false, ['k-3', 'k-4'])}`);
});

after(async () => { assert.equal(await gw.stop(), 0); await sim.stop(); gw.cleanup(); });

async function load(model) {
  const before = (await sim.stats()).rate_limited;
  const statuses = [];
  let next = 0;
  const t0 = Date.now();
  await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
    while (next < REQUESTS) {
      next++;
      const r = await chat(gw, { model, messages: [{ role: 'user', content: 'hi' }] });
      statuses.push(r.status);
    }
  }));
  return { upstream429: (await sim.stats()).rate_limited - before, statuses, ms: Date.now() - t0 };
}

test('headroom: fewer upstream 429s than plain priority under the same load', async () => {
  const off = await load('without');
  const on = await load('with');
  console.log(`# headroom scenario: ${REQUESTS} requests, 2 keys x ${LIMIT} per ${WINDOW_MS} ms: ` +
    `upstream 429s priority=${off.upstream429} headroom=${on.upstream429} ` +
    `(${off.ms} ms / ${on.ms} ms)`);
  assert.ok(off.statuses.every((s) => s === 200), `priority: ${off.statuses}`);
  assert.ok(on.statuses.every((s) => s === 200), `headroom: ${on.statuses}`);
  assert.ok(off.upstream429 > 0, 'the load does exhaust the keys');
  assert.ok(on.upstream429 < off.upstream429, `${on.upstream429} < ${off.upstream429}`);
});
