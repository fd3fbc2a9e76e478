// The Responses API per route kind, with the official `openai` SDK: an
// OpenAI route whose upstream speaks /v1/responses (passthrough, the
// simulator's Responses dialect), Anthropic and Gemini routes (translated),
// the stateless loop (store: false + encrypted_content), built-in and
// namespace tools, failover and failures.
import { test, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import OpenAI from 'openai';
import { startSim, startGateway, config, MASTER_KEY } from '../integ/lib.mjs';

let oai, anth, gw, client;
before(async () => {
  oai = await startSim();
  anth = await startSim();
  gw = await startGateway(config({
    providers: {
      openai: { base_url: oai.url, responses: 'native' },
      chatonly: { base_url: oai.url }, // auto: not api.openai.com, so translated
      anthropic: { kind: 'anthropic', base_url: anth.base, api_key: 'sk-ant-x' },
      google: { kind: 'gemini', base_url: anth.base, api_key: 'g-key' },
    },
    models: [
      { id: 'gpt-4o', routes: [{ provider: 'openai' }] },
      { id: 'gpt-chat', routes: [{ provider: 'chatonly', model: 'gpt-4o' }] },
      { id: 'gpt-up', routes: [{ provider: 'openai', model: 'gpt-4.1' }] },
      { id: 'claude', routes: [{ provider: 'anthropic', model: 'claude-sonnet-4-20250514' }] },
      { id: 'flash', routes: [{ provider: 'google', model: 'gemini-2.5-flash' }] },
      { id: 'g3', routes: [{ provider: 'google', model: 'gemini-3-pro-preview' }] },
      { id: 'mixed', routes: [{ provider: 'openai' }, { provider: 'anthropic', model: 'claude-sonnet-4-20250514' }] },
    ],
  }));
  client = new OpenAI({ apiKey: MASTER_KEY, baseURL: gw.url, maxRetries: 0 });
});
after(async () => { await gw.stop(); await oai.stop(); await anth.stop(); gw.cleanup(); });
beforeEach(async () => { await oai.reset(); await anth.reset(); await gw.resetRoutes(); });

const weather = [{ type: 'function', name: 'get_weather', description: 'Weather of a city',
  parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] } }];

function db(sql) {
  const q = spawnSync('sqlite3', ['-json', join(gw.dir, 'yourouter.db'), sql], { encoding: 'utf8' });
  assert.equal(q.status, 0, q.stderr);
  return JSON.parse(q.stdout || '[]');
}
async function usageRows(requestId) {
  for (let i = 0; i < 400; i++) {
    const rows = db(`SELECT * FROM usage WHERE request_id = '${requestId}' ORDER BY attempt`);
    if (rows.length > 0) return rows;
    await new Promise((r) => setTimeout(r, 5));
  }
  throw new Error(`no usage rows for ${requestId}`);
}
// The JSON inside an encrypted_content the gateway sealed: yr1.<b64 json>.<b64 mac>
const opened = (enc) => JSON.parse(Buffer.from(enc.split('.')[1], 'base64').toString());

// ---- passthrough ---------------------------------------------------------------

test('passthrough: responses.create goes to the upstream /v1/responses, model spliced, usage recorded', async () => {
  const { data: r, response } = await client.responses.create({ model: 'gpt-up', input: 'Reply with exactly: straight through', prompt_cache_key: 'k1' }).withResponse();
  assert.equal(r.output_text, 'straight through');
  assert.match(r.id, /^resp_/);
  const [req] = await oai.requests();
  assert.match(req.path, /\/v1\/responses$/);
  assert.equal(req.body.model, 'gpt-4.1', 'the route model is spliced in');
  assert.equal(req.body.input, 'Reply with exactly: straight through');
  assert.equal(req.body.prompt_cache_key, 'k1', 'fields are passed through as they are');
  const rows = await usageRows(response.headers.get('x-request-id'));
  assert.equal(rows.at(-1).prompt_tokens, r.usage.input_tokens);
  assert.equal(rows.at(-1).completion_tokens, r.usage.output_tokens);
  assert.equal(rows.at(-1).provider, 'openai');
});

