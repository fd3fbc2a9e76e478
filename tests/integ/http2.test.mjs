// HTTP/2 to providers (issue 15): an HTTPS provider that picks h2 in ALPN
// carries the gateway's calls as streams of one connection; the answers,
// streamed or not, are the same as over HTTP/1.1. What a user relies on:
// concurrent calls share a connection (also when they arrive together,
// before any connection exists), a client that goes away resets its stream,
// a stream the server refuses is sent again, a stream reset mid-answer ends
// the client's stream with an error, a GOAWAY moves the next call to a new
// connection, a client that stops reading holds the stream by its window
// and gets every byte after, and `tls.http2: false` keeps HTTP/1.1.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http2 from 'node:http2';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { startGateway, chat, tmpDir, makeTestPki, sseData, rawStream, MASTER_KEY } from './lib.mjs';

const dir = tmpDir();
const { NGHTTP2_REFUSED_STREAM, NGHTTP2_INTERNAL_ERROR, NGHTTP2_CANCEL } = http2.constants;

// One h2 server (HTTP/1.1 allowed, so tls.http2: false can be seen).
function h2server(pki) {
  const s = {
    sessions: 0, seen: [], closes: [], refused: 0, server: null, port: 0,
    waitClose: null, goaway: null,
  };
  s.server = http2.createSecureServer({ key: readFileSync(pki.key), cert: readFileSync(pki.cert), allowHTTP1: true });
  s.server.on('session', () => { s.sessions++; });
  s.server.on('request', (req, res) => {
    let body = '';
    req.on('data', (d) => { body += d; });
    req.on('end', async () => {
      const j = JSON.parse(body);
      s.seen.push({ version: req.httpVersion, method: req.method, path: req.url, authority: req.headers[':authority'] ?? req.headers.host,
        auth: req.headers.authorization, connection: req.headers.connection, model: j.model });
      const mode = j.model;
      if (mode === 'refuse-once' && s.refused++ === 0) {
        req.stream.close(NGHTTP2_REFUSED_STREAM);
        return;
      }
      const chunk = (delta, fin) => `data: ${JSON.stringify({ id: 'chatcmpl-h2', object: 'chat.completion.chunk', created: 1, model: 'gpt-4o',
        choices: [{ index: 0, delta, finish_reason: fin }] })}\n\n`;
      if (mode === 'hang' || mode === 'rst-mid') {
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        res.write(chunk({ role: 'assistant', content: 'first' }, null));
        if (mode === 'rst-mid') {
          setTimeout(() => req.stream.close(NGHTTP2_INTERNAL_ERROR), 50);
        } else {
          req.stream.on('close', () => { s.closes.push(req.stream.rstCode); s.waitClose?.(); });
        }
        return;
      }
      if (mode === 'big') { // 2,000 events of 8 KB, as fast as the stream's window lets them go
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        const piece = chunk({ content: 'x'.repeat(8192) }, null);
        for (let i = 0; i < 2000; i++) {
          if (!res.write(piece)) await once(res, 'drain');
        }
        res.end(chunk({}, 'stop') + 'data: [DONE]\n\n');
        return;
      }
      if (j.stream) {
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        res.end(chunk({ role: 'assistant', content: '' }, null) + chunk({ content: `streamed over ${req.httpVersion}` }, null) +
          chunk({}, 'stop') + 'data: [DONE]\n\n');
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json', 'x-ratelimit-remaining-requests': '99' });
      res.end(JSON.stringify({
        id: 'chatcmpl-h2', object: 'chat.completion', created: 1, model: 'gpt-4o',
        choices: [{ index: 0, message: { role: 'assistant', content: `over ${req.httpVersion}` }, finish_reason: 'stop' }],
        usage: { prompt_tokens: 3, completion_tokens: 2, total_tokens: 5 },
      }));
      if (mode === 'goaway') {
        const session = req.stream.session;
        res.on('finish', () => { session.goaway(); s.goaway?.(); });
      }
    });
  });
  return s;
}

let pki, a, b, gw;
before(async () => {
  pki = makeTestPki(dir);
  a = h2server(pki);
  b = h2server(pki);
  for (const s of [a, b]) {
    s.server.listen(0, '127.0.0.1');
    await once(s.server, 'listening');
    s.port = s.server.address().port;
  }
  const prov = (name, port, extra = '') =>
    `  ${name}:\n    kind: openai\n    base_url: https://127.0.0.1:${port}/v1\n    api_key: sk-test\n` +
    `    tls:\n      ca_file: ${pki.ca}\n${extra}`;
  const models = { 'm-a': 'a', 'm-burst': 'burst', 'm-h1': 'h1' };
  const yaml = 'server:\n  listen: 127.0.0.1:0\n  master_key: ${YOUROUTER_MASTER_KEY}\n  workers: 1\n' +
    'storage:\n  url: sqlite://yourouter.db\nproviders:\n' +
    prov('a', a.port) +
    // the same server under another port: a host no connection exists to yet
    prov('burst', b.port) +
    prov('h1', a.port, '      http2: false\n') +
    'models:\n' +
    Object.entries(models).map(([id, p]) => `  - id: ${id}\n    routes:\n      - provider: ${p}\n`).join('') +
    ['refuse-once', 'hang', 'rst-mid', 'big', 'goaway'].map((m) =>
      `  - id: ${m}\n    routes:\n      - provider: a\n        model: ${m}\n`).join('');
  // ASan keeps freed memory in quarantine: keep it small so RSS shows what
  // the gateway holds (the paused-stream test)
  const asan = `${process.env.ASAN_OPTIONS ? process.env.ASAN_OPTIONS + ':' : ''}quarantine_size_mb=1`;
  gw = await startGateway(yaml, { env: { ASAN_OPTIONS: asan } });
});
after(async () => {
  await gw?.stop();
  gw?.cleanup();
  a?.server.close();
  b?.server.close();
});

const msgs = [{ role: 'user', content: 'hi' }];

test('an h2 provider answers over HTTP/2, streamed and not, on one connection', async () => {
  const r = await chat(gw, { model: 'm-a', messages: msgs });
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.choices[0].message.content, 'over 2.0');
  const r2 = await chat(gw, { model: 'm-a', messages: msgs, stream: true });
  assert.equal(r2.status, 200, r2.text);
  assert.match(r2.text, /streamed over 2\.0/);
  assert.equal(sseData(r2.text).at(-1), '[DONE]');
  const last = a.seen.at(-1);
  assert.deepEqual({ ...last, model: undefined }, {
    version: '2.0', method: 'POST', path: '/v1/chat/completions', authority: `127.0.0.1:${a.port}`,
    auth: 'Bearer sk-test', connection: undefined, model: undefined,
  });
  assert.equal(a.sessions, 1, 'both calls went on one connection');
});

