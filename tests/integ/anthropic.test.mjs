// One table of scenarios, run through the gateway against an OpenAI route, an
// Anthropic route, Gemini routes (2.5 and 3), Vertex AI routes (Gemini and
// Claude, with a static access token) and a Bedrock route (Converse,
// eventstream; bedrock.test.mjs has its specifics): an OpenAI client must not
// be able to tell them apart. Then what the Anthropic provider actually received
// (the Gemini specifics are in gemini.test.mjs).
import { test, before, after, beforeEach, describe } from 'node:test';
import assert from 'node:assert/strict';
import { startSim, startGateway, config, chat, sseData } from './lib.mjs';

const ANTH_KEY = 'sk-ant-test-' + 'a'.repeat(24);
const GEM_KEY = 'AIza-test-' + 'g'.repeat(29);
const BR_KEY = 'ABSK-test-' + 'b'.repeat(29);
let oaiSim, anthSim, gemSim, brSim, gw;

before(async () => {
  oaiSim = await startSim();
  anthSim = await startSim(['--require-key', ANTH_KEY]);
  gemSim = await startSim(['--require-key', GEM_KEY]);
  brSim = await startSim(['--require-key', BR_KEY]);
  gw = await startGateway(config({
    providers: {
      openai: { base_url: oaiSim.url },
      anthropic: { kind: 'anthropic', base_url: anthSim.base, api_key: ANTH_KEY },
      google: { kind: 'gemini', base_url: gemSim.base, api_key: GEM_KEY },
      aws: { kind: 'bedrock', base_url: brSim.base, api_key: BR_KEY },
      vertex: { kind: 'vertex', base_url: gemSim.base, api_key: GEM_KEY },
    },
    models: [
      { id: 'via-gemini-vertex', routes: [{ provider: 'vertex', model: 'gemini-2.5-flash' }] },
      { id: 'via-vertex-claude', routes: [{ provider: 'vertex', model: 'claude-sonnet-4@20250514' }] },
      { id: 'via-openai', routes: [{ provider: 'openai', model: 'gpt-4o' }] },
      { id: 'via-anthropic', routes: [{ provider: 'anthropic', model: 'claude-sonnet-4-20250514' }] },
      { id: 'via-gemini', routes: [{ provider: 'google', model: 'gemini-2.5-flash' }] },
      { id: 'via-gemini3', routes: [{ provider: 'google', model: 'gemini-3-pro-preview' }] },
      { id: 'via-bedrock', routes: [{ provider: 'aws', model: 'us.anthropic.claude-3-5-haiku-20241022-v1:0' }] },
      { id: 'claude-then-gpt', routes: [{ provider: 'anthropic', model: 'claude-sonnet-4-20250514' }, { provider: 'openai', model: 'gpt-4o' }] },
    ],
  }).replace('kind: vertex\n', 'kind: vertex\n    project: scenarios\n'), { env: { AWS_REGION: 'us-east-1' } });
});
after(async () => { await gw.stop(); await oaiSim.stop(); await anthSim.stop(); await gemSim.stop(); await brSim.stop(); gw.cleanup(); });
beforeEach(async () => { await oaiSim.reset(); await anthSim.reset(); await gemSim.reset(); await brSim.reset(); await gw.resetRoutes(); });

const user = (content) => [{ role: 'user', content }];
const weatherTool = { type: 'function', function: { name: 'get_weather', description: 'Weather for a city', parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] } } };
const timeTool = { type: 'function', function: { name: 'get_time', parameters: { type: 'object', properties: { tz: { type: 'string' } } } } };
const PNG = 'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==';

function simFor(route) {
  return route === 'via-openai' ? oaiSim : route === 'via-anthropic' ? anthSim : route === 'via-bedrock' ? brSim : gemSim;
}
const gemini = (route) => route.startsWith('via-gemini');
// Routes whose provider takes images inline only: the gateway fetches URLs.
const inlines = (route) => gemini(route) || route === 'via-bedrock';
// Script the next answer of whichever provider the route uses.
async function script(route, behaviour) { await simFor(route).script([behaviour]); }

function chunksOf(r) {
  const data = sseData(r.text);
  assert.equal(data.at(-1), '[DONE]', `stream ends with [DONE]: ${r.text.slice(-300)}`);
  return data.slice(0, -1).map((d) => JSON.parse(d));
}

