// The official Google GenAI SDK (npm @google/genai) as a client of the
// Gemini-native endpoints (/v1beta/models/{model}:generateContent,
// :streamGenerateContent, :countTokens), routed to an OpenAI route and to an
// Anthropic route of the simulator (translated both ways), and to Gemini
// routes (the client's bytes passed through, the model in the path).
import { test, before, after, beforeEach, describe } from 'node:test';
import assert from 'node:assert/strict';
import { GoogleGenAI, ApiError } from '@google/genai';
import { startSim, startGateway, config, MASTER_KEY } from '../integ/lib.mjs';

const ANTH_KEY = 'sk-ant-sdk-' + 'g'.repeat(24);
const GEM_KEY = 'AIza-sdk-' + 'q'.repeat(30);
let oaiSim, anthSim, gemSim, gw, ai;

before(async () => {
  oaiSim = await startSim();
  anthSim = await startSim(['--require-key', ANTH_KEY]);
  gemSim = await startSim(['--require-key', GEM_KEY]);
  gw = await startGateway(config({
    providers: {
      openai: { base_url: oaiSim.url },
      anthropic: { kind: 'anthropic', base_url: anthSim.base, api_key: ANTH_KEY },
      google: { kind: 'gemini', base_url: gemSim.base, api_key: GEM_KEY },
    },
    models: [
      { id: 'gpt-4o', routes: [{ provider: 'openai' }] },
      { id: 'claude-sonnet-4-20250514', routes: [{ provider: 'anthropic' }] },
      { id: 'flash', routes: [{ provider: 'google', model: 'gemini-2.5-flash' }] },
      { id: 'gemini-3', routes: [{ provider: 'google', model: 'gemini-3-pro-preview' }] },
      { id: 'flash-then-gpt', routes: [{ provider: 'google', model: 'gemini-2.5-flash' }, { provider: 'openai', model: 'gpt-4o' }] },
    ],
  }));
  ai = new GoogleGenAI({ apiKey: MASTER_KEY, httpOptions: { baseUrl: gw.base } });
});
after(async () => { await gw.stop(); await oaiSim.stop(); await anthSim.stop(); await gemSim.stop(); gw.cleanup(); });
beforeEach(async () => { await oaiSim.reset(); await anthSim.reset(); await gemSim.reset(); await gw.resetRoutes(); });

const weather = {
  name: 'get_weather',
  description: 'Weather for a city',
  parameters: { type: 'OBJECT', properties: { city: { type: 'STRING' } }, required: ['city'] },
};

// What the route's provider received, in OpenAI's model (the Anthropic
// simulator records its own request body).
async function lastRequest(sim) {
  const reqs = await sim.requests();
  return reqs[reqs.length - 1];
}