test('calls that arrive together share one new connection instead of opening one each', async () => {
  const n = 20;
  const rs = await Promise.all(Array.from({ length: n }, (_, i) =>
    chat(gw, { model: 'm-burst', messages: msgs, stream: i % 2 === 0 })));
  for (const r of rs) assert.equal(r.status, 200, r.text);
  assert.equal(b.seen.length, n);
  assert.equal(b.sessions, 1, `${b.sessions} connections for ${n} calls`);
});

test('tls.http2: false keeps HTTP/1.1', async () => {
  const r = await chat(gw, { model: 'm-h1', messages: msgs });
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.choices[0].message.content, 'over 1.1');
  assert.equal(a.seen.at(-1).version, '1.1');
});

test('a stream the server refuses is sent again and answered', async () => {
  const before = a.seen.length;
  const r = await chat(gw, { model: 'refuse-once', messages: msgs });
  assert.equal(r.status, 200, r.text);
  assert.equal(a.seen.length - before, 2, 'refused once, then answered');
});

test('a client that goes away resets its upstream stream', async () => {
  const closed = new Promise((resolve) => { a.waitClose = resolve; });
  const ac = new AbortController();
  const res = await fetch(`${gw.url}/chat/completions`, {
    method: 'POST', signal: ac.signal,
    headers: { authorization: `Bearer ${MASTER_KEY}`, 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'hang', messages: msgs, stream: true }),
  });
  assert.equal(res.status, 200);
  const reader = res.body.getReader();
  const { value } = await reader.read();
  assert.match(Buffer.from(value).toString(), /first/);
  ac.abort();
  await closed;
  assert.equal(a.closes.at(-1), NGHTTP2_CANCEL);
  // the connection is still good for the next call
  const r = await chat(gw, { model: 'm-a', messages: msgs });
  assert.equal(r.status, 200, r.text);
});

test('a stream reset mid-answer ends the client stream with an error, not [DONE]', async () => {
  const r = await chat(gw, { model: 'rst-mid', messages: msgs, stream: true });
  assert.equal(r.status, 200);
  const data = sseData(r.text);
  assert.match(data[0], /first/);
  assert.ok(!r.text.includes('[DONE]'), r.text);
  const last = JSON.parse(data.at(-1));
  assert.ok(last.error, r.text);
});

test('after a GOAWAY the next call goes on a new connection', async () => {
  const s0 = a.sessions;
  const sent = new Promise((resolve) => { a.goaway = resolve; });
  const r = await chat(gw, { model: 'goaway', messages: msgs });
  assert.equal(r.status, 200, r.text);
  // the GOAWAY follows the answer: should the next call still go out on the
  // old connection, the server leaves it unprocessed and it is sent again
  await sent;
  const r2 = await chat(gw, { model: 'm-a', messages: msgs });
  assert.equal(r2.status, 200, r2.text);
  assert.equal(a.sessions, s0 + 1);
});

test('a client that stops reading holds its h2 stream by the window and then gets every byte', { timeout: 30000 }, async () => {
  const body = JSON.stringify({ model: 'big', messages: msgs, stream: true });
  const { sock, done, text: received } = await rawStream(gw, body);
  await once(sock, 'data');
  sock.pause();
  const rss0 = gw.rssKiB();
  await new Promise((r) => setTimeout(r, 500)); // the stall is the scenario
  const grown = gw.rssKiB() - rss0;
  sock.resume();
  await done;
  sock.destroy();
  const text = received();
  const contents = text.split('"content":"xxxxxxxx').length - 1;
  assert.equal(contents, 2000, `content events received: ${contents} of 2000`);
  // 16 MB of events wait upstream: what the gateway holds is a window
  assert.ok(grown < 8 * 1024, `RSS grew by ${grown} KiB while the client was not reading`);
  // and the connection carries the next call
  const r = await chat(gw, { model: 'm-a', messages: msgs });
  assert.equal(r.status, 200, r.text);
});
