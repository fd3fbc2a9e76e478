// Test harness: starts the real binaries (gateway and simulator) on
// ephemeral loopback ports and gives tests small helpers to drive them.
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { once } from 'node:events';
import net from 'node:net';
import assert from 'node:assert/strict';

const here = dirname(fileURLToPath(import.meta.url));
const buildDir = process.env.YR_BUILD_DIR || join(here, '..', '..', 'build');
export const YR_BIN = process.env.YR_BIN || join(buildDir, 'yourouter');
export const SIM_BIN = process.env.YR_SIM_BIN || join(buildDir, 'yourouter-sim');

// Spawns a binary and resolves once it printed "listening on HOST:PORT".
async function spawnListening(bin, args, opts = {}) {
  const proc = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'], ...opts });
  let stderr = '';
  proc.stderr.on('data', (d) => { stderr += d; if (process.env.YR_TEST_VERBOSE) process.stderr.write(d); });
  const port = await new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`${bin} did not start: ${stderr}`)), 10000);
    proc.stdout.on('data', (d) => {
      out += d;
      const m = out.match(/listening on [^\s:]+:(\d+)/);
      if (m) { clearTimeout(timer); resolve(Number(m[1])); }
    });
    proc.on('exit', (code) => { clearTimeout(timer); reject(new Error(`${bin} exited ${code}: ${stderr}`)); });
  });
  proc.removeAllListeners('exit');
  return { proc, port, stderr: () => stderr };
}

export async function startSim(args = []) {
  const { proc, port, stderr } = await spawnListening(SIM_BIN, ['--listen', '127.0.0.1:0', ...args]);
  const base = `http://127.0.0.1:${port}`;
  const ctl = async (method, path, body) => {
    const r = await fetch(base + path, {
      method, body: body === undefined ? undefined : JSON.stringify(body),
      headers: body === undefined ? {} : { 'content-type': 'application/json' },
    });
    const text = await r.text();
    return { status: r.status, body: text ? JSON.parse(text) : null };
  };
  return {
    proc, port, base, url: `${base}/v1`, stderr,
    script: (behaviours) => ctl('POST', '/_sim/script', behaviours),
    requests: async () => (await ctl('GET', '/_sim/requests')).body,
    stats: async () => (await ctl('GET', '/_sim/stats')).body,
    // Long-poll until the simulator's counters reach the condition.
    wait: async (cond, timeoutMs = 5000) => {
      const q = new URLSearchParams({ ...cond, timeout_ms: String(timeoutMs) });
      return ctl('GET', `/_sim/wait?${q}`);
    },
    reset: () => ctl('POST', '/_sim/reset'),
    // Exit 0 on SIGTERM also means LeakSanitizer found nothing in a sanitizer build.
    stop: async () => {
      if (proc.exitCode === null && proc.signalCode === null) { proc.kill('SIGTERM'); await once(proc, 'exit'); }
      assert.equal(proc.exitCode, 0, `simulator exited ${proc.exitCode}: ${stderr().slice(-2000)}`);
      return proc.exitCode;
    },
  };
}

export function tmpDir() {
  return mkdtempSync(join(tmpdir(), 'yr-test-'));
}

// A PKI made for the run with the openssl CLI, in dir: a CA (ca.pem,
// ca.key), a server certificate it signs for IP 127.0.0.1 only (srv.pem,
// srv.key) and, with other, a second unrelated CA (other.pem). Returns the
// paths.
export function makeTestPki(dir, { other = false } = {}) {
  const f = (n) => join(dir, n);
  const openssl = (...args) => spawnSync('openssl', args, { stdio: 'pipe' }).status === 0 ||
    assert.fail(`openssl ${args[0]} failed`);
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];
  openssl('req', '-x509', ...ec, '-keyout', f('ca.key'), '-out', f('ca.pem'), '-days', '2',
    '-subj', '/CN=yourouter test CA');
  if (other) {
    openssl('req', '-x509', ...ec, '-keyout', f('other.key'), '-out', f('other.pem'), '-days', '2',
      '-subj', '/CN=another CA');
  }
  openssl('req', ...ec, '-keyout', f('srv.key'), '-out', f('srv.csr'), '-subj', '/CN=127.0.0.1');
  writeFileSync(f('srv.ext'), 'subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n');
  openssl('x509', '-req', '-in', f('srv.csr'), '-CA', f('ca.pem'), '-CAkey', f('ca.key'),
    '-CAcreateserial', '-out', f('srv.pem'), '-days', '2', '-extfile', f('srv.ext'));
  return { ca: f('ca.pem'), other: f('other.pem'), key: f('srv.key'), cert: f('srv.pem') };
}

export const MASTER_KEY = 'sk-yr-master-' + 'x'.repeat(24);

