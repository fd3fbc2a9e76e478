// Small SVG line charts, no library: lineChart(el, series, opts) draws one
// line per series ({name, points: [[t_ms, value], ...]}) with a time axis,
// a value axis and a legend. Everything is built with DOM calls (no HTML
// strings), so names from the gateway are never parsed as markup.
'use strict';
const Charts = (() => {
  const NS = 'http://www.w3.org/2000/svg';
  const COLORS = ['#2563eb', '#dc2626', '#16a34a', '#d97706', '#7c3aed', '#0891b2', '#db2777',
    '#65a30d', '#475569', '#ea580c'];
  const el = (name, attrs = {}, text) => {
    const e = document.createElementNS(NS, name);
    for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
    if (text !== undefined) e.textContent = text;
    return e;
  };
  const fmt = (v) => {
    const a = Math.abs(v);
    if (a >= 1e9) return (v / 1e9).toFixed(1) + 'G';
    if (a >= 1e6) return (v / 1e6).toFixed(1) + 'M';
    if (a >= 1e3) return (v / 1e3).toFixed(1) + 'k';
    if (a > 0 && a < 0.01) return v.toExponential(1);
    return Number.isInteger(v) ? String(v) : v.toFixed(2);
  };
  const timeLabel = (t, span) => {
    const d = new Date(t);
    const hm = d.toISOString().slice(11, 16);
    return span > 2 * 86400000 ? d.toISOString().slice(5, 10) + ' ' + hm : hm;
  };
  function lineChart(container, series, opts = {}) {
    container.replaceChildren();
    const W = 520, H = 220, L = 48, R = 10, T = 10, B = 28;
    const svg = el('svg', { viewBox: `0 0 ${W} ${H}`, class: 'chart-svg', role: 'img' });
    const pts = series.flatMap((s) => s.points);
    if (pts.length === 0) {
      svg.appendChild(el('text', { x: W / 2, y: H / 2, 'text-anchor': 'middle', class: 'empty' }, 'no data in this window'));
      container.appendChild(svg);
      return svg;
    }
    let t0 = opts.from ?? Math.min(...pts.map((p) => p[0]));
    let t1 = opts.to ?? Math.max(...pts.map((p) => p[0]));
    if (t1 <= t0) { t0 -= 60000; t1 += 60000; }
    const vmax = Math.max(...pts.map((p) => p[1]), 0) || 1;
    const x = (t) => L + ((t - t0) / (t1 - t0)) * (W - L - R);
    const y = (v) => T + (1 - v / vmax) * (H - T - B);
    for (let i = 0; i <= 4; i++) {
      const v = (vmax * i) / 4;
      svg.appendChild(el('line', { x1: L, x2: W - R, y1: y(v), y2: y(v), class: 'grid' }));
      svg.appendChild(el('text', { x: L - 4, y: y(v) + 4, 'text-anchor': 'end', class: 'tick' }, fmt(v)));
    }
    for (let i = 0; i <= 4; i++) {
      const t = t0 + ((t1 - t0) * i) / 4;
      const anchor = i === 0 ? 'start' : i === 4 ? 'end' : 'middle';
      svg.appendChild(el('text', { x: x(t), y: H - 8, 'text-anchor': anchor, class: 'tick' }, timeLabel(t, t1 - t0)));
    }
    series.forEach((s, i) => {
      const color = COLORS[i % COLORS.length];
      const sorted = [...s.points].sort((a, b) => a[0] - b[0]);
      const d = sorted.map((p, k) => `${k ? 'L' : 'M'}${x(p[0]).toFixed(1)},${y(p[1]).toFixed(1)}`).join('');
      svg.appendChild(el('path', { d, fill: 'none', stroke: color, 'stroke-width': 2, class: 'line' }));
      for (const p of sorted) {
        const c = el('circle', { cx: x(p[0]), cy: y(p[1]), r: 2.5, fill: color });
        c.appendChild(el('title', {}, `${s.name}: ${fmt(p[1])} at ${new Date(p[0]).toISOString()}`));
        svg.appendChild(c);
      }
    });
    container.appendChild(svg);
    const legend = document.createElement('div');
    legend.className = 'legend';
    series.forEach((s, i) => {
      const item = document.createElement('span');
      const sw = document.createElement('i');
      sw.style.background = COLORS[i % COLORS.length];
      item.append(sw, document.createTextNode(s.name));
      legend.appendChild(item);
    });
    container.appendChild(legend);
    return svg;
  }
  return { lineChart, fmt };
})();
