// Image URLs for a provider that takes images inline only: fetched by the
// gateway behind the SSRF guard (SPEC §6), and every bypass form refused.
import { test, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { once } from 'node:events';
import { startSim, startGateway, chat } from './lib.mjs';

const PNG = Buffer.from('iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==', 'base64');

// A tiny image server on loopback that counts what it receives.
async function imageServer() {
  const srv = { hits: 0, port: 0, redirectTo: null };
  srv.server = http.createServer((req, res) => {
    srv.hits++;
    if (req.url === '/redirect') { res.writeHead(302, { location: srv.redirectTo }); res.end(); return; }
    if (req.url === '/big.png') {
      res.writeHead(200, { 'content-type': 'image/png' });
      res.write(PNG);
      res.end(Buffer.alloc(2 * 1024 * 1024));
      return;
    }
    if (req.url === '/mid.png') { // 600 KB, no Content-Length (chunked)
      res.writeHead(200, { 'content-type': 'image/png' });
      res.write(PNG);
      res.end(Buffer.alloc(600 * 1024));
      return;
    }
    if (req.url === '/mid-len.png') { // 600 KB with its Content-Length
      const body = Buffer.concat([PNG, Buffer.alloc(600 * 1024)]);
      res.writeHead(200, { 'content-type': 'image/png', 'content-length': body.length });
      res.end(body);
      return;
    }
    if (req.url === '/slow.png') { setTimeout(() => { res.writeHead(200, { 'content-type': 'image/png' }); res.end(PNG); }, 3000).unref(); return; }
    if (req.url === '/page.html') { res.writeHead(200, { 'content-type': 'text/html' }); res.end('<html></html>'); return; }
    res.writeHead(200, { 'content-type': 'application/octet-stream' }); // sniffed, not trusted
    res.end(PNG);
  });
  srv.server.listen(0, '127.0.0.1');
  await once(srv.server, 'listening');
  srv.port = srv.server.address().port;
  return srv;
}

let sim, gw, allowed, other;
const KEY = 'sk-ant-img-' + 'c'.repeat(20);

before(async () => {
  sim = await startSim(['--require-key', KEY]);
  allowed = await imageServer();
  other = await imageServer();
  allowed.redirectTo = `http://127.0.0.1:${other.port}/cat.png`;
  const yaml = `server:
  listen: 127.0.0.1:0
  master_key: \${YOUROUTER_MASTER_KEY}
  workers: 1
storage:
  url: sqlite://yourouter.db
images:
  allow_http: true
  timeout_ms: 500
  max_bytes: 1MiB
  max_request_bytes: 1MiB
  allow:
    - 127.0.0.1/32:${allowed.port}
providers:
  anthropic:
    kind: anthropic
    base_url: ${sim.base}
    api_key: ${KEY}
    inline_images: true
models:
  - id: claude
    routes:
      - provider: anthropic
`;
  gw = await startGateway(yaml);
});
after(async () => { await gw.stop(); await sim.stop(); allowed.server.close(); other.server.close(); gw.cleanup(); });
beforeEach(async () => { await sim.reset(); allowed.hits = 0; other.hits = 0; });

const ask = (url) => chat(gw, { model: 'claude', messages: [{ role: 'user', content: [{ type: 'text', text: 'What is this?' }, { type: 'image_url', image_url: { url } }] }] });

test('an allowed image URL is fetched and sent inline as base64', async () => {
  const r = await ask(`http://127.0.0.1:${allowed.port}/cat.png`);
  assert.equal(r.status, 200, r.text);
  assert.equal(allowed.hits, 1);
  const [req] = await sim.requests();
  const img = req.body.messages[0].content.find((b) => b.type === 'image');
  assert.deepEqual(img.source, { type: 'base64', media_type: 'image/png', data: PNG.toString('base64') });
});

for (const [name, url] of [
  ['loopback', (p) => `http://127.0.0.1:${p}/x.png`],
  ['decimal IPv4', (p) => `http://2130706433:${p}/x.png`],
  ['octal IPv4', (p) => `http://0177.0.0.1:${p}/x.png`],
  ['hex IPv4', (p) => `http://0x7f000001:${p}/x.png`],
  ['short IPv4', (p) => `http://127.1:${p}/x.png`],
  ['IPv4-mapped IPv6', (p) => `http://[::ffff:127.0.0.1]:${p}/x.png`],
  ['0.0.0.0', (p) => `http://0.0.0.0:${p}/x.png`],
  ['a DNS name resolving to loopback', (p) => `http://localhost:${p}/x.png`],
]) {
  test(`refused: ${name}`, async () => {
    const r = await ask(url(other.port));
    assert.equal(r.status, 400, r.text);
    assert.equal(r.json.error.code, 'image_fetch_failed');
    assert.equal(r.json.error.param, 'messages[0].content[1].image_url.url');
    assert.equal(other.hits, 0, 'the internal server never saw a request');
    assert.equal((await sim.requests()).length, 0, 'nothing went upstream');
  });
}

test('refused: a redirect from an allowed host to an internal one', async () => {
  const r = await ask(`http://127.0.0.1:${allowed.port}/redirect`);
  assert.equal(r.status, 400, r.text);
  assert.equal(allowed.hits, 1);
  assert.equal(other.hits, 0);
});

test('refused: the cloud metadata address and non-http schemes', async () => {
  const meta = await ask('http://169.254.169.254/latest/meta-data/');
  assert.equal(meta.status, 400, meta.text);
  assert.equal(meta.json.error.code, 'image_fetch_failed');
  // Other schemes are never fetched: the provider translation refuses them.
  for (const url of ['file:///etc/passwd', 'ftp://127.0.0.1/x.png', 'gopher://127.0.0.1/']) {
    const r = await ask(url);
    assert.equal(r.status, 400, `${url}: ${r.text}`);
    assert.match(r.json.error.message, /image/i);
  }
  assert.equal((await sim.requests()).length, 0);
});

test('caps: size, time and content type', async () => {
  let r = await ask(`http://127.0.0.1:${allowed.port}/big.png`);
  assert.equal(r.status, 413);
  assert.equal(r.json.error.code, 'image_too_large');
  assert.match(r.json.error.message, /larger than/);
  r = await ask(`http://127.0.0.1:${allowed.port}/slow.png`);
  assert.equal(r.status, 400);
  assert.match(r.json.error.message, /500 ms/);
  r = await ask(`http://127.0.0.1:${allowed.port}/page.html`);
  assert.equal(r.status, 400);
});

test('credentials in an image URL are refused and never echoed', async () => {
  const r = await ask(`http://user:hunter2@127.0.0.1:${allowed.port}/cat.png`);
  assert.equal(r.status, 400);
  assert.ok(!r.text.includes('hunter2'));
  assert.ok(!gw.stderr().includes('hunter2'));
});

test('data: URLs are not fetched and pass as they are', async () => {
  const r = await ask(`data:image/png;base64,${PNG.toString('base64')}`);
  assert.equal(r.status, 200, r.text);
  assert.equal(allowed.hits + other.hits, 0);
});

// Issue 8 #5: image inlining amplifies a small request into a large upstream
// body; the bytes of all images of one request are capped, checked before
// more are kept, and the answer is a 413 that says which limit.
test('the images of one request are capped in total (images.max_request_bytes)', async () => {
  const img = (path) => ({ type: 'image_url', image_url: { url: `http://127.0.0.1:${allowed.port}${path}` } });
  const many = (paths) => chat(gw, { model: 'claude', messages: [{ role: 'user', content: [{ type: 'text', text: 'What are these?' }, ...paths.map(img)] }] });
  let r = await many(['/mid.png']);
  assert.equal(r.status, 200, r.text);
  for (const paths of [['/mid.png', '/mid.png'], ['/mid-len.png', '/mid-len.png', '/mid-len.png']]) {
    r = await many(paths);
    assert.equal(r.status, 413, r.text);
    assert.equal(r.json.error.code, 'image_too_large');
    assert.match(r.json.error.message, /the images of this request past 1048576 bytes \(images\.max_request_bytes\)/);
  }
  assert.equal((await sim.requests()).length, 1, 'only the request within the cap went upstream');
});