// Writes the YAML config and starts `yourouter serve --config`.
export async function startGateway(yaml, { env = {}, dir = tmpDir() } = {}) {
  const cfgPath = join(dir, 'yourouter.yaml');
  writeFileSync(cfgPath, yaml);
  const fullEnv = { ...process.env, YOUROUTER_MASTER_KEY: MASTER_KEY, ...env };
  const { proc, port, stderr } = await spawnListening(YR_BIN, ['serve', '--config', cfgPath], { env: fullEnv, cwd: dir });
  const base = `http://127.0.0.1:${port}`;
  return {
    proc, port, base, url: `${base}/v1`, dir, cfgPath, stderr, env: fullEnv,
    cli: (args) => spawnSync(YR_BIN, [...args, '--config', cfgPath], { env: fullEnv, cwd: dir, encoding: 'utf8' }),
    // Exit 0 after a graceful drain; in a sanitizer build also "no leaks".
    stop: async (signal = 'SIGTERM') => {
      if (proc.exitCode === null && proc.signalCode === null) { proc.kill(signal); await once(proc, 'exit'); }
      assert.equal(proc.exitCode, 0, `gateway exited ${proc.exitCode}: ${stderr().slice(-2000)}`);
      return proc.exitCode;
    },
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
    // Route health (cool-downs, circuits) is shared across requests: tests
    // that script failures start from a clean slate.
    resetRoutes: async () => {
      const r = await fetch(`${base}/admin/routes/reset`, { method: 'POST', headers: { authorization: `Bearer ${MASTER_KEY}` } });
      assert.equal(r.status, 200, await r.text());
    },
    routes: async () => {
      const r = await fetch(`${base}/admin/routes`, { headers: { authorization: `Bearer ${MASTER_KEY}` } });
      assert.equal(r.status, 200);
      return (await r.json()).data;
    },
    rssKiB: () => {
      const m = readFileSync(`/proc/${proc.pid}/status`, 'utf8').match(/VmRSS:\s+(\d+)/);
      return Number(m[1]);
    },
  };
}

// A config with one provider per simulator, and the models given.
export function config({ providers, models, server = {}, storage = 'sqlite://yourouter.db' }) {
  let y = `server:\n  listen: 127.0.0.1:0\n  master_key: \${YOUROUTER_MASTER_KEY}\n  workers: ${server.workers ?? 2}\n`;
  for (const [k, v] of Object.entries(server)) if (k !== 'workers') y += `  ${k}: ${v}\n`;
  y += `storage:\n  url: ${storage}\nproviders:\n`;
  for (const [name, p] of Object.entries(providers)) {
    y += `  ${name}:\n    kind: ${p.kind ?? 'openai'}\n    base_url: ${p.base_url}\n`;
    if (p.api_key) y += `    api_key: ${p.api_key}\n`;
    for (const k of ['connect_timeout_ms', 'first_byte_timeout_ms', 'idle_timeout_ms', 'timeout_ms', 'responses', 'api_version']) if (p[k]) y += `    ${k}: ${p[k]}\n`;
  }
  y += 'models:\n';
  for (const m of models) {
    y += `  - id: ${m.id}\n    routes:\n`;
    for (const r of m.routes) y += `      - provider: ${r.provider}\n` + (r.model ? `        model: ${r.model}\n` : '');
  }
  return y;
}

export async function chat(gw, body, { key = MASTER_KEY, headers = {} } = {}) {
  const r = await fetch(`${gw.url}/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(key ? { authorization: `Bearer ${key}` } : {}), ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await r.text();
  let json = null;
  try { json = JSON.parse(text); } catch { /* not JSON */ }
  return { status: r.status, headers: r.headers, text, json };
}

// Parses an SSE body into the list of data payloads.
export function sseData(text) {
  return text.split('\n\n').filter((e) => e.trim()).map((e) =>
    e.split('\n').filter((l) => l.startsWith('data:')).map((l) => l.slice(5).trimStart()).join('\n'));
}

// POSTs a chat body to /v1/chat/completions over a raw socket, so that a
// test can stop reading (sock.pause()) and read again. Resolves once
// connected with the socket, done (resolves when the chunked SSE answer has
// ended with [DONE], rejects if the connection closes first) and text()
// (everything received, latin1).
export async function rawStream(gw, body) {
  const sock = net.connect(gw.port, '127.0.0.1');
  await once(sock, 'connect');
  sock.write(`POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${MASTER_KEY}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
  const parts = [];
  let tail = '';
  const done = new Promise((resolve, reject) => {
    sock.on('data', (d) => {
      parts.push(d);
      tail = (tail + d.toString('latin1')).slice(-64);
      if (tail.includes('data: [DONE]\n\n\r\n0\r\n\r\n')) resolve();
    });
    sock.on('error', reject);
    sock.on('close', () => reject(new Error('the connection closed before the stream ended')));
  });
  return { sock, done, text: () => Buffer.concat(parts).toString('latin1') };
}

// Sends a raw HTTP request over a fresh socket; returns the socket.
export function rawRequest(port, text) {
  const sock = net.connect(port, '127.0.0.1');
  sock.write(text);
  return sock;
}

export function readUntil(sock, pred, timeoutMs = 5000) {
  return new Promise((resolve, reject) => {
    let buf = '';
    const timer = setTimeout(() => { cleanup(); reject(new Error(`timeout; got: ${buf.slice(0, 500)}`)); }, timeoutMs);
    const onData = (d) => { buf += d; if (pred(buf)) { cleanup(); resolve(buf); } };
    const onEnd = () => { cleanup(); pred(buf) ? resolve(buf) : reject(new Error(`closed; got: ${buf.slice(0, 500)}`)); };
    const cleanup = () => { clearTimeout(timer); sock.off('data', onData); sock.off('end', onEnd); };
    sock.on('data', onData);
    sock.on('end', onEnd);
  });
}
