// Figure (o), the overhead figures: non-streamed req/s per core of each proxy
// in front of an upstream that is much faster than any proxy -- the
// purpose-built yr-upstream (bench/yr-upstream.c: a fixed 1 KB
// chat.completion, no parsing, one epoll loop) -- once over plain HTTP and
// once over TLS with a CA made for the run (openssl). Every peer figure is
// printed next to the direct one (wrk straight to the upstream, the rig's
// ceiling): a ratio between peers only means something when direct is well
// above both (>= 3x on plain HTTP; >= 1.3x on TLS, where the upstream pays
// for the crypto too), and the table says "invalid" when it is not. A load
// run with any non-2xx answer or socket error is invalid too: it is shown,
// never averaged in.
//
// Rig: the peer under test alone on core 0; the upstream and wrk on core 1.
import fs from 'node:fs';
import path from 'node:path';
import { sh, which, log, pinned, startProcess, waitForOutput, stopProcess, median, parseWrk, runLoad, loadTarget } from './util.mjs';

export const PLAIN_MIN_RATIO = 3;
export const TLS_MIN_RATIO = 1.3;
export const UPSTREAM_NAME = 'bench-upstream';

// A CA and a certificate for 127.0.0.1 and bench-upstream (nginx checks a
// DNS name, curl the IP), made for the run.
export function makePki(dir) {
  fs.mkdirSync(dir, { recursive: true });
  const f = (n) => path.join(dir, n);
  const run = (args) => {
    const r = sh('openssl', args);
    if (r.code !== 0) throw new Error(`openssl ${args[0]}: ${r.stderr}`);
  };
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];
  run(['req', '-x509', ...ec, '-keyout', f('ca.key'), '-out', f('ca.pem'), '-days', '2', '-subj', '/CN=yourouter bench CA']);
  run(['req', ...ec, '-keyout', f('up.key'), '-out', f('up.csr'), '-subj', `/CN=${UPSTREAM_NAME}`]);
  fs.writeFileSync(f('up.ext'), `subjectAltName=DNS:${UPSTREAM_NAME},IP:127.0.0.1\nbasicConstraints=CA:FALSE\n`);
  run(['x509', '-req', '-in', f('up.csr'), '-CA', f('ca.pem'), '-CAkey', f('ca.key'), '-CAcreateserial',
    '-out', f('up.pem'), '-days', '2', '-extfile', f('up.ext')]);
  return { ca: f('ca.pem'), cert: f('up.pem'), key: f('up.key') };
}

// variant 'h2': the TLS upstream also speaks h2 to a client that offers it
// (providers do): yourouter then multiplexes; nginx's proxy_pass and wrk
// (direct) speak HTTP/1.1 to it as in the 'tls' variant
async function startUpstream(ctx, pki, variant) {
  const argv = [path.join(ctx.buildDir, 'bench', 'yr-upstream'), '--listen', '127.0.0.1:0'];
  if (pki) argv.push('--cert', pki.cert, '--key', pki.key);
  if (variant === 'h2') argv.push('--h2');
  const child = startProcess(pinned(1, ctx.sched, argv), { logFile: path.join(ctx.workDir, `upstream-${variant}.log`) });
  const m = await waitForOutput(child, /listening on 127\.0\.0\.1:(\d+)/, 10000);
  return { child, port: Number(m[1]) };
}

function wrk(ctx, url, headers, body, secs) {
  const env = { ...process.env, WRK_BODY: body, WRK_HEADERS: headers.join('\n') };
  const argv = pinned(1, ctx.sched, ['wrk', '-t1', '-c50', `-d${secs}s`, '--latency', '-s',
    path.join(ctx.root, 'bench', 'wrk', 'post.lua'), url]);
  const r = sh(argv[0], argv.slice(1), { env, timeout: (secs + 30) * 1000 });
  const w = parseWrk(r.stdout);
  w.valid = w.rps != null && w.requests > 0 && w.non2xx === 0 && w.socket_errors === 0;
  if (!w.valid) w.why = w.rps == null ? `wrk failed: ${r.stderr.slice(0, 200)}` : `${w.non2xx} non-2xx, ${w.socket_errors} socket errors`;
  return w;
}