test('passthrough: responses.stream relays the upstream events as they are', async () => {
  const stream = client.responses.stream({ model: 'gpt-4o', input: 'Reply with exactly: one two three', reasoning: { effort: 'low', summary: 'auto' } });
  const types = [];
  const seqs = [];
  for await (const ev of stream) { types.push(ev.type); seqs.push(ev.sequence_number); }
  const final = await stream.finalResponse();
  assert.equal(final.output_text, 'one two three');
  assert.deepEqual(seqs, seqs.map((_, i) => i), 'the upstream sequence numbers, none added or lost');
  assert.deepEqual(types.slice(0, 3), ['response.created', 'response.in_progress', 'response.output_item.added']);
  assert.ok(types.includes('response.reasoning_summary_text.delta'));
  assert.equal(types.at(-1), 'response.completed');
  assert.equal(final.output[0].type, 'reasoning');
});

test('passthrough: a streamed function call, and the usage of response.completed in the usage row', async () => {
  await oai.script([{ tool_calls: [{ name: 'get_weather', arguments: { city: 'Oslo' } }] }]);
  const { data: stream, response } = await client.responses.create({ model: 'gpt-4o', input: 'Weather in Oslo?', tools: weather, stream: true }).withResponse();
  let args = '';
  let completed;
  for await (const ev of stream) {
    if (ev.type === 'response.function_call_arguments.delta') args += ev.delta;
    if (ev.type === 'response.completed') completed = ev.response;
  }
  assert.deepEqual(JSON.parse(args), { city: 'Oslo' });
  const rows = await usageRows(response.headers.get('x-request-id'));
  assert.equal(rows.at(-1).prompt_tokens, completed.usage.input_tokens);
  assert.equal(rows.at(-1).completion_tokens, completed.usage.output_tokens);
  assert.equal(rows.at(-1).usage_estimated, 0);
  assert.equal(rows.at(-1).stream, 1);
  // the stored copy is the upstream's final response
  const got = await client.responses.retrieve(completed.id);
  assert.equal(got.output.find((o) => o.type === 'function_call').arguments, args);
});

test('passthrough: a tool loop with previous_response_id; the conversation is inlined from the store', async () => {
  const first = await client.responses.create({ model: 'gpt-4o', input: 'Weather in Rome?', tools: weather, tool_choice: 'required' });
  const call = first.output.find((o) => o.type === 'function_call');
  assert.ok(call, JSON.stringify(first.output));
  const second = await client.responses.create({
    model: 'gpt-4o', tools: weather, previous_response_id: first.id,
    input: [{ type: 'function_call_output', call_id: call.call_id, output: '{"temp_c": 25}' },
      { role: 'user', content: 'Reply with exactly: warm' }],
  });
  assert.equal(second.output_text, 'warm');
  const body = (await oai.requests()).at(-1).body;
  assert.equal(body.previous_response_id, undefined, 'the upstream never sees an id it may not know');
  assert.equal(body.input[0].content[0].text, 'Weather in Rome?');
  assert.equal(body.input[1].type, 'function_call');
  assert.equal(body.input[1].call_id, call.call_id);
  assert.equal(body.input[2].type, 'function_call_output');
  // our copy: retrieve, input items, delete
  const got = await client.responses.retrieve(second.id);
  assert.equal(got.output_text, 'warm');
  const items = await client.responses.inputItems.list(second.id);
  assert.ok(items.data.length >= 4, `${items.data.length} items`);
  // and the conversation continues on a translated route
  const third = await client.responses.create({ model: 'claude', previous_response_id: second.id, input: 'Reply with exactly: on claude' });
  assert.equal(third.output_text, 'on claude');
  const anthBody = JSON.stringify((await anth.requests()).at(-1).body);
  assert.ok(anthBody.includes('Weather in Rome?') && anthBody.includes('temp_c'));
  await client.responses.delete(second.id);
  await assert.rejects(client.responses.retrieve(second.id), (e) => e instanceof OpenAI.NotFoundError);
});

