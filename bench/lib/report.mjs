// Renders bench results (the JSON main.mjs writes) as Markdown tables.
// Standalone: node bench/lib/report.mjs bench/out/results-DATE.json > RESULTS.md
import fs from 'node:fs';
import { fileURLToPath } from 'node:url';

const ORDER = ['direct', 'yourouter', 'nginx', 'portkey'];
const YR = 'yourouter';

const num = (x) => typeof x === 'number' && Number.isFinite(x);
const int = (x) => (num(x) ? Math.round(x).toLocaleString('en') : '–');

function us(x) {
  if (!num(x)) return '–';
  const a = Math.abs(x);
  if (a < 10000) return `${Math.round(x).toLocaleString('en')} µs`;
  if (a < 1e6) return `${(x / 1000).toFixed(1)} ms`;
  return `${(x / 1e6).toFixed(2)} s`;
}
const kb = (x) => (num(x) ? `${(x / 1024).toFixed(1)} MB` : '–');
const pct = (x) => (num(x) ? `${(x * 100).toFixed(2)} %` : '–');
const ratio = (x) => (num(x) ? `${x.toFixed(2)}×` : '–');
const sub = (a, b) => (num(a) && num(b) ? a - b : null);
// yourouter's added cost over a peer's (lower is better): only meaningful when
// the peer's own addition is positive.
const costRatio = (yr, peer) => (num(yr) && num(peer) && peer > 0 ? yr / peer : null);
const gainRatio = (yr, peer) => (num(yr) && num(peer) && peer > 0 ? yr / peer : null);
const verdict = (ok) => (ok === null ? '–' : ok ? '**pass**' : '**FAIL**');

function table(head, rows) {
  const out = [`| ${head.join(' | ')} |`, `|${head.map(() => '---').join('|')}|`];
  for (const r of rows) out.push(`| ${r.join(' | ')} |`);
  return out.join('\n');
}

function peersOf(section, results) {
  if (!section) return [];
  return ORDER.filter((p) => section.per_peer?.[p] && results.peers[p]?.available !== false);
}

// Why a stream level of figure (s) says nothing about stalls and gaps: direct
// (the load generator straight to the upstream) did not keep the pace itself.
function rigSaturated(S, dir) {
  if (!dir || !num(dir.gap_p50_us)) return null;
  if (dir.stalls > 0 || dir.gap_p50_us > 1.5 * S.gap_ms * 1000)
    return `rig saturated: direct's median gap ${us(dir.gap_p50_us)} for ${S.gap_ms} ms events`;
  return null;
}