// Median of the valid rounds; invalid rounds are listed, never averaged in.
function summarise(rounds) {
  const ok = rounds.filter((r) => r.valid);
  return {
    rounds,
    valid_rounds: ok.length,
    rps: ok.length ? median(ok.map((r) => r.rps)) : null,
    p99_us: ok.length ? median(ok.map((r) => r.p99_us)) : null,
    invalid: ok.length === 0 ? rounds.map((r) => r.why).join('; ') : null,
  };
}

// c=1 latency through each peer against the same upstream: interleaved
// rounds of sequential requests with yr-load, median of the rounds' p50 and
// p99. Direct only over plain HTTP (yr-load has no TLS client): the TLS
// variant's added figures are against it, so they include the proxy's TLS.
async function latencyRounds(ctx, targets, body, { rounds = 3, n = 2000 } = {}) {
  const LOAD = path.join(ctx.buildDir, 'bench', 'yr-load');
  const per = Object.fromEntries(targets.map((t) => [t.name, { p50: [], p99: [], errors: 0 }]));
  const run = (t, count) =>
    runLoad(LOAD, [...loadTarget(t.port, body, t.headers), '-c', '1', '-n', String(count), '-d', '60'],
      { core: 1, sched: ctx.sched, timeoutMs: 120000 });
  for (const t of targets) await run(t, 50); // warm: connections, sessions
  for (let round = 0; round < rounds; round++) {
    for (let i = 0; i < targets.length; i++) {
      const t = targets[(i + round) % targets.length];
      const r = await run(t, n);
      if (r.failed || r.errors) {
        per[t.name].errors += r.failed ? n : r.errors;
        continue;
      }
      per[t.name].p50.push(r.latency_us.p50);
      per[t.name].p99.push(r.latency_us.p99);
    }
  }
  const out = {};
  for (const [name, v] of Object.entries(per))
    out[name] = { p50_us: v.p50.length ? median(v.p50) : null, p99_us: v.p99.length ? median(v.p99) : null, rounds: v.p50.length, errors: v.errors };
  return { rounds, n, per_peer: out };
}

