// Google Vertex AI routes (kind vertex) through the official SDKs: the
// `openai` package against a Vertex-Gemini and a Vertex-Claude route (text,
// stream, multi-step tools, images, errors), the Anthropic SDK through
// /v1/messages to Vertex-Claude and @google/genai through the native Gemini
// endpoints to Vertex-Gemini. Auth is a service account made at test time:
// the simulator's token endpoint verifies the gateway's RS256 assertion, and
// its counters prove that tokens are cached, refreshed when they expire and
// dropped when refused.
import { test, before, after, beforeEach, describe } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import Anthropic from '@anthropic-ai/sdk';
import { GoogleGenAI } from '@google/genai';
import { startSim, startGateway, tmpDir, MASTER_KEY } from '../integ/lib.mjs';
import { serviceAccount, registerAccount, vertexStats, vertexConfig, PROJECT } from '../integ/vertex_lib.mjs';

const GEMINI = 'gemini-2.5-flash';
const CLAUDE = 'claude-sonnet-4@20250514';
let sim, gw, client, sa;

before(async () => {
  sim = await startSim();
  sa = serviceAccount(sim);
  await registerAccount(sim, sa);
  const stranger = serviceAccount(sim, 'stranger@test-proj.iam.gserviceaccount.com'); // never registered
  const cold = serviceAccount(sim, 'cold@test-proj.iam.gserviceaccount.com');
  await registerAccount(sim, cold);
  const dir = tmpDir();
  gw = await startGateway(vertexConfig(dir, sim, {
    vtx: { sa },
    vtxinline: { sa, inline: true, location: 'global' },
    stranger: { sa: stranger },
    cold: { sa: cold },
    static: { api_key: 'ya29.sim.not-issued', project: PROJECT },
  }, [
    { id: 'gem', provider: 'vtx', model: GEMINI },
    { id: 'claude', provider: 'vtx', model: CLAUDE },
    { id: 'gem-global', provider: 'vtxinline', model: GEMINI },
    { id: 'bad-sa', provider: 'stranger', model: GEMINI },
    { id: 'cold', provider: 'cold', model: GEMINI },
    { id: 'static-bad', provider: 'static', model: GEMINI },
  ]), { dir });
  client = new OpenAI({ apiKey: MASTER_KEY, baseURL: gw.url, maxRetries: 0 });
});
after(async () => { await gw.stop(); await sim.stop(); gw.cleanup(); });
beforeEach(async () => { await sim.reset(); await gw.resetRoutes(); });

async function lastRequest() {
  const reqs = await sim.requests();
  return reqs[reqs.length - 1];
}

const weather = [{ type: 'function', function: { name: 'get_weather', description: 'Weather for a city', parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] } } }];
const PNG = 'data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==';

const publishers = [
  ['gem', 'google', `${GEMINI}:generateContent`, `${GEMINI}:streamGenerateContent`],
  ['claude', 'anthropic', `${CLAUDE}:rawPredict`, `${CLAUDE}:streamRawPredict`],
];

