// The official Anthropic SDK (npm @anthropic-ai/sdk) against POST /v1/messages,
// through an Anthropic route (passthrough) and an OpenAI route (translated).
import { test, before, after, beforeEach, describe } from 'node:test';
import assert from 'node:assert/strict';
import Anthropic from '@anthropic-ai/sdk';
import { startSim, startGateway, config, MASTER_KEY } from '../integ/lib.mjs';

const ANTH_KEY = 'sk-ant-sdk-' + 'b'.repeat(24);
let oaiSim, anthSim, gw, client;

before(async () => {
  oaiSim = await startSim();
  anthSim = await startSim(['--require-key', ANTH_KEY]);
  gw = await startGateway(config({
    providers: {
      openai: { base_url: oaiSim.url },
      anthropic: { kind: 'anthropic', base_url: anthSim.base, api_key: ANTH_KEY },
    },
    models: [
      { id: 'claude-sonnet-4-20250514', routes: [{ provider: 'anthropic' }] },
      { id: 'gpt-4o', routes: [{ provider: 'openai' }] },
    ],
  }));
  client = new Anthropic({ apiKey: MASTER_KEY, baseURL: gw.base, maxRetries: 0 });
});
after(async () => { await gw.stop(); await oaiSim.stop(); await anthSim.stop(); gw.cleanup(); });
beforeEach(async () => { await oaiSim.reset(); await anthSim.reset(); await gw.resetRoutes(); });

const tools = [{ name: 'get_weather', description: 'Weather for a city', input_schema: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] } }];

for (const [model, sim] of [['claude-sonnet-4-20250514', () => anthSim], ['gpt-4o', () => oaiSim]]) {
  describe(`messages via ${model}`, () => {
    test('create', async () => {
      const m = await client.messages.create({ model, max_tokens: 64, messages: [{ role: 'user', content: 'Reply with exactly: connected' }] });
      assert.equal(m.type, 'message');
      assert.equal(m.role, 'assistant');
      assert.equal(m.content[0].type, 'text');
      assert.equal(m.content[0].text, 'connected');
      assert.equal(m.stop_reason, 'end_turn');
      assert.ok(m.usage.input_tokens > 0 && m.usage.output_tokens > 0);
    });

    test('stream: text events and finalMessage', async () => {
      const stream = client.messages.stream({ model, max_tokens: 64, messages: [{ role: 'user', content: 'Reply with exactly: one two three' }] });
      let text = '';
      stream.on('text', (t) => { text += t; });
      const final = await stream.finalMessage();
      assert.equal(text, 'one two three');
      assert.equal(final.content[0].text, 'one two three');
      assert.equal(final.stop_reason, 'end_turn');
      assert.ok(final.usage.output_tokens > 0);
    });

    test('tool use streamed: input assembled from every fragment', async () => {
      const input = { city: 'Paris', note: 'a long enough note to be split into several JSON fragments' };
      await sim().script([{ tool_calls: [{ name: 'get_weather', arguments: input }] }]);
      const stream = client.messages.stream({ model, max_tokens: 256, tools, messages: [{ role: 'user', content: 'Weather in Paris?' }] });
      let fragments = 0;
      stream.on('inputJson', () => { fragments++; });
      const final = await stream.finalMessage();
      const use = final.content.find((b) => b.type === 'tool_use');
      assert.equal(use.name, 'get_weather');
      assert.deepEqual(use.input, input);
      assert.ok(use.id);
      assert.equal(final.stop_reason, 'tool_use');
      assert.ok(fragments >= 2, `several input_json_delta fragments (${fragments})`);
    });

    test('tool result round trip', async () => {
      const m = await client.messages.create({ model, max_tokens: 64, tools, messages: [
        { role: 'user', content: 'Weather in Paris?' },
        { role: 'assistant', content: [{ type: 'tool_use', id: 'toolu_01', name: 'get_weather', input: { city: 'Paris' } }] },
        { role: 'user', content: [{ type: 'tool_result', tool_use_id: 'toolu_01', content: '18C' }, { type: 'text', text: 'Reply with exactly: thanks' }] },
      ] });
      assert.equal(m.content[0].text, 'thanks');
    });

    test('errors are the SDK error classes', async () => {
      const bad = new Anthropic({ apiKey: 'wrong', baseURL: gw.base, maxRetries: 0 });
      await assert.rejects(bad.messages.create({ model, max_tokens: 8, messages: [{ role: 'user', content: 'x' }] }), Anthropic.AuthenticationError);
      await assert.rejects(client.messages.create({ model, messages: [{ role: 'user', content: 'x' }] }), Anthropic.BadRequestError);
      await sim().script([{ status: 429, retry_after: 3 }]);
      await assert.rejects(client.messages.create({ model, max_tokens: 8, messages: [{ role: 'user', content: 'x' }] }),
        (e) => e instanceof Anthropic.RateLimitError && e.headers.get('retry-after') === '3');
    });

    test('a stream cut mid-way raises in the SDK', async () => {
      await sim().script([{ cut_after: model === 'gpt-4o' ? 3 : 5, chunks: 10 }]);
      const stream = client.messages.stream({ model, max_tokens: 64, messages: [{ role: 'user', content: 'Explain model routing in two sentences.' }] });
      await assert.rejects(stream.finalMessage(), Anthropic.APIError);
    });
  });
}

