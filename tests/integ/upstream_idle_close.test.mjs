// A provider that closes an idle keep-alive connection (issue 15): the
// engine keeps an upstream socket registered between transfers, so the
// close arrives as an event on a socket no transfer wants. The gateway must
// stop watching it (a level-triggered EOF would otherwise wake the loop on
// every turn: a worker at 100 % CPU while idle) and the next request must
// get a fresh connection.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { startGateway, config, chat } from './lib.mjs';

let server, gw;
const sockets = [];
before(async () => {
  server = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      res.writeHead(200, { 'content-type': 'application/json', connection: 'keep-alive' });
      res.end(JSON.stringify({
        id: 'chatcmpl-idle', object: 'chat.completion', created: 1, model: 'gpt-4o',
        choices: [{ index: 0, message: { role: 'assistant', content: `answer ${sockets.length}` }, finish_reason: 'stop' }],
        usage: { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2 },
      }));
    });
  });
  server.keepAliveTimeout = 60000;
  server.on('connection', (s) => sockets.push(s));
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  gw = await startGateway(config({
    server: { workers: 1 },
    providers: { p: { base_url: `http://127.0.0.1:${server.address().port}/v1`, api_key: 'sk-p' } },
    models: [{ id: 'gpt-4o', routes: [{ provider: 'p' }] }],
  }));
});
after(async () => { await gw?.stop(); gw?.cleanup(); server?.close(); });

const cpuTicks = (pid) => {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return Number(f[11]) + Number(f[12]); // utime + stime
};

test('an idle upstream connection closed by the provider: no busy loop, the next call reconnects', async () => {
  const r1 = await chat(gw, { model: 'gpt-4o', messages: [{ role: 'user', content: 'one' }] });
  assert.equal(r1.status, 200, r1.text);
  assert.equal(sockets.length, 1);
  // the provider ends the idle connection (FIN), and the gateway's side closes
  const s = sockets[0];
  const closed = once(s, 'close');
  s.end();
  await closed;
  // idle now: a worker spinning on the EOF would burn ~100 ticks a second
  const t0 = cpuTicks(gw.proc.pid);
  await new Promise((r) => setTimeout(r, 1000)); // a measuring window, not a wait for an event
  const used = cpuTicks(gw.proc.pid) - t0;
  assert.ok(used < 10, `the idle gateway used ${used} ticks in 1 s`);
  const r2 = await chat(gw, { model: 'gpt-4o', messages: [{ role: 'user', content: 'two' }] });
  assert.equal(r2.status, 200, r2.text);
  assert.equal(r2.json.choices[0].message.content, 'answer 2');
  assert.equal(sockets.length, 2, 'a fresh connection');
});
