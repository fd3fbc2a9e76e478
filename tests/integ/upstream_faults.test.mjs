// What a bad upstream cannot do through the gateway (issue 8, upstream
// side): leak the gateway's keys in its error text, forge log lines, hold
// a client forever with silence, hide an in-band error.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { once } from 'node:events';
import { startSim, startGateway, config, chat, sseData, MASTER_KEY } from './lib.mjs';

const PROV_KEY = 'sk-prov-SECRET-' + 'p'.repeat(20);
const ANTH_KEY = 'sk-ant-SECRET-' + 'a'.repeat(20);
const IDLE_MS = 400;
let sim, anth, gw;
before(async () => {
  sim = await startSim(['--require-key', PROV_KEY]);
  anth = await startSim(['--require-key', ANTH_KEY]);
  gw = await startGateway(config({
    providers: {
      openai: { base_url: sim.url, api_key: PROV_KEY, idle_timeout_ms: IDLE_MS },
      backup: { base_url: sim.url, api_key: PROV_KEY, idle_timeout_ms: IDLE_MS },
      dead: { base_url: 'http://127.0.0.1:1/v1', api_key: PROV_KEY },
      anthropic: { kind: 'anthropic', base_url: anth.base, api_key: ANTH_KEY, idle_timeout_ms: IDLE_MS },
    },
    models: [
      { id: 'gpt-4o', routes: [{ provider: 'openai' }] },
      { id: 'gpt-then-dead', routes: [{ provider: 'openai', model: 'gpt-4o' }, { provider: 'dead', model: 'gpt-4o' }] },
      { id: 'gpt-twice', routes: [{ provider: 'openai', model: 'gpt-4o' }, { provider: 'backup', model: 'gpt-4o' }] },
      { id: 'claude', routes: [{ provider: 'anthropic', model: 'claude-sonnet-4-20250514' }] },
      { id: 'claude-then-gpt', routes: [{ provider: 'anthropic', model: 'claude-sonnet-4-20250514' }, { provider: 'openai', model: 'gpt-4o' }] },
    ],
  }));
});
after(async () => { await gw.stop(); await sim.stop(); await anth.stop(); gw.cleanup(); });

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

// Issue 8 #10: an upstream that sends its head (and an opening event) and
// then nothing is a timeout after idle_timeout_ms, not after timeout_ms.
test('an upstream silent after its head fails over after the idle timeout', async () => {
  await gw.resetRoutes();
  await anth.script([{ chunk_delay_ms: 5000 }]);
  const t0 = Date.now();
  const r = await chat(gw, { model: 'claude-then-gpt', messages: [{ role: 'user', content: 'Reply with exactly: backup' }], stream: true });
  const ms = Date.now() - t0;
  assert.equal(r.status, 200, r.text);
  assert.match(r.headers.get('x-yourouter-attempts'), /anthropic\/claude-sonnet-4-20250514=timeout:200, openai\/gpt-4o=ok:200/);
  const text = sseData(r.text).filter((d) => d !== '[DONE]').map((d) => JSON.parse(d).choices[0]?.delta?.content ?? '').join('');
  assert.equal(text, 'backup');
  assert.ok(ms >= IDLE_MS && ms < 3000, `took ${ms} ms`);
});

test('with no route left, an idle upstream is a 504 upstream_timeout', async () => {
  await gw.resetRoutes();
  await anth.script([{ chunk_delay_ms: 5000 }]);
  const t0 = Date.now();
  const r = await chat(gw, { model: 'claude', messages: msgs, stream: true });
  assert.ok(Date.now() - t0 < 3000);
  assert.equal(r.status, 504, r.text);
  assert.equal(r.json.error.code, 'upstream_timeout');
  assert.match(r.json.error.message, /sent nothing for 400 ms/);
});

const sse = (...events) => events.map((e) => `data: ${typeof e === 'string' ? e : JSON.stringify(e)}\n\n`).join('');
const chunk = (delta, finish = null) => ({ id: 'c1', object: 'chat.completion.chunk', created: 1, model: 'gpt-4o', choices: [{ index: 0, delta, finish_reason: finish }] });
const deltas = (r) => sseData(r.text).filter((d) => d !== '[DONE]').map((d) => JSON.parse(d));
const textOf = (r) => deltas(r).map((d) => d.choices?.[0]?.delta?.content ?? '').join('');

// Issue 8 #12: OpenAI and Anthropic agree: a cut before any content reached
// the client fails over.
test('a cut right after the opening OpenAI chunk fails over', async () => {
  await gw.resetRoutes();
  await sim.script([{ cut_after: 1 }]);
  const r = await chat(gw, { model: 'gpt-twice', messages: [{ role: 'user', content: 'Reply with exactly: second' }], stream: true });
  assert.equal(r.status, 200, r.text);
  assert.match(r.headers.get('x-yourouter-attempts'), /^openai\/gpt-4o=(stream_cut|bad_response):200, backup\/gpt-4o=ok:200$/);
  assert.equal(textOf(r), 'second');
  assert.equal(deltas(r).filter((d) => d.choices?.[0]?.delta?.role).length, 1, 'one opening chunk, the second route\'s');
  assert.ok(r.text.endsWith('data: [DONE]\n\n'));
});

