// Observability (issue 14): /metrics with the OpenTelemetry GenAI names
// parsed and checked against what the simulator returned; OTLP/HTTP JSON
// spans received by a collector in the test; a collector that never answers
// does not slow requests; the JSON access log (stdout, a file, SIGUSR1
// reopen after a rename); x-yourouter-overhead-ms.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { once } from 'node:events';
import { readFileSync, renameSync, existsSync, watch } from 'node:fs';
import { join } from 'node:path';
import { startSim, startGateway, config, chat, sseData, MASTER_KEY } from './lib.mjs';

// ---- a small Prometheus text parser ----------------------------------------

function parseLabels(s) {
  const labels = {};
  const re = /\s*([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"\s*,?/y;
  let m;
  while (re.lastIndex < s.length && (m = re.exec(s)) !== null)
    labels[m[1]] = m[2].replace(/\\n/g, '\n').replace(/\\(.)/g, '$1');
  assert.equal(re.lastIndex, s.length, `unparsable labels {${s}}`);
  return labels;
}

export function parseProm(text) {
  const types = {};
  const samples = [];
  for (const line of text.split('\n')) {
    if (line === '') continue;
    let m;
    if ((m = line.match(/^# TYPE (\S+) (counter|gauge|histogram|summary|untyped)$/))) {
      assert.ok(!(m[1] in types), `TYPE of ${m[1]} given twice`);
      types[m[1]] = m[2];
      continue;
    }
    if (line.startsWith('#')) continue;
    m = line.match(/^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/);
    assert.ok(m, `unparsable sample line: ${line}`);
    const value = m[3] === '+Inf' ? Infinity : Number(m[3]);
    assert.ok(!Number.isNaN(value), `bad value: ${line}`);
    samples.push({ name: m[1], labels: m[2] ? parseLabels(m[2]) : {}, value });
  }
  // Every sample belongs to a family that has a TYPE.
  for (const s of samples) {
    const fam = s.name.replace(/_(bucket|sum|count)$/, '');
    assert.ok(types[s.name] || types[fam], `no TYPE for ${s.name}`);
  }
  // No series twice.
  const seen = new Set();
  for (const s of samples) {
    const k = s.name + JSON.stringify(Object.entries(s.labels).sort());
    assert.ok(!seen.has(k), `series twice: ${k}`);
    seen.add(k);
  }
  return { types, samples };
}

const keyOf = (labels, drop = []) =>
  JSON.stringify(Object.entries(labels).filter(([k]) => !drop.includes(k)).sort());

// Groups a histogram family into series {labels, buckets: [[le, v]], sum, count}
// and checks each: buckets non-decreasing, +Inf == _count.
function histograms(prom, name) {
  assert.equal(prom.types[name], 'histogram', `${name} is a histogram`);
  const series = new Map();
  const get = (labels) => {
    const k = keyOf(labels, ['le']);
    if (!series.has(k)) series.set(k, { labels: Object.fromEntries(Object.entries(labels).filter(([l]) => l !== 'le')), buckets: [] });
    return series.get(k);
  };
  for (const s of prom.samples) {
    if (s.name === `${name}_bucket`) get(s.labels).buckets.push([s.labels.le === '+Inf' ? Infinity : Number(s.labels.le), s.value]);
    else if (s.name === `${name}_sum`) get(s.labels).sum = s.value;
    else if (s.name === `${name}_count`) get(s.labels).count = s.value;
  }
  for (const h of series.values()) {
    const les = h.buckets.map(([le]) => le);
    assert.deepEqual(les, [...les].sort((a, b) => a - b), `${name}: buckets in order`);
    for (let i = 1; i < h.buckets.length; i++)
      assert.ok(h.buckets[i][1] >= h.buckets[i - 1][1], `${name}: bucket counts never decrease`);
    assert.equal(h.buckets.at(-1)[0], Infinity, `${name}: ends with +Inf`);
    assert.equal(h.buckets.at(-1)[1], h.count, `${name}: +Inf bucket == _count`);
    assert.ok(h.sum >= 0, `${name}: has a _sum`);
  }
  return [...series.values()];
}

const sum = (xs) => xs.reduce((a, b) => a + b, 0);
const sample = (prom, name, labels = {}) =>
  sum(prom.samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v)).map((s) => s.value));

async function scrape(gw) {
  const r = await fetch(`${gw.base}/metrics`);
  assert.equal(r.status, 200);
  return parseProm(await r.text());
}

const user = (t = 'hi') => [{ role: 'user', content: t }];

// ---- an OTLP/HTTP collector ----------------------------------------------------

async function startCollector() {
  const spans = [];
  const waiters = [];
  const bodies = [];
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (d) => { body += d; });
    req.on('end', () => {
      bodies.push({ path: req.url, type: req.headers['content-type'], body });
      const j = JSON.parse(body);
      for (const rs of j.resourceSpans)
        for (const ss of rs.scopeSpans)
          for (const s of ss.spans) spans.push({ ...s, resource: rs.resource });
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{}');
      for (const w of [...waiters]) if (w.pred()) { waiters.splice(waiters.indexOf(w), 1); w.resolve(); }
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    spans, bodies,
    // Resolves once pred() holds (checked at every export received).
    until: (pred, ms = 5000) => pred() ? Promise.resolve() : new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`collector: condition not met; ${spans.length} spans`)), ms);
      waiters.push({ pred, resolve: () => { clearTimeout(t); resolve(); } });
    }),
    close: () => new Promise((r) => server.close(r)),
  };
}

