// The official OpenAI SDK (npm `openai`) against Gemini routes (kind: gemini,
// the simulator's Gemini dialect): text, streams, the seed's image request,
// multi-step sequential and parallel tool loops on a Gemini 3 model whose
// thought signatures the simulator enforces, JSON output, reasoning, and
// errors (429 with RetryInfo, per-day quota, 400).
import { test, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { once } from 'node:events';
import OpenAI from 'openai';
import Anthropic from '@anthropic-ai/sdk';
import { startSim, startGateway, MASTER_KEY } from '../integ/lib.mjs';

const GEM_KEY = 'AIza-sdk-' + 'k'.repeat(30);
const PNG = Buffer.from('iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==', 'base64');
let gemSim, oaiSim, gw, client, images;

before(async () => {
  gemSim = await startSim(['--require-key', GEM_KEY]);
  oaiSim = await startSim();
  images = http.createServer((req, res) => { res.writeHead(200, { 'content-type': 'image/png' }); res.end(PNG); });
  images.listen(0, '127.0.0.1');
  await once(images, 'listening');
  const yaml = `server:
  listen: 127.0.0.1:0
  master_key: \${YOUROUTER_MASTER_KEY}
  workers: 2
storage:
  url: sqlite://yourouter.db
images:
  allow_http: true
  allow:
    - 127.0.0.1/32:${images.address().port}
providers:
  google:
    kind: gemini
    base_url: ${gemSim.base}
    api_key: ${GEM_KEY}
  google-badkey:
    kind: gemini
    base_url: ${gemSim.base}
    api_key: AIza-not-the-right-key
  openai:
    kind: openai
    base_url: ${oaiSim.url}
models:
  - id: badkey-then-gpt
    routes:
      - provider: google-badkey
        model: gemini-2.5-flash
      - provider: openai
        model: gpt-4o
  - id: badkey
    routes:
      - provider: google-badkey
        model: gemini-2.5-flash
  - id: gemini-2.5-flash
    routes:
      - provider: google
  - id: gemini-3
    routes:
      - provider: google
        model: gemini-3-pro-preview
  - id: gemini-2.0
    routes:
      - provider: google
        model: gemini-2.0-flash
  - id: gemini-then-gpt
    routes:
      - provider: google
        model: gemini-2.5-flash
      - provider: openai
        model: gpt-4o
`;
  gw = await startGateway(yaml);
  client = new OpenAI({ apiKey: MASTER_KEY, baseURL: gw.url, maxRetries: 0 });
});
after(async () => { await gw.stop(); await gemSim.stop(); await oaiSim.stop(); images.close(); gw.cleanup(); });
beforeEach(async () => { await gemSim.reset(); await oaiSim.reset(); await gw.resetRoutes(); });

const user = (content) => [{ role: 'user', content }];
const weather = { type: 'function', function: { name: 'get_weather', description: 'Weather for a city', parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'], additionalProperties: false } } };
const time = { type: 'function', function: { name: 'get_time', parameters: { type: 'object', properties: { tz: { type: 'string' } } } } };

test('text: the request Gemini receives and the chat.completion the SDK gets', async () => {
  const c = await client.chat.completions.create({ model: 'gemini-2.5-flash', temperature: 0.5, max_tokens: 50, messages: [
    { role: 'system', content: 'Be brief.' }, ...user('Reply with exactly: connected')] });
  assert.equal(c.object, 'chat.completion');
  assert.equal(c.choices[0].message.content, 'connected');
  assert.equal(c.choices[0].finish_reason, 'stop');
  assert.equal(c.usage.total_tokens, c.usage.prompt_tokens + c.usage.completion_tokens);
  const [req] = await gemSim.requests();
  assert.equal(req.path, '/v1beta/models/gemini-2.5-flash:generateContent');
  assert.equal(req.headers['x-goog-api-key'], GEM_KEY);
  assert.ok(!req.query.includes('key='), 'the key never goes in the URL');
  assert.equal(req.headers.authorization, undefined);
  assert.deepEqual(req.body.systemInstruction, { parts: [{ text: 'Be brief.' }] });
  assert.deepEqual(req.body.contents, [{ role: 'user', parts: [{ text: 'Reply with exactly: connected' }] }]);
  assert.deepEqual(req.body.generationConfig, { temperature: 0.5, maxOutputTokens: 50 });
});

test('stream with usage: role, text, one finish, one usage chunk (cumulative counts, not summed), [DONE]', async () => {
  const stream = await client.chat.completions.create({ model: 'gemini-2.5-flash', stream: true, stream_options: { include_usage: true },
    messages: user('Reply with exactly: one two three four') });
  let text = '', finish = [], usage = null, roles = 0;
  for await (const chunk of stream) {
    if (chunk.usage) usage = chunk.usage;
    const ch = chunk.choices[0];
    if (!ch) continue;
    if (ch.delta.role) roles++;
    text += ch.delta.content ?? '';
    if (ch.finish_reason) finish.push(ch.finish_reason);
  }
  assert.equal(text, 'one two three four');
  assert.deepEqual(finish, ['stop']);
  assert.equal(roles, 1);
  assert.equal(usage.completion_tokens, 4, 'the last usageMetadata, not the sum of all of them');
  const [req] = await gemSim.requests();
  assert.equal(req.path, '/v1beta/models/gemini-2.5-flash:streamGenerateContent');
  assert.equal(req.query, 'alt=sse');
});

test("the seed's image request: a remote image is fetched by the gateway and sent inline; a data URL too", async () => {
  const url = `http://127.0.0.1:${images.address().port}/image.jpg`;
  for (const u of [url, `data:image/png;base64,${PNG.toString('base64')}`]) {
    await gemSim.reset();
    const c = await client.chat.completions.create({ model: 'gemini-2.5-flash', messages: [{ role: 'user', content: [
      { type: 'text', text: 'Describe this image in one sentence.' }, { type: 'image_url', image_url: { url: u } }] }] });
    assert.match(c.choices[0].message.content, /\[1 image\]/);
    const [req] = await gemSim.requests();
    assert.deepEqual(req.body.contents[0].parts, [{ text: 'Describe this image in one sentence.' },
      { inlineData: { mimeType: 'image/png', data: PNG.toString('base64') } }]);
  }
});

// Collects a streamed answer the way a client that keeps unknown fields does.
async function collect(stream) {
  const calls = [];
  let content = '', finish = null;
  for await (const chunk of stream) {
    const ch = chunk.choices[0];
    if (!ch) continue;
    content += ch.delta.content ?? '';
    finish = ch.finish_reason ?? finish;
    for (const d of ch.delta.tool_calls ?? []) {
      calls[d.index] ??= { id: '', type: 'function', function: { name: '', arguments: '' } };
      if (d.id) calls[d.index].id = d.id;
      if (d.function?.name) calls[d.index].function.name = d.function.name;
      calls[d.index].function.arguments += d.function?.arguments ?? '';
      if (d.extra_content) calls[d.index].extra_content = d.extra_content;
    }
  }
  return { content, finish, calls };
}

const sigOf = (call) => call.extra_content?.google?.thought_signature;

test('Gemini 3, sequential tool loop: each step keeps its signature, and the simulator checks them', async () => {
  const messages = user('Weather and time in Paris?');
  await gemSim.script([{ tool_calls: [{ name: 'get_weather', arguments: { city: 'Paris' } }] }]);
  const step1 = await client.chat.completions.create({ model: 'gemini-3', tools: [weather, time], messages });
  assert.equal(step1.choices[0].finish_reason, 'tool_calls');
  const call1 = step1.choices[0].message.tool_calls[0];
  assert.ok(sigOf(call1), `a signature in extra_content: ${JSON.stringify(call1)}`);
  assert.ok(!call1.id.includes(sigOf(call1)), 'never in the id');
  messages.push(step1.choices[0].message, { role: 'tool', tool_call_id: call1.id, content: '18C and sunny' });

  await gemSim.script([{ tool_calls: [{ name: 'get_time', arguments: { tz: 'Europe/Paris' } }] }]);
  const step2 = await collect(await client.chat.completions.create({ model: 'gemini-3', stream: true, tools: [weather, time], messages }));
  assert.equal(step2.finish, 'tool_calls');
  assert.ok(sigOf(step2.calls[0]), 'streamed calls carry it too');
  messages.push({ role: 'assistant', content: null, tool_calls: step2.calls }, { role: 'tool', tool_call_id: step2.calls[0].id, content: '14:05' });

  const done = await client.chat.completions.create({ model: 'gemini-3', tools: [weather, time], messages: [...messages, ] });
  assert.equal(done.choices[0].finish_reason, 'stop');
  assert.match(done.choices[0].message.content, /Weather and time in Paris/);
  const reqs = await gemSim.requests();
  const last = reqs.at(-1).body.contents;
  const steps = last.filter((c) => c.role === 'model');
  assert.deepEqual(steps.map((s) => s.parts[0].thoughtSignature), [sigOf(call1), sigOf(step2.calls[0])], 'sent back in the same parts');
  const answers = last.filter((c) => c.role === 'user').slice(1);
  assert.deepEqual(answers.map((c) => c.parts[0].functionResponse), [
    { name: 'get_weather', response: { result: '18C and sunny' } }, { name: 'get_time', response: { result: '14:05' } }]);
});

test('Gemini 3, parallel calls in separate events; a client that lost the signatures still gets through', async () => {
  await gemSim.script([{ tool_calls: [{ name: 'get_weather', arguments: { city: 'Paris' } }, { name: 'get_weather', arguments: { city: 'Rome' }, id: 'fc_rome' }] }]);
  // The SDK's own stream helper assembles the calls (and drops fields it does not know).
  const final = await client.chat.completions.stream({ model: 'gemini-3', tools: [weather], messages: user('Paris and Rome?') }).finalChatCompletion();
  const calls = final.choices[0].message.tool_calls;
  assert.equal(calls.length, 2);
  assert.deepEqual(calls.map((c) => JSON.parse(c.function.arguments).city), ['Paris', 'Rome']);
  assert.notEqual(calls[0].id, calls[1].id);
  assert.equal(calls[1].id, 'fc_rome', "Gemini's own call id is kept");
  const stripped = calls.map(({ id, type, function: fn }) => ({ id, type, function: fn }));
  const r = await client.chat.completions.create({ model: 'gemini-3', tools: [weather], messages: [...user('Paris and Rome?'),
    { role: 'assistant', content: null, tool_calls: stripped },
    { role: 'tool', tool_call_id: calls[0].id, content: '18C' }, { role: 'tool', tool_call_id: calls[1].id, content: '25C' }] });
  assert.equal(r.choices[0].finish_reason, 'stop');
  const body = (await gemSim.requests()).at(-1).body;
  const model = body.contents[1];
  assert.equal(model.parts[0].thoughtSignature, 'skip_thought_signature_validator', 'the documented placeholder');
  assert.equal(model.parts[1].functionCall.id, 'fc_rome');
  assert.equal(body.contents[2].parts.length, 2, 'both answers in one user turn');
  assert.equal(body.contents[2].parts[1].functionResponse.id, 'fc_rome', 'the id is echoed');
});

test('the simulator refuses a Gemini 3 step without its signature (what the gateway guards against)', async () => {
  const r = await fetch(`${gemSim.base}/v1beta/models/gemini-3-pro-preview:generateContent`, { method: 'POST', headers: { 'x-goog-api-key': GEM_KEY },
    body: JSON.stringify({ contents: [{ role: 'user', parts: [{ text: 'q' }] }, { role: 'model', parts: [{ functionCall: { name: 'f', args: {} } }] },
      { role: 'user', parts: [{ functionResponse: { name: 'f', response: { r: 1 } } }] }] }) });
  assert.equal(r.status, 400);
  const e = (await r.json()).error;
  assert.equal(e.status, 'INVALID_ARGUMENT');
  assert.match(e.message, /missing a thought_signature/);
});

test('json_schema: responseMimeType + responseJsonSchema on 2.5, a converted responseSchema on 2.0', async () => {
  const schema = { type: 'object', properties: { city: { type: 'string' }, temp: { anyOf: [{ type: 'number' }, { type: 'null' }] } }, required: ['city'], additionalProperties: false };
  const response_format = { type: 'json_schema', json_schema: { name: 'w', strict: true, schema } };
  await gemSim.script([{ text: '{"city":"Paris","temp":18}' }, { text: '{"city":"Paris","temp":null}' }]);
  const a = await client.chat.completions.create({ model: 'gemini-2.5-flash', response_format, messages: user('weather as JSON') });
  assert.deepEqual(JSON.parse(a.choices[0].message.content), { city: 'Paris', temp: 18 });
  const b = await client.chat.completions.create({ model: 'gemini-2.0', response_format, messages: user('weather as JSON') });
  assert.equal(JSON.parse(b.choices[0].message.content).temp, null);
  const [ra, rb] = await gemSim.requests();
  assert.equal(ra.body.generationConfig.responseMimeType, 'application/json');
  assert.deepEqual(ra.body.generationConfig.responseJsonSchema, schema);
  assert.deepEqual(rb.body.generationConfig.responseSchema, { type: 'OBJECT', properties: { city: { type: 'STRING' }, temp: { type: 'NUMBER', nullable: true } }, required: ['city'], propertyOrdering: ['city', 'temp'] });
});

test('reasoning: reasoning_effort -> thinkingConfig; thoughts come back as reasoning_content with reasoning_tokens', async () => {
  const c = await client.chat.completions.create({ model: 'gemini-2.5-flash', reasoning_effort: 'high', messages: user('Reply with exactly: 42') });
  assert.equal(c.choices[0].message.content, '42');
  assert.match(c.choices[0].message.reasoning_content, /^Thinking about: /);
  assert.ok(c.usage.completion_tokens_details.reasoning_tokens > 0);
  assert.equal(c.usage.completion_tokens, 1 + c.usage.completion_tokens_details.reasoning_tokens);
  const s = await client.chat.completions.create({ model: 'gemini-3', reasoning_effort: 'low', stream: true, messages: user('Reply with exactly: ok') });
  let reasoning = '';
  for await (const chunk of s) reasoning += chunk.choices[0]?.delta?.reasoning_content ?? '';
  assert.match(reasoning, /^Thinking about: /);
  const [r25, r3] = await gemSim.requests();
  assert.deepEqual(r25.body.generationConfig.thinkingConfig, { thinkingBudget: 24576, includeThoughts: true });
  assert.deepEqual(r3.body.generationConfig.thinkingConfig, { thinkingLevel: 'low', includeThoughts: true });
});

test('429 RESOURCE_EXHAUSTED with RetryInfo: fails over; on the only route the client gets its retry hint', async () => {
  await gemSim.script([{ status: 429, retry_delay: '57s' }]);
  const { data, response } = await client.chat.completions.create({ model: 'gemini-then-gpt', messages: user('Reply with exactly: ok') }).withResponse();
  assert.equal(data.choices[0].message.content, 'ok');
  assert.equal(response.headers.get('x-yourouter-vendor'), 'openai');
  await gw.resetRoutes();
  await gemSim.script([{ status: 429, retry_delay: '57s' }]);
  await assert.rejects(client.chat.completions.create({ model: 'gemini-2.5-flash', messages: user('x') }),
    (e) => e instanceof OpenAI.RateLimitError && e.headers.get('retry-after') === '57' && /exceeded your current quota/.test(e.message));
});

test('a per-day quota (QuotaFailure) is not retried on that route', async () => {
  await gemSim.script([{ status: 429, quota_id: 'GenerateRequestsPerDayPerProjectPerModel-FreeTier', retry_delay: '3s' }]);
  await assert.rejects(client.chat.completions.create({ model: 'gemini-2.5-flash', messages: user('x') }), OpenAI.RateLimitError);
  assert.equal((await gemSim.requests()).length, 1);
  // The route is spent: the next request does not call it again.
  await assert.rejects(client.chat.completions.create({ model: 'gemini-2.5-flash', messages: user('x') }), (e) => e.status === 429);
  assert.equal((await gemSim.requests()).length, 1);
  const r = await client.chat.completions.create({ model: 'gemini-then-gpt', messages: user('Reply with exactly: elsewhere') });
  assert.equal(r.choices[0].message.content, 'elsewhere');
  assert.equal((await gemSim.requests()).length, 1);
});

test('400s: INVALID_ARGUMENT from Gemini, and schemas the gateway cannot express, never sent', async () => {
  await gemSim.script([{ status: 400, error_message: 'Invalid value at contents[0]' }]);
  await assert.rejects(client.chat.completions.create({ model: 'gemini-then-gpt', messages: user('x') }),
    (e) => e instanceof OpenAI.BadRequestError && /Invalid value at contents\[0\]/.test(e.message));
  assert.equal((await oaiSim.requests()).length, 0, 'a 400 is about the request: no failover');
  await gemSim.reset();
  const recursive = { type: 'function', function: { name: 'tree', parameters: { type: 'object', properties: { node: { $ref: '#/$defs/N' } }, $defs: { N: { type: 'object', properties: { kids: { type: 'array', items: { $ref: '#/$defs/N' } } } } } } } };
  await assert.rejects(client.chat.completions.create({ model: 'gemini-2.5-flash', tools: [recursive], messages: user('x') }),
    (e) => e instanceof OpenAI.BadRequestError && e.param === 'tools[0].function.parameters' && /recursive/.test(e.message));
  await assert.rejects(client.chat.completions.create({ model: 'gemini-2.5-flash', messages: [{ role: 'system', content: 'only this' }] }),
    (e) => e instanceof OpenAI.BadRequestError && e.param === 'messages');
  assert.equal((await gemSim.requests()).length, 0);
});

test("Gemini's 400 API_KEY_INVALID is the gateway's key, not the client's request: 502, and failover", async () => {
  await assert.rejects(client.chat.completions.create({ model: 'badkey', messages: user('x') }),
    (e) => e.status === 502 && e.code === 'upstream_auth_failed' && !e.message.includes('AIza'));
  const r = await client.chat.completions.create({ model: 'badkey-then-gpt', messages: user('Reply with exactly: other key') });
  assert.equal(r.choices[0].message.content, 'other key');
});

test('RESOURCE_EXHAUSTED as the first stream event: its RetryInfo is the hint; a per-day quota there is a quota', async () => {
  await gemSim.script([{ stream_error: 'RESOURCE_EXHAUSTED', stream_error_after: 0, retry_delay: '9s' }]);
  const r = await fetch(`${gw.url}/chat/completions`, { method: 'POST', headers: { authorization: `Bearer ${MASTER_KEY}`, 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'gemini-2.5-flash', stream: true, messages: user('x') }) });
  assert.equal(r.status, 429, await r.text());
  assert.equal(r.headers.get('retry-after'), '9');
  const cooling = (await gw.routes()).find((x) => x.model === 'gemini-2.5-flash');
  assert.ok(cooling.available_in_ms > 0 && cooling.available_in_ms <= 9000, JSON.stringify(cooling));
  await gw.resetRoutes();
  await gemSim.script([{ stream_error: 'RESOURCE_EXHAUSTED', stream_error_after: 0, quota_id: 'GenerateRequestsPerDayPerProjectPerModel' }]);
  const out = await collect(await client.chat.completions.create({ model: 'gemini-then-gpt', stream: true, messages: user('Reply with exactly: moved') }));
  assert.equal(out.content, 'moved');
  const spent = (await gw.routes()).find((x) => x.model === 'gemini-then-gpt' && x.provider === 'google');
  assert.ok(spent.available_in_ms > 60000, `a spent daily quota cools the route for long: ${JSON.stringify(spent)}`);
});

test('UNAVAILABLE fails over; an in-stream error before any content fails over too', async () => {
  await gemSim.script([{ status: 503 }, { stream_error: 'UNAVAILABLE', stream_error_after: 0 }]);
  let r = await client.chat.completions.create({ model: 'gemini-then-gpt', messages: user('Reply with exactly: a') });
  assert.equal(r.choices[0].message.content, 'a');
  const out = await collect(await client.chat.completions.create({ model: 'gemini-then-gpt', stream: true, messages: user('Reply with exactly: b') }));
  assert.equal(out.content, 'b');
  assert.equal((await oaiSim.requests()).length, 2);
});

test('safety: a blocked prompt and a filtered answer are content_filter; an empty candidate is a valid length answer', async () => {
  await gemSim.script([{ block_reason: 'SAFETY' }, { finish_reason: 'SAFETY' }, { empty_candidate: true }, { block_reason: 'PROHIBITED_CONTENT' }]);
  let r = await client.chat.completions.create({ model: 'gemini-2.5-flash', messages: user('x') });
  assert.equal(r.choices[0].finish_reason, 'content_filter');
  assert.equal(r.choices[0].message.content, null);
  r = await client.chat.completions.create({ model: 'gemini-2.5-flash', messages: user('x') });
  assert.equal(r.choices[0].finish_reason, 'content_filter');
  r = await client.chat.completions.create({ model: 'gemini-2.5-flash', max_tokens: 64, messages: user('x') });
  assert.equal(r.choices[0].finish_reason, 'length');
  assert.equal(r.choices[0].message.content, null);
  assert.equal(r.usage.completion_tokens_details.reasoning_tokens, 64);
  const out = await collect(await client.chat.completions.create({ model: 'gemini-2.5-flash', stream: true, messages: user('x') }));
  assert.equal(out.finish, 'content_filter');
});

test('a stream cut mid-way throws in the SDK instead of ending quietly', async () => {
  await gemSim.script([{ cut_after: 2, chunks: 10 }]);
  const stream = await client.chat.completions.create({ model: 'gemini-2.5-flash', stream: true, messages: user('Explain model routing in two sentences.') });
  await assert.rejects((async () => { for await (const _ of stream) { /* drain */ } })(), OpenAI.APIError);
});

test('an Anthropic client reaches a Gemini route through the OpenAI model, tool loop included', async () => {
  const anth = new Anthropic({ apiKey: MASTER_KEY, baseURL: gw.base, maxRetries: 0 });
  const tools = [{ name: 'get_weather', description: 'Weather', input_schema: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] } }];
  await gemSim.script([{ tool_calls: [{ name: 'get_weather', arguments: { city: 'Paris' } }] }]);
  const m1 = await anth.messages.create({ model: 'gemini-3', max_tokens: 100, tools, messages: [{ role: 'user', content: 'Weather in Paris?' }] });
  assert.equal(m1.stop_reason, 'tool_use');
  const use = m1.content.find((b) => b.type === 'tool_use');
  assert.deepEqual(use.input, { city: 'Paris' });
  const m2 = await anth.messages.create({ model: 'gemini-3', max_tokens: 100, tools, messages: [
    { role: 'user', content: 'Weather in Paris?' }, { role: 'assistant', content: m1.content },
    { role: 'user', content: [{ type: 'tool_result', tool_use_id: use.id, content: '18C' }] }] });
  assert.equal(m2.stop_reason, 'end_turn');
  const body = (await gemSim.requests()).at(-1).body;
  assert.equal(body.contents[1].parts[0].functionCall.name, 'get_weather');
  assert.ok(body.contents[1].parts[0].thoughtSignature, 'a signature (the placeholder: Anthropic clients have no field for it)');
  assert.deepEqual(body.contents[2].parts[0].functionResponse, { name: 'get_weather', response: { result: '18C' } });
});