test('passthrough: json_schema and built-in tools go up untouched, nothing dropped', async () => {
  const schema = { type: 'object', properties: { a: { type: 'string' } }, required: ['a'], additionalProperties: false };
  const { response } = await client.responses.create({
    model: 'gpt-4o', input: 'x', tools: [{ type: 'web_search' }, ...weather],
    text: { format: { type: 'json_schema', name: 'ans', schema, strict: true } },
  }).withResponse();
  assert.equal(response.headers.get('x-yourouter-dropped'), null);
  const [req] = await oai.requests();
  assert.deepEqual(req.body.tools[0], { type: 'web_search' });
  assert.deepEqual(req.body.text.format.schema, schema);
});

test('passthrough: a stream cut upstream ends in response.failed, never completed', async () => {
  await oai.script([{ chunks: 6, cut_after: 6, text: 'a b c d e f' }]);
  const stream = client.responses.stream({ model: 'gpt-4o', input: 'x' });
  const types = [];
  let failed;
  for await (const ev of stream) { types.push(ev.type); if (ev.type === 'response.failed') failed = ev; }
  assert.ok(types.includes('response.output_text.delta'));
  assert.equal(types.at(-1), 'response.failed');
  assert.ok(!types.includes('response.completed'));
  assert.equal(failed.response.status, 'failed');
  assert.match(failed.response.error.message, /mid-stream|before it was complete|broke/);
  assert.equal(failed.sequence_number, types.length - 1, 'numbered after the last relayed event');
});

test('passthrough: a malformed event mid-stream ends in response.failed', async () => {
  await oai.script([{ malformed: true, text: 'one two three four five six' }]);
  const stream = client.responses.stream({ model: 'gpt-4o', input: 'x' });
  const types = [];
  for await (const ev of stream) types.push(ev.type);
  assert.equal(types.at(-1), 'response.failed');
});

test('passthrough: 429 and response.failed before any content fail over to the next route', async () => {
  await oai.script([{ status: 429 }]);
  const { data: r, response } = await client.responses.create({ model: 'mixed', input: 'Reply with exactly: from the backup' }).withResponse();
  assert.equal(r.output_text, 'from the backup');
  assert.match(response.headers.get('x-yourouter-attempts'), /^openai\/mixed=rate_limited:429, anthropic\/claude-sonnet-4-20250514=ok:200$/);
  await gw.resetRoutes();
  await oai.script([{ stream_error: 'server_error', stream_error_after: 2 }]);
  const stream = client.responses.stream({ model: 'mixed', input: 'Reply with exactly: backup again' });
  const types = [];
  for await (const ev of stream) types.push(ev.type);
  assert.equal((await stream.finalResponse()).output_text, 'backup again');
  assert.equal(types.filter((t) => t === 'response.created').length, 1, 'the failed attempt was never shown');
  await gw.resetRoutes();
  await oai.script([{ status: 500 }, { status: 500 }, { status: 500 }]);
  await assert.rejects(client.responses.create({ model: 'gpt-4o', input: 'x' }), (e) => e instanceof OpenAI.InternalServerError || e.status >= 500);
});

test('passthrough: another key cannot read or continue a response (404)', async () => {
  const r = await client.responses.create({ model: 'gpt-4o', input: 'mine' });
  const mk = await fetch(`${gw.base}/admin/keys`, { method: 'POST', headers: { authorization: `Bearer ${MASTER_KEY}`, 'content-type': 'application/json' }, body: JSON.stringify({ name: `other-${Date.now()}` }) });
  const other = new OpenAI({ apiKey: (await mk.json()).key, baseURL: gw.url, maxRetries: 0 });
  await assert.rejects(other.responses.retrieve(r.id), (e) => e instanceof OpenAI.NotFoundError);
  await assert.rejects(other.responses.inputItems.list(r.id), (e) => e instanceof OpenAI.NotFoundError);
  await assert.rejects(other.responses.create({ model: 'gpt-4o', input: 'x', previous_response_id: r.id }), (e) => e instanceof OpenAI.NotFoundError);
});

// ---- stateless clients: store: false + encrypted_content ------------------------

