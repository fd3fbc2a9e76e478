// The official OpenAI SDK (npm `openai`) and the Anthropic SDK (through
// /v1/messages) against Bedrock routes (kind: bedrock, the simulator's
// Bedrock dialect, which verifies every SigV4 signature with its test keys):
// text, streams (AWS eventstream), multi-step tool loops, images, reasoning,
// Bedrock API keys, and errors (ThrottlingException failover, exception
// frames before and after content, ValidationException, wrong credentials).
import { test, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { once } from 'node:events';
import OpenAI from 'openai';
import Anthropic from '@anthropic-ai/sdk';
import { startSim, startGateway, MASTER_KEY } from '../integ/lib.mjs';

const AK = 'AKIDSIMTEST0001';
const SECRET = 'sim/Secret+Key=' + 's'.repeat(20);
const API_KEY = 'ABSK-sim-' + 'b'.repeat(30);
const MODEL = 'us.anthropic.claude-3-5-haiku-20241022-v1:0';
const PNG = Buffer.from('iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==', 'base64');
let br, oai, gw, client, anth, images;

before(async () => {
  br = await startSim(['--aws-credentials', `${AK}:${SECRET}`, '--require-key', API_KEY]);
  oai = await startSim();
  images = http.createServer((req, res) => { res.writeHead(200, { 'content-type': 'image/png' }); res.end(PNG); });
  images.listen(0, '127.0.0.1');
  await once(images, 'listening');
  const aws = (extra) => `    kind: bedrock\n    base_url: ${br.base}\n    region: us-east-1\n${extra}`;
  gw = await startGateway(`server:
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
  aws:
${aws(`    aws_access_key_id: ${AK}\n    aws_secret_access_key: '${SECRET}'\n`)}
  aws-apikey:
${aws(`    api_key: ${API_KEY}\n`)}
  aws-wrong:
${aws(`    aws_access_key_id: ${AK}\n    aws_secret_access_key: not-the-secret\n`)}
  openai:
    kind: openai
    base_url: ${oai.url}
models:
  - id: claude
    routes:
      - provider: aws
        model: ${MODEL}
  - id: claude-apikey
    routes:
      - provider: aws-apikey
        model: ${MODEL}
  - id: claude-sonnet
    routes:
      - provider: aws
        model: us.anthropic.claude-sonnet-4-20250514-v1:0
  - id: nova
    routes:
      - provider: aws
        model: us.amazon.nova-2-lite-v1:0
  - id: wrong
    routes:
      - provider: aws-wrong
        model: ${MODEL}
  - id: claude-then-gpt
    routes:
      - provider: aws
        model: ${MODEL}
      - provider: openai
        model: gpt-4o
`);
  client = new OpenAI({ apiKey: MASTER_KEY, baseURL: gw.url, maxRetries: 0 });
  anth = new Anthropic({ apiKey: MASTER_KEY, baseURL: gw.base, maxRetries: 0 });
});
after(async () => { await gw.stop(); await br.stop(); await oai.stop(); images.close(); gw.cleanup(); });
beforeEach(async () => { await br.reset(); await oai.reset(); await gw.resetRoutes(); });

const user = (content) => [{ role: 'user', content }];
const weather = { type: 'function', function: { name: 'get_weather', description: 'Weather for a city', parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] } } };
const now = { type: 'function', function: { name: 'get_time' } };
const modelPath = (op) => `/model/${MODEL.replace(':', '%3A')}/${op}`;

async function collect(stream) {
  const calls = [];
  let content = '', reasoning = '', finish = [], usage = null, roles = 0;
  for await (const chunk of stream) {
    if (chunk.usage) usage = chunk.usage;
    const ch = chunk.choices[0];
    if (!ch) continue;
    if (ch.delta.role) roles++;
    content += ch.delta.content ?? '';
    reasoning += ch.delta.reasoning_content ?? '';
    if (ch.finish_reason) finish.push(ch.finish_reason);
    for (const d of ch.delta.tool_calls ?? []) {
      calls[d.index] ??= { id: '', type: 'function', function: { name: '', arguments: '' } };
      if (d.id) calls[d.index].id = d.id;
      if (d.function?.name) calls[d.index].function.name = d.function.name;
      calls[d.index].function.arguments += d.function?.arguments ?? '';
    }
  }
  return { content, reasoning, finish, usage, roles, calls };
}

