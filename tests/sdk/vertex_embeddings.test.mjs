// POST /v1/embeddings with the official `openai` SDK against Vertex AI
// routes: the google publisher's text embedding models are translated to
// the model's :predict (instances / predictions), with a Bearer token from
// a service account made at test time; a Claude (anthropic publisher) route
// cannot embed. The simulator's vectors start with the input's length, and
// its token_count is (bytes + 3) / 4 per input, so order, dimensions and
// usage can be checked.
import { test, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import OpenAI from 'openai';
import { startSim, startGateway, tmpDir, MASTER_KEY } from '../integ/lib.mjs';
import { serviceAccount, registerAccount, vertexConfig, PROJECT } from '../integ/vertex_lib.mjs';

const MODEL = 'text-embedding-005';
let sim, gw, client;

before(async () => {
  sim = await startSim();
  const sa = serviceAccount(sim);
  await registerAccount(sim, sa);
  const dir = tmpDir();
  gw = await startGateway(vertexConfig(dir, sim, {
    vtx: { sa },
    vtxglobal: { sa, inline: true, location: 'global' },
  }, [
    { id: 'vemb', provider: 'vtx', model: MODEL },
    { id: 'vclaude', provider: 'vtx', model: 'claude-sonnet-4@20250514' },
    { id: 'vemb-fallback', routes: [{ provider: 'vtx', model: MODEL }, { provider: 'vtxglobal', model: MODEL }] },
  ]), { dir });
  client = new OpenAI({ apiKey: MASTER_KEY, baseURL: gw.url, maxRetries: 0 });
});
after(async () => { await gw.stop(); await sim.stop(); gw.cleanup(); });
beforeEach(async () => { await sim.reset(); await gw.resetRoutes(); });

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
async function predictRequests() {
  return (await sim.requests()).filter((r) => r.path.endsWith(':predict'));
}

const inputs = ['a', 'four', 'seventeen letters', 'x'.repeat(40)];
const tokens = (s) => Math.floor((s.length + 3) / 4);

test('vertex embeddings: the SDK (base64) in order, dimensions, the :predict body, usage = the token counts, a usage row', async () => {
  const { data: r, response } = await client.embeddings.create({ model: 'vemb', input: inputs, dimensions: 5 }).withResponse();
  assert.equal(response.status, 200);
  assert.equal(r.object, 'list');
  assert.equal(r.model, 'vemb');
  assert.equal(r.data.length, inputs.length);
  r.data.forEach((d, i) => {
    assert.equal(d.object, 'embedding');
    assert.equal(d.index, i);
    assert.equal(d.embedding.length, 5, 'dimensions');
    assert.equal(d.embedding[0], inputs[i].length, 'the vector of input i');
    assert.ok(d.embedding.slice(1).every((x) => x >= 0 && x < 1));
  });
  const sum = inputs.reduce((n, s) => n + tokens(s), 0);
  assert.equal(r.usage.prompt_tokens, sum, "the sum of Vertex's token_count");
  assert.equal(r.usage.total_tokens, sum);
  const [req] = await predictRequests();
  assert.equal(req.path, `/v1/projects/${PROJECT}/locations/us-east5/publishers/google/models/${MODEL}:predict`);
  assert.match(req.headers.authorization, /^Bearer ya29\.sim\./);
  assert.deepEqual(req.body, { instances: inputs.map((content) => ({ content })), parameters: { outputDimensionality: 5 } });
  const rows = await usageRows(response.headers.get('x-request-id'));
  assert.equal(rows.at(-1).model_id, 'vemb');
  assert.equal(rows.at(-1).status, 200);
  assert.equal(rows.at(-1).prompt_tokens, sum);
  assert.equal(rows.at(-1).upstream_model, MODEL);
});

test('vertex embeddings: float and a single string; raw base64 is little-endian float32', async () => {
  const r = await client.embeddings.create({ model: 'vemb', input: 'hello', encoding_format: 'float' });
  assert.equal(r.data.length, 1);
  assert.equal(r.data[0].embedding.length, 16, 'the simulator default (no parameters sent)');
  assert.equal(r.data[0].embedding[0], 5);
  assert.equal(r.usage.prompt_tokens, 2);
  const [req] = await predictRequests();
  assert.deepEqual(req.body, { instances: [{ content: 'hello' }] });
  const raw = await fetch(`${gw.url}/embeddings`, { method: 'POST', headers: { authorization: `Bearer ${MASTER_KEY}`, 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'vemb', input: ['hey', 'hi'], encoding_format: 'base64', dimensions: 2 }) });
  assert.equal(raw.status, 200);
  const j = await raw.json();
  assert.deepEqual(j.data.map((d) => Buffer.from(d.embedding, 'base64').length), [8, 8]);
  assert.deepEqual(j.data.map((d) => Buffer.from(d.embedding, 'base64').readFloatLE(0)), [3, 2]);
});

test('vertex embeddings: a Claude route cannot embed; token arrays and too many inputs are 400s', async () => {
  await assert.rejects(client.embeddings.create({ model: 'vclaude', input: 'x' }),
    (e) => e instanceof OpenAI.BadRequestError && e.code === 'model_not_supported' && /embed/.test(e.message));
  await assert.rejects(client.embeddings.create({ model: 'vemb', input: [[1, 2, 3]] }),
    (e) => e instanceof OpenAI.BadRequestError && e.param === 'input' && /token arrays/.test(e.message));
  await assert.rejects(client.embeddings.create({ model: 'vemb', input: Array(251).fill('x') }),
    (e) => e instanceof OpenAI.BadRequestError && e.param === 'input' && /250/.test(e.message));
  assert.equal((await predictRequests()).length, 0, 'nothing reached Vertex');
});

test("vertex embeddings: Vertex's errors in OpenAI's shape, and a failing route fails over", async () => {
  await sim.script([{ status: 400, error_message: 'Unable to submit request because the model does not support it' }]);
  await assert.rejects(client.embeddings.create({ model: 'vemb', input: 'x' }),
    (e) => e instanceof OpenAI.BadRequestError && /does not support/.test(e.message));
  await sim.script([{ status: 503 }]);
  const { data: r, response } = await client.embeddings.create({ model: 'vemb-fallback', input: ['ab', 'abc'], encoding_format: 'float' }).withResponse();
  assert.deepEqual(r.data.map((d) => d.embedding[0]), [2, 3]);
  assert.match(response.headers.get('x-yourouter-attempts'), /vtxglobal\/text-embedding-005=ok:200$/);
  const reqs = await predictRequests();
  assert.match(reqs.at(-1).path, /\/locations\/global\/publishers\/google\/models\/text-embedding-005:predict$/);
  const rows = await usageRows(response.headers.get('x-request-id'));
  assert.ok(rows.length >= 2);
  assert.equal(rows[0].upstream_status, 503);
});