test('anthropic: the stateless tool loop carries the thinking blocks in encrypted_content', async () => {
  await anth.script([{ tool_calls: [{ name: 'get_weather', arguments: { city: 'Oslo' } }] }]);
  const opts = { model: 'claude', store: false, include: ['reasoning.encrypted_content'], reasoning: { effort: 'low' }, tools: weather };
  const input = [{ role: 'user', content: 'Weather in Oslo?' }];
  const first = await client.responses.create({ ...opts, input });
  const rs = first.output.find((o) => o.type === 'reasoning');
  const call = first.output.find((o) => o.type === 'function_call');
  assert.ok(rs && call, JSON.stringify(first.output));
  assert.match(rs.encrypted_content, /^yr1\./);
  const state = opened(rs.encrypted_content);
  const firstBody = (await anth.requests())[0].body;
  assert.equal(firstBody.thinking.type, 'enabled');
  assert.equal(state.b[0].type, 'thinking');
  assert.ok(state.b[0].signature.length > 10);
  await assert.rejects(client.responses.retrieve(first.id), (e) => e instanceof OpenAI.NotFoundError, 'store: false keeps nothing');

  const second = await client.responses.create({ ...opts, input: [...input, ...first.output,
    { type: 'function_call_output', call_id: call.call_id, output: '{"temp_c": 3}' }, { role: 'user', content: 'Reply with exactly: cold' }] });
  assert.equal(second.output_text, 'cold');
  const body = (await anth.requests()).at(-1).body;
  const assistant = body.messages.find((m) => m.role === 'assistant');
  assert.deepEqual(assistant.content[0], { type: 'thinking', thinking: state.b[0].thinking, signature: state.b[0].signature },
    'the signed thinking block goes back first in the assistant turn');
  assert.equal(assistant.content.at(-1).type, 'tool_use');

  // a forged envelope (another state, the old MAC) is ignored, never sent
  const forged = rs.encrypted_content.split('.');
  forged[1] = Buffer.from(JSON.stringify({ v: 1, b: [{ type: 'thinking', thinking: 'x', signature: 'forged' }] })).toString('base64');
  await client.responses.create({ ...opts, input: [...input, { ...rs, encrypted_content: forged.join('.') }, call,
    { type: 'function_call_output', call_id: call.call_id, output: '{}' }] });
  const fb = JSON.stringify((await anth.requests()).at(-1).body);
  assert.ok(!fb.includes('forged'), 'a forged signature never reaches the provider');
});

test('a stateless conversation moved from Anthropic to the passthrough: the sealed reasoning stays behind', async () => {
  await anth.script([{ tool_calls: [{ name: 'get_weather', arguments: { city: 'Oslo' } }] }]);
  const opts = { store: false, include: ['reasoning.encrypted_content'], tools: weather };
  const input = [{ role: 'user', content: 'Weather in Oslo?' }];
  const first = await client.responses.create({ ...opts, model: 'claude', reasoning: { effort: 'low' }, input });
  const call = first.output.find((o) => o.type === 'function_call');
  assert.ok(first.output.some((o) => o.type === 'reasoning' && /^yr1\./.test(o.encrypted_content)));
  const second = await client.responses.create({ ...opts, model: 'gpt-4o', input: [...input, ...first.output,
    { type: 'function_call_output', call_id: call.call_id, output: '{"temp_c": 3}' }, { role: 'user', content: 'Reply with exactly: moved' }] });
  assert.equal(second.output_text, 'moved');
  const body = (await oai.requests()).at(-1).body;
  assert.ok(!JSON.stringify(body).includes('yr1.'), 'OpenAI never gets the gateway\'s sealed state');
  assert.ok(body.input.some((i) => i.type === 'function_call' && i.call_id === call.call_id));
});

test('gemini: the stateless tool loop carries the thought signature in encrypted_content', async () => {
  const opts = { model: 'g3', store: false, include: ['reasoning.encrypted_content'], tools: weather };
  const input = [{ role: 'user', content: 'Weather in Lima?' }];
  const first = await client.responses.create({ ...opts, input, tool_choice: 'required' });
  const call = first.output.find((o) => o.type === 'function_call');
  const rs = first.output.find((o) => o.type === 'reasoning' && o.encrypted_content);
  assert.ok(call && rs, JSON.stringify(first.output));
  const sig = opened(rs.encrypted_content).s[call.call_id];
  const upstream = (await anth.requests())[0];
  assert.ok(sig && sig.length > 10, JSON.stringify(opened(rs.encrypted_content)));
  assert.ok(upstream.path.includes('gemini-3-pro-preview'));
  await client.responses.create({ ...opts, input: [...input, ...first.output,
    { type: 'function_call_output', call_id: call.call_id, output: '{"temp_c": 19}' }] });
  const body = (await anth.requests()).at(-1).body;
  const part = body.contents.flatMap((c) => c.parts).find((p) => p.functionCall);
  assert.equal(part.thoughtSignature, sig, 'the signature Gemini gave goes back with its call');
});

