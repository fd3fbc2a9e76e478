// Per-key content logging (docs/observability.md): a key that did not opt in
// never has its prompts stored; one that did (log_content, log_retention)
// has each request body and the exact answer its client got (whole or
// streamed) in content_log, readable by the operator at
// /admin/requests/{id}/content, and gone once its retention passed. On
// SQLite, and on PostgreSQL when YR_TEST_PG_URL is set.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { startSim, startGateway, config, chat, MASTER_KEY } from './lib.mjs';

const PG = process.env.YR_TEST_PG_URL;
const suffix = `${process.pid}-${Date.now()}`;
const stops = [];
after(async () => { for (const s of stops.reverse()) await s(); });

async function setup(storage) {
  const sim = await startSim();
  const gw = await startGateway(config({
    providers: { openai: { base_url: sim.url, api_key: 'sk-upstream-secret-provider-key' } },
    models: [{ id: 'gpt-4o', routes: [{ provider: 'openai' }] }],
    storage,
  }));
  stops.push(async () => { await gw.stop(); await sim.stop(); gw.cleanup(); });
  const admin = async (method, path, body) => {
    const r = await fetch(`${gw.base}${path}`, {
      method, headers: { authorization: `Bearer ${MASTER_KEY}`, 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await r.text();
    return { status: r.status, json: text ? JSON.parse(text) : null };
  };
  const rows = (id) => {
    const sql = `SELECT request_id, key_id, expires_ms FROM content_log WHERE request_id = '${id}'`;
    if (storage.startsWith('postgres')) {
      const q = spawnSync('psql', [storage, '-At', '-F', ',', '-c', sql], { encoding: 'utf8' });
      assert.equal(q.status, 0, q.stderr);
      return q.stdout.trim().split('\n').filter(Boolean).map((l) => {
        const [request_id, key_id, expires_ms] = l.split(',');
        return { request_id, key_id: Number(key_id), expires_ms: Number(expires_ms) };
      });
    }
    const q = spawnSync('sqlite3', ['-json', join(gw.dir, 'yourouter.db'), sql], { encoding: 'utf8' });
    assert.equal(q.status, 0, q.stderr);
    return JSON.parse(q.stdout || '[]');
  };
  // Rows are written off the request path, after the answer went out.
  const content = async (id) => {
    for (let i = 0; i < 500; i++) {
      const r = await admin('GET', `/admin/requests/${id}/content`);
      if (r.status !== 404) return r;
      await new Promise((res) => setTimeout(res, 5));
    }
    throw new Error(`no content for ${id}`);
  };
  return { sim, gw, admin, rows, content };
}

const backends = [['sqlite', 'sqlite://yourouter.db', false],
  ['postgres', PG, PG ? false : 'YR_TEST_PG_URL is not set (scripts/test starts PostgreSQL)']];

for (const [name, storage, skip] of backends) {
  test(`${name}: no content without the opt-in; prompt and answer (whole and streamed) with it`, { skip }, async () => {
    const { gw, admin, rows, content } = await setup(storage);
    const plain = await admin('POST', '/admin/keys', { name: `plain-${suffix}` });
    assert.equal(plain.status, 201);
    assert.equal(plain.json.api_key.log_content, false);
    assert.equal(plain.json.api_key.log_retention, null);
    const logged = await admin('POST', '/admin/keys', { name: `logged-${suffix}`, log_content: true });
    assert.equal(logged.status, 201, JSON.stringify(logged.json));
    assert.equal(logged.json.api_key.log_content, true);
    assert.equal(logged.json.api_key.log_retention, 7 * 86400, 'defaults to 7 days');
    assert.equal((await admin('POST', '/admin/keys', { name: `bad-${suffix}`, log_content: true, log_retention: '91d' })).status, 400);
    const patched = await admin('PATCH', `/admin/keys/${plain.json.api_key.id}`, { log_retention: '1d' });
    assert.equal(patched.status, 400, 'a retention needs the opt-in');
    const later = await admin('POST', '/admin/keys', { name: `later-${suffix}` });
    const on = await admin('PATCH', `/admin/keys/${later.json.api_key.id}`, { log_content: true, log_retention: '1d' });
    assert.equal(on.status, 200, JSON.stringify(on.json));
    assert.equal(on.json.api_key.log_retention, 86400);
    assert.equal((await admin('GET', `/admin/keys/${later.json.api_key.id}`)).json.api_key.log_content, true);

    const secretPrompt = `never-stored-${suffix}`;
    const p = await chat(gw, { model: 'gpt-4o', messages: [{ role: 'user', content: secretPrompt }] }, { key: plain.json.key });
    assert.equal(p.status, 200);
    const pid = p.headers.get('x-request-id');

    const prompt = `Reply with exactly: logged ${suffix}`;
    const r = await chat(gw, { model: 'gpt-4o', messages: [{ role: 'user', content: prompt }] }, { key: logged.json.key });
    assert.equal(r.status, 200);
    const id = r.headers.get('x-request-id');
    const c = await content(id);
    assert.equal(c.status, 200, JSON.stringify(c.json));
    assert.equal(c.json.request_id, id);
    assert.equal(c.json.key_id, logged.json.api_key.id);
    assert.equal(c.json.status, 200);
    assert.equal(c.json.stream, false);
    assert.equal(JSON.parse(c.json.request).messages[0].content, prompt, 'the body as the client sent it');
    assert.equal(c.json.response, r.text, 'the answer exactly as the client got it');
    assert.equal(c.json.request_truncated, false);
    assert.equal(c.json.response_truncated, false);
    for (const secret of [logged.json.key, MASTER_KEY, 'sk-upstream-secret-provider-key'])
      assert.ok(!JSON.stringify(c.json).includes(secret), 'no key is ever in a content row');
    assert.equal(rows(id).length, 1);

    // The row of the later request is there, so the earlier one's would be.
    assert.equal(rows(pid).length, 0, 'no row for a key without the opt-in');
    assert.equal((await admin('GET', `/admin/requests/${pid}/content`)).status, 404);

    const sr = await fetch(`${gw.url}/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${logged.json.key}` },
      body: JSON.stringify({ model: 'gpt-4o', stream: true, messages: [{ role: 'user', content: prompt }] }),
    });
    assert.equal(sr.status, 200);
    const streamed = await sr.text();
    assert.match(streamed, /data: \[DONE\]/);
    const sc = await content(sr.headers.get('x-request-id'));
    assert.equal(sc.json.stream, true);
    assert.equal(sc.json.response, streamed, 'the streamed bytes the client got');

    // Only the operator reads it; never the access log or /metrics.
    const other = await fetch(`${gw.base}/admin/requests/${id}/content`, { headers: { authorization: `Bearer ${logged.json.key}` } });
    assert.equal(other.status === 401 || other.status === 403, true, `status ${other.status}`);
    const metrics = await (await fetch(`${gw.base}/metrics`, { headers: { authorization: `Bearer ${MASTER_KEY}` } })).text();
    for (const s of [prompt, secretPrompt]) {
      assert.ok(!gw.stderr().includes(s), 'no prompt in the logs');
      assert.ok(!metrics.includes(s), 'no prompt in /metrics');
    }
  });

  test(`${name}: rows go once the key's retention passed; the CLI sets and shows the opt-in`, { skip }, async () => {
    const { gw, admin, rows } = await setup(storage);
    const cli = gw.cli(['keys', 'create', '--name', `short-${suffix}`, '--log-content', 'true', '--log-retention', '2s']);
    assert.equal(cli.status, 0, cli.stderr);
    const key = cli.stdout.trim();
    const show = gw.cli(['keys', 'show', `short-${suffix}`]);
    assert.equal(show.status, 0, show.stderr);
    assert.match(show.stdout, /"log_content":true/);
    assert.match(show.stdout, /"log_retention":2\b/);
    assert.equal(gw.cli(['keys', 'create', '--name', `nolog-${suffix}`, '--log-retention', '2s']).status === 0, false,
      'a retention needs the opt-in');

    const r = await chat(gw, { model: 'gpt-4o', messages: [{ role: 'user', content: 'Reply with exactly: short' }] }, { key });
    assert.equal(r.status, 200);
    const id = r.headers.get('x-request-id');
    let row;
    for (let i = 0; i < 500 && !row; i++) {
      [row] = rows(id);
      if (!row) await new Promise((res) => setTimeout(res, 5));
    }
    assert.ok(row, 'the row was written');
    // Wait out the 2 s retention, then run the purge the workers run hourly.
    await new Promise((res) => setTimeout(res, Math.max(0, row.expires_ms - Date.now()) + 20));
    assert.equal((await admin('GET', `/admin/requests/${id}/content`)).status, 404, 'expired: not shown');
    const purge = await admin('POST', '/admin/content/purge');
    assert.equal(purge.status, 200);
    assert.ok(purge.json.deleted >= 1, JSON.stringify(purge.json));
    assert.equal(rows(id).length, 0, 'purged');

    const off = gw.cli(['keys', 'update', `short-${suffix}`, '--log-content', 'false']);
    assert.equal(off.status, 0, off.stderr);
    assert.match(gw.cli(['keys', 'show', `short-${suffix}`]).stdout, /"log_content":false,"log_retention":null/);
  });
}
