// Figure (s): many concurrent streams against yr-upstream's stream mode
// (bench/yr-upstream.c --stream 64:20: the role chunk, 64 content chunks
// 20 ms apart, the finish chunk and [DONE], the same events as the
// simulator's "stream" behaviour), once over plain HTTP and once over TLS
// with a CA made for the run. The simulator is a full provider emulation and
// saturates near 10,000 streams on the core it shares with the load
// generator (figure d says so when it does); yr-upstream serves each event
// with one memcpy and one write, so the stream counts here measure the
// proxies, and the direct run below shows it.
//
// Every peer is a fresh process for each variant, so "memory per 1,000
// streams" is its peak RSS during the run minus its RSS just before it.
// Direct is over plain HTTP in both variants (yr-load has no TLS client):
// for TLS it is the same upstream timing without the proxy's crypto.
//
// Rig: the peer under test alone on core 0; the upstream and yr-load on core 1.
import fs from 'node:fs';
import path from 'node:path';
import { log, pinned, startProcess, waitForOutput, stopProcess, rssKb, runLoad, sleep, loadTarget } from './util.mjs';
import { makePki, UPSTREAM_NAME } from './overhead.mjs';

export const STREAM_EVENTS = 64;
export const STREAM_GAP_MS = 20;
// what the client sees per stream: role chunk, content chunks, finish, [DONE]
// (the simulator's "stream" behaviour, figure (d), sends the same)
export const EVENTS_SEEN = STREAM_EVENTS + 3;

// variant: 'plain', 'tls' (HTTP/1.1 over TLS) or 'h2' (TLS; h2 to a client
// that offers it in ALPN, 100 streams per connection as providers' front
// ends advertise; nginx's proxy_pass does not, so it stays on HTTP/1.1)
async function startStreamUpstream(ctx, pki, variant) {
  const argv = [path.join(ctx.buildDir, 'bench', 'yr-upstream'), '--listen', '127.0.0.1:0',
    '--stream', `${STREAM_EVENTS}:${STREAM_GAP_MS}`];
  if (pki) argv.push('--cert', pki.cert, '--key', pki.key);
  if (variant === 'h2') argv.push('--h2', '--h2-streams', '100');
  const child = startProcess(pinned(1, ctx.sched, argv), { logFile: path.join(ctx.workDir, `upstream-stream-${variant}.log`) });
  const m = await waitForOutput(child, /listening on 127\.0\.0\.1:(\d+)/, 10000);
  return { child, port: Number(m[1]) };
}

// What one yr-load stream run measured (figures (d) and (s) alike).
export function streamMetrics(r, count) {
  return {
    ok: r.ok ?? 0,
    stalls: r.failed ? count : r.stalls,
    max_inflight: r.max_inflight ?? 0,
    ttfb_p50_us: r.ttfb_us?.p50 ?? null,
    ttfb_p99_us: r.ttfb_us?.p99 ?? null,
    ttfc_p50_us: r.ttfc_us?.p50 ?? null,
    ttfc_p99_us: r.ttfc_us?.p99 ?? null,
    gap_p50_us: r.gap_us?.p50 ?? null,
    gap_p99_us: r.gap_us?.p99 ?? null,
    gap_max_us: r.gap_us?.max ?? null,
    total_p50_us: r.failed ? null : r.latency_us?.p50 ?? null,
    total_p99_us: r.failed ? null : r.latency_us?.p99 ?? null,
  };
}

function summary(r, count, pids, idleKb) {
  const out = {
    ...streamMetrics(r, count),
    count,
    errors: r.failed ? count : r.errors ?? null,
    failed: r.failed ? r.error : null,
  };
  if (pids.length) {
    out.rss_idle_kb = idleKb;
    out.rss_max_kb = r.peer?.rss_max_kb ?? null;
    out.kb_per_1000_streams = out.rss_max_kb != null && idleKb != null ? Math.round(((out.rss_max_kb - idleKb) * 1000) / count) : null;
    out.cpu_us_per_event = r.peer?.cpu_us >= 0 && r.ok ? r.peer.cpu_us / (r.ok * EVENTS_SEEN) : null;
  }
  return out;
}