for (const [model, sim] of [['gpt-4o', () => oaiSim], ['claude-sonnet-4-20250514', () => anthSim]]) {
  describe(`Gemini SDK via ${model}`, () => {
    test('generateContent: text, finishReason, usage, system instruction', async () => {
      const r = await ai.models.generateContent({
        model,
        contents: 'Reply with exactly: connected',
        config: { systemInstruction: 'You are terse.', temperature: 0.2, maxOutputTokens: 64 },
      });
      assert.equal(r.text, 'connected');
      assert.equal(r.candidates[0].finishReason, 'STOP');
      assert.equal(r.candidates[0].content.role, 'model');
      assert.equal(r.modelVersion, model);
      assert.match(r.responseId, /^req_/);
      const u = r.usageMetadata;
      assert.ok(u.promptTokenCount > 0 && u.candidatesTokenCount > 0);
      assert.equal(u.totalTokenCount, u.promptTokenCount + u.candidatesTokenCount);
      const req = (await lastRequest(sim())).body;
      if (model === 'gpt-4o') {
        assert.deepEqual(req.messages[0], { role: 'system', content: 'You are terse.' });
        assert.equal(req.max_tokens, 64);
        assert.equal(req.temperature, 0.2);
      } else {
        assert.equal(req.system, 'You are terse.');
        assert.equal(req.max_tokens, 64);
      }
    });

    test('maxOutputTokens cut: MAX_TOKENS', async () => {
      const r = await ai.models.generateContent({
        model, contents: 'Reply with exactly: one two three four five', config: { maxOutputTokens: 2 },
      });
      assert.equal(r.candidates[0].finishReason, 'MAX_TOKENS');
      assert.equal(r.text, 'one two');
    });

    test('generateContentStream: every chunk, the text in order, usage on the last', async () => {
      const stream = await ai.models.generateContentStream({ model, contents: 'Reply with exactly: one two three' });
      const chunks = [];
      for await (const c of stream) chunks.push(c);
      assert.ok(chunks.length >= 3, `several chunks (${chunks.length})`);
      assert.equal(chunks.map((c) => c.text ?? '').join(''), 'one two three');
      const last = chunks[chunks.length - 1];
      assert.equal(last.candidates[0].finishReason, 'STOP');
      assert.ok(last.usageMetadata.candidatesTokenCount > 0);
      const req = (await lastRequest(sim())).body;
      assert.equal(req.stream, true);
    });

    test('function calling: a multi-step loop with functionResponse', async () => {
      const tools = [{ functionDeclarations: [weather] }];
      await sim().script([
        { tool_calls: [{ name: 'get_weather', arguments: { city: 'Paris' } }] },
        { tool_calls: [{ name: 'get_weather', arguments: { city: 'Rome' } }] },
        { text: 'Paris 18C, Rome 25C' },
      ]);
      const contents = [{ role: 'user', parts: [{ text: 'Weather in Paris and Rome?' }] }];
      let r;
      for (let step = 0; step < 4; step++) {
        r = await ai.models.generateContent({ model, contents, config: { tools } });
        const calls = r.functionCalls ?? [];
        if (calls.length === 0) break;
        assert.equal(calls[0].name, 'get_weather');
        assert.ok(calls[0].id, 'the call id is passed on');
        contents.push(r.candidates[0].content);
        contents.push({ role: 'user', parts: calls.map((c) => ({ functionResponse: { id: c.id, name: c.name, response: { temp: c.args.city === 'Paris' ? '18C' : '25C' } } })) });
      }
      assert.equal(r.text, 'Paris 18C, Rome 25C');
      assert.equal(contents.length, 5, 'two calls answered before the answer');
      const req = (await lastRequest(sim())).body;
      if (model === 'gpt-4o') {
        const calls = req.messages.filter((m) => m.tool_calls).map((m) => m.tool_calls[0]);
        assert.deepEqual(calls.map((c) => JSON.parse(c.function.arguments)), [{ city: 'Paris' }, { city: 'Rome' }]);
        const results = req.messages.filter((m) => m.role === 'tool');
        assert.deepEqual(results.map((m) => [m.tool_call_id, JSON.parse(m.content)]),
          calls.map((c, i) => [c.id, { temp: i === 0 ? '18C' : '25C' }]));
        assert.deepEqual(req.tools[0].function.parameters,
          { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] });
      } else {
        const uses = req.messages.flatMap((m) => Array.isArray(m.content) ? m.content : []).filter((b) => b.type === 'tool_use');
        assert.deepEqual(uses.map((u) => u.input), [{ city: 'Paris' }, { city: 'Rome' }]);
      }
    });

    test('function call streamed: one functionCall part with its args object', async () => {
      const args = { city: 'Paris', note: 'long enough to be split into several JSON fragments upstream' };
      await sim().script([{ tool_calls: [{ name: 'get_weather', arguments: args }] }]);
      const stream = await ai.models.generateContentStream({ model, contents: 'Weather?', config: { tools: [{ functionDeclarations: [weather] }] } });
      const calls = [];
      for await (const c of stream) calls.push(...(c.functionCalls ?? []));
      assert.equal(calls.length, 1);
      assert.deepEqual(calls[0].args, args);
    });

    test('countTokens: an estimate', async () => {
      const r = await ai.models.countTokens({ model, contents: 'hello there, how are you today?' });
      assert.ok(r.totalTokens > 0);
      const big = await ai.models.countTokens({ model, contents: 'hello there, how are you today? '.repeat(50) });
      assert.ok(big.totalTokens > r.totalTokens * 10);
    });

    test('upstream 429: RESOURCE_EXHAUSTED with the status', async () => {
      await sim().script([{ status: 429, retry_after: 3 }]);
      await assert.rejects(ai.models.generateContent({ model, contents: 'x' }), (e) => {
        assert.ok(e instanceof ApiError);
        assert.equal(e.status, 429);
        assert.match(e.message, /RESOURCE_EXHAUSTED/);
        return true;
      });
    });

    test('a stream cut mid-way raises in the SDK', async () => {
      await sim().script([{ cut_after: model === 'gpt-4o' ? 3 : 5, chunks: 10 }]);
      const stream = await ai.models.generateContentStream({ model, contents: 'Explain model routing in two sentences.' });
      await assert.rejects((async () => { for await (const c of stream) void c; })(), ApiError);
    });
  });
}