for (const [model, publisher, method, streamMethod] of publishers) {
  describe(`openai SDK -> Vertex ${publisher}`, () => {
    test('text: the Vertex URL, a Bearer token from the service account, the body', async () => {
      const c = await client.chat.completions.create({ model, messages: [{ role: 'system', content: 'Be terse.' }, { role: 'user', content: 'Reply with exactly: connected' }] });
      assert.equal(c.choices[0].message.content, 'connected');
      assert.equal(c.choices[0].finish_reason, 'stop');
      assert.ok(c.usage.prompt_tokens > 0 && c.usage.completion_tokens > 0);
      const r = await lastRequest();
      assert.equal(r.path, `/v1/projects/${PROJECT}/locations/us-east5/publishers/${publisher}/models/${method}`);
      assert.match(r.headers.authorization, /^Bearer ya29\.sim\./);
      if (publisher === 'anthropic') {
        assert.equal(r.body.model, undefined, 'the model is in the URL');
        assert.equal(r.body.anthropic_version, 'vertex-2023-10-16');
        assert.equal(r.headers['anthropic-version'], undefined);
      } else {
        for (const c2 of r.body.contents) assert.ok(c2.role === 'user' || c2.role === 'model');
      }
    });

    test('stream', async () => {
      const stream = await client.chat.completions.create({ model, stream: true, stream_options: { include_usage: true }, messages: [{ role: 'user', content: 'Reply with exactly: one two three four' }] });
      let text = '', finish = null, usage = null;
      for await (const chunk of stream) {
        if (chunk.usage) usage = chunk.usage;
        const ch = chunk.choices[0];
        if (!ch) continue;
        text += ch.delta.content ?? '';
        finish = ch.finish_reason ?? finish;
      }
      assert.equal(text, 'one two three four');
      assert.equal(finish, 'stop');
      assert.ok(usage.completion_tokens > 0);
      const r = await lastRequest();
      assert.ok(r.path.endsWith(`/publishers/${publisher}/models/${streamMethod}`), r.path);
    });

    test('tools, two steps: the call, then its result goes back', async () => {
      await sim.script([{ tool_calls: [{ name: 'get_weather', arguments: { city: 'Paris' } }] }]);
      const messages = [{ role: 'user', content: 'Weather in Paris?' }];
      const first = await client.chat.completions.create({ model, tools: weather, messages });
      assert.equal(first.choices[0].finish_reason, 'tool_calls');
      const call = first.choices[0].message.tool_calls[0];
      assert.equal(call.function.name, 'get_weather');
      assert.deepEqual(JSON.parse(call.function.arguments), { city: 'Paris' });
      messages.push(first.choices[0].message, { role: 'tool', tool_call_id: call.id, content: '{"temp_c":21}' });
      const second = await client.chat.completions.create({ model, tools: weather, messages });
      assert.equal(second.choices[0].finish_reason, 'stop');
      const body = JSON.stringify((await lastRequest()).body);
      assert.match(body, publisher === 'google' ? /"functionResponse"/ : /"tool_result"/);
      assert.match(body, /temp_c/);
    });

    test('images go inline', async () => {
      const c = await client.chat.completions.create({ model, messages: [{ role: 'user', content: [{ type: 'text', text: 'what is it?' }, { type: 'image_url', image_url: { url: PNG } }] }] });
      assert.match(c.choices[0].message.content, /\[1 image\]/);
    });

    test('errors: a 429 with its hint, a 400 with the provider words', async () => {
      await sim.script([{ status: 429, retry_after: 3 }]);
      await assert.rejects(client.chat.completions.create({ model, messages: [{ role: 'user', content: 'x' }] }),
        (e) => e instanceof OpenAI.RateLimitError && e.headers.get('retry-after') === '3');
      await gw.resetRoutes(); // the route cools down after the 429
      await sim.script([{ status: 400, error_message: 'that will not do' }]);
      await assert.rejects(client.chat.completions.create({ model, messages: [{ role: 'user', content: 'x' }] }),
        (e) => e instanceof OpenAI.BadRequestError && /that will not do/.test(e.message));
    });
  });
}

test('location global: aiplatform.googleapis.com paths, inline credentials_json', async () => {
  const c = await client.chat.completions.create({ model: 'gem-global', messages: [{ role: 'user', content: 'Reply with exactly: global' }] });
  assert.equal(c.choices[0].message.content, 'global');
  assert.equal((await lastRequest()).path, `/v1/projects/${PROJECT}/locations/global/publishers/google/models/${GEMINI}:generateContent`);
});

test('tokens are cached per worker: concurrent first requests share one exchange, later ones none', async () => {
  const s0 = await vertexStats(sim);
  // 'cold' has a service account no request used yet: all of these wait on one fetch
  const answers = await Promise.all(Array.from({ length: 8 }, (_, i) => client.chat.completions.create({ model: 'cold', messages: [{ role: 'user', content: `Reply with exactly: n${i}` }] })));
  assert.deepEqual(answers.map((a) => a.choices[0].message.content), Array.from({ length: 8 }, (_, i) => `n${i}`));
  for (let i = 0; i < 4; i++) await client.chat.completions.create({ model: 'cold', messages: [{ role: 'user', content: 'hi' }] });
  const s1 = await vertexStats(sim);
  assert.equal(s1.token_requests - s0.token_requests, 1);
  assert.equal(s1.tokens_issued - s0.tokens_issued, 1);
});