function streamedToolCalls(chunks) {
  const calls = [];
  for (const c of chunks) for (const d of c.choices[0]?.delta?.tool_calls ?? []) {
    calls[d.index] ??= { id: '', name: '', args: '' };
    if (d.id) calls[d.index].id = d.id;
    if (d.function?.name) calls[d.index].name = d.function.name;
    calls[d.index].args += d.function?.arguments ?? '';
  }
  return calls;
}

for (const route of ['via-openai', 'via-anthropic', 'via-gemini', 'via-gemini3', 'via-gemini-vertex', 'via-vertex-claude', 'via-bedrock']) {
  describe(`scenarios ${route}`, () => {
    test('text', async () => {
      const r = await chat(gw, { model: route, messages: user('Reply with exactly: connected') });
      assert.equal(r.status, 200, r.text);
      assert.equal(r.json.object, 'chat.completion');
      assert.equal(r.json.choices[0].message.role, 'assistant');
      assert.equal(r.json.choices[0].message.content, 'connected');
      assert.equal(r.json.choices[0].finish_reason, 'stop');
      const u = r.json.usage;
      assert.ok(u.prompt_tokens > 0 && u.completion_tokens > 0);
      assert.equal(u.total_tokens, u.prompt_tokens + u.completion_tokens);
    });

    test('stream with usage', async () => {
      const r = await chat(gw, { model: route, stream: true, stream_options: { include_usage: true }, messages: user('Reply with exactly: alpha beta gamma') });
      assert.equal(r.status, 200);
      const chunks = chunksOf(r);
      assert.equal(chunks[0].choices[0].delta.role, 'assistant');
      assert.equal(chunks.filter((c) => c.choices[0]?.delta?.role).length, 1, 'one role delta');
      const text = chunks.map((c) => c.choices[0]?.delta?.content ?? '').join('');
      assert.equal(text, 'alpha beta gamma');
      assert.ok(chunks.every((c) => c.object === 'chat.completion.chunk'));
      const fin = chunks.filter((c) => c.choices[0]?.finish_reason);
      assert.equal(fin.length, 1);
      assert.equal(fin[0].choices[0].finish_reason, 'stop');
      assert.deepEqual(chunks.at(-1).choices, []);
      assert.ok(chunks.at(-1).usage.completion_tokens > 0);
    });

    test('stream without include_usage has no usage chunk', async () => {
      const r = await chat(gw, { model: route, stream: true, messages: user('Reply with exactly: x y') });
      const chunks = chunksOf(r);
      assert.ok(chunks.every((c) => c.choices.length === 1));
    });

    test('tool call, non-stream', async () => {
      await script(route, { tool_calls: [{ name: 'get_weather', arguments: { city: 'Paris' } }] });
      const r = await chat(gw, { model: route, tools: [weatherTool], messages: user('Weather in Paris?') });
      assert.equal(r.status, 200, r.text);
      const m = r.json.choices[0].message;
      assert.equal(r.json.choices[0].finish_reason, 'tool_calls');
      assert.equal(m.tool_calls.length, 1);
      assert.equal(m.tool_calls[0].type, 'function');
      assert.equal(m.tool_calls[0].function.name, 'get_weather');
      assert.ok(m.tool_calls[0].id);
      assert.deepEqual(JSON.parse(m.tool_calls[0].function.arguments), { city: 'Paris' });
    });

    test('parallel tool calls, streamed, every argument fragment kept', async () => {
      const args0 = { city: 'Paris', units: 'metric', note: 'a fairly long argument string to force fragments' };
      const args1 = { tz: 'Europe/Paris' };
      await script(route, { tool_calls: [{ name: 'get_weather', arguments: args0 }, { name: 'get_time', arguments: args1 }] });
      const r = await chat(gw, { model: route, stream: true, tools: [weatherTool, timeTool], messages: user('both please') });
      const chunks = chunksOf(r);
      const calls = streamedToolCalls(chunks);
      assert.equal(calls.length, 2);
      assert.equal(calls[0].name, 'get_weather');
      assert.equal(calls[1].name, 'get_time');
      assert.ok(calls[0].id && calls[1].id && calls[0].id !== calls[1].id);
      assert.deepEqual(JSON.parse(calls[0].args), args0);
      assert.deepEqual(JSON.parse(calls[1].args), args1);
      const frags = chunks.flatMap((c) => c.choices[0]?.delta?.tool_calls ?? []).filter((d) => d.index === 0 && d.function?.arguments);
      // Gemini sends each call whole, in an event of its own.
      if (!gemini(route)) assert.ok(frags.length >= 2, 'arguments arrive in several fragments');
      assert.equal(chunks.find((c) => c.choices[0]?.finish_reason).choices[0].finish_reason, 'tool_calls');
    });

    test('tool result follow-up, with a system prompt', async () => {
      const r = await chat(gw, { model: route, tools: [weatherTool], messages: [
        { role: 'system', content: 'You are terse.' },
        { role: 'user', content: 'Weather in Paris?' },
        { role: 'assistant', content: null, tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Paris"}' } }] },
        { role: 'tool', tool_call_id: 'call_1', content: '18C and sunny' },
        { role: 'user', content: 'Reply with exactly: thanks' },
      ] });
      assert.equal(r.status, 200, r.text);
      assert.equal(r.json.choices[0].message.content, 'thanks');
    });

    test('vision: data URL and https URL', async () => {
      // Gemini, Vertex-Claude and Bedrock routes have the gateway fetch https images
      // (gemini.test.mjs, bedrock.test.mjs, behind the SSRF guard).
      for (const url of [`data:image/png;base64,${PNG}`, ...(inlines(route) || route === 'via-vertex-claude' ? [] : ['https://example.com/cat.jpg'])]) {
        const r = await chat(gw, { model: route, messages: user([{ type: 'text', text: 'Describe this image in one sentence.' }, { type: 'image_url', image_url: { url } }]) });
        assert.equal(r.status, 200, r.text);
        assert.match(r.json.choices[0].message.content, /1 image/);
      }
    });

    test('max_tokens cuts the answer: finish_reason length', async () => {
      const r = await chat(gw, { model: route, max_tokens: 2, messages: user('Reply with exactly: one two three four five') });
      assert.equal(r.status, 200);
      assert.equal(r.json.choices[0].finish_reason, 'length');
      assert.equal(r.json.choices[0].message.content, 'one two');
    });

    test('provider 429 -> 429 with Retry-After', async () => {
      await script(route, { status: 429, retry_after: 4 });
      const r = await chat(gw, { model: route, messages: user('x') });
      assert.equal(r.status, 429);
      assert.equal(r.headers.get('retry-after'), '4');
      assert.equal(r.json.error.type, 'rate_limit_error');
    });

    test('provider 500 -> 502', async () => {
      await script(route, { status: 500 });
      const r = await chat(gw, { model: route, messages: user('x') });
      assert.equal(r.status, 502);
    });

    test('a stream cut mid-way ends with an SSE error event', async () => {
      // Cut after the first content: the Anthropic dialect opens with three
      // content-free events (message_start, content_block_start, ping).
      await script(route, { cut_after: route === 'via-openai' ? 3 : 5, chunks: 10 });
      const r = await chat(gw, { model: route, stream: true, messages: user('Explain model routing in two sentences.') });
      const data = sseData(r.text);
      assert.notEqual(data.at(-1), '[DONE]');
      assert.equal(JSON.parse(data.at(-1)).error.code, 'stream_interrupted');
    });
  });
}

describe('Anthropic route specifics', () => {
  test('the request Anthropic receives', async () => {
    const r = await chat(gw, {
      model: 'via-anthropic', temperature: 0.5, top_p: 0.9, stop: ['END'], user: 'user-42',
      messages: [
        { role: 'system', content: 'Be brief.' },
        { role: 'developer', content: 'No emojis.' },
        { role: 'user', content: 'first' },
        { role: 'user', content: [{ type: 'text', text: 'second' }, { type: 'image_url', image_url: { url: `data:image/png;base64,${PNG}` } }] },
      ],
    });
    assert.equal(r.status, 200, r.text);
    const [req] = await anthSim.requests();
    assert.match(req.path, /\/v1\/messages$/);
    assert.equal(req.headers['x-api-key'], ANTH_KEY);
    assert.ok(req.headers['anthropic-version']);
    assert.equal(req.headers.authorization, undefined, 'the client key is not forwarded');
    const b = req.body;
    assert.equal(b.model, 'claude-sonnet-4-20250514');
    assert.ok(b.max_tokens > 0, 'max_tokens is always sent');
    assert.equal(b.temperature, 0.5);
    assert.equal(b.top_p, 0.9);
    assert.deepEqual(b.stop_sequences, ['END']);
    assert.equal(b.metadata.user_id, 'user-42');
    assert.ok(JSON.stringify(b.system).includes('Be brief.') && JSON.stringify(b.system).includes('No emojis.'));
    assert.equal(b.messages.length, 1, 'consecutive user messages are merged');
    const blocks = b.messages[0].content;
    const img = blocks.find((x) => x.type === 'image');
    assert.deepEqual(img.source, { type: 'base64', media_type: 'image/png', data: PNG });
  });

  test('anthropic-beta from the client is passed on', async () => {
    const r = await chat(gw, { model: 'via-anthropic', messages: user('x') }, { headers: { 'anthropic-beta': 'prompt-caching-2024-07-31' } });
    assert.equal(r.status, 200);
    const [req] = await anthSim.requests();
    assert.equal(req.headers['anthropic-beta'], 'prompt-caching-2024-07-31');
  });

  test('tools and tool results as Anthropic blocks', async () => {
    await chat(gw, { model: 'via-anthropic', tools: [weatherTool], tool_choice: 'required', parallel_tool_calls: false, messages: [
      { role: 'user', content: 'Weather?' },
      { role: 'assistant', content: null, tool_calls: [
        { id: 'toolu_1', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Paris"}' } },
        { id: 'toolu_2', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Rome"}' } }] },
      { role: 'tool', tool_call_id: 'toolu_1', content: '18C' },
      { role: 'tool', tool_call_id: 'toolu_2', content: '25C' },
    ] });
    const [req] = await anthSim.requests();
    const b = req.body;
    assert.deepEqual(b.tools[0], { name: 'get_weather', description: 'Weather for a city', input_schema: weatherTool.function.parameters });
    assert.deepEqual(b.tool_choice, { type: 'any', disable_parallel_tool_use: true });
    const uses = b.messages[1].content.filter((x) => x.type === 'tool_use');
    assert.deepEqual(uses.map((u) => u.input), [{ city: 'Paris' }, { city: 'Rome' }]);
    assert.equal(b.messages[2].role, 'user');
    assert.deepEqual(b.messages[2].content.map((x) => [x.type, x.tool_use_id]), [['tool_result', 'toolu_1'], ['tool_result', 'toolu_2']]);
  });

  test('parameters Anthropic cannot honour are a 400 that names them', async () => {
    for (const [field, value] of [['n', 2], ['logprobs', true], ['presence_penalty', 0.5]]) {
      const r = await chat(gw, { model: 'via-anthropic', [field]: value, messages: user('x') });
      assert.equal(r.status, 400, `${field}: ${r.text}`);
      assert.match(r.json.error.message, new RegExp(field));
    }
    assert.equal((await anthSim.requests()).length, 0);
  });

  test('529 overloaded fails over to the next route', async () => {
    await anthSim.script([{ status: 529 }]);
    const r = await chat(gw, { model: 'claude-then-gpt', messages: user('Reply with exactly: ok') });
    assert.equal(r.status, 200);
    assert.equal(r.headers.get('x-yourouter-vendor'), 'openai');
  });

  test('529 on the last route -> 503', async () => {
    await anthSim.script([{ status: 529 }]);
    const r = await chat(gw, { model: 'via-anthropic', messages: user('x') });
    assert.equal(r.status, 503);
  });

  test('an error event before any content fails over; after content it is an SSE error', async () => {
    await anthSim.script([{ stream_error: 'overloaded_error', stream_error_after: 1 }]);
    let r = await chat(gw, { model: 'claude-then-gpt', stream: true, messages: user('Reply with exactly: fine') });
    assert.equal(r.headers.get('x-yourouter-vendor'), 'openai');
    assert.equal(chunksOf(r).map((c) => c.choices[0]?.delta?.content ?? '').join(''), 'fine');

    await anthSim.script([{ stream_error: 'overloaded_error', stream_error_after: 5, chunks: 10 }]);
    r = await chat(gw, { model: 'via-anthropic', stream: true, messages: user('Explain model routing in two sentences.') });
    const last = JSON.parse(sseData(r.text).at(-1));
    assert.equal(last.error.code, 'stream_interrupted');
    assert.match(last.error.message, /overloaded/i);
  });
});
