// kind: azure. The npm `openai` package is the client of yourouter, whose two
// Azure providers (the classic deployments shape and the v1 shape) point at
// the simulator's Azure dialect; and the package's AzureOpenAI client talks
// to the simulator directly, to keep the simulator honest.
import { test, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI, { AzureOpenAI } from 'openai';
import Anthropic from '@anthropic-ai/sdk';
import { startSim, startGateway, MASTER_KEY } from '../integ/lib.mjs';

const AZ_KEY = 'az-sim-key-0123456789';
const VERSION = '2024-10-21';

let sim, gw, client;
before(async () => {
  sim = await startSim(['--require-key', AZ_KEY]);
  gw = await startGateway(`server:
  listen: 127.0.0.1:0
  master_key: \${YOUROUTER_MASTER_KEY}
  workers: 2
storage:
  url: sqlite://yourouter.db
providers:
  az-classic:
    kind: azure
    base_url: ${sim.base}
    api_key: ${AZ_KEY}
    api_version: ${VERSION}
  az-v1:
    kind: azure
    base_url: ${sim.base}/
    api_key: ${AZ_KEY}
  az-badkey:
    kind: azure
    base_url: ${sim.base}
    api_key: not-the-key
models:
  - id: gpt-4o
    routes:
      - provider: az-classic
        model: prod-gpt4o
  - id: gpt-4o-v1
    routes:
      - provider: az-v1
        model: v1-gpt4o
  - id: gpt-4o-badkey
    routes:
      - provider: az-badkey
  - id: gpt-4o-ha
    routes:
      - provider: az-classic
        model: prod-gpt4o
      - provider: az-v1
        model: v1-gpt4o
`);
  client = new OpenAI({ apiKey: MASTER_KEY, baseURL: gw.url, maxRetries: 0 });
});
after(async () => { await gw.stop(); await sim.stop(); gw.cleanup(); });
beforeEach(async () => { await sim.reset(); await gw.resetRoutes(); });

const user = (content) => [{ role: 'user', content }];

async function lastRequest() {
  const recs = await sim.requests();
  assert.ok(recs.length > 0, 'the simulator recorded a request');
  return recs[recs.length - 1];
}

// What the gateway sent: the shape's path and query, api-key, never a Bearer.
function assertUpstream(rec, { path, query, model }) {
  assert.equal(rec.method, 'POST');
  assert.equal(rec.path, path);
  assert.equal(rec.query, query);
  assert.equal(rec.headers['api-key'], AZ_KEY);
  assert.equal(rec.headers.authorization, undefined);
  assert.equal(rec.body.model, model);
}

const shapes = [
  { name: 'classic', model: 'gpt-4o', path: '/openai/deployments/prod-gpt4o/chat/completions',
    query: `api-version=${VERSION}`, upstreamModel: 'prod-gpt4o' },
  { name: 'v1', model: 'gpt-4o-v1', path: '/openai/v1/chat/completions', query: '',
    upstreamModel: 'v1-gpt4o' },
];

for (const s of shapes) {
  test(`${s.name}: chat.completions.create`, async () => {
    const c = await client.chat.completions.create({ model: s.model, messages: user('Reply with exactly: from azure') });
    assert.equal(c.choices[0].message.content, 'from azure');
    assert.equal(c.choices[0].finish_reason, 'stop');
    assert.equal(c.model, s.upstreamModel); // the deployment answered
    assert.ok(c.usage.total_tokens > 0);
    assertUpstream(await lastRequest(), { path: s.path, query: s.query, model: s.upstreamModel });
  });

  test(`${s.name}: a stream reaches the client without Azure's filter-only chunks`, async () => {
    const stream = await client.chat.completions.create({
      model: s.model, stream: true, stream_options: { include_usage: true },
      messages: user('Reply with exactly: one two three'),
    });
    let text = '', finish = null, usage = null, chunks = 0;
    for await (const chunk of stream) {
      chunks++;
      assert.notEqual(chunk.id, '', 'no prompt_filter_results chunk');
      if (chunk.usage) { usage = chunk.usage; assert.deepEqual(chunk.choices, []); continue; }
      assert.equal(chunk.choices.length, 1);
      const ch = chunk.choices[0];
      assert.ok(ch.delta, 'every choice has a delta');
      text += ch.delta.content ?? '';
      finish = ch.finish_reason ?? finish;
    }
    assert.equal(text, 'one two three');
    assert.equal(finish, 'stop');
    assert.ok(usage.completion_tokens > 0);
    assert.equal(chunks, 1 + 3 + 1 + 1); // role, words, finish, usage
    const rec = await lastRequest();
    assertUpstream(rec, { path: s.path, query: s.query, model: s.upstreamModel });
    assert.equal(rec.headers.accept, 'text/event-stream');
  });
}

test('tools: a tool-call round trip through the classic shape', async () => {
  const tools = [{ type: 'function', function: { name: 'lookup', parameters: { type: 'object', properties: { q: { type: 'string' } } } } }];
  const first = await client.chat.completions.stream({
    model: 'gpt-4o', tools, messages: user('find yourouter'),
    x_sim: { tool_calls: [{ name: 'lookup', arguments: { q: 'yourouter' } }] },
  }).finalChatCompletion();
  const call = first.choices[0].message.tool_calls[0];
  assert.equal(first.choices[0].finish_reason, 'tool_calls');
  assert.equal(call.function.name, 'lookup');
  assert.deepEqual(JSON.parse(call.function.arguments), { q: 'yourouter' });

  const messages = [...user('find yourouter'), first.choices[0].message,
    { role: 'tool', tool_call_id: call.id, content: 'an LLM gateway' }, ...user('Reply with exactly: found it')];
  const second = await client.chat.completions.create({ model: 'gpt-4o', tools, messages });
  assert.equal(second.choices[0].message.content, 'found it');
  const rec = await lastRequest();
  assertUpstream(rec, { path: shapes[0].path, query: shapes[0].query, model: 'prod-gpt4o' });
  assert.equal(rec.body.messages[1].tool_calls[0].id, call.id);
  assert.equal(rec.body.messages[2].tool_call_id, call.id);
});

test('a prompt the content filter refuses is a 400 with code content_filter', async () => {
  for (const model of ['gpt-4o', 'gpt-4o-v1']) {
    await sim.script([{ content_filter: 'violence' }]);
    await assert.rejects(client.chat.completions.create({ model, messages: user('x') }),
      (e) => e instanceof OpenAI.BadRequestError && e.status === 400 && e.code === 'content_filter' &&
        e.param === 'prompt' && /content management policy/.test(e.message));
  }
  // Not retried: the gateway made one attempt per request.
  assert.equal((await sim.stats()).requests, 2);
});

test('filtered output ends with finish_reason content_filter', async () => {
  await sim.script([{ finish_reason: 'content_filter', content_filter: 'sexual' }]);
  const stream = await client.chat.completions.create({ model: 'gpt-4o-v1', stream: true, messages: user('Reply with exactly: a b') });
  let finish = null;
  for await (const chunk of stream) finish = chunk.choices[0]?.finish_reason ?? finish;
  assert.equal(finish, 'content_filter');
  await sim.script([{ finish_reason: 'content_filter' }]);
  const c = await client.chat.completions.create({ model: 'gpt-4o', messages: user('x') });
  assert.equal(c.choices[0].finish_reason, 'content_filter');
});

test('a 429 from the only route reaches the client with its Retry-After', async () => {
  await sim.script([{ status: 429, retry_after: 7 }]);
  await assert.rejects(client.chat.completions.create({ model: 'gpt-4o', messages: user('x') }),
    (e) => e instanceof OpenAI.RateLimitError && e.status === 429 && e.headers.get('retry-after') === '7');
});

test('Azure refusing the gateway\'s key is an upstream auth failure, not the client\'s', async () => {
  await assert.rejects(client.chat.completions.create({ model: 'gpt-4o-badkey', messages: user('x') }),
    (e) => e instanceof OpenAI.InternalServerError && e.status === 502 && e.code === 'upstream_auth_failed');
});

test('a 5xx and a cut stream from Azure surface as errors', async () => {
  await sim.script([{ status: 500 }]);
  await assert.rejects(client.chat.completions.create({ model: 'gpt-4o', messages: user('x') }),
    (e) => e instanceof OpenAI.InternalServerError && e.status === 502);
  await sim.script([{ cut_after: 3, chunks: 10 }]);
  const stream = await client.chat.completions.create({ model: 'gpt-4o', stream: true, messages: user('x') });
  await assert.rejects((async () => { for await (const _ of stream) { /* drain */ } })(), OpenAI.APIError);
});

test('an error event from Azure: before the first byte an HTTP error, after it a stream error', async () => {
  // Right after the prompt-filter chunk, which the client never sees.
  await sim.script([{ stream_error: 'server_error' }]);
  await assert.rejects(client.chat.completions.create({ model: 'gpt-4o', stream: true, messages: user('x') }),
    (e) => e instanceof OpenAI.InternalServerError && e.status === 502 && /server had an error/.test(e.message));
  await sim.script([{ stream_error: 'server_error', stream_error_after: 3 }]);
  const stream = await client.chat.completions.create({ model: 'gpt-4o', stream: true, messages: user('Reply with exactly: a b c d') });
  let text = '';
  await assert.rejects((async () => { for await (const c of stream) text += c.choices[0]?.delta?.content ?? ''; })(),
    (e) => e instanceof OpenAI.APIError && /server had an error/.test(e.message));
  assert.equal(text, 'a');
});

test('failover between the two shapes: a 429 or a missing deployment moves on, a filtered prompt does not', async () => {
  for (const status of [429, 404, 503]) {
    await sim.reset();
    await gw.resetRoutes(); // the 429's Retry-After would keep the first shape cooling
    await sim.script([{ status, retry_after: 1 }]);
    const c = await client.chat.completions.create({ model: 'gpt-4o-ha', messages: user('Reply with exactly: second') });
    assert.equal(c.choices[0].message.content, 'second');
    const recs = await sim.requests();
    assert.deepEqual(recs.map((r) => r.path), [shapes[0].path, shapes[1].path]);
  }
  await sim.reset();
  await sim.script([{ content_filter: 'hate' }]);
  await assert.rejects(client.chat.completions.create({ model: 'gpt-4o-ha', messages: user('x') }),
    (e) => e instanceof OpenAI.BadRequestError && e.code === 'content_filter');
  assert.equal((await sim.requests()).length, 1, 'the other deployment has the same filter: not tried');
});

test('an Anthropic client reaches Azure through the translation, streamed and not', async () => {
  const anth = new Anthropic({ apiKey: MASTER_KEY, baseURL: gw.base, maxRetries: 0 });
  const m = await anth.messages.create({ model: 'gpt-4o', max_tokens: 64, messages: user('Reply with exactly: via azure') });
  assert.equal(m.content[0].text, 'via azure');
  assert.equal(m.stop_reason, 'end_turn');
  const stream = anth.messages.stream({ model: 'gpt-4o-v1', max_tokens: 64, messages: user('Reply with exactly: streamed too') });
  const final = await stream.finalMessage();
  assert.equal(final.content[0].text, 'streamed too');
  assertUpstream(await lastRequest(), { path: shapes[1].path, query: '', model: 'v1-gpt4o' });
});

// ---- the simulator itself, through the AzureOpenAI client ------------------------------

function azure(opts = {}) {
  return new AzureOpenAI({ endpoint: sim.base, apiKey: AZ_KEY, apiVersion: VERSION, deployment: 'fid-dep', maxRetries: 0, ...opts });
}

test('sim fidelity: AzureOpenAI gets a completion from the classic shape', async () => {
  const c = await azure().chat.completions.create({ model: 'ignored', messages: user('Reply with exactly: direct') });
  assert.equal(c.choices[0].message.content, 'direct');
  assert.equal(c.model, 'fid-dep');
  assert.equal(c.prompt_filter_results[0].content_filter_results.jailbreak.filtered, false);
  assert.equal(c.choices[0].content_filter_results.violence.severity, 'safe');
  const rec = await lastRequest();
  assert.equal(rec.path, '/openai/deployments/fid-dep/chat/completions');
  assert.equal(rec.query, `api-version=${VERSION}`);
  assert.equal(rec.headers['api-key'], AZ_KEY);
});

test('sim fidelity: AzureOpenAI streams with Azure\'s filter chunks', async () => {
  const stream = await azure().chat.completions.create({ model: 'ignored', stream: true, messages: user('Reply with exactly: a b c') });
  const chunks = [];
  for await (const chunk of stream) chunks.push(chunk);
  // First: the prompt's filter results, with no choices.
  assert.deepEqual(chunks[0].choices, []);
  assert.equal(chunks[0].id, '');
  assert.ok(chunks[0].prompt_filter_results);
  const text = chunks.map((c) => c.choices[0]?.delta?.content ?? '').join('');
  assert.equal(text, 'a b c');
  const finish = chunks.find((c) => c.choices[0]?.finish_reason);
  assert.equal(finish.choices[0].finish_reason, 'stop');
  // Last: an annotation without a delta, after the finish.
  const last = chunks[chunks.length - 1];
  assert.equal(last.choices[0].delta, undefined);
  assert.ok(last.choices[0].content_filter_offsets);
  // The SDK's own stream helper copes with both.
  const final = await azure().chat.completions.stream({ model: 'ignored', messages: user('Reply with exactly: helper') }).finalChatCompletion();
  assert.equal(final.choices[0].message.content, 'helper');
});

test('sim fidelity: Azure\'s errors for a bad key and a missing or unknown api-version', async () => {
  await assert.rejects(azure({ apiKey: 'wrong' }).chat.completions.create({ model: 'm', messages: user('x') }),
    (e) => e instanceof OpenAI.AuthenticationError && e.code === '401' && /invalid subscription key/.test(e.message));
  const post = (path, headers = { 'api-key': AZ_KEY }) => fetch(sim.base + path, {
    method: 'POST', headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify({ model: 'm', messages: user('x') }),
  }).then(async (r) => ({ status: r.status, body: await r.json() }));
  let r = await post('/openai/deployments/d/chat/completions');
  assert.deepEqual(r, { status: 404, body: { error: { code: '404', message: 'Resource not found' } } });
  r = await post('/openai/deployments/d/chat/completions?api-version=v9');
  assert.deepEqual(r, { status: 400, body: { error: { code: 'BadRequest', message: 'API version not supported' } } });
  r = await post('/openai/v1/chat/completions?api-version=2024-10-21');
  assert.equal(r.status, 400);
  r = await post('/openai/v1/chat/completions', { authorization: `Bearer ${AZ_KEY}` });
  assert.equal(r.status, 401);
  assert.match(r.body.error.message, /Access token is missing/);
});

test('sim fidelity: the scripted faults work on the Azure dialect', async () => {
  const c = azure();
  await sim.script([{ status: 429, retry_after: 2 }]);
  await assert.rejects(c.chat.completions.create({ model: 'm', messages: user('x') }),
    (e) => e instanceof OpenAI.RateLimitError && e.headers.get('retry-after') === '2' &&
      e.headers.get('retry-after-ms') === '2000' && e.code === '429');
  await sim.script([{ status: 503 }]);
  await assert.rejects(c.chat.completions.create({ model: 'm', messages: user('x') }), OpenAI.InternalServerError);
  await sim.script([{ malformed: true }]);
  await assert.rejects(c.chat.completions.create({ model: 'm', messages: user('x') }));
  await sim.script([{ cut_after: 2 }]);
  const stream = await c.chat.completions.create({ model: 'm', stream: true, messages: user('x') });
  await assert.rejects((async () => { for await (const _ of stream) { /* drain */ } })());
  await sim.script([{ headers_delay_ms: 150 }]);
  const t0 = Date.now();
  const slow = await c.chat.completions.create({ model: 'm', messages: user('Reply with exactly: late') });
  assert.equal(slow.choices[0].message.content, 'late');
  assert.ok(Date.now() - t0 >= 140, 'the head waited for headers_delay_ms');
});