const attr = (span, key) => {
  const a = span.attributes.find((x) => x.key === key);
  if (!a) return undefined;
  const v = a.value;
  return v.stringValue ?? (v.intValue !== undefined ? Number(v.intValue) : v.arrayValue ? v.arrayValue.values.map((x) => x.stringValue) : v);
};

function obsYaml(base, obs) {
  return base + 'observability:\n' + Object.entries(obs).map(([k, v]) => `  ${k}: ${v}\n`).join('');
}

// ---- metrics ----------------------------------------------------------------------

describe('/metrics after scripted traffic', () => {
  let sim, gw, key;
  before(async () => {
    sim = await startSim();
    gw = await startGateway(obsYaml(config({
      providers: { simoai: { base_url: sim.url }, simant: { kind: 'anthropic', base_url: sim.base } },
      models: [
        { id: 'm-oai', routes: [{ provider: 'simoai', model: 'up-oai' }] },
        { id: 'm-fail', routes: [{ provider: 'simoai', model: 'up-first' }, { provider: 'simoai', model: 'up-second' }] },
        { id: 'm-ant', routes: [{ provider: 'simant', model: 'claude-up' }] },
      ],
    }), { metrics_key_names: 'true' }));
    key = gw.cli(['keys', 'create', '--name', 'team-metrics', '--rpm', '7']).stdout.trim();
  });
  after(async () => { await gw.stop(); await sim.stop(); gw.cleanup(); });

  test('request counts and token sums equal what the simulator returned', async () => {
    const usage = [[11, 5], [23, 9], [40, 17], [3, 2], [100, 50]];
    const script = usage.map(([p, c]) => ({ usage: { prompt_tokens: p, completion_tokens: c } }));
    assert.equal((await sim.script(script)).status, 200);
    let streamed = 0;
    for (let i = 0; i < usage.length; i++) {
      const stream = i % 2 === 1;
      const r = await chat(gw, { model: 'm-oai', messages: user(), stream, ...(stream ? { stream_options: { include_usage: true } } : {}) }, { key });
      assert.equal(r.status, 200, r.text);
      if (stream) {
        streamed++;
        const last = JSON.parse(sseData(r.text).filter((d) => d !== '[DONE]').at(-1));
        assert.deepEqual([last.usage.prompt_tokens, last.usage.completion_tokens], usage[i]);
      } else {
        assert.deepEqual([r.json.usage.prompt_tokens, r.json.usage.completion_tokens], usage[i]);
      }
    }
    // A failover: the first route fails with a 500, the second answers.
    assert.equal((await sim.script([{ status: 500 }, { usage: { prompt_tokens: 7, completion_tokens: 4 } }])).status, 200);
    const f = await chat(gw, { model: 'm-fail', messages: user() }, { key });
    assert.equal(f.status, 200, f.text);
    assert.match(f.headers.get('x-yourouter-attempts'), /up-first=.*500.*up-second=ok:200/);

    const prom = await scrape(gw);
    const tok = histograms(prom, 'gen_ai_client_token_usage');
    const oai = tok.filter((h) => h.labels.gen_ai_request_model === 'm-oai');
    const input = oai.filter((h) => h.labels.gen_ai_token_type === 'input');
    const output = oai.filter((h) => h.labels.gen_ai_token_type === 'output');
    assert.equal(sum(input.map((h) => h.sum)), sum(usage.map((u) => u[0])));
    assert.equal(sum(output.map((h) => h.sum)), sum(usage.map((u) => u[1])));
    assert.equal(sum(input.map((h) => h.count)), usage.length);
    for (const h of oai) {
      assert.equal(h.labels.gen_ai_operation_name, 'chat');
      assert.equal(h.labels.gen_ai_provider_name, 'openai');
      assert.equal(h.labels.route, 'simoai/up-oai');
      assert.equal(h.labels.status_class, '2xx');
    }
    // The token buckets are the semconv's, exactly.
    assert.deepEqual(input[0].buckets.map(([le]) => le).slice(0, -1),
      [1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864]);
    // 100 input tokens: in the le=256 bucket, not in le=64.
    const b = (h, le) => h.buckets.find(([l]) => l === le)[1];
    assert.equal(b(input[0], 64), usage.filter((u) => u[0] <= 64).length);
    assert.equal(b(input[0], 256), usage.length);

    // Failover tokens are counted on the route that used them.
    const second = tok.filter((h) => h.labels.route === 'simoai/up-second' && h.labels.gen_ai_token_type === 'input');
    assert.equal(sum(second.map((h) => h.sum)), 7);

    const dur = histograms(prom, 'gen_ai_server_request_duration');
    assert.equal(sum(dur.filter((h) => h.labels.gen_ai_request_model === 'm-oai').map((h) => h.count)), usage.length);
    assert.deepEqual(dur[0].buckets.map(([le]) => le).slice(0, 3), [0.01, 0.02, 0.04]);
    const ttft = histograms(prom, 'gen_ai_server_time_to_first_token');
    assert.equal(sum(ttft.filter((h) => h.labels.gen_ai_request_model === 'm-oai').map((h) => h.count)), streamed);
    const tpot = histograms(prom, 'gen_ai_server_time_per_output_token');
    assert.equal(sum(tpot.map((h) => h.count)), streamed); // every streamed answer had > 1 token
    histograms(prom, 'yourouter_event_loop_lag_seconds');

    assert.equal(sample(prom, 'yourouter_requests_total', { model: 'm-oai', status: '200' }), usage.length);
    assert.equal(sample(prom, 'yourouter_retries_total'), 1);
    // Key names only because metrics_key_names is on; never the secret.
    assert.equal(sample(prom, 'yourouter_key_requests_total', { key: 'team-metrics', status_class: '2xx' }), usage.length + 1);
    assert.equal(sample(prom, 'yourouter_key_tokens_total', { key: 'team-metrics', gen_ai_token_type: 'input' }), sum(usage.map((u) => u[0])) + 7);
    assert.ok(prom.samples.every((s) => !Object.values(s.labels).some((v) => v.includes(key))), 'no key secret in a label');
    assert.ok(prom.samples.every((s) => !Object.values(s.labels).some((v) => /^req_/.test(v))), 'no request id in a label');
    // The gauges exist per worker, and the process's memory.
    assert.equal(prom.samples.filter((s) => s.name === 'yourouter_connections').length, 2);
    assert.ok(sample(prom, 'process_resident_memory_bytes') > 1 << 20);
    assert.equal(prom.types.yourouter_usage_queue_depth, 'gauge');
    assert.equal(sample(prom, 'yourouter_route_circuit_state', { route: 'simoai/up-oai' }), 0);
  });

  test('limit rejections and an Anthropic route are counted under their names', async () => {
    const r = await fetch(`${gw.base}/v1/messages`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'anthropic-version': '2023-06-01', authorization: `Bearer ${MASTER_KEY}` },
      body: JSON.stringify({ model: 'm-ant', max_tokens: 50, messages: user() }),
    });
    assert.equal(r.status, 200, await r.text());
    // The key allows 7 requests a minute and used 6: the 8th is refused.
    assert.equal((await chat(gw, { model: 'm-oai', messages: user() }, { key })).status, 200);
    assert.equal((await chat(gw, { model: 'm-oai', messages: user() }, { key })).status, 429);
    const prom = await scrape(gw);
    assert.equal(sample(prom, 'yourouter_limit_rejections_total', { limit: 'rpm' }), 1);
    const ant = histograms(prom, 'gen_ai_client_token_usage').filter((h) => h.labels.gen_ai_request_model === 'm-ant');
    assert.ok(ant.length === 2 && ant.every((h) => h.labels.gen_ai_provider_name === 'anthropic' && h.labels.route === 'simant/claude-up'));
    const dur = histograms(prom, 'gen_ai_server_request_duration');
    assert.equal(sum(dur.filter((h) => h.labels.status_class === '4xx').map((h) => h.count)), 1);
  });
});

