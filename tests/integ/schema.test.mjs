// Everything we send in OpenAI's format validates against OpenAI's published
// schemas (tests/schemas/openai.json, written from the OpenAPI spec; see
// tests/schemas/README.md): completions and every stream chunk from an
// OpenAI route (the simulator's bytes, relayed) and from Anthropic and Gemini
// routes (translated; Gemini's with thought signatures in extra_content), error bodies, the in-stream error event, and /v1/models.
import { test, before, after, beforeEach, describe } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Ajv from 'ajv';
import { startSim, startGateway, config, chat, sseData, MASTER_KEY } from './lib.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const schema = JSON.parse(readFileSync(join(here, '..', 'schemas', 'openai.json'), 'utf8'));
const ajv = new Ajv({ allErrors: true, strict: true, allowUnionTypes: true });
ajv.addSchema(schema);
const validator = (name) => ajv.getSchema(`${schema.$id}#/definitions/${name}`);
const V = {
  completion: validator('CreateChatCompletionResponse'),
  chunk: validator('CreateChatCompletionStreamResponse'),
  error: validator('ErrorResponse'),
  models: validator('ListModelsResponse'),
  model: validator('Model'),
};

function assertValid(kind, value, what) {
  const ok = V[kind](value);
  assert.ok(ok, `${what}: not a valid ${kind}: ${ajv.errorsText(V[kind].errors)}\n${JSON.stringify(value)}`);
}

// A stream's chunks, each validated; the stream must end with [DONE].
function validChunks(r, what) {
  assert.equal(r.status, 200, r.text);
  const data = sseData(r.text);
  assert.equal(data.at(-1), '[DONE]', `${what}: ends with [DONE]: ${r.text.slice(-300)}`);
  const chunks = data.slice(0, -1).map((d) => JSON.parse(d));
  chunks.forEach((c, i) => assertValid('chunk', c, `${what}, chunk ${i}`));
  return chunks;
}

test('the schemas reject what OpenAI\'s spec rejects (they are not vacuous)', () => {
  const msg = { role: 'assistant', content: 'x', refusal: null };
  const completion = { id: 'c', object: 'chat.completion', created: 1, model: 'm',
    choices: [{ index: 0, message: msg, logprobs: null, finish_reason: 'stop' }] };
  assert.ok(V.completion(completion), ajv.errorsText(V.completion.errors));
  const bad = [
    { ...completion, object: 'chat.completion.chunk' },
    { ...completion, created: '1' },
    { ...completion, choices: [{ ...completion.choices[0], message: { role: 'assistant', content: 'x' } }] },
    { ...completion, choices: [{ ...completion.choices[0], finish_reason: null }] },
    { ...completion, choices: [{ ...completion.choices[0], finish_reason: 'done' }] },
    { ...completion, choices: [{ index: 0, message: msg, finish_reason: 'stop' }] },
    { ...completion, usage: { prompt_tokens: 1, completion_tokens: 1 } },
  ];
  bad.forEach((b, i) => assert.ok(!V.completion(b), `bad completion ${i} accepted`));
  const chunk = { id: 'c', object: 'chat.completion.chunk', created: 1, model: 'm',
    choices: [{ index: 0, delta: {}, finish_reason: null }], usage: null };
  assert.ok(V.chunk(chunk), ajv.errorsText(V.chunk.errors));
  assert.ok(!V.chunk({ ...chunk, choices: [{ index: 0, delta: { tool_calls: [{ id: 'x' }] }, finish_reason: null }] }));
  assert.ok(!V.chunk({ ...chunk, choices: [{ index: 0, finish_reason: null }] }));
  assert.ok(!V.error({ error: { message: 'm', type: 't', code: null } }), 'param is required');
  assert.ok(!V.models({ object: 'list', data: [{ id: 'm', object: 'model', created: 1 }] }), 'owned_by is required');
});

const ANTH_KEY = 'sk-ant-test-' + 'a'.repeat(24);
let oaiSim, anthSim, gemSim, gw;

before(async () => {
  oaiSim = await startSim();
  anthSim = await startSim(['--require-key', ANTH_KEY]);
  gemSim = await startSim();
  gw = await startGateway(config({
    providers: {
      openai: { base_url: oaiSim.url },
      anthropic: { kind: 'anthropic', base_url: anthSim.base, api_key: ANTH_KEY },
      google: { kind: 'gemini', base_url: gemSim.base },
    },
    models: [
      { id: 'via-openai', routes: [{ provider: 'openai', model: 'gpt-4o' }] },
      { id: 'via-anthropic', routes: [{ provider: 'anthropic', model: 'claude-sonnet-4-20250514' }] },
      { id: 'via-gemini', routes: [{ provider: 'google', model: 'gemini-3-pro-preview' }] },
    ],
    server: { max_body_bytes: 65536 },
  }));
});
after(async () => { await gw.stop(); await oaiSim.stop(); await anthSim.stop(); await gemSim.stop(); gw.cleanup(); });
beforeEach(async () => { await oaiSim.reset(); await anthSim.reset(); await gemSim.reset(); await gw.resetRoutes(); });

