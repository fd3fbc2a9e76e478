// Process, /proc and statistics helpers for the benchmark harness.
// Every child process the harness starts is tracked here and killed by pid
// (never by name) when the harness exits.
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import http from 'node:http';

const children = new Set();

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export function log(...a) {
  const t = new Date().toISOString().slice(11, 19);
  process.stderr.write(`[bench ${t}] ${a.join(' ')}\n`);
}

// Runs a command to completion (versions, small tools). Never throws.
export function sh(cmd, args = [], opts = {}) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 30000, ...opts });
  return { code: r.status ?? -1, stdout: r.stdout ?? '', stderr: r.stderr ?? '', error: r.error };
}

export function which(cmd) {
  return sh('sh', ['-c', `command -v ${cmd}`]).stdout.trim() || null;
}

// The scheduling prefix: the peer under test on core 0, the simulator and the
// load generator on core 1. `sched` is rr (SCHED_RR priority 1: a process
// that wakes up preempts other work on its core at once; on a shared machine
// this removes ~4 ms scheduler hiccups from every percentile), nice, or none.
export function pinned(core, sched, argv) {
  const pre = ['taskset', '-c', String(core)];
  if (sched === 'rr') pre.push('chrt', '-r', '1');
  else if (sched === 'nice') pre.push('nice', '-n', '-10');
  return [...pre, ...argv];
}

// Starts a long-running process (a peer, the simulator). Its stdout and
// stderr go to `logFile` and are kept in memory (the last 64 KiB) for
// startup-line parsing and error reports.
export function startProcess(argv, { env, cwd, logFile } = {}) {
  const child = spawn(argv[0], argv.slice(1), {
    env: { ...process.env, ...env },
    cwd,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.add(child);
  child.output = '';
  const out = logFile ? fs.createWriteStream(logFile) : null;
  const keep = (d) => {
    child.output = (child.output + d.toString()).slice(-65536);
    out?.write(d);
  };
  child.stdout.on('data', keep);
  child.stderr.on('data', keep);
  child.exited = new Promise((resolve) => {
    child.on('exit', (code, signal) => {
      children.delete(child);
      out?.end();
      resolve({ code, signal });
    });
    child.on('error', (e) => {
      children.delete(child);
      child.output += `\n${e.message}`;
      resolve({ code: -1, signal: null, error: e });
    });
  });
  return child;
}

export async function waitForOutput(child, re, timeoutMs) {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    const m = child.output.match(re);
    if (m) return m;
    if (child.exitCode !== null || child.signalCode !== null) break;
    await sleep(20);
  }
  throw new Error(`no ${re} from ${child.spawnargs.join(' ')} in ${timeoutMs} ms:\n${child.output.slice(-2000)}`);
}

export async function stopProcess(child, timeoutMs = 5000) {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  child.kill('SIGTERM');
  const done = await Promise.race([child.exited, sleep(timeoutMs).then(() => null)]);
  if (!done) {
    child.kill('SIGKILL');
    await child.exited;
  }
}

export function killAll() {
  for (const c of children) {
    try {
      c.kill('SIGKILL');
    } catch {
      /* already gone */
    }
  }
}

export function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

// Polls until an HTTP request to 127.0.0.1:port gets any answer.
export async function waitHttp(port, path, timeoutMs, headers = {}) {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    const ok = await new Promise((resolve) => {
      const req = http.get({ host: '127.0.0.1', port, path, headers, timeout: 1000 }, (res) => {
        res.resume();
        resolve(true);
      });
      req.on('error', () => resolve(false));
      req.on('timeout', () => {
        req.destroy();
        resolve(false);
      });
    });
    if (ok) return;
    await sleep(50);
  }
  throw new Error(`nothing answers on 127.0.0.1:${port} after ${timeoutMs} ms`);
}

// One HTTP request, for smoke checks: resolves {status, body}.
export function httpRequest(port, path, { method = 'GET', headers = {}, body } = {}) {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path, method, headers, timeout: 10000 }, (res) => {
      let data = '';
      res.on('data', (d) => (data += d));
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: data }));
    });
    req.on('error', reject);
    req.on('timeout', () => req.destroy(new Error('timeout')));
    if (body) req.write(body);
    req.end();
  });
}

export function rssKb(pids) {
  let sum = 0;
  for (const pid of pids) {
    try {
      const m = fs.readFileSync(`/proc/${pid}/status`, 'utf8').match(/^VmRSS:\s+(\d+)/m);
      if (m) sum += Number(m[1]);
    } catch {
      /* gone */
    }
  }
  return sum;
}

export function fdCount(pid) {
  try {
    return fs.readdirSync(`/proc/${pid}/fd`).length;
  } catch {
    return -1;
  }
}

export function childPids(pid) {
  const out = [];
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${d}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(fields[1]) === pid) out.push(Number(d));
    } catch {
      /* gone */
    }
  }
  return out;
}

export function median(a) {
  const v = a.filter((x) => Number.isFinite(x)).sort((x, y) => x - y);
  if (!v.length) return null;
  const m = v.length >> 1;
  return v.length % 2 ? v[m] : (v[m - 1] + v[m]) / 2;
}

// Runs yr-load once and returns its JSON (or {failed, error}).
// yr-load's target arguments: the chat endpoint of a peer on 127.0.0.1, the
// body file, the headers, and the pids whose RSS and CPU it samples.
export function loadTarget(port, bodyFile, headers, pids = []) {
  const args = ['-u', `http://127.0.0.1:${port}/v1/chat/completions`, '-b', bodyFile];
  for (const h of headers) args.push('-H', h);
  for (const pid of pids) args.push('-p', String(pid));
  return args;
}

export async function runLoad(bin, args, { core, sched, timeoutMs }) {
  const argv = pinned(core, sched, [bin, ...args]);
  const child = spawn(argv[0], argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(child);
  let out = '';
  let err = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (err = (err + d).slice(-4000)));
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  const code = await new Promise((resolve) => {
    child.on('exit', (c, sig) => resolve(c ?? sig));
    child.on('error', (e) => {
      err += e.message;
      resolve(-1);
    });
  });
  clearTimeout(timer);
  children.delete(child);
  try {
    const r = JSON.parse(out);
    if (err.trim()) r.stderr = err.trim();
    return r;
  } catch {
    return { failed: true, error: `yr-load exited ${code}: ${err.trim() || out.slice(0, 500)}`, args };
  }
}

// wrk's text output -> { rps, requests, non2xx, socket_errors, p50_us, p99_us }.
export function parseWrk(text) {
  const num = (re) => {
    const m = text.match(re);
    return m ? Number(m[1]) : null;
  };
  const toUs = (v, unit) => v * ({ us: 1, ms: 1000, s: 1e6, m: 6e7 }[unit] ?? 1);
  const pct = (p) => {
    const m = text.match(new RegExp(`^\\s*${p}%\\s+([\\d.]+)(us|ms|s|m)\\s*$`, 'm'));
    return m ? toUs(Number(m[1]), m[2]) : null;
  };
  const sock = text.match(/Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/);
  return {
    rps: num(/Requests\/sec:\s+([\d.]+)/),
    requests: num(/(\d+) requests in/),
    non2xx: num(/Non-2xx or 3xx responses: (\d+)/) ?? 0,
    socket_errors: sock ? sock.slice(1).reduce((a, b) => a + Number(b), 0) : 0,
    p50_us: pct(50),
    p99_us: pct(99),
  };
}
