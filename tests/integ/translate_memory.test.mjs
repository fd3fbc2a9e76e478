// The JSON trees of the translations in flight on a worker stay within
// server.max_translation_memory (issue 8, defect 11): a request is charged
// its estimated tree before the tree is built; past the limit it gets 503
// with Retry-After (413 when it alone is larger), never an allocation
// failure, and the gateway's peak memory stays bounded.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { startSim, startGateway, config, chat } from './lib.mjs';

let sim, small, tiny;
const cfg = (mem) => config({
  server: { workers: 1, max_translation_memory: mem },
  providers: {
    anthropic: { kind: 'anthropic', base_url: sim.base, api_key: 'sk-ant-mem-test' },
    openai: { kind: 'openai', base_url: `${sim.base}/v1`, api_key: 'sk-mem-test' },
  },
  models: [
    { id: 'm', routes: [{ provider: 'anthropic', model: 'claude-x' }] },
    { id: 'o', routes: [{ provider: 'openai', model: 'gpt-x' }] },
  ],
});
before(async () => {
  sim = await startSim(['--no-record']);
  small = await startGateway(cfg('100MiB'));
  tiny = await startGateway(cfg('16MiB'));
});
after(async () => {
  for (const g of [small, tiny]) { await g.stop(); g.cleanup(); }
  await sim.stop();
});

// 20,000 short messages: 1.8 MB, ~100,000 JSON values, a ~35 MB estimate.
function body(model) {
  const messages = [];
  for (let i = 0; i < 20000; i++) messages.push({ role: i % 2 ? 'assistant' : 'user', content: `message number ${i} with some words in it to make it longer` });
  messages.push({ role: 'user', content: 'Reply with exactly: ok' });
  return JSON.stringify({ model, messages });
}
const hwmMB = (gw) => +readFileSync(`/proc/${gw.proc.pid}/status`, 'utf8').match(/VmHWM:\s+(\d+)/)[1] / 1024;

test('translations past the worker limit get 503 with Retry-After, the rest succeed', async (t) => {
  const b = body('m');
  const rs = await Promise.all(Array.from({ length: 8 }, () => chat(small, b)));
  const ok = rs.filter((r) => r.status === 200), busy = rs.filter((r) => r.status === 503);
  t.diagnostic(`${ok.length} answered, ${busy.length} refused; peak RSS ${hwmMB(small).toFixed(0)} MB`);
  assert.equal(ok.length + busy.length, 8, rs.map((r) => r.status).join(','));
  assert.ok(ok.length >= 2, 'at least two fit in 100 MiB');
  assert.ok(busy.length >= 1, 'eight do not');
  for (const r of ok) assert.equal(r.json.choices[0].message.content, 'ok');
  for (const r of busy) {
    assert.equal(r.headers.get('retry-after'), '1');
    assert.equal(r.json.error.code, 'server_overloaded', JSON.stringify(r.json));
    assert.match(r.json.error.message, /max_translation_memory/);
  }
  // Charges are released when requests end: the same request succeeds now.
  const again = await chat(small, b);
  assert.equal(again.status, 200);
});

test('a request larger than the limit alone is a 413; passthrough is not charged', async () => {
  const r = await chat(tiny, body('m'));
  assert.equal(r.status, 413, JSON.stringify(r.json));
  assert.match(r.json.error.message, /too large to translate.*max_translation_memory allows 16 MiB/);
  const p = await chat(tiny, body('o')); // OpenAI -> OpenAI: no tree is built
  assert.equal(p.status, 200, JSON.stringify(p.json));
});
