// SIGHUP reloads: config generations under load, a stream that outlives the
// generation it started on, an invalid config refused, the master key and
// restart-only settings, metrics across a reload, and the zero-config source.
// Every wait is on an event: a log line, a response, a process exit.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { writeFileSync, renameSync, rmSync } from 'node:fs';
import { EventEmitter } from 'node:events';
import { startSim, startGateway, config, chat, sseData, tmpDir, YR_BIN, MASTER_KEY } from './lib.mjs';

const hello = { model: 'gpt-4o', messages: [{ role: 'user', content: 'Reply with exactly: connected' }] };

// Two valid configs: B adds a model that A does not have.
const configA = (sim) => config({
  providers: { openai: { base_url: sim.url } },
  models: [{ id: 'gpt-4o', routes: [{ provider: 'openai' }] }],
});
const configB = (sim) => config({
  providers: { openai: { base_url: sim.url }, spare: { base_url: sim.url, timeout_ms: 120000 } },
  models: [
    { id: 'gpt-4o', routes: [{ provider: 'openai' }] },
    { id: 'added-model', routes: [{ provider: 'spare', model: 'gpt-4o-mini' }] },
  ],
});
// Valid YAML, but a route names a provider that does not exist.
const configInvalid = (sim) => configA(sim) + '  - id: broken\n    routes:\n      - provider: nope\n';

// Resolves when pred(stderr so far) holds; rejects after timeoutMs (a bound,
// not a wait: it fires only when the line never comes).
function waitStderr(gw, pred, what, timeoutMs = 15000) {
  return new Promise((resolve, reject) => {
    const check = () => { if (pred(gw.stderr())) { done(); resolve(); } };
    const timer = setTimeout(() => {
      done();
      reject(new Error(`timed out waiting for ${what}; stderr: ${gw.stderr().slice(-3000)}`));
    }, timeoutMs);
    const done = () => { clearTimeout(timer); gw.proc.stderr.off('data', check); };
    gw.proc.stderr.on('data', check);
    check();
  });
}

// A failed stop must not leave the simulator running (and the test hanging).
async function stopAll(gw, sim) {
  try { await gw.stop(); } finally { await sim.stop(); gw.cleanup(); }
}

const count = (text, re) => (text.match(re) || []).length;
const generations = (gw) => count(gw.stderr(), /config generation \d+ in effect/g);

// Writes the file whole (rename), so a reload never reads half of it.
function writeConfig(gw, yaml) {
  const tmp = `${gw.cfgPath}.tmp`;
  writeFileSync(tmp, yaml);
  renameSync(tmp, gw.cfgPath);
}

async function reloadTo(gw, yaml, generation) {
  writeConfig(gw, yaml);
  gw.proc.kill('SIGHUP');
  await waitStderr(gw, (s) => s.includes(`config generation ${generation} in effect`),
    `generation ${generation}`);
}

async function modelIds(gw, key = MASTER_KEY) {
  const r = await fetch(`${gw.url}/models`, { headers: { authorization: `Bearer ${key}` } });
  assert.equal(r.status, 200);
  return (await r.json()).data.map((m) => m.id).sort();
}

// null when the response is a complete success, else why not.
function problem(r, stream) {
  if (r.status !== 200) return `status ${r.status}: ${r.text.slice(0, 300)}`;
  if (!stream) return r.json?.choices?.[0]?.message?.content === 'connected' ? null : `body ${r.text.slice(0, 300)}`;
  const data = sseData(r.text);
  if (data.at(-1) !== '[DONE]') return `stream without [DONE]: ${r.text.slice(-300)}`;
  const chunks = data.slice(0, -1).map((d) => JSON.parse(d));
  const text = chunks.filter((c) => c.choices.length).map((c) => c.choices[0].delta.content ?? '').join('');
  if (text !== 'connected') return `stream text ${JSON.stringify(text)}`;
  return null;
}