test('store: true keeps the provider state too: previous_response_id on Anthropic sends the thinking back', async () => {
  await anth.script([{ tool_calls: [{ name: 'get_weather', arguments: { city: 'Bern' } }] }]);
  const first = await client.responses.create({ model: 'claude', input: 'Weather in Bern?', tools: weather, reasoning: { effort: 'low' } });
  const rs = first.output.find((o) => o.type === 'reasoning');
  assert.equal(rs.encrypted_content, undefined, 'not shown unless include asks for it');
  const call = first.output.find((o) => o.type === 'function_call');
  await client.responses.create({ model: 'claude', tools: weather, reasoning: { effort: 'low' }, previous_response_id: first.id,
    input: [{ type: 'function_call_output', call_id: call.call_id, output: '{"temp_c": 8}' }] });
  const assistant = (await anth.requests()).at(-1).body.messages.find((m) => m.role === 'assistant');
  assert.equal(assistant.content[0].type, 'thinking');
  assert.ok(assistant.content[0].signature);
});

// ---- tools ----------------------------------------------------------------------

test('translated: built-in tools are dropped and named in x-yourouter-dropped; a tool_choice needing one is a 400', async () => {
  const { data: r, response } = await client.responses.create({
    model: 'claude', input: 'Reply with exactly: no search', tools: [{ type: 'web_search' }, { type: 'code_interpreter', container: { type: 'auto' } }, ...weather],
  }).withResponse();
  assert.equal(r.output_text, 'no search');
  assert.equal(response.headers.get('x-yourouter-dropped'), 'web_search,code_interpreter');
  const [req] = await anth.requests();
  assert.deepEqual(req.body.tools.map((t) => t.name), ['get_weather']);
  await assert.rejects(client.responses.create({ model: 'flash', input: 'x', tools: [{ type: 'web_search' }], tool_choice: { type: 'web_search' } }),
    (e) => e instanceof OpenAI.BadRequestError && e.param === 'tool_choice' && /web_search/.test(e.message));
  // streaming carries the header as well
  const s = await client.responses.create({ model: 'flash', input: 'x', tools: [{ type: 'file_search', vector_store_ids: ['vs_1'] }], stream: true }).withResponse();
  assert.equal(s.response.headers.get('x-yourouter-dropped'), 'file_search');
  for await (const ev of s.data) void ev;
});

test('translated: namespace tools are flattened to qualified names and mapped back', async () => {
  const tools = [{ type: 'namespace', name: 'crm', description: 'CRM', tools: [{ type: 'function', name: 'lookup', description: 'Find a customer', parameters: { type: 'object', properties: { q: { type: 'string' } } } }] }];
  for (const model of ['claude', 'flash']) {
    const r = await client.responses.create({ model, input: 'Find Ada', tools, tool_choice: 'required' });
    const call = r.output.find((o) => o.type === 'function_call');
    assert.equal(call.name, 'lookup', model);
    assert.equal(call.namespace, 'crm', model);
    const body = (await anth.requests()).at(-1).body;
    const names = JSON.stringify(body.tools);
    assert.ok(names.includes('crm__lookup'), names);
    // the call sent back is qualified again
    await client.responses.create({ model, input: [{ role: 'user', content: 'Find Ada' }, call, { type: 'function_call_output', call_id: call.call_id, output: 'found' }], tools });
    assert.ok(JSON.stringify((await anth.requests()).at(-1).body).includes('crm__lookup'));
  }
});