test('unknown model: 404 NOT_FOUND', async () => {
  await assert.rejects(ai.models.generateContent({ model: 'gemini-nope', contents: 'x' }), (e) => {
    assert.equal(e.status, 404);
    assert.match(e.message, /NOT_FOUND/);
    return true;
  });
});

test('bad key: 401 UNAUTHENTICATED; Bearer works too', async () => {
  const bad = new GoogleGenAI({ apiKey: 'wrong', httpOptions: { baseUrl: gw.base } });
  await assert.rejects(bad.models.generateContent({ model: 'gpt-4o', contents: 'x' }), (e) => {
    assert.equal(e.status, 401);
    assert.match(e.message, /UNAUTHENTICATED/);
    return true;
  });
  const r = await fetch(`${gw.base}/v1beta/models/gpt-4o:generateContent`, {
    method: 'POST',
    headers: { authorization: `Bearer ${MASTER_KEY}`, 'content-type': 'application/json' },
    body: JSON.stringify({ contents: [{ parts: [{ text: 'Reply with exactly: bearer' }] }] }),
  });
  assert.equal(r.status, 200);
  assert.equal((await r.json()).candidates[0].content.parts[0].text, 'bearer');
});

test('a bad request is a 400 in Gemini shape naming the field', async () => {
  await assert.rejects(ai.models.generateContent({ model: 'gpt-4o', contents: 'x', config: { candidateCount: 2 } }), (e) => {
    assert.equal(e.status, 400);
    assert.match(e.message, /INVALID_ARGUMENT/);
    assert.match(e.message, /candidateCount/);
    return true;
  });
  assert.equal((await oaiSim.requests()).length, 0, 'nothing went upstream');
});

test('streamGenerateContent without alt=sse: one JSON array', async () => {
  const r = await fetch(`${gw.base}/v1beta/models/gpt-4o:streamGenerateContent`, {
    method: 'POST',
    headers: { 'x-goog-api-key': MASTER_KEY, 'content-type': 'application/json' },
    body: JSON.stringify({ contents: [{ parts: [{ text: 'Reply with exactly: a b c' }] }] }),
  });
  assert.equal(r.status, 200);
  assert.match(r.headers.get('content-type'), /application\/json/);
  const chunks = JSON.parse(await r.text());
  assert.ok(Array.isArray(chunks) && chunks.length === 4);
  assert.equal(chunks.map((c) => c.candidates[0].content.parts?.[0]?.text ?? '').join(''), 'a b c');
  assert.equal(chunks[3].candidates[0].finishReason, 'STOP');
});

test('alt=sse framing: data: events ended by CRLF CRLF', async () => {
  const r = await fetch(`${gw.base}/v1beta/models/gpt-4o:streamGenerateContent?alt=sse`, {
    method: 'POST',
    headers: { 'x-goog-api-key': MASTER_KEY, 'content-type': 'application/json' },
    body: JSON.stringify({ contents: [{ parts: [{ text: 'Reply with exactly: x y' }] }] }),
  });
  assert.match(r.headers.get('content-type'), /text\/event-stream/);
  const text = await r.text();
  const events = text.split('\r\n\r\n');
  assert.equal(events.pop(), '', 'the stream ends with a complete event');
  assert.equal(events.length, 3);
  for (const e of events) assert.ok(e.startsWith('data: {') && !e.includes('\n'), e);
});

test('a stream cut mid-way in the JSON-array form ends with an error element', async () => {
  await oaiSim.script([{ cut_after: 3, chunks: 10 }]);
  const r = await fetch(`${gw.base}/v1beta/models/gpt-4o:streamGenerateContent`, {
    method: 'POST',
    headers: { 'x-goog-api-key': MASTER_KEY, 'content-type': 'application/json' },
    body: JSON.stringify({ contents: [{ parts: [{ text: 'Explain model routing in two sentences.' }] }] }),
  });
  const chunks = JSON.parse(await r.text());
  const last = chunks[chunks.length - 1];
  assert.equal(last.error.code, 502);
  assert.equal(last.error.status, 'INTERNAL');
  assert.ok(chunks.length >= 2);
});