test('a refused token (revoked) is dropped and the request retried once with a new one', async () => {
  const s0 = await vertexStats(sim);
  await vertexStats(sim, '/_sim/vertex/revoke', 'POST');
  const { data: c, response } = await client.chat.completions.create({ model: 'gem', messages: [{ role: 'user', content: 'Reply with exactly: again' }] }).withResponse();
  assert.equal(c.choices[0].message.content, 'again');
  assert.equal(response.headers.get('x-yourouter-attempts'), `vtx/${GEMINI}=auth_failed:401, vtx/${GEMINI}=ok:200`);
  const s1 = await vertexStats(sim);
  assert.equal(s1.tokens_issued - s0.tokens_issued, 1);
  assert.equal(s1.rejected - s0.rejected, 1);
  // a static token that is refused is not retried (nothing new to fetch)
  const reqs0 = (await sim.stats()).requests;
  await assert.rejects(client.chat.completions.create({ model: 'static-bad', messages: [{ role: 'user', content: 'x' }] }),
    (e) => e.status === 502 && /credentials/.test(e.message));
  assert.equal((await sim.stats()).requests - reqs0, 1);
});

test('a bad service account is a clear error naming it', async () => {
  const s0 = await vertexStats(sim);
  await assert.rejects(client.chat.completions.create({ model: 'bad-sa', messages: [{ role: 'user', content: 'x' }] }),
    (e) => e.status === 502 && e.message.includes('stranger@test-proj.iam.gserviceaccount.com') && /invalid_grant/.test(e.message) && !/PRIVATE KEY/.test(e.message));
  const s1 = await vertexStats(sim);
  assert.equal(s1.token_requests - s0.token_requests, 1);
  assert.equal(s1.tokens_issued, s0.tokens_issued);
  assert.equal((await sim.stats()).requests, 0, 'nothing reached Vertex without a token');
  assert.match(gw.stderr(), /access token for service account gateway@/, 'the debug log is on');
  assert.doesNotMatch(gw.stderr(), /PRIVATE KEY|ya29\.sim\.|eyJhbGciOi/, 'neither the key, an assertion nor a token is logged');
});

test('Anthropic SDK -> /v1/messages -> Vertex Claude (passthrough): text and stream', async () => {
  const anth = new Anthropic({ apiKey: MASTER_KEY, baseURL: gw.base, maxRetries: 0 });
  const m = await anth.messages.create({ model: 'claude', max_tokens: 64, messages: [{ role: 'user', content: 'Reply with exactly: via vertex' }] });
  assert.equal(m.content[0].text, 'via vertex');
  assert.equal(m.stop_reason, 'end_turn');
  let r = await lastRequest();
  assert.ok(r.path.endsWith(`/publishers/anthropic/models/${CLAUDE}:rawPredict`));
  assert.equal(r.body.model, undefined);
  assert.equal(r.body.anthropic_version, 'vertex-2023-10-16');
  assert.equal(r.headers['anthropic-version'], undefined);
  const stream = anth.messages.stream({ model: 'claude', max_tokens: 64, messages: [{ role: 'user', content: 'Reply with exactly: a b c' }] });
  let text = '';
  for await (const ev of stream) if (ev.type === 'content_block_delta') text += ev.delta.text;
  assert.equal(text, 'a b c');
  assert.equal((await stream.finalMessage()).stop_reason, 'end_turn');
  r = await lastRequest();
  assert.ok(r.path.endsWith(':streamRawPredict'));
  assert.equal(r.body.stream, true);
  // token counting: Vertex's one endpoint, the model in the body
  const n = await anth.messages.countTokens({ model: 'claude', messages: [{ role: 'user', content: 'count these words please' }] });
  assert.ok(n.input_tokens > 0);
  r = await lastRequest();
  assert.equal(r.path, `/v1/projects/${PROJECT}/locations/us-east5/publishers/anthropic/models/count-tokens:rawPredict`);
  assert.equal(r.body.model, CLAUDE);
  assert.equal(r.body.anthropic_version, 'vertex-2023-10-16');
});

