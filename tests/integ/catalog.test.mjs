// The catalog of OpenAI-compatible providers, as a client and an operator see
// it: routes configured with `preset:` (base_url overridden to the
// simulator), the npm `openai` package as the client. What the simulator
// recorded shows the preset's defaults in effect (path, key header) and the
// request fitted to the route's model (max tokens clamped, reasoning_effort
// dropped or mapped); routes whose model lacks a capability the request uses
// are skipped (x-yourouter-attempts says why), or the request is a 400 that
// names the capability; costs come from the catalog's prices.
import { test, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import OpenAI from 'openai';
import { writeFileSync } from 'node:fs';
import { startSim, startGateway, MASTER_KEY, YR_BIN } from './lib.mjs';

let sim, gw, client;

const keys = {
  GROQ_API_KEY: 'gsk-test-groq-0123456789',
  XAI_API_KEY: 'xai-test-0123456789',
  CEREBRAS_API_KEY: 'csk-test-0123456789',
  DEEPSEEK_API_KEY: 'sk-test-deepseek-0123456789',
};

before(async () => {
  sim = await startSim();
  const yaml = `server:
  listen: 127.0.0.1:0
  master_key: \${YOUROUTER_MASTER_KEY}
  workers: 2
storage:
  url: sqlite://yourouter.db
providers:
  groq:
    kind: openai
    preset: groq
    base_url: ${sim.base}/openai/v1
  xai:
    kind: openai
    preset: xai
    base_url: ${sim.base}/xai/v1
  cerebras:
    kind: openai
    preset: cerebras
    base_url: ${sim.base}/cerebras/v1
  deepseek:
    kind: openai
    preset: deepseek
    base_url: ${sim.base}/deepseek
  anthropic:
    kind: anthropic
    base_url: ${sim.base}
    api_key: sk-ant-test-0123456789
  google:
    kind: gemini
    base_url: ${sim.base}
    api_key: g-test-0123456789
  local:
    kind: openai
    preset: vllm
    base_url: ${sim.base}/vllm/v1
    models:
      text-only-finetune:
        capabilities: [tools]
        max_output_tokens: 100
models:
  - id: chat
    routes:
      - provider: groq
        model: llama-3.3-70b-versatile
  - id: grok
    routes:
      - provider: xai
        model: grok-3-mini
  - id: vision
    routes:
      - provider: cerebras
        model: llama-3.3-70b
      - provider: groq
        model: meta-llama/llama-4-scout-17b-16e-instruct
  - id: text-only
    routes:
      - provider: cerebras
        model: llama-3.3-70b
      - provider: deepseek
        model: deepseek-chat
  - id: local
    routes:
      - provider: local
        model: my-model
  - id: haiku
    routes:
      - provider: anthropic
        model: claude-3-5-haiku-20241022
  - id: mixed
    routes:
      - provider: anthropic
        model: claude-3-5-haiku-20241022
      - provider: local
        model: my-model
  - id: flash
    routes:
      - provider: google
        model: gemini-2.0-flash
  - id: finetune
    routes:
      - provider: local
        model: text-only-finetune
      - provider: groq
        model: llama-3.1-8b-instant
`;
  gw = await startGateway(yaml, { env: keys });
  client = new OpenAI({ apiKey: MASTER_KEY, baseURL: gw.url, maxRetries: 0 });
});

after(async () => { await gw.stop(); await sim.stop(); gw.cleanup(); });
beforeEach(async () => { await sim.reset(); });

const user = (content) => [{ role: 'user', content }];
const image = [{ type: 'text', text: 'what is this?' },
  { type: 'image_url', image_url: { url: 'data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==' } }];

async function lastRequest() {
  const reqs = await sim.requests();
  assert.equal(reqs.length, 1, JSON.stringify(reqs.map((r) => r.path)));
  return reqs[0];
}

function db(sql) {
  const q = spawnSync('sqlite3', ['-json', join(gw.dir, 'yourouter.db'), sql], { encoding: 'utf8' });
  assert.equal(q.status, 0, q.stderr);
  return JSON.parse(q.stdout || '[]');
}

async function rowFor(requestId) {
  for (let i = 0; i < 500; i++) {
    const rows = db(`SELECT * FROM usage WHERE request_id = '${requestId}'`);
    if (rows.length > 0) return rows[0];
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`no usage row for ${requestId}`);
}

test('preset defaults: the base path and key of the preset, max_tokens clamped, reasoning_effort dropped', async () => {
  const { data, response } = await client.chat.completions.create({
    model: 'chat', messages: user('hi'), max_tokens: 64000, reasoning_effort: 'high', temperature: 0.25,
  }).withResponse();
  assert.equal(response.status, 200);
  assert.equal(typeof data.choices[0].message.content, 'string');
  assert.equal(response.headers.get('x-yourouter-attempts'), 'groq/llama-3.3-70b-versatile=ok:200');
  const r = await lastRequest();
  assert.equal(r.path, '/openai/v1/chat/completions');
  assert.equal(r.headers.authorization, `Bearer ${keys.GROQ_API_KEY}`);
  assert.equal(r.body.model, 'llama-3.3-70b-versatile');
  assert.equal(r.body.max_tokens, 32768, "the model's output limit");
  assert.ok(!('reasoning_effort' in r.body), 'a model without reasoning gets no reasoning_effort');
  assert.equal(r.body.temperature, 0.25, 'everything else as the client sent it');
});

test('a stream with max_completion_tokens under the limit is left alone', async () => {
  const stream = await client.chat.completions.create({
    model: 'chat', messages: user('hi'), max_completion_tokens: 500, stream: true,
  });
  let text = '';
  for await (const chunk of stream) text += chunk.choices[0]?.delta?.content ?? '';
  assert.ok(text.length > 0);
  const r = await lastRequest();
  assert.equal(r.body.max_completion_tokens, 500);
  assert.equal(r.body.stream, true);
});

test('reasoning_effort is mapped to a value the model takes (grok-3-mini: low or high)', async () => {
  await client.chat.completions.create({ model: 'grok', messages: user('hi'), reasoning_effort: 'medium' });
  let r = await lastRequest();
  assert.equal(r.path, '/xai/v1/chat/completions');
  assert.equal(r.headers.authorization, `Bearer ${keys.XAI_API_KEY}`);
  assert.equal(r.body.reasoning_effort, 'low');
  await sim.reset();
  await client.chat.completions.create({ model: 'grok', messages: user('hi'), reasoning_effort: 'high' });
  r = await lastRequest();
  assert.equal(r.body.reasoning_effort, 'high');
});

test('an Anthropic client with thinking, on a model without reasoning: thinking dropped, max_tokens clamped', async () => {
  const res = await fetch(`${gw.base}/v1/messages`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-api-key': MASTER_KEY, 'anthropic-version': '2023-06-01' },
    body: JSON.stringify({ model: 'chat', max_tokens: 64000, thinking: { type: 'enabled', budget_tokens: 8000 }, messages: user('hi') }),
  });
  assert.equal(res.status, 200, await res.clone().text());
  assert.equal((await res.json()).type, 'message');
  const r = await lastRequest();
  assert.ok(!('reasoning_effort' in r.body));
  const max = r.body.max_completion_tokens ?? r.body.max_tokens;
  assert.equal(max, 32768);
});