const user = (content) => [{ role: 'user', content }];
const weatherTool = { type: 'function', function: { name: 'get_weather', parameters: { type: 'object', properties: { city: { type: 'string' } } } } };
const twoCalls = { tool_calls: [{ name: 'get_weather', arguments: { city: 'Paris' } }, { name: 'get_weather', arguments: { city: 'Oslo' } }] };
const simFor = (route) => (route === 'via-openai' ? oaiSim : route === 'via-anthropic' ? anthSim : gemSim);

for (const route of ['via-openai', 'via-anthropic', 'via-gemini']) {
  describe(`chat.completion and chunks, ${route}`, () => {
    test('text', async () => {
      const r = await chat(gw, { model: route, messages: user('Reply with exactly: connected') });
      assert.equal(r.status, 200, r.text);
      assertValid('completion', r.json, 'text');
      assert.equal(r.json.choices[0].message.content, 'connected');
      assert.equal(r.json.choices[0].message.refusal, null);
    });

    test('tool calls', async () => {
      await simFor(route).script([twoCalls]);
      const r = await chat(gw, { model: route, tools: [weatherTool], messages: user('Weather in Paris and Oslo?') });
      assert.equal(r.status, 200, r.text);
      assertValid('completion', r.json, 'tool calls');
      assert.equal(r.json.choices[0].finish_reason, 'tool_calls');
      assert.equal(r.json.choices[0].message.tool_calls.length, 2);
    });

    test('length', async () => {
      const r = await chat(gw, { model: route, max_tokens: 2, messages: user('Explain model routing in two sentences.') });
      assert.equal(r.status, 200, r.text);
      assertValid('completion', r.json, 'length');
      assert.equal(r.json.choices[0].finish_reason, 'length');
    });

    for (const include_usage of [false, true]) {
      test(`stream text, include_usage ${include_usage}`, async () => {
        const r = await chat(gw, { model: route, stream: true, ...(include_usage ? { stream_options: { include_usage } } : {}),
          messages: user('Explain model routing in two sentences.') });
        const chunks = validChunks(r, 'stream text');
        assert.equal(chunks[0].choices[0].delta.role, 'assistant');
        if (include_usage) {
          assert.deepEqual(chunks.at(-1).choices, []);
          assert.ok(chunks.at(-1).usage.total_tokens > 0);
          assert.ok(chunks.slice(0, -1).every((c) => c.usage === null), 'usage: null on the other chunks');
        } else {
          assert.ok(chunks.every((c) => !('usage' in c)));
        }
      });

      test(`stream tool calls, include_usage ${include_usage}`, async () => {
        await simFor(route).script([twoCalls]);
        const r = await chat(gw, { model: route, stream: true, tools: [weatherTool],
          ...(include_usage ? { stream_options: { include_usage } } : {}), messages: user('Weather?') });
        const chunks = validChunks(r, 'stream tools');
        const calls = chunks.flatMap((c) => c.choices[0]?.delta?.tool_calls ?? []);
        assert.deepEqual([...new Set(calls.map((c) => c.index))], [0, 1]);
        assert.equal(chunks.find((c) => c.choices[0]?.finish_reason)?.choices[0].finish_reason, 'tool_calls');
      });
    }
  });
}

test('n: 2 through the OpenAI route, stream and not', async () => {
  const body = { model: 'via-openai', n: 2, messages: user('Reply with exactly: two') };
  const r = await chat(gw, body);
  assert.equal(r.status, 200, r.text);
  assertValid('completion', r.json, 'n=2');
  assert.equal(r.json.choices.length, 2);
  const chunks = validChunks(await chat(gw, { ...body, stream: true, stream_options: { include_usage: true } }), 'n=2 stream');
  assert.deepEqual([...new Set(chunks.flatMap((c) => c.choices.map((ch) => ch.index)))], [0, 1]);
});

test('reasoning through the Anthropic route: completion and chunks stay valid', async () => {
  const body = { model: 'via-anthropic', reasoning_effort: 'low', max_tokens: 2000, messages: user('Why is the sky blue?') };
  const r = await chat(gw, body);
  assert.equal(r.status, 200, r.text);
  assertValid('completion', r.json, 'reasoning');
  assert.ok(r.json.choices[0].message.reasoning_content);
  const s = await chat(gw, { ...body, stream: true, stream_options: { include_usage: true } });
  const chunks = validChunks(s, 'reasoning stream');
  assert.ok(chunks.some((c) => c.choices[0]?.delta?.reasoning_content));
});

test('the SSE error event after a provider error event mid-stream (Anthropic)', async () => {
  await anthSim.script([{ stream_error: 'overloaded_error', stream_error_after: 5, chunks: 10 }]);
  const r = await chat(gw, { model: 'via-anthropic', stream: true, messages: user('Explain model routing in two sentences.') });
  assert.equal(r.status, 200, r.text);
  const data = sseData(r.text);
  data.slice(0, -1).forEach((d, i) => assertValid('chunk', JSON.parse(d), `chunk ${i}`));
  assertValid('error', JSON.parse(data.at(-1)), 'stream error event');
});

