// The HTTP server under abusive clients (issue 8): pipelining floods,
// over-size and unauthenticated uploads, slow heads and bodies, too many
// connections, malformed HTTP. Everything is asserted as the client sees it.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { once } from 'node:events';
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