export function headline(res) {
  const F = res.figures;
  const rows = [];
  const a = F.a?.per_peer;
  const big = res.meta.streams_big;
  if (a?.[YR] && a?.direct) {
    for (const k of ['p50', 'p99']) {
      const yr = sub(a[YR][`${k}_us`], a.direct[`${k}_us`]);
      const ng = a.nginx ? sub(a.nginx[`${k}_us`], a.direct[`${k}_us`]) : null;
      const r = costRatio(yr, ng);
      rows.push([`added latency at c=1, ${k}`, us(yr), `nginx ${us(ng)}`, ratio(r), '≤ 1.5× nginx', verdict(r === null ? (num(yr) && num(ng) && yr <= 0 ? true : null) : r <= 1.5)]);
    }
  }
  for (const variant of ['plain', 'tls', 'h2']) {
    const L = F.o?.[variant]?.latency?.per_peer;
    if (!L?.[YR] || !L.nginx || !L.direct) continue;
    for (const k of ['p50', 'p99']) {
      const yr = sub(L[YR][`${k}_us`], L.direct[`${k}_us`]), ng = sub(L.nginx[`${k}_us`], L.direct[`${k}_us`]);
      const r = costRatio(yr, ng);
      rows.push([`added latency at c=1, ${k}, ${S_UPSTREAM[variant]} upstream (o: yr-upstream)`, us(yr), `nginx ${us(ng)}`, ratio(r), '≤ 1.5× nginx', verdict(r === null ? null : r <= 1.5)]);
    }
  }
  for (const variant of ['plain', 'tls', 'h2']) {
    const o = F.o?.[variant];
    if (!o?.per_peer?.[YR]) continue;
    const y = o.per_peer[YR], ng = o.per_peer.nginx, dir = o.per_peer.direct;
    const what = `req/s per core, ${S_UPSTREAM[variant]} upstream (direct ${int(dir?.rps)})`;
    const r = o.yourouter_over_nginx;
    const res2 = !num(r) ? '–' : o.ratio_valid ? verdict(r >= 0.5) : `**invalid**: ${o.ratio_why}`;
    rows.push([what, int(y.rps) + (y.invalid ? ` (invalid: ${y.invalid})` : ''), ng ? `nginx ${int(ng.rps)}${ng.invalid ? ` (invalid: ${ng.invalid})` : ''}` : '', ratio(r), '≥ 0.5× nginx', res2]);
  }
  const b = F.b?.per_peer;
  if (b?.[YR]) {
    const yr = b[YR].max_rps;
    if (b.nginx) {
      const r = gainRatio(yr, b.nginx.max_rps);
      rows.push(['throughput, max req/s (p99 < 5 ms, no errors)', int(yr), `nginx ${int(b.nginx.max_rps)}`, ratio(r), '≥ 0.5× nginx', verdict(r === null ? null : r >= 0.5)]);
    }
    if (b.portkey) {
      // a peer that passed no step is below the lowest rate tried
      const floor = res.meta.config.b.minRate;
      const pk = b.portkey.max_rps;
      const r = pk > 0 ? gainRatio(yr, pk) : num(yr) ? yr / floor : null;
      rows.push(['throughput, max req/s (p99 < 5 ms, no errors)', int(yr), `Portkey ${pk > 0 ? int(pk) : `< ${floor}`}`, pk > 0 ? ratio(r) : `> ${ratio(r)}`, '≥ 30× Portkey', verdict(r === null ? null : r >= 30)]);
    }
    const wy = b[YR].wrk?.rps;
    if (b.nginx?.wrk) rows.push(['wrk peak req/s at 50 connections (info)', int(wy), `nginx ${int(b.nginx.wrk.rps)}`, ratio(gainRatio(wy, b.nginx.wrk.rps)), '', '']);
    if (b.portkey?.wrk) rows.push(['wrk peak req/s at 50 connections (info)', int(wy), `Portkey ${int(b.portkey.wrk.rps)}`, ratio(gainRatio(wy, b.portkey.wrk.rps)), '', '']);
  }
  const d = F.d?.per_peer;
  if (d?.[YR]?.[big]) {
    const y = d[YR][big];
    const dir = d.direct?.[big];
    // the simulator shares its core with the load generator: at this level
    // it may not keep the pace itself, and then stalls and gaps get no verdict
    const sat = rigSaturated({ gap_ms: 20 }, dir);
    const ngd = d.nginx?.[big];
    rows.push([`${int(big)} streams: stalled streams`, `${int(y.stalls)} of ${int(y.streams)}`, `${ngd ? `nginx ${int(ngd.stalls)}, ` : ''}${dir ? `direct ${int(dir.stalls)}` : ''}`, '', '0',
      sat ? `– (${sat})` : verdict(y.stalls === 0 && y.ok === big)]);
    const added = sub(y.gap_p99_us, dir?.gap_p99_us);
    const ng = d.nginx?.[big] ? sub(d.nginx[big].gap_p99_us, dir?.gap_p99_us) : null;
    // gaps only measure streams that flow: a stream held back and then
    // delivered at once has tiny gaps, so the gap target needs no stalls too
    rows.push([`${int(big)} streams: added inter-chunk p99`, us(added) + (y.stalls ? ' (streams stalled: not comparable)' : ''), `nginx ${us(ng)}`, '', '≤ 1 ms',
      sat ? '– (as above)' : verdict(num(added) ? added <= 1000 && y.stalls === 0 : null)]);
    rows.push([`${int(big)} streams: added time to first content p50 / added whole-stream time p50 (info)`,
      `${us(sub(y.ttfc_p50_us, dir?.ttfc_p50_us))} / ${us(sub(y.total_p50_us, dir?.total_p50_us))}`,
      d.nginx?.[big] ? `nginx ${us(sub(d.nginx[big].ttfc_p50_us, dir?.ttfc_p50_us))} / ${us(sub(d.nginx[big].total_p50_us, dir?.total_p50_us))}` : '', '', '', '']);
    const ngr = d.nginx?.[big]?.rss_max_kb;
    rows.push([`${int(big)} streams: peak RSS`, kb(y.rss_max_kb), `nginx ${kb(ngr)}`, '', '≤ 200 MB', verdict(num(y.rss_max_kb) ? y.rss_max_kb <= 200 * 1024 : null)]);
  }
  const mid = res.meta.config.d?.mid;
  const ym = d?.[YR]?.[mid], nm = d?.nginx?.[mid];
  if (num(ym?.cpu_us_per_event)) {
    const r = num(nm?.cpu_us_per_event) && nm.cpu_us_per_event > 0 ? ym.cpu_us_per_event / nm.cpu_us_per_event : null;
    rows.push([`${int(mid)} streams: CPU per streamed event`, `${ym.cpu_us_per_event.toFixed(2)} µs`, nm ? `nginx ${num(nm.cpu_us_per_event) ? nm.cpu_us_per_event.toFixed(2) + ' µs' : '–'}` : '', ratio(r), '≤ 1.5× nginx', verdict(r === null ? null : r <= 1.5)]);
  }
  const one = d?.[YR]?.[1];
  if (one && d.direct?.[1]) {
    const n1 = d.nginx?.[1];
    const ttfb = sub(one.ttfb_p50_us, d.direct[1].ttfb_p50_us);
    const ttfc = sub(one.ttfc_p50_us, d.direct[1].ttfc_p50_us);
    rows.push(['1 stream: added time to first byte / to first content, p50 (info)', `${us(ttfb)} / ${us(ttfc)}`,
      n1 ? `nginx ${us(sub(n1.ttfb_p50_us, d.direct[1].ttfb_p50_us))} / ${us(sub(n1.ttfc_p50_us, d.direct[1].ttfc_p50_us))}` : '', '', '', '']);
  }
  // (s): every level and variant; a level where direct itself is saturated
  // (its median gap well above the upstream's) gets no stall or gap verdict
  for (const variant of ['plain', 'tls', 'h2']) {
    const S = res.figures.s?.[variant]?.per_peer;
    if (!S?.[YR]) continue;
    const up = S_UPSTREAM[variant];
    for (const lv of res.figures.s.levels) {
      const y = S[YR][lv];
      if (!y) continue;
      const ng = S.nginx?.[lv], dir = S.direct?.[lv];
      const sat = rigSaturated(res.figures.s, dir);
      const what = `${int(lv)} streams, ${up} upstream (s)`;
      const added = sub(y.gap_p99_us, dir?.gap_p99_us);
      const ngStalled = ng && (ng.stalls > 0 || ng.ok !== lv);
      rows.push([`${what}: stalled / added inter-chunk p99`, `${int(y.stalls)} of ${int(lv)} / ${us(added)}`,
        `nginx ${ng ? int(ng.stalls) : '–'} / ${us(sub(ng?.gap_p99_us, dir?.gap_p99_us))}; direct ${dir ? int(dir.stalls) : '–'} stalled`,
        '', '0 where nginx has none / ≤ 1 ms',
        sat ? `– (${sat})` : verdict(y.stalls === 0 && y.ok === lv ? (num(added) ? added <= 1000 : null) : ngStalled ? null : false)]);
      rows.push([`${what}: peak RSS / memory per 1,000 streams`, `${kb(y.rss_max_kb)} / ${kb(y.kb_per_1000_streams)}`,
        `nginx ${kb(ng?.rss_max_kb)} / ${kb(ng?.kb_per_1000_streams)}`, '', lv >= 5000 ? '≤ 200 MB / ≤ 20 MB' : '≤ 20 MB per 1,000',
        verdict(num(y.kb_per_1000_streams) ? y.kb_per_1000_streams <= 20 * 1024 && (lv < 5000 || y.rss_max_kb <= 200 * 1024) : null)]);
      const r = num(y.cpu_us_per_event) && num(ng?.cpu_us_per_event) && ng.cpu_us_per_event > 0 ? y.cpu_us_per_event / ng.cpu_us_per_event : null;
      rows.push([`${what}: CPU per streamed event`, num(y.cpu_us_per_event) ? `${y.cpu_us_per_event.toFixed(2)} µs` : '–',
        `nginx ${num(ng?.cpu_us_per_event) ? ng.cpu_us_per_event.toFixed(2) + ' µs' : '–'}`, ratio(r), '≤ 1.5× nginx', verdict(r === null ? null : r <= 1.5)]);
    }
  }
  const p = res.peers[YR];
  if (p?.available) {
    const idle = Math.max(p.idle_rss_kb ?? 0, p.idle_rss_warm_kb ?? 0) || null;
    rows.push(['idle RSS (after start / after warm-up)', `${kb(p.idle_rss_kb)} / ${kb(p.idle_rss_warm_kb)}`, `nginx ${kb(res.peers.nginx?.idle_rss_kb)}`, '', '≤ 16 MB', verdict(num(idle) ? idle <= 16 * 1024 : null)]);
  }
  return rows;
}