describe('Gemini routes: passthrough', () => {
  test('generateContent: the client body goes up as it is, the model in the path, the answer relayed', async () => {
    const body = { contents: [{ role: 'user', parts: [{ text: 'Reply with exactly: native' }] }], generationConfig: { topK: 3 }, x_sim: { _note: 'reaches the provider untouched' } };
    const r = await fetch(`${gw.base}/v1beta/models/flash:generateContent`, {
      method: 'POST', headers: { 'x-goog-api-key': MASTER_KEY, 'content-type': 'application/json' }, body: JSON.stringify(body),
    });
    assert.equal(r.status, 200);
    assert.equal(r.headers.get('x-yourouter-vendor'), 'google');
    const j = await r.json();
    assert.equal(j.candidates[0].content.parts[0].text, 'native');
    assert.ok(j.usageMetadata.promptTokensDetails, 'the provider\'s own fields are relayed');
    assert.doesNotMatch(j.responseId, /^req_/, 'the provider\'s response id, not a re-encoding');
    const req = await lastRequest(gemSim);
    assert.match(req.path, /\/v1beta\/models\/gemini-2\.5-flash:generateContent$/);
    assert.deepEqual(req.body, body);
    assert.equal(req.headers['x-goog-api-key'], GEM_KEY);
    assert.ok(!JSON.stringify(req).includes(MASTER_KEY));
  });

  test('SDK stream (alt=sse) and the JSON-array form, re-framed for the client', async () => {
    const stream = await ai.models.generateContentStream({ model: 'flash', contents: 'Reply with exactly: one two three' });
    let text = '';
    let last;
    for await (const c of stream) { text += c.text ?? ''; last = c; }
    assert.equal(text, 'one two three');
    assert.equal(last.candidates[0].finishReason, 'STOP');
    assert.match((await lastRequest(gemSim)).query ?? '', /alt=sse/);
    const r = await fetch(`${gw.base}/v1beta/models/flash:streamGenerateContent`, {
      method: 'POST', headers: { 'x-goog-api-key': MASTER_KEY, 'content-type': 'application/json' },
      body: JSON.stringify({ contents: [{ parts: [{ text: 'Reply with exactly: a b' }] }] }),
    });
    assert.match(r.headers.get('content-type'), /application\/json/);
    const chunks = JSON.parse(await r.text());
    assert.equal(chunks.map((c) => c.candidates[0].content.parts?.[0]?.text ?? '').join(''), 'a b');
  });

  test('function calling on Gemini 3: thought signatures survive the loop', async () => {
    const tools = [{ functionDeclarations: [weather] }];
    await gemSim.script([
      { tool_calls: [{ name: 'get_weather', arguments: { city: 'Paris' } }] },
      { tool_calls: [{ name: 'get_weather', arguments: { city: 'Rome' } }] },
      { text: 'done' },
    ]);
    const contents = [{ role: 'user', parts: [{ text: 'Weather in Paris and Rome?' }] }];
    let r;
    for (let step = 0; step < 4; step++) {
      r = await ai.models.generateContent({ model: 'gemini-3', contents, config: { tools } });
      const calls = r.functionCalls ?? [];
      if (calls.length === 0) break;
      assert.ok(r.candidates[0].content.parts.find((p) => p.functionCall).thoughtSignature, 'signed');
      contents.push(r.candidates[0].content);
      contents.push({ role: 'user', parts: calls.map((c) => ({ functionResponse: { name: c.name, response: { temp: '20C' } } })) });
    }
    assert.equal(r.text, 'done');
    assert.equal(contents.length, 5);
  });

  test('countTokens: the provider counts', async () => {
    const r = await ai.models.countTokens({ model: 'flash', contents: 'hello there, how are you today?' });
    assert.ok(r.totalTokens > 0);
    assert.match((await lastRequest(gemSim)).path, /gemini-2\.5-flash:countTokens$/);
  });

  test('the provider\'s 400 and 429 come back in Gemini shape', async () => {
    await assert.rejects(ai.models.generateContent({ model: 'flash', contents: 'x', config: { thinkingConfig: { thinkingLevel: 'HIGH' } } }),
      (e) => e.status === 400 && /INVALID_ARGUMENT/.test(e.message));
    await gemSim.script([{ status: 429 }]);
    await assert.rejects(ai.models.generateContent({ model: 'flash', contents: 'x' }),
      (e) => e.status === 429 && /RESOURCE_EXHAUSTED/.test(e.message));
  });
});