describe('/metrics: route health', () => {
  let sim, gw;
  before(async () => {
    sim = await startSim();
    gw = await startGateway(config({
      providers: { simoai: { base_url: sim.url } },
      models: [{ id: 'm-circ', routes: [{ provider: 'simoai', model: 'up-flaky' }, { provider: 'simoai', model: 'up-steady' }] }],
    }).replace('  - id: m-circ\n', '  - id: m-circ\n    failure_threshold: 1\n    cooldown_ms: 60000\n'));
  });
  after(async () => { await gw.stop(); await sim.stop(); gw.cleanup(); });

  test('a failing route\'s circuit opens and the opening is counted', async () => {
    let prom = await scrape(gw);
    assert.equal(sample(prom, 'yourouter_route_circuit_state', { route: 'simoai/up-flaky' }), 0);
    assert.equal((await sim.script([{ status: 500 }])).status, 200);
    const r = await chat(gw, { model: 'm-circ', messages: user() });
    assert.equal(r.status, 200, r.text);
    prom = await scrape(gw);
    assert.equal(sample(prom, 'yourouter_route_circuit_state', { route: 'simoai/up-flaky' }), 1);
    assert.equal(sample(prom, 'yourouter_route_circuit_openings_total', { route: 'simoai/up-flaky' }), 1);
    assert.equal(sample(prom, 'yourouter_route_consecutive_failures', { route: 'simoai/up-flaky' }), 1);
    assert.equal(sample(prom, 'yourouter_route_circuit_state', { route: 'simoai/up-steady' }), 0);
    assert.equal(sample(prom, 'yourouter_retries_total'), 1);
    assert.equal(prom.types.yourouter_route_circuit_openings_total, 'counter');
  });
});

