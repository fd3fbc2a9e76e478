// Gemini-native inbound endpoints, as the database sees them: every request
// leaves one usage row whose tokens are what the client was told in
// usageMetadata, through a translated route (OpenAI) and a passthrough one
// (Gemini), streamed and not.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { startSim, startGateway, config, MASTER_KEY } from './lib.mjs';

const GEM_KEY = 'AIza-integ-' + 'z'.repeat(28);
const rows = [];
const seen = {};
let oaiSim, gemSim, gw;

after(async () => {
  await gw?.stop();
  gw?.cleanup();
  await oaiSim?.stop();
  await gemSim?.stop();
});

async function gen(model, method, body, key = MASTER_KEY) {
  const r = await fetch(`${gw.base}/v1beta/models/${model}:${method}`, {
    method: 'POST',
    headers: { 'x-goog-api-key': key, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  return { status: r.status, headers: r.headers, text: await r.text() };
}

before(async () => {
  oaiSim = await startSim();
  gemSim = await startSim(['--require-key', GEM_KEY]);
  gw = await startGateway(config({
    providers: {
      openai: { base_url: oaiSim.url },
      google: { kind: 'gemini', base_url: gemSim.base, api_key: GEM_KEY },
    },
    models: [
      { id: 'via-openai', routes: [{ provider: 'openai', model: 'gpt-4o' }] },
      { id: 'via-gemini', routes: [{ provider: 'google', model: 'gemini-2.5-flash' }] },
    ],
  }));
  const body = { contents: [{ parts: [{ text: 'Reply with exactly: one two three' }] }] };
  for (const model of ['via-openai', 'via-gemini']) {
    const r = await gen(model, 'generateContent', body);
    assert.equal(r.status, 200, r.text);
    seen[`${model} ${r.headers.get('x-request-id')}`] = JSON.parse(r.text).usageMetadata;
    const s = await gen(model, 'streamGenerateContent?alt=sse', body);
    assert.equal(s.status, 200, s.text);
    const chunks = s.text.split('\r\n\r\n').filter((e) => e).map((e) => JSON.parse(e.slice(6)));
    seen[`${model} ${s.headers.get('x-request-id')}`] = chunks.at(-1).usageMetadata;
  }
  await gw.stop();
  const q = spawnSync('sqlite3', ['-json', join(gw.dir, 'yourouter.db'),
    'SELECT request_id, model_id, provider, status AS http_status, outcome, prompt_tokens, completion_tokens FROM usage ORDER BY id'], { encoding: 'utf8' });
  assert.equal(q.status, 0, q.stderr);
  rows.push(...JSON.parse(q.stdout || '[]'));
});

test('one usage row per Gemini request, tokens as usageMetadata said', () => {
  assert.equal(rows.length, 4, JSON.stringify(rows));
  for (const [k, u] of Object.entries(seen)) {
    const [model, id] = k.split(' ');
    const row = rows.find((r) => r.request_id === id);
    assert.ok(row, `a row for ${k}`);
    assert.equal(row.model_id, model);
    assert.equal(row.provider, model === 'via-openai' ? 'openai' : 'google');
    assert.equal(row.http_status, 200);
    assert.equal(row.outcome, 'ok');
    assert.equal(row.prompt_tokens, u.promptTokenCount);
    assert.equal(row.completion_tokens, u.candidatesTokenCount + (u.thoughtsTokenCount ?? 0));
    assert.ok(row.prompt_tokens > 0 && row.completion_tokens > 0);
  }
});