test('a Responses client is fitted the same way', async () => {
  const r0 = await client.responses.create({ model: 'chat', input: 'hi', max_output_tokens: 64000, reasoning: { effort: 'high' }, store: false });
  assert.equal(r0.status, 'completed');
  const r = await lastRequest();
  assert.equal(r.path, '/openai/v1/chat/completions');
  assert.equal(r.body.max_completion_tokens ?? r.body.max_tokens, 32768);
  assert.ok(!('reasoning_effort' in r.body));
});

test('native passthrough is fitted too: an Anthropic client on an Anthropic route', async () => {
  const res = await fetch(`${gw.base}/v1/messages`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-api-key': MASTER_KEY, 'anthropic-version': '2023-06-01' },
    body: JSON.stringify({ model: 'haiku', max_tokens: 64000, thinking: { type: 'enabled', budget_tokens: 8000 }, messages: user('hi') }),
  });
  assert.equal(res.status, 200, await res.clone().text());
  const r = await lastRequest();
  assert.equal(r.path, '/v1/messages');
  assert.equal(r.body.model, 'claude-3-5-haiku-20241022');
  assert.equal(r.body.max_tokens, 8192, "claude-3-5-haiku's output limit");
  assert.ok(!('thinking' in r.body), 'Claude 3.5 Haiku does not think');
});

