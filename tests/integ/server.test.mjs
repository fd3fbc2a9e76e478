// The HTTP server under abusive clients (issue 8): pipelining floods,
// over-size and unauthenticated uploads, slow heads and bodies, too many
// connections, malformed HTTP. Everything is asserted as the client sees it.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { once } from 'node:events';
import OpenAI from 'openai';
import { startSim, startGateway, config, rawRequest, readUntil, MASTER_KEY } from './lib.mjs';

let sim, gw;
before(async () => {
  sim = await startSim();
  gw = await startGateway(config({
    providers: { openai: { base_url: sim.url } },
    models: [{ id: 'gpt-4o', routes: [{ provider: 'openai' }] }],
    server: { workers: 1, max_body_bytes: 65536 },
  }));
});
after(async () => { await gw.stop(); await sim.stop(); gw.cleanup(); });

// Counts occurrences of needle in s.
function count(s, needle) {
  let n = 0;
  for (let i = s.indexOf(needle); i >= 0; i = s.indexOf(needle, i + needle.length)) n++;
  return n;
}

test('pipelining far past the leftover buffer: every request is answered, the connection stays', async () => {
  const N = 8001;
  const one = 'GET /health HTTP/1.1\r\nHost: x\r\n\r\n';
  const sock = rawRequest(gw.port, one.repeat(N));
  let seen = 0;
  const resp = await readUntil(sock, (b) => (seen = count(b, 'HTTP/1.1 200 OK')) >= N, 20000)
    .catch((e) => { throw new Error(`${seen} of ${N} answered: ${e.message.slice(0, 80)}`); });
  assert.equal(count(resp, '{"status":"ok"}'), N);
  // Still open and usable.
  sock.write(one);
  await readUntil(sock, (b) => b.includes('HTTP/1.1 200'));
  sock.destroy();
});

// One raw request on a fresh socket; resolves with everything the gateway
// sent until it closed the connection (or the predicate matched).
async function rawExchange(text, pred = null, timeoutMs = 5000) {
  const sock = rawRequest(gw.port, text);
  sock.on('error', () => {});
  try {
    return await readUntil(sock, pred ?? (() => false), timeoutMs).catch((e) => {
      if (pred === null && e.message.startsWith('closed; got: ')) return e.fullText;
      throw e;
    });
  } finally { sock.destroy(); }
}

// Reads a whole response (head + Content-Length body).
function responseComplete(b) {
  const i = b.indexOf('\r\n\r\n');
  if (i < 0) return false;
  const m = b.slice(0, i).match(/content-length: (\d+)/i);
  return m !== null && Buffer.byteLength(b.slice(i + 4)) >= Number(m[1]);
}

function parse(resp) {
  const i = resp.indexOf('\r\n\r\n');
  const head = resp.slice(0, i);
  return { status: Number(head.split(' ')[1]), head, body: resp.slice(i + 4) };
}

test('HTTP versions other than 1.0 and 1.1 get a 505', async () => {
  for (const v of ['HTTP/2.0', 'HTTP/1.2', 'HTTP/3.1']) {
    const r = parse(await rawExchange(`GET /health ${v}\r\nHost: x\r\n\r\n`, responseComplete));
    assert.equal(r.status, 505, v);
    assert.equal(JSON.parse(r.body).error.code, 'http_version_not_supported');
  }
  const ok = parse(await rawExchange('GET /health HTTP/1.0\r\n\r\n', responseComplete));
  assert.equal(ok.status, 200);
});

test('obsolete header line folding gets a 400', async () => {
  for (const fold of [' ', '\t']) {
    const r = parse(await rawExchange(`GET /health HTTP/1.1\r\nHost: x\r\nX-A: one\r\n${fold}two\r\n\r\n`, responseComplete));
    assert.equal(r.status, 400);
    assert.match(JSON.parse(r.body).error.message, /folding/);
  }
  // Split across writes, the fold is still seen.
  const sock = rawRequest(gw.port, 'GET /health HTTP/1.1\r\nX-A: one\r\n');
  await new Promise((res) => setImmediate(res));
  sock.write('\ttwo\r\n\r\n');
  const r = parse(await readUntil(sock, responseComplete));
  sock.destroy();
  assert.equal(r.status, 400);
});

// Sends raw bytes; resolves with the parsed response (Buffer body).
async function rawBytes(buf) {
  const sock = net.connect(gw.port, '127.0.0.1');
  sock.write(buf);
  const chunks = [];
  sock.on('data', (d) => chunks.push(d));
  await once(sock, 'end');
  sock.destroy();
  const all = Buffer.concat(chunks);
  const i = all.indexOf('\r\n\r\n');
  return { status: Number(all.subarray(0, 12).toString().split(' ')[1]), body: all.subarray(i + 4) };
}

test('a 404 for a long non-ASCII path is valid UTF-8 JSON, cut between characters', async () => {
  for (const pad of ['', 'a', 'aa']) {
    const path = '/' + pad + '\u20ac'.repeat(100); // 3 bytes each: a cut at 128 bytes can land inside one
    const r = await rawBytes(Buffer.from(`GET ${path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`));
    assert.equal(r.status, 404);
    const text = new TextDecoder('utf-8', { fatal: true }).decode(r.body); // throws on invalid UTF-8
    assert.match(JSON.parse(text).error.message, new RegExp(`^no route for GET /${pad}\u20ac+\\.\\.\\. `));
  }
  // Bytes that are not UTF-8 at all show as '?'.
  const r = await rawBytes(Buffer.concat([Buffer.from('GET /x'), Buffer.from([0xff, 0xc3]),
    Buffer.from(' HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')]));
  assert.match(JSON.parse(r.body.toString()).error.message, /no route for GET \/x\?\? /);
});

test('an over-long bearer key is named as too long', async () => {
  const r = await fetch(`${gw.url}/models`, { headers: { authorization: `Bearer sk-${'x'.repeat(600)}` } });
  assert.equal(r.status, 401);
  const j = await r.json();
  assert.match(j.error.message, /too long/);
  assert.doesNotMatch(j.error.message, /must be 'Bearer/);
  const basic = await (await fetch(`${gw.url}/models`, { headers: { authorization: `Basic ${'x'.repeat(600)}` } })).json();
  assert.match(basic.error.message, /must be 'Bearer <key>'/);
});

test('413 for an over-size upload is read by fetch and the openai SDK, not reset', async () => {
  const big = 'x'.repeat(8 << 20); // far past max_body_bytes (64 KiB) and the socket buffers
  const body = JSON.stringify({ model: 'gpt-4o', messages: [{ role: 'user', content: big }] });
  const before = (await sim.requests()).length;
  const r = await fetch(`${gw.url}/chat/completions`, {
    method: 'POST', body,
    headers: { authorization: `Bearer ${MASTER_KEY}`, 'content-type': 'application/json' },
  });
  assert.equal(r.status, 413);
  assert.equal(r.headers.get('connection'), 'close');
  assert.equal((await r.json()).error.code, 'request_too_large');

  let attempts = 0;
  const client = new OpenAI({
    apiKey: MASTER_KEY, baseURL: gw.url, maxRetries: 2,
    fetch: (url, init) => { attempts++; return fetch(url, init); },
  });
  const err = await client.chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content: big }] })
    .then(() => null, (e) => e);
  assert.ok(err instanceof OpenAI.APIError, String(err));
  assert.equal(err.status, 413, `${err.constructor.name}: ${err.message}`);
  assert.equal(attempts, 1, 'a 413 is not retried');
  assert.equal((await sim.requests()).length, before, 'nothing went upstream');
});