test('passthrough: the Anthropic provider receives the client body, with the client headers', async () => {
  await client.messages.create({ model: 'claude-sonnet-4-20250514', max_tokens: 32, top_k: 5, messages: [{ role: 'user', content: 'hi' }] },
    { headers: { 'anthropic-beta': 'some-beta-2025-01-01' } });
  const [req] = await anthSim.requests();
  assert.equal(req.body.top_k, 5, 'fields the OpenAI model has no place for survive');
  assert.equal(req.headers['anthropic-beta'], 'some-beta-2025-01-01');
  assert.equal(req.headers['x-api-key'], ANTH_KEY);
  assert.ok(!JSON.stringify(req).includes(MASTER_KEY));
});

test('passthrough is as tolerant as the provider: mid-conversation system messages and unknown fields', async () => {
  // Current Anthropic clients send role "system" inside messages, and new
  // fields appear before any gateway knows them: an Anthropic route gets
  // them untouched and the provider judges.
  const messages = [
    { role: 'user', content: 'hi' },
    { role: 'system', content: 'From now on answer in French.' },
    { role: 'user', content: 'Reply with exactly: bonjour' },
  ];
  const m = await client.messages.create({ model: 'claude-sonnet-4-20250514', max_tokens: 32, messages });
  assert.equal(m.content[0].text, 'bonjour');
  const [req] = await anthSim.requests();
  assert.deepEqual(req.body.messages, messages);
  // What the provider refuses comes back in the provider's words: the
  // gateway did not judge (a field unknown to it, a missing max_tokens).
  await assert.rejects(client.messages.create({ model: 'claude-sonnet-4-20250514', max_tokens: 8, messages, brand_new_field: { x: 1 } }),
    (e) => e.status === 400 && /brand_new_field: Extra inputs are not permitted/.test(e.message));
  await assert.rejects(client.messages.create({ model: 'claude-sonnet-4-20250514', messages: [{ role: 'user', content: 'no max_tokens' }] }),
    (e) => e.status === 400 && /max_tokens/.test(e.message));
  const reqs = await anthSim.requests();
  assert.equal(reqs.length, 3, 'the provider judged every one');
  assert.deepEqual(reqs[1].body.brand_new_field, { x: 1 });
});

test('529 overloaded on the only route surfaces as 503', async () => {
  await anthSim.script([{ status: 529 }]);
  await assert.rejects(client.messages.create({ model: 'claude-sonnet-4-20250514', max_tokens: 8, messages: [{ role: 'user', content: 'x' }] }),
    (e) => e.status === 503 && e.error?.error?.type === 'overloaded_error');
});

test('count_tokens: upstream count on an Anthropic route, estimate elsewhere', async () => {
  const body = { messages: [{ role: 'user', content: 'hello there, how are you today?' }] };
  const a = await client.messages.countTokens({ model: 'claude-sonnet-4-20250514', ...body });
  assert.ok(a.input_tokens > 0);
  const [req] = await anthSim.requests();
  assert.match(req.path, /count_tokens$/);
  const o = await client.messages.countTokens({ model: 'gpt-4o', ...body });
  assert.ok(o.input_tokens > 0);
});