test('native passthrough is fitted too: a Gemini client on a Gemini route', async () => {
  const res = await fetch(`${gw.base}/v1beta/models/flash:generateContent`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-goog-api-key': MASTER_KEY },
    body: JSON.stringify({ contents: [{ role: 'user', parts: [{ text: 'hi' }] }],
      generationConfig: { temperature: 0.5, maxOutputTokens: 60000, thinkingConfig: { thinkingBudget: 1024 } } }),
  });
  assert.equal(res.status, 200, await res.clone().text());
  const r = await lastRequest();
  assert.match(r.path, /\/models\/gemini-2\.0-flash:generateContent$/);
  assert.deepEqual(r.body.generationConfig, { temperature: 0.5, maxOutputTokens: 8192 });
});

test('each attempt is fitted to its own model, from what the client sent', async () => {
  await sim.script([{ status: 500 }, { text: 'ok' }]);
  const { response } = await client.chat.completions.create({
    model: 'mixed', messages: user('hi'), max_tokens: 64000, reasoning_effort: 'high',
  }).withResponse();
  assert.equal(response.headers.get('x-yourouter-attempts'),
    'anthropic/claude-3-5-haiku-20241022=server_error:500, local/my-model=ok:200');
  const [first, second] = await sim.requests();
  assert.equal(first.path, '/v1/messages');
  assert.equal(first.body.max_tokens, 8192, 'translated to Anthropic, clamped');
  assert.ok(!('thinking' in first.body));
  assert.equal(second.path, '/vllm/v1/chat/completions');
  assert.equal(second.body.max_tokens, 64000, 'the next model knows no limit: the client\'s value');
  assert.equal(second.body.reasoning_effort, 'high');
});

test('a local preset sends no key; a model the catalog does not know is assumed capable', async () => {
  const { response } = await client.chat.completions.create({
    model: 'local', messages: user(image), max_tokens: 1000000,
    tools: [{ type: 'function', function: { name: 'f', parameters: { type: 'object' } } }],
    response_format: { type: 'json_schema', json_schema: { name: 'x', schema: { type: 'object' } } },
    reasoning_effort: 'minimal',
  }).withResponse();
  assert.equal(response.status, 200);
  const r = await lastRequest();
  assert.equal(r.path, '/vllm/v1/chat/completions');
  assert.equal(r.headers.authorization, undefined);
  assert.equal(r.body.max_tokens, 1000000, 'no limit known: nothing clamped');
  assert.equal(r.body.reasoning_effort, 'minimal');
});

test('images skip a text-only route, with the reason in x-yourouter-attempts', async () => {
  const { response } = await client.chat.completions.create({ model: 'vision', messages: user(image) }).withResponse();
  assert.equal(response.status, 200);
  assert.equal(response.headers.get('x-yourouter-attempts'),
    'cerebras/llama-3.3-70b=skipped:vision, groq/meta-llama/llama-4-scout-17b-16e-instruct=ok:200');
  const r = await lastRequest();
  assert.equal(r.path, '/openai/v1/chat/completions');
  assert.equal(r.body.model, 'meta-llama/llama-4-scout-17b-16e-instruct');
  // without images the first route serves
  await sim.reset();
  const plain = await client.chat.completions.create({ model: 'vision', messages: user('hi') }).withResponse();
  assert.equal(plain.response.headers.get('x-yourouter-attempts'), 'cerebras/llama-3.3-70b=ok:200');
});