test('models.list and models.get: the models the key may use, as Gemini Model resources', async () => {
  const names = [];
  for await (const m of await ai.models.list()) names.push(m.name);
  assert.deepEqual(names, ['models/gpt-4o', 'models/claude-sonnet-4-20250514', 'models/flash', 'models/gemini-3', 'models/flash-then-gpt']);
  const m = await ai.models.get({ model: 'flash' });
  assert.equal(m.name, 'models/flash');
  assert.ok(m.supportedActions.includes('generateContent'));
  await assert.rejects(ai.models.get({ model: 'nope' }), (e) => e.status === 404 && /NOT_FOUND/.test(e.message));
  const r = await fetch(`${gw.base}/v1beta/models`, { method: 'DELETE', headers: { 'x-goog-api-key': MASTER_KEY } });
  assert.equal(r.status, 405);
  assert.equal((await r.json()).error.status, 'INVALID_ARGUMENT');
});

test('what only Gemini can do goes to Gemini routes untouched, and is a 400 elsewhere', async () => {
  const config = { tools: [{ googleSearch: {} }] };
  await assert.rejects(ai.models.generateContent({ model: 'gpt-4o', contents: 'x', config }),
    (e) => e.status === 400 && /tools\.0: the googleSearch tool is not supported by this gateway/.test(e.message));
  assert.equal((await oaiSim.requests()).length, 0);
  const r = await ai.models.generateContent({ model: 'flash', contents: 'Reply with exactly: searched', config });
  assert.equal(r.text, 'searched');
  assert.deepEqual((await lastRequest(gemSim)).body.tools, [{ googleSearch: {} }]);
});

test('failover from a Gemini route (passthrough) to an OpenAI route (translated), stream and not', async () => {
  await gemSim.script([{ status: 503 }, { status: 503 }]);
  const r = await ai.models.generateContent({ model: 'flash-then-gpt', contents: 'Reply with exactly: fell over' });
  assert.equal(r.text, 'fell over');
  assert.match(r.responseId, /^req_/, 'written by the gateway from the OpenAI answer');
  const stream = await ai.models.generateContentStream({ model: 'flash-then-gpt', contents: 'Reply with exactly: a b c' });
  let text = '';
  for await (const c of stream) text += c.text ?? '';
  assert.equal(text, 'a b c');
  assert.equal((await gemSim.requests()).length, 2);
  assert.equal((await oaiSim.requests()).length, 2);
});

test('thinkingConfig on an Anthropic route: thinking enabled, thoughts shown only with includeThoughts', async () => {
  const thinkingConfig = { thinkingBudget: 4096, includeThoughts: true };
  const r = await ai.models.generateContent({ model: 'claude-sonnet-4-20250514', contents: 'Reply with exactly: thought through', config: { maxOutputTokens: 8000, thinkingConfig } });
  const parts = r.candidates[0].content.parts;
  assert.equal(parts[0].thought, true);
  assert.ok(parts[0].text.length > 0);
  assert.equal(r.text, 'thought through', 'the SDK leaves thought parts out of text');
  assert.deepEqual((await lastRequest(anthSim)).body.thinking, { type: 'enabled', budget_tokens: 4096 });
  const stream = await ai.models.generateContentStream({ model: 'claude-sonnet-4-20250514', contents: 'Reply with exactly: a b', config: { maxOutputTokens: 8000, thinkingConfig } });
  const kinds = [];
  for await (const c of stream) for (const p of c.candidates[0].content.parts ?? []) kinds.push(p.thought ? 'thought' : 'text');
  assert.equal(kinds[0], 'thought');
  assert.equal(kinds.at(-1), 'text');
  const hidden = await ai.models.generateContent({ model: 'claude-sonnet-4-20250514', contents: 'Reply with exactly: quiet', config: { maxOutputTokens: 8000, thinkingConfig: { thinkingBudget: 4096 } } });
  assert.deepEqual(hidden.candidates[0].content.parts, [{ text: 'quiet' }]);
});
