// Client keys with limits and budgets, the admin API and CLI that manage
// them, and the usage rows with costs that accounting reads: as a client and
// an operator see them.
import { test, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { startSim, startGateway, config, chat, MASTER_KEY } from './lib.mjs';

let sim, anth, gw;

before(async () => {
  sim = await startSim();
  anth = await startSim();
  gw = await startGateway(config({
    providers: {
      openai: { base_url: sim.url },
      backup: { base_url: sim.url },
      anthropic: { kind: 'anthropic', base_url: anth.base, api_key: 'sk-ant-x' },
      google: { kind: 'gemini', base_url: anth.base, api_key: 'g-key' },
    },
    models: [
      { id: 'gpt-4o', routes: [{ provider: 'openai' }] },
      { id: 'gpt-4o-mini', routes: [{ provider: 'openai' }] },
      { id: 'failover', routes: [{ provider: 'openai', model: 'gpt-4o' }, { provider: 'backup', model: 'gpt-4o-mini' }] },
      { id: 'claude', routes: [{ provider: 'anthropic', model: 'claude-sonnet-4-20250514' }] },
      { id: 'flash', routes: [{ provider: 'google', model: 'gemini-2.5-flash' }] },
    ],
  }));
});

after(async () => { await gw.stop(); await sim.stop(); await anth.stop(); gw.cleanup(); });
beforeEach(async () => { await sim.reset(); await anth.reset(); });

const admin = async (method, path, body, key = MASTER_KEY) => {
  const r = await fetch(`${gw.base}${path}`, {
    method, headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await r.text();
  return { status: r.status, headers: r.headers, json: text ? JSON.parse(text) : null };
};
const hi = (model, extra = {}) => ({ model, messages: [{ role: 'user', content: 'Reply with exactly: ok fine' }], ...extra });

function db(sql) {
  const q = spawnSync('sqlite3', ['-json', join(gw.dir, 'yourouter.db'), sql], { encoding: 'utf8' });
  assert.equal(q.status, 0, q.stderr);
  return JSON.parse(q.stdout || '[]');
}

// Usage rows are written off the request path: wait until they are there.
async function rowsFor(requestId, n = 1) {
  for (let i = 0; i < 200; i++) {
    const rows = db(`SELECT * FROM usage WHERE request_id = '${requestId}' ORDER BY attempt`);
    if (rows.length >= n) return rows;
    await new Promise((r) => setImmediate(r));
  }
  throw new Error(`no ${n} usage rows for ${requestId}`);
}

test('admin API: create (secret once), get, list, update, rotate with grace, revoke', async () => {
  const c = await admin('POST', '/admin/keys', { name: 'team-a', rpm: 100, models: ['gpt-4o*'], budgets: { daily: 5 }, metadata: { team: 'a' } });
  assert.equal(c.status, 201, JSON.stringify(c.json));
  assert.match(c.json.key, /^yr-[A-Za-z0-9_-]{43}$/);
  const k = c.json.api_key;
  assert.equal(k.name, 'team-a');
  assert.equal(k.rpm, 100);
  assert.deepEqual(k.models, ['gpt-4o*']);
  assert.equal(k.budgets.daily, 5);
  assert.deepEqual(k.metadata, { team: 'a' });
  assert.equal((await chat(gw, hi('gpt-4o'), { key: c.json.key })).status, 200);

  const got = await admin('GET', `/admin/keys/${k.id}`);
  assert.equal(got.status, 200);
  assert.equal(got.json.key, undefined, 'the secret is never shown again');
  assert.equal(got.json.api_key.name, 'team-a');
  const list = await admin('GET', '/admin/keys');
  assert.ok(list.json.data.some((x) => x.name === 'team-a'));
  assert.ok(!JSON.stringify(list.json).includes(c.json.key));

  const up = await admin('PATCH', '/admin/keys/team-a', { rpm: 7, budgets: { daily: null }, models: null });
  assert.equal(up.status, 200, JSON.stringify(up.json));
  assert.equal(up.json.api_key.rpm, 7);
  assert.equal(up.json.api_key.budgets.daily, null);
  assert.deepEqual(up.json.api_key.models, []);
  assert.equal((await admin('PATCH', '/admin/keys/team-a', { rpm: 'many' })).status, 400);

  const rot = await admin('POST', '/admin/keys/team-a/rotate', { grace_seconds: 60 });
  assert.equal(rot.status, 200);
  assert.notEqual(rot.json.key, c.json.key);
  assert.equal((await chat(gw, hi('gpt-4o'), { key: rot.json.key })).status, 200);
  assert.equal((await chat(gw, hi('gpt-4o'), { key: c.json.key })).status, 200, 'the old secret works during the grace');

  const rev = await admin('DELETE', '/admin/keys/team-a');
  assert.equal(rev.status, 200);
  assert.equal(rev.json.revoked, true);
  // revoked within a second: the auth cache lives 500 ms
  let status = 200;
  const t0 = Date.now();
  while (status !== 401 && Date.now() - t0 < 1500)
    status = (await chat(gw, hi('gpt-4o'), { key: rot.json.key })).status;
  assert.equal(status, 401);
  assert.ok(Date.now() - t0 < 1000);
  assert.equal((await admin('GET', '/admin/keys/team-a')).status, 404);
});

test('admin API needs the master key: a client key gets 403, none 401', async () => {
  const c = await admin('POST', '/admin/keys', { name: 'plain' });
  assert.equal((await admin('GET', '/admin/keys', undefined, c.json.key)).status, 403);
  assert.equal((await admin('POST', '/admin/keys', { name: 'x' }, c.json.key)).status, 403);
  assert.equal((await fetch(`${gw.base}/admin/keys`)).status, 401);
  assert.equal((await admin('POST', '/admin/keys', { name: 'plain' })).status, 400, 'name taken');
  assert.equal((await admin('POST', '/admin/keys', { name: 'bad name' })).status, 400);
});

test('allowed models: others are 403, and /v1/models lists only these', async () => {
  const c = await admin('POST', '/admin/keys', { name: 'minis', models: 'gpt-4o-mini' });
  const r = await chat(gw, hi('gpt-4o'), { key: c.json.key });
  assert.equal(r.status, 403);
  assert.equal(r.json.error.code, 'model_not_allowed');
  assert.equal((await chat(gw, hi('gpt-4o-mini'), { key: c.json.key })).status, 200);
  const m = await fetch(`${gw.url}/models`, { headers: { authorization: `Bearer ${c.json.key}` } });
  assert.deepEqual((await m.json()).data.map((x) => x.id), ['gpt-4o-mini']);
});

test('RPM is exact at the boundary, with OpenAI\'s x-ratelimit headers', async () => {
  const c = await admin('POST', '/admin/keys', { name: 'rpm3', rpm: 3 });
  for (let i = 0; i < 3; i++) assert.equal((await chat(gw, hi('gpt-4o'), { key: c.json.key })).status, 200);
  const r = await chat(gw, hi('gpt-4o'), { key: c.json.key });
  assert.equal(r.status, 429);
  assert.equal(r.json.error.type, 'rate_limit_error');
  assert.equal(r.json.error.code, 'rate_limit_exceeded');
  assert.equal(r.headers.get('x-ratelimit-limit-requests'), '3');
  assert.equal(r.headers.get('x-ratelimit-remaining-requests'), '0');
  assert.match(r.headers.get('x-ratelimit-reset-requests'), /^\d+(ms|s)$/);
  assert.ok(Number(r.headers.get('retry-after')) >= 1 && Number(r.headers.get('retry-after')) <= 60);
  assert.equal((await sim.requests()).length, 3, 'a refused request never reaches a provider');
});

test('budget race: 50 concurrent requests against a budget for about 10', async () => {
  // max_tokens 100 on gpt-4o ($10 per 1M output) reserves ~$0.001 each
  const c = await admin('POST', '/admin/keys', { name: 'budget', budgets: { daily: 0.0105 } });
  // each really costs its reservation: the prompt estimate and all of max_tokens
  const body = hi('gpt-4o', { max_tokens: 100 });
  const usage = { prompt_tokens: Math.floor(Buffer.byteLength(JSON.stringify(body)) / 4), completion_tokens: 100 };
  await sim.script(Array.from({ length: 50 }, () => ({ headers_delay_ms: 150, usage })));
  const rs = await Promise.all(Array.from({ length: 50 }, () => chat(gw, body, { key: c.json.key })));
  const ok = rs.filter((r) => r.status === 200).length;
  const refused = rs.filter((r) => r.status === 429);
  assert.equal(ok + refused.length, 50);
  assert.ok(ok >= 5 && ok <= 11, `${ok} admitted`);
  assert.ok(refused.every((r) => r.json.error.code === 'insufficient_quota'));
  const ids = rs.filter((r) => r.status === 200).map((r) => r.headers.get('x-request-id'));
  for (const id of ids) await rowsFor(id, 1);
  const [{ spent }] = db(`SELECT SUM(cost_micros) AS spent FROM usage WHERE request_id IN (${ids.map((i) => `'${i}'`).join(',')})`);
  console.log(`# budget race: ${ok} of 50 admitted, spent ${spent} micro-USD of a 10500 budget`);
  assert.ok(spent > 0 && spent <= 10500 + 1100, `spent ${spent} micro-USD`);
});

test('one usage row per attempt, each with its route, status and cost', async () => {
  await sim.script([{ status: 500 }]);
  const r = await chat(gw, hi('failover'));
  assert.equal(r.status, 200);
  const rows = await rowsFor(r.headers.get('x-request-id'), 2);
  assert.equal(rows.length, 2);
  assert.deepEqual(rows.map((x) => [x.attempt, x.provider, x.upstream_model, x.upstream_status, x.error_class]),
    [[0, 'openai', 'gpt-4o', 500, 'server_error'], [1, 'backup', 'gpt-4o-mini', 200, null]]);
  assert.equal(rows[0].cost_micros, 0);
  const u = r.json.usage;
  // gpt-4o-mini: $0.15 in, $0.60 out per 1M
  assert.equal(rows[1].cost_micros, Math.round((u.prompt_tokens * 0.15 + u.completion_tokens * 0.60)));
  assert.equal(rows.every((x) => x.status === 200), true, 'every row has the status the client got');
});

test('Anthropic cache reads and writes are priced as such, never double counted', async () => {
  await anth.script([{ usage: { input_tokens: 1000, cache_read_input_tokens: 50000, cache_creation_input_tokens: 20000 } }]);
  const r = await chat(gw, hi('claude'));
  assert.equal(r.status, 200, JSON.stringify(r.json));
  const [row] = await rowsFor(r.headers.get('x-request-id'));
  assert.equal(row.prompt_tokens, 71000);
  assert.equal(row.cached_tokens, 50000);
  assert.equal(row.cache_write_tokens, 20000);
  // 1k x $3 + 50k x $0.30 + 20k x $3.75 + out x $15 per 1M
  assert.equal(row.cost_micros, Math.round(3000 + 15000 + 75000 + row.completion_tokens * 15));
});

test('the CLI shares the store: keys create with limits, show, update, usage totals', async () => {
  const c = gw.cli(['keys', 'create', '--name', 'cli-made', '--rpm', '9', '--budget-monthly', '20', '--models', 'gpt-*']);
  assert.equal(c.status, 0, c.stderr);
  const secret = c.stdout.trim();
  const s = gw.cli(['keys', 'show', 'cli-made']);
  assert.equal(s.status, 0, s.stderr);
  const shown = JSON.parse(s.stdout);
  assert.equal(shown.rpm, 9);
  assert.equal(shown.budgets.monthly, 20);
  assert.ok(!s.stdout.includes(secret));
  const viaApi = await admin('GET', '/admin/keys/cli-made');
  assert.equal(viaApi.json.api_key.rpm, 9);
  const u = gw.cli(['keys', 'update', 'cli-made', '--rpm', '0', '--tpm', '5000']);
  assert.equal(u.status, 0, u.stderr);
  assert.equal(JSON.parse(u.stdout).rpm, null);
  assert.equal(gw.cli(['keys', 'update', 'cli-made', '--rpm', 'x']).status, 2);
  const r = await chat(gw, hi('gpt-4o'), { key: secret });
  assert.equal(r.status, 200);
  await rowsFor(r.headers.get('x-request-id'));
  const t = gw.cli(['usage', '--by', 'key', '--since', '1d', '--json']);
  assert.equal(t.status, 0, t.stderr);
  const mine = t.stdout.trim().split('\n').map((l) => JSON.parse(l)).find((x) => x.group === 'cli-made');
  assert.equal(mine.requests, 1);
  assert.ok(mine.cost_usd > 0);
  const api = await admin('GET', '/admin/usage?by=key&since=1d');
  assert.equal(api.status, 200);
  assert.equal(api.json.data.find((x) => x.group === 'cli-made').requests, 1);
  assert.equal((await admin('GET', '/admin/usage?by=colour')).status, 400);
});

test('TPM counts the tokens requests really used', async () => {
  const c = await admin('POST', '/admin/keys', { name: 'tpm', tpm: 500 });
  await sim.script([{ usage: { prompt_tokens: 300, completion_tokens: 150 } }]);
  assert.equal((await chat(gw, hi('gpt-4o'), { key: c.json.key })).status, 200);
  // 450 of 500 used in this minute: one more small request may not fit its estimate
  const r = await chat(gw, hi('gpt-4o', { max_tokens: 100 }), { key: c.json.key });
  assert.equal(r.status, 429);
  assert.equal(r.headers.get('x-ratelimit-limit-tokens'), '500');
  assert.equal(r.headers.get('x-ratelimit-remaining-tokens'), '0');
});

test('a key\'s concurrency cap', async () => {
  const c = await admin('POST', '/admin/keys', { name: 'conc1', max_concurrency: 1 });
  await sim.script([{ headers_delay_ms: 300 }]);
  const first = chat(gw, hi('gpt-4o'), { key: c.json.key });
  await sim.wait({ requests: 1 });
  const second = await chat(gw, hi('gpt-4o'), { key: c.json.key });
  assert.equal(second.status, 429);
  assert.match(second.json.error.message, /concurrency/);
  assert.equal((await first).status, 200);
  assert.equal((await chat(gw, hi('gpt-4o'), { key: c.json.key })).status, 200);
});

test('OpenAI cached prompt tokens are priced at the cached rate', async () => {
  await sim.script([{ usage: { prompt_tokens: 10000, completion_tokens: 1000, prompt_tokens_details: { cached_tokens: 8000 } } }]);
  const r = await chat(gw, hi('gpt-4o'));
  assert.equal(r.status, 200);
  const [row] = await rowsFor(r.headers.get('x-request-id'));
  assert.equal(row.prompt_tokens, 10000);
  assert.equal(row.cached_tokens, 8000);
  // 2k x $2.50 + 8k x $1.25 + 1k x $10 per 1M = 0.005 + 0.010 + 0.010
  assert.equal(row.cost_micros, 25000);
  assert.equal(row.usage_estimated, 0);
});

test('a cancelled stream records its partial usage', async () => {
  await sim.script([{ text: 'one two three four five six seven eight', chunks: 8, chunk_delay_ms: 100 }]);
  const ac = new AbortController();
  const r = await fetch(`${gw.url}/chat/completions`, {
    method: 'POST', signal: ac.signal,
    headers: { authorization: `Bearer ${MASTER_KEY}`, 'content-type': 'application/json' },
    body: JSON.stringify(hi('gpt-4o', { stream: true })),
  });
  const id = r.headers.get('x-request-id');
  const reader = r.body.getReader();
  let got = '';
  while ((got.match(/data: /g) || []).length < 4) { // the role chunk and three pieces of text
    const { value, done } = await reader.read();
    assert.ok(!done, 'the stream is still going');
    got += new TextDecoder().decode(value);
  }
  ac.abort();
  await sim.wait({ aborted: 1 });
  const [row] = await rowsFor(id);
  assert.equal(row.outcome, 'client_abort');
  assert.equal(row.cancelled, 1);
  assert.equal(row.usage_estimated, 1);
  assert.ok(row.completion_tokens >= 2 && row.completion_tokens < 10, JSON.stringify(row));
  assert.ok(row.prompt_tokens > 0);
  assert.ok(row.cost_micros > 0);
});

test('SQL injection strings are only ever a 401, 404 or 400', async () => {
  for (const k of ["' OR 1=1 --", "x'; DROP TABLE api_keys; --", 'yr-" OR ""="'])
    assert.equal((await chat(gw, hi('gpt-4o'), { key: k })).status, 401);
  assert.equal((await admin('GET', `/admin/keys/${encodeURIComponent("' OR 1=1 --")}`)).status, 404);
  assert.equal((await admin('GET', `/admin/usage?key=${encodeURIComponent("x' OR '1'='1")}`)).status, 404);
  assert.equal((await admin('GET', `/admin/usage?by=${encodeURIComponent('model; DROP TABLE usage')}`)).status, 400);
  assert.equal((await admin('POST', '/admin/keys', { name: "a'); DROP TABLE api_keys; --" })).status, 400);
  // and everything is still there
  assert.equal((await admin('GET', '/admin/keys')).status, 200);
  assert.ok(db('SELECT count(*) AS n FROM usage')[0].n > 0);
});

test('Gemini: cached tokens inside the prompt, thoughts as reasoning and priced as output', async () => {
  await anth.script([{ usage: { promptTokenCount: 20000, cachedContentTokenCount: 15000, candidatesTokenCount: 400, thoughtsTokenCount: 600 } }]);
  const r = await chat(gw, hi('flash'));
  assert.equal(r.status, 200, JSON.stringify(r.json));
  assert.equal(r.json.usage.prompt_tokens, 20000);
  assert.equal(r.json.usage.completion_tokens, 1000);
  assert.equal(r.json.usage.completion_tokens_details.reasoning_tokens, 600);
  assert.equal(r.json.usage.prompt_tokens_details.cached_tokens, 15000);
  const [row] = await rowsFor(r.headers.get('x-request-id'));
  assert.deepEqual([row.prompt_tokens, row.cached_tokens, row.completion_tokens, row.reasoning_tokens], [20000, 15000, 1000, 600]);
  // 5k x $0.30 + 15k x $0.075 + 1k x $2.50 per 1M = 1500 + 1125 + 2500 micro-USD
  assert.equal(row.cost_micros, 5125);
});