test('capabilities and limits from the config override the catalog', async () => {
  // the override says the fine-tune takes tools only; llama-3.1-8b-instant has no json_schema either
  await assert.rejects(
    client.chat.completions.create({
      model: 'finetune', messages: user('hi'),
      response_format: { type: 'json_schema', json_schema: { name: 'x', schema: { type: 'object' } } },
    }),
    (e) => {
      assert.equal(e.status, 400);
      assert.equal(e.headers.get('x-yourouter-attempts'),
        'local/text-only-finetune=skipped:json_schema, groq/llama-3.1-8b-instant=skipped:json_schema');
      return true;
    });
  // with tools the fine-tune serves, and its configured output limit applies
  const ok = await client.chat.completions.create({
    model: 'finetune', messages: user('hi'), max_tokens: 5000,
    tools: [{ type: 'function', function: { name: 'f', parameters: { type: 'object' } } }],
  }).withResponse();
  assert.equal(ok.response.headers.get('x-yourouter-attempts'), 'local/text-only-finetune=ok:200');
  const r = await lastRequest();
  assert.equal(r.body.max_tokens, 100);
});

test('400 naming the capability when no route can serve the request', async () => {
  await assert.rejects(
    client.chat.completions.create({ model: 'text-only', messages: user(image) }),
    (e) => {
      assert.equal(e.status, 400);
      assert.equal(e.code, 'capability_not_supported');
      assert.equal(e.param, 'messages');
      assert.match(e.message, /'vision' capability/);
      assert.equal(e.headers.get('x-yourouter-attempts'),
        'cerebras/llama-3.3-70b=skipped:vision, deepseek/deepseek-chat=skipped:vision');
      return true;
    });
  await assert.rejects(
    client.chat.completions.create({
      model: 'text-only', messages: user('hi'),
      response_format: { type: 'json_schema', json_schema: { name: 'x', schema: { type: 'object' } } },
    }, { headers: { vendor: 'deepseek' } }),
    (e) => {
      assert.equal(e.status, 400);
      assert.equal(e.param, 'response_format');
      assert.match(e.message, /json_schema/);
      assert.equal(e.headers.get('x-yourouter-attempts'), 'deepseek/deepseek-chat=skipped:json_schema');
      return true;
    });
  assert.equal((await sim.stats()).requests, 0, 'nothing went upstream');
});

test('cost from the catalog prices: usage rows and the admin usage API', async () => {
  await sim.script([{ text: 'ok', usage: { prompt_tokens: 1000000, completion_tokens: 1000000 } }]);
  const { response } = await client.chat.completions.create({ model: 'chat', messages: user('hi') }).withResponse();
  const row = await rowFor(response.headers.get('x-request-id'));
  assert.equal(row.provider, 'groq');
  assert.equal(row.upstream_model, 'llama-3.3-70b-versatile');
  assert.equal(row.prompt_tokens, 1000000);
  assert.equal(row.cost_micros, 590000 + 790000, 'Groq: $0.59 in, $0.79 out per 1M');
  // DeepSeek's cached input at its own price
  await sim.script([{ text: 'ok', usage: { prompt_tokens: 2000000, completion_tokens: 0, prompt_tokens_details: { cached_tokens: 1000000 } } }]);
  const ds = await client.chat.completions.create({ model: 'text-only', messages: user('hi') }, { headers: { vendor: 'deepseek' } }).withResponse();
  const drow = await rowFor(ds.response.headers.get('x-request-id'));
  assert.equal(drow.cost_micros, 280000 + 28000);
  // a local server costs nothing, but is priced (not NULL)
  const loc = await client.chat.completions.create({ model: 'local', messages: user('hi') }).withResponse();
  assert.equal((await rowFor(loc.response.headers.get('x-request-id'))).cost_micros, 0);
  const u = await fetch(`${gw.base}/admin/usage?by=model&since=1d`, { headers: { authorization: `Bearer ${MASTER_KEY}` } });
  assert.equal(u.status, 200);
  const chat = (await u.json()).data.find((x) => x.group === 'chat');
  assert.ok(chat.cost_usd >= 1.38, JSON.stringify(chat));
});

test('yourouter check names an unknown preset and the known ones', () => {
  const bad = join(gw.dir, 'bad-preset.yaml');
  writeFileSync(bad, 'providers:\n  g:\n    kind: openai\n    preset: grok\n');
  const r = spawnSync(YR_BIN, ['check', '--config', bad], { encoding: 'utf8' });
  assert.notEqual(r.status, 0);
  assert.match(r.stderr, /bad-preset\.yaml:4: providers\.g\.preset: unknown preset 'grok' \(known: openai, groq, deepseek, mistral, xai, openrouter, together, fireworks, cerebras, ollama, vllm\)/);
});
