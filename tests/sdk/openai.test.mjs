// The official OpenAI SDK (npm `openai`) as the client, and the curl examples
// of SPEC §1 run verbatim.
import { test, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import OpenAI from 'openai';
import { startSim, startGateway, config, MASTER_KEY } from '../integ/lib.mjs';

let sim, gw, client;
before(async () => {
  sim = await startSim();
  gw = await startGateway(config({
    providers: { openai: { base_url: sim.url } },
    models: [{ id: 'gpt-4o', routes: [{ provider: 'openai' }] }],
  }));
  client = new OpenAI({ apiKey: MASTER_KEY, baseURL: gw.url, maxRetries: 0 });
});
after(async () => { await gw.stop(); await sim.stop(); gw.cleanup(); });
beforeEach(async () => { await sim.reset(); await gw.resetRoutes(); });

test('chat.completions.create', async () => {
  const c = await client.chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content: 'Reply with exactly: connected' }] });
  assert.equal(c.choices[0].message.content, 'connected');
  assert.equal(c.object, 'chat.completion');
  assert.ok(c.usage.total_tokens > 0);
});

test('withResponse exposes the x-request-id header', async () => {
  const { response } = await client.chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content: 'hi' }] }).withResponse();
  assert.match(response.headers.get('x-request-id'), /^req_/);
});

test('streaming with usage', async () => {
  const stream = await client.chat.completions.create({
    model: 'gpt-4o', stream: true, stream_options: { include_usage: true },
    messages: [{ role: 'user', content: 'Reply with exactly: one two three four' }],
  });
  let text = '', usage = null, finish = null, roles = 0;
  for await (const chunk of stream) {
    if (chunk.usage) usage = chunk.usage;
    const ch = chunk.choices[0];
    if (!ch) continue;
    if (ch.delta.role) roles++;
    text += ch.delta.content ?? '';
    finish = ch.finish_reason ?? finish;
  }
  assert.equal(text, 'one two three four');
  assert.equal(finish, 'stop');
  assert.equal(roles, 1);
  assert.ok(usage.completion_tokens > 0);
});

test('tool calls, streamed and assembled by the SDK helper', async () => {
  const tools = [{ type: 'function', function: { name: 'lookup', parameters: { type: 'object', properties: { q: { type: 'string' } } } } }];
  const runner = client.chat.completions.stream({
    model: 'gpt-4o', tools, messages: [{ role: 'user', content: 'find it' }],
    x_sim: { tool_calls: [{ name: 'lookup', arguments: { q: 'yourouter' } }] },
  });
  const final = await runner.finalChatCompletion();
  const call = final.choices[0].message.tool_calls[0];
  assert.equal(call.function.name, 'lookup');
  assert.deepEqual(JSON.parse(call.function.arguments), { q: 'yourouter' });
  assert.equal(final.choices[0].finish_reason, 'tool_calls');
});

test('errors surface as the SDK error classes', async () => {
  const bad = new OpenAI({ apiKey: 'wrong', baseURL: gw.url, maxRetries: 0 });
  await assert.rejects(bad.chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content: 'x' }] }), OpenAI.AuthenticationError);
  await assert.rejects(client.chat.completions.create({ model: 'nope', messages: [{ role: 'user', content: 'x' }] }),
    (e) => e instanceof OpenAI.BadRequestError && e.code === 'model_not_found' && e.param === 'model');
  await sim.script([{ status: 429, retry_after: 2 }]);
  await assert.rejects(client.chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content: 'x' }] }),
    (e) => e instanceof OpenAI.RateLimitError && e.headers.get('retry-after') === '2');
  await sim.script([{ status: 500 }]);
  await assert.rejects(client.chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content: 'x' }] }),
    (e) => e instanceof OpenAI.InternalServerError && e.status === 502);
});

test('a stream interrupted mid-way throws in the SDK instead of ending quietly', async () => {
  await sim.script([{ cut_after: 2, chunks: 10 }]);
  const stream = await client.chat.completions.create({ model: 'gpt-4o', stream: true, messages: [{ role: 'user', content: 'x' }] });
  await assert.rejects((async () => { for await (const _ of stream) { /* drain */ } })(), OpenAI.APIError);
});

test('models.list', async () => {
  const ids = [];
  for await (const m of client.models.list()) ids.push(m.id);
  assert.deepEqual(ids, ['gpt-4o']);
});

// SPEC §1 examples, with only the host and key substituted.
function curl(args) {
  return execFileSync('curl', ['-sS', ...args], { encoding: 'utf8', env: { ...process.env, YOUROUTER_API_KEY: MASTER_KEY } });
}

test('curl: the non-streaming example', () => {
  const out = curl([`${gw.url}/chat/completions`, '-H', `Authorization: Bearer ${MASTER_KEY}`, '-H', 'Content-Type: application/json',
    '-d', '{\n    "model": "gpt-4o",\n    "messages": [\n      {\n        "role": "user",\n        "content": "Reply with exactly: connected"\n      }\n    ]\n  }']);
  assert.equal(JSON.parse(out).choices[0].message.content, 'connected');
});

test('curl: vendor: openai pins the provider', () => {
  const out = curl([`${gw.url}/chat/completions`, '-H', `Authorization: Bearer ${MASTER_KEY}`, '-H', 'Content-Type: application/json',
    '-H', 'vendor: openai', '-d', '{"model": "gpt-4o", "messages": [{"role": "user", "content": "Hello"}]}']);
  assert.equal(JSON.parse(out).object, 'chat.completion');
});

test('curl: the streaming example', () => {
  const out = curl(['-N', `${gw.url}/chat/completions`, '-H', `Authorization: Bearer ${MASTER_KEY}`, '-H', 'Content-Type: application/json',
    '-d', '{\n    "model": "gpt-4o",\n    "stream": true,\n    "messages": [\n      {\n        "role": "user",\n        "content": "Explain model routing in two sentences."\n      }\n    ]\n  }']);
  assert.match(out, /^data: \{/);
  assert.match(out, /data: \[DONE\]\n\n$/);
});

test('curl: the multimodal example with an image_url block', () => {
  const out = curl([`${gw.url}/chat/completions`, '-H', `Authorization: Bearer ${MASTER_KEY}`, '-H', 'Content-Type: application/json',
    '-d', JSON.stringify({ model: 'gpt-4o', messages: [{ role: 'user', content: [{ type: 'text', text: 'Describe this image in one sentence.' }, { type: 'image_url', image_url: { url: 'https://example.com/image.jpg' } }] }] })]);
  assert.equal(JSON.parse(out).object, 'chat.completion');
});