test('20 reloads under load: no request fails or is lost, an invalid config is refused', async (t) => {
  const sim = await startSim();
  const gw = await startGateway(configB(sim));
  t.after(() => stopAll(gw, sim));
  assert.deepEqual(await modelIds(gw), ['added-model', 'gpt-4o']);

  const CLIENTS = 4, MAX_PER_CLIENT = 150, deadline = Date.now() + 120000;
  const results = [];
  const progress = new EventEmitter();
  let reloading = true, sent = 0;
  const client = async (id) => {
    // Bounded in count and time; runs at least a few requests, and keeps
    // going while the reloads run.
    for (let i = 0; i < MAX_PER_CLIENT && (reloading || i < 5) && Date.now() < deadline; i++) {
      const stream = (i + id) % 2 === 0;
      const body = stream ? { ...hello, stream: true, x_sim: { chunks: 4, chunk_delay_ms: 10 } } : hello;
      sent++;
      const startGen = generations(gw);
      let why;
      try { why = problem(await chat(gw, body), stream); } catch (e) { why = `request failed: ${e.message}`; }
      results.push({ stream, why, spanned: generations(gw) > startGen });
      progress.emit('done');
    }
  };
  // Resolves once another CLIENTS requests finished, so the reloads are
  // spread over the load, not bunched before it; bounded like the rest.
  const moreRequests = (before) => new Promise((resolve, reject) => {
    const enough = () => results.length >= before + CLIENTS;
    if (enough()) { resolve(); return; }
    const timer = setTimeout(() => { progress.off('done', on); reject(new Error('the load stalled')); }, 15000);
    const on = () => { if (enough()) { clearTimeout(timer); progress.off('done', on); resolve(); } };
    progress.on('done', on);
  });

  const load = Promise.all(Array.from({ length: CLIENTS }, (_, id) => client(id)));
  try {
    let generation = 1;
    for (let k = 1; k <= 20; k++) {
      const before = results.length;
      const toA = k % 2 === 1;
      await reloadTo(gw, toA ? configA(sim) : configB(sim), ++generation);
      assert.deepEqual(await modelIds(gw), toA ? ['gpt-4o'] : ['added-model', 'gpt-4o']);
      if (k === 10) {
        // Refused whole, with file, line and key; generation 11 keeps serving.
        const refused = count(gw.stderr(), /reload refused/g);
        writeConfig(gw, configInvalid(sim));
        gw.proc.kill('SIGHUP');
        await waitStderr(gw, (s) => count(s, /reload refused/g) > refused, 'the refusal');
        assert.match(gw.stderr(), /reload refused, generation 11 keeps serving: \S*yourouter\.yaml:\d+: models\[1\]\.routes\[0\]\.provider: no provider named 'nope'/);
        assert.deepEqual(await modelIds(gw), ['added-model', 'gpt-4o']);
      }
      await moreRequests(before);
    }
  } finally {
    reloading = false;
    await load;
  }

  // Nothing lost: every request sent has its result, and none failed.
  assert.equal(results.length, sent);
  const failed = results.filter((r) => r.why);
  assert.deepEqual(failed, [], `${failed.length} of ${results.length} requests failed`);
  assert.ok(results.some((r) => r.stream) && results.some((r) => !r.stream));
  assert.ok(results.length >= 20 * CLIENTS, `only ${results.length} requests ran`);
  const spanned = results.filter((r) => r.spanned).length;
  assert.ok(spanned > 0, 'some requests were in flight while their generation was replaced');
  t.diagnostic(`${results.length} requests across 21 SIGHUPs, ${spanned} of them across a swap`);
  // The last reload (B) is in effect: its added model answers.
  assert.equal(problem(await chat(gw, { ...hello, model: 'added-model' }), false), null);
  assert.equal(count(gw.stderr(), /config generation \d+ in effect/g), 20);
  assert.ok(!gw.stderr().includes('generation 22'), 'the invalid config made no generation');
});

test('a stream in flight finishes on its generation after its model was removed', async (t) => {
  const sim = await startSim();
  const gw = await startGateway(configB(sim));
  t.after(() => stopAll(gw, sim));
  const resp = await fetch(`${gw.url}/chat/completions`, {
    method: 'POST', headers: { authorization: `Bearer ${MASTER_KEY}`, 'content-type': 'application/json' },
    body: JSON.stringify({ ...hello, model: 'added-model', stream: true, x_sim: { chunks: 12, chunk_delay_ms: 30 } }),
  });
  assert.equal(resp.status, 200);
  const reader = resp.body.getReader();
  const dec = new TextDecoder();
  let text = dec.decode((await reader.read()).value);
  // The stream's model and provider go away while it runs.
  await reloadTo(gw, configA(sim), 2);
  assert.deepEqual(await modelIds(gw), ['gpt-4o']);
  const gone = await chat(gw, { ...hello, model: 'added-model' });
  assert.equal(gone.status, 400);
  assert.equal(gone.json.error.code, 'model_not_found');
  for (;;) { const { value, done } = await reader.read(); if (done) break; text += dec.decode(value); }
  const data = sseData(text);
  assert.equal(data.at(-1), '[DONE]', 'the stream completed');
  const content = data.slice(0, -1).map((d) => JSON.parse(d)).filter((c) => c.choices.length)
    .map((c) => c.choices[0].delta.content ?? '').join('');
  assert.equal(content, 'connected');
  // It was counted under its own (now removed) model and vendor.
  const m = await (await fetch(`${gw.base}/metrics`)).text();
  assert.match(m, /yourouter_requests_total\{model="added-model",vendor="spare",status="200"\} 1\n/);
  assert.match(m, /yourouter_requests_total\{model="",vendor="",status="400"\} 1\n/);
});