// peers: [{ peer, name }] (direct handled here); levels: stream counts.
// Returns { plain: { per_peer: { name: { level: summary } } }, tls: ... }.
export async function streamsFigure(ctx, { peers, levels, bodyFile, variants = ['plain', 'tls', 'h2'] }) {
  if (!fs.existsSync(path.join(ctx.buildDir, 'bench', 'yr-upstream'))) return { skipped: 'yr-upstream was not built' };
  const LOAD = path.join(ctx.buildDir, 'bench', 'yr-load');
  const pki = variants.some((v) => v !== 'plain') ? makePki(path.join(ctx.workDir, 'pki-streams')) : null;
  const run = async (port, pids, headers, count) => {
    const args = loadTarget(port, bodyFile, headers, pids);
    const bound = 120;
    args.push('-s', '-c', String(count), '-n', String(count), '-d', String(bound), '-g', '30', '-t', '60', '-k', '256');
    return runLoad(LOAD, args, { core: 1, sched: ctx.sched, timeoutMs: (bound + 90) * 1000 });
  };
  const out = { events: STREAM_EVENTS, gap_ms: STREAM_GAP_MS, levels };
  let directRes = null;
  for (const variant of variants) {
    const tls = variant !== 'plain';
    const res = { per_peer: {} };
    const plainUp = await startStreamUpstream(ctx, null, 'plain');
    const up = tls ? await startStreamUpstream(ctx, pki, variant) : plainUp;
    const saved = ctx.upstream;
    ctx.upstream = { port: up.port, tls, ca: pki?.ca, name: UPSTREAM_NAME };
    try {
      // direct: once, over plain HTTP, reused for the TLS variant
      if (!directRes) {
        directRes = {};
        for (const level of levels) {
          const r = await run(plainUp.port, [], ['Authorization: Bearer dummy'], level);
          directRes[level] = summary(r, level, [], null);
          log(`figure s: direct, ${level} streams: ${directRes[level].ok}/${level} ok, stalls ${directRes[level].stalls}, gap p50/p99 ${directRes[level].gap_p50_us}/${directRes[level].gap_p99_us} us`);
          await sleep(1000);
        }
      }
      res.per_peer.direct = directRes;
      for (const { peer, name } of peers) {
        const per = {};
        for (const level of levels) {
          // a fresh process per level: its memory figure is its own
          let inst;
          try {
            inst = await peer.start(ctx);
          } catch (e) {
            per[level] = { failed: `did not start: ${e.message.split('\n')[0]}`, stalls: level, ok: 0, count: level };
            continue;
          }
          try {
            const warm = await run(inst.port, [], peer.headers(ctx, {}), 4);
            if (warm.failed || warm.ok !== 4) log(`figure s: ${name} (${variant}) warm-up: ${warm.error ?? `${warm.ok}/4 ok`}`);
            await sleep(300);
            const idle = rssKb(inst.pids);
            const r = await run(inst.port, inst.pids, peer.headers(ctx, {}), level);
            per[level] = summary(r, level, inst.pids, idle);
            const s = per[level];
            log(`figure s: ${name} (${variant}), ${level} streams: ${s.ok}/${level} ok, stalls ${s.stalls}, gap p99 ${s.gap_p99_us} us, ` +
              `RSS ${idle} -> ${s.rss_max_kb} kB (${s.kb_per_1000_streams} kB per 1,000), CPU/event ${s.cpu_us_per_event?.toFixed(2)} us`);
          } finally {
            await inst.stop().catch(() => {});
          }
          await sleep(1000);
        }
        res.per_peer[name] = per;
      }
    } finally {
      ctx.upstream = saved;
      if (up !== plainUp) await stopProcess(up.child);
      await stopProcess(plainUp.child);
    }
    out[variant] = res;
  }
  return out;
}
