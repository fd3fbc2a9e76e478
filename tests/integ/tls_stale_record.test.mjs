// A TLS record that arrives with the end of a response (a stray second
// answer from a broken proxy or server) is read ahead into OpenSSL together
// with the response, where the socket poll cannot see it. The connection
// must not go back to the pool with it: the next request on that connection
// would read the stray bytes as its own answer -- another client's answer,
// on a shared gateway. Here every first answer on a connection is followed
// by such a record, written in the same TCP segment; each next request must
// get its own answer.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import tls from 'node:tls';
import { Duplex } from 'node:stream';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { startGateway, chat, tmpDir, makeTestPki } from './lib.mjs';

const dir = tmpDir();
let pki;

const answer = (text) => {
  const body = JSON.stringify({
    id: 'chatcmpl-stale', object: 'chat.completion', created: 1, model: 'gpt-4o',
    choices: [{ index: 0, message: { role: 'assistant', content: text }, finish_reason: 'stop' }],
    usage: { prompt_tokens: 3, completion_tokens: 2, total_tokens: 5 },
  });
  return `HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\n` +
    `connection: keep-alive\r\n\r\n${body}`;
};

let server, port, gw, conns = 0;
before(async () => {
  pki = makeTestPki(dir);
  const key = readFileSync(pki.key), cert = readFileSync(pki.cert);
  server = net.createServer((sock) => {
    conns++;
    // TLS over a JS stream, so that the encrypted records can be held and
    // sent in one TCP write: the first answer's record and the stray one
    let held = null;
    const out = [];
    const dup = new Duplex({
      read() {},
      write(chunk, _enc, cb) {
        if (held) held.push(chunk); else out.push(chunk), setImmediate(flush);
        cb();
      },
    });
    const flush = () => { if (out.length) sock.write(Buffer.concat(out.splice(0))); };
    sock.on('data', (d) => dup.push(d));
    sock.on('end', () => dup.push(null));
    sock.on('error', () => {});
    const t = new tls.TLSSocket(dup, { isServer: true, key, cert });
    t.on('error', () => {});
    let buf = '', n = 0;
    t.on('data', (d) => {
      buf += d;
      for (;;) {
        const end = buf.indexOf('\r\n\r\n');
        if (end < 0) return;
        const len = Number(/content-length: *(\d+)/i.exec(buf.slice(0, end))?.[1] ?? 0);
        if (buf.length < end + 4 + len) return;
        const req = JSON.parse(buf.slice(end + 4, end + 4 + len));
        buf = buf.slice(end + 4 + len);
        const mine = req.messages[0].content;
        if (n++ === 0) {
          held = [];
          t.write(answer(mine));
          // a separate record, produced after the first one was sealed
          setTimeout(() => {
            t.write(answer('STRAY: not an answer to any request'));
            setTimeout(() => { const h = held; held = null; sock.write(Buffer.concat(h)); }, 5);
          }, 5);
        } else {
          t.write(answer(mine));
        }
      }
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  port = server.address().port;
  const yaml = 'server:\n  listen: 127.0.0.1:0\n  master_key: ${YOUROUTER_MASTER_KEY}\n  workers: 1\n' +
    'storage:\n  url: sqlite://yourouter.db\nproviders:\n' +
    `  p:\n    kind: openai\n    base_url: https://127.0.0.1:${port}/v1\n    api_key: sk-test\n` +
    `    tls:\n      ca_file: ${pki.ca}\n` +
    'models:\n  - id: m\n    routes:\n      - provider: p\n        model: gpt-4o\n';
  gw = await startGateway(yaml);
});
after(async () => {
  await gw?.stop();
  gw?.cleanup();
  server?.close();
});

test('a stray TLS record after an answer never becomes the next request\'s answer', async () => {
  for (let i = 0; i < 8; i++) {
    const text = `question ${i}`;
    const r = await chat(gw, { model: 'm', messages: [{ role: 'user', content: text }] });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.choices[0].message.content, text, `request ${i} got another answer`);
  }
  // every connection that carried a stray record was dropped, not reused
  assert.ok(conns >= 2, `connections: ${conns}`);
});
