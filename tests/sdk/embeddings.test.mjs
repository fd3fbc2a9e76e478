// POST /v1/embeddings with the official `openai` SDK against each route kind
// that embeds: OpenAI-compatible and Azure (passthrough), Gemini
// (translated to batchEmbedContents). The simulator's vectors start with the
// input's length, so order and dimensions can be checked.
import { test, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import OpenAI from 'openai';
import { startSim, startGateway, config, MASTER_KEY } from '../integ/lib.mjs';

let oai, gem, gw, client;
before(async () => {
  oai = await startSim();
  gem = await startSim();
  gw = await startGateway(config({
    providers: {
      openai: { base_url: oai.url },
      azure: { kind: 'azure', base_url: oai.base, api_key: 'az-key' },
      google: { kind: 'gemini', base_url: gem.base, api_key: 'g-key' },
      anthropic: { kind: 'anthropic', base_url: gem.base, api_key: 'sk-ant-x' },
    },
    models: [
      { id: 'emb-openai', routes: [{ provider: 'openai', model: 'text-embedding-3-small' }] },
      { id: 'emb-azure', routes: [{ provider: 'azure', model: 'my-embedding-deployment' }] },
      { id: 'emb-gemini', routes: [{ provider: 'google', model: 'gemini-embedding-001' }] },
      { id: 'emb-claude', routes: [{ provider: 'anthropic', model: 'claude-sonnet-4-20250514' }] },
      { id: 'emb-fallback', routes: [{ provider: 'openai', model: 'text-embedding-3-small' }, { provider: 'google', model: 'gemini-embedding-001' }] },
    ],
  }));
  client = new OpenAI({ apiKey: MASTER_KEY, baseURL: gw.url, maxRetries: 0 });
});
after(async () => { await gw.stop(); await oai.stop(); await gem.stop(); gw.cleanup(); });
beforeEach(async () => { await oai.reset(); await gem.reset(); await gw.resetRoutes(); });

function db(sql) {
  const q = spawnSync('sqlite3', ['-json', join(gw.dir, 'yourouter.db'), sql], { encoding: 'utf8' });
  assert.equal(q.status, 0, q.stderr);
  return JSON.parse(q.stdout || '[]');
}
async function usageRows(requestId) {
  for (let i = 0; i < 400; i++) {
    const rows = db(`SELECT * FROM usage WHERE request_id = '${requestId}' ORDER BY attempt`);
    if (rows.length > 0) return rows;
    await new Promise((r) => setTimeout(r, 5));
  }
  throw new Error(`no usage rows for ${requestId}`);
}

const inputs = ['a', 'four', 'seventeen letters'];

for (const [model, sim, upstream] of [['emb-openai', () => oai, 'text-embedding-3-small'], ['emb-azure', () => oai, 'my-embedding-deployment'], ['emb-gemini', () => gem, 'gemini-embedding-001']]) {
  test(`${model}: embeddings.create (the SDK's base64) in order, with dimensions, and a usage row`, async () => {
    const { data: r, response } = await client.embeddings.create({ model, input: inputs, dimensions: 5 }).withResponse();
    assert.equal(r.object, 'list');
    assert.equal(r.data.length, 3);
    r.data.forEach((d, i) => {
      assert.equal(d.object, 'embedding');
      assert.equal(d.index, i);
      assert.equal(d.embedding.length, 5, 'dimensions');
      assert.equal(d.embedding[0], inputs[i].length, 'the vector of input i');
      assert.ok(d.embedding.slice(1).every((x) => x >= 0 && x < 1));
    });
    assert.ok(r.usage.prompt_tokens > 0);
    const [req] = await sim().requests();
    if (model === 'emb-gemini') {
      assert.match(req.path, /\/v1beta\/models\/gemini-embedding-001:batchEmbedContents$/);
      assert.equal(req.body.requests.length, 3);
      assert.equal(req.body.requests[2].content.parts[0].text, inputs[2]);
      assert.equal(req.body.requests[0].outputDimensionality, 5);
      assert.equal(req.body.requests[0].model, 'models/gemini-embedding-001');
    } else if (model === 'emb-azure') {
      assert.match(req.path, /^\/openai\/v1\/embeddings$/);
      assert.equal(req.headers['api-key'], 'az-key');
      assert.equal(req.body.model, upstream);
    } else {
      assert.match(req.path, /\/v1\/embeddings$/);
      assert.equal(req.body.model, upstream);
      assert.equal(req.body.encoding_format, 'base64', 'passed through as the SDK sent it');
    }
    const rows = await usageRows(response.headers.get('x-request-id'));
    assert.equal(rows.at(-1).model_id, model);
    assert.equal(rows.at(-1).status, 200);
    assert.equal(rows.at(-1).prompt_tokens, r.usage.prompt_tokens);
    assert.equal(rows.at(-1).upstream_model, upstream);
  });

  test(`${model}: encoding_format float and a single string`, async () => {
    const r = await client.embeddings.create({ model, input: 'hello', encoding_format: 'float' });
    assert.equal(r.data.length, 1);
    assert.equal(r.data[0].embedding.length, 16, 'the simulator default');
    assert.equal(r.data[0].embedding[0], 5);
    // raw base64 as the API sends it: little-endian float32
    const raw = await fetch(`${gw.url}/embeddings`, { method: 'POST', headers: { authorization: `Bearer ${MASTER_KEY}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model, input: 'hey', encoding_format: 'base64', dimensions: 2 }) });
    const j = await raw.json();
    const buf = Buffer.from(j.data[0].embedding, 'base64');
    assert.equal(buf.length, 8);
    assert.equal(buf.readFloatLE(0), 3);
  });
}

test('embeddings: errors in OpenAI shape; token arrays on Gemini; a route kind that cannot embed', async () => {
  await assert.rejects(client.embeddings.create({ model: 'nope', input: 'x' }), (e) => e instanceof OpenAI.BadRequestError && e.param === 'model');
  await assert.rejects(client.embeddings.create({ model: 'emb-openai', input: [] }), (e) => e instanceof OpenAI.BadRequestError && e.param === 'input');
  const tok = await client.embeddings.create({ model: 'emb-openai', input: [[1, 2, 3]], encoding_format: 'float' });
  assert.equal(tok.data[0].embedding[0], 3, 'token arrays pass through to OpenAI');
  await assert.rejects(client.embeddings.create({ model: 'emb-gemini', input: [[1, 2, 3]] }),
    (e) => e instanceof OpenAI.BadRequestError && /token arrays/.test(e.message));
  await assert.rejects(client.embeddings.create({ model: 'emb-claude', input: 'x' }),
    (e) => e instanceof OpenAI.BadRequestError && e.code === 'model_not_supported' && /embed/.test(e.message));
});

test('embeddings: cost by the built-in embedding prices', async () => {
  const input = 'x'.repeat(200000); // 50k tokens
  for (const [model, per] of [['emb-openai', 0.02], ['emb-gemini', 0.15]]) {
    const { data: r, response } = await client.embeddings.create({ model, input, encoding_format: 'float' }).withResponse();
    const [row] = await usageRows(response.headers.get('x-request-id'));
    assert.equal(row.prompt_tokens, r.usage.prompt_tokens);
    assert.equal(row.cost_micros, Math.round(r.usage.prompt_tokens * per), model);
  }
});

test('embeddings: a failing route fails over like chat', async () => {
  await oai.script([{ status: 503 }, { status: 503 }, { status: 503 }]);
  const { data: r, response } = await client.embeddings.create({ model: 'emb-fallback', input: ['ab', 'abc'], encoding_format: 'float' }).withResponse();
  assert.deepEqual(r.data.map((d) => d.embedding[0]), [2, 3]);
  assert.match(response.headers.get('x-yourouter-attempts'), /google\/gemini-embedding-001=ok:200$/);
  const rows = await usageRows(response.headers.get('x-request-id'));
  assert.ok(rows.length >= 2);
  assert.equal(rows[0].upstream_status, 503);
});