function sectionA(res, key, title) {
  const A = res.figures[key];
  if (!A) return '';
  const dir = A.per_peer.direct;
  const yr = A.per_peer[YR];
  const rows = peersOf(A, res).map((p) => {
    const v = A.per_peer[p];
    const a50 = sub(v.p50_us, dir?.p50_us);
    const a99 = sub(v.p99_us, dir?.p99_us);
    const y50 = sub(yr?.p50_us, dir?.p50_us);
    const y99 = sub(yr?.p99_us, dir?.p99_us);
    return [
      p,
      us(v.p50_us),
      us(v.p99_us),
      p === 'direct' ? '–' : us(a50),
      p === 'direct' ? '–' : us(a99),
      p === 'direct' || p === YR ? '–' : `${ratio(costRatio(y50, a50))} / ${ratio(costRatio(y99, a99))}`,
      int(v.errors),
    ];
  });
  return `### ${title}\n\n${A.rounds} interleaved rounds × ${int(A.requests_per_round)} sequential requests per peer; median of the per-round p50s and p99s.\n\n` +
    table(['peer', 'p50', 'p99', 'added p50', 'added p99', 'yourouter added ÷ peer added (p50 / p99)', 'errors'], rows) + '\n';
}

function sectionO(res) {
  const O = res.figures.o;
  if (!O) return '';
  if (O.skipped) return `### (o) Overhead: req/s per core against a fast upstream\n\nSkipped: ${O.skipped}.\n`;
  const parts = [`### (o) Overhead: req/s per core against a fast upstream\n\n\`wrk -t1 -c50\`, ${res.meta.config.o.secs} s per run, ${res.meta.config.o.rounds} interleaved rounds (median of the valid rounds), against \`yr-upstream\` (bench/yr-upstream.c: a fixed 1 KB chat.completion) on core 1 with wrk; the peer alone on core 0. "direct ÷ peer" says whether the upstream was negligible: a ratio between peers counts only when direct is ≥ 3× both (plain) or ≥ 1.3× both (TLS). A run with any non-2xx answer or socket error is invalid and left out.\n`];
  for (const variant of ['plain', 'tls', 'h2']) {
    const o = O[variant];
    if (!o) continue;
    const dir = o.per_peer.direct;
    const rows = ['direct', YR, 'nginx'].filter((p) => o.per_peer[p]).map((p) => {
      const v = o.per_peer[p];
      const bad = (v.rounds || []).filter((r) => !r.valid).map((r) => r.why);
      return [p, v.invalid ? `**invalid** (${v.invalid})` : int(v.rps), int(dir?.rps), p === 'direct' ? '–' : ratio(v.direct_over_peer) + (v.rig_valid ? '' : ` (< ${o.min_ratio}×: upstream not negligible)`),
        us(v.p99_us), `${v.valid_rounds ?? 0} of ${(v.rounds || []).length}${bad.length ? `; invalid: ${bad.join('; ')}` : ''}`];
    });
    parts.push(`\n**${S_UPSTREAM[variant]} upstream**${variant === 'h2' ? ' (yourouter speaks HTTP/2 to it; nginx and wrk HTTP/1.1)' : ''} — yourouter ÷ nginx: ${ratio(o.yourouter_over_nginx)}${o.ratio_valid === false ? ` (**invalid**: ${o.ratio_why})` : ''}\n`);
    parts.push(table(['peer', 'req/s', 'direct req/s', 'direct ÷ peer', 'wrk p99', 'valid rounds'], rows));
    const L = o.latency;
    if (L?.per_peer) {
      const d = L.per_peer.direct;
      const ng = L.per_peer.nginx;
      const lrows = ['direct', YR, 'nginx'].filter((p) => L.per_peer[p]).map((p) => {
        const v = L.per_peer[p];
        const a50 = p === 'direct' ? null : sub(v.p50_us, d?.p50_us), a99 = p === 'direct' ? null : sub(v.p99_us, d?.p99_us);
        const r = p === YR && ng ? `${ratio(costRatio(a50, sub(ng.p50_us, d?.p50_us)))} / ${ratio(costRatio(a99, sub(ng.p99_us, d?.p99_us)))}` : '–';
        return [p + (v.from ? ` (over ${v.from} HTTP)` : ''), us(v.p50_us), us(v.p99_us), us(a50), us(a99), r, `${v.rounds} of ${L.rounds}`, int(v.errors)];
      });
      parts.push(`\nc=1 through the same upstream: ${L.rounds} interleaved rounds × ${int(L.n)} sequential requests (yr-load), median of the rounds${variant !== 'plain' ? '; direct is the plain variant\'s (yr-load has no TLS client), so the added figures include the proxy\'s TLS' : ''}.\n`);
      parts.push(table(['peer', 'p50', 'p99', 'added p50', 'added p99', 'yourouter ÷ nginx added (p50 / p99)', 'rounds', 'errors'], lrows));
    }
    if (o.cpu?.[YR]) {
      const y = o.cpu[YR].cpu_us_per_req, n = o.cpu.nginx?.cpu_us_per_req;
      parts.push(`\nCPU per request at 500 req/s for 6 s (figure (e)'s load, this upstream): yourouter ${num(y) ? y.toFixed(1) + ' µs' : '–'}, nginx ${num(n) ? n.toFixed(1) + ' µs' : '–'} (${ratio(gainRatio(y, n))}).\n`);
    }
  }
  return parts.join('\n') + '\n';
}