// ---- traces --------------------------------------------------------------------

describe('OTLP trace export', () => {
  let sim, gw, col;
  before(async () => {
    sim = await startSim();
    col = await startCollector();
    gw = await startGateway(obsYaml(config({
      providers: {
        simoai: { base_url: sim.url },
        simgem: { kind: 'gemini', base_url: sim.base, api_key: 'g-key-0123456789' },
        simant: { kind: 'anthropic', base_url: sim.base },
      },
      models: [
        { id: 'm1', routes: [{ provider: 'simoai', model: 'up-1' }] },
        { id: 'm2', routes: [{ provider: 'simoai', model: 'up-bad' }, { provider: 'simoai', model: 'up-good' }] },
        { id: 'm-gem', routes: [{ provider: 'simgem', model: 'gemini-2.5-flash' }] },
        { id: 'm-ant', routes: [{ provider: 'simant', model: 'claude-up' }] },
      ],
    }), { otlp_endpoint: col.url, otlp_interval_ms: 50, service_name: 'yr-test' }));
  });
  after(async () => { await gw.stop(); await sim.stop(); await col.close(); gw.cleanup(); });

  test('one span per request and one child per attempt, in the client\'s trace', async () => {
    const traceId = '4bf92f3577b34da6a3ce929d0e0e4736';
    const clientSpan = '00f067aa0ba902b7';
    await sim.reset();
    assert.equal((await sim.script([{ status: 503 }, { usage: { prompt_tokens: 12, completion_tokens: 6 } }])).status, 200);
    const r = await chat(gw, { model: 'm2', messages: user() }, { headers: { traceparent: `00-${traceId}-${clientSpan}-01` } });
    assert.equal(r.status, 200, r.text);
    await col.until(() => col.spans.filter((s) => s.traceId === traceId).length >= 3);
    const spans = col.spans.filter((s) => s.traceId === traceId);
    assert.equal(spans.length, 3);
    const server = spans.find((s) => s.kind === 2);
    assert.equal(server.name, 'chat m2');
    assert.equal(server.parentSpanId, clientSpan);
    assert.match(server.spanId, /^[0-9a-f]{16}$/);
    assert.equal(attr(server, 'gen_ai.request.model'), 'm2');
    assert.equal(attr(server, 'gen_ai.response.model'), 'up-good');
    assert.equal(attr(server, 'gen_ai.response.id'), r.json.id);
    assert.deepEqual(attr(server, 'gen_ai.response.finish_reasons'), ['stop']);
    assert.equal(attr(server, 'gen_ai.usage.input_tokens'), 12);
    assert.equal(attr(server, 'gen_ai.usage.output_tokens'), 6);
    assert.equal(attr(server, 'gen_ai.provider.name'), 'openai');
    assert.equal(attr(server, 'yourouter.attempts'), 2);
    assert.equal(server.status, undefined);
    assert.equal(attr(server.resource, 'service.name'), 'yr-test');
    assert.ok(BigInt(server.endTimeUnixNano) >= BigInt(server.startTimeUnixNano));
    assert.ok(Math.abs(Number(BigInt(server.startTimeUnixNano) / 1000000n) - Date.now()) < 60000, 'unix time');

    const children = spans.filter((s) => s.kind === 3).sort((a, b) => (BigInt(a.startTimeUnixNano) < BigInt(b.startTimeUnixNano) ? -1 : 1));
    assert.deepEqual(children.map((s) => s.name), ['chat up-bad', 'chat up-good']);
    for (const c of children) {
      assert.equal(c.parentSpanId, server.spanId);
      assert.equal(attr(c, 'server.address'), '127.0.0.1');
      assert.equal(attr(c, 'server.port'), sim.port);
      assert.equal(attr(c, 'gen_ai.operation.name'), 'chat');
    }
    assert.equal(attr(children[0], 'error.type'), 'overloaded');
    assert.equal(attr(children[0], 'http.response.status_code'), 503);
    assert.equal(children[0].status.code, 2);
    assert.equal(attr(children[1], 'gen_ai.request.model'), 'up-good');
    assert.equal(attr(children[1], 'gen_ai.response.id'), r.json.id);
    assert.equal(attr(children[1], 'gen_ai.usage.output_tokens'), 6);
    assert.equal(attr(children[1], 'error.type'), undefined);

    // Each attempt went upstream with its own span as the parent.
    const up = (await sim.requests()).filter((q) => q.path.endsWith('/chat/completions'));
    assert.deepEqual(up.map((q) => q.headers.traceparent), children.map((c) => `00-${traceId}-${c.spanId}-01`));
    assert.ok(col.bodies.every((b) => b.path === '/v1/traces' && b.type === 'application/json'));
  });

  test('a request without traceparent starts a trace; a streamed one is traced too', async () => {
    const r = await chat(gw, { model: 'm1', messages: user(), stream: true });
    assert.equal(r.status, 200);
    const id = JSON.parse(sseData(r.text)[0]).id;
    await col.until(() => col.spans.some((s) => s.kind === 2 && attr(s, 'gen_ai.response.id') === id));
    const server = col.spans.find((s) => s.kind === 2 && attr(s, 'gen_ai.response.id') === id);
    assert.equal(server.parentSpanId, undefined);
    assert.equal(server.name, 'chat m1');
    assert.equal(attr(server, 'gen_ai.response.model'), 'up-1');
    assert.deepEqual(attr(server, 'gen_ai.response.finish_reasons'), ['stop']);
    await col.until(() => col.spans.some((s) => s.parentSpanId === server.spanId));
  });

  test('a Gemini client on a Gemini route: generate_content, read from the relayed answer', async () => {
    const traceId = '33333333333333333333333333333333';
    const r = await fetch(`${gw.base}/v1beta/models/m-gem:generateContent`, {
      method: 'POST',
      headers: { 'x-goog-api-key': MASTER_KEY, 'content-type': 'application/json', traceparent: `00-${traceId}-4444444444444444-01` },
      body: JSON.stringify({ contents: [{ parts: [{ text: 'hi' }] }] }),
    });
    const j = await r.json();
    assert.equal(r.status, 200, JSON.stringify(j));
    await col.until(() => col.spans.filter((s) => s.traceId === traceId).length >= 2);
    const server = col.spans.find((s) => s.traceId === traceId && s.kind === 2);
    const attempt = col.spans.find((s) => s.traceId === traceId && s.kind === 3);
    assert.equal(server.name, 'generate_content m-gem');
    assert.equal(attempt.name, 'generate_content gemini-2.5-flash');
    assert.equal(attr(server, 'gen_ai.provider.name'), 'gcp.gemini');
    assert.equal(attr(server, 'gen_ai.response.id'), j.responseId);
    assert.equal(attr(server, 'gen_ai.response.model'), j.modelVersion);
    assert.deepEqual(attr(server, 'gen_ai.response.finish_reasons'), [j.candidates[0].finishReason]);
    assert.equal(attr(server, 'gen_ai.usage.input_tokens'), j.usageMetadata.promptTokenCount);
    const prom = await scrape(gw);
    const tok = histograms(prom, 'gen_ai_client_token_usage').filter((h) => h.labels.gen_ai_request_model === 'm-gem');
    assert.ok(tok.length === 2 && tok.every((h) => h.labels.gen_ai_operation_name === 'generate_content' && h.labels.gen_ai_provider_name === 'gcp.gemini'));
    assert.equal(tok.find((h) => h.labels.gen_ai_token_type === 'input').sum, j.usageMetadata.promptTokenCount);
  });

  test('an Anthropic client streaming from an Anthropic route (relayed events)', async () => {
    const traceId = '55555555555555555555555555555555';
    const r = await fetch(`${gw.base}/v1/messages`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'anthropic-version': '2023-06-01', 'x-api-key': MASTER_KEY, traceparent: `00-${traceId}-6666666666666666-01` },
      body: JSON.stringify({ model: 'm-ant', max_tokens: 50, stream: true, messages: user() }),
    });
    const text = await r.text();
    assert.equal(r.status, 200, text);
    const start = JSON.parse(sseData(text).find((d) => d.includes('"message_start"')));
    await col.until(() => col.spans.some((s) => s.traceId === traceId && s.kind === 2));
    const server = col.spans.find((s) => s.traceId === traceId && s.kind === 2);
    assert.equal(server.name, 'chat m-ant');
    assert.equal(attr(server, 'gen_ai.provider.name'), 'anthropic');
    assert.equal(attr(server, 'gen_ai.response.id'), start.message.id);
    assert.equal(attr(server, 'gen_ai.response.model'), start.message.model);
    assert.deepEqual(attr(server, 'gen_ai.response.finish_reasons'), ['end_turn']);
    assert.ok(attr(server, 'gen_ai.usage.output_tokens') > 0);
  });

  test('a failed request ends in an error span', async () => {
    assert.equal((await sim.script([{ status: 400, error_message: 'nope' }])).status, 200);
    const r = await chat(gw, { model: 'm1', messages: user() }, { headers: { traceparent: '00-11111111111111111111111111111111-2222222222222222-01' } });
    assert.equal(r.status, 400);
    await col.until(() => col.spans.some((s) => s.traceId === '11111111111111111111111111111111' && s.kind === 2));
    const server = col.spans.find((s) => s.traceId === '11111111111111111111111111111111' && s.kind === 2);
    assert.equal(server.status.code, 2);
    assert.equal(attr(server, 'error.type'), 'client_error');
    assert.equal(attr(server, 'http.response.status_code'), 400);
  });
});

