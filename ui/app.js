// The admin console. Talks to the admin API with the session cookie and the
// session's CSRF token (x-csrf-token, from GET /ui/session); builds every
// element with DOM calls and textContent, never HTML strings.
'use strict';
(() => {
  let csrf = '';
  const $ = (id) => document.getElementById(id);
  const h = (tag, attrs = {}, ...kids) => {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) {
      if (k === 'class') e.className = v;
      else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
      else e.setAttribute(k, v);
    }
    for (const k of kids) e.append(k instanceof Node ? k : document.createTextNode(k == null ? '' : String(k)));
    return e;
  };
  const status = (msg, bad) => { $('status').textContent = msg; $('status').className = bad ? 'error' : 'muted'; };
  const toLogin = () => location.replace('/ui/login');

  async function api(method, path, body) {
    const r = await fetch(path, {
      method,
      credentials: 'same-origin',
      headers: { 'x-csrf-token': csrf, ...(body ? { 'content-type': 'application/json' } : {}) },
      body: body ? JSON.stringify(body) : undefined,
    });
    if (r.status === 401) { toLogin(); throw new Error('session expired'); }
    const json = await r.json().catch(() => null);
    if (!r.ok) throw new Error((json && json.error && json.error.message) || `HTTP ${r.status}`);
    return json;
  }

  const windowSel = () => { const [since, bucket] = $('window').value.split(','); return { since, bucket }; };
  const usd = (v) => (v == null ? '–' : '$' + (v < 1 ? v.toFixed(4) : v.toFixed(2)));
  const when = (ms) => new Date(ms).toISOString().replace('T', ' ').slice(0, 19);
  const card = (label, value) => h('div', { class: 'card' }, h('b', {}, value), h('span', {}, label));
  const table = (heads, rows) => h('table', {}, h('thead', {}, h('tr', {}, ...heads.map((x) =>
    h('th', { class: x.num ? 'num' : '' }, x.label ?? x)))), h('tbody', {}, ...rows));
  const td = (v, num) => h('td', { class: num ? 'num' : '' }, v);
  const pill = (text, cls) => h('span', { class: 'pill ' + (cls || text) }, text);

  // Points of one field per group: [{name, points: [[t, v]]}].
  function byGroup(data, groups, field) {
    return groups.map((g) => ({ name: g || '(none)', points: data.filter((d) => d.group === g).map((d) => [d.t, typeof field === 'function' ? field(d) : d[field]]) }));
  }
  function sumByBucket(data, fields) {
    const m = new Map();
    for (const d of data) {
      const e = m.get(d.t) || {};
      for (const f of fields) e[f] = (e[f] || 0) + d[f];
      m.set(d.t, e);
    }
    return fields.map((f) => ({ name: f.replace('_tokens', ''), points: [...m.entries()].map(([t, e]) => [t, e[f]]) }));
  }
  const range = (res) => ({ from: res.since_ms, to: Date.now() });

  async function loadUsage() {
    const { since, bucket } = windowSel();
    const by = $('usage-by').value;
    const res = await api('GET', `/admin/stats/series?since=${since}&bucket=${bucket}&by=${by}`);
    const d = res.data;
    const tot = (f) => d.reduce((a, x) => a + x[f], 0);
    $('usage-cards').replaceChildren(card('requests', tot('requests')), card('attempts', tot('attempts')),
      card('prompt tokens', Charts.fmt(tot('prompt_tokens'))), card('completion tokens', Charts.fmt(tot('completion_tokens'))),
      card('cost', usd(tot('cost_usd'))), card('failed attempts', tot('errors')));
    Charts.lineChart($('chart-requests'), byGroup(d, res.groups, 'requests'), range(res));
    Charts.lineChart($('chart-tokens'), sumByBucket(d, ['prompt_tokens', 'completion_tokens', 'cached_tokens', 'cache_write_tokens', 'reasoning_tokens']), range(res));
    Charts.lineChart($('chart-cost'), byGroup(d, res.groups, 'cost_usd'), range(res));
    const rows = res.groups.map((g) => {
      const s = d.filter((x) => x.group === g);
      const t = (f) => s.reduce((a, x) => a + x[f], 0);
      return h('tr', {}, td(g || '(none)'), td(t('requests'), 1), td(t('attempts'), 1), td(Charts.fmt(t('prompt_tokens')), 1),
        td(Charts.fmt(t('completion_tokens')), 1), td(usd(t('cost_usd')), 1), td(t('errors'), 1));
    });
    $('usage-table').replaceChildren(table([by, { label: 'requests', num: 1 }, { label: 'attempts', num: 1 },
      { label: 'prompt', num: 1 }, { label: 'completion', num: 1 }, { label: 'cost', num: 1 }, { label: 'errors', num: 1 }], rows));
  }

  async function loadLatency() {
    const { since, bucket } = windowSel();
    const [lat, cls] = await Promise.all([
      api('GET', `/admin/stats/latency?since=${since}&bucket=${bucket}`),
      api('GET', `/admin/stats/series?since=${since}&bucket=${bucket}&by=class`),
    ]);
    const o = lat.overall;
    const ms = (v) => (v == null ? '–' : v + ' ms');
    $('latency-cards').replaceChildren(card('successful attempts', o.count), card('p50 latency', ms(o.latency_ms.p50)),
      card('p99 latency', ms(o.latency_ms.p99)), card('p50 TTFB', ms(o.ttfb_ms.p50)), card('p99 TTFB', ms(o.ttfb_ms.p99)));
    const pct = (which) => ['p50', 'p90', 'p99'].map((p) => ({ name: p, points: lat.data.filter((x) => x[which][p] != null).map((x) => [x.t, x[which][p]]) }));
    Charts.lineChart($('chart-latency'), pct('latency_ms'), range(lat));
    Charts.lineChart($('chart-ttfb'), pct('ttfb_ms'), range(lat));
    const all = new Map();
    for (const x of cls.data) all.set(x.t, (all.get(x.t) || 0) + x.attempts);
    const bad = cls.groups.filter((g) => g !== 'ok');
    Charts.lineChart($('chart-errors'), byGroup(cls.data.filter((x) => x.group !== 'ok'), bad, (x) => (100 * x.attempts) / all.get(x.t)), range(cls));
    const rows = cls.groups.map((g) => {
      const n = cls.data.filter((x) => x.group === g).reduce((a, x) => a + x.attempts, 0);
      return h('tr', {}, td(pill(g, g === 'ok' ? 'ok' : 'bad')), td(n, 1));
    });
    $('errors-table').replaceChildren(table(['outcome', { label: 'attempts', num: 1 }], rows));
  }

  async function loadRoutes() {
    const res = await api('GET', '/admin/routes');
    const n = (v) => (v < 0 ? '–' : v);
    const rows = res.data.map((r) => h('tr', {}, td(r.model), td(r.provider), td(r.upstream_model), td(pill(r.circuit)),
      td(r.available_in_ms > 0 ? (r.available_in_ms / 1000).toFixed(1) + ' s' : '–', 1), td(r.consecutive_failures, 1),
      td(r.ejections, 1), td(r.inflight, 1), td(r.ewma_ttfb_ms < 0 ? '–' : r.ewma_ttfb_ms.toFixed(0) + ' ms', 1),
      td(n(r.remaining_requests), 1), td(n(r.remaining_tokens), 1), td(r.low_headroom ? pill('low', 'bad') : '')));
    $('routes-table').replaceChildren(table(['model', 'provider', 'upstream model', 'circuit', { label: 'cooldown left', num: 1 },
      { label: 'recent failures', num: 1 }, { label: 'ejections', num: 1 }, { label: 'in flight', num: 1 }, { label: 'TTFB (ewma)', num: 1 },
      { label: 'requests left', num: 1 }, { label: 'tokens left', num: 1 }, 'headroom'], rows));
  }

  // Keys: a page at a time (id order), with spend against each budget.
  let keysAfter = 0;
  function budgetCell(budget, spent) {
    if (budget == null) return td(usd(spent), 1);
    const f = Math.min(1, spent / budget);
    const bar = h('div', { class: 'bar' + (spent >= budget ? ' over' : '') }, h('i'));
    bar.firstChild.style.width = (100 * f).toFixed(0) + '%';
    return h('td', { class: 'num' }, `${usd(spent)} / ${usd(budget)}`, bar);
  }
  function keyRow(k) {
    const act = h('td', {});
    if (k.revoked_at == null) {
      act.append(h('button', { type: 'button', class: 'secondary', 'data-act': 'edit', onclick: () => editKey(k) }, 'Edit'), ' ',
        h('button', { type: 'button', class: 'secondary', 'data-act': 'rotate', onclick: () => rotateKey(k) }, 'Rotate'), ' ',
        h('button', { type: 'button', class: 'danger', 'data-act': 'revoke', onclick: () => revokeKey(k) }, 'Revoke'));
    }
    const lim = [k.rpm && `${k.rpm} rpm`, k.tpm && `${k.tpm} tpm`, k.max_concurrency && `${k.max_concurrency} conc.`].filter(Boolean).join(', ') || '–';
    return h('tr', { 'data-key': k.name }, td(k.id, 1), td(k.name), td(h('code', {}, k.prefix + '…')), td(when(k.created_at * 1000)),
      td(k.revoked_at == null ? pill('active', 'ok') : pill('revoked', 'bad')), td(lim), td((k.models || []).join(', ') || 'all'),
      budgetCell(k.budgets.daily, k.spent_usd.daily), budgetCell(k.budgets.monthly, k.spent_usd.monthly),
      budgetCell(k.budgets.total, k.spent_usd.total), act);
  }
  async function loadKeys(more) {
    if (!more) keysAfter = 0;
    const q = encodeURIComponent($('key-search').value.trim());
    const res = await api('GET', `/admin/keys?limit=100&after=${keysAfter}&revoked=1${q ? '&q=' + q : ''}`);
    let tbody = $('keys-table').querySelector('tbody');
    if (!more || !tbody) {
      $('keys-table').replaceChildren(table([{ label: 'id', num: 1 }, 'name', 'prefix', 'created (UTC)', 'status', 'limits', 'models',
        { label: 'today', num: 1 }, { label: 'this month', num: 1 }, { label: 'total', num: 1 }, ''], []));
      tbody = $('keys-table').querySelector('tbody');
    }
    for (const k of res.data) tbody.appendChild(keyRow(k));
    keysAfter = res.next ?? keysAfter;
    $('keys-more').hidden = res.next == null;
  }
  function showSecret(name, secret) {
    $('secret-name').textContent = name;
    $('secret-value').textContent = secret;
    $('secret-box').hidden = false;
  }
  async function createKey(ev) {
    ev.preventDefault();
    const num = (id) => ($(id).value === '' ? undefined : Number($(id).value));
    const body = { name: $('new-name').value.trim(), rpm: num('new-rpm'), tpm: num('new-tpm') };
    if ($('new-monthly').value !== '') body.budgets = { monthly: num('new-monthly') };
    if ($('new-models').value.trim()) body.models = $('new-models').value.trim();
    const res = await api('POST', '/admin/keys', body);
    $('key-create').reset();
    showSecret(res.api_key.name, res.key);
    status(`created key ${res.api_key.name}`);
    await loadKeys();
  }
  function editKey(k) {
    const box = $('key-edit');
    const field = (label, id, value, type = 'number') => h('label', {}, label + ' ', h('input', { id, type, value: value ?? '', min: '0', step: 'any' }));
    box.replaceChildren(h('b', {}, `Edit ${k.name}`),
      field('RPM', 'ed-rpm', k.rpm), field('TPM', 'ed-tpm', k.tpm), field('concurrency', 'ed-conc', k.max_concurrency),
      field('daily $', 'ed-daily', k.budgets.daily), field('monthly $', 'ed-monthly', k.budgets.monthly),
      field('total $', 'ed-total', k.budgets.total), field('models', 'ed-models', (k.models || []).join(','), 'text'),
      h('button', { type: 'button', id: 'ed-save', onclick: () => saveKey(k) }, 'Save'),
      h('button', { type: 'button', class: 'secondary', onclick: () => { box.hidden = true; } }, 'Cancel'));
    box.hidden = false;
  }
  async function saveKey(k) {
    const v = (id) => ($(id).value === '' ? null : Number($(id).value));
    const models = $('ed-models').value.trim();
    await api('PATCH', `/admin/keys/${k.id}`, { rpm: v('ed-rpm'), tpm: v('ed-tpm'), max_concurrency: v('ed-conc'),
      budgets: { daily: v('ed-daily'), monthly: v('ed-monthly'), total: v('ed-total') }, models: models || null });
    $('key-edit').hidden = true;
    status(`updated key ${k.name}`);
    await loadKeys();
  }
  async function rotateKey(k) {
    if (!confirm(`Rotate ${k.name}? The old secret keeps working for an hour.`)) return;
    const res = await api('POST', `/admin/keys/${k.id}/rotate`, { grace_seconds: 3600 });
    showSecret(k.name, res.key);
    await loadKeys();
  }
  async function revokeKey(k) {
    if (!confirm(`Revoke ${k.name}? Clients using it are refused at once.`)) return;
    await api('DELETE', `/admin/keys/${k.id}`);
    status(`revoked key ${k.name}`);
    await loadKeys();
  }

  // Recent requests, newest first, a page at a time (keyset cursor).
  let reqNext = null;
  async function loadRequests(more) {
    const params = new URLSearchParams({ limit: '50' });
    if ($('req-errors').checked) params.set('errors', '1');
    if ($('req-key').value.trim()) params.set('key', $('req-key').value.trim());
    if (more && reqNext) params.set('before', reqNext);
    const res = await api('GET', `/admin/requests?${params}`);
    let tbody = $('requests-table').querySelector('tbody');
    if (!more || !tbody) {
      $('requests-table').replaceChildren(table(['time (UTC)', 'request id', 'key', 'model', 'status', 'attempt: provider → outcome',
        { label: 'tokens in/out', num: 1 }, { label: 'cost', num: 1 }, { label: 'latency', num: 1 }, { label: 'TTFB', num: 1 }], []));
      tbody = $('requests-table').querySelector('tbody');
    }
    for (const r of res.data) {
      const last = r.attempts[r.attempts.length - 1] || {};
      tbody.appendChild(h('tr', { class: 'request' }, td(when(r.created_ms)), td(h('code', {}, r.request_id)), td(r.key), td(r.model),
        td(pill(String(r.status), r.status < 400 ? 'ok' : 'bad')), td(`${r.attempts.length} attempt(s)`),
        td(`${r.attempts.reduce((a, x) => a + x.prompt_tokens, 0)} / ${r.attempts.reduce((a, x) => a + x.completion_tokens, 0)}`, 1),
        td(usd(r.attempts.reduce((a, x) => a + (x.cost_usd || 0), 0)), 1), td(last.latency_ms == null ? '–' : last.latency_ms + ' ms', 1),
        td(last.ttfb_ms == null ? '–' : last.ttfb_ms + ' ms', 1)));
      for (const a of r.attempts) {
        tbody.appendChild(h('tr', { class: 'attempt' }, td(''), td(''), td(''), td(a.upstream_model), td(a.upstream_status || '–'),
          td(`#${a.attempt}: ${a.provider || '–'} → ${a.outcome}${a.usage_estimated ? ' (estimated)' : ''}`),
          td(`${a.prompt_tokens} / ${a.completion_tokens}`, 1), td(usd(a.cost_usd), 1),
          td(a.latency_ms == null ? '–' : a.latency_ms + ' ms', 1), td(a.ttfb_ms == null ? '–' : a.ttfb_ms + ' ms', 1)));
      }
    }
    reqNext = res.next;
    $('req-more').hidden = res.next == null;
  }

  const pages = { usage: loadUsage, latency: loadLatency, routes: loadRoutes, keys: () => loadKeys(false), requests: () => loadRequests(false) };
  const current = () => (location.hash.slice(1) in pages ? location.hash.slice(1) : 'usage');
  async function show() {
    const name = current();
    for (const s of document.querySelectorAll('.page')) s.hidden = s.id !== 'page-' + name;
    for (const a of document.querySelectorAll('#nav a')) a.classList.toggle('active', a.dataset.page === name);
    status('loading…');
    const t = performance.now();
    try {
      await pages[name]();
      status(`loaded in ${Math.round(performance.now() - t)} ms`);
      document.body.dataset.loaded = name;
    } catch (e) {
      status(e.message, true);
    }
  }
  const guard = (fn) => async (...a) => { try { await fn(...a); } catch (e) { status(e.message, true); } };

  async function start() {
    const r = await fetch('/ui/session', { credentials: 'same-origin' });
    if (!r.ok) { toLogin(); return; }
    csrf = (await r.json()).csrf;
    window.addEventListener('hashchange', show);
    $('refresh').addEventListener('click', show);
    $('window').addEventListener('change', show);
    $('usage-by').addEventListener('change', show);
    $('req-errors').addEventListener('change', show);
    $('req-key').addEventListener('change', show);
    $('key-search').addEventListener('input', guard(() => loadKeys(false)));
    $('key-create').addEventListener('submit', guard(createKey));
    $('secret-done').addEventListener('click', () => { $('secret-box').hidden = true; $('secret-value').textContent = ''; });
    $('keys-more').addEventListener('click', guard(() => loadKeys(true)));
    $('req-more').addEventListener('click', guard(() => loadRequests(true)));
    $('routes-reset').addEventListener('click', guard(async () => { await api('POST', '/admin/routes/reset'); await loadRoutes(); }));
    $('logout').addEventListener('click', guard(async () => { await api('POST', '/ui/logout'); toLogin(); }));
    await show();
  }
  start();
})();