const S_UPSTREAM = { plain: 'plain-HTTP', tls: 'TLS', h2: 'TLS, h2-capable' };

function sectionS(res) {
  const S = res.figures.s;
  if (!S) return '';
  const title = '### (s) Streams against a fast upstream, plain HTTP and TLS';
  if (S.skipped) return `${title}\n\nSkipped: ${S.skipped}.\n`;
  const parts = [`${title}\n\nThe upstream is \`yr-upstream --stream ${S.events}:${S.gap_ms}\` (bench/yr-upstream.c: the role chunk, ${S.events} content chunks ${S.gap_ms} ms apart, the finish chunk and [DONE], every event one memcpy and one write) on core 1 with yr-load; the peer alone on core 0, a fresh process for every row, so "memory per 1,000" is its peak RSS during the run minus its RSS just before it. N streams = N connections opened together (at most 256 connects in flight). Direct is over plain HTTP in both tables (yr-load has no TLS client): with it the added figures for TLS include the proxy's crypto, not the upstream's. A stream is stalled when a gap exceeds 1 s or it never delivered [DONE].\n`];
  for (const variant of ['plain', 'tls', 'h2']) {
    const v = S[variant];
    if (!v) continue;
    const rows = [];
    for (const level of S.levels) {
      const dir = v.per_peer.direct?.[level];
      for (const p of ['direct', YR, 'nginx']) {
        const x = v.per_peer[p]?.[level];
        if (!x) continue;
        if (x.failed && !x.ok) {
          rows.push([int(level), p, `**failed**: ${x.failed}`, '', '', '', '', '', '', '', '', '', '']);
          continue;
        }
        rows.push([int(level), p, `${int(x.ok)} / ${int(level)}`, int(x.stalls), int(x.max_inflight), us(x.ttfc_p50_us),
          us(x.gap_p50_us), us(x.gap_p99_us), p === 'direct' ? '–' : us(sub(x.gap_p99_us, dir?.gap_p99_us)), us(x.gap_max_us),
          p === 'direct' ? '–' : `${kb(x.rss_idle_kb)} → ${kb(x.rss_max_kb)}`, p === 'direct' ? '–' : kb(x.kb_per_1000_streams),
          p === 'direct' || !num(x.cpu_us_per_event) ? '–' : `${x.cpu_us_per_event.toFixed(2)} µs`]);
      }
    }
    parts.push(`\n**${S_UPSTREAM[variant]} upstream**${variant === 'h2' ? ' (yourouter carries the streams over HTTP/2, 100 per connection; nginx\'s proxy_pass speaks HTTP/1.1 to upstreams, one connection per stream)' : ''}\n`);
    for (const level of S.levels) {
      const sat = rigSaturated(S, v.per_peer.direct?.[level]);
      if (sat) parts.push(`At ${int(level)} streams the ${sat}: every figure at that level is measured against an overloaded rig (${int(level)} × ${Math.round(1000 / S.gap_ms)} events/s for the load generator and the upstream on one core).\n`);
    }
    parts.push(table(['streams', 'peer', 'ok / streams', 'stalled', 'most in flight', 'first content p50', 'gap p50', 'gap p99', 'added gap p99', 'gap max', 'RSS before → peak', 'memory per 1,000 streams', 'CPU per event'], rows));
  }
  return parts.join('\n') + '\n';
}