// Known bug (a): an in-band {"error":...} chunk was relayed as an answer.
test('an in-band OpenAI error chunk before any content fails over', async () => {
  await gw.resetRoutes();
  const err = { error: { message: `overloaded, key ${PROV_KEY}`, type: 'server_error', param: null, code: null } };
  await sim.script([{ body: sse(chunk({ role: 'assistant', content: '' }), err), content_type: 'text/event-stream' }]);
  const r = await chat(gw, { model: 'gpt-twice', messages: [{ role: 'user', content: 'Reply with exactly: fine' }], stream: true });
  assert.equal(r.status, 200, r.text);
  assert.match(r.headers.get('x-yourouter-attempts'), /^openai\/gpt-4o=server_error:500, backup\/gpt-4o=ok:200$/);
  assert.equal(textOf(r), 'fine');
  assert.ok(!r.text.includes('overloaded'), r.text);
});

test('an in-band OpenAI error chunk after content ends the stream with an error event', async () => {
  await gw.resetRoutes();
  const err = { error: { message: `overloaded, key ${PROV_KEY}`, type: 'server_error', param: null, code: null } };
  // Content the size of several upstream reads, so that it reaches the client
  // before the error chunk arrives.
  const big = 'x'.repeat(40000); // the lean client reads 64 KiB at a time
  await sim.script([{ body: sse(chunk({ role: 'assistant', content: '' }), chunk({ content: big }), chunk({ content: big }), err), content_type: 'text/event-stream' }]);
  const r = await chat(gw, { model: 'gpt-twice', messages: msgs, stream: true });
  assert.equal(r.status, 200, r.text);
  const ev = deltas(r);
  assert.equal(textOf(r).length, 2 * big.length, 'both content chunks');
  const last = ev[ev.length - 1];
  assert.equal(last.error.code, 'stream_interrupted');
  assert.match(last.error.message, /reported an error mid-stream: overloaded, key \[redacted\]/);
  assert.ok(!r.text.includes(PROV_KEY) && !r.text.includes('data: [DONE]'));
  assert.equal(ev.filter((d) => d.error).length, 1, 'the upstream\'s own error chunk is not relayed');
});

// Known bug (c): the final error after failover is the most telling one,
// and carries the longest retry hint any attempt got.
test('after failover the final error keeps an earlier 429\'s Retry-After', async () => {
  await gw.resetRoutes();
  await sim.script([{ status: 429, retry_after: 7 }, { status: 500, error_message: 'backend exploded' }]);
  const r = await chat(gw, { model: 'gpt-twice', messages: msgs });
  assert.equal(r.status, 502, r.text);
  assert.match(r.json.error.message, /backend exploded/);
  assert.equal(r.headers.get('retry-after'), '7');
});

test('a provider\'s own words beat a later route\'s connection failure', async () => {
  await gw.resetRoutes();
  await sim.script([{ status: 500, error_message: 'backend exploded' }]);
  const r = await chat(gw, { model: 'gpt-then-dead', messages: msgs });
  assert.equal(r.status, 502, r.text);
  assert.match(r.headers.get('x-yourouter-attempts'), /openai\/gpt-4o=server_error:500, dead\/gpt-4o=connect_error:0/);
  assert.match(r.json.error.message, /openai returned HTTP 500: backend exploded/);
});

// Issue 8 #12: a response head too large for the client gets a real reason.
// A reset (RST, not FIN) mid-stream: libuv reports it as an error on the
// poll and stops watching; the stream must end with an error at once, not
// when the idle timeout (here a minute) runs out.
test('an upstream that resets the connection mid-stream ends the stream with an error at once', { timeout: 15000 }, async (t) => {
  const srv = net.createServer((sock) => {
    sock.once('data', () => {
      const ev = `data: ${JSON.stringify({ id: 'c1', object: 'chat.completion.chunk', created: 1, model: 'gpt-4o', choices: [{ index: 0, delta: { role: 'assistant', content: 'partial' }, finish_reason: null }] })}\n\n`;
      sock.write(`HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n${ev.length.toString(16)}\r\n${ev}\r\n`,
        () => setImmediate(() => sock.resetAndDestroy()));
    });
    sock.on('error', () => {});
  });
  srv.listen(0, '127.0.0.1');
  await once(srv, 'listening');
  t.after(() => srv.close());
  const g2 = await startGateway(config({
    providers: { rst: { base_url: `http://127.0.0.1:${srv.address().port}/v1`, idle_timeout_ms: 60000, timeout_ms: 120000 } },
    models: [{ id: 'gpt-4o', routes: [{ provider: 'rst' }] }],
  }));
  t.after(async () => { await g2.stop(); g2.cleanup(); });
  const r = await chat(g2, { model: 'gpt-4o', messages: msgs, stream: true });
  assert.equal(r.status, 200, r.text);
  const data = sseData(r.text);
  assert.match(data[0], /partial/);
  assert.ok(!r.text.includes('[DONE]'), r.text);
  assert.ok(JSON.parse(data.at(-1)).error, r.text);
});

test('an upstream with a 1 MiB header is an error that says why', async (t) => {
  const srv = net.createServer((sock) => {
    sock.once('data', () => {
      sock.write(`HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nX-Huge: ${'h'.repeat(1 << 20)}\r\nContent-Length: 2\r\n\r\n{}`);
      sock.end();
    });
    sock.on('error', () => {});
  });
  srv.listen(0, '127.0.0.1');
  await once(srv, 'listening');
  t.after(() => srv.close());
  const g2 = await startGateway(config({
    providers: { huge: { base_url: `http://127.0.0.1:${srv.address().port}/v1` } },
    models: [{ id: 'gpt-4o', routes: [{ provider: 'huge' }] }],
  }));
  t.after(async () => { await g2.stop(); g2.cleanup(); });
  const r = await chat(g2, { model: 'gpt-4o', messages: msgs });
  assert.equal(r.status, 502, r.text);
  assert.match(r.json.error.message, /^huge sent a response the gateway cannot read: the response head is too large or malformed \(.+\) \(request id/, r.json.error.message);
});