test('translated: a refusal is a refusal content part, also streamed', async () => {
  const msg = { role: 'assistant', content: null, refusal: 'I cannot help with that.' };
  await oai.script([{ body: JSON.stringify({ id: 'chatcmpl-r', object: 'chat.completion', created: 1, model: 'gpt-4o',
    choices: [{ index: 0, message: msg, finish_reason: 'stop' }], usage: { prompt_tokens: 3, completion_tokens: 5, total_tokens: 8 } }), content_type: 'application/json' }]);
  const r = await client.responses.create({ model: 'gpt-chat', input: 'something bad' });
  assert.equal((await oai.requests())[0].path, '/v1/chat/completions', 'auto: a compatible server is translated');
  assert.deepEqual(r.output[0].content, [{ type: 'refusal', refusal: 'I cannot help with that.' }]);
  assert.equal(r.output_text, '');
  const chunk = (delta, fin = null) => `data: ${JSON.stringify({ id: 'c', object: 'chat.completion.chunk', created: 1, model: 'gpt-4o', choices: [{ index: 0, delta, finish_reason: fin }] })}\n\n`;
  await oai.script([{ body: chunk({ role: 'assistant', content: null, refusal: '' }) + chunk({ refusal: 'No ' }) + chunk({ refusal: 'way.' }) + chunk({}, 'stop') + 'data: [DONE]\n\n', content_type: 'text/event-stream' }]);
  const stream = client.responses.stream({ model: 'gpt-chat', input: 'something bad' });
  const types = [];
  let deltas = '';
  for await (const ev of stream) { types.push(ev.type); if (ev.type === 'response.refusal.delta') deltas += ev.delta; }
  assert.equal(deltas, 'No way.');
  assert.ok(types.includes('response.refusal.done'));
  const final = await stream.finalResponse();
  assert.equal(final.output[0].content[0].type, 'refusal');
  assert.equal(final.output[0].content[0].refusal, 'No way.');
});

test('translated: fields a route has no use for are accepted and ignored', async () => {
  const r = await client.responses.create({ model: 'claude', input: 'Reply with exactly: fine', prompt_cache_key: 'p', safety_identifier: 'u1', service_tier: 'auto', user: 'someone', metadata: { a: 'b' }, client_metadata: { x: 1 }, truncation: 'auto', background: false });
  assert.equal(r.output_text, 'fine');
  const [req] = await anth.requests();
  for (const k of ['prompt_cache_key', 'safety_identifier', 'service_tier', 'client_metadata']) assert.equal(req.body[k], undefined, k);
});

test('responses.retention_days: stored responses older than it are purged', async () => {
  const yaml = config({
    server: { workers: 1 },
    providers: { anthropic: { kind: 'anthropic', base_url: anth.base, api_key: 'sk-ant-x' } },
    models: [{ id: 'claude', routes: [{ provider: 'anthropic', model: 'claude-sonnet-4-20250514' }] }],
  }) + 'responses:\n  retention_days: 2\n';
  const g = await startGateway(yaml); // creates the database
  await g.stop();
  const sql = (q) => {
    const r = spawnSync('sqlite3', ['-json', join(g.dir, 'yourouter.db'), q], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    return JSON.parse(r.stdout || '[]');
  };
  const row = (id, ms) => `('${id}', 0, ${ms}, '[]', '{"id":"${id}","object":"response","output":[]}')`;
  sql(`INSERT INTO responses (id, key_id, created_ms, input_items, response) VALUES ${row('resp_old', Date.now() - 3 * 86400e3)}, ${row('resp_recent', Date.now() - 86400e3)}`);
  const g2 = await startGateway(yaml, { dir: g.dir });
  try {
    const c = new OpenAI({ apiKey: MASTER_KEY, baseURL: g2.url, maxRetries: 0 });
    assert.equal((await c.responses.retrieve('resp_old')).id, 'resp_old', 'not purged before a put');
    const kept = await c.responses.create({ model: 'claude', input: 'Reply with exactly: kept' });
    // the purge runs on the store thread right after this put
    for (let i = 0; i < 400 && sql(`SELECT id FROM responses WHERE id = 'resp_old'`).length > 0; i++)
      await new Promise((r) => setTimeout(r, 5));
    await assert.rejects(c.responses.retrieve('resp_old'), (e) => e instanceof OpenAI.NotFoundError);
    assert.equal((await c.responses.retrieve('resp_recent')).id, 'resp_recent');
    assert.equal((await c.responses.retrieve(kept.id)).id, kept.id);
  } finally {
    await g2.stop();
    g.cleanup();
  }
});