function sectionB(res) {
  const B = res.figures.b;
  if (!B) return '';
  const yr = B.per_peer[YR];
  const dir = B.per_peer.direct;
  const rows = peersOf(B, res).map((p) => {
    const v = B.per_peer[p];
    return [
      p,
      v.max_rps > 0 ? int(v.max_rps) : `< ${res.meta.config.b.minRate} (no step passed)`,
      v.first_fail_rps ? int(v.first_fail_rps) : '–',
      p === 'direct' ? '–' : `${int(sub(v.max_rps, dir?.max_rps))}`,
      p === YR || p === 'direct' ? '–' : ratio(gainRatio(yr?.max_rps, v.max_rps)),
      int(v.wrk?.rps),
      us(v.wrk?.p99_us),
      v.wrk ? int((v.wrk.non2xx || 0) + (v.wrk.socket_errors || 0)) : '–',
      p === YR || p === 'direct' ? '–' : ratio(gainRatio(yr?.wrk?.rps, v.wrk?.rps)),
    ];
  });
  return `### (b) Throughput, 0 ms upstream\n\nOpen-loop rate search (doubling, then bisecting; ${res.meta.config.b.stepS} s per step, latency from the scheduled send time): the highest rate with every request answered 200 and p99 < ${us(res.meta.p99_limit_us)}. A step that failed only on p99 is retried once. Then \`wrk -t1 -c50\` for ${res.meta.config.b.wrkS} s (closed loop).\n\n` +
    table(['peer', 'max req/s (p99 < 5 ms)', 'first failing rate', 'minus direct', 'yourouter ÷ peer', 'wrk req/s (c=50)', 'wrk p99', 'wrk errors', 'yourouter ÷ peer (wrk)'], rows) + '\n';
}

