// An HTTP proxy from the environment (http_proxy / https_proxy, read by
// libcurl) still carries the provider calls: the engine skips curl's
// per-transfer proxy lookup only when no such variable was set at start
// (issue 15). The "proxy" here answers itself and records what it was asked.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { once } from 'node:events';
import { startGateway, config, chat } from './lib.mjs';

let proxy, gw;
const seen = [];
before(async () => {
  proxy = http.createServer((req, res) => {
    let body = '';
    req.on('data', (d) => { body += d; });
    req.on('end', () => {
      seen.push({ url: req.url, host: req.headers.host, model: JSON.parse(body).model });
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({
        id: 'chatcmpl-proxy', object: 'chat.completion', created: 1, model: 'gpt-4o',
        choices: [{ index: 0, message: { role: 'assistant', content: 'via the proxy' }, finish_reason: 'stop' }],
        usage: { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2 },
      }));
    });
  });
  proxy.listen(0, '127.0.0.1');
  await once(proxy, 'listening');
  const p = `http://127.0.0.1:${proxy.address().port}`;
  // a host that does not resolve: only the proxy can answer for it
  gw = await startGateway(config({
    providers: { remote: { base_url: 'http://provider.invalid:8080/v1', api_key: 'sk-p' } },
    models: [{ id: 'gpt-4o', routes: [{ provider: 'remote' }] }],
  }), { env: { http_proxy: p, https_proxy: p } });
});
after(async () => { await gw?.stop(); gw?.cleanup(); proxy?.close(); });

test('provider calls go through the http_proxy of the environment', async () => {
  const r = await chat(gw, { model: 'gpt-4o', messages: [{ role: 'user', content: 'hi' }] });
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.choices[0].message.content, 'via the proxy');
  assert.equal(seen.length, 1);
  assert.equal(seen[0].url, 'http://provider.invalid:8080/v1/chat/completions');
  assert.equal(seen[0].host, 'provider.invalid:8080');
});
