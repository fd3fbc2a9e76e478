// Every request that reached a model leaves one usage row, with the tokens
// the client was told about: through a passthrough route and a translated
// one, streamed and not, and for a failed request. Rows are written off the
// request path; a graceful stop writes every queued row, so the test stops
// the gateway and then reads the database.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { startSim, startGateway, config, chat, sseData } from './lib.mjs';

const ANTH_KEY = 'sk-ant-usage-' + 'c'.repeat(24);
const rows = [];
const seen = {};
let oaiSim, anthSim, gw;

after(async () => {
  await gw?.stop();
  gw?.cleanup();
  await oaiSim?.stop();
  await anthSim?.stop();
});

before(async () => {
  oaiSim = await startSim();
  anthSim = await startSim(['--require-key', ANTH_KEY]);
  gw = await startGateway(config({
    providers: {
      openai: { base_url: oaiSim.url },
      anthropic: { kind: 'anthropic', base_url: anthSim.base, api_key: ANTH_KEY },
    },
    models: [
      { id: 'via-openai', routes: [{ provider: 'openai', model: 'gpt-4o' }] },
      { id: 'via-anthropic', routes: [{ provider: 'anthropic', model: 'claude-sonnet-4-20250514' }] },
    ],
  }));
  const messages = [{ role: 'user', content: 'Reply with exactly: one two three' }];
  for (const model of ['via-openai', 'via-anthropic']) {
    const r = await chat(gw, { model, messages });
    assert.equal(r.status, 200, r.text);
    seen[`${model} ${r.headers.get('x-request-id')}`] = r.json.usage;
    const s = await chat(gw, { model, messages, stream: true, stream_options: { include_usage: true } });
    assert.equal(s.status, 200);
    const last = JSON.parse(sseData(s.text).at(-2));
    seen[`${model} ${s.headers.get('x-request-id')}`] = last.usage;
  }
  await anthSim.script([{ status: 400, error_type: 'invalid_request_error', error_message: 'bad' }]);
  const bad = await chat(gw, { model: 'via-anthropic', messages });
  assert.equal(bad.status, 400);
  seen.failed = bad.headers.get('x-request-id');
  await gw.stop();
  const q = spawnSync('sqlite3', ['-json', join(gw.dir, 'yourouter.db'),
    'SELECT request_id, model_id, provider, upstream_model, status AS http_status, outcome, prompt_tokens, completion_tokens, cached_tokens, latency_ms FROM usage ORDER BY id'], { encoding: 'utf8' });
  assert.equal(q.status, 0, q.stderr);
  rows.push(...JSON.parse(q.stdout || '[]'));
});

test('one row per request, tokens as the client saw them', () => {
  assert.equal(rows.length, 5, JSON.stringify(rows));
  for (const [k, usage] of Object.entries(seen)) {
    if (k === 'failed') continue;
    const [model, id] = k.split(' ');
    const row = rows.find((r) => r.request_id === id);
    assert.ok(row, `a row for ${k}`);
    assert.equal(row.model_id, model);
    assert.equal(row.http_status, 200);
    assert.equal(row.outcome, 'ok');
    assert.equal(row.provider, model === 'via-openai' ? 'openai' : 'anthropic');
    assert.equal(row.prompt_tokens, usage.prompt_tokens);
    assert.equal(row.completion_tokens, usage.completion_tokens);
    assert.ok(row.prompt_tokens > 0 && row.completion_tokens > 0);
    assert.ok(row.latency_ms >= 0);
  }
});

test('a refused request is recorded with its status and outcome', () => {
  const row = rows.find((r) => r.request_id === seen.failed);
  assert.ok(row);
  assert.equal(row.http_status, 400);
  assert.equal(row.outcome, 'client_error');
  assert.equal(row.completion_tokens, 0);
});