function sectionC(res) {
  const C = res.figures.c;
  if (!C) return '';
  const dir = C.per_peer.direct;
  const rows = [];
  for (const rate of C.rates) {
    for (const p of peersOf(C, res)) {
      const v = C.per_peer[p][rate];
      if (!v) continue;
      const added = sub(v.p99_us, dir?.[rate]?.p99_us);
      const yAdded = sub(C.per_peer[YR]?.[rate]?.p99_us, dir?.[rate]?.p99_us);
      rows.push([
        int(rate),
        p,
        pct(v.success),
        int(v.errors),
        us(v.p50_us),
        us(v.p99_us),
        p === 'direct' ? '–' : us(added),
        p === 'direct' || p === YR ? '–' : ratio(costRatio(yAdded, added)),
        int(v.max_conns),
        p === 'direct' ? '–' : `${kb(v.rss_kb)} / ${kb(v.rss_after_kb)}`,
      ]);
    }
  }
  return `### (c) 1 s upstream at fixed rates\n\nOpen loop for ${C.secs} s at each rate; the simulator waits 1 s before answering. Success = 200 answers ÷ scheduled requests.\n\n` +
    table(['req/s', 'peer', 'success', 'errors', 'p50', 'p99', 'added p99', 'yourouter added ÷ peer added', 'client connections', 'peer RSS max / 1.5 s after'], rows) + '\n';
}