test('the master key changes on reload; listen, workers and storage wait for a restart', async (t) => {
  const sim = await startSim();
  const gw = await startGateway(configA(sim));
  t.after(() => stopAll(gw, sim));
  assert.equal((await chat(gw, hello)).status, 200);
  const NEW_KEY = 'sk-yr-master-new-' + 'n'.repeat(20);
  const next = configB(sim)
    .replace('master_key: ${YOUROUTER_MASTER_KEY}', `master_key: ${NEW_KEY}`)
    .replace('workers: 2', 'workers: 3')
    .replace('listen: 127.0.0.1:0', 'listen: 127.0.0.1:1')
    .replace('url: sqlite://yourouter.db', 'url: sqlite://other.db');
  await reloadTo(gw, next, 2);
  for (const key of ['server.listen', 'server.workers', 'storage.url'])
    assert.match(gw.stderr(), new RegExp(`reload: ${key.replace('.', '\\.')} changed; ignored until a restart`));
  assert.match(gw.stderr(), /config generation 2 in effect on 2 workers/);
  assert.equal((await chat(gw, hello)).status, 401, 'the old master key no longer works');
  assert.equal((await chat(gw, hello, { key: NEW_KEY })).status, 200);
  assert.deepEqual(await modelIds(gw, NEW_KEY), ['added-model', 'gpt-4o']);
  // Counters kept their series across the reload, keyed by name.
  const m = await (await fetch(`${gw.base}/metrics`)).text();
  assert.match(m, /yourouter_requests_total\{model="gpt-4o",vendor="openai",status="200"\} 2\n/);
  assert.match(m, /yourouter_upstream_attempts_total\{vendor="openai",outcome="ok"\} 2\n/);
  assert.ok(!gw.stderr().includes(NEW_KEY) && !gw.stderr().includes('other.db'), 'no value is logged');
});

test('without --config, SIGHUP re-reads the zero-config environment', async (t) => {
  const sim = await startSim();
  const dir = tmpDir();
  const env = { ...process.env, OPENAI_API_KEY: 'sk-env-key', OPENAI_BASE_URL: sim.url,
    YOUROUTER_MASTER_KEY: MASTER_KEY, YOUROUTER_LISTEN: '127.0.0.1:0', YOUROUTER_DB_URL: 'sqlite::memory:' };
  delete env.ANTHROPIC_API_KEY; delete env.GEMINI_API_KEY;
  const proc = spawn(YR_BIN, ['serve'], { env, cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  proc.stderr.on('data', (d) => { stderr += d; });
  const exited = new Promise((resolve) => proc.on('exit', (code) => resolve(code)));
  t.after(async () => {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
    await sim.stop();
    rmSync(dir, { recursive: true, force: true });
  });
  const port = await new Promise((resolve, reject) => {
    let out = '';
    proc.stdout.on('data', (d) => { out += d; const m = out.match(/listening on [^:]+:(\d+)/); if (m) resolve(Number(m[1])); });
    exited.then((c) => reject(new Error(`exited ${c}: ${stderr}`)));
  });
  const gw = { proc, url: `http://127.0.0.1:${port}/v1`, stderr: () => stderr };
  proc.kill('SIGHUP');
  await waitStderr(gw, (s) => s.includes('config generation 2 in effect'), 'generation 2');
  assert.ok((await modelIds(gw)).includes('gpt-4o-mini'));
  assert.equal(problem(await chat(gw, hello), false), null);
  proc.kill('SIGTERM');
  assert.equal(await exited, 0, stderr.slice(-2000));
});