describe('a collector that never answers', () => {
  let sim, gw, hole;
  const held = [];
  before(async () => {
    sim = await startSim();
    // Accepts connections and reads, never answers.
    hole = net.createServer((s) => { held.push(s); s.on('data', () => {}); });
    hole.listen(0, '127.0.0.1');
    await once(hole, 'listening');
    gw = await startGateway(obsYaml(config({
      providers: { simoai: { base_url: sim.url } },
      models: [{ id: 'm1', routes: [{ provider: 'simoai' }] }],
      server: { workers: 1 },
    }), { otlp_endpoint: `http://127.0.0.1:${hole.address().port}`, otlp_interval_ms: 20, otlp_timeout_ms: 10000, otlp_queue: 8, otlp_batch: 2 }));
  });
  after(async () => { await gw.stop(); await sim.stop(); for (const s of held) s.destroy(); hole.close(); gw.cleanup(); });

  test('does not slow requests; spans beyond the queue are dropped and counted', async () => {
    const times = [];
    for (let i = 0; i < 30; i++) {
      const t0 = performance.now();
      const r = await chat(gw, { model: 'm1', messages: user() }, { headers: { traceparent: `00-${'a'.repeat(31)}${i % 10}-${'b'.repeat(16)}-01` } });
      times.push(performance.now() - t0);
      assert.equal(r.status, 200);
    }
    if (held.length === 0) await once(hole, 'connection'); // the exporter did connect
    times.sort((a, b) => a - b);
    // The export hangs for 10 s; requests stay fast (sanitizer build: generous bound).
    assert.ok(times.at(-1) < 1000, `slowest request ${times.at(-1)} ms`);
    const prom = await scrape(gw);
    assert.ok(sample(prom, 'yourouter_trace_spans_total', { result: 'dropped' }) > 0);
    assert.equal(sample(prom, 'yourouter_trace_spans_total', { result: 'exported' }), 0);
  });
});