function sectionD(res) {
  const D = res.figures.d;
  if (!D) return '';
  const rows = [];
  const dir = D.per_peer.direct;
  for (const level of D.levels) {
    for (const p of peersOf(D, res)) {
      const v = D.per_peer[p][level];
      if (!v) continue;
      const d0 = dir?.[level];
      rows.push([
        int(level),
        p,
        `${int(v.ok)} / ${int(v.streams)}`,
        int(v.stalls),
        int(v.max_inflight),
        us(v.ttfb_p50_us),
        p === 'direct' ? '–' : us(sub(v.ttfb_p50_us, d0?.ttfb_p50_us)),
        p === 'direct' ? '–' : us(sub(v.ttfb_p99_us, d0?.ttfb_p99_us)),
        p === 'direct' ? '–' : us(sub(v.ttfc_p50_us, d0?.ttfc_p50_us)),
        p === 'direct' ? '–' : us(sub(v.ttfc_p99_us, d0?.ttfc_p99_us)),
        us(v.gap_p50_us),
        us(v.gap_p99_us),
        p === 'direct' ? '–' : us(sub(v.gap_p99_us, d0?.gap_p99_us)),
        us(v.gap_max_us),
        kb(v.rss_max_kb),
      ]);
    }
  }
  const brows = peersOf(D, res)
    .filter((p) => D.per_peer[p].burst)
    .map((p) => {
      const v = D.per_peer[p].burst;
      return [p, `${int(v.ok)} / ${int(v.streams)}`, int(v.stalls), us(v.ttfb_p99_us), us(v.total_p50_us), us(v.total_p99_us), p === 'direct' ? '–' : us(sub(v.total_p99_us, dir?.burst?.total_p99_us)), us(v.gap_p99_us), kb(v.rss_max_kb)];
    });
  return `### (d) Streaming\n\nEach stream: 64 content chunks 20 ms apart (67 SSE events with the role, finish and [DONE] events), ~1.3 s. N streams = N connections opened together (at most 256 connects in flight), one stream each. TTFB = the first body byte (OpenAI's opening role chunk, which has no content); first content = the first chunk with non-empty \`content\`; gap = time between successive reads that carried SSE data, over all streams. A stream is stalled when a gap exceeds 1 s or it never delivered [DONE].\n\n` +
    table(['streams', 'peer', 'ok / streams', 'stalled', 'most in flight', 'TTFB p50', 'added TTFB p50', 'added TTFB p99', 'added first content p50', 'added first content p99', 'gap p50', 'gap p99', 'added gap p99', 'gap max', 'peer RSS max'], rows) +
    `\n\nBurst: ${int(D.burst.c)} concurrent streams (${int(D.burst.n)} in all) of 1,000 content chunks sent with no delay; what matters is the whole stream's time.\n\n` +
    table(['peer', 'ok / streams', 'stalled', 'TTFB p99', 'stream time p50', 'stream time p99', 'added stream time p99', 'gap p99', 'peer RSS max'], brows) + '\n';
}

function sectionE(res) {
  const E = res.figures.e;
  const D = res.figures.d;
  const big = res.meta.streams_big;
  const names = ORDER.filter((p) => p !== 'direct' && res.peers[p]?.available);
  if (!names.length) return '';
  const yr = E?.per_peer?.[YR]?.cpu_us_per_req;
  const rows = names.map((p) => [
    p,
    kb(res.peers[p].idle_rss_kb),
    kb(res.peers[p].idle_rss_warm_kb),
    kb(D?.per_peer?.[p]?.[big]?.rss_max_kb),
    num(E?.per_peer?.[p]?.cpu_us_per_req) ? `${E.per_peer[p].cpu_us_per_req.toFixed(1)} µs` : '–',
    p === YR ? '–' : ratio(costRatio(yr, E?.per_peer?.[p]?.cpu_us_per_req)),
  ]);
  return `### (e) Memory and CPU\n\nRSS = VmRSS summed over the peer's processes (nginx: master + worker), sampled every 20 ms during a run (max). CPU = utime + stime of the peer's processes over a ${E ? `${E.secs} s open-loop run at ${int(E.rate)} req/s` : 'fixed run'} ÷ requests (0 ms upstream, ~1 KB answers).\n\n` +
    table(['peer', 'idle RSS after start', 'idle RSS after warm-up', `RSS at ${int(big)} streams`, 'CPU per request', 'yourouter ÷ peer (CPU)'], rows) + '\n';
}

function sectionF(res) {
  const Fg = res.figures.f;
  if (!Fg) return '';
  const dir = Fg.per_peer.direct;
  const yr = Fg.per_peer[YR];
  const rows = peersOf(Fg, res).map((p) => {
    const v = Fg.per_peer[p];
    const a50 = sub(v.c1.p50_us, dir?.c1.p50_us);
    return [
      p,
      us(v.c1.p50_us),
      us(v.c1.p99_us),
      p === 'direct' ? '–' : us(a50),
      p === 'direct' ? '–' : us(sub(v.c1.p99_us, dir?.c1.p99_us)),
      p === 'direct' || p === YR ? '–' : ratio(costRatio(sub(yr?.c1.p50_us, dir?.c1.p50_us), a50)),
      int(v.c50.rps),
      us(v.c50.p99_us),
      p === 'direct' || p === YR ? '–' : ratio(gainRatio(yr?.c50.rps, v.c50.rps)),
      int((v.c1.errors || 0) + (v.c50.errors || 0)),
    ];
  });
  return `### (f) 100 KB request bodies, 0 ms upstream\n\n` +
    table(['peer', 'c=1 p50', 'c=1 p99', 'added p50', 'added p99', 'yourouter added ÷ peer added (p50)', 'c=50 req/s', 'c=50 p99', 'yourouter ÷ peer (req/s)', 'errors'], rows) + '\n';
}