test('text: a SigV4-signed Converse call, the model id one encoded segment, and the chat.completion', async () => {
  const c = await client.chat.completions.create({ model: 'claude', temperature: 0.5, top_p: 0.9, max_tokens: 50, stop: 'END',
    messages: [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'Hello' },
      { role: 'user', content: [{ type: 'text', text: '  ' }, { type: 'text', text: 'Reply with exactly: connected' }] }] });
  assert.equal(c.object, 'chat.completion');
  assert.equal(c.choices[0].message.content, 'connected');
  assert.equal(c.choices[0].finish_reason, 'stop');
  assert.match(c.id, /req_/, 'the id comes from x-amzn-RequestId');
  assert.equal(c.usage.total_tokens, c.usage.prompt_tokens + c.usage.completion_tokens);
  const [req] = await br.requests();
  assert.equal(req.path, modelPath('converse'));
  assert.match(req.headers.authorization, new RegExp(`^AWS4-HMAC-SHA256 Credential=${AK}/\\d{8}/us-east-1/bedrock/aws4_request, SignedHeaders=content-type;host;x-amz-date, Signature=[0-9a-f]{64}$`));
  assert.match(req.headers['x-amz-date'], /^\d{8}T\d{6}Z$/);
  assert.deepEqual(req.body.system, [{ text: 'Be brief.' }]);
  assert.deepEqual(req.body.messages, [{ role: 'user', content: [{ text: 'Hello' }, { text: 'Reply with exactly: connected' }] }],
    'same-role turns merged, the blank one never sent');
  assert.deepEqual(req.body.inferenceConfig, { maxTokens: 50, temperature: 0.5, topP: 0.9, stopSequences: ['END'] });
});

test('stream with usage: eventstream decoded into role, text, one finish, one usage chunk, [DONE]', async () => {
  await br.script([{ usage: { inputTokens: 10, cacheReadInputTokens: 100, cacheWriteInputTokens: 5, outputTokens: 4 } }]);
  const out = await collect(await client.chat.completions.create({ model: 'claude', stream: true, stream_options: { include_usage: true },
    messages: user('Reply with exactly: one two three four') }));
  assert.equal(out.content, 'one two three four');
  assert.deepEqual(out.finish, ['stop']);
  assert.equal(out.roles, 1);
  assert.equal(out.usage.prompt_tokens, 115, 'input plus cache reads and writes');
  assert.equal(out.usage.prompt_tokens_details.cached_tokens, 100);
  assert.equal(out.usage.completion_tokens, 4);
  const [req] = await br.requests();
  assert.equal(req.path, modelPath('converse-stream'));
  assert.equal(req.headers.accept, 'application/vnd.amazon.eventstream');
});

test('tools, multi-step: toolUse/toolResult turns, {} for a call without arguments, toolConfig kept for the history', async () => {
  const messages = user('Weather in Paris, and the time?');
  await br.script([{ tool_calls: [{ name: 'get_weather', arguments: { city: 'Paris' } }, { name: 'get_time', arguments: {} }] }]);
  const step1 = await client.chat.completions.create({ model: 'claude', tools: [weather, now], messages });
  assert.equal(step1.choices[0].finish_reason, 'tool_calls');
  const calls = step1.choices[0].message.tool_calls;
  assert.deepEqual(calls.map((c) => [c.function.name, JSON.parse(c.function.arguments)]), [['get_weather', { city: 'Paris' }], ['get_time', {}]]);
  messages.push(step1.choices[0].message,
    { role: 'tool', tool_call_id: calls[0].id, content: '18C and sunny' },
    { role: 'tool', tool_call_id: calls[1].id, content: '14:05' });

  await br.script([{ tool_calls: [{ name: 'get_weather', arguments: { city: 'Rome' } }] }]);
  const step2 = await collect(await client.chat.completions.create({ model: 'claude', stream: true, tools: [weather, now], messages }));
  assert.deepEqual(step2.finish, ['tool_calls']);
  assert.deepEqual(JSON.parse(step2.calls[0].function.arguments), { city: 'Rome' });
  messages.push({ role: 'assistant', content: null, tool_calls: [{ ...step2.calls[0], function: { name: 'get_weather', arguments: '' } }] },
    { role: 'tool', tool_call_id: step2.calls[0].id, content: '25C' });

  // the last step sends no tools (and tool_choice none): the history still needs a toolConfig
  const done = await client.chat.completions.create({ model: 'claude', tool_choice: 'none', messages });
  assert.equal(done.choices[0].finish_reason, 'stop');
  const reqs = await br.requests();
  assert.deepEqual(reqs[0].body.toolConfig.tools.map((t) => t.toolSpec.name), ['get_weather', 'get_time']);
  assert.deepEqual(reqs[0].body.toolConfig.tools[1].toolSpec.inputSchema, { json: { type: 'object', properties: {} } });
  assert.equal(reqs[0].body.toolConfig.toolChoice, undefined);
  const last = reqs[2].body;
  assert.deepEqual(last.messages.map((m) => m.role), ['user', 'assistant', 'user', 'assistant', 'user']);
  assert.deepEqual(last.messages[1].content[1], { toolUse: { toolUseId: calls[1].id, name: 'get_time', input: {} } });
  assert.deepEqual(last.messages[2].content, [
    { toolResult: { toolUseId: calls[0].id, content: [{ text: '18C and sunny' }] } },
    { toolResult: { toolUseId: calls[1].id, content: [{ text: '14:05' }] } }]);
  assert.deepEqual(last.messages[3].content[0].toolUse.input, {}, 'empty arguments go up as {}');
  const spec = (name) => ({ toolSpec: { name, inputSchema: { json: { type: 'object', properties: {} } } } });
  assert.deepEqual(last.toolConfig, { tools: [spec('get_weather'), spec('get_time')] }, 'a spec per function the history names');
});