describe('error bodies', () => {
  test('400: a body that is not JSON', async () => {
    const r = await chat(gw, '{"model": "via-openai", "messages": [');
    assert.equal(r.status, 400);
    assertValid('error', r.json, '400');
  });

  test('400: a parameter the Anthropic route refuses', async () => {
    const r = await chat(gw, { model: 'via-anthropic', n: 2, messages: user('x') });
    assert.equal(r.status, 400);
    assertValid('error', r.json, '400 translated');
    assert.equal(r.json.error.param, 'n');
  });

  test('401: no key, a wrong key', async () => {
    for (const key of [null, 'sk-wrong']) {
      const r = await chat(gw, { model: 'via-openai', messages: user('x') }, { key });
      assert.equal(r.status, 401);
      assertValid('error', r.json, `401 ${key}`);
    }
  });

  test('404: an unknown path, an unknown model', async () => {
    const r = await fetch(`${gw.url}/no/such/path`, { headers: { authorization: `Bearer ${MASTER_KEY}` } });
    assert.equal(r.status, 404);
    assertValid('error', await r.json(), '404 path');
    const m = await chat(gw, { model: 'no-such-model', messages: user('x') });
    assert.ok(m.status >= 400, m.text);
    assertValid('error', m.json, 'unknown model');
  });

  test('405: a method the path does not take', async () => {
    const r = await fetch(`${gw.url}/chat/completions`, { headers: { authorization: `Bearer ${MASTER_KEY}` } });
    assert.equal(r.status, 405);
    assertValid('error', await r.json(), '405');
  });

  test('413 and 431: what the HTTP layer refuses', async () => {
    let r = await chat(gw, { model: 'via-openai', messages: user('x'.repeat(70000)) });
    assert.equal(r.status, 413);
    assertValid('error', r.json, '413');
    r = await chat(gw, { model: 'via-openai', messages: user('x') }, { headers: { 'x-big': 'y'.repeat(40000) } });
    assert.equal(r.status, 431);
    assertValid('error', r.json, '431');
  });

  for (const route of ['via-openai', 'via-anthropic']) {
    test(`429 and 502 after upstream faults, ${route}`, async () => {
      await simFor(route).script([{ status: 429, retry_after: 1 }]);
      let r = await chat(gw, { model: route, messages: user('x') });
      assert.equal(r.status, 429, r.text);
      assertValid('error', r.json, '429');
      await simFor(route).script([{ status: 500 }]);
      r = await chat(gw, { model: route, messages: user('x') });
      assert.equal(r.status, 502, r.text);
      assertValid('error', r.json, '502');
      await simFor(route).script([{ malformed: true }]);
      r = await chat(gw, { model: route, messages: user('x') });
      assert.equal(r.status, 502, r.text);
      assertValid('error', r.json, '502 malformed');
    });

    test(`the SSE error event after a cut stream, ${route}`, async () => {
      // past the 200: OpenAI commits at once, Anthropic with its second output event
      await simFor(route).script([{ cut_after: 6, chunks: 10 }]);
      const r = await chat(gw, { model: route, stream: true, messages: user('Explain model routing in two sentences.') });
      assert.equal(r.status, 200);
      const data = sseData(r.text);
      assert.notEqual(data.at(-1), '[DONE]');
      data.slice(0, -1).forEach((d, i) => assertValid('chunk', JSON.parse(d), `chunk ${i}`));
      assertValid('error', JSON.parse(data.at(-1)), 'stream error event');
    });
  }
});

test('/v1/models is a ListModelsResponse', async () => {
  const r = await fetch(`${gw.url}/models`, { headers: { authorization: `Bearer ${MASTER_KEY}` } });
  assert.equal(r.status, 200);
  const body = await r.json();
  assertValid('models', body, '/v1/models');
  assert.deepEqual(body.data.map((m) => m.id).sort(), ['via-anthropic', 'via-gemini', 'via-openai']);
  const denied = await fetch(`${gw.url}/models`);
  assert.equal(denied.status, 401);
  assertValid('error', await denied.json(), '/v1/models without a key');
});

test('the simulator\'s own models list and errors are valid too', async () => {
  let r = await fetch(`${oaiSim.url}/models`);
  assertValid('models', await r.json(), 'sim /v1/models');
  r = await fetch(`${oaiSim.url}/models/gpt-4o`);
  assertValid('model', await r.json(), 'sim /v1/models/{id}');
  r = await fetch(`${oaiSim.url}/nothing`);
  assert.equal(r.status, 404);
  assertValid('error', await r.json(), 'sim 404');
  for (const status of [400, 401, 403, 404, 408, 413, 429, 500, 503, 504]) {
    await oaiSim.script([{ status }]);
    r = await fetch(`${oaiSim.url}/chat/completions`, { method: 'POST', body: JSON.stringify({ model: 'm', messages: user('x') }) });
    assert.equal(r.status, status);
    assertValid('error', await r.json(), `sim ${status}`);
  }
});