export function renderMarkdown(res) {
  const m = res.meta;
  const out = [];
  out.push(`# yourouter benchmark results${m.quick ? ' (quick smoke run)' : ''}\n`);
  out.push(`Generated by \`bench/run${m.quick ? ' --quick' : ''}\` on ${m.date.slice(0, 10)} (${m.date}); the run took ${Math.round((m.duration_s || 0) / 60)} min. Raw numbers: \`bench/out/results-*.json\` (not committed). How to read this: \`bench/README.md\`.\n`);
  out.push('Counted costs (system calls, allocations, RSS per 1,000 streams: `bench/profile`) and the engine decision: `docs/engine.md`.\n');
  out.push('## Machine\n');
  out.push(table(['', ''], [
    ['CPUs (nproc)', String(m.machine.nproc)],
    ['model name', m.machine.cpu_model],
    ['kernel', m.machine.kernel],
    ['memory', `${m.machine.mem_gb} GB`],
    ['pinning', `peer under test on core 0; simulator and load generator on core 1; scheduling ${m.sched === 'rr' ? 'SCHED_RR priority 1 (chrt -r 1)' : m.sched}`],
    ['descriptor hard limit per process', int(m.fd_hard_limit)],
    ['load average at start / end', `${m.loadavg_start} / ${m.loadavg_end ?? '?'}`],
    ['other busy processes at start', m.busy_start?.length ? m.busy_start.join(', ') : 'none'],
  ]));
  out.push('\n## Versions\n');
  out.push(table(['component', 'version'], Object.entries(m.versions).map(([k, v]) => [k, `\`${v}\``])));
  out.push('\n## Peers\n');
  out.push(table(['peer', 'how it runs', 'status'], ORDER.filter((p) => res.peers[p]).map((p) => {
    const v = res.peers[p];
    return [p, v.describe ?? '', v.available ? (v.crashes ? `ran (crashed ${v.crashes}× and was restarted)` : 'ran') : `**skipped**: ${v.reason}`];
  })));
  out.push('\n## Headline: yourouter against its targets\n');
  out.push('"added" = the peer\'s figure minus the direct (no proxy) figure measured in the same run; ratios are yourouter ÷ peer.\n');
  out.push(table(['figure', 'yourouter', 'peer', 'ratio', 'target', 'result'], headline(res)));
  const notes = [...res.notes];
  const B = res.figures.b?.per_peer;
  const ceiling = B?.direct?.max_rps;
  if (ceiling) {
    const capped = ORDER.filter((p) => p !== 'direct' && B[p]?.max_rps >= 0.9 * ceiling);
    if (capped.length)
      notes.push(`(b): ${capped.join(' and ')} reached ≥ 90 % of direct's own limit (${int(ceiling)} req/s, the simulator and the load generator sharing core 1), so the open-loop ratio between them is bounded by the rig, not by the proxies; wrk's closed-loop peak separates them.`);
  }
  if (notes.length) {
    out.push('\n## Notes from this run\n');
    for (const n of notes) out.push(`- ${n}`);
  }
  out.push('\n## Figures\n');
  out.push(sectionO(res));
  out.push(sectionA(res, 'a', '(a) Added latency at concurrency 1, 0 ms upstream'));
  out.push(sectionA(res, 'a20', '(a′) Added latency at concurrency 1, 20 ms upstream'));
  out.push(sectionB(res));
  out.push(sectionC(res));
  out.push(sectionD(res));
  out.push(sectionS(res));
  out.push(sectionE(res));
  out.push(sectionF(res));
  return out.filter(Boolean).join('\n') + '\n';
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const file = process.argv[2];
  if (!file) {
    console.error('usage: node bench/lib/report.mjs results.json');
    process.exit(2);
  }
  process.stdout.write(renderMarkdown(JSON.parse(fs.readFileSync(file, 'utf8'))));
}
