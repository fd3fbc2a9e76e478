// providers.NAME.tls.ca_file (issue 15): an HTTPS provider whose certificate
// comes from a private CA is reachable when that CA is configured, and is
// refused -- with curl's reason in the log -- when it is not, or when the
// certificate does not name the host. The CA and the server certificate are
// made for the run with the openssl CLI.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import https from 'node:https';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { startGateway, chat, tmpDir, makeTestPki } from './lib.mjs';

const dir = tmpDir();
let pki;

let server, port, gw;
const seen = [];
before(async () => {
  pki = makeTestPki(dir, { other: true });
  server = https.createServer({ key: readFileSync(pki.key), cert: readFileSync(pki.cert) }, (req, res) => {
    let body = '';
    req.on('data', (d) => { body += d; });
    req.on('end', () => {
      const j = JSON.parse(body);
      seen.push({ url: req.url, model: j.model });
      if (j.stream) {
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        const chunk = (delta, fin) => `data: ${JSON.stringify({ id: 'chatcmpl-tls', object: 'chat.completion.chunk', created: 1, model: 'gpt-4o',
          choices: [{ index: 0, delta, finish_reason: fin }] })}\n\n`;
        res.end(chunk({ role: 'assistant', content: '' }, null) + chunk({ content: 'streamed over TLS' }, null) +
          chunk({}, 'stop') + 'data: [DONE]\n\n');
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({
        id: 'chatcmpl-tls', object: 'chat.completion', created: 1, model: 'gpt-4o',
        choices: [{ index: 0, message: { role: 'assistant', content: 'over TLS' }, finish_reason: 'stop' }],
        usage: { prompt_tokens: 3, completion_tokens: 2, total_tokens: 5 },
      }));
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  port = server.address().port;
  const prov = (name, base, ca) =>
    `  ${name}:\n    kind: openai\n    base_url: ${base}\n    api_key: sk-test\n` +
    (ca ? `    tls:\n      ca_file: ${ca}\n` : '');
  const yaml = 'server:\n  listen: 127.0.0.1:0\n  master_key: ${YOUROUTER_MASTER_KEY}\n  workers: 1\n' +
    'storage:\n  url: sqlite://yourouter.db\nproviders:\n' +
    prov('private', `https://127.0.0.1:${port}/v1`, pki.ca) +
    prov('system', `https://127.0.0.1:${port}/v1`, null) +
    prov('wrongca', `https://127.0.0.1:${port}/v1`, pki.other) +
    prov('wronghost', `https://localhost:${port}/v1`, pki.ca) +
    'models:\n' +
    ['private', 'system', 'wrongca', 'wronghost'].map((p) =>
      `  - id: m-${p}\n    routes:\n      - provider: ${p}\n        model: gpt-4o\n`).join('');
  gw = await startGateway(yaml);
});
after(async () => {
  await gw?.stop();
  gw?.cleanup();
  server?.close();
});

const msgs = [{ role: 'user', content: 'hi' }];

test('a provider behind a private CA answers when tls.ca_file names that CA', async () => {
  const n = seen.length;
  const r = await chat(gw, { model: 'm-private', messages: msgs });
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.choices[0].message.content, 'over TLS');
  assert.equal(seen.length, n + 1);
  assert.deepEqual(seen[n], { url: '/v1/chat/completions', model: 'gpt-4o' });
  // the connection is kept: a second call works too (and is not re-verified wrongly)
  const r2 = await chat(gw, { model: 'm-private', messages: msgs, stream: true });
  assert.equal(r2.status, 200, r2.text);
  assert.match(r2.text, /streamed over TLS/);
  assert.match(r2.text, /data: \[DONE\]/);
});

for (const [model, why] of [
  // the system store does not know the CA; another CA does not verify it either
  ['m-system', /^could not reach system: SSL certificate problem: unable to get local issuer certificate/],
  ['m-wrongca', /^could not reach wrongca: SSL certificate problem: unable to get local issuer certificate/],
  // the CA is right, the name is not
  ['m-wronghost', /^could not reach wronghost: SSL: no alternative certificate subject name matches target host name 'localhost'/],
]) {
  test(`${model}: the certificate is refused with a clear reason, nothing reaches the provider`, async () => {
    const n = seen.length;
    const r = await chat(gw, { model, messages: msgs });
    assert.equal(r.status, 502, r.text);
    assert.equal(r.json.error.code, 'upstream_error', r.text);
    assert.match(r.json.error.message, why);
    assert.equal(seen.length, n, 'no request got through');
  });
}
