// Chat completions through the gateway against the OpenAI dialect of the
// simulator: what a client sees (status, body, headers, chunks) and what the
// provider received.
import { test, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { startSim, startGateway, config, chat, sseData, MASTER_KEY } from './lib.mjs';

const PROVIDER_KEY = 'sk-provider-secret-' + 'p'.repeat(20);
let sim, sim2, gw;

before(async () => {
  sim = await startSim(['--require-key', PROVIDER_KEY]);
  sim2 = await startSim();
  gw = await startGateway(config({
    providers: {
      openai: { base_url: sim.url, api_key: PROVIDER_KEY },
      backup: { base_url: sim2.url },
    },
    models: [
      { id: 'gpt-4o', routes: [{ provider: 'openai' }] },
      { id: 'fast-chat', routes: [{ provider: 'openai', model: 'gpt-4o-mini' }, { provider: 'backup', model: 'backup-mini' }] },
    ],
  }));
});

after(async () => {
  assert.equal(await gw.stop(), 0, 'gateway exits 0 on SIGTERM');
  await sim.stop();
  await sim2.stop();
  gw.cleanup();
});

beforeEach(async () => { await sim.reset(); await sim2.reset(); await gw.resetRoutes(); });

const hello = { model: 'gpt-4o', messages: [{ role: 'user', content: 'Reply with exactly: connected' }] };

// Request ids sort by time (12 hex digits of milliseconds, then 48 random
// bits), so the usage table's index on them grows at one end.
test('request ids are unique and sort by the time they were made', async () => {
  const before = Date.now();
  const ids = [];
  for (let i = 0; i < 5; i++) ids.push((await chat(gw, hello)).headers.get('x-request-id'));
  const after = Date.now();
  for (const id of ids) {
    assert.match(id, /^req_[0-9a-f]{24}$/);
    const ms = parseInt(id.slice(4, 16), 16);
    assert.ok(ms >= before - 5 && ms <= after + 5, `${id}: ${ms} within ${before}..${after}`);
  }
  const times = ids.map((id) => id.slice(4, 16));
  assert.deepEqual([...times].sort(), times, 'made in order, sorted in order (within a millisecond the random part decides)');
  assert.equal(new Set(ids.map((id) => id.slice(16))).size, ids.length, 'random parts differ');
});

test('non-streaming completion is the OpenAI chat.completion object', async () => {
  const r = await chat(gw, hello);
  assert.equal(r.status, 200);
  assert.match(r.headers.get('content-type'), /^application\/json/);
  assert.match(r.headers.get('x-request-id'), /^req_[0-9a-f]{24}$/);
  assert.equal(r.json.object, 'chat.completion');
  assert.equal(r.json.choices[0].message.role, 'assistant');
  assert.equal(r.json.choices[0].message.content, 'connected');
  assert.equal(r.json.choices[0].finish_reason, 'stop');
  const u = r.json.usage;
  assert.equal(u.total_tokens, u.prompt_tokens + u.completion_tokens);
  assert.ok(u.prompt_tokens > 0);
});

test('the provider key is sent upstream, the client key never is', async () => {
  await chat(gw, hello);
  const [req] = await sim.requests();
  assert.equal(req.headers.authorization, `Bearer ${PROVIDER_KEY}`);
  assert.ok(!JSON.stringify(req).includes(MASTER_KEY));
});

test('unknown fields and number spellings reach the provider unchanged; only model is rewritten', async () => {
  const body = '{"model":"fast-chat","temperature":0.7,"top_p":1e0,"messages":[{"role":"user","content":"hi \\u00e9"}],"x_custom":{"a":[1,2,{"b":null}]},"logit_bias":{"50256":-100}}';
  const r = await chat(gw, body);
  assert.equal(r.status, 200);
  const [req] = await sim.requests();
  assert.deepEqual(req.body, { ...JSON.parse(body), model: 'gpt-4o-mini' });
  assert.equal(r.json.model, 'gpt-4o-mini', 'the provider response is relayed as is');
});

test('an escaped "model" key on an aliased route is a 400, never forwarded unrewritten', async () => {
  const r = await chat(gw, '{"\\u006dodel":"fast-chat","messages":[{"role":"user","content":"x"}]}');
  assert.equal(r.status, 400, r.text);
  assert.equal(r.json.error.param, 'model');
  assert.equal((await sim.requests()).length + (await sim2.requests()).length, 0);
});

test('a model whose route uses the same name is forwarded byte for byte', async () => {
  const body = '{ "model" : "gpt-4o", "messages":[{"role":"user","content":"x"}], "temperature": 0.30 }';
  await chat(gw, body);
  const [req] = await sim.requests();
  assert.equal(req.body.temperature, 0.3);
  assert.equal(req.body.model, 'gpt-4o');
});

test('streaming relays OpenAI chunks: role first, content, finish_reason, usage, [DONE]', async () => {
  const r = await chat(gw, { ...hello, stream: true, stream_options: { include_usage: true },
    messages: [{ role: 'user', content: 'Explain model routing in two sentences.' }], x_sim: { chunks: 5 } });
  assert.equal(r.status, 200);
  assert.match(r.headers.get('content-type'), /^text\/event-stream/);
  assert.ok(r.headers.get('x-request-id'));
  const data = sseData(r.text);
  assert.equal(data.at(-1), '[DONE]');
  const chunks = data.slice(0, -1).map((d) => JSON.parse(d));
  assert.ok(chunks.every((c) => c.object === 'chat.completion.chunk'));
  assert.equal(new Set(chunks.map((c) => c.id)).size, 1, 'one id for the whole stream');
  assert.equal(chunks[0].choices[0].delta.role, 'assistant');
  const text = chunks.filter((c) => c.choices.length).map((c) => c.choices[0].delta.content ?? '').join('');
  assert.ok(text.startsWith('Hello from yourouter-sim'), text);
  const withFinish = chunks.filter((c) => c.choices[0]?.finish_reason);
  assert.equal(withFinish.length, 1);
  assert.equal(withFinish[0].choices[0].finish_reason, 'stop');
  const last = chunks.at(-1);
  assert.deepEqual(last.choices, []);
  assert.ok(last.usage.completion_tokens > 0);
  assert.ok(chunks.indexOf(withFinish[0]) < chunks.length - 1, 'usage chunk comes after finish_reason');
});

test('tool calls: non-stream and stream', async () => {
  const tools = [{ type: 'function', function: { name: 'get_weather', parameters: { type: 'object', properties: { city: { type: 'string' } } } } }];
  const x_sim = { tool_calls: [{ name: 'get_weather', arguments: { city: 'Paris' } }] };
  const r = await chat(gw, { ...hello, tools, x_sim });
  assert.equal(r.status, 200);
  const tc = r.json.choices[0].message.tool_calls;
  assert.equal(r.json.choices[0].finish_reason, 'tool_calls');
  assert.equal(tc[0].type, 'function');
  assert.equal(tc[0].function.name, 'get_weather');
  assert.deepEqual(JSON.parse(tc[0].function.arguments), { city: 'Paris' });

  const s = await chat(gw, { ...hello, tools, x_sim, stream: true });
  const chunks = sseData(s.text).slice(0, -1).map((d) => JSON.parse(d));
  const deltas = chunks.flatMap((c) => c.choices[0]?.delta?.tool_calls ?? []);
  assert.ok(deltas.length >= 2, 'arguments arrive in fragments');
  assert.ok(deltas.every((d) => d.index === 0));
  assert.equal(deltas[0].function.name, 'get_weather');
  assert.ok(deltas[0].id);
  assert.deepEqual(JSON.parse(deltas.map((d) => d.function.arguments ?? '').join('')), { city: 'Paris' });
  assert.equal(chunks.at(-1).choices[0].finish_reason, 'tool_calls');
});

test('vendor header pins the route; auto and absent route automatically', async () => {
  const fast = { ...hello, model: 'fast-chat' };
  let r = await chat(gw, fast, { headers: { vendor: 'backup' } });
  assert.equal(r.status, 200);
  assert.equal(r.headers.get('x-yourouter-vendor'), 'backup');
  assert.equal((await sim2.requests()).length, 1);
  assert.equal((await sim.requests()).length, 0);
  r = await chat(gw, fast, { headers: { vendor: 'auto' } });
  assert.equal(r.headers.get('x-yourouter-vendor'), 'openai');
  r = await chat(gw, hello, { headers: { vendor: 'backup' } });
  assert.equal(r.status, 400);
  assert.equal(r.json.error.param, 'vendor');
  assert.match(r.json.error.message, /does not serve model 'gpt-4o'.*vendors that do: openai/);
});

test('failover: retryable failures before the first byte move to the next route', async (t) => {
  const fast = { ...hello, model: 'fast-chat' };
  for (const [name, behaviour] of [
    ['429', { status: 429, retry_after: 3 }],
    ['500', { status: 500 }],
    ['503', { status: 503 }],
    ['malformed JSON', { malformed: true }],
    ['connection cut', { cut_after: 1 }],
  ]) {
    await t.test(name, async () => {
      await sim.reset(); await sim2.reset(); await gw.resetRoutes();
      await sim.script([behaviour]);
      const r = await chat(gw, fast);
      assert.equal(r.status, 200, r.text);
      assert.equal(r.headers.get('x-yourouter-vendor'), 'backup');
      assert.equal((await sim.requests()).length, 1);
      const [second] = await sim2.requests();
      assert.equal(second.body.model, 'backup-mini');
    });
  }
});

test('failover: streams fail over too while nothing was sent', async () => {
  await sim.script([{ status: 429, retry_after: 1 }]);
  const r = await chat(gw, { ...hello, model: 'fast-chat', stream: true });
  assert.equal(r.status, 200);
  assert.equal(sseData(r.text).at(-1), '[DONE]');
  assert.equal(r.headers.get('x-yourouter-vendor'), 'backup');
});

test('a 4xx from the provider is not retried and keeps the provider message', async () => {
  await sim.script([{ status: 400, error_message: 'Invalid value for temperature', error_code: 'invalid_value' }]);
  const r = await chat(gw, { ...hello, model: 'fast-chat' });
  assert.equal(r.status, 400);
  assert.match(r.json.error.message, /Invalid value for temperature/);
  assert.equal(r.json.error.code, 'invalid_value');
  assert.equal((await sim2.requests()).length, 0);
});

test('when every route fails the client gets one error with the last cause', async () => {
  await sim.script([{ status: 429, retry_after: 7 }]);
  let r = await chat(gw, hello);
  assert.equal(r.status, 429);
  assert.equal(r.headers.get('retry-after'), '7');
  assert.equal(r.json.error.type, 'rate_limit_error');
  assert.ok(r.json.error.message.includes(r.headers.get('x-request-id')));
  assert.equal(r.headers.get('x-yourouter-attempts'), 'openai/gpt-4o=rate_limited:429');

  // The route is not called again before its Retry-After, by any request:
  // the gateway answers for it, and says when to come back.
  r = await chat(gw, hello);
  assert.equal(r.status, 429);
  assert.equal(r.json.error.code, 'routes_unavailable');
  assert.ok(Number(r.headers.get('retry-after')) >= 6 && Number(r.headers.get('retry-after')) <= 7);
  assert.equal((await sim.requests()).length, 1);
  const [h] = (await gw.routes()).filter((x) => x.model === 'gpt-4o');
  assert.ok(h.available_in_ms > 5000 && h.available_in_ms <= 7000, JSON.stringify(h));
  await gw.resetRoutes();

  await sim.script([{ status: 500 }]);
  r = await chat(gw, hello);
  assert.equal(r.status, 502);
  await sim.script([{ status: 503 }]);
  r = await chat(gw, hello);
  assert.equal(r.status, 503);
  // 429 only when every route was rate limited; otherwise the other cause
  await sim.script([{ status: 500 }]);
  await sim2.script([{ status: 429 }]);
  r = await chat(gw, { ...hello, model: 'fast-chat' });
  assert.equal(r.status, 502);
  assert.equal(r.headers.get('retry-after'), null);
  assert.equal(r.headers.get('x-yourouter-attempts'),
    'openai/gpt-4o-mini=server_error:500, backup/backup-mini=rate_limited:429');
  await sim.script([{ status: 429, retry_after: 2 }]);
  await sim2.script([{ status: 429 }]);
  r = await chat(gw, { ...hello, model: 'fast-chat' });
  assert.equal(r.status, 429);
  assert.equal(r.headers.get('retry-after'), '2', 'the longest hint of any route');
  await gw.resetRoutes();
  await sim.script([{ status: 429 }]);
  await sim2.script([{ status: 429 }]);
  r = await chat(gw, { ...hello, model: 'fast-chat' });
  assert.equal(r.status, 429);
  assert.equal(r.headers.get('retry-after'), '1', 'a default Retry-After when the provider sent none');
});

test('a stream cut after the first chunk ends with an explicit SSE error, not a silent truncation', async () => {
  await sim.script([{ cut_after: 2, chunks: 10 }]);
  const r = await chat(gw, { ...hello, model: 'fast-chat', stream: true });
  assert.equal(r.status, 200);
  const data = sseData(r.text);
  assert.notEqual(data.at(-1), '[DONE]');
  const err = JSON.parse(data.at(-1));
  assert.equal(err.error.code, 'stream_interrupted');
  assert.ok(err.error.message.includes(r.headers.get('x-request-id')));
  assert.equal((await sim2.requests()).length, 0, 'no failover after the first byte');
});

test('a malformed event mid-stream becomes an SSE error event', async () => {
  await sim.script([{ malformed: true, chunks: 6 }]);
  const r = await chat(gw, { ...hello, stream: true });
  const data = sseData(r.text);
  assert.equal(JSON.parse(data.at(-1)).error.code, 'stream_interrupted');
});

test('slow first byte: the first-byte timeout fails over', async (t) => {
  const slow = await startSim();
  const fastSim = await startSim();
  const g = await startGateway(config({
    providers: { slow: { base_url: slow.url, first_byte_timeout_ms: 300 }, fast: { base_url: fastSim.url } },
    models: [{ id: 'm', routes: [{ provider: 'slow' }, { provider: 'fast' }] }],
  }));
  t.after(async () => { await g.stop(); await slow.stop(); await fastSim.stop(); g.cleanup(); });
  await slow.script([{ headers_delay_ms: 5000 }]);
  const r = await chat(g, { ...hello, model: 'm' });
  assert.equal(r.status, 200);
  assert.equal(r.headers.get('x-yourouter-vendor'), 'fast');
  await slow.wait({ aborted: 1 });

  await slow.script([{ headers_delay_ms: 5000 }]);
  const only = await chat(g, { ...hello, model: 'm' }, { headers: { vendor: 'slow' } });
  assert.equal(only.status, 504);
  assert.equal(only.json.error.code, 'upstream_timeout');
});

test('an unreachable provider fails over, and alone gives 502', async (t) => {
  const ok = await startSim();
  const g = await startGateway(config({
    providers: { dead: { base_url: 'http://127.0.0.1:1/v1' }, ok: { base_url: ok.url } },
    models: [{ id: 'm', routes: [{ provider: 'dead' }, { provider: 'ok' }] }],
  }));
  t.after(async () => { await g.stop(); await ok.stop(); g.cleanup(); });
  const r = await chat(g, { ...hello, model: 'm' });
  assert.equal(r.status, 200);
  const only = await chat(g, { ...hello, model: 'm' }, { headers: { vendor: 'dead' } });
  assert.equal(only.status, 502);
  assert.match(only.json.error.message, /could not reach dead/);
});

test('client disconnect mid-stream aborts the upstream request', async () => {
  const ctrl = new AbortController();
  const r = await fetch(`${gw.url}/chat/completions`, {
    method: 'POST', signal: ctrl.signal,
    headers: { authorization: `Bearer ${MASTER_KEY}`, 'content-type': 'application/json' },
    body: JSON.stringify({ ...hello, stream: true, x_sim: { chunks: 1000, chunk_delay_ms: 20 } }),
  });
  const reader = r.body.getReader();
  await reader.read();
  ctrl.abort();
  const w = await sim.wait({ aborted: 1 });
  assert.equal(w.status, 200, 'the simulator saw the upstream connection close');
  assert.equal(w.body.aborted, 1);
});

test('client disconnect while waiting for the first byte aborts the upstream request', async () => {
  const ctrl = new AbortController();
  const p = fetch(`${gw.url}/chat/completions`, {
    method: 'POST', signal: ctrl.signal,
    headers: { authorization: `Bearer ${MASTER_KEY}`, 'content-type': 'application/json' },
    body: JSON.stringify({ ...hello, x_sim: { hang: true } }),
  }).catch((e) => e);
  await sim.wait({ requests: 1 });
  ctrl.abort();
  await p;
  const w = await sim.wait({ aborted: 1 });
  assert.equal(w.status, 200);
});

test('metrics count requests and attempts and never show a key', async () => {
  await chat(gw, hello);
  const m = await (await fetch(`${gw.base}/metrics`)).text();
  assert.match(m, /yourouter_requests_total\{model="gpt-4o",vendor="openai",status="200"\} \d+/);
  assert.match(m, /yourouter_upstream_attempts_total\{vendor="openai",outcome="ok"\} \d+/);
  assert.match(m, /yourouter_request_duration_seconds_bucket\{le="\+Inf"\} \d+/);
  assert.ok(!m.includes(PROVIDER_KEY) && !m.includes(MASTER_KEY));
  assert.ok(!gw.stderr().includes(PROVIDER_KEY) && !gw.stderr().includes(MASTER_KEY), 'nor do the logs');
});