// peers: [{ peer, name }] from peers.mjs (direct handled here); returns
// { plain: {...}, tls: {...} } with per-peer summaries and the validity of
// every ratio, c=1 latency and CPU per request.
export async function overheadFigure(ctx, { peers, body, secs, rounds, variants = ['plain', 'tls', 'h2'] }) {
  if (!which('wrk')) return { skipped: 'wrk is not installed' };
  if (!fs.existsSync(path.join(ctx.buildDir, 'bench', 'yr-upstream'))) return { skipped: 'yr-upstream was not built' };
  const out = {};
  const pki = variants.some((v) => v !== 'plain') ? makePki(path.join(ctx.workDir, 'pki')) : null;
  for (const variant of variants) {
    const tls = variant !== 'plain';
    const up = await startUpstream(ctx, tls ? pki : null, variant);
    const saved = ctx.upstream;
    ctx.upstream = { port: up.port, tls, ca: pki?.ca, name: UPSTREAM_NAME };
    const insts = {};
    const res = { per_peer: {}, min_ratio: tls ? TLS_MIN_RATIO : PLAIN_MIN_RATIO };
    try {
      for (const { peer, name } of peers) {
        try {
          insts[name] = { peer, inst: await peer.start(ctx) };
        } catch (e) {
          res.per_peer[name] = { invalid: `did not start: ${e.message.split('\n')[0]}`, rounds: [] };
        }
      }
      const all = { direct: [] };
      for (const n of Object.keys(insts)) all[n] = [];
      const directUrl = `${tls ? 'https' : 'http'}://127.0.0.1:${up.port}/v1/chat/completions`;
      for (let round = 0; round < rounds; round++) {
        // the order rotates, so a slow phase of the machine does not land on one peer
        const names = Object.keys(all);
        const order = names.slice(round % names.length).concat(names.slice(0, round % names.length));
        for (const n of order) {
          const w = n === 'direct'
            ? wrk(ctx, directUrl, ['Authorization: Bearer dummy'], body, secs)
            : wrk(ctx, `http://127.0.0.1:${insts[n].inst.port}/v1/chat/completions`, insts[n].peer.headers(ctx, {}), body, secs);
          all[n].push(w);
          log(`figure o (${variant}) round ${round + 1}: ${n} ${w.valid ? `${Math.round(w.rps)} req/s` : `INVALID (${w.why})`}`);
        }
      }
      for (const [n, r] of Object.entries(all)) res.per_peer[n] = summarise(r);
      const direct = res.per_peer.direct;
      for (const [n, s] of Object.entries(res.per_peer)) {
        if (n === 'direct') continue;
        s.direct_over_peer = direct.rps && s.rps ? direct.rps / s.rps : null;
        s.rig_valid = s.direct_over_peer != null && s.direct_over_peer >= res.min_ratio;
      }
      // c=1 latency against the same upstream (direct: the plain variant's)
      if (fs.existsSync(path.join(ctx.buildDir, 'bench', 'yr-load'))) {
        const targets = Object.keys(insts).map((n) => ({ name: n, port: insts[n].inst.port, headers: insts[n].peer.headers(ctx, {}) }));
        if (!tls) targets.unshift({ name: 'direct', port: up.port, headers: ['Authorization: Bearer dummy'] });
        res.latency = await latencyRounds(ctx, targets, body);
        if (tls && out.plain?.latency?.per_peer?.direct) res.latency.per_peer.direct = { ...out.plain.latency.per_peer.direct, from: 'plain' };
        log(`figure o (${variant}) c=1: ${Object.entries(res.latency.per_peer).map(([n, v]) => `${n} p50/p99 ${v.p50_us}/${v.p99_us} us`).join(', ')}`);
        // CPU per request at a fixed 500 req/s (figure (e)'s load) against this upstream
        res.cpu = {};
        for (const n of Object.keys(insts)) {
          const args = [...loadTarget(insts[n].inst.port, body, insts[n].peer.headers(ctx, {}), insts[n].inst.pids),
            '-R', '500', '-n', '3000', '-d', '6', '-c', '4'];
          const r = await runLoad(path.join(ctx.buildDir, 'bench', 'yr-load'), args, { core: 1, sched: ctx.sched, timeoutMs: 60000 });
          res.cpu[n] = { cpu_us_per_req: r.failed || r.errors ? null : r.peer?.cpu_us_per_req ?? null, errors: r.failed ? 3000 : r.errors };
        }
        log(`figure o (${variant}) CPU per request at 500/s: ${Object.entries(res.cpu).map(([n, v]) => `${n} ${v.cpu_us_per_req} us`).join(', ')}`);
      }
      const yr = res.per_peer.yourouter, ng = res.per_peer.nginx;
      if (yr?.rps && ng?.rps) {
        res.yourouter_over_nginx = yr.rps / ng.rps;
        res.ratio_valid = yr.rig_valid && ng.rig_valid;
        if (!res.ratio_valid)
          res.ratio_why = `direct is ${direct.rps ? (direct.rps / Math.max(yr.rps, ng.rps)).toFixed(2) : '?'}x the faster peer, ` +
            `below the ${res.min_ratio}x that makes the upstream negligible`;
      }
    } finally {
      for (const { inst } of Object.values(insts)) await inst.stop().catch(() => {});
      ctx.upstream = saved;
      await stopProcess(up.child);
    }
    out[variant] = res;
  }
  return out;
}