test('@google/genai -> native Gemini endpoints -> Vertex Gemini (passthrough)', async () => {
  const ai = new GoogleGenAI({ apiKey: MASTER_KEY, httpOptions: { baseUrl: gw.base } });
  const r = await ai.models.generateContent({ model: 'gem', contents: 'Reply with exactly: genai ok' });
  assert.equal(r.text, 'genai ok');
  assert.ok((await lastRequest()).path.endsWith(`/publishers/google/models/${GEMINI}:generateContent`));
  let text = '';
  for await (const chunk of await ai.models.generateContentStream({ model: 'gem', contents: 'Reply with exactly: streamed words here' })) text += chunk.text ?? '';
  assert.equal(text, 'streamed words here');
  // A content without a role (the Gemini API reads it as the user's) gets
  // one: Vertex refuses it otherwise.
  const raw = await fetch(`${gw.base}/v1beta/models/gem:generateContent`, {
    method: 'POST', headers: { 'content-type': 'application/json', 'x-goog-api-key': MASTER_KEY },
    body: JSON.stringify({ contents: [{ parts: [{ text: 'Reply with exactly: role added' }] }] }),
  });
  assert.equal(raw.status, 200, await raw.clone().text());
  assert.equal((await raw.json()).candidates[0].content.parts[0].text, 'role added');
  assert.equal((await lastRequest()).body.contents[0].role, 'user');
});

describe('token expiry', () => {
  let sim2, gw2, c2;
  before(async () => {
    sim2 = await startSim();
    const sa2 = serviceAccount(sim2);
    await registerAccount(sim2, sa2, 2); // tokens live two seconds
    const dir = tmpDir();
    gw2 = await startGateway(vertexConfig(dir, sim2, { vtx: { sa: sa2 } }, [{ id: 'gem', provider: 'vtx', model: GEMINI }]), { dir });
    c2 = new OpenAI({ apiKey: MASTER_KEY, baseURL: gw2.url, maxRetries: 0 });
  });
  after(async () => { await gw2.stop(); await sim2.stop(); gw2.cleanup(); });

  const bearer = async () => (await sim2.requests()).at(-1).headers.authorization;
  const sleep = (ms) => new Promise((res) => setTimeout(res, ms)); // what is awaited is the clock

  test('near its end a token still serves, and one refresh starts behind the request', async () => {
    await c2.chat.completions.create({ model: 'gem', messages: [{ role: 'user', content: 'one' }] });
    const first = await bearer();
    assert.equal((await vertexStats(sim2)).tokens_issued, 1);
    await sleep(1200); // in the last half of its life: refresh, without waiting for it
    await c2.chat.completions.create({ model: 'gem', messages: [{ role: 'user', content: 'two' }] });
    assert.equal(await bearer(), first, 'served with the current token');
    for (let i = 0; i < 50 && (await vertexStats(sim2)).tokens_issued < 2; i++) await sleep(20);
    assert.equal((await vertexStats(sim2)).tokens_issued, 2);
    await c2.chat.completions.create({ model: 'gem', messages: [{ role: 'user', content: 'three' }] });
    assert.notEqual(await bearer(), first, 'the next request has the new one');
    assert.equal((await vertexStats(sim2)).tokens_issued, 2);
  });

  test('an expired token is replaced before it is used', async () => {
    const s0 = await vertexStats(sim2);
    await sleep(2100); // every token the gateway holds has expired
    const s1 = await vertexStats(sim2);
    assert.equal(s1.tokens_issued, s0.tokens_issued, 'nothing refreshed while idle');
    const c = await c2.chat.completions.create({ model: 'gem', messages: [{ role: 'user', content: 'Reply with exactly: fresh' }] });
    assert.equal(c.choices[0].message.content, 'fresh');
    const s = await vertexStats(sim2);
    assert.equal(s.tokens_issued, s1.tokens_issued + 1, JSON.stringify(s));
    assert.equal(s.rejected, 0, 'the simulator never saw an expired token');
  });
});