test('tool_choice: required and a named function map to any and tool; none without history sends no tools', async () => {
  await client.chat.completions.create({ model: 'claude', tools: [weather, now], tool_choice: 'required', messages: user('x') });
  await client.chat.completions.create({ model: 'claude', tools: [weather, now], tool_choice: { type: 'function', function: { name: 'get_time' } }, messages: user('x') });
  const r = await client.chat.completions.create({ model: 'claude', tools: [weather], tool_choice: 'none', messages: user('Reply with exactly: no tools') });
  assert.equal(r.choices[0].message.content, 'no tools');
  const reqs = await br.requests();
  assert.deepEqual(reqs[0].body.toolConfig.toolChoice, { any: {} });
  assert.deepEqual(reqs[1].body.toolConfig.toolChoice, { tool: { name: 'get_time' } });
  assert.equal(reqs[2].body.toolConfig, undefined);
});

test('images: a remote URL is fetched by the gateway and sent as bytes; a data URL too', async () => {
  const url = `http://127.0.0.1:${images.address().port}/image.png`;
  for (const u of [url, `data:image/png;base64,${PNG.toString('base64')}`]) {
    await br.reset();
    const c = await client.chat.completions.create({ model: 'claude', messages: [{ role: 'user', content: [
      { type: 'text', text: 'Describe this image.' }, { type: 'image_url', image_url: { url: u } }] }] });
    assert.match(c.choices[0].message.content, /\[1 image\]/);
    const [req] = await br.requests();
    assert.deepEqual(req.body.messages[0].content, [{ text: 'Describe this image.' },
      { image: { format: 'png', source: { bytes: PNG.toString('base64') } } }]);
  }
});

test('reasoning_effort: Claude thinking in additionalModelRequestFields, reasoning back in reasoning_content', async () => {
  const c = await client.chat.completions.create({ model: 'claude-sonnet', reasoning_effort: 'low', max_tokens: 500, messages: user('Reply with exactly: thought') });
  assert.equal(c.choices[0].message.content, 'thought');
  assert.match(c.choices[0].message.reasoning_content, /^Reasoning about: Reply with exactly/);
  const s = await collect(await client.chat.completions.create({ model: 'claude-sonnet', stream: true, reasoning_effort: 'low', messages: user('Reply with exactly: again') }));
  assert.equal(s.content, 'again');
  assert.match(s.reasoning, /^Reasoning about:/);
  const reqs = await br.requests();
  assert.deepEqual(reqs[0].body.additionalModelRequestFields, { thinking: { type: 'enabled', budget_tokens: 1024 } });
  assert.equal(reqs[0].body.inferenceConfig.maxTokens, 1524, 'a limit under the budget grows by it');
  assert.equal(reqs[1].body.inferenceConfig.maxTokens, 4096);
  await client.chat.completions.create({ model: 'nova', reasoning_effort: 'medium', messages: user('x') });
  assert.deepEqual((await br.requests())[2].body.additionalModelRequestFields, { reasoningConfig: { type: 'enabled', maxReasoningEffort: 'medium' } });
  // a model without reasoning (the catalog: Claude 3.5 Haiku) gets no thinking at all
  await client.chat.completions.create({ model: 'claude', reasoning_effort: 'high', messages: user('x') });
  assert.equal((await br.requests())[3].body.additionalModelRequestFields, undefined);
});

