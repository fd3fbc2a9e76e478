// Resilient routing as the official OpenAI SDK sees it: a provider's bad
// minute is invisible when another route can serve; a cooling route is a
// RateLimitError with Retry-After; a stream broken after it started raises.
import { test, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { startSim, startGateway, MASTER_KEY } from '../integ/lib.mjs';

let a, b, gw, client;
before(async () => {
  a = await startSim();
  b = await startSim();
  gw = await startGateway(`server:
  listen: 127.0.0.1:0
  master_key: \${YOUROUTER_MASTER_KEY}
  workers: 2
providers:
  a: {kind: openai, base_url: '${a.url}'}
  b: {kind: openai, base_url: '${b.url}'}
models:
  - id: gpt-4o
    routes: [{provider: a}, {provider: b}]
  - id: solo
    routes: [{provider: a}]
`);
  client = new OpenAI({ apiKey: MASTER_KEY, baseURL: gw.url, maxRetries: 0 });
});
after(async () => { await gw.stop(); await a.stop(); await b.stop(); gw.cleanup(); });
beforeEach(async () => { await a.reset(); await b.reset(); await gw.resetRoutes(); });

const msg = [{ role: 'user', content: 'Reply with exactly: fine' }];

test('a 429 with retry-after on the first route is invisible: the SDK gets the answer', async () => {
  await a.script([{ status: 429, retry_after: 20 }]);
  const { data, response } = await client.chat.completions.create({ model: 'gpt-4o', messages: msg }).withResponse();
  assert.equal(data.choices[0].message.content, 'fine');
  assert.equal(response.headers.get('x-yourouter-provider'), 'b');
  // and the next one goes straight to b
  const s = await client.chat.completions.create({ model: 'gpt-4o', messages: msg, stream: true });
  let text = '';
  for await (const c of s) text += c.choices[0]?.delta?.content ?? '';
  assert.equal(text, 'fine');
  assert.equal((await a.requests()).length, 1);
});

test('every route cooling: RateLimitError with Retry-After, without calling the provider', async () => {
  await a.script([{ status: 429, retry_after: 30 }]);
  await assert.rejects(client.chat.completions.create({ model: 'solo', messages: msg }),
    (e) => e instanceof OpenAI.RateLimitError && e.headers.get('retry-after') === '30');
  await assert.rejects(client.chat.completions.create({ model: 'solo', messages: msg }),
    (e) => e instanceof OpenAI.RateLimitError && e.code === 'routes_unavailable' &&
      Number(e.headers.get('retry-after')) >= 29);
  assert.equal((await a.requests()).length, 1);
});

test('a stream cut after it started raises in the SDK (never a silent end)', async () => {
  await a.script([{ chunks: 6, cut_after: 3, text: 'one two three four five six' }]);
  const s = await client.chat.completions.create({ model: 'solo', messages: msg, stream: true });
  let text = '';
  await assert.rejects((async () => { for await (const c of s) text += c.choices[0]?.delta?.content ?? ''; })(),
    (e) => e instanceof OpenAI.APIError && /mid-stream|before it was complete|broke/.test(e.message));
  assert.ok(text.length > 0 && text !== 'one two three four five six', `partial: ${text}`);
});

test('a cut before anything was sent fails over: one clean stream', async () => {
  await a.script([{ cut_after: 0 }]);
  const s = await client.chat.completions.create({ model: 'gpt-4o', messages: msg, stream: true });
  let text = '';
  for await (const c of s) text += c.choices[0]?.delta?.content ?? '';
  assert.equal(text, 'fine');
});
