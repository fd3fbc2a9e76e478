// What a bad upstream cannot do through the gateway (issue 8, upstream
// side): leak the gateway's keys in its error text, forge log lines, hold
// a client forever with silence, hide an in-band error.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startSim, startGateway, config, chat, sseData, MASTER_KEY } from './lib.mjs';

const PROV_KEY = 'sk-prov-SECRET-' + 'p'.repeat(20);
let sim, gw;
before(async () => {
  sim = await startSim(['--require-key', PROV_KEY]);
  gw = await startGateway(config({
    providers: { openai: { base_url: sim.url, api_key: PROV_KEY } },
    models: [{ id: 'gpt-4o', routes: [{ provider: 'openai' }] }],
  }));
});
after(async () => { await gw.stop(); await sim.stop(); gw.cleanup(); });

const msgs = [{ role: 'user', content: 'hi' }];

test('upstream error text that echoes a configured key is redacted (body and log)', async () => {
  await gw.resetRoutes();
  const echo = `key ${PROV_KEY} and ${MASTER_KEY} refused\r\n2026-01-01T00:00:00.000Z error forged\x1b[2J`;
  await sim.script([{ status: 400, error_message: echo, error_param: PROV_KEY, error_code: MASTER_KEY }]);
  const r = await chat(gw, { model: 'gpt-4o', messages: msgs });
  assert.equal(r.status, 400, r.text);
  assert.ok(!r.text.includes(PROV_KEY) && !r.text.includes(MASTER_KEY), r.text);
  assert.match(r.json.error.message, /key \[redacted\] and \[redacted\] refused/);
  assert.equal(r.json.error.param, '[redacted]');
  assert.equal(r.json.error.code, '[redacted]');
  const log = gw.stderr();
  assert.ok(!log.includes(PROV_KEY) && !log.includes(MASTER_KEY));
  assert.ok(!/\n2026-01-01T00:00:00.000Z error forged/.test(log), 'no forged log line');
  assert.ok(log.includes('\\r\\n2026-01-01T00:00:00.000Z error forged\\x1b[2J'), 'escaped in place');
});

test('a mid-stream error event that echoes the key is redacted', async () => {
  await gw.resetRoutes();
  await sim.script([{ status: 500, error_message: `boom ${PROV_KEY}` }]);
  const r = await chat(gw, { model: 'gpt-4o', messages: msgs, stream: true });
  assert.equal(r.status, 502, r.text);
  assert.ok(!r.text.includes(PROV_KEY), r.text);
  assert.match(r.text, /boom \[redacted\]/);
});