test('a Bedrock API key goes as Authorization: Bearer, unsigned', async () => {
  const c = await client.chat.completions.create({ model: 'claude-apikey', messages: user('Reply with exactly: keyed') });
  assert.equal(c.choices[0].message.content, 'keyed');
  const [req] = await br.requests();
  assert.equal(req.headers.authorization, `Bearer ${API_KEY}`);
  assert.equal(req.headers['x-amz-date'], undefined);
});

test('wrong credentials: the simulator refuses the signature (403), the client gets a 502 that leaks nothing', async () => {
  await assert.rejects(client.chat.completions.create({ model: 'wrong', messages: user('x') }),
    (e) => e.status === 502 && e.code === 'upstream_auth_failed' && !e.message.includes('not-the-secret') && !e.message.includes(SECRET));
  const [req] = await br.requests();
  assert.match(req.headers.authorization, /^AWS4-HMAC-SHA256 /);
});

test('ThrottlingException (429, x-amzn-ErrorType) fails over to the second route; alone it is a RateLimitError', async () => {
  await br.script([{ status: 429 }]);
  const { data, response } = await client.chat.completions.create({ model: 'claude-then-gpt', messages: user('Reply with exactly: moved') }).withResponse();
  assert.equal(data.choices[0].message.content, 'moved');
  assert.equal(response.headers.get('x-yourouter-provider'), 'openai');
  assert.match(response.headers.get('x-yourouter-attempts'), /aws\/.*=rate_limited:429/);
  // the type decides, read from x-amzn-ErrorType up to its ':' (ModelNotReady is overload, not a rate limit)
  await gw.resetRoutes();
  await br.script([{ status: 429, error_type: 'ModelNotReadyException' }]);
  const nr = await client.chat.completions.create({ model: 'claude-then-gpt', messages: user('Reply with exactly: ready') }).withResponse();
  assert.equal(nr.data.choices[0].message.content, 'ready');
  assert.match(nr.response.headers.get('x-yourouter-attempts'), /aws\/.*=overloaded:429/);
  await gw.resetRoutes();
  await br.script([{ status: 429, error_message: 'Too many tokens, please wait before trying again.' }]);
  await assert.rejects(client.chat.completions.create({ model: 'claude', messages: user('x') }),
    (e) => e instanceof OpenAI.RateLimitError && /Too many tokens/.test(e.message));
});

test('ServiceUnavailable and 5xx fail over; ValidationException is the client\'s 400 with its message, never retried', async () => {
  await br.script([{ status: 503 }]);
  let r = await client.chat.completions.create({ model: 'claude-then-gpt', messages: user('Reply with exactly: a') });
  assert.equal(r.choices[0].message.content, 'a');
  await gw.resetRoutes();
  await br.script([{ status: 500 }]);
  r = await client.chat.completions.create({ model: 'claude-then-gpt', stream: true, messages: user('Reply with exactly: b') });
  assert.equal((await collect(r)).content, 'b');
  await gw.resetRoutes();
  await br.script([{ status: 400, error_message: 'The model returned the following errors: input is too long' }]);
  await assert.rejects(client.chat.completions.create({ model: 'claude-then-gpt', messages: user('x') }),
    (e) => e instanceof OpenAI.BadRequestError && /input is too long/.test(e.message));
  assert.equal((await oai.requests()).length, 2, 'the 400 did not go to the second route');
});