// ---- the access log ----------------------------------------------------------------

describe('JSON access log to a file', () => {
  let sim, gw, key, logPath;
  before(async () => {
    sim = await startSim();
    gw = await startGateway(obsYaml(config({
      providers: { simoai: { base_url: sim.url } },
      models: [{ id: 'm1', routes: [{ provider: 'simoai', model: 'up-1' }] }],
    }), { access_log: 'access.log' }));
    logPath = join(gw.dir, 'access.log');
    key = gw.cli(['keys', 'create', '--name', 'log-team']).stdout.trim();
  });
  after(async () => { await gw.stop(); await sim.stop(); gw.cleanup(); });

  const lines = (p) => (existsSync(p) ? readFileSync(p, 'utf8') : '').split('\n').filter(Boolean).map((l) => JSON.parse(l));
  // A request the proxy does not handle is logged when its pool goes, just
  // after its response: wait for the file to change rather than sleep.
  const lineFor = (id, p = logPath) => new Promise((resolve, reject) => {
    const find = () => lines(p).find((x) => x.request_id === id);
    const w = watch(gw.dir, () => { const l = find(); if (l) done(l); });
    const t = setTimeout(() => { w.close(); reject(new Error(`no log line for ${id}`)); }, 5000);
    const done = (l) => { clearTimeout(t); w.close(); resolve(l); };
    const l = find();
    if (l) done(l);
  });

  test('one line per request with its metadata, never its content', async () => {
    const secretPrompt = 'PROMPT-TEXT-' + 'q'.repeat(10);
    assert.equal((await sim.script([{ usage: { prompt_tokens: 21, completion_tokens: 8 } }])).status, 200);
    const r = await chat(gw, { model: 'm1', messages: user(secretPrompt) }, { key });
    assert.equal(r.status, 200);
    const text = readFileSync(logPath, 'utf8');
    assert.ok(!text.includes(secretPrompt) && !text.includes('You said'), 'no prompt or answer in the log');
    assert.ok(!text.includes(key) && !text.includes(MASTER_KEY), 'no key secret in the log');
    const l = lines(logPath).find((x) => x.request_id === r.headers.get('x-request-id'));
    assert.ok(l, text);
    assert.equal(l.key, 'log-team');
    assert.ok(l.key_id > 0);
    assert.equal(l.model, 'm1');
    assert.equal(l.vendor, 'simoai');
    assert.equal(l.route, 'simoai/up-1');
    assert.equal(l.attempts, 1);
    assert.deepEqual(l.outcomes, ['ok:200']);
    assert.equal(l.status, 200);
    assert.equal(l.stream, false);
    assert.equal(l.input_tokens, 21);
    assert.equal(l.output_tokens, 8);
    assert.ok(l.latency_ms >= 0 && l.ttfb_ms >= 0 && l.ttfb_ms <= l.latency_ms);
    assert.equal(l.overhead_ms, Number(r.headers.get('x-yourouter-overhead-ms')));
    assert.ok('cost_micros' in l);
    assert.match(l.ts, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    // An error is logged too (no key: the master key).
    const e = await chat(gw, { model: 'no-such', messages: user() });
    assert.equal(e.status, 400);
    const le = lines(logPath).find((x) => x.request_id === e.headers.get('x-request-id'));
    assert.equal(le.status, 400);
    assert.equal(le.key, null);
    assert.equal(le.attempts, 0);
    // Requests the proxy does not handle get a line too: method, path (never
    // the query, where a Gemini client may put its key), status.
    const bad = await chat(gw, { model: 'm1', messages: user() }, { key: 'sk-not-a-key-' + 'z'.repeat(20) });
    assert.equal(bad.status, 401);
    const g = await fetch(`${gw.base}/v1beta/models?pageSize=50`, { headers: { 'x-goog-api-key': key } });
    assert.equal(g.status, 200);
    const l401 = await lineFor(bad.headers.get('x-request-id'));
    assert.deepEqual([l401.method, l401.path, l401.status, l401.key], ['POST', '/v1/chat/completions', 401, null]);
    const lg = await lineFor(g.headers.get('x-request-id'));
    assert.deepEqual([lg.method, lg.path, lg.status, lg.key], ['GET', '/v1beta/models', 200, 'log-team']);
    assert.ok(lg.latency_ms >= 0);
    const text2 = readFileSync(logPath, 'utf8');
    assert.ok(!text2.includes(key) && !text2.includes('sk-not-a-key'), 'no key in the log');
  });

  test('SIGUSR1 reopens the file after a rename (rotation)', async () => {
    const before1 = lines(logPath).length;
    renameSync(logPath, logPath + '.1');
    const logged = new Promise((resolve) => {
      const on = (d) => { if (String(d).includes('access_log reopened')) { gw.proc.stderr.off('data', on); resolve(); } };
      gw.proc.stderr.on('data', on);
    });
    gw.proc.kill('SIGUSR1');
    await logged;
    const r = await chat(gw, { model: 'm1', messages: user() });
    assert.equal(r.status, 200);
    const now = lines(logPath);
    assert.equal(now.length, 1);
    assert.equal(now[0].request_id, r.headers.get('x-request-id'));
    assert.equal(lines(logPath + '.1').length, before1);
  });
});

describe('JSON access log to stdout, and the overhead header', () => {
  let sim, gw;
  let out = '';
  before(async () => {
    sim = await startSim();
    gw = await startGateway(obsYaml(config({
      providers: { simoai: { base_url: sim.url } },
      models: [{ id: 'm1', routes: [{ provider: 'simoai' }] }],
    }), { access_log: 'stdout' }));
    gw.proc.stdout.on('data', (d) => { out += d; });
  });
  after(async () => { await gw.stop(); await sim.stop(); gw.cleanup(); });

  const lineFor = (id) => new Promise((resolve, reject) => {
    const find = () => out.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l)).find((l) => l.request_id === id);
    const t = setTimeout(() => reject(new Error(`no line for ${id}: ${out}`)), 5000);
    const check = () => { const l = find(); if (l) { clearTimeout(t); gw.proc.stdout.off('data', check); resolve(l); } };
    gw.proc.stdout.on('data', check);
    check();
  });

  test('stdout lines, streamed and not; overhead excludes the upstream\'s time', async () => {
    // The provider takes 300 ms before its head: upstream time, not ours.
    assert.equal((await sim.script([{ headers_delay_ms: 300 }, { headers_delay_ms: 300 }])).status, 200);
    const r = await chat(gw, { model: 'm1', messages: user() });
    assert.equal(r.status, 200);
    const oh = Number(r.headers.get('x-yourouter-overhead-ms'));
    assert.ok(Number.isInteger(oh) && oh >= 0 && oh < 250, `overhead ${oh} ms`);
    const l = await lineFor(r.headers.get('x-request-id'));
    assert.ok(l.latency_ms >= 300, `latency ${l.latency_ms}`);
    assert.equal(l.overhead_ms, oh);

    const s = await chat(gw, { model: 'm1', messages: user(), stream: true });
    assert.equal(s.status, 200);
    const so = Number(s.headers.get('x-yourouter-overhead-ms'));
    assert.ok(Number.isInteger(so) && so >= 0 && so < 250, `stream overhead ${so} ms`);
    const ls = await lineFor(s.headers.get('x-request-id'));
    assert.equal(ls.stream, true);
    assert.ok(ls.ttfb_ms >= 300);
  });
});
