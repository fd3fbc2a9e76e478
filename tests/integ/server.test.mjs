// The HTTP server under abusive clients (issue 8): pipelining floods,
// over-size and unauthenticated uploads, slow heads and bodies, too many
// connections, malformed HTTP. Everything is asserted as the client sees it.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import http from 'node:http';
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
// With pred null: until the gateway closed the connection.
async function rawExchange(text, pred = null, port = gw.port) {
  const sock = rawRequest(port, text);
  sock.on('error', () => {});
  try {
    if (pred !== null) return await readUntil(sock, pred);
    let got = '';
    sock.on('data', (d) => { got += d; });
    await once(sock, 'close');
    return got;
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

// Sends text one byte every `everyMs` until the server closes the socket
// (or maxMs passed). Resolves with what the server sent and when it closed.
function dribble(port, text, { everyMs = 20, maxMs = 4000, prefix = '' } = {}) {
  return new Promise((resolve) => {
    const sock = net.connect(port, '127.0.0.1');
    const t0 = Date.now();
    let got = '', i = 0, closed = false;
    sock.on('error', () => {});
    sock.on('data', (d) => { got += d; });
    const timer = setInterval(() => {
      if (closed) return;
      if (Date.now() - t0 > maxMs || i >= text.length) { clearInterval(timer); return; }
      sock.write(text[i++]);
    }, everyMs);
    sock.on('connect', () => { if (prefix) sock.write(prefix); });
    sock.on('close', () => { closed = true; clearInterval(timer); resolve({ got, ms: Date.now() - t0, sent: i }); });
    setTimeout(() => { if (!closed) { clearInterval(timer); sock.destroy(); resolve({ got, ms: Infinity, sent: i }); } }, maxMs + 1000);
  });
}

test('slowloris: a head or body sent a byte at a time is cut at its deadline', async (t) => {
  const g = await startGateway(config({
    providers: { openai: { base_url: sim.url } },
    models: [{ id: 'gpt-4o', routes: [{ provider: 'openai' }] }],
    server: { workers: 1, header_timeout_ms: 300, body_timeout_ms: 300, body_min_rate: 100 },
  }));
  t.after(async () => { await g.stop(); g.cleanup(); });
  const head = `POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${MASTER_KEY}\r\n` +
    'Content-Type: application/json\r\nContent-Length: 4000\r\n\r\n';

  // Every byte used to re-arm the idle timer (60 s): the head never ended.
  const h = await dribble(g.port, head);
  assert.ok(h.ms < 2000, `closed after ${h.ms} ms`);
  assert.ok(h.sent < head.length, 'cut before the head was complete');
  assert.equal(h.got, '', 'a slow head is closed without a response');

  // The head at once, then a body at 50 B/s: below body_min_rate (100 B/s).
  const b = await dribble(g.port, '{'.repeat(4000), { prefix: head });
  assert.ok(b.ms < 2500, `closed after ${b.ms} ms`);
  assert.match(b.got, /^HTTP\/1\.1 408 /);
  assert.equal(JSON.parse(parse(b.got).body).error.code, 'request_timeout');

  // A body that keeps the rate is fine, however long it takes overall.
  const body = JSON.stringify({ model: 'gpt-4o', messages: [{ role: 'user', content: 'x'.repeat(200) }] });
  const okHead = head.replace('Content-Length: 4000', `Content-Length: ${body.length}`);
  const sock = rawRequest(g.port, okHead);
  for (let i = 0; i < body.length; i += 25) {
    sock.write(body.slice(i, i + 25));
    await new Promise((res) => setTimeout(res, 40)); // ~600 B/s for ~0.5 s: past the 300 ms grace, 6x the rate
  }
  const ok = parse(await readUntil(sock, responseComplete));
  sock.destroy();
  assert.equal(ok.status, 200, ok.body);

  assert.match(g.stderr(), /request head was not complete within server\.header_timeout_ms/);
  assert.match(g.stderr(), /request body that arrived too slowly/);
});

test('max_connections: idle and slow connections make room; busy ones get a clear 503', async (t) => {
  const g = await startGateway(config({
    providers: { openai: { base_url: sim.url } },
    models: [{ id: 'gpt-4o', routes: [{ provider: 'openai' }] }],
    server: { workers: 1, max_connections: 4 },
  }));
  const busy = [];
  // The busy ones first, or the drain waits for their bodies.
  t.after(async () => { for (const s of busy) s.destroy(); await g.stop(); g.cleanup(); });
  const open = (text) => { const s = rawRequest(g.port, text); s.on('error', () => {}); return s; };
  const closedBy = (s) => new Promise((res) => s.on('close', res));

  // Four slow heads fill the worker: /health still gets through, each time
  // by closing the connection that waited longest.
  // Each answers one request first (so it surely was accepted), then
  // starts a head it never finishes.
  const slow = [];
  for (let i = 0; i < 4; i++) slow.push(open('GET /health HTTP/1.1\r\nHost: x\r\n\r\nGET /health HTTP/1.1\r\nHo'));
  await Promise.all(slow.map((s) => readUntil(s, responseComplete)));
  const evicted = Promise.race(slow.map(closedBy));
  assert.equal((await fetch(`${g.base}/health`)).status, 200);
  await evicted;

  // Four bodies in progress are busy: a fifth connection is refused clearly.
  for (const s of slow) s.destroy();
  // The 100 Continue says the gateway is reading each one's body.
  for (let i = 0; i < 4; i++) {
    busy.push(open(`POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${MASTER_KEY}\r\nContent-Length: 100\r\nExpect: 100-continue\r\n\r\n`));
  }
  await Promise.all(busy.map((s) => readUntil(s, (b) => b.includes('100 Continue'))));
  const refused = parse(await rawExchange('GET /health HTTP/1.1\r\nHost: x\r\n\r\n', null, g.port));
  assert.equal(refused.status, 503);
  assert.match(refused.head, /retry-after: 1/i);
  assert.equal(JSON.parse(refused.body).error.code, 'too_many_connections');
  assert.match(g.stderr(), /refused a connection with 503: server\.max_connections/);
  for (const s of busy) s.destroy();
});

test('unauthenticated uploads: 401 on the head, no 100 Continue, no body buffered', async (t) => {
  const g = await startGateway(config({
    providers: { openai: { base_url: sim.url } },
    models: [{ id: 'gpt-4o', routes: [{ provider: 'openai' }] }],
    server: { workers: 1 }, // max_body_bytes: the default 32 MiB
  }));
  t.after(async () => { await g.stop(); g.cleanup(); });
  const head = (auth, extra = '') => `POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n${auth}` +
    `Content-Type: application/json\r\nContent-Length: ${32 << 20}\r\n${extra}\r\n`;

  // Expect: 100-continue without a key: the final 401 comes instead of 100.
  let r = await rawExchange(head('', 'Expect: 100-continue\r\n'), null, g.port);
  assert.match(r, /^HTTP\/1\.1 401 /);
  assert.doesNotMatch(r, /100 Continue/);
  assert.match(r, /connection: close/i);
  // With a valid key the 100 comes (and the body would be read).
  const ok = rawRequest(g.port, head(`Authorization: Bearer ${MASTER_KEY}\r\n`, 'Expect: 100-continue\r\n'));
  assert.match(await readUntil(ok, (b) => b.includes('\r\n\r\n')), /^HTTP\/1\.1 100 Continue\r\n\r\n$/);
  ok.destroy();
  // Anthropic clients get theirs in Anthropic's shape; every body endpoint
  // answers on the head.
  r = parse(await rawExchange(head('').replace('/v1/chat/completions', '/v1/messages'), null, g.port));
  assert.equal(r.status, 401);
  assert.equal(JSON.parse(r.body).type, 'error');
  for (const path of ['/v1/responses', '/v1/messages/count_tokens', '/v1beta/models/gpt-4o:generateContent']) {
    r = await rawExchange(head('', 'Expect: 100-continue\r\n').replace('/v1/chat/completions', path), null, g.port);
    assert.match(r, /^HTTP\/1\.1 401 /, path);
  }

  // 40 clients each announcing 32 MiB without a key and sending 4 MiB of it
  // at once: each gets its 401 while still uploading (the body used to be
  // buffered first), and the gateway's memory does not grow with them.
  const rss0 = g.rssKiB();
  const chunk = Buffer.alloc(4 << 20, 0x61);
  const answers = await Promise.all(Array.from({ length: 40 }, () => new Promise((resolve, reject) => {
    const s = net.connect(g.port, '127.0.0.1');
    let got = '';
    s.on('error', () => {});
    s.on('data', (d) => {
      got += d;
      if (responseComplete(got)) { s.destroy(); resolve(parse(got)); }
    });
    s.on('close', () => reject(new Error(`closed before a response: ${got.slice(0, 200)}`)));
    s.write(head('Authorization: Bearer yr-wrong\r\n'));
    s.write(chunk);
  })));
  for (const a of answers) {
    assert.equal(a.status, 401);
    assert.equal(JSON.parse(a.body).error.code, 'invalid_api_key');
  }
  const grown = g.rssKiB() - rss0;
  assert.ok(grown < 32 * 1024, `RSS grew by ${grown} KiB for 40 unauthenticated uploads`);
});

test('max_body_memory: bodies past the worker cap get 503 with Retry-After, then room comes back', async (t) => {
  const g = await startGateway(config({
    providers: { openai: { base_url: sim.url } },
    models: [{ id: 'gpt-4o', routes: [{ provider: 'openai' }] }],
    server: { workers: 1, max_body_bytes: '512k', max_body_memory: '1m' },
  }));
  t.after(async () => { await g.stop(); g.cleanup(); });
  const head = `POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${MASTER_KEY}\r\n` +
    `Content-Type: application/json\r\nContent-Length: ${400 << 10}\r\nExpect: 100-continue\r\n\r\n`;
  const a = rawRequest(g.port, head);
  const b = rawRequest(g.port, head);
  // Each 100 Continue comes once its body's 400 KiB are reserved.
  await Promise.all([a, b].map((s) => readUntil(s, (x) => x.includes('100 Continue'))));
  const c = parse(await rawExchange(head, null, g.port));
  assert.equal(c.status, 503);
  assert.match(c.head, /retry-after: 1/i);
  assert.equal(JSON.parse(c.body).error.code, 'server_overloaded');
  assert.match(g.stderr(), /server\.max_body_memory/);
  const closed = Promise.all([once(a, 'close'), once(b, 'close')]);
  a.destroy(); b.destroy();
  await closed;
  const body = JSON.stringify({ model: 'gpt-4o', messages: [{ role: 'user', content: 'x'.repeat(300 << 10) }] });
  const r = await fetch(`${g.url}/chat/completions`, {
    method: 'POST', body, headers: { authorization: `Bearer ${MASTER_KEY}`, 'content-type': 'application/json' },
  });
  assert.equal(r.status, 200, await r.text());
});

test('after an interrupted stream the connection ends without failing a request already queued on it', async (t) => {
  const g = await startGateway(config({
    providers: { openai: { base_url: sim.url } },
    models: [{ id: 'gpt-4o', routes: [{ provider: 'openai' }] }],
    server: { workers: 1, linger_ms: 200 },
  }));
  t.after(async () => { await g.stop(); g.cleanup(); });
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  t.after(() => agent.destroy());
  const post = (body) => new Promise((resolve) => {
    const r = http.request({
      host: '127.0.0.1', port: g.port, path: '/v1/chat/completions', method: 'POST', agent,
      headers: { authorization: `Bearer ${MASTER_KEY}`, 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
    }, (res) => {
      let text = '';
      res.on('data', (d) => { text += d; });
      res.on('end', () => resolve({ status: res.statusCode, connection: res.headers.connection, text }));
    });
    r.on('error', (e) => resolve({ error: e.code ?? e.message }));
    r.end(body);
  });
  const streamed = JSON.stringify({ model: 'gpt-4o', stream: true, messages: [{ role: 'user', content: 'hi' }] });
  const plain = JSON.stringify({ model: 'gpt-4o', messages: [{ role: 'user', content: 'hi' }] });

  // The second request waits for the one socket and is written the moment
  // the first response ends: the gateway used to have closed it by then.
  await sim.script([{ malformed: true, chunks: 6 }]);
  const [a, b] = await Promise.all([post(streamed), post(plain)]);
  assert.equal(a.status, 200);
  assert.match(a.text, /stream_interrupted/);
  assert.deepEqual({ status: b.status, connection: b.connection }, { status: 200, connection: 'close' }, JSON.stringify(b));

  // A client that sends nothing more is closed after linger_ms.
  await sim.script([{ malformed: true, chunks: 6 }]);
  const sock = rawRequest(g.port, `POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${MASTER_KEY}\r\n` +
    `Content-Type: application/json\r\nContent-Length: ${streamed.length}\r\n\r\n${streamed}`);
  let got = '';
  sock.on('data', (d) => { got += d; });
  await once(sock, 'end');
  sock.destroy();
  assert.match(got, /stream_interrupted/);
  assert.ok(got.endsWith('0\r\n\r\n'), 'the stream still ends cleanly');
});
