// Process lifecycle: zero-config start, `check`, graceful shutdown with a
// stream in flight, and backpressure against a client that stops reading
// (and reads again).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync, spawn } from 'node:child_process';
import { writeFileSync, existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { once } from 'node:events';
import net from 'node:net';
import { startSim, startGateway, config, chat, sseData, rawStream, tmpDir, YR_BIN, MASTER_KEY } from './lib.mjs';

const hello = { model: 'gpt-4o', messages: [{ role: 'user', content: 'Reply with exactly: connected' }] };

test('zero-config: providers from the environment, built-in catalog, SQLite file', async (t) => {
  const sim = await startSim();
  const dir = tmpDir();
  const env = { ...process.env, OPENAI_API_KEY: 'sk-env-key', OPENAI_BASE_URL: sim.url,
    YOUROUTER_MASTER_KEY: MASTER_KEY, YOUROUTER_LISTEN: '127.0.0.1:0' };
  delete env.ANTHROPIC_API_KEY; delete env.GEMINI_API_KEY;
  const proc = spawn(YR_BIN, ['serve'], { env, cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
  t.after(async () => { proc.kill('SIGTERM'); await sim.stop(); rmSync(dir, { recursive: true, force: true }); });
  const port = await new Promise((resolve, reject) => {
    let out = '';
    proc.stdout.on('data', (d) => { out += d; const m = out.match(/listening on [^:]+:(\d+)/); if (m) resolve(Number(m[1])); });
    proc.on('exit', (c) => reject(new Error(`exited ${c}`)));
  });
  const gw = { url: `http://127.0.0.1:${port}/v1` };
  assert.equal((await fetch(`http://127.0.0.1:${port}/health`)).status, 200);
  const r = await chat(gw, hello);
  assert.equal(r.status, 200);
  assert.equal(r.json.choices[0].message.content, 'connected');
  const [req] = await sim.requests();
  assert.equal(req.headers.authorization, 'Bearer sk-env-key');
  assert.ok(existsSync(join(dir, 'yourouter.db')), 'the embedded SQLite database was created');
  const models = await (await fetch(`${gw.url}/models`, { headers: { authorization: `Bearer ${MASTER_KEY}` } })).json();
  assert.ok(models.data.some((m) => m.id === 'gpt-4o-mini'));
  assert.ok(!models.data.some((m) => m.id.startsWith('claude')), 'only vendors with a key are served');
});

test('check validates a config and names file, line and key', () => {
  const dir = tmpDir();
  const good = join(dir, 'good.yaml');
  writeFileSync(good, config({ providers: { openai: { base_url: 'http://127.0.0.1:1/v1' } }, models: [{ id: 'm', routes: [{ provider: 'openai' }] }] }));
  let r = spawnSync(YR_BIN, ['check', '--config', good], { encoding: 'utf8', env: { ...process.env, YOUROUTER_MASTER_KEY: 'k' } });
  assert.equal(r.status, 0, r.stderr);
  const bad = join(dir, 'bad.yaml');
  writeFileSync(bad, 'server:\n  listen: 127.0.0.1:0\nproviders:\n  openai:\n    kind: openai\n    base_url: http://x\n    colour: blue\n');
  r = spawnSync(YR_BIN, ['check', '--config', bad], { encoding: 'utf8' });
  assert.notEqual(r.status, 0);
  assert.match(r.stderr, /bad\.yaml:7: providers\.openai\.colour/);
  rmSync(dir, { recursive: true, force: true });
});

test('SIGTERM: in-flight streams finish, new connections are refused, exit 0', async (t) => {
  const sim = await startSim();
  const gw = await startGateway(config({ providers: { openai: { base_url: sim.url } }, models: [{ id: 'gpt-4o', routes: [{ provider: 'openai' }] }] }));
  t.after(async () => { await sim.stop(); gw.cleanup(); });
  const resp = await fetch(`${gw.url}/chat/completions`, {
    method: 'POST', headers: { authorization: `Bearer ${MASTER_KEY}`, 'content-type': 'application/json' },
    body: JSON.stringify({ ...hello, stream: true, x_sim: { chunks: 20, chunk_delay_ms: 25 } }),
  });
  const reader = resp.body.getReader();
  let text = new TextDecoder().decode((await reader.read()).value);
  gw.proc.kill('SIGTERM');
  const exited = once(gw.proc, 'exit');
  for (;;) { const { value, done } = await reader.read(); if (done) break; text += new TextDecoder().decode(value); }
  assert.equal(sseData(text).at(-1), '[DONE]', 'the stream in flight completed');
  const [code] = await exited;
  assert.equal(code, 0);
  await assert.rejects(fetch(`${gw.base}/health`), 'no longer accepting');
});

// Issue 8 #7: a stream still running at shutdown_timeout_ms ends with the
// error event of its client's dialect, never a silent stop.
test('SIGTERM: streams still running at the deadline end with an explicit error event', async (t) => {
  const sim = await startSim();
  const gw = await startGateway(config({
    providers: { openai: { base_url: sim.url }, anthropic: { kind: 'anthropic', base_url: sim.base } },
    models: [{ id: 'gpt-4o', routes: [{ provider: 'openai' }] }, { id: 'claude', routes: [{ provider: 'anthropic', model: 'claude-x' }] }],
    server: { shutdown_timeout_ms: 300, workers: 1 },
  }));
  t.after(async () => { await sim.stop(); gw.cleanup(); });
  const slow = { text: 'a'.repeat(200), chunks: 50, chunk_delay_ms: 100 };
  const open = async (path, body, headers = {}) => {
    const r = await fetch(`${gw.base}${path}`, {
      method: 'POST', headers: { authorization: `Bearer ${MASTER_KEY}`, 'content-type': 'application/json', ...headers },
      body: JSON.stringify(body),
    });
    assert.equal(r.status, 200);
    const reader = r.body.getReader();
    const first = new TextDecoder().decode((await reader.read()).value);
    // Wrapped: an async function returning a promise would wait for it.
    return { rest: (async () => {
      let text = first;
      for (;;) { const { value, done } = await reader.read(); if (done) break; text += new TextDecoder().decode(value); }
      return text;
    })() };
  };
  const oai = await open('/v1/chat/completions', { ...hello, stream: true, x_sim: slow });
  const anth = await open('/v1/messages', { model: 'claude', max_tokens: 100, stream: true, messages: [{ role: 'user', content: 'hi' }], x_sim: slow },
    { 'anthropic-version': '2023-06-01' });
  // One that has not started its answer yet: a 503, not a reset.
  const pending = fetch(`${gw.url}/chat/completions`, {
    method: 'POST', headers: { authorization: `Bearer ${MASTER_KEY}`, 'content-type': 'application/json' },
    body: JSON.stringify({ ...hello, x_sim: { hang: true } }),
  });
  await sim.wait({ requests: 3 });
  const t0 = Date.now();
  gw.proc.kill('SIGTERM');
  const exited = once(gw.proc, 'exit');
  const [oText, aText, p] = await Promise.all([oai.rest, anth.rest, pending]);
  const ms = Date.now() - t0;
  const last = JSON.parse(sseData(oText).at(-1));
  assert.equal(last.error.type, 'server_error', oText.slice(-300));
  assert.match(last.error.message, /shutting down/);
  assert.ok(!oText.includes('[DONE]'));
  assert.match(aText, /event: error\ndata: \{"type":"error","error":\{"type":"[a-z_]+","message":"[^"]*shutting down/, aText.slice(-300));
  assert.ok(!aText.includes('message_stop'));
  assert.equal(p.status, 503);
  assert.equal((await p.json()).error.code, 'shutting_down');
  assert.ok(ms < 3000, `took ${ms} ms`);
  const [code] = await exited;
  assert.equal(code, 0);
});

test('a client that stops reading pauses the upstream instead of growing memory', async (t) => {
  const sim = await startSim();
  // ASan keeps freed memory in quarantine (256 MB by default): keep it small
  // so RSS shows what the gateway holds, not what it recently freed.
  const asan = `${process.env.ASAN_OPTIONS ? process.env.ASAN_OPTIONS + ':' : ''}quarantine_size_mb=1`;
  const gw = await startGateway(config({ providers: { openai: { base_url: sim.url } }, models: [{ id: 'gpt-4o', routes: [{ provider: 'openai' }] }], server: { workers: 1 } }), { env: { ASAN_OPTIONS: asan } });
  t.after(async () => { await gw.stop(); await sim.stop(); gw.cleanup(); });
  // ~200 MB of SSE if nothing pushed back.
  const body = JSON.stringify({ ...hello, stream: true, x_sim: { text: 'x'.repeat(8192), chunks: 1, repeat: 25000 } });
  const sock = net.connect(gw.port, '127.0.0.1');
  await once(sock, 'connect');
  sock.write(`POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${MASTER_KEY}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
  await once(sock, 'data');
  sock.pause();
  const before = gw.rssKiB();
  // Give the simulator time to push as much as it can; with backpressure
  // the gateway holds at most its high-water mark plus socket buffers.
  await sim.wait({ requests: 1 });
  await new Promise((r) => setTimeout(r, 1500));
  const grown = gw.rssKiB() - before;
  sock.destroy();
  assert.ok(grown < 32 * 1024, `RSS grew by ${grown} KiB while the client was not reading`);
  const w = await sim.wait({ aborted: 1 });
  assert.equal(w.status, 200, 'the disconnect reached the paused upstream transfer');
});

test('a client that stops reading and then reads again gets the whole stream', { timeout: 30000 }, async (t) => {
  const sim = await startSim();
  const gw = await startGateway(config({ providers: { openai: { base_url: sim.url } }, models: [{ id: 'gpt-4o', routes: [{ provider: 'openai' }] }], server: { workers: 1 } }));
  t.after(async () => { await gw.stop(); await sim.stop(); gw.cleanup(); });
  // ~16 MB of SSE: many times the gateway's high-water mark and the socket
  // buffers, so the upstream is paused and resumed many times over.
  const repeat = 2000;
  const body = JSON.stringify({ ...hello, stream: true, x_sim: { text: 'x'.repeat(8192), chunks: 1, repeat } });
  const { sock, done, text: received } = await rawStream(gw, body);
  await once(sock, 'data');
  sock.pause();
  // the stall is the scenario: the client reads nothing for a while
  await sim.wait({ requests: 1 });
  await new Promise((r) => setTimeout(r, 300));
  sock.resume();
  await done;
  sock.destroy();
  const text = received();
  const contents = text.split('"content":"xxxxxxxx').length - 1;
  assert.equal(contents, repeat, `content events received: ${contents} of ${repeat}`);
  assert.ok(text.includes('"finish_reason":"stop"'), 'the finish event arrived');
});