test('an exception frame before any content fails over; after content the SDK raises, never a silent end', async () => {
  await br.script([{ stream_error: 'throttlingException', stream_error_after: 1 }]);
  const out = await collect(await client.chat.completions.create({ model: 'claude-then-gpt', stream: true, messages: user('Reply with exactly: safe') }));
  assert.equal(out.content, 'safe');
  assert.equal((await oai.requests()).length, 1);
  await gw.resetRoutes();
  await br.script([{ stream_error: 'modelStreamErrorException', stream_error_after: 3, text: 'one two three four five' }]);
  const s = await client.chat.completions.create({ model: 'claude-then-gpt', stream: true, messages: user('x') });
  let text = '';
  await assert.rejects((async () => { for await (const c of s) text += c.choices[0]?.delta?.content ?? ''; })(),
    (e) => /error occurred while streaming/.test(e.message));
  assert.equal(text, 'one two', 'the content before the exception arrived');
});

test('faults: a malformed answer or a cut before content fails over; mid-stream it raises; a slow first byte is waited for', async () => {
  await br.script([{ malformed: true }]);
  const m = await client.chat.completions.create({ model: 'claude-then-gpt', messages: user('Reply with exactly: m') });
  assert.equal(m.choices[0].message.content, 'm');
  await gw.resetRoutes();
  await br.script([{ malformed: true, text: 'one two three four five six' }]);
  const s = await client.chat.completions.create({ model: 'claude', stream: true, messages: user('x') });
  await assert.rejects(collect(s), (e) => /malformed event/.test(e.message));
  await gw.resetRoutes();
  await br.script([{ cut_after: 1 }]);
  const out = await collect(await client.chat.completions.create({ model: 'claude-then-gpt', stream: true, messages: user('Reply with exactly: c') }));
  assert.equal(out.content, 'c');
  await br.script([{ headers_delay_ms: 150 }]);
  const t0 = Date.now();
  const r = await client.chat.completions.create({ model: 'claude', messages: user('Reply with exactly: slow') });
  assert.equal(r.choices[0].message.content, 'slow');
  assert.ok(Date.now() - t0 >= 140);
});

test('refused before sending: n > 1, response_format, a temperature outside 0..1', async () => {
  for (const [extra, param] of [[{ n: 2 }, 'n'], [{ response_format: { type: 'json_object' } }, 'response_format'], [{ temperature: 1.5 }, 'temperature']])
    await assert.rejects(client.chat.completions.create({ model: 'claude', messages: user('x'), ...extra }),
      (e) => e instanceof OpenAI.BadRequestError && e.param === param);
  assert.equal((await br.requests()).length, 0);
});

test('the Anthropic SDK through /v1/messages to a Bedrock route: text, stream, tools', async () => {
  const m = await anth.messages.create({ model: 'claude', max_tokens: 64, system: 'Be brief.', messages: [{ role: 'user', content: 'Reply with exactly: via messages' }] });
  assert.equal(m.content[0].text, 'via messages');
  assert.equal(m.stop_reason, 'end_turn');
  const stream = anth.messages.stream({ model: 'claude', max_tokens: 64, messages: [{ role: 'user', content: 'Reply with exactly: one two three' }] });
  let text = '';
  for await (const ev of stream) if (ev.type === 'content_block_delta' && ev.delta.type === 'text_delta') text += ev.delta.text;
  assert.equal(text, 'one two three');
  assert.equal((await stream.finalMessage()).stop_reason, 'end_turn');
  await br.script([{ tool_calls: [{ name: 'get_weather', arguments: { city: 'Oslo' } }] }]);
  const t = await anth.messages.create({ model: 'claude', max_tokens: 64, messages: [{ role: 'user', content: 'Weather?' }],
    tools: [{ name: 'get_weather', input_schema: { type: 'object', properties: { city: { type: 'string' } } } }] });
  assert.equal(t.stop_reason, 'tool_use');
  const use = t.content.find((b) => b.type === 'tool_use');
  assert.deepEqual(use.input, { city: 'Oslo' });
  const r = await anth.messages.create({ model: 'claude', max_tokens: 64, tools: [{ name: 'get_weather', input_schema: { type: 'object' } }], messages: [
    { role: 'user', content: 'Weather?' }, { role: 'assistant', content: t.content },
    { role: 'user', content: [{ type: 'tool_result', tool_use_id: use.id, content: 'cold' }] }] });
  assert.equal(r.stop_reason, 'end_turn');
  const reqs = await br.requests();
  assert.deepEqual(reqs[0].body.system, [{ text: 'Be brief.' }]);
  assert.equal(reqs[1].path, modelPath('converse-stream'));
  assert.deepEqual(reqs[3].body.messages[2].content, [{ toolResult: { toolUseId: use.id, content: [{ text: 'cold' }] } }]);
});
